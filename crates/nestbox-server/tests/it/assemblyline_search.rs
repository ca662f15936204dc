//! `search/result/` and `search/file/` (spec assemblyline.md §3): Lucene-style `field:value`
//! queries answered by the store's result and file indexes, which must agree with what
//! `result/<key>/`, `submission/<sid>/` and `file/info/` show.

use serde_json::{Value, json};

use crate::assemblyline::{CONFIG, apikey, envelope, h, submit_hello, wait_completed};
use crate::harness::Server;

/// A file whose Strings result carries `network.static.*` tags.
const URLS: &[u8] = b"see http://evil.example.com/payload and http://10.9.8.7/x for more\n";

fn sid_of(r: &crate::harness::Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    envelope(r)["api_response"]["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn result_and_file_indexes() {
    let s = Server::start(CONFIG);
    let k = apikey(&s, &["add", "admin", "k", "--priv", "RW"]);
    let search = |index: &str, q: &str, offset: i64, rows: i64| -> Value {
        let body = json!({"query": q, "offset": offset, "rows": rows}).to_string();
        let r = s.post_raw(
            &format!("/api/v4/search/{index}/"),
            "application/json",
            body.as_bytes(),
            &h(&k),
        );
        assert_eq!(r.status, 200, "{}: {}", &q[..q.len().min(80)], r.text());
        envelope(&r)["api_response"].clone()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let sid_urls = sid_of(&submit_hello(&s, &k, URLS));
    let sid_hello = sid_of(&submit_hello(&s, &k, b"hello world\n"));
    // The same file again: the file index counts it twice.
    let sid_again = sid_of(&submit_hello(&s, &k, b"hello world\n"));
    for sid in [&sid_urls, &sid_hello, &sid_again] {
        wait_completed(&s, &k, sid);
    }
    let sub = |sid: &str| {
        envelope(&s.get_with(&format!("/api/v4/submission/{sid}/"), &h(&k)))["api_response"].clone()
    };
    let urls = sub(&sid_urls);
    let urls_sha = urls["files"][0]["sha256"].as_str().unwrap().to_owned();
    let hello_sha = sub(&sid_hello)["files"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let urls_keys: Vec<String> = urls["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert!(urls_keys.len() >= 2, "{urls}");

    // One file's results by key prefix: the keys submission/<sid>/ lists, each item as
    // result/<key>/ shows it.
    let v = search("result", &format!("id:{urls_sha}*"), 0, 100);
    assert_eq!(v["total"], urls_keys.len(), "{v}");
    let mut got = ids(&v);
    got.sort();
    let mut want = urls_keys.clone();
    want.sort();
    assert_eq!(got, want);
    for item in v["items"].as_array().unwrap() {
        let key = item["id"].as_str().unwrap();
        let full = envelope(&s.get_with(&format!("/api/v4/result/{key}/"), &h(&k)))["api_response"]
            .clone();
        assert_eq!(item["result"]["score"], full["result"]["score"], "{key}");
        assert_eq!(item["created"], full["created"], "{key}");
        assert_eq!(item["type"], full["type"], "{key}");
        assert_eq!(item["size"], full["size"], "{key}");
        assert_eq!(
            item["response"]["service_name"],
            full["response"]["service_name"]
        );
        assert_eq!(item["classification"], "TLP:C");
    }
    // Tags, service names, bare words, NOT, OR and paging.
    let strings_key = format!("{urls_sha}.");
    let v = search(
        "result",
        "result.sections.tags.network.static.domain:evil.example.com",
        0,
        25,
    );
    assert_eq!(v["total"], 1, "{v}");
    assert!(ids(&v)[0].starts_with(&strings_key) && ids(&v)[0].contains(".Strings."));
    let v = search(
        "result",
        "result.sections.tags.network.static.ip:10.9.8.*",
        0,
        25,
    );
    assert_eq!(v["total"], 1, "{v}");
    let v = search("result", "\"http://evil.example.com/payload\"", 0, 25);
    assert_eq!(v["total"], 1, "a bare word searches every field: {v}");
    let v = search("result", "response.service_name:STRINGS", 0, 25);
    assert_eq!(v["total"], 2, "one Strings result per file: {v}");
    let v = search(
        "result",
        &format!("sha256:{urls_sha} AND NOT response.service_name:Strings"),
        0,
        25,
    );
    assert_eq!(v["total"], urls_keys.len() - 1, "{v}");
    let v = search(
        "result",
        &format!("sha256:{urls_sha} OR sha256:{hello_sha}"),
        0,
        25,
    );
    let all = v["total"].as_i64().unwrap();
    assert_eq!(search("result", "*", 0, 25)["total"], all);
    let page = search("result", "*", 1, 2);
    assert_eq!(
        (page["offset"].clone(), page["rows"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(page["total"], all);
    assert_eq!(ids(&page), ids(&search("result", "*", 0, 3))[1..].to_vec());
    let created: Vec<String> = search("result", "*", 0, 100)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["created"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "created desc: {created:?}"
    );
    assert_eq!(search("result", "no.such.field:x", 0, 25)["total"], 0);

    // A task made through the Cuckoo API is analysed once, and its results are in the
    // same index.
    let id = s.submit_file(
        "cuckoo.txt",
        b"from the cuckoo dialect http://cuckoo.example.net/\n",
    );
    s.wait_status(id, "reported");
    let v = search(
        "result",
        "result.sections.tags.network.static.domain:cuckoo.example.net",
        0,
        25,
    );
    assert_eq!(v["total"], 1, "{v}");

    // The file index: files submitted here, with their hashes and `seen`.
    let v = search("file", &format!("sha256:{hello_sha}"), 0, 25);
    assert_eq!(v["total"], 1, "{v}");
    let f = &v["items"][0];
    assert_eq!(f["seen"]["count"], 2, "{f}");
    assert!(
        f["seen"]["first"].as_str() < f["seen"]["last"].as_str(),
        "{f}"
    );
    let info =
        envelope(&s.get_with(&format!("/api/v4/file/info/{hello_sha}/"), &h(&k)))["api_response"]
            .clone();
    for key in ["md5", "sha1", "sha256", "size", "type", "magic", "mime"] {
        assert_eq!(f[key], info[key], "{key}");
    }
    let md5 = f["md5"].as_str().unwrap().to_uppercase();
    assert_eq!(search("file", &format!("md5:{md5}"), 0, 25)["total"], 1);
    let sha1 = f["sha1"].as_str().unwrap();
    assert_eq!(
        search("file", sha1, 0, 25)["total"],
        1,
        "bare words: hashes"
    );
    let v = search("file", "type:text/*", 0, 25);
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(
        v["items"][0]["sha256"], hello_sha,
        "most recently seen first: {v}"
    );
    assert_eq!(search("file", "seen.count:2", 0, 25)["total"], 1);
    assert_eq!(search("file", "labels:x", 0, 25)["total"], 0);
    assert_eq!(
        search("file", &format!("NOT sha256:{hello_sha}"), 0, 25)["total"],
        1
    );
    // Bad requests.
    let r = s.get_with("/api/v4/search/result/", &h(&k));
    assert_eq!(
        (r.status, envelope(&r)["api_error_message"].clone()),
        (400, json!("There was no search query."))
    );
    let r = s.get_with("/api/v4/search/nope/?query=*", &h(&k));
    assert_eq!(r.status, 400);
    // Oversized and many-term queries are answered, not failed.
    let long = format!("id:{}* OR {}", "x".repeat(100_000), "a:b ".repeat(500));
    assert_eq!(search("result", &long, 0, 25)["total"], 0);
    assert_eq!(search("file", &long, 0, 25)["total"], 0);
    assert_eq!(search("submission", &long, 0, 25)["total"], 0);
}
