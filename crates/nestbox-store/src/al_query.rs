//! SQL of the Assemblyline result and file indexes (`search/result/`, `search/file/`),
//! shared by both engines: the statements are the same text in SQLite and PostgreSQL but
//! for the placeholder style (`?N` / `$N`), which [`Ph`] supplies.
//!
//! Values are compared lower-cased. Result values are stored lower-cased (see
//! `nestbox_core::al_result`); file columns are lower-cased in the statement. A field the
//! index does not know matches nothing, as a query on a missing field does in
//! Elasticsearch, and its negation matches everything.

use nestbox_core::assemblyline::{AlMatch, AlQuery, AlTerm};

/// Query values longer than this match nothing: no indexed value is this long.
const MAX_VALUE_LEN: usize = 1024;

/// The placeholder style of an engine.
#[derive(Clone, Copy)]
pub(crate) enum Ph {
    /// `?1`, `?2`, …
    Sqlite,
    /// `$1`, `$2`, …
    Pg,
}

/// A statement under construction: its text and its string parameters, in order.
pub(crate) struct Stmt {
    ph: Ph,
    /// The bound values.
    pub(crate) binds: Vec<String>,
}

impl Stmt {
    pub(crate) fn new(ph: Ph) -> Self {
        Stmt {
            ph,
            binds: Vec::new(),
        }
    }

    /// Binds `v` and returns its placeholder.
    pub(crate) fn bind(&mut self, v: String) -> String {
        self.binds.push(v);
        self.next_placeholder(0)
    }

    /// The placeholder `extra` positions after the last bound value (for the integer
    /// parameters the caller binds after the strings).
    pub(crate) fn next_placeholder(&self, extra: usize) -> String {
        let n = self.binds.len() + extra;
        match self.ph {
            Ph::Sqlite => format!("?{n}"),
            Ph::Pg => format!("${n}"),
        }
    }

    /// `expr` compared with a matcher; `expr` must be lower-case text, never NULL.
    fn compare(&mut self, expr: &str, m: &AlMatch) -> String {
        if let AlMatch::Exact(v) | AlMatch::Prefix(v) | AlMatch::Suffix(v) | AlMatch::Contains(v) =
            m
            && v.len() > MAX_VALUE_LEN
        {
            // Longer than any indexed value (and SQLite refuses LIKE patterns this long).
            return "1 = 0".to_owned();
        }
        let like = |s: &str| {
            s.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        match m {
            AlMatch::Present => format!("{expr} <> ''"),
            AlMatch::Exact(v) => format!("{expr} = {}", self.bind(v.to_lowercase())),
            AlMatch::Prefix(v) => {
                let p = self.bind(format!("{}%", like(v)));
                format!("{expr} LIKE {p} ESCAPE '\\'")
            }
            AlMatch::Suffix(v) => {
                let p = self.bind(format!("%{}", like(v)));
                format!("{expr} LIKE {p} ESCAPE '\\'")
            }
            AlMatch::Contains(v) => {
                let p = self.bind(format!("%{}%", like(v)));
                format!("{expr} LIKE {p} ESCAPE '\\'")
            }
        }
    }

    /// The WHERE clause of a query, one SQL text per term.
    fn clause(
        &mut self,
        q: &AlQuery,
        mut term: impl FnMut(&mut Self, &AlTerm) -> String,
    ) -> String {
        if q.groups.is_empty() {
            return "1 = 1".to_owned();
        }
        let groups: Vec<String> = q
            .groups
            .iter()
            .map(|g| {
                if g.is_empty() {
                    return "1 = 1".to_owned();
                }
                let terms: Vec<String> = g
                    .iter()
                    .map(|t| {
                        let sql = term(self, t);
                        if t.negate {
                            format!("NOT ({sql})")
                        } else {
                            format!("({sql})")
                        }
                    })
                    .collect();
                terms.join(" AND ")
            })
            .collect();
        format!("(({}))", groups.join(") OR ("))
    }

    /// The WHERE clause of a result query over `al_results r`.
    pub(crate) fn result_clause(&mut self, q: &AlQuery) -> String {
        self.clause(q, |s, t| match (&t.field, &t.matcher) {
            (None, AlMatch::Present) => "1 = 1".to_owned(),
            (Some(f), AlMatch::Present) => {
                let p = s.bind(f.clone());
                format!("r.key IN (SELECT f.key FROM al_result_fields f WHERE f.field = {p})")
            }
            (Some(f), m) => {
                let p = s.bind(f.clone());
                let cmp = s.compare("f.value", m);
                format!(
                    "r.key IN (SELECT f.key FROM al_result_fields f WHERE f.field = {p} AND {cmp})"
                )
            }
            (None, m) => {
                let cmp = s.compare("f.value", m);
                format!("r.key IN (SELECT f.key FROM al_result_fields f WHERE {cmp})")
            }
        })
    }

    /// The WHERE clause of a file query over `al_files a JOIN samples s`.
    pub(crate) fn file_clause(&mut self, q: &AlQuery) -> String {
        self.clause(q, |s, t| match (&t.field, &t.matcher) {
            (None, AlMatch::Present) => "1 = 1".to_owned(),
            (Some(f), m) => match file_column(f) {
                Some(expr) => s.compare(expr, m),
                None => "1 = 0".to_owned(),
            },
            // Bare words: Assemblyline's `__text__` of a file (hashes and type).
            (None, m) => {
                let parts: Vec<String> = FILE_TEXT
                    .iter()
                    .map(|f| s.compare(file_column(f).unwrap_or("''"), m))
                    .collect();
                parts.join(" OR ")
            }
        })
    }
}

/// The fields of a file record a query can name, as lower-case, non-NULL SQL text.
fn file_column(field: &str) -> Option<&'static str> {
    Some(match field {
        "sha256" => "lower(a.sha256)",
        "sha1" => "lower(s.sha1)",
        "md5" => "lower(s.md5)",
        "ssdeep" => "lower(COALESCE(s.ssdeep, ''))",
        "tlsh" => "lower(COALESCE(s.tlsh, ''))",
        "size" => "CAST(s.file_size AS TEXT)",
        "type" => "lower(a.file_type)",
        "magic" => "lower(s.file_type)",
        "mime" => "lower(s.mime)",
        "classification" => "'tlp:c'",
        "seen.count" => "CAST(a.seen_count AS TEXT)",
        _ => return None,
    })
}

/// The fields a bare word searches in a file record (`copyto="__text__"` upstream).
const FILE_TEXT: &[&str] = &["sha256", "sha1", "md5", "type"];

/// The columns of a result row.
pub(crate) const RESULT_COLUMNS: &str = "SELECT r.key, r.task_id, r.sha256, r.service, r.score, r.created, r.file_type, r.size \
     FROM al_results r";

/// The columns of a file row.
pub(crate) const FILE_COLUMNS: &str = "SELECT a.sha256, s.sha1, s.md5, s.ssdeep, s.tlsh, \
     s.file_size, a.file_type, s.file_type AS magic, s.mime, a.seen_count, a.seen_first, \
     a.seen_last FROM al_files a JOIN samples s ON s.sha256 = a.sha256";
