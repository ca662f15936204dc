//! Errors of the Cuckoo dialect, rendered as Cuckoo 2.0.7 renders them.
//!
//! Errors the Flask app raises itself are `{"message": …}` JSON with the status; errors
//! Werkzeug raises (no route, wrong method, missing multipart field, an exception) are its
//! HTML pages. Both are reproduced, because clients branch on the content type.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ok;

/// One error response of the Cuckoo dialect.
#[derive(Debug)]
pub enum CuckooError {
    /// `{"message": …}` with a status code.
    Message(StatusCode, String),
    /// A Werkzeug HTML error page.
    Page(StatusCode),
    /// 405 with the methods the route allows.
    MethodNotAllowed(&'static str),
}

impl CuckooError {
    /// 404 with a message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        CuckooError::Message(StatusCode::NOT_FOUND, msg.into())
    }
    /// 400 with a message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        CuckooError::Message(StatusCode::BAD_REQUEST, msg.into())
    }
    /// 500 with a message.
    pub fn internal(msg: impl Into<String>) -> Self {
        CuckooError::Message(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
    }
}

/// An internal failure: logged in full, answered with Werkzeug's generic 500 page so that
/// nothing about our internals leaks.
impl From<nestbox_core::Error> for CuckooError {
    fn from(e: nestbox_core::Error) -> Self {
        tracing::error!(error = %e, "cuckoo api: internal error");
        CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for CuckooError {
    fn into_response(self) -> Response {
        match self {
            CuckooError::Message(code, msg) => {
                let mut r = ok(json!({ "message": msg }));
                *r.status_mut() = code;
                r
            }
            CuckooError::Page(code) => werkzeug_page(code),
            CuckooError::MethodNotAllowed(allow) => {
                let mut r = werkzeug_page(StatusCode::METHOD_NOT_ALLOWED);
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                r
            }
        }
    }
}

/// Werkzeug's HTML error page for a status.
pub fn werkzeug_page(code: StatusCode) -> Response {
    let (title, text) = match code.as_u16() {
        400 => (
            "Bad Request",
            "The browser (or proxy) sent a request that this server could not understand.",
        ),
        404 => (
            "Not Found",
            "The requested URL was not found on the server.  If you entered the URL manually please check your spelling and try again.",
        ),
        405 => (
            "Method Not Allowed",
            "The method is not allowed for the requested URL.",
        ),
        413 => (
            "Request Entity Too Large",
            "The data value transmitted exceeds the capacity limit.",
        ),
        _ => (
            "Internal Server Error",
            "The server encountered an internal error and was unable to complete your request.  Either the server is overloaded or there is an error in the application.",
        ),
    };
    let body = format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>{} {}</title>\n<h1>{}</h1>\n<p>{}</p>\n",
        code.as_u16(),
        title,
        title,
        text
    );
    let mut r = (code, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}
