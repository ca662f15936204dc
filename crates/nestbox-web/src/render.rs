//! The templates, compiled in, and the single-file report.

use minijinja::{AutoEscape, Environment};
use nestbox_types::report::Report;
use serde::Serialize;

use crate::view::ReportView;

/// The stylesheet, shared by the pages (served) and the single-file report (inlined).
pub(crate) const CSS: &str = include_str!("static/nestbox.css");
/// The script of the pages.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) const JS: &str = include_str!("static/nestbox.js");

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html.j2", include_str!("templates/base.html.j2")),
    (
        "report_body.html.j2",
        include_str!("templates/report_body.html.j2"),
    ),
    (
        "report_standalone.html.j2",
        include_str!("templates/report_standalone.html.j2"),
    ),
    (
        "analysis.html.j2",
        include_str!("templates/analysis.html.j2"),
    ),
    ("queue.html.j2", include_str!("templates/queue.html.j2")),
    ("submit.html.j2", include_str!("templates/submit.html.j2")),
    ("sample.html.j2", include_str!("templates/sample.html.j2")),
    ("status.html.j2", include_str!("templates/status.html.j2")),
    ("login.html.j2", include_str!("templates/login.html.j2")),
    ("error.html.j2", include_str!("templates/error.html.j2")),
];

/// The compiled templates. Every template is HTML-escaped whatever its name: report
/// strings are hostile input.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Compiles the templates (a bug in one panics at start-up, not on a page view).
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                panic!("template {name}: {e:#}");
            }
        }
        Templates { env }
    }

    /// Renders a template with a serialisable context.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// A serialisable value as a template value.
pub fn ser<T: Serialize>(v: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

/// The single-file `report.html` (Cuckoo's `singlefile`): the report page's tabs as
/// sections, the stylesheet inline, no script, no external reference. Its CSP forbids
/// scripts, so even a template bug could not run sample-controlled code.
pub fn render_report_html(report: &Report) -> Result<String, minijinja::Error> {
    let view = ReportView::of(report).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
    })?;
    Templates::new().render(
        "report_standalone.html.j2",
        minijinja::context! {
            r => ser(&view),
            standalone => true,
            css => CSS,
            children => Vec::<()>::new(),
        },
    )
}
