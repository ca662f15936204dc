//! `[qemu]`: the `qemu` machinery (QEMU guests driven through the Cuckoo/CAPE agent).
//!
//! Each `[[qemu.machines]]` entry is a guest image with the agent installed; it is
//! registered as a machine (tag `qemu` plus its own tags) and every task it runs starts
//! from a fresh overlay over the image (see docs/qemu-guests.md for making images).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nestbox_core::machinery::Machinery;
use nestbox_qemu::vm::GuestConfig;
use nestbox_qemu::{QemuMachinery, QemuSettings};
use nestbox_types::MachineSpec;
use serde::{Deserialize, Serialize};

/// `[qemu]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QemuConfig {
    /// The QEMU binary. Default `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// Directory holding Cuckoo's/CAPE's `analyzer/<platform>/` trees sent to guests.
    /// Default unset (guests get an empty analyzer).
    pub analyzer_dir: Option<PathBuf>,
    /// Result server address as the guest sees it. Default `10.0.2.100`: an address in slirp's
    /// network that QEMU itself answers (slirp refuses a forward on its host alias 10.0.2.2).
    pub resultserver_ip: String,
    /// Result server port. Default 2042.
    pub resultserver_port: i64,
    /// Seconds between screenshots. Default 5.
    pub screenshot_every: u64,
    /// The guests. Default none.
    pub machines: Vec<QemuMachineConfig>,
}

/// One `[[qemu.machines]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuMachineConfig {
    /// Machine name.
    pub name: String,
    /// `windows` or `linux`.
    #[serde(default = "windows")]
    pub platform: String,
    /// Base qcow2 image (never written).
    pub image: PathBuf,
    /// Saved migration state of the booted guest (fast, warm starts).
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Direct kernel boot (Linux guests).
    #[serde(default)]
    pub kernel: Option<PathBuf>,
    /// Initrd for `kernel`.
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[serde(default)]
    pub append: Option<String>,
    /// Memory, MiB. Default 2048.
    #[serde(default = "memory")]
    pub memory_mb: u64,
    /// vCPUs. Default 2.
    #[serde(default = "cpus")]
    pub cpus: u32,
    /// `auto` (probe boot), `kvm` or `tcg`. Default `auto`.
    #[serde(default = "auto")]
    pub accel: String,
    /// Agent port in the guest. Default 8000.
    #[serde(default = "agent_port")]
    pub agent_port: u16,
    /// Guest IP. Default `10.0.2.15` (slirp).
    #[serde(default = "guest_ip")]
    pub ip: String,
    /// Extra machine tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// slirp `guestfwd` rules.
    #[serde(default)]
    pub guestfwd: Vec<String>,
}

fn windows() -> String {
    "windows".into()
}
fn memory() -> u64 {
    2048
}
fn cpus() -> u32 {
    2
}
fn auto() -> String {
    "auto".into()
}
fn agent_port() -> u16 {
    8000
}
fn guest_ip() -> String {
    "10.0.2.15".into()
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            qemu: PathBuf::from("qemu-system-x86_64"),
            analyzer_dir: None,
            resultserver_ip: "10.0.2.100".into(),
            resultserver_port: 2042,
            screenshot_every: 5,
            machines: Vec::new(),
        }
    }
}

impl QemuConfig {
    /// Adds this section's problems to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for m in &self.machines {
            if !matches!(m.accel.as_str(), "auto" | "kvm" | "tcg") {
                problems.push(format!(
                    "qemu machine {}: accel must be auto, kvm or tcg",
                    m.name
                ));
            }
            if m.memory_mb < 64 || m.cpus == 0 {
                problems.push(format!(
                    "qemu machine {}: memory_mb ≥ 64 and cpus ≥ 1",
                    m.name
                ));
            }
            if m.name.trim().is_empty() {
                problems.push("a qemu machine has an empty name".to_owned());
            }
        }
        if self.screenshot_every == 0 {
            problems.push("qemu.screenshot_every must be at least 1 second".to_owned());
        }
    }

    /// The machinery, when guests are configured.
    pub fn machinery(&self, critical: Duration) -> Option<Arc<dyn Machinery>> {
        if self.machines.is_empty() {
            return None;
        }
        let guests = self
            .machines
            .iter()
            .map(|m| GuestConfig {
                name: m.name.clone(),
                platform: m.platform.clone(),
                image: m.image.clone(),
                state: m.state.clone(),
                kernel: m.kernel.clone(),
                initrd: m.initrd.clone(),
                append: m.append.clone(),
                memory_mb: m.memory_mb,
                cpus: m.cpus,
                accel: m.accel.clone(),
                agent_port: m.agent_port,
                ip: m.ip.clone(),
                guestfwd: m.guestfwd.clone(),
                qemu: self.qemu.clone(),
            })
            .collect();
        tracing::info!(guests = self.machines.len(), "qemu machinery ready");
        Some(Arc::new(QemuMachinery::new(QemuSettings {
            guests,
            analyzer_dir: self.analyzer_dir.clone(),
            resultserver_ip: self.resultserver_ip.clone(),
            resultserver_port: self.resultserver_port,
            critical,
            screenshot_every: Duration::from_secs(self.screenshot_every),
        })))
    }

    /// The guests as machines (tag `qemu`).
    pub fn machine_specs(&self, template: &MachineSpec) -> Vec<MachineSpec> {
        self.machines
            .iter()
            .map(|m| {
                let mut tags = vec!["qemu".to_owned()];
                tags.extend(m.tags.iter().cloned());
                MachineSpec {
                    name: m.name.clone(),
                    label: m.name.clone(),
                    platform: m.platform.clone(),
                    ip: m.ip.clone(),
                    tags,
                    snapshot: m.state.as_ref().map(|s| s.to_string_lossy().into_owned()),
                    ..template.clone()
                }
            })
            .collect()
    }
}
