//! The typed search values of a report for CAPE's `tasks/extendedsearch`: for each search
//! option, the values of the report paths CAPE's `search_term_map`
//! (`lib/cuckoo/common/web_utils.py`) queries in Mongo. They are written to the store with
//! the report index, so a search is an index lookup, never a scan of report blobs.
//!
//! CAPE compares exactly (a Mongo equality, which matches any element of an array), after
//! lower-casing the value for its `normalized_lower_terms`; [`normalize`] applies the same
//! rule to stored values and to queries. Integers (`port`) are stored as their decimal text.

use std::collections::BTreeSet;

use nestbox_types::browse::ReportField;
use nestbox_types::report::Report;
use serde_json::{Value, json};

/// Longest value indexed (CAPE refuses regexes over 256 characters; exact values this
/// long are not searched for).
const MAX_VALUE_LEN: usize = 1024;
/// At most this many values per report.
const MAX_FIELDS: usize = 5000;

/// The options answered from the index and the report paths behind each (CAPE's
/// `search_term_map`, on nestbox's report; `<file>` stands for every file record: the
/// target, dropped files and CAPE payloads).
pub const INDEXED: &[(&str, &[&str])] = &[
    ("package", &["info.package"]),
    ("name", &["target.file.name"]),
    ("type", &["target.file.type"]),
    ("file", &["behavior.summary.files"]),
    ("command", &["behavior.summary.executed_commands"]),
    ("resolvedapi", &["behavior.summary.resolved_apis"]),
    ("key", &["behavior.summary.keys"]),
    ("mutex", &["behavior.summary.mutexes"]),
    ("domain", &["network.domains.domain"]),
    ("ip", &["network.hosts.ip"]),
    ("asn", &["network.hosts.asn"]),
    ("asn_name", &["network.hosts.asn_name"]),
    ("signature", &["signatures.description"]),
    ("signame", &["signatures.name"]),
    ("detections", &["detections.family"]),
    ("url", &["target.url"]),
    ("ttp", &["ttps.ttp"]),
    ("surialert", &["suricata.alerts.signature"]),
    ("surimsg", &["suricata.alerts.signature"]),
    ("surisid", &["suricata.alerts.sid"]),
    ("suriurl", &["suricata.http.uri"]),
    ("machinename", &["info.machine.name"]),
    ("machinelabel", &["info.machine.label"]),
    ("custom", &["info.custom"]),
    ("target_sha256", &["target.file.sha256"]),
    ("dport", &["network.tcp.dport", "network.udp.dport"]),
    ("sport", &["network.tcp.dport", "network.udp.dport"]),
    ("port", &["network.tcp.dport", "network.udp.dport"]),
    ("ssdeep", &["<file>.ssdeep"]),
    ("yaraname", &["<file>.yara.name"]),
    ("capeyara", &["<file>.cape_yara.name"]),
    ("md5", &["<file>.md5"]),
    ("sha1", &["<file>.sha1"]),
    ("sha256", &["<file>.sha256"]),
    ("sha512", &["<file>.sha512"]),
    ("crc32", &["<file>.crc32"]),
    ("imphash", &["<file>.imphash", "<file>.pe.imphash"]),
    ("configs", &["CAPE.configs.*"]),
];

/// CAPE's `normalized_lower_terms`: values compared lower-cased.
const LOWER: &[&str] = &[
    "target_sha256",
    "md5",
    "sha1",
    "sha3",
    "sha256",
    "sha512",
    "ip",
    "domain",
    "ja3_hash",
    "dhash",
    "iconhash",
    "imphash",
    "package",
];

/// Whether an option is answered from the index.
pub fn is_indexed(option: &str) -> bool {
    INDEXED.iter().any(|(o, _)| *o == option)
}

/// A value as stored and compared for `option`.
pub fn normalize(option: &str, value: &str) -> String {
    if LOWER.contains(&option) {
        value.to_lowercase()
    } else if option == "ttp" {
        value.to_uppercase()
    } else {
        value.to_owned()
    }
}

/// The typed search values of a report.
pub fn fields_of(report: &Report) -> Vec<ReportField> {
    // Only the searched parts, as JSON (not the call logs of `behavior.processes`).
    let files: Vec<Value> = report
        .target
        .file
        .iter()
        .chain(&report.dropped)
        .map(|f| serde_json::to_value(f).unwrap_or(Value::Null))
        .chain(report.cape.payloads.iter().cloned())
        .collect();
    let doc = json!({
        "info": {
            "package": report.info.package,
            "custom": report.info.custom,
            "machine": report.info.machine,
        },
        "target": report.target,
        "behavior": {"summary": report.behavior.summary},
        "network": {
            "domains": report.network.domains,
            "hosts": report.network.hosts,
            "tcp": report.network.tcp,
            "udp": report.network.udp,
        },
        "signatures": report.signatures,
        "detections": report.malfamily.iter().map(|f| json!({"family": f})).collect::<Vec<_>>(),
        "ttps": report.ttps,
        "suricata": {"alerts": report.suricata.alerts, "http": report.suricata.http},
        "CAPE": {"configs": report.cape.configs},
        "<file>": files,
    });
    let mut out = BTreeSet::new();
    for (option, paths) in INDEXED {
        for path in *paths {
            let mut values = Vec::new();
            collect(&doc, &path.split('.').collect::<Vec<_>>(), &mut values);
            for text in values {
                if text.is_empty() || text.len() > MAX_VALUE_LEN || out.len() >= MAX_FIELDS {
                    continue;
                }
                out.insert(ReportField {
                    field: (*option).to_owned(),
                    value: normalize(option, &text),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// The scalar values at a dotted path, as text; arrays are entered at every step (Mongo's
/// semantics), and `*` names the keys of an object (`CAPE.configs.*`: the family names).
fn collect(v: &Value, path: &[&str], out: &mut Vec<String>) {
    if let Value::Array(items) = v {
        for item in items {
            collect(item, path, out);
        }
        return;
    }
    let Some((first, rest)) = path.split_first() else {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        }
        return;
    };
    match (*first, v) {
        ("*", Value::Object(m)) => out.extend(m.keys().cloned()),
        (key, Value::Object(m)) => {
            if let Some(next) = m.get(key) {
                collect(next, rest, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use nestbox_types::report::{FileInfo, Report, SignatureHit, Target};
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_follow_capes_paths() {
        let mut r = Report {
            target: Target {
                category: "file".into(),
                file: Some(FileInfo {
                    name: "Evil.EXE".into(),
                    sha256: "AB".repeat(32),
                    ..Default::default()
                }),
                url: None,
                ..Default::default()
            },
            ..Default::default()
        };
        r.signatures.push(SignatureHit {
            name: "Persistence_Autorun".into(),
            description: "Installs itself".into(),
            ..Default::default()
        });
        r.network
            .domains
            .push(json!({"domain": "C2.Example", "ip": "10.0.0.1"}));
        r.network.tcp.push(json!({"dst": "10.0.0.1", "dport": 443}));
        r.behavior
            .summary
            .insert("mutexes".into(), vec![json!("Global\\m1")]);
        r.cape.configs.push(json!({"Emotet": {"c2": ["x"]}}));
        let f = fields_of(&r);
        let has = |field: &str, value: &str| f.iter().any(|x| x.field == field && x.value == value);
        assert!(has("name", "Evil.EXE"), "{f:?}");
        assert!(has("sha256", &"ab".repeat(32)));
        assert!(has("target_sha256", &"ab".repeat(32)));
        assert!(has("signame", "Persistence_Autorun"));
        assert!(has("signature", "Installs itself"));
        assert!(has("domain", "c2.example"));
        assert!(has("port", "443") && has("dport", "443"));
        assert!(has("mutex", "Global\\m1"));
        assert!(has("configs", "Emotet"));
        assert!(!has("domain", "10.0.0.1"));
        assert_eq!(normalize("domain", "A.B"), "a.b");
        assert_eq!(normalize("signame", "A.B"), "A.B");
        assert!(is_indexed("signame") && !is_indexed("virustotal"));
    }
}
