//! `nestbox-bench-hello`: the ceiling for the HTTP API benchmark (`bench/api/run.sh`).
//!
//! A bare axum router with one route, `GET /`, answering `{"message":"hello","status":"OK"}`,
//! built with the same axum features and the same tokio multi-thread runtime (defaults) as
//! `nestbox serve`. Run on the same pinned core, its requests per second are the most an
//! axum handler can do there; nestbox's own work per request is the gap to it.
//!
//! Usage: `nestbox-bench-hello [PORT]` (else `$PORT`, else 8091); binds 127.0.0.1 only and
//! prints `hello listening addr=127.0.0.1:PORT` on stderr once bound.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// The body of every answer. Serialised per request, as nestbox's answers are.
#[derive(Serialize)]
struct Hello {
    message: &'static str,
    status: &'static str,
}

async fn hello() -> Json<Hello> {
    Json(Hello {
        message: "hello",
        status: "OK",
    })
}

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
    {
        Some(p) => p.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad port {p:?}"))
        })?,
        None => 8091,
    };
    // Same runtime as `nestbox serve`: multi-thread with default settings, all drivers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        eprintln!("hello listening addr={}", listener.local_addr()?);
        axum::serve(listener, Router::new().route("/", get(hello))).await
    })
}
