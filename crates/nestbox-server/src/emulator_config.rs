//! `[emulator]`: the `emulator` machinery (Windows PEs and shellcode under speakeasy,
//! issue 7).
//!
//! When enabled and the host has the sandbox tools, slots `emulator1..emulator<slots>`
//! (platform `windows`) are registered next to the `ns` slots, and the scheduler sends
//! PE and shellcode targets there. Speakeasy itself is installed into `venv` on first use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nestbox_core::machinery::Machinery;
use nestbox_emulator::{EmulatorMachinery, EmulatorSettings};
use nestbox_types::MachineSpec;
use serde::{Deserialize, Serialize};

/// `[emulator]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmulatorConfig {
    /// Register the emulator slots. Default true.
    pub enabled: bool,
    /// Emulator slots, registered as `emulator1..emulatorN` when `[[machines]]` is empty.
    /// Default 1.
    pub slots: usize,
    /// The speakeasy virtual environment. Default unset = `<data_dir>/emulator/venv`.
    pub venv: Option<PathBuf>,
    /// Python used to create the venv. Default `/usr/bin/python3`.
    pub python: PathBuf,
    /// Install the pinned speakeasy from PyPI into `venv` on first use. Default true.
    pub install: bool,
    /// Most API calls emulated per entry point. Default 10000.
    pub max_api_count: u64,
    /// Calls kept in `behavior.processes[].calls`. Default 10000.
    pub max_calls_per_process: usize,
    /// Dropped files kept per analysis. Default 100.
    pub max_dropped: usize,
    /// Largest dropped file kept, MiB. Default 64.
    pub max_file_size_mb: u64,
    /// Address-space limit of the emulator process (`RLIMIT_AS`), MiB. Default 4096.
    pub address_space_mb: u64,
    /// As root, slot N runs as host uid `uid_base + N`. Default 210000.
    pub uid_base: u32,
    /// Directory for per-run scratch trees. Default unset = the system temporary directory.
    pub scratch_dir: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        let s = EmulatorSettings::default();
        EmulatorConfig {
            enabled: true,
            slots: 1,
            venv: None,
            python: s.python,
            install: s.install,
            max_api_count: s.max_api_count,
            max_calls_per_process: s.max_calls_per_process,
            max_dropped: s.max_dropped,
            max_file_size_mb: s.max_file_size >> 20,
            address_space_mb: s.address_space >> 20,
            uid_base: s.uid_base,
            scratch_dir: None,
        }
    }
}

impl EmulatorConfig {
    /// Adds this section's problems to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.slots == 0 || self.slots > 64 {
            problems.push("emulator.slots must be between 1 and 64".to_owned());
        }
        if self.max_api_count == 0 {
            problems.push("emulator.max_api_count must be at least 1".to_owned());
        }
        if self.address_space_mb < 512 {
            problems.push("emulator.address_space_mb must be at least 512".to_owned());
        }
        if self.uid_base < 1000 || self.uid_base.checked_add(10_000).is_none() {
            problems.push("emulator.uid_base must be at least 1000".to_owned());
        }
    }

    fn settings(&self, data_dir: &Path) -> EmulatorSettings {
        EmulatorSettings {
            venv: self
                .venv
                .clone()
                .unwrap_or_else(|| data_dir.join("emulator").join("venv")),
            python: self.python.clone(),
            install: self.install,
            max_api_count: self.max_api_count,
            max_calls_per_process: self.max_calls_per_process,
            max_dropped: self.max_dropped,
            max_file_size: self.max_file_size_mb << 20,
            address_space: self.address_space_mb << 20,
            uid_base: self.uid_base,
            scratch_dir: self.scratch_dir.clone(),
        }
    }

    /// The machinery, after its probe; `None` when disabled or unusable (logged).
    pub fn machinery(&self, data_dir: &Path) -> Option<Arc<dyn Machinery>> {
        if !self.enabled {
            return None;
        }
        match EmulatorMachinery::new(self.settings(data_dir)) {
            Ok((m, probe)) => {
                tracing::info!(
                    slots = self.slots,
                    installed = probe.installed,
                    "emulator ready (speakeasy {})",
                    nestbox_emulator::venv::SPEAKEASY_VERSION
                );
                Some(Arc::new(m))
            }
            Err(probe) => {
                tracing::warn!(
                    reason = probe.failure.as_deref().unwrap_or(""),
                    "the emulator machinery cannot run on this host: Windows samples are not detonated"
                );
                None
            }
        }
    }

    /// Machines `emulator1..emulator<slots>`, platform `windows`.
    pub fn machine_specs(&self, template: &MachineSpec) -> Vec<MachineSpec> {
        (1..=self.slots)
            .map(|n| {
                let name = format!("emulator{n}");
                MachineSpec {
                    label: name.clone(),
                    name,
                    platform: "windows".to_owned(),
                    tags: vec!["emulator".to_owned(), "x64".to_owned(), "x86".to_owned()],
                    ..template.clone()
                }
            })
            .collect()
    }
}
