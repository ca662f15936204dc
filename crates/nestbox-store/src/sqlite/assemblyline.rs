//! [`AlRepo`] on SQLite: the `al_submissions` and `al_ingests` tables of
//! `migrations/sqlite/0003_assemblyline.sql`.

use async_trait::async_trait;
use nestbox_core::assemblyline::{
    AlColumn, AlCond, AlFileRow, AlFilter, AlIngest, AlMatch, AlQuery, AlRepo, AlResultRow,
    AlSubmission,
};
use nestbox_core::{Error, Result};
use nestbox_types::Timestamp;

use super::SqliteRepo;
use crate::al_query::{FILE_COLUMNS, Ph, RESULT_COLUMNS, Stmt};
use crate::rows::{al_file_from_row, al_result_from_row, ingest_from_row, sub_from_row};

const SUB_COLUMNS: &str = "SELECT sid, submission_id, task_id, user_id, name, sha256, size, \
     metadata, params, scan_key, created_on FROM al_submissions";
const INGEST_COLUMNS: &str = "SELECT ingest_id, user_id, sid, queue, threshold, \
     generate_alert, created_on, notified_on FROM al_ingests";

/// `LIKE` with `\` as the escape character.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A JSON path for one key: `$."<key>"` (keys with quotes or backslashes never match).
fn json_key(key: &str) -> Option<String> {
    (!key.contains(['"', '\\'])).then(|| format!("$.\"{key}\""))
}

/// The SQL text of a condition, its parameters appended to `binds`. JSON values are
/// compared as the search flattens them: strings as they are, `true`/`false`, numbers in
/// decimal, all lower-cased.
fn cond_sql(c: &AlCond, binds: &mut Vec<String>) -> String {
    let mut json = |col: &str, key: &str| -> String {
        match json_key(key) {
            Some(path) => {
                binds.push(path);
                let p = binds.len();
                format!(
                    "(CASE json_type({col}, ?{p}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                     WHEN 'object' THEN NULL WHEN 'array' THEN NULL \
                     ELSE lower(json_extract({col}, ?{p})) END)"
                )
            }
            None => "NULL".to_owned(),
        }
    };
    let expr = match &c.column {
        AlColumn::Sid => "lower(sid)".to_owned(),
        AlColumn::Name => "lower(name)".to_owned(),
        AlColumn::Sha256 => "lower(sha256)".to_owned(),
        AlColumn::Param(k) => json("params", k),
        AlColumn::Metadata(k) => json("metadata", k),
    };
    let mut bind = |v: String| {
        binds.push(v);
        binds.len()
    };
    let test = match &c.matcher {
        AlMatch::Present => format!("{expr} IS NOT NULL"),
        AlMatch::Exact(v) => format!("{expr} = ?{}", bind(v.to_lowercase())),
        AlMatch::Prefix(v) => format!(
            "{expr} LIKE ?{} ESCAPE '\\'",
            bind(format!("{}%", like_escape(&v.to_lowercase())))
        ),
        AlMatch::Suffix(v) => format!(
            "{expr} LIKE ?{} ESCAPE '\\'",
            bind(format!("%{}", like_escape(&v.to_lowercase())))
        ),
        AlMatch::Contains(v) => format!(
            "{expr} LIKE ?{} ESCAPE '\\'",
            bind(format!("%{}%", like_escape(&v.to_lowercase())))
        ),
    };
    // A missing field does not match, so NOT of it does: IFNULL makes NOT see false.
    if c.negate {
        format!("NOT IFNULL({test}, 0)")
    } else {
        format!("IFNULL({test}, 0)")
    }
}

/// The WHERE clause of a filter.
fn filter_sql(f: &AlFilter, binds: &mut Vec<String>) -> String {
    if f.groups.is_empty() {
        return "1".to_owned();
    }
    let groups: Vec<String> = f
        .groups
        .iter()
        .map(|g| {
            if g.is_empty() {
                return "1".to_owned();
            }
            let conds: Vec<String> = g.iter().map(|c| cond_sql(c, binds)).collect();
            format!("({})", conds.join(" AND "))
        })
        .collect();
    format!("({})", groups.join(" OR "))
}

#[async_trait]
impl AlRepo for SqliteRepo {
    async fn search_al_results(
        &self,
        query: &AlQuery,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlResultRow>> {
        let mut st = Stmt::new(Ph::Sqlite);
        let clause = st.result_clause(query);
        let sql = format!(
            "{RESULT_COLUMNS} WHERE {clause} ORDER BY r.created DESC, r.key LIMIT {} OFFSET {}",
            st.next_placeholder(1),
            st.next_placeholder(2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in st.binds {
            q = q.bind(b);
        }
        let rows = q
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?;
        rows.iter().map(al_result_from_row).collect()
    }

    async fn count_al_results(&self, query: &AlQuery) -> Result<i64> {
        let mut st = Stmt::new(Ph::Sqlite);
        let clause = st.result_clause(query);
        let sql = format!("SELECT COUNT(*) FROM al_results r WHERE {clause}");
        let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql));
        for b in st.binds {
            q = q.bind(b);
        }
        let (n,) = q.fetch_one(&self.reader).await.map_err(Error::store)?;
        Ok(n)
    }

    async fn al_result(&self, key: &str) -> Result<Option<AlResultRow>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RESULT_COLUMNS} WHERE r.key = ?1"
        )))
        .bind(key)
        .fetch_optional(&self.reader)
        .await
        .map_err(Error::store)?
        .as_ref()
        .map(al_result_from_row)
        .transpose()
    }

    async fn note_al_file(&self, sha256: &str, file_type: &str, seen: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO al_files (sha256, file_type, seen_count, seen_first, seen_last) \
             VALUES (?1, ?2, 1, ?3, ?3) \
             ON CONFLICT (sha256) DO UPDATE SET seen_count = al_files.seen_count + 1, \
             seen_first = MIN(al_files.seen_first, excluded.seen_first), \
             seen_last = MAX(al_files.seen_last, excluded.seen_last), \
             file_type = CASE WHEN excluded.file_type = '' THEN al_files.file_type \
             ELSE excluded.file_type END",
        )
        .bind(sha256)
        .bind(file_type)
        .bind(seen.0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn search_al_files(
        &self,
        query: &AlQuery,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlFileRow>> {
        let mut st = Stmt::new(Ph::Sqlite);
        let clause = st.file_clause(query);
        let sql = format!(
            "{FILE_COLUMNS} WHERE {clause} ORDER BY a.seen_last DESC, a.sha256 LIMIT {} OFFSET {}",
            st.next_placeholder(1),
            st.next_placeholder(2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in st.binds {
            q = q.bind(b);
        }
        let rows = q
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?;
        rows.iter().map(al_file_from_row).collect()
    }

    async fn bump_quota(
        &self,
        user_id: i64,
        kind: &str,
        period: i64,
        delta: i64,
        max: i64,
        expires_on: Timestamp,
    ) -> Result<Option<i64>> {
        // `live` is the counter's value in its window (0 once expired).
        let n: Option<i64> = sqlx::query_scalar(
            "INSERT INTO quota_counters (user_id, kind, period, n, expires_on) \
             SELECT ?1, ?2, ?3, MAX(?4, 0), ?6 WHERE ?4 <= ?5 \
             ON CONFLICT (user_id, kind, period) DO UPDATE SET \
             n = MAX(0, (CASE WHEN quota_counters.expires_on <= ?7 THEN 0 \
                 ELSE quota_counters.n END) + ?4), \
             expires_on = CASE WHEN quota_counters.expires_on <= ?7 THEN ?6 \
                 ELSE quota_counters.expires_on END \
             WHERE (CASE WHEN quota_counters.expires_on <= ?7 THEN 0 \
                 ELSE quota_counters.n END) + ?4 <= ?5 \
             RETURNING n",
        )
        .bind(user_id)
        .bind(kind)
        .bind(period)
        .bind(delta)
        .bind(max)
        .bind(expires_on.0)
        .bind(Timestamp::now().0)
        .fetch_optional(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(n)
    }

    async fn quota_counter(&self, user_id: i64, kind: &str, period: i64) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT n FROM quota_counters WHERE user_id = ?1 AND kind = ?2 AND period = ?3 \
             AND expires_on > ?4",
        )
        .bind(user_id)
        .bind(kind)
        .bind(period)
        .bind(Timestamp::now().0)
        .fetch_optional(&self.reader)
        .await
        .map_err(Error::store)?;
        Ok(n.unwrap_or(0))
    }

    async fn unfinished_al_submissions(&self, user_id: i64, is_async: bool) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM al_submissions a JOIN tasks t ON t.id = a.task_id \
             WHERE a.user_id = ?1 AND t.status IN ('pending', 'running', 'completed') \
             AND EXISTS (SELECT 1 FROM al_ingests i WHERE i.sid = a.sid) = ?2",
        )
        .bind(user_id)
        .bind(i64::from(is_async))
        .fetch_one(&self.reader)
        .await
        .map_err(Error::store)
    }

    async fn count_al_files(&self, query: &AlQuery) -> Result<i64> {
        let mut st = Stmt::new(Ph::Sqlite);
        let clause = st.file_clause(query);
        let sql = format!(
            "SELECT COUNT(*) FROM al_files a JOIN samples s ON s.sha256 = a.sha256 WHERE {clause}"
        );
        let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql));
        for b in st.binds {
            q = q.bind(b);
        }
        let (n,) = q.fetch_one(&self.reader).await.map_err(Error::store)?;
        Ok(n)
    }

    async fn search_al_submissions(
        &self,
        filter: &AlFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlSubmission>> {
        let mut binds = Vec::new();
        let clause = filter_sql(filter, &mut binds);
        let n = binds.len();
        let sql = format!(
            "{SUB_COLUMNS} WHERE {clause} ORDER BY created_on DESC, sid \
             LIMIT +?{} OFFSET +?{}",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?;
        rows.iter().map(sub_from_row).collect()
    }

    async fn count_al_submissions(&self, filter: &AlFilter) -> Result<i64> {
        let mut binds = Vec::new();
        let clause = filter_sql(filter, &mut binds);
        let sql = format!("SELECT COUNT(*) FROM al_submissions WHERE {clause}");
        let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let (n,) = q.fetch_one(&self.reader).await.map_err(Error::store)?;
        Ok(n)
    }

    async fn add_al_submission(&self, s: &AlSubmission) -> Result<()> {
        sqlx::query(
            "INSERT INTO al_submissions (sid, submission_id, task_id, user_id, name, sha256, \
             size, metadata, params, scan_key, created_on) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .bind(&s.sid)
        .bind(s.submission_id)
        .bind(s.task_id.0)
        .bind(s.user_id)
        .bind(&s.name)
        .bind(&s.sha256)
        .bind(s.size)
        .bind(s.metadata.to_string())
        .bind(s.params.to_string())
        .bind(&s.scan_key)
        .bind(s.created_on.0)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if e.as_database_error()
                .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
            {
                Error::Invalid(format!("sid {} exists", s.sid))
            } else {
                Error::store(e)
            }
        })?;
        Ok(())
    }

    async fn al_submission(&self, sid: &str) -> Result<Option<AlSubmission>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{SUB_COLUMNS} WHERE sid = ?1")))
            .bind(sid)
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?
            .as_ref()
            .map(sub_from_row)
            .transpose()
    }

    async fn al_submission_by_scan_key(&self, scan_key: &str) -> Result<Option<AlSubmission>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SUB_COLUMNS} WHERE scan_key = ?1 ORDER BY created_on DESC LIMIT 1"
        )))
        .bind(scan_key)
        .fetch_optional(&self.reader)
        .await
        .map_err(Error::store)?
        .as_ref()
        .map(sub_from_row)
        .transpose()
    }

    async fn al_submissions(
        &self,
        user_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlSubmission>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SUB_COLUMNS} WHERE (?1 IS NULL OR user_id = ?1) \
             ORDER BY created_on DESC, sid LIMIT +?2 OFFSET +?3"
        )))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await
        .map_err(Error::store)?;
        rows.iter().map(sub_from_row).collect()
    }

    async fn add_al_ingest(&self, i: &AlIngest) -> Result<()> {
        sqlx::query(
            "INSERT INTO al_ingests (ingest_id, user_id, sid, queue, threshold, generate_alert, \
             created_on, notified_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&i.ingest_id)
        .bind(i.user_id)
        .bind(&i.sid)
        .bind(&i.queue)
        .bind(i.threshold)
        .bind(i64::from(i.generate_alert))
        .bind(i.created_on.0)
        .bind(i.notified_on.map(|t| t.0))
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn pending_ingests(&self, user_id: i64, queue: &str) -> Result<Vec<AlIngest>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{INGEST_COLUMNS} WHERE user_id = ?1 AND queue = ?2 AND notified_on IS NULL \
             ORDER BY created_on, ingest_id LIMIT 10000"
        )))
        .bind(user_id)
        .bind(queue)
        .fetch_all(&self.reader)
        .await
        .map_err(Error::store)?;
        rows.iter().map(ingest_from_row).collect()
    }

    async fn mark_ingest_notified(&self, ingest_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE al_ingests SET notified_on = ?2 WHERE ingest_id = ?1 AND notified_on IS NULL",
        )
        .bind(ingest_id)
        .bind(Timestamp::now().0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_apikey(&self, user_id: i64, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_on = ?3 \
             WHERE user_id = ?1 AND kind = 'apikey' AND name = ?2 AND revoked_on IS NULL",
        )
        .bind(user_id)
        .bind(name)
        .bind(Timestamp::now().0)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_al_submission(&self, sid: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(Error::store)?;
        sqlx::query("DELETE FROM al_ingests WHERE sid = ?1")
            .bind(sid)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        let done = sqlx::query("DELETE FROM al_submissions WHERE sid = ?1")
            .bind(sid)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        tx.commit().await.map_err(Error::store)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn submissions_search_and_ingest_queue() {
        let repo = super::SqliteRepo::open_in_memory().await.unwrap();
        crate::testsuite::run_al_search(&repo, &repo).await;
    }

    #[tokio::test]
    async fn result_and_file_indexes() {
        let repo = super::SqliteRepo::open_in_memory().await.unwrap();
        crate::testsuite::run_al_index(&repo, &repo).await;
    }

    #[tokio::test]
    async fn quota_counters() {
        let repo = super::SqliteRepo::open_in_memory().await.unwrap();
        crate::testsuite::run_al_quota(&repo, &repo).await;
    }
}
