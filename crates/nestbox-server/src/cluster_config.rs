//! `[cluster]`: several nestbox processes (API nodes, worker nodes) on one PostgreSQL
//! database, and how the pieces are wired from the configuration (`database.url`).

use std::sync::Arc;

use anyhow::Context;
use nestbox_core::assemblyline::AlRepo;
use nestbox_core::ports::TaskRepo;
use nestbox_core::users::UserRepo;
use nestbox_store::postgres::PgRepo;
use nestbox_store::sqlite::SqliteRepo;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// `[cluster]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This worker node's name, unique among the nodes sharing a database: its machines
    /// are registered as `<node>/<machine>` and only its workers claim them; its workers
    /// are `<node>/worker<n>`. Default empty (a single box).
    pub node: String,
    /// Seconds a worker's lease on a running task lasts; renewed every third of that. A
    /// task whose worker stopped renewing is recovered by another worker after this long.
    /// Default 60.
    pub lease_secs: u64,
    /// Where a worker-only node (`--role worker`) serves `/health`, `/ready` and `/metrics`
    /// for an orchestrator's probes and a Prometheus scrape (`0.0.0.0:8091`); port 0 picks
    /// a free one (logged). Default empty: no listener. API and `all` nodes serve these
    /// on their API port.
    pub probe_listen: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: String::new(),
            lease_secs: 60,
            probe_listen: String::new(),
        }
    }
}

impl ClusterConfig {
    /// Adds the section's problems to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.lease_secs == 0 {
            problems.push("cluster.lease_secs must be at least 1".to_owned());
        }
        if !self.probe_listen.is_empty()
            && self.probe_listen.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "cluster.probe_listen {:?}: expected host:port (an IP address)",
                self.probe_listen
            ));
        }
        if self.node.contains(|c: char| c.is_whitespace() || c == '/') {
            problems.push(format!(
                "cluster.node {:?}: no spaces or slashes",
                self.node
            ));
        }
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The stores the configuration names, as the ports the use-cases take.
#[derive(Clone)]
pub struct Stores {
    /// Tasks, samples, machines (the queue).
    pub tasks: Arc<dyn TaskRepo>,
    /// Users and credentials.
    pub users: Arc<dyn UserRepo>,
    /// Assemblyline records.
    pub al: Arc<dyn AlRepo>,
    /// Whether other processes may work on the same database (PostgreSQL): start-up
    /// recovery of `running` tasks would then steal live analyses, and leases recover
    /// them instead.
    pub shared: bool,
}

/// Opens the database of `database.url` (PostgreSQL, or the SQLite file) for `node`.
pub async fn open_stores(cfg: &Config) -> anyhow::Result<Stores> {
    let node = cfg.cluster.node.as_str();
    if is_postgres(&cfg.database.url) {
        let repo = Arc::new(
            PgRepo::open(&cfg.database.url)
                .await
                .context("connecting to the PostgreSQL database")?
                .with_node(node),
        );
        return Ok(Stores {
            tasks: repo.clone(),
            users: repo.clone(),
            al: repo,
            shared: true,
        });
    }
    let path = cfg.sqlite_path();
    let repo = Arc::new(
        SqliteRepo::open(&path)
            .await
            .with_context(|| format!("opening the database {}", path.display()))?
            .with_node(node),
    );
    Ok(Stores {
        tasks: repo.clone(),
        users: repo.clone(),
        al: repo,
        shared: false,
    })
}

/// Serves `/health`, `/ready`, `/health/workers` and `/metrics` on `cluster.probe_listen`
/// (a worker-only node has no API port) until `shutdown`; `None` when not configured.
pub async fn serve_probes(
    cfg: &ClusterConfig,
    ctx: Arc<nestbox_api::ApiContext>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if cfg.probe_listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&cfg.probe_listen)
        .await
        .with_context(|| format!("binding cluster.probe_listen {}", cfg.probe_listen))?;
    // Tests bind port 0 and read the real address from this line.
    tracing::info!(probe_addr = %listener.local_addr()?, "worker probes listening");
    let app = nestbox_api::ops::router(ctx);
    Ok(Some(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|v| *v).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "the probe listener failed");
        }
    })))
}
