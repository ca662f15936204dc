//! Pieces shared by the API dialects. Dialects never import each other; what two of them
//! need lives here.

pub mod cache;
pub mod cookie;
pub mod drain;
pub mod form;
pub mod pyjson;
pub mod status;
pub mod zipout;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// Marks `resp` `Connection: close` when the request it answers carried a body the handler
/// never read (a redirect or an early error). hyper drains such a body only if it has
/// already arrived, and otherwise closes the connection silently after the response; a
/// client that kept the connection for its next request then fails with "peer
/// disconnected". Saying so in the response makes clients open a fresh connection.
pub fn close_if_body_unread(request: &HeaderMap, mut resp: Response) -> Response {
    let has_body = request.contains_key(header::TRANSFER_ENCODING)
        || request
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if has_body {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
