//! The rule-scanning port: content in, YARA matches out.
//!
//! The engine (yara-x, in `nestbox-yara`) is heavy to build and is an implementation detail,
//! so the core only knows this trait. The binary hands an implementation to the static stage
//! through [`crate::pipeline::StaticSettings::rules`]; without one, no YARA scan runs.

use nestbox_types::report::YaraMatch;

/// Scans content against the currently loaded rule set.
///
/// Implementations are shared by every worker thread and must be cheap to call
/// concurrently; a scan is CPU-bound and runs on a blocking thread.
pub trait RuleScanner: Send + Sync + std::fmt::Debug {
    /// The matching rules for `data`, in Cuckoo's `yara[]` shape. An `Err` is a scan that
    /// could not finish (a timeout): the caller records it and carries on.
    fn scan(&self, data: &[u8]) -> Result<Vec<YaraMatch>, String>;
}
