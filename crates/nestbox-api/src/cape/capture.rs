//! Capture downloads added to CAPE in 2025-26 (`tasks/get/keys`, `tasks/get/etw`,
//! `tasks/get/bulkzip`) and `tasks/get/stream`, as `web/apiv2/views.py` has them: the
//! `_resolve_task_id` preamble (switch → "`<switch>` download API is disabled", task
//! validation, TLP red), then the kind checked against a whitelist (unknown → **400**
//! `{"error": true, "error_value": "Unknown … kind: x"}`), then the file or folder.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nestbox_core::keys;
use nestbox_types::TaskId;
use serde_json::json;

use super::artifacts::{blob, blob_entries, folder, reported, zip_response};
use super::tasks::read_data;
use super::{CapeError, Ctx, app_error, ok, task_id};
use crate::ApiContext;

type Result<T, E = CapeError> = std::result::Result<T, E>;

/// `_resolve_task_id`: the switch, then the task (reported, TLP).
async fn resolve(
    ctx: &ApiContext,
    id: &str,
    enabled: bool,
    switch: &str,
) -> Result<std::result::Result<TaskId, Response>> {
    let id = task_id(id)?;
    if !enabled {
        return Ok(Err(app_error(format!("{switch} download API is disabled"))));
    }
    reported(ctx, id).await
}

/// A 400 envelope (the whitelist checks).
fn unknown(what: &str, value: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        ok(json!({"error": true, "error_value": format!("Unknown {what}: {value}")})),
    )
        .into_response()
}

/// `_serve_analysis_file`: the file as `<id>_<name>`, or "`<name>` does not exist" when it
/// is missing or empty.
async fn analysis_file(
    ctx: &ApiContext,
    id: TaskId,
    rel: &str,
    name: &str,
    ctype: &'static str,
) -> Result<Response> {
    let key = keys::analysis_file(id, rel);
    let empty = match ctx.core.blobs.open(&key).await? {
        Some(r) => r.size == 0,
        None => true,
    };
    if !empty && let Some(r) = blob(ctx, &key, ctype, &format!("{id}_{name}")).await? {
        return Ok(r);
    }
    Ok(app_error(format!("{name} does not exist")))
}

/// `_serve_folder_zip`: an AES zip (`zip_pwd`) of an analysis sub-folder, streamed.
async fn folder_zip(
    ctx: &ApiContext,
    id: TaskId,
    rel: &str,
    name: &str,
    empty_msg: Option<String>,
) -> Result<Response> {
    let files = folder(ctx, id, &format!("{rel}/")).await?;
    if files.is_empty() {
        return Ok(app_error(
            empty_msg.unwrap_or_else(|| format!("No {rel} artifacts for task {id}")),
        ));
    }
    // Entries are named inside the folder, as `create_zip(folder=…)` names them.
    let prefix = format!("{rel}/");
    let files = files
        .into_iter()
        .map(|(p, k)| (p.strip_prefix(&prefix).unwrap_or(&p).to_owned(), k))
        .collect();
    Ok(zip_response(
        ctx,
        blob_entries(files),
        Some(ctx.cape.zip_pwd.clone()),
        &format!("{id}_{name}"),
    ))
}

/// `GET tasks/get/keys/<id>/<tls|ssl|master>/`: an NSS keylog, text/plain.
pub async fn keys_(State(ctx): Ctx, Path((id, kind)): Path<(String, String)>) -> Result<Response> {
    let id = match resolve(&ctx, &id, ctx.cape.endpoints.tasktlskeys, "tasktlskeys").await? {
        Ok(id) => id,
        Err(r) => return Ok(r),
    };
    let (rel, name) = match kind.to_ascii_lowercase().as_str() {
        "tls" => ("tlsdump/tlsdump.log", "tlsdump.log"),
        "ssl" => ("aux/sslkeylogfile/sslkeys.log", "sslkeys.log"),
        "master" => ("sslproxy/master_keys.log", "master_keys.log"),
        _ => return Ok(unknown("keys kind", &kind)),
    };
    analysis_file(&ctx, id, rel, name, "text/plain").await
}

/// `GET tasks/get/etw/<id>/<dns|network|wmi|amsi>/`: NDJSON, or an AES zip for `amsi`.
pub async fn etw(State(ctx): Ctx, Path((id, kind)): Path<(String, String)>) -> Result<Response> {
    let id = match resolve(&ctx, &id, ctx.cape.endpoints.tasketw, "tasketw").await? {
        Ok(id) => id,
        Err(r) => return Ok(r),
    };
    let k = kind.to_ascii_lowercase();
    let (rel, name) = match k.as_str() {
        "dns" => ("aux/dns_etw.json", "dns_etw.json"),
        "network" => ("aux/network_etw.json", "network_etw.json"),
        "wmi" => ("aux/wmi_etw.json", "wmi_etw.json"),
        "amsi" => return folder_zip(&ctx, id, "aux/amsi_etw", "amsi_etw.zip", None).await,
        _ => return Ok(unknown("etw kind", &kind)),
    };
    analysis_file(&ctx, id, rel, name, "application/x-ndjson").await
}

/// `GET tasks/get/bulkzip/<id>/<logs|network|selfextracted>/`: an AES zip of the folder.
/// `memory` is refused on purpose upstream (memory dumps have their own gated endpoints).
pub async fn bulkzip(
    State(ctx): Ctx,
    Path((id, folder_name)): Path<(String, String)>,
) -> Result<Response> {
    let id = match resolve(&ctx, &id, ctx.cape.endpoints.taskbulkzip, "taskbulkzip").await? {
        Ok(id) => id,
        Err(r) => return Ok(r),
    };
    let f = folder_name.to_ascii_lowercase();
    if !matches!(f.as_str(), "logs" | "network" | "selfextracted") {
        return Ok(unknown("bulkzip folder", &folder_name));
    }
    folder_zip(&ctx, id, &f, &format!("{f}.zip"), None).await
}

/// `POST tasks/get/stream/<id>/` (`filepath`, `is_local`): a file of a task whose machine
/// is running, from the guest agent or (`is_local`) the live analysis folder. nestbox
/// machines have no guest agent and write an analysis folder when the run ends, so a
/// running task answers the agent's failure and `is_local` finds the files stored so far.
pub async fn stream(State(ctx): Ctx, Path(id): Path<String>, req: Request) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskstatus {
        return Ok(app_error("Task status API is disabled"));
    }
    let form = read_data(&ctx, req, &[]).await?;
    if ctx.core.repo.task(id).await?.is_none() {
        return Ok(app_error("Task does not exist"));
    }
    let guest = ctx.core.repo.guest(id).await?;
    let machine = match &guest {
        Some(g) => ctx.core.repo.machine(&g.name).await?,
        None => None,
    };
    let status = machine
        .as_ref()
        .and_then(|m| m.status.clone())
        .or_else(|| guest.as_ref().map(|g| g.status.clone()));
    if status.as_deref() != Some("running") {
        return Ok(ok(
            json!({"error": true, "error_value": "Machine is not running",
                            "errors": status}),
        ));
    }
    let filepath = form.get("filepath").unwrap_or("").to_owned();
    if filepath.is_empty() {
        return Ok(app_error("filepath not set"));
    }
    if !form.get("is_local").unwrap_or("").is_empty() {
        if filepath.starts_with('/') || filepath.starts_with("\\/") {
            return Ok(app_error("Filepath mustn't start with /"));
        }
        if filepath
            .split(['/', '\\'])
            .any(|c| c == ".." || c.contains('\0'))
        {
            return Ok(app_error("Path traversal detected"));
        }
        return match blob(
            &ctx,
            &keys::analysis_file(id, &filepath),
            "application/octet-stream",
            &filepath,
        )
        .await?
        {
            Some(mut r) => {
                // A stream, not an attachment (StreamingHttpResponse without a name).
                r.headers_mut()
                    .remove(axum::http::header::CONTENT_DISPOSITION);
                Ok(r)
            }
            None => Ok(app_error("file does not exist")),
        };
    }
    Ok(app_error(format!(
        "Requests exception: no guest agent on machine {}",
        guest.map(|g| g.name).unwrap_or_default()
    )))
}
