//! nestbox's use-cases and the ports they need.
//!
//! This crate is the centre of the dependency graph: it defines what a task store
//! ([`ports::TaskRepo`]) and a blob store ([`ports::BlobStore`]) must do, and implements the
//! use-cases on top of them: taking in samples ([`Core::begin_upload`]), creating tasks, the
//! task state machine, and the static analysis that turns a sample into a canonical report
//! ([`pipeline`]).
//!
//! It is *not* an HTTP server or a database: it knows neither axum nor SQL. Each API dialect
//! and each storage engine lives in its own crate and talks to the world through these
//! traits, so a PostgreSQL store or an S3 blob store plugs in without touching this code.
//! The one I/O this crate does itself is streaming an upload into a local temp file, because
//! hashing must happen in the same pass as the write.
#![deny(missing_docs)]

pub mod al_result;
pub mod archive_member;
pub mod assemblyline;
mod child;
pub mod demux;
mod error;
pub mod keys;
pub mod machinery;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod report_fields;
pub mod report_index;
pub mod rule_scan;
mod submit;
pub mod users;

pub use error::{Error, Result};
pub use submit::{Core, Limits, StagedSample, Upload, micros, safe_component, sanitize_filename};
pub use users::{Auth, NewToken, NewUser, Token, TokenKind, User, UserRepo};
