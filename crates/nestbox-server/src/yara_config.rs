//! `[yara]`: where the YARA rules come from, how scans are bounded, and keeping the
//! compiled rules current (directory poll and `SIGHUP`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// `[yara]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YaraConfig {
    /// Scan samples and dropped files with YARA. Default true.
    pub enabled: bool,
    /// Include the starter rule set shipped inside the binary (packers, suspicious PE
    /// traits, script droppers, EICAR, document macros, web shells, crypto constants).
    /// Default true.
    pub starter_rules: bool,
    /// The operator's rule directory, searched recursively for `*.yar`/`*.yara`. Empty
    /// (default) = `<data_dir>/yara`. It may not exist yet: rules dropped there later are
    /// picked up by the reload poll.
    pub rules_dir: PathBuf,
    /// More rule directories (e.g. a checkout of a community rule repository). Default none.
    pub extra_dirs: Vec<PathBuf>,
    /// Seconds between checks of the rule files for changes (then they are recompiled
    /// and swapped in); 0 = only at start-up and on `SIGHUP`. Default 10.
    pub reload_interval: u64,
    /// Longest one file's scan may take, in seconds. Default 60.
    pub scan_timeout: u64,
}

impl Default for YaraConfig {
    fn default() -> Self {
        YaraConfig {
            enabled: true,
            starter_rules: true,
            rules_dir: PathBuf::new(),
            extra_dirs: Vec::new(),
            reload_interval: 10,
            scan_timeout: 60,
        }
    }
}

impl YaraConfig {
    /// The rule sources, with the default directory resolved against `data_dir`.
    pub fn sources(&self, data_dir: &Path) -> nestbox_yara::RuleSources {
        let main = if self.rules_dir.as_os_str().is_empty() {
            data_dir.join("yara")
        } else {
            self.rules_dir.clone()
        };
        nestbox_yara::RuleSources {
            starter: self.starter_rules,
            dirs: std::iter::once(main)
                .chain(self.extra_dirs.iter().cloned())
                .collect(),
        }
    }

    /// The engine, compiled now (bad rule files are logged and skipped), or `None` when
    /// YARA is disabled.
    pub fn engine(&self, data_dir: &Path) -> Option<Arc<nestbox_yara::YaraEngine>> {
        self.enabled.then(|| {
            Arc::new(nestbox_yara::YaraEngine::load(
                self.sources(data_dir),
                Duration::from_secs(self.scan_timeout.max(1)),
            ))
        })
    }
}

/// Keeps the rules current until `shutdown`: recompiles when `hup` fires (the server's
/// `SIGHUP`; `None` when it could not be installed), and every `interval` seconds when a
/// rule file changed. Compiling runs on a blocking thread; scans go on with the old set
/// meanwhile, and a set with broken files still swaps in without them (they are logged
/// by name and line).
pub async fn watch(
    engine: Arc<nestbox_yara::YaraEngine>,
    interval: u64,
    mut hup: Option<Signal>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let period = Duration::from_secs(interval.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = hangup(&mut hup) => true,
            _ = tick.tick(), if interval > 0 => false,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let e = engine.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            if forced {
                tracing::info!("SIGHUP: reloading the YARA rules");
                Some(e.reload())
            } else {
                e.reload_if_changed()
            }
        })
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "reloading the YARA rules crashed; the old rules stay");
        }
    }
}

async fn hangup(hup: &mut Option<Signal>) {
    match hup {
        Some(h) => {
            h.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The `SIGHUP` listener, installed before the server says it is listening (a signal
/// that arrives earlier would otherwise end the process).
pub fn hangup_signal() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; YARA rules reload by polling only");
            None
        }
    }
}
