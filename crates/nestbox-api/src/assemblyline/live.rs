//! `live/` (assemblyline-ui `api/v4/live.py`): watch queues, which `al-submit` polls in
//! its synchronous mode (`setup_watch_queue` → `get_message_list` every 2 s until `stop`).
//!
//! Upstream the dispatcher pushes `START`, one `OK`/`FAIL` per service result (its cache
//! key) and `STOP` into a Redis list named `D-<uuid>-WQ`; a submission the dispatcher is
//! not processing gets a lone `STOP`, after which the client asks `is_completed`. nestbox
//! has no dispatcher event stream, so a queue is a cursor over the submission's state,
//! advanced at each read: `start` once while the task runs, then, once it is finished, a
//! `cachekey` per result key, a `cachekeyerr` per error key and `stop`. Queues live in
//! memory for [`QUEUE_TTL`] after their last read, at most [`MAX_QUEUES`] at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::views::{self, results_for};
use super::{AlError, Caller, Result, St, ok};

/// How long an unread queue is kept (Assemblyline's watch queues expire too).
const QUEUE_TTL: Duration = Duration::from_secs(600);
/// Most queues kept; the least recently read go first.
const MAX_QUEUES: usize = 10_000;

#[derive(Clone)]
struct Queue {
    sid: String,
    /// Opened while the submission was being analysed.
    live: bool,
    started: bool,
    stopped: bool,
    last_read: Instant,
}

/// The open watch queues.
#[derive(Default)]
pub struct WatchQueues {
    queues: Mutex<HashMap<String, Queue>>,
}

impl WatchQueues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self, sid: &str, finished: bool) -> String {
        let id = format!("D-{}-WQ", uuid4());
        let mut m = self.lock();
        let now = Instant::now();
        m.retain(|_, q| now.duration_since(q.last_read) < QUEUE_TTL);
        if m.len() >= MAX_QUEUES
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, q)| q.last_read)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(
            id.clone(),
            Queue {
                sid: sid.to_owned(),
                live: !finished,
                // A finished submission is not being dispatched: its queue holds only STOP.
                started: finished,
                stopped: false,
                last_read: now,
            },
        );
        id
    }
}

/// A random UUID4 in its hyphenated form (the watch-queue ids of the dispatcher).
fn uuid4() -> String {
    let mut b = nestbox_core::users::random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `validate_reply_queue_name(wq_id, prefix="D", suffix="WQ")`.
fn valid_name(wq: &str) -> bool {
    wq.len() <= 128
        && wq.starts_with("D-")
        && wq.ends_with("-WQ")
        && wq
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn start() -> Value {
    json!({"type": "start", "err_msg": null, "status_code": 200, "msg": "Start listening..."})
}

fn stop() -> Value {
    json!({"type": "stop", "err_msg": null, "status_code": 200,
           "msg": "All messages received, closing queue..."})
}

/// Pops every message the queue has now (at most `limit`; the rest stay for later reads,
/// which re-derive them).
async fn pop(st: &super::AlState, wq: &str, limit: usize) -> Result<Vec<Value>> {
    if !valid_name(wq) {
        return Err(AlError::bad("invalid watch queue"));
    }
    let Some(q) = st.live.lock().get(wq).cloned() else {
        return Ok(Vec::new());
    };
    if q.stopped {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut next = q.clone();
    let loaded = match views::load(st, &q.sid).await {
        Ok(l) => Some(l),
        Err(AlError::Status(StatusCode::NOT_FOUND, _)) => None,
        Err(e) => return Err(e),
    };
    let finished = loaded.as_ref().is_none_or(views::Loaded::finished);
    if !next.started {
        out.push(start());
        next.started = true;
    }
    if finished {
        // Result keys only for a queue that watched the submission run.
        if q.live
            && let Some(l) = &loaded
        {
            let r = results_for(l);
            for (key, _) in &r.results {
                out.push(
                    json!({"type": "cachekey", "err_msg": null, "status_code": 200, "msg": key}),
                );
            }
            for (key, _) in &r.errors {
                out.push(
                    json!({"type": "cachekeyerr", "err_msg": null, "status_code": 200, "msg": key}),
                );
            }
        }
        out.push(stop());
        next.stopped = true;
    }
    out.truncate(limit);
    next.last_read = Instant::now();
    if let Some(slot) = st.live.lock().get_mut(wq) {
        *slot = next;
    }
    Ok(out)
}

/// `GET /api/v4/live/setup_watch_queue/<sid>/`.
pub async fn setup_watch_queue(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let l = views::load(&st, &sid).await.map_err(|_| {
        AlError::Status(
            StatusCode::FORBIDDEN,
            "You are not allowed to access this submissions.".into(),
        )
    })?;
    let wq = st.live.open(&sid, l.finished());
    Ok(ok(json!({ "wq_id": wq })))
}

/// `GET /api/v4/live/get_message/<wq>/`: one message, or the `timeout` pseudo-message.
pub async fn get_message(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(wq): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let msg = pop(&st, &wq, 1).await?.into_iter().next();
    Ok(ok(msg.unwrap_or_else(|| {
        json!({"type": "timeout", "err_msg": "Timeout waiting for a message.",
               "status_code": 408, "msg": null})
    })))
}

/// `GET /api/v4/live/get_message_list/<wq>/`: every message there is.
pub async fn get_message_list(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(wq): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    Ok(ok(Value::Array(pop(&st, &wq, usize::MAX).await?)))
}

/// `GET /api/v4/live/outstanding_services/<sid>/`: `{service: files left}`.
pub async fn outstanding_services(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(sid): Path<String>,
) -> Result<Response> {
    c.require(&["submission_view"])?;
    let Ok(l) = views::load(&st, &sid).await else {
        return Err(AlError::WithBody(
            StatusCode::FORBIDDEN,
            "You are not allowed to access this submissions.".into(),
            json!({}),
        ));
    };
    let mut out = serde_json::Map::new();
    if !l.finished() {
        // Every analyzer runs on the one file until the report is written.
        for (name, ..) in views::SERVICES {
            out.insert((*name).to_owned(), json!(1));
        }
    }
    Ok(ok(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names() {
        let id = format!("D-{}-WQ", uuid4());
        assert!(valid_name(&id), "{id}");
        assert_eq!(id.len(), 41);
        for bad in ["", "D--", "X-abc-WQ", "D-abc", "D-a/b-WQ", "D-a b-WQ"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
