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
    assert_eq!(
        repo.data_version().await.expect("v").expect("some"),
        v1,
        "stable when idle"
    );
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
