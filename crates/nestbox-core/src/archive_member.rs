//! Static triage of one archive member: the `archive` task category.
//!
//! Cuckoo's `tasks/create/submit` turns every runnable member of an archive into its own
//! task (`category=archive`, `options.filename` = the member's path inside the archive),
//! all sharing the submission. Such a task's report describes the member, with the
//! archive beside it: `target = {category: "archive", filename, archive: FileInfo, file:
//! FileInfo, human: "<member> @ <archive>"}` (Cuckoo's targetinfo for archives).

use std::io::Write;
use std::path::Path;

use nestbox_types::report::Report;

use crate::pipeline::{self, StaticSettings};

/// Triage of the archive at `path`, then of its member `member` (as named by
/// [`nestbox_analyzers::unpack`], the name `tasks/create/submit` stored), which becomes
/// the report's target file. A member that cannot be found or extracted is an error entry
/// and the report describes the archive alone.
pub fn triage_member(
    report: &mut Report,
    path: &Path,
    name: &str,
    member: &str,
    expected_sha256: Option<&str>,
    settings: &StaticSettings,
) {
    pipeline::triage_file(report, path, name, expected_sha256, settings);
    report.target.category = "archive".to_owned();
    let data = match read_limited(path, settings.max_document as u64) {
        Ok(d) => d,
        Err(e) => {
            report
                .debug
                .errors
                .push(format!("cannot read the archive: {e}"));
            return;
        }
    };
    let passwords = pipeline::archive_passwords(&report.info.options, settings);
    let unpacked = nestbox_analyzers::unpack::unpack(&data, name, &passwords, &settings.unpack);
    drop(data);
    let Some(found) = unpacked
        .members
        .into_iter()
        .find(|m| m.name == member || m.original == member)
    else {
        report.debug.errors.push(format!(
            "archive member {member:?} not found or not extractable"
        ));
        return;
    };
    let base = found.name.rsplit('/').next().unwrap_or("member").to_owned();
    let temp = match write_temp(&found.data) {
        Ok(t) => t,
        Err(e) => {
            report
                .debug
                .errors
                .push(format!("cannot stage the member: {e}"));
            return;
        }
    };
    drop(found);
    let mut inner = report.clone();
    inner.static_analysis.clear();
    inner.strings.clear();
    inner.iocs.clear();
    pipeline::triage_file(&mut inner, temp.path(), &base, None, settings);
    let archive_info = report.target.file.take();
    let archive_static = report.static_analysis.remove("archive");
    report.target.file = inner.target.file;
    if let Some(f) = report.target.file.as_mut() {
        // The staged copy is gone after this; the member lives inside the archive.
        f.path = format!("{}/{}", path.display(), member);
    }
    report.target.filename = Some(member.to_owned());
    report.target.human = Some(format!("{member} @ {name}"));
    report.target.archive = archive_info;
    report.static_analysis = inner.static_analysis;
    if let Some(a) = archive_static {
        report.static_analysis.insert("archive".into(), a);
    }
    report.strings = inner.strings;
    report.iocs = inner.iocs;
    report.debug.errors = inner.debug.errors;
}

fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

fn write_temp(data: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut t = tempfile::NamedTempFile::new()?;
    t.write_all(data)?;
    t.flush()?;
    Ok(t)
}
