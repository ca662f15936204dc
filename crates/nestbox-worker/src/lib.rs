//! Analysis workers.
//!
//! A pool of workers claims tasks from the queue (the task store), locks a machine, runs the
//! analysis stages (static triage now; detonation when a machinery is configured), scores,
//! and writes the report into the task's analysis folder. Workers know no HTTP, so a worker
//! can run as its own process next to the API.
//!
//! Failure handling follows Cuckoo: problems inside an analysis are recorded as task errors
//! and in `debug.errors`, and the task still ends `reported`; only a stage that cannot
//! produce anything at all moves the task to `failed_processing` / `failed_reporting`.
#![deny(missing_docs)]

mod beats;
pub mod html;
mod run;

pub use run::{WorkerPool, WorkerSettings, render_report_json};
