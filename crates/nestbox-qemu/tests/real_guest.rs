//! The real thing: the project's Linux guest (scripts/guest-image.sh: Debian's cloud
//! kernel, busybox, strace, `nestbox-agent` as its boot service) booted under TCG by the
//! `qemu` machinery. The host drives the real agent, sends `nestbox-analyzer` through it,
//! the sample runs under strace in the guest, and the analyzer's uploads come back over
//! the result server into behaviour and dropped files. A second run on the same machine
//! must not see what the first one wrote to the disk (the overlay was thrown away).
//!
//! Needs `qemu-system-x86_64` (scripts/bootstrap.sh installs it from bookworm-backports).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nestbox_core::machinery::{Detonation, DetonationJob, Machinery};
use nestbox_qemu::vm::GuestConfig;
use nestbox_qemu::{QemuMachinery, QemuSettings};
use nestbox_types::{Machine, MachineSpec, Timestamp};

/// Builds (or finds cached) the guest image; its directory.
pub fn guest_image() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new(root.join("scripts/guest-image.sh"))
        .arg(env!("CARGO_BIN_EXE_nestbox-agent"))
        .output()
        .expect("scripts/guest-image.sh");
    assert!(
        out.status.success(),
        "guest image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
}

fn guest(image: &Path) -> GuestConfig {
    GuestConfig {
        name: "linux1".into(),
        platform: "linux".into(),
        image: image.join("rootfs.qcow2"),
        state: None,
        kernel: Some(image.join("vmlinuz")),
        initrd: Some(image.join("initrd.gz")),
        append: Some("console=ttyS0 quiet panic=-1 tsc_early_khz=2000000".into()),
        memory_mb: 256,
        cpus: 1,
        accel: "tcg".into(),
        agent_port: 8000,
        ip: "10.0.2.15".into(),
        guestfwd: vec![],
        qemu: "qemu-system-x86_64".into(),
    }
}

fn machinery(g: GuestConfig, analyzers: &Path) -> QemuMachinery {
    let linux = analyzers.join("linux");
    std::fs::create_dir_all(&linux).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_nestbox-analyzer"),
        linux.join("nestbox-analyzer"),
    )
    .unwrap();
    QemuMachinery::new(QemuSettings {
        guests: vec![g],
        analyzer_dir: Some(analyzers.to_path_buf()),
        resultserver_ip: "10.0.2.100".into(),
        resultserver_port: 2042,
        critical: Duration::from_secs(60),
        screenshot_every: Duration::from_secs(2),
    })
}

fn machine() -> Machine {
    Machine {
        id: 1,
        spec: MachineSpec {
            name: "linux1".into(),
            label: "linux1".into(),
            platform: "linux".into(),
            ip: "10.0.2.15".into(),
            tags: vec!["qemu".into()],
            options: vec![],
            snapshot: None,
            interface: None,
            resultserver_ip: "10.0.2.100".into(),
            resultserver_port: 2042,
            arch: "x64".into(),
        },
        locked: true,
        locked_changed_on: None,
        status: None,
        status_changed_on: None,
    }
}

/// The sample: a shell script that forks, drops a file, leaves a marker on the root disk
/// and reports whether an earlier run's marker is still there.
const SAMPLE: &str = "#!/bin/sh
if [ -e /var/nestbox-marker ]; then seen=leftover; else seen=pristine; fi
echo \"$seen\" > /tmp/dropped-by-sample.txt
echo run > /var/nestbox-marker
/bin/uname -a > /dev/null
sync
";

async fn detonate(m: &QemuMachinery, dir: &Path, n: i64) -> Detonation {
    let sample = dir.join(format!("sample{n}.sh"));
    std::fs::write(&sample, SAMPLE).unwrap();
    let work = dir.join(format!("work{n}"));
    std::fs::create_dir(&work).unwrap();
    let t = common::running_task(n, "dropper.sh", Timestamp::now());
    let mach = machine();
    let started = Instant::now();
    let det = m
        .detonate(DetonationJob {
            task: &t,
            machine: &mach,
            sample: Some(&sample),
            file_name: "dropper.sh",
            workdir: &work,
            timeout: Duration::from_secs(30),
        })
        .await
        .unwrap();
    eprintln!(
        "run {n}: {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        det.log.join("\n")
    );
    det
}

fn dropped_text(det: &Detonation) -> String {
    let f = det
        .dropped
        .iter()
        .find(|f| f.info.filepath.as_deref() == Some("/tmp/dropped-by-sample.txt"))
        .unwrap_or_else(|| panic!("no dropped file: {:?}", det.log));
    std::fs::read_to_string(&f.local).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linux_guest_boots_runs_the_sample_and_reports_behaviour_from_pristine_state() {
    let image = guest_image();
    let d = tempfile::tempdir().unwrap();
    let m = machinery(guest(&image), &d.path().join("analyzer"));

    let det = detonate(&m, d.path(), 1).await;
    assert!(det.errors.is_empty(), "{:?}\n{:?}", det.errors, det.log);
    assert!(
        det.log
            .iter()
            .any(|l| l.contains("analyzer finished: complete")),
        "{:?}",
        det.log
    );
    // Behaviour: the script's process tree, from the guest's strace logs.
    let names: Vec<&str> = det
        .behavior
        .processes
        .iter()
        .filter_map(|p| p["process_name"].as_str())
        .collect();
    assert!(
        names.len() >= 2,
        "the script and its uname child: {names:?}"
    );
    let summary = serde_json::to_string(&det.behavior.summary).unwrap();
    assert!(
        summary.contains("/tmp/dropped-by-sample.txt"),
        "file writes in the summary: {summary}"
    );
    assert!(summary.contains("/bin/uname"), "{summary}");
    assert_eq!(dropped_text(&det).trim(), "pristine");
    assert!(!det.screenshots.is_empty(), "{:?}", det.log);
    // The base image is untouched: the second run starts from it again.
    let det2 = detonate(&m, d.path(), 2).await;
    assert!(det2.errors.is_empty(), "{:?}", det2.errors);
    assert_eq!(
        dropped_text(&det2).trim(),
        "pristine",
        "the first run's marker survived into the second run"
    );
    // Warm start: the booted guest saved once, then resumed for a run.
    let saved = nestbox_qemu::state::save(
        &guest(&image),
        "tcg",
        ("10.0.2.100", 2042),
        &d.path().join("warm"),
        Duration::from_secs(120),
    )
    .unwrap();
    let mut g = guest(&image);
    g.image = saved.image.clone();
    g.state = Some(saved.state.clone());
    let warm = machinery(g, &d.path().join("analyzer"));
    let det3 = detonate(&warm, d.path(), 3).await;
    assert!(det3.errors.is_empty(), "{:?}", det3.errors);
    assert!(
        det3.log.iter().any(|l| l.contains("from its saved state")),
        "{:?}",
        det3.log
    );
    assert_eq!(dropped_text(&det3).trim(), "pristine");
    let processes = det3.behavior.processes.len();
    assert!(processes >= 2, "{:?}", det3.behavior.processes);
    eprintln!("cold boot to agent: {:.2} s", saved.boot.as_secs_f64());
    // `make bench-machinery` (bench/machinery/run.sh) asks for timed rounds.
    let rounds: i64 = std::env::var("NESTBOX_BENCH_QEMU_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for i in 0..rounds {
        for (kind, m) in [("cold", &m), ("warm", &warm)] {
            let t = Instant::now();
            let det = detonate(m, d.path(), 10 + 2 * i + i64::from(kind == "warm")).await;
            assert!(det.errors.is_empty(), "{:?}", det.errors);
            let ready = det
                .log
                .iter()
                .find_map(|l| l.strip_prefix("qemu: agent ready after "))
                .and_then(|s| s.trim_end_matches(" s").parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            println!(
                "BENCH {kind} ready={ready:.3} total={:.3}",
                t.elapsed().as_secs_f64()
            );
        }
    }
}
