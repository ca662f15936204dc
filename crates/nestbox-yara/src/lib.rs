//! YARA scanning for nestbox, on yara-x.
//!
//! * [`RuleSources`] says where rules come from: the starter set shipped inside the binary
//!   ([`starter`], the repository's `rules/` directory embedded at build time), the
//!   operator's rules directory and any extra directories (`*.yar`/`*.yara`, recursively).
//! * [`compile`] turns them into one rule set. Every file is compiled in its own namespace,
//!   so two files may use the same rule name; a file that does not compile is reported by
//!   name and line ([`RuleFileError`]) and left out, and the rest still load.
//! * [`YaraEngine`] holds the current rule set behind an `Arc` (compiled once, shared by
//!   every thread), scans content with a `Scanner` per calling thread, and reloads when the
//!   rule files change ([`YaraEngine::reload_if_changed`], polled by the server) or on
//!   demand ([`YaraEngine::reload`], the server's `SIGHUP`). It implements the core's
//!   [`RuleScanner`](nestbox_core::rule_scan::RuleScanner) port.
//!
//! Matches come out in Cuckoo's `yara[]` shape ([`nestbox_types::report::YaraMatch`]; see
//! [`to_cuckoo_matches`]).
//!
//! What this crate is not: it knows nothing of tasks or reports beyond that one type, and
//! it is the only crate that depends on yara-x, whose wasmtime/cranelift build is the
//! heaviest in the workspace; nothing else needs rebuilding when it changes.
#![deny(missing_docs)]

mod engine;
mod matches;
mod sources;
pub mod starter;

pub use engine::{LoadedRules, YaraEngine};
pub use matches::to_cuckoo_matches;
pub use sources::{CompiledRules, RuleFileError, RuleSources, compile};
