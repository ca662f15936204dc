//! `submit/` and `ingest/` (spec §3.1, §3.2, §4) and the notification queues.
//!
//! SubmissionParams: every §3.2 key is kept in the record with its default. nestbox
//! honours `priority` (mapped onto the task priority 1–3), `description`, `ttl` (recorded;
//! nestbox does not expire data yet), `ignore_cache` (ingest dedup) and
//! `generate_alert` (recorded, no alerting exists); `deep_scan`, `services.selected`,
//! `service_spec` and the `ignore_*` switches are recorded and otherwise ignored, because
//! every nestbox analyzer always runs on every file.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use nestbox_analyzers::cart;
use nestbox_core::StagedSample;
use nestbox_core::assemblyline::{AlIngest, AlSubmission};
use nestbox_types::{Category, NewSubmission, NewTask, Sample, Timestamp};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::views::{self, Loaded};
use super::{AlError, AlState, Caller, Result, St, iso, ok, quota, random_id};
use crate::common::form::{FormError, read_form};

const BAD_JSON: &str = "No data block provided or data block not in JSON format.'";
const MAX_METADATA_KEYS: usize = 200;
const MAX_METADATA_VALUE: usize = 64 * 1024;

impl From<FormError> for AlError {
    fn from(e: FormError) -> Self {
        match e {
            FormError::Malformed(_) => AlError::bad(BAD_JSON),
            FormError::TooLarge { max } => AlError::Status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("File too big to be scanned (> {max})."),
            ),
            FormError::Internal(e) => e.into(),
        }
    }
}

/// What the request is about to scan.
enum Source {
    Staged(StagedSample, Option<String>),
    Known(Sample),
    Url(String),
}

/// The parsed request, either format.
struct Request_ {
    data: Map<String, Value>,
    source: Source,
}

async fn stage_bytes(st: &AlState, bytes: &[u8]) -> Result<StagedSample> {
    let mut up = st.ctx.core.begin_upload().await.map_err(too_big)?;
    up.write(bytes).await.map_err(too_big)?;
    Ok(up.finish().await?)
}

fn too_big(e: nestbox_core::Error) -> AlError {
    match e {
        nestbox_core::Error::SampleTooLarge { max } => AlError::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("File too big to be scanned (> {max})."),
        ),
        e => e.into(),
    }
}

/// Standard base64 (padding optional, whitespace ignored); `None` when invalid.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let trimmed = clean
        .strip_suffix(b"==")
        .or(clean.strip_suffix(b"="))
        .unwrap_or(&clean);
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

async fn parse(st: &AlState, req: Request) -> Result<Request_> {
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (data, staged) = if ctype.starts_with("multipart/form-data") {
        let mut form = read_form(&st.ctx.core, req, &["bin"]).await?;
        let data = match form.get("json") {
            Some(j) => match serde_json::from_str::<Value>(j) {
                Ok(Value::Object(m)) => m,
                _ => return Err(AlError::bad(BAD_JSON)),
            },
            None => Map::new(),
        };
        let file = form.files.pop().map(|f| {
            let name = f
                .filename
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or("")
                .to_owned();
            (f.staged, name)
        });
        (data, file)
    } else if ctype.starts_with("application/json") {
        let limit = usize::try_from(st.ctx.core.limits.max_upload)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .saturating_add(1 << 20);
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                AlError::Status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "File too big to be scanned.".into(),
                )
            })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => (m, None),
            _ => return Err(AlError::bad(BAD_JSON)),
        }
    } else {
        return Err(AlError::bad("Invalid content type"));
    };
    let source = if let Some((staged, name)) = staged {
        Source::Staged(staged, Some(name).filter(|n| !n.is_empty()))
    } else if let Some(text) = data.get("plaintext").and_then(Value::as_str) {
        Source::Staged(stage_bytes(st, text.as_bytes()).await?, None)
    } else if let Some(b64) = data.get("base64").and_then(Value::as_str) {
        let bytes = base64_decode(b64).ok_or_else(|| AlError::bad("Invalid base64 content."))?;
        Source::Staged(stage_bytes(st, &bytes).await?, None)
    } else if let Some(h) = data.get("sha256").and_then(Value::as_str) {
        let known = if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            st.ctx
                .core
                .repo
                .sample_by_hash(&h.to_ascii_lowercase())
                .await?
        } else {
            None
        };
        Source::Known(known.ok_or_else(|| {
            AlError::not_found(
                "SHA256 does not exist in Assemblyline or any of the selected sources",
            )
        })?)
    } else if let Some(u) = data.get("url").and_then(Value::as_str) {
        let u = u.trim().replace("hxxp", "http").replace("[.]", ".");
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 4096 {
            return Err(AlError::bad(format!("Invalid URL: {u}")));
        }
        Source::Url(u)
    } else {
        return Err(AlError::bad(
            "Missing file to scan. No binary or fetching method provided.",
        ));
    };
    Ok(Request_ { data, source })
}

/// A client-given name, without control characters, at most 1024 bytes.
fn display_name(name: &str) -> String {
    let mut out: String = name.chars().filter(|c| !c.is_control()).collect();
    if out.len() > 1024 {
        let mut cut = 1024;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Flattens `{a: {b: 1}}` into `{"a.b": "1"}` (Assemblyline's flat metadata).
fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_owned(), Value::String(s.clone()));
        }
        other => {
            out.insert(prefix.to_owned(), Value::String(other.to_string()));
        }
    }
}

/// The SubmissionParams defaults of §3.2 merged with the request's.
fn params(
    st: &AlState,
    data: &Map<String, Value>,
    caller: &Caller,
    ingest: bool,
) -> Result<Map<String, Value>> {
    let mut p = json!({
        "classification": "TLP:C",
        "deep_scan": false,
        "description": "",
        "generate_alert": false,
        "groups": [],
        "ignore_cache": false,
        "ignore_dynamic_recursion_prevention": false,
        "ignore_filtering": false,
        "ignore_recursion_prevention": false,
        "ignore_size": false,
        "initial_data": null,
        "malicious": false,
        "max_extracted": 500,
        "max_supplementary": 500,
        "never_drop": false,
        "priority": if ingest { 150 } else { 1000 },
        "psid": null,
        "quota_item": false,
        "services": {
            "selected": ["Filtering", "Antivirus", "Static Analysis", "Extraction", "Networking"],
            "excluded": [], "rescan": [], "resubmit": [], "runtime_excluded": [],
        },
        "service_spec": {},
        "submitter": caller.user.username,
        "trace": false,
        "ttl": st.ctx.assemblyline.dtl,
        "type": if ingest { "INGEST" } else { "USER" },
        "auto_archive": false,
        "delete_after_archive": false,
        "use_archive_alternate_dtl": false,
    });
    let p = p.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut p = p;
    if let Some(req) = data.get("params") {
        let Value::Object(req) = req else {
            return Err(AlError::bad("Invalid parameters: params must be an object"));
        };
        for (k, v) in req {
            if matches!(k.as_str(), "submitter" | "groups" | "quota_item" | "psid") {
                continue;
            }
            let Some(cur) = p.get(k) else { continue };
            let same_kind = matches!(
                (cur, v),
                (Value::Bool(_), Value::Bool(_))
                    | (Value::Number(_), Value::Number(_))
                    | (Value::String(_), Value::String(_))
                    | (Value::Object(_), Value::Object(_))
                    | (Value::Null, _)
            );
            if !same_kind {
                return Err(AlError::bad(format!(
                    "Invalid parameters: {k} has the wrong type"
                )));
            }
            if k == "services" {
                if let (Some(Value::Object(dst)), Value::Object(src)) = (p.get_mut(k), v) {
                    for (sk, sv) in src {
                        dst.insert(sk.clone(), sv.clone());
                    }
                }
                continue;
            }
            p.insert(k.clone(), v.clone());
        }
    }
    let prio = p
        .get("priority")
        .and_then(Value::as_i64)
        .unwrap_or(1000)
        .clamp(1, 1500);
    p.insert("priority".into(), json!(prio));
    let settings = &st.ctx.assemblyline;
    let mut ttl = p
        .get("ttl")
        .and_then(Value::as_i64)
        .unwrap_or(i64::try_from(settings.dtl).unwrap_or(30))
        .clamp(0, 36500);
    // `ttl` is clamped to `submission.max_dtl` when that is set (0 = no limit; a ttl of 0
    // means "never expires", which max_dtl also forbids).
    if let Ok(max) = i64::try_from(settings.max_dtl)
        && max > 0
        && (ttl == 0 || ttl > max)
    {
        ttl = max;
    }
    p.insert("ttl".into(), json!(ttl));
    if data.get("generate_alert").and_then(Value::as_bool) == Some(true) {
        p.insert("generate_alert".into(), json!(true));
    }
    Ok(p)
}

/// Common intake: stores the file and creates the submission (or reuses one by scan key
/// for ingest); returns the record and the ingest-specific metadata.
async fn intake(
    st: &AlState,
    caller: &Caller,
    req: Request_,
    ingest: bool,
) -> Result<(AlSubmission, bool)> {
    let Request_ { data, source } = req;
    let mut metadata = Map::new();
    if let Some(m) = data.get("metadata") {
        if !m.is_object() {
            return Err(AlError::bad("Invalid metadata: must be an object"));
        }
        flatten("", m, &mut metadata);
    }
    let mut name = data.get("name").and_then(Value::as_str).map(str::to_owned);
    let max = st.ctx.assemblyline.max_file_size;
    let (sample, url) = match source {
        Source::Staged(staged, upload_name) => {
            let staged = unwrap_cart(st, staged, &mut name, &mut metadata).await?;
            let size = staged.digest.size;
            if size == 0 {
                return Err(AlError::bad("File empty."));
            }
            if size > max {
                return Err(AlError::Status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("File too big to be scanned ({size} > {max})."),
                ));
            }
            if name.is_none() {
                name = upload_name;
            }
            (st.ctx.core.store_sample(staged).await?, None)
        }
        Source::Known(sample) => (sample, None),
        Source::Url(u) => {
            // Assemblyline turns a URL into a small "uri file"; the task is a URL task.
            let content = nestbox_core::al_result::uri_file(&u);
            let staged = stage_bytes(st, content.as_bytes()).await?;
            (st.ctx.core.store_sample(staged).await?, Some(u))
        }
    };
    if metadata.len() > MAX_METADATA_KEYS
        || metadata.iter().any(|(k, v)| {
            k.len() > 1024 || v.as_str().is_some_and(|s| s.len() > MAX_METADATA_VALUE)
        })
    {
        return Err(AlError::bad(
            "Invalid metadata: too many or too large values",
        ));
    }
    let name = display_name(
        name.or_else(|| url.clone())
            .as_deref()
            .unwrap_or(&sample.sha256),
    );
    let mut params = params(st, &data, caller, ingest)?;
    if params
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        let what = match &url {
            Some(u) => format!("Inspection of URL: {u}"),
            None => format!("Inspection of file: {name}"),
        };
        params.insert("description".into(), json!(what));
    }
    if ingest {
        let ty = params
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("INGEST")
            .to_owned();
        let d = params
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        params.insert("description".into(), json!(format!("[{ty}] {d}")));
    }
    // Scan key: the file plus the params that change what a scan produces.
    let key_params = json!({
        "deep_scan": params.get("deep_scan"),
        "services": params.get("services"),
        "service_spec": params.get("service_spec"),
        "ignore_filtering": params.get("ignore_filtering"),
        "url": url,
    });
    let scan_key = hex::encode(sha2::Sha256::digest(
        format!("{}{}", sample.sha256, key_params).as_bytes(),
    ));
    if ingest
        && params.get("ignore_cache") != Some(&json!(true))
        && let Some(prev) = st.ctx.al_repo.al_submission_by_scan_key(&scan_key).await?
        && st.ctx.core.repo.task(prev.task_id).await?.is_some()
    {
        return Ok((prev, true));
    }
    let sid = random_id();
    let prio = params
        .get("priority")
        .and_then(Value::as_i64)
        .unwrap_or(1000);
    let submission_id = st
        .ctx
        .core
        .repo
        .add_submission(&NewSubmission {
            submit_type: "assemblyline".into(),
            data: json!({"sid": sid, "name": name}),
        })
        .await?;
    let mut task = match &url {
        Some(u) => NewTask::new(Category::Url, u.clone()),
        None => {
            let target = st.ctx.core.materialize_target(&sample, &name).await?;
            let mut t = NewTask::new(Category::File, target);
            t.sample_id = Some(sample.id);
            t
        }
    };
    task.submit_id = Some(submission_id);
    task.owner = caller.user.username.clone();
    task.priority = match prio {
        ..=300 => 1,
        301..=1000 => 2,
        _ => 3,
    };
    let task_id = st.ctx.core.create_task(&task).await?;
    st.ctx
        .auth
        .repo()
        .set_task_user(task_id, caller.user.id)
        .await?;
    let rec = AlSubmission {
        sid,
        submission_id,
        task_id,
        user_id: caller.user.id,
        name,
        sha256: sample.sha256.clone(),
        size: sample.file_size,
        metadata: Value::Object(metadata),
        params: Value::Object(params),
        scan_key,
        created_on: Timestamp::now(),
    };
    st.ctx.al_repo.add_al_submission(&rec).await?;
    // The file index of search/file/ (the type is the one file/info/ shows).
    let ftype = views::al_type(&sample.file_type, &sample.mime);
    st.ctx
        .al_repo
        .note_al_file(&rec.sha256, &ftype, rec.created_on)
        .await?;
    st.ctx.wake.notify_waiters();
    st.ctx.wake.notify_one();
    Ok((rec, false))
}

/// An uploaded CaRT is unpacked: its header's `name` wins, other keys go to metadata.
async fn unwrap_cart(
    st: &AlState,
    staged: StagedSample,
    name: &mut Option<String>,
    metadata: &mut Map<String, Value>,
) -> Result<StagedSample> {
    let mut head = [0u8; cart::HEADER_LEN];
    let is_cart = {
        use tokio::io::AsyncReadExt;
        let mut f = tokio::fs::File::open(staged.path()).await?;
        f.read_exact(&mut head).await.is_ok() && cart::is_cart(&head)
    };
    if !is_cart {
        return Ok(staged);
    }
    let bytes = tokio::fs::read(staged.path()).await?;
    let max = st.ctx.core.limits.max_upload;
    let Ok(unpacked) = tokio::task::spawn_blocking(move || cart::unpack(&bytes, max))
        .await
        .map_err(|e| nestbox_core::Error::Invalid(e.to_string()))?
    else {
        // Not a CaRT we can read: scan the bytes as they are.
        return Ok(staged);
    };
    for (k, v) in &unpacked.header {
        match k.as_str() {
            "name" => {
                if let Some(n) = v.as_str() {
                    *name = Some(n.to_owned());
                }
            }
            "classification" => {}
            _ => flatten(k, v, metadata),
        }
    }
    stage_bytes(st, &unpacked.data).await
}

/// `POST /api/v4/submit/`.
pub async fn submit(
    State(st): St,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response> {
    c.require(&["submission_create"])?;
    let (rec, remaining) = with_quota(&st, &c, false, async {
        let parsed = parse(&st, req).await?;
        intake(&st, &c, parsed, false).await
    })
    .await?;
    let loaded = views::load_record(&st, rec).await?;
    Ok(quota_header(
        ok(views::submission_record(&loaded, None)),
        remaining,
    ))
}

/// Runs a submission under the submission quotas (when enforced): a daily submission and
/// a concurrent slot are taken first and given back if the submission fails.
async fn with_quota(
    st: &AlState,
    c: &Caller,
    is_async: bool,
    work: impl std::future::Future<Output = Result<(AlSubmission, bool)>>,
) -> Result<(AlSubmission, Option<u64>)> {
    if !st.ctx.assemblyline.enforce_quota {
        return work.await.map(|(rec, _)| (rec, None));
    }
    let q = st.ctx.assemblyline.quotas_of(&c.user.username);
    let repo = st.ctx.al_repo.as_ref();
    let (slot, remaining) = quota::begin_submission(repo, c.user.id, &q, is_async).await?;
    let done = work.await;
    quota::end_submission(repo, c.user.id, slot, done.is_ok()).await;
    done.map(|(rec, _)| (rec, remaining))
}

fn quota_header(mut r: Response, remaining: Option<u64>) -> Response {
    if let Some(n) = remaining {
        r.headers_mut().insert(
            "x-remaining-quota-submission",
            axum::http::HeaderValue::from(n),
        );
    }
    r
}

/// `POST /api/v4/ingest/`.
pub async fn ingest(
    State(st): St,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response> {
    c.require(&["submission_create"])?;
    let parsed = parse(&st, req).await?;
    let queue = match parsed.data.get("notification_queue") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(q)) if q.len() <= 256 => q.clone(),
        Some(_) => return Err(AlError::bad("Invalid notification queue")),
    };
    let threshold = match parsed.data.get("notification_threshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| AlError::bad("notification_threshold should be and int"))?,
        ),
    };
    let generate_alert = parsed.data.get("generate_alert").and_then(Value::as_bool) == Some(true)
        || parsed
            .data
            .get("params")
            .and_then(|p| p.get("generate_alert"))
            .and_then(Value::as_bool)
            == Some(true);
    let ingest_id = random_id();
    // The ingest row is written inside the quota's reservation: from then on the
    // submission counts as an unfinished ingest by itself.
    let (_, remaining) = with_quota(&st, &c, true, async {
        let (rec, dedup) = intake(&st, &c, parsed, true).await?;
        st.ctx
            .al_repo
            .add_al_ingest(&AlIngest {
                ingest_id: ingest_id.clone(),
                user_id: c.user.id,
                sid: rec.sid.clone(),
                queue,
                threshold,
                generate_alert,
                created_on: Timestamp::now(),
                notified_on: None,
            })
            .await?;
        Ok((rec, dedup))
    })
    .await?;
    Ok(quota_header(
        ok(json!({ "ingest_id": ingest_id })),
        remaining,
    ))
}

/// Pops up to `limit` finished ingests of the caller's queue as messages.
async fn pop(st: &AlState, c: &Caller, nq: &str, limit: usize) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for ing in st.ctx.al_repo.pending_ingests(c.user.id, nq).await? {
        let Some(rec) = st.ctx.al_repo.al_submission(&ing.sid).await? else {
            continue;
        };
        let loaded = views::load_record(st, rec).await?;
        if !loaded.finished() {
            continue;
        }
        let results = views::derive(
            &loaded.rec.sha256,
            loaded.task.as_ref(),
            loaded.report.as_ref(),
        );
        let score = views::max_score(&results);
        if ing.threshold.is_some_and(|t| score < t) {
            st.ctx.al_repo.mark_ingest_notified(&ing.ingest_id).await?;
            continue;
        }
        if !st.ctx.al_repo.mark_ingest_notified(&ing.ingest_id).await? {
            continue;
        }
        out.push(message(&loaded, &results, &ing, score));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

fn message(l: &Loaded, results: &views::Results, ing: &AlIngest, score: i64) -> Value {
    let mut metadata = l.rec.metadata.as_object().cloned().unwrap_or_default();
    metadata.insert("ingest_id".into(), json!(ing.ingest_id));
    metadata.insert(
        "type".into(),
        l.rec.params.get("type").cloned().unwrap_or(json!("INGEST")),
    );
    metadata.insert("ts".into(), json!(iso(ing.created_on)));
    let keys: Vec<&String> = results.results.iter().map(|(k, _)| k).collect();
    let errors: Vec<&String> = results.errors.iter().map(|(k, _)| k).collect();
    json!({
        "submission": {
            "sid": l.rec.sid,
            "time": iso(l.rec.created_on),
            "files": [{"name": l.rec.name, "sha256": l.rec.sha256, "size": l.rec.size}],
            "metadata": metadata,
            "notification": {"queue": ing.queue, "threshold": ing.threshold},
            "params": l.rec.params,
            "scan_key": l.rec.scan_key,
            "file_tree": {},
            "file_infos": {},
            "errors": errors,
            "results": keys,
        },
        "ingest_id": ing.ingest_id,
        "score": score,
        "failure": "",
        "extended_scan": "skipped",
        "ingest_time": iso(ing.created_on),
        "notify_time": iso(Timestamp::now()),
        "retries": 0,
        "alert": ing.generate_alert,
    })
}

/// `GET /api/v4/ingest/get_message/<nq>/`: one message or `null`.
pub async fn get_message(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(nq): Path<String>,
) -> Result<Response> {
    c.require(&["submission_create"])?;
    let mut msgs = pop(&st, &c, &nq, 1).await?;
    Ok(ok(msgs.pop().unwrap_or(Value::Null)))
}

/// `GET /api/v4/ingest/get_message_list/<nq>/?page_size=N` (−1 = all).
pub async fn get_message_list(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(nq): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    c.require(&["submission_create"])?;
    let size = q
        .get("page_size")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(-1);
    let limit = if size < 0 {
        usize::MAX
    } else {
        usize::try_from(size).unwrap_or(usize::MAX)
    };
    Ok(ok(Value::Array(pop(&st, &c, &nq, limit).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_python() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQK").unwrap(), b"hello world\n");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("!!!!").is_none());
    }

    #[test]
    fn metadata_flattens() {
        let mut out = Map::new();
        flatten("", &json!({"a": {"b": 1, "c": "x"}, "d": null}), &mut out);
        assert_eq!(Value::Object(out), json!({"a.b": "1", "a.c": "x"}));
    }
}
