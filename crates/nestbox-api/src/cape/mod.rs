//! The CAPEv2 REST API, `/apiv2/` (spec `shared/specs/cape.md`, multitenancy off).
//!
//! What DRF and Django do around CAPE's views is reproduced here, in request order:
//!
//! 1. routing: every route ends in `/`; a GET without it is a **301** to the slashed URL
//!    (Django `APPEND_SLASH`), a POST without it is Django's **500** HTML page (its
//!    `RuntimeError` under `DEBUG=True`, CAPE's default), an id that is not `\d+` or a
//!    hash of the wrong length is Django's **404** HTML page;
//! 2. authentication (`Authorization: Token <key>`, keyword case-insensitive) and the
//!    `IsAuthenticated` permission, only when `token_auth_enabled` (401 with
//!    `WWW-Authenticate: Token` and DRF's `detail` messages);
//! 3. throttling (`SubscriptionRateThrottle`, see [`throttle`]): per user, one bucket for
//!    every endpoint, only for authenticated non-staff users with a non-empty
//!    subscription, only when `ratelimit` is on;
//! 4. DRF's method check (405 `{"detail": …}` with `Allow`);
//! 5. the view: the `{error, data, error_value}` envelope, HTTP 200 for application
//!    errors, compact JSON (DRF's `JSONRenderer`).
//!
//! `api-token-auth/` skips 2 and 3 (`permission_classes=()`, `throttle_classes=()`).
//! Every response carries CAPE's `CuckooHeaders` (`X-Cuckoo-Version`, …).
//!
//! Deliberate differences from upstream, each because the upstream behaviour needs
//! something nestbox does not have: `Accept: text/html` gets JSON rather than DRF's
//! browsable HTML; a GET without a slash on a path that would not route either is
//! redirected too (Django checks first), and then 404s on the slashed path.

mod artifacts;
mod capture;
mod dto;
mod error;
mod tasks;
pub mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiContext;
pub use error::CapeError;
pub use throttle::parse_rate;

type Ctx = State<Arc<ApiContext>>;

/// Settings of the CAPE dialect (api.conf and the web.conf bits the API reads).
#[derive(Debug, Clone)]
pub struct CapeSettings {
    /// `[api] token_auth_enabled`.
    pub token_auth_enabled: bool,
    /// `[api] ratelimit`.
    pub ratelimit: bool,
    /// `[api] url`, base of the callback urls.
    pub url: String,
    /// `X-Cuckoo-Version` and `cuckoo/status` version.
    pub version: String,
    /// `web.conf max_sample_size`.
    pub max_sample_size: u64,
    /// `web.conf [zipped_download] zip_pwd`.
    pub zip_pwd: String,
    /// Per-endpoint switches.
    pub endpoints: CapeEndpoints,
}

/// CAPE's `api.conf` switches (spec §4), with CAPE's defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct CapeEndpoints {
    pub filecreate: bool,
    /// `[filecreate] allmachines`.
    pub filecreate_allmachines: bool,
    /// `[filecreate] multifile`.
    pub filecreate_multifile: bool,
    /// `[filecreate] status`: callback `url` in create answers.
    pub filecreate_status: bool,
    pub urlcreate: bool,
    pub dlnexeccreate: bool,
    pub staticextraction: bool,
    pub downloading_services: bool,
    pub fileview: bool,
    pub tasksearch: bool,
    pub extendedtasksearch: bool,
    pub tasklist: bool,
    /// `[tasklist] maxwindow` in minutes.
    pub tasklist_maxwindow: i64,
    /// `[tasklist] maxlimit`.
    pub tasklist_maxlimit: i64,
    /// `[tasklist] defaultlimit`.
    pub tasklist_defaultlimit: i64,
    pub taskview: bool,
    pub taskresched: bool,
    pub taskreprocess: bool,
    pub taskdelete: bool,
    pub taskstatus: bool,
    pub user_stop: bool,
    pub taskreport: bool,
    /// `[taskreport] all`.
    pub taskreport_all: bool,
    pub taskiocs: bool,
    pub taskscreenshot: bool,
    pub taskpcap: bool,
    pub tasktlspcap: bool,
    /// `tasks/get/keys` (TLS keylogs).
    pub tasktlskeys: bool,
    /// `tasks/get/etw`.
    pub tasketw: bool,
    /// `tasks/get/bulkzip`.
    pub taskbulkzip: bool,
    pub taskevtx: bool,
    pub taskdropped: bool,
    pub taskselfextracted: bool,
    pub taskprocmemory: bool,
    /// `[taskprocmemory] all`.
    pub taskprocmemory_all: bool,
    pub taskfullmemory: bool,
    pub mitmdump: bool,
    pub capeconfig: bool,
    pub payloadfiles: bool,
    pub procdumpfiles: bool,
    pub sampledl: bool,
    pub machinelist: bool,
    pub machineview: bool,
    pub cuckoostatus: bool,
    pub list_exitnodes: bool,
    pub yara_uploader: bool,
}

impl Default for CapeEndpoints {
    fn default() -> Self {
        CapeEndpoints {
            filecreate: true,
            filecreate_allmachines: false,
            filecreate_multifile: false,
            filecreate_status: true,
            urlcreate: true,
            dlnexeccreate: false,
            staticextraction: true,
            downloading_services: false,
            fileview: true,
            tasksearch: true,
            extendedtasksearch: true,
            tasklist: true,
            tasklist_maxwindow: 1440,
            tasklist_maxlimit: 50,
            tasklist_defaultlimit: 10,
            taskview: true,
            taskresched: false,
            taskreprocess: false,
            taskdelete: false,
            taskstatus: true,
            user_stop: false,
            taskreport: true,
            taskreport_all: true,
            taskiocs: true,
            taskscreenshot: true,
            taskpcap: true,
            tasktlspcap: true,
            tasktlskeys: true,
            tasketw: true,
            taskbulkzip: true,
            taskevtx: true,
            taskdropped: true,
            taskselfextracted: false,
            taskprocmemory: true,
            taskprocmemory_all: false,
            taskfullmemory: false,
            mitmdump: false,
            capeconfig: true,
            payloadfiles: true,
            procdumpfiles: false,
            sampledl: false,
            machinelist: false,
            machineview: false,
            cuckoostatus: false,
            list_exitnodes: false,
            yara_uploader: false,
        }
    }
}

/// The authenticated caller, put in the request by the auth middleware.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// User id, 0 = anonymous.
    pub user_id: i64,
    /// User name, empty when anonymous.
    pub username: String,
    /// Staff flag.
    pub is_staff: bool,
}

/// The CAPE router (to be nested under `/apiv2`).
pub fn router(ctx: Arc<ApiContext>) -> Router {
    let throttle = Arc::new(throttle::Throttle::default());
    let r = Router::new()
        // 5.1 Submission
        .route("/tasks/create/file/", p(post(tasks::tasks_create_file)))
        .route("/tasks/create/url/", p(post(tasks::tasks_create_url)))
        .route(
            "/tasks/create/dlnexec/",
            p(post(tasks::tasks_create_dlnexec)),
        )
        .route("/tasks/create/static/", p(post(tasks::tasks_create_static)))
        .route(
            "/tasks/create/download_services/",
            p(post(tasks::tasks_create_download_services)),
        )
        // 5.2 Search and listing
        .route("/tasks/search/{kind}/{hash}/", g(get(tasks::tasks_search)))
        .route(
            "/tasks/extendedsearch/",
            p(post(tasks::tasks_extendedsearch)),
        )
        .route("/tasks/list/", g(get(tasks::tasks_list0)))
        .route("/tasks/list/{limit}/", g(get(tasks::tasks_list1)))
        .route("/tasks/list/{limit}/{offset}/", g(get(tasks::tasks_list2)))
        .route(
            "/tasks/list/{limit}/{offset}/{window}/",
            g(get(tasks::tasks_list3)),
        )
        .route("/tasks/get/latests/{hours}/", g(get(tasks::tasks_latests)))
        .route("/tasks/stats/", g(get(tasks::tasks_stats)))
        .route("/tasks/statistics/{days}/", g(get(tasks::tasks_statistics)))
        // 5.3 Task control
        .route("/tasks/view/{id}/", g(get(tasks::tasks_view)))
        .route(
            "/tasks/status/{id}/",
            gp(get(tasks::tasks_status).post(tasks::tasks_status_post)),
        )
        .route("/tasks/reschedule/{id}/", g(get(tasks::tasks_reschedule)))
        .route("/tasks/reprocess/{id}/", g(get(tasks::tasks_reprocess)))
        .route("/tasks/delete/{ids}/", g(get(tasks::tasks_delete)))
        .route(
            "/tasks/delete/{ids}/{status}/",
            g(get(tasks::tasks_delete_status)),
        )
        .route("/tasks/delete_many/", p(post(tasks::tasks_delete_many)))
        // 5.4 Artifacts
        .route("/tasks/get/report/{id}/", g(get(artifacts::report0)))
        .route("/tasks/get/report/{id}/{fmt}/", g(get(artifacts::report1)))
        .route(
            "/tasks/get/report/{id}/{fmt}/{zip}/",
            g(get(artifacts::report2)),
        )
        .route("/tasks/get/iocs/{id}/", g(get(artifacts::iocs_plain)))
        .route(
            "/tasks/get/iocs/{id}/{detail}/",
            g(get(artifacts::iocs_detailed)),
        )
        .route("/tasks/get/config/{id}/", g(get(artifacts::config)))
        .route(
            "/tasks/get/config/{id}/{name}/",
            g(get(artifacts::config_named)),
        )
        .route(
            "/tasks/get/screenshot/{id}/",
            g(get(artifacts::screenshots)),
        )
        .route(
            "/tasks/get/screenshot/{id}/{n}/",
            g(get(artifacts::screenshot)),
        )
        .route("/tasks/get/pcap/{id}/", g(get(artifacts::pcap)))
        .route(
            "/tasks/get/pcap/{id}/{variant}/",
            g(get(artifacts::pcap_variant)),
        )
        .route("/tasks/get/tlspcap/{id}/", g(get(artifacts::tlspcap)))
        .route("/tasks/get/evtx/{id}/", g(get(artifacts::evtx)))
        .route("/tasks/get/keys/{id}/{kind}/", g(get(capture::keys_)))
        .route("/tasks/get/etw/{id}/{kind}/", g(get(capture::etw)))
        .route(
            "/tasks/get/bulkzip/{id}/{folder}/",
            g(get(capture::bulkzip)),
        )
        .route("/tasks/get/stream/{id}/", p(post(capture::stream)))
        .route("/tasks/get/dropped/{id}/", g(get(artifacts::dropped)))
        .route("/tasks/get/surifile/{id}/", g(get(artifacts::surifile)))
        .route("/tasks/get/mitmdump/{id}/", g(get(artifacts::mitmdump)))
        .route(
            "/tasks/get/selfextracted/{id}/",
            g(get(artifacts::selfextracted)),
        )
        .route(
            "/tasks/get/payloadfiles/{id}/",
            g(get(artifacts::payloadfiles)),
        )
        .route(
            "/tasks/get/procdumpfiles/{id}/",
            g(get(artifacts::procdumpfiles)),
        )
        .route(
            "/tasks/get/procmemory/{id}/",
            g(get(artifacts::procmemory_all)),
        )
        .route(
            "/tasks/get/procmemory/{id}/{pid}/",
            g(get(artifacts::procmemory_pid)),
        )
        .route("/tasks/get/fullmemory/{id}/", g(get(artifacts::fullmemory)))
        // 5.5 Samples, machines, host
        .route("/files/view/{kind}/{value}/", g(get(artifacts::files_view)))
        .route("/files/get/{kind}/{value}/", g(get(artifacts::files_get)))
        .route("/machines/list/", g(get(artifacts::machines_list)))
        .route("/machines/view/{name}/", g(get(artifacts::machines_view)))
        .route("/cuckoo/status/", g(get(artifacts::cuckoo_status)))
        .route("/exitnodes/", g(get(artifacts::exitnodes)))
        .route("/yara_uploader/", p(post(artifacts::yara_uploader)))
        .route_layer(middleware::from_fn_with_state(
            (ctx.clone(), throttle),
            auth_and_throttle,
        ))
        // Outside the auth layer: DRF's obtain_auth_token and Django's index page.
        .route("/api-token-auth/", p(post(tasks::api_token_auth)))
        .route("/", get(artifacts::index))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(body_limit(
            ctx.core.limits.max_upload,
        )))
        .layer(middleware::from_fn_with_state(ctx.clone(), headers));
    r.with_state(ctx)
}

/// Largest request body: a few samples at the upload limit plus form fields.
fn body_limit(max_upload: u64) -> usize {
    usize::try_from(max_upload.saturating_mul(4).saturating_add(16 << 20)).unwrap_or(usize::MAX)
}

/// `@api_view(["GET"])`: DRF also answers HEAD and OPTIONS.
fn g(r: MethodRouter<Arc<ApiContext>>) -> MethodRouter<Arc<ApiContext>> {
    r.options(|| options("GET, HEAD, OPTIONS"))
        .fallback(|m: Method| async move { CapeError::MethodNotAllowed(m, "GET, HEAD, OPTIONS") })
}

/// `@api_view(["POST"])`.
fn p(r: MethodRouter<Arc<ApiContext>>) -> MethodRouter<Arc<ApiContext>> {
    r.options(|| options("POST, OPTIONS"))
        .fallback(|m: Method| async move { CapeError::MethodNotAllowed(m, "POST, OPTIONS") })
}

/// `@api_view(["GET", "POST"])`.
fn gp(r: MethodRouter<Arc<ApiContext>>) -> MethodRouter<Arc<ApiContext>> {
    r.options(|| options("GET, POST, HEAD, OPTIONS"))
        .fallback(
            |m: Method| async move { CapeError::MethodNotAllowed(m, "GET, POST, HEAD, OPTIONS") },
        )
}

async fn options(allow: &'static str) -> Response {
    let mut r = json_response(&json!({ "name": "Api", "description": "" }));
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// No route: Django's APPEND_SLASH (301 for GET/HEAD, the DEBUG RuntimeError page for
/// other methods), else its 404 page.
async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if !path.ends_with('/') {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            // Nested under /apiv2, the router sees the path without its mount point.
            let full = req.uri();
            let mount = if full.path().starts_with("/apiv2") {
                ""
            } else {
                "/apiv2"
            };
            let mut loc = format!("{mount}{}/", full.path());
            if let Some(q) = full.query() {
                loc.push('?');
                loc.push_str(q);
            }
            let mut r = (StatusCode::MOVED_PERMANENTLY, "").into_response();
            if let Ok(v) = HeaderValue::from_str(&loc) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return r;
        }
        return CapeError::Page(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    }
    CapeError::Page(StatusCode::NOT_FOUND).into_response()
}

/// DRF's `JSONRenderer`: compact separators, `application/json`.
pub(crate) fn json_response(v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A 200 answer with an already rendered JSON body.
pub(crate) fn json_bytes(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A 200 JSON answer.
pub(crate) fn ok(v: Value) -> Response {
    json_response(&v)
}

/// `{"error": true, "error_value": msg}` with 200.
pub(crate) fn app_error(msg: impl Into<String>) -> Response {
    ok(json!({ "error": true, "error_value": msg.into() }))
}

/// CAPE's `CuckooHeaders` middleware, on every response.
async fn headers(State(ctx): Ctx, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("server", "Machete Server"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("x-xss-protection", "1; mode=block"),
        ("pragma", "no-cache"),
        ("cache-control", "no-cache"),
        ("expires", "0"),
        (
            "permissions-policy",
            "geolocation=(), microphone=(), camera=()",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.cape.version) {
        h.insert("x-cuckoo-version", v);
    }
    resp
}

/// DRF's `TokenAuthentication` + `IsAuthenticated` + `SubscriptionRateThrottle`.
async fn auth_and_throttle(
    State((ctx, throttle)): State<(Arc<ApiContext>, Arc<throttle::Throttle>)>,
    mut req: Request,
    next: Next,
) -> Response {
    if !ctx.cape.token_auth_enabled {
        // Everyone is anonymous and an Authorization header is ignored (spec §2).
        req.extensions_mut().insert(Caller::default());
        return next.run(req).await;
    }
    let user = match authenticate(&ctx, req.headers()).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return CapeError::Unauthorized("Authentication credentials were not provided.")
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    if ctx.cape.ratelimit
        && !user.is_staff
        && let Some(rate) = parse_rate(&user.subscription)
        && let Err(wait) = throttle.allow(user.id, rate)
    {
        return CapeError::Throttled(wait).into_response();
    }
    req.extensions_mut().insert(Caller {
        user_id: user.id,
        username: user.username,
        is_staff: user.is_staff,
    });
    next.run(req).await
}

/// DRF's `TokenAuthentication.authenticate`: `Ok(None)` = no credentials of this scheme.
async fn authenticate(
    ctx: &ApiContext,
    headers: &axum::http::HeaderMap,
) -> Result<Option<nestbox_core::User>, CapeError> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let raw = raw.as_bytes();
    let parts: Vec<&[u8]> = raw
        .split(|b| *b == b' ')
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() || !parts[0].eq_ignore_ascii_case(b"token") {
        return Ok(None);
    }
    if parts.len() == 1 {
        return Err(CapeError::Unauthorized(
            "Invalid token header. No credentials provided.",
        ));
    }
    if parts.len() > 2 {
        return Err(CapeError::Unauthorized(
            "Invalid token header. Token string should not contain spaces.",
        ));
    }
    let Ok(key) = std::str::from_utf8(parts[1]) else {
        return Err(CapeError::Unauthorized(
            "Invalid token header. Token string should not contain invalid characters.",
        ));
    };
    match ctx.auth.check_cape_token(key).await? {
        Ok(user) => Ok(Some(user)),
        Err(nestbox_core::users::AuthFailure::InvalidToken) => {
            Err(CapeError::Unauthorized("Invalid token."))
        }
        Err(nestbox_core::users::AuthFailure::UserInactive) => {
            Err(CapeError::Unauthorized("User inactive or deleted."))
        }
    }
}

/// A task id path segment: `\d+` (anything else matches no route upstream → 404 page).
pub(crate) fn task_id(s: &str) -> Result<nestbox_types::TaskId, CapeError> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    s.parse()
        .map(nestbox_types::TaskId)
        .map_err(|_| CapeError::Page(StatusCode::NOT_FOUND))
}

/// Wakes idle workers after tasks were queued.
pub(crate) fn queued(ctx: &ApiContext) {
    ctx.wake.notify_waiters();
    ctx.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_django() {
        assert_eq!(task_id("12").unwrap().0, 12);
        for bad in ["", "-1", "abc", "1.0", "99999999999999999999"] {
            assert!(task_id(bad).is_err(), "{bad}");
        }
    }
}
