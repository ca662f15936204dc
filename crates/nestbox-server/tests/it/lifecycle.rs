//! Crash safety: kill -9 while tasks run; on restart every accepted task is still there
//! and is recovered.

use std::time::Duration;

use crate::harness::Server;

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
