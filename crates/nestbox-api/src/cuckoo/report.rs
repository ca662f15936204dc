//! Report and artifact endpoints: `tasks/report`, `tasks/summary`, `tasks/screenshots`,
//! `pcap/get`, `memory/*` (spec §3.5–§3.8). Everything is read from the task's analysis
//! folder in the blob store (`analyses/<id>/…`, Cuckoo's layout).

use std::io::Write;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nestbox_core::{Core, keys};
use nestbox_types::TaskId;
use serde_json::{Value, json};

use super::{Ctx, CuckooError, int_segment, ok};
use crate::common::pyjson::{self, Style};

type Result<T, E = CuckooError> = std::result::Result<T, E>;

const OCTET: &str = "application/octet-stream; charset=UTF-8";
const TAR: &str = "application/x-tar; charset=UTF-8";

/// Query of `tasks/report`.
#[derive(serde::Deserialize, Default)]
pub struct ReportQuery {
    elements: Option<String>,
    tar: Option<String>,
}

/// `GET /tasks/report/<id>` (JSON).
pub async fn tasks_report(
    ctx: Ctx,
    Path(id): Path<String>,
    q: Query<ReportQuery>,
) -> Result<Response> {
    report(ctx, id, "json".to_owned(), q).await
}

/// `GET /tasks/report/<id>/<format>`.
pub async fn tasks_report_format(
    ctx: Ctx,
    Path((id, format)): Path<(String, String)>,
    q: Query<ReportQuery>,
) -> Result<Response> {
    report(ctx, id, format, q).await
}

async fn report(
    State(ctx): Ctx,
    id: String,
    format: String,
    Query(q): Query<ReportQuery>,
) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    let format = format.to_ascii_lowercase();
    let core = &ctx.core;
    match format.as_str() {
        "json" | "html" => {
            let key = if format == "json" {
                keys::report_json(id)
            } else {
                keys::report_html(id)
            };
            let Some(bytes) = core.blobs.get(&key).await? else {
                return Err(CuckooError::not_found("Report not found"));
            };
            if let Some(element) = q.elements {
                if format == "html" {
                    return Err(CuckooError::not_found(
                        "Get specific field is not available in HTML format, try again with JSON format",
                    ));
                }
                return element_of(&bytes, &element);
            }
            let ctype = if format == "json" {
                "application/json"
            } else {
                "text/html; charset=utf-8"
            };
            Ok(([(header::CONTENT_TYPE, ctype)], bytes).into_response())
        }
        "all" | "dropped" | "package_files" => {
            let prefix = keys::analysis(id);
            let mut members = core.blobs.list(&prefix).await?;
            if members.is_empty() {
                return Err(CuckooError::not_found("Report not found"));
            }
            let wanted = match format.as_str() {
                "dropped" => Some("files/"),
                "package_files" => Some("package_files/"),
                _ => None,
            };
            members.retain(|k| {
                let rel = &k[prefix.len()..];
                rel != "memory.dmp" && wanted.is_none_or(|w| rel.starts_with(w))
            });
            let mut entries: Vec<(String, String)> = members
                .into_iter()
                .map(|k| (k[prefix.len()..].to_owned(), k))
                .collect();
            if format == "all" {
                // Upstream's analysis folder has `binary`, a symlink to the sample, which tar
                // dereferences; our store keeps one copy, so add it under that name.
                if let Some(sample) = core.repo.task(id).await?.and_then(|t| t.sample) {
                    entries.push(("binary".to_owned(), keys::sample(&sample.sha256)));
                }
            }
            tar_response(core, entries, q.tar.as_deref()).await
        }
        _ => Err(CuckooError::bad_request("Invalid report format")),
    }
}

/// `?elements=<key>`: one top-level key, compact (upstream `json.dumps(…, sort_keys=True)`
/// without indent, no newline).
fn element_of(bytes: &[u8], element: &str) -> Result<Response> {
    let report: Value = serde_json::from_slice(bytes)
        .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR))?;
    match report.get(element) {
        Some(v) if !v.is_null() => {
            let body = pyjson::to_string(v, Style::Compact);
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        _ => Err(CuckooError::not_found(format!("'{element}' not found"))),
    }
}

/// Builds a tar (bz2 by default; `?tar=gz|tar`) of the given blobs in a temp file on a
/// blocking thread, then streams it. Analysis folders can be large (pcaps, memory), so the
/// archive is never built in memory.
async fn tar_response(
    core: &Core,
    entries: Vec<(String, String)>,
    compression: Option<&str>,
) -> Result<Response> {
    let mut locals = Vec::with_capacity(entries.len());
    for (name, key) in entries {
        if let Some(local) = core.blobs.local(&key).await? {
            locals.push((name, local));
        }
    }
    let compression = compression.unwrap_or("bz2").to_owned();
    let tmp_dir = core.tmp_dir.clone();
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(&tmp_dir)?;
        let mut out = tempfile::tempfile_in(&tmp_dir)?;
        {
            let sink: Box<dyn Write> = match compression.as_str() {
                "gz" => Box::new(flate2::write::GzEncoder::new(
                    &mut out,
                    flate2::Compression::default(),
                )),
                "tar" => Box::new(&mut out),
                _ => Box::new(bzip2::write::BzEncoder::new(
                    &mut out,
                    bzip2::Compression::default(),
                )),
            };
            let mut builder = tar::Builder::new(sink);
            builder.follow_symlinks(true);
            for (name, local) in &locals {
                builder.append_path_with_name(&local.path, name)?;
            }
            let sink = builder.into_inner()?;
            // Dropping a compressing writer finishes its stream.
            drop(sink);
        }
        use std::io::Seek;
        out.flush()?;
        out.seek(std::io::SeekFrom::Start(0))?;
        Ok(out)
    })
    .await
    .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR))?
    .map_err(nestbox_core::Error::Io)?;
    let len = file.metadata().map(|m| m.len()).ok();
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAR));
    if let Some(len) = len {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, len.into());
    }
    Ok(resp)
}

/// Streams one blob, or `None` when it does not exist.
pub(crate) async fn stream_blob(
    core: &Core,
    key: &str,
    ctype: &'static str,
) -> Result<Option<Response>> {
    let Some(reader) = core.blobs.open(key).await? else {
        return Ok(None);
    };
    let mut resp = Response::new(Body::from_stream(reader.stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, reader.size.into());
    Ok(Some(resp))
}

/// `GET /tasks/summary/<id>`: the report without its bulky parts. Deletion stops at the
/// first missing key, as upstream's single `try` block does.
pub async fn tasks_summary(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    let Some(bytes) = ctx.core.blobs.get(&keys::report_json(id)).await? else {
        return Err(CuckooError::not_found("Report not found"));
    };
    let mut report: Value = serde_json::from_slice(&bytes)
        .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR))?;
    let steps: [&[&str]; 7] = [
        &["procmemory"],
        &["behavior", "generic"],
        &["behavior", "apistats"],
        &["behavior", "processes"],
        &["debug"],
        &["screenshots"],
        &["metadata"],
    ];
    for path in steps {
        let (last, parents) = path.split_last().unwrap_or((&"", &[]));
        let parent = parents.iter().try_fold(&mut report, |v, k| v.get_mut(*k));
        let removed = parent
            .and_then(|p| p.as_object_mut())
            .and_then(|m| m.remove(*last));
        if removed.is_none() {
            break;
        }
    }
    Ok(ok(report))
}

/// `GET /tasks/screenshots/<id>`: a stored (uncompressed) zip of every file in `shots/`.
pub async fn task_screenshots(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    let prefix = keys::analysis_file(id, "shots/");
    let shots = ctx.core.blobs.list(&prefix).await?;
    if shots.is_empty() {
        return Err(CuckooError::not_found("Task not found"));
    }
    let mut files = Vec::with_capacity(shots.len());
    for key in shots {
        if let Some(bytes) = ctx.core.blobs.get(&key).await? {
            let name = key.rsplit('/').next().unwrap_or(&key).to_owned();
            files.push((name, bytes));
        }
    }
    let zip = tokio::task::spawn_blocking(move || -> zip::result::ZipResult<Vec<u8>> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in files {
            w.start_file(name, opts)?;
            w.write_all(&bytes)?;
        }
        Ok(w.finish()?.into_inner())
    })
    .await
    .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR))?
    .map_err(|_| CuckooError::Page(StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(([(header::CONTENT_TYPE, "application/zip")], zip).into_response())
}

/// `GET /tasks/screenshots/<id>/<n>`: `shots/<n>.jpg` (PNG shots are served too).
pub async fn task_screenshot(
    State(ctx): Ctx,
    Path((id, shot)): Path<(String, String)>,
) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    let shots = keys::analysis_file(id, "shots/");
    if ctx.core.blobs.list(&shots).await?.is_empty() {
        return Err(CuckooError::not_found("Task not found"));
    }
    if shot.contains("..") || shot.contains('/') {
        return Err(CuckooError::not_found("Screenshot not found!"));
    }
    for (ext, ctype) in [("jpg", "image/jpeg"), ("png", "image/png")] {
        let key = format!("{shots}{shot}.{ext}");
        if let Some(resp) = stream_blob(&ctx.core, &key, ctype).await? {
            return Ok(resp);
        }
    }
    Err(CuckooError::not_found("Screenshot not found!"))
}

/// `GET /pcap/get/<id>`.
pub async fn pcap_get(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    stream_blob(&ctx.core, &keys::analysis_file(id, "dump.pcap"), OCTET)
        .await?
        .ok_or_else(|| CuckooError::not_found("File not found"))
}

/// `GET /memory/list/<id>`: per-process dumps, names without `.dmp`.
pub async fn memorydumps_list(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    let prefix = keys::analysis_file(id, "memory/");
    let names: Vec<String> = ctx
        .core
        .blobs
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|k| k[prefix.len()..].strip_suffix(".dmp").map(str::to_owned))
        .filter(|n| !n.contains('/'))
        .collect();
    if names.is_empty() {
        return Err(CuckooError::not_found("Memory dump not found"));
    }
    Ok(ok(json!({ "dump_files": names })))
}

/// `GET /memory/get/<id>/<pid>`.
pub async fn memorydumps_get(
    State(ctx): Ctx,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response> {
    let id = TaskId(int_segment(&id)?);
    if pid.contains("..") || pid.contains('/') || pid.is_empty() {
        return Err(CuckooError::not_found("Memory dump not found"));
    }
    stream_blob(
        &ctx.core,
        &keys::analysis_file(id, &format!("memory/{pid}.dmp")),
        OCTET,
    )
    .await?
    .ok_or_else(|| CuckooError::not_found("Memory dump not found"))
}
