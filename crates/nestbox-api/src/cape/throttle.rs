//! DRF's `SubscriptionRateThrottle` (spec cape.md §3): a sliding window of request times
//! per user, one bucket for every endpoint, in process memory (CAPE's LocMemCache: per
//! process, reset on restart).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `N/<period>` where only the period's first letter counts (`s`, `m`, `h`, `d`), as
/// DRF's `parse_rate`. `None` for anything else.
pub fn parse_rate(rate: &str) -> Option<(usize, Duration)> {
    let (n, period) = rate.trim().split_once('/')?;
    let n: usize = n.trim().parse().ok()?;
    let secs = match period.trim().chars().next()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    };
    Some((n, Duration::from_secs(secs)))
}

/// Request histories by user id.
#[derive(Default)]
pub struct Throttle {
    history: Mutex<HashMap<i64, VecDeque<Instant>>>,
}

impl Throttle {
    /// `allow_request`: records the request and returns `Ok`, or the `Retry-After`
    /// seconds (DRF's `wait()`, rounded up, at least 1).
    pub fn allow(&self, user: i64, (num, duration): (usize, Duration)) -> Result<(), u64> {
        self.allow_at(user, (num, duration), Instant::now())
    }

    fn allow_at(
        &self,
        user: i64,
        (num, duration): (usize, Duration),
        now: Instant,
    ) -> Result<(), u64> {
        let mut map = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = map.entry(user).or_default();
        while history
            .back()
            .is_some_and(|t| now.duration_since(*t) >= duration)
        {
            history.pop_back();
        }
        if history.len() >= num {
            // wait = (duration - (now - oldest)) / (num - len + 1)
            let remaining = match history.back() {
                Some(oldest) => duration.saturating_sub(now.duration_since(*oldest)),
                None => duration,
            };
            let slots = (num + 1).saturating_sub(history.len()).max(1) as f64;
            let wait = (remaining.as_secs_f64() / slots).ceil().max(1.0) as u64;
            return Err(wait);
        }
        history.push_front(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_like_drf() {
        assert_eq!(parse_rate("5/m"), Some((5, Duration::from_secs(60))));
        assert_eq!(
            parse_rate("100/hour"),
            Some((100, Duration::from_secs(3600)))
        );
        assert_eq!(parse_rate("2/s"), Some((2, Duration::from_secs(1))));
        assert_eq!(parse_rate(""), None);
        assert_eq!(parse_rate("x/m"), None);
        assert_eq!(parse_rate("5/y"), None);
    }

    #[test]
    fn sliding_window() {
        let t = Throttle::default();
        let rate = (2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(t.allow_at(1, rate, t0).is_ok());
        assert!(t.allow_at(1, rate, t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(t.allow_at(1, rate, t0 + Duration::from_secs(20)), Err(40));
        assert!(t.allow_at(2, rate, t0).is_ok(), "buckets are per user");
        assert!(t.allow_at(1, rate, t0 + Duration::from_secs(60)).is_ok());
    }
}
