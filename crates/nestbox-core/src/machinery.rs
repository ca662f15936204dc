//! The machinery port: how a sample is detonated.
//!
//! A machinery runs one task on one machine (a VM, a namespace sandbox slot, an emulator)
//! and hands back what happened, already processed into report sections, plus the artifact
//! files to keep (pcap, screenshots, dropped files). It knows nothing of HTTP, SQL or the
//! blob store: the worker stores artifacts and merges sections into the report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use nestbox_types::report::{Behavior, FileInfo, Network, SignatureHit};
use nestbox_types::{Machine, Task};

/// One detonation request.
pub struct DetonationJob<'a> {
    /// The task (category, package, options, timeout, enforce_timeout, route, …).
    pub task: &'a Task,
    /// The locked machine (slot) to run on.
    pub machine: &'a Machine,
    /// The sample as a local file, for file/archive tasks.
    pub sample: Option<&'a Path>,
    /// The name the sample had on the client (packages key on the extension).
    pub file_name: &'a str,
    /// A private scratch directory for this run; removed by the worker afterwards.
    pub workdir: &'a Path,
    /// How long the sample may run (the task's timeout or the default).
    pub timeout: Duration,
}

/// A file the sample dropped, with its static identity.
#[derive(Debug, Clone)]
pub struct DroppedFile {
    /// Identity and findings (`filepath` = the path inside the sandbox, `pids` = writers).
    pub info: FileInfo,
    /// Where the content is now (inside `workdir`).
    pub local: PathBuf,
}

/// What a detonation produced.
#[derive(Debug, Default)]
pub struct Detonation {
    /// Processes, calls, summary.
    pub behavior: Behavior,
    /// Network activity parsed from the capture.
    pub network: Network,
    /// Dropped files.
    pub dropped: Vec<DroppedFile>,
    /// Screenshots in order (PNG or JPEG files inside `workdir`).
    pub screenshots: Vec<PathBuf>,
    /// The packet capture, if one was taken.
    pub pcap: Option<PathBuf>,
    /// Log lines for `debug.log`.
    pub log: Vec<String>,
    /// Problems that did not stop the run (recorded in `debug.errors` and task errors).
    pub errors: Vec<String>,
    /// `procmemory` entries (memory regions and strings found in process memory).
    pub procmemory: Vec<serde_json::Value>,
    /// Behavioural signature hits the machinery evaluated over what it saw (added to the
    /// report's `signatures` before scoring).
    pub signatures: Vec<SignatureHit>,
    /// Set when the *machine* failed rather than the sample (the VM did not start, its
    /// agent never answered): the worker takes it out of rotation for a while instead of
    /// handing it the next task (Cuckoo/CAPE operators expect a broken VM to be skipped).
    pub machine_fault: Option<String>,
}

/// A way to run samples.
#[async_trait]
pub trait Machinery: Send + Sync {
    /// The machinery name (`ns`, `emulator`, `qemu`), reported as the guest's manager.
    fn name(&self) -> &str;

    /// Runs one detonation. An `Err` means the machinery itself failed (the task is then
    /// `failed_analysis`); anything the *sample* did wrong is data in the `Detonation`.
    async fn detonate(&self, job: DetonationJob<'_>) -> crate::Result<Detonation>;
}
