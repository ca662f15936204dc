//! `tasks/*` endpoints: creation, listing, view and control (spec §3.1–§3.4, §3.8).

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use nestbox_analyzers::archive::{Member, package_for_name};
use nestbox_core::Error as CoreError;
use nestbox_types::{Category, NewSubmission, NewTask, TaskId, TaskOptions, TaskQuery, Timestamp};
use serde_json::json;

use super::dto::{Dates, TaskView};
use super::{Ctx, CuckooError, int_segment, json_body, json_style, ok, render, status_ok};
use crate::common::form::{FormError, FormInput, parse_tags, read_form};

type Result<T, E = CuckooError> = std::result::Result<T, E>;

impl From<FormError> for CuckooError {
    fn from(e: FormError) -> Self {
        match e {
            FormError::Malformed(msg) => {
                tracing::debug!(%msg, "cuckoo api: malformed form");
                CuckooError::Page(StatusCode::BAD_REQUEST)
            }
            FormError::TooLarge { max } => CuckooError::Message(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The uploaded file exceeds the maximum allowed size of {max} bytes"),
            ),
            FormError::Internal(e) => e.into(),
        }
    }
}

/// Cuckoo's `parse_bool`: known words, else `bool(int(x))`, else an exception (HTML 500).
fn parse_bool(v: Option<&str>) -> Result<bool> {
    let Some(v) = v else { return Ok(false) };
    match v {
        "true" | "True" | "yes" | "1" | "on" => Ok(true),
        "false" | "False" | "None" | "no" | "0" | "off" => Ok(false),
        other => other
            .trim()
            .parse::<i64>()
            .map(|n| n != 0)
            .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

/// `clock` in `%m-%d-%Y %H:%M:%S`; an invalid value means "now" (upstream logs a warning).
fn parse_clock(v: Option<&str>) -> Option<Timestamp> {
    let v = v?.trim();
    if v.is_empty() {
        return None;
    }
    match chrono::NaiveDateTime::parse_from_str(v, "%m-%d-%Y %H:%M:%S") {
        Ok(dt) => Some(Timestamp(dt.and_utc().timestamp_micros())),
        Err(_) => {
            tracing::warn!(clock = v, "invalid clock value, using the current time");
            None
        }
    }
}

fn int_or(v: Option<&str>, default: i64) -> i64 {
    v.and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|n| *n != 0)
        .unwrap_or(default)
}

/// The fields every create endpoint reads the same way.
fn common_fields(form: &FormInput, task: &mut NewTask) {
    let get = |k: &str| form.get(k).unwrap_or("").to_owned();
    task.package = get("package");
    task.timeout = form
        .get("timeout")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    task.priority = int_or(form.get("priority"), 1);
    task.options = TaskOptions::parse(form.get("options").unwrap_or(""));
    task.machine = get("machine");
    task.platform = get("platform");
    task.tags = parse_tags(form.get("tags"));
    task.custom = get("custom");
    task.owner = get("owner");
    task.clock = parse_clock(form.get("clock"));
    task.route = form
        .get("route")
        .map(str::to_owned)
        .filter(|r| !r.is_empty());
}

fn queued(ctx: &crate::ApiContext) {
    ctx.wake.notify_waiters();
    ctx.wake.notify_one();
}

/// `POST /tasks/create/file`.
pub async fn tasks_create_file(State(ctx): Ctx, req: Request) -> Result<Response> {
    let form = read_form(&ctx.core, req, &["file"]).await?;
    let mut task = NewTask::new(Category::File, String::new());
    common_fields(&form, &mut task);
    task.memory = parse_bool(form.get("memory"))?;
    task.enforce_timeout = parse_bool(form.get("enforce_timeout"))?;
    let unique = parse_bool(form.get("unique"))?;
    let Some(file) = form.files.into_iter().find(|f| f.field == "file") else {
        return Err(CuckooError::Page(StatusCode::BAD_REQUEST));
    };
    if unique
        && ctx
            .core
            .repo
            .sample_by_hash(&file.staged.digest.sha256)
            .await?
            .is_some()
    {
        return Err(CuckooError::bad_request(
            "This file has already been submitted",
        ));
    }
    let sample = ctx.core.store_sample(file.staged).await?;
    task.target = ctx.core.materialize_target(&sample, &file.filename).await?;
    task.sample_id = Some(sample.id);
    let id = ctx.core.create_task(&task).await?;
    queued(&ctx);
    Ok(ok(json!({ "task_id": id.0 })))
}

/// `POST /tasks/create/url`. Upstream quirk kept: `memory`/`enforce_timeout` are true for
/// any non-empty value, and a missing `url` gives `{"task_id": null}` with 200.
pub async fn tasks_create_url(State(ctx): Ctx, req: Request) -> Result<Response> {
    let form = read_form(&ctx.core, req, &[]).await?;
    let Some(url) = form.get("url").filter(|u| !u.is_empty()).map(str::to_owned) else {
        return Ok(ok(json!({ "task_id": null })));
    };
    let mut task = NewTask::new(Category::Url, url);
    common_fields(&form, &mut task);
    task.memory = form.get("memory").is_some_and(|v| !v.is_empty());
    task.enforce_timeout = form.get("enforce_timeout").is_some_and(|v| !v.is_empty());
    let id = ctx.core.create_task(&task).await?;
    queued(&ctx);
    Ok(ok(json!({ "task_id": id.0 })))
}

/// Whether a submit string is a hash (32/40/64/128 hex digits).
fn is_hash(s: &str) -> bool {
    matches!(s.len(), 32 | 40 | 64 | 128) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Cuckoo's submit URL check: http/https with a host; a bare host gets `http://`.
fn normalize_url(s: &str) -> Option<String> {
    let candidate = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let parsed = url::Url::parse(&candidate).ok()?;
    let scheme_ok = matches!(parsed.scheme(), "http" | "https");
    let host = parsed.host_str()?;
    // A bare word ("foo") is not a URL: require a dot, an IP literal or localhost.
    let host_ok = host.contains('.') || host.contains(':') || host == "localhost";
    (scheme_ok && host_ok && !s.contains(char::is_whitespace)).then_some(candidate)
}

/// `POST /tasks/create/submit`: several files and/or newline-separated URLs and hashes in
/// one submission. Form `package`/`machine`/`platform`/`clock` are ignored (upstream).
pub async fn tasks_create_submit(State(ctx): Ctx, req: Request) -> Result<Response> {
    let form = read_form(&ctx.core, req, &["file", "files"]).await?;
    let strings = form.lines("strings");
    if form.files.is_empty() && strings.is_empty() {
        return Err(CuckooError::internal(
            "No files or strings have been given!",
        ));
    }
    let mut options = TaskOptions::parse("procmemdump=yes");
    options
        .0
        .extend(TaskOptions::parse(form.get("options").unwrap_or("")).0);
    let mut base = NewTask::new(Category::File, String::new());
    base.timeout = form
        .get("timeout")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    base.priority = int_or(form.get("priority"), 1);
    base.tags = parse_tags(form.get("tags"));
    base.custom = form.get("custom").unwrap_or("").to_owned();
    base.owner = form.get("owner").unwrap_or("").to_owned();
    base.memory = parse_bool(form.get("memory"))?;
    base.enforce_timeout = parse_bool(form.get("enforce_timeout"))?;
    base.options = options.clone();
    base.route = options.get("route").map(str::to_owned);

    let submit_type = if form.files.is_empty() {
        "strings"
    } else {
        "files"
    };
    let submit_id = ctx
        .core
        .repo
        .add_submission(&NewSubmission {
            submit_type: submit_type.to_owned(),
            data: json!({
                "files": form.files.iter().map(|f| &f.filename).collect::<Vec<_>>(),
                "strings": strings,
                "options": options.0,
            }),
        })
        .await?;
    base.submit_id = Some(submit_id);

    let mut task_ids = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for file in form.files {
        let members = archive_members(file.staged.path(), options.get("password")).await;
        let sample = ctx.core.store_sample(file.staged).await?;
        let target = ctx.core.materialize_target(&sample, &file.filename).await?;
        let mut t = base.clone();
        t.target = target;
        t.sample_id = Some(sample.id);
        // Like sflock: an archive yields one `archive` task per member that some package
        // would run; anything else (or an archive with nothing runnable) is one file task.
        let runnable: Vec<_> = members
            .iter()
            .filter_map(|m| package_for_name(&m.name).map(|p| (m, p)))
            .collect();
        if runnable.is_empty() {
            t.category = Category::File;
            t.package = package_for_name(&file.filename).unwrap_or("").to_owned();
            task_ids.push(ctx.core.create_task(&t).await?.0);
        }
        for (member, package) in runnable {
            let mut a = t.clone();
            a.category = Category::Archive;
            a.package = package.to_owned();
            a.options
                .0
                .insert("filename".to_owned(), member.name.clone());
            task_ids.push(ctx.core.create_task(&a).await?.0);
        }
    }
    for line in strings {
        if is_hash(&line) {
            // Upstream downloads hashes from VirusTotal; we serve them from our own store
            // and never reach out to the internet.
            match ctx.core.repo.sample_by_hash(&line).await? {
                Some(sample) if line.len() != 128 => {
                    let mut t = base.clone();
                    t.target = ctx.core.materialize_target(&sample, &sample.sha256).await?;
                    t.sample_id = Some(sample.id);
                    task_ids.push(ctx.core.create_task(&t).await?.0);
                }
                _ => errors.push(format!(
                    "Error retrieving file hash: {line} is not a sample known to this server"
                )),
            }
        } else if let Some(url) = normalize_url(&line) {
            let mut t = base.clone();
            t.category = Category::Url;
            t.target = url;
            t.package = "ie".to_owned();
            task_ids.push(ctx.core.create_task(&t).await?.0);
        } else {
            errors.push(format!("'{line}' was neither a valid hash or url"));
        }
    }
    if !task_ids.is_empty() {
        queued(&ctx);
    }
    Ok(ok(
        json!({ "submit_id": submit_id, "task_ids": task_ids, "errors": errors }),
    ))
}

/// The members of a staged file if it is an archive (zip incl. encrypted, 7z, tar, gz,
/// bz2, xz, zst, nested; names made safe), extracted under the bomb limits with the
/// task's `password` option and the default list; empty otherwise or when nothing could be
/// read (it is then analysed as a plain file).
async fn archive_members(path: &std::path::Path, password: Option<&str>) -> Vec<Member> {
    use nestbox_core::demux::{archive_format, read_members};
    let path = path.to_path_buf();
    let password = password.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        if archive_format(&path).is_none() {
            return Vec::new();
        }
        read_members(&path, "", password.as_deref())
            .into_iter()
            .map(|m| Member {
                size: m.data.len() as u64,
                name: m.name,
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// `{"tasks": [...]}`.
#[derive(serde::Serialize)]
struct TaskList<'a> {
    tasks: Vec<TaskView<'a>>,
}

/// `{"task": ...}`.
#[derive(serde::Serialize)]
struct OneTask<'a> {
    task: TaskView<'a>,
}

/// Query string of `tasks/list`.
#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    completed_after: Option<String>,
    status: Option<String>,
    owner: Option<String>,
}

async fn list(ctx: &crate::ApiContext, mut query: TaskQuery, q: ListQuery) -> Result<Response> {
    if let Some(ca) = q.completed_after {
        // Upstream does int(x): anything else is an exception page.
        let secs: i64 = ca
            .trim()
            .parse()
            .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR))?;
        query.completed_after = Some(Timestamp::from_secs(secs));
    }
    if let Some(st) = q.status {
        match st.parse() {
            Ok(s) => query.status = Some(s),
            // An unknown status matches no row.
            Err(_) => return Ok(ok(json!({ "tasks": [] }))),
        }
    }
    query.owner = q.owner;
    let key = format!("cuckoo:list:{query:?}:{:?}", json_style());
    let body = cached(ctx, key, || async {
        let tasks = ctx.core.list_tasks(&query).await?;
        let tasks: Vec<TaskView<'_>> = tasks
            .iter()
            .map(|t| TaskView::of(t, Dates::Plain))
            .collect();
        Ok(Some(render(&TaskList { tasks })))
    })
    .await?;
    body.ok_or_else(|| CuckooError::not_found("Task not found"))
}

/// A JSON response from the response cache (see [`crate::common::cache::cached`]).
async fn cached<F, Fut>(
    ctx: &crate::ApiContext,
    key: String,
    render_body: F,
) -> Result<Option<Response>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<bytes::Bytes>>>,
{
    Ok(crate::common::cache::cached(ctx, key, render_body)
        .await?
        .map(json_body))
}

/// `GET /tasks/list`.
pub async fn tasks_list(State(ctx): Ctx, Query(q): Query<ListQuery>) -> Result<Response> {
    list(&ctx, TaskQuery::default(), q).await
}

/// `GET /tasks/list/<limit>`.
pub async fn tasks_list_limit(
    State(ctx): Ctx,
    Path(limit): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let query = TaskQuery {
        limit: Some(int_segment(&limit)?),
        ..Default::default()
    };
    list(&ctx, query, q).await
}

/// `GET /tasks/list/<limit>/<offset>`.
pub async fn tasks_list_limit_offset(
    State(ctx): Ctx,
    Path((limit, offset)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let query = TaskQuery {
        limit: Some(int_segment(&limit)?),
        offset: Some(int_segment(&offset)?),
        ..Default::default()
    };
    list(&ctx, query, q).await
}

/// `GET /tasks/sample/<sample_id>`: the list handler restricted to one sample.
pub async fn tasks_sample(
    State(ctx): Ctx,
    Path(sample_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let query = TaskQuery {
        sample_id: Some(int_segment(&sample_id)?),
        ..Default::default()
    };
    list(&ctx, query, q).await
}

/// `GET /tasks/view/<id>`.
pub async fn tasks_view(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    let key = format!("cuckoo:view:{id}:{:?}", json_style());
    let body = cached(&ctx, key, || async {
        let task = ctx.core.repo.task(id).await?;
        Ok(task.map(|t| {
            render(&OneTask {
                task: TaskView::of(&t, Dates::Rfc1123),
            })
        }))
    })
    .await?;
    body.ok_or_else(|| CuckooError::not_found("Task not found"))
}

async fn reschedule(ctx: &crate::ApiContext, id: &str, priority: Option<&str>) -> Result<Response> {
    let id = TaskId(int_segment(id)?);
    let priority = priority.map(int_segment).transpose()?;
    match ctx.core.reschedule(id, priority).await {
        Ok(new_id) => {
            queued(ctx);
            Ok(ok(json!({ "status": "OK", "task_id": new_id.0 })))
        }
        Err(CoreError::TaskNotFound(_)) => Err(CuckooError::not_found(
            "There is no analysis with the specified ID",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "reschedule failed");
            Err(CuckooError::internal(
                "An error occurred while trying to reschedule the task",
            ))
        }
    }
}

/// `GET /tasks/reschedule/<id>`.
pub async fn tasks_reschedule(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    reschedule(&ctx, &id, None).await
}

/// `GET /tasks/reschedule/<id>/<priority>`.
pub async fn tasks_reschedule_priority(
    State(ctx): Ctx,
    Path((id, priority)): Path<(String, String)>,
) -> Result<Response> {
    reschedule(&ctx, &id, Some(&priority)).await
}

/// `GET /tasks/delete/<id>`.
pub async fn tasks_delete(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    match ctx.core.delete_task(id).await {
        Ok(()) => Ok(status_ok()),
        Err(CoreError::TaskNotFound(_)) => Err(CuckooError::not_found("Task not found")),
        Err(CoreError::WrongStatus { .. }) => Err(CuckooError::internal(
            "The task is currently being processed, cannot delete",
        )),
        Err(e) => {
            tracing::error!(error = %e, "delete failed");
            Err(CuckooError::internal(
                "An error occurred while trying to delete the task",
            ))
        }
    }
}

/// `GET /tasks/rereport/<id>`.
pub async fn tasks_rereport(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    match ctx.core.rereport(id).await {
        Ok(success) => {
            if success {
                queued(&ctx);
            }
            Ok(ok(json!({ "success": success })))
        }
        Err(CoreError::TaskNotFound(_)) => Err(CuckooError::not_found("Task not found")),
        Err(e) => Err(e.into()),
    }
}

/// `GET /tasks/reboot/<id>`.
pub async fn tasks_reboot(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    match ctx.core.reboot(id).await {
        Ok(new_id) => {
            queued(&ctx);
            Ok(ok(json!({ "task_id": id.0, "reboot_id": new_id.0 })))
        }
        Err(CoreError::TaskNotFound(_)) => {
            Err(CuckooError::not_found("Error creating reboot task"))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_like_parse_bool() {
        assert!(parse_bool(Some("yes")).unwrap());
        assert!(parse_bool(Some("True")).unwrap());
        assert!(!parse_bool(Some("0")).unwrap());
        assert!(!parse_bool(None).unwrap());
        assert!(parse_bool(Some("2")).unwrap());
        assert!(parse_bool(Some("")).is_err());
        assert!(parse_bool(Some("abc")).is_err());
    }

    #[test]
    fn submit_strings() {
        assert_eq!(
            normalize_url("cuckoosandbox.org").as_deref(),
            Some("http://cuckoosandbox.org")
        );
        assert_eq!(
            normalize_url("https://1.2.3.4:9001/wow").as_deref(),
            Some("https://1.2.3.4:9001/wow")
        );
        assert!(normalize_url("not a url").is_none());
        assert!(normalize_url("foo").is_none());
        assert!(normalize_url("ftp://x.org").is_none());
        assert!(is_hash(&"a".repeat(64)));
        assert!(!is_hash(&"g".repeat(64)));
    }

    #[test]
    fn tags_and_clock() {
        assert_eq!(parse_tags(Some("foo,,bar")), vec!["bar", "foo"]);
        let ts = parse_clock(Some("01-02-2017 10:00:00")).unwrap();
        assert_eq!(
            crate::cuckoo::dto::date(ts, Dates::Plain),
            "2017-01-02 10:00:00"
        );
        assert!(parse_clock(Some("garbage")).is_none());
    }
}
