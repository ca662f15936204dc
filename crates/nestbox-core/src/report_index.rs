//! The index row of a report: the verdict figures and search terms the task list needs,
//! derived once when the report is written (see [`nestbox_types::browse`]).

use std::collections::BTreeSet;

use nestbox_types::browse::{ReportIndex, ReportSummary};
use nestbox_types::report::Report;
use serde_json::Value;

/// Terms longer than this are not indexed (nobody searches for a 4 kB URL by exact match).
const MAX_TERM_LEN: usize = 512;
/// At most this many terms per report, so a hostile report cannot bloat the index.
const MAX_TERMS: usize = 2000;

/// The index of a report.
pub fn index_of(report: &Report) -> ReportIndex {
    let mut terms = Terms::default();
    if let Some(f) = &report.target.file {
        terms.file(f);
    }
    if let Some(u) = &report.target.url {
        terms.url(u);
    }
    for s in &report.signatures {
        terms.add(&s.name);
    }
    if let Some(family) = &report.malfamily {
        terms.add(family);
    }
    for d in &report.dropped {
        terms.file(d);
    }
    let n = &report.network;
    for h in &n.hosts {
        terms.value(h.get("ip").unwrap_or(h));
    }
    for d in n.domains.iter().chain(&n.dns) {
        for k in ["domain", "request", "ip"] {
            terms.value(d.get(k).unwrap_or(&Value::Null));
        }
    }
    for h in &n.http {
        terms.value(h.get("host").unwrap_or(&Value::Null));
        if let Some(u) = h.get("uri").and_then(Value::as_str) {
            terms.url(u);
        }
    }
    for flow in n.tcp.iter().chain(&n.udp) {
        terms.value(flow.get("dst").unwrap_or(&Value::Null));
    }
    for k in ["connects_ip", "connects_host", "resolves_host"] {
        for v in report.behavior.summary.get(k).into_iter().flatten() {
            terms.value(v);
        }
    }
    ReportIndex {
        summary: ReportSummary {
            score: report.malscore.max(report.info.score),
            malstatus: report.malstatus.clone(),
            signatures: report.signatures.len() as i64,
            family: report.malfamily.clone(),
        },
        terms: terms.0.into_iter().collect(),
        fields: crate::report_fields::fields_of(report),
        // The Results derivation reads the report as JSON, as the API does when it
        // serves them; one conversion per written report.
        al_results: serde_json::to_value(report)
            .map(|v| crate::al_result::index_entries(&v))
            .unwrap_or_default(),
    }
}

/// Normalises a search box entry the way terms are stored.
pub fn normalize_term(s: &str) -> String {
    s.trim().to_lowercase()
}

#[derive(Default)]
struct Terms(BTreeSet<String>);

impl Terms {
    fn add(&mut self, s: &str) {
        let t = normalize_term(s);
        if !t.is_empty() && t.len() <= MAX_TERM_LEN && self.0.len() < MAX_TERMS {
            self.0.insert(t);
        }
    }

    fn value(&mut self, v: &Value) {
        if let Some(s) = v.as_str() {
            self.add(s);
        }
    }

    fn file(&mut self, f: &nestbox_types::report::FileInfo) {
        for s in [&f.name, &f.md5, &f.sha1, &f.sha256] {
            self.add(s);
        }
    }

    /// A URL and its host, so a search for the domain finds URL tasks too.
    fn url(&mut self, u: &str) {
        self.add(u);
        if let Some(rest) = u.split_once("://").map(|(_, r)| r) {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or("");
            let host = host.split(':').next().unwrap_or("");
            self.add(host);
        }
    }
}

#[cfg(test)]
mod tests {
    use nestbox_types::report::{FileInfo, Report, SignatureHit, Target};
    use serde_json::json;

    #[test]
    fn terms_and_figures() {
        let mut r = Report {
            target: Target {
                category: "file".into(),
                file: Some(FileInfo {
                    name: "Evil.EXE".into(),
                    sha256: "AB".repeat(32),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        r.signatures.push(SignatureHit {
            name: "Persistence_Autorun".into(),
            ..Default::default()
        });
        r.network
            .http
            .push(json!({"host": "c2.example", "uri": "http://c2.example:8080/x?y"}));
        r.network.hosts.push(json!({"ip": "10.1.2.3"}));
        r.network.dns.push(json!({"request": "x".repeat(600)}));
        r.malscore = 4.5;
        r.malstatus = "Suspicious".into();
        let ix = super::index_of(&r);
        assert_eq!(ix.summary.signatures, 1);
        assert_eq!(ix.summary.score, 4.5);
        for t in [
            "evil.exe",
            &"ab".repeat(32),
            "persistence_autorun",
            "c2.example",
            "10.1.2.3",
        ] {
            assert!(
                ix.terms.iter().any(|x| x == t),
                "{t} missing from {:?}",
                ix.terms
            );
        }
        assert!(ix.terms.iter().all(|t| t.len() <= 512));
    }
}
