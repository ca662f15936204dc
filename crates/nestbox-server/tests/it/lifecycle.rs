//! Crash safety: kill -9 while tasks run; on restart every accepted task is still there
//! and is recovered.

use std::time::Duration;

use crate::harness::{Server, claim_externally};

#[test]
fn kill_9_then_recover() {
    // Slow analyses down with large samples so some are running when the kill lands.
    let s = Server::start("[analysis]\nworkers = 2\n");
    let mut ids = Vec::new();
    for n in 0..6u8 {
        let content: Vec<u8> = (0..(8 << 20)).map(|i: u32| (i % 251) as u8 ^ n).collect();
        ids.push(s.submit_file(&format!("s{n}.bin"), &content));
    }
    std::thread::sleep(Duration::from_millis(300));
    let before: Vec<String> = ids
        .iter()
        .map(|id| {
            s.get(&format!("/tasks/view/{id}")).json()["task"]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let dir = s.kill();
    let s = Server::start_in(dir, "[analysis]\nworkers = 2\n");
    let tasks = s.get("/tasks/list").json()["tasks"]
        .as_array()
        .unwrap()
        .clone();
    for id in &ids {
        let t = tasks
            .iter()
            .find(|t| t["id"] == *id)
            .unwrap_or_else(|| panic!("task {id} lost"));
        let st = t["status"].as_str().unwrap();
        assert!(st != "running" || t["processing"].is_string(), "{t}");
    }
    // Every original task ends reported, or recovered with a replacement that is reported.
    for (id, before) in ids.iter().zip(&before) {
        let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
        if t["status"] == "recovered" {
            assert!(
                t["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().contains("interrupted"))
            );
            let sha = t["sample"]["sha256"].as_str().unwrap();
            let all = s.get(&format!("/tasks/sample/{}", t["sample_id"])).json()["tasks"]
                .as_array()
                .unwrap()
                .clone();
            let replacement = all
                .iter()
                .find(|x| x["id"].as_i64().unwrap() > *id && x["sample"]["sha256"] == sha)
                .expect("replacement task");
            s.wait_status(replacement["id"].as_i64().unwrap(), "reported");
        } else {
            s.wait_status(*id, "reported");
        }
        let _ = before;
    }
    // Samples are intact.
    let t = s.get(&format!("/tasks/view/{}", ids[0])).json()["task"].clone();
    let sha = t["sample"]["sha256"].as_str().unwrap();
    assert_eq!(s.get(&format!("/files/get/{sha}")).body.len(), 8 << 20);
}

#[test]
fn running_tasks_fail_at_startup_without_reschedule() {
    // [68] reschedule = off: leftover running tasks become failed_analysis.
    let s = Server::start("[analysis]\nworkers = 0\n");
    let id = s.submit_file("a.bin", b"crash me");
    let other = s.submit_file("b.bin", b"still pending");
    assert_eq!(claim_externally(&s, "crashed-worker"), id);
    let dir = s.kill();
    let s = Server::start_in(dir, "[analysis]\nworkers = 0\nreschedule = false\n");
    let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
    assert_eq!(t["status"], "failed_analysis");
    assert!(t["errors"][0].as_str().unwrap().contains("interrupted"));
    assert_eq!(
        s.get(&format!("/tasks/view/{other}")).json()["task"]["status"],
        "pending"
    );
    assert_eq!(
        s.get("/tasks/list").json()["tasks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn running_tasks_are_rescheduled_at_startup() {
    // [68] reschedule = on: the task becomes recovered and a pending copy is queued, which
    // the restarted workers then analyse.
    let s = Server::start("[analysis]\nworkers = 0\n");
    let id = s.submit_file("a.bin", b"crash me");
    assert_eq!(claim_externally(&s, "crashed-worker"), id);
    let dir = s.kill();
    let s = Server::start_in(dir, "[analysis]\nworkers = 1\nreschedule = true\n");
    let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
    assert_eq!(t["status"], "recovered");
    let copy = id + 1;
    let c = s.wait_status(copy, "reported");
    assert_eq!(c["sample_id"], t["sample_id"]);
    assert_eq!(c["target"], t["target"]);
    // Machines were unlocked at start-up, or the copy could not have run.
    assert!(
        s.get("/machines/list").json()["machines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["locked"] == false)
    );
    // Ids are never reused, even after a delete.
    assert_eq!(s.get(&format!("/tasks/delete/{copy}")).status, 200);
    assert_eq!(s.submit_file("c.bin", b"new"), copy + 1);
}
