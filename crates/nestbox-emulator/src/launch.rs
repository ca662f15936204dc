//! One emulation: a scratch tree, the sandboxed runner, its report read back.
//!
//! The runner runs under bubblewrap with every namespace unshared (so no network: the
//! network namespace has only a down loopback), `/usr` and the venv read-only, the sample
//! and the runner read-only, and `/out` the only writable place; the `ns` machinery's
//! seccomp deny-list ([`nestbox_sandbox::seccomp`]) and rlimits apply; as root the chain
//! first drops to an unprivileged per-slot uid. Everything the runner writes is read back
//! as hostile input: bounded sizes, `O_NOFOLLOW`, names checked.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nestbox_core::machinery::{Detonation, DetonationJob, DroppedFile};
use serde_json::{Value, json};

use crate::EmulatorSettings;
use crate::target::{self, Target};

/// The runner script, shipped inside the binary.
const RUNNER: &str = include_str!("runner.py");

/// Largest `report.json` read back (a report of 10 000 calls is ~2 MB).
const MAX_REPORT: u64 = 128 << 20;

/// Time the runner gets past the analysis timeout (interpreter start, report writing)
/// before it is killed.
const GRACE: Duration = Duration::from_secs(20);

/// The sample's pid in the behaviour (speakeasy emulates one process and reports no pid
/// for it; children it records carry their own).
pub const SAMPLE_PID: i64 = 1000;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn slot_of(name: &str) -> u32 {
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    digits.parse::<u32>().unwrap_or(0) % 10_000
}

fn read_head(p: &Path) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.take(4096).read_to_end(&mut buf);
    }
    buf
}

/// The whole command line: seccomp fd, parent-death signal, uid drop, rlimits (the `ns`
/// machinery's chain, [`nestbox_sandbox::launch::chain`]), then bwrap with its system view
/// and no network.
fn command(
    s: &EmulatorSettings,
    root: &Path,
    uid: Option<u32>,
    cpu_secs: u64,
) -> tokio::process::Command {
    let limits = [
        format!("--as={}", s.address_space),
        format!("--cpu={cpu_secs}"),
        format!("--fsize={}", s.max_file_size.max(256 << 20)),
        "--core=0".to_owned(),
        "--nofile=256".to_owned(),
    ];
    let mut cmd = nestbox_sandbox::launch::chain("nestbox-emulator", uid, &limits);
    let venv = std::path::absolute(&s.venv).unwrap_or_else(|_| s.venv.clone());
    let mut a = nestbox_sandbox::launch::bwrap_base("win-emulator", false);
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|x| (*x).to_owned()));
    push(&[
        "--tmpfs",
        "/tmp",
        "--ro-bind",
        &venv.to_string_lossy(),
        "/opt/speakeasy",
        "--ro-bind",
        &root.join("in").to_string_lossy(),
        "/opt/nestbox",
        "--bind",
        &root.join("out").to_string_lossy(),
        "/out",
        "--remount-ro",
        "/",
        "--chdir",
        "/tmp",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        "--seccomp",
        "3",
        "--",
        "/opt/speakeasy/bin/python3",
        "-I",
        "/opt/nestbox/runner.py",
        "/opt/nestbox/settings.json",
    ]);
    cmd.args(a);
    cmd
}

/// Prepares the scratch tree: `in/` (runner, settings, sample; read-only inside) and
/// `out/` (writable by the run's uid).
fn prepare(
    s: &EmulatorSettings,
    job: &DetonationJob<'_>,
    sample: &Path,
    t: Target,
    uid: Option<u32>,
) -> Result<Scratch, String> {
    let base = s.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = base.join(format!(
        "nestbox-emu-{}-{}-{}",
        job.task.id,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let e = |what: &str, err: std::io::Error| format!("emulator set-up: {what}: {err}");
    std::fs::create_dir(&root).map_err(|x| e("scratch directory", x))?;
    let scratch = Scratch(root.clone());
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).map_err(|x| e("chmod", x))
    };
    mode(&root, 0o711)?;
    let input = root.join("in");
    let out = root.join("out");
    std::fs::create_dir(&input).map_err(|x| e("in", x))?;
    std::fs::create_dir(&out).map_err(|x| e("out", x))?;
    mode(&input, 0o755)?;
    mode(&out, 0o700)?;
    if let Some(uid) = uid {
        chown(&out, Some(uid), Some(uid)).map_err(|x| e("chown", x))?;
    }
    std::fs::copy(sample, input.join("sample")).map_err(|x| e("copying the sample", x))?;
    mode(&input.join("sample"), 0o644)?;
    std::fs::write(input.join("runner.py"), RUNNER).map_err(|x| e("runner", x))?;
    let opts = &job.task.spec.options.0;
    let argv: Vec<&str> = opts
        .get("arguments")
        .map(|a| a.split_whitespace().collect())
        .unwrap_or_default();
    let settings = json!({
        "sample": "/opt/nestbox/sample",
        "out": "/out",
        "kind": t.kind.as_str(),
        "arch": t.arch,
        "timeout": job.timeout.as_secs().max(1),
        "max_api_count": s.max_api_count,
        "max_dropped": s.max_dropped,
        "max_file_size": s.max_file_size,
        "argv": argv,
        "name": nestbox_core::safe_component(job.file_name, "sample"),
    });
    std::fs::write(input.join("settings.json"), settings.to_string())
        .map_err(|x| e("settings", x))?;
    std::fs::write(
        root.join("seccomp.bpf"),
        // No tracer here: ptrace is simply denied.
        nestbox_sandbox::seccomp::filter_bytes(nestbox_sandbox::seccomp::Ptrace::Denied)?,
    )
    .map_err(|x| e("seccomp filter", x))?;
    for f in ["runner.py", "settings.json"] {
        mode(&input.join(f), 0o644)?;
    }
    Ok(scratch)
}

/// Opens a file the runner wrote, refusing links and special files, bounded.
fn read_output(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

fn tail(b: &[u8], max: usize) -> String {
    let start = b.len().saturating_sub(max);
    String::from_utf8_lossy(&b[start..]).trim().to_owned()
}

/// What to emulate for `job`; `Err` is the log line saying why nothing is.
pub(crate) fn target_of(job: &DetonationJob<'_>) -> Result<(Target, PathBuf), String> {
    let Some(sample) = job.sample else {
        return Err(format!(
            "emulator: nothing to emulate for a {} task",
            job.task.spec.category
        ));
    };
    let head = read_head(sample);
    target::choose(
        &job.task.spec.package,
        job.file_name,
        &head,
        job.task.spec.options.0.get("arch").map(String::as_str),
    )
    .map(|t| (t, sample.to_path_buf()))
    .ok_or_else(|| {
        format!(
            "emulator: {} is neither a Windows PE (x86/x64) nor shellcode; nothing emulated",
            job.file_name
        )
    })
}

/// Runs one job; never fails: problems are `errors` in the result.
pub(crate) async fn detonate(
    s: &EmulatorSettings,
    job: DetonationJob<'_>,
    (t, sample): (Target, PathBuf),
    mut det: Detonation,
) -> Detonation {
    let t0 = Instant::now();
    let sample = sample.as_path();
    let slot = slot_of(&job.machine.spec.name);
    let uid = nix::unistd::geteuid()
        .is_root()
        .then(|| s.uid_base.saturating_add(slot));
    let scratch = match prepare(s, &job, sample, t, uid) {
        Ok(x) => x,
        Err(e) => {
            det.errors.push(e);
            return det;
        }
    };
    let root = scratch.0.clone();
    let console = root.join("console.txt");
    let limit = job.timeout + GRACE;
    let mut cmd = command(s, &root, uid, limit.as_secs() + 5);
    let (out, err) = match std::fs::File::create(&console).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(x) => x,
        Err(e) => {
            det.errors
                .push(format!("emulator set-up: console file: {e}"));
            return det;
        }
    };
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("NBX_SECCOMP", root.join("seccomp.bpf"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            det.errors
                .push(format!("emulator: starting the sandbox failed: {e}"));
            return det;
        }
    };
    let pgid = child.id().map(|i| i as i32);
    let (timed_out, status) = match tokio::time::timeout(limit, child.wait()).await {
        Ok(st) => (false, st.ok()),
        Err(_) => (true, None),
    };
    if let Some(pg) = pgid {
        // bwrap's --die-with-parent takes the sandbox down with the chain.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pg),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if timed_out {
        let _ = child.wait().await;
    }
    let elapsed = started.elapsed();
    det.log.push(format!(
        "emulator: speakeasy {} ran {} as {} {} (slot {slot}{}) in {:.3} s, {}",
        crate::venv::SPEAKEASY_VERSION,
        job.file_name,
        t.kind.as_str(),
        t.arch,
        uid.map(|u| format!(", uid {u}")).unwrap_or_default(),
        elapsed.as_secs_f64(),
        match (timed_out, status) {
            (true, _) => "killed at the time limit".to_owned(),
            (false, Some(st)) => format!("ended with {st}"),
            (false, None) => "ended".to_owned(),
        }
    ));
    if timed_out {
        det.errors.push(format!(
            "The emulator did not finish within {} s and was killed",
            limit.as_secs()
        ));
    }

    let settings = s.clone();
    let workdir = job.workdir.to_path_buf();
    let handle = tokio::task::spawn_blocking(move || {
        let report = read_output(&root.join("out").join("report.json"), MAX_REPORT);
        let console = read_output(&root.join("console.txt"), 1 << 20).unwrap_or_default();
        let mapped = report
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
            .map(|v| {
                let m = crate::report::map(&v, settings.max_calls_per_process);
                let dropped = collect_dropped(
                    &v,
                    &root.join("out"),
                    &workdir.join("dropped"),
                    settings.max_file_size,
                );
                (m, dropped)
            });
        drop(scratch);
        (mapped, tail(&console, 2000))
    });
    match handle.await {
        Ok((Ok((m, (files, notes))), _)) => {
            det.behavior = m.behavior;
            det.network = m.network;
            det.procmemory = m.procmemory;
            det.errors.extend(m.errors);
            det.log.extend(m.log);
            det.log
                .extend(notes.into_iter().map(|n| format!("emulator: {n}")));
            det.dropped = files;
        }
        Ok((Err(e), console)) => det.errors.push(format!(
            "The emulator produced no report ({e}){}",
            if console.is_empty() {
                String::new()
            } else {
                format!(": {console}")
            }
        )),
        Err(e) => det
            .errors
            .push(format!("processing the emulation crashed: {e}")),
    }
    det.signatures = crate::signatures::evaluate(&crate::signatures::Evidence::new(
        &det.behavior,
        &det.network,
        &det.procmemory,
    ));
    det.log.push(format!(
        "emulator: detonation total {:.3} s",
        t0.elapsed().as_secs_f64()
    ));
    det
}

/// The files the runner saved (`nestbox.dropped[]`: `{path, file: "dropped/<n>"}`),
/// copied into `dest` with their static identity.
fn collect_dropped(
    report: &Value,
    out: &Path,
    dest: &Path,
    max_size: u64,
) -> (Vec<DroppedFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let entries = report["nestbox"]["dropped"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        return (files, notes);
    }
    if let Err(e) = std::fs::create_dir_all(dest) {
        notes.push(format!("cannot store dropped files: {e}"));
        return (files, notes);
    }
    for (n, entry) in entries.iter().enumerate().take(10_000) {
        let inside = entry["path"].as_str().unwrap_or("").to_owned();
        let rel = entry["file"].as_str().unwrap_or("");
        let ok_name = rel.strip_prefix("dropped/").is_some_and(|d| {
            !d.is_empty() && d.len() < 10 && d.bytes().all(|b| b.is_ascii_digit())
        });
        if !ok_name {
            notes.push(format!("dropped file entry {n} has a bad name; ignored"));
            continue;
        }
        let data = match read_output(&out.join(rel), max_size) {
            Ok(d) => d,
            Err(e) => {
                notes.push(format!("dropped file {inside} not kept: {e}"));
                continue;
            }
        };
        let local = dest.join(format!("{n:05}"));
        if let Err(e) = std::fs::write(&local, &data) {
            notes.push(format!("dropped file {inside} not kept: {e}"));
            continue;
        }
        let writers = std::collections::BTreeMap::from([(
            inside.clone(),
            std::collections::BTreeSet::from([SAMPLE_PID]),
        )]);
        match nestbox_sandbox::dropped::describe(local, inside.clone(), &writers) {
            Some(d) => files.push(d),
            None => notes.push(format!("dropped file {inside} could not be read back")),
        }
    }
    (files, notes)
}
