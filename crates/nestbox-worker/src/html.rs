//! The single-file HTML report (Cuckoo's `singlefile` reporting module), rendered from the
//! canonical report with the web UI's own templates (`nestbox-web`, without its HTTP
//! part), so the file and the report page show the same thing. Everything is inline: no
//! CDN, no scripts, safe to open offline.

use nestbox_types::report::Report;

/// Renders the report as one self-contained HTML page. All report text is HTML-escaped:
/// strings from a sample are hostile input.
pub fn render(report: &Report) -> Result<String, nestbox_web::RenderError> {
    nestbox_web::render_report_html(report)
}

#[cfg(test)]
mod tests {
    use nestbox_types::report::{FileInfo, Report, SignatureHit, Target};

    #[test]
    fn renders_and_escapes() {
        let mut r = Report::default();
        r.info.id = 7;
        r.target = Target {
            category: "file".into(),
            file: Some(FileInfo {
                name: "<script>alert(1)</script>.exe".into(),
                sha256: "ab".repeat(32),
                ..Default::default()
            }),
            ..Default::default()
        };
        r.strings = vec!["<img src=x onerror=alert(1)>".into()];
        r.signatures.push(SignatureHit {
            name: "test_sig".into(),
            description: "A test".into(),
            severity: 2,
            ..Default::default()
        });
        let page = super::render(&r).unwrap();
        assert!(page.contains("Task #7"));
        assert!(page.contains(&"ab".repeat(32)));
        assert!(page.contains("test_sig"));
        assert!(!page.contains("<script>alert(1)"));
        assert!(!page.contains("<img src=x"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
