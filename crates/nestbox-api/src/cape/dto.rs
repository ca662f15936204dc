//! CAPE's `to_dict()` shapes (spec cape.md §6.2): tasks, samples, guests, machines.
//! Datetimes are `"YYYY-MM-DD HH:MM:SS"` (UTC, naive), `null` when unset.

use nestbox_types::{Guest, Machine, Sample, Task, Timestamp};
use serde_json::{Map, Value, json};

/// `YYYY-MM-DD HH:MM:SS`.
pub fn date(ts: Timestamp) -> String {
    chrono::DateTime::from_timestamp_micros(ts.0)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn opt_date(ts: Option<Timestamp>) -> Value {
    ts.map_or(Value::Null, |t| Value::String(date(t)))
}

/// `Sample.to_dict()` (the same record the report's `info.parent_sample` holds).
pub fn sample(s: &Sample) -> Value {
    nestbox_core::pipeline::sample_record(s)
}

/// CAPE guest statuses: ours (`init|starting|running|stopping|stopped|failed`) mapped onto
/// `starting|running|complete|failed`.
pub fn guest(g: &Guest) -> Value {
    let status = match g.status.as_str() {
        "init" | "starting" => "starting",
        "running" | "stopping" => "running",
        "stopped" => "complete",
        other => other,
    };
    json!({
        "id": g.id,
        "status": status,
        "name": g.name,
        "label": g.label,
        "platform": "linux",
        "manager": g.manager,
        "started_on": date(g.started_on),
        "shutdown_on": opt_date(g.shutdown_on),
        "task_id": g.task_id.0,
    })
}

/// `Task.to_dict()` plus `guest`, `errors`, `sample` (what view/list/search add).
/// `user_id` is CAPE's (0 = anonymous). Columns nestbox does not track (per-phase
/// timings, counters) are `null`/0 as a fresh CAPE row has them.
pub fn task(t: &Task, user_id: i64) -> Map<String, Value> {
    let s = &t.spec;
    let mut tags = s.tags.clone();
    tags.sort();
    let tlp = s.options.get("tlp").map(str::to_owned);
    let v = json!({
        "id": t.id.0,
        "target": s.target,
        "category": s.category.as_str(),
        "cape": Value::Null,
        "timeout": s.timeout,
        "priority": s.priority,
        "custom": s.custom,
        "machine": s.machine,
        "package": s.package,
        "route": s.route,
        "tags_tasks": Value::Null,
        "options": s.options.emit(),
        "platform": s.platform,
        "memory": s.memory,
        "enforce_timeout": s.enforce_timeout,
        "clock": date(t.clock),
        "added_on": date(t.added_on),
        "started_on": opt_date(t.started_on),
        "completed_on": opt_date(t.completed_on),
        "status": t.status.as_str(),
        "dropped_files": Value::Null,
        "running_processes": Value::Null,
        "api_calls": Value::Null,
        "domains": Value::Null,
        "signatures_total": Value::Null,
        "signatures_alert": Value::Null,
        "files_written": Value::Null,
        "registry_keys_modified": Value::Null,
        "crash_issues": Value::Null,
        "anti_issues": Value::Null,
        "analysis_started_on": opt_date(t.started_on),
        "analysis_finished_on": opt_date(t.completed_on),
        "processing_started_on": Value::Null,
        "processing_finished_on": Value::Null,
        "signatures_started_on": Value::Null,
        "signatures_finished_on": Value::Null,
        "reporting_started_on": Value::Null,
        "reporting_finished_on": Value::Null,
        "timedout": false,
        "sample_id": s.sample_id,
        "machine_id": Value::Null,
        "tlp": tlp,
        "user_id": user_id,
        "tags": tags,
        "guest": t.guest.as_ref().map_or_else(|| json!({}), guest),
        "errors": t.errors,
        "sample": t.sample.as_ref().map_or_else(|| json!({}), sample),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `Machine.to_dict()`.
pub fn machine(m: &Machine) -> Value {
    let s = &m.spec;
    json!({
        "id": m.id,
        "name": s.name,
        "label": s.label,
        "arch": s.arch,
        "ip": s.ip,
        "platform": s.platform,
        "interface": s.interface,
        "snapshot": s.snapshot,
        "locked": m.locked,
        "locked_changed_on": opt_date(m.locked_changed_on),
        "status": m.status,
        "status_changed_on": opt_date(m.status_changed_on),
        "resultserver_ip": s.resultserver_ip,
        "resultserver_port": s.resultserver_port,
        "reserved": false,
        "tags": s.tags,
    })
}
