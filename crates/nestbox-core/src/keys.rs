//! Blob key layout. Every blob the server writes is named here, so the layout is one
//! place to read (and one to change when S3 prefixes need tuning).
//!
//! ```text
//! store/ab/cd/<sha256>                      sample content, content-addressed
//! analyses/<task id>/reports/report.json    canonical report (Cuckoo jsondump form)
//! analyses/<task id>/reports/report.html    single-file HTML report
//! analyses/<task id>/task.json              the task row at analysis time
//! analyses/<task id>/{dump.pcap,shots/,files/,memory/,logs/}   detonation artifacts
//! ```
//! The `analyses/<id>/` folder is Cuckoo's analysis folder layout (spec cuckoo.md §4), so
//! `tasks/report/<id>/all` is a tar of one prefix.

use nestbox_types::TaskId;

/// Key of a sample's content.
pub fn sample(sha256: &str) -> String {
    let a = sha256.get(0..2).unwrap_or("00");
    let b = sha256.get(2..4).unwrap_or("00");
    format!("store/{a}/{b}/{sha256}")
}

/// Prefix of a task's analysis folder, with a trailing slash.
pub fn analysis(id: TaskId) -> String {
    format!("analyses/{id}/")
}

/// Key of a file inside a task's analysis folder.
pub fn analysis_file(id: TaskId, rel: &str) -> String {
    format!("analyses/{id}/{rel}")
}

/// The canonical report.
pub fn report_json(id: TaskId) -> String {
    analysis_file(id, "reports/report.json")
}

/// The HTML report.
pub fn report_html(id: TaskId) -> String {
    analysis_file(id, "reports/report.html")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample_key_is_sharded() {
        let k = super::sample("c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9");
        assert_eq!(
            k,
            "store/c6/03/c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9"
        );
        assert_eq!(super::sample("a"), "store/00/00/a");
    }
}
