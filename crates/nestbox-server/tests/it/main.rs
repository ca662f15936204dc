//! Integration tests: each starts the real `nestbox` binary on a random loopback port with
//! its own data directory and talks HTTP to it.
//!
//! Index:
//! - `assemblyline`: the Assemblyline /api/v4/ API, checklist items 1–27 of spec assemblyline.md
//! - `assemblyline_search`: `search/result/` and `search/file/` served from the store's indexes
//! - `cape`: the CAPEv2 /apiv2/ API, checklist items 1–37 of spec cape.md, auth, throttling
//! - `cuckoo`: the Cuckoo REST API, one test per checklist group of spec cuckoo.md §10
//! - `triage`: static triage against the reference tools (`file`, `ssdeep`, coreutils)
//! - `hostile`: bad input: traversal names, oversize uploads, malformed multipart
//! - `lifecycle`: kill -9 while tasks run, recovery on restart
//! - `cli`: `nestbox analyze` and `nestbox submit`
//! - `golden`: `nestbox analyze` reports of the kept samples against `tests/golden/expected`
//! - `documents`: Office/PDF analysis and indicators in the report and CAPE's iocs view
//! - `cluster`: one API and several worker processes on PostgreSQL (kill -9, restarts)
//! - `migrate`: `nestbox migrate` of rows and blobs, checked through the API
//! - `deps`: the crate dependency rules (house style §7.3)
//! - `sandbox`: the `ns` machinery: real detonations, containment, behaviour, dropped files
//! - `ops`: `/metrics`, `/health`, `/ready`, JSON logs with task ids
//! - `yara`: YARA end to end: starter rules in every dialect, archive members, dropped
//!   files, a broken rule file, reload on change and on SIGHUP
//! - `s3`: the server on a real S3 bucket, migration into one, API + worker nodes on
//!   PostgreSQL + S3 (ignored here; `make s3-test` runs them)

mod assemblyline;
mod assemblyline_search;
mod cape;
mod cli;
mod cluster;
mod cuckoo;
mod deps;
mod documents;
mod emulator;
mod golden;
mod harness;
mod hostile;
mod lifecycle;
mod migrate;
mod ops;
mod s3;
mod sandbox;
mod triage;
mod web;
mod yara;
