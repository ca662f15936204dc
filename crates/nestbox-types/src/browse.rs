//! Browsing tasks: the keyset-paged, searchable task list the web UI shows, and the
//! per-report index rows (score, verdict, signature count, search terms) that make it cheap.
//!
//! The report itself is a blob; these few columns are copied out of it when it is written,
//! so a page of the queue never opens a report.

use serde::{Deserialize, Serialize};

use crate::{Category, Task, TaskId, TaskStatus, Timestamp};

/// What a report contributes to the task list: its verdict figures and its search terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportIndex {
    /// Verdict figures.
    pub summary: ReportSummary,
    /// Lower-cased exact-match search terms: hashes, file names, URLs, domains, IPs,
    /// signature names.
    pub terms: Vec<String>,
    /// Typed values for CAPE's `tasks/extendedsearch` (option name → value as CAPE's
    /// Mongo query compares it), see `nestbox_core::report_fields`.
    #[serde(default)]
    pub fields: Vec<ReportField>,
    /// The Assemblyline Results derived from the report, for `search/result/` (see
    /// `nestbox_core::al_result`).
    #[serde(default)]
    pub al_results: Vec<AlResultEntry>,
}

/// One Assemblyline Result of a report, as the result index stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlResultEntry {
    /// The result key, `<sha256>.<service>.v<version>.c<conf>`.
    pub key: String,
    /// SHA-256 of the file the Result is about.
    pub sha256: String,
    /// `response.service_name`.
    pub service: String,
    /// `result.score`.
    pub score: i64,
    /// `created`.
    pub created: Timestamp,
    /// The Assemblyline file type (`type`).
    pub file_type: String,
    /// `size`.
    pub size: i64,
    /// Searchable `(field, lower-cased value)` pairs under Assemblyline's field names.
    pub fields: Vec<(String, String)>,
}

/// One searchable value of a report under one CAPE search option (`domain`, `signame`, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReportField {
    /// The `tasks/extendedsearch` option.
    pub field: String,
    /// The value, lower-cased for the options CAPE normalises.
    pub value: String,
}

/// The verdict figures of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// CAPE's 0–10 `malscore`.
    pub score: f64,
    /// CAPE's verdict string (`Malicious`, `Suspicious`, `Clean`, `Undetected`).
    pub malstatus: String,
    /// Number of signature hits.
    pub signatures: i64,
    /// Detected family, if any.
    pub family: Option<String>,
}

/// A page of the task list, newest first, after an optional keyset cursor.
///
/// Paging is by `id < before` rather than an offset, so page 10 000 costs what page 1 costs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskPageQuery {
    /// Only tasks with an id below this (the last id of the previous page).
    pub before: Option<TaskId>,
    /// Page size.
    pub limit: i64,
    /// Exact status.
    pub status: Option<TaskStatus>,
    /// Exact category.
    pub category: Option<Category>,
    /// Only reported tasks with at least this score.
    pub min_score: Option<f64>,
    /// Added at or after this time.
    pub added_from: Option<Timestamp>,
    /// Added strictly before this time.
    pub added_until: Option<Timestamp>,
    /// An exact search term (lower-cased): a sample hash (md5/sha1/sha256), or any term
    /// of a report index (file name, URL, domain, IP, signature name, dropped file hash).
    pub term: Option<String>,
    /// Only the tasks spawned from this one (`parent_id`).
    pub parent: Option<TaskId>,
}

/// One row of the task list: the task and, once it is reported, its verdict figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task.
    pub task: Task,
    /// The report's figures; `None` until a report was indexed.
    pub report: Option<ReportSummary>,
}
