//! The Assemblyline 4 `/api/v4/` dialect against the real binary: the checklist of spec
//! assemblyline.md §9 (`[N]` marks an item), API keys from the CLI, bad input and
//! cross-dialect identity. The real Python client is exercised in tests/clients.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Part, Resp, Server, nestbox_bin, run_ok};

/// The checklist submits more files than Assemblyline's default of 5 concurrent
/// submissions per user while one worker analyses them: that quota is off here and
/// tested on its own in `quotas_headers_and_503s`.
pub(crate) const CONFIG: &str = "[cape]\nadmin_password = \"pw\"\n[analysis]\nworkers = 1\npoll_interval_ms = 50\n\
     [assemblyline.quotas]\nconcurrent_submissions = 0\n";
const HELLO_SHA: &str = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

pub(crate) fn apikey(s: &Server, args: &[&str]) -> String {
    let cfg = s.dir.path().join("nestbox.toml");
    let out = run_ok(
        Command::new(nestbox_bin())
            .arg("apikey")
            .args(args)
            .arg("--config")
            .arg(&cfg),
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Logs in over a raw socket (the harness keeps one value per header) and returns
/// (status, body, session cookie value, XSRF token, whether any cookie is Secure).
fn login(s: &Server, body: &str) -> (u16, Value, String, String, bool) {
    use std::io::{Read, Write};
    let addr = s.base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /api/v4/auth/login/ HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, payload) = raw.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let mut session = String::new();
    let mut xsrf = String::new();
    let mut secure = false;
    for line in head.lines() {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("set-cookie: ") {
            secure |= v.split(';').any(|a| a.trim() == "secure");
            let v = &line["set-cookie: ".len()..];
            let kv = v.split(';').next().unwrap();
            if let Some(x) = kv.strip_prefix("session=") {
                session = x.to_owned();
            } else if let Some(x) = kv.strip_prefix("XSRF-TOKEN=") {
                xsrf = x.to_owned();
            }
        }
    }
    (
        status,
        serde_json::from_str(payload).unwrap_or(Value::Null),
        session,
        xsrf,
        secure,
    )
}

pub(crate) fn envelope(r: &Resp) -> Value {
    let v = r.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "api_error_message",
            "api_response",
            "api_server_version",
            "api_status_code"
        ],
        "{v}"
    );
    assert_eq!(v["api_status_code"], r.status, "{v}");
    assert!(!v["api_server_version"].as_str().unwrap().is_empty());
    v
}

pub(crate) fn h(key: &str) -> [(&str, &str); 2] {
    [("X-USER", "admin"), ("X-APIKEY", key)]
}

pub(crate) fn wait_completed(s: &Server, key: &str, sid: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = s.get_with(&format!("/api/v4/submission/is_completed/{sid}/"), &h(key));
        if envelope(&r)["api_response"] == true {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never completed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn checklist() {
    let s = Server::start(CONFIG);
    let k1 = apikey(&s, &["add", "admin", "k1", "--priv", "RW"]);
    let ro = apikey(&s, &["add", "admin", "ro", "--priv", "R"]);
    assert!(k1.starts_with("k1:"));
    // [1] v3 → 404 envelope.
    let r = s.get("/api/v3/auth/init/");
    assert_eq!(r.status, 404);
    assert!(
        envelope(&r)["api_error_message"]
            .as_str()
            .unwrap()
            .starts_with("Api does not exist")
    );
    // [3] login with a key.
    let body = json!({"user": "admin", "apikey": k1}).to_string();
    let r = s.post_raw(
        "/api/v4/auth/login/",
        "application/json",
        body.as_bytes(),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = envelope(&r);
    assert_eq!(v["api_response"]["username"], "admin");
    assert!(v["api_response"]["session_duration"].is_i64());
    let (st, _, sess, xsrf, secure) = login(&s, &body);
    assert_eq!(st, 200);
    assert!(!sess.is_empty() && !xsrf.is_empty() && !secure);
    // [5] bad logins.
    for (b, msg) in [
        (
            json!({"user": "admin", "apikey": "k1:nope"}),
            "Invalid user or APIKey",
        ),
        (
            json!({"user": "admin", "apikey": "zz:nope"}),
            "Invalid user or APIKey",
        ),
        (
            json!({"user": "who", "apikey": k1}),
            "Invalid user or APIKey",
        ),
        (
            json!({"user": "admin", "apikey": "nocolon"}),
            "Invalid user or APIKey",
        ),
        (
            json!({}),
            "Not enough information to proceed with authentication",
        ),
    ] {
        let r = s.post_raw(
            "/api/v4/auth/login/",
            "application/json",
            b.to_string().as_bytes(),
            &[],
        );
        assert_eq!(r.status, 401);
        assert_eq!(envelope(&r)["api_error_message"], msg);
    }
    // [6] /api/ needs a session.
    let r = s.get("/api/");
    assert_eq!(r.status, 401);
    assert_eq!(envelope(&r)["api_error_message"], "Session not found");
    let sess = format!("session={sess}");
    let r = s.get_with("/api/", &[("Cookie", &sess)]);
    assert_eq!(envelope(&r)["api_response"], json!(["v4"]));
    // [25] a forgotten session.
    let r = s.get_with("/api/", &[("Cookie", "session=deadbeef")]);
    assert_eq!(envelope(&r)["api_error_message"], "Session expired");
    // [7] whoami with headers.
    let r = s.get_with("/api/v4/user/whoami/", &h(&k1));
    assert_eq!(envelope(&r)["api_response"]["username"], "admin");
    let r = s.get_with("/api/v4/user/whoami/", &h("k1:wrong"));
    assert_eq!(r.status, 401);
    // [8] a read-only key cannot submit.
    let json_part = r#"{"name":"hello.txt","metadata":{"k":"v"},"params":{"description":"t"}}"#;
    let parts = [
        Part::Field("json", json_part),
        Part::File("bin", "hello.txt", b"hello world\n"),
    ];
    let r = s.post_multipart_with("/api/v4/submit/", &parts, &h(&ro));
    assert_eq!(r.status, 403);
    assert!(
        envelope(&r)["api_error_message"]
            .as_str()
            .unwrap()
            .contains("requires one of the following roles: submission_create")
    );
    // [9] multipart submit.
    let r = s.post_multipart_with("/api/v4/submit/", &parts, &h(&k1));
    assert_eq!(r.status, 200, "{}", r.text());
    let sub = envelope(&r)["api_response"].clone();
    let sid = sub["sid"].as_str().unwrap().to_owned();
    assert!((20..=24).contains(&sid.len()) && sid.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        sub["files"][0],
        json!({"name": "hello.txt", "sha256": HELLO_SHA, "size": 12})
    );
    assert_eq!(sub["metadata"]["k"], "v");
    assert_eq!(sub["params"]["description"], "t");
    assert_eq!(sub["params"]["submitter"], "admin");
    assert!(sub["max_score"].is_i64());
    // [10] no json part.
    let r = s.post_multipart_with(
        "/api/v4/submit/",
        &[Part::File("bin", "hello.txt", b"hello world\n")],
        &h(&k1),
    );
    assert_eq!(
        envelope(&r)["api_response"]["params"]["description"],
        "Inspection of file: hello.txt"
    );
    // [11] JSON bodies.
    for b in [
        json!({"base64": "aGVsbG8gd29ybGQK", "name": "h.txt"}),
        json!({"plaintext": "hello world\n"}),
        json!({"sha256": HELLO_SHA}),
    ] {
        let r = s.post_raw(
            "/api/v4/submit/",
            "application/json",
            b.to_string().as_bytes(),
            &h(&k1),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            envelope(&r)["api_response"]["files"][0]["sha256"],
            HELLO_SHA
        );
    }
    let r = s.post_raw(
        "/api/v4/submit/",
        "application/json",
        json!({"sha256": "0".repeat(64)}).to_string().as_bytes(),
        &h(&k1),
    );
    assert_eq!(r.status, 404);
    envelope(&r);
    // [12] empty, bad content type, bad JSON, bad base64, nothing to scan.
    let r = s.post_raw(
        "/api/v4/submit/",
        "application/json",
        br#"{"plaintext": ""}"#,
        &h(&k1),
    );
    assert_eq!(
        (r.status, envelope(&r)["api_error_message"].clone()),
        (400, json!("File empty."))
    );
    let r = s.post_raw("/api/v4/submit/", "text/plain", b"hi", &h(&k1));
    assert_eq!(envelope(&r)["api_error_message"], "Invalid content type");
    for bad in [
        &b"{nope"[..],
        br#"{"base64": "!!!"}"#,
        br#"{"name": "x"}"#,
        b"[]",
    ] {
        let r = s.post_raw("/api/v4/submit/", "application/json", bad, &h(&k1));
        assert_eq!(r.status, 400, "{}", r.text());
        envelope(&r);
    }
    let r = s.post_multipart_with(
        "/api/v4/submit/",
        &[Part::Field("json", "{bad"), Part::File("bin", "a", b"a")],
        &h(&k1),
    );
    assert_eq!(r.status, 400);
    // [13] a CaRT upload is unwrapped.
    let cart = nestbox_analyzers::cart::pack(
        b"hello world\n",
        json!({"name": "from-cart.txt"}).as_object().unwrap(),
    );
    let r = s.post_multipart_with(
        "/api/v4/submit/",
        &[Part::File("bin", "x.cart", &cart)],
        &h(&k1),
    );
    let v = envelope(&r)["api_response"].clone();
    assert_eq!(v["files"][0]["sha256"], HELLO_SHA);
    assert_eq!(v["files"][0]["name"], "from-cart.txt");
    // [14] completion; unknown sid.
    wait_completed(&s, &k1, &sid);
    let r = s.get_with("/api/v4/submission/is_completed/nope/", &h(&k1));
    assert_eq!(r.status, 404);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "Submission ID nope does not exists."
    );
    // [15] keys as lists.
    let v = envelope(&s.get_with(&format!("/api/v4/submission/{sid}/"), &h(&k1)))["api_response"]
        .clone();
    assert_eq!(v["state"], "completed");
    let keys = v["results"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        let k = k.as_str().unwrap();
        assert!(k.starts_with(HELLO_SHA) && k.split('.').count() == 4, "{k}");
    }
    // [16] full.
    let full = envelope(&s.get_with(
        &format!("/api/v4/submission/full/{sid}/?get_full_tree=False"),
        &h(&k1),
    ))["api_response"]
        .clone();
    assert!(full["results"].is_object() && full["errors"].is_object());
    let node = &full["file_tree"][HELLO_SHA];
    assert_eq!(node["name"], json!(["hello.txt"]));
    let sum: i64 = full["results"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["result"]["score"].as_i64().unwrap())
        .sum();
    assert_eq!(node["score"], sum);
    assert_eq!(full["max_score"], sum);
    assert_eq!(full["file_infos"][HELLO_SHA]["sha256"], HELLO_SHA);
    assert_eq!(full["missing_result_keys"], json!([]));
    for r in full["results"].as_object().unwrap().values() {
        for sec in r["result"]["sections"].as_array().unwrap() {
            for k in [
                "depth",
                "title_text",
                "body_format",
                "classification",
                "heuristic",
            ] {
                assert!(sec.get(k).is_some(), "{k}");
            }
            assert!(sec["tags"].is_array());
        }
    }
    // [18][19] downloads.
    let r = s.get_with(
        &format!("/api/v4/file/download/{HELLO_SHA}/?self=junk"),
        &h(&k1),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains(&format!("filename*=UTF-8''{HELLO_SHA}.cart"))
    );
    let un = nestbox_analyzers::cart::unpack(&r.body, 100).unwrap();
    assert_eq!(un.data, b"hello world\n");
    assert_eq!(un.header["name"], HELLO_SHA);
    let r = s.get_with(
        &format!("/api/v4/file/download/{HELLO_SHA}/?encoding=raw"),
        &h(&k1),
    );
    assert_eq!(r.body, b"hello world\n");
    let r = s.get_with(
        &format!("/api/v4/file/download/{HELLO_SHA}/?encoding=bogus"),
        &h(&k1),
    );
    assert_eq!(r.status, 403);
    envelope(&r);
    let r = s.get_with(
        &format!("/api/v4/file/download/{}/", "0".repeat(64)),
        &h(&k1),
    );
    assert_eq!(
        (r.status, envelope(&r)["api_error_message"].clone()),
        (404, json!("The file was not found in the system."))
    );
    // [20] file views.
    let info =
        envelope(&s.get_with(&format!("/api/v4/file/info/{HELLO_SHA}/"), &h(&k1)))["api_response"]
            .clone();
    for k in ["sha256", "md5", "sha1", "size", "type", "entropy", "magic"] {
        assert!(!info[k].is_null(), "{k}");
    }
    let v = envelope(&s.get_with(&format!("/api/v4/file/strings/{HELLO_SHA}/"), &h(&k1)));
    assert_eq!(
        v["api_response"],
        json!({"content": "hello world", "truncated": false})
    );
    assert!(envelope(&s.get_with(&format!("/api/v4/file/hex/{HELLO_SHA}/"), &h(&k1)))["api_response"]["content"].is_string());
    assert!(envelope(&s.get_with(&format!("/api/v4/file/result/{HELLO_SHA}/"), &h(&k1)))["api_response"]["results"].is_array());
    let key = keys[0].as_str().unwrap();
    let r = s.get_with(&format!("/api/v4/result/{key}/"), &h(&k1));
    assert_eq!(envelope(&r)["api_response"]["sha256"], HELLO_SHA);
    // [21][22][23] ingest and notification queues.
    let ing = r#"{"name":"hello.txt","metadata":{},"params":{"type":"AL_CLIENT"},"notification_queue":"q1"}"#;
    let r = s.post_multipart_with(
        "/api/v4/ingest/",
        &[
            Part::Field("json", ing),
            Part::File("bin", "hello.txt", b"hello world\n"),
        ],
        &h(&k1),
    );
    let iid = envelope(&r)["api_response"]["ingest_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let msgs = loop {
        let v =
            envelope(&s.get_with("/api/v4/ingest/get_message_list/q1/", &h(&k1)))["api_response"]
                .clone();
        if !v.as_array().unwrap().is_empty() {
            break v;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(msgs.as_array().unwrap().len(), 1);
    assert_eq!(msgs[0]["ingest_id"], iid.as_str());
    assert_eq!(msgs[0]["submission"]["metadata"]["ingest_id"], iid.as_str());
    assert_eq!(msgs[0]["failure"], "");
    let msid = msgs[0]["submission"]["sid"].as_str().unwrap();
    assert_eq!(
        s.get_with(&format!("/api/v4/submission/{msid}/"), &h(&k1))
            .status,
        200
    );
    assert_eq!(
        envelope(&s.get_with("/api/v4/ingest/get_message_list/q1/", &h(&k1)))["api_response"],
        json!([])
    );
    assert_eq!(
        envelope(&s.get_with("/api/v4/ingest/get_message/q1/", &h(&k1)))["api_response"],
        Value::Null
    );
    let hi = r#"{"name":"h","notification_queue":"q2","notification_threshold":2000}"#;
    let r = s.post_multipart_with(
        "/api/v4/ingest/",
        &[
            Part::Field("json", hi),
            Part::File("bin", "h", b"hello world\n"),
        ],
        &h(&k1),
    );
    assert_eq!(r.status, 200);
    let bad = r#"{"name":"h","notification_queue":"q2","notification_threshold":"x"}"#;
    let r = s.post_multipart_with(
        "/api/v4/ingest/",
        &[Part::Field("json", bad), Part::File("bin", "h", b"x")],
        &h(&k1),
    );
    assert_eq!(
        (r.status, envelope(&r)["api_error_message"].clone()),
        (400, json!("notification_threshold should be and int"))
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        envelope(&s.get_with("/api/v4/ingest/get_message_list/q2/", &h(&k1)))["api_response"],
        json!([])
    );
    // [24] trailing slash and double slash.
    let r = s.post_raw("/api/v4/submit", "application/json", b"{}", &h(&k1));
    assert_eq!(r.status, 308);
    assert_eq!(
        envelope(&s.get_with("//api/v4/user/whoami/", &h(&k1)))["api_status_code"],
        200
    );
    // [26] XSRF on password sessions.
    let (_, v, sess, xsrf, _) = login(&s, r#"{"user":"admin","password":"pw"}"#);
    assert_eq!(v["api_response"]["roles_limit"], Value::Null);
    let ck = format!("session={sess}");
    let b = br#"{"plaintext": "xsrf"}"#;
    let r = s.post_raw("/api/v4/submit/", "application/json", b, &[("Cookie", &ck)]);
    assert_eq!(
        (
            r.status,
            envelope(&r)["api_error_message"]
                .as_str()
                .unwrap()
                .contains("Invalid XSRF token")
        ),
        (403, true)
    );
    let r = s.post_raw(
        "/api/v4/submit/",
        "application/json",
        b,
        &[("Cookie", &ck), ("X-XSRF-TOKEN", &xsrf)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // [27] GET with a JSON content type.
    let r = s.get_with(
        "/api/v4/user/whoami/",
        &[("Cookie", &ck), ("Content-Type", "application/json")],
    );
    assert_eq!(r.status, 200);
    // Search, services, site map.
    let v = envelope(&s.get_with(
        "/api/v4/search/submission/?query=params.submitter:admin",
        &h(&k1),
    ))["api_response"]
        .clone();
    assert!(v["total"].as_i64().unwrap() >= 5);
    let all = v["total"].as_i64().unwrap();
    // The store answers field:value terms (one count and one page); derived fields
    // (state) and bare words are checked record by record: both agree on totals and pages.
    let search = |q: &str| {
        let body = json!({"query": q, "offset": 1, "rows": 2}).to_string();
        envelope(&s.post_raw(
            "/api/v4/search/submission/",
            "application/json",
            body.as_bytes(),
            &h(&k1),
        ))["api_response"]
            .clone()
    };
    let v = search("metadata.k:V AND files.name:hello*");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["items"], json!([]), "offset 1 of 1");
    let v = search("params.submitter:admin AND state:*");
    assert_eq!(v["total"], all, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let v = search("-metadata.k:v OR files.sha256:nomatch");
    assert_eq!(v["total"], all - 1, "{v}");
    let v = search("sid:NOSUCH OR admin");
    assert!(v["total"].as_i64().unwrap() >= 1, "{v}");
    let v = envelope(&s.get_with(
        &format!("/api/v4/search/file/?query=sha256:{HELLO_SHA}"),
        &h(&k1),
    ))["api_response"]
        .clone();
    assert_eq!(v["total"], 1);
    assert_eq!(
        s.get_with("/api/v4/search/submission/", &h(&k1)).status,
        400
    );
    assert!(
        envelope(&s.get_with("/api/v4/service/all/", &h(&k1)))["api_response"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    assert!(
        envelope(&s.get_with("/api/v4/", &h(&k1)))["api_response"]
            .as_array()
            .unwrap()
            .len()
            > 20
    );
    // Cross-dialect: the same sample through Cuckoo and CAPE.
    let v = s.get(&format!("/files/view/sha256/{HELLO_SHA}")).json();
    assert_eq!(v["sample"]["sha256"], HELLO_SHA);
    let v = s
        .get(&format!("/apiv2/tasks/search/sha256/{HELLO_SHA}/"))
        .json();
    assert!(!v["data"].as_array().unwrap().is_empty(), "{v}");
    // Revoked keys stop working.
    apikey(&s, &["revoke", "admin", "k1"]);
    assert_eq!(s.get_with("/api/v4/user/whoami/", &h(&k1)).status, 401);
}

#[test]
fn apikeys_over_the_api() {
    let s = Server::start(CONFIG);
    let (_, _, sess, xsrf, _) = login(&s, r#"{"user":"admin","password":"pw"}"#);
    let ck = format!("session={sess}");
    let hdrs = [("Cookie", ck.as_str()), ("X-XSRF-TOKEN", xsrf.as_str())];
    let body = br#"{"priv": ["R"], "key_name": "mine"}"#;
    let req = |method: &str, path: &str, body: &[u8]| {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", s.base, path));
        for (k, v) in hdrs {
            b = b.header(k, v);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut resp = agent
            .run(
                b.header("Content-Type", "application/json")
                    .body(body.to_vec())
                    .unwrap(),
            )
            .unwrap();
        (
            resp.status().as_u16(),
            serde_json::from_str::<Value>(&resp.body_mut().read_to_string().unwrap()).unwrap(),
        )
    };
    let (st, v) = req("PUT", "/api/v4/apikey/add/", body);
    assert_eq!(st, 200, "{v}");
    let key = v["api_response"]["keypassword"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = req("PUT", "/api/v4/apikey/add/", body);
    assert_eq!(st, 400);
    let (st, _) = req(
        "PUT",
        "/api/v4/apikey/add/",
        br#"{"priv": ["R"], "key_name": "a:b"}"#,
    );
    assert_eq!(st, 400);
    let r = s.get_with("/api/v4/user/whoami/", &h(&key));
    assert_eq!(r.status, 200);
    let (st, _) = req("DELETE", "/api/v4/apikey/mine+admin/", b"");
    assert_eq!(st, 200);
    assert_eq!(s.get_with("/api/v4/user/whoami/", &h(&key)).status, 401);
}

fn delete_with(s: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    s.request_with("DELETE", path, headers)
}

pub(crate) fn submit_hello(s: &Server, key: &str, content: &[u8]) -> Resp {
    s.post_multipart_with(
        "/api/v4/submit/",
        &[Part::File("bin", "hello.txt", content)],
        &h(key),
    )
}

/// Quotas as Assemblyline enforces them (no worker: tasks stay pending, so the concurrent
/// submission quota is deterministic).
#[test]
fn quotas_headers_and_503s() {
    let s = Server::start(QUOTA_CONFIG);
    let k = apikey(&s, &["add", "admin", "k", "--priv", "RW"]);
    // Concurrent submissions: the first is pending, the second is refused (and gives its
    // daily submission back).
    let r = submit_hello(&s, &k, b"one");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-remaining-quota-submission"), Some("1"));
    let sid1 = envelope(&r)["api_response"]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = submit_hello(&s, &k, b"two");
    assert_eq!(r.status, 503);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "You've exceeded your maximum concurrent submission quota of 1"
    );
    // Daily API calls: submit/ and user/quotas/ do not count; the others count down.
    let r = s.get_with(&format!("/api/v4/submission/{sid1}/"), &h(&k));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-remaining-quota-api"), Some("3"));
    let r = s.get_with("/api/v4/user/quotas/admin/", &h(&k));
    assert_eq!(
        envelope(&r)["api_response"],
        json!({"daily_api": 3, "daily_submission": 1})
    );
    assert_eq!(r.header("x-remaining-quota-api"), None);
    // Deleting the pending submission frees the concurrent slot.
    let r = delete_with(&s, &format!("/api/v4/submission/{sid1}/"), &h(&k));
    assert_eq!(envelope(&r)["api_response"], json!({"success": true}));
    assert_eq!(r.header("x-remaining-quota-api"), Some("2"));
    let r = delete_with(&s, &format!("/api/v4/submission/{sid1}/"), &h(&k));
    assert_eq!(r.status, 404);
    assert_eq!(
        envelope(&r)["api_error_message"],
        format!("There are not submission with sid: {sid1}")
    );
    let r = submit_hello(&s, &k, b"two");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-remaining-quota-submission"), Some("0"));
    // Daily submissions: the third of the day is refused, with the message the client
    // treats as final (it holds "quota" and "daily").
    let r = s.get_with("/api/v4/user/whoami/", &h(&k));
    assert_eq!(r.header("x-remaining-quota-api"), Some("0"));
    assert_eq!(r.header("x-remaining-quota-submission"), Some("0"));
    let r = submit_hello(&s, &k, b"three");
    assert_eq!(r.status, 503);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "You've reached your daily maximum submission quota of 2"
    );
    // The fifth counted call of the day is refused.
    let r = s.get_with("/api/v4/user/whoami/", &h(&k));
    assert_eq!(r.status, 503);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "You've exceeded your daily maximum API calls quota of 4"
    );
    // Another user's quotas need administration (an RW key has none).
    let r = s.get_with("/api/v4/user/quotas/nobody/", &h(&k));
    assert_eq!(r.status, 403);
    assert!(
        envelope(&r)["api_error_message"]
            .as_str()
            .unwrap()
            .ends_with("[You are not allowed to view settings for another user then yourself.]")
    );
    // The counters are in the store: a restart forgets none of today's.
    let s = Server::start_in(s.kill(), QUOTA_CONFIG);
    let r = s.get_with("/api/v4/user/whoami/", &h(&k));
    assert_eq!(r.status, 503, "{}", r.text());
    let r = submit_hello(&s, &k, b"four");
    assert_eq!(r.status, 503);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "You've reached your daily maximum submission quota of 2"
    );
}

const QUOTA_CONFIG: &str = "[cape]\nadmin_password = \"pw\"\n[analysis]\nworkers = 0\n\
     [assemblyline.quotas]\nconcurrent_submissions = 1\ndaily_submissions = 2\n\
     daily_api_calls = 4\n";

/// Two API nodes on one PostgreSQL database count the same quotas (`make pg`).
#[test]
fn quotas_are_shared_by_api_nodes() {
    if std::env::var("NESTBOX_IT_DATABASE").as_deref() != Ok("postgres") {
        eprintln!(
            "quotas_are_shared_by_api_nodes: runs with NESTBOX_IT_DATABASE=postgres (make pg)"
        );
        return;
    }
    let url = crate::harness::pg_database("quotas");
    let config = format!(
        "[cape]\nadmin_password = \"pw\"\n[analysis]\nworkers = 0\n\
         [assemblyline.quotas]\nconcurrent_submissions = 1\ndaily_api_calls = 3\n\
         [database]\nurl = {url:?}\n"
    );
    let a = Server::start_args(tempfile::tempdir().unwrap(), &config, &["--role", "api"]);
    let b = Server::start_args(tempfile::tempdir().unwrap(), &config, &["--role", "api"]);
    let k = apikey(&a, &["add", "admin", "k", "--priv", "RW"]);
    for (node, left) in [(&a, "2"), (&b, "1"), (&a, "0")] {
        let r = node.get_with("/api/v4/user/whoami/", &h(&k));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-remaining-quota-api"), Some(left));
    }
    let r = b.get_with("/api/v4/user/whoami/", &h(&k));
    assert_eq!(r.status, 503);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "You've exceeded your daily maximum API calls quota of 3"
    );
    // One pending submission through a fills the concurrent quota on b too.
    let r = submit_hello(&a, &k, b"one");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = submit_hello(&b, &k, b"two");
    assert_eq!(r.status, 503);
    assert_eq!(
        envelope(&r)["api_error_message"],
        "You've exceeded your maximum concurrent submission quota of 1"
    );
}

/// `live/` watch queues as `al-submit` polls them, `result/error/`, `result/multiple_keys/`
/// and DELETE of a finished submission.
#[test]
fn live_queues_result_keys_and_delete() {
    let s = Server::start(CONFIG);
    let k = apikey(&s, &["add", "admin", "k", "--priv", "RW"]);
    let r = submit_hello(&s, &k, b"hello world\n");
    let sid = envelope(&r)["api_response"]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.get_with(&format!("/api/v4/live/setup_watch_queue/{sid}/"), &h(&k));
    let wq = envelope(&r)["api_response"]["wq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(wq.starts_with("D-") && wq.ends_with("-WQ"), "{wq}");
    // Poll as al-submit does until `stop`.
    let mut msgs: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !msgs.iter().any(|m| m["type"] == "stop") {
        assert!(std::time::Instant::now() < deadline, "no stop: {msgs:?}");
        let r = s.get_with(&format!("/api/v4/live/get_message_list/{wq}/"), &h(&k));
        msgs.extend(envelope(&r)["api_response"].as_array().unwrap().clone());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        msgs.last().unwrap()["msg"],
        "All messages received, closing queue..."
    );
    let full = envelope(&s.get_with(&format!("/api/v4/submission/{sid}/"), &h(&k)))["api_response"]
        .clone();
    let result_keys: Vec<String> = full["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(!result_keys.is_empty());
    if msgs.len() > 1 {
        // Watched while running: start, one cachekey per result, stop.
        assert_eq!(msgs[0]["type"], "start");
        let keys: Vec<&str> = msgs
            .iter()
            .filter(|m| m["type"] == "cachekey")
            .map(|m| m["msg"].as_str().unwrap())
            .collect();
        assert_eq!(keys, result_keys);
    }
    // The queue is drained; a single read is the timeout pseudo-message.
    let r = s.get_with(&format!("/api/v4/live/get_message_list/{wq}/"), &h(&k));
    assert_eq!(envelope(&r)["api_response"], json!([]));
    let r = s.get_with(&format!("/api/v4/live/get_message/{wq}/"), &h(&k));
    assert_eq!(envelope(&r)["api_response"]["type"], "timeout");
    assert_eq!(envelope(&r)["api_response"]["status_code"], 408);
    // A queue opened on a finished submission holds only `stop` (the client then asks
    // is_completed).
    let r = s.get_with(&format!("/api/v4/live/setup_watch_queue/{sid}/"), &h(&k));
    let wq2 = envelope(&r)["api_response"]["wq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.get_with(&format!("/api/v4/live/get_message/{wq2}/"), &h(&k));
    assert_eq!(envelope(&r)["api_response"]["type"], "stop");
    let r = s.get_with("/api/v4/live/get_message_list/nope/", &h(&k));
    assert_eq!(
        (r.status, envelope(&r)["api_error_message"].clone()),
        (400, json!("invalid watch queue"))
    );
    let r = s.get_with("/api/v4/live/setup_watch_queue/doesnotexist/", &h(&k));
    assert_eq!(r.status, 403);
    let r = s.get_with(&format!("/api/v4/live/outstanding_services/{sid}/"), &h(&k));
    assert_eq!(envelope(&r)["api_response"], json!({}));
    // result/multiple_keys: found keys by key, unknown ones left out.
    let bogus = format!("{}.Nope.v1.c0", "0".repeat(64));
    let body = json!({"result": [result_keys[0], bogus], "error": [bogus]}).to_string();
    let r = s.post_raw(
        "/api/v4/result/multiple_keys/",
        "application/json",
        body.as_bytes(),
        &h(&k),
    );
    let v = envelope(&r)["api_response"].clone();
    assert_eq!(v["error"], json!({}));
    let got: Vec<&String> = v["result"].as_object().unwrap().keys().collect();
    assert_eq!(got, [&result_keys[0]]);
    assert!(v["result"][&result_keys[0]]["result"]["score"].is_i64());
    let r = s.post_raw(
        "/api/v4/result/multiple_keys/",
        "application/json",
        b"[",
        &h(&k),
    );
    assert_eq!(r.status, 400);
    // result/error/ of a key that is no error.
    let r = s.get_with(&format!("/api/v4/result/error/{}/", result_keys[0]), &h(&k));
    assert_eq!(r.status, 404);
    assert_eq!(
        envelope(&r)["api_error_message"],
        format!("Cache key {} does not exists.", result_keys[0])
    );
    // DELETE: the record and its task go (the Cuckoo view agrees).
    let task_id = full["task_id"].as_i64().unwrap();
    let r = delete_with(&s, &format!("/api/v4/submission/{sid}/"), &h(&k));
    assert_eq!(envelope(&r)["api_response"], json!({"success": true}));
    let r = s.get_with(&format!("/api/v4/submission/{sid}/"), &h(&k));
    assert_eq!(r.status, 404);
    assert_eq!(s.get(&format!("/tasks/view/{task_id}")).status, 404);
    // Read-only keys may not delete.
    let ro = apikey(&s, &["add", "admin", "ro", "--priv", "R"]);
    let r = delete_with(&s, &format!("/api/v4/submission/{sid}/"), &h(&ro));
    assert_eq!(r.status, 403);
}
