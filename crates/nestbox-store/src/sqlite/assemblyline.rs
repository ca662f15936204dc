//! [`AlRepo`] on SQLite: the `al_submissions` and `al_ingests` tables of
//! `migrations/sqlite/0003_assemblyline.sql`.

use async_trait::async_trait;
use nestbox_core::assemblyline::{
    AlColumn, AlCond, AlFilter, AlIngest, AlMatch, AlRepo, AlSubmission,
};
use nestbox_core::{Error, Result};
use nestbox_types::{TaskId, Timestamp};
use sqlx::sqlite::SqliteRow;

use super::{SqliteRepo, col, flag, opt_ts, ts};

const SUB_COLUMNS: &str = "SELECT sid, submission_id, task_id, user_id, name, sha256, size, \
     metadata, params, scan_key, created_on FROM al_submissions";
const INGEST_COLUMNS: &str = "SELECT ingest_id, user_id, sid, queue, threshold, \
     generate_alert, created_on, notified_on FROM al_ingests";

fn json_obj(row: &SqliteRow, name: &str) -> Result<serde_json::Value> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(Error::store)
}

fn sub_from_row(row: &SqliteRow) -> Result<AlSubmission> {
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

fn ingest_from_row(row: &SqliteRow) -> Result<AlIngest> {
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
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn submissions_and_ingest_queue() {
        let repo = SqliteRepo::open_in_memory().await.unwrap();
        use nestbox_core::ports::TaskRepo;
        let sub_id = repo
            .add_submission(&nestbox_types::NewSubmission {
                submit_type: "assemblyline".into(),
                data: json!({}),
            })
            .await
            .unwrap();
        let s = AlSubmission {
            sid: "abc".into(),
            submission_id: sub_id,
            task_id: TaskId(1),
            user_id: 7,
            name: "n".into(),
            sha256: "00".into(),
            size: 1,
            metadata: json!({"k": "v"}),
            params: json!({}),
            scan_key: "sk".into(),
            created_on: Timestamp::now(),
        };
        repo.add_al_submission(&s).await.unwrap();
        assert!(repo.add_al_submission(&s).await.is_err());
        assert_eq!(repo.al_submission("abc").await.unwrap().unwrap(), s);
        assert_eq!(
            repo.al_submission_by_scan_key("sk").await.unwrap().unwrap(),
            s
        );
        assert_eq!(repo.al_submissions(Some(7), 10, 0).await.unwrap().len(), 1);
        assert!(
            repo.al_submissions(Some(8), 10, 0)
                .await
                .unwrap()
                .is_empty()
        );
        let i = AlIngest {
            ingest_id: "i1".into(),
            user_id: 7,
            sid: "abc".into(),
            queue: "q".into(),
            threshold: None,
            generate_alert: false,
            created_on: Timestamp::now(),
            notified_on: None,
        };
        repo.add_al_ingest(&i).await.unwrap();
        assert_eq!(repo.pending_ingests(7, "q").await.unwrap(), vec![i]);
        assert!(repo.pending_ingests(8, "q").await.unwrap().is_empty());
        assert!(repo.mark_ingest_notified("i1").await.unwrap());
        assert!(!repo.mark_ingest_notified("i1").await.unwrap());
        assert!(repo.pending_ingests(7, "q").await.unwrap().is_empty());
        // Search: columns, JSON keys (strings, numbers, booleans), LIKE escapes, NOT, OR.
        let mut t = s.clone();
        t.sid = "def".into();
        t.name = "100%_evil.exe".into();
        t.metadata = json!({"k": "V2", "n": 7, "b": true});
        t.params = json!({"description": "Inspection of file: x", "submitter": "Admin"});
        t.created_on = Timestamp(s.created_on.0 + 1);
        repo.add_al_submission(&t).await.unwrap();
        let cond = |column: AlColumn, matcher: AlMatch| AlCond {
            column,
            matcher,
            negate: false,
        };
        let find = |groups: Vec<Vec<AlCond>>| {
            let f = AlFilter { groups };
            let repo = &repo;
            async move {
                let n = repo.count_al_submissions(&f).await.unwrap();
                let sids: Vec<String> = repo
                    .search_al_submissions(&f, 10, 0)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| s.sid)
                    .collect();
                assert_eq!(n as usize, sids.len());
                sids
            }
        };
        assert_eq!(find(vec![]).await, ["def", "abc"]);
        let meta = |k: &str, m: AlMatch| cond(AlColumn::Metadata(k.into()), m);
        assert_eq!(
            find(vec![vec![meta("k", AlMatch::Exact("v2".into()))]]).await,
            ["def"]
        );
        assert_eq!(
            find(vec![vec![meta("n", AlMatch::Exact("7".into()))]]).await,
            ["def"]
        );
        assert_eq!(
            find(vec![vec![meta("b", AlMatch::Exact("true".into()))]]).await,
            ["def"]
        );
        assert_eq!(
            find(vec![vec![meta("k", AlMatch::Present)]]).await,
            ["def", "abc"]
        );
        assert_eq!(
            find(vec![vec![meta("zz", AlMatch::Present)]]).await,
            Vec::<String>::new()
        );
        let mut not_v = meta("k", AlMatch::Exact("v2".into()));
        not_v.negate = true;
        assert_eq!(find(vec![vec![not_v]]).await, ["abc"]);
        // `%` and `_` are literal in patterns.
        assert_eq!(
            find(vec![vec![cond(
                AlColumn::Name,
                AlMatch::Prefix("100%_".into())
            )]])
            .await,
            ["def"]
        );
        assert_eq!(
            find(vec![vec![cond(
                AlColumn::Name,
                AlMatch::Prefix("1%".into())
            )]])
            .await,
            Vec::<String>::new()
        );
        assert_eq!(
            find(vec![
                vec![cond(AlColumn::Sid, AlMatch::Exact("ABC".into()))],
                vec![cond(
                    AlColumn::Param("submitter".into()),
                    AlMatch::Contains("dmi".into())
                )],
            ])
            .await,
            ["def", "abc"]
        );
        assert_eq!(
            find(vec![vec![cond(
                AlColumn::Param("x\"y".into()),
                AlMatch::Present
            )]])
            .await,
            Vec::<String>::new()
        );
        assert!(repo.delete_al_submission("def").await.unwrap());
        assert!(repo.delete_al_submission("abc").await.unwrap());
        assert!(repo.al_submission("abc").await.unwrap().is_none());
        assert!(!repo.delete_al_submission("abc").await.unwrap());
    }
}
