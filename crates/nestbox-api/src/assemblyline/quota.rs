//! Quotas (spec §1, §2; assemblyline-ui `api/base.py` and `helper/user.py`), enforced when
//! `enforce_quota` is on, as Assemblyline does with its Redis trackers:
//!
//! * **concurrent API calls** per user: a call beyond the quota is refused with 503
//!   `You've exceeded your maximum concurrent API calls quota of N`;
//! * **daily API calls** (endpoints that count toward the quota): the call that goes past it
//!   gets 503 `You've exceeded your daily maximum API calls quota of N`; counted calls carry
//!   `X-Remaining-Quota-Api`;
//! * **daily submissions** (`submit/`, `ingest/`): 503 `You've reached your daily maximum
//!   submission quota of N`; a counted submission carries `X-Remaining-Quota-Submission`;
//! * **concurrent submissions** (`submit/`: unfinished submissions of the user) and
//!   **concurrent async submissions** (`ingest/`): 503 `You've exceeded your maximum
//!   concurrent submission quota of N` / `…maximum async concurrent submission quota of N`.
//!
//! 0 means unlimited. Daily counters reset at 00:00 UTC. The client treats a 503 whose
//! message holds "quota" and "daily" as an error and retries any other 503, which is why the
//! messages must be exact.
//!
//! The counters live in the store (Assemblyline keeps them in Redis), so every API node
//! behind one PostgreSQL database counts the same calls and a restart forgets nothing: one
//! atomic conditional increment per counted event ([`AlRepo::bump_quota`]), nothing when
//! a quota is 0. Concurrent calls are a counter taken before the view and given back
//! after it; its window ends [`INFLIGHT_WINDOW`] after it opened, so counts a crashed
//! node never gave back are forgotten then. Concurrent submissions are the user's
//! unfinished submissions (a store count) plus the ones being made right now (a counter
//! given back once the submission's records are written, so no moment counts neither).

use std::sync::Arc;

use nestbox_core::assemblyline::AlRepo;
use nestbox_types::Timestamp;

use super::AlError;
use axum::http::StatusCode;

/// One user's limits (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Simultaneous API calls (`concurrent_api_calls`, `api_quota`).
    pub concurrent_api_calls: u64,
    /// API calls per UTC day (`daily_api_calls`, `api_daily_quota`).
    pub daily_api_calls: u64,
    /// Unfinished `submit/` submissions (`concurrent_submissions`, `submission_quota`).
    pub concurrent_submissions: u64,
    /// Unfinished `ingest/` submissions (`concurrent_async_submissions`).
    pub concurrent_async_submissions: u64,
    /// Submissions per UTC day (`daily_submissions`, `submission_daily_quota`).
    pub daily_submissions: u64,
}

impl Default for Quotas {
    /// Assemblyline's `ui.default_quotas`.
    fn default() -> Self {
        Quotas {
            concurrent_api_calls: 10,
            daily_api_calls: 0,
            concurrent_submissions: 5,
            concurrent_async_submissions: 0,
            daily_submissions: 0,
        }
    }
}

/// How long a window of the concurrent-call counter lasts: a count a crashed node never
/// gave back is forgotten by then (Assemblyline's Redis counters expire the same way).
pub const INFLIGHT_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// How long a submission may take to write its records while it holds a concurrent slot.
const RESERVED_WINDOW: i64 = 600_000_000;
const DAY: i64 = 86_400_000_000;

const API_INFLIGHT: &str = "api_inflight";
const API_DAILY: &str = "api_daily";
const SUBMISSION_DAILY: &str = "submission_daily";

fn reserved_kind(is_async: bool) -> &'static str {
    if is_async {
        "async_submission_reserved"
    } else {
        "submission_reserved"
    }
}

/// Today (UTC) as a day number, and the end of it.
fn today() -> (i64, Timestamp) {
    let day = Timestamp::now().0.div_euclid(DAY);
    (day, Timestamp((day + 1) * DAY))
}

fn in_micros(us: i64) -> Timestamp {
    Timestamp(Timestamp::now().0.saturating_add(us))
}

fn limit(max: u64) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

fn unavailable(msg: String) -> AlError {
    AlError::Status(StatusCode::SERVICE_UNAVAILABLE, msg)
}

/// A concurrent submission slot taken by [`begin_submission`], to be given back by
/// [`end_submission`] once the submission's records are written (or it failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    is_async: bool,
    reserved: bool,
    daily: bool,
}

/// Starts an API call of `user` under the concurrent quota `max`: `None` when over it.
/// The guard gives the call back when dropped.
pub async fn begin_call(
    repo: &Arc<dyn AlRepo>,
    user: i64,
    max: u64,
) -> Result<Option<CallGuard>, AlError> {
    if max == 0 {
        return Ok(Some(CallGuard { repo: None, user }));
    }
    let window = in_micros(INFLIGHT_WINDOW.as_micros() as i64);
    Ok(repo
        .bump_quota(user, API_INFLIGHT, 0, 1, limit(max), window)
        .await?
        .map(|_| CallGuard {
            repo: Some(repo.clone()),
            user,
        }))
}

/// Counts an API call toward the daily quota `max` (not 0): `Err` past it, else the
/// calls left today.
pub async fn count_call(repo: &dyn AlRepo, user: i64, max: u64) -> Result<u64, AlError> {
    let (day, end) = today();
    match repo
        .bump_quota(user, API_DAILY, day, 1, limit(max), end)
        .await?
    {
        Some(n) => Ok(max.saturating_sub(n.unsigned_abs())),
        None => Err(unavailable(format!(
            "You've exceeded your daily maximum API calls quota of {max}"
        ))),
    }
}

/// Remaining daily `(api, submissions)` for `user/quotas/` and `whoami`.
pub async fn remaining(repo: &dyn AlRepo, user: i64, q: &Quotas) -> Result<(u64, u64), AlError> {
    let (day, _) = today();
    let api = if q.daily_api_calls == 0 {
        0
    } else {
        repo.quota_counter(user, API_DAILY, day).await?
    };
    let sub = if q.daily_submissions == 0 {
        0
    } else {
        repo.quota_counter(user, SUBMISSION_DAILY, day).await?
    };
    Ok((
        q.daily_api_calls.saturating_sub(api.unsigned_abs()),
        q.daily_submissions.saturating_sub(sub.unsigned_abs()),
    ))
}

/// `check_submission_quota` / `check_async_submission_quota`: takes one daily submission
/// and one concurrent slot. Returns the slot and the remaining daily submissions (`None`
/// when the daily quota is off).
pub async fn begin_submission(
    repo: &dyn AlRepo,
    user: i64,
    q: &Quotas,
    is_async: bool,
) -> Result<(Slot, Option<u64>), AlError> {
    let mut slot = Slot {
        is_async,
        reserved: false,
        daily: false,
    };
    let mut remaining = None;
    if q.daily_submissions != 0 {
        let (day, end) = today();
        let Some(n) = repo
            .bump_quota(
                user,
                SUBMISSION_DAILY,
                day,
                1,
                limit(q.daily_submissions),
                end,
            )
            .await?
        else {
            return Err(unavailable(format!(
                "You've reached your daily maximum submission quota of {}",
                q.daily_submissions
            )));
        };
        slot.daily = true;
        remaining = Some(q.daily_submissions.saturating_sub(n.unsigned_abs()));
    }
    let max = if is_async {
        q.concurrent_async_submissions
    } else {
        q.concurrent_submissions
    };
    if max != 0 {
        // The slots left once the unfinished submissions are counted; the ones being made
        // right now hold a reservation each.
        let unfinished = repo.unfinished_al_submissions(user, is_async).await?;
        let free = limit(max).saturating_sub(unfinished);
        let taken = repo
            .bump_quota(
                user,
                reserved_kind(is_async),
                0,
                1,
                free,
                in_micros(RESERVED_WINDOW),
            )
            .await?;
        if taken.is_none() {
            end_submission(repo, user, slot, false).await;
            return Err(unavailable(if is_async {
                format!("You've exceeded your maximum async concurrent submission quota of {max}")
            } else {
                format!("You've exceeded your maximum concurrent submission quota of {max}")
            }));
        }
        slot.reserved = true;
    }
    Ok((slot, remaining))
}

/// Gives back a slot's reservation once its submission is recorded (it now counts as
/// unfinished by itself); after a failed submission (`done` false) its daily submission too.
pub async fn end_submission(repo: &dyn AlRepo, user: i64, slot: Slot, done: bool) {
    if slot.reserved {
        let kind = reserved_kind(slot.is_async);
        // A window that ended meanwhile is not reopened by the decrement.
        let now = Timestamp::now();
        if let Err(e) = repo.bump_quota(user, kind, 0, -1, i64::MAX, now).await {
            tracing::warn!(error = %e, "assemblyline: giving back a submission slot failed");
        }
    }
    if slot.daily && !done {
        let (day, end) = today();
        if let Err(e) = repo
            .bump_quota(user, SUBMISSION_DAILY, day, -1, i64::MAX, end)
            .await
        {
            tracing::warn!(error = %e, "assemblyline: giving back a daily submission failed");
        }
    }
}

/// Ends an API call of the concurrent quota when dropped (also when the client went away
/// and the view was cancelled).
pub struct CallGuard {
    repo: Option<Arc<dyn AlRepo>>,
    user: i64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let Some(repo) = self.repo.take() else {
            return;
        };
        let user = self.user;
        tokio::spawn(async move {
            // A live window keeps its end; one that ended is not reopened.
            let now = Timestamp::now();
            if let Err(e) = repo
                .bump_quota(user, API_INFLIGHT, 0, -1, i64::MAX, now)
                .await
            {
                tracing::warn!(error = %e, "assemblyline: ending a concurrent API call failed");
            }
        });
    }
}

/// Endpoints that do not count toward the daily API quota (`count_toward_quota=False`
/// upstream): the version list and site map, help, login/logout, API keys, the
/// submission endpoints (they have their own quota), search and `user/quotas/`.
pub fn counts_toward_quota(path: &str) -> bool {
    let p = path.trim_start_matches("/api");
    !(p == "/"
        || p == "/v4/"
        || [
            "/v4/help/",
            "/v4/auth/",
            "/v4/apikey/",
            "/v4/submit/",
            "/v4/ingest/",
            "/v4/search/",
            "/v4/user/quotas/",
        ]
        .iter()
        .any(|prefix| p.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_endpoints() {
        assert!(counts_toward_quota("/api/v4/submission/x/"));
        assert!(!counts_toward_quota("/api/v4/submit/"));
        assert!(!counts_toward_quota("/api/"));
        assert!(!counts_toward_quota("/api/v4/search/result/"));
    }
}
