//! Operational metrics, rendered in Prometheus' text exposition format (version 0.0.4).
//!
//! A deliberately small registry: a fixed set of families known at compile time (no
//! global registry, no macros), histograms and gauges with a handful of labels, lock-free
//! updates of existing series. The server holds one [`Metrics`] in [`crate::Core`]; the
//! HTTP layer observes request latencies, the workers task, stage and analyzer timings and
//! their heartbeats, and `GET /metrics` renders it together with figures read from the
//! task store at scrape time (queue depth per status).
//!
//! Label values must come from bounded sets (route patterns, statuses, analyzer names),
//! never from request data, or a hostile client could grow the registry without end.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Latency buckets of HTTP requests, seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of whole analyses and their stages, seconds (static-only tasks take
/// milliseconds, detonations minutes).
const TASK_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Buckets of single analyzers, seconds.
const ANALYZER_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// An `f64` in an atomic (its bits).
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn load(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn store(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    fn add(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// One histogram series: per-bucket (non-cumulative) counts, sum and count.
#[derive(Debug)]
struct Histogram {
    buckets: Vec<AtomicU64>,
    sum: AtomicF64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram {
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicF64::default(),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64], v: f64) {
        if let Some(i) = bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum.add(v);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Series of one family by label values.
type Series<T, const N: usize> = Mutex<BTreeMap<[String; N], Arc<T>>>;

fn series<T, const N: usize>(
    map: &Series<T, N>,
    labels: [&str; N],
    make: impl FnOnce() -> T,
) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let key = labels.map(str::to_owned);
    map.entry(key).or_insert_with(|| Arc::new(make())).clone()
}

/// A histogram family with `N` labels.
#[derive(Debug)]
pub struct HistogramVec<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    bounds: &'static [f64],
    series: Series<Histogram, N>,
}

impl<const N: usize> HistogramVec<N> {
    fn new(
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        bounds: &'static [f64],
    ) -> Self {
        HistogramVec {
            name,
            help,
            labels,
            bounds,
            series: Mutex::default(),
        }
    }

    /// Records one observation in seconds.
    pub fn observe(&self, labels: [&str; N], elapsed: Duration) {
        let bounds = self.bounds;
        series(&self.series, labels, || Histogram::new(bounds))
            .observe(bounds, elapsed.as_secs_f64());
    }

    /// Observations so far of one series (for tests and the benchmark).
    pub fn count(&self, labels: [&str; N]) -> u64 {
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&labels.map(str::to_owned))
            .map_or(0, |h| h.count.load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (values, h) in map.iter() {
            let labels = label_set(&self.labels, values);
            let sep = if labels.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (bound, n) in self.bounds.iter().zip(&h.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}",
                    self.name
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}",
                self.name
            );
            let braces = braced(&labels);
            let _ = writeln!(out, "{}_sum{braces} {}", self.name, h.sum.load());
            let _ = writeln!(out, "{}_count{braces} {count}", self.name);
        }
    }
}

/// A gauge family with `N` labels.
#[derive(Debug)]
pub struct GaugeVec<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    series: Series<AtomicF64, N>,
}

impl<const N: usize> GaugeVec<N> {
    fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        GaugeVec {
            name,
            help,
            labels,
            series: Mutex::default(),
        }
    }

    /// Sets a series.
    pub fn set(&self, labels: [&str; N], v: f64) {
        series(&self.series, labels, AtomicF64::default).store(v);
    }

    /// Current value of a series, if it was ever set.
    pub fn get(&self, labels: [&str; N]) -> Option<f64> {
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&labels.map(str::to_owned)).map(|g| g.load())
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (values, g) in map.iter() {
            let labels = braced(&label_set(&self.labels, values));
            let _ = writeln!(out, "{}{labels} {}", self.name, g.load());
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `a="x",b="y"` with values escaped as the text format wants.
fn label_set(names: &[&str], values: &[String]) -> String {
    let mut s = String::new();
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{n}=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

fn braced(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

/// Renders one gauge family from values computed at scrape time (e.g. read from the task
/// store), one label.
pub fn render_gauge(out: &mut String, name: &str, help: &str, label: &str, rows: &[(&str, f64)]) {
    header(out, name, help, "gauge");
    for (value, v) in rows {
        let labels = label_set(&[label], &[(*value).to_owned()]);
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

/// Every metric the process keeps in memory.
#[derive(Debug)]
pub struct Metrics {
    /// `nestbox_http_request_duration_seconds{method,route,status}`: until the response
    /// head is ready; `route` is the matched pattern (`/tasks/view/{task_id}`).
    pub http: HistogramVec<3>,
    /// `nestbox_task_duration_seconds{status}`: a whole analysis, claim to final status.
    pub task: HistogramVec<1>,
    /// `nestbox_stage_duration_seconds{stage}`: `static`, `detonation`, `reporting`.
    pub stage: HistogramVec<1>,
    /// `nestbox_analyzer_duration_seconds{analyzer}`: each static analyzer.
    pub analyzer: HistogramVec<1>,
    /// `nestbox_worker_last_seen_timestamp_seconds{worker}`: when each worker of this
    /// process last looked at the queue or finished a task (Unix time).
    pub worker_last_seen: GaugeVec<1>,
    /// `nestbox_worker_busy{worker}`: 1 while the worker runs an analysis.
    pub worker_busy: GaugeVec<1>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http: HistogramVec::new(
                "nestbox_http_request_duration_seconds",
                "HTTP request latency until the response head, by route pattern.",
                ["method", "route", "status"],
                HTTP_BUCKETS,
            ),
            task: HistogramVec::new(
                "nestbox_task_duration_seconds",
                "Duration of whole analyses, by final task status.",
                ["status"],
                TASK_BUCKETS,
            ),
            stage: HistogramVec::new(
                "nestbox_stage_duration_seconds",
                "Duration of analysis stages.",
                ["stage"],
                TASK_BUCKETS,
            ),
            analyzer: HistogramVec::new(
                "nestbox_analyzer_duration_seconds",
                "Duration of static analyzers per sample.",
                ["analyzer"],
                ANALYZER_BUCKETS,
            ),
            worker_last_seen: GaugeVec::new(
                "nestbox_worker_last_seen_timestamp_seconds",
                "When a worker of this process last polled the queue or finished a task.",
                ["worker"],
            ),
            worker_busy: GaugeVec::new(
                "nestbox_worker_busy",
                "1 while a worker of this process runs an analysis.",
                ["worker"],
            ),
        }
    }
}

impl Metrics {
    /// Marks a worker as alive now.
    pub fn heartbeat(&self, worker: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.worker_last_seen.set([worker], now);
    }

    /// Appends every in-memory family in the text format.
    pub fn render(&self, out: &mut String) {
        self.http.render(out);
        self.task.render(out);
        self.stage.render(out);
        self.analyzer.render(out);
        self.worker_last_seen.render(out);
        self.worker_busy.render(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        for ms in [0, 3, 3, 40, 20_000] {
            m.http.observe(
                ["GET", "/tasks/view/{task_id}", "200"],
                Duration::from_millis(ms),
            );
        }
        let mut out = String::new();
        m.render(&mut out);
        let line = |needle: &str| {
            out.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{out}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        let series = r#"method="GET",route="/tasks/view/{task_id}",status="200""#;
        assert_eq!(
            line(&format!(
                "nestbox_http_request_duration_seconds_bucket{{{series},le=\"0.001\"}}"
            )),
            "1"
        );
        assert_eq!(
            line(&format!(
                "nestbox_http_request_duration_seconds_bucket{{{series},le=\"0.005\"}}"
            )),
            "3"
        );
        assert_eq!(
            line(&format!(
                "nestbox_http_request_duration_seconds_bucket{{{series},le=\"10\"}}"
            )),
            "4"
        );
        assert_eq!(
            line(&format!(
                "nestbox_http_request_duration_seconds_bucket{{{series},le=\"+Inf\"}}"
            )),
            "5"
        );
        assert_eq!(
            line(&format!(
                "nestbox_http_request_duration_seconds_count{{{series}}}"
            )),
            "5"
        );
        let sum: f64 = line(&format!(
            "nestbox_http_request_duration_seconds_sum{{{series}}}"
        ))
        .parse()
        .unwrap();
        assert!((sum - 20.046).abs() < 1e-9, "{sum}");
        assert!(out.contains("# TYPE nestbox_task_duration_seconds histogram"));
        assert_eq!(m.http.count(["GET", "/tasks/view/{task_id}", "200"]), 5);
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.worker_busy.set(["a\"b\\c\nd"], 1.0);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(r#"nestbox_worker_busy{worker="a\"b\\c\nd"} 1"#),
            "{out}"
        );
        let mut out = String::new();
        render_gauge(
            &mut out,
            "nestbox_tasks",
            "Tasks.",
            "status",
            &[("pending", 3.0)],
        );
        assert_eq!(
            out,
            "# HELP nestbox_tasks Tasks.\n# TYPE nestbox_tasks gauge\nnestbox_tasks{status=\"pending\"} 3\n"
        );
    }

    #[test]
    fn concurrent_observations_all_count() {
        let m = Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.stage.observe(["static"], Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.stage.count(["static"]), 4000);
    }
}
