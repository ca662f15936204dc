//! The `qemu` machinery: one detonation in a configured QEMU guest.
//!
//! Per task: a fresh overlay over the base image ([`vm`]), QEMU started with the agent
//! port forwarded to a free loopback port, the accelerator from a cached probe, the
//! Cuckoo/CAPE agent sequence ([`guest`]) with the analyzer the operator configured for
//! the platform, screenshots over QMP every few seconds, then QEMU is stopped and the
//! overlay discarded with the run directory. What the agent reports and what QEMU
//! captured (pcap, screenshots, the guest's console) come back; a guest that never
//! answers is an error entry, and QEMU is killed either way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nestbox_core::machinery::{Detonation, DetonationJob, Machinery};

use crate::agent::AgentClient;
use crate::guest::{self, AnalysisSpec};
use crate::qmp::Qmp;
use crate::vm::{self, GuestConfig, RunPaths};
use crate::{results, resultserver};

/// Settings of the machinery.
#[derive(Debug, Clone)]
pub struct QemuSettings {
    /// The guests.
    pub guests: Vec<GuestConfig>,
    /// `<analyzer_dir>/<platform>/` is zipped and sent to the guest (Cuckoo's/CAPE's
    /// `analyzer/` directory).
    pub analyzer_dir: Option<PathBuf>,
    /// Result server address the guest's analyzer reports to (as the guest sees it).
    pub resultserver_ip: String,
    /// Result server port.
    pub resultserver_port: i64,
    /// Grace on top of the analysis timeout.
    pub critical: Duration,
    /// Interval between screenshots.
    pub screenshot_every: Duration,
}

/// The machinery.
pub struct QemuMachinery {
    settings: Arc<QemuSettings>,
    /// The probed accelerator per machine (a probe boot takes up to a minute: once).
    accel: Arc<std::sync::Mutex<HashMap<String, String>>>,
}

impl QemuMachinery {
    /// A machinery over the configured guests.
    pub fn new(settings: QemuSettings) -> Self {
        QemuMachinery {
            settings: Arc::new(settings),
            accel: Arc::new(std::sync::Mutex::new(HashMap::new())),
        }
    }
}

/// The accelerator for `g`, probed once and cached. Blocking.
fn accel_for(cache: &std::sync::Mutex<HashMap<String, String>>, g: &GuestConfig) -> String {
    if let Some(a) = cache.lock().ok().and_then(|m| m.get(&g.name).cloned()) {
        return a;
    }
    let a = vm::choose_accel(g, Path::new("/dev/kvm"), |accel| probe_boot(g, accel));
    tracing::info!(machine = %g.name, accel = %a, "qemu accelerator chosen");
    if let Ok(mut m) = cache.lock() {
        m.insert(g.name.clone(), a.clone());
    }
    a
}

/// Boots `g` under `accel` on a scratch overlay and waits for its agent; true when it
/// answered `GET /` within [`vm::PROBE_TIMEOUT`].
fn probe_boot(g: &GuestConfig, accel: &str) -> bool {
    let Ok(dir) = tempdir("nestbox-qemu-probe") else {
        return false;
    };
    let p = RunPaths::in_dir(&dir);
    let ok = (|| {
        vm::create_overlay(&g.image, &p.overlay).ok()?;
        let port = vm::free_port().ok()?;
        let argv = vm::command(g, &p, accel, port);
        let mut child = vm::spawn_quiet(&argv).ok()?;
        let agent = AgentClient::new(([127, 0, 0, 1], port).into(), Duration::from_secs(2));
        let deadline = Instant::now() + vm::PROBE_TIMEOUT;
        let mut up = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if agent.get("/").is_ok_and(|r| r.status == 200) {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = child.kill();
        let _ = child.wait();
        Some(up)
    })()
    .unwrap_or(false);
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

fn tempdir(prefix: &str) -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&d)?;
    Ok(d)
}

/// Takes a screenshot every `every` until `stop`, then asks QEMU to quit.
fn screenshots(
    qmp: PathBuf,
    dir: PathBuf,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> (Vec<PathBuf>, Vec<String>) {
    let mut shots = Vec::new();
    let mut log = Vec::new();
    let t0 = Instant::now();
    let mut q = loop {
        match Qmp::connect(&qmp, Duration::from_secs(5)) {
            Ok(q) => break q,
            Err(e) if t0.elapsed() > Duration::from_secs(20) || stop.load(Ordering::SeqCst) => {
                log.push(format!("qemu: no QMP connection: {e}"));
                return (shots, log);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let _ = std::fs::create_dir_all(&dir);
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next && shots.len() < 10_000 {
            let f = dir.join(format!("{:04}.png", shots.len() + 1));
            match q.screendump(&f) {
                Ok(()) if f.exists() => shots.push(f),
                Ok(()) => {}
                Err(e) => log.push(format!("qemu: screendump failed: {e}")),
            }
            next = Instant::now() + every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = q.quit() {
        log.push(format!("qemu: quit over QMP failed: {e}"));
    }
    (shots, log)
}

/// The analyzer's executable when the platform's analyzer is `nestbox-analyzer` (no
/// `analyzer.py`).
fn native_analyzer(s: &QemuSettings, platform: &str) -> Option<String> {
    let dir = s.analyzer_dir.as_ref()?.join(platform);
    (dir.join("nestbox-analyzer").is_file() && !dir.join("analyzer.py").exists())
        .then(|| "nestbox-analyzer".to_owned())
}

fn analyzer_zip(s: &QemuSettings, platform: &str, log: &mut Vec<String>) -> Vec<u8> {
    if let Some(d) = &s.analyzer_dir {
        let dir = d.join(platform);
        match guest::zip_dir(&dir) {
            Ok(z) => return z,
            Err(e) => log.push(format!("qemu: analyzer {} not sent: {e}", dir.display())),
        }
    } else {
        log.push("qemu: no analyzer_dir configured; the guest gets an empty analyzer".to_owned());
    }
    guest::zip_dir(Path::new("/nonexistent")).unwrap_or_else(|_| {
        // The empty zip: only the end-of-central-directory record.
        let mut z = b"PK\x05\x06".to_vec();
        z.extend_from_slice(&[0u8; 18]);
        z
    })
}

#[async_trait]
impl Machinery for QemuMachinery {
    fn name(&self) -> &str {
        "qemu"
    }

    async fn detonate(&self, job: DetonationJob<'_>) -> nestbox_core::Result<Detonation> {
        let mut det = Detonation::default();
        let Some(g) = self
            .settings
            .guests
            .iter()
            // A worker node of a cluster registers its machines as `<node>/<name>`.
            .find(|g| {
                let name = &job.machine.spec.name;
                g.name == *name || name.rsplit_once('/').is_some_and(|(_, n)| g.name == n)
            })
            .cloned()
        else {
            det.errors.push(format!(
                "qemu: machine {} is not configured as a QEMU guest",
                job.machine.spec.name
            ));
            return Ok(det);
        };
        let run_dir = job.workdir.join("vm");
        let p = RunPaths::in_dir(&run_dir);
        // The result server: guest connections to its address are spooled here.
        let spool = run_dir.join("spool");
        let results_dir = job.workdir.join("results");
        let limits = resultserver::Limits::default();
        let mut g = g;
        match resultserver::guestfwd_rule(
            &self.settings.resultserver_ip,
            self.settings.resultserver_port,
            &spool,
            limits.upload_max_size,
        ) {
            Ok(rule) => g.guestfwd.push(rule),
            Err(e) => det.errors.push(format!("qemu: no result server: {e}")),
        }
        let prepared = {
            let (g, p, run_dir) = (g.clone(), p.clone(), run_dir.clone());
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(run_dir.join("spool")).map_err(|e| e.to_string())?;
                vm::create_overlay(&g.image, &p.overlay)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        };
        if let Err(e) = prepared {
            det.errors.push(format!("qemu: {e}"));
            det.machine_fault = Some(format!("its disk overlay could not be made: {e}"));
            return Ok(det);
        }
        let accel = {
            let (cache, g2) = (self.accel.clone(), g.clone());
            tokio::task::spawn_blocking(move || accel_for(&cache, &g2))
                .await
                .unwrap_or_else(|_| "tcg".to_owned())
        };
        let port = match vm::free_port() {
            Ok(p) => p,
            Err(e) => {
                det.errors.push(format!("qemu: no free port: {e}"));
                return Ok(det);
            }
        };
        let argv = vm::command(&g, &p, &accel, port);
        let qemu_log = std::fs::File::create(run_dir.join("qemu.log"));
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Ok(f) = qemu_log {
            if let Ok(f2) = f.try_clone() {
                cmd.stdout(f2);
            }
            cmd.stderr(f);
        }
        let t0 = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                det.errors
                    .push(format!("qemu: starting {} failed: {e}", argv[0]));
                det.machine_fault = Some(format!("QEMU did not start: {e}"));
                return Ok(det);
            }
        };
        // The exact command line: a saved state only restores into the same one.
        det.log.push(format!("qemu: {}", argv.join(" ")));
        det.log.push(format!(
            "qemu: {} started ({accel}, {} MiB, {} vCPU{}), agent on 127.0.0.1:{port}",
            g.name,
            g.memory_mb,
            g.cpus,
            if g.state.is_some() {
                ", from its saved state"
            } else {
                ""
            }
        ));
        // QEMU's life: a watcher notices it exiting on its own (a bad command line, a
        // guest that powers off) so the agent session stops waiting for a dead VM, and
        // stops it when asked: QMP `quit` first, killed 10 s later.
        let exited = Arc::new(AtomicBool::new(false));
        let (stop_qemu, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let watcher = {
            let exited = exited.clone();
            tokio::spawn(async move {
                let early = tokio::select! {
                    st = child.wait() => Some(st.map(|s| s.to_string()).unwrap_or_default()),
                    _ = stop_rx => {
                        if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                            let _ = child.kill().await;
                        }
                        None
                    }
                };
                exited.store(true, Ordering::SeqCst);
                early
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let shots = {
            let (qmp, dir, every, stop) = (
                p.qmp.clone(),
                run_dir.join("shots"),
                self.settings.screenshot_every,
                stop.clone(),
            );
            std::thread::spawn(move || screenshots(qmp, dir, every, stop))
        };
        // The agent sequence, off the async executor.
        let sample = job.sample.map(std::fs::read).transpose();
        let sample = match sample {
            Ok(s) => s,
            Err(e) => {
                det.errors.push(format!("qemu: reading the sample: {e}"));
                None
            }
        };
        let mut log = Vec::new();
        let zip = analyzer_zip(&self.settings, &g.platform, &mut log);
        let native = native_analyzer(&self.settings, &g.platform);
        det.log.extend(log);
        let outcome = {
            let task = job.task.clone();
            let settings = self.settings.clone();
            let platform = g.platform.clone();
            let file_name = job.file_name.to_owned();
            let file_type = job
                .task
                .sample
                .as_ref()
                .map(|s| s.file_type.clone())
                .unwrap_or_default();
            let timeout = job.timeout;
            let exited = exited.clone();
            tokio::task::spawn_blocking(move || {
                let spec = AnalysisSpec {
                    task: &task,
                    platform: &platform,
                    resultserver_ip: &settings.resultserver_ip,
                    resultserver_port: settings.resultserver_port,
                    analyzer_zip: zip,
                    sample: sample.map(|b| (file_name.as_str(), b)),
                    file_type: &file_type,
                    timeout,
                    critical: settings.critical,
                    poll: Duration::from_secs(1),
                    native: native.as_deref(),
                    alive: Some(&|| !exited.load(Ordering::SeqCst)),
                };
                let agent =
                    AgentClient::new(([127, 0, 0, 1], port).into(), Duration::from_secs(30));
                guest::run(&agent, &spec)
            })
            .await
        };
        let mut guest_target = String::new();
        match outcome {
            Ok(Ok(o)) => {
                guest_target = o.target.clone();
                det.log
                    .extend(o.log.into_iter().map(|l| format!("qemu: {l}")));
                match o.status.as_str() {
                    "complete" => {}
                    "timeout" => det
                        .log
                        .push("qemu: the analysis ran to its timeout".to_owned()),
                    other => det.errors.push(format!(
                        "The analyzer in the guest ended with {other}: {}",
                        o.description
                    )),
                }
            }
            // No agent session (the guest never answered, or its agent broke the
            // protocol): the machine is at fault, not the sample.
            Ok(Err(e)) => {
                det.errors.push(format!("qemu: {}: {e}", g.name));
                det.machine_fault = Some(format!("the guest agent failed: {e}"));
            }
            Err(e) => {
                det.errors
                    .push(format!("qemu: the agent session crashed: {e}"));
                det.machine_fault = Some(format!("the agent session crashed: {e}"));
            }
        }
        stop.store(true, Ordering::SeqCst);
        let (files, notes) = tokio::task::spawn_blocking(move || shots.join().unwrap_or_default())
            .await
            .unwrap_or_default();
        det.screenshots = files;
        det.log.extend(notes);
        let _ = stop_qemu.send(());
        if let Ok(Some(status)) = watcher.await {
            // QEMU's last words (why it stopped), capped.
            let out = std::fs::read(run_dir.join("qemu.log")).unwrap_or_default();
            let tail = String::from_utf8_lossy(&out[out.len().saturating_sub(600)..]);
            det.errors.push(format!(
                "qemu: the VM exited before the analysis ended ({status}): {}",
                tail.trim()
            ));
        }
        let received = {
            let (spool, results_dir) = (spool.clone(), results_dir.clone());
            tokio::task::spawn_blocking(move || {
                let got = resultserver::ingest_spool(&spool, &results_dir, &limits);
                let mut part = Detonation::default();
                results::apply(&results_dir, &guest_target, &mut part);
                (got, part)
            })
            .await
        };
        match received {
            Ok((got, part)) => {
                det.log.push(format!(
                    "qemu: result server: {} stream(s), {} bytes",
                    got.streams, got.bytes
                ));
                det.log.extend(got.notes);
                det.log.extend(part.log);
                det.errors.extend(part.errors);
                det.behavior = part.behavior;
                det.dropped = part.dropped;
                det.signatures = part.signatures;
            }
            Err(e) => det.errors.push(format!("qemu: reading the results: {e}")),
        }
        if std::fs::metadata(&p.pcap).is_ok_and(|m| m.len() > 24) {
            det.pcap = Some(p.pcap.clone());
        }
        det.log.push(format!(
            "qemu: run total {:.3} s",
            t0.elapsed().as_secs_f64()
        ));
        Ok(det)
    }
}
