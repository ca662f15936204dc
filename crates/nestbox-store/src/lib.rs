//! nestbox's storage engines.
//!
//! * [`sqlite::SqliteRepo`]: the task store ([`TaskRepo`]) on SQLite, the default engine
//!   and the only one a single-node install needs;
//! * [`blob::LocalBlobStore`]: the blob store ([`BlobStore`]) on a local directory, and
//!   [`blob::S3BlobStore`] on an S3-compatible bucket;
//! * [`testsuite`]: the conformance suite every [`TaskRepo`] engine must pass.
//!
//! This crate is *not* where behaviour is decided: the contracts are the port traits in
//! [`nestbox_core::ports`], and the use-cases that drive them live in `nestbox-core`. No
//! other crate but the composition root (`nestbox-server`) should name these types.
//!
//! # Design: plain SQL per engine, no ORM
//!
//! Each engine is written in its own SQL with hand-written row mapping (sqlx without its
//! compile-time macros), and its own migrations (`migrations/sqlite/`, later
//! `migrations/postgres/` with the same tables and columns). The engines differ exactly
//! where it matters (how the queue is claimed atomically, upserts, JSON helpers), and a
//! query builder or ORM would either hide those differences or force `#[cfg]` branches
//! into every query. The price is some duplicated SQL between engines; the shared
//! [`testsuite`] is what keeps them honest.
//!
//! # The claim protocol
//!
//! Tasks are the queue. A worker calls [`TaskRepo::claim`], which in one atomic step picks
//! the first `pending` task in `priority DESC, added_on ASC, id ASC` order for which an
//! unlocked machine matches (machine name/label, platform, tags), locks that machine and
//! marks the task `running`. SQLite does it in one `BEGIN IMMEDIATE` transaction (one
//! writer at a time, so the pick cannot race); PostgreSQL will use
//! `FOR UPDATE SKIP LOCKED`. The machine lock is released by the worker
//! ([`TaskRepo::unlock_machine`]) and, after a crash, by [`TaskRepo::sync_machines`] at
//! start-up. See [`sqlite`] for the SQLite details (connections, busy handling).
//!
//! [`TaskRepo`]: nestbox_core::ports::TaskRepo
//! [`TaskRepo::claim`]: nestbox_core::ports::TaskRepo::claim
//! [`TaskRepo::unlock_machine`]: nestbox_core::ports::TaskRepo::unlock_machine
//! [`TaskRepo::sync_machines`]: nestbox_core::ports::TaskRepo::sync_machines
//! [`BlobStore`]: nestbox_core::ports::BlobStore
#![deny(missing_docs)]

// SQL both engines share (plain standard SQL), as macros expanding to string literals so
// statements stay `&'static str`; defined before the engine modules (textual scope).

/// The platform a task's target needs when the submission named none: `windows` for PE
/// files and the shellcode/DLL packages (CAPE's `get_platform` from the file type),
/// `linux` for everything else (ELF, scripts, URLs).
macro_rules! target_platform {
    () => {
        "(CASE WHEN lower(t.package) IN ('exe', 'dll', 'shellcode', 'shellcode_x64', \
            'regsvr', 'rundll32') \
            OR EXISTS (SELECT 1 FROM samples ts WHERE ts.id = t.sample_id \
               AND (ts.file_type LIKE 'PE32%' OR ts.file_type LIKE 'MS-DOS executable%')) \
         THEN 'windows' ELSE 'linux' END)"
    };
}

/// Whether machine `m` can run task `t`: the task's machine (name or label) and platform
/// match when set, and every task tag is a machine tag. A task that names no machine,
/// platform or tag goes to a machine of its target's platform (PE → the emulator,
/// Linux/URL → ns) when one is configured, else to any. Lock state is not part of it.
macro_rules! machine_matches {
    () => {
        concat!(
            "(t.machine = '' OR t.machine = m.name OR t.machine = m.label) \
         AND (t.platform = '' OR t.platform = m.platform) \
         AND NOT EXISTS (SELECT 1 FROM tasks_tags tt WHERE tt.task_id = t.id \
            AND NOT EXISTS (SELECT 1 FROM machines_tags mt \
                WHERE mt.machine_id = m.id AND mt.tag = tt.tag)) \
         AND (t.machine <> '' OR t.platform <> '' \
            OR EXISTS (SELECT 1 FROM tasks_tags tp WHERE tp.task_id = t.id) \
            OR m.platform = ",
            target_platform!(),
            " OR NOT EXISTS (SELECT 1 FROM machines mp WHERE mp.platform = ",
            target_platform!(),
            "))"
        )
    };
}

mod al_query;
pub mod blob;
pub mod migrate;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod testsuite;

pub use blob::{LocalBlobStore, S3BlobStore};
pub use sqlite::SqliteRepo;

/// A migrator over migrations embedded in the binary.
///
/// Listed by hand rather than with `sqlx::migrate!` because that macro needs sqlx's
/// `macros` feature (a proc-macro crate and its dependency tree) for what is a list of
/// files. Versions and descriptions follow the `<version>_<description>.sql` file names
/// and checksums are computed by sqlx from the same text, so the `_sqlx_migrations` table
/// is the one `migrate!` would write: switching to the macro later needs no data change.
fn embedded_migrator(migrations: &[(i64, &str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.to_owned().into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
