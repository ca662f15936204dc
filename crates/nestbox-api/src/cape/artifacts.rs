//! Artifact downloads, samples, machines and host status (spec cape.md §5.4–§5.5).
//! Everything is read from the task's analysis folder (`analyses/<id>/…`, Cuckoo/CAPE's
//! layout) and the stored canonical report; `lite` and `iocs` are pure functions of it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use nestbox_core::keys;
use nestbox_types::{TaskId, TaskStatus};
use serde_json::{Map, Value, json};

use super::tasks::{attachment, report_value, validate_task};
use super::{CapeError, Ctx, app_error, dto, ok, task_id};
use crate::ApiContext;
use crate::common::status;
use crate::common::zipout::{self, ZipEntry, ZipSource};

type Result<T, E = CapeError> = std::result::Result<T, E>;

/// Validates a task for an artifact endpoint (reported, following `Recovery_<N>`, TLP
/// red refused): the id to read from, or the envelope error to answer.
pub(super) async fn reported(ctx: &ApiContext, id: TaskId) -> Result<Result<TaskId, Response>> {
    match validate_task(ctx, id, TaskStatus::Reported).await? {
        Err(msg) => Ok(Err(app_error(msg))),
        Ok(t) => {
            if t.spec
                .options
                .get("tlp")
                .is_some_and(|v| v.eq_ignore_ascii_case("red"))
            {
                return Ok(Err(app_error("Task has a TLP of RED")));
            }
            Ok(Ok(t.id))
        }
    }
}

/// Early return of the envelope error from [`reported`].
macro_rules! reported {
    ($ctx:expr, $id:expr) => {
        match reported($ctx, $id).await? {
            Ok(id) => id,
            Err(resp) => return Ok(resp),
        }
    };
}

/// A stored blob streamed as an attachment, or `None` if absent.
pub(super) async fn blob(
    ctx: &ApiContext,
    key: &str,
    ctype: &'static str,
    filename: &str,
) -> Result<Option<Response>> {
    let Some(reader) = ctx.core.blobs.open(key).await? else {
        return Ok(None);
    };
    let mut r = Response::new(Body::from_stream(reader.stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, reader.size.into());
    Ok(Some(attachment(r, filename)))
}

/// Bytes as an attachment.
fn bytes_attachment(data: Vec<u8>, ctype: &'static str, filename: &str) -> Response {
    attachment(
        ([(header::CONTENT_TYPE, ctype)], data).into_response(),
        filename,
    )
}

/// Blobs under an analysis sub-folder: `(path relative to the analysis folder, key)`.
pub(super) async fn folder(
    ctx: &ApiContext,
    id: TaskId,
    sub: &str,
) -> Result<Vec<(String, String)>> {
    let base = keys::analysis(id);
    let prefix = format!("{base}{sub}");
    Ok(ctx
        .core
        .blobs
        .list(&prefix)
        .await?
        .into_iter()
        .map(|key| (key[base.len()..].to_owned(), key))
        .collect())
}

/// Blob entries of a folder listing.
pub(super) fn blob_entries(files: Vec<(String, String)>) -> Vec<ZipEntry> {
    files
        .into_iter()
        .map(|(name, key)| (name, ZipSource::Blob(key)))
        .collect()
}

/// A streamed zip attachment (see [`zipout`]).
pub(super) fn zip_response(
    ctx: &ApiContext,
    entries: Vec<ZipEntry>,
    password: Option<String>,
    filename: &str,
) -> Response {
    let body = zipout::stream(ctx.core.blobs.clone(), entries, password);
    attachment(
        ([(header::CONTENT_TYPE, "application/zip")], body).into_response(),
        filename,
    )
}

// ---------------------------------------------------------------------------------------
// Reports.

/// `GET tasks/get/report/<id>/`.
pub async fn report0(ctx: Ctx, Path(id): Path<String>) -> Result<Response> {
    report(ctx, id, "json".into(), None).await
}

/// `GET tasks/get/report/<id>/<fmt>/`.
pub async fn report1(ctx: Ctx, Path((id, fmt)): Path<(String, String)>) -> Result<Response> {
    report(ctx, id, fmt, None).await
}

/// `GET tasks/get/report/<id>/<fmt>/<zip>/`.
pub async fn report2(
    ctx: Ctx,
    Path((id, fmt, z)): Path<(String, String, String)>,
) -> Result<Response> {
    report(ctx, id, fmt, Some(z)).await
}

/// CAPE's `lite.json` (its `litereport` module's default keys), derived from the report.
pub fn lite(report: &Value) -> Value {
    const KEYS: [&str; 11] = [
        "CAPE",
        "procdump",
        "info",
        "signatures",
        "dropped",
        "static",
        "target",
        "network",
        "shot",
        "malscore",
        "ttps",
    ];
    let mut out = Map::new();
    for k in KEYS {
        if let Some(v) = report.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

async fn report(
    State(ctx): Ctx,
    id: String,
    fmt: String,
    zip3: Option<String>,
) -> Result<Response> {
    let id = task_id(&id)?;
    if !fmt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || zip3
            .as_deref()
            .is_some_and(|z| !z.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    if !ctx.cape.endpoints.taskreport {
        return Ok(app_error("Task Report API is Disabled"));
    }
    let id = reported!(&ctx, id);
    let fmt = fmt.to_ascii_lowercase();
    let file = match fmt.as_str() {
        "protobuf" => Some("report.protobuf"),
        "json" => Some("report.json"),
        "html" => Some("report.html"),
        "htmlsummary" => Some("summary-report.html"),
        "pdf" => Some("report.pdf"),
        "maec" => Some("report.maec-4.1.xml"),
        "maec5" => Some("report.maec-5.0.json"),
        "metadata" => Some("report.metadata.xml"),
        "litereport" => Some("lite.json"),
        "parti" => Some("report.parti"),
        "all" | "dropped" | "dist" | "lite" => None,
        other => {
            return Err(CapeError::Status(
                StatusCode::BAD_REQUEST,
                format!("Report format not found: {other}"),
            ));
        }
    };
    if fmt == "all" && !ctx.cape.endpoints.taskreport_all {
        return Ok(app_error("Downloading all reports in one call is disabled"));
    }
    let reports = ctx
        .core
        .blobs
        .list(&keys::analysis_file(id, "reports/"))
        .await?;
    if reports.is_empty() {
        return Ok(app_error(format!("No reports created for task {id}")));
    }
    if let Some(file) = file {
        // lite.json is not stored twice: it is derived from report.json.
        let data = if fmt == "litereport" {
            match report_value(&ctx, id).await {
                Some(r) => serde_json::to_vec(&lite(&r)).unwrap_or_default(),
                None => return Ok(app_error("Reports directory does not exist")),
            }
        } else {
            match ctx
                .core
                .blobs
                .get(&keys::analysis_file(id, &format!("reports/{file}")))
                .await?
            {
                Some(d) => d,
                None => return Ok(app_error("Reports directory does not exist")),
            }
        };
        let ext = file.rsplit('.').next().unwrap_or("json");
        if zip3.as_deref().is_some_and(|z| z.len() == 3) {
            return Ok(zip_response(
                &ctx,
                vec![(file.to_owned(), ZipSource::Bytes(data))],
                None,
                &format!("{id}_report.{ext}.zip"),
            ));
        }
        let ctype = match ext {
            "json" => "application/json; charset=UTF-8",
            "html" => "text/html",
            "xml" => "text/xml",
            "pdf" => "application/pdf",
            _ => "application/octet-stream",
        };
        return Ok(bytes_attachment(data, ctype, &format!("{id}_report.{ext}")));
    }
    // Bundles.
    let all = folder(&ctx, id, "").await?;
    let top = |p: &str| p.split('/').next().unwrap_or("").to_owned();
    let entries: Vec<(String, String)> = match fmt.as_str() {
        "all" => {
            const OUT: [&str; 6] = [
                "memory.dmp",
                "dump.pcapng",
                "dump_decrypted.pcap",
                "dump_mixed.pcap",
                "dump_mixed_sorted.pcap",
                "dump_sorted.pcap",
            ];
            all.into_iter()
                .filter(|(p, _)| !OUT.contains(&p.as_str()))
                .collect()
        }
        "dropped" => all.into_iter().filter(|(p, _)| top(p) == "files").collect(),
        "dist" => {
            const OUT: [&str; 4] = ["binary", "dump_sorted.pcap", "memory.dmp", "logs"];
            all.into_iter()
                .filter(|(p, _)| !OUT.contains(&top(p).as_str()))
                .collect()
        }
        _ => {
            const IN: [&str; 10] = [
                "files.json",
                "CAPE",
                "files",
                "procdump",
                "macros",
                "shots",
                "dump.pcap",
                "selfextracted",
                "evtx",
                "tlsdump",
            ];
            let mut v = blob_entries(
                all.into_iter()
                    .filter(|(p, _)| IN.contains(&top(p).as_str()))
                    .collect(),
            );
            if let Some(r) = report_value(&ctx, id).await {
                v.push((
                    "reports/lite.json".into(),
                    ZipSource::Bytes(serde_json::to_vec(&lite(&r)).unwrap_or_default()),
                ));
            }
            return Ok(zip_response(&ctx, v, None, &format!("{fmt}.zip")));
        }
    };
    Ok(zip_response(
        &ctx,
        blob_entries(entries),
        None,
        &format!("{fmt}.zip"),
    ))
}

// ---------------------------------------------------------------------------------------
// IOCs (a projection of the report, as CAPE builds it from its Mongo document).

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).unwrap_or(&Value::Null);
    }
    cur
}

fn or<'a>(v: &'a Value, d: &'a Value) -> &'a Value {
    if v.is_null() { d } else { v }
}

/// `tasks/get/iocs` data from a report.
pub fn iocs(report: &Value, detailed: bool) -> Value {
    let empty_list = json!([]);
    let mut info = get(report, &["info"]).clone();
    if let Some(o) = info.as_object_mut() {
        o.remove("custom");
        if let Some(m) = o.get_mut("machine").and_then(Value::as_object_mut) {
            for k in ["manager", "label", "id"] {
                m.remove(k);
            }
        }
    }
    let mut target = get(report, &["target"]).clone();
    if let Some(f) = target.get_mut("file").and_then(Value::as_object_mut) {
        f.remove("path");
        f.remove("guest_paths");
    }
    let net = get(report, &["network"]);
    let count = |k: &str| get(net, &[k]).as_array().map_or(0, Vec::len);
    let summary = get(report, &["behavior", "summary"]);
    let list = |k: &str| or(get(summary, &[k]), &empty_list).clone();
    let pe = get(report, &["target", "file", "pe"]);
    let tree: Vec<Value> = get(report, &["behavior", "processtree"])
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    json!({
                        "pid": get(p, &["pid"]),
                        "name": get(p, &["name"]),
                        "spawned_processes": get(p, &["children"]).as_array().map_or(0, Vec::len),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let dropped: Vec<Value> = get(report, &["dropped"])
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    json!({
                        "clamav": get(d, &["clamav"]), "sha256": get(d, &["sha256"]),
                        "md5": get(d, &["md5"]), "yara": get(d, &["yara"]),
                        "trid": get(d, &["trid"]), "type": get(d, &["type"]),
                        "guest_paths": get(d, &["guest_paths"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let suri = get(report, &["suricata"]);
    let mut data = json!({
        "detections": or(get(report, &["detections"]), &empty_list),
        "malscore": or(get(report, &["malscore"]), &json!(0.0)),
        "info": info,
        "signatures": [],
        "target": target,
        "network": {
            "traffic": {
                "tcp_count": count("tcp"), "udp_count": count("udp"), "irc_count": count("irc"),
                "http_count": count("http"), "dns_count": count("dns"), "smtp_count": count("smtp"),
                "hosts_count": count("hosts"), "domains_count": count("domains"),
                "http": or(get(net, &["http"]), &empty_list),
            },
            "hosts": or(get(net, &["hosts"]), &empty_list),
            "domains": or(get(net, &["domains"]), &empty_list),
            "ids": {
                "totalalerts": get(suri, &["alerts"]).as_array().map_or(0, Vec::len),
                "alerts": or(get(suri, &["alerts"]), &empty_list),
                "http": or(get(suri, &["http"]), &empty_list),
                "totalfiles": get(suri, &["files"]).as_array().map_or(0, Vec::len),
                "files": or(get(suri, &["files"]), &empty_list),
            },
        },
        "static": {
            "pe": {
                "peid_signatures": get(pe, &["peid_signatures"]),
                "pe_timestamp": get(pe, &["timestamp"]),
                "pe_imphash": get(pe, &["imphash"]),
                "pe_icon_hash": get(pe, &["icon_hash"]),
                "pe_icon_fuzzy": get(pe, &["icon_fuzzy"]),
            },
            "pdf": pdf_iocs(get(report, &["static", "pdf"])),
            "office": office_iocs(get(report, &["static", "office"])),
        },
        // nestbox's static indicators (strings, macros, PDF JavaScript, links), an
        // addition to CAPE's keys.
        "iocs": or(get(report, &["iocs"]), &json!({})),
        "files": { "modified": list("write_files"), "deleted": list("delete_files") },
        "registry": { "modified": list("write_keys"), "deleted": list("delete_keys") },
        "mutexes": list("mutexes"),
        "executed_commands": list("executed_commands"),
        "process_tree": tree,
        "dropped": dropped,
    });
    if detailed {
        data["files"]["read"] = list("read_files");
        data["registry"]["read"] = list("read_keys");
        data["resolved_apis"] = list("resolved_apis");
        data["strings"] = or(get(report, &["strings"]), &empty_list).clone();
        data["trid"] = or(get(report, &["trid"]), &empty_list).clone();
        data["static"]["pe"]["pe_versioninfo"] = get(pe, &["versioninfo"]).clone();
    }
    data
}

/// CAPE's `static.pdf` digest: object count, header, pages (`/Page` keyword count).
fn pdf_iocs(pdf: &Value) -> Value {
    if pdf.is_null() {
        return json!({ "objects": 0, "header": Value::Null, "pages": 0 });
    }
    json!({
        "objects": or(get(pdf, &["Objects"]), &json!(0)),
        "header": get(pdf, &["Info", "PDF Header"]),
        "pages": or(get(pdf, &["Keywords", "/Page"]), &json!(0)),
    })
}

/// CAPE's `static.office` digest: the macro analysis by category and the macro count.
fn office_iocs(office: &Value) -> Value {
    let analysis = get(office, &["Macro", "Analysis"]);
    let macros = get(office, &["Macro", "Code"])
        .as_object()
        .map_or(0, serde_json::Map::len);
    json!({
        "signatures": or(analysis, &json!({})),
        "macros": macros,
    })
}

async fn iocs_of(ctx: &ApiContext, id: &str, detailed: bool) -> Result<Response> {
    let id = task_id(id)?;
    if !ctx.cape.endpoints.taskiocs {
        return Ok(app_error("IOC download API is disabled"));
    }
    let id = reported!(ctx, id);
    match report_value(ctx, id).await {
        Some(r) => Ok(ok(json!({ "error": false, "data": iocs(&r, detailed) }))),
        None => Ok(app_error("Unable to retrieve report to parse for IOCs")),
    }
}

/// `GET tasks/get/iocs/<id>/`.
pub async fn iocs_plain(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    iocs_of(&ctx, &id, false).await
}

/// `GET tasks/get/iocs/<id>/detailed/`.
pub async fn iocs_detailed(
    State(ctx): Ctx,
    Path((id, detail)): Path<(String, String)>,
) -> Result<Response> {
    if detail != "detailed" {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    iocs_of(&ctx, &id, true).await
}

// ---------------------------------------------------------------------------------------
// Config, screenshots, pcaps, dropped files, memory.

async fn config_of(ctx: &ApiContext, id: &str, name: Option<&str>) -> Result<Response> {
    let id = task_id(id)?;
    if !ctx.cape.endpoints.capeconfig {
        return Ok(app_error("Config download API is disabled"));
    }
    let id = reported!(ctx, id);
    let Some(r) = report_value(ctx, id).await else {
        return Ok(app_error(format!(
            "Unable to retrieve results for task {id}."
        )));
    };
    let mut configs: Vec<Value> = get(&r, &["CAPE", "configs"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(name) = name {
        configs.retain(|c| c.get(name).is_some());
    }
    if configs.is_empty() {
        return Ok(app_error(format!(
            "CAPE config for task {id} does not exist."
        )));
    }
    Ok(ok(json!({ "error": false, "configs": configs })))
}

/// `GET tasks/get/config/<id>/`.
pub async fn config(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    config_of(&ctx, &id, None).await
}

/// `GET tasks/get/config/<id>/<family>/` (a filter by family; broken upstream).
pub async fn config_named(
    State(ctx): Ctx,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response> {
    config_of(&ctx, &id, Some(&name)).await
}

/// `GET tasks/get/screenshot/<id>/`.
pub async fn screenshots(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskscreenshot {
        return Ok(app_error("Screenshot download API is disabled"));
    }
    let id = reported!(&ctx, id);
    let shots = folder(&ctx, id, "shots/").await?;
    if shots.is_empty() {
        return Ok(app_error(format!("No screenshots created for task {id}")));
    }
    let entries = shots
        .into_iter()
        .map(|(p, key)| {
            (
                p.trim_start_matches("shots/").to_owned(),
                ZipSource::Blob(key),
            )
        })
        .collect();
    Ok(zip_response(
        &ctx,
        entries,
        None,
        &format!("{id}_screenshots.zip"),
    ))
}

/// `GET tasks/get/screenshot/<id>/<n>/` (n: 1–4 digits).
pub async fn screenshot(
    State(ctx): Ctx,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response> {
    let id = task_id(&id)?;
    if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    if !ctx.cape.endpoints.taskscreenshot {
        return Ok(app_error("Screenshot download API is disabled"));
    }
    let id = reported!(&ctx, id);
    let name = format!("{:0>4}", n);
    for (ext, ctype) in [("jpg", "image/jpeg"), ("png", "image/png")] {
        let file = format!("{name}.{ext}");
        if let Some(r) = blob(
            &ctx,
            &keys::analysis_file(id, &format!("shots/{file}")),
            ctype,
            &format!("{id}_{file}"),
        )
        .await?
        {
            return Ok(r);
        }
    }
    Ok(app_error("Screenshot does not exist"))
}

/// `GET tasks/get/pcap/<id>/`.
pub async fn pcap(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let id = task_id(&id)?;
    if !ctx.cape.endpoints.taskpcap {
        return Ok(app_error("PCAP download API is disabled"));
    }
    let id = reported!(&ctx, id);
    match blob(
        &ctx,
        &keys::analysis_file(id, "dump.pcap"),
        "application/vnd.tcpdump.pcap",
        &format!("{id}_dump.pcap"),
    )
    .await?
    {
        Some(r) => Ok(r),
        None => Ok(app_error("PCAP does not exist")),
    }
}

/// `GET tasks/get/pcap/<id>/<variant>/`.
pub async fn pcap_variant(
    State(ctx): Ctx,
    Path((id, variant)): Path<(String, String)>,
) -> Result<Response> {
    let id = task_id(&id)?;
    let file = match variant.as_str() {
        "decrypted" => "dump_decrypted.pcap",
        "mixed" => "dump_mixed.pcap",
        "sslproxy" => "sslproxy.pcap",
        "zip" | "pcapng" => "",
        other => {
            return Err(CapeError::Status(
                StatusCode::BAD_REQUEST,
                format!("Unknown pcap variant: {other}"),
            ));
        }
    };
    if !ctx.cape.endpoints.taskpcap {
        return Ok(app_error("PCAP download API is disabled"));
    }
    let id = reported!(&ctx, id);
    if variant == "zip" {
        let mut entries = Vec::new();
        for f in [
            "dump.pcap",
            "dump_decrypted.pcap",
            "dump_mixed.pcap",
            "sslproxy.pcap",
        ] {
            let key = keys::analysis_file(id, f);
            if ctx.core.blobs.exists(&key).await? {
                entries.push((f.to_owned(), ZipSource::Blob(key)));
            }
        }
        if entries.is_empty() {
            return Ok(app_error("PCAP does not exist"));
        }
        return Ok(zip_response(
            &ctx,
            entries,
            None,
            &format!("{id}_pcaps.zip"),
        ));
    }
    let (file, ctype) = if variant == "pcapng" {
        ("dump.pcapng", "application/x-pcapng")
    } else {
        (file, "application/vnd.tcpdump.pcap")
    };
    match blob(
        &ctx,
        &keys::analysis_file(id, file),
        ctype,
        &format!("{id}_{file}"),
    )
    .await?
    {
        Some(r) => Ok(r),
        None => Ok(app_error("PCAP does not exist")),
    }
}

/// One-file artifact endpoints that share a shape.
#[allow(clippy::too_many_arguments)]
async fn single(
    ctx: &ApiContext,
    id: &str,
    enabled: bool,
    disabled_msg: &str,
    files: &[&str],
    ctype: &'static str,
    filename: impl Fn(TaskId) -> String,
    missing: impl Fn(TaskId) -> String,
    tlp_check: bool,
) -> Result<Response> {
    let id = task_id(id)?;
    if !enabled {
        return Ok(app_error(disabled_msg));
    }
    let id = if tlp_check {
        reported!(ctx, id)
    } else {
        match validate_task(ctx, id, TaskStatus::Reported).await? {
            Ok(t) => t.id,
            Err(m) => return Ok(app_error(m)),
        }
    };
    for f in files {
        if let Some(r) = blob(ctx, &keys::analysis_file(id, f), ctype, &filename(id)).await? {
            return Ok(r);
        }
    }
    Ok(app_error(missing(id)))
}

/// `GET tasks/get/tlspcap/<id>/` (no TLP check upstream).
pub async fn tlspcap(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    single(
        &ctx,
        &id,
        ctx.cape.endpoints.tasktlspcap,
        "TLS PCAP download API is disabled",
        &["dump_decrypted.pcap", "polarproxy/tls.pcap"],
        "application/vnd.tcpdump.pcap",
        |id| format!("{id}_tls.pcap"),
        |_| "TLS PCAP does not exist".into(),
        false,
    )
    .await
}

/// `GET tasks/get/evtx/<id>/`.
pub async fn evtx(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    single(
        &ctx,
        &id,
        ctx.cape.endpoints.taskevtx,
        "EVTX download API is disabled",
        &["evtx/evtx.zip"],
        "application/zip",
        |id| format!("{id}_evtx.zip"),
        |_| "EVTX does not exist".into(),
        true,
    )
    .await
}

/// `GET tasks/get/surifile/<id>/` (the `taskdropped` switch, as upstream).
pub async fn surifile(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    single(
        &ctx,
        &id,
        ctx.cape.endpoints.taskdropped,
        "Suricata File download API is disabled",
        &["logs/files.zip"],
        "application/zip",
        |id| format!("{id}_surifiles.zip"),
        |id| format!("No suricata files captured for task {id}"),
        true,
    )
    .await
}

/// `GET tasks/get/mitmdump/<id>/`.
pub async fn mitmdump(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    single(
        &ctx,
        &id,
        ctx.cape.endpoints.mitmdump,
        "Mitmdump HAR download API is disabled",
        &["mitmdump/dump.har"],
        "text/plain",
        |id| format!("{id}_dump.har"),
        |_| "HAR file does not exist".into(),
        true,
    )
    .await
}

/// `GET tasks/get/fullmemory/<id>/`.
pub async fn fullmemory(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    single(
        &ctx,
        &id,
        ctx.cape.endpoints.taskfullmemory,
        "Full memory download API is disabled",
        &["memory.dmp", "memory.dmp.zip"],
        "application/octet-stream",
        |id| format!("{id}_memory.dmp"),
        |id| format!("Memory dump not found for task {id}"),
        true,
    )
    .await
}

/// Query of `tasks/get/dropped`.
#[derive(serde::Deserialize, Default)]
pub struct DroppedQuery {
    max_size: Option<String>,
}

/// An AES zip of an analysis sub-folder (`dropped`, `payloadfiles`, `procdumpfiles`,
/// `selfextracted`, `procmemory`).
#[allow(clippy::too_many_arguments)]
async fn folder_zip(
    ctx: &ApiContext,
    id: &str,
    enabled: bool,
    disabled_msg: &str,
    sub: &str,
    encrypt: bool,
    filename: impl Fn(TaskId) -> String,
    missing: impl Fn(TaskId) -> String,
    max_size: Option<u64>,
) -> Result<Response> {
    let id = task_id(id)?;
    if !enabled {
        return Ok(app_error(disabled_msg));
    }
    let id = reported!(ctx, id);
    let files = folder(ctx, id, sub).await?;
    if files.is_empty() {
        return Ok(app_error(missing(id)));
    }
    if let Some(max) = max_size {
        // Sizes come from opening each blob (no content is read).
        let mut size = 0u64;
        for (_, key) in &files {
            if let Some(r) = ctx.core.blobs.open(key).await? {
                size += r.size;
            }
        }
        if size > max {
            return Ok(app_error(format!(
                "Archive is bigger than max size. Current size is {size}"
            )));
        }
    }
    let pw = encrypt.then(|| ctx.cape.zip_pwd.clone());
    Ok(zip_response(ctx, blob_entries(files), pw, &filename(id)))
}

/// `GET tasks/get/dropped/<id>/[?max_size=<MB>]`.
pub async fn dropped(
    State(ctx): Ctx,
    Path(id): Path<String>,
    Query(q): Query<DroppedQuery>,
) -> Result<Response> {
    let max = match q.max_size.as_deref() {
        None | Some("") => None,
        Some(s) => match s.trim().parse::<u64>() {
            Ok(mb) => Some(mb.saturating_mul(1 << 20)),
            Err(_) => return Ok(app_error("max_size must be a number of megabytes")),
        },
    };
    folder_zip(
        &ctx,
        &id,
        ctx.cape.endpoints.taskdropped,
        "Dropped File download API is disabled",
        "files/",
        true,
        |id| format!("{id}_dropped.zip"),
        |id| format!("No files dropped for task {id}"),
        max,
    )
    .await
}

/// `GET tasks/get/payloadfiles/<id>/`.
pub async fn payloadfiles(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    folder_zip(
        &ctx,
        &id,
        ctx.cape.endpoints.payloadfiles,
        "CAPE payload file download API is disabled",
        "CAPE/",
        true,
        |id| format!("cape_payloads_{id}.zip"),
        |id| format!("No CAPE file(s) for task {id}."),
        None,
    )
    .await
}

/// `GET tasks/get/procdumpfiles/<id>/`.
pub async fn procdumpfiles(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    folder_zip(
        &ctx,
        &id,
        ctx.cape.endpoints.procdumpfiles,
        "Procdump file download API is disabled",
        "procdump/",
        true,
        |id| format!("cape_payloads_{id}.zip"),
        |id| format!("No procdump file(s) for task {id}."),
        None,
    )
    .await
}

/// `GET tasks/get/selfextracted/<id>/`.
pub async fn selfextracted(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    folder_zip(
        &ctx,
        &id,
        ctx.cape.endpoints.taskselfextracted,
        "Self Extracted File download API is disabled",
        "selfextracted/",
        false,
        |id| format!("{id}_selfextracted.zip"),
        |id| format!("No self extracted files for task {id}"),
        None,
    )
    .await
}

/// `GET tasks/get/procmemory/<id>/`: every dump, needs `[taskprocmemory] all`.
pub async fn procmemory_all(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    task_id(&id)?;
    if !ctx.cape.endpoints.taskprocmemory {
        return Ok(app_error("Process memory download API is disabled"));
    }
    if !ctx.cape.endpoints.taskprocmemory_all {
        return Ok(app_error(
            "Downloading of all process memory dumps is disabled",
        ));
    }
    folder_zip(
        &ctx,
        &id,
        true,
        "",
        "memory/",
        true,
        |id| format!("{id}_procdumps.zip"),
        |_| "No memory dumps saved".into(),
        None,
    )
    .await
}

/// `GET tasks/get/procmemory/<id>/<pid>/`.
pub async fn procmemory_pid(
    State(ctx): Ctx,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response> {
    let id = task_id(&id)?;
    let pid = task_id(&pid)?;
    if !ctx.cape.endpoints.taskprocmemory {
        return Ok(app_error("Process memory download API is disabled"));
    }
    let id = reported!(&ctx, id);
    let file = format!("memory/{pid}.dmp");
    let key = keys::analysis_file(id, &file);
    if !ctx.core.blobs.exists(&key).await? {
        return Ok(app_error(format!(
            "Process memory dump does not exist for pid {pid}"
        )));
    }
    Ok(zip_response(
        &ctx,
        vec![(file, ZipSource::Blob(key))],
        Some(ctx.cape.zip_pwd.clone()),
        &format!("{id}-{pid}_dmp.zip"),
    ))
}

// ---------------------------------------------------------------------------------------
// Samples.

fn hash_kind(kind: &str, value: &str) -> Result<()> {
    let len = match kind {
        "md5" => 32,
        "sha1" => 40,
        "sha256" => 64,
        _ => return Err(CapeError::Page(StatusCode::NOT_FOUND)),
    };
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CapeError::Page(StatusCode::NOT_FOUND));
    }
    Ok(())
}

/// `GET files/view/<md5|sha1|sha256|id>/<value>/`.
pub async fn files_view(
    State(ctx): Ctx,
    Path((kind, value)): Path<(String, String)>,
) -> Result<Response> {
    let sample = if kind == "id" {
        let n = task_id(&value)?.0;
        if !ctx.cape.endpoints.fileview {
            return Ok(app_error("File View API is Disabled"));
        }
        ctx.core.repo.sample(n).await?
    } else {
        hash_kind(&kind, &value)?;
        if !ctx.cape.endpoints.fileview {
            return Ok(app_error("File View API is Disabled"));
        }
        ctx.core
            .repo
            .sample_by_hash(&value.to_ascii_lowercase())
            .await?
    };
    match sample {
        Some(s) => Ok(ok(json!({ "error": false, "data": dto::sample(&s) }))),
        None => Ok(app_error("Sample not found in database")),
    }
}

/// Query of `files/get`.
#[derive(serde::Deserialize, Default)]
pub struct FilesGetQuery {
    encrypted: Option<String>,
}

/// `GET files/get/<md5|sha1|sha256|task>/<value>/[?encrypted=1]`.
pub async fn files_get(
    State(ctx): Ctx,
    Path((kind, value)): Path<(String, String)>,
    Query(q): Query<FilesGetQuery>,
) -> Result<Response> {
    let sample = if kind == "task" {
        let Ok(id) = value.parse::<i64>() else {
            return Err(CapeError::Status(
                StatusCode::BAD_REQUEST,
                format!("Invalid task id: {value}"),
            ));
        };
        if !ctx.cape.endpoints.sampledl {
            return Ok(app_error("Sample download API is disabled"));
        }
        let t = match validate_task(&ctx, TaskId(id), TaskStatus::Reported).await? {
            Ok(t) => t,
            Err(m) => return Ok(app_error(m)),
        };
        t.sample
    } else {
        hash_kind(&kind, &value)?;
        if !ctx.cape.endpoints.sampledl {
            return Ok(app_error("Sample download API is disabled"));
        }
        ctx.core
            .repo
            .sample_by_hash(&value.to_ascii_lowercase())
            .await?
    };
    let missing = || app_error(format!("Sample {value} was not found"));
    let Some(sample) = sample else {
        return Ok(missing());
    };
    let key = keys::sample(&sample.sha256);
    if q.encrypted.as_deref().is_some_and(|e| !e.is_empty()) {
        if !ctx.core.blobs.exists(&key).await? {
            return Ok(missing());
        }
        return Ok(zip_response(
            &ctx,
            vec![(sample.sha256.clone(), ZipSource::Blob(key))],
            Some(ctx.cape.zip_pwd.clone()),
            &format!("{}.zip", sample.sha256),
        ));
    }
    match blob(
        &ctx,
        &key,
        "application/octet-stream",
        &format!("{}.bin", sample.sha256),
    )
    .await?
    {
        Some(r) => Ok(r),
        None => Ok(missing()),
    }
}

// ---------------------------------------------------------------------------------------
// Machines, host.

/// `GET machines/list/`.
pub async fn machines_list(State(ctx): Ctx) -> Result<Response> {
    if !ctx.cape.endpoints.machinelist {
        return Ok(app_error("Machine list API is disabled"));
    }
    let ms: Vec<Value> = ctx
        .core
        .repo
        .machines()
        .await?
        .iter()
        .map(dto::machine)
        .collect();
    Ok(ok(json!({ "error": false, "data": ms })))
}

/// `GET machines/view/<name>/`.
pub async fn machines_view(State(ctx): Ctx, Path(name): Path<String>) -> Result<Response> {
    if !ctx.cape.endpoints.machineview {
        return Ok(app_error("Machine view API is disabled"));
    }
    match ctx.core.repo.machine(&name).await? {
        Some(m) => Ok(ok(json!({ "error": false, "data": dto::machine(&m) }))),
        None => Ok(app_error("Machine not found")),
    }
}

/// `GET cuckoo/status/`.
pub async fn cuckoo_status(State(ctx): Ctx) -> Result<Response> {
    if !ctx.cape.endpoints.cuckoostatus {
        return Ok(app_error("Cuckoo Status API is disabled"));
    }
    let machines = ctx.core.repo.machines().await?;
    let available = machines.iter().filter(|m| !m.locked).count();
    let counts = ctx.core.repo.status_counts().await?;
    let gib = |b: u64| b >> 30;
    let d = ctx.core.blobs.disk_usage("analyses/").unwrap_or_default();
    let used_by = if d.total > 0 {
        format!("{:.1}%", 100.0 * d.used as f64 / d.total as f64)
    } else {
        "0.0%".into()
    };
    let (ram_free, ram_total) = status::meminfo().unwrap_or((0, 0));
    Ok(ok(json!({
        "error": false,
        "data": {
            "version": ctx.cape.version,
            "hostname": status::hostname(),
            "machines": { "total": machines.len(), "available": available },
            "tasks": {
                "total": counts.total,
                "pending": counts.get(TaskStatus::Pending),
                "running": counts.get(TaskStatus::Running),
                "completed": counts.get(TaskStatus::Completed),
                "reported": counts.get(TaskStatus::Reported),
            },
            "server": {
                "storage": {
                    "free": gib(d.free), "total": gib(d.total), "used": gib(d.used),
                    "used_by": used_by,
                },
                "ram": {
                    "free": ram_free >> 20, "total": ram_total >> 20,
                    "used": ram_total.saturating_sub(ram_free) >> 20,
                },
            },
        }
    })))
}

/// `GET exitnodes/`: nestbox has no VPN/SOCKS routing, so the built-in routes only.
pub async fn exitnodes(State(ctx): Ctx) -> Result<Response> {
    if !ctx.cape.endpoints.list_exitnodes {
        return Ok(app_error("Exit nodes list API is disabled"));
    }
    Ok(ok(json!({ "error": false, "data": ["tor", "inetsim"] })))
}

/// `POST yara_uploader/`: disabled by default; nestbox has no YARA rule store yet.
pub async fn yara_uploader(State(ctx): Ctx) -> Result<Response> {
    if !ctx.cape.endpoints.yara_uploader {
        return Ok(app_error("Yara Uploader API is Disabled"));
    }
    let mut r = ok(json!({
        "status": "error",
        "message": "This server has no YARA rule store",
    }));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    Ok(r)
}

/// `GET /apiv2/`: the switch overview page.
pub async fn index(State(ctx): Ctx) -> Response {
    let v = serde_json::to_value(&ctx.cape.endpoints).unwrap_or_default();
    let mut rows = String::new();
    if let Some(m) = v.as_object() {
        for (k, v) in m {
            rows.push_str(&format!("<tr><td>{k}</td><td>{v}</td></tr>\n"));
        }
    }
    Html(format!(
        "<!doctype html>\n<html><head><title>API</title></head><body>\n<h1>API</h1>\n<table>\n<tr><th>section</th><th>enabled</th></tr>\n{rows}</table>\n</body></html>\n"
    ))
    .into_response()
}
