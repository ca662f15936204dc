//! `nestbox migrate`: a single box (SQLite + a local data dir) onto the cluster engines.
//!
//! Rows go into PostgreSQL ([`nestbox_store::migrate`]); with `--config`, the samples
//! and artifacts go into the blob store that configuration names (a bucket, or another
//! directory) through [`nestbox_store::blob::copy`], and the server secret (which CAPE
//! tokens are derived from) into its data dir. Every step skips what is already there,
//! so an interrupted migration is finished by running the same command again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use nestbox_store::LocalBlobStore;
use nestbox_store::blob::copy::{CopyStats, copy_blobs};

use crate::cluster_config;
use crate::config::Config;

/// How often the blob copy reports progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub fn migrate(
    from: &str,
    to: &str,
    config: Option<&Path>,
    blobs_from: Option<&Path>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        cluster_config::is_postgres(to),
        "--to must be a postgres:// URL"
    );
    let path = PathBuf::from(from.strip_prefix("sqlite://").unwrap_or(from));
    anyhow::ensure!(path.is_file(), "no SQLite database at {}", path.display());
    let old_data = match blobs_from {
        Some(dir) => dir.to_owned(),
        None => path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    // Read (and checked) before anything is copied, so a typo fails fast.
    let dest = config
        .map(|c| {
            let cfg = Config::load(Some(c))?;
            cfg.validate()?;
            anyhow::Ok(cfg)
        })
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Opening migrates both schemas to the current version first.
        let source = nestbox_store::sqlite::SqliteRepo::open(&path).await?;
        let target = nestbox_store::postgres::PgRepo::open(to).await?;
        let copied = nestbox_store::migrate::sqlite_to_postgres(&source, &target, |table, rows| {
            eprintln!("migrate: {table}: {rows} rows");
        })
        .await?;
        for (table, rows) in copied {
            println!("{table}\t{rows}");
        }
        match dest {
            Some(cfg) => migrate_blobs(&old_data, &cfg).await,
            None => {
                eprintln!(
                    "migrate: blobs not moved (no --config): the new nodes need {}",
                    old_data.display()
                );
                Ok(())
            }
        }
    })
}

/// Copies the old data dir's blobs into the store of `cfg`, and its server secret.
async fn migrate_blobs(old_data: &Path, cfg: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        old_data.is_dir(),
        "no data directory at {} (--blobs-from)",
        old_data.display()
    );
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    copy_secret(old_data, &cfg.data_dir)?;
    if cfg.storage.is_local() && same_dir(old_data, &cfg.data_dir) {
        eprintln!("migrate: blobs already in {}", old_data.display());
        return Ok(());
    }
    let scratch = cfg.data_dir.join("tmp");
    let to = cfg.storage.blob_store(&cfg.data_dir, &scratch)?;
    to.probe()
        .await
        .with_context(|| format!("the blob store {}", cfg.storage.describe(&cfg.data_dir)))?;
    let from = LocalBlobStore::new(old_data);
    let mut last = Instant::now();
    let stats = copy_blobs(&from, &*to, &scratch, |s: &CopyStats| {
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            eprintln!(
                "migrate: blobs: {} copied ({} bytes), {} already there",
                s.copied, s.bytes, s.skipped
            );
        }
    })
    .await?;
    println!("blobs copied\t{}", stats.copied);
    println!("blobs skipped\t{}", stats.skipped);
    println!("bytes copied\t{}", stats.bytes);
    anyhow::ensure!(
        stats.corrupt.is_empty(),
        "{} sample(s) in {} do not match their sha256 and were not copied: {}",
        stats.corrupt.len(),
        old_data.display(),
        stats.corrupt.join(", ")
    );
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// CAPE tokens are derived from `server.secret`: the new data dir needs the old one.
fn copy_secret(old_data: &Path, new_data: &Path) -> anyhow::Result<()> {
    const NAME: &str = "server.secret";
    let old = old_data.join(NAME);
    let new = new_data.join(NAME);
    let Ok(secret) = std::fs::read(&old) else {
        return Ok(());
    };
    match std::fs::read(&new) {
        Ok(existing) if existing == secret => Ok(()),
        Ok(_) => {
            eprintln!(
                "migrate: {} differs from {}: CAPE tokens issued by the old box will not \
                 be accepted (copy the old file over to keep them)",
                new.display(),
                old.display()
            );
            Ok(())
        }
        Err(_) => crate::users_cli::write_new_secret(&new, &secret),
    }
}
