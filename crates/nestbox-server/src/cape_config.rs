//! `[cape]`: the CAPEv2 `/apiv2/` dialect (spec cape.md §2–§4), its users and tokens.
//!
//! `[cape.endpoints]` holds CAPE's `api.conf` switches with CAPE's defaults; a disabled
//! endpoint answers CAPE's "… API is Disabled" envelope.

use std::path::PathBuf;

use anyhow::{Context, bail};
use nestbox_api::{CapeEndpoints, CapeSettings};
use serde::{Deserialize, Serialize};

/// `[cape]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapeConfig {
    /// `api.conf [api] token_auth_enabled`: require `Authorization: Token <key>` on every
    /// `/apiv2/` endpoint. Default false (CAPE's default: everyone is anonymous).
    pub token_auth_enabled: bool,
    /// `api.conf [api] ratelimit`: per-user throttling (the user's `subscription`) when
    /// token auth is on. Default true.
    pub ratelimit: bool,
    /// `api.conf [api] url`: base of the callback `url` in create answers. Default
    /// `http://example.tld` (CAPE's).
    pub url: String,
    /// Version in `X-Cuckoo-Version` and `cuckoo/status`. Default `2.5`.
    pub version: String,
    /// Throttle rate of users created without one (CAPE's `UserProfile.subscription`
    /// default). Default `5/m`; empty = unlimited.
    pub default_subscription: String,
    /// `web.conf max_sample_size` in bytes for CAPE submissions. Default 30 000 000.
    pub max_sample_size: u64,
    /// `web.conf [zipped_download] zip_pwd`. Default `infected`.
    pub zip_pwd: String,
    /// Name of the first admin (staff) created at start-up when there are no users.
    /// Default `admin`.
    pub admin_username: String,
    /// Its password. Empty (default) and no `admin_password_file`: a random password is
    /// generated and printed once to stderr.
    pub admin_password: String,
    /// File to read `admin_password` from. Default unset.
    pub admin_password_file: Option<PathBuf>,
    /// The per-endpoint switches of `api.conf`.
    pub endpoints: CapeEndpoints,
}

impl Default for CapeConfig {
    fn default() -> Self {
        CapeConfig {
            token_auth_enabled: false,
            ratelimit: true,
            url: "http://example.tld".into(),
            version: "2.5".into(),
            default_subscription: "5/m".into(),
            max_sample_size: 30_000_000,
            zip_pwd: "infected".into(),
            admin_username: "admin".into(),
            admin_password: String::new(),
            admin_password_file: None,
            endpoints: CapeEndpoints::default(),
        }
    }
}

impl CapeConfig {
    pub(crate) fn resolve_secrets(&mut self) -> anyhow::Result<()> {
        if let Some(file) = &self.admin_password_file {
            if !self.admin_password.is_empty() {
                bail!("cape.admin_password and cape.admin_password_file are both set; use one");
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading cape.admin_password_file {}", file.display()))?;
            self.admin_password = text.trim_end_matches(['\n', '\r']).to_owned();
        }
        Ok(())
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if !self.default_subscription.is_empty()
            && nestbox_api::cape::parse_rate(&self.default_subscription).is_none()
        {
            problems.push(format!(
                "cape.default_subscription {:?} is not a rate like 5/m",
                self.default_subscription
            ));
        }
        if self.admin_username.trim().is_empty() {
            problems.push("cape.admin_username must not be empty".to_owned());
        }
        if self.endpoints.tasklist_maxlimit < 1 {
            problems.push("cape.endpoints.tasklist_maxlimit must be at least 1".to_owned());
        }
    }

    /// The dialect's settings.
    pub fn settings(&self) -> CapeSettings {
        CapeSettings {
            token_auth_enabled: self.token_auth_enabled,
            ratelimit: self.ratelimit,
            url: self.url.clone(),
            version: self.version.clone(),
            max_sample_size: self.max_sample_size,
            zip_pwd: self.zip_pwd.clone(),
            endpoints: self.endpoints.clone(),
        }
    }
}
