//! `[logging]`: how the server logs (to stderr, where systemd's journal or a container
//! runtime collects it).
//!
//! `format = "json"` writes one JSON object per line with the event's fields at the top
//! level and the fields of the spans it happened in under `span`/`spans`: every event of
//! an analysis carries `task_id` (and `worker`, `machine`), so a log pipeline can follow
//! one task across API and worker nodes.

use serde::{Deserialize, Serialize};

/// `[logging]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `text` (default): human-readable lines; `json`: one JSON object per line.
    pub format: String,
    /// Filter directives (`info`, `info,nestbox_worker=debug`). Default `info,sqlx=warn`.
    /// The `NESTBOX_LOG` environment variable, when set, wins.
    pub filter: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            format: "text".into(),
            filter: "info,sqlx=warn".into(),
        }
    }
}

impl LoggingConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if !matches!(self.format.as_str(), "text" | "json") {
            problems.push(format!(
                "logging.format {:?}: expected \"text\" or \"json\"",
                self.format
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.filter).is_err() {
            problems.push(format!(
                "logging.filter {:?} is not a valid filter",
                self.filter
            ));
        }
    }

    /// Installs the global subscriber (once, at start-up).
    pub fn init(&self) {
        use std::io::IsTerminal;
        let filter = tracing_subscriber::EnvFilter::try_from_env("NESTBOX_LOG")
            .or_else(|_| tracing_subscriber::EnvFilter::try_new(&self.filter))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        if self.format == "json" {
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .init();
        } else {
            builder.with_ansi(std::io::stderr().is_terminal()).init();
        }
    }
}
