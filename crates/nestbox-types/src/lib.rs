//! The nestbox domain vocabulary.
//!
//! Plain data: ids, the task status machine's states, the records the store hands back
//! (tasks, samples, machines, guests) and the canonical analysis [`report::Report`].
//!
//! This crate is deliberately serde-only: no async runtime, no SQL, no HTTP. Everything
//! else in the workspace depends on it, so anything heavier here would be paid everywhere.
//! The string forms of enums are the upstream Cuckoo/CAPE strings, because those are what
//! every client compares against.
#![deny(missing_docs)]

pub mod browse;
pub mod report;
mod task;
mod time;

pub use task::*;
pub use time::Timestamp;
