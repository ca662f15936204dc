//! Spawning a server and talking to it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nestbox_core::ports::BlobStore;
use serde_json::Value;

/// A running server.
pub struct Server {
    pub base: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    agent: ureq::Agent,
    /// Every line the server wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A multipart part.
pub enum Part<'a> {
    Field(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

/// The strings of a JSON array (other elements and non-arrays give nothing).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The speakeasy venv shared by the tests and `make emulator-venv`.
pub fn speakeasy_venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/speakeasy-venv")
}

pub fn nestbox_bin() -> &'static str {
    env!("CARGO_BIN_EXE_nestbox")
}

impl Server {
    /// Starts a server with extra TOML config lines (data_dir and port are set here).
    pub fn start(extra_config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(dir, extra_config)
    }

    /// Starts a server on an existing data directory (restart tests).
    pub fn start_in(dir: tempfile::TempDir, extra_config: &str) -> Server {
        Server::start_args(dir, extra_config, &[])
    }

    /// Starts a server on an existing data directory with extra `serve` arguments.
    pub fn start_args(dir: tempfile::TempDir, extra_config: &str, args: &[&str]) -> Server {
        let cfg = dir.path().join("nestbox.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = {:?}\n{}\n{}{}",
                data.to_string_lossy(),
                extra_config,
                // A test that names its database or storage keeps it.
                if extra_config.contains("[database]") {
                    String::new()
                } else {
                    database_config(dir.path())
                },
                if extra_config.contains("[storage]") {
                    String::new()
                } else {
                    storage_config(dir.path())
                }
            ),
        )
        .unwrap();
        let mut child = Command::new(nestbox_bin())
            .arg("serve")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("NESTBOX_LOG", "info")
            // Port 0: the kernel picks a free port; the server logs the real address.
            .env("NESTBOX_SERVER__PORT", "0")
            // Every test server shares one speakeasy venv (installed once, git-ignored).
            .env("NESTBOX_EMULATOR__VENV", speakeasy_venv())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning nestbox");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_writer = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("NESTBOX_TEST_LOG").is_some() {
                    eprintln!("[server] {line}");
                }
                log_writer.lock().unwrap().push(line.clone());
                // `addr=…` in text logs, `"addr":"…"` in JSON logs.
                let addr = if let Some(i) = line.find("\"addr\":\"") {
                    line[i + 8..].split('"').next()
                } else if let Some(i) = line.find("addr=") {
                    line[i + 5..].split_whitespace().next()
                } else {
                    None
                };
                if let Some(addr) = addr {
                    if let Some(t) = tx.take() {
                        let _ = t.send(Ok(addr.to_owned()));
                    }
                } else if line.starts_with("nestbox: ") && tx.is_some() {
                    let _ = tx.take().unwrap().send(Err(line));
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(a)) => a,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                match other {
                    Ok(Err(line)) => panic!("server failed to start: {line}"),
                    _ => panic!("server did not start within 60 s"),
                }
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Server {
            base: format!("http://{addr}"),
            dir,
            child: Some(child),
            agent,
            log,
        }
    }

    /// The server's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The server's stderr lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes a blob (`analyses/<id>/dump.pcap`, …) as a worker would leave it, into
    /// whichever store the server uses: its data directory, or its S3 prefix.
    pub fn put_blob(&self, key: &str, bytes: &[u8]) {
        match self.s3_blobs() {
            Some(blobs) => block_on(blobs.put(key, bytes.to_vec())).unwrap(),
            None => {
                let path = self.data().join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
        }
    }

    /// A blob of the server's store, if it is there.
    pub fn get_blob(&self, key: &str) -> Option<Vec<u8>> {
        match self.s3_blobs() {
            Some(blobs) => block_on(blobs.get(key)).unwrap(),
            None => std::fs::read(self.data().join(key)).ok(),
        }
    }

    /// Whether any blob lives under `prefix` (`analyses/<id>/`).
    pub fn has_blobs_under(&self, prefix: &str) -> bool {
        match self.s3_blobs() {
            Some(blobs) => !block_on(blobs.list(prefix)).unwrap().is_empty(),
            None => self.data().join(prefix).exists(),
        }
    }

    /// The server's S3 store seen through the store's own client (`NESTBOX_IT_STORAGE=s3`).
    fn s3_blobs(&self) -> Option<nestbox_store::blob::S3BlobStore> {
        s3_storage().then(|| {
            nestbox_store::blob::S3BlobStore::new(&nestbox_store::blob::S3Settings {
                endpoint: Some(s3_var("NESTBOX_TEST_S3_ENDPOINT")),
                region: Some("us-east-1".into()),
                bucket: s3_var("NESTBOX_TEST_S3_BUCKET"),
                path_style: true,
                prefix: s3_prefix(self.dir.path()),
                part_size: 5 << 20,
                scratch_dir: self.dir.path().join("s3-scratch"),
                ..Default::default()
            })
            .unwrap()
        })
    }

    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let call = || {
            let mut req = self.agent.get(format!("{}{}", self.base, path));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        };
        // A GET on a pooled connection the server has just closed (it may close one whose
        // previous request body it did not read, as hyper does after an early answer) is
        // sent again once, as urllib3 and browsers do for idempotent requests; ureq does
        // not. Only transport errors are retried, never an HTTP answer.
        match call() {
            Err(ureq::Error::Io(_)) => into_resp(call()),
            r => into_resp(r),
        }
    }

    pub fn request(&self, method: &str, path: &str) -> Resp {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .body(())
            .unwrap();
        into_resp(self.agent.run(req))
    }

    pub fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        into_resp(self.agent.run(req.body(()).unwrap()))
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let req = self.agent.post(format!("{}{}", self.base, path));
        into_resp(req.send_form(fields.iter().copied()))
    }

    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .agent
            .post(format!("{}{}", self.base, path))
            .header("Content-Type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        into_resp(req.send(body))
    }

    pub fn post_multipart(&self, path: &str, parts: &[Part<'_>]) -> Resp {
        self.post_multipart_with(path, parts, &[])
    }

    pub fn post_multipart_with(
        &self,
        path: &str,
        parts: &[Part<'_>],
        headers: &[(&str, &str)],
    ) -> Resp {
        let (ctype, body) = multipart(parts);
        self.post_raw(path, &ctype, &body, headers)
    }

    /// Submits a file; returns the task id.
    pub fn submit_file(&self, name: &str, content: &[u8]) -> i64 {
        let r = self.post_multipart("/tasks/create/file", &[Part::File("file", name, content)]);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["task_id"].as_i64().expect("task_id")
    }

    /// Polls `tasks/view` until the task reaches `status` (panics after 60 s).
    pub fn wait_status(&self, id: i64, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/tasks/view/{id}"));
            if r.status == 200 {
                let t = r.json()["task"].clone();
                if t["status"] == status {
                    return t;
                }
                assert!(
                    !t["status"].as_str().unwrap_or("").starts_with("failed"),
                    "task {id} failed: {t}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server hard (SIGKILL) and hands back its directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn into_resp(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let r = r.expect("HTTP request failed");
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    r.into_body()
        .into_with_config()
        .limit(1 << 30)
        .reader()
        .read_to_end(&mut body)
        .unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

/// Encodes a multipart/form-data body.
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----nestboxtestboundary8b1c";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match p {
            Part::Field(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File(name, filename, content) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(content);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Every file under a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Runs `cmd` to the end and returns its output; panics with its stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command and returns its stdout, panicking with a clear message if the tool is
/// missing (CI installs the reference tools; a missing one must fail, not skip).
pub fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("reference tool `{cmd}` is required ({e}); apt-get install it"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a future to completion on a throw-away runtime (the tests are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// With `NESTBOX_IT_DATABASE=postgres` (make test-pg), every server of the suite runs on
/// its own PostgreSQL database of the `tests/pg/with-pg.sh` server instead of SQLite: the
/// same tests, the other engine. A restarted server keeps the database of the
/// configuration it had (so it finds its data again).
fn database_config(dir: &Path) -> String {
    if std::env::var("NESTBOX_IT_DATABASE").as_deref() != Ok("postgres") {
        return String::new();
    }
    let url = pg_url_of(dir).unwrap_or_else(|| pg_database("it"));
    format!("\n[database]\nurl = {url:?}\n")
}

/// With `NESTBOX_IT_STORAGE=s3` (make pg, under tests/s3/weed.sh), every server keeps its
/// samples and artifacts in the SeaweedFS bucket instead of the local store, under a
/// prefix named after its test directory (so a restarted server finds them again).
fn storage_config(dir: &Path) -> String {
    if !s3_storage() {
        return String::new();
    }
    format!(
        "\n[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = {:?}\nbucket = {:?}\n\
         prefix = {:?}\npart_size_mb = 5\n",
        s3_var("NESTBOX_TEST_S3_ENDPOINT"),
        s3_var("NESTBOX_TEST_S3_BUCKET"),
        s3_prefix(dir),
    )
}

fn s3_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run under tests/s3/weed.sh"))
}

/// The S3 prefix of the server in test directory `dir`: one per directory, so servers
/// never see each other's blobs and a restarted one finds its own.
fn s3_prefix(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy();
    format!("it-{}-{name}", std::process::id())
}

/// Whether this run keeps blobs in S3 (`NESTBOX_IT_STORAGE=s3`). The few tests that look
/// into the local store's directories directly check this and say they are skipped.
pub fn s3_storage() -> bool {
    std::env::var("NESTBOX_IT_STORAGE").as_deref() == Ok("s3")
}

/// The PostgreSQL URL in the test directory's nestbox.toml, if any.
fn pg_url_of(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("nestbox.toml")).ok()?;
    let line = text.lines().find(|l| l.starts_with("url = \"postgres"))?;
    Some(line["url = ".len()..].trim_matches('"').to_owned())
}

/// A fresh database on the test PostgreSQL server (panics without one).
pub fn pg_database(hint: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(nestbox_store::testsuite::pg_test_database(hint))
        .expect("NESTBOX_TEST_PG_URL (run under tests/pg/with-pg.sh)")
}

/// The task store the server of `s` uses, opened from this process.
pub async fn open_store(s: &Server) -> std::sync::Arc<dyn nestbox_core::ports::TaskRepo> {
    match pg_url_of(s.dir.path()) {
        Some(url) => {
            std::sync::Arc::new(nestbox_store::postgres::PgRepo::open(&url).await.unwrap())
        }
        None => std::sync::Arc::new(
            nestbox_store::sqlite::SqliteRepo::open(&s.data().join("nestbox.db"))
                .await
                .unwrap(),
        ),
    }
}

#[allow(dead_code)]
pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// Claims the next task from outside the server process, as a worker node would (the
/// server and this test share the database). Returns the claimed task id.
pub fn claim_externally(s: &Server, worker: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repo = open_store(s).await;
        let (task, _machine) = repo
            .claim(worker, nestbox_store::testsuite::lease())
            .await
            .unwrap()
            .expect("a task to claim");
        task.id.0
    })
}
