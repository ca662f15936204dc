//! `make bench-sandbox`: what one `ns` detonation costs, measured in one run against the
//! same programs started bare.
//!
//! * set-up + teardown: a detonation of `/usr/bin/true` (with and without the tracer)
//!   minus running it bare;
//! * tracer overhead: a syscall-heavy C program (100 000 × open/close + stat) traced by the
//!   eBPF tracer, the native (ptrace) tracer and strace, vs `free=yes` (sandboxed,
//!   untraced), vs bare, from the run time the machinery logs;
//! * throughput: analyses per hour of a 5 s sample with 4 slots at once, against the ideal
//!   `slots × 3600 / 5`.
//!
//! Needs what the `ns` machinery needs (root, bubblewrap, strace, gcc for the sample).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nestbox_core::machinery::{DetonationJob, Machinery};
use nestbox_sandbox::{NsMachinery, SandboxSettings, TracerKind};
use nestbox_types::{
    Category, Machine, MachineSpec, NewTask, Task, TaskId, TaskOptions, TaskStatus, Timestamp,
};

const HEAVY_C: &str = r#"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    struct stat st;
    for (int i = 0; i < 100000; i++) {
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd >= 0) close(fd);
        stat("/etc/hostname", &st);
    }
    return 0;
}
"#;

fn task(id: i64, options: &str, timeout: i64) -> Task {
    let mut spec = NewTask::new(Category::File, "sample");
    spec.options = TaskOptions::parse(options);
    spec.timeout = timeout;
    spec.route = Some("none".into());
    Task {
        id: TaskId(id),
        spec,
        clock: Timestamp::now(),
        added_on: Timestamp::now(),
        started_on: None,
        completed_on: None,
        status: TaskStatus::Running,
        processing: None,
        sample: None,
        guest: None,
        errors: Vec::new(),
    }
}

fn machine(n: i64) -> Machine {
    Machine {
        id: n,
        spec: MachineSpec {
            name: format!("ns{n}"),
            label: format!("ns{n}"),
            platform: "linux".into(),
            ip: String::new(),
            tags: Vec::new(),
            options: Vec::new(),
            snapshot: None,
            interface: None,
            resultserver_ip: String::new(),
            resultserver_port: 0,
            arch: "x64".into(),
        },
        locked: true,
        locked_changed_on: None,
        status: None,
        status_changed_on: None,
    }
}

/// One detonation; returns (wall seconds, the run time the machinery logged).
async fn detonate(
    m: &NsMachinery,
    id: i64,
    slot: i64,
    sample: &Path,
    name: &str,
    options: &str,
    timeout: u64,
) -> (f64, f64) {
    let work = tempfile::tempdir().expect("workdir");
    let t = task(id, options, timeout as i64);
    let mach = machine(slot);
    let t0 = Instant::now();
    let det = m
        .detonate(DetonationJob {
            task: &t,
            machine: &mach,
            sample: Some(sample),
            file_name: name,
            workdir: work.path(),
            timeout: Duration::from_secs(timeout),
        })
        .await
        .expect("detonation");
    let wall = t0.elapsed().as_secs_f64();
    assert!(det.errors.is_empty(), "{:?}", det.errors);
    if std::env::var_os("BENCH_SANDBOX_VERBOSE").is_some() {
        for l in det.log.iter().filter(|l| l.contains("detonation total")) {
            eprintln!("  [{name} {options}] {l}");
        }
    }
    let run = det
        .log
        .iter()
        .find_map(|l| l.split(", run ").nth(1))
        .and_then(|r| r.split(" s").next())
        .and_then(|r| r.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    (wall, run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bare(path: &Path, n: usize) -> f64 {
    median(
        (0..n)
            .map(|_| {
                let t0 = Instant::now();
                let st = Command::new(path).status().expect("run bare");
                assert!(st.success());
                t0.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn build(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let heavy = dir.join("heavy");
    let c = dir.join("heavy.c");
    std::fs::write(&c, HEAVY_C).unwrap();
    let st = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&heavy)
        .arg(&c)
        .status()
        .expect("gcc");
    assert!(st.success());
    let truebin = dir.join("true");
    std::fs::copy("/usr/bin/true", &truebin).unwrap();
    let sleeper = dir.join("sleep5.sh");
    std::fs::write(&sleeper, "#!/bin/sh\nsleep 5\n").unwrap();
    (truebin, heavy, sleeper)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // The slot uids must be able to read the samples' copies (the machinery copies them).
    let (truebin, heavy, sleeper) = build(dir.path());
    // One machinery per tracer, for the comparison; each must really run the tracer it
    // names (the probe falls back to another where one cannot run).
    let machinery = |tracer: TracerKind| {
        let (m, probe) = NsMachinery::new(SandboxSettings {
            uid_base: 290_000,
            tracer,
            ..SandboxSettings::default()
        })
        .unwrap_or_else(|p| panic!("ns ({}) unavailable: {}", tracer.name(), p.describe()));
        println!("probe ({}): {}", tracer.name(), probe.describe());
        assert_eq!(
            probe.tracer, tracer,
            "the probe fell back to another tracer"
        );
        std::sync::Arc::new(m)
    };
    let m = machinery(TracerKind::Native);
    let ms = machinery(TracerKind::Strace);
    let me = machinery(TracerKind::Ebpf);
    let n = 15;
    let mut id = 1;
    let mut next = || {
        id += 1;
        id
    };

    // `BENCH_SANDBOX_PARTS=true,heavy,throughput` (the default: all three) picks parts.
    let parts =
        std::env::var("BENCH_SANDBOX_PARTS").unwrap_or_else(|_| "true,heavy,throughput".into());
    let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    if part("true") {
        fixed_cost(&m, &me, &truebin, n, &mut next).await;
    }
    if part("heavy") {
        tracer_overhead(&m, &ms, &me, &heavy, &mut next).await;
    }
    if part("throughput") {
        throughput(&me, &truebin, &sleeper, &mut next).await;
    }
}

/// Set-up + teardown: `/bin/true` detonated, traced and not, against running it bare.
async fn fixed_cost(
    m: &NsMachinery,
    me: &NsMachinery,
    truebin: &Path,
    n: usize,
    next: &mut impl FnMut() -> i64,
) {
    let bare_true = bare(truebin, n);
    let mut traced = Vec::new();
    let mut traced_e = Vec::new();
    let mut free = Vec::new();
    for _ in 0..n {
        traced.push(
            detonate(m, next(), 1, truebin, "true", "screenshots=no", 20)
                .await
                .0,
        );
        traced_e.push(
            detonate(me, next(), 1, truebin, "true", "screenshots=no", 20)
                .await
                .0,
        );
        free.push(
            detonate(m, next(), 1, truebin, "true", "screenshots=no,free=yes", 20)
                .await
                .0,
        );
    }
    let (dt, de, df) = (median(traced), median(traced_e), median(free));
    println!("\n/bin/true, median of {n}:");
    println!("  bare                         {:8.1} ms", bare_true * 1e3);
    println!(
        "  detonation, untraced         {:8.1} ms  (set-up + teardown + report ≈ {:.1} ms)",
        df * 1e3,
        (df - bare_true) * 1e3
    );
    println!(
        "  detonation, native tracer    {:8.1} ms  (≈ {:.1} ms over bare)",
        dt * 1e3,
        (dt - bare_true) * 1e3
    );
    println!(
        "  detonation, eBPF tracer      {:8.1} ms  (≈ {:.1} ms over bare)",
        de * 1e3,
        (de - bare_true) * 1e3
    );
}

/// Tracer overhead on open-heavy code: eBPF tracer, native tracer, strace, untraced, bare.
async fn tracer_overhead(
    m: &NsMachinery,
    ms: &NsMachinery,
    me: &NsMachinery,
    heavy: &Path,
    next: &mut impl FnMut() -> i64,
) {
    let bare_heavy = bare(heavy, 5);
    let mut runs_e = Vec::new();
    let mut runs_t = Vec::new();
    let mut runs_s = Vec::new();
    let mut runs_f = Vec::new();
    for _ in 0..5 {
        runs_e.push(
            detonate(me, next(), 1, heavy, "heavy", "screenshots=no", 60)
                .await
                .1,
        );
        runs_t.push(
            detonate(m, next(), 1, heavy, "heavy", "screenshots=no", 60)
                .await
                .1,
        );
        runs_s.push(
            detonate(ms, next(), 1, heavy, "heavy", "screenshots=no", 60)
                .await
                .1,
        );
        runs_f.push(
            detonate(m, next(), 1, heavy, "heavy", "screenshots=no,free=yes", 60)
                .await
                .1,
        );
    }
    let (re, rt, rs, rf) = (
        median(runs_e),
        median(runs_t),
        median(runs_s),
        median(runs_f),
    );
    println!("\nsyscall-heavy (100k open/close + stat), median of 5, run time only:");
    println!("  bare                         {:8.3} s", bare_heavy);
    println!(
        "  sandboxed, untraced          {:8.3} s  ({:.2}× bare)",
        rf,
        rf / bare_heavy
    );
    println!(
        "  sandboxed, eBPF tracer       {:8.3} s  ({:.2}× bare, {:.2}× untraced)",
        re,
        re / bare_heavy,
        re / rf
    );
    println!(
        "  sandboxed, native tracer     {:8.3} s  ({:.2}× bare, {:.2}× untraced)",
        rt,
        rt / bare_heavy,
        rt / rf
    );
    println!(
        "  sandboxed, strace            {:8.3} s  ({:.2}× bare, {:.2}× untraced, {:.2}× native)",
        rs,
        rs / bare_heavy,
        rs / rf,
        rs / rt
    );
}

/// Analyses per hour of a 5 s sample, 4 slots, under the default (eBPF) tracer.
async fn throughput(
    m: &std::sync::Arc<NsMachinery>,
    truebin: &Path,
    sleeper: &Path,
    next: &mut impl FnMut() -> i64,
) {
    // Throughput as the worker pool runs it: each slot takes its next task as soon as
    // its previous detonation returns. The slots were set up at start-up (`warm`, as
    // the server does); the first detonation of each slot also starts its display, so
    // one warm-up round (not counted) runs first.
    let slots = 4;
    let rounds = 3;
    let names: Vec<String> = (1..=slots).map(|s| format!("ns{s}")).collect();
    assert!(m.warm(&names).is_empty());
    let mut warmups = Vec::new();
    for s in 1..=slots {
        let (m, truebin, i) = (m.clone(), truebin.to_path_buf(), next());
        warmups.push(tokio::spawn(async move {
            detonate(&m, i, s, &truebin, "true", "", 30).await
        }));
    }
    for h in warmups {
        h.await.expect("warm-up");
    }
    let ideal = slots as f64 * 3600.0 / 5.0;
    for (label, options) in [
        ("traced (eBPF tracer, the default)", ""),
        ("untraced (free=yes)", "free=yes"),
    ] {
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for s in 1..=slots {
            let (m, sleeper) = (m.clone(), sleeper.to_path_buf());
            let ids: Vec<i64> = (0..rounds).map(|_| next()).collect();
            handles.push(tokio::spawn(async move {
                for i in ids {
                    detonate(&m, i, s, &sleeper, "sleep5.sh", options, 30).await;
                }
            }));
        }
        for h in handles {
            h.await.expect("detonation task");
        }
        let wall = t0.elapsed().as_secs_f64();
        let done = (slots * rounds) as f64;
        let per_hour = done / wall * 3600.0;
        println!(
            "\n5 s sample {label}, {slots} slots back to back, {} analyses in {wall:.1} s:",
            slots * rounds
        );
        println!(
            "  {per_hour:.0} analyses/hour = {:.0} % of the ideal {ideal:.0}",
            per_hour / ideal * 100.0
        );
    }
}
