//! The pages over HTTP: routes, shared state, errors and response headers.

mod analysis;
mod pages;
mod queue;
mod session;
mod submit;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use nestbox_api::ApiContext;
use nestbox_types::{TaskId, Timestamp};
use serde_json::Value;

use crate::render::Templates;

/// What the UI needs besides the API context.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Require a login (same users as the APIs). Off: every page is open.
    pub auth: bool,
    /// Mark the session and CSRF cookies `Secure` (serve over HTTPS, or behind a proxy that
    /// does).
    pub secure_cookies: bool,
    /// How long a login lasts, in hours.
    pub session_hours: u64,
    /// Server version, shown on the status page and used to bust asset caches.
    pub version: String,
    /// Configured analysis workers (status page).
    pub workers: usize,
    /// The default analysis timeout in seconds (shown on the submit form).
    pub default_timeout: u64,
    /// Package names suggested on the submit form.
    pub packages: Vec<String>,
    /// Routes offered on the submit form.
    pub routes: Vec<String>,
}

/// One parsed call log: task, pid, calls.
pub(crate) type CachedCalls = (TaskId, i64, Arc<Vec<Value>>);

/// Shared state of the pages.
pub(crate) struct Web {
    pub api: Arc<ApiContext>,
    pub settings: WebSettings,
    /// HMAC key for session and CSRF tokens, derived from the server secret.
    pub key: Vec<u8>,
    pub templates: Templates,
    /// The last few call logs read (task, pid, calls): paging through a 100 000-call log
    /// must not parse the report again for every page.
    pub calls: Mutex<VecDeque<CachedCalls>>,
}

pub(crate) type St = axum::extract::State<Arc<Web>>;

impl Web {
    /// Renders a page: `ctx` plus what the layout needs (user, CSRF token, version).
    pub fn page(
        &self,
        session: &session::Session,
        template: &str,
        ctx: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        let name = template.trim_end_matches(".html.j2");
        self.templates.render(
            template,
            minijinja::context! { ..ctx, ..session.page(self, name) },
        )
    }
}

/// The UI's routes. Mount it in front of the APIs: `router(..).fallback_service(api)`.
pub fn router(api: Arc<ApiContext>, settings: WebSettings, server_secret: &[u8]) -> Router {
    let key = session::derive_key(server_secret);
    let web = Arc::new(Web {
        api,
        settings,
        key,
        templates: Templates::new(),
        calls: Mutex::new(VecDeque::new()),
    });
    Router::new()
        .route("/", get(queue::queue_page))
        .route("/ui/tasks.json", get(queue::tasks_json))
        .route(
            "/submit/",
            get(submit::submit_page).post(submit::submit_post),
        )
        .route("/analysis/{id}/", get(analysis::analysis_page))
        .route("/analysis/{id}/status.json", get(analysis::status_json))
        .route("/analysis/{id}/calls.json", get(analysis::calls_json))
        .route(
            "/analysis/{id}/report.json",
            get(analysis::report_json_view),
        )
        .route("/analysis/{id}/download/{what}", get(analysis::download))
        .route(
            "/analysis/{id}/download/dropped/{n}",
            get(analysis::download_dropped),
        )
        .route("/analysis/{id}/shot/{n}", get(analysis::screenshot))
        .route(
            "/analysis/{id}/resubmit/dropped/{n}",
            post(analysis::resubmit_dropped),
        )
        .route("/file/{sha256}/", get(pages::sample_page))
        .route("/file/{sha256}/download", get(pages::sample_download))
        .route("/status/", get(pages::status_page))
        .route("/login/", get(pages::login_page).post(pages::login_post))
        .route("/logout/", post(pages::logout))
        .route("/static/nestbox.css", get(pages::css))
        .route("/static/nestbox.js", get(pages::js))
        .layer(middleware::from_fn_with_state(web.clone(), session::layer))
        .layer(middleware::from_fn(not_allowed_page))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
}

/// No inline script or style may run, nothing loads from another origin, no framing.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// A method a page does not take (a POST to a page, a GET to a form's target) is answered
/// 405 with `Allow`, as CAPE's Django views do (`require_safe`/`require_POST` →
/// `HttpResponseNotAllowed`; Cuckoo 2's views never answer 404 for it either), and as an
/// error page rather than axum's empty body. The API dialects keep their own answers: this
/// layer is on the UI's routes only.
async fn not_allowed_page(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    if res.status() != StatusCode::METHOD_NOT_ALLOWED
        || res.headers().contains_key(header::CONTENT_TYPE)
    {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut page = PageError(
        res.status(),
        format!("This page does not take {method} requests."),
    )
    .into_response();
    if let Some(allow) = allow {
        page.headers_mut().insert(header::ALLOW, allow);
    }
    page
}

/// The largest URL-encoded form a page takes (login, logout, resubmit: a few fields).
const FORM_LIMIT: usize = 64 * 1024;

/// `Form<T>` whose rejection (wrong content type, missing field) is an error page with the
/// same status instead of axum's plain text.
pub(crate) struct PageForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for PageForm<T>
where
    axum::Form<T>:
        axum::extract::FromRequest<S, Rejection = axum::extract::rejection::FormRejection>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        // The body is read before the form is checked: axum's Form refuses a wrong content
        // type without reading it, and a connection closed with unread bytes in its receive
        // buffer is reset, which can drop the error page before the client reads it.
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            PageError(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.".to_owned(),
            )
        })?;
        let req = Request::from_parts(parts, axum::body::Body::from(body));
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(e) => Err(PageError(e.status(), e.body_text())),
        }
    }
}

/// A page error: a status and a message, rendered as a page.
pub(crate) struct PageError(pub StatusCode, pub String);

impl PageError {
    pub fn not_found(what: &str) -> Self {
        PageError(StatusCode::NOT_FOUND, format!("{what} not found."))
    }
    pub fn bad(msg: impl Into<String>) -> Self {
        PageError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl From<nestbox_core::Error> for PageError {
    fn from(e: nestbox_core::Error) -> Self {
        match e {
            nestbox_core::Error::TaskNotFound(_) => PageError::not_found("Task"),
            nestbox_core::Error::Invalid(m) => PageError::bad(m),
            nestbox_core::Error::SampleTooLarge { max } => PageError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The file is larger than the {max}-byte limit."),
            ),
            e => {
                tracing::error!(error = %e, "web page failed");
                PageError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server.".into(),
                )
            }
        }
    }
}

impl From<minijinja::Error> for PageError {
    fn from(e: minijinja::Error) -> Self {
        tracing::error!(error = %format!("{e:#}"), "template failed");
        PageError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page could not be rendered.".into(),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // Rendered without the state: a plain page with the same stylesheet.
        let page = Templates::new()
            .render(
                "error.html.j2",
                minijinja::context! { status => self.0.to_string(), message => &self.1 },
            )
            .unwrap_or_else(|_| self.1.clone());
        (self.0, Html(page)).into_response()
    }
}

pub(crate) type PageResult<T = Response> = Result<T, PageError>;

/// `2026-11-23 07:05:30` (UTC) for a timestamp.
pub(crate) fn fmt_time(t: Timestamp) -> String {
    let secs = t.secs();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` → the timestamp of its midnight UTC.
pub(crate) fn parse_date(s: &str) -> Option<Timestamp> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    // Inverse of civil_from_days.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(Timestamp::from_secs(
        (era * 146_097 + doe - 719_468) * 86_400,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_round_trip() {
        for s in ["1970-01-01", "2000-02-29", "2026-11-23", "2100-12-31"] {
            let t = super::parse_date(s).unwrap();
            assert_eq!(&super::fmt_time(t)[..10], s);
        }
        assert_eq!(super::parse_date("2026-13-01"), None);
        assert_eq!(super::parse_date("x"), None);
    }
}
