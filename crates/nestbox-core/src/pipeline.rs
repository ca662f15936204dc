//! The static stage of an analysis: sample file → report sections.
//!
//! Pure and synchronous: the worker runs it on a blocking thread with a timeout. Hostile
//! input is the normal case, so nothing here fails the analysis: a problem becomes an entry
//! in `debug.errors` and the rest of the report is still produced.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use nestbox_analyzers::StringsOptions;
use nestbox_analyzers::unpack::UnpackLimits;
use nestbox_types::report::{FileInfo, Report, Target, YaraMatch};
use nestbox_types::{Category, Task};

use crate::rule_scan::RuleScanner;

/// The static stage reads at most this much of a file (YARA, executable parsers); a larger
/// file is analysed on its head and the report says so. Uploads are far smaller by default.
pub const MAX_STATIC_BYTES: u64 = 512 * 1024 * 1024;

/// Settings of the static stage.
#[derive(Debug, Clone)]
pub struct StaticSettings {
    /// Server version written to `info.version`.
    pub version: String,
    /// String extraction limits.
    pub strings: StringsOptions,
    /// Largest file the document parsers (Office, PDF, RTF, LNK, scripts) and the
    /// archive unpacker read whole.
    pub max_document: usize,
    /// Archive passwords tried after the task's own `password=` option.
    pub archive_passwords: Vec<String>,
    /// Bomb limits of the archive unpacker.
    pub unpack: UnpackLimits,
    /// YARA scanning of the sample and of dropped files; `None` = no rule scan.
    pub rules: Option<Arc<dyn RuleScanner>>,
}

impl Default for StaticSettings {
    fn default() -> Self {
        Self {
            version: String::new(),
            strings: StringsOptions::default(),
            max_document: 64 * 1024 * 1024,
            archive_passwords: vec!["infected".to_owned()],
            unpack: UnpackLimits::default(),
            rules: None,
        }
    }
}

/// Builds the report skeleton for a task: `info` and `target` from the task row, every
/// other section in its empty shape.
pub fn skeleton(task: &Task, version: &str) -> Report {
    let mut report = Report::default();
    let info = &mut report.info;
    info.id = task.id.0;
    info.version = version.to_owned();
    info.category = task.spec.category.as_str().to_owned();
    info.package = task.spec.package.clone();
    info.platform = Some(task.spec.platform.clone()).filter(|p| !p.is_empty());
    info.options = task.spec.options.emit();
    info.custom = task.spec.custom.clone();
    info.parent_id = task.spec.parent_id.map(|p| p.0);
    // CAPE's value for a task without an archive behind it; the worker fills in the
    // archive's record for demuxed members (`sample_record`).
    info.parent_sample = serde_json::Value::Bool(false);
    info.owner = task.spec.owner.clone();
    info.route = task.spec.route.clone().unwrap_or_else(|| "none".to_owned());
    info.timeout = task.spec.timeout;
    info.added = Some(task.added_on.epoch_f64());
    info.started = task.started_on.map(|t| t.epoch_f64());
    report.target = match task.spec.category {
        Category::Url => Target {
            category: "url".to_owned(),
            file: None,
            url: Some(task.spec.target.clone()),
            ..Target::default()
        },
        c => Target {
            category: c.as_str().to_owned(),
            file: None,
            ..Target::default()
        },
    };
    report.malstatus = Report::malstatus_for(0.0).to_owned();
    report
}

/// How long each analyzer of [`triage_file`] took, in the order they ran (for metrics).
pub type Timings = Vec<(&'static str, std::time::Duration)>;

/// Lap times of the analyzers of one triage: [`Laps::lap`] after each analyzer records
/// the time since the previous lap under that analyzer's name.
struct Laps {
    last: std::time::Instant,
    timings: Timings,
}

impl Laps {
    fn start() -> Self {
        Laps {
            last: std::time::Instant::now(),
            timings: Timings::new(),
        }
    }

    fn lap(&mut self, analyzer: &'static str) {
        let now = std::time::Instant::now();
        self.timings.push((analyzer, now - self.last));
        self.last = now;
    }
}

/// Static triage of a file: identity, type, strings and URLs, written into `report`;
/// returns the analyzers' timings.
///
/// `expected_sha256` is the sample's recorded identity: a mismatch means the stored content
/// changed under us, which Cuckoo treats as fatal for the analysis; here it is recorded as
/// an error and the report describes what is actually on disk.
pub fn triage_file(
    report: &mut Report,
    path: &Path,
    name: &str,
    expected_sha256: Option<&str>,
    settings: &StaticSettings,
) -> Timings {
    let mut laps = Laps::start();
    // The file is read once: hashed from memory when it fits the static pass's limit
    // (every sample but a giant one), streamed through the hashes otherwise.
    let read = read_head(path, MAX_STATIC_BYTES).and_then(|data| {
        let digest = if (data.len() as u64) < MAX_STATIC_BYTES {
            nestbox_analyzers::digest_bytes(&data)
        } else {
            nestbox_analyzers::digest_file(path)?
        };
        Ok((data, digest))
    });
    let (data, digest) = match read {
        Ok(r) => r,
        Err(e) => {
            report
                .debug
                .errors
                .push(format!("cannot read the sample: {e}"));
            return laps.timings;
        }
    };
    laps.lap("hashes");
    if let Some(want) = expected_sha256.filter(|w| *w != digest.sha256) {
        report.debug.errors.push(format!(
            "sample content changed: expected sha256 {want}, found {}",
            digest.sha256
        ));
    }
    let ft = nestbox_analyzers::file_type_path(path);
    laps.lap("filetype");
    if digest.size > MAX_STATIC_BYTES {
        report.debug.errors.push(format!(
            "the sample is larger than {MAX_STATIC_BYTES} bytes: only its head was analysed"
        ));
    }
    let text = nestbox_analyzers::iocs::text_findings(&data, &settings.strings);
    report.strings = text.strings;
    let urls = text.urls;
    laps.lap("strings");
    static_documents(report, &data, digest.size, name, text.iocs, settings);
    laps.lap("documents");
    let yara = scan_rules(&data, settings, &mut report.debug.errors);
    let exe = nestbox_analyzers::executable::analyze(&data);
    report.static_analysis.extend(exe.static_section);
    report.target.file = Some(FileInfo {
        name: name.to_owned(),
        path: path.to_string_lossy().into_owned(),
        size: digest.size,
        crc32: digest.crc32,
        md5: digest.md5,
        sha1: digest.sha1,
        sha256: digest.sha256,
        sha512: digest.sha512,
        ssdeep: Some(digest.ssdeep),
        tlsh: digest.tlsh,
        file_type: ft.description,
        mime: ft.mime,
        urls,
        yara,
        pe: exe.pe,
        ..FileInfo::default()
    });
    laps.timings
}

/// Documents, scripts and indicators: `static.{office,pdf,rtf,lnk,script}` and `iocs`.
fn static_documents(
    report: &mut Report,
    data: &[u8],
    size: u64,
    name: &str,
    mut iocs: nestbox_analyzers::iocs::Iocs,
    settings: &StaticSettings,
) {
    let doc = if size <= settings.max_document as u64 {
        nestbox_analyzers::documents::analyze(data, name)
    } else {
        report.debug.errors.push(format!(
            "document parsers skipped: {size} bytes is over the {} byte limit",
            settings.max_document
        ));
        Default::default()
    };
    report.static_analysis.extend(doc.sections);
    report.debug.errors.extend(doc.errors);
    if size <= settings.max_document as u64 && nestbox_analyzers::unpack::format_of(data).is_some()
    {
        let passwords = archive_passwords(&report.info.options, settings);
        let unpacked = nestbox_analyzers::unpack::unpack(data, name, &passwords, &settings.unpack);
        let mut section = unpacked.section();
        // YARA runs on what the archive holds too (the server also makes each member a
        // child task; offline, `nestbox analyze` has only this): each member entry gets
        // its matches in `target.file.yara`'s shape.
        if settings.rules.is_some()
            && let Some(members) = section
                .get_mut("members")
                .and_then(serde_json::Value::as_array_mut)
        {
            for (entry, member) in members.iter_mut().zip(&unpacked.members) {
                let yara = scan_rules(&member.data, settings, &mut report.debug.errors);
                entry["yara"] = serde_json::to_value(yara).unwrap_or_default();
            }
        }
        report.static_analysis.insert("archive".into(), section);
    }
    iocs.merge(&doc.iocs);
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&iocs) {
        report.iocs = m;
    }
}

/// The task's `password=` option (from `info.options`, Cuckoo's `k=v,…` string), then the
/// configured list.
pub fn archive_passwords(options: &str, settings: &StaticSettings) -> Vec<String> {
    let mut out: Vec<String> = options
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, v)| k.trim() == "password" && !v.is_empty())
        .map(|(_, v)| v.to_owned())
        .collect();
    for p in &settings.archive_passwords {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// YARA matches for `data` with the configured rules (none without rules). A scan that
/// fails (timeout) is an entry in `errors`, and the file simply has no matches.
pub fn scan_rules(
    data: &[u8],
    settings: &StaticSettings,
    errors: &mut Vec<String>,
) -> Vec<YaraMatch> {
    let Some(rules) = &settings.rules else {
        return Vec::new();
    };
    match rules.scan(data) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    }
}

/// The static pass over a file dropped during detonation: YARA matches into its
/// `dropped[]` entry (Cuckoo/CAPE scan dropped files with the same rules).
pub fn scan_dropped(
    info: &mut FileInfo,
    path: &Path,
    settings: &StaticSettings,
    errors: &mut Vec<String>,
) {
    if settings.rules.is_none() {
        return;
    }
    match read_head(path, MAX_STATIC_BYTES) {
        Ok(data) => info.yara = scan_rules(&data, settings, errors),
        Err(e) => errors.push(format!("cannot read the dropped file {}: {e}", info.name)),
    }
}

/// The first `max` bytes of a file.
fn read_head(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let size = f.metadata().map(|m| m.len().min(max)).unwrap_or(0);
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

/// CAPE's `Sample.to_dict()`: exactly `id, file_size, file_type, md5, crc32, sha1,
/// sha256, sha512, ssdeep, source_url`. The report's `info.parent_sample` holds it, and
/// the CAPE API serves samples in it.
pub fn sample_record(s: &nestbox_types::Sample) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "file_size": s.file_size,
        "file_type": s.file_type,
        "md5": s.md5,
        "crc32": s.crc32,
        "sha1": s.sha1,
        "sha256": s.sha256,
        "sha512": s.sha512,
        "ssdeep": s.ssdeep,
        "source_url": null,
    })
}

/// Final scoring: Cuckoo's `info.score` and CAPE's `malscore`/`malstatus` from the hits.
pub fn score(report: &mut Report) {
    report.signatures.sort_by_key(|s| s.severity);
    let score = Report::score_from_signatures(&report.signatures);
    report.info.score = score;
    report.malscore = score;
    report.malstatus = Report::malstatus_for(score).to_owned();
    // CAPE: the family of the most severe hit that names one (sorted ascending above).
    if report.malfamily.is_none() {
        report.malfamily = report
            .signatures
            .iter()
            .rev()
            .find_map(|s| s.families.first().cloned());
    }
}
