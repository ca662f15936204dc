//! The ports: what the use-cases need from the outside world.
//!
//! Implementations live in other crates (`nestbox-store` for SQL engines, the blob stores
//! in `nestbox-store::blob`), chosen once in the binary's composition root.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use nestbox_types::{
    Guest, Machine, MachineSpec, NewSample, NewSubmission, NewTask, Sample, StatusCounts, Task,
    TaskId, TaskQuery, TaskStatus, Timestamp,
};

use crate::Result;
use nestbox_types::browse::{ReportIndex, TaskPageQuery, TaskSummary};

/// The task store: samples, tasks (which are also the queue), machines, guests, submissions.
///
/// Claim protocol (the queue): [`TaskRepo::claim`] atomically picks the first `pending` task,
/// ordered by `priority DESC, added_on ASC, id ASC`, for which an unlocked machine matches
/// (the task's `machine` equals the machine's name or label when set, its `platform` equals
/// the machine's when set, and every task tag is a machine tag), locks that machine, and sets
/// the task `running` with `started_on`, `processing = worker` and a lease. Engines make this
/// atomic their own way (SQLite: one IMMEDIATE transaction; PostgreSQL: `FOR UPDATE SKIP
/// LOCKED`). Only machines of the store's own node (see the engines' `with_node`) are
/// claimed: a worker node's machinery slots are local to it.
///
/// Leases: a running task carries `lease_until`. Its worker renews the lease while the
/// analysis goes on ([`TaskRepo::renew_lease`]); a task whose lease ended belongs to a
/// worker that died, and [`TaskRepo::take_expired`] hands it to exactly one other worker,
/// which recovers it like start-up recovery does.
#[async_trait]
pub trait TaskRepo: Send + Sync {
    /// Stores a sample's identity, or returns the existing row with the same SHA-256.
    async fn add_sample(&self, sample: &NewSample) -> Result<Sample>;
    /// A sample by row id.
    async fn sample(&self, id: i64) -> Result<Option<Sample>>;
    /// A sample by hash: `md5`, `sha1` or `sha256` (chosen by the hash length).
    async fn sample_by_hash(&self, hash: &str) -> Result<Option<Sample>>;
    /// Ids of the tasks of a sample, ascending.
    async fn sample_task_ids(&self, sample_id: i64) -> Result<Vec<TaskId>>;

    /// Inserts a pending task; returns its id.
    async fn add_task(&self, task: &NewTask) -> Result<TaskId>;
    /// A task with its sample, guest and errors.
    async fn task(&self, id: TaskId) -> Result<Option<Task>>;
    /// Tasks matching the query, ordered `completed_on ASC NULLS FIRST, id ASC` (Cuckoo).
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>>;
    /// Deletes a task and its guest/errors/tags rows. `false` if it did not exist.
    async fn delete_task(&self, id: TaskId) -> Result<bool>;
    /// Moves a task from one of `from` to `to`, stamping `started_on` when `to` is `running`
    /// and `completed_on` when `to` is `completed`; a move from `reported` back to
    /// `completed` (rereport) also clears `processing`, so the task can be claimed for
    /// processing again. Returns whether the task was in one of `from` (compare-and-set).
    async fn transition(&self, id: TaskId, from: &[TaskStatus], to: TaskStatus) -> Result<bool>;
    /// Sets a free-text field `custom` (reschedule/recovery notes).
    async fn set_custom(&self, id: TaskId, custom: &str) -> Result<()>;
    /// Appends an error message to a task.
    async fn add_error(&self, id: TaskId, message: &str) -> Result<()>;
    /// Task counts by status.
    async fn status_counts(&self) -> Result<StatusCounts>;
    /// Claims the next runnable task and locks a machine for it (see the trait docs); the
    /// task's lease runs until `lease_until`.
    async fn claim(&self, worker: &str, lease_until: Timestamp) -> Result<Option<(Task, Machine)>>;
    /// Extends the lease of a `running` task that `worker` holds to `until`. `false` when
    /// the task is not (or no longer) `worker`'s running task: it finished, or its lease
    /// expired and another worker took it over.
    async fn renew_lease(&self, id: TaskId, worker: &str, until: Timestamp) -> Result<bool>;
    /// Takes over every `running` task whose lease ended before `now`: sets `processing =
    /// worker` and the lease to `until`, releases the machines the tasks held, and returns
    /// their ids. Atomic per task, so each expired lease is taken by exactly one caller;
    /// tasks without a lease (`NULL`, from before leases) are left to start-up recovery.
    async fn take_expired(
        &self,
        worker: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<TaskId>>;
    /// Relays "a task was queued" from other processes to `wake` for as long as the store
    /// lives (PostgreSQL: LISTEN/NOTIFY). Returns at once where the engine has no such
    /// notifications (SQLite: workers are woken in-process and poll).
    async fn relay_wakeups(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> Result<()> {
        let _ = wake;
        Ok(())
    }
    /// Claims a `completed` task that no one is processing (`processing IS NULL`, which is
    /// how a task re-entered `completed` through rereport), ordered `priority DESC, id ASC`
    /// as Cuckoo's `cuckoo process`, and sets `processing = worker`.
    async fn claim_processing(&self, worker: &str) -> Result<Option<Task>>;
    /// Pending tasks that no configured machine could ever run (CAPE marks these failed).
    async fn unserviceable_tasks(&self) -> Result<Vec<TaskId>>;
    /// Tasks left `running` (e.g. by a crash).
    async fn running_tasks(&self) -> Result<Vec<TaskId>>;

    /// Makes the store node's machines match the configuration (by name) and unlocks
    /// them: at start-up no lock of this node can belong to a live analysis. Machines of
    /// other nodes are left alone.
    async fn sync_machines(&self, machines: &[MachineSpec]) -> Result<()>;
    /// All machines, by name.
    async fn machines(&self) -> Result<Vec<Machine>>;
    /// A machine by name.
    async fn machine(&self, name: &str) -> Result<Option<Machine>>;
    /// Releases a machine lock.
    async fn unlock_machine(&self, machine_id: i64) -> Result<()>;
    /// Takes a machine out of rotation after it failed (did not start, its agent never
    /// answered): it stays locked, by no task, with status `broken` stamped `now`, so no
    /// claim picks it until [`TaskRepo::retry_broken_machines`] puts it back.
    async fn set_machine_broken(&self, machine_id: i64, now: Timestamp) -> Result<()>;
    /// Puts this node's machines that broke before `before` back into rotation (unlocked,
    /// status `poweroff`, stamped `now`) and returns their names.
    async fn retry_broken_machines(&self, before: Timestamp, now: Timestamp)
    -> Result<Vec<String>>;

    /// Records that a machine started for a task; returns the guest id.
    async fn start_guest(&self, task: TaskId, machine: &Machine, manager: &str) -> Result<i64>;
    /// Updates a guest's status; `stopped`/`failed` also stamp `shutdown_on`.
    async fn set_guest_status(&self, guest_id: i64, status: &str) -> Result<()>;
    /// The guest of a task.
    async fn guest(&self, task: TaskId) -> Result<Option<Guest>>;

    /// Replaces the report index row and search terms of a task (called when its report
    /// is written; see [`crate::report_index`]).
    async fn index_report(&self, id: TaskId, index: &ReportIndex) -> Result<()>;
    /// A page of tasks, newest (highest id) first, with their report figures. Keyset
    /// paging: the cost does not grow with how far back the page is.
    async fn browse_tasks(&self, query: &TaskPageQuery) -> Result<Vec<TaskSummary>>;
    /// Tasks whose report has any of `values` under the search option `field` (see
    /// [`crate::report_fields`]), newest first.
    async fn tasks_by_report_field(
        &self,
        field: &str,
        values: &[String],
        limit: i64,
    ) -> Result<Vec<TaskId>>;
    /// The distinct values indexed under `field`, at most `limit` (pattern searches match
    /// them, then look their tasks up).
    async fn report_field_values(&self, field: &str, limit: i64) -> Result<Vec<String>>;

    /// Records a submission; returns its id.
    async fn add_submission(&self, submission: &NewSubmission) -> Result<i64>;

    /// Upserts the heartbeat rows of workers (by name), so any node can see every
    /// worker of the cluster ([`TaskRepo::worker_beats`]), and drops the rows that
    /// expired more than [`FORGET_DEAD_WORKERS_AFTER`] before the first beat's `seen_on`
    /// (nodes that went away for good, such as replaced containers).
    async fn beat_workers(&self, beats: &[WorkerBeat]) -> Result<()>;
    /// Every worker's last heartbeat, by name (stale ones included: `expires_on` tells).
    async fn worker_beats(&self) -> Result<Vec<WorkerBeat>>;
    /// Removes the heartbeat rows of workers that stopped cleanly.
    async fn forget_workers(&self, names: &[String]) -> Result<()>;

    /// A number that changes whenever any stored data changes, whichever process wrote it,
    /// so that readers may cache answers derived from the store. Read it *before* the
    /// queries whose result is cached. `None` (the default) when the engine cannot tell;
    /// then nothing may be cached.
    async fn data_version(&self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// How long the row of a dead worker stays visible (µs): a day.
pub const FORGET_DEAD_WORKERS_AFTER: i64 = 24 * 3600 * 1_000_000;

/// A worker's heartbeat row: who it is, what it runs, and until when it counts as alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerBeat {
    /// `<node>/worker<n>` (or `worker<n>` on a single box), as in `processing`.
    pub name: String,
    /// Its node ('' on a single box).
    pub node: String,
    /// The task it is analysing, if any.
    pub task: Option<TaskId>,
    /// When its process started.
    pub started_on: Timestamp,
    /// When it last beat.
    pub seen_on: Timestamp,
    /// When the beat runs out: a worker not seen again by then is presumed dead.
    pub expires_on: Timestamp,
}

/// A byte stream of a blob, for downloads that must not load the blob whole.
pub type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A blob opened for streaming.
pub struct BlobReader {
    /// Size in bytes.
    pub size: u64,
    /// The content.
    pub stream: BlobStream,
}

/// A blob made available as a local file (analyzers read files).
pub struct LocalBlob {
    /// Where to read it.
    pub path: PathBuf,
    /// Keeps a temporary copy alive; `None` when `path` is the store's own file.
    pub guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// The blob store: sample content and analysis artifacts, by key (see [`crate::keys`]).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Moves a finished local file into the store under `key`. If `key` already exists the
    /// file is discarded (content addressing makes them equal).
    async fn put_file(&self, key: &str, file: &Path) -> Result<()>;
    /// Writes a small blob whole.
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()>;
    /// Reads a small blob whole.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Opens a blob for streaming.
    async fn open(&self, key: &str) -> Result<Option<BlobReader>>;
    /// Whether a blob exists.
    async fn exists(&self, key: &str) -> Result<bool>;
    /// A blob's size in bytes, `None` when it does not exist. By default from
    /// [`BlobStore::open`] (the stream is dropped unread); stores override it with a
    /// metadata lookup.
    async fn size(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.open(key).await?.map(|r| r.size))
    }
    /// Keys under a prefix (recursive), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Deletes every blob under a prefix.
    async fn delete_prefix(&self, prefix: &str) -> Result<()>;
    /// Makes a blob readable as a local file.
    async fn local(&self, key: &str) -> Result<Option<LocalBlob>>;
    /// Checks that the store can be used now (readiness probes): the data dir is writable,
    /// the bucket answers. By default, one lookup that must not fail.
    async fn probe(&self) -> Result<()> {
        self.exists("nestbox-probe").await.map(drop)
    }
    /// Bytes free/total on the volume that holds `prefix`, where that means something.
    fn disk_usage(&self, prefix: &str) -> Option<DiskUsage>;
}

/// statvfs-style disk figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Available to unprivileged users.
    pub free: u64,
    /// Volume size.
    pub total: u64,
    /// total − free.
    pub used: u64,
}

/// A time source, so tests can pin dates.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
