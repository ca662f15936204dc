//! `[web]`: the web UI (nestbox-web).

use serde::{Deserialize, Serialize};

/// `[web]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Require a login for every page (the same users as the APIs: `nestbox user add`).
    /// Default false: the UI is open, like the APIs without tokens.
    pub auth: bool,
    /// Mark the session and CSRF cookies `Secure`; turn on when the UI is served over HTTPS
    /// (directly or behind a proxy). Default false (a plain-HTTP loopback UI could not log
    /// in with it on).
    pub secure_cookies: bool,
    /// How long a login lasts, in hours. Default 12.
    pub session_hours: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            auth: false,
            secure_cookies: false,
            session_hours: 12,
        }
    }
}

impl WebConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if self.session_hours == 0 {
            problems.push("web.session_hours must be at least 1".to_owned());
        }
    }
}
