//! The canonical analysis report.
//!
//! Its serde form *is* a Cuckoo/CAPE `report.json` superset, because that is what most
//! clients read; every other view (CAPE lite, Assemblyline results, HTML) is derived from it.
//! Sections that an analysis could not fill are still present with their empty shape, so that
//! a client reading `network.http[]` or `behavior.processtree[]` finds a list, never a null.
//! Sections not yet modelled by a typed struct are `serde_json::Value`s or land in `extra`,
//! which keeps unknown keys on a round trip through storage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Analysis metadata.
    pub info: Info,
    /// What was analysed.
    pub target: Target,
    /// Signature hits, ascending severity (Cuckoo's order).
    pub signatures: Vec<SignatureHit>,
    /// Static analysis of the target (PE/ELF/document structure); `{}` when none.
    #[serde(rename = "static")]
    pub static_analysis: Map<String, Value>,
    /// Strings of the target file.
    pub strings: Vec<String>,
    /// Indicators found statically in the target and in what the document parsers
    /// extracted: `{urls, domains, ipv4, ipv6, emails, registry_keys, file_paths, md5, sha1,
    /// sha256}` (nestbox's own section; every dialect's IOC view derives from it).
    pub iocs: Map<String, Value>,
    /// Network activity.
    pub network: Network,
    /// Behaviour of the detonated processes.
    pub behavior: Behavior,
    /// Files dropped during detonation.
    pub dropped: Vec<FileInfo>,
    /// Screenshots taken during detonation.
    pub screenshots: Vec<Screenshot>,
    /// Process memory dumps.
    pub procmemory: Vec<Value>,
    /// Suricata output (CAPE shape); empty lists without an IDS.
    pub suricata: Suricata,
    /// CAPE payloads and malware configs.
    #[serde(rename = "CAPE")]
    pub cape: Cape,
    /// Log lines and errors of the analysis.
    pub debug: Debug,
    /// CAPE's 0–10 maliciousness score (mirrors `info.score`).
    pub malscore: f64,
    /// CAPE's verdict string: `Malicious`, `Suspicious`, `Clean`, `Undetected`, `Failed`.
    pub malstatus: String,
    /// Detected malware family, if any.
    pub malfamily: Option<String>,
    /// CAPE TTPs.
    pub ttps: Vec<Value>,
    /// Sections this version does not model; preserved verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `info`: analysis metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Info {
    /// Task id.
    pub id: i64,
    /// Server version string.
    pub version: String,
    /// `file`, `url`, …
    pub category: String,
    /// Package used.
    pub package: String,
    /// Platform requested.
    pub platform: Option<String>,
    /// Options as Cuckoo's sorted `k=v,…` string.
    pub options: String,
    /// Custom field.
    pub custom: String,
    /// The task this one was spawned from (CAPE's `info.parent_id`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parent_id: Option<i64>,
    /// The archive the sample was unpacked from, as CAPE's sample record (CAPE's
    /// `info.parent_sample`), or `false`; absent (null) in reports made before it existed.
    #[serde(skip_serializing_if = "Value::is_null", default)]
    pub parent_sample: Value,
    /// Owner.
    pub owner: String,
    /// Route used.
    pub route: String,
    /// Timeout in seconds.
    pub timeout: i64,
    /// Insert time, epoch seconds.
    pub added: Option<f64>,
    /// Analysis start, epoch seconds.
    pub started: Option<f64>,
    /// Analysis end, epoch seconds.
    pub ended: Option<f64>,
    /// Whole seconds between start and end.
    pub duration: i64,
    /// Σ severity / 5, capped at 10 (Cuckoo's `info.score`).
    pub score: f64,
    /// The machine the analysis ran on; `{}` when none.
    pub machine: Map<String, Value>,
    /// Monitor/agent build hash (Cuckoo); null here.
    pub monitor: Option<String>,
    /// Git revision block (Cuckoo).
    pub git: Map<String, Value>,
}

/// `target`: the thing analysed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// `file`, `url`, `archive`.
    pub category: String,
    /// For file targets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<FileInfo>,
    /// For URL targets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    /// Archive targets: the member's path inside the archive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filename: Option<String>,
    /// Archive targets: the archive itself (`file` is the member).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub archive: Option<FileInfo>,
    /// Archive targets: `"<member> @ <archive>"`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub human: Option<String>,
}

/// Cuckoo's FileInfo: one file's identity and static findings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    /// File name (basename).
    pub name: String,
    /// Path on the analysis host or in the store.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32, 8 uppercase hex digits.
    pub crc32: String,
    /// MD5.
    pub md5: String,
    /// SHA-1.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
    /// SHA-512.
    pub sha512: String,
    /// ssdeep.
    pub ssdeep: Option<String>,
    /// TLSH, or null where the reference gives TNULL.
    pub tlsh: Option<String>,
    /// libmagic description.
    #[serde(rename = "type")]
    pub file_type: String,
    /// libmagic MIME type.
    pub mime: String,
    /// YARA matches.
    pub yara: Vec<YaraMatch>,
    /// CAPE YARA matches.
    pub cape_yara: Vec<YaraMatch>,
    /// URLs found in the content.
    pub urls: Vec<String>,
    /// CAPE's PE structure (`parse_pe.py`), for PE files only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pe: Option<Value>,
    /// Process ids that wrote the file (dropped files).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<i64>,
    /// Path inside the guest (dropped files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filepath: Option<String>,
}

/// One YARA rule match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct YaraMatch {
    /// Rule name.
    pub name: String,
    /// Rule metadata.
    pub meta: Map<String, Value>,
    /// Matched strings.
    pub strings: Vec<String>,
    /// Offsets per string id.
    pub offsets: Map<String, Value>,
    /// Rule tags.
    pub tags: Vec<String>,
}

/// A signature hit (Cuckoo/CAPE shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignatureHit {
    /// Stable name.
    pub name: String,
    /// Human description.
    pub description: String,
    /// 1 (info) … 3 (high); more for critical.
    pub severity: i64,
    /// 0–100.
    pub confidence: i64,
    /// CAPE weight.
    pub weight: i64,
    /// Categories.
    pub categories: Vec<String>,
    /// Malware families.
    pub families: Vec<String>,
    /// References.
    pub references: Vec<String>,
    /// Evidence.
    pub marks: Vec<Value>,
    /// Number of marks before truncation.
    pub markcount: i64,
    /// CAPE's `data` evidence list.
    pub data: Vec<Value>,
    /// MITRE ATT&CK ids.
    pub ttp: Map<String, Value>,
    /// Whether the hit should alert.
    pub alert: bool,
}

/// `network`: what the detonation sent and received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// SHA-256 of the pcap, if one was captured.
    pub pcap_sha256: Option<String>,
    /// Contacted IPs.
    pub hosts: Vec<Value>,
    /// Resolved domains `{domain, ip}`.
    pub domains: Vec<Value>,
    /// TCP flows.
    pub tcp: Vec<Value>,
    /// UDP flows.
    pub udp: Vec<Value>,
    /// ICMP packets.
    pub icmp: Vec<Value>,
    /// HTTP requests.
    pub http: Vec<Value>,
    /// HTTP exchanges with bodies.
    pub http_ex: Vec<Value>,
    /// HTTPS exchanges.
    pub https_ex: Vec<Value>,
    /// TLS sessions.
    pub tls: Vec<Value>,
    /// DNS requests.
    pub dns: Vec<Value>,
    /// SMTP sessions.
    pub smtp: Vec<Value>,
    /// IRC messages.
    pub irc: Vec<Value>,
    /// DNS servers used.
    pub dns_servers: Vec<Value>,
    /// Hosts that did not answer.
    pub dead_hosts: Vec<Value>,
    /// MITM log.
    pub mitm: Vec<Value>,
}

/// `behavior`: process activity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behavior {
    /// Per-process records with calls.
    pub processes: Vec<Value>,
    /// Process tree.
    pub processtree: Vec<Value>,
    /// Summary lists per category (`file_created`, `connects_ip`, …).
    pub summary: BTreeMap<String, Vec<Value>>,
    /// Per-process summaries.
    pub generic: Vec<Value>,
    /// API call counts per pid.
    pub apistats: Map<String, Value>,
    /// Anomalies.
    pub anomaly: Vec<Value>,
}

/// One screenshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Screenshot {
    /// Path of the image.
    pub path: String,
    /// OCR text.
    pub ocr: String,
}

/// `suricata`: IDS output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Suricata {
    /// Alerts.
    pub alerts: Vec<Value>,
    /// HTTP events.
    pub http: Vec<Value>,
    /// TLS events.
    pub tls: Vec<Value>,
    /// Extracted files.
    pub files: Vec<Value>,
    /// DNS events.
    pub dns: Vec<Value>,
}

/// CAPE's payload and config section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cape {
    /// Unpacked payloads.
    pub payloads: Vec<Value>,
    /// Extracted malware configs.
    pub configs: Vec<Value>,
}

/// `debug`: what went wrong and what was logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Debug {
    /// Guest analysis log lines.
    pub log: Vec<String>,
    /// Host log lines for this task.
    pub cuckoo: Vec<String>,
    /// Actions taken.
    pub action: Vec<String>,
    /// Debug-view output.
    pub dbgview: Vec<String>,
    /// Errors: an analyzer that failed on hostile input records its error here and the
    /// analysis goes on.
    pub errors: Vec<String>,
}

impl Report {
    /// Cuckoo's score from the signature hits: Σ severity / 5, capped at 10.
    pub fn score_from_signatures(hits: &[SignatureHit]) -> f64 {
        let sum: i64 = hits.iter().map(|h| h.severity.max(0)).sum();
        (sum as f64 / 5.0).min(10.0)
    }

    /// CAPE's verdict string for a score.
    pub fn malstatus_for(score: f64) -> &'static str {
        if score >= 7.0 {
            "Malicious"
        } else if score >= 4.0 {
            "Suspicious"
        } else if score > 0.0 {
            "Clean"
        } else {
            "Undetected"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_report_has_list_shapes() {
        let v = serde_json::to_value(Report::default()).unwrap();
        assert!(v["network"]["http"].is_array());
        assert!(v["behavior"]["processtree"].is_array());
        assert!(v["suricata"]["alerts"].is_array());
        assert!(v["signatures"].is_array());
        assert!(v["static"].is_object());
        assert!(v["malscore"].is_number());
        assert!(v["info"]["score"].is_number());
    }

    #[test]
    fn unknown_sections_survive_round_trip() {
        let src = r#"{"info":{"id":3},"custom_section":{"a":[1,2]}}"#;
        let r: Report = serde_json::from_str(src).unwrap();
        assert_eq!(r.info.id, 3);
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["custom_section"]["a"][1], 2);
    }

    #[test]
    fn score_is_capped() {
        let hit = SignatureHit {
            severity: 3,
            ..Default::default()
        };
        assert_eq!(
            Report::score_from_signatures(&[hit.clone(), hit.clone()]),
            1.2
        );
        assert_eq!(Report::score_from_signatures(&vec![hit; 40]), 10.0);
    }
}
