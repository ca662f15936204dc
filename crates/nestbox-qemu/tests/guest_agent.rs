//! nestbox's guest agent against the agent checklist: Cuckoo items 71–83 and CAPE items
//! 38–40, then the whole host sequence (`guest::run`) against it with a real analyzer
//! script that reports completion from inside, as an analyzer in a guest does.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use nestbox_qemu::agent::{AgentClient, Field};
use nestbox_qemu::guest_agent::{Agent, Dialect};
use serde_json::json;

fn start(dialect: Dialect, host: &str) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind(format!("{host}:0")).unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || Agent::new(dialect).serve(l));
    (addr, h)
}

fn client(addr: SocketAddr) -> AgentClient {
    AgentClient::new(addr, Duration::from_secs(10))
}

/// A raw request from a chosen source address (pinning tests); the reply bytes.
fn raw_from(src: Ipv4Addr, dst: SocketAddr, req: &str) -> Vec<u8> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(src, 0)),
    )
    .unwrap();
    let SocketAddr::V4(d) = dst else { panic!("v4") };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(d)).unwrap();
    let mut s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn cuckoo_agent_checklist_71_to_83() {
    let (addr, handle) = start(Dialect::Cuckoo, "127.0.0.1");
    let a = client(addr);
    let d = tempfile::tempdir().unwrap();
    let dp = d.path().to_string_lossy().into_owned();
    // [71]
    let r = a.get("/").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "Cuckoo Agent!");
    assert_eq!(r.json()["version"], "0.10");
    assert_eq!(r.json()["features"].as_array().unwrap().len(), 5);
    // [72]
    let r = a.get("/status").unwrap().json();
    assert_eq!(
        (r["status"].clone(), r["description"].clone()),
        (json!(null), json!(null))
    );
    let r = a
        .post(
            "/status",
            &[
                Field::text("status", "complete"),
                Field::text("description", "True"),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(a.get("/status").unwrap().json()["status"], "complete");
    // [73]
    let r = a
        .post("/status", &[Field::text("description", "x")])
        .unwrap();
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"message": "No status has been provided", "error_code": 400})
        )
    );
    // [74]
    for p in ["/nosuch", "/status?x=1", "/status/"] {
        let r = a.get(p).unwrap();
        assert_eq!(
            (r.status, r.json()),
            (
                404,
                json!({"message": "Route not found", "error_code": 404})
            ),
            "{p}"
        );
    }
    // [75]
    let r = a
        .post("/mkdtemp", &[Field::text("dirpath", dp.clone())])
        .unwrap()
        .json();
    let tmp = r["dirpath"].as_str().unwrap().to_owned();
    assert!(tmp.starts_with(&dp) && std::path::Path::new(&tmp).is_dir());
    let r = a
        .post("/mkdir", &[Field::text("dirpath", tmp.clone())])
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(r.json()["traceback"].is_string());
    // [76]
    let f = format!("{tmp}/stored.bin");
    let r = a
        .post(
            "/store",
            &[
                Field::text("filepath", f.clone()),
                Field::File("file".into(), "x".into(), b"\x00stored\xff".to_vec()),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(std::fs::read(&f).unwrap(), b"\x00stored\xff");
    let r = a
        .post(
            "/store",
            &[
                Field::text("filepath", f.clone()),
                Field::text("file", "plain field"),
            ],
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, json!("No file has been provided"))
    );
    let r = a
        .post(
            "/store",
            &[Field::File("file".into(), "x".into(), b"x".to_vec())],
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, json!("No filepath has been provided"))
    );
    // [77]
    let r = a
        .post("/retrieve", &[Field::text("filepath", f.clone())])
        .unwrap();
    assert_eq!(
        (r.status, r.body.clone()),
        (200, b"\x00stored\xff".to_vec())
    );
    let r = a
        .post(
            "/retrieve",
            &[Field::text("filepath", format!("{tmp}/missing"))],
        )
        .unwrap();
    assert_eq!((r.status, r.body.len()), (404, 0));
    // [78]
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("analyzer.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"print('analyzer')\n").unwrap();
    let zip_bytes = z.finish().unwrap().into_inner();
    let r = a
        .post(
            "/extract",
            &[
                Field::text("dirpath", tmp.clone()),
                Field::File("zipfile".into(), "zipfile".into(), zip_bytes),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(std::path::Path::new(&format!("{tmp}/analyzer.py")).exists());
    let r = a
        .post("/extract", &[Field::text("dirpath", tmp.clone())])
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, json!("No zip file has been provided"))
    );
    let r = a
        .post(
            "/extract",
            &[
                Field::text("dirpath", tmp.clone()),
                Field::File("zipfile".into(), "z".into(), b"not a zip".to_vec()),
            ],
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (500, json!("Error extracting zip file"))
    );
    // [80] [81]
    let r = a
        .post(
            "/execute",
            &[
                Field::text("command", "echo out; echo err >&2"),
                Field::text("shell", "1"),
            ],
        )
        .unwrap()
        .json();
    assert_eq!(
        (r["stdout"].clone(), r["stderr"].clone()),
        (json!("out\n"), json!("err\n"))
    );
    let r = a
        .post(
            "/execute",
            &[
                Field::text("command", "true"),
                Field::text("shell", "1"),
                Field::text("async", "1"),
            ],
        )
        .unwrap()
        .json();
    assert_eq!(
        (r["stdout"].clone(), r["stderr"].clone()),
        (json!(null), json!(null))
    );
    let r = a
        .post(
            "/execpy",
            &[Field::text("filepath", format!("{tmp}/analyzer.py"))],
        )
        .unwrap()
        .json();
    assert_eq!(r["stdout"], "analyzer\n");
    // [79]
    let r = a
        .post("/remove", &[Field::text("path", f.clone())])
        .unwrap()
        .json();
    assert_eq!(r["message"], "Successfully deleted file");
    let r = a
        .post("/remove", &[Field::text("path", tmp.clone())])
        .unwrap()
        .json();
    assert_eq!(r["message"], "Successfully deleted directory");
    let r = a
        .post("/remove", &[Field::text("path", tmp.clone())])
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, json!("Path provided does not exist"))
    );
    // [82] pinned to 127.0.0.2: 127.0.0.1 gets nothing but may still POST /status.
    let pin = raw_from(
        Ipv4Addr::new(127, 0, 0, 2),
        addr,
        "GET /pinning HTTP/1.0\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&pin).contains("Successfully pinned Agent"));
    let again = raw_from(
        Ipv4Addr::new(127, 0, 0, 2),
        addr,
        "GET /pinning HTTP/1.0\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&again).contains("Agent has already been pinned to an IP!"));
    assert!(a.get("/").is_err(), "no response for another address");
    let r = a
        .post("/status", &[Field::text("status", "complete")])
        .unwrap();
    assert_eq!(
        r.status, 200,
        "the analyzer's status report from 127.0.0.1 still works"
    );
    // [83]
    let bye = raw_from(
        Ipv4Addr::new(127, 0, 0, 2),
        addr,
        "GET /kill HTTP/1.0\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&bye).contains("Quit the Cuckoo Agent"));
    handle.join().unwrap();
}

#[test]
fn cape_agent_checklist_38_to_40() {
    let (addr, _h) = start(Dialect::Cape, "127.0.0.1");
    let a = client(addr);
    // [38]
    let r = a.get("/").unwrap().json();
    let f: Vec<&str> = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for want in ["execpy", "pinning", "subdir_upload"] {
        assert!(f.contains(&want));
    }
    assert_eq!(a.get("/status").unwrap().json()["status"], "init");
    a.post("/status", &[Field::text("status", "complete")])
        .unwrap();
    assert_eq!(a.get("/status").unwrap().json()["status"], "complete");
    let r = a
        .post("/status", &[Field::text("status", "bogus")])
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (400, json!(400))
    );
    let r = a.get("/nosuch").unwrap();
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"message": "Route not found", "error_code": 404})
        )
    );
    // [39] parents are created (subdir_upload).
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("7/sample.exe").to_string_lossy().into_owned();
    let content: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    a.post(
        "/store",
        &[
            Field::text("filepath", p.clone()),
            Field::File("file".into(), "sample.bin".into(), content.clone()),
        ],
    )
    .unwrap();
    let r = a.post("/retrieve", &[Field::text("filepath", p)]).unwrap();
    assert_eq!(r.body, content);
    let r = a
        .post(
            "/retrieve",
            &[Field::text(
                "filepath",
                d.path().join("none").to_string_lossy().into_owned(),
            )],
        )
        .unwrap();
    assert_eq!((r.status, r.body.len()), (404, 0));
    // [40] the second pin is refused.
    assert_eq!(a.get("/pinning").unwrap().status, 200);
    let r = a.get("/pinning").unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (500, json!("Agent has already been pinned to an IP!"))
    );
}

#[test]
fn the_host_sequence_runs_an_analyzer_through_our_agent() {
    use nestbox_qemu::guest::{self, AnalysisSpec};
    use nestbox_types::Timestamp;
    let (addr, _h) = start(Dialect::Cape, "127.0.0.1");
    // The analyzer: reads analysis.conf next to it and reports completion to the agent,
    // as Cuckoo's/CAPE's analyzer does when it is done.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("analyzer.py"),
        format!(
            "import os, urllib.request, urllib.parse\n\
             conf = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'analysis.conf')).read()\n\
             ok = 'category = file' in conf and os.path.exists(conf.split('target = ')[1].split('\\n')[0])\n\
             data = urllib.parse.urlencode({{'status': 'complete', 'description': str(ok)}}).encode()\n\
             urllib.request.urlopen('http://127.0.0.1:{}/status', data)\n",
            addr.port()
        ),
    )
    .unwrap();
    let zip = guest::zip_dir(d.path()).unwrap();
    let id = 900_000 + i64::from(std::process::id() % 90_000);
    let t = common::running_task(id, "s.sh", Timestamp::now());
    let spec = AnalysisSpec {
        task: &t,
        platform: "linux",
        resultserver_ip: "10.0.2.2",
        resultserver_port: 2042,
        analyzer_zip: zip,
        sample: Some(("s.sh", b"#!/bin/sh\necho hi\n".to_vec())),
        file_type: "POSIX shell script, ASCII text executable",
        timeout: Duration::from_secs(20),
        critical: Duration::from_secs(5),
        poll: Duration::from_millis(100),
        native: None,
        alive: None,
    };
    let out = guest::run(&client(addr), &spec).unwrap();
    let _ = std::fs::remove_dir_all(format!("/tmp/{id}"));
    assert_eq!(
        (out.status.as_str(), out.description.as_str()),
        ("complete", "True"),
        "{:?}",
        out.log
    );
}
