//! The single-file HTML report (Cuckoo's `singlefile` reporting module), rendered from the
//! canonical report with a Jinja2 template so operators who know Cuckoo's templates feel at
//! home. Everything is inline: no CDN, no scripts needed to read it, safe to open offline.

use minijinja::{AutoEscape, Environment};
use nestbox_types::report::Report;

const TEMPLATE: &str = include_str!("templates/report.html.j2");

/// Renders the report as one self-contained HTML page. All report text is HTML-escaped:
/// strings from a sample are hostile input.
pub fn render(report: &Report) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("report.html", TEMPLATE)?;
    let tmpl = env.get_template("report.html")?;
    tmpl.render(minijinja::context! { r => minijinja::value::Serde(report) })
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
            url: None,
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
