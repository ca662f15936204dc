//! Assemblyline Results derived from the canonical report (spec `assemblyline.md` §5.2).
//!
//! nestbox's analyzers appear to Assemblyline clients as services; their Results are a
//! pure function of a task's report, never stored as documents of their own:
//!
//! | service | category/stage | from the report |
//! |---|---|---|
//! | `Characterize` | Static Analysis / CORE | `target.file` identity, libmagic type, PE imphash |
//! | `Strings` | Static Analysis / CORE | `strings`, `target.file.urls` (tags `network.static.*`) |
//! | `YARA` | Static Analysis / CORE | `target.file.yara` (one heuristic per rule, tag `file.rule.yara`) |
//! | `Signatures` | Static Analysis / POST | `signatures` (one heuristic each, score by severity) |
//! | `Sandbox` | Dynamic Analysis / CORE | `behavior.processes`, `network` (tags `network.dynamic.*`) |
//!
//! The derivation lives here, not in the API, because the worker writes the *search index*
//! of these Results ([`index_entries`]) when it writes the report: `search/result/` is then
//! an index lookup, and the index can never disagree with what `result/<key>/` shows, since
//! both come from [`derive`].

use nestbox_types::browse::AlResultEntry;
use nestbox_types::{Task, Timestamp};
use serde_json::{Map, Value, json};

/// The classification of everything nestbox serves (it has no classification engine).
pub const C12N: &str = "TLP:C";

/// Longest indexed value: longer ones are not searched for by exact value.
const MAX_VALUE_LEN: usize = 512;
/// At most this many indexed values per result, so a hostile report cannot bloat the index.
const MAX_FIELDS: usize = 1000;

/// ISO-8601 UTC with microseconds and `Z`, Assemblyline's date form.
pub fn iso(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_micros(t.0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The content of the "uri file" an Assemblyline URL submission becomes: its SHA-256 is
/// the `sha256` of the URL's results.
pub fn uri_file(url: &str) -> String {
    format!("uri: {url}\n")
}

/// When the Results of a report were created: the end of the analysis the report records,
/// else the task's completion (or submission) time.
fn result_time(task: Option<&Task>, report: &Value) -> Option<Timestamp> {
    let ended = report["info"]["ended"]
        .as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Timestamp((s * 1e6) as i64));
    ended.or_else(|| task.map(|t| t.completed_on.unwrap_or(t.added_on)))
}

/// Derived results and errors, keyed.
#[derive(Debug, Default)]
pub struct Results {
    /// `key → Result`.
    pub results: Vec<(String, Value)>,
    /// `key → Error`.
    pub errors: Vec<(String, Value)>,
}

/// Submission `max_score`: the file score, i.e. the sum of its result scores (one file).
pub fn max_score(r: &Results) -> i64 {
    r.results
        .iter()
        .map(|(_, v)| v["result"]["score"].as_i64().unwrap_or(0))
        .sum()
}

/// The service version as a key component (`.` → `_`).
pub fn version_key() -> String {
    env!("CARGO_PKG_VERSION").replace('.', "_")
}

/// The services nestbox shows: (name, category, stage, description).
pub const SERVICES: &[(&str, &str, &str, &str)] = &[
    (
        "Characterize",
        "Static Analysis",
        "CORE",
        "File identification: hashes, libmagic type and MIME",
    ),
    (
        "Strings",
        "Static Analysis",
        "CORE",
        "Printable strings and embedded URLs",
    ),
    (
        "YARA",
        "Static Analysis",
        "CORE",
        "YARA rules (yara-x): the starter set and the operator's rule directories",
    ),
    (
        "Signatures",
        "Static Analysis",
        "POST",
        "nestbox signatures evaluated over the analysis report",
    ),
    (
        "Sandbox",
        "Dynamic Analysis",
        "CORE",
        "Detonation: processes and network activity",
    ),
];

fn tag(ty: &str, value: &str) -> Value {
    let short = ty.rsplit('.').next().unwrap_or(ty);
    json!({"type": ty, "value": value, "short_type": short, "safelisted": false, "classification": C12N})
}

/// AL's `cert.*` tags (as its PE service sets them) for the Authenticode certificates
/// of CAPE's `digital_signers`.
fn cert_tags(signers: &Value) -> Vec<Value> {
    // Distinguished names in RFC 4514 order of the usual attributes.
    const DN: &[(&str, &str)] = &[
        ("commonName", "CN"),
        ("organizationalUnitName", "OU"),
        ("organizationName", "O"),
        ("localityName", "L"),
        ("stateOrProvinceName", "ST"),
        ("countryName", "C"),
    ];
    let dn = |c: &Value, prefix: &str| -> String {
        DN.iter()
            .filter_map(|(long, short)| {
                c[format!("{prefix}_{long}")]
                    .as_str()
                    .map(|v| format!("{short}={v}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for c in signers.as_array().into_iter().flatten() {
        for (ty, v) in [
            (
                "cert.thumbprint",
                c["sha1_fingerprint"].as_str().map(str::to_owned),
            ),
            (
                "cert.serial_no",
                c["serial_number"].as_str().map(str::to_owned),
            ),
            (
                "cert.subject",
                Some(dn(c, "subject")).filter(|s| !s.is_empty()),
            ),
            (
                "cert.issuer",
                Some(dn(c, "issuer")).filter(|s| !s.is_empty()),
            ),
            (
                "cert.valid.start",
                c["not_before"].as_str().map(str::to_owned),
            ),
            ("cert.valid.end", c["not_after"].as_str().map(str::to_owned)),
        ] {
            if let Some(v) = v {
                out.push(tag(ty, &v));
            }
        }
    }
    out
}

fn section(
    title: &str,
    body: Value,
    format: &str,
    heuristic: Option<Value>,
    tags: Vec<Value>,
) -> Value {
    json!({
        "title_text": title,
        "body": body,
        "body_format": format,
        "body_config": {},
        "depth": 0,
        "classification": C12N,
        "auto_collapse": false,
        "promote_to": null,
        "heuristic": heuristic,
        "tags": tags,
        "safelisted_tags": {},
        "zeroize_on_tag_safe": false,
    })
}

fn heuristic(id: &str, name: &str, score: i64, sigs: &[String]) -> Value {
    json!({
        "heur_id": id,
        "name": name,
        "score": score,
        "attack": [],
        "signature": sigs.iter().map(|s| json!({"name": s, "frequency": 1, "safe": false})).collect::<Vec<_>>(),
    })
}

/// The Assemblyline tag type of each kind in the report's `iocs` section (hashes have no
/// static tag type; they stay in the section body).
const IOC_TAGS: &[(&str, &str)] = &[
    ("urls", "network.static.uri"),
    ("domains", "network.static.domain"),
    ("ipv4", "network.static.ip"),
    ("ipv6", "network.static.ip"),
    ("emails", "network.email.address"),
    ("registry_keys", "dynamic.registry_key"),
    ("file_paths", "file.path"),
];

/// The "Static indicators" section: the report's `iocs` as a JSON body, tagged.
fn indicator_section(iocs: &Value) -> Option<Value> {
    let obj = iocs.as_object()?;
    let non_empty: Map<String, Value> = obj
        .iter()
        .filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if non_empty.is_empty() {
        return None;
    }
    let mut tags = Vec::new();
    for (kind, ty) in IOC_TAGS {
        for v in obj
            .get(*kind)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = v.as_str() {
                tags.push(tag(ty, v));
            }
        }
    }
    Some(section(
        "Static indicators",
        Value::Object(non_empty),
        "JSON",
        None,
        tags,
    ))
}

/// The host of a URL (no user info, no port).
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// The heuristic of a YARA rule group (AL's YARA service: implant 1000, exploit/tool 500,
/// technique 100, info 0). The group is the rule's `category` metadata as in AL's rule
/// sets, else read from its tags (the starter rules tag `webshell`, `packer`, `dropper`…).
fn yara_group(m: &Value) -> (&'static str, &'static str, i64) {
    let tags: Vec<&str> = m["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let category = m["meta"]["category"].as_str().unwrap_or("");
    let has = |names: &[&str]| {
        names
            .iter()
            .any(|n| category.eq_ignore_ascii_case(n) || tags.iter().any(|t| t == n))
    };
    if has(&["implant", "malware", "webshell"]) {
        ("YARA.1", "Implant", 1000)
    } else if has(&["exploit"]) {
        ("YARA.2", "Exploit", 500)
    } else if has(&["tool"]) {
        ("YARA.3", "Tool", 500)
    } else if has(&[
        "technique",
        "suspicious",
        "dropper",
        "packer",
        "protector",
        "macro",
    ]) {
        ("YARA.4", "Technique", 100)
    } else {
        ("YARA.5", "Info", 0)
    }
}

/// One section per matching rule, its metadata as the body, tagged `file.rule.yara`.
fn yara_sections(matches: &Value) -> Vec<Value> {
    let Some(list) = matches.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| {
            let name = m["name"].as_str()?;
            let (id, group, score) = yara_group(m);
            Some(section(
                &format!("[{group}] {name}"),
                m["meta"].clone(),
                "KEY_VALUE",
                Some(heuristic(id, group, score, &[name.to_owned()])),
                vec![tag("file.rule.yara", name)],
            ))
        })
        .collect()
}

/// The Assemblyline file type of a libmagic description / MIME.
pub fn al_type(magic: &str, mime: &str) -> String {
    let m = magic.to_ascii_lowercase();
    let t = if m.starts_with("pe32+") {
        "executable/windows/pe64"
    } else if m.starts_with("pe32") {
        if m.contains("dll") {
            "executable/windows/dll32"
        } else {
            "executable/windows/pe32"
        }
    } else if m.starts_with("elf 64") {
        "executable/linux/elf64"
    } else if m.starts_with("elf 32") {
        "executable/linux/elf32"
    } else if m.starts_with("zip") || mime == "application/zip" {
        "archive/zip"
    } else if m.starts_with("pdf") {
        "document/pdf"
    } else if m.starts_with("uri") {
        "uri/http"
    } else if mime.starts_with("text/") || m.contains("text") {
        "text/plain"
    } else if m == "empty" {
        "empty"
    } else {
        "unknown"
    };
    t.to_owned()
}

/// The results of the analysis of one file, derived from its task and report.
pub fn derive(sha256: &str, task: Option<&Task>, report: Option<&Value>) -> Results {
    let mut out = Results::default();
    let v = version_key();
    let ver = env!("CARGO_PKG_VERSION");
    if let Some(task) = task {
        for (i, e) in task.errors.iter().enumerate() {
            let key = format!("{sha256}.Sandbox.v{v}.c{i}.e1");
            out.errors.push((
                key,
                json!({
                    "created": iso(task.completed_on.unwrap_or(task.added_on)),
                    "sha256": sha256, "type": "EXCEPTION", "severity": "MAJOR",
                    "archive_ts": null, "expiry_ts": null,
                    "response": {"service_name": "Sandbox", "service_version": ver,
                        "service_tool_version": "", "service_debug_info": null,
                        "status": "FAIL_NONRECOVERABLE", "message": e},
                }),
            ));
        }
    }
    let Some(r) = report else {
        return out;
    };
    let task_time = result_time(task, r).map(iso).unwrap_or_default();
    let file = &r["target"]["file"];
    let magic = file["type"].as_str().unwrap_or("");
    let mime = file["mime"].as_str().unwrap_or("");
    let size = file["size"].as_i64().unwrap_or(0);
    let ftype = if r["target"]["category"] == "url" {
        "uri/http".to_owned()
    } else {
        al_type(magic, mime)
    };
    let mut push = |svc: &str, sections: Vec<Value>| {
        let score: i64 = sections
            .iter()
            .map(|s| s["heuristic"]["score"].as_i64().unwrap_or(0))
            .sum();
        let key = format!("{sha256}.{svc}.v{v}.c0");
        out.results.push((
            key,
            json!({
                "classification": C12N, "created": task_time, "expiry_ts": null,
                "sha256": sha256, "type": ftype, "size": size,
                "drop_file": false, "partial": false, "from_archive": false, "archive_ts": null,
                "response": {
                    "service_name": svc, "service_version": ver, "service_tool_version": "",
                    "service_context": null, "service_debug_info": null,
                    "milestones": {"service_started": task_time, "service_completed": task_time},
                    "extracted": [], "supplementary": [],
                },
                "result": {"score": score, "sections": sections},
            }),
        ));
    };
    // Characterize.
    let mut kv = Map::new();
    for k in [
        "type", "mime", "size", "md5", "sha1", "sha256", "ssdeep", "tlsh", "crc32",
    ] {
        if !file[k].is_null() {
            kv.insert(k.into(), file[k].clone());
        }
    }
    let mut tags = Vec::new();
    if let Some(imp) = file["pe"]["imphash"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(r["static"]["pe"]["imphash"].as_str())
        .or(r["static"]["imphash"].as_str())
    {
        tags.push(tag("file.pe.imports.imphash", imp));
    }
    tags.extend(cert_tags(&file["pe"]["digital_signers"]));
    push(
        "Characterize",
        vec![section(
            "File identification",
            Value::Object(kv),
            "KEY_VALUE",
            None,
            tags,
        )],
    );
    // Strings.
    let strings = r["strings"].as_array().map_or(0, Vec::len);
    let urls: Vec<&str> = file["urls"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut secs = vec![section(
        &format!("{strings} printable strings"),
        json!(""),
        "TEXT",
        None,
        vec![],
    )];
    if !urls.is_empty() {
        let mut tags: Vec<Value> = urls.iter().map(|u| tag("network.static.uri", u)).collect();
        let mut domains: Vec<&str> = urls.iter().filter_map(|u| host_of(u)).collect();
        domains.sort_unstable();
        domains.dedup();
        for d in domains {
            let ty = if d.parse::<std::net::IpAddr>().is_ok() {
                "network.static.ip"
            } else {
                "network.static.domain"
            };
            tags.push(tag(ty, d));
        }
        secs.push(section(
            "Embedded URLs",
            json!(urls.join("\n")),
            "TEXT",
            Some(heuristic("STRINGS.1", "Embedded URL", 10, &[])),
            tags,
        ));
    }
    if let Some(sec) = indicator_section(&r["iocs"]) {
        secs.push(sec);
    }
    push("Strings", secs);
    // YARA.
    let yara = yara_sections(&file["yara"]);
    if !yara.is_empty() {
        push("YARA", yara);
    }
    // Signatures.
    if let Some(sigs) = r["signatures"].as_array().filter(|s| !s.is_empty()) {
        let secs = sigs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s["name"].as_str().unwrap_or("signature");
                let score = match s["severity"].as_i64().unwrap_or(1) {
                    ..=1 => 100,
                    2 => 500,
                    _ => 1000,
                };
                section(
                    s["description"].as_str().unwrap_or(name),
                    json!(s["description"]),
                    "TEXT",
                    Some(heuristic(
                        &format!("SIGNATURES.{}", i + 1),
                        name,
                        score,
                        &[name.to_owned()],
                    )),
                    vec![],
                )
            })
            .collect();
        push("Signatures", secs);
    }
    // Sandbox.
    let procs = r["behavior"]["processes"].as_array().map_or(0, Vec::len);
    let hosts: Vec<String> = r["network"]["hosts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| {
                    h.as_str()
                        .map(str::to_owned)
                        .or(h["ip"].as_str().map(str::to_owned))
                })
                .collect()
        })
        .unwrap_or_default();
    let domains: Vec<String> = r["network"]["domains"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["domain"].as_str().or(d.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if procs > 0 || !hosts.is_empty() || !domains.is_empty() {
        let mut secs = vec![section(
            &format!("{procs} processes"),
            json!(""),
            "TEXT",
            None,
            vec![],
        )];
        if !hosts.is_empty() || !domains.is_empty() {
            let mut tags: Vec<Value> = hosts.iter().map(|h| tag("network.dynamic.ip", h)).collect();
            tags.extend(domains.iter().map(|d| tag("network.dynamic.domain", d)));
            secs.push(section("Network activity", json!(""), "TEXT", None, tags));
        }
        push("Sandbox", secs);
    }
    out
}

/// The search index of the Results of a report (`search/result/`): one entry per Result,
/// with the values a query can name, lower-cased, under Assemblyline's field names
/// (`response.service_name`, `result.score`, `result.sections.heuristic.heur_id`,
/// `result.sections.tags.<tag type>`, …). Empty when the report names no file or URL,
/// so there is no `sha256` to key the Results by.
pub fn index_entries(report: &Value) -> Vec<AlResultEntry> {
    let target = &report["target"];
    let sha256 = match (target["file"]["sha256"].as_str(), target["url"].as_str()) {
        (Some(s), _) if target["category"] != "url" => s.to_owned(),
        (_, Some(u)) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(uri_file(u))),
        (Some(s), None) => s.to_owned(),
        (None, None) => return Vec::new(),
    };
    let created = result_time(None, report).unwrap_or(Timestamp(0));
    derive(&sha256, None, Some(report))
        .results
        .into_iter()
        .map(|(key, v)| {
            let mut fields = Fields::default();
            for k in [
                "classification",
                "sha256",
                "type",
                "size",
                "drop_file",
                "created",
            ] {
                fields.value(k, &v[k]);
            }
            fields.add("id", &key);
            let resp = &v["response"];
            for k in ["service_name", "service_version", "service_tool_version"] {
                fields.value(&format!("response.{k}"), &resp[k]);
            }
            fields.value("result.score", &v["result"]["score"]);
            for sec in v["result"]["sections"].as_array().into_iter().flatten() {
                fields.value("result.sections.title_text", &sec["title_text"]);
                if let Some(body) = sec["body"].as_str() {
                    fields.add("result.sections.body", body);
                }
                let h = &sec["heuristic"];
                for k in ["heur_id", "name", "score"] {
                    fields.value(&format!("result.sections.heuristic.{k}"), &h[k]);
                }
                for s in h["signature"].as_array().into_iter().flatten() {
                    fields.value("result.sections.heuristic.signature.name", &s["name"]);
                }
                for t in sec["tags"].as_array().into_iter().flatten() {
                    if let Some(ty) = t["type"].as_str() {
                        fields.value(&format!("result.sections.tags.{ty}"), &t["value"]);
                    }
                }
            }
            AlResultEntry {
                key,
                sha256: sha256.clone(),
                service: resp["service_name"].as_str().unwrap_or("").to_owned(),
                score: v["result"]["score"].as_i64().unwrap_or(0),
                created,
                file_type: v["type"].as_str().unwrap_or("").to_owned(),
                size: v["size"].as_i64().unwrap_or(0),
                fields: fields.0.into_iter().collect(),
            }
        })
        .collect()
}

/// Lower-cases a query value the way indexed values are stored.
pub fn normalize(s: &str) -> String {
    s.to_lowercase()
}

#[derive(Default)]
struct Fields(std::collections::BTreeSet<(String, String)>);

impl Fields {
    fn add(&mut self, field: &str, value: &str) {
        if value.is_empty() || value.len() > MAX_VALUE_LEN || self.0.len() >= MAX_FIELDS {
            return;
        }
        self.0.insert((field.to_owned(), normalize(value)));
    }

    /// Scalars as the search flattens them: strings as they are, numbers and booleans
    /// in their JSON text.
    fn value(&mut self, field: &str, v: &Value) {
        match v {
            Value::String(s) => self.add(field, s),
            Value::Number(_) | Value::Bool(_) => self.add(field, &v.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        json!({
            "info": {"ended": 1_700_000_000.5},
            "target": {"category": "file", "file": {"sha256": "ab".repeat(32), "type": "PE32 executable (GUI) Intel 80386, for MS Windows",
                "mime": "application/x-dosexec", "size": 10, "urls": ["http://Evil.example.com/x"]}},
            "iocs": {"urls": ["http://a.example.com/x"], "domains": ["a.example.com"],
                     "ipv4": ["10.1.2.3"], "emails": ["x@example.com"],
                     "registry_keys": ["HKCU\\Software\\Run"], "file_paths": ["C:\\a.exe"],
                     "md5": ["d41d8cd98f00b204e9800998ecf8427e"], "sha1": []},
            "signatures": [{"name": "creates_exe", "severity": 3, "description": "Creates an EXE"}],
        })
    }

    #[test]
    fn yara_matches_become_a_yara_result() {
        let report = json!({"target": {"file": {"yara": [
            {"name": "EICAR_Test_File", "meta": {"description": "EICAR"}, "tags": ["test"]},
            {"name": "UPX_Packed", "meta": {}, "tags": ["packer"]},
            {"name": "Shell", "meta": {"category": "implant"}, "tags": []},
        ]}}});
        let r = derive("ab", None, Some(&report));
        let (key, res) = r
            .results
            .iter()
            .find(|(k, _)| k.contains(".YARA."))
            .expect("a YARA result");
        assert!(key.starts_with("ab.YARA.v"), "{key}");
        assert_eq!(res["response"]["service_name"], "YARA");
        let secs = res["result"]["sections"].as_array().unwrap();
        let got: Vec<(&str, i64, &str)> = secs
            .iter()
            .map(|s| {
                (
                    s["title_text"].as_str().unwrap(),
                    s["heuristic"]["score"].as_i64().unwrap(),
                    s["tags"][0]["value"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("[Info] EICAR_Test_File", 0, "EICAR_Test_File"),
                ("[Technique] UPX_Packed", 100, "UPX_Packed"),
                ("[Implant] Shell", 1000, "Shell"),
            ]
        );
        assert_eq!(secs[0]["tags"][0]["type"], "file.rule.yara");
        assert_eq!(secs[0]["body"]["description"], "EICAR");
        assert_eq!(res["result"]["score"], 1100);
        // No matches, no YARA result.
        let none = derive("ab", None, Some(&json!({"target": {"file": {"yara": []}}})));
        assert!(!none.results.iter().any(|(k, _)| k.contains(".YARA.")));
    }

    #[test]
    fn index_entries_follow_the_derived_results() {
        let r = report();
        let entries = index_entries(&r);
        let derived = derive(&"ab".repeat(32), None, Some(&r));
        assert_eq!(entries.len(), derived.results.len());
        for (e, (key, v)) in entries.iter().zip(&derived.results) {
            assert_eq!(&e.key, key);
            assert_eq!(e.score, v["result"]["score"].as_i64().unwrap());
            assert_eq!(iso(e.created), v["created"].as_str().unwrap());
            assert_eq!(e.file_type, "executable/windows/pe32");
            assert!(e.fields.contains(&("id".into(), key.to_lowercase())));
        }
        let sigs = entries.iter().find(|e| e.service == "Signatures").unwrap();
        assert_eq!(sigs.score, 1000);
        for f in [
            ("result.sections.heuristic.heur_id", "signatures.1"),
            ("result.sections.heuristic.signature.name", "creates_exe"),
            ("response.service_name", "signatures"),
            ("result.score", "1000"),
        ] {
            assert!(sigs.fields.contains(&(f.0.into(), f.1.into())), "{f:?}");
        }
        let strings = entries.iter().find(|e| e.service == "Strings").unwrap();
        for f in [
            (
                "result.sections.tags.network.static.domain",
                "evil.example.com",
            ),
            ("result.sections.tags.network.static.ip", "10.1.2.3"),
            (
                "result.sections.tags.network.static.uri",
                "http://evil.example.com/x",
            ),
        ] {
            assert!(strings.fields.contains(&(f.0.into(), f.1.into())), "{f:?}");
        }
    }

    #[test]
    fn url_results_are_keyed_by_the_uri_file() {
        let r = json!({"target": {"category": "url", "url": "http://x.test/"}, "info": {}});
        let e = index_entries(&r);
        let want = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"uri: http://x.test/\n",
        ));
        assert!(!e.is_empty());
        assert!(
            e.iter()
                .all(|e| e.sha256 == want && e.key.starts_with(&want))
        );
        assert!(index_entries(&json!({"target": {"category": "file"}})).is_empty());
    }

    #[test]
    fn hostile_values_are_bounded() {
        let mut r = report();
        r["iocs"]["urls"] = json!(
            (0..5000)
                .map(|i| format!("http://h{i}.test/"))
                .collect::<Vec<_>>()
        );
        r["iocs"]["domains"] = json!(["x".repeat(100_000)]);
        for e in index_entries(&r) {
            assert!(e.fields.len() <= MAX_FIELDS);
            assert!(e.fields.iter().all(|(_, v)| v.len() <= MAX_VALUE_LEN));
        }
    }
}
