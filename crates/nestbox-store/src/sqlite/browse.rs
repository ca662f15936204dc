//! The web UI's task list (keyset pages with report figures and search) and the report
//! index it reads (`reports_index`, `report_terms`; migration 0004).

use nestbox_core::{Error, Result};
use nestbox_types::TaskId;
use nestbox_types::browse::{ReportIndex, TaskPageQuery, TaskSummary};

use super::SqliteRepo;
use crate::rows::{col, summaries_from_json};

/// A page of the task list. The sub-select picks the page (filters, `id < before`,
/// `ORDER BY id DESC LIMIT n`), and only the page's rows are joined and packed, as in
/// `task_list!`. `id < ?1` is always bound (`i64::MAX` for the first page) rather than
/// written `?1 IS NULL OR …`, which SQLite cannot use as a range: the keyset page would
/// scan every newer row. For the same reason the status filter (`tasks_status_id_idx`)
/// and the search (`report_terms` primary key) are separate statements.
macro_rules! browse {
    ($status:literal, $search:expr, $parent:expr) => {
        concat!(
            "SELECT json_group_array(json_array(",
            task_json!(),
            ", ri.score, ri.malstatus, ri.signatures, ri.family) ORDER BY t.id DESC) AS tasks \
             FROM (SELECT t.* FROM tasks AS t \
                WHERE t.id < ?1 ",
            $status,
            " AND (?3 IS NULL OR t.category = ?3) \
                  AND (?4 IS NULL OR (SELECT r.score FROM reports_index r \
                                      WHERE r.task_id = t.id) >= ?4) \
                  AND (?5 IS NULL OR t.added_on >= ?5) \
                  AND (?6 IS NULL OR t.added_on < ?6) ",
            $search,
            $parent,
            " ORDER BY t.id DESC LIMIT +?7) AS t",
            task_joins!(),
            " LEFT JOIN reports_index ri ON ri.task_id = t.id"
        )
    };
}

// A term names report terms, or a sample by any of its hashes (so a pending task is found
// by its sha256 before it has a report).
macro_rules! search {
    () => {
        "AND t.id IN (SELECT rt.task_id FROM report_terms rt WHERE rt.term = ?8 \
           UNION SELECT tt.id FROM tasks tt WHERE tt.sample_id IN \
             (SELECT ss.id FROM samples ss WHERE ss.sha256 = ?8 OR ss.md5 = ?8 OR ss.sha1 = ?8))"
    };
}
// A task's children come from `tasks_parent_id_idx` (again a separate statement, so the
// plan can use it).
macro_rules! child {
    () => {
        " AND t.parent_id = ?9"
    };
}
/// Indexed by status + 2 × term + 4 × parent.
const BROWSE: [&str; 8] = [
    browse!("", "", ""),
    browse!("AND t.status = ?2", "", ""),
    browse!("", search!(), ""),
    browse!("AND t.status = ?2", search!(), ""),
    browse!("", "", child!()),
    browse!("AND t.status = ?2", "", child!()),
    browse!("", search!(), child!()),
    browse!("AND t.status = ?2", search!(), child!()),
];

impl SqliteRepo {
    pub(super) async fn index_report_impl(&self, id: TaskId, index: &ReportIndex) -> Result<()> {
        let terms = serde_json::Value::from(index.terms.clone()).to_string();
        let s = &index.summary;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO reports_index (task_id, score, malstatus, signatures, family) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (task_id) DO UPDATE SET \
             score = excluded.score, malstatus = excluded.malstatus, \
             signatures = excluded.signatures, family = excluded.family",
        )
        .bind(id.0)
        .bind(s.score)
        .bind(&s.malstatus)
        .bind(s.signatures)
        .bind(s.family.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        sqlx::query("DELETE FROM report_terms WHERE task_id = ?1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        sqlx::query(
            "INSERT OR IGNORE INTO report_terms (term, task_id) \
             SELECT value, ?1 FROM json_each(?2)",
        )
        .bind(id.0)
        .bind(terms)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        sqlx::query("DELETE FROM report_fields WHERE task_id = ?1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        let fields = serde_json::Value::from(
            index
                .fields
                .iter()
                .map(|f| serde_json::json!([f.field, f.value]))
                .collect::<Vec<_>>(),
        )
        .to_string();
        sqlx::query(
            "INSERT OR IGNORE INTO report_fields (field, value, task_id) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1 FROM json_each(?2)",
        )
        .bind(id.0)
        .bind(fields)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        // The result index: this task's rows are replaced; a key another task held (an
        // earlier analysis of the same file) now names this newer one.
        sqlx::query("DELETE FROM al_results WHERE task_id = ?1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        for e in &index.al_results {
            sqlx::query("DELETE FROM al_result_fields WHERE key = ?1")
                .bind(&e.key)
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
            sqlx::query(
                "INSERT INTO al_results (key, task_id, sha256, service, score, created, \
                 file_type, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, \
                 sha256 = excluded.sha256, service = excluded.service, score = excluded.score, \
                 created = excluded.created, file_type = excluded.file_type, size = excluded.size",
            )
            .bind(&e.key)
            .bind(id.0)
            .bind(&e.sha256)
            .bind(&e.service)
            .bind(e.score)
            .bind(e.created.0)
            .bind(&e.file_type)
            .bind(e.size)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
            sqlx::query(
                "INSERT OR IGNORE INTO al_result_fields (field, value, key) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1 \
                 FROM json_each(?2)",
            )
            .bind(&e.key)
            .bind(serde_json::to_string(&e.fields).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        }
        tx.commit().await.map_err(Error::store)
    }

    /// Tasks with any of `values` under `field`, newest first.
    pub(super) async fn tasks_by_report_field_impl(
        &self,
        field: &str,
        values: &[String],
        limit: i64,
    ) -> Result<Vec<TaskId>> {
        let values = serde_json::Value::from(values.to_vec()).to_string();
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT task_id FROM report_fields \
             WHERE field = ?1 AND value IN (SELECT value FROM json_each(?2)) \
             ORDER BY task_id DESC LIMIT ?3",
        )
        .bind(field)
        .bind(values)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(Error::store)?;
        Ok(ids.into_iter().map(|(id,)| TaskId(id)).collect())
    }

    /// The distinct values stored under `field` (for pattern searches).
    pub(super) async fn report_field_values_impl(
        &self,
        field: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT value FROM report_fields WHERE field = ?1 ORDER BY value LIMIT ?2",
        )
        .bind(field)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(Error::store)?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    pub(super) async fn browse_tasks_impl(&self, q: &TaskPageQuery) -> Result<Vec<TaskSummary>> {
        let sql = BROWSE[usize::from(q.status.is_some())
            + 2 * usize::from(q.term.is_some())
            + 4 * usize::from(q.parent.is_some())];
        let row = sqlx::query(sql)
            .bind(q.before.map_or(i64::MAX, |t| t.0))
            .bind(q.status.map(|s| s.as_str()))
            .bind(q.category.map(|c| c.as_str()))
            .bind(q.min_score)
            .bind(q.added_from.map(|t| t.0))
            .bind(q.added_until.map(|t| t.0))
            .bind(q.limit.max(0))
            .bind(q.term.as_deref())
            .bind(q.parent.map(|p| p.0))
            .fetch_one(&self.reader)
            .await
            .map_err(Error::store)?;
        summaries_from_json(&col::<String>(&row, "tasks")?)
    }
}
