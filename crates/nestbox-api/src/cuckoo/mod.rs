//! The Cuckoo 2.0.7 REST API (spec `shared/specs/cuckoo.md`), including the 1.x routes, the
//! `/v1/` aliases and upstream's quirks: Bearer auth checked before routing, sorted and
//! pretty-printed JSON, Werkzeug HTML pages for framework errors, 404 for a trailing slash
//! or a non-numeric id, three datetime formats.
//!
//! Handlers mirror upstream endpoint names (`tasks_create_file`, …) so that a reader can
//! put this file next to `cuckoo/apps/api.py`.

mod dto;
mod error;
mod files;
mod report;
mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::json;

use crate::ApiContext;
use crate::common::pyjson::{self, Style};
pub use error::CuckooError;

type Ctx = State<Arc<ApiContext>>;

/// The Cuckoo router: every route, the `/v1/` aliases, auth and header middleware.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    // Routes that also exist under /v1/ (spec §3, "v1" column).
    let aliased = Router::new()
        .route("/tasks/create/file", p(post(tasks::tasks_create_file)))
        .route("/tasks/create/url", p(post(tasks::tasks_create_url)))
        .route("/tasks/create/submit", p(post(tasks::tasks_create_submit)))
        .route("/tasks/list", g(get(tasks::tasks_list)))
        .route("/tasks/list/{limit}", g(get(tasks::tasks_list_limit)))
        .route(
            "/tasks/list/{limit}/{offset}",
            g(get(tasks::tasks_list_limit_offset)),
        )
        .route("/tasks/sample/{sample_id}", g(get(tasks::tasks_sample)))
        .route("/tasks/view/{task_id}", g(get(tasks::tasks_view)))
        .route(
            "/tasks/reschedule/{task_id}",
            g(get(tasks::tasks_reschedule)),
        )
        .route(
            "/tasks/reschedule/{task_id}/{priority}",
            g(get(tasks::tasks_reschedule_priority)),
        )
        .route("/tasks/delete/{task_id}", g(get(tasks::tasks_delete)))
        .route("/tasks/report/{task_id}", g(get(report::tasks_report)))
        .route(
            "/tasks/report/{task_id}/{format}",
            g(get(report::tasks_report_format)),
        )
        .route(
            "/tasks/screenshots/{task_id}",
            g(get(report::task_screenshots)),
        )
        .route(
            "/tasks/screenshots/{task_id}/{screenshot}",
            g(get(report::task_screenshot)),
        )
        .route("/files/view/md5/{md5}", g(get(files::files_view_md5)))
        .route(
            "/files/view/sha256/{sha256}",
            g(get(files::files_view_sha256)),
        )
        .route("/files/view/id/{sample_id}", g(get(files::files_view_id)))
        .route("/files/get/{sha256}", g(get(files::files_get)))
        .route("/pcap/get/{task_id}", g(get(report::pcap_get)))
        .route("/machines/list", g(get(files::machines_list)))
        .route("/machines/view/{name}", g(get(files::machines_view)))
        .route("/cuckoo/status", g(get(files::cuckoo_status)));
    // 2.0.x additions that have no /v1/ alias.
    let unaliased = Router::new()
        .route("/tasks/summary/{task_id}", g(get(report::tasks_summary)))
        .route("/tasks/rereport/{task_id}", g(get(tasks::tasks_rereport)))
        .route("/tasks/reboot/{task_id}", g(get(tasks::tasks_reboot)))
        .route("/memory/list/{task_id}", g(get(report::memorydumps_list)))
        .route(
            "/memory/get/{task_id}/{pid}",
            g(get(report::memorydumps_get)),
        )
        .route("/vpn/status", g(get(files::vpn_status)))
        .route("/exit", g(get(files::exit)));
    Router::new()
        .merge(aliased.clone())
        .nest("/v1", aliased)
        .merge(unaliased)
        .fallback(|| async { CuckooError::Page(StatusCode::NOT_FOUND) })
        // Uploads are streamed and capped per file by the core; the whole body may hold a
        // few form fields on top (or several files for tasks/create/submit).
        .layer(DefaultBodyLimit::max(body_limit(
            ctx.core.limits.max_upload,
        )))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            auth_and_headers,
        ))
        .with_state(ctx)
}

/// Largest request body: four samples at the upload limit plus room for form fields.
fn body_limit(max_upload: u64) -> usize {
    usize::try_from(max_upload.saturating_mul(4).saturating_add(16 << 20)).unwrap_or(usize::MAX)
}

/// A GET route: Flask adds HEAD and OPTIONS; other methods get Werkzeug's 405 page.
fn g(r: MethodRouter<Arc<ApiContext>>) -> MethodRouter<Arc<ApiContext>> {
    r.options(|| options("HEAD, OPTIONS, GET"))
        .fallback(|| async { CuckooError::MethodNotAllowed("HEAD, OPTIONS, GET") })
}

/// A POST route.
fn p(r: MethodRouter<Arc<ApiContext>>) -> MethodRouter<Arc<ApiContext>> {
    r.options(|| options("OPTIONS, POST"))
        .fallback(|| async { CuckooError::MethodNotAllowed("OPTIONS, POST") })
}

async fn options(allow: &'static str) -> Response {
    let mut r = (StatusCode::OK, "").into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

tokio::task_local! {
    /// The JSON style of the request being handled: jsonify is compact for
    /// `X-Requested-With: XMLHttpRequest`. Set by the middleware around the handler, read
    /// by [`ok`], so handlers need not carry the header around.
    static JSON_STYLE: Style;
}

/// A `jsonify` response of any serialisable value (maps sorted, view structs declare
/// their fields in sorted order).
pub(crate) fn ok(v: impl serde::Serialize) -> Response {
    json_body(render(&v))
}

/// `v` rendered in the request's jsonify style.
pub(crate) fn render(v: &impl serde::Serialize) -> bytes::Bytes {
    pyjson::to_vec(v, json_style()).into()
}

/// The jsonify style of the request being handled.
pub(crate) fn json_style() -> Style {
    JSON_STYLE.try_with(|s| *s).unwrap_or(Style::Pretty)
}

/// A 200 JSON response from an already rendered body.
pub(crate) fn json_body(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Cuckoo's `before_request` (Bearer auth, checked before routing, so even unknown paths
/// answer 401) and `after_request` (security headers on every handled response).
async fn auth_and_headers(State(ctx): Ctx, req: Request, next: Next) -> Response {
    let xhr = req
        .headers()
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes() == b"XMLHttpRequest");
    let style = if xhr { Style::Compact } else { Style::Pretty };
    let allowed = authorized(&ctx.cuckoo.api_token, req.headers());
    let mut resp = JSON_STYLE
        .scope(style, async move {
            if allowed {
                next.run(req).await
            } else {
                CuckooError::Message(
                    StatusCode::UNAUTHORIZED,
                    "Authentication in the form of an 'Authorization: Bearer <TOKEN>' header is required"
                        .into(),
                )
                .into_response()
            }
        })
        .await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("server", "Machete Server"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("x-xss-protection", "1; mode=block"),
        ("pragma", "no-cache"),
        ("cache-control", "no-cache"),
        ("expires", "0"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// Exact, constant-time comparison of `Authorization` with `Bearer <token>` ("Bearer" is
/// case-sensitive upstream). An empty token disables auth, and then any header is ignored.
fn authorized(token: &str, headers: &HeaderMap) -> bool {
    if token.is_empty() {
        return true;
    }
    let Some(got) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let want = format!("Bearer {token}");
    constant_time_eq(got.as_bytes(), want.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret (the token format is fixed); the content comparison is.
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Flask's `<int:x>` converter: unsigned decimal digits only; anything else is no route.
pub(crate) fn int_segment(s: &str) -> Result<i64, CuckooError> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CuckooError::Page(StatusCode::NOT_FOUND));
    }
    s.parse()
        .map_err(|_| CuckooError::Page(StatusCode::NOT_FOUND))
}

/// `{"status": "OK"}`-style helper kept next to the others for symmetry.
pub(crate) fn status_ok() -> Response {
    ok(json!({ "status": "OK" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_exact() {
        let mut h = HeaderMap::new();
        assert!(authorized("", &h));
        assert!(!authorized("tok", &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer tok"),
        );
        assert!(!authorized("tok", &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        assert!(authorized("tok", &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok "),
        );
        assert!(!authorized("tok", &h));
    }

    #[test]
    fn int_segments_like_flask() {
        assert_eq!(int_segment("12").unwrap(), 12);
        for bad in ["", "-1", "abc", "1.0", "+1", "99999999999999999999"] {
            assert!(int_segment(bad).is_err(), "{bad}");
        }
    }
}
