//! The JSON shapes of Cuckoo 2.0.7's API objects (spec cuckoo.md §2), built from the
//! domain records. Upstream's datetime formats differ per endpoint, so the caller picks.

use nestbox_types::{Guest, Machine, Sample, Task, Timestamp};
use serde_json::{Map, Value, json};

/// How datetimes are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    /// `"YYYY-MM-DD HH:MM:SS"` (`tasks/list`, `tasks/sample`, guests, machines).
    Plain,
    /// RFC 1123, `"Mon, 19 Dec 2016 14:18:25 GMT"` (`tasks/view`, via Flask's encoder).
    Rfc1123,
}

fn naive(ts: Timestamp) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(ts.0)
        .unwrap_or_default()
        .naive_utc()
}

/// Renders a timestamp in the given style.
pub fn date(ts: Timestamp, style: Dates) -> String {
    let fmt = match style {
        Dates::Plain => "%Y-%m-%d %H:%M:%S",
        Dates::Rfc1123 => "%a, %d %b %Y %H:%M:%S GMT",
    };
    naive(ts).format(fmt).to_string()
}

fn opt_date(ts: Option<Timestamp>, style: Dates) -> Value {
    ts.map_or(Value::Null, |t| Value::String(date(t, style)))
}

/// `Sample.to_dict()`.
pub fn sample(s: &Sample) -> Map<String, Value> {
    let v = json!({
        "id": s.id,
        "file_size": s.file_size,
        "file_type": s.file_type,
        "md5": s.md5,
        "crc32": s.crc32,
        "sha1": s.sha1,
        "sha256": s.sha256,
        "sha512": s.sha512,
        "ssdeep": s.ssdeep,
    });
    into_map(v)
}

/// `Guest.to_dict()` (with `id` and `task_id`).
pub fn guest(g: &Guest) -> Value {
    json!({
        "id": g.id,
        "status": g.status,
        "name": g.name,
        "label": g.label,
        "manager": g.manager,
        "started_on": date(g.started_on, Dates::Plain),
        "shutdown_on": opt_date(g.shutdown_on, Dates::Plain),
        "task_id": g.task_id.0,
    })
}

/// `Task.to_dict()` plus what the API adds (`duration`, `guest`, `errors`, `sample`).
pub fn task(t: &Task, style: Dates) -> Value {
    let s = &t.spec;
    let mut tags = s.tags.clone();
    tags.sort();
    json!({
        "id": t.id.0,
        "target": s.target,
        "category": s.category.as_str(),
        "timeout": s.timeout,
        "priority": s.priority,
        "custom": s.custom,
        "owner": s.owner,
        "machine": s.machine,
        "package": s.package,
        "options": s.options.0,
        "platform": s.platform,
        "memory": s.memory,
        "enforce_timeout": s.enforce_timeout,
        "clock": date(t.clock, style),
        "added_on": date(t.added_on, style),
        "started_on": opt_date(t.started_on, style),
        "completed_on": opt_date(t.completed_on, style),
        "status": t.status.as_str(),
        "sample_id": s.sample_id,
        "submit_id": s.submit_id,
        "processing": t.processing,
        "route": s.route,
        "tags": tags,
        "duration": t.duration(),
        "guest": t.guest.as_ref().map_or_else(|| json!({}), guest),
        "errors": t.errors,
        "sample": t.sample.as_ref().map_or_else(|| json!({}), |x| Value::Object(sample(x))),
    })
}

/// `Machine.to_dict()`.
pub fn machine(m: &Machine) -> Value {
    let s = &m.spec;
    json!({
        "id": m.id,
        "name": s.name,
        "label": s.label,
        "ip": s.ip,
        "platform": s.platform,
        "options": s.options,
        "interface": s.interface,
        "snapshot": s.snapshot,
        "locked": m.locked,
        "locked_changed_on": opt_date(m.locked_changed_on, Dates::Plain),
        "status": m.status,
        "status_changed_on": opt_date(m.status_changed_on, Dates::Plain),
        "resultserver_ip": s.resultserver_ip,
        "resultserver_port": s.resultserver_port,
        "rcparams": {},
        "tags": s.tags,
    })
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_formats() {
        // 2016-12-19 14:18:25 UTC
        let ts = Timestamp::from_secs(1_482_157_105);
        assert_eq!(date(ts, Dates::Plain), "2016-12-19 14:18:25");
        assert_eq!(date(ts, Dates::Rfc1123), "Mon, 19 Dec 2016 14:18:25 GMT");
    }
}
