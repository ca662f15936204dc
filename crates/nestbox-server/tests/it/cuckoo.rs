//! The Cuckoo REST API against spec cuckoo.md §10 (checklist items in brackets).

use serde_json::{Value, json};

use crate::harness::{Part, Server, claim_externally, s3_storage};

const NO_WORKERS: &str = "[analysis]\nworkers = 0\n";
const EVAL: &[u8] = b"eval('alert(1)')";

fn headers_ok(r: &crate::harness::Resp) {
    for (k, v) in [
        ("server", "Machete Server"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("x-xss-protection", "1; mode=block"),
        ("pragma", "no-cache"),
        ("cache-control", "no-cache"),
        ("expires", "0"),
    ] {
        assert_eq!(r.header(k), Some(v), "header {k} on {}", r.text());
    }
}

#[test]
fn auth_with_token() {
    // [1] [2] [3]
    let s = Server::start("[cuckoo]\napi_token = \"s3cret\"\n");
    let msg = "Authentication in the form of an 'Authorization: Bearer <TOKEN>' header is required";
    for path in ["/cuckoo/status", "/nope/unknown", "/tasks/view/1"] {
        let r = s.get(path);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json(), json!({ "message": msg }));
        assert!(r.header("www-authenticate").is_none());
        headers_ok(&r);
    }
    for bad in [
        "bearer s3cret",
        "Bearer wrong",
        "Token s3cret",
        "Bearer  s3cret",
        "Bearer",
    ] {
        assert_eq!(
            s.get_with("/cuckoo/status", &[("Authorization", bad)])
                .status,
            401,
            "{bad}"
        );
    }
    let r = s.get_with("/cuckoo/status", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(r.status, 200);
    // Authenticated but unknown → Werkzeug 404.
    let r = s.get_with("/nope", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(r.status, 404);
}

#[test]
fn transport_conventions() {
    let s = Server::start(NO_WORKERS);
    // [4] no token: works, and a stray Authorization header is ignored.
    assert_eq!(
        s.get_with("/cuckoo/status", &[("Authorization", "Bearer ")])
            .status,
        200
    );
    // [5] sorted keys, indent 2, trailing newline; XHR gives compact.
    let r = s.get("/tasks/list");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "{\n  \"tasks\": []\n}\n"); // [11]
    s.submit_file("a.js", EVAL);
    let r = s.get("/tasks/view/1");
    let text = r.text();
    assert!(
        text.starts_with("{\n  \"task\": {\n    \"added_on\": "),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    let keys: Vec<String> = r.json()["task"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let pos: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "keys are sorted in the output"
    );
    let r = s.get_with("/tasks/view/1", &[("X-Requested-With", "XMLHttpRequest")]);
    assert!(
        r.text().starts_with("{\"task\":{\"added_on\":"),
        "{}",
        r.text()
    );
    assert!(!r.text().ends_with('\n'));
    // [6]
    headers_ok(&r);
    headers_ok(&s.get("/nope"));
    // [7] v1 aliases
    assert_eq!(
        s.get("/v1/tasks/view/1").json(),
        s.get("/tasks/view/1").json()
    );
    assert_eq!(s.get("/v1/cuckoo/status").status, 200);
    assert_eq!(
        s.get("/v1/tasks/list").json()["tasks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for p in [
        "/v1/tasks/summary/1",
        "/v1/tasks/rereport/1",
        "/v1/tasks/reboot/1",
        "/v1/memory/list/1",
        "/v1/vpn/status",
        "/v1/exit",
    ] {
        assert_eq!(s.get(p).status, 404, "{p}");
    }
    // [8] trailing slash
    for p in ["/tasks/list/", "/cuckoo/status/", "/tasks/view/1/"] {
        let r = s.get(p);
        assert_eq!(r.status, 404, "{p}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
    }
    // [9] non-numeric / negative ids
    for p in [
        "/tasks/view/abc",
        "/tasks/view/-1",
        "/tasks/list/x",
        "/tasks/delete/1.0",
    ] {
        assert_eq!(s.get(p).status, 404, "{p}");
    }
    // [10] wrong method
    let r = s.get("/tasks/create/file");
    assert_eq!(r.status, 405);
    assert!(r.text().contains("Method Not Allowed"));
    assert!(r.header("allow").unwrap().contains("POST"));
    assert_eq!(s.request("POST", "/tasks/list").status, 405);
    assert_eq!(s.request("HEAD", "/cuckoo/status").status, 200);
    let r = s.request("OPTIONS", "/tasks/list");
    assert_eq!(r.status, 200);
    assert!(r.header("allow").unwrap().contains("GET"));
}

#[test]
fn create_file_tasks() {
    let s = Server::start(NO_WORKERS);
    // [12]
    assert_eq!(s.submit_file("a.js", EVAL), 1);
    assert_eq!(s.submit_file("b.js", EVAL), 2);
    assert_eq!(s.submit_file("c.js", EVAL), 3);
    // [13]
    let t = s.get("/tasks/view/1").json()["task"].clone();
    assert_eq!(t["category"], "file");
    assert_eq!(t["status"], "pending");
    assert_eq!(t["sample"]["md5"], "f2d886558b2866065c3da842bfe13ce6");
    assert_eq!(
        t["sample"]["sha256"],
        "c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9"
    );
    let target = t["target"].as_str().unwrap();
    assert!(target.ends_with("a.js"));
    // With a local store the target is a host path holding the upload (on S3 the sample
    // lives in the bucket and the target is its file name).
    if !s3_storage() {
        assert_eq!(
            std::fs::read(target).unwrap(),
            EVAL,
            "target file holds the upload"
        );
        assert!(target.ends_with("/a.js"));
    }
    // [20] defaults
    for (k, v) in [
        ("timeout", json!(0)),
        ("priority", json!(1)),
        ("options", json!({})),
        ("tags", json!([])),
        ("memory", json!(false)),
        ("enforce_timeout", json!(false)),
        ("owner", json!("")),
        ("custom", json!("")),
        ("package", json!("")),
        ("duration", json!(-1)),
        ("guest", json!({})),
        ("errors", json!([])),
        ("submit_id", Value::Null),
        ("machine", json!("")),
        ("platform", json!("")),
    ] {
        assert_eq!(t[k], v, "default of {k}");
    }
    // [14] absolute client path: only the basename is kept, under a fresh directory.
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "/tmp/x/foobar.txt", b"hello")],
    );
    let id = r.json()["task_id"].as_i64().unwrap();
    let target = s.get(&format!("/tasks/view/{id}")).json()["task"]["target"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        target.ends_with("foobar.txt") && target != "/tmp/x/foobar.txt",
        "{target}"
    );
    if !s3_storage() {
        assert!(target.starts_with(s.data().to_str().unwrap()), "{target}");
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
    }
    // [15] unicode file name, JSON-escaped on the wire
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "\u{202e}.jpg", b"x")],
    );
    let id = r.json()["task_id"].as_i64().unwrap();
    let list = s.get("/tasks/list");
    assert!(list.text().contains("\\u202e.jpg"));
    let t = list.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert!(t["target"].as_str().unwrap().ends_with("\u{202e}.jpg"));
    // [16] unique
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "d.js", EVAL), Part::Field("unique", "1")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({ "message": "This file has already been submitted" })
    );
    let id = s.submit_file("e.js", EVAL);
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["sample_id"],
        1
    );
    // [17] no file part → 400, not JSON
    let r = s.post_multipart("/tasks/create/file", &[Part::Field("package", "exe")]);
    assert_eq!(r.status, 400);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // [19] memory parsing for files
    let mem = |v: &str| {
        let r = s.post_multipart(
            "/tasks/create/file",
            &[Part::File("file", "m", b"m"), Part::Field("memory", v)],
        );
        let id = r.json()["task_id"].as_i64().unwrap();
        s.get(&format!("/tasks/view/{id}")).json()["task"]["memory"].clone()
    };
    assert_eq!(mem("0"), json!(false));
    assert_eq!(mem("yes"), json!(true));
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "m", b"m"), Part::Field("memory", "abc")],
    );
    assert_eq!(r.status, 500, "bad bool is an exception page upstream");
    // [21] tags, options, clock
    let r = s.post_multipart(
        "/tasks/create/file",
        &[
            Part::File("file", "t.bin", b"tags"),
            Part::Field("tags", "foo,,bar"),
            Part::Field("options", "foo=bar"),
            Part::Field("clock", "01-02-2017 10:00:00"),
            Part::Field("priority", "3"),
            Part::Field("timeout", "30"),
            Part::Field("owner", "alice"),
        ],
    );
    let id = r.json()["task_id"].as_i64().unwrap();
    let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
    assert_eq!(t["tags"], json!(["bar", "foo"]));
    assert_eq!(t["options"], json!({ "foo": "bar" }));
    assert_eq!(t["clock"], "Mon, 02 Jan 2017 10:00:00 GMT");
    assert_eq!(t["priority"], 3);
    assert_eq!(t["timeout"], 30);
    assert_eq!(t["owner"], "alice");
}

#[test]
fn create_url_tasks() {
    let s = Server::start(NO_WORKERS);
    // [18]
    let r = s.post_form("/tasks/create/url", &[("url", "http://machete.pwn")]);
    assert_eq!(r.json(), json!({ "task_id": 1 }));
    let t = s.get("/tasks/view/1").json()["task"].clone();
    assert_eq!(t["category"], "url");
    assert_eq!(t["target"], "http://machete.pwn");
    assert_eq!(t["sample"], json!({}));
    assert_eq!(t["sample_id"], Value::Null);
    // [19] any non-empty memory value is true for URLs
    let r = s.post_form(
        "/tasks/create/url",
        &[("url", "http://a.example"), ("memory", "0")],
    );
    let id = r.json()["task_id"].as_i64().unwrap();
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["memory"],
        true
    );
    // missing url → {"task_id": null}, 200
    let r = s.post_form("/tasks/create/url", &[("package", "ie")]);
    assert_eq!((r.status, r.json()), (200, json!({ "task_id": null })));
    // multipart url part with filename="" is a form field
    let (ctype, _) = crate::harness::multipart(&[]);
    let boundary = ctype.split("boundary=").nth(1).unwrap();
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"url\"; filename=\"\"\r\n\r\nhttp://empty-filename.example\r\n--{boundary}--\r\n"
    );
    let r = s.post_raw("/tasks/create/url", &ctype, body.as_bytes(), &[]);
    let id = r.json()["task_id"].as_i64().expect("accepted");
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["target"],
        "http://empty-filename.example"
    );
    // multipart url without filename works too
    let r = s.post_multipart(
        "/tasks/create/url",
        &[Part::Field("url", "http://mp.example")],
    );
    assert!(r.json()["task_id"].is_i64());
}

#[test]
fn create_submit() {
    let s = Server::start(NO_WORKERS);
    // [25]
    let r = s.post_multipart("/tasks/create/submit", &[Part::Field("options", "x=y")]);
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json(),
        json!({ "message": "No files or strings have been given!" })
    );
    // [24] [26]
    let r = s.post_form(
        "/tasks/create/submit",
        &[(
            "strings",
            "http://google.com\ncuckoosandbox.org\n\nhttps://1.2.3.4:9001/wow\nnot a url",
        )],
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["submit_id"], 1);
    assert_eq!(j["task_ids"], json!([1, 2, 3]));
    assert_eq!(
        j["errors"],
        json!(["'not a url' was neither a valid hash or url"])
    );
    let targets: Vec<Value> = (1..=3)
        .map(|i| s.get(&format!("/tasks/view/{i}")).json()["task"]["target"].clone())
        .collect();
    assert_eq!(
        targets,
        vec![
            json!("http://google.com"),
            json!("http://cuckoosandbox.org"),
            json!("https://1.2.3.4:9001/wow")
        ]
    );
    assert_eq!(s.get("/tasks/view/1").json()["task"]["category"], "url");
    // [23] [27] options overlay, memory and enforce_timeout
    let r = s.post_multipart(
        "/tasks/create/submit",
        &[
            Part::File("files", "foobar.bat", b"@echo off"),
            Part::Field("options", "procmemdump=no,free=yes"),
            Part::Field("memory", "True"),
            Part::Field("enforce_timeout", "True"),
        ],
    );
    let j = r.json();
    assert_eq!(j["submit_id"], 2);
    let id = j["task_ids"][0].as_i64().unwrap();
    let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
    assert_eq!(t["memory"], true);
    assert_eq!(t["enforce_timeout"], true);
    assert_eq!(t["options"], json!({ "free": "yes", "procmemdump": "no" }));
    assert_eq!(t["submit_id"], 2);
    assert!(
        t["target"].as_str().unwrap().ends_with("foobar.bat"),
        "[14] for submit"
    );
    // default options get procmemdump=yes; a known hash is served from our store
    let sha = t["sample"]["sha256"].as_str().unwrap().to_owned();
    let r = s.post_form("/tasks/create/submit", &[("strings", sha.as_str())]);
    let j = r.json();
    assert_eq!(j["errors"], json!([]));
    let id = j["task_ids"][0].as_i64().unwrap();
    let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
    assert_eq!(t["options"], json!({ "procmemdump": "yes" }));
    assert_eq!(t["sample"]["sha256"], sha.as_str());
    let r = s.post_form("/tasks/create/submit", &[("strings", &"0".repeat(64))]);
    assert_eq!(r.json()["task_ids"], json!([]));
    assert!(
        r.json()["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("Error retrieving file hash")
    );
    // [22] a pdf, a zip holding it and a tgz holding it
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec();
    let zip = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("files/pdf0.pdf", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut w, &pdf).unwrap();
        w.finish().unwrap().into_inner()
    };
    let tgz = {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(pdf.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "files/pdf0.pdf", &pdf[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap()
    };
    let r = s.post_multipart(
        "/tasks/create/submit",
        &[
            Part::File("files", "pdf0.pdf", &pdf),
            Part::File("files", "pdf0.zip", &zip),
            Part::File("files", "pdf0.tgz", &tgz),
        ],
    );
    let j = r.json();
    let ids: Vec<i64> = j["task_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{j}");
    let t1 = s.get(&format!("/tasks/view/{}", ids[0])).json()["task"].clone();
    assert_eq!(t1["category"], "file");
    assert_eq!(t1["options"], json!({ "procmemdump": "yes" }));
    assert_eq!(t1["package"], "pdf");
    assert_eq!(t1["sample"]["file_size"], pdf.len());
    for (id, ext) in [(ids[1], ".zip"), (ids[2], ".tgz")] {
        let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
        assert_eq!(t["category"], "archive");
        assert_eq!(
            t["options"],
            json!({ "filename": "files/pdf0.pdf", "procmemdump": "yes" })
        );
        assert!(t["target"].as_str().unwrap().ends_with(ext));
    }
    // [42] archive tasks cannot be rescheduled
    let r = s.get(&format!("/tasks/reschedule/{}", ids[1]));
    assert_eq!(
        (r.status, r.json()),
        (
            500,
            json!({ "message": "An error occurred while trying to reschedule the task" })
        )
    );
    // [27] create/file tasks have no submit id
    let id = s.submit_file("x", b"x");
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["submit_id"],
        Value::Null
    );
}

#[test]
fn listing() {
    let s = Server::start(NO_WORKERS);
    for n in 0..3 {
        let r = s.post_multipart(
            "/tasks/create/file",
            &[
                Part::File("file", "x", EVAL),
                Part::Field("owner", if n == 1 { "bob" } else { "" }),
            ],
        );
        assert_eq!(r.status, 200);
    }
    let ids = |path: &str| -> Vec<i64> {
        s.get(path).json()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    // [28]
    assert_eq!(ids("/tasks/list/1"), vec![1]);
    assert_eq!(ids("/tasks/list/1/1"), vec![2]);
    assert_eq!(ids("/tasks/list/2/1"), vec![2, 3]);
    assert_eq!(ids("/v1/tasks/list/2/1"), vec![2, 3]);
    // [29]
    assert_eq!(ids("/tasks/sample/1"), vec![1, 2, 3]);
    assert_eq!(ids("/tasks/sample/9"), Vec::<i64>::new());
    // [31] [32]
    assert_eq!(ids("/tasks/list?status=pending"), vec![1, 2, 3]);
    assert_eq!(ids("/tasks/list?status=completed"), Vec::<i64>::new());
    assert_eq!(ids("/tasks/list?status=bogus"), Vec::<i64>::new());
    assert_eq!(ids("/tasks/list?owner=bob"), vec![2]);
    // [4] completed_after must be an int
    assert_eq!(s.get("/tasks/list?completed_after=abc").status, 500);
    // [33] [34] list uses plain dates, view RFC 1123
    let t = &s.get("/tasks/list").json()["tasks"][0];
    let added = t["added_on"].as_str().unwrap();
    assert!(chrono_like(added), "{added}");
    assert_eq!(t["started_on"], Value::Null);
    assert!(t["errors"].is_array() && t["guest"] == json!({}));
    let v = s.get("/tasks/view/1").json()["task"]["added_on"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(v.ends_with(" GMT") && v.contains(", "), "{v}");
}

fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[16] == b':'
}

#[test]
fn lifecycle_reports_and_listing_by_completion() {
    let s = Server::start("[analysis]\nworkers = 2\n");
    let a = s.submit_file("a.js", EVAL);
    let b = s.submit_file("b.txt", b"hello world, this is text");
    // [65] [66] pending → running → completed → reported, with a guest
    let ta = s.wait_status(a, "reported");
    let tb = s.wait_status(b, "reported");
    assert!(ta["started_on"].is_string() && ta["completed_on"].is_string());
    // [69] duration
    assert!(ta["duration"].as_i64().unwrap() >= 0);
    assert_eq!(ta["guest"]["task_id"], a);
    assert_eq!(ta["guest"]["status"], "stopped");
    assert!(ta["guest"]["id"].is_i64());
    // [35] [30] [31]
    let pending = s
        .post_form(
            "/tasks/create/url",
            &[("url", "http://x.example"), ("platform", "nonexistent")],
        )
        .json()["task_id"]
        .as_i64()
        .unwrap();
    let list = s.get("/tasks/list").json()["tasks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 3);
    let done: Vec<&Value> = list.iter().filter(|t| t["status"] == "reported").collect();
    assert_eq!(done.len(), 2);
    let first_completed = list.iter().position(|t| t["status"] == "reported").unwrap();
    assert!(
        list[..first_completed]
            .iter()
            .all(|t| t["completed_on"].is_null()),
        "never-completed first"
    );
    let completed: Vec<i64> = done
        .iter()
        .map(|t| epoch(t["completed_on"].as_str().unwrap()))
        .collect();
    let min = *completed.iter().min().unwrap();
    let n = |q: String| s.get(&q).json()["tasks"].as_array().unwrap().len();
    assert_eq!(n(format!("/tasks/list?completed_after={}", min - 1)), 2);
    // Strictly greater, at sub-second precision (upstream compares datetimes).
    assert_eq!(
        n(format!(
            "/tasks/list?completed_after={}",
            completed.iter().max().unwrap() + 1
        )),
        0
    );
    assert_eq!(n("/tasks/list?status=reported".into()), 2);
    let _ = pending;
    let _ = tb;
    // [53] report.json is served as stored
    let r = s.get(&format!("/tasks/report/{a}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let stored = s
        .get_blob(&format!("analyses/{a}/reports/report.json"))
        .unwrap();
    assert_eq!(r.body, stored);
    let rep = r.json();
    // [70] + issue: sections present with their empty shapes, numbers for scores
    assert!(rep["signatures"].is_array());
    assert!(rep["info"]["score"].is_number() && rep["malscore"].is_number());
    assert!(rep["network"]["http"].is_array() && rep["behavior"]["processtree"].is_array());
    assert!(rep["suricata"]["alerts"].is_array() && rep["dropped"].is_array());
    assert!(rep["info"]["started"].is_f64() && rep["info"]["ended"].is_f64());
    assert_eq!(rep["info"]["id"], a);
    assert_eq!(rep["target"]["category"], "file");
    let f = &rep["target"]["file"];
    assert_eq!(f["md5"], "f2d886558b2866065c3da842bfe13ce6");
    assert_eq!(f["name"], "a.js");
    assert_eq!(f["size"], EVAL.len());
    assert!(f["type"].as_str().unwrap().contains("text"), "{f}");
    assert_eq!(f["crc32"].as_str().unwrap().len(), 8);
    assert!(f["ssdeep"].as_str().unwrap().starts_with("3:"));
    assert!(
        rep["strings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "eval('alert(1)')")
    );
    // [54] upper-case format
    assert_eq!(s.get(&format!("/tasks/report/{a}/JSON")).body, stored);
    // [55]
    let r = s.get(&format!("/tasks/report/{a}/maec"));
    assert_eq!(
        (r.status, r.json()),
        (400, json!({ "message": "Invalid report format" }))
    );
    // [56]
    let r = s.get(&format!("/tasks/report/{a}?elements=info"));
    assert_eq!(r.json(), rep["info"]);
    assert!(!r.text().contains('\n'), "elements are compact");
    let r = s.get(&format!("/tasks/report/{a}?elements=nope"));
    assert_eq!(
        (r.status, r.json()),
        (404, json!({ "message": "'nope' not found" }))
    );
    let r = s.get(&format!("/tasks/report/{a}/html?elements=info"));
    assert_eq!(
        r.json()["message"],
        "Get specific field is not available in HTML format, try again with JSON format"
    );
    // HTML report is a real page
    let r = s.get(&format!("/tasks/report/{a}/html"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = r.text();
    assert!(html.contains("f2d886558b2866065c3da842bfe13ce6") && html.contains("a.js"));
    // [53] missing report
    let r = s.get(&format!("/tasks/report/{pending}"));
    assert_eq!(
        (r.status, r.json()),
        (404, json!({ "message": "Report not found" }))
    );
    let r = s.get("/tasks/report/999/html");
    assert_eq!(r.status, 404);
    // [58] all: bz2 default, gz, tar, fallback
    for (q, magic) in [
        ("", &b"BZh"[..]),
        ("?tar=gz", &b"\x1f\x8b"[..]),
        ("?tar=xyz", &b"BZh"[..]),
    ] {
        let r = s.get(&format!("/tasks/report/{a}/all{q}"));
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-tar; charset=UTF-8")
        );
        assert!(r.body.starts_with(magic), "{q}");
    }
    let r = s.get(&format!("/tasks/report/{a}/all?tar=tar"));
    let names = tar_names(&r.body);
    assert!(
        names.contains(&"reports/report.json".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"binary".to_owned()), "{names:?}");
    assert!(names.contains(&"task.json".to_owned()), "{names:?}");
    // [59] dropped: only files/ (none for a static analysis)
    let r = s.get(&format!("/tasks/report/{a}/dropped?tar=tar"));
    assert_eq!(r.status, 200);
    assert!(tar_names(&r.body).iter().all(|n| n.starts_with("files/")));
    // [60] summary trims
    let r = s.get(&format!("/tasks/summary/{a}"));
    let j = r.json();
    assert!(
        j.get("procmemory").is_none() && j.get("debug").is_none() && j.get("screenshots").is_none()
    );
    assert!(j["behavior"].get("processes").is_none());
    assert_eq!(
        s.get("/tasks/summary/999").json()["message"],
        "Report not found"
    );
    // [43] rereport: reported → completed → reported again by the workers
    assert_eq!(
        s.get(&format!("/tasks/rereport/{a}")).json(),
        json!({ "success": true })
    );
    s.wait_status(a, "reported");
    assert_eq!(
        s.get(&format!("/tasks/rereport/{pending}")).json(),
        json!({ "success": false })
    );
    assert_eq!(
        s.get("/tasks/rereport/999").json(),
        json!({ "message": "Task not found" })
    );
    // [37] delete a finished task: analysis folder goes, sample stays
    assert_eq!(
        s.get(&format!("/tasks/delete/{b}")).json(),
        json!({ "status": "OK" })
    );
    assert_eq!(s.get(&format!("/tasks/view/{b}")).status, 404);
    assert!(!s.has_blobs_under(&format!("analyses/{b}/")));
    let sha = tb["sample"]["sha256"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/files/get/{sha}")).body,
        b"hello world, this is text"
    );
    // [38]
    assert_eq!(
        s.get("/tasks/delete/999").json(),
        json!({ "message": "Task not found" })
    );
}

fn epoch(plain: &str) -> i64 {
    let out = crate::harness::tool("date", &["-u", "-d", plain, "+%s"]);
    out.trim().parse().unwrap()
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut off = 0;
    while off + 512 <= bytes.len() {
        let h = &bytes[off..off + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&h[124..135]).trim_matches(|c: char| c == '\0' || c == ' '),
            8,
        )
        .unwrap_or(0);
        names.push(name);
        off += 512 + size.div_ceil(512) * 512;
    }
    names
}

#[test]
fn view_reschedule_reboot() {
    let s = Server::start(NO_WORKERS);
    s.submit_file("a.js", EVAL);
    // [36]
    let r = s.get("/tasks/view/999");
    assert_eq!(
        (r.status, r.json()),
        (404, json!({ "message": "Task not found" }))
    );
    // [39]
    assert_eq!(
        s.get("/tasks/reschedule/1").json(),
        json!({ "status": "OK", "task_id": 2 })
    );
    assert_eq!(s.get("/tasks/view/1").json()["task"]["status"], "recovered");
    let t2 = s.get("/tasks/view/2").json()["task"].clone();
    let t1 = s.get("/tasks/view/1").json()["task"].clone();
    assert_eq!(t2["status"], "pending");
    assert_eq!(t2["target"], t1["target"]);
    assert_eq!(t2["options"], t1["options"]);
    // [40]
    let r = s.get("/tasks/reschedule/2/3").json();
    assert_eq!(
        s.get(&format!("/tasks/view/{}", r["task_id"])).json()["task"]["priority"],
        3
    );
    // [41]
    let r = s.get("/tasks/reschedule/666");
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({ "message": "There is no analysis with the specified ID" })
        )
    );
    // [44]
    let r = s.get("/tasks/reboot/1").json();
    let reboot = r["reboot_id"].as_i64().unwrap();
    assert_eq!(r["task_id"], 1);
    let t = s.get(&format!("/tasks/view/{reboot}")).json()["task"].clone();
    assert_eq!(t["package"], "reboot");
    assert_eq!(t["custom"], "1");
    let r = s.get("/tasks/reboot/999");
    assert_eq!(
        (r.status, r.json()),
        (404, json!({ "message": "Error creating reboot task" }))
    );
}

#[test]
fn files_machines_status() {
    let s = Server::start(
        "[analysis]\nworkers = 0\n[cuckoo]\nversion = \"2.0.7\"\n[[machines]]\nname = \"cuckoo1\"\nplatform = \"windows\"\ntags = [\"x64\", \"office\"]\nip = \"192.168.56.101\"\n",
    );
    s.submit_file("a.js", EVAL);
    s.submit_file("b.js", EVAL);
    // [45]
    for p in [
        "/files/view/id/1",
        "/files/view/md5/f2d886558b2866065c3da842bfe13ce6",
        "/files/view/sha256/c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9",
    ] {
        let j = s.get(p).json();
        assert_eq!(j["sample"]["id"], 1, "{p}");
        assert_eq!(j["sample"]["tasks"], json!([1, 2]));
        let keys: Vec<&String> = j["sample"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "crc32",
                "file_size",
                "file_type",
                "id",
                "md5",
                "sha1",
                "sha256",
                "sha512",
                "ssdeep",
                "tasks"
            ]
        );
    }
    // [46]
    for p in [
        "/files/view/id/69",
        "/files/view/md5/00000000000000000000000000000000",
        "/files/view/sha256/abc",
    ] {
        let r = s.get(p);
        assert_eq!(
            (r.status, r.json()),
            (404, json!({ "message": "File not found" })),
            "{p}"
        );
    }
    let r = s.get("/files/view/id/0");
    assert_eq!(
        (r.status, r.json()),
        (400, json!({ "message": "Invalid lookup term" }))
    );
    // [47]
    let r = s.get("/files/get/c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9");
    assert_eq!(r.body, EVAL);
    assert_eq!(
        r.header("content-type"),
        Some("application/octet-stream; charset=UTF-8")
    );
    assert_eq!(
        s.get(&format!("/files/get/{}", "0".repeat(64))).json(),
        json!({ "message": "File not found" })
    );
    // [48]
    let r = s.get("/pcap/get/1");
    assert_eq!(
        (r.status, r.json()),
        (404, json!({ "message": "File not found" }))
    );
    s.put_blob("analyses/1/dump.pcap", b"\xd4\xc3\xb2\xa1pcap");
    let r = s.get("/pcap/get/1");
    assert_eq!(r.body, b"\xd4\xc3\xb2\xa1pcap");
    assert_eq!(
        r.header("content-type"),
        Some("application/octet-stream; charset=UTF-8")
    );
    // [49]
    let j = s.get("/machines/list").json();
    let m = &j["machines"][0];
    assert_eq!(m["name"], "cuckoo1");
    assert_eq!(m["platform"], "windows");
    assert_eq!(m["ip"], "192.168.56.101");
    assert!(m["resultserver_port"].is_i64());
    let mut tags: Vec<&str> = m["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["office", "x64"]);
    for k in [
        "id",
        "label",
        "options",
        "interface",
        "snapshot",
        "locked",
        "locked_changed_on",
        "status",
        "status_changed_on",
        "resultserver_ip",
        "rcparams",
    ] {
        assert!(m.get(k).is_some(), "machine field {k}");
    }
    assert_eq!(
        s.get("/machines/view/cuckoo1").json()["machine"]["name"],
        "cuckoo1"
    );
    assert_eq!(
        s.get("/machines/view/nope").json(),
        json!({ "message": "Machine not found" })
    );
    // [50]
    std::fs::create_dir_all(s.data().join("tmp")).unwrap();
    std::fs::write(s.data().join("tmp/stray"), b"x").unwrap();
    let j = s.get("/cuckoo/status").json();
    assert_eq!(j["version"], "2.0.7");
    assert_eq!(j["machines"], json!({ "total": 1, "available": 1 }));
    assert_eq!(
        j["tasks"],
        json!({ "total": 2, "pending": 2, "running": 0, "completed": 0, "reported": 0 })
    );
    assert!(j["diskspace"]["analyses"]["total"].as_u64().unwrap() > 0);
    assert!(j["diskspace"].get("temporary").is_none());
    for k in [
        "hostname",
        "cpuload",
        "cpu_count",
        "memory",
        "memavail",
        "memtotal",
        "processes",
    ] {
        assert!(j.get(k).is_some(), "status field {k}");
    }
    // [51] [52]
    let r = s.get("/vpn/status");
    assert_eq!(
        (r.status, r.json()),
        (500, json!({ "message": "Rooter not available" }))
    );
    let r = s.get("/exit");
    assert_eq!(
        (r.status, r.json()),
        (
            403,
            json!({ "message": "This call can only be used in debug mode" })
        )
    );
}

#[test]
fn screenshots_and_memory() {
    let s = Server::start(NO_WORKERS);
    s.submit_file("a", b"a");
    // [61] [62] [63] [64]
    assert_eq!(
        s.get("/tasks/screenshots/1").json(),
        json!({ "message": "Task not found" })
    );
    s.put_blob("analyses/1/shots/0001.jpg", b"\xff\xd8jpeg1");
    s.put_blob("analyses/1/shots/0002.jpg", b"\xff\xd8jpeg2");
    let r = s.get("/tasks/screenshots/1");
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert!(r.body.starts_with(b"PK"));
    assert!(
        r.body.windows(7).any(|w| w == b"\xff\xd8jpeg2"),
        "stored, not deflated"
    );
    let r = s.get("/tasks/screenshots/1/0001");
    assert_eq!(
        (r.header("content-type"), r.body.as_slice()),
        (Some("image/jpeg"), &b"\xff\xd8jpeg1"[..])
    );
    assert_eq!(
        s.get("/tasks/screenshots/1/9999").json(),
        json!({ "message": "Screenshot not found!" })
    );
    assert_eq!(
        s.get("/memory/list/1").json(),
        json!({ "message": "Memory dump not found" })
    );
    s.put_blob("analyses/1/memory/2500-1.dmp", b"dump");
    assert_eq!(
        s.get("/memory/list/1").json(),
        json!({ "dump_files": ["2500-1"] })
    );
    assert_eq!(s.get("/memory/get/1/2500-1").body, b"dump");
    assert_eq!(
        s.get("/memory/get/1/1").json(),
        json!({ "message": "Memory dump not found" })
    );
    // [57] no html report for a task that was never analysed
    assert_eq!(
        s.get("/tasks/report/1/html").json(),
        json!({ "message": "Report not found" })
    );
}

#[test]
fn delete_refuses_running_tasks() {
    // [37] A task claimed by a worker in another process (the API node has no workers).
    let s = Server::start(NO_WORKERS);
    let id = s.submit_file("a", b"running");
    // Viewed (and listed) before the other process writes: the cached answers must not
    // outlive that write.
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["status"],
        "pending"
    );
    assert_eq!(s.get("/tasks/list").json()["tasks"][0]["status"], "pending");
    assert_eq!(claim_externally(&s, "external-worker"), id);
    let r = s.get(&format!("/tasks/delete/{id}"));
    assert_eq!(
        (r.status, r.json()),
        (
            500,
            json!({ "message": "The task is currently being processed, cannot delete" })
        )
    );
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["status"],
        "running"
    );
    assert_eq!(
        s.get(&format!("/tasks/view/{id}")).json()["task"]["processing"],
        "external-worker"
    );
}

#[test]
fn exit_in_debug_mode() {
    let s = Server::start("[analysis]\nworkers = 0\n[cuckoo]\ndebug = true\n");
    let r = s.get("/exit");
    assert_eq!(r.json(), json!({ "message": "Server stopped" }));
}
