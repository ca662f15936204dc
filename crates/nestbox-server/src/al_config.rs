//! `[assemblyline]`: the Assemblyline 4 `/api/v4/` dialect (spec assemblyline.md §1–§3):
//! login sessions, submission defaults and Assemblyline's quotas, with Assemblyline's
//! defaults (`ui.enforce_quota`, `ui.default_quotas`, `submission.dtl`, …).

use std::collections::BTreeMap;

use nestbox_api::AlSettings;
use nestbox_api::assemblyline::quota::Quotas;
use serde::{Deserialize, Serialize};

/// `[assemblyline]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlConfig {
    /// Lifetime of a login session, seconds (`session_duration`). Default 3600.
    pub session_duration: u64,
    /// Whether `file/download/?encoding=raw` is allowed (`ui.allow_raw_downloads`).
    /// Default true.
    pub allow_raw_downloads: bool,
    /// `submission.dtl`: default `ttl` of a submission in days. Default 30.
    pub dtl: u64,
    /// `submission.max_dtl`: largest `ttl` in days, 0 = no limit. Default 0.
    pub max_dtl: u64,
    /// `ui.enforce_quota`: apply the quotas below. Default true.
    pub enforce_quota: bool,
    /// `ui.default_quotas`, for users without their own.
    pub quotas: QuotaConfig,
    /// Per-user quotas by user name (a user's `api_quota`, `submission_quota`, … in
    /// Assemblyline); unset fields take the defaults. Default empty.
    pub user_quotas: BTreeMap<String, UserQuotaConfig>,
}

/// `[assemblyline.quotas]` (0 = unlimited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Simultaneous API calls per user. Default 10.
    pub concurrent_api_calls: u64,
    /// API calls per user per UTC day. Default 0.
    pub daily_api_calls: u64,
    /// Unfinished `submit/` submissions per user. Default 5.
    pub concurrent_submissions: u64,
    /// Unfinished `ingest/` submissions per user. Default 0.
    pub concurrent_async_submissions: u64,
    /// Submissions per user per UTC day. Default 0.
    pub daily_submissions: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        let q = Quotas::default();
        QuotaConfig {
            concurrent_api_calls: q.concurrent_api_calls,
            daily_api_calls: q.daily_api_calls,
            concurrent_submissions: q.concurrent_submissions,
            concurrent_async_submissions: q.concurrent_async_submissions,
            daily_submissions: q.daily_submissions,
        }
    }
}

/// `[assemblyline.user_quotas.<name>]`: overrides of the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserQuotaConfig {
    /// See [`QuotaConfig::concurrent_api_calls`].
    pub concurrent_api_calls: Option<u64>,
    /// See [`QuotaConfig::daily_api_calls`].
    pub daily_api_calls: Option<u64>,
    /// See [`QuotaConfig::concurrent_submissions`].
    pub concurrent_submissions: Option<u64>,
    /// See [`QuotaConfig::concurrent_async_submissions`].
    pub concurrent_async_submissions: Option<u64>,
    /// See [`QuotaConfig::daily_submissions`].
    pub daily_submissions: Option<u64>,
}

impl Default for AlConfig {
    fn default() -> Self {
        let d = AlSettings::default();
        AlConfig {
            session_duration: d.session_duration,
            allow_raw_downloads: d.allow_raw_download,
            dtl: d.dtl,
            max_dtl: d.max_dtl,
            enforce_quota: d.enforce_quota,
            quotas: QuotaConfig::default(),
            user_quotas: BTreeMap::new(),
        }
    }
}

impl QuotaConfig {
    fn quotas(&self) -> Quotas {
        Quotas {
            concurrent_api_calls: self.concurrent_api_calls,
            daily_api_calls: self.daily_api_calls,
            concurrent_submissions: self.concurrent_submissions,
            concurrent_async_submissions: self.concurrent_async_submissions,
            daily_submissions: self.daily_submissions,
        }
    }
}

impl AlConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if self.session_duration == 0 {
            problems.push("assemblyline.session_duration must be at least 1 second".to_owned());
        }
        if self.max_dtl != 0 && self.dtl > self.max_dtl {
            problems.push(format!(
                "assemblyline.dtl ({}) is above assemblyline.max_dtl ({})",
                self.dtl, self.max_dtl
            ));
        }
    }

    /// The dialect's settings; `max_file_size` is the server's upload limit.
    pub fn settings(&self, max_file_size: u64) -> AlSettings {
        let defaults = self.quotas.quotas();
        let user_quotas = self
            .user_quotas
            .iter()
            .map(|(name, u)| {
                let q = Quotas {
                    concurrent_api_calls: u
                        .concurrent_api_calls
                        .unwrap_or(defaults.concurrent_api_calls),
                    daily_api_calls: u.daily_api_calls.unwrap_or(defaults.daily_api_calls),
                    concurrent_submissions: u
                        .concurrent_submissions
                        .unwrap_or(defaults.concurrent_submissions),
                    concurrent_async_submissions: u
                        .concurrent_async_submissions
                        .unwrap_or(defaults.concurrent_async_submissions),
                    daily_submissions: u.daily_submissions.unwrap_or(defaults.daily_submissions),
                };
                (name.clone(), q)
            })
            .collect();
        AlSettings {
            session_duration: self.session_duration,
            allow_raw_download: self.allow_raw_downloads,
            max_file_size,
            dtl: self.dtl,
            max_dtl: self.max_dtl,
            enforce_quota: self.enforce_quota,
            quotas: defaults,
            user_quotas,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_quotas_fall_back_to_the_defaults() {
        let mut c = AlConfig::default();
        c.quotas.daily_submissions = 7;
        c.user_quotas.insert(
            "alice".into(),
            UserQuotaConfig {
                daily_api_calls: Some(3),
                ..Default::default()
            },
        );
        let s = c.settings(1 << 20);
        let a = s.quotas_of("alice");
        assert_eq!((a.daily_api_calls, a.daily_submissions), (3, 7));
        assert_eq!(s.quotas_of("bob").daily_api_calls, 0);
        assert_eq!(s.quotas_of("bob").concurrent_api_calls, 10);
        let mut problems = Vec::new();
        c.max_dtl = 30;
        c.validate(&mut problems);
        assert!(problems.is_empty());
        c.dtl = 31;
        c.validate(&mut problems);
        assert_eq!(problems.len(), 1);
    }
}
