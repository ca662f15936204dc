//! The conformance suite against a real PostgreSQL server (`tests/pg/with-pg.sh`).

use std::sync::Arc;

use nestbox_core::ports::TaskRepo;

use super::*;
use crate::testsuite;

async fn repo(hint: &str) -> Option<PgRepo> {
    let url = testsuite::pg_test_database(hint).await?;
    Some(PgRepo::open(&url).await.expect("open"))
}

#[tokio::test]
async fn pg_conformance() {
    let Some(repo) = repo("conformance").await else {
        return;
    };
    testsuite::run(&repo).await;
    // A second open of a migrated database runs no migration again.
    let again = PgRepo::open(&testsuite_url(&repo).await)
        .await
        .expect("reopen");
    again.close().await;
}

/// The URL of the database `repo` is connected to, rebuilt from the pool's options.
async fn testsuite_url(repo: &PgRepo) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&repo.pool)
        .await
        .expect("current_database");
    let base = std::env::var("NESTBOX_TEST_PG_URL").expect("url");
    let (before, query) = base.split_once('?').unwrap_or((&base, ""));
    let (server, _) = before.rsplit_once('/').expect("path");
    format!("{server}/{db}?{query}")
}

#[tokio::test]
async fn pg_users_conformance() {
    let Some(repo) = repo("users").await else {
        return;
    };
    testsuite::run_users(&repo, &repo).await;
}

#[tokio::test]
async fn pg_al_conformance() {
    let Some(repo) = repo("al").await else {
        return;
    };
    testsuite::run_al(&repo, &repo).await;
    let Some(other) = super::tests::repo("alsearch").await else {
        return;
    };
    testsuite::run_al_search(&other, &other).await;
    let Some(third) = super::tests::repo("alindex").await else {
        return;
    };
    testsuite::run_al_index(&third, &third).await;
    let Some(fourth) = super::tests::repo("alquota").await else {
        return;
    };
    testsuite::run_al_quota(&fourth, &fourth).await;
}

#[tokio::test]
async fn pg_nodes_conformance() {
    let Some(n1) = repo("nodes").await else {
        return;
    };
    let n2 = PgRepo::open(&testsuite_url(&n1).await)
        .await
        .expect("open")
        .with_node("n2");
    testsuite::run_nodes(&n1.with_node("n1"), &n2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_concurrent_claims() {
    let Some(first) = repo("claims").await else {
        return;
    };
    let url = testsuite_url(&first).await;
    // Three pools = three processes, four claimers each, all on the same node's machines.
    let mut handles: Vec<Arc<dyn TaskRepo>> = vec![Arc::new(first)];
    for _ in 0..2 {
        handles.push(Arc::new(PgRepo::open(&url).await.expect("open")));
    }
    testsuite::run_concurrent_claims(handles, 4, 200).await;
}

#[tokio::test]
async fn pg_notify_wakes_listeners() {
    let Some(repo) = repo("notify").await else {
        return;
    };
    let listener = PgRepo::open(&testsuite_url(&repo).await)
        .await
        .expect("open");
    let wake = Arc::new(tokio::sync::Notify::new());
    let relay = tokio::spawn({
        let wake = wake.clone();
        async move { listener.relay_wakeups(wake).await }
    });
    // The relay LISTENs asynchronously: queue until a wake-up arrives.
    let woken = async {
        loop {
            repo.add_task(&nestbox_types::NewTask::new(
                nestbox_types::Category::Url,
                "http://wake.example",
            ))
            .await
            .expect("add_task");
            if tokio::time::timeout(Duration::from_millis(200), wake.notified())
                .await
                .is_ok()
            {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), woken)
        .await
        .expect("a queued task wakes the listening process");
    relay.abort();
}

#[tokio::test]
async fn pg_data_version_moves_with_commits() {
    let Some(repo) = repo("version").await else {
        return;
    };
    let other = PgRepo::open(&testsuite_url(&repo).await)
        .await
        .expect("open");
    let v1 = repo.data_version().await.expect("version").expect("some");
    // (Not "stable when idle": the other tests commit on the same server meanwhile, and
    // the snapshot is server-wide, which only costs cache hits.)
    other
        .add_task(&nestbox_types::NewTask::new(
            nestbox_types::Category::Url,
            "http://v.example",
        ))
        .await
        .expect("add_task");
    let v2 = repo.data_version().await.expect("version").expect("some");
    assert_ne!(v1, v2, "a commit by another pool changes the version");
}

#[tokio::test]
async fn pg_migrate_from_sqlite_is_complete_and_resumable() {
    let Some(target) = repo("migrate").await else {
        return;
    };
    use nestbox_core::users::UserRepo;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = crate::sqlite::SqliteRepo::open(&dir.path().join("nestbox.db"))
        .await
        .expect("open");
    source
        .sync_machines(&[testsuite::machine_spec("m1", "linux", &["x64"])])
        .await
        .expect("sync");
    let sample = source
        .add_sample(&testsuite::new_sample(7))
        .await
        .expect("sample");
    let mut ids = Vec::new();
    for n in 0..2500 {
        let mut t =
            nestbox_types::NewTask::new(nestbox_types::Category::File, format!("/tmp/s{n}"));
        t.sample_id = Some(sample.id);
        t.tags = vec!["x64".into()];
        ids.push(source.add_task(&t).await.expect("add"));
    }
    source.add_error(ids[3], "boom").await.expect("error");
    let (claimed, _) = source
        .claim("w", testsuite::lease())
        .await
        .expect("claim")
        .expect("claimed");
    source
        .add_user(&nestbox_core::users::NewUser {
            username: "alice".into(),
            password_hash: None,
            is_staff: true,
            subscription: String::new(),
            roles: vec!["admin".into()],
        })
        .await
        .expect("user");
    let copied = crate::migrate::sqlite_to_postgres(&source, &target, |_, _| {})
        .await
        .expect("migrate");
    assert!(copied.contains(&("tasks".to_owned(), 2500)), "{copied:?}");
    // An interrupted copy holds part of the rows: running it again completes it.
    sqlx::query("DELETE FROM tasks WHERE id > 1200")
        .execute(&target.pool)
        .await
        .expect("cut");
    crate::migrate::sqlite_to_postgres(&source, &target, |_, _| {})
        .await
        .expect("resume");
    let all = nestbox_types::TaskQuery::default();
    let (a, b) = (
        source.list_tasks(&all).await.expect("list"),
        target.list_tasks(&all).await.expect("list"),
    );
    assert_eq!(a.len(), 2500);
    assert_eq!(
        a, b,
        "every task, with tags, errors and sample, arrives unchanged"
    );
    assert_eq!(
        target
            .task(claimed.id)
            .await
            .expect("task")
            .expect("there")
            .status,
        nestbox_types::TaskStatus::Running
    );
    assert_eq!(
        source.machines().await.expect("m"),
        target.machines().await.expect("m")
    );
    assert_eq!(
        source.users().await.expect("u"),
        target.users().await.expect("u")
    );
    // New ids continue after the copied ones.
    let next = target
        .add_task(&nestbox_types::NewTask::new(
            nestbox_types::Category::Url,
            "http://n",
        ))
        .await
        .expect("add");
    assert_eq!(next.0, 2501);
}

/// Queue benchmark for BENCHMARKS.md (`make bench-scale`): claim latency with `N` pending
/// tasks and claim+finish throughput with 1/2/4 concurrent claimers, PostgreSQL vs SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn bench_queue() {
    let Some(pg) = repo("bench").await else {
        return;
    };
    let pending: i64 = std::env::var("NESTBOX_BENCH_PENDING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let sq = crate::sqlite::SqliteRepo::open(&dir.path().join("bench.db"))
        .await
        .expect("open");
    let now = nestbox_types::Timestamp::now().0;
    sqlx::query(
        "INSERT INTO tasks (target, category, clock, added_on, priority) \
         SELECT 'http://' || n || '.example', 'url', $2, $2 + n, 1 + n % 3 \
         FROM generate_series(1, $1) AS n",
    )
    .bind(pending)
    .bind(now)
    .execute(&pg.pool)
    .await
    .expect("fill pg");
    sqlx::query("ANALYZE tasks")
        .execute(&pg.pool)
        .await
        .expect("analyze");
    sqlx::query(
        "WITH RECURSIVE n(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM n WHERE n < ?1) \
         INSERT INTO tasks (target, category, clock, added_on, priority) \
         SELECT 'http://' || n || '.example', 'url', ?2, ?2 + n, 1 + n % 3 FROM n",
    )
    .bind(pending)
    .bind(now)
    .execute(&sq.writer)
    .await
    .expect("fill sqlite");
    let specs: Vec<_> = (0..8)
        .map(|n| testsuite::machine_spec(&format!("b{n}"), "linux", &[]))
        .collect();
    let engines: Vec<(&str, Arc<dyn TaskRepo>)> =
        vec![("postgres", Arc::new(pg)), ("sqlite", Arc::new(sq))];
    for (name, repo) in engines {
        repo.sync_machines(&specs).await.expect("sync");
        // Latency of one claim (and release) with `pending` tasks waiting.
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = std::time::Instant::now();
            let (task, m) = repo
                .claim("bench", testsuite::lease())
                .await
                .expect("claim")
                .expect("a task");
            times.push(t.elapsed());
            repo.transition(
                task.id,
                &[nestbox_types::TaskStatus::Running],
                nestbox_types::TaskStatus::Reported,
            )
            .await
            .expect("finish");
            repo.unlock_machine(m.id).await.expect("unlock");
        }
        times.sort_unstable();
        println!(
            "{name}: claim with {pending} pending: p50 {:?} p99 {:?}",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
        // Claim + finish cycles per second with 1, 2, 4 concurrent claimers.
        for claimers in [1usize, 2, 4] {
            let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let until = std::time::Instant::now() + Duration::from_secs(5);
            let mut joins = Vec::new();
            for c in 0..claimers {
                let (repo, done) = (repo.clone(), done.clone());
                joins.push(tokio::spawn(async move {
                    let worker = format!("bench{c}");
                    while std::time::Instant::now() < until {
                        if let Some((task, m)) = repo
                            .claim(&worker, testsuite::lease())
                            .await
                            .expect("claim")
                        {
                            repo.transition(
                                task.id,
                                &[nestbox_types::TaskStatus::Running],
                                nestbox_types::TaskStatus::Reported,
                            )
                            .await
                            .expect("finish");
                            repo.unlock_machine(m.id).await.expect("unlock");
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }));
            }
            for j in joins {
                j.await.expect("claimer");
            }
            let n = done.load(std::sync::atomic::Ordering::Relaxed);
            println!(
                "{name}: {claimers} claimer(s): {:.0} claims/s ({:.0} tasks/hour)",
                n as f64 / 5.0,
                n as f64 / 5.0 * 3600.0
            );
        }
    }
}
