//! The web UI over HTTP, without a browser: every page's status and content type,
//! escaping of hostile sample strings, CSRF on forms, logins, downloads as attachments
//! (samples only in encrypted zips), and that the API dialects still answer beside it.
//! The browser tests are in tests/web/ (`make web-test`).

use std::io::Read;

use crate::harness::{Part, Resp, Server, s3_storage};

const STATIC_ONLY: &str = "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n";
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>.js";
const HOSTILE_BODY: &[u8] =
    b"<script>alert('strings')</script> http://evil.example/<svg/onload=alert(2)> padding padding";

/// A browser's cookie jar, as far as these tests need one.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, r: &Resp) {
        // The harness folds repeated headers; split on the cookie boundary we emit.
        if let Some(v) = r.header("set-cookie") {
            for c in v
                .split(", nestbox_")
                .map(|c| c.trim_start_matches("nestbox_"))
            {
                let kv = c.split(';').next().unwrap_or("");
                if let Some((k, v)) = kv.split_once('=') {
                    let k = format!("nestbox_{}", k.trim_start_matches("nestbox_"));
                    self.0.retain(|(n, _)| *n != k);
                    if !v.is_empty() {
                        self.0.push((k, v.to_owned()));
                    }
                }
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn get(&mut self, s: &Server, path: &str) -> Resp {
        let r = s.get_with(path, &[("Cookie", &self.header())]);
        self.take(&r);
        r
    }
    fn post_form(&mut self, s: &Server, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        let r = s.post_raw(
            path,
            "application/x-www-form-urlencoded",
            body.finish().as_bytes(),
            &[("Cookie", &self.header())],
        );
        self.take(&r);
        r
    }
}

fn csrf_of(page: &str) -> String {
    let i = page
        .find("name=\"csrf_token\" value=\"")
        .expect("csrf field")
        + 25;
    page[i..i + 32].to_owned()
}

fn submit_hostile(s: &Server, jar: &mut Jar) -> i64 {
    let form = jar.get(s, "/submit/");
    assert_eq!(form.status, 200);
    let token = csrf_of(&form.text());
    let r = s.post_multipart_with(
        "/submit/",
        &[
            Part::Field("csrf_token", &token),
            Part::Field("package", "js"),
            Part::Field("options", "a=<b>"),
            Part::File("file", HOSTILE_NAME, HOSTILE_BODY),
        ],
        &[("Cookie", &jar.header())],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let loc = r.header("location").expect("redirect").to_owned();
    let id: i64 = loc
        .trim_start_matches("/analysis/")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("redirect to {loc}"));
    id
}

fn assert_escaped(page: &str) {
    for raw in ["<img src=x", "<script>alert(", "<svg/onload"] {
        assert!(!page.contains(raw), "unescaped {raw:?} in the page");
    }
}

fn unzip_encrypted(bytes: &[u8]) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut names = Vec::new();
    for i in 0..z.len() {
        let f = z.by_index_raw(i).unwrap();
        let name = f.name().unwrap().into_owned();
        assert!(f.encrypted(), "{name} is not encrypted");
        names.push(name);
    }
    // And the password is `infected`.
    let mut f = z.by_index_decrypt(0, b"infected").expect("decrypts");
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).unwrap();
    names
}

#[test]
fn pages_escape_and_download() {
    let s = Server::start(STATIC_ONLY);
    let mut jar = Jar::default();
    let id = submit_hostile(&s, &mut jar);
    s.wait_status(id, "reported");

    let page = jar.get(&s, &format!("/analysis/{id}/"));
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text();
    assert_escaped(&html);
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;.js"),
        "name shown escaped"
    );
    for tab in [
        "summary",
        "static",
        "behavior",
        "network",
        "dropped",
        "screenshots",
        "raw",
    ] {
        assert!(
            html.contains(&format!("id=\"{tab}\" role=\"tabpanel\"")),
            "{tab} tab"
        );
    }

    // The queue, search by sha256 / name, and the live-update JSON.
    let sha = s.get(&format!("/tasks/view/{id}")).json()["task"]["sample"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = jar.get(&s, "/");
    assert_eq!(q.status, 200);
    assert_escaped(&q.text());
    assert!(q.text().contains(&format!("href=\"/analysis/{id}/\"")));
    let found = jar.get(&s, &format!("/?q={}", sha.to_uppercase()));
    assert!(
        found.text().contains(&format!("data-id=\"{id}\"")),
        "search by sha256"
    );
    let none = jar.get(&s, "/?q=nothing.example");
    assert!(none.text().contains("No task matches") && !none.text().contains("data-id="));
    let by_name = jar.get(
        &s,
        "/ui/tasks.json?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.js",
    );
    assert_eq!(by_name.json()["rows"][0]["id"], id, "search by file name");
    assert_eq!(by_name.json()["rows"][0]["status"], "reported");
    assert!(by_name.json()["rows"][0]["signatures"].is_i64());
    // A bare number is a task id.
    let r = jar.get(&s, &format!("/?q={id}"));
    assert_eq!(
        r.header("location"),
        Some(format!("/analysis/{id}/").as_str())
    );

    // Sample and status pages.
    let sp = jar.get(&s, &format!("/file/{sha}/"));
    assert_eq!(sp.status, 200);
    assert!(sp.text().contains(&format!("/analysis/{id}/")));
    assert_escaped(&sp.text());
    let st = jar.get(&s, "/status/");
    assert_eq!(st.status, 200);
    assert!(st.text().contains("reported") && st.text().contains("static1"));

    // Downloads are attachments; samples only inside encrypted zips.
    let rj = jar.get(&s, &format!("/analysis/{id}/download/report.json"));
    assert!(
        rj.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(rj.json()["info"]["id"], id);
    let rh = jar.get(&s, &format!("/analysis/{id}/download/report.html"));
    assert!(
        rh.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert_escaped(&rh.text());
    let sample = jar.get(&s, &format!("/file/{sha}/download"));
    assert!(
        sample
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(unzip_encrypted(&sample.body), vec![sha.clone()]);
    let all = jar.get(&s, &format!("/analysis/{id}/download/all.zip"));
    assert!(
        unzip_encrypted(&all.body)
            .iter()
            .any(|n| n == "reports/report.json")
    );
    let raw = jar.get(&s, &format!("/analysis/{id}/report.json"));
    assert!(
        raw.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );

    // The APIs still answer beside the UI.
    assert_eq!(s.get("/tasks/list").json()["tasks"][0]["id"], id);
    assert_eq!(s.get("/no/such/path").status, 404);
    assert_eq!(s.get("/apiv2/tasks/status/1/").status, 200);
}

#[test]
fn bad_requests_are_pages_not_panics() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    let mut jar = Jar::default();
    for (path, status) in [
        ("/analysis/abc/", 404),
        ("/analysis/999/", 404),
        ("/analysis/-1/", 404),
        ("/file/zzzz/", 404),
        (&format!("/file/{}/", "ab".repeat(32)), 404),
        ("/analysis/1/calls.json", 400),
        ("/analysis/1/download/nope", 404),
        ("/analysis/1/shot/0", 404),
        ("/?before=notanumber", 200),
        ("/?status=bogus&min_score=x", 200),
        ("/?from=2026-99-01", 200),
        ("/ui/tasks.json?status=bogus", 400),
    ] {
        let r = jar.get(&s, path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.header("content-type").is_some(), "{path}");
    }
    assert!(
        jar.get(&s, "/?status=bogus")
            .text()
            .contains("Unknown status")
    );
    // A queued task (no worker) shows its status and follows it.
    let id = s.submit_file("x.txt", b"hello");
    let p = jar.get(&s, &format!("/analysis/{id}/"));
    assert!(p.text().contains("id=\"task-status\""));
    assert_eq!(
        jar.get(&s, &format!("/analysis/{id}/status.json")).json()["status"],
        "pending"
    );
    assert_eq!(jar.get(&s, "/static/nestbox.js").status, 200);
    assert_eq!(jar.get(&s, "/static/nestbox.css").status, 200);
}

#[test]
fn forms_need_the_csrf_token() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    let mut jar = Jar::default();
    let token = csrf_of(&jar.get(&s, "/submit/").text());
    // No token, a wrong token, and the right token with another browser's cookie.
    let mut other = Jar::default();
    other.get(&s, "/");
    for (tok, cookie) in [
        ("", jar.header()),
        ("00000000000000000000000000000000", jar.header()),
        (token.as_str(), other.header()),
        (token.as_str(), String::new()),
    ] {
        let r = s.post_multipart_with(
            "/submit/",
            &[
                Part::Field("csrf_token", tok),
                Part::Field("urls", "http://example.com/"),
            ],
            &[("Cookie", &cookie)],
        );
        assert_eq!(r.status, 403, "token {tok:?}");
    }
    assert_eq!(
        s.get("/tasks/list").json()["tasks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // With both, a URL task is made and the browser goes to it.
    let r = s.post_multipart_with(
        "/submit/",
        &[
            Part::Field("csrf_token", &token),
            Part::Field("urls", "http://example.com/a\nhttps://example.org/b"),
            Part::Field("priority", "3"),
            Part::Field("tags", "x64"),
        ],
        &[("Cookie", &jar.header())],
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let tasks = s.get("/tasks/list").json()["tasks"].clone();
    assert_eq!(tasks.as_array().unwrap().len(), 2);
    assert_eq!(tasks[0]["priority"], 3);
    // Bad option values are refused with the form shown again.
    let r = s.post_multipart_with(
        "/submit/",
        &[
            Part::Field("csrf_token", &token),
            Part::Field("urls", "javascript:alert(1)"),
        ],
        &[("Cookie", &jar.header())],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("is not an http(s) URL"));
    assert_escaped(&r.text());
}

#[test]
fn login_when_auth_is_on() {
    let s = Server::start(
        "[analysis]\nworkers = 0\n[web]\nauth = true\n[cape]\nadmin_password = \"s3cret-pass\"\n",
    );
    let mut jar = Jar::default();
    let r = jar.get(&s, "/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login/?next=%2F"));
    assert_eq!(jar.get(&s, "/ui/tasks.json").status, 401);
    assert_eq!(jar.get(&s, "/status/").status, 303);
    let login = jar.get(&s, "/login/?next=/status/");
    assert_eq!(login.status, 200);
    let token = csrf_of(&login.text());
    let bad = jar.post_form(
        &s,
        "/login/",
        &[
            ("username", "admin"),
            ("password", "nope"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(bad.status, 401);
    let no_csrf = jar.post_form(
        &s,
        "/login/",
        &[("username", "admin"), ("password", "s3cret-pass")],
    );
    assert_eq!(no_csrf.status, 403);
    let ok = jar.post_form(
        &s,
        "/login/",
        &[
            ("username", "admin"),
            ("password", "s3cret-pass"),
            ("csrf_token", &token),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), Some("/"), "no open redirect");
    let cookie = ok.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let home = jar.get(&s, "/");
    assert_eq!(home.status, 200);
    assert!(home.text().contains("admin") && home.text().contains("Log out"));
    // A forged session cookie is no login.
    let forged = s.get_with("/", &[("Cookie", "nestbox_session=1.99999999999.0.00")]);
    assert_eq!(forged.status, 303);
    // Logging out needs the token too, then the session is gone.
    let token = csrf_of(&home.text());
    assert_eq!(jar.post_form(&s, "/logout/", &[]).status, 403);
    let out = jar.post_form(&s, "/logout/", &[("csrf_token", &token)]);
    assert_eq!(out.status, 303);
    assert_eq!(jar.get(&s, "/").status, 303);
}

#[test]
fn parent_and_child_tasks() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    let mut jar = Jar::default();
    let parent = s.submit_file("parent.bin", b"parent content");
    // A report with one dropped file, as a detonation leaves them.
    let dropped = b"#!/bin/sh\necho dropped\n";
    s.put_blob(&format!("analyses/{parent}/files/d1"), dropped);
    let report = serde_json::json!({
        "info": {"id": parent, "category": "file", "package": "", "score": 0},
        "target": {"category": "file", "file": {"name": "parent.bin"}},
        "dropped": [{"name": "<drop>.sh", "path": "files/d1", "size": dropped.len(),
                     "sha256": "00", "type": "text", "yara": []}],
    });
    s.put_blob(
        &format!("analyses/{parent}/reports/report.json"),
        report.to_string().as_bytes(),
    );

    let page = jar.get(&s, &format!("/analysis/{parent}/")).text();
    let form = format!("action=\"/analysis/{parent}/resubmit/dropped/0\"");
    assert!(page.contains(&form), "no resubmit form on the dropped file");
    assert!(page.contains("Nothing was extracted."));
    let token = csrf_of(&page);
    let path = format!("/analysis/{parent}/resubmit/dropped/0");
    assert_eq!(jar.post_form(&s, &path, &[]).status, 422, "no token field");
    assert_eq!(
        jar.post_form(&s, &path, &[("csrf_token", "0".repeat(32).as_str())])
            .status,
        403
    );
    let missing = format!("/analysis/{parent}/resubmit/dropped/7");
    assert_eq!(
        jar.post_form(&s, &missing, &[("csrf_token", &token)])
            .status,
        404
    );
    let r = jar.post_form(&s, &path, &[("csrf_token", &token)]);
    assert_eq!(r.status, 303, "{}", r.text());
    let loc = r.header("location").unwrap().to_owned();
    let child: i64 = loc
        .trim_start_matches("/analysis/")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    // The child analyses the dropped bytes under the dropped name (made safe).
    let view = s.get(&format!("/tasks/view/{child}")).json();
    use sha2::Digest;
    assert_eq!(
        view["task"]["sample"]["sha256"],
        hex(&sha2::Sha256::digest(dropped))
    );
    assert!(
        view["task"]["target"]
            .as_str()
            .unwrap()
            .ends_with(if s3_storage() {
                "_drop_.sh"
            } else {
                "/_drop_.sh"
            }),
        "the dropped name, made safe"
    );
    // Reboot makes a child too (Cuckoo also keeps the parent id in `custom`).
    let reboot = s.get(&format!("/tasks/reboot/{parent}")).json()["reboot_id"]
        .as_i64()
        .unwrap();

    // The parent lists both children, newest first; each child links back.
    let page = jar.get(&s, &format!("/analysis/{parent}/")).text();
    assert_escaped(&page);
    let a = page
        .find(&format!("href=\"/analysis/{reboot}/\""))
        .expect("reboot child listed");
    let b = page
        .find(&format!("href=\"/analysis/{child}/\""))
        .expect("dropped child listed");
    assert!(a < b, "newest child first");
    assert!(!page.contains("Nothing was extracted."));
    for c in [child, reboot] {
        let p = jar.get(&s, &format!("/analysis/{c}/")).text();
        assert!(
            p.contains(&format!(
                "<a href=\"/analysis/{parent}/\" class=\"parent-link\">"
            )),
            "task {c} does not link to its parent"
        );
    }
    // Deleting the parent leaves the children, without the link.
    assert_eq!(s.get(&format!("/tasks/delete/{parent}")).status, 200);
    let p = jar.get(&s, &format!("/analysis/{child}/")).text();
    assert!(!p.contains("parent-link"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn methods_a_page_does_not_take() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    // 405 with Allow, as CAPE's Django views (require_safe / require_POST), as a page.
    for (method, path, allow) in [
        ("POST", "/", "GET,HEAD"),
        ("POST", "/analysis/1/", "GET,HEAD"),
        ("DELETE", "/status/", "GET,HEAD"),
        ("PUT", "/submit/", "GET,HEAD,POST"),
        ("GET", "/logout/", "POST"),
        ("GET", "/analysis/1/resubmit/dropped/0", "POST"),
        ("POST", "/static/nestbox.css", "GET,HEAD"),
    ] {
        let r = s.request(method, path);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "{method} {path}: not a page"
        );
        assert!(
            r.text()
                .contains(&format!("does not take {method} requests"))
        );
    }
    // A form post that is not a form is a page too, with axum's status.
    let r = s.post_raw("/login/", "application/json", b"{}", &[]);
    assert_eq!(r.status, 415);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    // The API dialects keep their own answers (here Flask's 405 page of Cuckoo's API).
    let api = s.request("GET", "/tasks/create/file");
    assert_eq!(api.status, 405);
    assert_eq!(api.header("allow"), Some("OPTIONS, POST"));
    assert!(!api.text().contains("does not take"));
}
