//! `files/*`, `machines/*`, `cuckoo/status`, `vpn/status` and `exit` (spec §3, §3.9).

use axum::extract::{Path, State};
use axum::response::Response;
use nestbox_core::keys;
use nestbox_types::{Sample, TaskStatus};
use serde_json::{Value, json};

use super::dto;
use super::report::stream_blob as stream;
use super::{Ctx, CuckooError, int_segment, ok};
use crate::common::status;

type Result<T, E = CuckooError> = std::result::Result<T, E>;

async fn view_sample(ctx: &crate::ApiContext, sample: Option<Sample>) -> Result<Response> {
    let Some(sample) = sample else {
        return Err(CuckooError::not_found("File not found"));
    };
    let mut obj = dto::sample(&sample);
    let ids = ctx.core.repo.sample_task_ids(sample.id).await?;
    obj.insert(
        "tasks".into(),
        ids.into_iter().map(|i| i.0).collect::<Vec<_>>().into(),
    );
    Ok(ok(json!({ "sample": obj })))
}

fn hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /files/view/md5/<md5>`.
pub async fn files_view_md5(State(ctx): Ctx, Path(md5): Path<String>) -> Result<Response> {
    let sample = if hex_of_len(&md5, 32) {
        ctx.core.repo.sample_by_hash(&md5).await?
    } else {
        None
    };
    view_sample(&ctx, sample).await
}

/// `GET /files/view/sha256/<sha256>`.
pub async fn files_view_sha256(State(ctx): Ctx, Path(sha): Path<String>) -> Result<Response> {
    let sample = if hex_of_len(&sha, 64) {
        ctx.core.repo.sample_by_hash(&sha).await?
    } else {
        None
    };
    view_sample(&ctx, sample).await
}

/// `GET /files/view/id/<id>`; id 0 is "Invalid lookup term" (upstream's falsy check).
pub async fn files_view_id(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = int_segment(&id)?;
    if id == 0 {
        return Err(CuckooError::bad_request("Invalid lookup term"));
    }
    let sample = ctx.core.repo.sample(id).await?;
    view_sample(&ctx, sample).await
}

/// `GET /files/get/<sha256>`: the sample's bytes.
pub async fn files_get(State(ctx): Ctx, Path(sha): Path<String>) -> Result<Response> {
    let sha = sha.to_ascii_lowercase();
    if !hex_of_len(&sha, 64) {
        return Err(CuckooError::not_found("File not found"));
    }
    stream(
        &ctx.core,
        &keys::sample(&sha),
        "application/octet-stream; charset=UTF-8",
    )
    .await?
    .ok_or_else(|| CuckooError::not_found("File not found"))
}

/// `GET /machines/list`.
pub async fn machines_list(State(ctx): Ctx) -> Result<Response> {
    let machines: Vec<Value> = ctx
        .core
        .repo
        .machines()
        .await?
        .iter()
        .map(dto::machine)
        .collect();
    Ok(ok(json!({ "machines": machines })))
}

/// `GET /machines/view/<name>` (by name).
pub async fn machines_view(State(ctx): Ctx, Path(name): Path<String>) -> Result<Response> {
    match ctx.core.repo.machine(&name).await? {
        Some(m) => Ok(ok(json!({ "machine": dto::machine(&m) }))),
        None => Err(CuckooError::not_found("Machine not found")),
    }
}

fn disk(ctx: &crate::ApiContext, prefix: &str) -> Value {
    let d = ctx.core.blobs.disk_usage(prefix).unwrap_or_default();
    json!({ "free": d.free, "total": d.total, "used": d.used })
}

/// `GET /cuckoo/status`.
pub async fn cuckoo_status(State(ctx): Ctx) -> Result<Response> {
    let machines = ctx.core.repo.machines().await?;
    let available = machines.iter().filter(|m| !m.locked).count();
    let counts = ctx.core.repo.status_counts().await?;
    let (memory, memavail, memtotal) = match status::meminfo() {
        Some((avail, total)) if total > 0 => (
            json!(100.0 - 100.0 * avail as f64 / total as f64),
            json!(avail),
            json!(total),
        ),
        _ => (Value::Null, Value::Null, Value::Null),
    };
    Ok(ok(json!({
        "version": ctx.cuckoo.version,
        "hostname": status::hostname(),
        "machines": { "total": machines.len(), "available": available },
        "tasks": {
            "total": counts.total,
            "pending": counts.get(TaskStatus::Pending),
            "running": counts.get(TaskStatus::Running),
            "completed": counts.get(TaskStatus::Completed),
            "reported": counts.get(TaskStatus::Reported),
        },
        "diskspace": { "analyses": disk(&ctx, "analyses/"), "binaries": disk(&ctx, "store/") },
        "cpuload": status::cpuload(),
        "cpu_count": status::cpu_count(),
        "memory": memory,
        "memavail": memavail,
        "memtotal": memtotal,
        "processes": { "nestbox": std::process::id() },
    })))
}

/// `GET /vpn/status`: nestbox has no rooter process, so this answers as Cuckoo does when
/// its rooter socket is absent.
pub async fn vpn_status() -> CuckooError {
    CuckooError::internal("Rooter not available")
}

/// `GET /exit`: stops the server, in debug mode only.
pub async fn exit(State(ctx): Ctx) -> Result<Response> {
    if !ctx.cuckoo.debug {
        return Err(CuckooError::Message(
            axum::http::StatusCode::FORBIDDEN,
            "This call can only be used in debug mode".into(),
        ));
    }
    let _ = ctx.shutdown.send(true);
    Ok(ok(json!({ "message": "Server stopped" })))
}
