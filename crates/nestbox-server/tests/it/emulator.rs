//! The `emulator` machinery through the real server: Windows programs the test builds
//! with mingw-w64 run under speakeasy (in its sandbox), and the Cuckoo and CAPE reports
//! show what they did — the file they wrote, the Run key, the mutex, the domain they
//! resolved, the command they started — with the Windows signatures for each. A sample
//! that stops at an API speakeasy does not model is still reported, with the error.
//!
//! Needs `x86_64-w64-mingw32-gcc` (Debian `gcc-mingw-w64-x86-64-win32`, installed by scripts/bootstrap.sh)
//! and the speakeasy venv (`make emulator-venv`, or installed by the first run).

use std::path::Path;

use serde_json::Value;

use crate::harness::{Part, Server, strings};

/// Writes a file, sets a Run key, creates a mutex, resolves a domain, runs a command.
const BEHAVES: &str = r#"
#include <winsock2.h>
#include <windows.h>
int main(void) {
    CreateMutexA(NULL, FALSE, "Global\\nestbox_emu_mutex");
    HANDLE f = CreateFileA("C:\\Users\\Public\\dropped.txt", GENERIC_WRITE, 0, NULL,
                           CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD w;
    WriteFile(f, "dropped by the sample\r\n", 23, &w, NULL);
    CloseHandle(f);
    HKEY k;
    if (RegOpenKeyExA(HKEY_CURRENT_USER, "Software\\Microsoft\\Windows\\CurrentVersion\\Run",
                      0, KEY_SET_VALUE, &k) == ERROR_SUCCESS) {
        RegSetValueExA(k, "nestboxemu", 0, REG_SZ, (const BYTE *)"C:\\Users\\Public\\up.exe", 23);
        RegCloseKey(k);
    }
    WSADATA wd;
    WSAStartup(MAKEWORD(2, 2), &wd);
    gethostbyname("c2.nestbox-test.example");
    WinExec("cmd.exe /c vssadmin delete shadows /all /quiet", SW_HIDE);
    if (IsDebuggerPresent()) return 3;
    return 0;
}
"#;

/// Creates a mutex, then calls an API speakeasy does not model.
const UNSUPPORTED: &str = r#"
#include <windows.h>
int main(void) {
    CreateMutexA(NULL, FALSE, "before_the_gap");
    char buf[MAX_PATH];
    GetFinalPathNameByHandleA(GetCurrentProcess(), buf, sizeof buf, 0);
    CreateMutexA(NULL, FALSE, "after_the_gap");
    return 0;
}
"#;

fn mingw(dir: &Path, name: &str, src: &str) -> Vec<u8> {
    let c = dir.join(format!("{name}.c"));
    let out = dir.join(format!("{name}.exe"));
    std::fs::write(&c, src).unwrap();
    let st = std::process::Command::new("x86_64-w64-mingw32-gcc")
        .args(["-O1", "-s", "-o"])
        .arg(&out)
        .arg(&c)
        .arg("-lws2_32")
        .status()
        .expect("x86_64-w64-mingw32-gcc (apt-get install mingw-w64) builds the test samples");
    assert!(st.success(), "mingw failed on {name}.c");
    std::fs::read(out).unwrap()
}

fn submit(s: &Server, name: &str, content: &[u8]) -> i64 {
    let r = s.post_multipart(
        "/tasks/create/file",
        &[
            Part::File("file", name, content),
            Part::Field("timeout", "30"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["task_id"].as_i64().unwrap()
}

fn report(s: &Server, id: i64) -> Value {
    s.wait_status(id, "reported");
    s.get(&format!("/tasks/report/{id}")).json()
}

#[test]
fn windows_samples_are_emulated_and_linux_ones_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        "[analysis]\nworkers = 2\n[sandbox]\nslots = 1\nuid_base = 230000\n\
         [emulator]\nslots = 1\n[cape.endpoints]\nmachinelist = true\n",
    );
    // Both machineries' slots, in every dialect that lists machines.
    let names = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["platform"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let want = vec![
        ("emulator1".to_owned(), "windows".to_owned()),
        ("ns1".to_owned(), "linux".to_owned()),
    ];
    assert_eq!(names(&s.get("/machines/list").json()["machines"]), want);
    assert_eq!(names(&s.get("/apiv2/machines/list/").json()["data"]), want);

    let pe = mingw(dir.path(), "behaves", BEHAVES);
    let id = submit(&s, "behaves.exe", &pe);
    let sh = submit(&s, "x.sh", b"#!/bin/sh\necho hi > /tmp/x.txt\n");
    let r = report(&s, id);
    assert_eq!(r["info"]["machine"]["name"], "emulator1", "{}", r["info"]);
    assert_eq!(r["info"]["machine"]["manager"], "emulator");
    let b = &r["behavior"];
    let sum = &b["summary"];
    assert!(
        strings(&sum["write_files"]).contains(&"C:\\Users\\Public\\dropped.txt".to_owned()),
        "{sum}"
    );
    assert!(
        strings(&sum["write_keys"]).contains(
            &"HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\nestboxemu"
                .to_owned()
        ),
        "{sum}"
    );
    assert!(strings(&sum["mutexes"]).contains(&"Global\\nestbox_emu_mutex".to_owned()));
    assert!(strings(&sum["resolves_host"]).contains(&"c2.nestbox-test.example".to_owned()));
    let cmd = "cmd.exe /c vssadmin delete shadows /all /quiet".to_owned();
    assert!(strings(&sum["executed_commands"]).contains(&cmd));
    // Calls with arguments and return values, the child in the tree.
    let p = &b["processes"][0];
    assert_eq!(p["process_name"], "behaves.exe");
    let calls = p["calls"].as_array().unwrap();
    let call = |api: &str| {
        calls
            .iter()
            .find(|c| c["api"] == api)
            .unwrap_or_else(|| panic!("no {api} in {calls:?}"))
    };
    assert_eq!(
        call("CreateMutexA")["arguments"]["lpName"],
        "Global\\nestbox_emu_mutex"
    );
    assert_eq!(
        call("RegSetValueExA")["arguments"]["lpData"],
        "C:\\Users\\Public\\up.exe"
    );
    assert_eq!(call("RegSetValueExA")["status"], true);
    assert_eq!(call("WinExec")["arguments"]["lpCmdLine"], cmd.as_str());
    assert_eq!(call("gethostbyname")["category"], "network");
    assert_eq!(
        b["processtree"][0]["children"][0]["command_line"],
        cmd.as_str()
    );
    assert_eq!(
        r["network"]["domains"][0]["domain"],
        "c2.nestbox-test.example"
    );
    // The dropped file, with its hashes, downloadable.
    let d = r["dropped"].as_array().unwrap();
    let f = d
        .iter()
        .find(|f| f["name"] == "dropped.txt")
        .expect("dropped.txt");
    assert_eq!(f["filepath"], "C:\\Users\\Public\\dropped.txt");
    assert_eq!(f["size"], 23);
    // sha256 of "dropped by the sample\r\n", what WriteFile wrote.
    assert_eq!(
        f["sha256"],
        "4f7ca147b2b601299ad970639d6fd435fbe1e05209350c545820279b7e40694c"
    );
    // Signatures over the emulated behaviour.
    let sigs: Vec<&str> = r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for want in [
        "persistence_autorun",
        "creates_mutex",
        "network_dns_lookup",
        "executes_shell_command",
        "deletes_shadow_copies",
        "antidebug_api",
    ] {
        assert!(sigs.contains(&want), "{want} missing from {sigs:?}");
    }
    assert!(r["info"]["score"].as_f64().unwrap() > 0.0);
    // It ran in the sandbox: as root, under the slot's unprivileged uid.
    let log = strings(&r["debug"]["log"]);
    let ran = log
        .iter()
        .find(|l| l.contains("ran behaves.exe as exe x64 (slot 1"))
        .unwrap_or_else(|| panic!("{log:?}"));
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    assert_eq!(ran.contains("uid 210001"), root, "{ran}");
    // The same through CAPE's report view.
    let c = s.get(&format!("/apiv2/tasks/get/report/{id}/")).json();
    assert!(
        strings(&c["behavior"]["summary"]["mutexes"])
            .contains(&"Global\\nestbox_emu_mutex".to_owned()),
        "{c}"
    );

    // The shell script went to the Linux sandbox.
    let r = report(&s, sh);
    assert_eq!(r["info"]["machine"]["manager"], "ns");
    assert!(
        strings(&r["behavior"]["summary"]["write_files"])
            .iter()
            .any(|f| f.ends_with("x.txt"))
    );

    // An unsupported API ends the emulation of the entry point: recorded, still reported.
    let pe = mingw(dir.path(), "gap", UNSUPPORTED);
    let id = submit(&s, "gap.exe", &pe);
    let r = report(&s, id);
    let errors = strings(&r["debug"]["errors"]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("GetFinalPathNameByHandleA")),
        "{errors:?}"
    );
    let mutexes = strings(&r["behavior"]["summary"]["mutexes"]);
    assert_eq!(mutexes, ["before_the_gap"]);
    assert_eq!(r["behavior"]["anomaly"][0]["name"], "unsupported_api");
    let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
    assert!(
        strings(&t["errors"])
            .iter()
            .any(|e| e.contains("unsupported API"))
    );
}

#[test]
fn a_truncated_pe_is_still_reported() {
    // The headers of a real PE over missing sections: speakeasy cannot load it; the
    // failure is recorded and the task is reported with its static analysis.
    let dir = tempfile::tempdir().unwrap();
    let mut pe = mingw(dir.path(), "whole", UNSUPPORTED);
    pe.truncate(1536);
    let s = Server::start("[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n");
    let id = submit(&s, "broken.exe", &pe);
    let r = report(&s, id);
    assert_eq!(r["info"]["machine"]["manager"], "emulator", "{}", r["info"]);
    let errors = strings(&r["debug"]["errors"]);
    assert!(
        errors.iter().any(|e| e.starts_with("emulator:")),
        "{errors:?}"
    );
    assert!(r["target"]["file"]["sha256"].is_string());
}

/// An empty 16 MiB qcow2 base image in `dir` (what the stand-in QEMUs are given).
fn empty_qcow2(dir: &Path) -> std::path::PathBuf {
    let base = dir.join("base.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&base)
        .arg("16M")
        .status()
        .expect("qemu-img (qemu-utils)");
    assert!(st.success());
    base
}

/// A QEMU guest from `[[qemu.machines]]` through the real server, with the test stand-in
/// for QEMU (it answers as the Cuckoo agent and serves QMP): the machine is listed, a
/// task that names it runs there, and the report has its screenshots and pcap.
#[test]
fn a_qemu_guest_is_listed_and_runs_a_named_task() {
    let dir = tempfile::tempdir().unwrap();
    let base = empty_qcow2(dir.path());
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nestbox-qemu/tests/fake_qemu.py");
    let s = Server::start(&format!(
        "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n[emulator]\nenabled = false\n\
         [qemu]\nqemu = {:?}\nscreenshot_every = 1\n[[qemu.machines]]\nname = \"win10\"\n\
         image = {:?}\naccel = \"tcg\"\nmemory_mb = 256\ntags = [\"office\"]\n",
        fake.to_string_lossy(),
        base.to_string_lossy()
    ));
    let ms = s.get("/machines/list").json()["machines"].clone();
    let win = ms
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "win10")
        .expect("win10 listed");
    assert_eq!(win["platform"], "windows");
    assert_eq!(win["tags"], serde_json::json!(["office", "qemu"]));
    let r = s.post_multipart(
        "/tasks/create/file",
        &[
            Part::File("file", "doc.exe", b"MZ not really"),
            Part::Field("machine", "win10"),
            Part::Field("timeout", "5"),
        ],
    );
    let id = r.json()["task_id"].as_i64().unwrap();
    let r = report(&s, id);
    assert_eq!(r["info"]["machine"]["manager"], "qemu", "{}", r["debug"]);
    assert!(
        !r["screenshots"].as_array().unwrap().is_empty(),
        "{}",
        r["debug"]
    );
    let shots = s.get(&format!("/tasks/screenshots/{id}"));
    assert_eq!((shots.status, &shots.body[..2]), (200, &b"PK"[..]));
    assert_eq!(s.get(&format!("/pcap/get/{id}")).status, 200);
    let log = strings(&r["debug"]["log"]);
    assert!(
        log.iter()
            .any(|l| l.contains("analyzer finished: complete")),
        "{log:?}"
    );
}

/// A QEMU guest that cannot start is taken out of rotation with a clear error: the task
/// keeps its static report, `machines/list` shows the machine locked and `broken`, the
/// next task for it waits instead of failing on it too, and after `machine_retry_secs`
/// the machine is tried again.
#[test]
fn a_broken_qemu_guest_leaves_rotation_and_is_retried_later() {
    let dir = tempfile::tempdir().unwrap();
    let base = empty_qcow2(dir.path());
    // A "QEMU" that refuses its command line, as a real one does with a bad option.
    let bad = dir.path().join("bad-qemu");
    std::fs::write(
        &bad,
        "#!/bin/sh\necho 'qemu: -netdev: invalid option' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = Server::start(&format!(
        "[analysis]\nworkers = 1\nmachine_retry_secs = 4\npoll_interval_ms = 200\n\
         [sandbox]\nmachinery = \"none\"\n[emulator]\nenabled = false\n\
         [qemu]\nqemu = {:?}\n[[qemu.machines]]\nname = \"win7\"\nimage = {:?}\n\
         accel = \"tcg\"\nmemory_mb = 256\n",
        bad.to_string_lossy(),
        base.to_string_lossy()
    ));
    let submit = || {
        let r = s.post_multipart(
            "/tasks/create/file",
            &[
                Part::File("file", "a.exe", b"MZ not really"),
                Part::Field("machine", "win7"),
                Part::Field("timeout", "5"),
            ],
        );
        r.json()["task_id"].as_i64().unwrap()
    };
    let win7 = || s.get("/machines/view/win7").json()["machine"].clone();
    let first = submit();
    let r = report(&s, first);
    let errors = strings(&r["debug"]["errors"]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Machine win7 failed and is out of rotation for 4 s")),
        "{errors:?}"
    );
    assert!(
        r["target"]["file"]["sha256"].is_string(),
        "static report kept"
    );
    let m = win7();
    assert_eq!(
        (m["status"].as_str(), m["locked"].as_bool()),
        (Some("broken"), Some(true)),
        "{m}"
    );
    let broke = std::time::Instant::now();

    // The next task for it waits while the machine is out of rotation...
    let second = submit();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    if broke.elapsed() < std::time::Duration::from_secs(3) {
        assert_eq!(
            s.get(&format!("/tasks/view/{second}")).json()["task"]["status"],
            "pending"
        );
    }
    // ...and runs once it is retried (and, QEMU still broken, takes it out again).
    let r = report(&s, second);
    assert!(broke.elapsed() >= std::time::Duration::from_secs(3));
    assert_eq!(r["info"]["machine"]["name"], "win7", "{}", r["info"]);
    assert_eq!(win7()["status"], "broken");
}
