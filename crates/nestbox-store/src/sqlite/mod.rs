//! The SQLite task store.
//!
//! # Connections
//!
//! SQLite allows one writer at a time per database file. [`SqliteRepo`] therefore keeps
//! two pools over the same file:
//!
//! * a **writer** pool of exactly one connection. Every statement that changes data runs
//!   there, so writers of this process queue on the pool instead of spinning in SQLite's
//!   busy handler, and no write ever sees `SQLITE_BUSY` from a sibling connection;
//! * a **reader** pool of a few read-only connections. In WAL mode readers never block the
//!   writer nor each other, which is what lets `tasks/list` scale with cores.
//!
//! Another *process* on the same file (a separate `nestbox worker`) is the one remaining
//! source of lock contention. It is handled by `busy_timeout` plus one rule: every
//! multi-statement write is a `BEGIN IMMEDIATE` transaction. A deferred transaction that
//! reads first and writes later can fail with `SQLITE_BUSY` *without* waiting (its read
//! snapshot went stale), while `BEGIN IMMEDIATE` takes the write lock up front and so waits
//! in the busy handler like a single statement does.
//!
//! # Claim protocol
//!
//! [`TaskRepo::claim`] is one `BEGIN IMMEDIATE` transaction:
//!
//! 1. one `SELECT` walks pending tasks in queue order (`tasks_queue_idx`:
//!    `status, priority DESC, added_on, id`) and keeps the first one for which an unlocked
//!    machine matches (the `machine_matches!` predicate below), picking that machine by
//!    name;
//! 2. `UPDATE machines SET locked = 1, …` and `UPDATE tasks SET status = 'running', …`,
//!    each guarded by the state it expects;
//! 3. the task and machine are read back through the same loaders as [`TaskRepo::task`]
//!    and [`TaskRepo::machine`], then the transaction commits.
//!
//! Holding the write lock from step 1 to 3 makes the pick and the locks atomic across
//! connections and processes.
//!
//! # Reading tasks
//!
//! A task is returned with its tags, errors, guest and sample, and each read is a single
//! statement: the sample and guest are joined, tags and errors aggregated per task, and
//! the whole task packed by SQLite into one JSON array (see `task_json!` for why). A page
//! of `tasks/list` is one statement returning one value, not 1 + N queries; the filtered,
//! ordered, limited page is chosen in a sub-select first, so the joins and aggregates only
//! run for the tasks returned.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use nestbox_core::ports::{TaskRepo, WorkerBeat};
use nestbox_core::{Error, Result};
use nestbox_types::{
    Guest, Machine, MachineSpec, NewSample, NewSubmission, NewTask, Sample, StatusCounts, Task,
    TaskId, TaskQuery, TaskStatus, Timestamp,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::rows::{
    Invariant, col, guest_from_row, machine_from_row, sample_from_row, tags_json, task_from_json,
    tasks_from_json,
};

mod assemblyline;
#[cfg(test)]
mod tests;
mod users;

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded migrations, in order (see [`crate::embedded_migrator`]). Adding a
/// migration = adding the file *and* a line here.
fn migrator() -> Migrator {
    crate::embedded_migrator(&[
        (
            1,
            "init",
            include_str!("../../migrations/sqlite/0001_init.sql"),
        ),
        (
            2,
            "users",
            include_str!("../../migrations/sqlite/0002_users.sql"),
        ),
        (
            3,
            "assemblyline",
            include_str!("../../migrations/sqlite/0003_assemblyline.sql"),
        ),
        (
            4,
            "report_index",
            include_str!("../../migrations/sqlite/0004_report_index.sql"),
        ),
        (
            5,
            "report_fields",
            include_str!("../../migrations/sqlite/0005_report_fields.sql"),
        ),
        (
            6,
            "leases",
            include_str!("../../migrations/sqlite/0006_leases.sql"),
        ),
        (
            7,
            "parent_tasks",
            include_str!("../../migrations/sqlite/0007_parent_tasks.sql"),
        ),
        (
            8,
            "worker beats",
            include_str!("../../migrations/sqlite/0008_worker_beats.sql"),
        ),
        (
            9,
            "al_index",
            include_str!("../../migrations/sqlite/0009_al_index.sql"),
        ),
        (
            10,
            "parent_sample",
            include_str!("../../migrations/sqlite/0010_parent_sample.sql"),
        ),
    ])
}

/// The SQLite implementation of [`TaskRepo`].
///
/// Cheap to clone: both pools are reference-counted handles.
#[derive(Clone, Debug)]
pub struct SqliteRepo {
    /// Read-only connections (one pool with `writer` for in-memory databases).
    reader: SqlitePool,
    /// One read-only connection kept for `PRAGMA data_version`, whose value changes when
    /// any *other* connection (our writer, or another process) commits. `None` for the
    /// in-memory database, where reader and writer are one connection.
    watch: Option<SqlitePool>,
    /// The single connection every write goes through.
    pub(crate) writer: SqlitePool,
    /// The worker node whose machines `claim` and `sync_machines` handle ('' = the one
    /// node of a single-box install).
    node: std::sync::Arc<str>,
}

impl SqliteRepo {
    /// Opens the database file at `path`, creating it (and its directory) if missing, and
    /// brings its schema up to date.
    ///
    /// The file is put in WAL mode with `synchronous = NORMAL` (durable across application
    /// crashes; a power loss may lose the last transactions but never corrupts), foreign
    /// keys on and a 10 s busy timeout.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        // The writer is opened (and migrates) first: it creates the file and switches it
        // to WAL, which read-only connections cannot do.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            // A ping per acquire would double the round trips of every call; a broken
            // SQLite connection is not something a ping would find anyway.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(Error::store)?;
        migrator().run(&writer).await.map_err(Error::store)?;

        let readers = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 8);
        let reader = SqlitePoolOptions::new()
            .max_connections(u32::try_from(readers).unwrap_or(4))
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(Error::store)?;
        let watch = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(Error::store)?;
        Ok(SqliteRepo {
            reader,
            writer,
            watch: Some(watch),
            node: "".into(),
        })
    }

    /// A fresh, private in-memory database (for tests).
    ///
    /// An in-memory database lives as long as its connection, so this uses one connection
    /// for everything and never recycles it.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(Error::store)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(Error::store)?;
        migrator().run(&pool).await.map_err(Error::store)?;
        Ok(SqliteRepo {
            watch: None,
            reader: pool.clone(),
            writer: pool,
            node: "".into(),
        })
    }

    /// The read-only pool (for `nestbox migrate`).
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The same store, claiming and syncing the machines of worker node `node` (several
    /// worker processes on one database file each name their node).
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = node.into();
        self
    }

    /// Closes every connection (checkpointing the WAL on the last one).
    pub async fn close(&self) {
        self.reader.close().await;
        if let Some(w) = &self.watch {
            w.close().await;
        }
        self.writer.close().await;
    }

    /// Starts a write transaction that holds the database write lock from its first
    /// statement (see the module docs for why every multi-statement write uses this).
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(Error::store)
    }
}

// ---------------------------------------------------------------------------------------
// SQL shared by several statements. Kept as macros expanding to string literals so the
// statements are still `&'static str` (sqlx's guard against injected SQL) via `concat!`.

/// A fully loaded task as one JSON array, over `tasks t`, `samples s`, `guests g`.
///
/// Why JSON: sqlx copies every column value of every row out of SQLite one by one, and
/// with ~45 columns per task that copying, not the query, dominated `tasks/list` (about
/// 0.15 µs per value, 2/3 of the time for a page of 50). Packing each task into one value
/// (and a page into one array) cut the time per page by about half. Positional arrays are
/// used rather than `json_object` because building the keys costs SQLite as much again;
/// the element order is [`TaskRow`]'s field order, and the conformance suite checks every
/// field with distinct values, so a mix-up cannot go unnoticed.
///
/// Tag order is fixed in Rust (sorted). Errors come from a sub-select ordered by id, which
/// SQLite feeds to the aggregate in that order (an aggregate over an ordered sub-select is
/// not flattened) and serves straight from `errors_task_id_idx`, where an `ORDER BY`
/// inside the aggregate would add a sort per task.
macro_rules! task_json {
    () => {
        "json_array(t.id, t.target, t.category, t.timeout, t.priority, t.custom, t.owner, \
            t.machine, t.package, t.options, t.platform, t.memory, t.enforce_timeout, \
            t.clock, t.added_on, t.started_on, t.completed_on, t.status, t.sample_id, \
            t.submit_id, t.parent_id, t.parent_sample_id, t.processing, t.route, \
            (SELECT json_group_array(tt.tag) FROM tasks_tags tt WHERE tt.task_id = t.id), \
            (SELECT json_group_array(message) FROM \
                (SELECT e.message FROM errors e WHERE e.task_id = t.id ORDER BY e.id)), \
            CASE WHEN s.id IS NULL THEN NULL ELSE json_array(s.id, s.file_size, \
                s.file_type, s.mime, s.md5, s.crc32, s.sha1, s.sha256, s.sha512, s.ssdeep, \
                s.tlsh, s.first_seen) END, \
            CASE WHEN g.id IS NULL THEN NULL ELSE json_array(g.id, g.status, g.name, \
                g.label, g.manager, g.started_on, g.shutdown_on, g.task_id) END)"
    };
}

/// The joins `task_json!` needs, after `FROM tasks t` (or a sub-select aliased `t`).
macro_rules! task_joins {
    () => {
        " LEFT JOIN samples s ON s.id = t.sample_id LEFT JOIN guests g ON g.task_id = t.id"
    };
}

// After the macros it uses (macro_rules! scope is textual).
mod browse;

/// The columns of a machine with its tags, over `machines m`.
macro_rules! machine_select {
    () => {
        "SELECT m.id, m.name, m.label, m.platform, m.arch, m.ip, m.options, m.interface, \
         m.snapshot, m.locked, m.locked_changed_on, m.status, m.status_changed_on, \
         m.resultserver_ip, m.resultserver_port, \
         (SELECT json_group_array(mt.tag ORDER BY mt.tag) FROM machines_tags mt \
            WHERE mt.machine_id = m.id) AS tags_json \
         FROM machines m"
    };
}

const SAMPLE_COLUMNS_BY_SHA256: &str = "SELECT id, file_size, file_type, mime, md5, crc32, sha1, \
     sha256, sha512, ssdeep, tlsh, first_seen FROM samples WHERE sha256 = ?1";
const SAMPLE_BY_ID: &str = "SELECT id, file_size, file_type, mime, md5, crc32, sha1, sha256, \
     sha512, ssdeep, tlsh, first_seen FROM samples WHERE id = ?1";
const SAMPLE_BY_MD5: &str = "SELECT id, file_size, file_type, mime, md5, crc32, sha1, sha256, \
     sha512, ssdeep, tlsh, first_seen FROM samples WHERE md5 = ?1 ORDER BY id LIMIT 1";
const SAMPLE_BY_SHA1: &str = "SELECT id, file_size, file_type, mime, md5, crc32, sha1, sha256, \
     sha512, ssdeep, tlsh, first_seen FROM samples WHERE sha1 = ?1 ORDER BY id LIMIT 1";

const TASK_BY_ID: &str = concat!(
    "SELECT ",
    task_json!(),
    " AS task FROM tasks t",
    task_joins!(),
    " WHERE t.id = ?1"
);

// The page is chosen in the sub-select (filters, order, limit), so the joins and per-task
// packing run for the returned rows only, and the page comes back as one JSON array.
// `?5` is the limit (-1 = none in SQLite), `?6` the offset.
/// The task list query, in one of two orders; filters are optional binds.
macro_rules! task_list {
    ($order:literal) => {
        concat!(
            "SELECT json_group_array(",
            task_json!(),
            " ORDER BY ",
            $order,
            ") AS tasks \
             FROM (SELECT * FROM tasks AS t \
                WHERE (?1 IS NULL OR status = ?1) \
                  AND (?2 IS NULL OR owner = ?2) \
                  AND (?3 IS NULL OR sample_id = ?3) \
                  AND (?4 IS NULL OR completed_on > ?4) \
                  AND (?7 IS NULL OR status IN (SELECT value FROM json_each(?7))) \
                  AND (?8 IS NULL OR category = ?8) \
                  AND (?9 IS NULL OR instr(options, ?9) > 0) \
                ORDER BY ",
            $order,
            // `+?5`, not `?5`: SQLite treats a bare bound LIMIT as input to the plan and
            // re-prepares the statement whenever it changes; the unary plus keeps the
            // cached statement (+27 % on tasks/list, see BENCHMARKS.md).
            " LIMIT +?5 OFFSET +?6) AS t",
            task_joins!()
        )
    };
}

/// Cuckoo's order: never-completed tasks first, then by completion.
const TASK_LIST: &str = task_list!("t.completed_on ASC NULLS FIRST, t.id ASC");
/// CAPE's order: `completed_on DESC` as PostgreSQL sorts it (NULLs first).
const TASK_LIST_NEWEST: &str = task_list!("t.completed_on DESC NULLS FIRST, t.id DESC");

// Step 1 of the claim: the first pending task in queue order that an unlocked machine can
// run, and the first such machine by name.
const CLAIM_PICK: &str = concat!(
    "SELECT t.id AS task_id, \
        (SELECT m.id FROM machines m WHERE m.locked = 0 AND m.node = ?1 AND ",
    machine_matches!(),
    " ORDER BY m.name LIMIT 1) AS machine_id \
     FROM tasks t \
     WHERE t.status = 'pending' \
       AND EXISTS (SELECT 1 FROM machines m WHERE m.locked = 0 AND m.node = ?1 AND ",
    machine_matches!(),
    ") ORDER BY t.priority DESC, t.added_on ASC, t.id ASC LIMIT 1"
);

const UNSERVICEABLE: &str = concat!(
    "SELECT t.id FROM tasks t WHERE t.status = 'pending' \
       AND NOT EXISTS (SELECT 1 FROM machines m WHERE ",
    machine_matches!(),
    ") ORDER BY t.id"
);

const MACHINES_ALL: &str = concat!(machine_select!(), " ORDER BY m.name");
const MACHINE_BY_NAME: &str = concat!(machine_select!(), " WHERE m.name = ?1");
const MACHINE_BY_ID: &str = concat!(machine_select!(), " WHERE m.id = ?1");

const GUEST_BY_TASK: &str = "SELECT id, status, name, label, manager, started_on, shutdown_on, \
     task_id FROM guests WHERE task_id = ?1";

async fn load_task(conn: &mut SqliteConnection, id: TaskId) -> Result<Option<Task>> {
    let row = sqlx::query(TASK_BY_ID)
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(Error::store)?;
    match row {
        Some(row) => {
            let task: String = col(&row, "task")?;
            Ok(Some(task_from_json(&task)?))
        }
        None => Ok(None),
    }
}

async fn load_machine(conn: &mut SqliteConnection, id: i64) -> Result<Option<Machine>> {
    let row = sqlx::query(MACHINE_BY_ID)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(Error::store)?;
    row.as_ref().map(machine_from_row).transpose()
}

#[async_trait]
impl TaskRepo for SqliteRepo {
    async fn add_sample(&self, sample: &NewSample) -> Result<Sample> {
        let sha256 = sample.sha256.to_ascii_lowercase();
        // Both statements on the writer connection: the SELECT must see the row even if
        // it was inserted by this very call.
        let mut conn = self.writer.acquire().await.map_err(Error::store)?;
        sqlx::query(
            "INSERT INTO samples (file_size, file_type, mime, md5, crc32, sha1, sha256, \
             sha512, ssdeep, tlsh, first_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sample.file_size)
        .bind(&sample.file_type)
        .bind(&sample.mime)
        .bind(sample.md5.to_ascii_lowercase())
        .bind(&sample.crc32)
        .bind(sample.sha1.to_ascii_lowercase())
        .bind(&sha256)
        .bind(sample.sha512.to_ascii_lowercase())
        .bind(&sample.ssdeep)
        .bind(&sample.tlsh)
        .bind(Timestamp::now().0)
        .execute(&mut *conn)
        .await
        .map_err(Error::store)?;
        let row = sqlx::query(SAMPLE_COLUMNS_BY_SHA256)
            .bind(&sha256)
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::store)?;
        sample_from_row(&row)
    }

    async fn sample(&self, id: i64) -> Result<Option<Sample>> {
        let row = sqlx::query(SAMPLE_BY_ID)
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(sample_from_row).transpose()
    }

    async fn sample_by_hash(&self, hash: &str) -> Result<Option<Sample>> {
        let sql = match hash.len() {
            32 => SAMPLE_BY_MD5,
            40 => SAMPLE_BY_SHA1,
            64 => SAMPLE_COLUMNS_BY_SHA256,
            _ => return Ok(None),
        };
        let row = sqlx::query(sql)
            .bind(hash.to_ascii_lowercase())
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(sample_from_row).transpose()
    }

    async fn sample_task_ids(&self, sample_id: i64) -> Result<Vec<TaskId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE sample_id = ?1 ORDER BY id")
                .bind(sample_id)
                .fetch_all(&self.reader)
                .await
                .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn add_task(&self, task: &NewTask) -> Result<TaskId> {
        let now = Timestamp::now();
        let clock = task.clock.unwrap_or(now);
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tasks (target, category, timeout, priority, custom, owner, machine, \
             package, options, platform, memory, enforce_timeout, clock, added_on, status, \
             sample_id, submit_id, route, parent_id, parent_sample_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', \
             ?15, ?16, ?17, ?18, ?19) RETURNING id",
        )
        .bind(&task.target)
        .bind(task.category.as_str())
        .bind(task.timeout)
        .bind(task.priority)
        .bind(&task.custom)
        .bind(&task.owner)
        .bind(&task.machine)
        .bind(&task.package)
        .bind(task.options.emit())
        .bind(&task.platform)
        .bind(i64::from(task.memory))
        .bind(i64::from(task.enforce_timeout))
        .bind(clock.0)
        .bind(now.0)
        .bind(task.sample_id)
        .bind(task.submit_id)
        .bind(&task.route)
        .bind(task.parent_id.map(|p| p.0))
        .bind(task.parent_sample_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::store)?;
        if !task.tags.is_empty() {
            sqlx::query(
                "INSERT INTO tasks_tags (task_id, tag) SELECT ?1, value FROM json_each(?2)",
            )
            .bind(id)
            .bind(tags_json(&task.tags))
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        tx.commit().await.map_err(Error::store)?;
        Ok(TaskId(id))
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        let mut conn = self.reader.acquire().await.map_err(Error::store)?;
        load_task(&mut conn, id).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        // Offset only applies with a limit (Cuckoo's API has no offset-only form).
        let (limit, offset) = match query.limit {
            Some(limit) => (limit.max(0), query.offset.unwrap_or(0).max(0)),
            None => (-1, 0),
        };
        let sql = if query.newest_first {
            TASK_LIST_NEWEST
        } else {
            TASK_LIST
        };
        let any_status = (!query.any_status.is_empty()).then(|| {
            serde_json::Value::from(
                query
                    .any_status
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>(),
            )
            .to_string()
        });
        let row = sqlx::query(sql)
            .bind(query.status.map(TaskStatus::as_str))
            .bind(query.owner.as_deref())
            .bind(query.sample_id)
            .bind(query.completed_after.map(|t| t.0))
            .bind(limit)
            .bind(offset)
            .bind(any_status)
            .bind(query.category.map(|c| c.as_str()))
            .bind(query.options_contain.as_deref())
            .fetch_one(&self.reader)
            .await
            .map_err(Error::store)?;
        let tasks: String = col(&row, "tasks")?;
        tasks_from_json(&tasks)
    }

    async fn delete_task(&self, id: TaskId) -> Result<bool> {
        // Tags, errors, guest and artifact rows go with it (ON DELETE CASCADE); a machine
        // lock pointing at it loses its `locked_by_task` (ON DELETE SET NULL).
        let done = sqlx::query("DELETE FROM tasks WHERE id = ?1")
            .bind(id.0)
            .execute(&self.writer)
            .await
            .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn transition(&self, id: TaskId, from: &[TaskStatus], to: TaskStatus) -> Result<bool> {
        // One statement = atomic compare-and-set; `from` travels as a JSON array.
        let from = serde_json::Value::from(from.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            .to_string();
        let done = sqlx::query(
            "UPDATE tasks SET status = ?1, \
                started_on = CASE WHEN ?1 = 'running' THEN ?2 ELSE started_on END, \
                completed_on = CASE WHEN ?1 = 'completed' THEN ?2 ELSE completed_on END, \
                processing = CASE WHEN ?1 = 'completed' AND status = 'reported' \
                                  THEN NULL ELSE processing END \
             WHERE id = ?3 AND status IN (SELECT value FROM json_each(?4))",
        )
        .bind(to.as_str())
        .bind(Timestamp::now().0)
        .bind(id.0)
        .bind(from)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_custom(&self, id: TaskId, custom: &str) -> Result<()> {
        let done = sqlx::query("UPDATE tasks SET custom = ?2 WHERE id = ?1")
            .bind(id.0)
            .bind(custom)
            .execute(&self.writer)
            .await
            .map_err(Error::store)?;
        if done.rows_affected() == 0 {
            return Err(Error::TaskNotFound(id));
        }
        Ok(())
    }

    async fn add_error(&self, id: TaskId, message: &str) -> Result<()> {
        // INSERT … SELECT … WHERE EXISTS turns a missing task into "0 rows" rather than a
        // foreign-key failure, so the caller gets TaskNotFound.
        let done = sqlx::query(
            "INSERT INTO errors (task_id, message) \
             SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?1)",
        )
        .bind(id.0)
        .bind(message)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        if done.rows_affected() == 0 {
            return Err(Error::TaskNotFound(id));
        }
        Ok(())
    }

    async fn status_counts(&self) -> Result<StatusCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?;
        let mut counts = StatusCounts::default();
        for row in &rows {
            let n: i64 = col(row, "n")?;
            counts.total += n;
            counts.by_status.insert(col(row, "status")?, n);
        }
        Ok(counts)
    }

    async fn claim(&self, worker: &str, lease_until: Timestamp) -> Result<Option<(Task, Machine)>> {
        let mut tx = self.begin_write().await?;
        let picked = sqlx::query(CLAIM_PICK)
            .bind(&*self.node)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::store)?;
        let Some(picked) = picked else {
            tx.rollback().await.map_err(Error::store)?;
            return Ok(None);
        };
        let task_id: i64 = col(&picked, "task_id")?;
        let machine_id: i64 = col(&picked, "machine_id")?;
        let now = Timestamp::now().0;

        // The guards (`locked = 0`, `status = 'pending'`) cannot fail while this
        // transaction holds the write lock; they are checked so a broken invariant is an
        // error instead of a double booking.
        let locked = sqlx::query(
            "UPDATE machines SET locked = 1, locked_changed_on = ?2, locked_by_task = ?3 \
             WHERE id = ?1 AND locked = 0",
        )
        .bind(machine_id)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        let started = sqlx::query(
            "UPDATE tasks SET status = 'running', started_on = ?2, processing = ?3, \
                lease_until = ?4 \
             WHERE id = ?1 AND status = 'pending'",
        )
        .bind(task_id)
        .bind(now)
        .bind(worker)
        .bind(lease_until.0)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        if locked.rows_affected() != 1 || started.rows_affected() != 1 {
            tx.rollback().await.map_err(Error::store)?;
            return Err(Error::store(Invariant(format!(
                "claim of task {task_id} on machine {machine_id} found them taken"
            ))));
        }

        let task = load_task(&mut tx, TaskId(task_id)).await?;
        let machine = load_machine(&mut tx, machine_id).await?;
        tx.commit().await.map_err(Error::store)?;
        match (task, machine) {
            (Some(task), Some(machine)) => Ok(Some((task, machine))),
            _ => Err(Error::store(Invariant(format!(
                "claimed task {task_id} or machine {machine_id} vanished"
            )))),
        }
    }

    async fn renew_lease(&self, id: TaskId, worker: &str, until: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET lease_until = ?3 \
             WHERE id = ?1 AND processing = ?2 AND status = 'running'",
        )
        .bind(id.0)
        .bind(worker)
        .bind(until.0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_expired(
        &self,
        worker: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<TaskId>> {
        // One IMMEDIATE transaction: no other process can take the same leases between
        // the UPDATE and the machine release.
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE tasks SET processing = ?1, lease_until = ?3 \
             WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < ?2 \
             RETURNING id",
        )
        .bind(worker)
        .bind(now.0)
        .bind(until.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::store)?;
        if !ids.is_empty() {
            sqlx::query(
                "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = ?2 \
                 WHERE locked = 1 AND locked_by_task IN (SELECT value FROM json_each(?1))",
            )
            .bind(serde_json::Value::from(ids.clone()).to_string())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        tx.commit().await.map_err(Error::store)?;
        let mut ids: Vec<TaskId> = ids.into_iter().map(TaskId).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn unserviceable_tasks(&self) -> Result<Vec<TaskId>> {
        let ids: Vec<i64> = sqlx::query_scalar(UNSERVICEABLE)
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn claim_processing(&self, worker: &str) -> Result<Option<Task>> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE tasks SET processing = ?1 WHERE id = ( \
                SELECT id FROM tasks WHERE status = 'completed' AND processing IS NULL \
                ORDER BY priority DESC, id ASC LIMIT 1) \
             RETURNING id",
        )
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::store)?;
        let Some(id) = id else {
            tx.rollback().await.map_err(Error::store)?;
            return Ok(None);
        };
        let task = load_task(&mut tx, TaskId(id)).await?;
        tx.commit().await.map_err(Error::store)?;
        Ok(task)
    }

    async fn data_version(&self) -> Result<Option<u64>> {
        let Some(watch) = &self.watch else {
            return Ok(None);
        };
        let v: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(watch)
            .await
            .map_err(Error::store)?;
        Ok(Some(v.unsigned_abs()))
    }

    async fn running_tasks(&self) -> Result<Vec<TaskId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE status = 'running' ORDER BY id")
                .fetch_all(&self.reader)
                .await
                .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn sync_machines(&self, machines: &[MachineSpec]) -> Result<()> {
        let now = Timestamp::now().0;
        let mut tx = self.begin_write().await?;
        for spec in machines {
            // Upsert by name keeps the row id of a machine that stays configured.
            let options = serde_json::Value::from(spec.options.clone()).to_string();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO machines (name, label, platform, arch, ip, options, interface, \
                 snapshot, resultserver_ip, resultserver_port, node) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (name) DO UPDATE SET label = excluded.label, node = excluded.node, \
                    platform = excluded.platform, arch = excluded.arch, ip = excluded.ip, \
                    options = excluded.options, interface = excluded.interface, \
                    snapshot = excluded.snapshot, resultserver_ip = excluded.resultserver_ip, \
                    resultserver_port = excluded.resultserver_port \
                 RETURNING id",
            )
            .bind(&spec.name)
            .bind(&spec.label)
            .bind(&spec.platform)
            .bind(&spec.arch)
            .bind(&spec.ip)
            .bind(options)
            .bind(&spec.interface)
            .bind(&spec.snapshot)
            .bind(&spec.resultserver_ip)
            .bind(spec.resultserver_port)
            .bind(&*self.node)
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::store)?;
            sqlx::query("DELETE FROM machines_tags WHERE machine_id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
            sqlx::query(
                "INSERT INTO machines_tags (machine_id, tag) SELECT ?1, value FROM json_each(?2)",
            )
            .bind(id)
            .bind(tags_json(&spec.tags))
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        let names =
            serde_json::Value::from(machines.iter().map(|m| m.name.as_str()).collect::<Vec<_>>())
                .to_string();
        sqlx::query(
            "DELETE FROM machines WHERE node = ?2 \
             AND name NOT IN (SELECT value FROM json_each(?1))",
        )
        .bind(names)
        .bind(&*self.node)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        // Start-up of this node: no lock of its machines can belong to a live analysis,
        // and machines taken out of rotation get their retry now.
        sqlx::query(
            "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = ?1, \
                status = CASE WHEN status = 'broken' THEN 'poweroff' ELSE status END \
             WHERE locked = 1 AND node = ?2",
        )
        .bind(now)
        .bind(&*self.node)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        tx.commit().await.map_err(Error::store)
    }

    async fn machines(&self) -> Result<Vec<Machine>> {
        let rows = sqlx::query(MACHINES_ALL)
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?;
        rows.iter().map(machine_from_row).collect()
    }

    async fn machine(&self, name: &str) -> Result<Option<Machine>> {
        let row = sqlx::query(MACHINE_BY_NAME)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(machine_from_row).transpose()
    }

    async fn unlock_machine(&self, machine_id: i64) -> Result<()> {
        // Unlocking a free (or unknown) machine is a no-op, so `locked_changed_on` keeps
        // the time of the real release.
        sqlx::query(
            "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = ?2 \
             WHERE id = ?1 AND locked = 1",
        )
        .bind(machine_id)
        .bind(Timestamp::now().0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn set_machine_broken(&self, machine_id: i64, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE machines SET locked = 1, locked_by_task = NULL, locked_changed_on = ?2, \
             status = 'broken', status_changed_on = ?2 WHERE id = ?1",
        )
        .bind(machine_id)
        .bind(now.0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn retry_broken_machines(
        &self,
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = ?2, \
             status = 'poweroff', status_changed_on = ?2 \
             WHERE status = 'broken' AND status_changed_on < ?1 AND node = ?3 \
             RETURNING name",
        )
        .bind(before.0)
        .bind(now.0)
        .bind(&*self.node)
        .fetch_all(&self.writer)
        .await
        .map_err(Error::store)
    }

    async fn start_guest(&self, task: TaskId, machine: &Machine, manager: &str) -> Result<i64> {
        // A task has at most one guest row (task_id is UNIQUE). When a task runs again
        // (recovered after a crash and claimed anew) the row is reused for the new run.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO guests (status, name, label, manager, started_on, shutdown_on, task_id) \
             SELECT 'running', ?2, ?3, ?4, ?5, NULL, ?1 \
             WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?1) \
             ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, \
                name = excluded.name, label = excluded.label, manager = excluded.manager, \
                started_on = excluded.started_on, shutdown_on = NULL \
             RETURNING id",
        )
        .bind(task.0)
        .bind(&machine.spec.name)
        .bind(&machine.spec.label)
        .bind(manager)
        .bind(Timestamp::now().0)
        .fetch_optional(&self.writer)
        .await
        .map_err(Error::store)?;
        id.ok_or(Error::TaskNotFound(task))
    }

    async fn set_guest_status(&self, guest_id: i64, status: &str) -> Result<()> {
        sqlx::query(
            "UPDATE guests SET status = ?2, \
                shutdown_on = CASE WHEN ?2 IN ('stopped', 'failed') THEN ?3 ELSE shutdown_on END \
             WHERE id = ?1",
        )
        .bind(guest_id)
        .bind(status)
        .bind(Timestamp::now().0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn guest(&self, task: TaskId) -> Result<Option<Guest>> {
        let row = sqlx::query(GUEST_BY_TASK)
            .bind(task.0)
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(guest_from_row).transpose()
    }

    async fn index_report(
        &self,
        id: TaskId,
        index: &nestbox_types::browse::ReportIndex,
    ) -> Result<()> {
        self.index_report_impl(id, index).await
    }

    async fn tasks_by_report_field(
        &self,
        field: &str,
        values: &[String],
        limit: i64,
    ) -> Result<Vec<TaskId>> {
        self.tasks_by_report_field_impl(field, values, limit).await
    }

    async fn report_field_values(&self, field: &str, limit: i64) -> Result<Vec<String>> {
        self.report_field_values_impl(field, limit).await
    }

    async fn browse_tasks(
        &self,
        query: &nestbox_types::browse::TaskPageQuery,
    ) -> Result<Vec<nestbox_types::browse::TaskSummary>> {
        self.browse_tasks_impl(query).await
    }

    async fn add_submission(&self, submission: &NewSubmission) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO submissions (submit_type, data, added_on) VALUES (?1, ?2, ?3) \
             RETURNING id",
        )
        .bind(&submission.submit_type)
        .bind(submission.data.to_string())
        .bind(Timestamp::now().0)
        .fetch_one(&self.writer)
        .await
        .map_err(Error::store)
    }

    async fn beat_workers(&self, beats: &[WorkerBeat]) -> Result<()> {
        if beats.is_empty() {
            return Ok(());
        }
        // One transaction: one commit for the whole pool's beat.
        let mut tx = self.begin_write().await?;
        for b in beats {
            sqlx::query(
                "INSERT INTO worker_beats (name, node, task_id, started_on, seen_on, expires_on) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET \
                 node = excluded.node, task_id = excluded.task_id, \
                 started_on = excluded.started_on, seen_on = excluded.seen_on, \
                 expires_on = excluded.expires_on",
            )
            .bind(&b.name)
            .bind(&b.node)
            .bind(b.task.map(|t| t.0))
            .bind(b.started_on.0)
            .bind(b.seen_on.0)
            .bind(b.expires_on.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        let forget_before = beats[0]
            .seen_on
            .0
            .saturating_sub(nestbox_core::ports::FORGET_DEAD_WORKERS_AFTER);
        sqlx::query("DELETE FROM worker_beats WHERE expires_on < ?1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        tx.commit().await.map_err(Error::store)
    }

    async fn worker_beats(&self) -> Result<Vec<WorkerBeat>> {
        let rows: Vec<(String, String, Option<i64>, i64, i64, i64)> = sqlx::query_as(
            "SELECT name, node, task_id, started_on, seen_on, expires_on \
             FROM worker_beats ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(Error::store)?;
        Ok(rows
            .into_iter()
            .map(|(name, node, task, started, seen, expires)| WorkerBeat {
                name,
                node,
                task: task.map(TaskId),
                started_on: Timestamp(started),
                seen_on: Timestamp(seen),
                expires_on: Timestamp(expires),
            })
            .collect())
    }

    async fn forget_workers(&self, names: &[String]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for name in names {
            sqlx::query("DELETE FROM worker_beats WHERE name = ?1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
        }
        tx.commit().await.map_err(Error::store)
    }
}
