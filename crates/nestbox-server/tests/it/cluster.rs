//! Several nodes on one PostgreSQL database: one API process and worker processes
//! (`serve --role api|worker`), the blob store a directory they share. Runs when the
//! suite runs on PostgreSQL (`make pg`: `NESTBOX_IT_DATABASE=postgres` under
//! tests/pg/with-pg.sh); on SQLite there is no cluster to test.
//!
//! Checked, with real processes and kill -9:
//! - a worker killed mid-task: its task is recovered (once) by another worker after the
//!   lease ran out, and the copy is analysed;
//! - tasks submitted concurrently while the API is killed and restarted: every
//!   acknowledged one is stored and analysed exactly once (worker logs count the
//!   analyses; the database shows each task reported).

use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Server, block_on, nestbox_bin, open_store};
use nestbox_types::{TaskId, TaskStatus};

const CONFIG: &str = "[analysis]\nworkers = 2\npoll_interval_ms = 200\n\
    [sandbox]\nmachinery = \"none\"\n[cluster]\nlease_secs = 2\n";

/// How many tasks the concurrent part submits.
const TASKS: usize = 500;

/// A worker process; killed when dropped.
pub struct Worker {
    child: Child,
    pub log: std::path::PathBuf,
}

impl Worker {
    /// `serve --role worker --node <node>` with `dir/nestbox.toml`, logging to `dir`.
    pub fn start(dir: &std::path::Path, node: &str) -> Worker {
        let log = dir.join(format!("worker-{node}.log"));
        let child = Command::new(nestbox_bin())
            .args(["serve", "--role", "worker", "--node", node, "--config"])
            .arg(dir.join("nestbox.toml"))
            .env("NESTBOX_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawning a worker");
        Worker { child, log }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for the clean stop.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Task ids of the "analysis started" lines of a worker log, in order.
pub fn analyses_started(log: &std::path::Path) -> Vec<i64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("analysis started"))
        .filter_map(|l| {
            // The innermost span is the analysis the line is about.
            let i = l.rfind("task_id=")? + "task_id=".len();
            let digits: String = l[i..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Every worker log line about task `id` (for failure messages).
fn log_lines_about(workers: &[Worker], id: i64) -> String {
    let needle = format!("task_id={id}");
    let mut out = String::new();
    for w in workers {
        let text = std::fs::read_to_string(&w.log).unwrap_or_default();
        for l in text.lines() {
            let at = l.find(&needle).map(|i| i + needle.len());
            if at.is_some_and(|i| !l[i..].starts_with(|c: char| c.is_ascii_digit())) {
                out.push_str(&format!("{}: {l}\n", w.log.display()));
            }
        }
    }
    out
}

/// Content that keeps the static stage busy for a while (strings, fuzzy hashes).
fn big_sample(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 64 < 40 {
                b'a' + (x % 26) as u8
            } else {
                (x >> 24) as u8
            }
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Submits one file, retrying while the API is away; `None` if it never answered 200.
fn submit(agent: &ureq::Agent, base: &Arc<Mutex<String>>, n: usize) -> Option<i64> {
    let boundary = "nestboxclusterboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"s{n}.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n\
         cluster sample number {n}\r\n--{boundary}--\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let url = format!("{}/tasks/create/file", base.lock().unwrap());
        let r = agent
            .post(&url)
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(body.as_bytes());
        match r {
            Ok(mut r) if r.status() == 200 => {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
                return v["task_id"].as_i64();
            }
            // Not acknowledged: the API is restarting; the client tries again.
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    None
}

#[test]
fn api_and_worker_nodes_share_the_queue() {
    if std::env::var("NESTBOX_IT_DATABASE").as_deref() != Ok("postgres") {
        eprintln!("cluster: runs with NESTBOX_IT_DATABASE=postgres (make pg)");
        return;
    }
    let port = free_port().to_string();
    let api_args = ["--role", "api", "--port", port.as_str()];
    let api = Server::start_args(tempfile::tempdir().unwrap(), CONFIG, &api_args);
    let dir = api.dir.path().to_owned();
    let repo = block_on(open_store(&api));

    // 1. A worker killed -9 mid-task. It is the only worker, so it claims the task.
    let mut doomed = Worker::start(&dir, "wa");
    let victim = api.submit_file("big.bin", &big_sample(24 << 20));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = block_on(repo.task(TaskId(victim))).unwrap().unwrap();
        if t.status == TaskStatus::Running {
            let by = t.processing.as_deref().unwrap_or("");
            assert!(by.starts_with("wa/worker"), "claimed by {by:?}");
            break;
        }
        assert_eq!(t.status, TaskStatus::Pending, "killed too late: {t:?}");
        assert!(Instant::now() < deadline, "wa never claimed the task");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The claim commits before the worker logs the start of its analysis: wait for that
    // line, so the kill lands mid-analysis and the log says which task was cut short.
    let deadline = Instant::now() + Duration::from_secs(30);
    while analyses_started(&doomed.log).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    doomed.kill();
    assert_eq!(analyses_started(&doomed.log), vec![victim]);

    // 2. Three workers take over; the dead worker's lease runs out and one recovers it.
    let workers: Vec<Worker> = ["wb", "wc", "wd"]
        .iter()
        .map(|n| Worker::start(&dir, n))
        .collect();
    let t = api.wait_status(victim, "recovered");
    let errors = t["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "recovered exactly once: {t}");
    assert!(errors[0].as_str().unwrap().contains("lease"), "{t}");

    // 3. Concurrent submissions while the API is killed and restarted.
    let base = Arc::new(Mutex::new(api.base.clone()));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let (agent, base, acked) = (agent.clone(), base.clone(), acked.clone());
            std::thread::spawn(move || {
                for n in (c..TASKS).step_by(6) {
                    if let Some(id) = submit(&agent, &base, n) {
                        acked.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < TASKS / 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let api_dir = api.kill();
    let api = Server::start_args(api_dir, CONFIG, &api_args);
    *base.lock().unwrap() = api.base.clone();
    for c in clients {
        c.join().unwrap();
    }
    let mut acked = acked.lock().unwrap().clone();
    acked.sort_unstable();
    assert_eq!(
        acked.len(),
        TASKS,
        "every submission was acknowledged in the end"
    );

    // Every acknowledged task is stored and gets analysed; the copy of the victim too.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let counts = block_on(repo.status_counts()).unwrap();
        let reported = counts.by_status.get("reported").copied().unwrap_or(0);
        let pending = counts.by_status.get("pending").copied().unwrap_or(0);
        let running = counts.by_status.get("running").copied().unwrap_or(0);
        if pending == 0 && running == 0 {
            assert!(
                reported as usize > TASKS,
                "submissions and the copy: {counts:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "queue not drained: {counts:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut started: BTreeMap<i64, usize> = BTreeMap::new();
    for w in &workers {
        for id in analyses_started(&w.log) {
            *started.entry(id).or_default() += 1;
        }
    }
    for id in &acked {
        let t = block_on(repo.task(TaskId(*id)))
            .unwrap()
            .expect("acknowledged task stored");
        assert_eq!(t.status, TaskStatus::Reported, "{t:?}");
        assert_eq!(
            started.get(id),
            Some(&1),
            "task {id} analysed exactly once:\n{}",
            log_lines_about(&workers, *id)
        );
    }
    assert!(
        !started.contains_key(&victim),
        "the victim itself is not run again"
    );
    let sample = block_on(repo.task(TaskId(victim)))
        .unwrap()
        .unwrap()
        .spec
        .sample_id;
    let copies: Vec<TaskId> = block_on(repo.sample_task_ids(sample.unwrap()))
        .unwrap()
        .into_iter()
        .filter(|id| id.0 != victim)
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "one copy of the recovered task: {copies:?}"
    );
    let copy = block_on(repo.task(copies[0])).unwrap().unwrap();
    assert_eq!(copy.status, TaskStatus::Reported);
    assert_eq!(started.get(&copy.id.0), Some(&1), "the copy analysed once");
    // Whatever ran (including a submission the killed API stored but never
    // acknowledged) ran once.
    assert!(started.values().all(|&n| n == 1), "{started:?}");
    // Work was shared between the nodes.
    let busy = workers
        .iter()
        .filter(|w| !analyses_started(&w.log).is_empty())
        .count();
    assert!(busy >= 2, "only {busy} worker node(s) analysed anything");
    drop(workers);
    drop(api);
}
