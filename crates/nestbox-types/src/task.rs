//! Records of the task queue: tasks, samples, machines and guests.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A task id. Integers shared by every API dialect, because Cuckoo and CAPE clients need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The lifecycle of a task, with Cuckoo's and CAPE's exact string forms.
///
/// `pending → running → completed → reported` is the happy path; the `failed_*` states and
/// `recovered` are set as in Cuckoo 2.0.7 (see `shared/specs/cuckoo.md` §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting in the queue.
    Pending,
    /// Claimed by a worker, a machine is locked for it.
    Running,
    /// Detonation done, processing not yet finished.
    Completed,
    /// Report written: the terminal success state.
    Reported,
    /// Rescheduled: a new task replaces this one.
    Recovered,
    /// The analysis could not run (no machine, crash while running).
    FailedAnalysis,
    /// Processing raised.
    FailedProcessing,
    /// Reporting raised.
    FailedReporting,
    /// CAPE: the user was banned.
    Banned,
    /// CAPE distributed mode: sent to a worker node.
    Distributed,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 10] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Reported,
        TaskStatus::Recovered,
        TaskStatus::FailedAnalysis,
        TaskStatus::FailedProcessing,
        TaskStatus::FailedReporting,
        TaskStatus::Banned,
        TaskStatus::Distributed,
    ];

    /// The upstream string form (`"failed_analysis"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Reported => "reported",
            TaskStatus::Recovered => "recovered",
            TaskStatus::FailedAnalysis => "failed_analysis",
            TaskStatus::FailedProcessing => "failed_processing",
            TaskStatus::FailedReporting => "failed_reporting",
            TaskStatus::Banned => "banned",
            TaskStatus::Distributed => "distributed",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string is not a known status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown task status {:?}", self.0)
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for TaskStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What kind of target a task analyses (Cuckoo's `category` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A file sample.
    File,
    /// A URL to visit.
    Url,
    /// A member inside an archive sample (`options.filename` names it).
    Archive,
    /// A baseline run without a sample.
    Baseline,
    /// A service task.
    Service,
    /// CAPE: static analysis only, no detonation.
    Static,
}

impl Category {
    /// The upstream string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::File => "file",
            Category::Url => "url",
            Category::Archive => "archive",
            Category::Baseline => "baseline",
            Category::Service => "service",
            Category::Static => "static",
        }
    }

    /// Parses the upstream string form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Category::File,
            Category::Url,
            Category::Archive,
            Category::Baseline,
            Category::Service,
            Category::Static,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// Whether the task's target is a stored sample.
    pub fn has_sample(self) -> bool {
        matches!(self, Category::File | Category::Archive | Category::Static)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Task options: Cuckoo stores them as one `k=v,k2=v2` string and hands them back as a map.
///
/// Entries without `=` are dropped when parsed, as upstream does. Keys are kept sorted,
/// which is also how Cuckoo's `emit_options` writes them back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskOptions(pub BTreeMap<String, String>);

impl TaskOptions {
    /// Parses `k=v,k2=v2`. Whitespace around keys and values is trimmed; empty keys dropped.
    pub fn parse(s: &str) -> Self {
        let mut map = BTreeMap::new();
        for part in s.split(',') {
            if let Some((k, v)) = part.split_once('=') {
                let k = k.trim();
                if !k.is_empty() {
                    map.insert(k.to_owned(), v.trim().to_owned());
                }
            }
        }
        TaskOptions(map)
    }

    /// The `k=v,k2=v2` form (sorted by key).
    pub fn emit(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    /// One option's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether an option is set to a true-ish value (`yes`, `1`, `true`, `on`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key).map(str::to_ascii_lowercase).as_deref(),
            Some("yes" | "1" | "true" | "on")
        )
    }
}

/// A sample: immutable file content identified by SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Row id (Cuckoo's `sample_id`).
    pub id: i64,
    /// Size in bytes.
    pub file_size: i64,
    /// libmagic description (`file -b`).
    pub file_type: String,
    /// libmagic MIME type (`file -b --mime-type`).
    pub mime: String,
    /// MD5, lowercase hex.
    pub md5: String,
    /// CRC32, 8 uppercase hex digits (Cuckoo's form).
    pub crc32: String,
    /// SHA-1, lowercase hex.
    pub sha1: String,
    /// SHA-256, lowercase hex: the identity.
    pub sha256: String,
    /// SHA-512, lowercase hex.
    pub sha512: String,
    /// ssdeep fuzzy hash.
    pub ssdeep: Option<String>,
    /// TLSH, or `None` where the reference gives TNULL.
    pub tlsh: Option<String>,
    /// When the content was first stored.
    pub first_seen: Timestamp,
}

/// The identity of new sample content, computed while it streamed into the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSample {
    /// Size in bytes.
    pub file_size: i64,
    /// libmagic description.
    pub file_type: String,
    /// libmagic MIME type.
    pub mime: String,
    /// MD5.
    pub md5: String,
    /// CRC32, uppercase.
    pub crc32: String,
    /// SHA-1.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
    /// SHA-512.
    pub sha512: String,
    /// ssdeep.
    pub ssdeep: Option<String>,
    /// TLSH.
    pub tlsh: Option<String>,
}

/// What a client asked for when creating one task (the columns of Cuckoo's `tasks` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// File path/name or URL, as Cuckoo's `target`.
    pub target: String,
    /// The target kind.
    pub category: Category,
    /// Analysis timeout in seconds; 0 = the configured default.
    pub timeout: i64,
    /// Higher runs first.
    pub priority: i64,
    /// Free text.
    pub custom: String,
    /// Submitting user name.
    pub owner: String,
    /// Requested machine name/label, empty for any.
    pub machine: String,
    /// Analysis package, empty for auto.
    pub package: String,
    /// Parsed options.
    pub options: TaskOptions,
    /// Requested platform, empty for any.
    pub platform: String,
    /// Full memory dump requested.
    pub memory: bool,
    /// Run for the whole timeout even if the sample exits.
    pub enforce_timeout: bool,
    /// Clock to set in the guest; `None` = the insert time.
    pub clock: Option<Timestamp>,
    /// Task tags (machine selection).
    pub tags: Vec<String>,
    /// The sample row for file tasks.
    pub sample_id: Option<i64>,
    /// The submission row, if created through `tasks/create/submit` or a multi-target API.
    pub submit_id: Option<i64>,
    /// The task this one was spawned from (CAPE's `tasks.parent_id`): a reboot of it, or
    /// a file it dropped that was submitted on its own. `None` for client submissions.
    pub parent_id: Option<TaskId>,
    /// The archive this task's sample was unpacked from (CAPE's demux; its report's
    /// `info.parent_sample`). `None` otherwise.
    pub parent_sample_id: Option<i64>,
    /// Network route.
    pub route: Option<String>,
}

impl NewTask {
    /// A task with Cuckoo's defaults for everything but the target.
    pub fn new(category: Category, target: impl Into<String>) -> Self {
        NewTask {
            target: target.into(),
            category,
            timeout: 0,
            priority: 1,
            custom: String::new(),
            owner: String::new(),
            machine: String::new(),
            package: String::new(),
            options: TaskOptions::default(),
            platform: String::new(),
            memory: false,
            enforce_timeout: false,
            clock: None,
            tags: Vec::new(),
            sample_id: None,
            submit_id: None,
            parent_id: None,
            parent_sample_id: None,
            route: None,
        }
    }
}

/// A stored task, with what the API views join onto it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Task id.
    pub id: TaskId,
    /// The columns as submitted.
    #[serde(flatten)]
    pub spec: NewTask,
    /// Clock actually stored (defaults to `added_on`).
    pub clock: Timestamp,
    /// Insert time.
    pub added_on: Timestamp,
    /// When a worker claimed it.
    pub started_on: Option<Timestamp>,
    /// When detonation finished.
    pub completed_on: Option<Timestamp>,
    /// Current status.
    pub status: TaskStatus,
    /// Name of the worker that claimed it.
    pub processing: Option<String>,
    /// The sample, for file tasks.
    pub sample: Option<Sample>,
    /// The guest row, once a machine was started for it.
    pub guest: Option<Guest>,
    /// Error messages recorded for the task, oldest first.
    pub errors: Vec<String>,
}

impl Task {
    /// Cuckoo's `duration`: completed − started in seconds, or −1.
    pub fn duration(&self) -> i64 {
        match (self.started_on, self.completed_on) {
            (Some(s), Some(c)) => (c.secs() - s.secs()).max(0),
            _ => -1,
        }
    }
}

/// A guest: one run of a machine for a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    /// Row id.
    pub id: i64,
    /// `init`, `starting`, `running`, `stopping`, `stopped`, `failed`.
    pub status: String,
    /// Machine name.
    pub name: String,
    /// Machine label.
    pub label: String,
    /// Machinery name (Cuckoo: the machinery class name).
    pub manager: String,
    /// When the guest started.
    pub started_on: Timestamp,
    /// When it stopped.
    pub shutdown_on: Option<Timestamp>,
    /// The task it ran.
    pub task_id: TaskId,
}

/// A machine definition, as configured (Cuckoo's machinery conf entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineSpec {
    /// Unique name.
    pub name: String,
    /// Machinery label (VM name, slot id).
    pub label: String,
    /// `windows`, `linux`, …
    pub platform: String,
    /// Guest IP.
    pub ip: String,
    /// Tags that tasks can require.
    pub tags: Vec<String>,
    /// Machinery options (e.g. `noagent`).
    pub options: Vec<String>,
    /// Snapshot name.
    pub snapshot: Option<String>,
    /// Network interface to capture on.
    pub interface: Option<String>,
    /// Result server IP the guest reports to.
    pub resultserver_ip: String,
    /// Result server port.
    pub resultserver_port: i64,
    /// Architecture (`x64`, `x86`), CAPE's `arch`.
    pub arch: String,
}

/// A machine as stored: its spec plus lock state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Row id.
    pub id: i64,
    /// The configured definition.
    #[serde(flatten)]
    pub spec: MachineSpec,
    /// Whether a task holds it.
    pub locked: bool,
    /// When `locked` last changed.
    pub locked_changed_on: Option<Timestamp>,
    /// Machinery status string (`running`, `poweroff`), if known.
    pub status: Option<String>,
    /// When `status` last changed.
    pub status_changed_on: Option<Timestamp>,
}

/// Filters for listing tasks (Cuckoo `tasks/list` query string and path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// SQL LIMIT.
    pub limit: Option<i64>,
    /// SQL OFFSET (only with a limit).
    pub offset: Option<i64>,
    /// Only tasks completed strictly after this time.
    pub completed_after: Option<Timestamp>,
    /// Exact status.
    pub status: Option<TaskStatus>,
    /// Exact owner.
    pub owner: Option<String>,
    /// Only tasks of this sample.
    pub sample_id: Option<i64>,
    /// Only tasks in one of these statuses (empty = any); combines with `status`.
    pub any_status: Vec<TaskStatus>,
    /// Only tasks of this category.
    pub category: Option<Category>,
    /// Only tasks whose `k=v,…` options string contains this text (CAPE's `option` filter).
    pub options_contain: Option<String>,
    /// CAPE's order, newest completion first (`completed_on DESC NULLS FIRST, id DESC`, as
    /// on CAPE's PostgreSQL); otherwise Cuckoo's `completed_on ASC NULLS FIRST, id ASC`.
    pub newest_first: bool,
}

/// Number of tasks in each status, and in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// All tasks.
    pub total: i64,
    /// Per status string.
    pub by_status: BTreeMap<String, i64>,
}

impl StatusCounts {
    /// The count of one status (0 when absent).
    pub fn get(&self, status: TaskStatus) -> i64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }
}

/// A submission: one client request that created 1..n tasks (Cuckoo's `submit` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSubmission {
    /// `files` or `strings` (Cuckoo), or a dialect-specific kind.
    pub submit_type: String,
    /// Free JSON describing the request.
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip() {
        for st in TaskStatus::ALL {
            assert_eq!(st.as_str().parse::<TaskStatus>().unwrap(), st);
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
        assert!("nope".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn options_parse_like_cuckoo() {
        let o = TaskOptions::parse("foo=bar,,novalue, k = v ,a=b=c");
        assert_eq!(o.get("foo"), Some("bar"));
        assert_eq!(o.get("k"), Some("v"));
        assert_eq!(o.get("a"), Some("b=c"));
        assert_eq!(o.get("novalue"), None);
        assert_eq!(o.emit(), "a=b=c,foo=bar,k=v");
        assert!(TaskOptions::parse("").0.is_empty());
    }
}
