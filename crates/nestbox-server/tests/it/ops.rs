//! Operations: `/metrics` (parsed as Prometheus text), `/health`, `/ready`, and JSON logs
//! whose analysis events carry the task id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Part, Server};

/// `name{labels} value` lines of a Prometheus text answer, checked for the format's
/// rules on the way: every sample line belongs to a family announced by `# TYPE`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut typed = Vec::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_owned();
            let kind = it.next().unwrap();
            assert!(["gauge", "histogram", "counter"].contains(&kind), "{line}");
            typed.push(name);
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            typed.iter().any(|t| name == t
                || name
                    .strip_prefix(t.as_str())
                    .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
            "{name} has no # TYPE"
        );
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(series.to_owned(), v);
    }
    out
}

#[test]
fn metrics_health_and_ready_sit_beside_every_dialect() {
    // Cuckoo auth on: the ops endpoints still answer without a token, the API does not.
    let s = Server::start("[analysis]\nworkers = 0\n[cuckoo]\napi_token = \"sekrit\"\n");
    let health = s.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = s.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(
        ready.json(),
        serde_json::json!({"status": "ready", "checks": {"database": "ok", "blob_store": "ok"}})
    );
    assert_eq!(s.get("/cuckoo/status").status, 401);

    // Some traffic on each dialect, one queued task, and a hostile path.
    let auth = [("Authorization", "Bearer sekrit")];
    let r = s.post_multipart_with(
        "/tasks/create/file",
        &[Part::File("file", "a.txt", b"queued")],
        &auth,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["task_id"].as_i64().unwrap();
    for _ in 0..3 {
        assert_eq!(s.get_with(&format!("/tasks/view/{id}"), &auth).status, 200);
    }
    assert_eq!(s.get(&format!("/apiv2/tasks/view/{id}/")).status, 200);
    assert_eq!(s.get("/api/v4/user/whoami/").status, 401);
    s.get("/../../etc/passwd%00?x=1");
    s.get("/nonexistent/aaaaaaaaaaaaaaaaaaaaaa");

    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = samples(&r.text());
    assert_eq!(m["nestbox_tasks{status=\"pending\"}"], 1.0);
    assert_eq!(m["nestbox_tasks{status=\"reported\"}"], 0.0);
    assert_eq!(m["nestbox_task_store_up{store=\"tasks\"}"], 1.0);
    let count = |route: &str, status: &str| {
        m.get(&format!(
            "nestbox_http_request_duration_seconds_count{{method=\"GET\",route=\"{route}\",status=\"{status}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    assert_eq!(count("/tasks/view/{task_id}", "200"), 3.0, "{m:#?}");
    assert_eq!(count("/cuckoo/status", "401"), 1.0, "{m:#?}");
    assert_eq!(count("/apiv2/tasks/view/{id}/", "200"), 1.0, "{m:#?}");
    assert_eq!(count("/health", "200"), 1.0);
    // Cuckoo checks its token before routing, so unknown paths answer 401 here.
    assert!(count("unmatched", "401") >= 2.0, "{m:#?}");
    // No series was named after a request path.
    assert!(
        !m.keys()
            .any(|k| k.contains("passwd") || k.contains("aaaaaaaa"))
    );
    // Buckets are cumulative and end in the count.
    let inf = m["nestbox_http_request_duration_seconds_bucket{method=\"GET\",route=\"/tasks/view/{task_id}\",status=\"200\",le=\"+Inf\"}"];
    assert_eq!(inf, 3.0);
}

#[test]
fn analyses_are_timed_and_logged_as_json_with_task_ids() {
    let s = Server::start(
        "[analysis]\nworkers = 1\npoll_interval_ms = 100\n[sandbox]\nmachinery = \"none\"\n\
         [emulator]\nenabled = false\n[logging]\nformat = \"json\"\n",
    );
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File(
            "file",
            "hello.txt",
            b"hello json logs http://example.com/x",
        )],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["task_id"].as_i64().unwrap();
    s.wait_status(id, "reported");

    let m = samples(&s.get("/metrics").text());
    assert_eq!(
        m["nestbox_task_duration_seconds_count{status=\"reported\"}"],
        1.0
    );
    assert_eq!(
        m["nestbox_stage_duration_seconds_count{stage=\"static\"}"],
        1.0
    );
    assert_eq!(
        m["nestbox_stage_duration_seconds_count{stage=\"reporting\"}"],
        1.0
    );
    for analyzer in ["hashes", "filetype", "strings", "documents"] {
        assert_eq!(
            m[&format!("nestbox_analyzer_duration_seconds_count{{analyzer=\"{analyzer}\"}}")],
            1.0
        );
    }
    assert_eq!(m["nestbox_worker_busy{worker=\"worker1\"}"], 0.0);
    let seen = m["nestbox_worker_last_seen_timestamp_seconds{worker=\"worker1\"}"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - seen).abs() < 60.0, "{seen} vs {now}");
    // The heartbeat table behind the cluster-wide view: this box's one worker, alive.
    assert_eq!(m["nestbox_cluster_workers{state=\"alive\"}"], 1.0);
    assert_eq!(m["nestbox_cluster_workers{state=\"dead\"}"], 0.0);
    let workers = s.get("/health/workers");
    assert_eq!(workers.status, 200, "{}", workers.text());
    let workers = workers.json();
    assert_eq!(workers["alive"], 1, "{workers}");
    assert_eq!(workers["workers"][0]["name"], "worker1");
    assert_eq!(workers["workers"][0]["node"], "");
    assert_eq!(workers["workers"][0]["alive"], true);

    // Every log line is one JSON object; the analysis' events carry the task id.
    let deadline = Instant::now() + Duration::from_secs(10);
    let finished = loop {
        let lines = s.log_lines();
        let events: Vec<Value> = lines
            .iter()
            // The generated admin password is printed for a human, not logged.
            .filter(|l| !l.starts_with("*** first admin user"))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if let Some(e) = events.iter().find(|e| e["message"] == "analysis finished") {
            break e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no 'analysis finished' event in {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(finished["span"]["task_id"], id, "{finished}");
    assert_eq!(finished["span"]["worker"], "worker1");
    assert_eq!(finished["status"], "reported");
    assert_eq!(finished["level"], "INFO");
    assert!(finished["timestamp"].is_string());
    let listening = s
        .log_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["message"] == "nestbox listening")
        .unwrap();
    assert!(
        listening["addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}
