//! The Assemblyline view's own records: what a `sid` names and the ingest notification
//! queues.
//!
//! # Model
//!
//! An Assemblyline `sid` names a core Submission (the `submissions` row) which owns the
//! task that analyses the submitted file: the same task the Cuckoo and CAPE dialects
//! show. [`AlSubmission`] adds what only Assemblyline has: the base62 sid, the submitted
//! name, metadata, the merged SubmissionParams, and the scan key used for ingest dedup.
//! Results are never stored here: they are derived from the task's canonical report.
//!
//! An ingest ([`AlIngest`]) points at a sid (a new one, or an earlier one with the same
//! scan key) and, when it names a notification queue, waits there until its task
//! finishes; popping a message marks it notified (compare-and-set, so two readers never
//! get the same message). Queues are per user: the user id is part of the key, which is
//! Assemblyline's `nq-<HEX(uname)>-<name>` namespacing.

use async_trait::async_trait;
use nestbox_types::{TaskId, Timestamp};

use crate::Result;

/// One Assemblyline submission (a view record over a core Submission and its task).
#[derive(Debug, Clone, PartialEq)]
pub struct AlSubmission {
    /// Base62 UUID4, about 22 characters.
    pub sid: String,
    /// The core `submissions` row.
    pub submission_id: i64,
    /// The task analysing the file.
    pub task_id: TaskId,
    /// The submitter (a `users` row).
    pub user_id: i64,
    /// File name as submitted.
    pub name: String,
    /// SHA-256 of the submitted file.
    pub sha256: String,
    /// Its size in bytes.
    pub size: i64,
    /// Flat `{str: scalar}` metadata (JSON object).
    pub metadata: serde_json::Value,
    /// The merged SubmissionParams (JSON object).
    pub params: serde_json::Value,
    /// sha256 + hashed params; ingest dedup key.
    pub scan_key: String,
    /// When it was submitted.
    pub created_on: Timestamp,
}

/// One ingest request and its notification state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlIngest {
    /// The id `/ingest/` returned.
    pub ingest_id: String,
    /// Who ingested.
    pub user_id: i64,
    /// The submission it resolved to.
    pub sid: String,
    /// Notification queue name; empty = none.
    pub queue: String,
    /// Minimum score for a message; `None` = always notify.
    pub threshold: Option<i64>,
    /// `generate_alert` as requested (alerts are not implemented; kept for the record).
    pub generate_alert: bool,
    /// When it was ingested.
    pub created_on: Timestamp,
    /// When its message was popped (or dropped by the threshold).
    pub notified_on: Option<Timestamp>,
}

/// A column of a submission record a search can compare in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlColumn {
    /// `sid`.
    Sid,
    /// `files.name`.
    Name,
    /// `files.sha256`.
    Sha256,
    /// A top-level scalar of the SubmissionParams (`params.<key>`).
    Param(String),
    /// A (flattened) metadata key (`metadata.<key>`).
    Metadata(String),
}

/// How a value is compared: case-insensitively, as the search's Lucene subset does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlMatch {
    /// The field exists (`field:*`).
    Present,
    /// Equal (lower-cased).
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Contains.
    Contains(String),
}

/// One condition: the column matches (or, negated, does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlCond {
    /// Compared column.
    pub column: AlColumn,
    /// The comparison.
    pub matcher: AlMatch,
    /// NOT.
    pub negate: bool,
}

/// A submission search: an OR of ANDs of conditions; no groups = everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlFilter {
    /// The OR-ed groups.
    pub groups: Vec<Vec<AlCond>>,
}

/// One term of a `search/result/` or `search/file/` query: a field (or, with `None`, any
/// searchable field, Assemblyline's `__text__`) compared with a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlTerm {
    /// The Assemblyline field name (`response.service_name`, `sha256`, …).
    pub field: Option<String>,
    /// The comparison; values are compared lower-cased.
    pub matcher: AlMatch,
    /// NOT.
    pub negate: bool,
}

/// A query on one of the Assemblyline indexes: an OR of ANDs of terms; no groups = every
/// record. A field the index does not have matches nothing (as in Elasticsearch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlQuery {
    /// The OR-ed groups.
    pub groups: Vec<Vec<AlTerm>>,
}

/// One row of the result index (see [`crate::al_result`]): the newest analysis of a file
/// by one service.
#[derive(Debug, Clone, PartialEq)]
pub struct AlResultRow {
    /// The result key.
    pub key: String,
    /// The task whose report the Result is derived from.
    pub task_id: TaskId,
    /// SHA-256 of the file.
    pub sha256: String,
    /// `response.service_name`.
    pub service: String,
    /// `result.score`.
    pub score: i64,
    /// `created`.
    pub created: Timestamp,
    /// The Assemblyline file type.
    pub file_type: String,
    /// `size`.
    pub size: i64,
}

/// One file of the file index: a file submitted through the Assemblyline API, with its
/// sample's hashes and how often it was submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct AlFileRow {
    /// SHA-256.
    pub sha256: String,
    /// SHA-1.
    pub sha1: String,
    /// MD5.
    pub md5: String,
    /// ssdeep.
    pub ssdeep: Option<String>,
    /// TLSH.
    pub tlsh: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// The Assemblyline file type (`executable/windows/pe32`, …).
    pub file_type: String,
    /// libmagic's description.
    pub magic: String,
    /// MIME type.
    pub mime: String,
    /// `seen.count`: submissions of the file.
    pub seen_count: i64,
    /// `seen.first`.
    pub seen_first: Timestamp,
    /// `seen.last`.
    pub seen_last: Timestamp,
}

/// Storage of the Assemblyline records.
#[async_trait]
pub trait AlRepo: Send + Sync {
    /// Results matching `query`, newest first, one page (`search/result/`). The index is
    /// written with the report index ([`crate::ports::TaskRepo::index_report`]).
    async fn search_al_results(
        &self,
        query: &AlQuery,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlResultRow>>;
    /// How many results match `query`.
    async fn count_al_results(&self, query: &AlQuery) -> Result<i64>;
    /// One result of the index by key.
    async fn al_result(&self, key: &str) -> Result<Option<AlResultRow>>;
    /// Records that a file was submitted at `seen` (the file index of `search/file/`);
    /// `file_type` is its Assemblyline type. The sample must exist.
    async fn note_al_file(&self, sha256: &str, file_type: &str, seen: Timestamp) -> Result<()>;
    /// Files matching `query`, most recently seen first, one page (`search/file/`).
    async fn search_al_files(
        &self,
        query: &AlQuery,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlFileRow>>;
    /// How many files match `query`.
    async fn count_al_files(&self, query: &AlQuery) -> Result<i64>;
    /// Adds `delta` to a quota counter `(user, kind, period)` unless the result would pass
    /// `max`, atomically for every node sharing the store: the new value, or `None` when
    /// refused. A counter past its expiry counts as 0 and starts a new window that ends at
    /// `expires_on` (a live window keeps its end). The value never goes below 0.
    async fn bump_quota(
        &self,
        user_id: i64,
        kind: &str,
        period: i64,
        delta: i64,
        max: i64,
        expires_on: Timestamp,
    ) -> Result<Option<i64>>;
    /// A quota counter (0 when missing or expired).
    async fn quota_counter(&self, user_id: i64, kind: &str, period: i64) -> Result<i64>;
    /// The user's submissions whose task is not finished (pending, running, or completed
    /// but not reported yet): those made by ingest (`is_async`) or the others.
    async fn unfinished_al_submissions(&self, user_id: i64, is_async: bool) -> Result<i64>;
    /// Records a submission; [`crate::Error::Invalid`] if the sid exists.
    async fn add_al_submission(&self, s: &AlSubmission) -> Result<()>;
    /// A submission by sid.
    async fn al_submission(&self, sid: &str) -> Result<Option<AlSubmission>>;
    /// The newest submission with this scan key.
    async fn al_submission_by_scan_key(&self, scan_key: &str) -> Result<Option<AlSubmission>>;
    /// Submissions, newest first, of one user (or everyone's with `None`).
    async fn al_submissions(
        &self,
        user_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlSubmission>>;
    /// Submissions matching `filter`, newest first, one page (search/submission/).
    async fn search_al_submissions(
        &self,
        filter: &AlFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlSubmission>>;
    /// How many submissions match `filter`.
    async fn count_al_submissions(&self, filter: &AlFilter) -> Result<i64>;
    /// Records an ingest.
    async fn add_al_ingest(&self, i: &AlIngest) -> Result<()>;
    /// A user's ingests on a queue that were not notified yet, oldest first.
    async fn pending_ingests(&self, user_id: i64, queue: &str) -> Result<Vec<AlIngest>>;
    /// Marks an ingest notified; `false` if it already was (someone else popped it).
    async fn mark_ingest_notified(&self, ingest_id: &str) -> Result<bool>;
    /// Revokes a user's live API key by name; `false` if there was none.
    async fn revoke_apikey(&self, user_id: i64, name: &str) -> Result<bool>;
    /// Deletes a submission record and its ingests; `false` if there was none. The task is
    /// the caller's to delete.
    async fn delete_al_submission(&self, sid: &str) -> Result<bool>;
}
