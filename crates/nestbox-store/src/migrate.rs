//! `nestbox migrate`: copies a SQLite store into PostgreSQL.
//!
//! Both engines have the same tables and columns (only the types differ), so each table
//! is copied generically: SQLite packs a batch of rows into a JSON array of objects keyed
//! by column name, and PostgreSQL unpacks it with `json_populate_recordset`, converting
//! every value to its column's type. Batches follow the table's key in order, and every
//! insert is `ON CONFLICT DO NOTHING`, so a copy that was interrupted is resumed by
//! running it again: rows already there are skipped, nothing is duplicated. Identity
//! sequences are moved past the copied ids at the end, so new rows never reuse an id.

use nestbox_core::{Error, Result};

use crate::postgres::PgRepo;
use crate::sqlite::SqliteRepo;

/// The tables in foreign-key order, with the key batches are ordered by.
const TABLES: &[(&str, &str)] = &[
    ("samples", "id"),
    ("submissions", "id"),
    ("tasks", "id"),
    ("tasks_tags", "task_id, tag"),
    ("machines", "id"),
    ("machines_tags", "machine_id, tag"),
    ("guests", "id"),
    ("errors", "id"),
    ("artifacts", "id"),
    ("users", "id"),
    ("tokens", "id"),
    ("tasks_users", "task_id"),
    ("al_submissions", "sid"),
    ("al_ingests", "ingest_id"),
    ("reports_index", "task_id"),
    ("report_terms", "term, task_id"),
    ("report_fields", "field, value, task_id"),
    ("al_results", "key"),
    ("al_result_fields", "field, value, key"),
    ("al_files", "sha256"),
    ("quota_counters", "user_id, kind, period"),
];

/// Tables whose `id` is an identity column in PostgreSQL.
const IDENTITY: &[&str] = &[
    "samples",
    "submissions",
    "tasks",
    "machines",
    "guests",
    "errors",
    "artifacts",
    "users",
    "tokens",
];

/// Rows per batch.
const BATCH: i64 = 1000;

/// Copies every row of `from` into `to` (which may already hold part of them); calls
/// `progress(table, rows_seen)` after each batch. Returns the rows seen per table.
pub async fn sqlite_to_postgres(
    from: &SqliteRepo,
    to: &PgRepo,
    mut progress: impl FnMut(&str, u64),
) -> Result<Vec<(String, u64)>> {
    let mut done = Vec::new();
    for &(table, key) in TABLES {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(from.reader())
        .await
        .map_err(Error::store)?;
        let object = columns
            .iter()
            .map(|c| format!("'{c}', \"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let select = format!(
            "SELECT json_group_array(json_object({object})) FROM \
             (SELECT * FROM \"{table}\" ORDER BY {key} LIMIT ?1 OFFSET ?2)"
        );
        let insert = format!(
            "INSERT INTO \"{table}\" SELECT * FROM \
             json_populate_recordset(NULL::\"{table}\", $1::json) ON CONFLICT DO NOTHING"
        );
        let mut seen: u64 = 0;
        loop {
            let batch: String = sqlx::query_scalar(sqlx::AssertSqlSafe(select.clone()))
                .bind(BATCH)
                .bind(i64::try_from(seen).unwrap_or(i64::MAX))
                .fetch_one(from.reader())
                .await
                .map_err(Error::store)?;
            let rows = serde_json::from_str::<Vec<serde_json::Value>>(&batch)
                .map_err(Error::store)?
                .len() as u64;
            if rows == 0 {
                break;
            }
            sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                .bind(&batch)
                .execute(to.pool())
                .await
                .map_err(Error::store)?;
            seen += rows;
            progress(table, seen);
        }
        done.push((table.to_owned(), seen));
    }
    for table in IDENTITY {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
             GREATEST((SELECT max(id) FROM \"{table}\"), 1))"
        )))
        .execute(to.pool())
        .await
        .map_err(Error::store)?;
    }
    Ok(done)
}
