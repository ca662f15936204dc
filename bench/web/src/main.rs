//! `make bench-web`: server-side times of the web UI's heaviest pages, through the real
//! router (session layer, handlers, store, templates), without a network in between.
//!
//! * the queue at `BENCH_WEB_TASKS` tasks (default 1 000 000): first page, a keyset page
//!   half-way back, a status + score filter, a search term shared by 1 000 tasks;
//! * the report page of a task with 50 000 calls (5 processes) and 500 dropped files, and
//!   pages of its call log (first read parses the log; later pages come from the cache).
//!
//! Prints a Markdown table of median and p95 over `BENCH_WEB_RUNS` runs (default 30).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use nestbox_api::{AlSettings, ApiContext, CapeEndpoints, CapeSettings, CuckooSettings};
use nestbox_core::ports::{BlobStore, TaskRepo};
use nestbox_core::{Auth, Core, Limits, keys};
use nestbox_store::blob::LocalBlobStore;
use nestbox_store::sqlite::SqliteRepo;
use nestbox_types::report::{FileInfo, Report, Target};
use nestbox_types::{Category, NewTask, TaskStatus};
use serde_json::json;
use tower::ServiceExt;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fills the task table in one statement per table (a recursive CTE), which takes seconds
/// where a million `add_task` calls would take minutes. Every 50th task is pending, the
/// rest reported with index rows; `hostN.example` (N = id mod 1000) is a search term.
async fn fill(db: &std::path::Path, tasks: usize) -> anyhow::Result<()> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    sqlx::query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) \
         INSERT INTO tasks (target, category, clock, added_on, started_on, completed_on, \
            status, owner) \
         SELECT 'http://host' || (x % 1000) || '.example/' || x, 'url', \
            1700000000000000 + x * 1000000, 1700000000000000 + x * 1000000, \
            1700000001000000 + x * 1000000, 1700000060000000 + x * 1000000, \
            CASE WHEN x % 50 = 0 THEN 'pending' ELSE 'reported' END, 'bench' FROM c",
    )
    .bind(tasks as i64)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO reports_index (task_id, score, malstatus, signatures) \
         SELECT id, (id % 101) / 10.0, CASE WHEN id % 101 >= 70 THEN 'Malicious' \
            WHEN id % 101 >= 40 THEN 'Suspicious' ELSE 'Clean' END, id % 7 \
         FROM tasks WHERE status = 'reported'",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO report_terms (term, task_id) \
         SELECT 'host' || (id % 1000) || '.example', id FROM tasks WHERE status = 'reported'",
    )
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

/// A report with `calls` calls over 5 processes and `dropped` dropped files.
fn big_report(id: i64, calls: usize, dropped: usize) -> Report {
    let per = calls / 5;
    let processes: Vec<_> = (0..5)
        .map(|p| {
            let calls: Vec<_> = (0..per)
                .map(|i| {
                    json!({
                        "timestamp": format!("1795418077.{i:06}"),
                        "api": if i % 3 == 0 { "openat" } else { "read" },
                        "category": "file",
                        "arguments": {"dirfd": "AT_FDCWD", "filename": format!("/tmp/file{i}.dat"), "flags": "O_RDONLY"},
                        "return": i % 17,
                        "status": true,
                        "pid": 1000 + p,
                    })
                })
                .collect();
            json!({"pid": 1000 + p, "ppid": if p == 0 { 1 } else { 1000 }, "process_name": format!("proc{p}"),
                   "process_path": format!("/usr/bin/proc{p}"), "command_line": format!("proc{p} --run"), "calls": calls})
        })
        .collect();
    let tree_children: Vec<_> = (1..5)
        .map(|p| json!({"pid": 1000 + p, "ppid": 1000, "process_name": format!("proc{p}"), "command_line": "x", "children": []}))
        .collect();
    let mut r = Report {
        target: Target {
            category: "file".into(),
            file: Some(FileInfo {
                name: "big.bin".into(),
                sha256: "ab".repeat(32),
                ..Default::default()
            }),
            ..Default::default()
        },
        malstatus: "Malicious".into(),
        malscore: 8.0,
        ..Default::default()
    };
    r.info.id = id;
    r.behavior.processes = processes;
    r.behavior.processtree = vec![json!({"pid": 1000, "ppid": 1, "process_name": "proc0",
        "command_line": "proc0 --run", "children": tree_children})];
    r.dropped = (0..dropped)
        .map(|i| FileInfo {
            name: format!("dropped{i}.bin"),
            path: format!("files/{i}"),
            size: 1000 + i as u64,
            sha256: format!("{i:064x}"),
            file_type: "data".into(),
            filepath: Some(format!("/tmp/dropped{i}.bin")),
            ..Default::default()
        })
        .collect();
    r
}

async fn time(
    app: &axum::Router,
    uri: &str,
    runs: usize,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let res = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty())?)
            .await?;
        anyhow::ensure!(res.status() == StatusCode::OK, "{uri}: {}", res.status());
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
        times.push(t.elapsed());
        size = body.len();
    }
    times.sort();
    Ok((
        times[runs / 2],
        times[(runs * 95 / 100).min(runs - 1)],
        size,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tasks = env_num("BENCH_WEB_TASKS", 1_000_000);
    let runs = env_num("BENCH_WEB_RUNS", 30).max(1);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("nestbox.db");
    let repo = Arc::new(SqliteRepo::open(&db).await?);
    let t = Instant::now();
    fill(&db, tasks).await?;
    eprintln!(
        "bench-web: {tasks} tasks in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let blobs = Arc::new(LocalBlobStore::new(dir.path()));
    let core = Core {
        repo: repo.clone(),
        blobs: blobs.clone(),
        limits: Limits {
            max_upload: 1 << 30,
        },
        tmp_dir: dir.path().join("tmp"),
        targets_dir: None,
        metrics: Default::default(),
    };
    // The big report's task.
    let id = core
        .create_task(&NewTask::new(Category::File, "/tmp/big.bin"))
        .await?;
    repo.transition(id, &[TaskStatus::Pending], TaskStatus::Reported)
        .await?;
    let report = big_report(id.0, 50_000, 500);
    let json = serde_json::to_vec(&report)?;
    eprintln!(
        "bench-web: report.json of {:.1} MB",
        json.len() as f64 / 1e6
    );
    blobs.put(&keys::report_json(id), json).await?;

    let (shutdown, _) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(ApiContext {
        core,
        wake: Default::default(),
        cuckoo: CuckooSettings {
            api_token: String::new(),
            version: "2.0.7".into(),
            debug: false,
        },
        shutdown,
        cape: CapeSettings {
            token_auth_enabled: false,
            ratelimit: false,
            url: "http://example.tld".into(),
            version: "2.5".into(),
            max_sample_size: 1 << 30,
            zip_pwd: "infected".into(),
            endpoints: CapeEndpoints::default(),
        },
        auth: Auth::new(repo.clone(), vec![7; 32]),
        assemblyline: AlSettings::default(),
        al_repo: repo.clone(),
        cache: Default::default(),
    });
    let settings = nestbox_web::WebSettings {
        auth: false,
        secure_cookies: false,
        session_hours: 12,
        version: "bench".into(),
        workers: 0,
        default_timeout: 120,
        packages: vec![],
        routes: vec![],
    };
    let app = nestbox_web::router(ctx, settings, &[7; 32]);

    let half = tasks / 2;
    let cases = [
        ("queue, first page", "/".to_owned()),
        (
            "queue, keyset page half-way back",
            format!("/?before={half}"),
        ),
        (
            "queue, status + min score",
            "/?status=reported&min_score=7".to_owned(),
        ),
        (
            "queue, search term (1 000 hits)",
            "/?q=host123.example".to_owned(),
        ),
        ("queue JSON (live update)", "/ui/tasks.json".to_owned()),
        (
            "report page, 50k calls + 500 dropped",
            format!("/analysis/{id}/"),
        ),
        (
            "call log page 50 (cached)",
            format!("/analysis/{id}/calls.json?pid=1002&page=50"),
        ),
        (
            "call log filtered (cached)",
            format!("/analysis/{id}/calls.json?pid=1002&q=openat&page=3"),
        ),
    ];
    // The first call-log read parses the report once; time it on its own.
    let first = time(&app, &format!("/analysis/{id}/calls.json?pid=1001"), 1).await?;
    println!("| page | median | p95 | bytes |");
    println!("|---|---|---|---|");
    for (name, uri) in cases {
        time(&app, &uri, 2).await?; // warm the statement cache and page cache
        let (med, p95, size) = time(&app, &uri, runs).await?;
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {size} |",
            med.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3
        );
    }
    println!(
        "| call log, first read of a process (parses the report) | {:.1} ms | – | {} |",
        first.0.as_secs_f64() * 1e3,
        first.2
    );
    Ok(())
}
