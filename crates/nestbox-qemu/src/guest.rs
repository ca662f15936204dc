//! The host side of an analysis in a guest: Cuckoo's and CAPE's `GuestManager`.
//!
//! The exact request sequence of Cuckoo 2.0.7 (spec cuckoo.md §7.3, checklist 84–85) and
//! CAPEv2 (cape.md §7, checklist 41): wait for the agent's TCP port, `GET /`, `GET
//! /pinning` when offered, `GET /environ`, `POST /mkdtemp` (or `/mkdir` with the
//! `analpath` option), `POST /extract` (the analyzer zip), `POST /store` analysis.conf,
//! `POST /store` the sample (CAPE agents with `subdir_upload` get it under
//! `<TEMP>\<task id>\`), `POST /execpy` (async; `/execute` when the agent lacks
//! `execpy`), then `GET /status` about once a second until `complete`, `exception` or
//! `failed`, or until timeout + critical. Which dialect is spoken follows from what the
//! agent says it supports, so operators' existing images work unchanged.

use std::time::{Duration, Instant};

use nestbox_types::Task;

use crate::agent::{AgentClient, Field};

/// What to run and how long.
pub struct AnalysisSpec<'a> {
    /// The task.
    pub task: &'a Task,
    /// `windows` or `linux`: path conventions inside the guest.
    pub platform: &'a str,
    /// Result server address the guest's analyzer reports to.
    pub resultserver_ip: &'a str,
    /// Result server port.
    pub resultserver_port: i64,
    /// The analyzer package (a zip of `analyzer/<platform>/`).
    pub analyzer_zip: Vec<u8>,
    /// The sample: its name on the client and its bytes (file tasks).
    pub sample: Option<(&'a str, Vec<u8>)>,
    /// libmagic description of the sample (`file_type` in analysis.conf).
    pub file_type: &'a str,
    /// The analysis timeout.
    pub timeout: Duration,
    /// Grace on top of it (Cuckoo's `[timeouts] critical`).
    pub critical: Duration,
    /// Interval of the `/status` poll (Cuckoo: 1 s).
    pub poll: Duration,
    /// A native analyzer in the zip (`nestbox-analyzer`) started with `/execute` instead
    /// of `analyzer.py` with `/execpy` (Linux guests without Python).
    pub native: Option<&'a str>,
    /// Whether the VM is still running; waiting for an agent in a dead VM ends at once.
    pub alive: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// How the analysis in the guest ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `complete`, `exception`, `failed`, or `timeout` when the deadline passed first.
    pub status: String,
    /// The agent's description of the final status.
    pub description: String,
    /// The agent's version string.
    pub agent_version: String,
    /// The features the agent offered.
    pub features: Vec<String>,
    /// Log lines for `debug.log`.
    pub log: Vec<String>,
    /// The sample's path inside the guest (or the URL): what the analyzer ran.
    pub target: String,
}

/// Why the analysis could not run.
#[derive(Debug)]
pub enum GuestError {
    /// The agent never accepted a connection before the deadline.
    Unreachable(Duration),
    /// The agent answered in a way the host cannot work with.
    Failed(String),
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestError::Unreachable(d) => {
                write!(f, "the guest agent did not answer within {} s", d.as_secs())
            }
            GuestError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GuestError {}

/// `%Y%m%dT%H:%M:%S`, the analyzer's datetime format.
fn clock(t: nestbox_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0)
        .map(|d| d.format("%Y%m%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The `analysis.conf` INI the analyzer reads (Cuckoo's keys plus CAPE's).
pub fn analysis_conf(spec: &AnalysisSpec<'_>, guest_target: &str) -> String {
    let t = &spec.task.spec;
    let file = spec.sample.is_some();
    let mut lines = vec![
        "[analysis]".to_owned(),
        format!("id = {}", spec.task.id),
        format!("ip = {}", spec.resultserver_ip),
        format!("port = {}", spec.resultserver_port),
        format!("category = {}", t.category),
        format!("target = {guest_target}"),
        format!("package = {}", t.package),
        format!("options = {}", t.options.emit()),
        format!(
            "enforce_timeout = {}",
            if t.enforce_timeout { "True" } else { "False" }
        ),
        format!("clock = {}", clock(spec.task.clock)),
        "terminate_processes = False".to_owned(),
        format!("timeout = {}", spec.timeout.as_secs()),
        "upload_max_size = 134217728".to_owned(),
        "do_upload_max_size = 0".to_owned(),
        "enable_trim = 0".to_owned(),
    ];
    if file {
        let name = spec.sample.as_ref().map(|s| s.0).unwrap_or("");
        lines.push(format!("file_name = {}", one_line(name)));
        lines.push(format!("file_type = {}", one_line(spec.file_type)));
        lines.push("pe_exports = ".to_owned());
        lines.push("exports = ".to_owned());
    }
    lines.join("\n") + "\n"
}

/// INI values are one line; a name with a newline must not add keys.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Drives one analysis; blocking (run it on a blocking thread).
pub fn run(agent: &AgentClient, spec: &AnalysisSpec<'_>) -> Result<Outcome, GuestError> {
    let started = Instant::now();
    let limit = spec.timeout + spec.critical;
    let deadline = started + limit;
    let mut log = Vec::new();
    // 1–2. Wait for the agent and ask what it is. A connect alone proves nothing behind
    // slirp (QEMU accepts on the forwarded port before the guest listens), so the wait
    // is for an HTTP answer to `GET /`, polled finer than Cuckoo's 1 s: a guest resumed
    // from a saved state answers in a fraction of a second.
    let dead = || spec.alive.is_some_and(|alive| !alive());
    // A request made while a resumed VM is still loading its state waits for slirp's SYN
    // retransmission; a short first timeout that grows on each miss keeps slow guests
    // working.
    let mut wait = Duration::from_millis(400);
    let hello = loop {
        if dead() {
            return Err(GuestError::Failed(
                "the VM exited before its agent answered".to_owned(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(GuestError::Unreachable(limit));
        }
        if agent.reachable()
            && let Ok(r) = AgentClient::new(agent.addr, wait).get("/")
        {
            break r;
        }
        wait = (wait * 3 / 2).min(Duration::from_secs(5));
        std::thread::sleep(spec.poll.min(Duration::from_millis(100)));
    };
    log.push(format!(
        "agent ready after {:.3} s",
        started.elapsed().as_secs_f64()
    ));
    let fail = |what: &str, e: &dyn std::fmt::Display| GuestError::Failed(format!("{what}: {e}"));
    if hello.status == 501 {
        return Err(GuestError::Failed(
            "the guest runs the legacy XML-RPC agent (Cuckoo ≤ 2.0-rc); install agent.py 0.10+"
                .to_owned(),
        ));
    }
    let info = hello.json();
    if hello.status != 200 || !info.is_object() {
        return Err(GuestError::Failed(format!(
            "GET / answered {} with a body that is not the agent's JSON",
            hello.status
        )));
    }
    let version = info["version"].as_str().unwrap_or("").to_owned();
    let features: Vec<String> = info["features"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let has = |f: &str| features.iter().any(|x| x == f);
    log.push(format!("agent {version} with features {features:?}"));
    let ok = |r: Result<crate::agent::Response, crate::agent::AgentError>, what: &str| {
        let r = r.map_err(|e| fail(what, &e))?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(GuestError::Failed(format!(
                "{what} answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )))
        }
    };
    // 3. Pin the agent to this host.
    if has("pinning") {
        ok(agent.get("/pinning"), "GET /pinning")?;
    }
    // 4. Where things go in the guest.
    let env = ok(agent.get("/environ"), "GET /environ")?.json()["environ"].clone();
    let windows = spec.platform.eq_ignore_ascii_case("windows");
    let sysdrive = if windows {
        format!("{}/", env["SYSTEMDRIVE"].as_str().unwrap_or("C:"))
    } else {
        "/".to_owned()
    };
    let temp = if windows {
        env["TEMP"]
            .as_str()
            .unwrap_or("C:\\Windows\\Temp")
            .to_owned()
    } else {
        "/tmp".to_owned()
    };
    // 5. The analyzer directory.
    let analyzer_dir = match spec.task.spec.options.0.get("analpath") {
        Some(p) => {
            let dir = format!("{sysdrive}{}", p.trim_start_matches(['/', '\\']));
            ok(
                agent.post("/mkdir", &[Field::text("dirpath", dir.clone())]),
                "POST /mkdir",
            )?;
            dir
        }
        None => {
            let r = ok(
                agent.post("/mkdtemp", &[Field::text("dirpath", sysdrive.clone())]),
                "POST /mkdtemp",
            )?;
            r.json()["dirpath"]
                .as_str()
                .ok_or_else(|| GuestError::Failed("POST /mkdtemp gave no dirpath".to_owned()))?
                .to_owned()
        }
    };
    // 6–7. The analyzer and its configuration.
    ok(
        agent.post(
            "/extract",
            &[
                Field::text("dirpath", analyzer_dir.clone()),
                Field::File(
                    "zipfile".into(),
                    "zipfile".into(),
                    spec.analyzer_zip.clone(),
                ),
            ],
        ),
        "POST /extract",
    )?;
    let sep = if windows { "\\" } else { "/" };
    let (guest_target, sample_path) = match &spec.sample {
        Some((name, _)) if has("subdir_upload") => {
            let p = format!("{temp}{sep}{}{sep}{name}", spec.task.id);
            (p.clone(), Some(p))
        }
        Some((name, _)) => {
            let p = format!("{temp}/{name}");
            (p.clone(), Some(p))
        }
        None => (spec.task.spec.target.clone(), None),
    };
    let conf = analysis_conf(spec, &guest_target);
    ok(
        agent.post(
            "/store",
            &[
                Field::text("filepath", format!("{analyzer_dir}/analysis.conf")),
                Field::File("file".into(), "analysis.conf".into(), conf.into_bytes()),
            ],
        ),
        "POST /store analysis.conf",
    )?;
    // 8. The sample.
    if let (Some(path), Some((_, data))) = (&sample_path, &spec.sample) {
        ok(
            agent.post(
                "/store",
                &[
                    Field::text("filepath", path.clone()),
                    Field::File("file".into(), "sample.bin".into(), data.clone()),
                ],
            ),
            "POST /store sample",
        )?;
    }
    // 9. Start the analyzer. A native one through the shell: Python agents extract zips
    // without the execute bit.
    if let Some(exe) = spec.native {
        let path = format!("{analyzer_dir}/{exe}");
        ok(
            agent.post(
                "/execute",
                &[
                    Field::text("command", format!("chmod 755 '{path}' && exec '{path}'")),
                    Field::text("shell", "1"),
                    Field::text("async", "yes"),
                    Field::text("cwd", analyzer_dir.clone()),
                ],
            ),
            "POST /execute",
        )?;
    } else if has("execpy") {
        ok(
            agent.post(
                "/execpy",
                &[
                    Field::text("filepath", format!("{analyzer_dir}/analyzer.py")),
                    Field::text("async", "yes"),
                    Field::text("cwd", analyzer_dir.clone()),
                ],
            ),
            "POST /execpy",
        )?;
    } else {
        let command = if windows {
            format!("C:\\Python27\\pythonw.exe {analyzer_dir}\\analyzer.py")
        } else {
            format!("/usr/bin/python3 {analyzer_dir}/analyzer.py")
        };
        ok(
            agent.post(
                "/execute",
                &[
                    Field::text("command", command),
                    Field::text("async", "yes"),
                    Field::text("cwd", analyzer_dir.clone()),
                ],
            ),
            "POST /execute",
        )?;
    }
    log.push(format!("analyzer started in {analyzer_dir}"));
    // 10. Wait for the analyzer to report completion.
    let status_client = AgentClient::new(agent.addr, Duration::from_secs(5));
    let mut errors = 0;
    loop {
        if Instant::now() >= deadline {
            log.push(format!(
                "end of analysis reached after {} s",
                limit.as_secs()
            ));
            return Ok(Outcome {
                status: "timeout".to_owned(),
                description: String::new(),
                agent_version: version,
                features,
                log,
                target: guest_target,
            });
        }
        std::thread::sleep(spec.poll);
        if dead() {
            return Err(GuestError::Failed(
                "the VM exited during the analysis".to_owned(),
            ));
        }
        match status_client.get("/status") {
            Ok(r) if r.status == 200 => {
                errors = 0;
                let j = r.json();
                let st = j["status"].as_str().unwrap_or("").to_owned();
                if matches!(st.as_str(), "complete" | "exception" | "failed") {
                    let description = match &j["description"] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    log.push(format!("analyzer finished: {st} {description}"));
                    return Ok(Outcome {
                        status: st,
                        description,
                        agent_version: version,
                        features,
                        log,
                        target: guest_target,
                    });
                }
            }
            other => {
                errors += 1;
                let why = match other {
                    Ok(r) => format!("status {}", r.status),
                    Err(e) => e.to_string(),
                };
                log.push(format!("GET /status failed: {why}"));
                // CAPE gives up after ten agent errors in a row.
                if errors > 10 {
                    return Err(GuestError::Failed(format!(
                        "the agent failed {errors} status requests in a row: {why}"
                    )));
                }
            }
        }
    }
}

/// A stored zip (Cuckoo builds the analyzer zip with `ZIP_STORED`) of every file under
/// `dir`, paths relative to it.
pub fn zip_dir(dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    for f in files {
        let rel = f
            .strip_prefix(dir)
            .map_err(std::io::Error::other)?
            .to_string_lossy()
            .replace('\\', "/");
        out.start_file(rel, opts).map_err(std::io::Error::other)?;
        out.write_all(&std::fs::read(&f)?)?;
    }
    Ok(out.finish().map_err(std::io::Error::other)?.into_inner())
}
