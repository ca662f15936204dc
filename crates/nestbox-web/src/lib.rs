//! nestbox's web UI: the pages analysts read (task queue, submit, report with tabs,
//! sample, status, login), server-rendered with minijinja, plus the single-file
//! `report.html` the workers write, rendered from the same templates.
//!
//! What it is not: an API. Every dialect keeps its own paths (Cuckoo at the root, CAPE at
//! `/apiv2/`, Assemblyline at `/api/`); the UI lives at CAPE-like paths that none of them
//! uses (`/`, `/submit/`, `/analysis/<id>/`, `/file/<sha256>/`, `/status/`, `/login/`).
//!
//! Design: pages are complete without JavaScript; one small script (`static/nestbox.js`)
//! adds tabs, live updates and the paged call log, and never puts sample data into the
//! page as HTML. Templates auto-escape everything. Assets are compiled in (`include_str!`),
//! so there is no CDN, no build step and no request leaves the server's origin.
//!
//! The `http` feature (default) adds the axum pages; without it the crate only renders
//! reports, so a worker links no HTTP stack.
#![deny(missing_docs)]

mod render;
pub mod view;

#[cfg(feature = "http")]
mod http;

#[cfg(feature = "http")]
pub use http::{WebSettings, router};
pub use minijinja::Error as RenderError;
pub use render::{Templates, render_report_html};
