//! Row mapping shared by the SQL engines.
//!
//! Both engines store the same columns with the same value domains (integers, including
//! timestamps and 0/1 flags, as 64-bit integers; JSON as text), so one mapping from a row
//! to a domain type serves both; [`Cols`] is the little each engine's row type provides.
//! A task is read as one JSON array (see the engines' `task_json!`) into [`TaskRow`].

use std::collections::BTreeSet;

use nestbox_core::assemblyline::{AlFileRow, AlIngest, AlResultRow, AlSubmission};
use nestbox_core::users::{Token, TokenKind, User};
use nestbox_core::{Error, Result};
use nestbox_types::{
    Category, Guest, Machine, MachineSpec, NewTask, Sample, Task, TaskId, TaskOptions, TaskStatus,
    Timestamp,
};
use serde::Deserialize;
use sqlx::Row;

/// A store invariant that did not hold (a bug, or the database edited behind our back).
#[derive(Debug)]
pub(crate) struct Invariant(pub(crate) String);

impl std::fmt::Display for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invariant {}

/// The column reads the shared mapping needs from an engine's row type.
pub(crate) trait Cols {
    /// A non-null integer.
    fn int(&self, name: &str) -> Result<i64>;
    /// A nullable integer.
    fn opt_int(&self, name: &str) -> Result<Option<i64>>;
    /// A non-null string.
    fn text(&self, name: &str) -> Result<String>;
    /// A nullable string.
    fn opt_text(&self, name: &str) -> Result<Option<String>>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn int(&self, name: &str) -> Result<i64> {
                self.try_get(name).map_err(Error::store)
            }
            fn opt_int(&self, name: &str) -> Result<Option<i64>> {
                self.try_get(name).map_err(Error::store)
            }
            fn text(&self, name: &str) -> Result<String> {
                self.try_get(name).map_err(Error::store)
            }
            fn opt_text(&self, name: &str) -> Result<Option<String>> {
                self.try_get(name).map_err(Error::store)
            }
        }
    };
}
impl_cols!(sqlx::sqlite::SqliteRow);
impl_cols!(sqlx::postgres::PgRow);

/// A value type [`col`] can read.
pub(crate) trait FromCol: Sized {
    /// Reads column `name` of `row`.
    fn read(row: &impl Cols, name: &str) -> Result<Self>;
}

impl FromCol for i64 {
    fn read(row: &impl Cols, name: &str) -> Result<Self> {
        row.int(name)
    }
}
impl FromCol for Option<i64> {
    fn read(row: &impl Cols, name: &str) -> Result<Self> {
        row.opt_int(name)
    }
}
impl FromCol for String {
    fn read(row: &impl Cols, name: &str) -> Result<Self> {
        row.text(name)
    }
}
impl FromCol for Option<String> {
    fn read(row: &impl Cols, name: &str) -> Result<Self> {
        row.opt_text(name)
    }
}

/// Column `name` of `row`, typed by the caller.
pub(crate) fn col<T: FromCol>(row: &impl Cols, name: &str) -> Result<T> {
    T::read(row, name)
}

pub(crate) fn ts(row: &impl Cols, name: &str) -> Result<Timestamp> {
    Ok(Timestamp(row.int(name)?))
}

pub(crate) fn opt_ts(row: &impl Cols, name: &str) -> Result<Option<Timestamp>> {
    Ok(row.opt_int(name)?.map(Timestamp))
}

pub(crate) fn flag(row: &impl Cols, name: &str) -> Result<bool> {
    Ok(row.int(name)? != 0)
}

/// A JSON array of strings in a text column; NULL = empty.
pub(crate) fn json_strings(row: &impl Cols, name: &str) -> Result<Vec<String>> {
    match row.opt_text(name)? {
        Some(text) => serde_json::from_str(&text).map_err(Error::store),
        None => Ok(Vec::new()),
    }
}

/// A task packed as one JSON array by the engine's `task_json!`.
pub(crate) fn task_from_json(json: &str) -> Result<Task> {
    let row: TaskRow = serde_json::from_str(json).map_err(Error::store)?;
    Ok(row.into())
}

/// A [`TaskRow`] followed by the report figures (all null before indexing), as the
/// engines' `browse!` packs it.
#[derive(Deserialize)]
struct BrowseRow(
    TaskRow,
    Option<f64>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// A page of the web UI's task list packed as one JSON array of [`BrowseRow`]s.
pub(crate) fn summaries_from_json(json: &str) -> Result<Vec<nestbox_types::browse::TaskSummary>> {
    use nestbox_types::browse::{ReportSummary, TaskSummary};
    let rows: Vec<BrowseRow> = serde_json::from_str(json).map_err(Error::store)?;
    Ok(rows
        .into_iter()
        .map(
            |BrowseRow(task, score, malstatus, signatures, family)| TaskSummary {
                task: task.into(),
                report: score.map(|score| ReportSummary {
                    score,
                    malstatus: malstatus.unwrap_or_default(),
                    signatures: signatures.unwrap_or(0),
                    family,
                }),
            },
        )
        .collect())
}

/// A page of tasks packed as one JSON array of `task_json!` arrays.
pub(crate) fn tasks_from_json(json: &str) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = serde_json::from_str(json).map_err(Error::store)?;
    Ok(rows.into_iter().map(Task::from).collect())
}

pub(crate) fn sample_from_row(row: &impl Cols) -> Result<Sample> {
    Ok(Sample {
        id: col(row, "id")?,
        file_size: col(row, "file_size")?,
        file_type: col(row, "file_type")?,
        mime: col(row, "mime")?,
        md5: col(row, "md5")?,
        crc32: col(row, "crc32")?,
        sha1: col(row, "sha1")?,
        sha256: col(row, "sha256")?,
        sha512: col(row, "sha512")?,
        ssdeep: col(row, "ssdeep")?,
        tlsh: col(row, "tlsh")?,
        first_seen: ts(row, "first_seen")?,
    })
}

pub(crate) fn guest_from_row(row: &impl Cols) -> Result<Guest> {
    Ok(Guest {
        id: col(row, "id")?,
        status: col(row, "status")?,
        name: col(row, "name")?,
        label: col(row, "label")?,
        manager: col(row, "manager")?,
        started_on: ts(row, "started_on")?,
        shutdown_on: opt_ts(row, "shutdown_on")?,
        task_id: TaskId(col(row, "task_id")?),
    })
}

/// A task as packed by `task_json!`: fields in the SQL's element order (serde reads a
/// JSON array into a struct positionally).
#[derive(Deserialize)]
pub(crate) struct TaskRow {
    id: i64,
    target: String,
    category: Category,
    timeout: i64,
    priority: i64,
    custom: String,
    owner: String,
    machine: String,
    package: String,
    options: String,
    platform: String,
    memory: i64,
    enforce_timeout: i64,
    clock: Timestamp,
    added_on: Timestamp,
    started_on: Option<Timestamp>,
    completed_on: Option<Timestamp>,
    status: TaskStatus,
    sample_id: Option<i64>,
    submit_id: Option<i64>,
    parent_id: Option<i64>,
    parent_sample_id: Option<i64>,
    processing: Option<String>,
    route: Option<String>,
    tags: Vec<String>,
    errors: Vec<String>,
    sample: Option<SampleRow>,
    guest: Option<GuestRow>,
}

/// The sample part of a [`TaskRow`].
#[derive(Deserialize)]
struct SampleRow {
    id: i64,
    file_size: i64,
    file_type: String,
    mime: String,
    md5: String,
    crc32: String,
    sha1: String,
    sha256: String,
    sha512: String,
    ssdeep: Option<String>,
    tlsh: Option<String>,
    first_seen: Timestamp,
}

/// The guest part of a [`TaskRow`].
#[derive(Deserialize)]
struct GuestRow {
    id: i64,
    status: String,
    name: String,
    label: String,
    manager: String,
    started_on: Timestamp,
    shutdown_on: Option<Timestamp>,
    task_id: TaskId,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Task {
        let mut tags = r.tags;
        tags.sort_unstable();
        Task {
            id: TaskId(r.id),
            spec: NewTask {
                target: r.target,
                category: r.category,
                timeout: r.timeout,
                priority: r.priority,
                custom: r.custom,
                owner: r.owner,
                machine: r.machine,
                package: r.package,
                options: TaskOptions::parse(&r.options),
                platform: r.platform,
                memory: r.memory != 0,
                enforce_timeout: r.enforce_timeout != 0,
                // The column always holds a clock (the insert time by default). Handing
                // back `None` for the default keeps `spec` equal to what was submitted, so
                // a task re-created from it (reschedule) gets a fresh default clock.
                clock: (r.clock != r.added_on).then_some(r.clock),
                tags,
                sample_id: r.sample_id,
                submit_id: r.submit_id,
                parent_id: r.parent_id.map(TaskId),
                parent_sample_id: r.parent_sample_id,
                route: r.route,
            },
            clock: r.clock,
            added_on: r.added_on,
            started_on: r.started_on,
            completed_on: r.completed_on,
            status: r.status,
            processing: r.processing,
            sample: r.sample.map(|s| Sample {
                id: s.id,
                file_size: s.file_size,
                file_type: s.file_type,
                mime: s.mime,
                md5: s.md5,
                crc32: s.crc32,
                sha1: s.sha1,
                sha256: s.sha256,
                sha512: s.sha512,
                ssdeep: s.ssdeep,
                tlsh: s.tlsh,
                first_seen: s.first_seen,
            }),
            guest: r.guest.map(|g| Guest {
                id: g.id,
                status: g.status,
                name: g.name,
                label: g.label,
                manager: g.manager,
                started_on: g.started_on,
                shutdown_on: g.shutdown_on,
                task_id: g.task_id,
            }),
            errors: r.errors,
        }
    }
}

pub(crate) fn machine_from_row(row: &impl Cols) -> Result<Machine> {
    let options: String = col(row, "options")?;
    Ok(Machine {
        id: col(row, "id")?,
        spec: MachineSpec {
            name: col(row, "name")?,
            label: col(row, "label")?,
            platform: col(row, "platform")?,
            ip: col(row, "ip")?,
            tags: json_strings(row, "tags_json")?,
            options: serde_json::from_str(&options).map_err(Error::store)?,
            snapshot: col(row, "snapshot")?,
            interface: col(row, "interface")?,
            resultserver_ip: col(row, "resultserver_ip")?,
            resultserver_port: col(row, "resultserver_port")?,
            arch: col(row, "arch")?,
        },
        locked: flag(row, "locked")?,
        locked_changed_on: opt_ts(row, "locked_changed_on")?,
        status: col(row, "status")?,
        status_changed_on: opt_ts(row, "status_changed_on")?,
    })
}

/// Tags as stored: trimmed, blank ones dropped, deduplicated, sorted; as a JSON array for
/// `json_each` (one INSERT for all tags instead of one per tag).
pub(crate) fn tags_json(tags: &[String]) -> String {
    serde_json::Value::from(tag_set(tags)).to_string()
}

/// Tags as stored: trimmed, blank ones dropped, deduplicated, sorted.
pub(crate) fn tag_set(tags: &[String]) -> Vec<String> {
    let set: BTreeSet<&str> = tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    set.into_iter().map(str::to_owned).collect()
}

pub(crate) fn user_from_row(row: &impl Cols) -> Result<User> {
    Ok(User {
        id: col(row, "id")?,
        username: col(row, "username")?,
        password_hash: col(row, "password_hash")?,
        is_staff: flag(row, "is_staff")?,
        is_active: flag(row, "is_active")?,
        subscription: col(row, "subscription")?,
        roles: json_strings(row, "roles")?,
        token_generation: col(row, "token_generation")?,
        created_on: ts(row, "created_on")?,
    })
}

pub(crate) fn token_from_row(row: &impl Cols) -> Result<Token> {
    let kind: String = col(row, "kind")?;
    Ok(Token {
        id: col(row, "id")?,
        user_id: col(row, "user_id")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| Error::store(Invariant(format!("unknown token kind {kind:?}"))))?,
        name: col(row, "name")?,
        secret_hash: col(row, "secret_hash")?,
        privileges: col(row, "privileges")?,
        created_on: ts(row, "created_on")?,
        revoked_on: opt_ts(row, "revoked_on")?,
    })
}

pub(crate) fn json_obj(row: &impl Cols, name: &str) -> Result<serde_json::Value> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(Error::store)
}

pub(crate) fn sub_from_row(row: &impl Cols) -> Result<AlSubmission> {
    Ok(AlSubmission {
        sid: col(row, "sid")?,
        submission_id: col(row, "submission_id")?,
        task_id: TaskId(col(row, "task_id")?),
        user_id: col(row, "user_id")?,
        name: col(row, "name")?,
        sha256: col(row, "sha256")?,
        size: col(row, "size")?,
        metadata: json_obj(row, "metadata")?,
        params: json_obj(row, "params")?,
        scan_key: col(row, "scan_key")?,
        created_on: ts(row, "created_on")?,
    })
}

pub(crate) fn ingest_from_row(row: &impl Cols) -> Result<AlIngest> {
    Ok(AlIngest {
        ingest_id: col(row, "ingest_id")?,
        user_id: col(row, "user_id")?,
        sid: col(row, "sid")?,
        queue: col(row, "queue")?,
        threshold: col(row, "threshold")?,
        generate_alert: flag(row, "generate_alert")?,
        created_on: ts(row, "created_on")?,
        notified_on: opt_ts(row, "notified_on")?,
    })
}

pub(crate) fn al_result_from_row(row: &impl Cols) -> Result<AlResultRow> {
    Ok(AlResultRow {
        key: col(row, "key")?,
        task_id: TaskId(col(row, "task_id")?),
        sha256: col(row, "sha256")?,
        service: col(row, "service")?,
        score: col(row, "score")?,
        created: ts(row, "created")?,
        file_type: col(row, "file_type")?,
        size: col(row, "size")?,
    })
}

pub(crate) fn al_file_from_row(row: &impl Cols) -> Result<AlFileRow> {
    Ok(AlFileRow {
        sha256: col(row, "sha256")?,
        sha1: col(row, "sha1")?,
        md5: col(row, "md5")?,
        ssdeep: col(row, "ssdeep")?,
        tlsh: col(row, "tlsh")?,
        size: col(row, "file_size")?,
        file_type: col(row, "file_type")?,
        magic: col(row, "magic")?,
        mime: col(row, "mime")?,
        seen_count: col(row, "seen_count")?,
        seen_first: ts(row, "seen_first")?,
        seen_last: ts(row, "seen_last")?,
    })
}
