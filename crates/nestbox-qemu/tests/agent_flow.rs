//! The host's request sequence against fake Cuckoo (0.10) and CAPE (0.22) agents that
//! record every request: checklist items cuckoo.md 84–85 and cape.md 41, plus the
//! failure paths (legacy agent, a guest that never answers, one that accepts and hangs).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nestbox_qemu::agent::AgentClient;
use nestbox_qemu::guest::{self, AnalysisSpec, GuestError};
use nestbox_types::{Task, Timestamp};
use serde_json::{Value, json};

/// One recorded request: `METHOD /path`, plain fields, file parts as (field, filename, bytes).
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    fields: BTreeMap<String, String>,
    files: Vec<(String, String, Vec<u8>)>,
}

#[derive(Clone, Copy)]
enum Kind {
    Cuckoo,
    Cape,
    Legacy,
    NoExecpy,
}

fn read_request(s: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: ").map(str::to_owned))
        .unwrap_or_default();
    Some((head, ctype, body))
}

fn parse_form(ctype: &str, body: &[u8], seen: &mut Seen) {
    if let Some(b) = ctype.strip_prefix("multipart/form-data; boundary=") {
        let delim = format!("--{b}");
        let text = body.to_vec();
        let parts = split(&text, delim.as_bytes());
        for p in parts {
            let Some(i) = p.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let headers = String::from_utf8_lossy(&p[..i]).into_owned();
            let mut data = p[i + 4..].to_vec();
            if data.ends_with(b"\r\n") {
                data.truncate(data.len() - 2);
            }
            let name = between(&headers, "name=\"", "\"").unwrap_or_default();
            match between(&headers, "filename=\"", "\"") {
                Some(f) => seen.files.push((name, f, data)),
                None => {
                    seen.fields
                        .insert(name, String::from_utf8_lossy(&data).into_owned());
                }
            }
        }
    } else {
        for kv in String::from_utf8_lossy(body)
            .split('&')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            seen.fields.insert(k.to_owned(), decode(v));
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn between(h: &str, a: &str, b: &str) -> Option<String> {
    let i = h.find(a)? + a.len();
    let j = h[i..].find(b)? + i;
    Some(h[i..j].to_owned())
}

fn split(data: &[u8], delim: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= data.len() {
        if &data[i..i + delim.len()] == delim {
            if i > start {
                out.push(data[start..i].to_vec());
            }
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.into_iter()
        .map(|p| p.strip_prefix(b"\r\n").map(<[u8]>::to_vec).unwrap_or(p))
        .filter(|p| !p.starts_with(b"--"))
        .collect()
}

/// Starts a fake agent; `complete_after` status polls answer `running` first.
fn fake_agent(kind: Kind, complete_after: usize) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let rec = log.clone();
    std::thread::spawn(move || {
        let mut polls = 0;
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            // The host's TCP probe connects and closes without a request.
            let Some((head, ctype, body)) = read_request(&mut s) else {
                continue;
            };
            let line: String = head
                .lines()
                .next()
                .unwrap()
                .rsplit_once(' ')
                .unwrap()
                .0
                .to_owned();
            let mut seen = Seen {
                line: line.clone(),
                fields: BTreeMap::new(),
                files: Vec::new(),
            };
            parse_form(&ctype, &body, &mut seen);
            rec.lock().unwrap().push(seen);
            let (code, answer) = match (kind, line.as_str()) {
                (Kind::Legacy, _) => (501, json!({})),
                (Kind::Cuckoo, "GET /") => (
                    200,
                    json!({"message": "Cuckoo Agent!", "version": "0.10",
                    "features": ["execpy", "pinning", "logs", "largefile", "unicodepath"]}),
                ),
                (Kind::NoExecpy, "GET /") => (
                    200,
                    json!({"message": "Cuckoo Agent!", "version": "0.7", "features": []}),
                ),
                (Kind::Cape, "GET /") => (
                    200,
                    json!({"message": "CAPE Agent!", "version": "0.22", "is_user_admin": true,
                    "features": ["execpy", "execute", "pinning", "logs", "largefile", "unicodepath", "subdir_upload"]}),
                ),
                (_, "GET /pinning") => (
                    200,
                    json!({"message": "Successfully pinned Agent", "client_ip": "127.0.0.1"}),
                ),
                (_, "GET /environ") => (
                    200,
                    json!({"message": "Environment variables", "environ":
                    {"SYSTEMDRIVE": "C:", "TEMP": "C:\\Users\\John\\AppData\\Local\\Temp"}}),
                ),
                (_, "POST /mkdtemp") => (
                    200,
                    json!({"message": "Successfully created temporary directory", "dirpath": "C:/tmpab12cd"}),
                ),
                (_, "GET /status") => {
                    polls += 1;
                    let st = if polls > complete_after {
                        "complete"
                    } else {
                        "running"
                    };
                    (
                        200,
                        json!({"message": "Analysis status", "status": st, "description": if polls > complete_after { json!("True") } else { Value::Null }}),
                    )
                }
                (
                    _,
                    "POST /mkdir" | "POST /extract" | "POST /store" | "POST /execpy"
                    | "POST /execute",
                ) => (200, json!({"message": "Successfully done"})),
                _ => (
                    404,
                    json!({"message": "Route not found", "error_code": 404}),
                ),
            };
            let _ = s.write_all(
                format!("HTTP/1.0 {code} X\r\nServer: Cuckoo Agent Python/2.7.18\r\n\r\n{answer}")
                    .as_bytes(),
            );
        }
    });
    (addr, log)
}

fn task(options: &str) -> Task {
    // 2017-01-01T10:00:00Z
    let mut t = common::running_task(7, "sample.exe", Timestamp::from_secs(1_483_264_800));
    t.spec.package = "exe".into();
    t.spec.options = nestbox_types::TaskOptions::parse(options);
    t
}

fn spec<'a>(t: &'a Task, deadline: u64) -> AnalysisSpec<'a> {
    AnalysisSpec {
        task: t,
        platform: "windows",
        resultserver_ip: "192.168.56.1",
        resultserver_port: 2042,
        analyzer_zip: b"PK\x05\x06".iter().copied().chain([0u8; 18]).collect(),
        sample: Some(("sample.exe", b"MZ sample bytes".to_vec())),
        file_type: "PE32 executable (GUI) Intel 80386, for MS Windows",
        timeout: Duration::from_secs(deadline),
        critical: Duration::from_secs(1),
        poll: Duration::from_millis(20),
        native: None,
        alive: None,
    }
}

fn lines(log: &Arc<Mutex<Vec<Seen>>>) -> Vec<String> {
    log.lock().unwrap().iter().map(|s| s.line.clone()).collect()
}

#[test]
fn cuckoo_agent_sequence_and_analysis_conf() {
    let (addr, log) = fake_agent(Kind::Cuckoo, 2);
    let t = task("procmemdump=yes");
    let out = guest::run(
        &AgentClient::new(addr, Duration::from_secs(2)),
        &spec(&t, 20),
    )
    .unwrap();
    assert_eq!(out.status, "complete");
    assert_eq!(out.description, "True");
    assert_eq!(out.agent_version, "0.10");
    // [84] the exact sequence.
    assert_eq!(
        lines(&log),
        [
            "GET /",
            "GET /pinning",
            "GET /environ",
            "POST /mkdtemp",
            "POST /extract",
            "POST /store",
            "POST /store",
            "POST /execpy",
            "GET /status",
            "GET /status",
            "GET /status",
        ]
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[3].fields["dirpath"], "C:/");
    assert_eq!(seen[4].fields["dirpath"], "C:/tmpab12cd");
    assert_eq!(seen[4].files[0].0, "zipfile");
    assert_eq!(seen[4].files[0].1, "zipfile");
    assert_eq!(seen[5].fields["filepath"], "C:/tmpab12cd/analysis.conf");
    assert_eq!(
        seen[6].fields["filepath"],
        "C:\\Users\\John\\AppData\\Local\\Temp/sample.exe"
    );
    assert_eq!(
        seen[6].files[0],
        (
            "file".to_owned(),
            "sample.bin".to_owned(),
            b"MZ sample bytes".to_vec()
        )
    );
    assert_eq!(seen[7].fields["filepath"], "C:/tmpab12cd/analyzer.py");
    assert_eq!(seen[7].fields["async"], "yes");
    assert_eq!(seen[7].fields["cwd"], "C:/tmpab12cd");
    // [85] analysis.conf.
    let conf = String::from_utf8(seen[5].files[0].2.clone()).unwrap();
    assert!(conf.starts_with("[analysis]\n"), "{conf}");
    for want in [
        "id = 7",
        "ip = 192.168.56.1",
        "port = 2042",
        "category = file",
        "target = C:\\Users\\John\\AppData\\Local\\Temp/sample.exe",
        "package = exe",
        "options = procmemdump=yes",
        "enforce_timeout = False",
        "clock = 20170101T10:00:00",
        "terminate_processes = False",
        "timeout = 20",
        "file_name = sample.exe",
        "file_type = PE32 executable (GUI) Intel 80386, for MS Windows",
        "pe_exports = ",
    ] {
        assert!(
            conf.lines().any(|l| l == want),
            "{want:?} missing from\n{conf}"
        );
    }
}

#[test]
fn cape_agent_gets_the_sample_in_a_task_subdirectory() {
    let (addr, log) = fake_agent(Kind::Cape, 0);
    let t = task("analpath=tmpcuckooworkdir");
    let out = guest::run(
        &AgentClient::new(addr, Duration::from_secs(2)),
        &spec(&t, 20),
    )
    .unwrap();
    assert_eq!(out.status, "complete");
    // [41] with the analpath option: /mkdir instead of /mkdtemp.
    assert_eq!(
        lines(&log),
        [
            "GET /",
            "GET /pinning",
            "GET /environ",
            "POST /mkdir",
            "POST /extract",
            "POST /store",
            "POST /store",
            "POST /execpy",
            "GET /status"
        ]
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[3].fields["dirpath"], "C:/tmpcuckooworkdir");
    assert_eq!(
        seen[6].fields["filepath"],
        "C:\\Users\\John\\AppData\\Local\\Temp\\7\\sample.exe"
    );
}

#[test]
fn an_agent_without_execpy_gets_execute() {
    let (addr, log) = fake_agent(Kind::NoExecpy, 0);
    let t = task("");
    guest::run(
        &AgentClient::new(addr, Duration::from_secs(2)),
        &spec(&t, 20),
    )
    .unwrap();
    let l = lines(&log);
    assert_eq!(
        l[..3],
        ["GET /", "GET /environ", "POST /mkdtemp"],
        "no pinning offered"
    );
    let exec = log.lock().unwrap()[6].clone();
    assert_eq!(exec.line, "POST /execute");
    assert_eq!(
        exec.fields["command"],
        "C:\\Python27\\pythonw.exe C:/tmpab12cd\\analyzer.py"
    );
}

#[test]
fn a_legacy_agent_is_refused_with_a_clear_error() {
    let (addr, _) = fake_agent(Kind::Legacy, 0);
    let t = task("");
    let e = guest::run(
        &AgentClient::new(addr, Duration::from_secs(2)),
        &spec(&t, 20),
    )
    .unwrap_err();
    assert!(e.to_string().contains("legacy XML-RPC agent"), "{e}");
}

#[test]
fn a_guest_that_never_answers_times_out() {
    // Nothing listens: the wait loop gives up at timeout + critical.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let t = task("");
    let started = std::time::Instant::now();
    let e = guest::run(
        &AgentClient::new(free, Duration::from_millis(200)),
        &spec(&t, 1),
    )
    .unwrap_err();
    assert!(matches!(e, GuestError::Unreachable(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Something accepts but never speaks (slirp's forward before the guest listens): it is
    // not an agent yet, retried until the deadline instead of hanging.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    let e = guest::run(
        &AgentClient::new(addr, Duration::from_millis(300)),
        &spec(&t, 1),
    )
    .unwrap_err();
    assert!(matches!(e, GuestError::Unreachable(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn analyzer_zip_is_stored_and_relative() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("modules/packages")).unwrap();
    std::fs::write(d.path().join("analyzer.py"), "print('hi')\n").unwrap();
    std::fs::write(d.path().join("modules/packages/exe.py"), "x = 1\n").unwrap();
    let z = guest::zip_dir(d.path()).unwrap();
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
    let mut names: Vec<String> = (0..a.len())
        .map(|i| a.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["analyzer.py", "modules/packages/exe.py"]);
    assert_eq!(
        a.by_index(0).unwrap().compression(),
        zip::CompressionMethod::Stored
    );
}
