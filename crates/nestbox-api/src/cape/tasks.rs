//! Submission, search, listing and task control (spec cape.md §5.1–§5.3), and DRF's
//! `api-token-auth`.

use axum::Extension;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use nestbox_core::Error as CoreError;
use nestbox_types::{Category, NewTask, TaskId, TaskOptions, TaskQuery, TaskStatus, Timestamp};
use serde_json::{Map, Value, json};

use super::{
    Caller, CapeError, Ctx, app_error, dto, json_bytes, json_response, ok, queued, task_id,
};
use crate::ApiContext;
use crate::common::form::{FormError, FormInput, UploadedFile, parse_tags, read_form};
use nestbox_core::report_fields;

type Result<T, E = CapeError> = std::result::Result<T, E>;

/// Longest `options` string accepted; CAPE stores it in a TEXT column, we refuse abuse.
const MAX_OPTIONS: usize = 64 * 1024;

impl From<FormError> for CapeError {
    fn from(e: FormError) -> Self {
        match e {
            FormError::Malformed(msg) => CapeError::Status(
                StatusCode::BAD_REQUEST,
                format!("Malformed request body: {msg}"),
            ),
            FormError::TooLarge { max } => CapeError::Status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Uploaded file exceeds the maximum allowed size of {max} bytes"),
            ),
            FormError::Internal(e) => e.into(),
        }
    }
}

/// DRF's `request.data`: multipart, urlencoded or JSON (an object's scalar values as
/// fields, arrays as repeated fields; a bare array as repeated `ids`).
pub(crate) async fn read_data(
    ctx: &ApiContext,
    req: Request,
    file_fields: &[&str],
) -> Result<FormInput> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Ok(read_form(&ctx.core, req, file_fields).await?);
    }
    let bytes = axum::body::to_bytes(req.into_body(), 4 << 20)
        .await
        .map_err(|e| CapeError::Status(StatusCode::BAD_REQUEST, e.to_string()))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        CapeError::Status(StatusCode::BAD_REQUEST, format!("JSON parse error - {e}"))
    })?;
    let mut form = FormInput::default();
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Array(items) => {
                        for i in items {
                            form.fields.push((k.clone(), scalar(&i)));
                        }
                    }
                    v => form.fields.push((k, scalar(&v))),
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                form.fields.push(("ids".into(), scalar(&i)));
            }
        }
        _ => {}
    }
    Ok(form)
}

/// CAPE's `force_int`: garbage → 0.
fn force_int(v: Option<&str>) -> i64 {
    v.and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// CAPE's bool strings.
fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "yes" | "on" | "1")
    )
}

/// `parse_request_arguments` onto a task; an error message for the envelope.
fn common_fields(form: &FormInput, task: &mut NewTask, caller: &Caller) -> Result<(), String> {
    let get = |k: &str| form.get(k).unwrap_or("").trim().to_owned();
    let options = form
        .get("lin_options")
        .filter(|s| !s.is_empty())
        .or(form.get("options"))
        .unwrap_or("");
    if options.len() > MAX_OPTIONS {
        return Err(format!(
            "options value is too long ({} bytes, at most {MAX_OPTIONS})",
            options.len()
        ));
    }
    task.package = get("package");
    task.timeout = force_int(form.get("timeout")).max(0);
    task.priority = match force_int(form.get("priority")) {
        0 => 1,
        p => p,
    };
    task.options = TaskOptions::parse(options);
    if let Some(r) = form.get("referrer").filter(|s| !s.is_empty()) {
        task.options.0.insert("referrer".into(), r.to_owned());
    }
    if let Some(tlp) = form.get("tlp").filter(|s| !s.is_empty()) {
        task.options.0.insert("tlp".into(), tlp.to_owned());
    }
    task.machine = get("machine");
    task.platform = get("platform");
    let tags = parse_tags(form.get("tags"));
    if tags.iter().any(|t| t == "x86") && tags.iter().any(|t| t == "x64") {
        return Err("Can't use x64 and x86 tags at the same time".into());
    }
    task.tags = tags;
    task.custom = get("custom");
    task.memory = truthy(form.get("memory"));
    task.enforce_timeout = truthy(form.get("enforce_timeout"));
    task.route = Some(get("route")).filter(|r| !r.is_empty());
    task.clock = form.get("clock").and_then(|c| {
        chrono::NaiveDateTime::parse_from_str(c.trim(), "%m-%d-%Y %H:%M:%S")
            .ok()
            .map(|dt| Timestamp(dt.and_utc().timestamp_micros()))
    });
    // Who submitted: Cuckoo's free-text `owner` gets the CAPE user's name (see README:
    // `owner` is display text, `user_id` is the identity).
    task.owner = caller.username.clone();
    Ok(())
}

/// The machine check of the create views: `""` any, `all` needs `allmachines`, else the
/// label (or name) must exist.
async fn check_machine(ctx: &ApiContext, machine: &str) -> Result<Option<String>> {
    if machine.is_empty() {
        return Ok(None);
    }
    if machine.eq_ignore_ascii_case("all") {
        if !ctx.cape.endpoints.filecreate_allmachines {
            return Ok(Some("Machine=all is disabled using the API".into()));
        }
        return Ok(None);
    }
    let machines = ctx.core.repo.machines().await?;
    if machines
        .iter()
        .any(|m| m.spec.label == machine || m.spec.name == machine)
    {
        return Ok(None);
    }
    let labels: Vec<&str> = machines.iter().map(|m| m.spec.label.as_str()).collect();
    Ok(Some(format!(
        "Machine '{machine}' does not exist. Available: {}",
        labels.join(", ")
    )))
}

async fn add_task(ctx: &ApiContext, task: &NewTask, caller: &Caller) -> Result<i64> {
    let id = ctx.core.create_task(task).await?;
    ctx.auth.repo().set_task_user(id, caller.user_id).await?;
    Ok(id.0)
}

/// The success envelope of the create views.
fn created(ctx: &ApiContext, ids: &[i64], errors: Option<Vec<Value>>, slash_single: bool) -> Value {
    let mut resp = Map::new();
    resp.insert("error".into(), json!(false));
    let message = if ids.len() == 1 {
        format!("Task ID {} has been submitted", ids[0])
    } else {
        format!(
            "Task IDs {} have been submitted",
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    resp.insert(
        "data".into(),
        json!({ "task_ids": ids, "message": message }),
    );
    if let Some(errors) = errors {
        resp.insert("errors".into(), Value::Array(errors));
    }
    if ctx.cape.endpoints.filecreate_status {
        let base = &ctx.cape.url;
        let urls: Vec<String> = if ids.len() == 1 && slash_single {
            vec![format!("{base}/submit/status/{}/", ids[0])]
        } else {
            ids.iter()
                .map(|id| format!("{base}/submit/status/{id}"))
                .collect()
        };
        resp.insert("url".into(), json!(urls));
    }
    Value::Object(resp)
}

/// Turns uploaded files into tasks; per-file problems go to `errors` as CAPE's
/// `{basename: message}` dicts.
async fn file_tasks(
    ctx: &ApiContext,
    files: Vec<UploadedFile>,
    base: &NewTask,
    caller: &Caller,
    unique: bool,
    errors: &mut Vec<Value>,
) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for file in files {
        let name = file
            .filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .to_owned();
        let size = file.staged.digest.size;
        if size == 0 {
            errors.push(json!({ file.filename.clone(): "You uploaded an empty file." }));
            continue;
        }
        if size > ctx.cape.max_sample_size {
            let mb = |b: u64| (b as f64 / f64::from(1u32 << 20)).round();
            errors.push(json!({ file.filename.clone(): format!(
                "Uploaded file exceeds the maximum allowed size in conf/web.conf. Sample size is: {} Allowed size is: {}",
                mb(size), mb(ctx.cape.max_sample_size)
            )}));
            continue;
        }
        if unique && !caller.is_staff {
            let existing = ctx
                .core
                .repo
                .sample_by_hash(&file.staged.digest.sha256)
                .await?;
            let has_tasks = match existing {
                Some(s) => !ctx.core.repo.sample_task_ids(s.id).await?.is_empty(),
                None => false,
            };
            if has_tasks {
                errors.push(json!({ name: "Duplicated file, disable unique option on submit or in conf/web.conf to force submission" }));
                continue;
            }
        }
        // An archive without a named package is demuxed: a task per member worth running.
        let members = if nestbox_core::demux::wanted(base) {
            ctx.core
                .demux(&file.staged, &name, base.options.get("password"))
                .await?
        } else {
            Vec::new()
        };
        if members.is_empty() {
            ids.push(file_task(ctx, file.staged, &file.filename, base, caller).await?);
            continue;
        }
        // The archive is kept as a sample too, and registered as the members' parent
        // sample (CAPE's sample association; their reports' `info.parent_sample`): what
        // was uploaded is never lost.
        let archive = ctx.core.store_sample(file.staged).await?;
        let child = NewTask {
            parent_sample_id: Some(archive.id),
            ..base.clone()
        };
        for member in members {
            ids.push(file_task(ctx, member.staged, &member.name, &child, caller).await?);
        }
    }
    Ok(ids)
}

/// Stores one staged file and queues its task.
async fn file_task(
    ctx: &ApiContext,
    staged: nestbox_core::StagedSample,
    filename: &str,
    base: &NewTask,
    caller: &Caller,
) -> Result<i64> {
    let sample = ctx.core.store_sample(staged).await?;
    let mut t = base.clone();
    t.target = ctx.core.materialize_target(&sample, filename).await?;
    t.sample_id = Some(sample.id);
    add_task(ctx, &t, caller).await
}

/// `POST tasks/create/file/`.
pub async fn tasks_create_file(
    State(ctx): Ctx,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response> {
    if !ctx.cape.endpoints.filecreate {
        return Ok(app_error("File Create API is Disabled"));
    }
    let form = read_data(&ctx, req, &["file"]).await?;
    create_files(&ctx, form, &caller, Category::File).await
}

async fn create_files(
    ctx: &ApiContext,
    mut form: FormInput,
    caller: &Caller,
    category: Category,
) -> Result<Response> {
    let mut files: Vec<UploadedFile> = std::mem::take(&mut form.files)
        .into_iter()
        .filter(|f| f.field == "file")
        .collect();
    if files.is_empty() {
        return Ok(app_error("No file was submitted"));
    }
    let multi = category == Category::Static || ctx.cape.endpoints.filecreate_multifile;
    if !multi {
        files.truncate(1);
    }
    let mut task = NewTask::new(category, String::new());
    if let Err(msg) = common_fields(&form, &mut task, caller) {
        return Ok(app_error(msg));
    }
    if category == Category::File {
        if truthy(form.get("static")) {
            task.category = Category::Static;
        }
        if let Some(msg) = check_machine(ctx, &task.machine).await? {
            return Ok(app_error(msg));
        }
    }
    let unique = truthy(form.get("unique"));
    let mut errors = Vec::new();
    let ids = file_tasks(ctx, files, &task, caller, unique, &mut errors).await?;
    if ids.is_empty() {
        return Ok(ok(json!({
            "error": true,
            "error_value": "Error adding task to database",
            "errors": errors,
        })));
    }
    queued(ctx);
    if category == Category::Static {
        let mut v = created(ctx, &ids, None, true);
        if ids.len() == 1 {
            v["data"]["message"] = json!(format!("Task ID(s) {} has been submitted", ids[0]));
        }
        return Ok(ok(v));
    }
    Ok(ok(created(ctx, &ids, Some(errors), true)))
}

/// `POST tasks/create/static/`.
pub async fn tasks_create_static(
    State(ctx): Ctx,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response> {
    if !ctx.cape.endpoints.staticextraction {
        return Ok(app_error("File Create API is Disabled"));
    }
    let form = read_data(&ctx, req, &["file"]).await?;
    create_files(&ctx, form, &caller, Category::Static).await
}

/// `POST tasks/create/url/` (form or JSON).
pub async fn tasks_create_url(
    State(ctx): Ctx,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response> {
    if !ctx.cape.endpoints.urlcreate {
        return Ok(app_error("URL Create API is Disabled"));
    }
    let form = read_data(&ctx, req, &[]).await?;
    let url = form.get("url").unwrap_or("").trim().to_owned();
    if url.is_empty() {
        return Ok(app_error("URL value is empty"));
    }
    let mut task = NewTask::new(Category::Url, url);
    if let Err(msg) = common_fields(&form, &mut task, &caller) {
        return Ok(app_error(msg));
    }
    if let Some(msg) = check_machine(&ctx, &task.machine).await? {
        return Ok(app_error(msg));
    }
    let id = add_task(&ctx, &task, &caller).await?;
    queued(&ctx);
    Ok(ok(created(&ctx, &[id], None, false)))
}

/// `POST tasks/create/dlnexec/`. nestbox never fetches samples from the internet on a
/// client's behalf, so once enabled this answers CAPE's download-failure shape.
pub async fn tasks_create_dlnexec(State(ctx): Ctx, req: Request) -> Result<Response> {
    if !ctx.cape.endpoints.dlnexeccreate {
        return Ok(app_error("DL&Exec Create API is Disabled"));
    }
    let form = read_data(&ctx, req, &[]).await?;
    if form.get("dlnexec").unwrap_or("").trim().is_empty() {
        return Ok(app_error("URL value is empty"));
    }
    Ok(ok(json!({ "error": "Was impossible to retrieve url" })))
}

/// `POST tasks/create/download_services/`: hashes are served from our own store (no
/// VirusTotal); unknown ones are per-hash errors.
pub async fn tasks_create_download_services(
    State(ctx): Ctx,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response> {
    if !ctx.cape.endpoints.downloading_services {
        return Ok(app_error("Download sample API is Disabled"));
    }
    let form = read_data(&ctx, req, &[]).await?;
    let hashes: Vec<String> = form
        .fields
        .iter()
        .filter(|(k, _)| k == "hashes")
        .flat_map(|(_, v)| v.split(',').map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .collect();
    if hashes.is_empty() {
        return Ok(app_error("hashes value is empty"));
    }
    let mut task = NewTask::new(Category::File, String::new());
    if let Err(msg) = common_fields(&form, &mut task, &caller) {
        return Ok(app_error(msg));
    }
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for h in hashes.iter().take(1000) {
        let valid = matches!(h.len(), 32 | 40 | 64) && h.bytes().all(|b| b.is_ascii_hexdigit());
        match if valid {
            ctx.core
                .repo
                .sample_by_hash(&h.to_ascii_lowercase())
                .await?
        } else {
            None
        } {
            Some(sample) => {
                let mut t = task.clone();
                t.target = ctx.core.materialize_target(&sample, &sample.sha256).await?;
                t.sample_id = Some(sample.id);
                ids.push(add_task(&ctx, &t, &caller).await?);
            }
            None => errors.push(json!({ h.clone(): "Sample not found in the local store" })),
        }
    }
    if ids.is_empty() {
        return Ok(ok(json!({
            "error": true,
            "error_value": "Error adding task to database",
            "errors": errors,
        })));
    }
    queued(&ctx);
    Ok(ok(created(&ctx, &ids, Some(errors), true)))
}

/// `POST api-token-auth/` (DRF `obtain_auth_token`).
pub async fn api_token_auth(State(ctx): Ctx, req: Request) -> Result<Response> {
    let form = read_data(&ctx, req, &[]).await?;
    let username = form.get("username").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let mut missing = Map::new();
    for (k, v) in [("username", username), ("password", password)] {
        if v.is_empty() {
            missing.insert(k.into(), json!(["This field is required."]));
        }
    }
    let bad = |v: Value| {
        let mut r = json_response(&v);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    if !missing.is_empty() {
        return Ok(bad(Value::Object(missing)));
    }
    match ctx.auth.login(username, password).await? {
        Some(user) => {
            let token = ctx.auth.cape_token(&user).await?;
            Ok(ok(json!({ "token": token })))
        }
        None => Ok(bad(json!({
            "non_field_errors": ["Unable to log in with provided credentials."]
        }))),
    }
}

/// A task as view/list/search return it.
async fn task_entry(ctx: &ApiContext, t: &nestbox_types::Task) -> Result<Map<String, Value>> {
    let user_id = ctx.auth.repo().task_user(t.id).await?;
    Ok(dto::task(t, user_id))
}

/// A rendered JSON body for the response cache.
fn body_of(v: &Value) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

fn basename(target: &str) -> String {
    target.rsplit('/').next().unwrap_or("").to_owned()
}

/// `GET tasks/search/<md5|sha1|sha256>/<hash>/`.
pub async fn tasks_search(
    State(ctx): Ctx,
    Path((kind, hash)): Path<(String, String)>,
) -> Result<Response> {
    let len = match kind.as_str() {
        "md5" => 32,
        "sha1" => 40,
        "sha256" => 64,
        _ => return Err(CapeError::Page(StatusCode::NOT_FOUND)),
    };
    if hash.len() != len || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    if !ctx.cape.endpoints.tasksearch {
        return Ok(app_error("Task Search API is Disabled"));
    }
    let Some(sample) = ctx
        .core
        .repo
        .sample_by_hash(&hash.to_ascii_lowercase())
        .await?
    else {
        return Ok(ok(json!({ "data": [], "error": false })));
    };
    let tasks = ctx
        .core
        .list_tasks(&TaskQuery {
            sample_id: Some(sample.id),
            ..Default::default()
        })
        .await?;
    let mut data = Vec::new();
    for t in &tasks {
        let mut e = task_entry(&ctx, t).await?;
        e.insert("target".into(), json!(basename(&t.spec.target)));
        data.push(Value::Object(e));
    }
    Ok(ok(json!({ "error": false, "data": data })))
}

/// `POST tasks/extendedsearch/`: `id`/`ids` and `tlp` from the task store, `malscore` and
/// the options of [`report_fields::INDEXED`] from the report index (exact values, or a
/// case-insensitive regex when the value holds regex characters, as CAPE's
/// `perform_search`); the other valid CAPE options name report parts nestbox does not
/// produce and return no records.
pub async fn tasks_extendedsearch(State(ctx): Ctx, req: Request) -> Result<Response> {
    if !ctx.cape.endpoints.extendedtasksearch {
        return Ok(app_error("Extended Task Search API is Disabled"));
    }
    const TERMS: &[&str] = &[
        "id",
        "ids",
        "tags_tasks",
        "package",
        "ttp",
        "malscore",
        "name",
        "type",
        "file",
        "command",
        "configs",
        "resolvedapi",
        "key",
        "mutex",
        "domain",
        "ip",
        "asn",
        "asn_name",
        "signature",
        "signame",
        "detections",
        "url",
        "iconhash",
        "iconfuzzy",
        "surihttp",
        "suritls",
        "surisid",
        "surimsg",
        "surialert",
        "suriurl",
        "surifile",
        "procmemyara",
        "procdumpyara",
        "virustotal",
        "machinename",
        "machinelabel",
        "comment",
        "custom",
        "target_sha256",
        "tlp",
        "ja3_hash",
        "ja3_string",
        "dhash",
        "dport",
        "sport",
        "port",
        "extracted_tool",
        "ssdeep",
        "clamav",
        "yaraname",
        "capeyara",
        "capetype",
        "md5",
        "sha1",
        "sha256",
        "sha3",
        "sha512",
        "crc32",
        "die",
        "trid",
        "magika",
        "imphash",
    ];
    let form = read_data(&ctx, req, &[]).await?;
    let term = form.get("option").unwrap_or("").trim().to_owned();
    let value = form.get("argument").unwrap_or("").trim().to_owned();
    match (term.is_empty(), value.is_empty()) {
        (true, true) => return Ok(app_error("No option or argument provided.")),
        (true, false) => return Ok(app_error("No option provided.")),
        (false, true) => return Ok(app_error("No argument provided.")),
        _ => {}
    }
    if !TERMS.contains(&term.as_str()) {
        return Ok(app_error(format!(
            "Invalid Option. '{term}' is not a valid option."
        )));
    }
    let limit = force_int(form.get("search_limit"));
    let limit = if limit <= 0 { 50 } else { limit.min(1000) };
    let mut ids: Vec<TaskId> = Vec::new();
    match term.as_str() {
        "id" | "ids" => {
            for part in value.split(',') {
                match part.trim().parse::<i64>() {
                    Ok(n) if n > 0 => ids.push(TaskId(n)),
                    _ => return Ok(app_error("Not all values are valid task ids")),
                }
            }
        }
        "tlp" => {
            // Not in the report: the task's options, newest first.
            let all = ctx.core.list_tasks(&TaskQuery::default()).await?;
            ids = all
                .iter()
                .rev()
                .filter(|t| t.spec.options.get("tlp") == Some(value.as_str()))
                .map(|t| t.id)
                .collect();
        }
        "malscore" => {
            // `{"$gte": float(value)}` on the indexed score.
            if let Ok(min) = value.parse::<f64>() {
                let page = ctx
                    .core
                    .repo
                    .browse_tasks(&nestbox_types::browse::TaskPageQuery {
                        limit,
                        min_score: Some(min),
                        ..Default::default()
                    })
                    .await?;
                ids = page.into_iter().map(|s| s.task.id).collect();
            }
        }
        t if report_fields::is_indexed(t) => {
            ids = indexed_search(&ctx, t, &value, limit).await?;
            if matches!(t, "md5" | "sha1" | "sha256" | "target_sha256") {
                // The submitted sample's tasks, reported or not yet.
                if let Some(s) = ctx
                    .core
                    .repo
                    .sample_by_hash(&value.to_ascii_lowercase())
                    .await?
                {
                    for id in ctx.core.repo.sample_task_ids(s.id).await?.into_iter().rev() {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                }
            }
        }
        // Valid CAPE options over report parts nestbox does not produce (VirusTotal, icons,
        // JA3, procmemory YARA, comments, …): nothing can match.
        _ => {}
    }
    let mut data = Vec::new();
    for id in ids.into_iter().take(usize::try_from(limit).unwrap_or(50)) {
        let Some(t) = ctx.core.repo.task(id).await? else {
            continue;
        };
        if t.status != TaskStatus::Reported {
            data.push(json!({ "analysis": { "status": t.status.as_str(), "id": t.id.0 } }));
            continue;
        }
        let report = report_value(&ctx, t.id).await;
        let info = report.as_ref().and_then(|r| r.get("info")).cloned();
        data.push(json!({
            "info": info.unwrap_or_else(|| json!({ "id": t.id.0 })),
            "malscore": report.as_ref().and_then(|r| r.get("malscore")).cloned().unwrap_or(json!(0.0)),
            "detections": report.as_ref().and_then(|r| r.get("detections")).cloned().unwrap_or(json!([])),
        }));
    }
    if data.is_empty() {
        return Ok(app_error("Unable to retrieve records"));
    }
    Ok(ok(json!({ "error": false, "data": data })))
}

/// Most distinct values a pattern search matches against.
const PATTERN_VALUES: i64 = 200_000;

/// `perform_search` on one indexed option: equality after CAPE's normalisation, or a
/// case-insensitive regex (at most 256 characters) matched against the distinct indexed
/// values when the argument holds `^$|?*+()[]{}`.
async fn indexed_search(
    ctx: &ApiContext,
    option: &str,
    value: &str,
    limit: i64,
) -> Result<Vec<TaskId>> {
    let repo = &ctx.core.repo;
    let is_pattern = value.contains(['^', '$', '|', '?', '*', '+', '(', ')', '[', ']', '{', '}']);
    let values = if is_pattern && !matches!(option, "port" | "dport" | "sport") {
        if value.len() > 256 {
            return Ok(Vec::new());
        }
        let Ok(re) = regex::RegexBuilder::new(value)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
        else {
            return Ok(Vec::new());
        };
        repo.report_field_values(option, PATTERN_VALUES)
            .await?
            .into_iter()
            .filter(|v| re.is_match(v))
            .collect()
    } else {
        let v = report_fields::normalize(option, value);
        match option {
            "port" | "dport" | "sport" if v.parse::<u16>().is_err() => return Ok(Vec::new()),
            "ttp" if !valid_ttp(&v) => return Ok(Vec::new()),
            _ => {}
        }
        vec![v]
    };
    if values.is_empty() {
        return Ok(Vec::new());
    }
    Ok(repo.tasks_by_report_field(option, &values, limit).await?)
}

/// CAPE's `validate_ttp`: `T1234` or `T1234.001`.
fn valid_ttp(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

/// The stored canonical report as JSON, if any.
pub(crate) async fn report_value(ctx: &ApiContext, id: TaskId) -> Option<Value> {
    let bytes = ctx
        .core
        .blobs
        .get(&nestbox_core::keys::report_json(id))
        .await
        .ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Query of `tasks/list`.
#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    option: Option<String>,
    category: Option<String>,
    completed_after: Option<String>,
    ids: Option<String>,
}

fn list_int(s: &str) -> Result<i64> {
    // `\d+` route segments.
    Ok(task_id(s)?.0)
}

async fn list(
    ctx: &ApiContext,
    limit: Option<&str>,
    offset: Option<&str>,
    window: Option<&str>,
    q: ListQuery,
) -> Result<Response> {
    let limit = limit.map(list_int).transpose()?;
    let offset = offset.map(list_int).transpose()?;
    let window = window.map(list_int).transpose()?;
    if !ctx.cape.endpoints.tasklist {
        return Ok(app_error("Task List API is Disabled"));
    }
    let ep = &ctx.cape.endpoints;
    let mut resp = Map::new();
    let mut limit = match limit {
        Some(l) if l != 0 => l,
        _ => ep.tasklist_defaultlimit,
    };
    if limit > ep.tasklist_maxlimit {
        resp.insert(
            "warning".into(),
            json!("Task limit exceeds API configured limit."),
        );
        limit = ep.tasklist_maxlimit;
    }
    let offset = offset.filter(|o| *o != 0);
    let mut completed_after = match q.completed_after.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(secs) => Some(Timestamp::from_secs(secs)),
            // int() of garbage raises upstream (500); an envelope error is kinder.
            Err(_) => return Ok(app_error("completed_after must be a unix timestamp")),
        },
    };
    if completed_after.is_none()
        && let Some(w) = window.filter(|w| *w != 0)
    {
        if ep.tasklist_maxwindow > 0 && w > ep.tasklist_maxwindow {
            return Ok(app_error(
                "The Window You Specified is greater than the configured maximum",
            ));
        }
        completed_after = Some(Timestamp::from_secs(
            Timestamp::now().secs() - w.saturating_mul(60),
        ));
    }
    let statuses: Option<Vec<TaskStatus>> = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split('|').filter_map(|x| x.trim().parse().ok()).collect());
    resp.insert("data".into(), json!([]));
    let config_note = format!(
        "Limit: {limit}, Offset: {}",
        offset.map_or("None".to_owned(), |o| o.to_string())
    );
    resp.insert("config".into(), json!(config_note));
    resp.insert("buf".into(), json!(0));
    if statuses.as_ref().is_some_and(Vec::is_empty) {
        // Only unknown statuses were asked for: nothing matches.
        return Ok(ok(Value::Object(resp)));
    }
    // CAPE orders by completed_on DESC; filters and paging happen in the store.
    let query = TaskQuery {
        completed_after,
        any_status: statuses.unwrap_or_default(),
        category: match q.category.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => match Category::parse(c) {
                Some(c) => Some(c),
                // An unknown category matches nothing.
                None => return Ok(ok(Value::Object(resp))),
            },
            None => None,
        },
        options_contain: q.option.clone().filter(|o| !o.is_empty()),
        newest_first: true,
        limit: Some(limit.max(0)),
        offset,
        ..Default::default()
    };
    let ids_only = q.ids.is_some();
    let render = || async {
        let page = ctx.core.list_tasks(&query).await?;
        if ids_only {
            let ids: Vec<Value> = page.iter().map(|t| json!({ "id": t.id.0 })).collect();
            resp.insert("data".into(), Value::Array(ids));
        } else {
            let mut data = Vec::new();
            for t in &page {
                data.push(Value::Object(task_entry(ctx, t).await?));
            }
            resp.insert("buf".into(), json!(data.len()));
            resp.insert("data".into(), Value::Array(data));
        }
        Ok::<_, CapeError>(Some(body_of(&Value::Object(resp))))
    };
    // The page changes only when the store does (the data-version cache Cuckoo's list
    // uses), unless a `window` makes it a function of the clock too.
    let body = if window.is_some_and(|w| w != 0) && q.completed_after.is_none() {
        render().await?
    } else {
        let key = format!("cape:list:{query:?}:{ids_only}:{}", config_note);
        crate::common::cache::cached(ctx, key, render).await?
    };
    Ok(json_bytes(body.unwrap_or_default()))
}

/// `GET tasks/list/`.
pub async fn tasks_list0(State(ctx): Ctx, Query(q): Query<ListQuery>) -> Result<Response> {
    list(&ctx, None, None, None, q).await
}

/// `GET tasks/list/<limit>/`.
pub async fn tasks_list1(
    State(ctx): Ctx,
    Path(limit): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    list(&ctx, Some(&limit), None, None, q).await
}

/// `GET tasks/list/<limit>/<offset>/`.
pub async fn tasks_list2(
    State(ctx): Ctx,
    Path((limit, offset)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    list(&ctx, Some(&limit), Some(&offset), None, q).await
}

/// `GET tasks/list/<limit>/<offset>/<window>/`.
pub async fn tasks_list3(
    State(ctx): Ctx,
    Path((limit, offset, window)): Path<(String, String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    list(&ctx, Some(&limit), Some(&offset), Some(&window), q).await
}

/// `GET tasks/get/latests/<hours>/` (no switch upstream).
pub async fn tasks_latests(State(ctx): Ctx, Path(hours): Path<String>) -> Result<Response> {
    let hours = task_id(&hours)?.0;
    let after = Timestamp::from_secs(Timestamp::now().secs() - hours.saturating_mul(3600));
    let tasks = ctx
        .core
        .list_tasks(&TaskQuery {
            completed_after: Some(after),
            ..Default::default()
        })
        .await?;
    let mut ids = Vec::new();
    for t in &tasks {
        ids.push(Value::Object(task_entry(&ctx, t).await?));
    }
    Ok(ok(json!({ "error": false, "ids": ids })))
}

/// `GET tasks/stats/`: always empty upstream (its `between()` arguments are reversed).
pub async fn tasks_stats() -> Response {
    ok(json!({ "error": false, "stats": {} }))
}

/// `GET tasks/statistics/<days>/` (capital `Error`, as upstream).
pub async fn tasks_statistics(State(ctx): Ctx, Path(days): Path<String>) -> Result<Response> {
    if days.is_empty() || !days.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(ok(
            json!({ "Error": true, "error_value": "Provide days as number" }),
        ));
    }
    let counts = ctx.core.repo.status_counts().await?;
    Ok(ok(json!({
        "Error": false,
        "data": {
            "signatures": [], "processing": [], "reporting": [], "detections": {},
            "asns": {}, "top_samples": {}, "custom_statistics": {},
            "tasks": counts.by_status,
        }
    })))
}

/// `GET tasks/view/<id>/`.
pub async fn tasks_view(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskview {
        return Ok(app_error("Task View API is Disabled"));
    }
    // Clients poll this: the answer is cached until the store changes (a report is
    // written before the status that announces it, so it is never missed).
    let body = crate::common::cache::cached(&ctx, format!("cape:view:{}", id.0), || async {
        let Some(mut t) = ctx.core.repo.task(id).await? else {
            return Ok::<_, CapeError>(Some(body_of(&json!({
                "error": true, "error_value": "Task not found in database"
            }))));
        };
        if t.status == TaskStatus::Recovered
            && let Some(n) = recovery_target(&t.spec.custom)
            && let Some(new) = ctx.core.repo.task(n).await?
        {
            t = new;
        }
        let mut entry = task_entry(&ctx, &t).await?;
        if t.spec.category != Category::Url {
            entry.insert("target".into(), json!(basename(&t.spec.target)));
        }
        if t.status == TaskStatus::Reported
            && let Some(r) = report_value(&ctx, t.id).await
        {
            entry.insert(
                "malscore".into(),
                r.get("malscore").cloned().unwrap_or(json!(0.0)),
            );
            entry.insert(
                "detections".into(),
                r.get("detections").cloned().unwrap_or(json!([])),
            );
        }
        Ok(Some(body_of(&json!({ "error": false, "data": entry }))))
    })
    .await?;
    Ok(json_bytes(body.unwrap_or_default()))
}

/// `Recovery_<N>` → N.
pub(crate) fn recovery_target(custom: &str) -> Option<TaskId> {
    let n = custom.strip_prefix("Recovery_")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok().map(TaskId))
        .flatten()
}

/// `GET tasks/status/<id>/`.
pub async fn tasks_status(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskstatus {
        return Ok(app_error("Task status API is disabled"));
    }
    match ctx.core.repo.task(id).await? {
        Some(t) => Ok(ok(json!({ "error": false, "data": t.status.as_str() }))),
        None => Ok(app_error("Task does not exist")),
    }
}

/// `POST tasks/status/<id>/` `status=finish`: needs `[user_stop]` and a guest agent; with
/// no agent-driven machinery this answers `{}` like upstream when nothing applies.
pub async fn tasks_status_post(
    State(ctx): Ctx,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskstatus {
        return Ok(app_error("Task status API is disabled"));
    }
    let _ = read_data(&ctx, req, &[]).await?;
    if ctx.core.repo.task(id).await?.is_none() {
        return Ok(app_error("Task does not exist"));
    }
    Ok(ok(json!({})))
}

/// `GET tasks/reschedule/<id>/`.
pub async fn tasks_reschedule(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskresched {
        return Ok(app_error("Task Reschedule API is Disabled"));
    }
    let failed = || {
        app_error(format!(
            "An error occurred while trying to reschedule Task ID {id}"
        ))
    };
    let user = ctx.auth.repo().task_user(id).await?;
    match ctx.core.reschedule(id, None).await {
        Ok(new_id) => {
            ctx.core
                .repo
                .set_custom(id, &format!("Recovery_{new_id}"))
                .await?;
            ctx.auth.repo().set_task_user(new_id, user).await?;
            queued(&ctx);
            Ok(ok(json!({
                "error": false,
                "data": {
                    "new_task_id": new_id.0,
                    "message": format!("Task ID {id} has been rescheduled"),
                }
            })))
        }
        Err(CoreError::TaskNotFound(_) | CoreError::Invalid(_)) => Ok(failed()),
        Err(e) => Err(e.into()),
    }
}

/// `GET tasks/reprocess/<id>/`.
pub async fn tasks_reprocess(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskreprocess {
        return Ok(app_error("Task Reprocess API is Disabled"));
    }
    let Some(t) = ctx.core.repo.task(id).await? else {
        return Ok(app_error("Task ID does not exist in the database"));
    };
    const FROM: [TaskStatus; 4] = [
        TaskStatus::Reported,
        TaskStatus::Recovered,
        TaskStatus::FailedProcessing,
        TaskStatus::FailedReporting,
    ];
    let moved = FROM.contains(&t.status)
        && ctx
            .core
            .repo
            .transition(id, &FROM, TaskStatus::Completed)
            .await?;
    if !moved {
        return Ok(app_error(format!(
            "Task ID {id} cannot be reprocessed in status {}",
            t.status
        )));
    }
    queued(&ctx);
    Ok(ok(json!({
        "error": false,
        "data": format!("Task ID {id} with status {} marked for reprocessing", t.status),
    })))
}

/// CAPE's `validate_task(id, status)`: the task (following `Recovery_<N>`) if it is in
/// `wanted`, else the envelope error.
pub(crate) async fn validate_task(
    ctx: &ApiContext,
    id: TaskId,
    wanted: TaskStatus,
) -> Result<Result<nestbox_types::Task, String>> {
    let Some(mut t) = ctx.core.repo.task(id).await? else {
        return Ok(Err("Task does not exist".into()));
    };
    if t.status == TaskStatus::Recovered
        && let Some(n) = recovery_target(&t.spec.custom)
    {
        match ctx.core.repo.task(n).await? {
            Some(new) => t = new,
            None => return Ok(Err("Task does not exist".into())),
        }
    }
    if t.status == wanted {
        return Ok(Ok(t));
    }
    if matches!(
        t.status,
        TaskStatus::FailedAnalysis | TaskStatus::FailedProcessing | TaskStatus::FailedReporting
    ) {
        return Ok(Err("Task failed".into()));
    }
    if t.status != TaskStatus::Reported {
        return Ok(Err("Task is still being analyzed".into()));
    }
    Ok(Ok(t))
}

/// Parses `N`, `N,M,…` or `A-B` as upstream's strict `tasks_delete` does.
fn parse_id_list(s: &str) -> Result<Vec<i64>, CapeError> {
    fn one(tok: &str) -> Option<i64> {
        let tok = tok.trim();
        let norm = tok.trim_start_matches('0');
        let norm = if norm.is_empty() { "0" } else { norm };
        if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) || norm.len() > 10 {
            return None;
        }
        let n: i64 = norm.parse().ok()?;
        (1..=2_147_483_647).contains(&n).then_some(n)
    }
    let bad = |m: &str| CapeError::Status(StatusCode::BAD_REQUEST, m.to_owned());
    if s.contains('-') {
        let parts: Vec<&str> = s.split('-').collect();
        let (Some(a), Some(b)) = (
            parts.first().and_then(|p| one(p)),
            parts.get(1).and_then(|p| one(p)),
        ) else {
            return Err(bad(
                "Malformed task ID range (expected START-END positive integers)",
            ));
        };
        if parts.len() != 2 {
            return Err(bad(
                "Malformed task ID range (expected START-END positive integers)",
            ));
        }
        if a > b {
            return Err(bad("Start Task ID is bigger than End Task ID"));
        }
        if b - a >= 10_000 {
            // Upstream walks any range lazily; we cap one call at 10,000 ids.
            return Err(bad(
                "Task ID range is too large (at most 10000 ids per call)",
            ));
        }
        return Ok((a..=b).collect());
    }
    let toks: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let ids: Option<Vec<i64>> = toks.iter().map(|t| one(t)).collect();
    match ids {
        Some(ids) if !ids.is_empty() => Ok(ids),
        _ => Err(bad("Malformed task ID (expected positive integers)")),
    }
}

async fn delete(
    ctx: &ApiContext,
    caller: &Caller,
    ids: &str,
    status: Option<&str>,
) -> Result<Response> {
    if !(ctx.cape.endpoints.taskdelete || caller.is_staff) {
        return Ok(app_error("Task Deletion API is Disabled"));
    }
    // The route's `<ids>` is `[\d,-]+` upstream: anything else is no route.
    if ids.is_empty()
        || !ids
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
    {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    let ids = parse_id_list(ids)?;
    let wanted = match status {
        None => TaskStatus::Reported,
        Some(s) => match s.parse() {
            Ok(st) => st,
            Err(_) => return Ok(app_error("Specified wrong task status")),
        },
    };
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for id in ids {
        let id = TaskId(id);
        match validate_task(ctx, id, wanted).await? {
            Ok(_) => match ctx.core.delete_task(id).await {
                Ok(()) => deleted.push(id.to_string()),
                Err(CoreError::TaskNotFound(_) | CoreError::WrongStatus { .. }) => {
                    failed.push(id.to_string());
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => failed.push(id.to_string()),
        }
    }
    let mut resp = Map::new();
    if !deleted.is_empty() {
        resp.insert(
            "data".into(),
            json!(format!(
                "Task(s) ID(s) {} has been deleted",
                deleted.join(",")
            )),
        );
    }
    if !failed.is_empty() {
        resp.insert("error".into(), json!(true));
        resp.insert(
            "failed".into(),
            json!(format!(
                "Task(s) ID(s) {} failed to remove",
                failed.join(",")
            )),
        );
    }
    Ok(ok(Value::Object(resp)))
}

/// `GET tasks/delete/<ids>/`.
pub async fn tasks_delete(
    State(ctx): Ctx,
    Extension(caller): Extension<Caller>,
    Path(ids): Path<String>,
) -> Result<Response> {
    delete(&ctx, &caller, &ids, None).await
}

/// `GET tasks/delete/<ids>/<status>/`.
pub async fn tasks_delete_status(
    State(ctx): Ctx,
    Extension(caller): Extension<Caller>,
    Path((ids, status)): Path<(String, String)>,
) -> Result<Response> {
    delete(&ctx, &caller, &ids, Some(&status)).await
}

/// `POST tasks/delete_many/` (no switch: dist.py's machine path).
pub async fn tasks_delete_many(State(ctx): Ctx, req: Request) -> Result<Response> {
    let form = read_data(&ctx, req, &[]).await?;
    let raw: Vec<String> = form
        .fields
        .iter()
        .filter(|(k, _)| k == "ids")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    const MAX_IDS: usize = 10_000;
    if raw.len() > MAX_IDS {
        return Ok(app_error(format!(
            "Too many ids: {} (at most {MAX_IDS} per call)",
            raw.len()
        )));
    }
    let mut resp = Map::new();
    let mut invalid = Vec::new();
    let mut partial = false;
    for s in raw {
        let Some(id) = (s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .filter(|n| *n > 0)
        else {
            invalid.push(json!(s));
            continue;
        };
        let outcome = match ctx.core.delete_task(TaskId(id)).await {
            Ok(()) => "deleted",
            Err(CoreError::TaskNotFound(_)) => "not exists",
            Err(CoreError::WrongStatus { .. }) => "running",
            Err(e) => {
                tracing::error!(error = %e, task_id = id, "delete_many failed");
                partial = true;
                "error"
            }
        };
        resp.insert(id.to_string(), json!(outcome));
    }
    if !invalid.is_empty() {
        partial = true;
        resp.insert("invalid_ids".into(), Value::Array(invalid));
    }
    if partial {
        resp.insert("error".into(), json!(true));
    }
    resp.insert(
        "status".into(),
        json!(if partial { "partial_error" } else { "OK" }),
    );
    Ok(ok(Value::Object(resp)))
}

/// Attaches `Content-Disposition: attachment; filename=…`.
pub(crate) fn attachment(mut r: Response, filename: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename={filename}")) {
        r.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_like_upstream() {
        assert_eq!(parse_id_list("1").unwrap(), vec![1]);
        assert_eq!(parse_id_list("1,2, 3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_id_list("2-4").unwrap(), vec![2, 3, 4]);
        assert_eq!(parse_id_list("007").unwrap(), vec![7]);
        for bad in ["5-3", "-5", "1-2-3", "0", ",", "abc", "99999999999"] {
            assert!(parse_id_list(bad).is_err(), "{bad}");
        }
        assert_eq!(recovery_target("Recovery_12"), Some(TaskId(12)));
        assert_eq!(recovery_target("Recovery_"), None);
    }
}
