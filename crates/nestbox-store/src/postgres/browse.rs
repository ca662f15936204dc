//! The web UI's task list and the report index it reads on PostgreSQL (see the SQLite
//! module `browse` for the design; migration 0004).

use nestbox_core::{Error, Result};
use nestbox_types::TaskId;
use nestbox_types::browse::{ReportIndex, TaskPageQuery, TaskSummary};

use super::PgRepo;
use crate::rows::{col, summaries_from_json};

/// A page of the task list, newest first, keyset on id; `$search` narrows to a term.
macro_rules! browse {
    ($search:expr, $parent:literal) => {
        concat!(
            "SELECT COALESCE(json_agg(json_build_array(",
            task_json!(),
            ", ri.score, ri.malstatus, ri.signatures, ri.family) ORDER BY t.id DESC), \
                '[]'::json)::text AS tasks \
             FROM (SELECT t.* FROM tasks AS t \
                WHERE t.id < $1 \
                  AND ($2::text IS NULL OR t.status = $2) \
                  AND ($3::text IS NULL OR t.category = $3) \
                  AND ($4::float8 IS NULL OR (SELECT r.score FROM reports_index r \
                                      WHERE r.task_id = t.id) >= $4) \
                  AND ($5::bigint IS NULL OR t.added_on >= $5) \
                  AND ($6::bigint IS NULL OR t.added_on < $6) ",
            $search,
            $parent,
            " ORDER BY t.id DESC LIMIT $7) AS t",
            task_joins!(),
            " LEFT JOIN reports_index ri ON ri.task_id = t.id"
        )
    };
}

macro_rules! search {
    () => {
        "AND t.id IN (SELECT rt.task_id FROM report_terms rt WHERE rt.term = $8 \
           UNION SELECT tt.id FROM tasks tt WHERE tt.sample_id IN \
             (SELECT ss.id FROM samples ss WHERE ss.sha256 = $8 OR ss.md5 = $8 OR ss.sha1 = $8))"
    };
}
// A task's children: a separate statement, so the plan uses `tasks_parent_id_idx` rather
// than walking the id range.
/// Indexed by term + 2 × parent.
const BROWSE: [&str; 4] = [
    browse!("AND $8::text IS NULL", " AND $9::bigint IS NULL"),
    browse!(search!(), " AND $9::bigint IS NULL"),
    browse!("AND $8::text IS NULL", " AND t.parent_id = $9"),
    browse!(search!(), " AND t.parent_id = $9"),
];

impl PgRepo {
    pub(super) async fn index_report_impl(&self, id: TaskId, index: &ReportIndex) -> Result<()> {
        let s = &index.summary;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO reports_index (task_id, score, malstatus, signatures, family) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_id) DO UPDATE SET \
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
        sqlx::query("DELETE FROM report_terms WHERE task_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        sqlx::query(
            "INSERT INTO report_terms (term, task_id) \
             SELECT DISTINCT unnest($2::text[]), $1 ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(&index.terms)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        sqlx::query("DELETE FROM report_fields WHERE task_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        let (fields, values): (Vec<&str>, Vec<&str>) = index
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.value.as_str()))
            .unzip();
        sqlx::query(
            "INSERT INTO report_fields (field, value, task_id) \
             SELECT f, v, $1 FROM unnest($2::text[], $3::text[]) AS x (f, v) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(fields)
        .bind(values)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        // The result index: this task's rows are replaced; a key another task held (an
        // earlier analysis of the same file) now names this newer one.
        sqlx::query("DELETE FROM al_results WHERE task_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        for e in &index.al_results {
            sqlx::query("DELETE FROM al_result_fields WHERE key = $1")
                .bind(&e.key)
                .execute(&mut *tx)
                .await
                .map_err(Error::store)?;
            sqlx::query(
                "INSERT INTO al_results (key, task_id, sha256, service, score, created, \
                 file_type, size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
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
            let (fields, values): (Vec<&str>, Vec<&str>) = e
                .fields
                .iter()
                .map(|(f, v)| (f.as_str(), v.as_str()))
                .unzip();
            sqlx::query(
                "INSERT INTO al_result_fields (field, value, key) \
                 SELECT f, v, $1 FROM unnest($2::text[], $3::text[]) AS x (f, v) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&e.key)
            .bind(fields)
            .bind(values)
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
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT task_id FROM report_fields \
             WHERE field = $1 AND value = ANY($2) ORDER BY task_id DESC LIMIT $3",
        )
        .bind(field)
        .bind(values)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::store)?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    /// The distinct values stored under `field` (for pattern searches).
    pub(super) async fn report_field_values_impl(
        &self,
        field: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT value COLLATE \"C\" AS value FROM report_fields \
             WHERE field = $1 ORDER BY 1 LIMIT $2",
        )
        .bind(field)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::store)
    }

    pub(super) async fn browse_tasks_impl(&self, q: &TaskPageQuery) -> Result<Vec<TaskSummary>> {
        let sql = BROWSE[usize::from(q.term.is_some()) + 2 * usize::from(q.parent.is_some())];
        let row = sqlx::query(sql)
            // Always bound (`i64::MAX` for the first page), so the keyset is a range.
            .bind(q.before.map_or(i64::MAX, |t| t.0))
            .bind(q.status.map(|s| s.as_str()))
            .bind(q.category.map(|c| c.as_str()))
            .bind(q.min_score)
            .bind(q.added_from.map(|t| t.0))
            .bind(q.added_until.map(|t| t.0))
            .bind(q.limit.max(0))
            .bind(q.term.as_deref())
            .bind(q.parent.map(|p| p.0))
            .fetch_one(&self.pool)
            .await
            .map_err(Error::store)?;
        summaries_from_json(&col::<String>(&row, "tasks")?)
    }
}
