//! Behavioural signatures over what a detonation saw (`behavior`, `network`, dropped
//! files), each in its own file: name, description, severity, confidence, categories,
//! ATT&CK ids and `marks` pointing at the evidence.
//!
//! They run in the machinery because the report is assembled by the worker; the hits
//! travel in [`nestbox_core::machinery::Detonation::signatures`] and the worker's scoring
//! turns them into `info.score`/`malscore`.

mod deletes_itself;
mod http_request;
mod persistence_cron;
mod persistence_shell_rc;
mod reads_shadow;

use nestbox_types::report::{Behavior, Network, SignatureHit};
use serde_json::{Map, Value, json};

/// What signatures look at.
pub struct Evidence<'a> {
    /// The behaviour section.
    pub behavior: &'a Behavior,
    /// The network section.
    pub network: &'a Network,
    /// The sample's path inside the sandbox.
    pub sample_path: &'a str,
}

impl Evidence<'_> {
    /// A summary list as strings.
    pub fn summary(&self, key: &str) -> Vec<&str> {
        self.behavior
            .summary
            .get(key)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// One signature.
pub trait Signature {
    /// Evaluates the signature; `Some` is a hit.
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit>;
}

/// Every shipped signature.
fn all() -> Vec<Box<dyn Signature>> {
    vec![
        Box::new(reads_shadow::ReadsShadow),
        Box::new(persistence_cron::PersistenceCron),
        Box::new(persistence_shell_rc::PersistenceShellRc),
        Box::new(deletes_itself::DeletesItself),
        Box::new(http_request::HttpRequest),
    ]
}

/// The hits for `ev`.
pub fn evaluate(ev: &Evidence<'_>) -> Vec<SignatureHit> {
    all().iter().filter_map(|s| s.check(ev)).collect()
}

/// A hit with Cuckoo's/CAPE's fields; `marks` are IOC marks.
pub(crate) fn hit(
    name: &str,
    description: &str,
    severity: i64,
    categories: &[&str],
    ttp: &[(&str, &str)],
    iocs: Vec<(String, String)>,
) -> SignatureHit {
    let marks: Vec<Value> = iocs
        .iter()
        .take(50)
        .map(|(category, ioc)| json!({"type": "ioc", "category": category, "ioc": ioc, "description": null}))
        .collect();
    let mut t = Map::new();
    for (id, label) in ttp {
        t.insert((*id).to_owned(), json!(label));
    }
    SignatureHit {
        name: name.to_owned(),
        description: description.to_owned(),
        severity,
        confidence: 100,
        weight: severity,
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        families: Vec::new(),
        references: Vec::new(),
        markcount: iocs.len() as i64,
        data: iocs.iter().map(|(c, i)| json!({ c.as_str(): i })).collect(),
        marks,
        ttp: t,
        alert: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_from_a_summary() {
        let mut b = Behavior::default();
        let s = |v: &[&str]| v.iter().map(|x| json!(x)).collect::<Vec<_>>();
        b.summary.insert("read_files".into(), s(&["/etc/shadow"]));
        b.summary.insert(
            "files".into(),
            s(&["/etc/cron.d/evil", "/home/john/.bashrc"]),
        );
        b.summary
            .insert("write_files".into(), s(&["/home/john/.bashrc"]));
        b.summary.insert("delete_files".into(), s(&["/tmp/x.sh"]));
        let mut n = Network::default();
        n.http.push(json!({"uri": "http://a/b", "method": "GET"}));
        let hits = evaluate(&Evidence {
            behavior: &b,
            network: &n,
            sample_path: "/tmp/x.sh",
        });
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "reads_shadow",
                "persistence_cron",
                "persistence_shell_rc",
                "deletes_itself",
                "http_request"
            ]
        );
        assert!(
            hits.iter()
                .all(|h| !h.marks.is_empty() && !h.ttp.is_empty())
        );
        let none = evaluate(&Evidence {
            behavior: &Behavior::default(),
            network: &Network::default(),
            sample_path: "/tmp/x",
        });
        assert!(none.is_empty());
    }
}
