//! Request bodies a handler answers without reading (a 405, a 401 before the upload is
//! looked at, a 404, a redirect, a 413) are read to their end before the answer goes out.
//!
//! Why: hyper only drains what has already arrived; otherwise it answers and closes the
//! connection while the client is still sending. The client then sees a broken pipe or a
//! reset instead of the status (Python's `http.client` under `requests` raises
//! `ConnectionError` on a 100 KB POST to a wrong URL), and a pooled connection is lost for
//! its next request. Cuckoo's and CAPE's servers (werkzeug, gunicorn) read the rest of
//! the body; so does this, up to [`LIMIT`] bytes and [`TIME`]. Past those the answer says
//! `Connection: close`, so a client does not reuse a connection hyper is about to drop.
//!
//! How: the handler gets a body fed from the real one by a small pump task; when the
//! handler is done (it read everything, or dropped the body), the pump reads whatever is
//! left and throws it away, and the response waits for that.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;

/// Most bytes read and thrown away after the handler answered.
pub const LIMIT: u64 = 64 << 20;
/// Longest the answer waits for the rest of the body.
pub const TIME: Duration = Duration::from_secs(10);

/// Whether the request says it carries a body.
fn has_body(req: &Request) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The middleware (outermost, so every dialect and the fallbacks get it).
pub async fn read_unread_bodies(req: Request, next: Next) -> Response {
    if !has_body(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, axum::Error>>(2);
    // Ends with whether the body was read to its end.
    let pump = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut handler_reads = true;
        let mut thrown = 0u64;
        while let Some(chunk) = stream.next().await {
            if handler_reads {
                // A send fails once the handler has dropped its body: from then on the
                // rest is only read.
                handler_reads = tx.send(chunk).await.is_ok();
                continue;
            }
            match chunk {
                Ok(b) => {
                    thrown += b.len() as u64;
                    if thrown > LIMIT {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = next
        .run(Request::from_parts(parts, Body::from_stream(stream)))
        .await;
    // The request (and the handler's end of the body) is gone by now, unless the handler
    // kept it: then the time bound ends the wait.
    let read = matches!(tokio::time::timeout(TIME, pump).await, Ok(Ok(true)));
    if !read {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
