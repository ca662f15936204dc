//! The whole `qemu` detonation against a stand-in QEMU (`fake_qemu.py`) that answers as
//! the Cuckoo agent on the forwarded port and serves QMP: overlay, command line, agent
//! sequence, screenshots, quit, pcap — and a guest that never answers.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nestbox_core::machinery::{DetonationJob, Machinery};
use nestbox_qemu::vm::GuestConfig;
use nestbox_qemu::{QemuMachinery, QemuSettings};
use nestbox_types::{Machine, MachineSpec, Task, Timestamp};

fn base_image(dir: &Path) -> PathBuf {
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

fn machinery(dir: &Path, critical: u64) -> QemuMachinery {
    machinery_with(
        dir,
        critical,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_qemu.py"),
    )
}

fn machinery_with(dir: &Path, critical: u64, qemu: &Path) -> QemuMachinery {
    let analyzer = dir.join("analyzer/windows");
    std::fs::create_dir_all(&analyzer).unwrap();
    std::fs::write(analyzer.join("analyzer.py"), "# the operator's analyzer\n").unwrap();
    QemuMachinery::new(QemuSettings {
        guests: vec![GuestConfig {
            name: "win10".into(),
            platform: "windows".into(),
            image: base_image(dir),
            state: None,
            kernel: None,
            initrd: None,
            append: None,
            memory_mb: 256,
            cpus: 1,
            accel: "tcg".into(),
            agent_port: 8000,
            ip: "10.0.2.15".into(),
            guestfwd: vec![],
            qemu: qemu.to_path_buf(),
        }],
        analyzer_dir: Some(dir.join("analyzer")),
        resultserver_ip: "10.0.2.2".into(),
        resultserver_port: 2042,
        critical: Duration::from_secs(critical),
        screenshot_every: Duration::from_millis(200),
    })
}

fn task() -> Task {
    common::running_task(3, "s.exe", Timestamp::now())
}

fn machine() -> Machine {
    Machine {
        id: 1,
        spec: MachineSpec {
            name: "win10".into(),
            label: "win10".into(),
            platform: "windows".into(),
            ip: "10.0.2.15".into(),
            tags: vec!["qemu".into()],
            options: vec![],
            snapshot: None,
            interface: None,
            resultserver_ip: "10.0.2.2".into(),
            resultserver_port: 2042,
            arch: "x64".into(),
        },
        locked: true,
        locked_changed_on: None,
        status: None,
        status_changed_on: None,
    }
}

#[tokio::test]
async fn a_detonation_runs_the_agent_sequence_and_collects_shots_and_pcap() {
    let d = tempfile::tempdir().unwrap();
    let m = machinery(d.path(), 20);
    let sample = d.path().join("s.exe");
    std::fs::write(&sample, b"MZ sample").unwrap();
    let work = d.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (t, mach) = (task(), machine());
    let det = m
        .detonate(DetonationJob {
            task: &t,
            machine: &mach,
            sample: Some(&sample),
            file_name: "s.exe",
            workdir: &work,
            timeout: Duration::from_secs(10),
        })
        .await
        .unwrap();
    assert!(det.errors.is_empty(), "{:?} {:?}", det.errors, det.log);
    let agent = std::fs::read_to_string(work.join("vm/agent.log")).unwrap();
    let seq: Vec<String> = agent
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {}", v[0].as_str().unwrap(), v[1].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        seq[..8],
        [
            "GET /",
            "GET /pinning",
            "GET /environ",
            "POST /mkdtemp",
            "POST /extract",
            "POST /store",
            "POST /store",
            "POST /execpy"
        ]
    );
    assert!(
        agent.contains("\"filepath\": \"C:\\\\Temp/s.exe\""),
        "{agent}"
    );
    assert!(!det.screenshots.is_empty(), "{:?}", det.log);
    assert!(
        std::fs::read(&det.screenshots[0])
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    assert!(det.pcap.is_some());
    // The overlay, not the base, was the disk.
    let argv = std::fs::read_to_string(work.join("vm/argv.json")).unwrap();
    assert!(
        argv.contains("run.qcow2") && !argv.contains("base.qcow2"),
        "{argv}"
    );
    assert!(argv.contains("restrict=on"));
    assert_eq!(det.machine_fault, None, "a working guest is no fault");
}

#[tokio::test]
async fn a_guest_that_never_answers_is_timed_out_and_stopped() {
    let d = tempfile::tempdir().unwrap();
    let m = machinery(d.path(), 1);
    let work = d.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (t, mach) = (task(), machine());
    std::fs::write(work.join("silent"), "").unwrap();
    let started = std::time::Instant::now();
    let det = m
        .detonate(DetonationJob {
            task: &t,
            machine: &mach,
            sample: None,
            file_name: "s.exe",
            workdir: &work,
            timeout: Duration::from_secs(2),
        })
        .await
        .unwrap();
    assert!(
        det.errors.iter().any(|e| e.contains("did not answer")),
        "{:?}",
        det.errors
    );
    // The machine, not the sample, failed: the worker takes it out of rotation.
    assert!(
        det.machine_fault
            .as_deref()
            .is_some_and(|f| f.contains("agent")),
        "{:?}",
        det.machine_fault
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_vm_that_exits_at_once_ends_the_wait_with_qemus_words() {
    let d = tempfile::tempdir().unwrap();
    // A "QEMU" that refuses its command line, as a real one does with a bad option.
    let qemu = d.path().join("bad-qemu");
    std::fs::write(
        &qemu,
        "#!/bin/sh\necho 'qemu: -netdev: invalid option' >&2\nexit 1\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&qemu)
        .status()
        .unwrap();
    let m = machinery_with(d.path(), 60, &qemu);
    let work = d.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (t, mach) = (task(), machine());
    let started = std::time::Instant::now();
    let det = m
        .detonate(DetonationJob {
            task: &t,
            machine: &mach,
            sample: None,
            file_name: "s.exe",
            workdir: &work,
            timeout: Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for a dead VM"
    );
    let all = det.errors.join("\n");
    assert!(all.contains("exited before its agent answered"), "{all}");
    assert!(all.contains("invalid option"), "{all}");
    assert!(det.machine_fault.is_some());
}
