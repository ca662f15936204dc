//! Operations endpoints, outside every dialect: `GET /metrics` (Prometheus text format),
//! `GET /health` (the process answers), `GET /ready` (the task store and the blob store
//! answer, so a load balancer may send traffic) and `GET /health/workers` (every worker
//! of the cluster by its heartbeat row), plus the middleware that times every request by
//! route pattern. Worker-only nodes serve the same router on their probe listener.
//!
//! None of the three paths exists in an upstream API (Cuckoo owns the root, CAPE
//! `/apiv2/`, Assemblyline `/api/`), and none needs credentials: probes and scrapers
//! carry none, and the answers hold no task data. Keep the API port on a private network
//! (see docs/deployment.md), as upstream sandboxes require anyway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use nestbox_core::metrics::{Metrics, render_gauge};
use nestbox_core::ports::WorkerBeat;
use nestbox_types::{TaskStatus, Timestamp};
use serde_json::json;

use crate::ApiContext;

/// The Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long `/ready` waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `/metrics`, `/health`, `/ready`.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/health/workers", get(workers))
        .route("/ready", get(ready))
        .with_state(ctx)
}

/// Times a request into `nestbox_http_request_duration_seconds`. Layered on the routers
/// (not around them), so the matched route pattern is known; requests no route matched
/// count as `route="unmatched"`, so hostile paths cannot add series.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let resp = next.run(req).await;
    metrics.http.observe(
        [
            method,
            route.as_deref().unwrap_or("unmatched"),
            resp.status().as_str(),
        ],
        started.elapsed(),
    );
    resp
}

/// Standard methods by name; anything else (extension methods are client-chosen
/// strings) as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

async fn metrics(State(ctx): State<Arc<ApiContext>>) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    // Read at scrape time from the shared store, so every API node reports the same
    // queue whichever node queued the tasks.
    match ctx.core.repo.status_counts().await {
        Ok(counts) => {
            let rows: Vec<(&str, f64)> = TaskStatus::ALL
                .iter()
                .map(|s| (s.as_str(), counts.get(*s) as f64))
                .collect();
            render_gauge(
                &mut out,
                "nestbox_tasks",
                "Tasks by status; status=\"pending\" is the queue depth.",
                "status",
                &rows,
            );
            render_up(&mut out, 1.0);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading task counts failed");
            render_up(&mut out, 0.0);
        }
    }
    match ctx.core.repo.worker_beats().await {
        Ok(beats) => render_beats(&mut out, &beats),
        Err(e) => tracing::warn!(error = %e, "metrics: reading worker heartbeats failed"),
    }
    ctx.core.metrics.render(&mut out);
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], out).into_response()
}

/// The cluster's workers from the heartbeat table (every node's, unlike the in-process
/// `nestbox_worker_*` families): how many are alive or dead, and each one's last beat.
fn render_beats(out: &mut String, beats: &[WorkerBeat]) {
    let now = Timestamp::now();
    let alive = beats.iter().filter(|b| b.expires_on > now).count();
    render_gauge(
        out,
        "nestbox_cluster_workers",
        "Workers of every node by heartbeat: alive, or dead (missed three beats).",
        "state",
        &[
            ("alive", alive as f64),
            ("dead", (beats.len() - alive) as f64),
        ],
    );
    let seen: Vec<(&str, f64)> = beats
        .iter()
        .map(|b| (b.name.as_str(), b.seen_on.epoch_f64()))
        .collect();
    render_gauge(
        out,
        "nestbox_cluster_worker_last_beat_timestamp_seconds",
        "When each worker of the cluster last beat.",
        "worker",
        &seen,
    );
    let busy: Vec<(&str, f64)> = beats
        .iter()
        .map(|b| (b.name.as_str(), f64::from(u8::from(b.task.is_some()))))
        .collect();
    render_gauge(
        out,
        "nestbox_cluster_worker_busy",
        "1 while a worker of the cluster runs an analysis (as of its last beat).",
        "worker",
        &busy,
    );
}

/// `GET /health/workers`: every worker of the cluster by its heartbeat row, so one API
/// node shows the worker nodes (which serve no API). 503 when the store cannot say.
async fn workers(State(ctx): State<Arc<ApiContext>>) -> Response {
    let beats = match ctx.core.repo.worker_beats().await {
        Ok(beats) => beats,
        Err(e) => {
            let body = json!({"status": "unavailable", "error": e.to_string()});
            return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        }
    };
    let now = Timestamp::now();
    let rows: Vec<serde_json::Value> = beats
        .iter()
        .map(|b| {
            json!({
                "name": b.name,
                "node": b.node,
                "alive": b.expires_on > now,
                "task_id": b.task.map(|t| t.0),
                "started_on": b.started_on.epoch_f64(),
                "last_beat": b.seen_on.epoch_f64(),
                "expires_on": b.expires_on.epoch_f64(),
            })
        })
        .collect();
    let alive = rows.iter().filter(|r| r["alive"] == true).count();
    axum::Json(json!({
        "status": "ok",
        "alive": alive,
        "dead": rows.len() - alive,
        "workers": rows,
    }))
    .into_response()
}

fn render_up(out: &mut String, v: f64) {
    render_gauge(
        out,
        "nestbox_task_store_up",
        "1 when the task store answered this scrape.",
        "store",
        &[("tasks", v)],
    );
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// 200 when both stores answer within [`PROBE_TIMEOUT`], else 503; the body says which
/// check failed and why.
async fn ready(State(ctx): State<Arc<ApiContext>>) -> Response {
    let core = &ctx.core;
    // `machines()` is a small table on every engine: a real round trip, no scan.
    let (db, blobs) = tokio::join!(
        check(async { core.repo.machines().await.map(drop) }),
        check(core.blobs.probe()),
    );
    let ok = db.is_none() && blobs.is_none();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "ok".to_owned());
    if !ok {
        tracing::warn!(database = %show(&db), blob_store = %show(&blobs), "not ready");
    }
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "checks": {"database": show(&db), "blob_store": show(&blobs)},
    });
    (status, axum::Json(body)).into_response()
}

/// `None` when the check passed in time, else what went wrong.
async fn check(f: impl std::future::Future<Output = nestbox_core::Result<()>>) -> Option<String> {
    match tokio::time::timeout(PROBE_TIMEOUT, f).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}
