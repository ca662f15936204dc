//! The CLI: `nestbox analyze` offline, `nestbox submit` against a server.

use std::process::Command;

use crate::harness::{Server, nestbox_bin, run_ok, tool};

#[test]
fn analyze_prints_a_report() {
    let out = run_ok(Command::new(nestbox_bin()).args(["analyze", "/bin/ls"]));
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
    let out = run_ok(Command::new(nestbox_bin()).args([
        "submit",
        "/bin/true",
        "--server",
        &s.base,
        "--token",
        "tok",
    ]));
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

#[test]
fn analyze_walks_directories_with_yara() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("eicar.com"), crate::yara::eicar()).unwrap();
    std::fs::write(dir.path().join("a.txt"), "plain text").unwrap();
    std::fs::copy("/bin/true", dir.path().join("true")).unwrap();
    // An archive: its members are scanned too (offline there are no child tasks).
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("inner/eicar.com", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut w, &crate::yara::eicar()).unwrap();
    std::fs::write(dir.path().join("b.zip"), w.finish().unwrap().into_inner()).unwrap();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("mine.yar"),
        "rule Plain_Text { strings: $p = \"plain text\" condition: $p }\n",
    )
    .unwrap();
    let cfg = dir.path().join("empty.toml");
    std::fs::write(&cfg, format!("data_dir = {:?}\n", dir.path().join("d"))).unwrap();
    let out = run_ok(
        Command::new(nestbox_bin())
            .args(["analyze", "--config", cfg.to_str().unwrap(), "--rules"])
            .arg(rules.path())
            .arg(dir.path()),
    );
    let reports: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["target"]["file"]["name"].as_str().unwrap())
        .collect();
    // A sorted walk (the config file itself included), subdirectories in place.
    assert_eq!(names, ["a.txt", "b.zip", "empty.toml", "eicar.com", "true"]);
    assert_eq!(
        reports[0]["target"]["file"]["yara"][0]["name"],
        "Plain_Text"
    );
    let member = &reports[1]["static"]["archive"]["members"][0];
    assert_eq!(member["name"], "inner/eicar.com");
    assert_eq!(member["yara"][0]["name"], "EICAR_Test_File", "{member}");
    assert_eq!(
        reports[3]["target"]["file"]["yara"][0]["name"],
        "EICAR_Test_File"
    );
    let elf = &reports[4]["static"]["elf"];
    assert_eq!(elf["file_header"]["class"], "ELF64");

    // Summary lines; --no-yara leaves the match column empty.
    let out = Command::new(nestbox_bin())
        .args([
            "analyze",
            "--format",
            "summary",
            "--no-yara",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .arg(sub.join("eicar.com"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.contains("eicar.com") && line.trim_end().ends_with(" -"),
        "{line}"
    );
    // A bad rule directory entry is reported by name and line on stderr; the rest runs.
    std::fs::write(
        rules.path().join("bad.yar"),
        "rule Bad {\n condition: $x\n}\n",
    )
    .unwrap();
    let out = Command::new(nestbox_bin())
        .args([
            "analyze",
            "--format",
            "summary",
            "--config",
            cfg.to_str().unwrap(),
            "--rules",
        ])
        .arg(rules.path())
        .arg(dir.path().join("a.txt"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yar:2:"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Plain_Text"));
}
