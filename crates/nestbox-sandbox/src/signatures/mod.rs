//! Behavioural signatures over what a detonation saw (`behavior`, `network`, dropped
//! files, the sample's bytes): name, description, severity, confidence, categories,
//! ATT&CK ids, families and `marks` pointing at the evidence, in Cuckoo's/CAPE's
//! `signatures[]` shape.
//!
//! Most signatures are data: a row in [`table`] saying which paths or programs betray a
//! technique. The ones that need logic (call sequences, counting, content) are small
//! functions grouped by what they look at: [`calls`], [`netsigs`], [`content`],
//! [`files`]. Each returns its IOC marks; an empty list is no hit.
//!
//! They run in the machinery because the report is assembled by the worker; the hits
//! travel in [`nestbox_core::machinery::Detonation::signatures`] and the worker's scoring
//! turns them into `info.score`/`malscore` (and `malfamily` from `families`).

mod calls;
mod content;
mod files;
mod netsigs;
mod table;

use std::collections::BTreeSet;

use nestbox_types::report::{Behavior, Network, SignatureHit};
use serde_json::{Map, Value, json};

use crate::behavior::Attempts;

/// Bytes of one file a content signature may read (sample and dropped files).
const CONTENT_CAP: usize = 4 << 20;
/// Bytes read over all files, so a sample dropping thousands of files stays cheap.
const CONTENT_TOTAL: usize = 48 << 20;

/// A file's bytes (capped) with its path inside the sandbox.
pub struct Content {
    /// Path inside the sandbox.
    pub path: String,
    /// The first [`CONTENT_CAP`] bytes.
    pub data: Vec<u8>,
    /// Whether this is the submitted sample (else a dropped file).
    pub sample: bool,
}

/// What signatures look at.
pub struct Evidence<'a> {
    /// The behaviour section.
    pub behavior: &'a Behavior,
    /// The network section.
    pub network: &'a Network,
    /// The sample's path inside the sandbox.
    pub sample_path: &'a str,
    /// What the sample tried, failures included.
    pub attempts: &'a Attempts,
    /// The sample's and the dropped files' bytes.
    pub contents: Vec<Content>,
}

impl<'a> Evidence<'a> {
    /// Evidence without file contents; see [`Evidence::read_contents`].
    pub fn new(
        behavior: &'a Behavior,
        network: &'a Network,
        sample_path: &'a str,
        attempts: &'a Attempts,
    ) -> Self {
        Evidence {
            behavior,
            network,
            sample_path,
            attempts,
            contents: Vec::new(),
        }
    }

    /// Loads file contents (host path, path inside, is-the-sample) within the caps.
    pub fn read_contents(&mut self, files: &[(std::path::PathBuf, String, bool)]) {
        use std::io::Read;
        let mut total = 0usize;
        for (host, inside, sample) in files {
            if total >= CONTENT_TOTAL {
                break;
            }
            let mut data = Vec::new();
            let cap = CONTENT_CAP.min(CONTENT_TOTAL - total);
            if let Ok(f) = std::fs::File::open(host) {
                let _ = f.take(cap as u64).read_to_end(&mut data);
            }
            total += data.len();
            self.contents.push(Content {
                path: inside.clone(),
                data,
                sample: *sample,
            });
        }
    }

    /// A summary list as strings.
    pub fn summary(&self, key: &str) -> Vec<&str> {
        self.behavior
            .summary
            .get(key)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Every recorded call with the process that made it.
    pub fn calls(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.behavior.processes.iter().flat_map(|p| {
            p["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| (p, c))
        })
    }

    /// Command lines executed, and programs whose execution was attempted.
    pub fn commands(&self) -> Vec<&str> {
        let mut v = self.summary("executed_commands");
        v.extend(self.attempts.execs.iter().map(String::as_str));
        v
    }

    /// Paths written or (unsuccessfully) opened for writing.
    pub fn writes(&self) -> BTreeSet<&str> {
        let mut v: BTreeSet<&str> = self.summary("write_files").into_iter().collect();
        v.extend(self.attempts.writes.iter().map(String::as_str));
        v
    }

    /// Paths opened for reading, attempts included.
    pub fn reads(&self) -> BTreeSet<&str> {
        let mut v: BTreeSet<&str> = self.summary("read_files").into_iter().collect();
        v.extend(
            self.attempts
                .opens
                .iter()
                .filter(|p| !self.attempts.writes.contains(*p))
                .map(String::as_str),
        );
        v
    }
}

/// A signature's fixed description (everything but the evidence); shared with the other
/// machineries' signature sets so every hit has the same shape.
pub struct Meta {
    /// Cuckoo's signature name (`persistence_cron`).
    pub name: &'static str,
    /// One line for the report.
    pub description: &'static str,
    /// 1 informational, 2 suspicious, 3 malicious (Cuckoo's scale).
    pub severity: i64,
    /// Cuckoo's categories.
    pub categories: &'static [&'static str],
    /// ATT&CK technique id → name.
    pub ttp: &'static [(&'static str, &'static str)],
    /// Families a hit implies (`malfamily`).
    pub families: &'static [&'static str],
}

/// IOC marks: (category, value).
pub type Marks = Vec<(String, String)>;

/// A signature written as code.
pub(crate) type Check = fn(&Evidence<'_>) -> Marks;

/// A signature ready to run: its description and its check.
pub(crate) type Entry = (&'static Meta, Box<dyn Fn(&Evidence<'_>) -> Marks>);

/// Every shipped signature: the table rows, then the coded ones.
pub(crate) fn all() -> Vec<Entry> {
    let mut v: Vec<Entry> = Vec::new();
    for rule in table::RULES {
        v.push((&rule.meta, Box::new(move |ev| rule.check(ev))));
    }
    for (meta, check) in calls::SIGNATURES
        .iter()
        .chain(netsigs::SIGNATURES)
        .chain(content::SIGNATURES)
        .chain(files::SIGNATURES)
    {
        v.push((meta, Box::new(*check)));
    }
    v
}

/// The hits for `ev`.
pub fn evaluate(ev: &Evidence<'_>) -> Vec<SignatureHit> {
    all()
        .iter()
        .filter_map(|(meta, check)| hit_for(meta, check(ev)))
        .collect()
}

/// Names of every shipped signature.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|(m, _)| m.name).collect()
}

/// The hit of `meta` for the evidence `iocs` (sorted and deduplicated here), or `None`
/// without evidence.
pub fn hit_for(meta: &Meta, mut iocs: Marks) -> Option<SignatureHit> {
    iocs.sort();
    iocs.dedup();
    (!iocs.is_empty()).then(|| hit(meta, iocs))
}

/// A hit with Cuckoo's/CAPE's fields; `marks` are IOC marks.
fn hit(meta: &Meta, iocs: Marks) -> SignatureHit {
    let marks: Vec<Value> = iocs
        .iter()
        .take(50)
        .map(|(category, ioc)| json!({"type": "ioc", "category": category, "ioc": ioc, "description": null}))
        .collect();
    let mut t = Map::new();
    for (id, label) in meta.ttp {
        t.insert((*id).to_owned(), json!(label));
    }
    SignatureHit {
        name: meta.name.to_owned(),
        description: meta.description.to_owned(),
        severity: meta.severity,
        confidence: 100,
        weight: meta.severity,
        categories: meta.categories.iter().map(|c| (*c).to_owned()).collect(),
        families: meta.families.iter().map(|c| (*c).to_owned()).collect(),
        references: meta
            .ttp
            .iter()
            .map(|(id, _)| {
                format!(
                    "https://attack.mitre.org/techniques/{}/",
                    id.replace('.', "/")
                )
            })
            .collect(),
        markcount: iocs.len() as i64,
        data: iocs
            .iter()
            .take(50)
            .map(|(c, i)| json!({ c.as_str(): i }))
            .collect(),
        marks,
        ttp: t,
        alert: meta.severity >= 3,
    }
}

/// The last path component.
pub(crate) fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The program of a command line (`/usr/bin/curl -s x` → `curl`).
pub(crate) fn prog(cmd: &str) -> &str {
    base(cmd.split_whitespace().next().unwrap_or(""))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A behaviour with `summary` lists and processes (each a list of calls).
    pub(crate) fn behavior(summary: &[(&str, &[&str])], procs: &[(&str, Vec<Value>)]) -> Behavior {
        let mut b = Behavior::default();
        for (k, v) in summary {
            b.summary
                .insert((*k).to_owned(), v.iter().map(|x| json!(x)).collect());
        }
        for (i, (name, calls)) in procs.iter().enumerate() {
            b.processes.push(json!({
                "pid": 100 + i, "ppid": if i == 0 { 1 } else { 100 }, "process_name": name,
                "process_path": format!("/tmp/{name}"), "calls": calls,
            }));
        }
        b
    }

    /// A call as the behaviour builder writes it.
    pub(crate) fn call(api: &str, args: &[(&str, &str)], ret: i64) -> Value {
        let a: Map<String, Value> = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        json!({"api": api, "arguments": a, "return": ret, "status": ret >= 0})
    }

    /// Names of the signatures that fire.
    pub(crate) fn fired(b: &Behavior, n: &Network, a: &Attempts, c: Vec<Content>) -> Vec<String> {
        let mut ev = Evidence::new(b, n, "/tmp/sample", a);
        ev.contents = c;
        evaluate(&ev).into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn at_least_thirty_signatures_with_unique_names_and_full_metadata() {
        let all = all();
        assert!(all.len() >= 30, "{}", all.len());
        let names: BTreeSet<&str> = all.iter().map(|(m, _)| m.name).collect();
        assert_eq!(names.len(), all.len(), "duplicate names");
        for (m, _) in &all {
            assert!((1..=5).contains(&m.severity), "{}", m.name);
            assert!(!m.categories.is_empty() && !m.ttp.is_empty(), "{}", m.name);
        }
    }

    #[test]
    fn nothing_fires_on_an_empty_run() {
        let b = Behavior::default();
        assert!(fired(&b, &Network::default(), &Attempts::default(), vec![]).is_empty());
    }

    #[test]
    fn a_hit_has_cape_fields() {
        let b = behavior(&[("read_files", &["/etc/shadow"])], &[]);
        let n = Network::default();
        let a = Attempts::default();
        let hits = evaluate(&Evidence::new(&b, &n, "/tmp/x", &a));
        let h = hits.iter().find(|h| h.name == "reads_shadow").unwrap();
        assert_eq!(h.marks[0]["ioc"], "/etc/shadow");
        assert_eq!(h.data[0]["file"], "/etc/shadow");
        assert_eq!(h.markcount, 1);
        assert!(h.references[0].starts_with("https://attack.mitre.org/techniques/T1003/008"));
    }
}
