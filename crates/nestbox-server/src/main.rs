//! `nestbox`: the server, the CLI client and the offline analyzer, in one binary.
//!
//! This is the composition root: the only place that names the concrete store, blob store
//! and API together. Everything else receives them as trait objects.

mod al_config;
mod analyze_cli;
mod apikey_cli;
mod cape_config;
mod cluster_config;
mod config;
mod emulator_config;
mod logging_config;
mod migrate_cli;
mod qemu_config;
mod sandbox_config;
mod storage_config;
mod submit;
mod users_cli;
mod web_config;
mod yara_config;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nestbox_analyzers::StringsOptions;
use nestbox_analyzers::unpack::UnpackLimits;
use nestbox_api::{ApiContext, CuckooSettings};
use nestbox_core::pipeline::StaticSettings;
use nestbox_core::rule_scan::RuleScanner;
use nestbox_core::{Core, Limits};
use nestbox_worker::{WorkerPool, WorkerSettings};
use tokio::sync::watch;

use crate::config::Config;

/// The version written into reports.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Parser)]
#[command(
    name = "nestbox",
    version,
    about = "A malware-analysis sandbox server speaking the Cuckoo API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and the analysis workers.
    Serve {
        /// What this process does: `api` accepts and serves (no workers), `worker`
        /// claims and analyses tasks (serves nothing), `all` both (a single box).
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
        /// This worker node's name (overrides `cluster.node`).
        #[arg(long)]
        node: Option<String>,
        /// Address to bind (overrides `server.host`).
        #[arg(long)]
        host: Option<String>,
        /// Port (overrides `server.port`).
        #[arg(long)]
        port: Option<u16>,
        /// Configuration file (default: ./nestbox.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Submit a file or a URL to a running server.
    Submit {
        /// A file path, or a URL (http:// or https://).
        target: String,
        /// Server base URL.
        #[arg(long, default_value = "http://127.0.0.1:8090", env = "NESTBOX_SERVER")]
        server: String,
        /// Bearer token, if the server requires one.
        #[arg(long, env = "NESTBOX_TOKEN")]
        token: Option<String>,
    },
    /// Manage users (CAPE logins and tokens; every dialect's users).
    User {
        #[command(subcommand)]
        cmd: users_cli::UserCmd,
        /// Configuration file (default: ./nestbox.toml if present).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Manage CAPE API tokens.
    Token {
        #[command(subcommand)]
        cmd: users_cli::TokenCmd,
        /// Configuration file (default: ./nestbox.toml if present).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Manage Assemblyline API keys.
    Apikey {
        #[command(subcommand)]
        cmd: apikey_cli::ApikeyCmd,
        /// Configuration file (default: ./nestbox.toml if present).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Move a single box onto PostgreSQL: its SQLite rows and, with `--config`, its
    /// samples and artifacts into the store that configuration names (resumable: run it
    /// again after an interruption; what was copied already is skipped).
    Migrate {
        /// The SQLite database: `sqlite://<path>` or a path.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: `postgres://…`.
        #[arg(long)]
        to: String,
        /// The new nodes' configuration file: its `[storage]` (and `data_dir`) receive
        /// the blobs. Without it the blobs stay where they are.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The old data directory holding `store/` and `analyses/` (default: the
        /// directory of the SQLite file).
        #[arg(long)]
        blobs_from: Option<PathBuf>,
    },
    /// The full static pass (hashes, type, strings, documents, PE/ELF/Mach-O, YARA) on
    /// files or directories, without a server: a JSON report, JSON lines or a summary.
    Analyze(analyze_cli::AnalyzeArgs),
}

/// The part a `serve` process plays in a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    /// Accept submissions and serve the APIs; analyse nothing.
    Api,
    /// Claim and analyse tasks; serve nothing.
    Worker,
    /// Both (a single box).
    All,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            role,
            node,
            host,
            port,
            config,
        } => serve(role, node, host, port, config),
        Command::Submit {
            target,
            server,
            token,
        } => submit::run(&target, &server, token.as_deref()),
        Command::Analyze(args) => analyze_cli::run(args, VERSION),
        Command::Migrate {
            from,
            to,
            config,
            blobs_from,
        } => migrate_cli::migrate(&from, &to, config.as_deref(), blobs_from.as_deref()),
        Command::User { cmd, config } => users_cli::user(cmd, config.as_deref()),
        Command::Token { cmd, config } => users_cli::token(cmd, config.as_deref()),
        Command::Apikey { cmd, config } => apikey_cli::apikey(cmd, config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nestbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    role: Role,
    node: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cfg = Config::load(config.as_deref())?;
    if let Some(n) = node {
        cfg.cluster.node = n;
    }
    if let Some(h) = host {
        cfg.server.host = h;
    }
    if let Some(p) = port {
        cfg.server.port = p;
    }
    cfg.validate()?;
    cfg.logging.init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_server(cfg, role))
}

/// The static stage's settings; `rules` is the YARA engine (`None`: no rule scan).
fn static_settings(cfg: &Config, rules: Option<Arc<dyn RuleScanner>>) -> StaticSettings {
    StaticSettings {
        rules,
        version: VERSION.to_owned(),
        strings: StringsOptions {
            min_len: cfg.analysis.strings_min_len,
            max_count: cfg.analysis.strings_max_count,
            ..StringsOptions::default()
        },
        archive_passwords: cfg.analysis.archive_passwords.clone(),
        unpack: UnpackLimits {
            max_total: cfg.analysis.unpack_max_bytes,
            max_members: cfg.analysis.unpack_max_members,
            max_depth: cfg.analysis.unpack_max_depth,
            ..UnpackLimits::default()
        },
        ..StaticSettings::default()
    }
}

async fn run_server(cfg: Config, role: Role) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let stores = cluster_config::open_stores(&cfg).await?;
    let tmp_dir = data_dir.join("tmp");
    let blobs = cfg.storage.blob_store(&data_dir, &tmp_dir)?;
    let core = Core {
        repo: stores.tasks.clone(),
        blobs,
        limits: Limits {
            max_upload: cfg.server.max_upload,
        },
        tmp_dir,
        // A task's `target` is a host path only where the blobs are local files; on a
        // shared bucket the API node has no copy to point at (workers fetch the sample
        // from the bucket), and `target` is the file name.
        targets_dir: match cfg.storage.is_local() {
            true => Some(std::path::absolute(data_dir.join("targets"))?),
            false => None,
        },
        metrics: Default::default(),
    };
    let secret = users_cli::server_secret(&data_dir)?;
    let auth = nestbox_core::Auth::new(stores.users.clone(), secret.clone());
    if role != Role::Worker {
        users_cli::bootstrap_admin(&auth, &cfg.cape).await?;
    }
    let analyses = role != Role::Api && cfg.analysis.workers > 0;
    // The start-up probe of the ns sandbox (blocking: it runs a test detonation).
    let sandbox = cfg.sandbox.clone();
    let machinery = match analyses {
        false => None,
        true => tokio::task::spawn_blocking(move || sandbox.machinery()).await?,
    };
    let emulator = match analyses {
        false => None,
        true => cfg.emulator.machinery(&data_dir),
    };
    let qemu = match analyses {
        false => None,
        true => cfg
            .qemu
            .machinery(Duration::from_secs(cfg.analysis.critical_timeout)),
    };
    // An API node has no machines of its own; the others register theirs (also with no
    // workers, so machines/list shows the configured ones).
    if role != Role::Api {
        let mut machine_specs = cfg.machine_specs();
        if cfg.machines.is_empty() {
            let template = machine_specs[0].clone();
            if machinery.is_some() {
                machine_specs = cfg.sandbox.machine_specs(&template);
            }
            if emulator.is_some() {
                machine_specs.extend(cfg.emulator.machine_specs(&template));
            }
        }
        // QEMU guests are machines of their own section, next to whatever else is
        // configured.
        let template = machine_specs[0].clone();
        machine_specs.extend(cfg.qemu.machine_specs(&template));
        if !cfg.cluster.node.is_empty() {
            // Machine names are unique across the nodes sharing the database.
            for m in &mut machine_specs {
                m.name = format!("{}/{}", cfg.cluster.node, m.name);
            }
        }
        core.repo.sync_machines(&machine_specs).await?;
    }
    // On a box of its own (SQLite, or an unnamed node), a task left running was
    // interrupted by this process's crash. With other nodes on the database it may be
    // theirs and alive: leases tell.
    if role == Role::All && (!stores.shared || cfg.cluster.node.is_empty()) {
        let recovered = core.recover_running(cfg.analysis.reschedule).await?;
        if !recovered.is_empty() {
            tracing::warn!(
                count = recovered.len(),
                "recovered tasks left running by a crash"
            );
        }
    }
    clean_tmp(&core.tmp_dir);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // YARA where analyses run: compiled once here (a broken rule file is logged by name
    // and line and left out), then kept current by the directory poll and SIGHUP.
    let yara = match analyses {
        false => None,
        true => {
            let (yara_cfg, dir) = (cfg.yara.clone(), data_dir.clone());
            tokio::task::spawn_blocking(move || yara_cfg.engine(&dir)).await?
        }
    };
    if let Some(engine) = &yara {
        tokio::spawn(yara_config::watch(
            engine.clone(),
            cfg.yara.reload_interval,
            yara_config::hangup_signal(),
            shutdown_rx.clone(),
        ));
    }

    let mut pool = WorkerPool::new(
        core.clone(),
        WorkerSettings {
            workers: cfg.analysis.workers,
            default_timeout: Duration::from_secs(cfg.analysis.default_timeout),
            critical_timeout: Duration::from_secs(cfg.analysis.critical_timeout),
            poll_interval: Duration::from_millis(cfg.analysis.poll_interval_ms),
            manager: "static".to_owned(),
            static_settings: static_settings(&cfg, yara.map(|e| e as Arc<dyn RuleScanner>)),
            html_report: cfg.analysis.html_report,
            node: cfg.cluster.node.clone(),
            lease: Duration::from_secs(cfg.cluster.lease_secs),
            reschedule: cfg.analysis.reschedule,
            machine_retry: Duration::from_secs(cfg.analysis.machine_retry_secs),
        },
    );
    if let Some(m) = machinery {
        pool = pool.with_machinery(m);
    }
    // Only the emulator slots (tagged `emulator`) run the emulator.
    if let Some(m) = emulator {
        pool = pool.with_tagged_machinery(m);
    }
    // And the QEMU guests (tagged `qemu`) run in QEMU.
    if let Some(m) = qemu {
        pool = pool.with_tagged_machinery(m);
    }
    let ctx = Arc::new(ApiContext {
        core,
        wake: pool.notify(),
        cuckoo: CuckooSettings {
            api_token: cfg.cuckoo.api_token.clone(),
            version: cfg.cuckoo.version.clone(),
            debug: cfg.cuckoo.debug,
        },
        shutdown: shutdown_tx.clone(),
        cape: cfg.cape.settings(),
        auth,
        assemblyline: cfg.assemblyline.settings(cfg.server.max_upload),
        al_repo: stores.al.clone(),
        cache: Default::default(),
    });
    if cfg.cuckoo.api_token.is_empty() {
        tracing::warn!(
            "cuckoo.api_token is empty: the Cuckoo API accepts unauthenticated requests"
        );
    }
    // With no workers this node only accepts and serves (tasks wait for a worker node).
    let workers = analyses.then(|| tokio::spawn(pool.run(shutdown_rx.clone())));
    if role == Role::Worker {
        tracing::info!(node = %cfg.cluster.node, workers = cfg.analysis.workers, "nestbox worker running");
        let probes = cluster_config::serve_probes(&cfg.cluster, ctx, shutdown_rx.clone()).await?;
        let mut stop = shutdown_rx.clone();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
            _ = stop.wait_for(|v| *v) => {}
        }
        let _ = shutdown_tx.send(true);
        if let Some(p) = probes {
            let _ = p.await;
        }
        tracing::info!("waiting for running analyses to finish");
        if let Some(w) = workers {
            let _ = w.await;
        }
        return Ok(());
    }

    let addr: SocketAddr = format!("{}:{}", cfg.server.host, cfg.server.port)
        .parse()
        .context("server address")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    // Tests bind port 0 and read the real address from this line.
    tracing::info!(
        addr = %listener.local_addr()?,
        data_dir = %data_dir.display(),
        blobs = %cfg.storage.describe(&data_dir),
        "nestbox listening"
    );
    let web = nestbox_web::WebSettings {
        auth: cfg.web.auth,
        secure_cookies: cfg.web.secure_cookies,
        session_hours: cfg.web.session_hours,
        version: VERSION.to_owned(),
        workers: cfg.analysis.workers,
        default_timeout: cfg.analysis.default_timeout,
        packages: [
            "exe", "dll", "elf", "sh", "python", "zip", "doc", "pdf", "js", "url",
        ]
        .map(str::to_owned)
        .to_vec(),
        routes: ["none", "internet", "inetsim", "tor", "vpn"]
            .map(str::to_owned)
            .to_vec(),
    };
    // The UI's paths first; everything else is an API dialect's.
    let app =
        nestbox_web::router(ctx.clone(), web, &secret).fallback_service(nestbox_api::router(ctx));
    let mut stop = shutdown_rx.clone();
    let signals = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
            _ = stop.wait_for(|v| *v) => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(signals)
        .await?;
    let _ = shutdown_tx.send(true);
    tracing::info!("waiting for running analyses to finish");
    if let Some(w) = workers {
        let _ = w.await;
    }
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Uploads interrupted by a crash leave temp files; nothing references them.
fn clean_tmp(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("upload-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
