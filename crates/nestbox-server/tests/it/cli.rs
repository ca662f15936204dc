//! The CLI: `nestbox analyze` offline, `nestbox submit` against a server.

use std::process::Command;

use crate::harness::{Server, nestbox_bin, tool};

#[test]
fn analyze_prints_a_report() {
    let out = Command::new(nestbox_bin())
        .args(["analyze", "/bin/ls"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha = tool("sha256sum", &["/bin/ls"]);
    assert_eq!(
        rep["target"]["file"]["sha256"],
        sha.split_whitespace().next().unwrap()
    );
    assert_eq!(
        rep["target"]["file"]["type"],
        tool("file", &["-b", "/bin/ls"]).trim_end()
    );
    assert!(rep["strings"].as_array().unwrap().len() > 10);
    let out = Command::new(nestbox_bin())
        .args(["analyze", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));
}

#[test]
fn submit_file_and_url() {
    let s = Server::start("[analysis]\nworkers = 1\n[cuckoo]\napi_token = \"tok\"\n");
    let out = Command::new(nestbox_bin())
        .args(["submit", "/bin/true", "--server", &s.base, "--token", "tok"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["task_id"], 1);
    let out = Command::new(nestbox_bin())
        .args([
            "submit",
            "http://example.test/x?a=b&c",
            "--server",
            &s.base,
            "--token",
            "tok",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let t = s
        .get_with("/tasks/view/2", &[("Authorization", "Bearer tok")])
        .json();
    assert_eq!(t["task"]["target"], "http://example.test/x?a=b&c");
    // Without the token the server refuses, and the CLI says so.
    let out = Command::new(nestbox_bin())
        .args(["submit", "/bin/true", "--server", &s.base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
