//! The JSON shapes of Cuckoo 2.0.7's API objects (spec cuckoo.md §2), built from the
//! domain records. Upstream's datetime formats differ per endpoint, so the caller picks.

use nestbox_types::{Guest, Machine, Sample, Task, Timestamp};
use serde::Serialize;
use serde::ser::SerializeMap;
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

/// Serialises `Some(v)` as `v` and `None` as `{}` (upstream's "empty dict" for a missing
/// guest or sample).
pub struct OrEmpty<T>(pub Option<T>);

impl<T: Serialize> Serialize for OrEmpty<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(v) => v.serialize(s),
            None => s.serialize_map(Some(0))?.end(),
        }
    }
}

/// `Sample.to_dict()`, fields in sorted order.
#[derive(Serialize)]
pub struct SampleView<'a> {
    crc32: &'a str,
    file_size: i64,
    file_type: &'a str,
    id: i64,
    md5: &'a str,
    sha1: &'a str,
    sha256: &'a str,
    sha512: &'a str,
    ssdeep: Option<&'a str>,
}

impl<'a> SampleView<'a> {
    /// The view of a sample.
    pub fn of(s: &'a Sample) -> Self {
        SampleView {
            crc32: &s.crc32,
            file_size: s.file_size,
            file_type: &s.file_type,
            id: s.id,
            md5: &s.md5,
            sha1: &s.sha1,
            sha256: &s.sha256,
            sha512: &s.sha512,
            ssdeep: s.ssdeep.as_deref(),
        }
    }
}

/// `Guest.to_dict()`, fields in sorted order.
#[derive(Serialize)]
pub struct GuestView<'a> {
    id: i64,
    label: &'a str,
    manager: &'a str,
    name: &'a str,
    shutdown_on: Option<String>,
    started_on: String,
    status: &'a str,
    task_id: i64,
}

impl<'a> GuestView<'a> {
    /// The view of a guest (datetimes always plain).
    pub fn of(g: &'a Guest) -> Self {
        GuestView {
            id: g.id,
            label: &g.label,
            manager: &g.manager,
            name: &g.name,
            shutdown_on: g.shutdown_on.map(|t| date(t, Dates::Plain)),
            started_on: date(g.started_on, Dates::Plain),
            status: &g.status,
            task_id: g.task_id.0,
        }
    }
}

/// `Task.to_dict()` plus what the API adds (`duration`, `guest`, `errors`, `sample`), fields
/// in sorted order so it serialises straight to jsonify's output.
#[derive(Serialize)]
pub struct TaskView<'a> {
    added_on: String,
    category: &'static str,
    clock: String,
    completed_on: Option<String>,
    custom: &'a str,
    duration: i64,
    enforce_timeout: bool,
    errors: &'a [String],
    guest: OrEmpty<GuestView<'a>>,
    id: i64,
    machine: &'a str,
    memory: bool,
    options: &'a std::collections::BTreeMap<String, String>,
    owner: &'a str,
    package: &'a str,
    platform: &'a str,
    priority: i64,
    processing: Option<&'a str>,
    route: Option<&'a str>,
    sample: OrEmpty<SampleView<'a>>,
    sample_id: Option<i64>,
    started_on: Option<String>,
    status: &'static str,
    submit_id: Option<i64>,
    tags: Vec<&'a str>,
    target: &'a str,
    timeout: i64,
}

impl<'a> TaskView<'a> {
    /// The view of a task, datetimes in `style`.
    pub fn of(t: &'a Task, style: Dates) -> Self {
        let s = &t.spec;
        let mut tags: Vec<&str> = s.tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        TaskView {
            added_on: date(t.added_on, style),
            category: s.category.as_str(),
            clock: date(t.clock, style),
            completed_on: t.completed_on.map(|d| date(d, style)),
            custom: &s.custom,
            duration: t.duration(),
            enforce_timeout: s.enforce_timeout,
            errors: &t.errors,
            guest: OrEmpty(t.guest.as_ref().map(GuestView::of)),
            id: t.id.0,
            machine: &s.machine,
            memory: s.memory,
            options: &s.options.0,
            owner: &s.owner,
            package: &s.package,
            platform: &s.platform,
            priority: s.priority,
            processing: t.processing.as_deref(),
            route: s.route.as_deref(),
            sample: OrEmpty(t.sample.as_ref().map(SampleView::of)),
            sample_id: s.sample_id,
            started_on: t.started_on.map(|d| date(d, style)),
            status: t.status.as_str(),
            submit_id: s.submit_id,
            tags,
            target: &s.target,
            timeout: s.timeout,
        }
    }
}

/// `Sample.to_dict()` as a JSON object (for callers that add keys).
pub fn sample(s: &Sample) -> Map<String, Value> {
    into_map(serde_json::to_value(SampleView::of(s)).unwrap_or_default())
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
