//! Worker heartbeats in the task store, so every node (an API node in particular) sees
//! the whole cluster's workers: who is alive, on which node, running which task.
//!
//! Workers only note what they run in memory ([`Beats::busy`]); one loop per pool writes
//! all of the pool's rows in one transaction every [`interval`], and at once when a
//! worker starts or finishes a task. Few writes, so readers' caches keyed on the store's
//! data version stay useful. A row says it expires after three missed beats; the pool
//! removes its rows when it stops cleanly, so a row past `expires_on` is a worker that
//! died or lost the database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nestbox_core::Core;
use nestbox_core::ports::WorkerBeat;
use nestbox_types::{TaskId, Timestamp};
use tokio::sync::{Notify, watch};

/// Beats a row may miss before it counts as dead.
const MISSED_BEATS: u32 = 3;

/// How often a pool beats for a task lease of `lease`: as often as leases are renewed,
/// within 1–20 s.
pub fn interval(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_secs(1), Duration::from_secs(20))
}

/// The pool's workers and what each runs; shared by the workers and the beat loop.
#[derive(Clone)]
pub struct Beats {
    node: String,
    started_on: Timestamp,
    tasks: Arc<Mutex<BTreeMap<String, Option<TaskId>>>>,
    changed: Arc<Notify>,
}

impl Beats {
    /// The beats of the workers `names` of `node`, all idle.
    pub fn new(node: &str, names: &[String]) -> Beats {
        Beats {
            node: node.to_owned(),
            started_on: Timestamp::now(),
            tasks: Arc::new(Mutex::new(
                names.iter().map(|n| (n.clone(), None)).collect(),
            )),
            changed: Arc::new(Notify::new()),
        }
    }

    /// `worker` now runs `task` (`None`: idle again); beats at once.
    pub fn busy(&self, worker: &str, task: Option<TaskId>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.insert(worker.to_owned(), task);
        }
        self.changed.notify_one();
    }

    fn rows(&self, every: Duration) -> Vec<WorkerBeat> {
        let now = Timestamp::now();
        let expires_on = Timestamp(
            now.0
                .saturating_add(nestbox_core::micros(every * MISSED_BEATS)),
        );
        let tasks = self.tasks.lock().map(|t| t.clone()).unwrap_or_default();
        tasks
            .into_iter()
            .map(|(name, task)| WorkerBeat {
                name,
                node: self.node.clone(),
                task,
                started_on: self.started_on,
                seen_on: now,
                expires_on,
            })
            .collect()
    }

    /// Beats every `every` (and on changes) until `shutdown`, then removes the rows.
    pub async fn run(self, core: Core, every: Duration, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if let Err(e) = core.repo.beat_workers(&self.rows(every)).await {
                tracing::warn!(error = %e, "writing worker heartbeats failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.changed.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Removes the pool's rows (a clean stop: the workers are gone, not dead).
    pub async fn forget(&self, core: &Core) {
        let names: Vec<String> = self
            .tasks
            .lock()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        if let Err(e) = core.repo.forget_workers(&names).await {
            tracing::warn!(error = %e, "removing worker heartbeats failed");
        }
    }
}
