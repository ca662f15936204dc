use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nestbox_core::ports::TaskRepo;
use nestbox_types::{Category, NewTask, TaskId, TaskQuery, TaskStatus};

use super::*;
use crate::testsuite;
use sqlx::Row;

async fn temp_repo() -> (tempfile::TempDir, SqliteRepo) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = SqliteRepo::open(&dir.path().join("nestbox.db"))
        .await
        .expect("open");
    (dir, repo)
}

fn url_task(n: usize) -> NewTask {
    NewTask::new(Category::Url, format!("http://{n}.example"))
}

#[tokio::test]
async fn sqlite_conformance() {
    let (_dir, repo) = temp_repo().await;
    testsuite::run(&repo).await;
}

#[tokio::test]
async fn sqlite_in_memory_conformance() {
    let repo = SqliteRepo::open_in_memory().await.expect("open");
    testsuite::run(&repo).await;
}

#[tokio::test]
async fn pragmas_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not/yet/there.db");
    let repo = SqliteRepo::open(&path)
        .await
        .expect("open creates the file");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&repo.writer)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&repo.reader)
        .await
        .expect("pragma");
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&repo.writer)
        .await
        .expect("pragma");
    assert_eq!(sync, 1, "NORMAL");
    // Reader connections are read-only: a write through them is a bug we want loud.
    assert!(
        sqlx::query("DELETE FROM tasks")
            .execute(&repo.reader)
            .await
            .is_err()
    );

    let id = repo.add_task(&url_task(1)).await.expect("add");
    repo.close().await;
    drop(repo);

    // Reopening runs the (already applied) migrations again without complaint.
    let repo = SqliteRepo::open(&path).await.expect("reopen");
    assert_eq!(
        repo.task(id).await.expect("task").map(|t| t.spec),
        Some(url_task(1))
    );
}

/// The query plan of `sql`, one line per step; `list` binds TASK_LIST's parameters.
async fn plan(repo: &SqliteRepo, sql: &'static str, list: bool) -> String {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    if list {
        q = q
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(50_i64)
            .bind(0_i64);
    }
    let rows = q.fetch_all(&repo.reader).await.expect("explain");
    rows.iter()
        .map(|r| r.try_get::<String, _>("detail").expect("detail"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn list_and_claim_use_indexes() {
    let (_dir, repo) = temp_repo().await;
    // The statements behind every `tasks/list` and every claim must walk an index in the
    // wanted order and stop at the limit, not sort the whole table.
    let list = plan(&repo, TASK_LIST, true).await;
    assert!(
        list.contains("USING INDEX tasks_completed_on_idx"),
        "tasks/list should walk the completed_on index:\n{list}"
    );
    assert!(
        !list.contains("TEMP B-TREE FOR ORDER BY"),
        "the page must come out of the index in order, not be sorted:\n{list}"
    );
    let claim = plan(&repo, CLAIM_PICK, false).await;
    assert!(
        claim.contains("USING INDEX tasks_queue_idx"),
        "claim should walk the queue index:\n{claim}"
    );
    assert!(
        !claim.contains("TEMP B-TREE FOR ORDER BY"),
        "claim must not sort:\n{claim}"
    );
}

/// Runs `claimers` tasks per repo that claim until the queue is empty, "analyse" and
/// release the machine; returns every claimed task id.
async fn claim_all(repos: Vec<SqliteRepo>, claimers: usize, tasks: usize) -> Vec<TaskId> {
    let claimed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (r, repo) in repos.into_iter().enumerate() {
        for c in 0..claimers {
            let repo = repo.clone();
            let claimed = Arc::clone(&claimed);
            handles.push(tokio::spawn(async move {
                let worker = format!("w{r}.{c}");
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    assert!(Instant::now() < deadline, "claimers did not finish");
                    match repo
                        .claim(&worker, testsuite::lease())
                        .await
                        .expect("claim must not fail")
                    {
                        Some((task, machine)) => {
                            assert_eq!(task.status, TaskStatus::Running);
                            assert_eq!(task.processing.as_deref(), Some(worker.as_str()));
                            assert!(machine.locked);
                            claimed.lock().expect("lock").push(task.id);
                            tokio::task::yield_now().await;
                            assert!(
                                repo.transition(
                                    task.id,
                                    &[TaskStatus::Running],
                                    TaskStatus::Completed
                                )
                                .await
                                .expect("transition")
                            );
                            repo.unlock_machine(machine.id).await.expect("unlock");
                        }
                        None => {
                            if claimed.lock().expect("lock").len() >= tasks {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
            }));
        }
    }
    for h in handles {
        h.await.expect("claimer panicked");
    }
    Arc::try_unwrap(claimed)
        .expect("claimers done")
        .into_inner()
        .expect("lock")
}

async fn seed_queue(repo: &SqliteRepo, tasks: usize) -> BTreeSet<TaskId> {
    repo.sync_machines(&[
        testsuite::machine_spec("m1", "windows", &[]),
        testsuite::machine_spec("m2", "windows", &[]),
    ])
    .await
    .expect("sync");
    let mut ids = BTreeSet::new();
    for n in 0..tasks {
        ids.insert(repo.add_task(&url_task(n)).await.expect("add"));
    }
    ids
}

fn assert_each_once(claimed: Vec<TaskId>, want: &BTreeSet<TaskId>) {
    let n = claimed.len();
    let set: BTreeSet<TaskId> = claimed.into_iter().collect();
    assert_eq!(set.len(), n, "a task was claimed twice");
    assert_eq!(&set, want, "every task is claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims() {
    let (_dir, repo) = temp_repo().await;
    let want = seed_queue(&repo, 50).await;
    let claimed = claim_all(vec![repo.clone()], 4, want.len()).await;
    assert_each_once(claimed, &want);
    let counts = repo.status_counts().await.expect("counts");
    assert_eq!(counts.get(TaskStatus::Completed), 50);
    assert!(
        repo.machines()
            .await
            .expect("machines")
            .iter()
            .all(|m| !m.locked)
    );
}

/// Two `SqliteRepo`s on one file stand in for two processes: their writers really compete
/// for SQLite's lock, so this exercises busy_timeout + BEGIN IMMEDIATE, not the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_across_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let a = SqliteRepo::open(&path).await.expect("open a");
    let b = SqliteRepo::open(&path).await.expect("open b");
    let want = seed_queue(&a, 50).await;
    let claimed = claim_all(vec![a, b.clone()], 2, want.len()).await;
    assert_each_once(claimed, &want);
    assert_eq!(
        b.status_counts()
            .await
            .expect("counts")
            .get(TaskStatus::Completed),
        50
    );
}

/// Throughput of `tasks/list/50` over 10k tasks. Run with
/// `cargo test -p nestbox-store --release -- --ignored --nocapture list_throughput`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn list_throughput() {
    let (_dir, repo) = temp_repo().await;
    let sample = repo
        .add_sample(&testsuite::new_sample(1))
        .await
        .expect("sample");
    for n in 0..10_000 {
        let mut t = url_task(n);
        t.tags = vec!["a".into(), "b".into()];
        if n % 2 == 0 {
            t.sample_id = Some(sample.id);
        }
        let id = repo.add_task(&t).await.expect("add");
        if n % 3 == 0 {
            repo.transition(id, &[TaskStatus::Pending], TaskStatus::Completed)
                .await
                .expect("cas");
            repo.add_error(id, "err").await.expect("err");
        }
    }
    let query = TaskQuery {
        limit: Some(50),
        offset: Some(100),
        ..TaskQuery::default()
    };
    let per_task = 2_000;
    let tasks = 8;
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let repo = repo.clone();
        let query = query.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let page = repo.list_tasks(&query).await.expect("list");
                assert_eq!(page.len(), 50);
            }
        }));
    }
    for h in handles {
        h.await.expect("lister");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "list 50 of 10k: {:.0} req/s",
        f64::from(per_task * tasks) / secs
    );
}

#[tokio::test]
async fn sqlite_users_conformance() {
    let (_dir, repo) = temp_repo().await;
    testsuite::run_users(&repo, &repo).await;
    let repo = SqliteRepo::open_in_memory().await.expect("open");
    testsuite::run_users(&repo, &repo).await;
}

/// `data_version` moves on every commit, by this repo or by another process's connection,
/// and stays put while nothing is written (the API caches list/view answers on it).
#[tokio::test]
async fn data_version_tracks_every_writer() {
    use nestbox_core::ports::TaskRepo;
    use nestbox_types::{Category, NewTask};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.db");
    let a = SqliteRepo::open(&path).await.expect("open a");
    let b = SqliteRepo::open(&path).await.expect("open b");
    let v0 = a
        .data_version()
        .await
        .expect("v")
        .expect("file dbs have a version");
    assert_eq!(
        a.data_version().await.unwrap(),
        Some(v0),
        "stable without writes"
    );
    let id = a
        .add_task(&NewTask::new(Category::Url, "http://v.example"))
        .await
        .unwrap();
    let v1 = a.data_version().await.unwrap().unwrap();
    assert_ne!(v1, v0, "own writes move it");
    b.set_custom(id, "other process").await.unwrap();
    let v2 = a.data_version().await.unwrap().unwrap();
    assert_ne!(v2, v1, "another connection's writes move it");
    let mem = SqliteRepo::open_in_memory().await.unwrap();
    assert_eq!(
        mem.data_version().await.unwrap(),
        None,
        "in-memory: no caching"
    );
}

#[tokio::test]
async fn sqlite_al_conformance() {
    let repo = SqliteRepo::open_in_memory().await.expect("open");
    testsuite::run_al(&repo, &repo).await;
}

#[tokio::test]
async fn sqlite_nodes_conformance() {
    let (dir, n1) = temp_repo().await;
    let n1 = n1.with_node("n1");
    let n2 = SqliteRepo::open(&dir.path().join("nestbox.db"))
        .await
        .expect("open")
        .with_node("n2");
    testsuite::run_nodes(&n1, &n2).await;
}
