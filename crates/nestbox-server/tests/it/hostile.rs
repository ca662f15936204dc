//! Hostile input: nothing written outside the data directory, clear errors, no panics,
//! nothing lost.

use serde_json::json;

use crate::harness::{Part, Server, files_under, s3_storage};

#[test]
fn traversal_names_stay_inside_the_data_dir() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    for name in [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\evil.exe",
        "..",
        "a/../../b",
        "C:\\x\\y.exe",
    ] {
        let r = s.post_multipart(
            "/tasks/create/file",
            &[Part::File("file", name, b"payload")],
        );
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let id = r.json()["task_id"].as_i64().unwrap();
        let target = s.get(&format!("/tasks/view/{id}")).json()["task"]["target"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!target.contains(".."), "{target}");
        if s3_storage() {
            // On S3 the target is the made-safe file name alone.
            assert!(!target.contains(['/', '\\']), "{name} → {target}");
            continue;
        }
        let data = std::fs::canonicalize(s.data()).unwrap();
        let canon = std::fs::canonicalize(&target).unwrap();
        assert!(canon.starts_with(&data), "{name} → {target}");
    }
    // Nothing appeared next to the data dir.
    let outside: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside.len(), 2, "only nestbox.toml and data/: {outside:?}");
}

#[test]
fn oversize_upload_is_413_and_nothing_is_kept() {
    let s = Server::start("[analysis]\nworkers = 0\n[server]\nmax_upload = 1000\n");
    let big = vec![b'A'; 5000];
    let r = s.post_multipart("/tasks/create/file", &[Part::File("file", "big.bin", &big)]);
    assert_eq!(r.status, 413);
    assert!(r.json()["message"].as_str().unwrap().contains("1000"));
    assert_eq!(s.get("/tasks/list").json(), json!({ "tasks": [] }));
    let kept: Vec<_> = files_under(&s.data())
        .into_iter()
        // The database and the server secret (created at start-up) are not uploads.
        .filter(|p| {
            let p = p.to_string_lossy();
            !p.contains("nestbox.db") && !p.ends_with("server.secret")
        })
        .collect();
    assert!(kept.is_empty(), "nothing kept: {kept:?}");
    // At the limit is fine.
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "ok.bin", &big[..1000])],
    );
    assert_eq!(r.status, 200);
}

/// An answer that does not need the upload (a 405, a 401, a 400, a 404) still comes after
/// the upload has been read: the client gets the status, not a broken pipe, and its
/// connection stays usable. Raw sockets: the harness's client would reconnect silently.
#[test]
fn early_answers_to_uploads_keep_the_connection() {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = Server::start("[analysis]\nworkers = 0\n[cape]\ntoken_auth_enabled = true\n");
    let addr = s.base.trim_start_matches("http://").to_owned();
    let c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    // Reads one response (status and Content-Length body) off the connection.
    let response = |r: &mut BufReader<std::net::TcpStream>| -> u16 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        status
    };
    let body = vec![b'x'; 400_000];
    let form = "multipart/form-data; boundary=b";
    let raw = "application/octet-stream";
    for (path, kind, want) in [
        ("/cuckoo/status", raw, 405),             // no POST route
        ("/apiv2/tasks/create/file/", form, 401), // CAPE with token auth, none given
        ("/tasks/create/file", form, 400),        // not a well-formed form
        ("/tasks/create/file", raw, 400),         // not a form
        ("/no/such/endpoint", raw, 404),
    ] {
        write!(
            w,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {kind}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        w.write_all(&body)
            .unwrap_or_else(|e| panic!("{path}: sending the body: {e}"));
        assert_eq!(response(&mut r), want, "{path}");
        // The same connection answers the next request.
        write!(w, "GET /cuckoo/status HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        assert_eq!(response(&mut r), 200, "after {path}");
    }
}

#[test]
fn malformed_requests() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    // Broken multipart: bad boundary, truncated body.
    let r = s.post_raw(
        "/tasks/create/file",
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.post_raw("/tasks/create/file", "multipart/form-data", b"garbage", &[]);
    assert_eq!(r.status, 400);
    // JSON body: Cuckoo reads only forms → no file part → 400.
    let r = s.post_raw(
        "/tasks/create/file",
        "application/json",
        br#"{"file":"x"}"#,
        &[],
    );
    assert_eq!(r.status, 400);
    // Empty upload: accepted and analysed (file says "empty").
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "empty.bin", b"")],
    );
    assert_eq!(r.status, 200);
    let id = r.json()["task_id"].as_i64().unwrap();
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["sample"]["file_size"],
        0
    );
    // Unknown formats and ids.
    assert_eq!(s.get(&format!("/tasks/report/{id}/exe")).status, 400);
    assert_eq!(s.get("/tasks/view/99999999999999999999999").status, 404);
    assert_eq!(s.get("/memory/get/1/..").status, 404);
    assert_eq!(
        s.get("/tasks/screenshots/1/..%2f..%2fnestbox.db").status,
        404
    );
    // The server is still fine.
    assert_eq!(s.get("/cuckoo/status").status, 200);
}

#[test]
fn hostile_samples_get_reports() {
    let s = Server::start("[analysis]\nworkers = 2\n");
    let mut samples: Vec<(&str, Vec<u8>)> = vec![
        (
            "trunc.elf",
            std::fs::read("/bin/ls").unwrap()[..300].to_vec(),
        ),
        ("mz.exe", b"MZ\x90\x00garbage-not-a-pe".to_vec()),
        ("bomb.txt", vec![b'A'; 3 << 20]),
        ("ff.bin", vec![0xff; 70_000]),
    ];
    samples.push((
        "pdf.pdf",
        b"%PDF-1.7\n1 0 obj << /JS (app.alert(1)) >> endobj\n%%EOF".to_vec(),
    ));
    for (name, content) in samples {
        let id = s.submit_file(name, &content);
        s.wait_status(id, "reported");
        let rep = s.get(&format!("/tasks/report/{id}")).json();
        assert_eq!(rep["target"]["file"]["size"], content.len(), "{name}");
        let strings = rep["strings"].as_array().unwrap();
        assert!(
            strings.len() <= 2048
                && strings
                    .iter()
                    .all(|x| x.as_str().unwrap().chars().count() <= 1024)
        );
    }
}
