//! A task: its report page with tabs, its status while it runs, the paged call log, and
//! the downloads (attachments; samples and dropped files only inside encrypted zips).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use nestbox_api::common::zipout::{self, ZipSource};
use nestbox_core::keys;
use nestbox_types::browse::TaskPageQuery;
use nestbox_types::{Task, TaskId};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::session::Viewer;
use super::{PageError, PageForm, PageResult, St, Web, fmt_time};
use crate::render::ser;
use crate::view::ReportView;

/// Calls per page of the call log.
const CALLS_PAGE: usize = 100;
/// Call logs kept parsed (see [`Web::calls`]).
const CALLS_CACHE: usize = 4;

fn task_id(s: &str) -> PageResult<TaskId> {
    s.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .map(TaskId)
        .ok_or_else(|| PageError::not_found("Task"))
}

async fn load_task(web: &Web, id: &str) -> PageResult<Task> {
    let id = task_id(id)?;
    web.api
        .core
        .repo
        .task(id)
        .await?
        .ok_or_else(|| PageError::not_found("Task"))
}

async fn report_bytes(web: &Web, id: TaskId) -> PageResult<Option<Vec<u8>>> {
    Ok(web.api.core.blobs.get(&keys::report_json(id)).await?)
}

/// Parses a report off the async threads (a big one takes a while).
async fn parse_view(bytes: Vec<u8>) -> PageResult<ReportView> {
    tokio::task::spawn_blocking(move || ReportView::parse(&bytes))
        .await
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            PageError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The stored report is not valid JSON: {e}"),
            )
        })
}

fn task_ctx(t: &Task) -> minijinja::Value {
    minijinja::context! {
        id => t.id.0,
        status => t.status.as_str(),
        target => &t.spec.target,
        category => t.spec.category.as_str(),
        package => &t.spec.package,
        sha256 => t.sample.as_ref().map(|s| &s.sha256),
        added => fmt_time(t.added_on),
        parent_id => t.spec.parent_id.map(|p| p.0),
        errors => ser(&t.errors),
    }
}

/// Child tasks listed on a report page (newest first); the queue pages through the rest.
const CHILDREN_SHOWN: i64 = 200;

/// The tasks spawned from `id`, as the Extracted tab lists them.
async fn children(web: &Web, id: TaskId) -> PageResult<Vec<minijinja::Value>> {
    let rows = web
        .api
        .core
        .repo
        .browse_tasks(&TaskPageQuery {
            parent: Some(id),
            limit: CHILDREN_SHOWN,
            ..Default::default()
        })
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let t = &row.task;
            minijinja::context! {
                id => t.id.0,
                status => t.status.as_str(),
                name => t.spec.target.rsplit(['/', '\\']).next().unwrap_or(""),
                sha256 => t.sample.as_ref().map(|s| &s.sha256),
                malstatus => row.report.as_ref().map(|r| &r.malstatus),
                score => row.report.as_ref().map(|r| r.score),
            }
        })
        .collect())
}

pub(crate) async fn analysis_page(
    st: St,
    Viewer(session): Viewer,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let web = &st.0;
    let task = load_task(web, &id).await?;
    let view = match report_bytes(web, task.id).await? {
        Some(b) => Some(parse_view(b).await?),
        None => None,
    };
    let page = web.page(
        &session,
        "analysis.html.j2",
        minijinja::context! {
            task => task_ctx(&task),
            r => view.as_ref().map(ser),
            standalone => false,
            children => children(web, task.id).await?,
            parent_id => task.spec.parent_id.map(|p| p.0),
        },
    )?;
    Ok(Html(page).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf_token: String,
}

/// `POST /analysis/<id>/resubmit/dropped/<n>`: analyses dropped file `n` as a task of its
/// own, the child of this one (CAPE's resubmit), then opens it.
pub(crate) async fn resubmit_dropped(
    st: St,
    Viewer(session): Viewer,
    Path((id, n)): Path<(String, usize)>,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult<Response> {
    let web = &st.0;
    session.require_csrf(web, Some(&form.csrf_token))?;
    let parent = load_task(web, &id).await?;
    let view = report_view(web, parent.id).await?;
    let d = view
        .dropped
        .get(n)
        .ok_or_else(|| PageError::not_found("Dropped file"))?;
    let key = keys::analysis_file(parent.id, &d.path);
    if !web.api.core.blobs.exists(&key).await? {
        return Err(PageError::not_found("Dropped file"));
    }
    let name = if d.name.is_empty() {
        &d.sha256
    } else {
        &d.name
    };
    let child = web.api.core.submit_child_file(&parent, &key, name).await?;
    if let Some(user) = &session.user {
        web.api.auth.repo().set_task_user(child, user.id).await?;
    }
    web.api.wake.notify_waiters();
    web.api.wake.notify_one();
    Ok(Redirect::to(&format!("/analysis/{}/", child.0)).into_response())
}

pub(crate) async fn status_json(
    st: St,
    _v: Viewer,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let task = load_task(&st.0, &id).await?;
    Ok(Json(serde_json::json!({
        "id": task.id.0,
        "status": task.status.as_str(),
        "errors": task.errors,
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CallsQuery {
    pid: Option<i64>,
    q: String,
    category: String,
    page: usize,
}

/// Only the process list, with each call log left unparsed until its pid is asked for.
#[derive(Deserialize)]
struct CallsDoc<'a> {
    #[serde(borrow, default)]
    behavior: Option<CallsBehavior<'a>>,
}

#[derive(Deserialize)]
struct CallsBehavior<'a> {
    #[serde(borrow, default)]
    processes: Vec<CallsProcess<'a>>,
}

#[derive(Deserialize)]
struct CallsProcess<'a> {
    #[serde(default)]
    pid: i64,
    #[serde(borrow)]
    calls: Option<&'a RawValue>,
}

fn calls_of(bytes: &[u8], pid: i64) -> Result<Vec<Value>, String> {
    let doc: CallsDoc<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let raw = doc
        .behavior
        .into_iter()
        .flat_map(|b| b.processes)
        .find(|p| p.pid == pid)
        .ok_or_else(|| format!("no process {pid}"))?;
    match raw.calls {
        Some(r) => serde_json::from_str(r.get()).map_err(|e| e.to_string()),
        None => Ok(Vec::new()),
    }
}

async fn cached_calls(web: &Web, id: TaskId, pid: i64) -> PageResult<Arc<Vec<Value>>> {
    if let Ok(cache) = web.calls.lock()
        && let Some((_, _, c)) = cache.iter().find(|(t, p, _)| *t == id && *p == pid)
    {
        return Ok(c.clone());
    }
    let bytes = report_bytes(web, id)
        .await?
        .ok_or_else(|| PageError::not_found("Report"))?;
    let calls = tokio::task::spawn_blocking(move || calls_of(&bytes, pid))
        .await
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(PageError::bad)?;
    let calls = Arc::new(calls);
    if let Ok(mut cache) = web.calls.lock() {
        cache.push_front((id, pid, calls.clone()));
        cache.truncate(CALLS_CACHE);
    }
    Ok(calls)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn arguments(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(a) => a
            .iter()
            .map(|x| match (x.get("name"), x.get("value")) {
                (Some(n), Some(v)) => format!("{}={}", text(n), text(v)),
                _ => text(x),
            })
            .collect::<Vec<_>>()
            .join(", "),
        v => text(v),
    }
}

/// One page of one process's calls, filtered server-side.
pub(crate) async fn calls_json(
    st: St,
    _v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<CallsQuery>,
) -> PageResult<Response> {
    let web = &st.0;
    let id = task_id(&id)?;
    let pid = q.pid.ok_or_else(|| PageError::bad("pid is required"))?;
    let calls = cached_calls(web, id, pid).await?;
    let needle = q.q.trim().to_lowercase();
    let category = q.category.trim();
    let field = |c: &Value, k: &str| text(c.get(k).unwrap_or(&Value::Null));
    // Filter on the stored calls and build display rows for the page only: a log holds
    // up to 100 000 calls and a page shows 100.
    let matches = |c: &&Value| {
        (category.is_empty() || c.get("category").and_then(Value::as_str) == Some(category))
            && (needle.is_empty()
                || [field(c, "api"), field(c, "return")]
                    .iter()
                    .any(|s| s.to_lowercase().contains(&needle))
                || arguments(c.get("arguments").unwrap_or(&Value::Null))
                    .to_lowercase()
                    .contains(&needle))
    };
    let filtering = !needle.is_empty() || !category.is_empty();
    let matched = if filtering {
        calls.iter().filter(matches).count()
    } else {
        calls.len()
    };
    let pages = matched.div_ceil(CALLS_PAGE);
    let page = q.page.min(pages.saturating_sub(1));
    let slice: Vec<Value> = calls
        .iter()
        .filter(|c| !filtering || matches(c))
        .skip(page * CALLS_PAGE)
        .take(CALLS_PAGE)
        .map(|c| {
            serde_json::json!({
                "timestamp": text(c.get("timestamp").or_else(|| c.get("time")).unwrap_or(&Value::Null)),
                "api": field(c, "api"),
                "category": field(c, "category"),
                "arguments": arguments(c.get("arguments").unwrap_or(&Value::Null)),
                "return": field(c, "return"),
                "status": c.get("status").and_then(Value::as_bool).unwrap_or(true),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "pid": pid,
        "total": calls.len(),
        "matched": matched,
        "page": page,
        "pages": pages,
        "calls": slice,
    }))
    .into_response())
}

/// `report.json` shown as text: JSON is not active content, and `nosniff` keeps it so.
pub(crate) async fn report_json_view(
    st: St,
    _v: Viewer,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let id = task_id(&id)?;
    let bytes = report_bytes(&st.0, id)
        .await?
        .ok_or_else(|| PageError::not_found("Report"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

/// An attachment response: never rendered by the browser.
pub(crate) fn attachment(body: impl Into<Body>, filename: &str, ctype: &'static str) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // The name is ours (ids, hashes), never the sample's: no header injection, no tricks.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// A streamed zip of blobs, AES-encrypted with the configured password (`infected`).
pub(crate) fn zip(web: &Web, entries: Vec<(String, String)>) -> Body {
    let pw = web.api.cape.zip_pwd.clone();
    let entries = entries
        .into_iter()
        .map(|(name, key)| (name, ZipSource::Blob(key)))
        .collect();
    zipout::stream(
        web.api.core.blobs.clone(),
        entries,
        (!pw.is_empty()).then_some(pw),
    )
}

pub(crate) async fn download(
    st: St,
    _v: Viewer,
    Path((id, what)): Path<(String, String)>,
) -> PageResult<Response> {
    let web = &st.0;
    let id = task_id(&id)?;
    let blobs = &web.api.core.blobs;
    let get = |key: String| async move {
        blobs
            .get(&key)
            .await?
            .ok_or_else(|| PageError::not_found("File"))
    };
    match what.as_str() {
        "report.json" => Ok(attachment(
            get(keys::report_json(id)).await?,
            &format!("report-{id}.json"),
            "application/json",
        )),
        "report.html" => {
            let html = match blobs.get(&keys::report_html(id)).await? {
                Some(h) => h,
                None => {
                    // Written only when `analysis.html_report` is on; render it now.
                    let json = get(keys::report_json(id)).await?;
                    let report: nestbox_types::report::Report =
                        serde_json::from_slice(&json).map_err(|e| PageError::bad(e.to_string()))?;
                    crate::render_report_html(&report)?.into_bytes()
                }
            };
            Ok(attachment(
                html,
                &format!("report-{id}.html"),
                "text/html; charset=utf-8",
            ))
        }
        "pcap" => Ok(attachment(
            get(keys::analysis_file(id, "dump.pcap")).await?,
            &format!("dump-{id}.pcap"),
            "application/vnd.tcpdump.pcap",
        )),
        "all.zip" => {
            let prefix = keys::analysis(id);
            let entries: Vec<(String, String)> = blobs
                .list(&prefix)
                .await?
                .into_iter()
                .map(|key| (key[prefix.len()..].to_owned(), key))
                .collect();
            if entries.is_empty() {
                return Err(PageError::not_found("Analysis folder"));
            }
            Ok(attachment(
                zip(web, entries),
                &format!("analysis-{id}.zip"),
                "application/zip",
            ))
        }
        _ => Err(PageError::not_found("Download")),
    }
}

async fn report_view(web: &Web, id: TaskId) -> PageResult<ReportView> {
    let bytes = report_bytes(web, id)
        .await?
        .ok_or_else(|| PageError::not_found("Report"))?;
    parse_view(bytes).await
}

pub(crate) async fn download_dropped(
    st: St,
    _v: Viewer,
    Path((id, n)): Path<(String, usize)>,
) -> PageResult<Response> {
    let web = &st.0;
    let id = task_id(&id)?;
    let view = report_view(web, id).await?;
    let d = view
        .dropped
        .get(n)
        .ok_or_else(|| PageError::not_found("Dropped file"))?;
    let key = keys::analysis_file(id, &d.path);
    if !web.api.core.blobs.exists(&key).await? {
        return Err(PageError::not_found("Dropped file"));
    }
    let name = if d.sha256.len() == 64 && d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        d.sha256.clone()
    } else {
        format!("dropped-{n}")
    };
    let zipped = zip(web, vec![(name.clone(), key)]);
    Ok(attachment(
        zipped,
        &format!("{name}.zip"),
        "application/zip",
    ))
}

/// A screenshot, inline only when it really is a PNG or JPEG.
pub(crate) async fn screenshot(
    st: St,
    _v: Viewer,
    Path((id, n)): Path<(String, usize)>,
) -> PageResult<Response> {
    let web = &st.0;
    let id = task_id(&id)?;
    let view = report_view(web, id).await?;
    let s = view
        .screenshots
        .get(n)
        .ok_or_else(|| PageError::not_found("Screenshot"))?;
    let bytes = web
        .api
        .core
        .blobs
        .get(&keys::analysis_file(id, &s.path))
        .await?
        .ok_or_else(|| PageError::not_found("Screenshot"))?;
    let ctype = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else {
        return Ok(attachment(
            bytes,
            &format!("shot-{id}-{n}.bin"),
            "application/octet-stream",
        ));
    };
    Ok(([(header::CONTENT_TYPE, ctype)], bytes).into_response())
}
