//! The report as the pages read it: every section a tab shows, without the call logs.
//!
//! A report of a busy sample holds 100 000 calls (tens of MB of JSON). The report page
//! shows call *counts* and loads calls page by page (see `calls`), so this view counts
//! each process's calls while parsing and never builds them ([`CallCount`]); sections the
//! page never shows are skipped by serde without being built either.

use std::collections::BTreeMap;

use nestbox_types::report::{
    Cape, Debug, FileInfo, Info, Network, Report, Screenshot, SignatureHit, Suricata, Target,
};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The report minus call logs.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportView {
    /// `info`.
    pub info: Info,
    /// `target`.
    pub target: Target,
    /// `signatures`, ascending severity.
    pub signatures: Vec<SignatureHit>,
    /// `static`.
    #[serde(rename = "static")]
    pub static_analysis: Map<String, Value>,
    /// `strings`.
    pub strings: Vec<String>,
    /// `network`.
    pub network: Network,
    /// `behavior` without calls.
    pub behavior: BehaviorView,
    /// `dropped`.
    pub dropped: Vec<FileInfo>,
    /// `screenshots`.
    pub screenshots: Vec<Screenshot>,
    /// `suricata`.
    pub suricata: Suricata,
    /// `CAPE`.
    #[serde(rename = "CAPE")]
    pub cape: Cape,
    /// `debug`.
    pub debug: Debug,
    /// `malscore`.
    pub malscore: f64,
    /// `malstatus`.
    pub malstatus: String,
    /// `malfamily`.
    pub malfamily: Option<String>,
}

/// `behavior` without calls.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BehaviorView {
    /// Processes, each with a call count instead of its calls.
    pub processes: Vec<ProcessView>,
    /// The process tree.
    pub processtree: Vec<Value>,
    /// Summary lists.
    pub summary: BTreeMap<String, Vec<Value>>,
    /// Anomalies.
    pub anomaly: Vec<Value>,
}

/// One process without its calls.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessView {
    /// Process id.
    pub pid: i64,
    /// Parent id.
    pub ppid: i64,
    /// Name.
    pub process_name: String,
    /// Path.
    pub process_path: String,
    /// Command line.
    pub command_line: String,
    /// How many calls the log holds.
    pub calls: CallCount,
    /// How many calls were made, when the log was cut.
    pub calls_total: Option<i64>,
}

/// The length of a JSON list, counted without building its elements.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct CallCount(pub usize);

impl<'de> Deserialize<'de> for CallCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = CallCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of calls")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CallCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(CallCount(n))
            }
            fn visit_unit<E>(self) -> Result<CallCount, E> {
                Ok(CallCount(0))
            }
        }
        d.deserialize_any(Count)
    }
}

impl ReportView {
    /// Parses a stored `report.json`.
    pub fn parse(json: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(json)
    }

    /// The view of an in-memory report (the worker's single-file HTML).
    pub fn of(report: &Report) -> serde_json::Result<Self> {
        Self::parse(&serde_json::to_vec(report)?)
    }
}
