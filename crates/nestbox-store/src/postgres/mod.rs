//! The PostgreSQL task store, for installs with many nodes.
//!
//! The same tables, columns and semantics as [`crate::sqlite`] (the conformance suite in
//! [`crate::testsuite`] runs against both); what differs is how concurrency is handled:
//!
//! * **one pool** of connections; PostgreSQL's MVCC lets writers run in parallel, so
//!   there is no single-writer funnel as with SQLite;
//! * **the claim** ([`TaskRepo::claim`]) walks pending tasks in queue order with
//!   `FOR UPDATE SKIP LOCKED` on the task and, in a `LATERAL` sub-select, on the first free
//!   machine of this node that matches it. Rows another claimer holds are skipped, not
//!   waited for, so N workers on M nodes claim N different tasks without blocking each
//!   other; the guarded `UPDATE`s after the pick turn a lost race into a retry, never a
//!   double booking;
//! * **leases**: `take_expired` re-checks `lease_until < now` on the newest row version
//!   inside its `UPDATE` (READ COMMITTED re-evaluates the predicate after waiting for a
//!   concurrent writer), so of two workers racing for an expired lease exactly one wins;
//! * **wake-ups**: [`TaskRepo::add_task`] sends `NOTIFY nestbox_tasks` in its transaction
//!   (delivered at commit), and [`TaskRepo::relay_wakeups`] LISTENs and wakes idle
//!   workers of this process, wherever the task was queued;
//! * **data version** (for the API's caches): the text of `pg_current_snapshot()`. Two
//!   equal snapshots (xmin, xmax, in-progress list) see exactly the same committed data,
//!   and any commit changes the snapshot, so it is a version number no trigger has to
//!   maintain and no write has to contend for.
//!
//! Strings are ordered with `COLLATE "C"` wherever an order is visible, which is SQLite's
//! byte order whatever the database's default collation.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nestbox_core::ports::{TaskRepo, WorkerBeat};
use nestbox_core::{Error, Result};
use nestbox_types::{
    Guest, Machine, MachineSpec, NewSample, NewSubmission, NewTask, Sample, StatusCounts, Task,
    TaskId, TaskQuery, TaskStatus, Timestamp,
};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Transaction};

use crate::rows::{
    Invariant, col, guest_from_row, machine_from_row, sample_from_row, tag_set, task_from_json,
    tasks_from_json,
};

mod assemblyline;
#[cfg(test)]
mod tests;
mod users;

/// The channel `add_task` notifies and idle workers listen on.
const CHANNEL: &str = "nestbox_tasks";

/// How many times a claim retries after losing a race between its pick and its update.
const CLAIM_RETRIES: usize = 8;

/// The embedded migrations, in order (see [`crate::embedded_migrator`]).
fn migrator() -> Migrator {
    crate::embedded_migrator(&[
        (
            1,
            "init",
            include_str!("../../migrations/postgres/0001_init.sql"),
        ),
        (
            2,
            "users",
            include_str!("../../migrations/postgres/0002_users.sql"),
        ),
        (
            3,
            "assemblyline",
            include_str!("../../migrations/postgres/0003_assemblyline.sql"),
        ),
        (
            4,
            "report_index",
            include_str!("../../migrations/postgres/0004_report_index.sql"),
        ),
        (
            5,
            "report_fields",
            include_str!("../../migrations/postgres/0005_report_fields.sql"),
        ),
        (
            6,
            "leases",
            include_str!("../../migrations/postgres/0006_leases.sql"),
        ),
        (
            7,
            "parent_tasks",
            include_str!("../../migrations/postgres/0007_parent_tasks.sql"),
        ),
        (
            8,
            "worker beats",
            include_str!("../../migrations/postgres/0008_worker_beats.sql"),
        ),
        (
            9,
            "al_index",
            include_str!("../../migrations/postgres/0009_al_index.sql"),
        ),
        (
            10,
            "parent_sample",
            include_str!("../../migrations/postgres/0010_parent_sample.sql"),
        ),
    ])
}

/// The PostgreSQL implementation of [`TaskRepo`] (and the user and Assemblyline stores).
///
/// Cheap to clone: the pool is a reference-counted handle.
#[derive(Clone, Debug)]
pub struct PgRepo {
    pool: PgPool,
    /// The worker node whose machines `claim` and `sync_machines` handle.
    node: Arc<str>,
}

impl PgRepo {
    /// Connects to `url` (`postgres://user:pass@host:port/db`, or with `?host=/socket/dir`)
    /// and brings the schema up to date. Several processes may start at once: sqlx holds
    /// an advisory lock while it migrates.
    pub async fn open(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(Error::store)?;
        // Statements are not logged one by one (the server logs its own requests).
        let options = options.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(Error::store)?;
        migrator().run(&pool).await.map_err(Error::store)?;
        Ok(PgRepo {
            pool,
            node: "".into(),
        })
    }

    /// The same store, claiming and syncing the machines of worker node `node`.
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = node.into();
        self
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool (for `nestbox migrate` and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(Error::store)
    }
}

// ---------------------------------------------------------------------------------------
// SQL shared by several statements (see the SQLite module for why macros).

/// A fully loaded task as one JSON array, over `tasks t`, `samples s`, `guests g`; the
/// element order is `rows::TaskRow`'s, as SQLite's `task_json!`.
macro_rules! task_json {
    () => {
        "json_build_array(t.id, t.target, t.category, t.timeout, t.priority, t.custom, \
            t.owner, t.machine, t.package, t.options, t.platform, t.memory, \
            t.enforce_timeout, t.clock, t.added_on, t.started_on, t.completed_on, t.status, \
            t.sample_id, t.submit_id, t.parent_id, t.parent_sample_id, t.processing, \
            t.route, \
            (SELECT COALESCE(json_agg(tt.tag), '[]'::json) FROM tasks_tags tt \
                WHERE tt.task_id = t.id), \
            (SELECT COALESCE(json_agg(e.message ORDER BY e.id), '[]'::json) FROM errors e \
                WHERE e.task_id = t.id), \
            CASE WHEN s.id IS NULL THEN NULL ELSE json_build_array(s.id, s.file_size, \
                s.file_type, s.mime, s.md5, s.crc32, s.sha1, s.sha256, s.sha512, s.ssdeep, \
                s.tlsh, s.first_seen) END, \
            CASE WHEN g.id IS NULL THEN NULL ELSE json_build_array(g.id, g.status, g.name, \
                g.label, g.manager, g.started_on, g.shutdown_on, g.task_id) END)"
    };
}

macro_rules! task_joins {
    () => {
        " LEFT JOIN samples s ON s.id = t.sample_id LEFT JOIN guests g ON g.task_id = t.id"
    };
}

macro_rules! machine_select {
    () => {
        "SELECT m.id, m.name, m.label, m.platform, m.arch, m.ip, m.options, m.interface, \
         m.snapshot, m.locked, m.locked_changed_on, m.status, m.status_changed_on, \
         m.resultserver_ip, m.resultserver_port, \
         (SELECT json_agg(mt.tag ORDER BY mt.tag COLLATE \"C\") FROM machines_tags mt \
            WHERE mt.machine_id = m.id)::text AS tags_json \
         FROM machines m"
    };
}

macro_rules! sample_select {
    () => {
        "SELECT id, file_size, file_type, mime, md5, crc32, sha1, sha256, sha512, ssdeep, \
         tlsh, first_seen FROM samples"
    };
}

// After the macros it uses.
mod browse;

const SAMPLE_BY_SHA256: &str = concat!(sample_select!(), " WHERE sha256 = $1");
const SAMPLE_BY_ID: &str = concat!(sample_select!(), " WHERE id = $1");
const SAMPLE_BY_MD5: &str = concat!(sample_select!(), " WHERE md5 = $1 ORDER BY id LIMIT 1");
const SAMPLE_BY_SHA1: &str = concat!(sample_select!(), " WHERE sha1 = $1 ORDER BY id LIMIT 1");

const TASK_BY_ID: &str = concat!(
    "SELECT ",
    task_json!(),
    "::text AS task FROM tasks t",
    task_joins!(),
    " WHERE t.id = $1"
);

/// The task list query in one of two orders. The page is chosen in the sub-select; `$5`
/// is the limit (NULL = none), `$6` the offset.
macro_rules! task_list {
    ($order:literal) => {
        concat!(
            "SELECT COALESCE(json_agg(",
            task_json!(),
            " ORDER BY ",
            $order,
            "), '[]'::json)::text AS tasks \
             FROM (SELECT * FROM tasks AS t \
                WHERE ($1::text IS NULL OR t.status = $1) \
                  AND ($2::text IS NULL OR t.owner = $2) \
                  AND ($3::bigint IS NULL OR t.sample_id = $3) \
                  AND ($4::bigint IS NULL OR t.completed_on > $4) \
                  AND ($7::text[] IS NULL OR t.status = ANY($7)) \
                  AND ($8::text IS NULL OR t.category = $8) \
                  AND ($9::text IS NULL OR strpos(t.options, $9) > 0) \
                ORDER BY ",
            $order,
            " LIMIT $5 OFFSET $6) AS t",
            task_joins!()
        )
    };
}

const TASK_LIST: &str = task_list!("t.completed_on ASC NULLS FIRST, t.id ASC");
const TASK_LIST_NEWEST: &str = task_list!("t.completed_on DESC NULLS FIRST, t.id DESC");

// The pick of a claim: the first pending task in queue order for which a free machine of
// this node matches, and that machine; both rows locked, rows others hold skipped.
const CLAIM_PICK: &str = concat!(
    "SELECT t.id AS task_id, m.id AS machine_id FROM tasks t \
     CROSS JOIN LATERAL (SELECT m.id FROM machines m \
        WHERE m.locked = 0 AND m.node = $1 AND ",
    machine_matches!(),
    " ORDER BY m.name COLLATE \"C\" LIMIT 1 FOR UPDATE SKIP LOCKED) m \
     WHERE t.status = 'pending' \
     ORDER BY t.priority DESC, t.added_on ASC, t.id ASC LIMIT 1 \
     FOR UPDATE OF t SKIP LOCKED"
);

const UNSERVICEABLE: &str = concat!(
    "SELECT t.id FROM tasks t WHERE t.status = 'pending' \
       AND NOT EXISTS (SELECT 1 FROM machines m WHERE ",
    machine_matches!(),
    ") ORDER BY t.id"
);

const MACHINES_ALL: &str = concat!(machine_select!(), " ORDER BY m.name COLLATE \"C\"");
const MACHINE_BY_NAME: &str = concat!(machine_select!(), " WHERE m.name = $1");
const MACHINE_BY_ID: &str = concat!(machine_select!(), " WHERE m.id = $1");

const GUEST_BY_TASK: &str = "SELECT id, status, name, label, manager, started_on, shutdown_on, \
     task_id FROM guests WHERE task_id = $1";

fn statuses(list: &[TaskStatus]) -> Vec<String> {
    list.iter().map(|s| s.as_str().to_owned()).collect()
}

async fn load_task(conn: &mut PgConnection, id: TaskId) -> Result<Option<Task>> {
    let row = sqlx::query(TASK_BY_ID)
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(Error::store)?;
    match row {
        Some(row) => Ok(Some(task_from_json(&col::<String>(&row, "task")?)?)),
        None => Ok(None),
    }
}

async fn load_machine(conn: &mut PgConnection, id: i64) -> Result<Option<Machine>> {
    let row = sqlx::query(MACHINE_BY_ID)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(Error::store)?;
    row.as_ref().map(machine_from_row).transpose()
}

impl PgRepo {
    /// One attempt at a claim: `Ok(None)` = nothing claimable, `Err(Retry)` = lost a race.
    async fn try_claim(
        &self,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<std::result::Result<Option<(Task, Machine)>, LostRace>> {
        let mut tx = self.begin().await?;
        let picked = sqlx::query(CLAIM_PICK)
            .bind(&*self.node)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::store)?;
        let Some(picked) = picked else {
            tx.rollback().await.map_err(Error::store)?;
            return Ok(Ok(None));
        };
        let task_id: i64 = col(&picked, "task_id")?;
        let machine_id: i64 = col(&picked, "machine_id")?;
        let now = Timestamp::now().0;
        // Both rows are locked by the pick; the guards re-check the newest versions.
        let locked = sqlx::query(
            "UPDATE machines SET locked = 1, locked_changed_on = $2, locked_by_task = $3 \
             WHERE id = $1 AND locked = 0",
        )
        .bind(machine_id)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        let started = sqlx::query(
            "UPDATE tasks SET status = 'running', started_on = $2, processing = $3, \
                lease_until = $4 \
             WHERE id = $1 AND status = 'pending'",
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
            return Ok(Err(LostRace));
        }
        let task = load_task(&mut tx, TaskId(task_id)).await?;
        let machine = load_machine(&mut tx, machine_id).await?;
        tx.commit().await.map_err(Error::store)?;
        match (task, machine) {
            (Some(task), Some(machine)) => Ok(Ok(Some((task, machine)))),
            _ => Err(Error::store(Invariant(format!(
                "claimed task {task_id} or machine {machine_id} vanished"
            )))),
        }
    }
}

/// A claim whose picked rows changed before its update (retried).
struct LostRace;

#[async_trait]
impl TaskRepo for PgRepo {
    async fn add_sample(&self, sample: &NewSample) -> Result<Sample> {
        let sha256 = sample.sha256.to_ascii_lowercase();
        // `DO UPDATE` with a no-op so RETURNING yields the row whether it was inserted
        // now or by someone else before (DO NOTHING returns nothing on conflict).
        let row = sqlx::query(
            "INSERT INTO samples (file_size, file_type, mime, md5, crc32, sha1, sha256, \
             sha512, ssdeep, tlsh, first_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256 \
             RETURNING id, file_size, file_type, mime, md5, crc32, sha1, sha256, sha512, \
             ssdeep, tlsh, first_seen",
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
        .fetch_one(&self.pool)
        .await
        .map_err(Error::store)?;
        sample_from_row(&row)
    }

    async fn sample(&self, id: i64) -> Result<Option<Sample>> {
        let row = sqlx::query(SAMPLE_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(sample_from_row).transpose()
    }

    async fn sample_by_hash(&self, hash: &str) -> Result<Option<Sample>> {
        let sql = match hash.len() {
            32 => SAMPLE_BY_MD5,
            40 => SAMPLE_BY_SHA1,
            64 => SAMPLE_BY_SHA256,
            _ => return Ok(None),
        };
        let row = sqlx::query(sql)
            .bind(hash.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(sample_from_row).transpose()
    }

    async fn sample_task_ids(&self, sample_id: i64) -> Result<Vec<TaskId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE sample_id = $1 ORDER BY id")
                .bind(sample_id)
                .fetch_all(&self.pool)
                .await
                .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn add_task(&self, task: &NewTask) -> Result<TaskId> {
        let now = Timestamp::now();
        let clock = task.clock.unwrap_or(now);
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tasks (target, category, timeout, priority, custom, owner, machine, \
             package, options, platform, memory, enforce_timeout, clock, added_on, status, \
             sample_id, submit_id, route, parent_id, parent_sample_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', \
             $15, $16, $17, $18, $19) RETURNING id",
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
            sqlx::query("INSERT INTO tasks_tags (task_id, tag) SELECT $1, unnest($2::text[])")
                .bind(id)
                .bind(tag_set(&task.tags))
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
        }
        // Delivered to every listener when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        tx.commit().await.map_err(Error::store)?;
        Ok(TaskId(id))
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        let mut conn = self.pool.acquire().await.map_err(Error::store)?;
        load_task(&mut conn, id).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        let (limit, offset) = match query.limit {
            Some(limit) => (Some(limit.max(0)), query.offset.unwrap_or(0).max(0)),
            None => (None, 0),
        };
        let sql = if query.newest_first {
            TASK_LIST_NEWEST
        } else {
            TASK_LIST
        };
        let any_status = (!query.any_status.is_empty()).then(|| statuses(&query.any_status));
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
            .fetch_one(&self.pool)
            .await
            .map_err(Error::store)?;
        tasks_from_json(&col::<String>(&row, "tasks")?)
    }

    async fn delete_task(&self, id: TaskId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tasks WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn transition(&self, id: TaskId, from: &[TaskStatus], to: TaskStatus) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET status = $1, \
                started_on = CASE WHEN $1 = 'running' THEN $2 ELSE started_on END, \
                completed_on = CASE WHEN $1 = 'completed' THEN $2 ELSE completed_on END, \
                processing = CASE WHEN $1 = 'completed' AND status = 'reported' \
                                  THEN NULL ELSE processing END \
             WHERE id = $3 AND status = ANY($4)",
        )
        .bind(to.as_str())
        .bind(Timestamp::now().0)
        .bind(id.0)
        .bind(statuses(from))
        .execute(&self.pool)
        .await
        .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_custom(&self, id: TaskId, custom: &str) -> Result<()> {
        let done = sqlx::query("UPDATE tasks SET custom = $2 WHERE id = $1")
            .bind(id.0)
            .bind(custom)
            .execute(&self.pool)
            .await
            .map_err(Error::store)?;
        if done.rows_affected() == 0 {
            return Err(Error::TaskNotFound(id));
        }
        Ok(())
    }

    async fn add_error(&self, id: TaskId, message: &str) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO errors (task_id, message) \
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = $1)",
        )
        .bind(id.0)
        .bind(message)
        .execute(&self.pool)
        .await
        .map_err(Error::store)?;
        if done.rows_affected() == 0 {
            return Err(Error::TaskNotFound(id));
        }
        Ok(())
    }

    async fn status_counts(&self) -> Result<StatusCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
            .fetch_all(&self.pool)
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
        for _ in 0..CLAIM_RETRIES {
            if let Ok(claimed) = self.try_claim(worker, lease_until).await? {
                return Ok(claimed);
            }
        }
        // Lost every race: others are claiming; the caller polls again.
        Ok(None)
    }

    async fn renew_lease(&self, id: TaskId, worker: &str, until: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET lease_until = $3 \
             WHERE id = $1 AND processing = $2 AND status = 'running'",
        )
        .bind(id.0)
        .bind(worker)
        .bind(until.0)
        .execute(&self.pool)
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
        let mut tx = self.begin().await?;
        // The outer WHERE is re-evaluated on the newest row version, so a lease another
        // worker renewed or took meanwhile is not taken twice.
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE tasks SET processing = $1, lease_until = $3 \
             WHERE id IN (SELECT id FROM tasks WHERE status = 'running' \
                            AND lease_until < $2 FOR UPDATE SKIP LOCKED) \
               AND status = 'running' AND lease_until < $2 \
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
                "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = $2 \
                 WHERE locked = 1 AND locked_by_task = ANY($1)",
            )
            .bind(&ids)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        tx.commit().await.map_err(Error::store)?;
        ids.sort_unstable();
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn relay_wakeups(&self, wake: Arc<tokio::sync::Notify>) -> Result<()> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(Error::store)?;
        listener.listen(CHANNEL).await.map_err(Error::store)?;
        loop {
            // `recv` reconnects (and re-listens) by itself after a lost connection.
            listener.recv().await.map_err(Error::store)?;
            wake.notify_waiters();
            wake.notify_one();
        }
    }

    async fn unserviceable_tasks(&self) -> Result<Vec<TaskId>> {
        let ids: Vec<i64> = sqlx::query_scalar(UNSERVICEABLE)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn claim_processing(&self, worker: &str) -> Result<Option<Task>> {
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE tasks SET processing = $1 WHERE id = ( \
                SELECT id FROM tasks WHERE status = 'completed' AND processing IS NULL \
                ORDER BY priority DESC, id ASC LIMIT 1 FOR UPDATE SKIP LOCKED) \
               AND processing IS NULL \
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
        let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
            .fetch_one(&self.pool)
            .await
            .map_err(Error::store)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        snapshot.hash(&mut h);
        Ok(Some(h.finish()))
    }

    async fn running_tasks(&self) -> Result<Vec<TaskId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE status = 'running' ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn sync_machines(&self, machines: &[MachineSpec]) -> Result<()> {
        let now = Timestamp::now().0;
        let mut tx = self.begin().await?;
        for spec in machines {
            let options = serde_json::Value::from(spec.options.clone()).to_string();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO machines (name, label, platform, arch, ip, options, interface, \
                 snapshot, resultserver_ip, resultserver_port, node) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
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
            sqlx::query("DELETE FROM machines_tags WHERE machine_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
            sqlx::query(
                "INSERT INTO machines_tags (machine_id, tag) SELECT $1, unnest($2::text[])",
            )
            .bind(id)
            .bind(tag_set(&spec.tags))
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        let names: Vec<String> = machines.iter().map(|m| m.name.clone()).collect();
        sqlx::query("DELETE FROM machines WHERE node = $2 AND NOT (name = ANY($1))")
            .bind(names)
            .bind(&*self.node)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        sqlx::query(
            "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = $1, \
                status = CASE WHEN status = 'broken' THEN 'poweroff' ELSE status END \
             WHERE locked = 1 AND node = $2",
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
            .fetch_all(&self.pool)
            .await
            .map_err(Error::store)?;
        rows.iter().map(machine_from_row).collect()
    }

    async fn machine(&self, name: &str) -> Result<Option<Machine>> {
        let row = sqlx::query(MACHINE_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::store)?;
        row.as_ref().map(machine_from_row).transpose()
    }

    async fn unlock_machine(&self, machine_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = $2 \
             WHERE id = $1 AND locked = 1",
        )
        .bind(machine_id)
        .bind(Timestamp::now().0)
        .execute(&self.pool)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn set_machine_broken(&self, machine_id: i64, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE machines SET locked = 1, locked_by_task = NULL, locked_changed_on = $2, \
             status = 'broken', status_changed_on = $2 WHERE id = $1",
        )
        .bind(machine_id)
        .bind(now.0)
        .execute(&self.pool)
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
            "UPDATE machines SET locked = 0, locked_by_task = NULL, locked_changed_on = $2, \
             status = 'poweroff', status_changed_on = $2 \
             WHERE status = 'broken' AND status_changed_on < $1 AND node = $3 \
             RETURNING name",
        )
        .bind(before.0)
        .bind(now.0)
        .bind(&*self.node)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::store)
    }

    async fn start_guest(&self, task: TaskId, machine: &Machine, manager: &str) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO guests (status, name, label, manager, started_on, shutdown_on, task_id) \
             SELECT 'running', $2, $3, $4, $5, NULL, $1 \
             WHERE EXISTS (SELECT 1 FROM tasks WHERE id = $1) \
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
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::store)?;
        id.ok_or(Error::TaskNotFound(task))
    }

    async fn set_guest_status(&self, guest_id: i64, status: &str) -> Result<()> {
        sqlx::query(
            "UPDATE guests SET status = $2, \
                shutdown_on = CASE WHEN $2 IN ('stopped', 'failed') THEN $3 ELSE shutdown_on END \
             WHERE id = $1",
        )
        .bind(guest_id)
        .bind(status)
        .bind(Timestamp::now().0)
        .execute(&self.pool)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn guest(&self, task: TaskId) -> Result<Option<Guest>> {
        let row = sqlx::query(GUEST_BY_TASK)
            .bind(task.0)
            .fetch_optional(&self.pool)
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

    async fn browse_tasks(
        &self,
        query: &nestbox_types::browse::TaskPageQuery,
    ) -> Result<Vec<nestbox_types::browse::TaskSummary>> {
        self.browse_tasks_impl(query).await
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

    async fn add_submission(&self, submission: &NewSubmission) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO submissions (submit_type, data, added_on) VALUES ($1, $2, $3) \
             RETURNING id",
        )
        .bind(&submission.submit_type)
        .bind(submission.data.to_string())
        .bind(Timestamp::now().0)
        .fetch_one(&self.pool)
        .await
        .map_err(Error::store)
    }

    async fn beat_workers(&self, beats: &[WorkerBeat]) -> Result<()> {
        if beats.is_empty() {
            return Ok(());
        }
        // One transaction: one commit for the whole pool's beat.
        let mut tx = self.begin().await?;
        for b in beats {
            sqlx::query(
                "INSERT INTO worker_beats (name, node, task_id, started_on, seen_on, expires_on) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
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
        sqlx::query("DELETE FROM worker_beats WHERE expires_on < $1")
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
        .fetch_all(&self.pool)
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
        let mut tx = self.begin().await?;
        for name in names {
            sqlx::query("DELETE FROM worker_beats WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
        }
        tx.commit().await.map_err(Error::store)
    }
}
