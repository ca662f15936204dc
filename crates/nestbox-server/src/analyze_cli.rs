//! `nestbox analyze PATH...`: the full static pass (hashes, file type, strings, PE/ELF/
//! Mach-O structure, YARA) on files and directories, offline, like running `yara` or
//! `capa`. Directories are walked recursively (symlinked directories are not followed).
//! One file prints its report as pretty JSON (Cuckoo's `report.json` indent); several
//! print JSON lines, or `--format summary` one line per file. Files are analysed in
//! parallel; output keeps the input order. Progress goes to stderr when it is a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use nestbox_core::pipeline::{self, StaticSettings};
use nestbox_core::rule_scan::RuleScanner;
use nestbox_types::report::Report;

use crate::config::Config;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Pretty JSON for one file, JSON lines for several.
    Auto,
    /// One pretty JSON report (a single file only).
    Json,
    /// One compact JSON report per line.
    Jsonl,
    /// One human-readable line per file.
    Summary,
}

/// `nestbox analyze` arguments.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Files or directories (walked recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// More YARA rule directories (added to the configured ones).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Skip YARA.
    #[arg(long)]
    pub no_yara: bool,
    /// Parallel analyses (default: the number of CPUs).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Configuration file (default: ./nestbox.toml if present) for `[yara]` and
    /// `[analysis]` string settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Every regular file under `paths`, in order (each directory's entries sorted).
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                walk(&e.path(), out)?;
            } else if kind.is_file() || (kind.is_symlink() && e.path().is_file()) {
                out.push(e.path());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out).with_context(|| format!("walking {}", p.display()))?;
        } else if meta.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{} is not a regular file or a directory", p.display());
        }
    }
    Ok(out)
}

/// The static report of one file, as a worker would write it for a task with id 0.
pub fn report_for(path: &Path, settings: &StaticSettings, version: &str) -> Report {
    let now = nestbox_types::Timestamp::now();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let task = nestbox_types::Task {
        id: nestbox_types::TaskId(0),
        spec: nestbox_types::NewTask::new(nestbox_types::Category::File, name.clone()),
        clock: now,
        added_on: now,
        started_on: Some(now),
        completed_on: None,
        status: nestbox_types::TaskStatus::Running,
        processing: None,
        sample: None,
        guest: None,
        errors: Vec::new(),
    };
    let mut report = pipeline::skeleton(&task, version);
    pipeline::triage_file(&mut report, path, &name, None, settings);
    report.info.ended = Some(nestbox_types::Timestamp::now().epoch_f64());
    pipeline::score(&mut report);
    report
}

fn summary_line(path: &Path, r: &Report) -> String {
    let Some(f) = &r.target.file else {
        return format!("{}\terror: {}", path.display(), r.debug.errors.join("; "));
    };
    let mut yara: Vec<String> = f.yara.iter().map(|m| m.name.clone()).collect();
    // Archive members' matches as `member:rule`.
    let members = r
        .static_analysis
        .get("archive")
        .and_then(|a| a["members"].as_array());
    for m in members.into_iter().flatten() {
        for hit in m["yara"].as_array().into_iter().flatten() {
            if let (Some(member), Some(rule)) = (m["name"].as_str(), hit["name"].as_str()) {
                yara.push(format!("{member}:{rule}"));
            }
        }
    }
    let mut line = format!(
        "{}  {}  [{}]  {}",
        f.sha256,
        path.display(),
        f.file_type,
        if yara.is_empty() {
            "-".to_owned()
        } else {
            yara.join(",")
        }
    );
    if let Some(h) = r.static_analysis.get("pe_imphash").and_then(|v| v.as_str()) {
        line.push_str(&format!("  imphash={h}"));
    }
    if !r.debug.errors.is_empty() {
        line.push_str(&format!("  errors={}", r.debug.errors.len()));
    }
    line
}

/// Runs the command.
pub fn run(args: AnalyzeArgs, version: &str) -> anyhow::Result<()> {
    let files = collect(&args.paths)?;
    let cfg = Config::load(args.config.as_deref())?;
    let single = files.len() == 1 && args.paths.len() == 1 && args.paths[0].is_file();
    let format = match args.format {
        Format::Auto if single => Format::Json,
        Format::Auto => Format::Jsonl,
        Format::Json if !single => anyhow::bail!("--format json takes exactly one file"),
        f => f,
    };
    let rules: Option<Arc<dyn RuleScanner>> = if args.no_yara || !cfg.yara.enabled {
        None
    } else {
        let mut sources = cfg.yara.sources(&cfg.data_dir);
        sources.dirs.extend(args.rules.iter().cloned());
        let engine = nestbox_yara::YaraEngine::load(
            sources,
            std::time::Duration::from_secs(cfg.yara.scan_timeout.max(1)),
        );
        for e in engine.errors() {
            eprintln!("nestbox: YARA rule file skipped: {e}");
        }
        Some(Arc::new(engine))
    };
    let settings = Arc::new(crate::static_settings(&cfg, rules));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64)
        .min(files.len().max(1));

    let files = Arc::new(files);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<(usize, u64, String)>();
    let mut workers = Vec::new();
    for _ in 0..jobs {
        let (files, next, tx, settings) =
            (files.clone(), next.clone(), tx.clone(), settings.clone());
        let version = version.to_owned();
        workers.push(std::thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let report = report_for(path, &settings, &version);
                let size = report.target.file.as_ref().map_or(0, |f| f.size);
                let text = match format {
                    Format::Json => {
                        String::from_utf8_lossy(&nestbox_worker::render_report_json(&report))
                            .into_owned()
                    }
                    Format::Summary => summary_line(path, &report),
                    _ => serde_json::to_string(&report).unwrap_or_default(),
                };
                if tx.send((i, size, text)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let progress = files.len() > 1 && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut pending = std::collections::BTreeMap::new();
    let (mut printed, mut bytes) = (0usize, 0u64);
    let mut out = std::io::stdout().lock();
    for (i, size, text) in rx {
        bytes += size;
        pending.insert(i, text);
        while let Some(text) = pending.remove(&printed) {
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
            printed += 1;
        }
        if progress {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r{printed}/{} files, {:.1} MB, {:.1} MB/s ",
                files.len(),
                bytes as f64 / 1e6,
                bytes as f64 / 1e6 / secs
            );
        }
    }
    if progress {
        eprintln!();
    }
    for w in workers {
        let _ = w.join();
    }
    out.flush()?;
    anyhow::ensure!(printed == files.len(), "an analysis thread crashed");
    Ok(())
}
