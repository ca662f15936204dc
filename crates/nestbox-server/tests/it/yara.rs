//! YARA through the real server: the starter rules on samples, archive members and
//! dropped files in every dialect's view; the operator's rule directory with a broken
//! file (reported by name and line, the rest load), reload on change and on `SIGHUP`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Part, Server};

pub fn eicar() -> Vec<u8> {
    // Assembled at run time so this source file is not itself a test-virus file.
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    v
}

/// A minimal PE32 with the section names `upx` leaves (UPX0 without raw data, UPX1 with
/// the packed code), which the starter `UPX_Packed` rule checks through yara-x's `pe`
/// module.
fn upx_like_pe() -> Vec<u8> {
    let mut pe = vec![0u8; 0x400];
    let put16 =
        |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    pe[..2].copy_from_slice(b"MZ");
    put32(&mut pe, 0x3c, 0x40);
    pe[0x40..0x44].copy_from_slice(b"PE\0\0");
    let coff = 0x44;
    put16(&mut pe, coff, 0x14c); // i386
    put16(&mut pe, coff + 2, 2); // sections
    put32(&mut pe, coff + 4, 0x5f00_0000);
    put16(&mut pe, coff + 16, 0xe0); // optional header size
    put16(&mut pe, coff + 18, 0x0102); // executable, 32-bit
    let opt = coff + 20;
    put16(&mut pe, opt, 0x10b); // PE32
    put32(&mut pe, opt + 4, 0x200); // size of code
    put32(&mut pe, opt + 16, 0x2010); // entry point, in UPX1
    put32(&mut pe, opt + 20, 0x2000); // base of code
    put32(&mut pe, opt + 28, 0x40_0000); // image base
    put32(&mut pe, opt + 32, 0x1000); // section alignment
    put32(&mut pe, opt + 36, 0x200); // file alignment
    put16(&mut pe, opt + 40, 4); // OS version
    put16(&mut pe, opt + 48, 4); // subsystem version
    put32(&mut pe, opt + 56, 0x3000); // size of image
    put32(&mut pe, opt + 60, 0x200); // size of headers
    put16(&mut pe, opt + 68, 2); // GUI
    put32(&mut pe, opt + 92, 16); // data directories
    let sections = opt + 0xe0;
    for (i, (name, va, raw, ptr, chars)) in [
        (b"UPX0\0\0\0\0", 0x1000u32, 0u32, 0u32, 0xe000_0080u32),
        (b"UPX1\0\0\0\0", 0x2000, 0x200, 0x200, 0xe000_0040),
    ]
    .into_iter()
    .enumerate()
    {
        let at = sections + 40 * i;
        pe[at..at + 8].copy_from_slice(name);
        put32(&mut pe, at + 8, 0x1000);
        put32(&mut pe, at + 12, va);
        put32(&mut pe, at + 16, raw);
        put32(&mut pe, at + 20, ptr);
        put32(&mut pe, at + 36, chars);
    }
    // The "packed code": a jump to itself and some filler.
    pe[0x210..0x212].copy_from_slice(&[0xeb, 0xfe]);
    pe
}

fn names(yara: &Value) -> Vec<String> {
    yara.as_array()
        .unwrap_or_else(|| panic!("yara is not a list: {yara}"))
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

fn report(s: &Server, id: i64) -> Value {
    s.wait_status(id, "reported");
    s.get(&format!("/tasks/report/{id}")).json()
}

/// Waits for a server log line containing every one of `parts`.
fn wait_log(s: &Server, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(l) = s
            .log_lines()
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}:\n{}",
            s.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn starter_rules_on_samples_and_archive_members_in_every_dialect() {
    let s = Server::start(
        "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n[emulator]\nenabled = false\n",
    );

    // EICAR: Cuckoo's `target.file.yara` entry, exactly.
    let id = s.submit_file("eicar.com", &eicar());
    let rep = report(&s, id);
    let yara = &rep["target"]["file"]["yara"];
    assert_eq!(names(yara), ["EICAR_Test_File"]);
    assert_eq!(
        yara[0],
        json!({
            "name": "EICAR_Test_File",
            "meta": {
                "description": "EICAR anti-virus test file",
                "author": "nestbox",
                "reference": "https://www.eicar.org/download-anti-malware-testfile/",
                "severity": 1,
            },
            // base64 of the 68 matched bytes.
            "strings": ["WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="],
            "offsets": {"eicar": [[0, 0]]},
            "tags": ["test"],
        })
    );
    // CAPE: the same entries in its report, and its extendedsearch finds the task by rule.
    let cape = s.get(&format!("/apiv2/tasks/get/report/{id}/")).json();
    assert_eq!(cape["target"]["file"]["yara"], *yara);
    let found = s
        .post_form(
            "/apiv2/tasks/extendedsearch/",
            &[("option", "yaraname"), ("argument", "EICAR_Test_File")],
        )
        .json();
    assert_eq!(found["error"], false, "{found}");
    assert!(
        found["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["info"]["id"] == id),
        "{found}"
    );

    // A UPX-like PE: the pe-module rule fires; plain text matches nothing.
    let id = s.submit_file("packed.exe", &upx_like_pe());
    let rep = report(&s, id);
    let got = names(&rep["target"]["file"]["yara"]);
    assert!(got.contains(&"UPX_Packed".to_owned()), "{got:?}");
    let upx = rep["target"]["file"]["yara"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "UPX_Packed")
        .unwrap();
    assert_eq!(upx["tags"], json!(["packer"]));
    assert_eq!(upx["meta"]["packer"], "UPX");
    let id = s.submit_file("note.txt", b"nothing to see here\n");
    assert_eq!(report(&s, id)["target"]["file"]["yara"], json!([]));

    // An archive: its runnable member becomes a task of its own, scanned like a sample.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    use std::io::Write;
    w.start_file("inner/eicar.com", o).unwrap();
    w.write_all(&eicar()).unwrap();
    let zip = w.finish().unwrap().into_inner();
    let r = s.post_multipart(
        "/tasks/create/submit",
        &[Part::File("files", "b.zip", &zip)],
    );
    let ids = r.json()["task_ids"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(1), "{ids}");
    let rep = report(&s, ids[0].as_i64().unwrap());
    assert_eq!(rep["target"]["category"], "archive");
    assert_eq!(names(&rep["target"]["file"]["yara"]), ["EICAR_Test_File"]);
}

#[test]
fn rule_directory_bad_file_and_sighup_reload() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("sub")).unwrap();
    // Line 4 uses a pattern that is never declared.
    std::fs::write(
        rules.join("sub/broken.yar"),
        "rule Broken\n{\n  condition:\n    $missing\n}\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("mine.yar"),
        "rule Operator_Marker : local { meta: description = \"ours\" strings: $m = \"nestbox-marker-42\" condition: $m }\n",
    )
    .unwrap();
    let s = Server::start_in(
        dir,
        &format!(
            "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n\
             [yara]\nrules_dir = {:?}\nreload_interval = 0\n",
            rules.display().to_string()
        ),
    );
    // The broken file is reported by name and line; the server runs on with the rest.
    let line = wait_log(&s, &["YARA rule file skipped", "broken.yar"]);
    assert!(line.contains("line=4"), "{line}");
    let id = s.submit_file("a.txt", b"xx nestbox-marker-42 xx");
    let rep = report(&s, id);
    assert_eq!(names(&rep["target"]["file"]["yara"]), ["Operator_Marker"]);
    assert_eq!(
        rep["target"]["file"]["yara"][0]["meta"]["description"],
        "ours"
    );
    // The starter set is still there next to the operator's rules.
    let id = s.submit_file("e.com", &eicar());
    assert_eq!(
        names(&report(&s, id)["target"]["file"]["yara"]),
        ["EICAR_Test_File"]
    );

    // A new rule, and the broken file fixed; no polling (interval 0): SIGHUP reloads.
    std::fs::write(
        rules.join("second.yar"),
        "rule Second_Marker { strings: $m = \"second-marker\" condition: $m }\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("sub/broken.yar"),
        "rule Broken { strings: $missing = \"fixed-now\" condition: $missing }\n",
    )
    .unwrap();
    let st = Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_log(&s, &["YARA rules loaded", "generation=2", "skipped=0"]);
    let id = s.submit_file("b.txt", b"second-marker and fixed-now");
    let mut got = names(&report(&s, id)["target"]["file"]["yara"]);
    got.sort();
    assert_eq!(got, ["Broken", "Second_Marker"]);
    // Still the same process, still serving.
    assert_eq!(s.get("/cuckoo/status").status, 200);
}

#[test]
fn rule_directory_changes_are_picked_up_by_the_poll() {
    let s = Server::start(
        "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n[yara]\nreload_interval = 1\n",
    );
    // <data_dir>/yara, which does not exist at start-up.
    let dir = s.data().join("yara");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("late.yar"),
        "rule Late_Marker { strings: $m = \"late-marker\" condition: $m }\n",
    )
    .unwrap();
    wait_log(&s, &["YARA rules loaded", "generation=2"]);
    let id = s.submit_file("c.txt", b"a late-marker here");
    assert_eq!(
        names(&report(&s, id)["target"]["file"]["yara"]),
        ["Late_Marker"]
    );
}

/// Files the sample drops are scanned with the same rules (needs the ns sandbox, like
/// tests/it/sandbox.rs: it fails loudly where the sandbox cannot run).
#[test]
fn dropped_files_are_scanned() {
    let s = Server::start(
        "[analysis]\nworkers = 1\n[sandbox]\nslots = 1\nmemory_mb = 128\nmax_pids = 48\n\
         address_space_mb = 1024\nuid_base = 400000\n[emulator]\nenabled = false\n",
    );
    let e = String::from_utf8(eicar()).unwrap();
    let script =
        format!("#!/bin/sh\nprintf '%s' '{e}' > /tmp/dropped.com\necho plain > /tmp/plain.txt\n");
    let r = s.post_multipart(
        "/tasks/create/file",
        &[
            Part::File("file", "dropper.sh", script.as_bytes()),
            Part::Field("timeout", "20"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["task_id"].as_i64().unwrap();
    let rep = report(&s, id);
    assert_eq!(rep["info"]["machine"]["manager"], "ns", "{}", rep["info"]);
    let dropped = rep["dropped"].as_array().unwrap();
    let by_path = |p: &str| {
        dropped
            .iter()
            .find(|d| d["filepath"] == p)
            .unwrap_or_else(|| panic!("{p} not in dropped: {dropped:?}"))
    };
    assert_eq!(
        names(&by_path("/tmp/dropped.com")["yara"]),
        ["EICAR_Test_File"]
    );
    assert_eq!(by_path("/tmp/plain.txt")["yara"], json!([]));
}
