//! The CAPEv2 `/apiv2/` dialect against the real binary: the checklist of spec cape.md
//! (items 1–37; 38–41 are the guest agent, which lands with a VM machinery), a flow as
//! CAPE integrations write it, throttling, bad input and cross-dialect identity.
//! `[N]` marks a checklist item.

use std::io::Read;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Part, Server, nestbox_bin};

const ALL_ON: &str = "[cape.endpoints]\ntaskresched = true\ntaskreprocess = true\ntaskdelete = true\nsampledl = true\nmachinelist = true\nmachineview = true\ncuckoostatus = true\nlist_exitnodes = true\ntaskfullmemory = true\n";

fn create_file(s: &Server, name: &str, content: &[u8], extra: &[(&str, &str)]) -> Value {
    let mut parts = vec![Part::File("file", name, content)];
    for (k, v) in extra {
        parts.push(Part::Field(k, v));
    }
    let r = s.post_multipart("/apiv2/tasks/create/file/", &parts);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wait_reported(s: &Server, id: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let st = s.get(&format!("/apiv2/tasks/status/{id}/")).json();
        if st["data"] == "reported" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never reported: {st}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn err(msg: &str) -> Value {
    json!({ "error": true, "error_value": msg })
}

#[test]
fn checklist_anonymous() {
    let s = Server::start("[analysis]\nworkers = 1\npoll_interval_ms = 50\n");
    // [1] trailing slash
    let r = s.get("/apiv2/tasks/view/1");
    assert_eq!(r.status, 301);
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("/apiv2/tasks/view/1/")
    );
    // [15] missing task, HTTP 200
    let r = s.get("/apiv2/tasks/view/999999/");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), err("Task not found in database"));
    // [36] headers, compact JSON
    let r = s.get_with(
        "/apiv2/tasks/view/999999/",
        &[("Accept", "application/json")],
    );
    assert_eq!(r.header("x-cuckoo-version"), Some("2.5"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        !r.text().contains(": ") && !r.text().contains(", "),
        "{}",
        r.text()
    );
    // [2] defaults: cuckoo/status disabled
    assert_eq!(
        s.get("/apiv2/cuckoo/status/").json(),
        err("Cuckoo Status API is disabled")
    );
    // [9]
    let r = s.post_multipart(
        "/apiv2/tasks/create/file/",
        &[Part::Field("package", "exe")],
    );
    assert_eq!((r.status, r.json()), (200, err("No file was submitted")));
    let r = create_file(&s, "x", b"", &[]);
    assert_eq!(r["error"], true);
    assert_eq!(r["error_value"], "Error adding task to database");
    assert_eq!(r["errors"], json!([{ "x": "You uploaded an empty file." }]));
    // [10]
    let r = create_file(&s, "x.exe", b"MZ", &[("machine", "nope")]);
    assert!(
        r["error_value"]
            .as_str()
            .unwrap()
            .starts_with("Machine 'nope' does not exist. Available: "),
        "{r}"
    );
    // [8]
    let sample = b"MZ\x90\x00 nestbox cape sample";
    let r = create_file(&s, "sample.exe", sample, &[("options", "a=b")]);
    assert_eq!(r["error"], false);
    let id = r["data"]["task_ids"][0].as_i64().unwrap();
    assert_eq!(
        r["data"]["message"],
        format!("Task ID {id} has been submitted")
    );
    assert!(r["errors"].is_array());
    assert_eq!(
        r["url"],
        json!([format!("http://example.tld/submit/status/{id}/")])
    );
    // [11]
    let r = s.post_form("/apiv2/tasks/create/url/", &[("url", "http://a.b")]);
    let url_id = r.json()["data"]["task_ids"][0].as_i64().unwrap();
    assert_eq!(
        s.post_form("/apiv2/tasks/create/url/", &[("url", "")])
            .json(),
        err("URL value is empty")
    );
    let r = s.post_raw(
        "/apiv2/tasks/create/url/",
        "application/json",
        br#"{"url":"http://c.d"}"#,
        &[],
    );
    assert!(r.json()["data"]["task_ids"][0].as_i64().unwrap() > url_id);
    // [12]
    assert_eq!(
        s.post_form("/apiv2/tasks/create/dlnexec/", &[("dlnexec", "http://x")])
            .json(),
        err("DL&Exec Create API is Disabled")
    );
    // [13]
    let st = s.get(&format!("/apiv2/tasks/status/{id}/")).json();
    assert_eq!(st["error"], false);
    assert!(st["data"].is_string());
    assert_eq!(
        s.get("/apiv2/tasks/status/999999/").json(),
        err("Task does not exist")
    );
    wait_reported(&s, id);
    // [14]
    let v = s.get(&format!("/apiv2/tasks/view/{id}/")).json();
    let d = &v["data"];
    for k in [
        "id",
        "target",
        "category",
        "cape",
        "timeout",
        "priority",
        "custom",
        "machine",
        "package",
        "route",
        "tags_tasks",
        "options",
        "platform",
        "memory",
        "enforce_timeout",
        "clock",
        "added_on",
        "started_on",
        "completed_on",
        "status",
        "dropped_files",
        "running_processes",
        "api_calls",
        "domains",
        "signatures_total",
        "signatures_alert",
        "files_written",
        "registry_keys_modified",
        "crash_issues",
        "anti_issues",
        "analysis_started_on",
        "analysis_finished_on",
        "processing_started_on",
        "processing_finished_on",
        "signatures_started_on",
        "signatures_finished_on",
        "reporting_started_on",
        "reporting_finished_on",
        "timedout",
        "sample_id",
        "machine_id",
        "tlp",
        "user_id",
        "tags",
        "guest",
        "errors",
        "sample",
    ] {
        assert!(d.get(k).is_some(), "missing {k}: {d}");
    }
    assert_eq!(d["target"], "sample.exe");
    assert_eq!(d["user_id"], 0);
    let dt = d["added_on"].as_str().unwrap();
    assert_eq!(dt.len(), 19, "{dt}");
    assert_eq!(&dt[4..5], "-");
    assert_eq!(&dt[10..11], " ");
    let uv = s.get(&format!("/apiv2/tasks/view/{url_id}/")).json();
    assert_eq!(uv["data"]["target"], "http://a.b");
    // Cross-dialect: the same task in Cuckoo's view, and a Cuckoo task here.
    let cv = s.get(&format!("/tasks/view/{id}")).json();
    assert_eq!(cv["task"]["id"], id);
    assert_eq!(cv["task"]["sample"]["sha256"], d["sample"]["sha256"]);
    let cid = s.submit_file("cuckoo.bin", b"from cuckoo");
    let v = s.get(&format!("/apiv2/tasks/view/{cid}/")).json();
    assert_eq!(v["data"]["id"], cid);
    assert_eq!(v["data"]["target"], "cuckoo.bin");
    // [17] search
    let md5 = d["sample"]["md5"].as_str().unwrap().to_owned();
    let sha256 = d["sample"]["sha256"].as_str().unwrap().to_owned();
    let r = s.get(&format!("/apiv2/tasks/search/md5/{md5}/")).json();
    assert_eq!(r["error"], false);
    assert_eq!(r["data"][0]["id"], id);
    assert!(r["data"][0]["sample"].is_object());
    assert_eq!(
        s.get(&format!("/apiv2/tasks/search/md5/{}/", "0".repeat(32)))
            .json(),
        json!({ "data": [], "error": false })
    );
    assert_eq!(
        s.get(&format!("/apiv2/tasks/search/md5/{}/", "0".repeat(31)))
            .status,
        404
    );
    // [18]
    let r = s.get(&format!("/apiv2/files/view/sha256/{sha256}/")).json();
    let mut keys: Vec<&String> = r["data"].as_object().unwrap().keys().collect();
    keys.sort();
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
            "source_url",
            "ssdeep"
        ]
    );
    // [16] list
    let r = s.get("/apiv2/tasks/list/").json();
    assert!(r.get("error").is_none());
    assert_eq!(r["config"], "Limit: 10, Offset: None");
    assert_eq!(r["buf"], r["data"].as_array().unwrap().len());
    let r = s.get("/apiv2/tasks/list/100/").json();
    assert_eq!(r["warning"], "Task limit exceeds API configured limit.");
    assert_eq!(
        s.get("/apiv2/tasks/list/5/0/99999/").json(),
        err("The Window You Specified is greater than the configured maximum")
    );
    let r = s.get("/apiv2/tasks/list/?ids=1").json();
    assert!(r["data"][0].as_object().unwrap().keys().eq(["id"].iter()));
    assert_eq!(r["buf"], 0);
    let r = s.get("/apiv2/tasks/list/?status=reported").json();
    assert!(
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "reported")
    );
    // [20]
    let r = s.get(&format!("/apiv2/tasks/get/report/{id}/"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename={id}_report.json").as_str())
    );
    let rep = r.json();
    for k in [
        "info",
        "target",
        "behavior",
        "network",
        "signatures",
        "malscore",
        "CAPE",
    ] {
        assert!(rep.get(k).is_some(), "report lacks {k}");
    }
    // [21]
    let r = s.get(&format!("/apiv2/tasks/get/report/{id}/json/zip/"));
    assert_eq!(r.header("content-type"), Some("application/zip"));
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    assert!(z.by_name("report.json").is_ok());
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/report/{id}/JSON/")).status,
        200
    );
    let r = s.get(&format!("/apiv2/tasks/get/report/{id}/bogus/"));
    assert_eq!(
        (r.status, r.json()),
        (400, err("Report format not found: bogus"))
    );
    let r = s.get(&format!("/apiv2/tasks/get/report/{id}/all/"));
    let z = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    assert!(
        z.file_names()
            .all(|n| n.map_or(true, |n| n != "memory.dmp"))
    );
    let lite = s
        .get(&format!("/apiv2/tasks/get/report/{id}/litereport/"))
        .json();
    assert_eq!(lite["info"]["id"], id);
    // [22]
    let r = s.get(&format!("/apiv2/tasks/get/iocs/{id}/")).json();
    for k in [
        "detections",
        "malscore",
        "info",
        "signatures",
        "target",
        "network",
        "static",
        "files",
        "registry",
        "mutexes",
        "executed_commands",
        "process_tree",
        "dropped",
    ] {
        assert!(r["data"].get(k).is_some(), "iocs lack {k}");
    }
    let r = s
        .get(&format!("/apiv2/tasks/get/iocs/{id}/detailed/"))
        .json();
    assert!(r["data"].get("strings").is_some() && r["data"].get("trid").is_some());
    // [23]
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/config/{id}/")).json(),
        err(&format!("CAPE config for task {id} does not exist."))
    );
    // extendedsearch from the report index: exact values (hashes lower-cased as CAPE
    // does), case-insensitive regexes, malscore as a minimum, unknown values and options
    // without data give CAPE's "Unable to retrieve records".
    let search = |option: &str, argument: &str| {
        s.post_form(
            "/apiv2/tasks/extendedsearch/",
            &[("option", option), ("argument", argument)],
        )
        .json()
    };
    for (option, argument) in [
        ("name", "sample.exe"),
        ("name", "^SAMPLE\\.exe$"),
        ("sha256", &sha256.to_uppercase()),
        ("target_sha256", &sha256),
        ("malscore", "0"),
        ("ids", &id.to_string()),
    ] {
        let r = search(option, argument);
        assert_eq!(r["error"], false, "{option}={argument}: {r}");
        assert!(
            r["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["info"]["id"] == id),
            "{option}={argument}: {r}"
        );
    }
    for (option, argument) in [
        ("name", "Sample.exe"),
        ("domain", "nothing.invalid"),
        ("signame", "(unclosed"),
        ("port", "not-a-port"),
        ("virustotal", "x"),
    ] {
        assert_eq!(
            search(option, argument),
            err("Unable to retrieve records"),
            "{option}={argument}"
        );
    }
    assert_eq!(
        search("bogus", "x"),
        err("Invalid Option. 'bogus' is not a valid option.")
    );
    // [24] [25] [26] no artifacts yet, then fixtures in the analysis folder
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/screenshot/{id}/")).json(),
        err(&format!("No screenshots created for task {id}"))
    );
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/pcap/{id}/")).json(),
        err("PCAP does not exist")
    );
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/dropped/{id}/")).json(),
        err(&format!("No files dropped for task {id}"))
    );
    s.put_blob(&format!("analyses/{id}/shots/0001.jpg"), b"\xff\xd8jpeg");
    s.put_blob(
        &format!("analyses/{id}/dump.pcap"),
        b"\xd4\xc3\xb2\xa1pcapdata",
    );
    s.put_blob(&format!("analyses/{id}/files/abc123"), b"dropped content");
    let r = s.get(&format!("/apiv2/tasks/get/screenshot/{id}/"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename={id}_screenshots.zip").as_str())
    );
    let r = s.get(&format!("/apiv2/tasks/get/screenshot/{id}/1/"));
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.body, b"\xff\xd8jpeg");
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/screenshot/{id}/9999/"))
            .json(),
        err("Screenshot does not exist")
    );
    let r = s.get(&format!("/apiv2/tasks/get/pcap/{id}/"));
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.tcpdump.pcap")
    );
    assert!(r.body.starts_with(b"\xd4\xc3\xb2\xa1"));
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/pcap/{id}/nope/")).status,
        400
    );
    let r = s.get(&format!("/apiv2/tasks/get/dropped/{id}/"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename={id}_dropped.zip").as_str())
    );
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    assert!(z.by_name("files/abc123").is_err(), "needs the password");
    let mut f = z.by_name_decrypt("files/abc123", b"infected").unwrap();
    let mut content = Vec::new();
    f.read_to_end(&mut content).unwrap();
    assert_eq!(content, b"dropped content");
    let r = s
        .get(&format!("/apiv2/tasks/get/dropped/{id}/?max_size=0"))
        .json();
    assert!(
        r["error_value"]
            .as_str()
            .unwrap()
            .starts_with("Archive is bigger than max size"),
        "{r}"
    );
    // keys / etw / bulkzip: whitelisted kinds (400 otherwise), files as `<id>_<name>`,
    // folders as AES zips named inside the folder.
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/keys/{id}/tls/")).json(),
        err("tlsdump.log does not exist")
    );
    s.put_blob(
        &format!("analyses/{id}/tlsdump/tlsdump.log"),
        b"CLIENT_RANDOM aa bb\n",
    );
    let r = s.get(&format!("/apiv2/tasks/get/keys/{id}/TLS/"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename={id}_tlsdump.log").as_str())
    );
    assert_eq!(r.body, b"CLIENT_RANDOM aa bb\n");
    for (path, msg) in [
        ("keys/{id}/rsa/", "Unknown keys kind: rsa"),
        ("etw/{id}/kernel/", "Unknown etw kind: kernel"),
        ("bulkzip/{id}/memory/", "Unknown bulkzip folder: memory"),
    ] {
        let r = s.get(&format!(
            "/apiv2/tasks/get/{}",
            path.replace("{id}", &id.to_string())
        ));
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json(), err(msg));
    }
    s.put_blob(
        &format!("analyses/{id}/aux/dns_etw.json"),
        b"{\"q\":\"x\"}\n",
    );
    let r = s.get(&format!("/apiv2/tasks/get/etw/{id}/dns/"));
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/etw/{id}/amsi/")).json(),
        err(&format!("No aux/amsi_etw artifacts for task {id}"))
    );
    s.put_blob(&format!("analyses/{id}/logs/1234.bson"), b"bson log");
    let r = s.get(&format!("/apiv2/tasks/get/bulkzip/{id}/logs/"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename={id}_logs.zip").as_str())
    );
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    let mut content = Vec::new();
    z.by_name_decrypt("1234.bson", b"infected")
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content, b"bson log");
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/bulkzip/{id}/network/"))
            .json(),
        err(&format!("No network artifacts for task {id}"))
    );
    // stream: the task's machine is not running any more.
    let r = s.post_form(
        &format!("/apiv2/tasks/get/stream/{id}/"),
        &[("filepath", "x")],
    );
    assert_eq!(r.json()["error_value"], "Machine is not running");
    let r = s.post_form("/apiv2/tasks/get/stream/999999/", &[("filepath", "x")]);
    assert_eq!(r.json(), err("Task does not exist"));
    // [27] [28]
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/procmemory/{id}/")).json(),
        err("Downloading of all process memory dumps is disabled")
    );
    assert_eq!(
        s.get(&format!("/apiv2/tasks/get/fullmemory/{id}/")).json(),
        err("Full memory download API is disabled")
    );
    assert_eq!(
        s.get(&format!("/apiv2/files/get/sha256/{sha256}/")).json(),
        err("Sample download API is disabled")
    );
    // [29] [31] defaults
    assert_eq!(
        s.get("/apiv2/machines/list/").json(),
        err("Machine list API is disabled")
    );
    assert_eq!(
        s.get(&format!("/apiv2/tasks/delete/{id}/")).json(),
        err("Task Deletion API is Disabled")
    );
    // [35] [37]
    let r = s.request("POST", "/apiv2/tasks/view/1/");
    assert_eq!(r.status, 405);
    assert_eq!(
        r.json(),
        json!({ "detail": "Method \"POST\" not allowed." })
    );
    assert!(r.header("allow").is_some());
    assert_eq!(s.get("/apiv2/tasks/create/file/").status, 405);
    let r = s.get("/apiv2/no/such/route/");
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // Dedup path with `unique` (the integrations' flow ends here).
    let r = create_file(&s, "again.exe", sample, &[("unique", "1")]);
    assert_eq!(r["error_value"], "Error adding task to database");
    assert_eq!(
        r["errors"],
        json!([{ "again.exe": "Duplicated file, disable unique option on submit or in conf/web.conf to force submission" }])
    );
    // The list and the view are served from the response cache until the store changes:
    // a new task, and each of its status changes, show at once.
    let count = || {
        s.get("/apiv2/tasks/list/50/?ids=1").json()["data"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    assert_eq!(count(), before, "the same page again");
    let made = create_file(&s, "cache.txt", b"cache check\n", &[]);
    let id = made["data"]["task_ids"][0].as_i64().unwrap();
    assert_eq!(count(), before + 1);
    let view = s.get(&format!("/apiv2/tasks/view/{id}/")).json();
    assert_eq!(view["data"]["id"], id);
    wait_reported(&s, id);
    let view = s.get(&format!("/apiv2/tasks/view/{id}/")).json();
    assert_eq!(view["data"]["status"], "reported", "{view}");
}

#[test]
fn non_reported_tasks_and_controls() {
    let s = Server::start(&format!("[analysis]\nworkers = 0\n{ALL_ON}"));
    let r = create_file(&s, "p.exe", b"pending sample", &[]);
    let id = r["data"]["task_ids"][0].as_i64().unwrap();
    // [19]
    for ep in [
        "get/report",
        "get/iocs",
        "get/screenshot",
        "get/pcap",
        "get/dropped",
        "get/fullmemory",
        "get/config",
        "get/payloadfiles",
    ] {
        assert_eq!(
            s.get(&format!("/apiv2/tasks/{ep}/{id}/")).json(),
            err("Task is still being analyzed"),
            "{ep}"
        );
    }
    // [2] enabled, [30]
    let st = s.get("/apiv2/cuckoo/status/").json();
    assert_eq!(st["data"]["version"], "2.5");
    let t = st["data"]["tasks"].as_object().unwrap();
    let mut keys: Vec<_> = t.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["completed", "pending", "reported", "running", "total"]
    );
    assert_eq!(t["total"], 1);
    assert!(st["data"]["machines"]["total"].is_number());
    // [29]
    let ms = s.get("/apiv2/machines/list/").json();
    for k in [
        "id",
        "name",
        "label",
        "arch",
        "ip",
        "platform",
        "interface",
        "snapshot",
        "locked",
        "locked_changed_on",
        "status",
        "status_changed_on",
        "resultserver_ip",
        "resultserver_port",
        "reserved",
        "tags",
    ] {
        assert!(ms["data"][0].get(k).is_some(), "machine lacks {k}");
    }
    // [28] enabled
    let sha = s.get(&format!("/apiv2/tasks/view/{id}/")).json()["data"]["sample"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.get(&format!("/apiv2/files/get/sha256/{sha}/"));
    assert_eq!(r.body, b"pending sample");
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename={sha}.bin").as_str())
    );
    let r = s.get(&format!("/apiv2/files/get/sha256/{sha}/?encrypted=1"));
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    assert!(z.by_name_decrypt(&sha, b"infected").is_ok());
    // [34] pending cannot be reprocessed
    assert_eq!(
        s.get(&format!("/apiv2/tasks/reprocess/{id}/")).json(),
        err(&format!(
            "Task ID {id} cannot be reprocessed in status pending"
        ))
    );
    // [31]
    assert_eq!(s.get("/apiv2/tasks/delete/abc-/").status, 404);
    assert_eq!(s.get("/apiv2/tasks/delete/5-3/").status, 400);
    assert_eq!(
        s.get(&format!("/apiv2/tasks/delete/{id}/")).json(),
        json!({ "error": true, "failed": format!("Task(s) ID(s) {id} failed to remove") })
    );
    // [33] reschedule a pending task, then the old id follows Recovery_<new>
    let r = s.get(&format!("/apiv2/tasks/reschedule/{id}/")).json();
    let new_id = r["data"]["new_task_id"].as_i64().unwrap();
    assert!(new_id > id);
    let old = s.get(&format!("/tasks/view/{id}")).json();
    assert_eq!(old["task"]["status"], "recovered");
    assert_eq!(old["task"]["custom"], format!("Recovery_{new_id}"));
    assert_eq!(
        s.get(&format!("/apiv2/tasks/view/{id}/")).json()["data"]["id"],
        new_id
    );
    assert_eq!(
        s.get(&format!("/apiv2/tasks/delete/{new_id}/pending/"))
            .json(),
        json!({ "data": format!("Task(s) ID(s) {new_id} has been deleted") })
    );
    // [32]
    let r = s
        .post_form(
            "/apiv2/tasks/delete_many/",
            &[("ids", &format!("{id},999999"))],
        )
        .json();
    assert_eq!(r["status"], "OK");
    assert_eq!(r[id.to_string()], "deleted");
    assert_eq!(r["999999"], "not exists");
    let r = s
        .post_form("/apiv2/tasks/delete_many/", &[("ids", "abc")])
        .json();
    assert_eq!(
        r,
        json!({ "invalid_ids": ["abc"], "status": "partial_error", "error": true })
    );
    // A 1,000-id delete_many: clear per-id answers, no 500.
    let ids: Vec<String> = (1..=1000).map(|n| n.to_string()).collect();
    let r = s.post_form("/apiv2/tasks/delete_many/", &[("ids", &ids.join(","))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["1000"], "not exists");
    // Bad input: garbage segments, oversized options, wrong content type.
    for p in [
        "/apiv2/tasks/view/abc/",
        "/apiv2/tasks/view/-1/",
        "/apiv2/tasks/get/report/1/../",
        "/apiv2/files/view/sha256/zz/",
        "/apiv2/tasks/get/screenshot/1/12345/",
        "/apiv2/tasks/list/x/",
    ] {
        let st = s.get(p).status;
        assert!(st == 404 || st == 200, "{p}: {st}");
    }
    let big = "a=b,".repeat(20_000);
    let r = create_file(&s, "o.exe", b"options", &[("options", &big)]);
    assert_eq!(r["error"], true);
    assert!(r["error_value"].as_str().unwrap().contains("options"));
    let r = s.post_raw("/apiv2/tasks/create/file/", "text/plain", b"hello", &[]);
    assert_eq!(r.json(), err("No file was submitted"));
    let r = s.post_raw(
        "/apiv2/tasks/create/url/",
        "application/json",
        b"{nope",
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], true);
}

#[test]
fn reprocess_reported_task() {
    let s = Server::start(
        "[analysis]\nworkers = 1\npoll_interval_ms = 50\n[cape.endpoints]\ntaskreprocess = true\n",
    );
    let id = create_file(&s, "r.bin", b"reprocess me", &[])["data"]["task_ids"][0]
        .as_i64()
        .unwrap();
    wait_reported(&s, id);
    // [34]
    assert_eq!(
        s.get(&format!("/apiv2/tasks/reprocess/{id}/")).json(),
        json!({ "error": false, "data": format!("Task ID {id} with status reported marked for reprocessing") })
    );
}

fn cli(s: &Server, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(nestbox_bin())
        .args(args)
        .arg("--config")
        .arg(s.dir.path().join("nestbox.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn token(s: &Server, user: &str, pw: &str) -> String {
    let r = s.post_form(
        "/apiv2/api-token-auth/",
        &[("username", user), ("password", pw)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

#[test]
fn token_auth_and_throttling() {
    let s = Server::start(
        "[analysis]\nworkers = 0\n[cape]\ntoken_auth_enabled = true\nadmin_password = \"adminpw\"\n",
    );
    // [3]
    let r = s.get("/apiv2/tasks/list/");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Token"));
    assert_eq!(
        r.json(),
        json!({ "detail": "Authentication credentials were not provided." })
    );
    // [4]
    let r = s.get_with("/apiv2/tasks/list/", &[("Authorization", "Token bogus")]);
    assert_eq!(
        (r.status, r.json()),
        (401, json!({ "detail": "Invalid token." }))
    );
    // [5]
    let t1 = token(&s, "admin", "adminpw");
    assert_eq!(t1.len(), 40);
    assert!(t1.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(token(&s, "admin", "adminpw"), t1, "stable across calls");
    let r = s.post_form(
        "/apiv2/api-token-auth/",
        &[("username", "admin"), ("password", "wrong")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({ "non_field_errors": ["Unable to log in with provided credentials."] })
    );
    let r = s.post_raw(
        "/apiv2/api-token-auth/",
        "application/json",
        br#"{"username":"admin","password":"adminpw"}"#,
        &[],
    );
    assert_eq!(r.json()["token"], t1.as_str());
    let auth_lower = format!("token {t1}");
    let r = s.get_with("/apiv2/tasks/list/", &[("Authorization", &auth_lower)]);
    assert_eq!(r.status, 200);
    // [7] staff: never throttled
    let staff = format!("Token {t1}");
    for _ in 0..20 {
        assert_eq!(
            s.get_with("/apiv2/tasks/list/", &[("Authorization", &staff)])
                .status,
            200
        );
    }
    // [6] a user with 2/m: shared bucket across endpoints
    cli(
        &s,
        &["user", "add", "bob", "--subscription", "2/m"],
        "bobpw\n",
    );
    cli(
        &s,
        &["user", "add", "free", "--subscription", ""],
        "freepw\n",
    );
    let bob = format!("Token {}", token(&s, "bob", "bobpw"));
    assert_eq!(
        s.get_with("/apiv2/tasks/list/", &[("Authorization", &bob)])
            .status,
        200
    );
    let r = s.post_multipart_with(
        "/apiv2/tasks/create/file/",
        &[Part::File("file", "b.exe", b"bob's sample")],
        &[("Authorization", &bob)],
    );
    assert_eq!(r.status, 200);
    let bob_task = r.json()["data"]["task_ids"][0].as_i64().unwrap();
    let r = s.get_with("/apiv2/tasks/status/1/", &[("Authorization", &bob)]);
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        r.json(),
        json!({ "detail": format!("Request was throttled. Expected available in {wait} seconds.") })
    );
    // api-token-auth is never throttled.
    token(&s, "bob", "bobpw");
    // [7] empty subscription: unthrottled.
    let free = format!("Token {}", token(&s, "free", "freepw"));
    for _ in 0..10 {
        assert_eq!(
            s.get_with("/apiv2/tasks/list/", &[("Authorization", &free)])
                .status,
            200
        );
    }
    // user_id is recorded; Cuckoo's owner shows the name.
    let v = s
        .get_with(
            &format!("/apiv2/tasks/view/{bob_task}/"),
            &[("Authorization", &free)],
        )
        .json();
    assert!(v["data"]["user_id"].as_i64().unwrap() > 1);
    assert_eq!(
        s.get(&format!("/tasks/view/{bob_task}")).json()["task"]["owner"],
        "bob"
    );
    // Revoke: the old token stops working, a new one differs.
    let bob_token = token(&s, "bob", "bobpw");
    cli(&s, &["token", "revoke", "bob"], "");
    let r = s.get_with(
        "/apiv2/tasks/list/",
        &[("Authorization", &format!("Token {bob_token}"))],
    );
    assert_eq!(r.status, 401);
    assert_ne!(token(&s, "bob", "bobpw"), bob_token);
    // Disabled users cannot log in.
    cli(&s, &["user", "disable", "free"], "");
    let r = s.get_with("/apiv2/tasks/list/", &[("Authorization", &free)]);
    assert_eq!(
        (r.status, r.json()),
        (401, json!({ "detail": "User inactive or deleted." }))
    );
    let r = s.get_with("/apiv2/tasks/list/", &[("Authorization", "Token")]);
    assert_eq!(
        r.json(),
        json!({ "detail": "Invalid token header. No credentials provided." })
    );
    assert!(cli(&s, &["user", "list"], "").contains("bob"));
}

/// A zip of `(name, bytes)` members, encrypted with `password` (AES) if one is given.
fn zip_of(members: &[(&str, &[u8])], password: Option<&str>) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut o = zip::write::SimpleFileOptions::default();
    if let Some(p) = password {
        o = o.with_aes_encryption(zip::AesMode::Aes256, p);
    }
    for (name, data) in members {
        w.start_file(*name, o).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// CAPE's demux: an archive submitted to `tasks/create/file/` without a package becomes a
/// task per member worth running (password `infected` or the `password` option; nested
/// archives stand for their members); a package, `file=`, an Office document or an archive
/// with nothing runnable stays one task. The Cuckoo dialect never demuxes.
#[test]
fn create_file_demuxes_archives_as_cape() {
    let s = Server::start("[analysis]\nworkers = 0\n");
    let exe: &[u8] = b"MZ not really a program";
    let js: &[u8] = b"WScript.Echo('hi');";
    let inner = zip_of(&[("run.js", js), ("notes.txt", b"plain")], None);
    let outer = zip_of(
        &[
            ("payload.exe", exe),
            ("readme.txt", b"nothing to run"),
            ("inner.zip", &inner),
        ],
        Some("infected"),
    );
    let ids_of = |v: &Value| -> Vec<i64> {
        v["data"]["task_ids"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|i| i.as_i64().unwrap())
            .collect()
    };
    let v = create_file(&s, "sample.zip", &outer, &[]);
    let ids = ids_of(&v);
    assert_eq!(ids.len(), 2, "{v}");
    assert_eq!(
        v["data"]["message"],
        format!("Task IDs {}, {} have been submitted", ids[0], ids[1])
    );
    // A task's view, and the file name its target ends in.
    let view = |id: i64| -> (Value, String) {
        let t = s.get(&format!("/apiv2/tasks/view/{id}/")).json()["data"].clone();
        let name = t["target"].as_str().unwrap().rsplit('/').next().unwrap();
        let name = name.to_owned();
        (t, name)
    };
    let mut seen = Vec::new();
    for id in &ids {
        let (t, name) = view(*id);
        seen.push((
            name,
            t["sample"]["sha256"].as_str().unwrap().to_owned(),
            t["category"].as_str().unwrap().to_owned(),
        ));
    }
    // The archive itself is kept as a sample.
    assert_eq!(
        s.get(&format!("/files/get/{}", sha256_hex(&outer))).body,
        outer
    );
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("payload.exe".to_owned(), sha256_hex(exe), "file".to_owned()),
            ("run.js".to_owned(), sha256_hex(js), "file".to_owned()),
        ]
    );

    // Another password through the options.
    let other = zip_of(&[("x.exe", exe)], Some("s3cret"));
    let v = create_file(&s, "other.zip", &other, &[("options", "password=s3cret")]);
    assert_eq!(ids_of(&v).len(), 1);
    let id = ids_of(&v)[0];
    let t = &s.get(&format!("/apiv2/tasks/view/{id}/")).json()["data"];
    assert_eq!(t["sample"]["sha256"], sha256_hex(exe));

    // One task for the archive itself: a package, `file=`, nothing runnable, a docx.
    let whole = |name: &str, data: &[u8], extra: &[(&str, &str)]| {
        let v = create_file(&s, name, data, extra);
        let ids = ids_of(&v);
        assert_eq!(ids.len(), 1, "{name}: {v}");
        let t = &s.get(&format!("/apiv2/tasks/view/{}/", ids[0])).json()["data"];
        assert_eq!(t["sample"]["sha256"], sha256_hex(data), "{name}");
    };
    whole("sample.zip", &outer, &[("package", "zip")]);
    whole("sample.zip", &outer, &[("options", "file=payload.exe")]);
    whole("texts.zip", &zip_of(&[("a.txt", b"a")], None), &[]);
    whole("props.docx", include_bytes!("../golden/props.docx"), &[]);
    whole("sample.bin", &outer, &[]);
    // A damaged archive is analysed as the file it is.
    whole("cut.zip", &outer[..outer.len() / 2], &[]);
    whole(
        "wrong.zip",
        &zip_of(&[("x.exe", exe)], Some("not-infected")),
        &[],
    );

    // Cuckoo's tasks/create/file keeps the archive whole (its demux is tasks/create/submit).
    let r = s.post_multipart(
        "/tasks/create/file",
        &[Part::File("file", "sample.zip", &outer)],
    );
    let id = r.json()["task_id"].as_i64().unwrap();
    let t = s.get(&format!("/tasks/view/{id}")).json();
    assert_eq!(t["task"]["sample"]["sha256"], sha256_hex(&outer));

    // RAR, as CAPE demuxes it (unar in a sandbox; scripts/bootstrap.sh installs it): the
    // runnable members become tasks, the text file does not.
    let rar = include_bytes!("../golden/stored.rar5.rar");
    let v = create_file(&s, "sample.rar", rar, &[]);
    let mut names: Vec<String> = ids_of(&v).iter().map(|id| view(*id).1).collect();
    names.sort();
    assert_eq!(names, ["invoice.exe", "run.js"], "{v}");
}

#[test]
fn demuxed_members_name_their_archive_as_parent_sample() {
    let s = Server::start(
        "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n[emulator]\nenabled = false\n",
    );
    let exe: &[u8] = b"MZ a member of an archive";
    let archive = zip_of(&[("payload.exe", exe)], Some("infected"));
    let v = create_file(&s, "sample.zip", &archive, &[]);
    let id = v["data"]["task_ids"][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{v}"));
    wait_reported(&s, id);
    let info = &s.get(&format!("/apiv2/tasks/get/report/{id}/")).json()["info"];
    let parent = &info["parent_sample"];
    // CAPE's `Sample.to_dict()` of the archive.
    assert_eq!(parent["sha256"], sha256_hex(&archive), "{info}");
    assert_eq!(parent["file_size"], archive.len());
    assert!(parent["id"].as_i64().is_some(), "{parent}");
    // A task submitted on its own has none: CAPE's `false`.
    let v = create_file(&s, "alone.exe", exe, &[("options", "x=1")]);
    let id = v["data"]["task_ids"][0].as_i64().unwrap();
    wait_reported(&s, id);
    let info = &s.get(&format!("/apiv2/tasks/get/report/{id}/")).json()["info"];
    assert_eq!(info["parent_sample"], false, "{info}");
}
