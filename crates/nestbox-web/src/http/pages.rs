//! The sample page, the status page, login/logout and the static assets.

use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use nestbox_core::keys;
use serde::Deserialize;

use super::analysis::{attachment, zip};
use super::session::{Session, Viewer, clear_session, local_path, session_cookie};
use super::{PageError, PageForm, PageResult, St, Web, fmt_time};
use crate::render::ser;
use crate::render::{CSS, JS};

fn sha256_of(s: &str) -> PageResult<String> {
    let s = s.to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(PageError::not_found("Sample"))
    }
}

pub(crate) async fn sample_page(
    st: St,
    Viewer(session): Viewer,
    Path(sha256): Path<String>,
) -> PageResult<Response> {
    let web = &st.0;
    let repo = &web.api.core.repo;
    let sha256 = sha256_of(&sha256)?;
    let sample = repo
        .sample_by_hash(&sha256)
        .await?
        .ok_or_else(|| PageError::not_found("Sample"))?;
    let mut tasks = Vec::new();
    for id in repo.sample_task_ids(sample.id).await? {
        if let Some(t) = repo.task(id).await? {
            tasks.push(t);
        }
    }
    tasks.reverse();
    let last_seen = tasks
        .iter()
        .map(|t| t.added_on)
        .max()
        .unwrap_or(sample.first_seen);
    let rows: Vec<_> = tasks
        .iter()
        .map(|t| {
            minijinja::context! {
                id => t.id.0, status => t.status.as_str(), target => &t.spec.target,
                added => fmt_time(t.added_on),
            }
        })
        .collect();
    let page = web.page(
        &session,
        "sample.html.j2",
        minijinja::context! {
            s => ser(&sample),
            first_seen => fmt_time(sample.first_seen),
            last_seen => fmt_time(last_seen),
            tasks => rows,
            zip_pwd => &web.api.cape.zip_pwd,
        },
    )?;
    Ok(Html(page).into_response())
}

/// A sample, only ever inside an encrypted zip: it must never open by accident.
pub(crate) async fn sample_download(
    st: St,
    _v: Viewer,
    Path(sha256): Path<String>,
) -> PageResult<Response> {
    let web = &st.0;
    let sha256 = sha256_of(&sha256)?;
    let key = keys::sample(&sha256);
    if !web.api.core.blobs.exists(&key).await? {
        return Err(PageError::not_found("Sample"));
    }
    let zipped = zip(web, vec![(sha256.clone(), key)]);
    Ok(attachment(
        zipped,
        &format!("{sha256}.zip"),
        "application/zip",
    ))
}

pub(crate) async fn status_page(st: St, Viewer(session): Viewer) -> PageResult<Response> {
    let web = &st.0;
    let core = &web.api.core;
    let counts = core.repo.status_counts().await?;
    let machines = core.repo.machines().await?;
    let mut running = Vec::new();
    for id in core.repo.running_tasks().await? {
        if let Some(t) = core.repo.task(id).await? {
            running.push(minijinja::context! {
                id => t.id.0,
                worker => t.processing,
                started => t.started_on.map(fmt_time),
            });
        }
    }
    let gb = |b: u64| format!("{:.1}", b as f64 / 1e9);
    let disk = core.blobs.disk_usage("").map(|d| {
        minijinja::context! { used_gb => gb(d.used), total_gb => gb(d.total), free_gb => gb(d.free) }
    });
    let machines: Vec<_> = machines
        .iter()
        .map(|m| {
            minijinja::context! {
                name => &m.spec.name, platform => &m.spec.platform, tags => ser(&m.spec.tags),
                locked => m.locked, status => &m.status,
            }
        })
        .collect();
    let page = web.page(
        &session,
        "status.html.j2",
        minijinja::context! {
            workers => web.settings.workers,
            counts => ser(&counts.by_status),
            total => counts.total,
            machines => machines,
            running => running,
            disk => disk,
        },
    )?;
    Ok(Html(page).into_response())
}

fn session_of(req_session: Option<axum::Extension<Session>>) -> PageResult<Session> {
    req_session
        .map(|s| s.0)
        .ok_or_else(|| PageError(StatusCode::INTERNAL_SERVER_ERROR, "no session".into()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct NextQuery {
    next: String,
}

fn login_form(web: &Web, session: &Session, next: &str, error: Option<&str>) -> PageResult<String> {
    Ok(web.page(
        session,
        "login.html.j2",
        minijinja::context! {
            next => local_path(next),
            error => error,
        },
    )?)
}

pub(crate) async fn login_page(
    st: St,
    s: Option<axum::Extension<Session>>,
    Query(q): Query<NextQuery>,
) -> PageResult<Response> {
    let web = &st.0;
    let session = session_of(s)?;
    if !web.settings.auth {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(Html(login_form(web, &session, &q.next, None)?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: String,
    csrf_token: String,
}

pub(crate) async fn login_post(
    st: St,
    s: Option<axum::Extension<Session>>,
    PageForm(f): PageForm<LoginForm>,
) -> PageResult<Response> {
    let web = &st.0;
    let session = session_of(s)?;
    session.require_csrf(web, Some(&f.csrf_token))?;
    if !web.settings.auth {
        return Ok(Redirect::to("/").into_response());
    }
    match web.api.auth.login(&f.username, &f.password).await? {
        Some(user) => {
            tracing::info!(user = %user.username, "web login");
            Ok((
                AppendHeaders([(header::SET_COOKIE, session_cookie(web, &user))]),
                Redirect::to(&local_path(&f.next)),
            )
                .into_response())
        }
        None => {
            let page = login_form(web, &session, &f.next, Some("Wrong user name or password."))?;
            Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response())
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LogoutForm {
    csrf_token: String,
}

pub(crate) async fn logout(
    st: St,
    s: Option<axum::Extension<Session>>,
    PageForm(f): PageForm<LogoutForm>,
) -> PageResult<Response> {
    let web = &st.0;
    let session = session_of(s)?;
    session.require_csrf(web, Some(&f.csrf_token))?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, clear_session(web))]),
        Redirect::to(if web.settings.auth { "/login/" } else { "/" }),
    )
        .into_response())
}

fn asset(body: &'static str, ctype: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            // Links carry `?v=<version>`, so a long cache is safe.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

pub(crate) async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}
