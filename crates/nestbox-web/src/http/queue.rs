//! The task list: newest first, filters, search, keyset pages, live updates.

use axum::Json;
use axum::extract::Query;
use axum::response::{Html, IntoResponse, Redirect, Response};
use nestbox_core::report_index::normalize_term;
use nestbox_types::browse::{TaskPageQuery, TaskSummary};
use nestbox_types::{Category, TaskId, TaskStatus};
use serde::{Deserialize, Serialize};

use super::session::Viewer;
use super::{PageResult, St, fmt_time, parse_date};
use crate::render::ser;

const PAGE: i64 = 50;

/// The query string of the list (all optional, all strings so a bad value is a message,
/// not a 400 from the extractor).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct Filters {
    q: String,
    status: String,
    category: String,
    min_score: String,
    from: String,
    until: String,
    before: String,
}

/// One row as the template and the live-update JSON see it.
#[derive(Serialize)]
pub(crate) struct Row {
    id: i64,
    status: String,
    target: String,
    sha256: Option<String>,
    category: String,
    verdict: Option<String>,
    score: Option<f64>,
    signatures: Option<i64>,
    added: String,
    duration: String,
    owner: String,
}

impl From<&TaskSummary> for Row {
    fn from(s: &TaskSummary) -> Row {
        let t = &s.task;
        let target = if t.spec.category.has_sample() {
            t.spec
                .target
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or("")
                .to_owned()
        } else {
            t.spec.target.clone()
        };
        let duration = match (t.started_on, t.completed_on) {
            (Some(a), Some(b)) => format!("{} s", (b.secs() - a.secs()).max(0)),
            (Some(_), None) => "running".into(),
            _ => "—".into(),
        };
        Row {
            id: t.id.0,
            status: t.status.as_str().to_owned(),
            target,
            sha256: t.sample.as_ref().map(|s| s.sha256.clone()),
            category: t.spec.category.as_str().to_owned(),
            verdict: s.report.as_ref().map(|r| {
                if r.malstatus.is_empty() {
                    "Undetected".to_owned()
                } else {
                    r.malstatus.clone()
                }
            }),
            score: s.report.as_ref().map(|r| r.score),
            signatures: s.report.as_ref().map(|r| r.signatures),
            added: fmt_time(t.added_on),
            duration,
            owner: t.spec.owner.clone(),
        }
    }
}

/// The filters as a store query, or a message saying which one is wrong.
fn query(f: &Filters) -> Result<TaskPageQuery, String> {
    fn opt(s: &str) -> Option<&str> {
        Some(s.trim()).filter(|s| !s.is_empty())
    }
    let mut q = TaskPageQuery {
        limit: PAGE,
        term: opt(&f.q).map(normalize_term),
        ..Default::default()
    };
    if let Some(s) = opt(&f.status) {
        q.status = Some(
            s.parse::<TaskStatus>()
                .map_err(|_| format!("Unknown status {s:?}."))?,
        );
    }
    if let Some(c) = opt(&f.category) {
        q.category = Some(Category::parse(c).ok_or_else(|| format!("Unknown category {c:?}."))?);
    }
    if let Some(s) = opt(&f.min_score) {
        q.min_score = Some(
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or("The minimum score must be a number.")?,
        );
    }
    if let Some(d) = opt(&f.from) {
        q.added_from = Some(parse_date(d).ok_or("Dates are YYYY-MM-DD.")?);
    }
    if let Some(d) = opt(&f.until) {
        // "until" a day includes that day.
        let t = parse_date(d).ok_or("Dates are YYYY-MM-DD.")?;
        q.added_until = Some(nestbox_types::Timestamp(t.0 + 86_400_000_000));
    }
    if let Some(b) = opt(&f.before) {
        q.before = Some(TaskId(b.parse().map_err(|_| "Bad page cursor.")?));
    }
    Ok(q)
}

fn url_with(f: &Filters, path: &str, before: Option<i64>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &f.q),
        ("status", &f.status),
        ("category", &f.category),
        ("min_score", &f.min_score),
        ("from", &f.from),
        ("until", &f.until),
    ] {
        if !v.trim().is_empty() {
            s.append_pair(k, v.trim());
        }
    }
    if let Some(b) = before {
        s.append_pair("before", &b.to_string());
    }
    let qs = s.finish();
    if qs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{qs}")
    }
}

pub(crate) async fn queue_page(
    st: St,
    Viewer(session): Viewer,
    Query(f): Query<Filters>,
) -> PageResult<Response> {
    let web = &st.0;
    let q = f.q.trim();
    // A bare number is a task id.
    if !q.is_empty() && q.len() < 19 && q.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Redirect::to(&format!("/analysis/{q}/")).into_response());
    }
    let (rows, error) = match query(&f) {
        Ok(pq) => (web.api.core.repo.browse_tasks(&pq).await?, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let next_url =
        (rows.len() as i64 == PAGE).then(|| url_with(&f, "/", rows.last().map(|r| r.task.id.0)));
    let first_page = f.before.trim().is_empty();
    let rows: Vec<Row> = rows.iter().map(Row::from).collect();
    let page = web.page(
        &session,
        "queue.html.j2",
        minijinja::context! {
            q => q,
            f => ser(&f),
            rows => ser(&rows),
            error => error,
            statuses => ser(TaskStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            categories => ser(["file", "url", "archive"]),
            first_page => first_page,
            first_url => url_with(&f, "/", None),
            next_url => next_url,
            poll_url => first_page.then(|| url_with(&f, "/ui/tasks.json", None)),
        },
    )?;
    Ok(Html(page).into_response())
}

/// The first page of the list as JSON, for the live updates.
pub(crate) async fn tasks_json(
    st: St,
    _viewer: Viewer,
    Query(f): Query<Filters>,
) -> PageResult<Response> {
    let pq = query(&f).map_err(super::PageError::bad)?;
    let rows = st.0.api.core.repo.browse_tasks(&pq).await?;
    let rows: Vec<Row> = rows.iter().map(Row::from).collect();
    Ok(Json(serde_json::json!({ "rows": rows })).into_response())
}
