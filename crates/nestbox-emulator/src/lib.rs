//! The `emulator` machinery: Windows without Windows.
//!
//! PE executables, DLLs and shellcode blobs run under [speakeasy] (Mandiant's Windows
//! user/kernel-mode emulator on unicorn), which fakes the Windows API: every call the
//! sample makes is logged with its arguments and return value, files it writes are kept
//! in an emulated file system, registry, network and process events are recorded, and
//! nothing it does touches the host. Its JSON report is mapped onto Cuckoo's/CAPE's
//! `behavior`, `network`, `dropped` and `procmemory` ([`report`]), and Windows signatures
//! run over the result ([`signatures`]).
//!
//! Speakeasy is Python. nestbox installs a pinned version into its own virtual
//! environment on first use ([`venv`]) and runs a small runner script of its own
//! (`runner.py`, embedded) as a subprocess inside a bubblewrap sandbox: new user, pid,
//! mount, network, uts and ipc namespaces (no network at all), a read-only `/usr`, the
//! venv and the sample read-only, one writable output directory, the `ns` machinery's
//! seccomp deny-list, rlimits, and — when nestbox runs as root — an unprivileged per-slot
//! uid ([`launch`]). An emulator bug or a hostile sample can therefore crash or hang the
//! runner but never the server: a crash, a timeout or an unsupported API is recorded in
//! `debug.errors` and `behavior.anomaly`, and the task is still reported.
//!
//! Key decision and trade-off: speakeasy rather than Qiling or Wine. Speakeasy ships its
//! own Windows API models (no Windows DLLs needed, unlike Qiling), installs from PyPI in
//! seconds and is built for malware triage; the price is coverage — an API it does not
//! model ends the emulation of that entry point. The runner adds hooks for the APIs
//! malware commonly needs and speakeasy lacks (registry writes, crypto, clipboard, native
//! injection calls), so behaviour past them is still seen.
//!
//! [speakeasy]: https://pypi.org/project/speakeasy-emulator/
#![deny(missing_docs)]

pub mod launch;
pub mod report;
pub mod signatures;
pub mod target;
pub mod venv;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use nestbox_core::machinery::{Detonation, DetonationJob, Machinery};

/// Settings of the machinery (the `[emulator]` config section, resolved).
#[derive(Debug, Clone)]
pub struct EmulatorSettings {
    /// The speakeasy virtual environment (created here on first use).
    pub venv: PathBuf,
    /// The Python interpreter the venv is made with.
    pub python: PathBuf,
    /// Whether a missing venv may be installed (from PyPI, with pip).
    pub install: bool,
    /// Most API calls emulated per entry point (speakeasy's `max_api_count`).
    pub max_api_count: u64,
    /// Calls kept per process in `behavior.processes[].calls` (the rest are counted).
    pub max_calls_per_process: usize,
    /// Most dropped files kept.
    pub max_dropped: usize,
    /// Largest dropped file kept, in bytes (longer files are cut).
    pub max_file_size: u64,
    /// `RLIMIT_AS` of the emulator process, in bytes.
    pub address_space: u64,
    /// When running as root: slot N runs as host uid `uid_base + N`.
    pub uid_base: u32,
    /// Where per-run scratch directories are made (must be traversable by the slot
    /// uids); `None` = the system temporary directory.
    pub scratch_dir: Option<PathBuf>,
}

impl Default for EmulatorSettings {
    fn default() -> Self {
        EmulatorSettings {
            venv: PathBuf::from("nestbox-data/emulator/venv"),
            python: PathBuf::from("/usr/bin/python3"),
            install: true,
            max_api_count: 10_000,
            max_calls_per_process: 10_000,
            max_dropped: 100,
            max_file_size: 64 << 20,
            address_space: 4 << 30,
            uid_base: 210_000,
            scratch_dir: None,
        }
    }
}

/// What the host allows, found by [`probe`].
#[derive(Debug, Clone)]
pub struct Probe {
    /// Why the machinery cannot run here, if it cannot.
    pub failure: Option<String>,
    /// Whether the pinned speakeasy is already installed.
    pub installed: bool,
}

impl Probe {
    /// Whether detonations can run here (the venv may still have to be installed).
    pub fn usable(&self) -> bool {
        self.failure.is_none()
    }
}

/// Checks the tools the sandbox needs and whether the venv is there (without installing).
pub fn probe(settings: &EmulatorSettings) -> Probe {
    let has = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut missing = Vec::new();
    for (tool, arg, hint) in [
        ("bwrap", "--version", "bwrap (apt-get install bubblewrap)"),
        ("setpriv", "--version", "setpriv (util-linux)"),
        ("prlimit", "--version", "prlimit (util-linux)"),
    ] {
        if !has(tool, arg) {
            missing.push(hint);
        }
    }
    let installed = venv::is_ready(&settings.venv);
    if !installed && !settings.python.exists() {
        missing.push("python3 (apt-get install python3-venv)");
    }
    let failure = if missing.is_empty() {
        (!installed && !settings.install).then(|| {
            format!(
                "speakeasy is not installed in {} and emulator.install is off",
                settings.venv.display()
            )
        })
    } else {
        Some(format!("missing tools: {}", missing.join(", ")))
    };
    Probe { failure, installed }
}

/// The `emulator` machinery.
pub struct EmulatorMachinery {
    settings: Arc<EmulatorSettings>,
    install: tokio::sync::Mutex<()>,
}

impl EmulatorMachinery {
    /// A machinery after a successful probe; the probe's error otherwise.
    pub fn new(settings: EmulatorSettings) -> Result<(EmulatorMachinery, Probe), Probe> {
        let p = probe(&settings);
        if !p.usable() {
            return Err(p);
        }
        Ok((
            EmulatorMachinery {
                settings: Arc::new(settings),
                install: tokio::sync::Mutex::new(()),
            },
            p,
        ))
    }

    /// Installs the pinned speakeasy if it is not there yet (once, whoever asks first).
    pub async fn ensure_installed(&self) -> Result<(), String> {
        let _one_at_a_time = self.install.lock().await;
        if venv::is_ready(&self.settings.venv) {
            return Ok(());
        }
        if !self.settings.install {
            return Err(format!(
                "speakeasy is not installed in {}",
                self.settings.venv.display()
            ));
        }
        let s = self.settings.clone();
        tokio::task::spawn_blocking(move || venv::install(&s.python, &s.venv))
            .await
            .map_err(|e| format!("the speakeasy install crashed: {e}"))?
    }
}

#[async_trait]
impl Machinery for EmulatorMachinery {
    fn name(&self) -> &str {
        "emulator"
    }

    async fn detonate(&self, job: DetonationJob<'_>) -> nestbox_core::Result<Detonation> {
        let mut det = Detonation::default();
        // Nothing to emulate (not a PE or shellcode): no install, no sandbox.
        let target = match launch::target_of(&job) {
            Ok(t) => t,
            Err(note) => {
                det.log.push(note);
                return Ok(det);
            }
        };
        if let Err(e) = self.ensure_installed().await {
            det.errors.push(format!("emulator: {e}"));
            return Ok(det);
        }
        Ok(launch::detonate(&self.settings, job, target, det).await)
    }
}
