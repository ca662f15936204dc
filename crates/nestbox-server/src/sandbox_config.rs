//! `[sandbox]`: the `ns` machinery (Linux namespace sandbox, issue 10).
//!
//! At start-up a probe runs `/bin/true` through the whole sandbox (user namespaces,
//! seccomp, ptrace, rlimits, cgroups). When it passes, tasks are detonated in slots
//! `ns1..ns<slots>` (platform `linux`); when it fails, or `machinery = "none"`, analyses
//! are static only and the reason is logged.

use std::path::PathBuf;
use std::sync::Arc;

use nestbox_core::machinery::Machinery;
use nestbox_sandbox::{NsMachinery, SandboxSettings, TracerKind};
use nestbox_types::MachineSpec;
use serde::{Deserialize, Serialize};

/// `[sandbox]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// `ns` (default): detonate in the namespace sandbox when the host allows it;
    /// `none`: static analysis only.
    pub machinery: String,
    /// Sandbox slots, registered as machines `ns1..nsN` when `[[machines]]` is empty.
    /// Default 2.
    pub slots: usize,
    /// Calls kept per process in `behavior.processes[].calls`; the rest are counted and the
    /// cut is recorded in `behavior.anomaly`. Default 10000.
    pub max_calls_per_process: usize,
    /// Memory limit per sandbox (cgroup), MiB. Default 512.
    pub memory_mb: u64,
    /// Most processes/threads per sandbox (cgroup `pids.max` and `RLIMIT_NPROC`). Default 128.
    pub max_pids: u64,
    /// Address-space limit per process (`RLIMIT_AS`), MiB. Default 4096.
    pub address_space_mb: u64,
    /// Largest file a sample can write (`RLIMIT_FSIZE`), MiB; also the most kept of one
    /// dropped file. Default 64.
    pub max_file_size_mb: u64,
    /// Most dropped files kept per analysis. Default 100.
    pub max_dropped: usize,
    /// Slot N runs as host uid `uid_base + N` (uid 1000 inside). Default 200000.
    pub uid_base: u32,
    /// Host name inside the sandbox. Default `desktop-7f3k2q`.
    pub hostname: String,
    /// User name inside the sandbox. Default `john`.
    pub user: String,
    /// Directory for per-run scratch trees (must be traversable by the slot uids).
    /// Default unset = the system temporary directory.
    pub scratch_dir: Option<PathBuf>,
    /// `ebpf` (default): kernel programs on the syscall tracepoints record the calls, no
    /// stops (falls back to `native` where the kernel or the server's place does not allow
    /// it); `native`: the built-in ptrace tracer; `strace`: `strace --seccomp-bpf` (also
    /// used automatically when the native tracer fails the start-up probe).
    pub tracer: String,
    /// The native tracer and the sample it traces run on one CPU (round-robin per
    /// detonation): ptrace stops across CPUs cost an inter-processor wake-up each, several
    /// times the stop itself on a VM. The sample then sees one CPU in its affinity mask.
    /// Default true.
    pub trace_on_one_cpu: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let s = SandboxSettings::default();
        SandboxConfig {
            machinery: "ns".to_owned(),
            slots: 2,
            max_calls_per_process: s.max_calls_per_process,
            memory_mb: s.memory_limit >> 20,
            max_pids: s.max_pids,
            address_space_mb: s.address_space >> 20,
            max_file_size_mb: s.max_file_size >> 20,
            max_dropped: s.max_dropped,
            uid_base: s.uid_base,
            hostname: s.hostname,
            user: s.user,
            scratch_dir: None,
            tracer: s.tracer.name().to_owned(),
            trace_on_one_cpu: s.trace_on_one_cpu,
        }
    }
}

impl SandboxConfig {
    /// Adds this section's problems to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if !matches!(self.machinery.as_str(), "ns" | "none") {
            problems.push(format!(
                "sandbox.machinery {:?}: use \"ns\" or \"none\"",
                self.machinery
            ));
        }
        if self.slots == 0 || self.slots > 256 {
            problems.push("sandbox.slots must be between 1 and 256".to_owned());
        }
        if self.max_pids < 8 {
            problems.push("sandbox.max_pids must be at least 8".to_owned());
        }
        if self.memory_mb < 32 || self.address_space_mb < 64 {
            problems.push("sandbox.memory_mb must be ≥ 32 and address_space_mb ≥ 64".to_owned());
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !name_ok(&self.hostname) || !name_ok(&self.user) {
            problems.push(
                "sandbox.hostname and sandbox.user must be 1-32 letters, digits or '-'".to_owned(),
            );
        }
        if TracerKind::parse(&self.tracer).is_none() {
            problems.push(format!(
                "sandbox.tracer {:?}: use \"native\", \"ebpf\" or \"strace\"",
                self.tracer
            ));
        }
        if self.uid_base < 1000 || self.uid_base.checked_add(10_000).is_none() {
            problems.push("sandbox.uid_base must be at least 1000".to_owned());
        }
    }

    fn settings(&self) -> SandboxSettings {
        SandboxSettings {
            max_calls_per_process: self.max_calls_per_process,
            memory_limit: self.memory_mb << 20,
            max_pids: self.max_pids,
            address_space: self.address_space_mb << 20,
            max_file_size: self.max_file_size_mb << 20,
            max_dropped: self.max_dropped,
            uid_base: self.uid_base,
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            scratch_dir: self.scratch_dir.clone(),
            tracer: TracerKind::parse(&self.tracer).unwrap_or_default(),
            trace_on_one_cpu: self.trace_on_one_cpu,
        }
    }

    /// The machinery to detonate with, after the start-up probe; `None` = static only
    /// (the reason is logged).
    pub fn machinery(&self) -> Option<Arc<dyn Machinery>> {
        if self.machinery == "none" {
            tracing::info!("sandbox.machinery = none: analyses are static only");
            return None;
        }
        match NsMachinery::new(self.settings()) {
            Ok((m, probe)) => {
                let names: Vec<String> = (1..=self.slots).map(|n| format!("ns{n}")).collect();
                for e in m.warm(&names) {
                    tracing::warn!(error = %e, "a slot network could not be set up at start-up");
                }
                tracing::info!(probe = %probe.describe(), slots = self.slots, "ns sandbox ready");
                Some(Arc::new(m))
            }
            Err(probe) => {
                tracing::warn!(
                    probe = %probe.describe(),
                    "the ns sandbox cannot run on this host: analyses are static only"
                );
                None
            }
        }
    }

    /// Machines `ns1..ns<slots>`, platform `linux`.
    pub fn machine_specs(&self, template: &MachineSpec) -> Vec<MachineSpec> {
        (1..=self.slots)
            .map(|n| {
                let name = format!("ns{n}");
                MachineSpec {
                    label: name.clone(),
                    name,
                    platform: "linux".to_owned(),
                    tags: vec!["ns".to_owned(), "x64".to_owned()],
                    ..template.clone()
                }
            })
            .collect()
    }
}
