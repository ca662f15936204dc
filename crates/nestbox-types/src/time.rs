use serde::{Deserialize, Serialize};

/// A point in time, as microseconds since the Unix epoch (UTC).
///
/// Stored as an integer so that SQLite and PostgreSQL hold the same value and ordering
/// is plain integer ordering. Each API dialect renders it in its own upstream format
/// (Cuckoo alone uses three), so no textual form is privileged here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    /// Whole seconds since the epoch (floored).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Seconds since the epoch as a float, the way Cuckoo's report.json renders datetimes.
    pub fn epoch_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Builds a timestamp from whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000))
    }
}
