//! Errors of the CAPE dialect, in the shapes DRF and Django give them.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json_response;

/// One error response of the CAPE dialect.
#[derive(Debug)]
pub enum CapeError {
    /// An application error: `{"error": true, "error_value": …}` with HTTP 200.
    App(String),
    /// The envelope error with another status (400 on bad report formats, ranges, …).
    Status(StatusCode, String),
    /// DRF 401 `{"detail": …}` with `WWW-Authenticate: Token`.
    Unauthorized(&'static str),
    /// DRF 405 with `Allow`.
    MethodNotAllowed(Method, &'static str),
    /// DRF 429 with `Retry-After` (seconds).
    Throttled(u64),
    /// A Django HTML page (404 no route, 500 exception).
    Page(StatusCode),
}

impl CapeError {
    /// The 200 envelope error.
    pub fn app(msg: impl Into<String>) -> Self {
        CapeError::App(msg.into())
    }
}

/// An internal failure: logged in full, answered like Django's 500 page.
impl From<nestbox_core::Error> for CapeError {
    fn from(e: nestbox_core::Error) -> Self {
        tracing::error!(error = %e, "cape api: internal error");
        CapeError::Page(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<std::io::Error> for CapeError {
    fn from(e: std::io::Error) -> Self {
        nestbox_core::Error::Io(e).into()
    }
}

impl IntoResponse for CapeError {
    fn into_response(self) -> Response {
        match self {
            CapeError::App(msg) => json_response(&json!({"error": true, "error_value": msg})),
            CapeError::Status(code, msg) => {
                let mut r = json_response(&json!({"error": true, "error_value": msg}));
                *r.status_mut() = code;
                r
            }
            CapeError::Unauthorized(detail) => {
                let mut r = json_response(&json!({ "detail": detail }));
                *r.status_mut() = StatusCode::UNAUTHORIZED;
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
                r
            }
            CapeError::MethodNotAllowed(method, allow) => {
                let mut r = json_response(
                    &json!({ "detail": format!("Method \"{}\" not allowed.", method.as_str()) }),
                );
                *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                r
            }
            CapeError::Throttled(wait) => {
                let unit = if wait == 1 { "second" } else { "seconds" };
                let mut r = json_response(&json!({
                    "detail": format!("Request was throttled. Expected available in {wait} {unit}.")
                }));
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(wait));
                r
            }
            CapeError::Page(code) => django_page(code),
        }
    }
}

/// Django's plain error pages (`DEBUG` pages carry internals; we never show those).
pub fn django_page(code: StatusCode) -> Response {
    let body = match code.as_u16() {
        404 => {
            "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n"
        }
        400 => {
            "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n"
        }
        _ => {
            "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
        }
    };
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}
