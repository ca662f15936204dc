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
//! messages must be exact. Counters live in memory (Assemblyline's live in Redis): a restart
//! resets them.

use std::collections::HashMap;
use std::sync::Mutex;

use nestbox_types::{TaskId, TaskStatus};

use super::{AlError, AlState};
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

#[derive(Default)]
struct Daily {
    day: i64,
    api: u64,
    submissions: u64,
}

/// A reserved submission slot, to be bound to its task or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u64);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Reserved(Slot),
    Task(TaskId),
}

/// The trackers of every user.
#[derive(Default)]
pub struct Tracker {
    inflight: Mutex<HashMap<i64, u64>>,
    daily: Mutex<HashMap<i64, Daily>>,
    /// `(user, async)` → the unfinished submissions.
    running: Mutex<HashMap<(i64, bool), Vec<Held>>>,
    next_slot: std::sync::atomic::AtomicU64,
}

fn today() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(86_400)
}

/// A user's counters for today (yesterday's are dropped: the daily reset).
fn today_of(m: &mut HashMap<i64, Daily>, user: i64) -> &mut Daily {
    let d = m.entry(user).or_default();
    let day = today();
    if d.day != day {
        *d = Daily {
            day,
            ..Daily::default()
        };
    }
    d
}

fn unavailable(msg: String) -> AlError {
    AlError::Status(StatusCode::SERVICE_UNAVAILABLE, msg)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    /// Starts an API call; `None` when over the concurrent quota. The guard ends it.
    pub fn begin_call(&self, user: i64, max: u64) -> Option<CallGuard<'_>> {
        let mut m = lock(&self.inflight);
        let n = m.entry(user).or_default();
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(CallGuard {
            tracker: self,
            user,
        })
    }

    /// Counts an API call; `Err` when it goes past the daily quota, else the remaining.
    pub fn count_call(&self, user: i64, max: u64) -> Result<u64, AlError> {
        let mut m = lock(&self.daily);
        let d = today_of(&mut m, user);
        d.api += 1;
        if d.api > max {
            return Err(unavailable(format!(
                "You've exceeded your daily maximum API calls quota of {max}"
            )));
        }
        Ok(max - d.api)
    }

    /// Remaining daily `(api, submissions)` for `user/quotas/` and `whoami`.
    pub fn remaining(&self, user: i64, q: &Quotas) -> (u64, u64) {
        let m = lock(&self.daily);
        let (api, sub) = match m.get(&user) {
            Some(d) if d.day == today() => (d.api, d.submissions),
            _ => (0, 0),
        };
        (
            q.daily_api_calls.saturating_sub(api),
            q.daily_submissions.saturating_sub(sub),
        )
    }

    fn add_submission(&self, user: i64, delta: i64) {
        let mut m = lock(&self.daily);
        let d = today_of(&mut m, user);
        d.submissions = d.submissions.saturating_add_signed(delta);
    }

    /// `check_submission_quota` / `check_async_submission_quota`: takes one daily
    /// submission and one concurrent slot. Returns the slot and the remaining daily
    /// submissions (`None` when the daily quota is off).
    pub async fn begin_submission(
        &self,
        st: &AlState,
        user: i64,
        q: &Quotas,
        is_async: bool,
    ) -> Result<(Slot, Option<u64>), AlError> {
        let mut remaining = None;
        if q.daily_submissions != 0 {
            let mut m = lock(&self.daily);
            let d = today_of(&mut m, user);
            if d.submissions >= q.daily_submissions {
                return Err(unavailable(format!(
                    "You've reached your daily maximum submission quota of {}",
                    q.daily_submissions
                )));
            }
            d.submissions += 1;
            remaining = Some(q.daily_submissions - d.submissions);
        }
        let max = if is_async {
            q.concurrent_async_submissions
        } else {
            q.concurrent_submissions
        };
        let slot = Slot(
            self.next_slot
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        if max != 0 {
            // Forget the submissions that finished (the dispatcher's `end`), then count.
            let tasks: Vec<TaskId> = lock(&self.running)
                .get(&(user, is_async))
                .map(|v| {
                    v.iter()
                        .filter_map(|h| match h {
                            Held::Task(t) => Some(*t),
                            Held::Reserved(_) => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut done = Vec::new();
            for t in tasks {
                let finished = match st.ctx.core.repo.task(t).await {
                    Ok(Some(task)) => !matches!(
                        task.status,
                        TaskStatus::Pending | TaskStatus::Running | TaskStatus::Completed
                    ),
                    Ok(None) => true,
                    Err(_) => false,
                };
                if finished {
                    done.push(t);
                }
            }
            let mut m = lock(&self.running);
            let held = m.entry((user, is_async)).or_default();
            held.retain(|h| !matches!(h, Held::Task(t) if done.contains(t)));
            if held.len() as u64 >= max {
                drop(m);
                if q.daily_submissions != 0 {
                    self.add_submission(user, -1);
                }
                return Err(unavailable(if is_async {
                    format!(
                        "You've exceeded your maximum async concurrent submission quota of {max}"
                    )
                } else {
                    format!("You've exceeded your maximum concurrent submission quota of {max}")
                }));
            }
            held.push(Held::Reserved(slot));
        }
        Ok((slot, remaining))
    }

    /// Binds a slot to the task that now runs the submission.
    pub fn bind(&self, user: i64, is_async: bool, slot: Slot, task: TaskId) {
        if let Some(v) = lock(&self.running).get_mut(&(user, is_async)) {
            for h in v.iter_mut() {
                if *h == Held::Reserved(slot) {
                    *h = Held::Task(task);
                }
            }
        }
    }

    /// Gives back a slot and its daily submission after a failed submission.
    pub fn release(&self, user: i64, is_async: bool, slot: Slot, q: &Quotas) {
        if let Some(v) = lock(&self.running).get_mut(&(user, is_async)) {
            v.retain(|h| *h != Held::Reserved(slot));
        }
        if q.daily_submissions != 0 {
            self.add_submission(user, -1);
        }
    }
}

/// Ends an API call of the concurrent quota when dropped.
pub struct CallGuard<'a> {
    tracker: &'a Tracker,
    user: i64,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut m = lock(&self.tracker.inflight);
        if let Some(n) = m.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.user);
            }
        }
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
    fn concurrent_calls_are_bounded_and_released() {
        let t = Tracker::default();
        let a = t.begin_call(1, 2).unwrap();
        let _b = t.begin_call(1, 2).unwrap();
        assert!(t.begin_call(1, 2).is_none());
        assert!(t.begin_call(2, 2).is_some(), "per user");
        drop(a);
        assert!(t.begin_call(1, 2).is_some());
        assert!(t.begin_call(1, 0).is_some(), "0 = unlimited");
    }

    #[test]
    fn daily_calls_count_down_then_refuse() {
        let t = Tracker::default();
        assert_eq!(t.count_call(1, 2).unwrap(), 1);
        assert_eq!(t.count_call(1, 2).unwrap(), 0);
        match t.count_call(1, 2) {
            Err(AlError::Status(code, msg)) => {
                assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(
                    msg,
                    "You've exceeded your daily maximum API calls quota of 2"
                );
            }
            other => panic!("{other:?}"),
        }
        let q = Quotas {
            daily_api_calls: 5,
            ..Quotas::default()
        };
        assert_eq!(t.remaining(1, &q), (2, 0));
        assert!(counts_toward_quota("/api/v4/submission/x/"));
        assert!(!counts_toward_quota("/api/v4/submit/"));
        assert!(!counts_toward_quota("/api/"));
    }
}
