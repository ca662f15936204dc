//! The `ns` machinery: detonation in a Linux namespace sandbox, no VM needed.
//!
//! Per task a fresh sandbox is built with bubblewrap (Debian's `bwrap`): new user, pid,
//! mount, uts, ipc and cgroup namespaces, plus the task's network namespace; a read-only view of the host's `/usr`
//! (with the merged-usr `/bin`, `/lib*`, `/sbin` links) and of a short list of `/etc` files
//! programs need to run (dynamic loader cache, TLS roots, locale, interpreters' config);
//! fake `/etc/{passwd,group,shadow,hostname,hosts,resolv.conf}` describing a plausible
//! desktop; writable `/home/<user>`, `/tmp` and `/var/tmp` backed by a per-run scratch
//! directory (so files the sample drops can be collected afterwards); `no_new_privs`
//! (always set by bwrap) plus a seccomp deny-list ([`seccomp`]); rlimits (CPU time,
//! address space, process count for a per-slot host uid, file size, no core dumps) and,
//! where the host allows, a cgroup with memory and pid limits ([`cgroup`]).
//!
//! The sample runs as a per-slot unprivileged host uid (`uid_base + slot`), which is
//! uid 1000 inside its user namespace. Behaviour is captured from *outside* the sandbox, so
//! the sample cannot see or attack the tracer (`ptrace` is refused inside): by default by
//! kernel programs on the syscall tracepoints ([`tracer::ebpf`]: the sample never stops),
//! else by the native ptrace tracer ([`tracer`]: seccomp `RET_TRACE` for the recorded calls
//! only), and turned into Cuckoo's `behavior` ([`behavior`]); `strace --seccomp-bpf -f -ff`
//! is the last fallback (`[sandbox] tracer = "strace"`, or automatically when the native
//! tracer fails the probe).
//!
//! Network ([`net`]): the sandbox joins its slot's network namespace (made once per slot
//! and reused, see [`net::SlotNet`]) whose only link is a veth to the slot's sink namespace
//! with no route anywhere else; per task the sink answers DNS (every name → the sink),
//! HTTP (logged, harmless page), TLS (SNI/JA3) and any other TCP port, and UDP on any port
//! (DNS at any resolver, NTP; [`udp`]), for any address, and everything is captured with `AF_PACKET` into the task's `dump.pcap` and
//! summarised into `network` (hosts, domains, dns, http, tcp, udp, icmp).
//!
//! What this crate is not: it has no HTTP or SQL and does not store artifacts; it returns
//! a [`Detonation`] and the worker stores it.
//!
//! Key decisions and trade-offs: isolation is bubblewrap as a subprocess (a small,
//! audited Debian package, ~5 ms) rather than `clone(2)` from Rust; tracing is in-process
//! ([`tracer`]) because strace's per-stop cost (formatting, a write per line, files to
//! parse back) made open-heavy samples an order of magnitude slower, and by eBPF where the
//! kernel allows because even one ptrace stop per call cost 4–5× on this VM; the events
//! stay strace-shaped so every tracer is a drop-in for the others. The sandbox must never be
//! weaker than bwrap's, so the probe refuses the machinery when any piece is missing
//! rather than running with less isolation.
#![deny(missing_docs)]

pub mod behavior;
pub mod cgroup;
pub mod display;
pub mod launch;
pub mod net;
pub mod package;
pub mod seccomp;
pub mod signatures;
pub mod strace;
pub mod tls;
pub mod tracer;
mod udp;
pub mod unpack;

mod cleanup;
pub mod dropped;
mod run;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use nestbox_core::machinery::{Detonation, DetonationJob, Machinery};

pub use cgroup::CgroupKind;
pub use tracer::TracerKind;

/// Limits and look of the sandbox (the `[sandbox]` config section, resolved).
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Calls kept per process in `behavior.processes[].calls` (the rest is counted).
    pub max_calls_per_process: usize,
    /// cgroup memory limit in bytes.
    pub memory_limit: u64,
    /// Most processes/threads (cgroup `pids.max` and `RLIMIT_NPROC`).
    pub max_pids: u64,
    /// `RLIMIT_AS` per process, in bytes.
    pub address_space: u64,
    /// `RLIMIT_FSIZE`: largest file the sample can write, in bytes.
    pub max_file_size: u64,
    /// Most dropped files collected.
    pub max_dropped: usize,
    /// First host uid of the slots: slot N runs as `uid_base + N`.
    pub uid_base: u32,
    /// Host name inside the sandbox.
    pub hostname: String,
    /// User name inside the sandbox (uid 1000, home `/home/<user>`).
    pub user: String,
    /// Where per-run scratch directories are made (must be traversable by the slot uids);
    /// `None` = the system temporary directory.
    pub scratch_dir: Option<PathBuf>,
    /// Which tracer records behaviour ([`tracer`]); strace is the fallback.
    pub tracer: TracerKind,
    /// The native tracer and the traced sample share one CPU ([`tracer::Limits::one_cpu`]).
    pub trace_on_one_cpu: bool,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            max_calls_per_process: 10_000,
            memory_limit: 512 << 20,
            max_pids: 128,
            address_space: 4 << 30,
            max_file_size: 64 << 20,
            max_dropped: 100,
            uid_base: 200_000,
            hostname: "desktop-7f3k2q".to_owned(),
            user: "john".to_owned(),
            scratch_dir: None,
            tracer: TracerKind::Ebpf,
            trace_on_one_cpu: true,
        }
    }
}

/// What the host allows, found by [`probe`].
#[derive(Debug, Clone)]
pub struct Probe {
    /// `bwrap --version`, if bubblewrap is installed.
    pub bwrap: Option<String>,
    /// `strace -V` first line, if strace is installed.
    pub strace: Option<String>,
    /// The tracer detonations use (the configured one, or strace when the native tracer
    /// failed the test detonation and strace passed it).
    pub tracer: TracerKind,
    /// The cgroup hierarchy usable for limits.
    pub cgroup: CgroupKind,
    /// Why a real test detonation of `/bin/true` failed, if it did.
    pub failure: Option<String>,
    /// Set-up + run + teardown time of the test detonation, in milliseconds.
    pub probe_ms: f64,
}

impl Probe {
    /// Whether detonations can run here.
    pub fn usable(&self) -> bool {
        self.failure.is_none()
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        format!(
            "bwrap: {}; strace: {}; tracer: {}; cgroup limits: {:?}; test detonation: {} ({:.0} ms)",
            self.bwrap.as_deref().unwrap_or("missing"),
            self.strace.as_deref().unwrap_or("missing"),
            self.tracer.name(),
            self.cgroup,
            self.failure.as_deref().unwrap_or("ok"),
            self.probe_ms,
        )
    }
}

/// Checks what the host allows by running `/bin/true` through the whole chain (user
/// namespaces, seccomp, ptrace, rlimits, cgroups).
pub fn probe(settings: &SandboxSettings) -> Probe {
    let version = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
    };
    let bwrap = version("bwrap", "--version");
    let strace = version("strace", "-V");
    let cgroup = cgroup::detect();
    let mut p = Probe {
        bwrap,
        strace,
        tracer: settings.tracer,
        cgroup,
        failure: None,
        probe_ms: 0.0,
    };
    let missing: Vec<&str> = [
        ("bwrap (apt-get install bubblewrap)", p.bwrap.is_none()),
        (
            "strace (apt-get install strace)",
            p.strace.is_none() && settings.tracer == TracerKind::Strace,
        ),
        (
            "setpriv (util-linux)",
            version("setpriv", "--version").is_none(),
        ),
        (
            "prlimit (util-linux)",
            version("prlimit", "--version").is_none(),
        ),
    ]
    .into_iter()
    .filter_map(|(n, m)| m.then_some(n))
    .collect();
    if !missing.is_empty() {
        p.failure = Some(format!("missing tools: {}", missing.join(", ")));
        return p;
    }
    if !nix::unistd::geteuid().is_root() {
        p.failure =
            Some("the ns machinery needs root (per-slot uids, tracer outside the sandbox)".into());
        return p;
    }
    let t0 = std::time::Instant::now();
    let native = SandboxSettings {
        tracer: TracerKind::Native,
        ..settings.clone()
    };
    let settings = if settings.tracer == TracerKind::Ebpf {
        // The eBPF tracer falls back to the native one where the kernel or the server's
        // place (a nested pid namespace) does not allow it, or its test run fails.
        let failed = tracer::ebpf::available()
            .err()
            .or_else(|| run::probe_run(settings, cgroup).err());
        match failed {
            Some(e) => {
                tracing::warn!(
                    "ns: the eBPF tracer is not usable here ({e}); using the native one"
                );
                p.tracer = TracerKind::Native;
                &native
            }
            None => {
                p.probe_ms = t0.elapsed().as_secs_f64() * 1000.0;
                return p;
            }
        }
    } else {
        settings
    };
    match run::probe_run(settings, cgroup) {
        Ok(()) => {}
        Err(e) if settings.tracer == TracerKind::Native && p.strace.is_some() => {
            let strace = SandboxSettings {
                tracer: TracerKind::Strace,
                ..settings.clone()
            };
            match run::probe_run(&strace, cgroup) {
                Ok(()) => {
                    tracing::warn!(
                        "ns: the native tracer failed the test detonation ({e}); using strace"
                    );
                    p.tracer = TracerKind::Strace;
                }
                Err(e2) => p.failure = Some(format!("{e} (with strace: {e2})")),
            }
        }
        Err(e) => p.failure = Some(e),
    }
    p.probe_ms = t0.elapsed().as_secs_f64() * 1000.0;
    p
}

/// The `ns` machinery.
pub struct NsMachinery {
    settings: Arc<SandboxSettings>,
    cgroup: CgroupKind,
    /// Each slot's network namespaces (and display), kept between its tasks.
    nets: Arc<net::SlotNets>,
}

impl NsMachinery {
    /// A machinery after a successful probe; the probe's error otherwise.
    pub fn new(settings: SandboxSettings) -> Result<(NsMachinery, Probe), Probe> {
        // What a server killed mid-detonation left behind (it carries the dead pid).
        let tmp = std::env::temp_dir();
        let mut dirs = vec![tmp.as_path()];
        if let Some(d) = &settings.scratch_dir {
            dirs.push(d.as_path());
        }
        for r in cleanup::stale(&dirs) {
            tracing::info!("ns: removed stale {r}");
        }
        let p = probe(&settings);
        if !p.usable() {
            return Err(p);
        }
        Ok((
            NsMachinery {
                settings: Arc::new(SandboxSettings {
                    tracer: p.tracer,
                    ..settings
                }),
                cgroup: p.cgroup,
                nets: Arc::new(net::SlotNets::default()),
            },
            p,
        ))
    }
}

impl NsMachinery {
    /// Sets up the network namespaces of the slots behind `machines` (`ns1`, …) now, at
    /// start-up, instead of on each slot's first task. Returns what failed (the slot then
    /// tries again on its first task).
    pub fn warm(&self, machines: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for m in machines {
            let slot = run::slot_of(m);
            match self.nets.take(slot) {
                Ok(n) => self.nets.put(slot, n),
                Err(e) => failed.push(format!("{m}: {e}")),
            }
        }
        failed
    }
}

#[async_trait]
impl Machinery for NsMachinery {
    fn name(&self) -> &str {
        "ns"
    }

    async fn detonate(&self, job: DetonationJob<'_>) -> nestbox_core::Result<Detonation> {
        Ok(run::detonate(&self.settings, self.cgroup, &self.nets, job).await)
    }
}

#[cfg(test)]
mod tests {
    /// The CI hosts must be able to detonate: a missing capability fails loudly here.
    #[test]
    fn probe_passes_on_this_host() {
        let p = super::probe(&super::SandboxSettings::default());
        eprintln!("{}", p.describe());
        assert!(p.usable(), "{}", p.describe());
    }
}
