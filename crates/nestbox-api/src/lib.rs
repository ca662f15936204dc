//! nestbox's HTTP APIs.
//!
//! Each upstream dialect is its own module with its own DTOs and error type, and answers
//! exactly as upstream does: shapes, status codes, messages, headers, even where upstream
//! looks wrong, because existing clients depend on it. All dialects sit on the same
//! [`nestbox_core::Core`], so a task created through one is visible through every other.
//!
//! This crate never touches SQL or the filesystem layout directly: it gets the core's ports
//! through [`ApiContext`], built by the binary's composition root.
#![deny(missing_docs)]
#![recursion_limit = "256"]

pub mod assemblyline;
pub mod cape;
pub mod common;
pub mod cuckoo;
pub mod ops;

use std::sync::Arc;

pub use assemblyline::AlSettings;
use axum::Router;
pub use cape::{CapeEndpoints, CapeSettings};
use nestbox_core::Core;
use tokio::sync::{Notify, watch};

/// Settings of the Cuckoo dialect.
#[derive(Debug, Clone)]
pub struct CuckooSettings {
    /// `Authorization: Bearer <token>` is required when non-empty.
    pub api_token: String,
    /// Version reported by `cuckoo/status` (clients compare it with Cuckoo's).
    pub version: String,
    /// Enables `/exit` (Cuckoo's debug mode).
    pub debug: bool,
}

/// Everything the handlers need, built once by the composition root.
pub struct ApiContext {
    /// The use-cases.
    pub core: Core,
    /// Wakes idle workers after a task is queued.
    pub wake: Arc<Notify>,
    /// Cuckoo dialect settings.
    pub cuckoo: CuckooSettings,
    /// Set to true to stop the server (`/exit` in debug mode).
    pub shutdown: watch::Sender<bool>,
    /// CAPE dialect settings.
    pub cape: CapeSettings,
    /// Users and credentials (every dialect's logins and tokens).
    pub auth: nestbox_core::Auth,
    /// Assemblyline dialect settings.
    pub assemblyline: AlSettings,
    /// Assemblyline submissions and ingest queues.
    pub al_repo: Arc<dyn nestbox_core::assemblyline::AlRepo>,
    /// Rendered answers of hot read endpoints, valid for one store data version.
    pub cache: common::cache::ResponseCache,
}

/// The whole HTTP surface.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    // `/apiv2/…` is CAPE's; everything else (including Cuckoo's 404 fallback) is Cuckoo's.
    // `/api/…` is Assemblyline's. A client given a base URL with a trailing slash asks
    // for `//api/…`; that is collapsed before routing (spec assemblyline.md §1).
    // `/metrics`, `/health` and `/ready` are in no dialect (see [`ops`]). The timing
    // layer goes on the inner router, where the matched route pattern is known.
    let metrics = ctx.core.metrics.clone();
    let inner = Router::new()
        .nest("/apiv2", cape::router(ctx.clone()))
        .nest("/api", assemblyline::router(ctx.clone()))
        .merge(ops::router(ctx.clone()))
        .merge(cuckoo::router(ctx))
        .layer(axum::middleware::from_fn_with_state(metrics, ops::track));
    Router::new()
        .fallback_service(tower::ServiceExt::map_request(inner, collapse_api_slashes))
        .layer(axum::middleware::from_fn(common::drain::read_unread_bodies))
}

/// `//api/…` (any number of leading slashes) → `/api/…`; `/api/` → `/api` (the nested
/// Assemblyline router's root, which axum matches without the slash).
fn collapse_api_slashes(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    let collapse = path.starts_with("//") && path.trim_start_matches('/').starts_with("api");
    let root = path.trim_start_matches('/') == "api/";
    if collapse || root {
        let trimmed = path.trim_start_matches('/');
        let fixed = format!(
            "/{}{}",
            if root { "api" } else { trimmed },
            req.uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        if let Ok(uri) = fixed.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}
