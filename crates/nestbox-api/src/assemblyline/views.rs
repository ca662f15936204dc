//! Submission, file, result, service and search views (spec §3, §5): pure functions of
//! the `al_submissions` record, its task and the task's stored canonical report.
//!
//! nestbox's analyzers appear as Assemblyline services; their Results are derived from
//! the report every time (never stored twice) by `nestbox_core::al_result`, which also
//! gives the worker the result index that `search/result/` reads.
//!
//! Task errors become Error records of `Sandbox` (code 1, exception). Assemblyline
//! states: `completed` once the task is `reported` or failed (a failed task is a finished
//! submission with errors, so clients polling `is_completed` stop), `submitted` before.

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nestbox_analyzers::cart;
use nestbox_core::assemblyline::{
    AlCond, AlFileRow, AlFilter, AlQuery, AlResultRow, AlSubmission, AlTerm,
};
use nestbox_types::{Sample, Task, TaskStatus};
use serde_json::{Map, Value, json};

use super::{
    AlError, AlState, Caller, Result, St, envelope_body, envelope_response, iso, ok, qbool,
};
use nestbox_core::al_result::C12N;
pub use nestbox_core::al_result::{Results, SERVICES, al_type, derive, max_score};

const API_MAX_SIZE: usize = 1 << 20;

/// A submission with its task and report.
pub struct Loaded {
    /// The record.
    pub rec: AlSubmission,
    /// Its task (gone if deleted through another dialect).
    pub task: Option<Task>,
    /// The canonical report, once written.
    pub report: Option<Value>,
}

impl Loaded {
    /// Whether the analysis is over (reported or failed).
    pub fn finished(&self) -> bool {
        match &self.task {
            None => true,
            Some(t) => matches!(
                t.status,
                TaskStatus::Reported
                    | TaskStatus::FailedAnalysis
                    | TaskStatus::FailedProcessing
                    | TaskStatus::FailedReporting
                    | TaskStatus::Recovered
            ),
        }
    }

    fn state(&self) -> &'static str {
        if self.finished() {
            "completed"
        } else {
            "submitted"
        }
    }
}

async fn report_of(st: &AlState, task: &Task) -> Option<Value> {
    if task.status != TaskStatus::Reported {
        return None;
    }
    let bytes = st
        .ctx
        .core
        .blobs
        .get(&nestbox_core::keys::report_json(task.id))
        .await
        .ok()??;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(task_id = task.id.0, error = %e, "assemblyline: unreadable report.json");
            None
        }
    }
}

/// Loads the task and report of a record.
pub async fn load_record(st: &AlState, rec: AlSubmission) -> Result<Loaded> {
    let task = st.ctx.core.repo.task(rec.task_id).await?;
    let report = match &task {
        Some(t) => report_of(st, t).await,
        None => None,
    };
    Ok(Loaded { rec, task, report })
}

pub(super) async fn load(st: &AlState, sid: &str) -> Result<Loaded> {
    let rec = if sid.len() <= 64 {
        st.ctx.al_repo.al_submission(sid).await?
    } else {
        None
    };
    let rec =
        rec.ok_or_else(|| AlError::not_found(format!("Submission ID {sid} does not exists.")))?;
    load_record(st, rec).await
}

fn file_entry(l: &Loaded) -> Value {
    json!({"name": l.rec.name, "sha256": l.rec.sha256, "size": l.rec.size})
}

/// The Submission record (§5.1); `results`/`errors` as key lists.
pub fn submission_record(l: &Loaded, r: Option<&Results>) -> Value {
    let empty = Results::default();
    let r = r.unwrap_or(&empty);
    let completed = l.finished().then(|| {
        l.task
            .as_ref()
            .and_then(|t| t.completed_on)
            .unwrap_or(l.rec.created_on)
    });
    json!({
        "sid": l.rec.sid,
        "state": l.state(),
        "classification": C12N,
        "files": [file_entry(l)],
        "file_count": 1,
        "error_count": r.errors.len(),
        "results": r.results.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "max_score": max_score(r),
        "params": l.rec.params,
        "metadata": l.rec.metadata,
        "times": {"submitted": iso(l.rec.created_on), "completed": completed.map(iso)},
        "expiry_ts": null,
        "verdict": {"malicious": [], "non_malicious": []},
        "archived": false, "archive_ts": null, "from_archive": false, "to_be_deleted": false,
        "scan_key": l.rec.scan_key,
        "tracing_events": [],
        "task_id": l.task.as_ref().map(|t| t.id.0),
    })
}

pub(super) fn results_for(l: &Loaded) -> Results {
    derive(&l.rec.sha256, l.task.as_ref(), l.report.as_ref())
}

/// `GET /api/`.
pub async fn versions() -> Response {
    ok(json!(["v4"]))
}

/// Every route: (path, methods, function, roles, description).
const ROUTES: &[(&str, &str, &str, &str, &str)] = &[
    ("/api/", "GET", "versions", "", "List the API versions"),
    ("/api/v4/", "GET", "site_map", "", "List every API route"),
    (
        "/api/v4/apikey/add/",
        "PUT",
        "apikey_add",
        "apikey_access",
        "Add an API key",
    ),
    (
        "/api/v4/apikey/list/",
        "GET",
        "apikey_list",
        "",
        "List the caller's API keys",
    ),
    (
        "/api/v4/apikey/<key_id>/",
        "GET,DELETE",
        "apikey",
        "",
        "Show or delete an API key",
    ),
    (
        "/api/v4/auth/login/",
        "GET,POST",
        "login",
        "",
        "Log in with an API key or a password",
    ),
    ("/api/v4/auth/logout/", "GET", "logout", "", "Log out"),
    (
        "/api/v4/file/ascii/<sha256>/",
        "GET",
        "get_file_ascii",
        "file_detail",
        "File content as ASCII",
    ),
    (
        "/api/v4/file/children/<sha256>/",
        "GET",
        "get_file_children",
        "submission_view",
        "Extracted files",
    ),
    (
        "/api/v4/file/download/<sha256>/",
        "GET",
        "download_file",
        "file_download",
        "Download a file (CaRT by default)",
    ),
    (
        "/api/v4/file/hex/<sha256>/",
        "GET",
        "get_file_hex",
        "file_detail",
        "Hexdump of a file",
    ),
    (
        "/api/v4/file/info/<sha256>/",
        "GET",
        "get_file_information",
        "submission_view",
        "File record",
    ),
    (
        "/api/v4/file/result/<sha256>/",
        "GET",
        "get_file_results",
        "submission_view",
        "Every result of a file",
    ),
    (
        "/api/v4/file/result/<sha256>/<service>/",
        "GET",
        "get_file_results_for_service",
        "submission_view",
        "Results of one service",
    ),
    (
        "/api/v4/file/score/<sha256>/",
        "GET",
        "get_file_score",
        "submission_view",
        "File score",
    ),
    (
        "/api/v4/file/strings/<sha256>/",
        "GET",
        "get_file_strings",
        "file_detail",
        "Strings of a file",
    ),
    (
        "/api/v4/help/classification_definition/",
        "GET",
        "get_classification_definition",
        "",
        "Classification engine",
    ),
    (
        "/api/v4/ingest/",
        "POST",
        "ingest_single_file",
        "submission_create",
        "Ingest a file",
    ),
    (
        "/api/v4/ingest/get_message/<nq>/",
        "GET",
        "get_message",
        "submission_create",
        "Pop one notification",
    ),
    (
        "/api/v4/ingest/get_message_list/<nq>/",
        "GET",
        "get_all_messages",
        "submission_create",
        "Pop notifications",
    ),
    (
        "/api/v4/result/<key>/",
        "GET",
        "get_service_result",
        "submission_view",
        "A result record",
    ),
    (
        "/api/v4/result/error/<key>/",
        "GET",
        "get_service_error",
        "submission_view",
        "An error record",
    ),
    (
        "/api/v4/result/multiple_keys/",
        "POST",
        "get_multiple_service_results",
        "submission_view",
        "Several result and error records at once",
    ),
    (
        "/api/v4/live/setup_watch_queue/<sid>/",
        "GET",
        "setup_watch_queue",
        "submission_view",
        "Open a watch queue on a submission",
    ),
    (
        "/api/v4/live/get_message/<wq_id>/",
        "GET",
        "get_message",
        "submission_view",
        "Pop one message of a watch queue",
    ),
    (
        "/api/v4/live/get_message_list/<wq_id>/",
        "GET",
        "get_messages",
        "submission_view",
        "Pop every message of a watch queue",
    ),
    (
        "/api/v4/live/outstanding_services/<sid>/",
        "GET",
        "outstanding_services",
        "submission_view",
        "Services still to run on a submission",
    ),
    (
        "/api/v4/search/<index>/",
        "GET,POST",
        "search",
        "submission_view",
        "Search submissions or files",
    ),
    (
        "/api/v4/service/all/",
        "GET",
        "list_all_services",
        "",
        "The services (nestbox analyzers)",
    ),
    (
        "/api/v4/submission/<sid>/",
        "GET",
        "get_submission",
        "submission_view",
        "A submission record",
    ),
    (
        "/api/v4/submission/<sid>/",
        "DELETE",
        "delete_submission",
        "submission_delete",
        "Delete a submission and its analysis",
    ),
    (
        "/api/v4/submission/<sid>/file/<sha256>/",
        "GET,POST",
        "get_file_submission_results",
        "submission_view",
        "Results of a file in a submission",
    ),
    (
        "/api/v4/submission/full/<sid>/",
        "GET",
        "get_full_results",
        "submission_view",
        "A submission with its results",
    ),
    (
        "/api/v4/submission/is_completed/<sid>/",
        "GET",
        "is_submission_completed",
        "submission_view",
        "Whether a submission is completed",
    ),
    (
        "/api/v4/submission/list/user/<user>/",
        "GET",
        "list_submissions_for_user",
        "submission_view",
        "A user's submissions",
    ),
    (
        "/api/v4/submission/summary/<sid>/",
        "GET",
        "get_summary",
        "submission_view",
        "Tags and heuristics of a submission",
    ),
    (
        "/api/v4/submission/tree/<sid>/",
        "GET",
        "get_file_tree",
        "submission_view",
        "File tree of a submission",
    ),
    (
        "/api/v4/submit/",
        "POST",
        "submit",
        "submission_create",
        "Submit a file",
    ),
    (
        "/api/v4/user/quotas/<user>/",
        "GET",
        "get_user_quotas",
        "",
        "Quotas (none are enforced)",
    ),
    (
        "/api/v4/user/whoami/",
        "GET",
        "who_am_i",
        "",
        "The logged-in user",
    ),
];

/// `GET /api/v4/` and `/api/v4/help/api/`: the self-documentation.
pub async fn site_map() -> Response {
    let items: Vec<Value> = ROUTES
        .iter()
        .map(|(path, methods, func, role, desc)| {
            json!({
                "name": func.replace('_', " "), "path": path, "ui_only": false,
                "methods": methods.split(',').collect::<Vec<_>>(), "description": desc,
                "id": format!("api.v4.{func}"), "function": func, "protected": true,
                "require_role": if role.is_empty() { vec![] } else { vec![*role] },
                "complete": true,
            })
        })
        .collect();
    ok(Value::Array(items))
}

/// `GET /api/v4/help/classification_definition/`: classification is not enforced.
pub async fn classification_definition() -> Response {
    ok(json!({
        "enforce": false, "dynamic_groups": false,
        "levels": [{"lvl": 100, "name": "TLP:CLEAR", "short_name": "TLP:C", "aliases": [], "description": "", "css": {}}],
        "required": [], "groups": [], "subgroups": [],
        "restricted": C12N, "unrestricted": C12N,
    }))
}

/// `GET /api/v4/submission/<sid>/`.
pub async fn submission(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    // The record (the report behind it included) changes only when the store does, so
    // a client polling a submission is answered from the data-version response cache,
    // as Cuckoo's and CAPE's task views are; the caller does not change it.
    let body = crate::common::cache::cached(&st.ctx, format!("al:submission:{sid}"), || async {
        let l = load(&st, &sid).await?;
        let r = results_for(&l);
        let v = submission_record(&l, Some(&r));
        Ok::<_, AlError>(Some(envelope_body(StatusCode::OK, v, "").into()))
    })
    .await?;
    Ok(envelope_response(StatusCode::OK, body.unwrap_or_default()))
}

/// `GET /api/v4/submission/is_completed/<sid>/`.
pub async fn is_completed(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let l = load(&st, &sid).await?;
    Ok(ok(json!(l.finished())))
}

async fn file_record(st: &AlState, sample: &Sample) -> Result<Value> {
    let head = read_head(st, &sample.sha256, 64).await?.unwrap_or_default();
    let entropy = entropy_of(st, &sample.sha256).await?;
    let seen = st.ctx.core.repo.sample_task_ids(sample.id).await?.len();
    Ok(json!({
        "sha256": sample.sha256, "sha1": sample.sha1, "md5": sample.md5,
        "ssdeep": sample.ssdeep, "tlsh": sample.tlsh, "size": sample.file_size,
        "type": al_type(&sample.file_type, &sample.mime), "magic": sample.file_type,
        "mime": sample.mime, "entropy": entropy,
        "ascii": ascii_of(&head), "hex": hex::encode(&head),
        "classification": C12N,
        "seen": {"count": seen.max(1), "first": iso(sample.first_seen), "last": iso(sample.first_seen)},
        "labels": [], "label_categories": {"attribution": [], "technique": [], "info": []},
        "comments": [], "expiry_ts": null, "is_section_image": false, "is_supplementary": false,
        "uri_info": null, "archive_ts": null, "from_archive": false,
    }))
}

fn file_tree(l: &Loaded, score: i64, ftype: &str) -> Value {
    let mut tree = Map::new();
    tree.insert(
        l.rec.sha256.clone(),
        json!({"name": [l.rec.name], "type": ftype, "sha256": l.rec.sha256, "size": l.rec.size,
               "score": score, "truncated": false, "children": {}}),
    );
    Value::Object(tree)
}

/// `GET /api/v4/submission/full/<sid>/`.
pub async fn submission_full(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let l = load(&st, &sid).await?;
    let r = results_for(&l);
    let mut v = submission_record(&l, Some(&r));
    let score = max_score(&r);
    let sample = st.ctx.core.repo.sample_by_hash(&l.rec.sha256).await?;
    let mut infos = Map::new();
    let mut ftype = "unknown".to_owned();
    if let Some(s) = &sample {
        let rec = file_record(&st, s).await?;
        ftype = rec["type"].as_str().unwrap_or("unknown").to_owned();
        infos.insert(s.sha256.clone(), rec);
    }
    v["results"] = Value::Object(r.results.iter().cloned().collect());
    v["errors"] = Value::Object(r.errors.iter().cloned().collect());
    v["file_tree"] = file_tree(&l, score, &ftype);
    v["file_infos"] = Value::Object(infos);
    v["missing_result_keys"] = json!([]);
    v["missing_error_keys"] = json!([]);
    v["missing_file_keys"] = json!([]);
    Ok(ok(v))
}

fn all_tags(r: &Results) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (key, res) in &r.results {
        for s in res["result"]["sections"].as_array().into_iter().flatten() {
            for t in s["tags"].as_array().into_iter().flatten() {
                out.push((
                    t["type"].as_str().unwrap_or("").to_owned(),
                    t["value"].as_str().unwrap_or("").to_owned(),
                    key.clone(),
                ));
            }
        }
    }
    out
}

fn heuristics(r: &Results) -> (Value, Value, Value) {
    let mut by_level: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut sections: Map<String, Value> = Map::new();
    let mut names: Map<String, Value> = Map::new();
    for (_, res) in &r.results {
        for s in res["result"]["sections"].as_array().into_iter().flatten() {
            let h = &s["heuristic"];
            let Some(id) = h["heur_id"].as_str() else {
                continue;
            };
            let score = h["score"].as_i64().unwrap_or(0);
            let level = match score {
                1000.. => "malicious",
                300.. => "suspicious",
                0.. => "info",
                _ => "safe",
            };
            let name = h["name"].as_str().unwrap_or("");
            by_level.entry(level).or_default().push(json!([id, name]));
            if let Some(a) = sections
                .entry(id.to_owned())
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                a.push(s.clone());
            }
            if let Some(a) = names
                .entry(name.to_owned())
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                a.push(json!(id));
            }
        }
    }
    (
        json!(by_level),
        Value::Object(sections),
        Value::Object(names),
    )
}

/// `GET /api/v4/submission/summary/<sid>/`.
pub async fn submission_summary(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let l = load(&st, &sid).await?;
    let r = results_for(&l);
    let mut ioc: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ty, value, key) in all_tags(&r) {
        ioc.entry(ty.clone())
            .or_default()
            .push(json!([value, "info", false, C12N]));
        map.entry(l.rec.sha256.clone()).or_default().push(key);
    }
    let (h, hs, hn) = heuristics(&r);
    Ok(ok(json!({
        "map": map,
        "tags": {"behavior": {}, "attribution": {}, "ioc": ioc},
        "attack_matrix": {}, "heuristics": h, "classification": C12N,
        "filtered": false, "partial": false, "heuristic_sections": hs, "heuristic_name_map": hn,
    })))
}

/// `GET /api/v4/submission/tree/<sid>/`.
pub async fn submission_tree(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let l = load(&st, &sid).await?;
    let r = results_for(&l);
    let sample = st.ctx.core.repo.sample_by_hash(&l.rec.sha256).await?;
    let ftype = sample.map_or("unknown".to_owned(), |s| al_type(&s.file_type, &s.mime));
    Ok(ok(
        json!({"tree": file_tree(&l, max_score(&r), &ftype), "classification": C12N,
                 "filtered": false, "partial": false, "supplementary": {}}),
    ))
}

/// `GET /api/v4/submission/list/user/<user>/?offset=&rows=`.
pub async fn list_user(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(user): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let offset = q
        .get("offset")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    let rows = q
        .get("rows")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(0, 1000);
    let Some(u) = st.ctx.auth.repo().user_by_name(&user).await? else {
        return Err(AlError::not_found(format!("User {user} does not exists.")));
    };
    let recs = st
        .ctx
        .al_repo
        .al_submissions(Some(u.id), rows, offset)
        .await?;
    let mut items = Vec::new();
    for rec in recs {
        let l = load_record(&st, rec).await?;
        let r = results_for(&l);
        items.push(submission_record(&l, Some(&r)));
    }
    Ok(ok(
        json!({"items": items, "offset": offset, "rows": rows, "total": items.len()}),
    ))
}

fn tags_dict(r: &Results) -> Value {
    let mut tags: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (ty, value, _) in all_tags(r) {
        tags.entry(ty)
            .or_default()
            .push(json!([value, "info", false, C12N]));
    }
    json!(tags)
}

fn file_results_payload(file_info: Value, r: &Results) -> Value {
    let (h, _, _) = heuristics(r);
    json!({
        "classification": C12N,
        "file_info": file_info,
        "results": r.results.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "tags": tags_dict(r),
        "attack_matrix": {},
        "heuristics": h,
        "signatures": [],
        "metadata": {},
    })
}

/// `GET|POST /api/v4/submission/<sid>/file/<sha256>/`.
pub async fn submission_file(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path((sid, sha256)): Path<(String, String)>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let l = load(&st, &sid).await?;
    if l.rec.sha256 != sha256 {
        return Err(AlError::not_found(format!(
            "File {sha256} is not part of submission {sid}."
        )));
    }
    let sample = sample_for(&st, &sha256).await?;
    let info = file_record(&st, &sample).await?;
    let mut v = file_results_payload(info, &results_for(&l));
    v["metadata"] = l.rec.metadata.clone();
    Ok(ok(v))
}

fn not_found_file() -> AlError {
    AlError::not_found("The file was not found in the system.")
}

async fn sample_for(st: &AlState, sha256: &str) -> Result<Sample> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found_file());
    }
    st.ctx
        .core
        .repo
        .sample_by_hash(&sha256.to_ascii_lowercase())
        .await?
        .ok_or_else(not_found_file)
}

/// The newest task of a sample that has a report (else the newest task).
async fn latest_analysis(st: &AlState, sample: &Sample) -> Result<(Option<Task>, Option<Value>)> {
    let ids = st.ctx.core.repo.sample_task_ids(sample.id).await?;
    let mut fallback = None;
    for id in ids.iter().rev().take(20) {
        let Some(task) = st.ctx.core.repo.task(*id).await? else {
            continue;
        };
        if let Some(r) = report_of(st, &task).await {
            return Ok((Some(task), Some(r)));
        }
        if fallback.is_none() {
            fallback = Some(task);
        }
    }
    Ok((fallback, None))
}

/// `GET /api/v4/file/info/<sha256>/`.
pub async fn file_info(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view", "file_detail"])?;
    let s = sample_for(&st, &sha256).await?;
    Ok(ok(file_record(&st, &s).await?))
}

/// `GET /api/v4/file/result/<sha256>/`.
pub async fn file_result(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let s = sample_for(&st, &sha256).await?;
    let (task, report) = latest_analysis(&st, &s).await?;
    let r = derive(&s.sha256, task.as_ref(), report.as_ref());
    let mut v = file_results_payload(file_record(&st, &s).await?, &r);
    for k in ["parents", "childrens", "alternates"] {
        v[k] = json!([]);
    }
    v["file_viewer_only"] = json!(true);
    Ok(ok(v))
}

/// `GET /api/v4/file/result/<sha256>/<service>/`.
pub async fn file_result_service(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path((sha256, service)): Path<(String, String)>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let s = sample_for(&st, &sha256).await?;
    let (task, report) = latest_analysis(&st, &s).await?;
    let r = derive(&s.sha256, task.as_ref(), report.as_ref());
    let results: Vec<Value> = r
        .results
        .into_iter()
        .filter(|(_, v)| {
            v["response"]["service_name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&service))
        })
        .map(|(_, v)| v)
        .collect();
    Ok(ok(
        json!({"file_info": file_record(&st, &s).await?, "results": results}),
    ))
}

/// `GET /api/v4/file/score/<sha256>/`.
pub async fn file_score(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let s = sample_for(&st, &sha256).await?;
    let (task, report) = latest_analysis(&st, &s).await?;
    let r = derive(&s.sha256, task.as_ref(), report.as_ref());
    Ok(ok(
        json!({"file_info": file_record(&st, &s).await?, "score": max_score(&r),
                 "result_keys": r.results.iter().map(|(k, _)| k).collect::<Vec<_>>()}),
    ))
}

/// `GET /api/v4/file/children/<sha256>/`: nestbox does not extract children yet.
pub async fn file_children(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    sample_for(&st, &sha256).await?;
    Ok(ok(json!([])))
}

async fn read_head(st: &AlState, sha256: &str, max: usize) -> Result<Option<Vec<u8>>> {
    use futures_util::StreamExt;
    let Some(mut reader) = st
        .ctx
        .core
        .blobs
        .open(&nestbox_core::keys::sample(sha256))
        .await?
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    while out.len() < max {
        match reader.stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                let take = (max - out.len()).min(chunk.len());
                out.extend_from_slice(&chunk[..take]);
            }
            None => break,
        }
    }
    Ok(Some(out))
}

async fn entropy_of(st: &AlState, sha256: &str) -> Result<f64> {
    use futures_util::StreamExt;
    let Some(mut reader) = st
        .ctx
        .core
        .blobs
        .open(&nestbox_core::keys::sample(sha256))
        .await?
    else {
        return Ok(0.0);
    };
    let mut counts = [0u64; 256];
    let mut total = 0u64;
    while let Some(chunk) = reader.stream.next().await {
        let chunk = chunk?;
        for &b in chunk.iter() {
            counts[usize::from(b)] += 1;
        }
        total += chunk.len() as u64;
    }
    if total == 0 {
        return Ok(0.0);
    }
    let t = total as f64;
    let e: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / t;
            -p * p.log2()
        })
        .sum();
    Ok((e * 1e6).round() / 1e6)
}

fn ascii_of(data: &[u8]) -> String {
    data.iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

async fn content(st: &AlState, sha256: &str) -> Result<(Vec<u8>, bool, Sample)> {
    let s = sample_for(st, sha256).await?;
    let data = read_head(st, &s.sha256, API_MAX_SIZE)
        .await?
        .ok_or_else(not_found_file)?;
    let truncated = s.file_size > API_MAX_SIZE as i64;
    Ok((data, truncated, s))
}

/// Unique ASCII and UTF-16LE strings of at least `min` characters, in order.
pub fn strings_of(data: &[u8], min: usize) -> Vec<String> {
    let min = min.max(1);
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let printable = |b: u8| (0x20..0x7f).contains(&b) || b == b'\t';
    let mut cur = String::new();
    let mut flush = |cur: &mut String, out: &mut Vec<String>| {
        if cur.len() >= min && seen.insert(cur.clone()) {
            out.push(cur.clone());
        }
        cur.clear();
    };
    for &b in data {
        if printable(b) {
            cur.push(b as char);
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    for start in 0..2 {
        let mut i = start;
        while i + 1 < data.len() {
            if printable(data[i]) && data[i + 1] == 0 {
                cur.push(data[i] as char);
            } else {
                flush(&mut cur, &mut out);
            }
            i += 2;
        }
        flush(&mut cur, &mut out);
    }
    out
}

/// `GET /api/v4/file/strings/<sha256>/?len=6`.
pub async fn file_strings(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    c.require(&["file_detail"])?;
    let (data, truncated, _) = content(&st, &sha256).await?;
    let min = q
        .get("len")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(6)
        .min(1024);
    Ok(ok(
        json!({"content": strings_of(&data, min).join("\n"), "truncated": truncated}),
    ))
}

/// Assemblyline's hexdump: `offset:  bytes  |ascii|`.
pub fn hexdump(data: &[u8], width: usize, bytes_only: bool) -> String {
    let width = width.clamp(1, 1024);
    if bytes_only {
        return data
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut out = String::new();
    for (i, line) in data.chunks(width).enumerate() {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!(
            "{:08x}:  {:<w$}  {}\n",
            i * width,
            hex.join(" "),
            ascii_of(line),
            w = width * 3 - 1
        ));
    }
    out
}

/// `GET /api/v4/file/hex/<sha256>/?bytes_only&length=16`.
pub async fn file_hex(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    c.require(&["file_detail"])?;
    let (data, truncated, _) = content(&st, &sha256).await?;
    let width = q
        .get("length")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(16);
    Ok(ok(
        json!({"content": hexdump(&data, width, qbool(q.get("bytes_only"))), "truncated": truncated}),
    ))
}

/// `GET /api/v4/file/ascii/<sha256>/`.
pub async fn file_ascii(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
) -> Result<Response> {
    c.require(&["file_detail"])?;
    let (data, truncated, _) = content(&st, &sha256).await?;
    let text: String = data
        .iter()
        .map(|&b| {
            if b.is_ascii() && (b >= 0x20 || b == b'\n' || b == b'\t' || b == b'\r') {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    Ok(ok(json!({"content": text, "truncated": truncated})))
}

fn pct_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `GET /api/v4/file/download/<sha256>/?encoding=cart|raw|zip&name=&password=`.
pub async fn file_download(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sha256): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    c.require(&["file_download"])?;
    let encoding = q
        .get("encoding")
        .map_or("cart".to_owned(), |e| e.to_ascii_lowercase());
    if !matches!(encoding.as_str(), "cart" | "raw" | "zip") {
        return Err(AlError::Status(
            StatusCode::FORBIDDEN,
            format!(
                "{} is not in the valid encoding types: ['cart', 'raw', 'zip']",
                encoding.to_uppercase()
            ),
        ));
    }
    if encoding == "raw" && !st.ctx.assemblyline.allow_raw_download {
        return Err(AlError::Status(
            StatusCode::FORBIDDEN,
            "RAW file download has been disabled by administrators.".into(),
        ));
    }
    let s = sample_for(&st, &sha256).await?;
    let name = q
        .get("name")
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or("").to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| s.sha256.clone());
    let key = nestbox_core::keys::sample(&s.sha256);
    let disposition = |fname: &str| {
        HeaderValue::from_str(&format!(
            "attachment; filename=file.bin; filename*=UTF-8''{}",
            pct_encode(fname)
        ))
        .unwrap_or(HeaderValue::from_static("attachment; filename=file.bin"))
    };
    let respond = |body: Body, fname: &str| {
        let mut r = body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r.headers_mut()
            .insert(header::CONTENT_DISPOSITION, disposition(fname));
        r
    };
    match encoding.as_str() {
        "raw" => {
            let reader = st
                .ctx
                .core
                .blobs
                .open(&key)
                .await?
                .ok_or_else(not_found_file)?;
            Ok(respond(Body::from_stream(reader.stream), &name))
        }
        "zip" => {
            let password = q.get("password").map_or("infected", String::as_str);
            if password.len() > 128 || password.chars().any(char::is_control) {
                return Err(AlError::bad("Invalid password"));
            }
            if !st.ctx.core.blobs.exists(&key).await? {
                return Err(not_found_file());
            }
            // AES-256 (the zip crate writes no ZipCrypto); 7-Zip and pyzipper open it.
            let body = crate::common::zipout::stream(
                st.ctx.core.blobs.clone(),
                vec![(name.clone(), crate::common::zipout::ZipSource::Blob(key))],
                Some(password.to_owned()),
            );
            Ok(respond(body, &format!("{name}.zip")))
        }
        _ => {
            let reader = st
                .ctx
                .core
                .blobs
                .open(&key)
                .await?
                .ok_or_else(not_found_file)?;
            let mut h = Map::new();
            h.insert("name".into(), json!(name));
            Ok(respond(
                cart_stream(reader.stream, h),
                &format!("{name}.cart"),
            ))
        }
    }
}

/// The CaRT of a blob stream, packed on the fly; a blob already stored as CaRT (its
/// first chunk starts with the mandatory header) is passed through unchanged.
fn cart_stream(stream: nestbox_core::ports::BlobStream, header: Map<String, Value>) -> Body {
    use futures_util::StreamExt;
    enum St {
        First(nestbox_core::ports::BlobStream, Map<String, Value>),
        Packing(nestbox_core::ports::BlobStream, Box<cart::Packer>),
        Raw(nestbox_core::ports::BlobStream),
        Done,
    }
    let s = futures_util::stream::unfold(St::First(stream, header), |state| async move {
        match state {
            St::First(mut s, h) => match s.next().await {
                Some(Ok(chunk)) if cart::is_cart(&chunk) => Some((Ok(chunk), St::Raw(s))),
                Some(Ok(chunk)) => {
                    let (mut p, mut out) = cart::Packer::new(&h);
                    out.extend(p.update(&chunk));
                    Some((Ok(bytes::Bytes::from(out)), St::Packing(s, Box::new(p))))
                }
                Some(Err(e)) => Some((Err(e), St::Done)),
                None => {
                    let (p, mut out) = cart::Packer::new(&h);
                    out.extend(p.finish());
                    Some((Ok(bytes::Bytes::from(out)), St::Done))
                }
            },
            St::Packing(mut s, mut p) => match s.next().await {
                Some(Ok(chunk)) => {
                    let out = p.update(&chunk);
                    Some((Ok(bytes::Bytes::from(out)), St::Packing(s, p)))
                }
                Some(Err(e)) => Some((Err(e), St::Done)),
                None => Some((Ok(bytes::Bytes::from(p.finish())), St::Done)),
            },
            St::Raw(mut s) => s.next().await.map(|c| (c, St::Raw(s))),
            St::Done => None,
        }
    });
    Body::from_stream(s)
}

/// The derived results and errors of the file a cache key names (`<sha256>.<service>…`).
async fn results_of_key(st: &AlState, key: &str) -> Result<Option<Results>> {
    // The result index names the task of the newest analysis behind a key (URL results
    // too, whose file is no sample of a task); reports written before the index existed
    // are found through the file's sample.
    if key.len() <= 1024
        && let Some(row) = st.ctx.al_repo.al_result(key).await?
        && let Some(task) = st.ctx.core.repo.task(row.task_id).await?
        && let Some(report) = report_of(st, &task).await
    {
        return Ok(Some(derive(&row.sha256, Some(&task), Some(&report))));
    }
    let Some(sha) = key.get(..64) else {
        return Ok(None);
    };
    let Ok(s) = sample_for(st, sha).await else {
        return Ok(None);
    };
    let (task, report) = latest_analysis(st, &s).await?;
    Ok(Some(derive(&s.sha256, task.as_ref(), report.as_ref())))
}

/// `GET /api/v4/result/<key>/`.
pub async fn result(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let missing = || AlError::not_found(format!("Cache key {key} does not exists."));
    let r = results_of_key(&st, &key).await?.ok_or_else(missing)?;
    let (_, mut v) = r
        .results
        .into_iter()
        .find(|(k, _)| *k == key)
        .ok_or_else(missing)?;
    v["section_hierarchy"] = json!([]);
    Ok(ok(v))
}

/// `GET /api/v4/result/error/<key>/`.
pub async fn result_error(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let missing = || AlError::not_found(format!("Cache key {key} does not exists."));
    let r = results_of_key(&st, &key).await?.ok_or_else(missing)?;
    let (_, v) = r
        .errors
        .into_iter()
        .find(|(k, _)| *k == key)
        .ok_or_else(missing)?;
    Ok(ok(v))
}

/// Most keys `result/multiple_keys/` looks up in one call.
const MAX_MULTIPLE_KEYS: usize = 1000;

/// `POST /api/v4/result/multiple_keys/` with `{"result": [...], "error": [...]}`: the found
/// ones by key; unknown keys are left out (upstream logs them).
pub async fn multiple_keys(
    State(st): St,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let Ok(Value::Object(data)) = serde_json::from_slice::<Value>(&body) else {
        return Err(AlError::bad(
            "No data block provided or data block not in JSON format.'",
        ));
    };
    let keys = |name: &str| -> Vec<String> {
        data.get(name)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .take(MAX_MULTIPLE_KEYS)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (want_results, want_errors) = (keys("result"), keys("error"));
    // One derivation per file, however many keys name it.
    let mut by_file: HashMap<String, Option<Results>> = HashMap::new();
    for k in want_results.iter().chain(&want_errors) {
        let Some(sha) = k.get(..64) else { continue };
        if !by_file.contains_key(sha) {
            let r = results_of_key(&st, k).await?;
            by_file.insert(sha.to_owned(), r);
        }
    }
    let pick = |want: &[String], errors: bool| -> Map<String, Value> {
        let mut out = Map::new();
        for k in want {
            let found = k
                .get(..64)
                .and_then(|sha| by_file.get(sha))
                .and_then(Option::as_ref)
                .and_then(|r| {
                    let list = if errors { &r.errors } else { &r.results };
                    list.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                });
            if let Some(mut v) = found {
                if !errors {
                    v["section_hierarchy"] = json!([]);
                }
                out.insert(k.clone(), v);
            }
        }
        out
    };
    let result = pick(&want_results, false);
    let error = pick(&want_errors, true);
    Ok(ok(json!({"error": error, "result": result})))
}

/// `DELETE /api/v4/submission/<sid>/`: the submitter or an admin deletes the record and
/// its task (report and artifacts). A task still running cannot be cancelled in nestbox;
/// it is left to finish and stays visible through the Cuckoo and CAPE views.
pub async fn delete_submission(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_delete"])?;
    let rec = if sid.len() <= 64 {
        st.ctx.al_repo.al_submission(&sid).await?
    } else {
        None
    };
    let Some(rec) = rec else {
        return Err(AlError::not_found(format!(
            "There are not submission with sid: {sid}"
        )));
    };
    if rec.user_id != c.user.id && !c.is_admin() {
        return Err(AlError::Status(
            StatusCode::FORBIDDEN,
            "Your are not allowed to delete this submission.".into(),
        ));
    }
    st.ctx.al_repo.delete_al_submission(&sid).await?;
    match st.ctx.core.delete_task(rec.task_id).await {
        Ok(()) | Err(nestbox_core::Error::TaskNotFound(_)) => {}
        Err(nestbox_core::Error::WrongStatus { .. }) => {
            tracing::info!(
                sid,
                task_id = rec.task_id.0,
                "deleted a submission whose task runs"
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ok(json!({"success": true})))
}

/// `GET /api/v4/service/all/` (also `service/`): the nestbox analyzers as services.
pub async fn services(Extension(_c): Extension<Caller>) -> Response {
    let items: Vec<Value> = SERVICES
        .iter()
        .map(|(name, cat, stage, desc)| {
            json!({"name": name, "category": cat, "stage": stage, "accepts": ".*",
                   "rejects": "empty|metadata/.*", "description": desc, "enabled": true,
                   "version": env!("CARGO_PKG_VERSION"), "classification": C12N,
                   "is_external": false, "privileged": true})
        })
        .collect();
    ok(Value::Array(items))
}

// ---------------------------------------------------------------------------------------
// Search: a small Lucene subset over flattened records.

/// One query clause: `field:value` (value may end in `*`), bare value, negation.
#[derive(Debug)]
struct Term {
    field: Option<String>,
    value: String,
    negate: bool,
}

/// OR of ANDs.
fn parse_query(q: &str) -> Vec<Vec<Term>> {
    // Tokens, each with the byte offset of its first `:` outside quotes (a quoted
    // `"http://x"` is a value, not the field `http`).
    let mut tokens: Vec<(String, Option<usize>)> = Vec::new();
    let mut cur = String::new();
    let mut colon = None;
    let mut quoted = false;
    for ch in q.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push((std::mem::take(&mut cur), colon.take()));
                }
            }
            ':' if !quoted && colon.is_none() => {
                colon = Some(cur.len());
                cur.push(':');
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push((cur, colon));
    }
    let mut groups = vec![Vec::new()];
    let mut negate_next = false;
    for (t, colon) in tokens.into_iter().take(64) {
        match t.as_str() {
            "AND" | "&&" => continue,
            "OR" | "||" => groups.push(Vec::new()),
            "NOT" | "!" => negate_next = true,
            _ => {
                let (neg, skip) = match t.strip_prefix('-') {
                    Some(rest) if !rest.is_empty() => (true, 1),
                    _ => (false, 0),
                };
                let (field, value) = match colon {
                    Some(at) if at > skip => (
                        Some(t[skip..at].trim_start_matches('(').to_owned()),
                        t[at + 1..].trim_end_matches(')').to_owned(),
                    ),
                    _ => (None, t[skip..].trim_matches(['(', ')']).to_owned()),
                };
                let field = field.filter(|f| !f.is_empty());
                if let Some(g) = groups.last_mut() {
                    g.push(Term {
                        field,
                        value,
                        negate: neg ^ negate_next,
                    });
                }
                negate_next = false;
            }
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn matches_value(pattern: &str, v: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let v = v.to_ascii_lowercase();
    if p == "*" {
        return true;
    }
    match (p.strip_prefix('*'), p.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') => v.contains(rest.trim_end_matches('*')),
        (Some(rest), _) => v.ends_with(rest),
        (_, Some(rest)) => v.starts_with(rest),
        _ => v == p,
    }
}

fn flat(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flat(&key, v, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                flat(prefix, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

fn doc_matches(groups: &[Vec<Term>], doc: &[(String, String)]) -> bool {
    if groups.is_empty() {
        return true;
    }
    groups.iter().any(|g| {
        g.iter().all(|t| {
            let hit = if t.field.is_none() && t.value == "*" {
                true
            } else {
                doc.iter().any(|(k, v)| {
                    t.field.as_ref().is_none_or(|f| f == k) && matches_value(&t.value, v)
                })
            };
            hit != t.negate
        })
    })
}

/// Records read per store round trip when a query needs checking in Rust.
const SEARCH_BATCH: i64 = 500;

/// SubmissionParams keys that hold scalars (a search on them is answered by the store).
const SCALAR_PARAMS: &[&str] = &[
    "classification",
    "deep_scan",
    "description",
    "generate_alert",
    "ignore_cache",
    "ignore_filtering",
    "ignore_recursion_prevention",
    "ignore_size",
    "malicious",
    "max_extracted",
    "max_supplementary",
    "never_drop",
    "priority",
    "submitter",
    "ttl",
    "type",
];

/// Counts one more match and keeps it when it falls in the requested page.
fn keep_in_page(items: &mut Vec<Value>, total: &mut usize, offset: usize, rows: usize, v: Value) {
    if *total >= offset && items.len() < rows {
        items.push(v);
    }
    *total += 1;
}

/// The store's version of a term, when the store can answer it exactly.
fn store_cond(t: &Term) -> Option<AlCond> {
    use nestbox_core::assemblyline::AlColumn;
    let column = match t.field.as_deref()? {
        "sid" => AlColumn::Sid,
        "files.name" => AlColumn::Name,
        "files.sha256" => AlColumn::Sha256,
        f => {
            if let Some(k) = f.strip_prefix("params.") {
                if !SCALAR_PARAMS.contains(&k) {
                    return None;
                }
                AlColumn::Param(k.to_owned())
            } else if let Some(k) = f.strip_prefix("metadata.") {
                AlColumn::Metadata(k.to_owned())
            } else {
                return None;
            }
        }
    };
    Some(AlCond {
        column,
        matcher: matcher_of(&t.value),
        negate: t.negate,
    })
}

/// The store's comparison for a query value (`*` wildcards at either end).
fn matcher_of(v: &str) -> nestbox_core::assemblyline::AlMatch {
    use nestbox_core::assemblyline::AlMatch;
    if v == "*" {
        AlMatch::Present
    } else if let Some(rest) = v.strip_prefix('*') {
        if rest.ends_with('*') {
            AlMatch::Contains(rest.trim_end_matches('*').to_owned())
        } else {
            AlMatch::Suffix(rest.to_owned())
        }
    } else if let Some(rest) = v.strip_suffix('*') {
        AlMatch::Prefix(rest.to_owned())
    } else {
        AlMatch::Exact(v.to_owned())
    }
}

/// A query on the result or file index: every term is answered by the store.
fn index_query(groups: &[Vec<Term>]) -> AlQuery {
    AlQuery {
        groups: groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|t| AlTerm {
                        field: t.field.clone(),
                        matcher: matcher_of(&t.value),
                        negate: t.negate,
                    })
                    .collect()
            })
            .collect(),
    }
}

/// A result of the index as `search/result/` lists it: the fields Assemblyline stores in
/// its result index (`store=True` in its Result model), plus `id`, the key.
fn result_item(r: &AlResultRow) -> Value {
    json!({
        "classification": C12N,
        "created": iso(r.created),
        "drop_file": false,
        "id": r.key,
        "response": {"service_name": r.service, "service_tool_version": ""},
        "result": {"score": r.score},
        "size": r.size,
        "type": r.file_type,
    })
}

/// A file of the index as `search/file/` lists it.
fn file_item(f: &AlFileRow) -> Value {
    let ty = if f.file_type.is_empty() {
        al_type(&f.magic, &f.mime)
    } else {
        f.file_type.clone()
    };
    json!({
        "sha256": f.sha256, "sha1": f.sha1, "md5": f.md5, "ssdeep": f.ssdeep,
        "tlsh": f.tlsh, "size": f.size, "type": ty,
        "magic": f.magic, "mime": f.mime, "classification": C12N,
        "seen": {"count": f.seen_count, "first": iso(f.seen_first), "last": iso(f.seen_last)},
    })
}

/// The store filter of a query, and whether it is exact. When some terms are not store
/// columns (`state`, `max_score`, bare words, …) the filter keeps the others only: a
/// superset of the answer, which the caller then checks record by record.
fn store_filter(groups: &[Vec<Term>]) -> (AlFilter, bool) {
    let mut exact = true;
    let mut out = Vec::new();
    for g in groups {
        let mut conds = Vec::new();
        for t in g {
            match store_cond(t) {
                Some(c) => conds.push(c),
                None => exact = false,
            }
        }
        if conds.is_empty() {
            // This group may match anything: no narrowing at all.
            return (AlFilter::default(), exact && g.is_empty());
        }
        out.push(conds);
    }
    (AlFilter { groups: out }, exact)
}

async fn search(
    st: &AlState,
    c: &Caller,
    index: &str,
    params: &Map<String, Value>,
) -> Result<Response> {
    let get_i = |k: &str, d: i64| {
        params
            .get(k)
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(d)
    };
    let query = params
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    if query.is_empty() {
        return Err(AlError::bad("There was no search query."));
    }
    let offset = get_i("offset", 0).max(0) as usize;
    let rows = get_i("rows", 25).clamp(0, 1000) as usize;
    let groups = parse_query(&query);
    let mut items = Vec::new();
    let (total, items) = match index {
        "submission" => {
            c.require(&["submission_view"])?;
            let (filter, exact) = store_filter(&groups);
            let repo = &st.ctx.al_repo;
            if exact {
                // The store answers the query: one count and one page, whatever the size.
                let total = repo.count_al_submissions(&filter).await?;
                let recs = repo
                    .search_al_submissions(&filter, rows as i64, offset as i64)
                    .await?;
                let mut page = Vec::with_capacity(recs.len());
                for rec in recs {
                    let l = load_record(st, rec).await?;
                    let r = results_for(&l);
                    page.push(submission_record(&l, Some(&r)));
                }
                return Ok(ok(
                    json!({"total": total, "offset": offset, "rows": rows, "items": page}),
                ));
            }
            // Terms on derived fields: walk every candidate the store narrows to (in
            // batches, newest first), keep the count and the requested page only.
            let mut total = 0usize;
            let mut at = 0i64;
            loop {
                let batch = repo
                    .search_al_submissions(&filter, SEARCH_BATCH, at)
                    .await?;
                let n = batch.len();
                for rec in batch {
                    let l = load_record(st, rec).await?;
                    let r = results_for(&l);
                    let v = submission_record(&l, Some(&r));
                    let mut doc = Vec::new();
                    flat("", &v, &mut doc);
                    if doc_matches(&groups, &doc) {
                        keep_in_page(&mut items, &mut total, offset, rows, v);
                    }
                }
                if (n as i64) < SEARCH_BATCH {
                    break;
                }
                at += SEARCH_BATCH;
            }
            (total, items)
        }
        "file" => {
            c.require(&["submission_view", "file_detail"])?;
            let q = index_query(&groups);
            let repo = &st.ctx.al_repo;
            let total = repo.count_al_files(&q).await?;
            let rows = repo.search_al_files(&q, rows as i64, offset as i64).await?;
            (total as usize, rows.iter().map(file_item).collect())
        }
        "result" => {
            c.require(&["submission_view"])?;
            let q = index_query(&groups);
            let repo = &st.ctx.al_repo;
            let total = repo.count_al_results(&q).await?;
            let rows = repo
                .search_al_results(&q, rows as i64, offset as i64)
                .await?;
            (total as usize, rows.iter().map(result_item).collect())
        }
        other => {
            return Err(AlError::bad(format!(
                "Not a valid index to search in: {other}"
            )));
        }
    };
    Ok(ok(
        json!({"total": total, "offset": offset, "rows": rows, "items": items}),
    ))
}

/// `GET /api/v4/search/<index>/?query=…`.
pub async fn search_get(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(index): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let params: Map<String, Value> = q.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    search(&st, &c, &index, &params).await
}

/// `POST /api/v4/search/<index>/` with a JSON body (or form values).
pub async fn search_post(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(index): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    };
    search(&st, &c, &index, &params).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestbox_core::al_result::host_of;

    #[test]
    fn lucene_subset() {
        let doc = vec![
            ("params.submitter".to_owned(), "admin".to_owned()),
            ("files.name".to_owned(), "hello.txt".to_owned()),
            ("state".to_owned(), "completed".to_owned()),
        ];
        for (q, want) in [
            ("*", true),
            ("params.submitter:admin", true),
            ("params.submitter:bob", false),
            ("files.name:hello*", true),
            ("files.name:\"hello.txt\" AND state:completed", true),
            ("state:submitted OR files.name:*.txt", true),
            ("NOT state:completed", false),
            ("-state:completed", false),
            ("hello.txt", true),
            ("\"hello.txt\"", true),
            ("files.name:\"hello.txt\"", true),
            ("(files.name:hello.txt)", true),
            ("\"state:completed\"", false),
        ] {
            assert_eq!(doc_matches(&parse_query(q), &doc), want, "{q}");
        }
    }

    #[test]
    fn static_indicators_become_tags() {
        let report = json!({
            "target": {"category": "file", "file": {"type": "data", "mime": "application/octet-stream"}},
            "iocs": {"urls": ["http://a.example.com/x"], "domains": ["a.example.com"],
                     "ipv4": ["10.1.2.3"], "emails": ["x@example.com"],
                     "registry_keys": ["HKCU\\Software\\Run"], "file_paths": ["C:\\a.exe"],
                     "md5": ["d41d8cd98f00b204e9800998ecf8427e"], "sha1": []},
        });
        let r = derive("ab", None, Some(&report));
        let strings = r
            .results
            .iter()
            .find(|(k, _)| k.contains(".Strings."))
            .map(|(_, v)| v)
            .unwrap();
        let sec = strings["result"]["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["title_text"] == "Static indicators")
            .unwrap();
        let tags: Vec<(String, String)> = sec["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["type"].as_str().unwrap().into(),
                    t["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        for (ty, v) in [
            ("network.static.uri", "http://a.example.com/x"),
            ("network.static.domain", "a.example.com"),
            ("network.static.ip", "10.1.2.3"),
            ("network.email.address", "x@example.com"),
            ("dynamic.registry_key", "HKCU\\Software\\Run"),
            ("file.path", "C:\\a.exe"),
        ] {
            assert!(
                tags.contains(&(ty.into(), v.into())),
                "{ty} {v} in {tags:?}"
            );
        }
        assert_eq!(sec["body"]["md5"][0], "d41d8cd98f00b204e9800998ecf8427e");
        assert!(
            sec["body"].get("sha1").is_none(),
            "empty kinds are left out"
        );
        let none = derive("ab", None, Some(&json!({"iocs": {"urls": []}})));
        assert!(
            !none
                .results
                .iter()
                .any(|(_, v)| v.to_string().contains("Static indicators"))
        );
    }

    #[test]
    fn authenticode_signers_become_cert_tags() {
        let report = json!({"target": {"file": {"type": "PE32 executable", "pe": {
            "imphash": "0123456789abcdef0123456789abcdef",
            "digital_signers": [{
                "sha1_fingerprint": "aa", "serial_number": "42",
                "not_before": "2026-01-01T00:00:00", "not_after": "2027-01-01T00:00:00",
                "subject_commonName": "Signer", "subject_organizationName": "ACME",
                "subject_countryName": "DE", "issuer_commonName": "Root CA",
            }],
        }}}});
        let r = derive("ab", None, Some(&report));
        let body = r.results[0].1.to_string();
        for (ty, v) in [
            (
                "file.pe.imports.imphash",
                "0123456789abcdef0123456789abcdef",
            ),
            ("cert.thumbprint", "aa"),
            ("cert.serial_no", "42"),
            ("cert.subject", "CN=Signer, O=ACME, C=DE"),
            ("cert.issuer", "CN=Root CA"),
            ("cert.valid.start", "2026-01-01T00:00:00"),
            ("cert.valid.end", "2027-01-01T00:00:00"),
        ] {
            assert!(
                body.contains(&format!(r#""type":"{ty}","value":"{v}""#)),
                "{ty}={v} in {body}"
            );
        }
    }

    #[test]
    fn strings_and_hex() {
        assert_eq!(strings_of(b"hello world\n", 6), vec!["hello world"]);
        assert_eq!(strings_of(b"h\0e\0l\0l\0o\0!\0\0\0", 6), vec!["hello!"]);
        assert!(hexdump(b"hi", 16, false).starts_with("00000000:  68 69"));
        assert_eq!(hexdump(b"hi", 16, true), "68 69");
        assert_eq!(
            al_type("PE32 executable (GUI) Intel 80386, for MS Windows", ""),
            "executable/windows/pe32"
        );
        assert_eq!(host_of("http://u@example.com:80/x"), Some("example.com"));
    }
}
