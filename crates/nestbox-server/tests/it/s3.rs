//! The server on an S3 bucket: a real S3 server (SeaweedFS) started by `tests/s3/run.sh`
//! (`make s3-test`), which passes its address in `NESTBOX_TEST_S3_*` and the credentials
//! in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` and runs these ignored tests.
//!
//! A sample goes in through the Cuckoo API, is detonated in the ns sandbox (so there is a
//! pcap and a dropped file), and every download is served from the bucket; the bucket is
//! read back with the store's own client to prove the bytes live there and not in
//! `data_dir`. The tests that also need PostgreSQL (`migrate` into a bucket, API and
//! worker nodes sharing only PostgreSQL and the bucket) get it from tests/pg/with-pg.sh,
//! which tests/s3/run.sh wraps around them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nestbox_core::ports::BlobStore;
use nestbox_store::blob::{S3BlobStore, S3Settings};
use sha2::{Digest, Sha256};

use crate::harness::{Part, Server, block_on, files_under};

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: the S3 tests run through `make s3-test`"))
}

/// A fresh prefix in the test bucket, so runs and tests never see each other's objects.
fn fresh_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("it-{test}-{}-{nanos}", std::process::id())
}

fn storage_toml(bucket: &str, prefix: &str) -> String {
    format!(
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = {:?}\nbucket = {bucket:?}\n\
         prefix = {prefix:?}\npart_size_mb = 5\n",
        var("NESTBOX_TEST_S3_ENDPOINT")
    )
}

/// The same bucket and prefix through the store's client, as a second node would see it.
fn reader(prefix: &str, scratch: &std::path::Path) -> S3BlobStore {
    S3BlobStore::new(&S3Settings {
        endpoint: Some(var("NESTBOX_TEST_S3_ENDPOINT")),
        region: Some("us-east-1".into()),
        bucket: var("NESTBOX_TEST_S3_BUCKET"),
        path_style: true,
        prefix: prefix.to_owned(),
        part_size: 5 << 20,
        scratch_dir: scratch.to_owned(),
        ..S3Settings::default()
    })
    .unwrap()
}

#[test]
#[ignore = "needs a real S3 server: make s3-test"]
fn cuckoo_submit_detonate_and_download_from_s3() {
    let bucket = var("NESTBOX_TEST_S3_BUCKET");
    let prefix = fresh_prefix("cuckoo");
    let s = Server::start(&format!(
        "{}[analysis]\nworkers = 1\n[sandbox]\nslots = 1\nuid_base = 290000\n[emulator]\nenabled = false\n",
        storage_toml(&bucket, &prefix)
    ));
    let ready = s.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["blob_store"], "ok");

    // A script that drops a file and talks to the network sink (for a pcap), padded past
    // one multipart part so the sample itself goes up in parts.
    let mut script = b"#!/bin/bash\n\
        echo 'dropped by the sample' > /tmp/dropped.txt\n\
        getent hosts s3.example.test > /tmp/resolved.txt\n\
        exit 0\n"
        .to_vec();
    script.extend(std::iter::repeat_n(b'#', 6 << 20));
    script.push(b'\n');
    let sha256 = hex(&Sha256::digest(&script));
    let r = s.post_multipart(
        "/tasks/create/file",
        &[
            Part::File("file", "dropper.sh", &script),
            Part::Field("timeout", "20"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["task_id"].as_i64().unwrap();
    s.wait_status(id, "reported");

    let report = s.get(&format!("/tasks/report/{id}"));
    assert_eq!(report.status, 200);
    let report = report.json();
    assert_eq!(report["target"]["file"]["sha256"], sha256.as_str());
    // The static stage and the detonation share one download of the sample.
    let fetches: Vec<String> = s
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("sample fetched"))
        .collect();
    assert_eq!(fetches.len(), 1, "{fetches:#?}");
    assert!(fetches[0].contains(&format!("task_id={id}")), "{fetches:?}");
    assert_eq!(
        report["info"]["machine"]["manager"], "ns",
        "{}",
        report["debug"]
    );
    let dropped = report["dropped"].as_array().unwrap();
    let ours = dropped
        .iter()
        .find(|d| d["filepath"] == "/tmp/dropped.txt")
        .unwrap_or_else(|| panic!("no dropped file: {dropped:?}"));

    // Downloads, each streamed from the bucket.
    let sample = s.get(&format!("/files/get/{sha256}"));
    assert_eq!(sample.status, 200);
    assert_eq!(sample.body, script, "the sample comes back byte for byte");
    let pcap = s.get(&format!("/pcap/get/{id}"));
    assert_eq!(pcap.status, 200);
    assert_eq!(&pcap.body[..4], &0xa1b2_c3d4u32.to_le_bytes());
    assert!(String::from_utf8_lossy(&pcap.body).contains("s3"));
    let tar = s.get(&format!("/tasks/report/{id}/dropped?tar=tar"));
    assert_eq!(tar.status, 200);
    assert!(String::from_utf8_lossy(&tar.body).contains("dropped by the sample"));
    let all = s.get(&format!("/tasks/report/{id}/all?tar=tar"));
    assert_eq!(all.status, 200);
    let names = tar_names(&all.body);
    for want in ["reports/report.json", "dump.pcap", "task.json", "binary"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let cape_pcap = s.get(&format!("/apiv2/tasks/get/pcap/{id}/"));
    assert_eq!(cape_pcap.status, 200);
    assert_eq!(cape_pcap.body, pcap.body);

    // The bytes live in the bucket, not in data_dir.
    let scratch = tempfile::tempdir().unwrap();
    let bucket_view = reader(&prefix, scratch.path());
    let keys = block_on(bucket_view.list("")).unwrap();
    let sample_key = nestbox_core::keys::sample(&sha256);
    let dropped_key = format!("analyses/{id}/{}", ours["path"].as_str().unwrap());
    for want in [
        sample_key.clone(),
        format!("analyses/{id}/reports/report.json"),
        format!("analyses/{id}/reports/report.html"),
        format!("analyses/{id}/dump.pcap"),
        dropped_key.clone(),
    ] {
        assert!(keys.contains(&want), "{want} not in the bucket: {keys:?}");
    }
    let stored = block_on(bucket_view.get(&dropped_key)).unwrap().unwrap();
    assert_eq!(stored, b"dropped by the sample\n");
    let leftovers: Vec<_> = files_under(&s.data())
        .into_iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            p.contains("/store/") || p.contains("/analyses/")
        })
        .collect();
    assert!(leftovers.is_empty(), "blobs written locally: {leftovers:?}");

    // Deleting the task deletes its folder in the bucket; the sample stays.
    assert_eq!(s.get(&format!("/tasks/delete/{id}")).status, 200);
    let keys = block_on(bucket_view.list("")).unwrap();
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(&format!("analyses/{id}/"))),
        "{keys:?}"
    );
    assert!(keys.contains(&sample_key));

    // The metrics saw the analysis.
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains("nestbox_task_duration_seconds_count{status=\"reported\"} 1"),
        "{metrics}"
    );
}

#[test]
#[ignore = "needs a real S3 server: make s3-test"]
fn a_missing_bucket_is_not_ready() {
    let s = Server::start(&format!(
        "{}[analysis]\nworkers = 0\n",
        storage_toml("nestbox-no-such-bucket", &fresh_prefix("missing"))
    ));
    assert_eq!(s.get("/health").status, 200);
    let r = s.get("/ready");
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["checks"]["database"], "ok");
    assert_ne!(v["checks"]["blob_store"], "ok");
    // Uploads fail cleanly (an error answer, no task) rather than hang or crash.
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "x.bin", b"nothing to see")],
    );
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert_eq!(s.get("/health").status, 200, "still up");
}

/// The entry names of a tar.
fn tar_names(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `nestbox migrate` of a single box into a bucket (rows into PostgreSQL): every sample
/// and analysis file is served from the bucket afterwards; a second run after a lost
/// object copies only that one. Needs tests/pg/with-pg.sh too (tests/s3/run.sh).
#[test]
#[ignore = "needs a real S3 server and PostgreSQL: make s3-test"]
fn migrate_a_single_box_into_a_bucket() {
    let bucket = var("NESTBOX_TEST_S3_BUCKET");
    let prefix = fresh_prefix("migrate");
    let scratch = tempfile::tempdir().unwrap();
    let bucket_view = reader(&prefix, scratch.path());
    crate::migrate::migrate_and_compare(&storage_toml(&bucket, &prefix), |data, key| {
        block_on(bucket_view.delete_prefix(key)).unwrap();
        // Nothing was written to the new data dir but the scratch space and the secret.
        assert!(crate::migrate::local_blobs(data).is_empty());
    });
}

/// One API node and three worker nodes as separate processes that share nothing but
/// PostgreSQL and the bucket (each has its own data dir): tasks submitted concurrently
/// to the API node are each analysed exactly once, by more than one node, and every
/// report, analysis file and sample is downloadable through the API node. No node
/// keeps a blob in its data dir.
#[test]
#[ignore = "needs a real S3 server and PostgreSQL: make s3-test"]
fn api_and_worker_nodes_share_only_postgres_and_s3() {
    use crate::cluster::{Worker, analyses_started};
    use std::collections::BTreeMap;

    const TASKS: usize = 60;
    let bucket = var("NESTBOX_TEST_S3_BUCKET");
    let prefix = fresh_prefix("nodes");
    let url = crate::harness::pg_database("nodes");
    let shared = format!(
        "[analysis]\nworkers = 2\npoll_interval_ms = 200\n[sandbox]\nmachinery = \"none\"\n\
         [cluster]\nlease_secs = 3\nprobe_listen = \"127.0.0.1:0\"\n\
         [database]\nurl = {url:?}\n{}",
        storage_toml(&bucket, &prefix)
    );
    let api = Server::start_args(tempfile::tempdir().unwrap(), &shared, &["--role", "api"]);
    let nodes: Vec<(tempfile::TempDir, Worker)> = ["n1", "n2", "n3"]
        .iter()
        .map(|node| {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            std::fs::write(
                dir.path().join("nestbox.toml"),
                format!("data_dir = {:?}\n{shared}", data.to_string_lossy()),
            )
            .unwrap();
            let worker = Worker::start(dir.path(), node);
            (dir, worker)
        })
        .collect();

    // Submitted concurrently, each sample distinct.
    let submitted: Vec<(i64, Vec<u8>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let api = &api;
                scope.spawn(move || {
                    (t..TASKS)
                        .step_by(4)
                        .map(|n| {
                            let body = crate::migrate::noise(2000 + n * 37, n as u64 + 7);
                            (api.submit_file(&format!("n{n}.bin"), &body), body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    assert_eq!(submitted.len(), TASKS);
    for (id, _) in &submitted {
        api.wait_status(*id, "reported");
    }

    // Exactly once, by the worker logs; shared between the nodes.
    let mut started: BTreeMap<i64, usize> = BTreeMap::new();
    let mut busy = 0;
    for (_, w) in &nodes {
        let ids = analyses_started(&w.log);
        busy += usize::from(!ids.is_empty());
        for id in ids {
            *started.entry(id).or_default() += 1;
        }
    }
    for (id, _) in &submitted {
        assert_eq!(started.get(id), Some(&1), "task {id}: {started:?}");
    }
    assert_eq!(started.len(), TASKS, "{started:?}");
    assert!(busy >= 2, "only {busy} worker node(s) analysed anything");

    // Everything a worker wrote is served by the API node, from the bucket.
    for (id, body) in &submitted {
        let sha256 = hex(&Sha256::digest(body));
        let report = api.get(&format!("/tasks/report/{id}"));
        assert_eq!(report.status, 200, "{}", report.text());
        assert_eq!(report.json()["target"]["file"]["sha256"], sha256.as_str());
        let sample = api.get(&format!("/files/get/{sha256}"));
        assert_eq!(sample.status, 200);
        assert_eq!(&sample.body, body);
        let html = api.get(&format!("/tasks/report/{id}/html"));
        assert_eq!(html.status, 200, "{}", html.text());
        let all = api.get(&format!("/tasks/report/{id}/all?tar=tar"));
        assert_eq!(all.status, 200);
        let names = tar_names(&all.body);
        for want in ["reports/report.json", "reports/report.html", "task.json"] {
            assert!(
                names.iter().any(|n| n == want),
                "{id}: {want} not in {names:?}"
            );
        }
    }
    // Each worker node answers probes on its own listener; the API node shows every
    // node's workers from the heartbeat table.
    let probe = |w: &Worker| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(&w.log).unwrap_or_default();
            if let Some(i) = log.find("probe_addr=") {
                let addr = log[i + "probe_addr=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap();
                return format!("http://{addr}");
            }
            assert!(Instant::now() < deadline, "no probe listener in {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent();
    let fetch = |url: String| -> (u16, String) {
        let mut r = agent.get(&url).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    for (_, w) in &nodes {
        let base = probe(w);
        assert_eq!(fetch(format!("{base}/health")).0, 200);
        let (status, ready) = fetch(format!("{base}/ready"));
        assert_eq!(status, 200, "{ready}");
        let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
        assert_eq!(ready["checks"]["database"], "ok");
        assert_eq!(ready["checks"]["blob_store"], "ok");
        let (status, metrics) = fetch(format!("{base}/metrics"));
        assert_eq!(status, 200);
        assert!(
            metrics.contains("nestbox_cluster_workers{state=\"alive\"} 6"),
            "{metrics}"
        );
        // Only the API is missing: a probe port is no API port.
        assert_eq!(fetch(format!("{base}/tasks/list")).0, 404);
    }
    let workers = api.get("/health/workers").json();
    assert_eq!(workers["alive"], 6, "{workers}");
    let names: Vec<&str> = workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "n1/worker1",
            "n1/worker2",
            "n2/worker1",
            "n2/worker2",
            "n3/worker1",
            "n3/worker2"
        ]
    );
    // Killed: its rows stay and turn dead after three missed beats (1 s each here).
    // Stopped cleanly: its rows go.
    let mut nodes = nodes;
    nodes[2].1.kill();
    nodes[1].1.terminate();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let w = api.get("/health/workers").json();
        let rows = w["workers"].as_array().unwrap();
        let state: Vec<(&str, bool)> = rows
            .iter()
            .map(|r| (r["name"].as_str().unwrap(), r["alive"].as_bool().unwrap()))
            .collect();
        let want = [
            ("n1/worker1", true),
            ("n1/worker2", true),
            ("n3/worker1", false),
            ("n3/worker2", false),
        ];
        if state == want {
            assert_eq!(
                (w["alive"].as_u64(), w["dead"].as_u64()),
                (Some(2), Some(2))
            );
            break;
        }
        assert!(Instant::now() < deadline, "{w}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = api.get("/metrics").text();
    assert!(
        metrics.contains("nestbox_cluster_workers{state=\"dead\"} 2"),
        "{metrics}"
    );

    // No node kept a blob of its own.
    let mut dirs: Vec<std::path::PathBuf> =
        nodes.iter().map(|(d, _)| d.path().join("data")).collect();
    dirs.push(api.data());
    for d in dirs {
        assert!(
            crate::migrate::local_blobs(&d).is_empty(),
            "blobs in {}",
            d.display()
        );
    }
}
