//! The Assemblyline 4 REST API, `/api/v4/` (spec `shared/specs/assemblyline.md`).
//!
//! Request order, as assemblyline-ui's `api_login` decorator does it:
//!
//! 1. routing: every route ends in `/`; a path without it is a **308** to the slashed path
//!    (Flask's strict slashes, which keeps POST a POST); `//api/…` is collapsed to `/api/…`
//!    before routing (see [`crate::router`]); no route → 404 `Api does not exist (<path>)`;
//! 2. authentication: `X-USER` + `X-APIKEY: <name>:<secret>` headers (no XSRF check), or
//!    the `session` cookie of `auth/login/`. Sessions live in memory (Assemblyline keeps
//!    them in Redis with a TTL): a restart forgets them, and the client's answer to
//!    401 `Session expired` is to log in again, which is what upstream clients already do.
//!    Password sessions (`roles_limit: null`) need `X-XSRF-TOKEN` on unsafe methods;
//! 3. the role check of the endpoint (403 `Access Denied (<path>) [...]`);
//! 4. the view, answering the `{api_response, api_error_message, api_server_version,
//!    api_status_code}` envelope, errors included.
//!
//! Users are the same users as every other dialect's (the `users` table). API keys are
//! `apikey` rows of the `tokens` table: name, SHA-256 of the 48-character secret (random
//! secrets need no slow hash; passwords use argon2), privileges `R`/`W`/`RW`/`E`, or
//! `C:<role,role>` for custom role lists.

mod auth;
mod live;
pub mod quota;
mod submit;
mod views;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::ApiContext;
pub use auth::{Caller, Session, create_apikey, validate_key};

/// `api_server_version` (Assemblyline's `<framework>.<system>.<minor>.<build>` form).
pub const SERVER_VERSION: &str = "4.6.0.stable0";

/// Settings of the Assemblyline dialect.
#[derive(Debug, Clone)]
pub struct AlSettings {
    /// Lifetime of a login session, in seconds (`session_duration`).
    pub session_duration: u64,
    /// Whether `file/download/?encoding=raw` is allowed.
    pub allow_raw_download: bool,
    /// Largest file accepted for scanning (`submission.max_file_size`).
    pub max_file_size: u64,
    /// `submission.dtl`: default `ttl` of a submission, in days.
    pub dtl: u64,
    /// `submission.max_dtl`: largest `ttl` (0 = no limit).
    pub max_dtl: u64,
    /// `ui.enforce_quota`.
    pub enforce_quota: bool,
    /// `ui.default_quotas`.
    pub quotas: quota::Quotas,
    /// Per-user quotas (a user's `api_quota`, `submission_quota`, … fields), by name.
    pub user_quotas: std::collections::HashMap<String, quota::Quotas>,
}

impl Default for AlSettings {
    fn default() -> Self {
        AlSettings {
            session_duration: 3600,
            allow_raw_download: true,
            max_file_size: 100 << 20,
            dtl: 30,
            max_dtl: 0,
            enforce_quota: true,
            quotas: quota::Quotas::default(),
            user_quotas: Default::default(),
        }
    }
}

impl AlSettings {
    /// The quotas of a user: their own, else the defaults.
    pub fn quotas_of(&self, username: &str) -> quota::Quotas {
        self.user_quotas
            .get(username)
            .copied()
            .unwrap_or(self.quotas)
    }
}

/// The dialect's state: the shared context plus the sessions.
pub struct AlState {
    ctx: Arc<ApiContext>,
    sessions: Mutex<std::collections::HashMap<String, Session>>,
    live: live::WatchQueues,
}

type St = State<Arc<AlState>>;

/// One error answer of the dialect.
#[derive(Debug)]
pub enum AlError {
    /// A status with a message and `api_response` `""`.
    Status(StatusCode, String),
    /// A status with a message and a payload.
    WithBody(StatusCode, String, Value),
    /// 401 with the login-options payload; clears the XSRF cookie.
    Unauthorized(String),
    /// 403 `Access Denied (<path>) [<reason>]`.
    Forbidden(String, String),
}

impl AlError {
    fn bad(msg: impl Into<String>) -> Self {
        AlError::Status(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> Self {
        AlError::Status(StatusCode::NOT_FOUND, msg.into())
    }
}

impl From<nestbox_core::Error> for AlError {
    fn from(e: nestbox_core::Error) -> Self {
        tracing::error!(error = %e, "assemblyline api: internal error");
        AlError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error".into(),
        )
    }
}

impl From<std::io::Error> for AlError {
    fn from(e: std::io::Error) -> Self {
        nestbox_core::Error::Io(e).into()
    }
}

impl IntoResponse for AlError {
    fn into_response(self) -> Response {
        match self {
            AlError::Status(code, msg) => envelope(code, json!(""), &msg),
            AlError::WithBody(code, msg, body) => envelope(code, body, &msg),
            AlError::Unauthorized(msg) => {
                let mut r = envelope(
                    StatusCode::UNAUTHORIZED,
                    json!({"allow_userpass_login": true, "allow_signup": false, "allow_saml_login": false}),
                    &msg,
                );
                r.headers_mut().append(
                    header::SET_COOKIE,
                    HeaderValue::from_static(
                        "XSRF-TOKEN=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
                    ),
                );
                r
            }
            AlError::Forbidden(path, reason) => envelope(
                StatusCode::FORBIDDEN,
                json!({"auth": {"allow_userpass_login": true, "allow_apikeys": true}, "ui": {}}),
                &format!("Access Denied ({path}) [{reason}]"),
            ),
        }
    }
}

type Result<T, E = AlError> = std::result::Result<T, E>;

/// `make_api_response`: the envelope, HTTP status = `api_status_code`. Written as Flask's
/// `jsonify` does outside debug mode: compact, `sort_keys`, `ensure_ascii`.
pub fn envelope(code: StatusCode, response: Value, msg: &str) -> Response {
    envelope_response(code, envelope_body(code, response, msg).into())
}

/// The bytes of an envelope, as Flask's `jsonify` writes them.
pub fn envelope_body(code: StatusCode, response: Value, msg: &str) -> Vec<u8> {
    let body = json!({
        "api_response": response,
        "api_error_message": msg,
        "api_server_version": SERVER_VERSION,
        "api_status_code": code.as_u16(),
    });
    crate::common::pyjson::to_vec(&body, crate::common::pyjson::Style::Compact)
}

/// A response carrying envelope bytes (rendered now or kept in the response cache).
pub fn envelope_response(code: StatusCode, body: bytes::Bytes) -> Response {
    let mut r = (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    *r.status_mut() = code;
    r
}

/// A 200 envelope.
pub fn ok(v: Value) -> Response {
    envelope(StatusCode::OK, v, "")
}

/// Query booleans: `true` or an empty value is true, case-insensitively.
pub(crate) fn qbool(v: Option<&String>) -> bool {
    v.is_some_and(|s| s.is_empty() || s.eq_ignore_ascii_case("true"))
}

pub(crate) use nestbox_core::al_result::iso;

/// A random UUID4 in base62, Assemblyline's `get_random_id`.
pub(crate) fn random_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut b = [0u8; 16];
    b.copy_from_slice(&nestbox_core::users::random_bytes(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut n = u128::from_be_bytes(b);
    let mut out = Vec::new();
    while n > 0 {
        out.push(ALPHABET[(n % 62) as usize]);
        n /= 62;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The Assemblyline router, nested under `/api`.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    let max_upload = ctx.core.limits.max_upload;
    let state = Arc::new(AlState {
        ctx,
        sessions: Mutex::new(Default::default()),
        live: Default::default(),
    });
    let protected = Router::new()
        .route("/", get(views::versions))
        .route("/v4/", get(views::site_map))
        .route("/v4/help/api/", get(views::site_map))
        .route(
            "/v4/help/classification_definition/",
            get(views::classification_definition),
        )
        .route("/v4/auth/logout/", get(auth::logout))
        .route("/v4/user/whoami/", get(auth::whoami))
        .route("/v4/user/quotas/{user}/", get(auth::quotas))
        .route(
            "/v4/apikey/add/",
            put(auth::apikey_add).post(auth::apikey_add),
        )
        .route("/v4/apikey/list/", get(auth::apikey_list))
        .route(
            "/v4/apikey/{key_id}/",
            get(auth::apikey_get).delete(auth::apikey_delete),
        )
        .route("/v4/submit/", post(submit::submit))
        .route("/v4/ingest/", post(submit::ingest))
        .route("/v4/ingest/get_message/{nq}/", get(submit::get_message))
        .route(
            "/v4/ingest/get_message_list/{nq}/",
            get(submit::get_message_list),
        )
        .route(
            "/v4/submission/{sid}/",
            get(views::submission).delete(views::delete_submission),
        )
        .route("/v4/submission/full/{sid}/", get(views::submission_full))
        .route(
            "/v4/submission/summary/{sid}/",
            get(views::submission_summary),
        )
        .route("/v4/submission/tree/{sid}/", get(views::submission_tree))
        .route(
            "/v4/submission/is_completed/{sid}/",
            get(views::is_completed),
        )
        .route("/v4/submission/list/user/{user}/", get(views::list_user))
        .route(
            "/v4/submission/{sid}/file/{sha256}/",
            get(views::submission_file).post(views::submission_file),
        )
        .route("/v4/file/info/{sha256}/", get(views::file_info))
        .route("/v4/file/result/{sha256}/", get(views::file_result))
        .route(
            "/v4/file/result/{sha256}/{service}/",
            get(views::file_result_service),
        )
        .route("/v4/file/score/{sha256}/", get(views::file_score))
        .route("/v4/file/children/{sha256}/", get(views::file_children))
        .route("/v4/file/strings/{sha256}/", get(views::file_strings))
        .route("/v4/file/hex/{sha256}/", get(views::file_hex))
        .route("/v4/file/ascii/{sha256}/", get(views::file_ascii))
        .route("/v4/file/download/{sha256}/", get(views::file_download))
        .route("/v4/result/multiple_keys/", post(views::multiple_keys))
        .route("/v4/result/error/{key}/", get(views::result_error))
        .route("/v4/result/{key}/", get(views::result))
        .route(
            "/v4/live/setup_watch_queue/{sid}/",
            get(live::setup_watch_queue),
        )
        .route("/v4/live/get_message/{wq}/", get(live::get_message))
        .route(
            "/v4/live/get_message_list/{wq}/",
            get(live::get_message_list),
        )
        .route(
            "/v4/live/outstanding_services/{sid}/",
            get(live::outstanding_services),
        )
        .route("/v4/service/", get(views::services))
        .route("/v4/service/all/", get(views::services))
        .route(
            "/v4/search/{index}/",
            get(views::search_get).post(views::search_post),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .merge(protected)
        .route("/v4/auth/login/", post(auth::login).get(auth::login))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(body_limit(max_upload)))
        .with_state(state)
}

/// Largest request body: a base64 sample at the upload limit plus JSON.
fn body_limit(max_upload: u64) -> usize {
    usize::try_from(max_upload.saturating_mul(2).saturating_add(16 << 20)).unwrap_or(usize::MAX)
}

/// No route: 308 to the slashed path (Flask), else `Api does not exist`.
async fn fallback(req: Request) -> Response {
    let uri = req.uri();
    let path = uri.path();
    let full = if path.starts_with("/api") {
        path.to_owned()
    } else {
        format!("/api{path}")
    };
    if !full.ends_with('/') {
        let mut loc = format!("{full}/");
        if let Some(q) = uri.query() {
            loc.push('?');
            loc.push_str(q);
        }
        let mut r = (StatusCode::PERMANENT_REDIRECT, "").into_response();
        if let Ok(v) = HeaderValue::from_str(&loc) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    AlError::not_found(format!("Api does not exist ({full})")).into_response()
}

/// Roles granted by API-key privileges (`ACL_MAP`).
pub(crate) const ROLES_R: &[&str] = &[
    "alert_view",
    "archive_view",
    "archive_download",
    "badlist_view",
    "bundle_download",
    "external_query",
    "file_detail",
    "file_download",
    "heuristic_view",
    "safelist_view",
    "signature_download",
    "signature_view",
    "submission_view",
    "workflow_view",
    "retrohunt_view",
];
/// `W`.
pub(crate) const ROLES_W: &[&str] = &[
    "alert_manage",
    "archive_trigger",
    "archive_manage",
    "badlist_manage",
    "replay_trigger",
    "safelist_manage",
    "submission_create",
    "submission_delete",
    "submission_manage",
    "submission_customize",
    "retrohunt_run",
];
/// `E`.
pub(crate) const ROLES_E: &[&str] = &[
    "administration",
    "apikey_access",
    "file_purge",
    "obo_access",
    "replay_system",
    "self_manage",
    "signature_import",
    "signature_manage",
    "workflow_manage",
];

/// A user's own roles: staff or `admin` → every role; no roles → Assemblyline's `user`
/// type; otherwise the listed user types (`admin`, `user`, `viewer`, `submitter`) and
/// role names.
pub(crate) fn user_roles(user: &nestbox_core::User) -> BTreeSet<String> {
    let all = || ROLES_R.iter().chain(ROLES_W).chain(ROLES_E);
    let basic = || {
        ROLES_R
            .iter()
            .chain(ROLES_W)
            .chain(&["apikey_access", "self_manage", "obo_access"])
    };
    let mut out = BTreeSet::new();
    if user.is_staff || user.roles.iter().any(|r| r == "admin") {
        out.extend(all().map(|s| (*s).to_owned()));
        return out;
    }
    if user.roles.is_empty() {
        out.extend(basic().map(|s| (*s).to_owned()));
        return out;
    }
    for r in &user.roles {
        match r.as_str() {
            "user" => out.extend(basic().map(|s| (*s).to_owned())),
            "viewer" => out.extend(ROLES_R.iter().map(|s| (*s).to_owned())),
            "submitter" => out.extend(
                ["submission_create", "submission_view", "file_detail"]
                    .iter()
                    .map(|s| (*s).to_owned()),
            ),
            other => {
                out.insert(other.to_owned());
            }
        }
    }
    out
}

/// Roles granted by a stored privilege string (`R`, `W`, `RW`, `E…`, `C:<roles>`).
pub(crate) fn privilege_roles(privileges: &str) -> BTreeSet<String> {
    if let Some(list) = privileges.strip_prefix("C:") {
        return list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let mut out = BTreeSet::new();
    for c in privileges.chars() {
        let set = match c {
            'R' => ROLES_R,
            'W' => ROLES_W,
            'E' => ROLES_E,
            _ => &[],
        };
        out.extend(set.iter().map(|s| (*s).to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_base62_uuids() {
        let a = random_id();
        assert!((20..=23).contains(&a.len()), "{a}");
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_id());
    }

    #[test]
    fn privileges_map_to_roles() {
        let r = privilege_roles("R");
        assert!(r.contains("submission_view") && !r.contains("submission_create"));
        let rw = privilege_roles("RW");
        assert!(rw.contains("submission_create") && rw.contains("file_download"));
        assert_eq!(
            privilege_roles("C:a,b"),
            ["a", "b"].iter().map(|s| s.to_string()).collect()
        );
        assert!(qbool(Some(&String::new())));
        assert!(qbool(Some(&"TRUE".to_owned())));
        assert!(!qbool(Some(&"False".to_owned())));
        assert!(!qbool(None));
    }
}
