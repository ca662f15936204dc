//! The loaded rule set, scanning, and reloading.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use nestbox_core::rule_scan::RuleScanner;
use nestbox_types::report::YaraMatch;

use crate::matches::to_cuckoo_matches;
use crate::sources::{CompiledRules, RuleFileError, RuleSources, compile};

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// One generation of compiled rules.
#[derive(Debug)]
pub struct LoadedRules {
    /// Increases by one on every (re)load; 1 for the first.
    pub generation: u64,
    /// The rules and what was left out.
    pub compiled: CompiledRules,
}

/// The process-wide YARA engine: the current rule set, shared by every scanning thread.
///
/// Rules are compiled once per (re)load and shared through an `Arc`; each scan creates
/// its `Scanner` on the calling (blocking) thread, as yara-x's scanners are not `Send`.
/// A reload compiles the new set without blocking scans, then swaps it in; scans that
/// already hold the old set finish with it.
#[derive(Debug)]
pub struct YaraEngine {
    sources: RuleSources,
    timeout: Duration,
    current: RwLock<Arc<LoadedRules>>,
    fingerprint: Mutex<Fingerprint>,
    generation: AtomicU64,
}

impl YaraEngine {
    /// Compiles `sources` and logs every rule file left out (by name and line).
    /// `timeout` bounds one scan.
    pub fn load(sources: RuleSources, timeout: Duration) -> Self {
        let fingerprint = sources.fingerprint();
        let compiled = compile(&sources);
        log_outcome(&compiled, 1);
        YaraEngine {
            sources,
            timeout,
            current: RwLock::new(Arc::new(LoadedRules {
                generation: 1,
                compiled,
            })),
            fingerprint: Mutex::new(fingerprint),
            generation: AtomicU64::new(1),
        }
    }

    /// The rule set scans use now.
    pub fn current(&self) -> Arc<LoadedRules> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Where the rules come from.
    pub fn sources(&self) -> &RuleSources {
        &self.sources
    }

    /// Recompiles every source and swaps the result in (the server's `SIGHUP`).
    pub fn reload(&self) -> Arc<LoadedRules> {
        let mut fp = self.fingerprint.lock().unwrap_or_else(|p| p.into_inner());
        *fp = self.sources.fingerprint();
        self.swap_in(compile(&self.sources))
    }

    /// Recompiles if a rule file was added, removed or modified since the last load; the
    /// server polls this. `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<Arc<LoadedRules>> {
        let mut fp = self.fingerprint.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.sources.fingerprint();
        if now == *fp {
            return None;
        }
        *fp = now;
        Some(self.swap_in(compile(&self.sources)))
    }

    fn swap_in(&self, compiled: CompiledRules) -> Arc<LoadedRules> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        log_outcome(&compiled, generation);
        let loaded = Arc::new(LoadedRules {
            generation,
            compiled,
        });
        match self.current.write() {
            Ok(mut g) => *g = loaded.clone(),
            Err(poisoned) => *poisoned.into_inner() = loaded.clone(),
        }
        loaded
    }

    /// Scans `data` with the current rules.
    pub fn scan_bytes(&self, data: &[u8]) -> Result<Vec<YaraMatch>, yara_x::errors::ScanError> {
        let loaded = self.current();
        let mut scanner = yara_x::Scanner::new(&loaded.compiled.rules);
        scanner.set_timeout(self.timeout);
        let results = scanner.scan(data)?;
        Ok(to_cuckoo_matches(&results))
    }

    /// Files left out of the current set.
    pub fn errors(&self) -> Vec<RuleFileError> {
        self.current().compiled.errors.clone()
    }
}

fn log_outcome(compiled: &CompiledRules, generation: u64) {
    for e in &compiled.errors {
        tracing::error!(file = %e.file, line = e.line, "YARA rule file skipped: {}", e.message);
    }
    tracing::info!(
        generation,
        rules = compiled.rule_count,
        files = compiled.files.len(),
        skipped = compiled.errors.len(),
        "YARA rules loaded"
    );
}

impl RuleScanner for YaraEngine {
    fn scan(&self, data: &[u8]) -> Result<Vec<YaraMatch>, String> {
        self.scan_bytes(data)
            .map_err(|e| format!("YARA scan failed: {e}"))
    }
}
