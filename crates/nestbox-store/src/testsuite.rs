//! The engine conformance suite: the [`TaskRepo`] contract as executable checks.
//!
//! Every engine runs the same [`run`] against an empty store (SQLite from this crate's
//! tests; a PostgreSQL engine from an `#[ignore]`d test CI runs against a service
//! container), so the engines cannot drift apart on semantics: ordering, filters, the
//! claim protocol, cascades, id monotonicity.
//!
//! The checks panic with a message on failure, like `assert!`; call [`run`] from a test.
//! Sections clean up after themselves by deleting their tasks and re-syncing machines,
//! so the suite only needs the store to be empty when it starts.

use std::collections::HashMap;
use std::time::Duration;

use nestbox_core::Error;
use nestbox_core::ports::TaskRepo;
use nestbox_types::{
    Category, MachineSpec, NewSample, NewSubmission, NewTask, Task, TaskId, TaskOptions, TaskQuery,
    TaskStatus, Timestamp,
};

/// Runs every check against `repo`, which must start empty.
pub async fn run(repo: &dyn TaskRepo) {
    samples(repo).await;
    task_round_trip(repo).await;
    tags(repo).await;
    list(repo).await;
    transitions(repo).await;
    custom_and_errors(repo).await;
    machines(repo).await;
    claim_order(repo).await;
    claim_processing(repo).await;
    claim_matching(repo).await;
    claim_target_platform(repo).await;
    claim_locks(repo).await;
    broken_machines(repo).await;
    guests(repo).await;
    delete(repo).await;
    status_counts(repo).await;
    submissions(repo).await;
    browse(repo).await;
    parents(repo).await;
    leases(repo).await;
    worker_beats(repo).await;
    reset(repo).await;
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// A fresh, empty PostgreSQL database on the test server named by `NESTBOX_TEST_PG_URL`
/// (started by `tests/pg/with-pg.sh`), as a URL. `None` when no server is configured;
/// a panic instead when `NESTBOX_TEST_PG_REQUIRED` is set, so CI cannot skip silently.
pub async fn pg_test_database(hint: &str) -> Option<String> {
    use sqlx::Connection;
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Ok(base) = std::env::var("NESTBOX_TEST_PG_URL") else {
        assert!(
            std::env::var_os("NESTBOX_TEST_PG_REQUIRED").is_none(),
            "NESTBOX_TEST_PG_REQUIRED is set but NESTBOX_TEST_PG_URL is not"
        );
        eprintln!("NESTBOX_TEST_PG_URL unset: skipping the PostgreSQL part ({hint})");
        return None;
    };
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(
        "nb_{}_{}_{n}",
        hint.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase(),
        std::process::id()
    );
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connecting to NESTBOX_TEST_PG_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let (before_query, query) = base.split_once('?').unwrap_or((&base, ""));
    let (server, _db) = before_query
        .rsplit_once('/')
        .expect("NESTBOX_TEST_PG_URL has a database path");
    Some(if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    })
}

/// A lease end far enough away that no check of the suite sees it expire by itself.
pub fn lease() -> Timestamp {
    Timestamp(Timestamp::now().0 + 3_600_000_000)
}

/// A sample identity derived from `seed`, with hashes of the right lengths.
pub fn new_sample(seed: u8) -> NewSample {
    let hex = |len: usize| format!("{seed:02x}").repeat(len / 2);
    NewSample {
        file_size: 100 + i64::from(seed),
        file_type: format!("PE32 executable {seed}"),
        mime: "application/x-dosexec".into(),
        md5: hex(32),
        crc32: format!("{seed:02X}").repeat(4),
        sha1: hex(40),
        sha256: hex(64),
        sha512: hex(128),
        ssdeep: Some(format!("3:{seed}:abc")),
        tlsh: None,
    }
}

/// A machine spec with the given name, platform and tags.
pub fn machine_spec(name: &str, platform: &str, tags: &[&str]) -> MachineSpec {
    MachineSpec {
        name: name.into(),
        label: format!("vm-{name}"),
        platform: platform.into(),
        ip: "192.168.56.101".into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        options: vec![],
        snapshot: None,
        interface: None,
        resultserver_ip: "192.168.56.1".into(),
        resultserver_port: 2042,
        arch: "x64".into(),
    }
}

fn url_task(target: &str) -> NewTask {
    NewTask::new(Category::Url, target)
}

async fn add(repo: &dyn TaskRepo, task: &NewTask) -> TaskId {
    repo.add_task(task).await.expect("add_task")
}

async fn get(repo: &dyn TaskRepo, id: TaskId) -> Task {
    repo.task(id)
        .await
        .expect("task")
        .unwrap_or_else(|| panic!("task {id} missing"))
}

async fn all_tasks(repo: &dyn TaskRepo) -> Vec<Task> {
    repo.list_tasks(&TaskQuery::default())
        .await
        .expect("list_tasks")
}

fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id).collect()
}

/// Deletes every task and machine.
async fn reset(repo: &dyn TaskRepo) {
    for task in all_tasks(repo).await {
        assert!(repo.delete_task(task.id).await.expect("delete_task"));
    }
    repo.sync_machines(&[]).await.expect("sync_machines");
    assert!(all_tasks(repo).await.is_empty());
    assert!(repo.machines().await.expect("machines").is_empty());
}

/// Waits long enough for the next timestamp to differ (they have microsecond resolution).
async fn tick() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

// ---------------------------------------------------------------------------------------
// Sections.

async fn samples(repo: &dyn TaskRepo) {
    let before = Timestamp::now();
    let new = new_sample(0xab);
    let s = repo.add_sample(&new).await.expect("add_sample");
    assert_eq!(s.file_size, new.file_size);
    assert_eq!(s.file_type, new.file_type);
    assert_eq!(s.mime, new.mime);
    assert_eq!(s.md5, new.md5);
    assert_eq!(s.crc32, new.crc32);
    assert_eq!(s.sha1, new.sha1);
    assert_eq!(s.sha256, new.sha256);
    assert_eq!(s.sha512, new.sha512);
    assert_eq!(s.ssdeep, new.ssdeep);
    assert_eq!(s.tlsh, None);
    assert!(s.first_seen >= before && s.first_seen <= Timestamp::now());

    // Same content again: the existing row, first_seen and all, even if the rest differs.
    let mut again = new.clone();
    again.file_type = "something else".into();
    again.tlsh = Some("T1abc".into());
    let s2 = repo.add_sample(&again).await.expect("add_sample again");
    assert_eq!(s2, s, "a known sha256 must return the stored row");

    let other = repo
        .add_sample(&new_sample(0xcd))
        .await
        .expect("add_sample");
    assert_ne!(other.id, s.id);
    let tlsh = NewSample {
        tlsh: Some("T1FFFF".into()),
        ..new_sample(0x01)
    };
    assert_eq!(
        repo.add_sample(&tlsh)
            .await
            .expect("add_sample")
            .tlsh
            .as_deref(),
        Some("T1FFFF")
    );

    assert_eq!(repo.sample(s.id).await.expect("sample"), Some(s.clone()));
    assert_eq!(repo.sample(-1).await.expect("sample"), None);

    for hash in [&new.md5, &new.sha1, &new.sha256] {
        assert_eq!(
            repo.sample_by_hash(hash).await.expect("sample_by_hash"),
            Some(s.clone()),
            "lookup by {hash}"
        );
        assert_eq!(
            repo.sample_by_hash(&hash.to_ascii_uppercase())
                .await
                .expect("sample_by_hash"),
            Some(s.clone()),
            "lookups are case-insensitive"
        );
    }
    assert_eq!(
        repo.sample_by_hash(&"ee".repeat(32)).await.expect("hash"),
        None
    );
    assert_eq!(
        repo.sample_by_hash(&new.sha512).await.expect("hash"),
        None,
        "sha512 is not a lookup key"
    );
    assert_eq!(repo.sample_by_hash("abc").await.expect("hash"), None);
    assert_eq!(repo.sample_by_hash("").await.expect("hash"), None);

    // Tasks of a sample, ascending.
    let mut file = NewTask::new(Category::File, "/tmp/x.exe");
    file.sample_id = Some(s.id);
    let a = add(repo, &file).await;
    let _unrelated = add(repo, &url_task("http://a.example")).await;
    let b = add(repo, &file).await;
    assert_eq!(repo.sample_task_ids(s.id).await.expect("ids"), vec![a, b]);
    assert!(
        repo.sample_task_ids(other.id)
            .await
            .expect("ids")
            .is_empty()
    );
    let t = get(repo, a).await;
    assert_eq!(
        t.sample,
        Some(s.clone()),
        "the sample is joined onto its tasks"
    );
    reset(repo).await;
}

async fn task_round_trip(repo: &dyn TaskRepo) {
    // Defaults: NewTask::new as submitted comes back unchanged; clock = added_on.
    let before = Timestamp::now();
    let plain = url_task("http://example.com/");
    let id = add(repo, &plain).await;
    let t = get(repo, id).await;
    assert_eq!(t.id, id);
    assert_eq!(t.spec, plain);
    assert_eq!(t.status, TaskStatus::Pending);
    assert!(t.added_on >= before && t.added_on <= Timestamp::now());
    assert_eq!(t.clock, t.added_on, "clock defaults to the insert time");
    assert_eq!(t.started_on, None);
    assert_eq!(t.completed_on, None);
    assert_eq!(t.processing, None);
    assert_eq!(t.sample, None);
    assert_eq!(t.guest, None);
    assert!(t.errors.is_empty());
    assert_eq!(t.duration(), -1);

    // Every field set, with values that differ from their neighbours of the same type, so
    // an engine that mixes up two columns fails here.
    let sample = NewSample {
        tlsh: Some("T1C0FFEE".into()),
        ..new_sample(0x42)
    };
    let sample = repo.add_sample(&sample).await.expect("sample");
    let mut submit_id = sample.id;
    while submit_id == sample.id {
        submit_id = repo
            .add_submission(&NewSubmission {
                submit_type: "files".into(),
                data: serde_json::json!({"data": []}),
            })
            .await
            .expect("add_submission");
    }
    // A parent task whose id differs from the sample and submission ids.
    let mut parent = TaskId(sample.id);
    while parent.0 == sample.id || parent.0 == submit_id {
        parent = add(repo, &url_task("http://parent.example")).await;
    }
    // The archive the sample came from: a sample whose id differs from all of those.
    let mut archive = sample.id;
    for seed in 0x43..=0xff {
        archive = repo
            .add_sample(&new_sample(seed))
            .await
            .expect("archive sample")
            .id;
        if ![sample.id, submit_id, parent.0].contains(&archive) {
            break;
        }
    }
    let clock = Timestamp::from_secs(1_500_000_000);
    let full = NewTask {
        target: "/tmp/upload/sample.exe".into(),
        category: Category::File,
        timeout: 300,
        priority: 3,
        custom: "custom text".into(),
        owner: "alice".into(),
        machine: "win7".into(),
        package: "exe".into(),
        options: TaskOptions::parse("procmemdump=yes,free=no,arguments=a b"),
        platform: "windows".into(),
        memory: true,
        enforce_timeout: false,
        clock: Some(clock),
        tags: vec!["office".into(), "x64".into()],
        sample_id: Some(sample.id),
        submit_id: Some(submit_id),
        parent_id: Some(parent),
        parent_sample_id: Some(archive),
        route: Some("tor".into()),
    };
    let id = add(repo, &full).await;
    let t = get(repo, id).await;
    assert_eq!(t.spec, full, "every NewTask field round-trips");
    assert_eq!(t.clock, clock);
    assert_eq!(t.sample, Some(sample));
    assert_eq!(t.processing, None);
    assert_eq!(t.spec.options.get("arguments"), Some("a b"));
    // The two flags the other way round.
    let flipped = NewTask {
        memory: false,
        enforce_timeout: true,
        ..full.clone()
    };
    let id = add(repo, &flipped).await;
    assert_eq!(get(repo, id).await.spec, flipped);

    assert_eq!(repo.task(TaskId(i64::MAX)).await.expect("task"), None);
    reset(repo).await;
}

async fn tags(repo: &dyn TaskRepo) {
    let mut task = url_task("http://tags.example");
    task.tags = ["x64", "", "office", "x64", "  ", "alpha"]
        .map(String::from)
        .to_vec();
    let id = add(repo, &task).await;
    let t = get(repo, id).await;
    assert_eq!(
        t.spec.tags,
        vec!["alpha", "office", "x64"],
        "tags are stored deduplicated, without blanks, and read back sorted"
    );
    let listed = all_tasks(repo).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], t, "list_tasks loads tasks like task()");
    reset(repo).await;
}

async fn list(repo: &dyn TaskRepo) {
    let sample = repo.add_sample(&new_sample(0x77)).await.expect("sample");
    let mk = |owner: &str, sample_id: Option<i64>| {
        let mut t = url_task("http://list.example");
        t.owner = owner.into();
        t.sample_id = sample_id;
        t
    };
    let t1 = add(repo, &mk("bob", None)).await;
    let t2 = add(repo, &mk("carol", Some(sample.id))).await;
    let t3 = add(repo, &mk("bob", None)).await;
    let t4 = add(repo, &mk("bob", Some(sample.id))).await;
    let t5 = add(repo, &mk("dave", None)).await;

    // Complete t3, then t1 (so completion order differs from id order), then t4.
    for id in [t3, t1, t4] {
        tick().await;
        assert!(
            repo.transition(id, &[TaskStatus::Pending], TaskStatus::Running)
                .await
                .expect("run")
        );
        assert!(
            repo.transition(id, &[TaskStatus::Running], TaskStatus::Completed)
                .await
                .expect("complete")
        );
    }
    repo.add_error(t4, "boom").await.expect("add_error");

    let all = all_tasks(repo).await;
    // completed_on ASC NULLS FIRST, then id ASC.
    assert_eq!(ids(&all), vec![t2, t5, t3, t1, t4]);
    let t4_listed = all.iter().find(|t| t.id == t4).expect("t4");
    assert_eq!(t4_listed.errors, vec!["boom"]);
    assert_eq!(t4_listed.sample.as_ref().map(|s| s.id), Some(sample.id));
    assert_eq!(*t4_listed, get(repo, t4).await);

    let list = |query: TaskQuery| async move { ids(&repo.list_tasks(&query).await.expect("list")) };
    let none = Vec::<TaskId>::new();
    let page = |limit, offset| TaskQuery {
        limit,
        offset,
        ..TaskQuery::default()
    };

    assert_eq!(list(page(Some(2), None)).await, vec![t2, t5]);
    assert_eq!(list(page(Some(2), Some(2))).await, vec![t3, t1]);
    assert_eq!(list(page(Some(10), Some(4))).await, vec![t4]);
    assert_eq!(list(page(Some(10), Some(5))).await, none);
    assert_eq!(
        list(page(None, Some(3))).await,
        vec![t2, t5, t3, t1, t4],
        "offset without limit is ignored"
    );
    assert_eq!(list(page(Some(0), None)).await, none);

    let by_status = |status| TaskQuery {
        status: Some(status),
        ..TaskQuery::default()
    };
    assert_eq!(list(by_status(TaskStatus::Pending)).await, vec![t2, t5]);
    assert_eq!(
        list(by_status(TaskStatus::Completed)).await,
        vec![t3, t1, t4]
    );
    assert_eq!(list(by_status(TaskStatus::Reported)).await, none);

    let by_owner = |owner: &str| TaskQuery {
        owner: Some(owner.into()),
        ..TaskQuery::default()
    };
    assert_eq!(list(by_owner("bob")).await, vec![t3, t1, t4]);
    assert_eq!(list(by_owner("Bob")).await, none, "owner is exact");
    assert_eq!(list(by_owner("nobody")).await, none);

    let by_sample = TaskQuery {
        sample_id: Some(sample.id),
        ..TaskQuery::default()
    };
    assert_eq!(list(by_sample).await, vec![t2, t4]);

    let c3 = get(repo, t3).await.completed_on.expect("completed_on");
    let after = |t| TaskQuery {
        completed_after: Some(t),
        ..TaskQuery::default()
    };
    assert_eq!(
        list(after(c3)).await,
        vec![t1, t4],
        "completed_after is strict"
    );
    assert_eq!(list(after(Timestamp(c3.0 - 1))).await, vec![t3, t1, t4]);

    // Filters combine, and with the page.
    let combo = TaskQuery {
        owner: Some("bob".into()),
        status: Some(TaskStatus::Completed),
        sample_id: Some(sample.id),
        limit: Some(5),
        ..TaskQuery::default()
    };
    assert_eq!(list(combo).await, vec![t4]);
    let combo = TaskQuery {
        owner: Some("bob".into()),
        limit: Some(1),
        offset: Some(1),
        ..TaskQuery::default()
    };
    assert_eq!(list(combo).await, vec![t1]);
    list_cape_filters(repo).await;
    reset(repo).await;
}

/// CAPE's list: any-of statuses, category, options substring, newest completion first.
async fn list_cape_filters(repo: &dyn TaskRepo) {
    for t in all_tasks(repo).await {
        repo.delete_task(t.id).await.expect("delete");
    }
    let mut u = url_task("http://cape-list.example");
    u.options = TaskOptions::parse("route=tor,free=yes");
    let a = add(repo, &u).await;
    let b = add(repo, &url_task("http://cape-list2.example")).await;
    let c = add(repo, &url_task("http://cape-list3.example")).await;
    for id in [a, b] {
        assert!(
            repo.transition(id, &[TaskStatus::Pending], TaskStatus::Completed)
                .await
                .expect("cas")
        );
        tick().await;
    }
    let ids = |q: TaskQuery| async move {
        repo.list_tasks(&q)
            .await
            .expect("list")
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    let newest = TaskQuery {
        newest_first: true,
        ..Default::default()
    };
    assert_eq!(
        ids(newest.clone()).await,
        vec![c, b, a],
        "NULLs first, then newest completion"
    );
    assert_eq!(
        ids(TaskQuery {
            limit: Some(1),
            offset: Some(1),
            ..newest.clone()
        })
        .await,
        vec![b]
    );
    let st = TaskQuery {
        any_status: vec![TaskStatus::Pending, TaskStatus::Reported],
        ..newest.clone()
    };
    assert_eq!(ids(st).await, vec![c]);
    let opt = TaskQuery {
        options_contain: Some("route=tor".into()),
        ..newest.clone()
    };
    assert_eq!(ids(opt).await, vec![a]);
    let cat = TaskQuery {
        category: Some(Category::File),
        ..newest.clone()
    };
    assert!(ids(cat).await.is_empty());
    let cat = TaskQuery {
        category: Some(Category::Url),
        ..Default::default()
    };
    assert_eq!(
        ids(cat).await,
        vec![c, a, b],
        "Cuckoo order: NULLs first, then oldest completion"
    );
}

async fn transitions(repo: &dyn TaskRepo) {
    let id = add(repo, &url_task("http://cas.example")).await;
    let before = Timestamp::now();
    assert!(
        !repo
            .transition(id, &[], TaskStatus::Running)
            .await
            .expect("cas"),
        "empty from"
    );
    assert!(
        !repo
            .transition(id, &[TaskStatus::Running], TaskStatus::Completed)
            .await
            .expect("cas"),
        "not in from"
    );
    assert_eq!(get(repo, id).await.status, TaskStatus::Pending);

    assert!(
        repo.transition(id, &[TaskStatus::Pending], TaskStatus::Running)
            .await
            .expect("cas")
    );
    let t = get(repo, id).await;
    assert_eq!(t.status, TaskStatus::Running);
    let started = t.started_on.expect("running stamps started_on");
    assert!(started >= before);
    assert_eq!(t.completed_on, None);
    assert!(
        !repo
            .transition(id, &[TaskStatus::Pending], TaskStatus::Running)
            .await
            .expect("cas"),
        "a second identical move loses"
    );

    tick().await;
    assert!(
        repo.transition(
            id,
            &[TaskStatus::Pending, TaskStatus::Running],
            TaskStatus::Completed
        )
        .await
        .expect("cas")
    );
    let t = get(repo, id).await;
    assert_eq!(t.status, TaskStatus::Completed);
    let completed = t.completed_on.expect("completed stamps completed_on");
    assert!(completed > started);
    assert_eq!(t.started_on, Some(started), "other moves keep started_on");
    assert!(t.duration() >= 0);

    assert!(
        repo.transition(id, &[TaskStatus::Completed], TaskStatus::Reported)
            .await
            .expect("cas")
    );
    let t = get(repo, id).await;
    assert_eq!(t.status, TaskStatus::Reported);
    assert_eq!(
        t.completed_on,
        Some(completed),
        "reported keeps completed_on"
    );

    for status in TaskStatus::ALL {
        let from = get(repo, id).await.status;
        assert!(repo.transition(id, &[from], status).await.expect("cas"));
        assert_eq!(
            get(repo, id).await.status,
            status,
            "{status} is stored and read back"
        );
    }
    assert!(
        !repo
            .transition(TaskId(i64::MAX), &TaskStatus::ALL, TaskStatus::Running)
            .await
            .expect("cas"),
        "a missing task is not moved"
    );
    reset(repo).await;
}

async fn custom_and_errors(repo: &dyn TaskRepo) {
    let id = add(repo, &url_task("http://err.example")).await;
    repo.set_custom(id, "recovered from 12")
        .await
        .expect("set_custom");
    assert_eq!(get(repo, id).await.spec.custom, "recovered from 12");

    repo.add_error(id, "first").await.expect("add_error");
    repo.add_error(id, "").await.expect("add_error");
    repo.add_error(id, "third").await.expect("add_error");
    assert_eq!(
        get(repo, id).await.errors,
        vec!["first", "", "third"],
        "oldest first"
    );

    let missing = TaskId(i64::MAX);
    assert!(matches!(
        repo.set_custom(missing, "x").await,
        Err(Error::TaskNotFound(t)) if t == missing
    ));
    assert!(matches!(
        repo.add_error(missing, "x").await,
        Err(Error::TaskNotFound(t)) if t == missing
    ));
    reset(repo).await;
}

async fn machines(repo: &dyn TaskRepo) {
    let mut win = machine_spec("win7", "windows", &["x64", "office", "x64", ""]);
    win.options = vec!["noagent".into(), "fast".into()];
    win.snapshot = Some("clean".into());
    win.interface = Some("virbr0".into());
    let lin = machine_spec("lin", "linux", &[]);
    repo.sync_machines(&[win.clone(), lin.clone()])
        .await
        .expect("sync");

    let all = repo.machines().await.expect("machines");
    let names: Vec<&str> = all.iter().map(|m| m.spec.name.as_str()).collect();
    assert_eq!(names, vec!["lin", "win7"], "sorted by name");
    let w = repo.machine("win7").await.expect("machine").expect("win7");
    let mut expected = win.clone();
    expected.tags = vec!["office".into(), "x64".into()];
    assert_eq!(
        w.spec, expected,
        "every spec field round-trips; tags sorted, deduplicated"
    );
    assert!(!w.locked);
    assert_eq!(w.locked_changed_on, None);
    assert_eq!(w.status, None);
    assert_eq!(repo.machine("nope").await.expect("machine"), None);

    // Lock win7 by claiming, then re-sync: updated fields, replaced tags, lin dropped,
    // a new machine added, everything unlocked, ids of kept machines stable.
    let mut pinned = url_task("http://m.example");
    pinned.machine = "win7".into();
    let pinned_id = add(repo, &pinned).await;
    let (claimed, m) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!((claimed.id, m.id), (pinned_id, w.id));
    assert!(repo.machine("win7").await.expect("m").expect("win7").locked);

    let mut win2 = win.clone();
    win2.label = "win7-new".into();
    win2.ip = "10.0.0.7".into();
    win2.tags = vec!["x86".into()];
    win2.options = vec![];
    win2.snapshot = None;
    win2.resultserver_port = 2043;
    win2.arch = "x86".into();
    let extra = machine_spec("added", "windows", &["a"]);
    repo.sync_machines(&[win2.clone(), extra.clone()])
        .await
        .expect("resync");
    let all = repo.machines().await.expect("machines");
    let names: Vec<&str> = all.iter().map(|m| m.spec.name.as_str()).collect();
    assert_eq!(names, vec!["added", "win7"]);
    let w2 = repo.machine("win7").await.expect("m").expect("win7");
    assert_eq!(w2.id, w.id, "upsert keeps the row id");
    assert_eq!(w2.spec, win2);
    assert!(!w2.locked, "sync unlocks everything");
    assert!(w2.locked_changed_on.is_some());
    assert_eq!(repo.machine("lin").await.expect("m"), None);
    assert!(all.iter().all(|m| !m.locked));
    reset(repo).await;
}

async fn claim_order(repo: &dyn TaskRepo) {
    repo.sync_machines(&[machine_spec("m1", "windows", &[])])
        .await
        .expect("sync");
    assert!(
        repo.claim("w", lease()).await.expect("claim").is_none(),
        "nothing pending"
    );

    let prio = |p: i64| {
        let mut t = url_task("http://order.example");
        t.priority = p;
        t
    };
    let low1 = add(repo, &prio(1)).await;
    let high = add(repo, &prio(5)).await;
    let low2 = add(repo, &prio(1)).await;
    let mid = add(repo, &prio(2)).await;

    let mut order = Vec::new();
    while let Some((task, machine)) = repo.claim("w", lease()).await.expect("claim") {
        order.push(task.id);
        repo.unlock_machine(machine.id).await.expect("unlock");
    }
    assert_eq!(
        order,
        vec![high, mid, low1, low2],
        "priority DESC, then age"
    );
    reset(repo).await;
}

/// Rereport puts a reported task back to `completed` with no owner; processing workers
/// claim such tasks once each, `priority DESC, id ASC`, and never one a worker still holds.
async fn claim_processing(repo: &dyn TaskRepo) {
    repo.sync_machines(&[machine_spec("m1", "windows", &[])])
        .await
        .expect("sync");
    let mut t = url_task("http://reprocess.example");
    let a = add(repo, &t).await;
    t.priority = 3;
    let b = add(repo, &t).await;
    // `a` goes through a normal run: claimed (processing = w1), completed, reported.
    let (claimed, m) = repo
        .claim("w1", lease())
        .await
        .expect("claim")
        .expect("b first");
    assert_eq!(claimed.id, b);
    repo.unlock_machine(m.id).await.expect("unlock");
    let (claimed, m) = repo
        .claim("w1", lease())
        .await
        .expect("claim")
        .expect("then a");
    assert_eq!(claimed.id, a);
    repo.unlock_machine(m.id).await.expect("unlock");
    for id in [a, b] {
        assert!(
            repo.transition(id, &[TaskStatus::Running], TaskStatus::Completed)
                .await
                .expect("cas")
        );
    }
    assert!(
        repo.claim_processing("p")
            .await
            .expect("claim_processing")
            .is_none(),
        "completed tasks still held by their worker are not claimable"
    );
    for id in [a, b] {
        assert!(
            repo.transition(id, &[TaskStatus::Completed], TaskStatus::Reported)
                .await
                .expect("cas")
        );
        assert!(
            repo.transition(id, &[TaskStatus::Reported], TaskStatus::Completed)
                .await
                .expect("cas")
        );
        assert_eq!(
            get(repo, id).await.processing,
            None,
            "rereport clears processing"
        );
    }
    let first = repo
        .claim_processing("p1")
        .await
        .expect("claim")
        .expect("one");
    let second = repo
        .claim_processing("p2")
        .await
        .expect("claim")
        .expect("two");
    assert_eq!((first.id, second.id), (b, a), "priority DESC, id ASC");
    assert_eq!(first.processing.as_deref(), Some("p1"));
    assert!(
        repo.claim_processing("p3").await.expect("claim").is_none(),
        "each once"
    );
    reset(repo).await;
}

/// A task that names no machine, platform or tag runs on a machine of its target's
/// platform (PE → windows, the rest → linux) when one is configured, else on any.
async fn claim_target_platform(repo: &dyn TaskRepo) {
    let pe = repo.add_sample(&new_sample(201)).await.expect("sample");
    let mut elf_sample = new_sample(202);
    elf_sample.file_type = "ELF 64-bit LSB pie executable, x86-64".into();
    let elf = repo.add_sample(&elf_sample).await.expect("sample");
    let file_task = |sample: i64, f: fn(&mut NewTask)| {
        let mut t = NewTask::new(Category::File, "sample");
        t.sample_id = Some(sample);
        f(&mut t);
        t
    };
    async fn claim_one(repo: &dyn TaskRepo, expect: TaskId) -> String {
        let (t, m) = repo
            .claim("w", lease())
            .await
            .expect("claim")
            .expect("a claim");
        assert_eq!(t.id, expect);
        repo.unlock_machine(m.id).await.expect("unlock");
        assert!(
            repo.transition(t.id, &[TaskStatus::Running], TaskStatus::Completed)
                .await
                .expect("cas")
        );
        m.spec.name
    }
    repo.sync_machines(&[
        machine_spec("emulator1", "windows", &["emulator"]),
        machine_spec("ns1", "linux", &["ns"]),
    ])
    .await
    .expect("sync");
    let t = add(repo, &file_task(elf.id, |_| {})).await;
    assert_eq!(
        claim_one(repo, t).await,
        "ns1",
        "ELF → linux, not the first machine by name"
    );
    let t = add(repo, &file_task(pe.id, |_| {})).await;
    assert_eq!(claim_one(repo, t).await, "emulator1", "PE → windows");
    let t = add(repo, &url_task("http://u.example")).await;
    assert_eq!(claim_one(repo, t).await, "ns1", "URL → linux");
    let t = add(repo, &file_task(elf.id, |t| t.package = "shellcode".into())).await;
    assert_eq!(
        claim_one(repo, t).await,
        "emulator1",
        "the shellcode package → windows"
    );
    let t = add(repo, &file_task(pe.id, |t| t.platform = "linux".into())).await;
    assert_eq!(claim_one(repo, t).await, "ns1", "a named platform wins");
    let t = add(repo, &file_task(pe.id, |t| t.machine = "ns1".into())).await;
    assert_eq!(claim_one(repo, t).await, "ns1", "a named machine wins");
    // A busy emulator keeps PE tasks waiting rather than sending them to ns.
    let t = add(repo, &file_task(pe.id, |_| {})).await;
    let em = repo
        .machine("emulator1")
        .await
        .expect("m")
        .expect("emulator1");
    let held = add(repo, &file_task(pe.id, |_| {})).await;
    let (h, _) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!(h.id, t, "queue order: the first PE task takes the emulator");
    assert!(
        repo.claim("w", lease()).await.expect("claim").is_none(),
        "the second PE task waits for the emulator instead of taking ns1"
    );
    repo.transition(h.id, &[TaskStatus::Running], TaskStatus::Completed)
        .await
        .expect("cas");
    repo.unlock_machine(em.id).await.expect("unlock");
    let (h2, m2) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!((h2.id, m2.spec.name.as_str()), (held, "emulator1"));
    repo.unlock_machine(m2.id).await.expect("unlock");
    // Without a windows machine a PE runs on what there is.
    repo.sync_machines(&[machine_spec("ns1", "linux", &["ns"])])
        .await
        .expect("sync");
    let t = add(repo, &file_task(pe.id, |_| {})).await;
    assert_eq!(claim_one(repo, t).await, "ns1");
    assert!(repo.unserviceable_tasks().await.expect("u").is_empty());
    for task in all_tasks(repo).await {
        assert!(repo.delete_task(task.id).await.expect("delete_task"));
    }
    repo.sync_machines(&[]).await.expect("sync");
}

async fn claim_matching(repo: &dyn TaskRepo) {
    repo.sync_machines(&[
        machine_spec("win1", "windows", &["office", "x64"]),
        machine_spec("lin1", "linux", &["x64"]),
    ])
    .await
    .expect("sync");
    let task = |f: fn(&mut NewTask)| {
        let mut t = url_task("http://match.example");
        f(&mut t);
        t
    };

    // Claims one task with both machines free; returns the machine name.
    async fn claim_one(repo: &dyn TaskRepo, expect: TaskId) -> String {
        let (t, m) = repo
            .claim("w", lease())
            .await
            .expect("claim")
            .expect("a claim");
        assert_eq!(t.id, expect);
        repo.unlock_machine(m.id).await.expect("unlock");
        // Park it so it does not count as pending any more.
        assert!(
            repo.transition(t.id, &[TaskStatus::Running], TaskStatus::Completed)
                .await
                .expect("cas")
        );
        m.spec.name
    }

    let by_label = add(repo, &task(|t| t.machine = "vm-lin1".into())).await;
    assert_eq!(
        claim_one(repo, by_label).await,
        "lin1",
        "machine matches the label"
    );
    let by_name = add(repo, &task(|t| t.machine = "win1".into())).await;
    assert_eq!(
        claim_one(repo, by_name).await,
        "win1",
        "machine matches the name"
    );
    let by_platform = add(repo, &task(|t| t.platform = "windows".into())).await;
    assert_eq!(claim_one(repo, by_platform).await, "win1");
    let by_tag = add(repo, &task(|t| t.tags = vec!["office".into()])).await;
    assert_eq!(
        claim_one(repo, by_tag).await,
        "win1",
        "every task tag is a machine tag"
    );
    let by_tags = add(
        repo,
        &task(|t| t.tags = vec!["x64".into(), "office".into()]),
    )
    .await;
    assert_eq!(claim_one(repo, by_tags).await, "win1");
    let any = add(repo, &task(|_| {})).await;
    assert_eq!(
        claim_one(repo, any).await,
        "lin1",
        "first free machine by name"
    );
    let shared_tag = add(repo, &task(|t| t.tags = vec!["x64".into()])).await;
    assert_eq!(claim_one(repo, shared_tag).await, "lin1");

    // Tasks no machine can run: they are skipped by claim and reported as unserviceable.
    let bad_tags = add(
        repo,
        &task(|t| {
            t.platform = "linux".into();
            t.tags = vec!["office".into()];
        }),
    )
    .await;
    let bad_machine = add(repo, &task(|t| t.machine = "nope".into())).await;
    let bad_platform = add(repo, &task(|t| t.platform = "macos".into())).await;
    let bad_tag = add(repo, &task(|t| t.tags = vec!["gpu".into()])).await;
    let mismatch = add(
        repo,
        &task(|t| {
            t.machine = "win1".into();
            t.platform = "linux".into();
        }),
    )
    .await;
    let runnable = add(repo, &task(|t| t.platform = "linux".into())).await;
    assert_eq!(
        repo.unserviceable_tasks().await.expect("unserviceable"),
        vec![bad_tags, bad_machine, bad_platform, bad_tag, mismatch]
    );
    assert_eq!(
        claim_one(repo, runnable).await,
        "lin1",
        "unrunnable tasks are skipped"
    );
    assert!(repo.claim("w", lease()).await.expect("claim").is_none());

    // Locked machines still count as able to run a task: it is not unserviceable.
    let (t, win1) = {
        let pinned = add(repo, &task(|t| t.machine = "win1".into())).await;
        let claimed = repo
            .claim("w", lease())
            .await
            .expect("claim")
            .expect("claim");
        assert_eq!(claimed.0.id, pinned);
        claimed
    };
    let waiting = add(repo, &task(|t| t.machine = "win1".into())).await;
    let unservice = repo.unserviceable_tasks().await.expect("unserviceable");
    assert!(
        !unservice.contains(&waiting),
        "a busy machine is not a missing one"
    );
    assert!(
        repo.claim("w", lease()).await.expect("claim").is_none(),
        "win1 is locked"
    );
    // A lower-priority task another machine can run is not blocked by it.
    let mut low = task(|_| {});
    low.priority = 0;
    let low = add(repo, &low).await;
    let (t2, m2) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!((t2.id, m2.spec.name.as_str()), (low, "lin1"));
    repo.unlock_machine(win1.id).await.expect("unlock");
    let (t3, m3) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!((t3.id, m3.id), (waiting, win1.id));
    let _ = t;
    reset(repo).await;
}

async fn claim_locks(repo: &dyn TaskRepo) {
    repo.sync_machines(&[machine_spec("only", "windows", &[])])
        .await
        .expect("sync");
    let a = add(repo, &url_task("http://a.example")).await;
    let b = add(repo, &url_task("http://b.example")).await;

    let before = Timestamp::now();
    let (task, machine) = repo
        .claim("worker-1", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!(task.id, a);
    assert_eq!(task.status, TaskStatus::Running);
    assert_eq!(task.processing.as_deref(), Some("worker-1"));
    let started = task.started_on.expect("started_on");
    assert!(started >= before);
    assert_eq!(
        task,
        get(repo, a).await,
        "claim returns the task as task() reads it"
    );
    assert_eq!(machine.spec.name, "only");
    assert!(machine.locked);
    let locked_at = machine.locked_changed_on.expect("locked_changed_on");
    assert!(locked_at >= before);
    assert_eq!(
        repo.machine("only").await.expect("m"),
        Some(machine.clone())
    );
    assert_eq!(repo.running_tasks().await.expect("running"), vec![a]);

    assert!(
        repo.claim("worker-2", lease())
            .await
            .expect("claim")
            .is_none(),
        "the only machine is locked"
    );
    assert_eq!(get(repo, b).await.status, TaskStatus::Pending);
    assert!(repo.unserviceable_tasks().await.expect("u").is_empty());

    tick().await;
    repo.unlock_machine(machine.id).await.expect("unlock");
    let unlocked = repo.machine("only").await.expect("m").expect("m");
    assert!(!unlocked.locked);
    assert!(unlocked.locked_changed_on > Some(locked_at));
    repo.unlock_machine(machine.id)
        .await
        .expect("unlocking twice is fine");
    assert_eq!(
        repo.machine("only")
            .await
            .expect("m")
            .expect("m")
            .locked_changed_on,
        unlocked.locked_changed_on,
        "unlocking a free machine changes nothing"
    );

    let (task, _) = repo
        .claim("worker-2", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!(task.id, b);
    assert_eq!(task.processing.as_deref(), Some("worker-2"));
    assert_eq!(repo.running_tasks().await.expect("running"), vec![a, b]);

    // Deleting the task holding a lock leaves the machine locked (releasing it is the
    // worker's job) but consistent.
    assert!(repo.delete_task(b).await.expect("delete"));
    assert!(repo.machine("only").await.expect("m").expect("m").locked);
    reset(repo).await;
}

/// A machine that failed is out of rotation (locked by no task, status `broken`) until
/// `retry_broken_machines` passes its time, or the node restarts.
async fn broken_machines(repo: &dyn TaskRepo) {
    repo.sync_machines(&[
        machine_spec("m1", "windows", &[]),
        machine_spec("m2", "windows", &[]),
    ])
    .await
    .expect("sync");
    let a = add(repo, &url_task("http://a.example")).await;
    let (task, m1) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!((task.id, m1.spec.name.as_str()), (a, "m1"));
    let broke = Timestamp::now();
    repo.set_machine_broken(m1.id, broke).await.expect("broken");
    let m = repo.machine("m1").await.expect("m").expect("m");
    assert!(m.locked);
    assert_eq!(m.status.as_deref(), Some("broken"));
    assert_eq!(m.status_changed_on, Some(broke));
    assert!(repo.unserviceable_tasks().await.expect("u").is_empty());

    // Only m2 is in rotation; when it is busy, nothing is claimed.
    let b = add(repo, &url_task("http://b.example")).await;
    let c = add(repo, &url_task("http://c.example")).await;
    let (task, m2) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!((task.id, m2.spec.name.as_str()), (b, "m2"));
    assert!(repo.claim("w", lease()).await.expect("claim").is_none());

    // Not yet due: nothing changes; due: m1 is free again and takes the next task.
    assert!(
        repo.retry_broken_machines(broke, Timestamp::now())
            .await
            .expect("retry")
            .is_empty()
    );
    tick().await;
    let now = Timestamp::now();
    assert_eq!(
        repo.retry_broken_machines(now, now).await.expect("retry"),
        vec!["m1".to_owned()]
    );
    let m = repo.machine("m1").await.expect("m").expect("m");
    assert!(!m.locked);
    assert_eq!(m.status.as_deref(), Some("poweroff"));
    let (task, m) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!((task.id, m.spec.name.as_str()), (c, "m1"));

    // A restart of the node retries at once.
    repo.set_machine_broken(m.id, Timestamp::now())
        .await
        .expect("broken");
    repo.sync_machines(&[
        machine_spec("m1", "windows", &[]),
        machine_spec("m2", "windows", &[]),
    ])
    .await
    .expect("sync");
    let m = repo.machine("m1").await.expect("m").expect("m");
    assert!(!m.locked);
    assert_eq!(m.status.as_deref(), Some("poweroff"));
    reset(repo).await;
}

async fn guests(repo: &dyn TaskRepo) {
    repo.sync_machines(&[machine_spec("g1", "windows", &[])])
        .await
        .expect("sync");
    let id = add(repo, &url_task("http://guest.example")).await;
    let (_, machine) = repo
        .claim("w", lease())
        .await
        .expect("claim")
        .expect("claim");
    assert_eq!(repo.guest(id).await.expect("guest"), None);

    let before = Timestamp::now();
    let gid = repo
        .start_guest(id, &machine, "KVM")
        .await
        .expect("start_guest");
    let g = repo.guest(id).await.expect("guest").expect("a guest");
    assert_eq!(g.id, gid);
    assert_eq!(g.status, "running");
    assert_eq!(g.name, "g1");
    assert_eq!(g.label, "vm-g1");
    assert_eq!(g.manager, "KVM");
    assert!(g.started_on >= before);
    assert_eq!(g.shutdown_on, None);
    assert_eq!(g.task_id, id);
    assert_eq!(
        get(repo, id).await.guest,
        Some(g.clone()),
        "the guest is joined onto the task"
    );

    repo.set_guest_status(gid, "stopping")
        .await
        .expect("status");
    let g = repo.guest(id).await.expect("guest").expect("guest");
    assert_eq!(g.status, "stopping");
    assert_eq!(g.shutdown_on, None, "only stopped/failed stamp shutdown_on");
    repo.set_guest_status(gid, "stopped").await.expect("status");
    let g = repo.guest(id).await.expect("guest").expect("guest");
    assert_eq!(g.status, "stopped");
    assert!(g.shutdown_on.is_some_and(|s| s >= g.started_on));

    let other = add(repo, &url_task("http://guest2.example")).await;
    let gid2 = repo
        .start_guest(other, &machine, "KVM")
        .await
        .expect("start_guest");
    assert_ne!(gid2, gid);
    repo.set_guest_status(gid2, "failed").await.expect("status");
    assert!(
        repo.guest(other)
            .await
            .expect("g")
            .expect("g")
            .shutdown_on
            .is_some()
    );

    // A task that runs again (recovered, claimed anew) gets its guest row reset.
    let again = repo
        .start_guest(id, &machine, "KVM")
        .await
        .expect("start_guest again");
    let g = repo.guest(id).await.expect("guest").expect("guest");
    assert_eq!(
        (g.id, g.status.as_str(), g.shutdown_on),
        (again, "running", None)
    );

    let missing = TaskId(i64::MAX);
    assert!(matches!(
        repo.start_guest(missing, &machine, "KVM").await,
        Err(Error::TaskNotFound(t)) if t == missing
    ));
    repo.set_guest_status(i64::MAX, "stopped")
        .await
        .expect("unknown guest: no-op");
    reset(repo).await;
}

async fn delete(repo: &dyn TaskRepo) {
    repo.sync_machines(&[machine_spec("d1", "windows", &[])])
        .await
        .expect("sync");
    let mut t = url_task("http://del.example");
    t.tags = vec!["x".into()];
    let keep = add(repo, &url_task("http://keep.example")).await;
    let id = add(repo, &t).await;
    repo.add_error(id, "e").await.expect("error");
    repo.transition(keep, &[TaskStatus::Pending], TaskStatus::Reported)
        .await
        .expect("park");
    // start_guest does not require a claim, so the task (unrunnable: no machine has tag
    // "x") can still get a guest row for the cascade to remove.
    let machine = repo.machine("d1").await.expect("m").expect("m");
    repo.start_guest(id, &machine, "KVM").await.expect("guest");

    assert!(repo.delete_task(id).await.expect("delete"));
    assert_eq!(repo.task(id).await.expect("task"), None);
    assert_eq!(
        repo.guest(id).await.expect("guest"),
        None,
        "the guest goes with the task"
    );
    assert!(!repo.delete_task(id).await.expect("delete"), "already gone");
    assert_eq!(ids(&all_tasks(repo).await), vec![keep], "other tasks stay");
    assert!(
        repo.unserviceable_tasks().await.expect("u").is_empty(),
        "its tags went too"
    );

    // Ids are never reused, even for the highest id.
    let last = add(repo, &url_task("http://last.example")).await;
    assert!(repo.delete_task(last).await.expect("delete"));
    let next = add(repo, &url_task("http://next.example")).await;
    assert!(next > last, "id {next} reused after deleting {last}");
    reset(repo).await;
}

async fn status_counts(repo: &dyn TaskRepo) {
    let empty = repo.status_counts().await.expect("counts");
    assert_eq!(empty.total, 0);
    assert_eq!(empty.get(TaskStatus::Pending), 0);

    let mut want: HashMap<TaskStatus, i64> = HashMap::new();
    let plan = [
        (TaskStatus::Pending, 3),
        (TaskStatus::Running, 1),
        (TaskStatus::Reported, 2),
        (TaskStatus::FailedAnalysis, 1),
    ];
    for (status, n) in plan {
        for _ in 0..n {
            let id = add(repo, &url_task("http://count.example")).await;
            if status != TaskStatus::Pending {
                assert!(
                    repo.transition(id, &[TaskStatus::Pending], status)
                        .await
                        .expect("cas")
                );
            }
        }
        want.insert(status, n);
    }
    let counts = repo.status_counts().await.expect("counts");
    assert_eq!(counts.total, 7);
    for status in TaskStatus::ALL {
        assert_eq!(
            counts.get(status),
            want.get(&status).copied().unwrap_or(0),
            "{status}"
        );
    }
    reset(repo).await;
}

async fn submissions(repo: &dyn TaskRepo) {
    let sub = |kind: &str| NewSubmission {
        submit_type: kind.into(),
        data: serde_json::json!({"data": [{"type": "url", "data": "http://x"}], "errors": []}),
    };
    let a = repo
        .add_submission(&sub("strings"))
        .await
        .expect("submission");
    let b = repo
        .add_submission(&sub("files"))
        .await
        .expect("submission");
    assert!(b > a);
    let mut t = url_task("http://x");
    t.submit_id = Some(b);
    let id = add(repo, &t).await;
    assert_eq!(get(repo, id).await.spec.submit_id, Some(b));
    reset(repo).await;
}

async fn leases(repo: &dyn TaskRepo) {
    repo.sync_machines(&[
        machine_spec("lease1", "linux", &[]),
        machine_spec("lease2", "linux", &[]),
    ])
    .await
    .expect("sync_machines");
    let a = add(repo, &url_task("http://lease-a.example")).await;
    let b = add(repo, &url_task("http://lease-b.example")).await;
    let now = Timestamp::now();
    let short = Timestamp(now.0 + 1_000_000);
    let later = Timestamp(now.0 + 2_000_000);
    let (ta, ma) = repo.claim("w1", short).await.expect("claim").expect("a");
    let (tb, mb) = repo.claim("w2", lease()).await.expect("claim").expect("b");
    assert_eq!((ta.id, tb.id), (a, b));

    // Only the holder renews, and only a running task.
    assert!(repo.renew_lease(a, "w1", short).await.expect("renew"));
    assert!(!repo.renew_lease(a, "w2", lease()).await.expect("renew"));
    assert!(
        repo.take_expired("w3", now, lease())
            .await
            .expect("take_expired")
            .is_empty(),
        "no lease has ended yet"
    );

    // Two workers race for the expired lease: exactly one gets it, the other nothing;
    // the lease that did not end stays where it is.
    let (x, y) = tokio::join!(
        repo.take_expired("w3", later, lease()),
        repo.take_expired("w4", later, lease())
    );
    let (x, y) = (x.expect("take_expired"), y.expect("take_expired"));
    let mut all = x.clone();
    all.extend(&y);
    assert_eq!(all, vec![a], "the expired lease is taken exactly once");
    let winner = if x.is_empty() { "w4" } else { "w3" };
    let task = get(repo, a).await;
    assert_eq!(
        task.status,
        TaskStatus::Running,
        "recovery decides what comes next"
    );
    assert_eq!(task.processing.as_deref(), Some(winner));
    let machine = |name: &str| {
        let name = name.to_owned();
        async move { repo.machine(&name).await.expect("machine").expect("exists") }
    };
    assert!(
        !machine(&ma.spec.name).await.locked,
        "the dead worker's machine is released"
    );
    assert!(
        machine(&mb.spec.name).await.locked,
        "the live worker's machine is not"
    );
    assert!(
        !repo.renew_lease(a, "w1", lease()).await.expect("renew"),
        "the old holder lost its lease"
    );
    assert!(
        repo.take_expired("w5", later, lease())
            .await
            .expect("take_expired")
            .is_empty(),
        "a lease is taken once"
    );

    // Finished tasks have nothing to recover, however old their lease.
    assert!(
        repo.transition(b, &[TaskStatus::Running], TaskStatus::Completed)
            .await
            .expect("transition")
    );
    assert!(!repo.renew_lease(b, "w2", lease()).await.expect("renew"));
    let far = Timestamp(now.0 + 7_200_000_000);
    assert_eq!(
        repo.take_expired("w6", far, far)
            .await
            .expect("take_expired"),
        vec![a],
        "only the running task, once its new lease ended too"
    );
    reset(repo).await;
}

/// Heartbeat rows: upserted by name, listed by name, forgotten by name.
async fn worker_beats(repo: &dyn TaskRepo) {
    use nestbox_core::ports::WorkerBeat;
    assert!(repo.worker_beats().await.expect("beats").is_empty());
    let beat = |name: &str, task: Option<i64>, seen: i64| WorkerBeat {
        name: name.to_owned(),
        node: name.split('/').next().unwrap_or("").to_owned(),
        task: task.map(TaskId),
        started_on: Timestamp(1_000),
        seen_on: Timestamp(seen),
        expires_on: Timestamp(seen + 3_000_000),
    };
    repo.beat_workers(&[beat("n2/worker1", None, 5), beat("n1/worker1", Some(7), 5)])
        .await
        .expect("beat");
    repo.beat_workers(&[]).await.expect("an empty beat");
    // A later beat replaces the row.
    repo.beat_workers(&[beat("n2/worker1", Some(9), 8)])
        .await
        .expect("beat again");
    assert_eq!(
        repo.worker_beats().await.expect("beats"),
        vec![
            beat("n1/worker1", Some(7), 5),
            beat("n2/worker1", Some(9), 8)
        ]
    );
    repo.forget_workers(&["n1/worker1".to_owned(), "nobody".to_owned()])
        .await
        .expect("forget");
    assert_eq!(
        repo.worker_beats().await.expect("beats"),
        vec![beat("n2/worker1", Some(9), 8)]
    );
    // A row dead for more than a day goes with the next beat of anyone.
    let day = nestbox_core::ports::FORGET_DEAD_WORKERS_AFTER;
    repo.beat_workers(&[beat("n3/worker1", None, 2 * day)])
        .await
        .expect("beat much later");
    assert_eq!(
        repo.worker_beats().await.expect("beats"),
        vec![beat("n3/worker1", None, 2 * day)]
    );
    repo.forget_workers(&["n3/worker1".to_owned()])
        .await
        .expect("forget");
}

/// Two handles on one store for different worker nodes (`with_node`): each node syncs,
/// claims and unlocks only its own machines; everyone sees all of them.
pub async fn run_nodes(n1: &dyn TaskRepo, n2: &dyn TaskRepo) {
    n1.sync_machines(&[machine_spec("n1-vm", "linux", &[])])
        .await
        .expect("sync n1");
    n2.sync_machines(&[machine_spec("n2-vm", "linux", &[])])
        .await
        .expect("sync n2");
    let names =
        |ms: Vec<nestbox_types::Machine>| ms.into_iter().map(|m| m.spec.name).collect::<Vec<_>>();
    assert_eq!(
        names(n1.machines().await.expect("machines")),
        ["n1-vm", "n2-vm"]
    );

    let t1 = add(n1, &url_task("http://node-1.example")).await;
    let t2 = add(n1, &url_task("http://node-2.example")).await;
    let (c1, m1) = n2
        .claim("n2/w", lease())
        .await
        .expect("claim")
        .expect("one");
    assert_eq!((c1.id, m1.spec.name.as_str()), (t1, "n2-vm"));
    assert!(
        n2.claim("n2/w", lease()).await.expect("claim").is_none(),
        "n2's only machine is busy; n1's is not n2's to use"
    );
    let (c2, m2) = n1
        .claim("n1/w", lease())
        .await
        .expect("claim")
        .expect("two");
    assert_eq!((c2.id, m2.spec.name.as_str()), (t2, "n1-vm"));

    // A restart of n1 (re-sync) releases n1's machine only, and keeps n2's machine.
    n1.sync_machines(&[machine_spec("n1-vm", "linux", &[])])
        .await
        .expect("resync n1");
    let locked: Vec<bool> = n1
        .machines()
        .await
        .expect("machines")
        .iter()
        .map(|m| m.locked)
        .collect();
    assert_eq!(locked, [false, true]);
    n1.sync_machines(&[]).await.expect("empty n1");
    assert_eq!(names(n2.machines().await.expect("machines")), ["n2-vm"]);
    for id in [t1, t2] {
        assert!(n1.delete_task(id).await.expect("delete"));
    }
    n2.sync_machines(&[]).await.expect("empty n2");
    assert!(n1.machines().await.expect("machines").is_empty());
}

/// Runs every [`AlRepo`](nestbox_core::assemblyline::AlRepo) check against `al`, which
/// must start empty; `tasks` is the same store's task side.
pub async fn run_al(al: &dyn nestbox_core::assemblyline::AlRepo, tasks: &dyn TaskRepo) {
    use nestbox_core::assemblyline::{AlIngest, AlSubmission};
    use serde_json::json;
    let sub_id = tasks
        .add_submission(&NewSubmission {
            submit_type: "assemblyline".into(),
            data: json!({}),
        })
        .await
        .expect("add_submission");
    let s = AlSubmission {
        sid: "abc".into(),
        submission_id: sub_id,
        task_id: TaskId(1),
        user_id: 7,
        name: "n".into(),
        sha256: "00".into(),
        size: 1,
        metadata: json!({"k": "v"}),
        params: json!({}),
        scan_key: "sk".into(),
        created_on: Timestamp::now(),
    };
    al.add_al_submission(&s).await.expect("add");
    assert!(al.add_al_submission(&s).await.is_err(), "sids are unique");
    assert_eq!(al.al_submission("abc").await.expect("get"), Some(s.clone()));
    assert_eq!(
        al.al_submission_by_scan_key("sk").await.expect("by key"),
        Some(s.clone())
    );
    let mut s2 = s.clone();
    s2.sid = "abd".into();
    s2.created_on = Timestamp(s.created_on.0 + 1);
    al.add_al_submission(&s2).await.expect("add");
    let page = al.al_submissions(Some(7), 10, 0).await.expect("list");
    assert_eq!(page, vec![s2.clone(), s.clone()], "newest first");
    assert_eq!(
        al.al_submissions(None, 1, 1).await.expect("list"),
        vec![s.clone()]
    );
    assert!(
        al.al_submissions(Some(8), 10, 0)
            .await
            .expect("list")
            .is_empty()
    );
    let i = AlIngest {
        ingest_id: "i1".into(),
        user_id: 7,
        sid: "abc".into(),
        queue: "q".into(),
        threshold: Some(500),
        generate_alert: true,
        created_on: Timestamp::now(),
        notified_on: None,
    };
    al.add_al_ingest(&i).await.expect("ingest");
    assert_eq!(al.pending_ingests(7, "q").await.expect("pending"), vec![i]);
    assert!(
        al.pending_ingests(8, "q")
            .await
            .expect("pending")
            .is_empty()
    );
    assert!(al.mark_ingest_notified("i1").await.expect("mark"));
    assert!(
        !al.mark_ingest_notified("i1").await.expect("mark"),
        "popped once"
    );
    assert!(
        al.pending_ingests(7, "q")
            .await
            .expect("pending")
            .is_empty()
    );
}

/// The Assemblyline records with search (`search_al_submissions`, `count_al_submissions`)
/// and ingest queues, against `al` (empty) and its store's task side `tasks`.
pub async fn run_al_search(al: &dyn nestbox_core::assemblyline::AlRepo, tasks: &dyn TaskRepo) {
    use nestbox_core::assemblyline::{AlColumn, AlCond, AlFilter, AlIngest, AlMatch, AlSubmission};
    use serde_json::json;
    let sub_id = tasks
        .add_submission(&nestbox_types::NewSubmission {
            submit_type: "assemblyline".into(),
            data: json!({}),
        })
        .await
        .unwrap();
    let s = AlSubmission {
        sid: "abc".into(),
        submission_id: sub_id,
        task_id: TaskId(1),
        user_id: 7,
        name: "n".into(),
        sha256: "00".into(),
        size: 1,
        metadata: json!({"k": "v"}),
        params: json!({}),
        scan_key: "sk".into(),
        created_on: Timestamp::now(),
    };
    al.add_al_submission(&s).await.unwrap();
    assert!(al.add_al_submission(&s).await.is_err());
    assert_eq!(al.al_submission("abc").await.unwrap().unwrap(), s);
    assert_eq!(
        al.al_submission_by_scan_key("sk").await.unwrap().unwrap(),
        s
    );
    assert_eq!(al.al_submissions(Some(7), 10, 0).await.unwrap().len(), 1);
    assert!(al.al_submissions(Some(8), 10, 0).await.unwrap().is_empty());
    let i = AlIngest {
        ingest_id: "i1".into(),
        user_id: 7,
        sid: "abc".into(),
        queue: "q".into(),
        threshold: None,
        generate_alert: false,
        created_on: Timestamp::now(),
        notified_on: None,
    };
    al.add_al_ingest(&i).await.unwrap();
    assert_eq!(al.pending_ingests(7, "q").await.unwrap(), vec![i]);
    assert!(al.pending_ingests(8, "q").await.unwrap().is_empty());
    assert!(al.mark_ingest_notified("i1").await.unwrap());
    assert!(!al.mark_ingest_notified("i1").await.unwrap());
    assert!(al.pending_ingests(7, "q").await.unwrap().is_empty());
    // Search: columns, JSON keys (strings, numbers, booleans), LIKE escapes, NOT, OR.
    let mut t = s.clone();
    t.sid = "def".into();
    t.name = "100%_evil.exe".into();
    t.metadata = json!({"k": "V2", "n": 7, "b": true});
    t.params = json!({"description": "Inspection of file: x", "submitter": "Admin"});
    t.created_on = Timestamp(s.created_on.0 + 1);
    al.add_al_submission(&t).await.unwrap();
    let cond = |column: AlColumn, matcher: AlMatch| AlCond {
        column,
        matcher,
        negate: false,
    };
    let find = |groups: Vec<Vec<AlCond>>| {
        let f = AlFilter { groups };
        async move {
            let n = al.count_al_submissions(&f).await.unwrap();
            let sids: Vec<String> = al
                .search_al_submissions(&f, 10, 0)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.sid)
                .collect();
            assert_eq!(n as usize, sids.len());
            sids
        }
    };
    assert_eq!(find(vec![]).await, ["def", "abc"]);
    let meta = |k: &str, m: AlMatch| cond(AlColumn::Metadata(k.into()), m);
    assert_eq!(
        find(vec![vec![meta("k", AlMatch::Exact("v2".into()))]]).await,
        ["def"]
    );
    assert_eq!(
        find(vec![vec![meta("n", AlMatch::Exact("7".into()))]]).await,
        ["def"]
    );
    assert_eq!(
        find(vec![vec![meta("b", AlMatch::Exact("true".into()))]]).await,
        ["def"]
    );
    assert_eq!(
        find(vec![vec![meta("k", AlMatch::Present)]]).await,
        ["def", "abc"]
    );
    assert_eq!(
        find(vec![vec![meta("zz", AlMatch::Present)]]).await,
        Vec::<String>::new()
    );
    let mut not_v = meta("k", AlMatch::Exact("v2".into()));
    not_v.negate = true;
    assert_eq!(find(vec![vec![not_v]]).await, ["abc"]);
    // `%` and `_` are literal in patterns.
    assert_eq!(
        find(vec![vec![cond(
            AlColumn::Name,
            AlMatch::Prefix("100%_".into())
        )]])
        .await,
        ["def"]
    );
    assert_eq!(
        find(vec![vec![cond(
            AlColumn::Name,
            AlMatch::Prefix("1%".into())
        )]])
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        find(vec![
            vec![cond(AlColumn::Sid, AlMatch::Exact("ABC".into()))],
            vec![cond(
                AlColumn::Param("submitter".into()),
                AlMatch::Contains("dmi".into())
            )],
        ])
        .await,
        ["def", "abc"]
    );
    assert_eq!(
        find(vec![vec![cond(
            AlColumn::Param("x\"y".into()),
            AlMatch::Present
        )]])
        .await,
        Vec::<String>::new()
    );
    assert!(al.delete_al_submission("def").await.unwrap());
    assert!(al.delete_al_submission("abc").await.unwrap());
    assert!(al.al_submission("abc").await.unwrap().is_none());
    assert!(!al.delete_al_submission("abc").await.unwrap());
}

/// Claims every one of `tasks` queued tasks with `claimers` concurrent claimers on each
/// handle (handles = processes), each claim followed by the release of its machine, and
/// checks that every task was claimed exactly once.
pub async fn run_concurrent_claims(
    handles: Vec<std::sync::Arc<dyn TaskRepo>>,
    claimers: usize,
    tasks: usize,
) {
    let first = handles[0].clone();
    let specs: Vec<_> = (0..4)
        .map(|n| machine_spec(&format!("cc{n}"), "linux", &[]))
        .collect();
    for h in &handles {
        h.sync_machines(&specs).await.expect("sync");
    }
    let mut queued = Vec::new();
    for n in 0..tasks {
        queued.push(add(&*first, &url_task(&format!("http://cc-{n}.example"))).await);
    }
    let mut joins = Vec::new();
    for (h, repo) in handles.into_iter().enumerate() {
        for c in 0..claimers {
            let repo = repo.clone();
            joins.push(tokio::spawn(async move {
                let worker = format!("cc{h}.{c}");
                let mut mine = Vec::new();
                let mut idle = 0;
                while idle < 20 {
                    match repo
                        .claim(&worker, lease())
                        .await
                        .expect("claim must not fail")
                    {
                        Some((task, machine)) => {
                            idle = 0;
                            assert!(machine.locked);
                            assert_eq!(task.processing.as_deref(), Some(worker.as_str()));
                            mine.push(task.id);
                            repo.transition(task.id, &[TaskStatus::Running], TaskStatus::Reported)
                                .await
                                .expect("transition");
                            repo.unlock_machine(machine.id).await.expect("unlock");
                        }
                        None => {
                            idle += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                mine
            }));
        }
    }
    let mut claimed = Vec::new();
    for j in joins {
        claimed.extend(j.await.expect("claimer"));
    }
    claimed.sort_unstable();
    assert_eq!(claimed, queued, "every task claimed exactly once");
    reset(&*first).await;
}

// ---------------------------------------------------------------------------------------
// Users (the `UserRepo` port), run separately because an engine implements it separately.

/// Runs every [`UserRepo`](nestbox_core::users::UserRepo) check against `users`, which
/// must start with no users; `tasks` is the same store's task side (for `tasks_users`).
pub async fn run_users(users: &dyn nestbox_core::users::UserRepo, tasks: &dyn TaskRepo) {
    use nestbox_core::users::{NewToken, NewUser, TokenKind};

    assert_eq!(users.user_count().await.expect("count"), 0);
    let new = NewUser {
        username: "alice".into(),
        password_hash: Some("$argon2id$x".into()),
        is_staff: false,
        subscription: "5/m".into(),
        roles: vec!["submitter".into()],
    };
    let alice = users.add_user(&new).await.expect("add_user");
    assert!(alice.id > 0);
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(alice.is_active && !alice.is_staff);
    assert_eq!(alice.subscription, "5/m");
    assert_eq!(alice.roles, vec!["submitter"]);
    assert_eq!(alice.token_generation, 0);
    assert!(
        matches!(users.add_user(&new).await, Err(Error::Invalid(_))),
        "user names are unique"
    );
    let bob = users
        .add_user(&NewUser {
            username: "bob".into(),
            password_hash: None,
            is_staff: true,
            subscription: String::new(),
            roles: Vec::new(),
        })
        .await
        .expect("add bob");
    assert!(bob.id > alice.id && bob.is_staff && bob.password_hash.is_none());
    assert_eq!(
        users.user(alice.id).await.expect("user"),
        Some(alice.clone())
    );
    assert_eq!(
        users.user_by_name("bob").await.expect("by name"),
        Some(bob.clone())
    );
    assert_eq!(users.user_by_name("carol").await.expect("by name"), None);
    assert_eq!(users.user(i64::MAX).await.expect("user"), None);
    let names: Vec<_> = users
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, vec!["alice", "bob"]);
    assert_eq!(users.user_count().await.expect("count"), 2);

    assert!(users.set_active(alice.id, false).await.expect("disable"));
    assert!(!users.user(alice.id).await.unwrap().unwrap().is_active);
    assert!(users.set_active(alice.id, true).await.expect("enable"));
    assert!(!users.set_active(i64::MAX, false).await.expect("missing"));
    assert!(users.set_password(bob.id, Some("h2")).await.expect("pw"));
    assert_eq!(
        users.user(bob.id).await.unwrap().unwrap().password_hash,
        Some("h2".into())
    );

    // Tokens: idempotent on the secret hash, looked up by kind, revoked per kind.
    let cape = NewToken {
        user_id: alice.id,
        kind: TokenKind::Cape,
        name: String::new(),
        secret_hash: "a".repeat(64),
        privileges: String::new(),
    };
    let t1 = users.add_token(&cape).await.expect("add_token");
    assert_eq!(users.add_token(&cape).await.expect("again"), t1);
    let key = NewToken {
        user_id: alice.id,
        kind: TokenKind::ApiKey,
        name: "ci".into(),
        secret_hash: "b".repeat(64),
        privileges: "RW".into(),
    };
    users.add_token(&key).await.expect("apikey");
    assert!(
        users
            .add_token(&NewToken {
                secret_hash: "c".repeat(64),
                ..key.clone()
            })
            .await
            .is_err(),
        "one live key per (user, kind, name)"
    );
    let found = users
        .token_by_hash(TokenKind::Cape, &"a".repeat(64))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((found.id, found.user_id), (t1, alice.id));
    assert_eq!(found.kind, TokenKind::Cape);
    let owner = users
        .user_by_token(TokenKind::Cape, &"a".repeat(64))
        .await
        .expect("user by token")
        .expect("found");
    assert_eq!(owner.id, alice.id);
    assert!(
        users
            .user_by_token(TokenKind::ApiKey, &"a".repeat(64))
            .await
            .unwrap()
            .is_none(),
        "kinds do not mix"
    );
    assert!(
        users
            .token_by_hash(TokenKind::ApiKey, &"a".repeat(64))
            .await
            .unwrap()
            .is_none(),
        "kinds do not mix"
    );
    let k = users
        .token_by_hash(TokenKind::ApiKey, &"b".repeat(64))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((k.name.as_str(), k.privileges.as_str()), ("ci", "RW"));
    assert_eq!(
        users
            .revoke_tokens(alice.id, TokenKind::Cape)
            .await
            .expect("revoke"),
        1
    );
    assert!(
        users
            .token_by_hash(TokenKind::Cape, &"a".repeat(64))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        users
            .user_by_token(TokenKind::Cape, &"a".repeat(64))
            .await
            .unwrap()
            .is_none(),
        "a revoked token has no user"
    );
    assert!(
        users
            .token_by_hash(TokenKind::ApiKey, &"b".repeat(64))
            .await
            .unwrap()
            .is_some(),
        "revoking one kind leaves the others"
    );
    assert_eq!(
        users
            .user(alice.id)
            .await
            .unwrap()
            .unwrap()
            .token_generation,
        1
    );
    let all = users.tokens(alice.id).await.expect("tokens");
    assert_eq!(all.len(), 2);
    assert!(all[0].revoked_on.is_some() && all[1].revoked_on.is_none());

    // Task ownership: a side row, gone with the task.
    let id = tasks
        .add_task(&NewTask::new(Category::Url, "http://users.example"))
        .await
        .expect("add_task");
    assert_eq!(users.task_user(id).await.expect("task_user"), 0);
    users.set_task_user(id, alice.id).await.expect("set");
    assert_eq!(users.task_user(id).await.unwrap(), alice.id);
    users
        .set_task_user(id, 0)
        .await
        .expect("anonymous is a no-op");
    assert_eq!(users.task_user(id).await.unwrap(), alice.id);
    assert!(tasks.delete_task(id).await.expect("delete"));
    assert_eq!(users.task_user(id).await.unwrap(), 0);
}

/// The web UI's task list: newest first, keyset pages that neither skip nor repeat, each
/// filter, report figures after indexing, search by term and by any sample hash, and the
/// index going with its task.
async fn parents(repo: &dyn TaskRepo) {
    use nestbox_types::browse::TaskPageQuery;
    let children = |parent: TaskId, status: Option<TaskStatus>, before: Option<TaskId>| async move {
        repo.browse_tasks(&TaskPageQuery {
            parent: Some(parent),
            status,
            before,
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("browse children")
        .into_iter()
        .map(|r| r.task.id)
        .collect::<Vec<_>>()
    };
    let parent = add(repo, &url_task("http://parent.example")).await;
    let other = add(repo, &url_task("http://other.example")).await;
    let child = |p: TaskId| {
        let mut t = url_task("http://child.example");
        t.parent_id = Some(p);
        t
    };
    let a = add(repo, &child(parent)).await;
    let _unrelated = add(repo, &url_task("http://unrelated.example")).await;
    let b = add(repo, &child(parent)).await;
    let c = add(repo, &child(other)).await;
    assert_eq!(get(repo, a).await.spec.parent_id, Some(parent));
    assert_eq!(get(repo, parent).await.spec.parent_id, None);
    assert_eq!(
        children(parent, None, None).await,
        vec![b, a],
        "newest first"
    );
    assert_eq!(children(other, None, None).await, vec![c]);
    assert_eq!(children(a, None, None).await, Vec::<TaskId>::new());
    assert_eq!(children(parent, None, Some(b)).await, vec![a], "keyset");
    repo.transition(a, &[TaskStatus::Pending], TaskStatus::Reported)
        .await
        .expect("t");
    assert_eq!(
        children(parent, Some(TaskStatus::Reported), None).await,
        vec![a],
        "filters combine"
    );
    // A parent that does not exist is refused.
    assert!(repo.add_task(&child(TaskId(i64::MAX))).await.is_err());
    // Deleting the parent keeps its children and forgets the link.
    assert!(repo.delete_task(parent).await.expect("delete"));
    assert_eq!(get(repo, a).await.spec.parent_id, None);
    assert_eq!(get(repo, b).await.spec.parent_id, None);
    assert_eq!(get(repo, c).await.spec.parent_id, Some(other));
    reset(repo).await;
}

async fn browse(repo: &dyn TaskRepo) {
    use nestbox_types::browse::{ReportIndex, ReportSummary, TaskPageQuery};
    let page = |q: TaskPageQuery| async move { repo.browse_tasks(&q).await.expect("browse") };
    let sample = repo.add_sample(&new_sample(77)).await.expect("sample");
    let mut file = NewTask::new(Category::File, "/tmp/evil.exe");
    file.sample_id = Some(sample.id);
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(add(repo, &url_task(&format!("http://b{i}.example"))).await);
    }
    tick().await;
    let file_id = add(repo, &file).await;
    all.push(file_id);
    all.reverse();

    // Keyset pages of 2 cover everything once, newest first.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let rows = page(TaskPageQuery {
            before,
            limit: 2,
            ..Default::default()
        })
        .await;
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 2);
        before = rows.last().map(|r| r.task.id);
        seen.extend(rows.iter().map(|r| r.task.id));
    }
    assert_eq!(seen, all, "pages in id order, none skipped or repeated");
    let first = &page(TaskPageQuery {
        limit: 1,
        ..Default::default()
    })
    .await[0];
    assert_eq!(first.task.sample.as_ref().map(|s| s.id), Some(sample.id));
    assert_eq!(first.report, None, "not indexed yet");

    // Filters.
    let by = |q: TaskPageQuery| async move {
        page(TaskPageQuery { limit: 50, ..q })
            .await
            .into_iter()
            .map(|r| r.task.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(TaskPageQuery {
            category: Some(Category::File),
            ..Default::default()
        })
        .await,
        vec![file_id]
    );
    repo.transition(all[1], &[TaskStatus::Pending], TaskStatus::Reported)
        .await
        .expect("t");
    assert_eq!(
        by(TaskPageQuery {
            status: Some(TaskStatus::Reported),
            ..Default::default()
        })
        .await,
        vec![all[1]]
    );
    let added = get(repo, file_id).await.added_on;
    assert_eq!(
        by(TaskPageQuery {
            added_from: Some(added),
            ..Default::default()
        })
        .await,
        vec![file_id]
    );
    assert_eq!(
        by(TaskPageQuery {
            added_until: Some(added),
            ..Default::default()
        })
        .await,
        all[1..].to_vec()
    );

    // Indexing: figures show, min_score and terms filter, re-indexing replaces.
    let index = |score: f64, terms: &[&str]| ReportIndex {
        summary: ReportSummary {
            score,
            malstatus: "Suspicious".into(),
            signatures: 3,
            family: Some("Emotet".into()),
        },
        terms: terms.iter().map(|t| (*t).to_owned()).collect(),
        fields: Vec::new(),
        al_results: Vec::new(),
    };
    repo.index_report(all[1], &index(1.0, &["old.example"]))
        .await
        .expect("index");
    repo.index_report(all[1], &index(5.5, &["evil.example", "10.0.0.9"]))
        .await
        .expect("reindex");
    repo.index_report(all[2], &index(2.0, &["evil.example"]))
        .await
        .expect("index");
    let row = page(TaskPageQuery {
        status: Some(TaskStatus::Reported),
        limit: 1,
        ..Default::default()
    })
    .await;
    let fig = row[0].report.clone().expect("indexed");
    assert_eq!((fig.score, fig.signatures), (5.5, 3));
    assert_eq!(fig.family.as_deref(), Some("Emotet"));
    let term = |t: &str| TaskPageQuery {
        term: Some(t.to_owned()),
        ..Default::default()
    };
    assert_eq!(by(term("evil.example")).await, vec![all[1], all[2]]);
    assert_eq!(by(term("old.example")).await, Vec::<TaskId>::new());
    assert_eq!(
        by(TaskPageQuery {
            before: Some(all[1]),
            ..term("evil.example")
        })
        .await,
        vec![all[2]],
        "keyset applies to searches"
    );
    assert_eq!(
        by(TaskPageQuery {
            min_score: Some(5.0),
            ..Default::default()
        })
        .await,
        vec![all[1]]
    );
    // Typed report fields (CAPE extendedsearch): exact values per option, newest first,
    // replaced on re-indexing, distinct values listed for pattern searches.
    let field = |f: &str, v: &str| nestbox_types::browse::ReportField {
        field: f.to_owned(),
        value: v.to_owned(),
    };
    let with_fields = |fields: Vec<nestbox_types::browse::ReportField>| ReportIndex {
        fields,
        ..index(1.0, &[])
    };
    repo.index_report(all[1], &with_fields(vec![field("domain", "old.example")]))
        .await
        .expect("index fields");
    repo.index_report(
        all[1],
        &with_fields(vec![
            field("domain", "evil.example"),
            field("signame", "Sig_A"),
        ]),
    )
    .await
    .expect("reindex fields");
    repo.index_report(all[2], &with_fields(vec![field("domain", "evil.example")]))
        .await
        .expect("index fields");
    let ids = |f: &'static str, v: &[&str]| {
        let v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
        let repo = &repo;
        async move { repo.tasks_by_report_field(f, &v, 10).await.expect("fields") }
    };
    assert_eq!(ids("domain", &["evil.example"]).await, vec![all[1], all[2]]);
    assert_eq!(ids("domain", &["old.example"]).await, Vec::<TaskId>::new());
    assert_eq!(
        ids("signame", &["sig_a"]).await,
        Vec::<TaskId>::new(),
        "case matters"
    );
    assert_eq!(ids("signame", &["Sig_A", "nope"]).await, vec![all[1]]);
    assert_eq!(
        repo.report_field_values("domain", 10)
            .await
            .expect("values"),
        vec!["evil.example".to_owned()]
    );
    // A sample is found by each of its hashes before any report exists.
    for h in [&sample.sha256, &sample.md5, &sample.sha1] {
        assert_eq!(by(term(h)).await, vec![file_id], "{h}");
    }

    // The index goes with the task.
    assert!(repo.delete_task(all[1]).await.expect("delete"));
    assert_eq!(by(term("10.0.0.9")).await, Vec::<TaskId>::new());
    reset(repo).await;
}

/// The Assemblyline result and file indexes (`search/result/`, `search/file/`), against
/// an empty store: `al` and `tasks` are its two sides.
pub async fn run_al_index(al: &dyn nestbox_core::assemblyline::AlRepo, tasks: &dyn TaskRepo) {
    use nestbox_core::assemblyline::{AlMatch, AlQuery, AlTerm};
    use nestbox_types::browse::{AlResultEntry, ReportIndex, ReportSummary};
    let term = |field: Option<&str>, m: AlMatch, negate: bool| AlTerm {
        field: field.map(str::to_owned),
        matcher: m,
        negate,
    };
    let exact = |f: &str, v: &str| term(Some(f), AlMatch::Exact(v.into()), false);
    let q = |groups: Vec<Vec<AlTerm>>| AlQuery { groups };
    let entry =
        |key: &str, svc: &str, score: i64, created: i64, fields: &[(&str, &str)]| AlResultEntry {
            key: key.into(),
            sha256: key.split('.').next().unwrap_or("").into(),
            service: svc.into(),
            score,
            created: Timestamp(created),
            file_type: "executable/windows/pe32".into(),
            size: 10,
            fields: fields
                .iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect(),
        };
    let t1 = tasks
        .add_task(&url_task("http://a.test/"))
        .await
        .expect("t1");
    let t2 = tasks
        .add_task(&url_task("http://b.test/"))
        .await
        .expect("t2");
    let index = |entries: Vec<AlResultEntry>| ReportIndex {
        summary: ReportSummary::default(),
        terms: Vec::new(),
        fields: Vec::new(),
        al_results: entries,
    };
    tasks
        .index_report(
            t1,
            &index(vec![
                entry(
                    "aa.Strings.v1.c0",
                    "Strings",
                    10,
                    100,
                    &[
                        ("response.service_name", "strings"),
                        (
                            "result.sections.tags.network.static.domain",
                            "evil.example.com",
                        ),
                        ("result.score", "10"),
                    ],
                ),
                entry(
                    "aa.Characterize.v1.c0",
                    "Characterize",
                    0,
                    100,
                    &[
                        ("response.service_name", "characterize"),
                        ("result.score", "0"),
                        ("weird_%_field", "50%_off\\"),
                    ],
                ),
            ]),
        )
        .await
        .expect("index t1");
    tasks
        .index_report(
            t2,
            &index(vec![entry(
                "bb.Strings.v1.c0",
                "Strings",
                0,
                200,
                &[
                    ("response.service_name", "strings"),
                    (
                        "result.sections.tags.network.static.domain",
                        "good.example.org",
                    ),
                ],
            )]),
        )
        .await
        .expect("index t2");
    let keys = |q: AlQuery| async move {
        let n = al.count_al_results(&q).await.expect("count");
        let rows = al.search_al_results(&q, 100, 0).await.expect("search");
        assert_eq!(
            n as usize,
            rows.len(),
            "count agrees with the rows of {q:?}"
        );
        rows.into_iter().map(|r| r.key).collect::<Vec<_>>()
    };
    let all = vec![
        "bb.Strings.v1.c0",
        "aa.Characterize.v1.c0",
        "aa.Strings.v1.c0",
    ];
    assert_eq!(keys(q(vec![])).await, all, "newest first, then key");
    assert_eq!(
        keys(q(vec![vec![term(None, AlMatch::Present, false)]])).await,
        all
    );
    assert_eq!(
        keys(q(vec![vec![exact("response.service_name", "STRINGS")]])).await,
        vec!["bb.Strings.v1.c0", "aa.Strings.v1.c0"],
        "values compare lower-cased"
    );
    let domain = "result.sections.tags.network.static.domain";
    for (m, want) in [
        (AlMatch::Suffix(".com".into()), vec!["aa.Strings.v1.c0"]),
        (AlMatch::Prefix("good.".into()), vec!["bb.Strings.v1.c0"]),
        (
            AlMatch::Contains("example".into()),
            vec!["bb.Strings.v1.c0", "aa.Strings.v1.c0"],
        ),
        (
            AlMatch::Present,
            vec!["bb.Strings.v1.c0", "aa.Strings.v1.c0"],
        ),
    ] {
        assert_eq!(
            keys(q(vec![vec![term(Some(domain), m.clone(), false)]])).await,
            want,
            "{m:?}"
        );
    }
    assert_eq!(
        keys(q(vec![vec![
            exact("response.service_name", "strings"),
            term(Some(domain), AlMatch::Suffix(".org".into()), true),
        ]]))
        .await,
        vec!["aa.Strings.v1.c0"],
        "AND NOT"
    );
    assert_eq!(
        keys(q(vec![
            vec![exact("result.score", "10")],
            vec![exact(domain, "good.example.org")],
        ]))
        .await,
        vec!["bb.Strings.v1.c0", "aa.Strings.v1.c0"],
        "OR"
    );
    assert_eq!(
        keys(q(vec![vec![term(
            None,
            AlMatch::Exact("evil.example.com".into()),
            false
        )]]))
        .await,
        vec!["aa.Strings.v1.c0"],
        "a bare word searches every field"
    );
    assert!(
        keys(q(vec![vec![exact("no.such.field", "x")]]))
            .await
            .is_empty()
    );
    assert_eq!(
        keys(q(vec![vec![term(
            Some("no.such.field"),
            AlMatch::Present,
            true
        )]]))
        .await,
        all,
        "NOT of a missing field matches everything"
    );
    // LIKE metacharacters in values are literal.
    assert_eq!(
        keys(q(vec![vec![term(
            Some("weird_%_field"),
            AlMatch::Prefix("50%_".into()),
            false
        )]]))
        .await,
        vec!["aa.Characterize.v1.c0"]
    );
    assert!(
        keys(q(vec![vec![term(
            Some("weird_%_field"),
            AlMatch::Prefix("5%".into()),
            false
        )]]))
        .await
        .is_empty()
    );
    assert_eq!(
        keys(q(vec![vec![term(
            Some("weird_%_field"),
            AlMatch::Suffix("off\\".into()),
            false
        )]]))
        .await,
        vec!["aa.Characterize.v1.c0"]
    );
    // Paging.
    let page = al.search_al_results(&q(vec![]), 1, 1).await.expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].key, "aa.Characterize.v1.c0");
    let row = al
        .al_result("aa.Strings.v1.c0")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        (row.task_id, row.score, row.created),
        (t1, 10, Timestamp(100))
    );
    assert_eq!((row.service.as_str(), row.size), ("Strings", 10));
    // A newer analysis of the same file takes the key over, with its own fields; re-indexing
    // a task replaces its rows.
    tasks
        .index_report(
            t2,
            &index(vec![entry(
                "aa.Strings.v1.c0",
                "Strings",
                0,
                300,
                &[("response.service_name", "strings")],
            )]),
        )
        .await
        .expect("reindex t2");
    let row = al
        .al_result("aa.Strings.v1.c0")
        .await
        .expect("get")
        .expect("row");
    assert_eq!((row.task_id, row.created), (t2, Timestamp(300)));
    assert!(
        al.al_result("bb.Strings.v1.c0")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        keys(q(vec![vec![term(Some(domain), AlMatch::Present, false)]]))
            .await
            .is_empty(),
        "the taken-over key lost its old fields"
    );
    assert!(tasks.delete_task(t2).await.expect("delete"));
    assert_eq!(
        keys(q(vec![])).await,
        vec!["aa.Characterize.v1.c0"],
        "deleted with the task"
    );

    // The file index.
    let s1 = tasks.add_sample(&new_sample(0x11)).await.expect("s1");
    let s2 = tasks.add_sample(&new_sample(0x22)).await.expect("s2");
    al.note_al_file(&s1.sha256, "executable/windows/pe32", Timestamp(10))
        .await
        .expect("note");
    al.note_al_file(&s2.sha256, "document/pdf", Timestamp(20))
        .await
        .expect("note");
    al.note_al_file(&s1.sha256, "", Timestamp(30))
        .await
        .expect("note again");
    let files = |q: AlQuery| async move {
        let n = al.count_al_files(&q).await.expect("count");
        let rows = al.search_al_files(&q, 100, 0).await.expect("search");
        assert_eq!(
            n as usize,
            rows.len(),
            "count agrees with the rows of {q:?}"
        );
        rows
    };
    let rows = files(q(vec![])).await;
    assert_eq!(rows.len(), 2);
    let f1 = &rows[0];
    assert_eq!(f1.sha256, s1.sha256, "most recently seen first");
    assert_eq!(
        (f1.seen_count, f1.seen_first, f1.seen_last),
        (2, Timestamp(10), Timestamp(30))
    );
    assert_eq!(
        f1.file_type, "executable/windows/pe32",
        "an empty type keeps the known one"
    );
    assert_eq!(
        (f1.md5.as_str(), f1.sha1.as_str()),
        (s1.md5.as_str(), s1.sha1.as_str())
    );
    assert_eq!(
        (f1.magic.as_str(), f1.size),
        (s1.file_type.as_str(), s1.file_size)
    );
    let sha = |rows: Vec<nestbox_core::assemblyline::AlFileRow>| {
        rows.into_iter().map(|r| r.sha256).collect::<Vec<_>>()
    };
    assert_eq!(
        sha(files(q(vec![vec![exact("type", "document/pdf")]])).await),
        vec![s2.sha256.clone()]
    );
    assert_eq!(
        sha(files(q(vec![vec![exact("md5", &s1.md5.to_uppercase())]])).await),
        vec![s1.sha256.clone()]
    );
    assert_eq!(
        sha(files(q(vec![vec![term(
            Some("type"),
            AlMatch::Prefix("executable/".into()),
            true
        )]]))
        .await),
        vec![s2.sha256.clone()]
    );
    assert_eq!(
        sha(files(q(vec![vec![term(
            None,
            AlMatch::Exact(s2.sha1.clone()),
            false
        )]]))
        .await),
        vec![s2.sha256.clone()],
        "bare words search the hashes"
    );
    assert_eq!(
        sha(files(q(vec![vec![exact("seen.count", "2")]])).await),
        vec![s1.sha256.clone()]
    );
    assert_eq!(
        sha(files(q(vec![vec![exact("size", &s2.file_size.to_string())]])).await),
        vec![s2.sha256.clone()]
    );
    assert!(files(q(vec![vec![exact("labels", "x")]])).await.is_empty());
    assert!(
        files(q(vec![vec![term(Some("tlsh"), AlMatch::Present, false)]]))
            .await
            .is_empty()
    );
    let page = al.search_al_files(&q(vec![]), 1, 1).await.expect("page");
    assert_eq!(sha(page), vec![s2.sha256.clone()]);
}

/// The Assemblyline quota counters and the unfinished-submission count, against an empty
/// store (`al` and `tasks` are its two sides).
pub async fn run_al_quota(al: &dyn nestbox_core::assemblyline::AlRepo, tasks: &dyn TaskRepo) {
    use nestbox_core::assemblyline::{AlIngest, AlSubmission};
    use serde_json::json;
    let later = Timestamp(Timestamp::now().0 + 3_600_000_000);
    let bump = |delta: i64, max: i64| al.bump_quota(1, "api_daily", 7, delta, max, later);
    assert_eq!(bump(1, 2).await.expect("bump"), Some(1));
    assert_eq!(bump(1, 2).await.expect("bump"), Some(2));
    assert_eq!(bump(1, 2).await.expect("bump"), None, "past the max");
    assert_eq!(al.quota_counter(1, "api_daily", 7).await.expect("get"), 2);
    assert_eq!(
        al.quota_counter(1, "api_daily", 8).await.expect("get"),
        0,
        "per period"
    );
    assert_eq!(
        al.quota_counter(2, "api_daily", 7).await.expect("get"),
        0,
        "per user"
    );
    assert_eq!(bump(-1, i64::MAX).await.expect("bump"), Some(1));
    assert_eq!(
        bump(-5, i64::MAX).await.expect("bump"),
        Some(0),
        "never below 0"
    );
    assert_eq!(
        al.bump_quota(1, "x", 0, -1, i64::MAX, later)
            .await
            .expect("bump"),
        Some(0),
        "a first decrement starts at 0"
    );
    assert_eq!(
        al.bump_quota(1, "x", 0, 1, 0, later).await.expect("bump"),
        None
    );
    // An expired window counts as 0 and the next bump opens a new one.
    let past = Timestamp(Timestamp::now().0 - 1);
    assert_eq!(
        al.bump_quota(1, "w", 0, 1, 1, past).await.expect("bump"),
        Some(1)
    );
    assert_eq!(al.quota_counter(1, "w", 0).await.expect("get"), 0);
    assert_eq!(
        al.bump_quota(1, "w", 0, 1, 1, later).await.expect("bump"),
        Some(1)
    );
    assert_eq!(
        al.bump_quota(1, "w", 0, 1, 1, later).await.expect("bump"),
        None
    );
    assert_eq!(al.quota_counter(1, "w", 0).await.expect("get"), 1);
    // Concurrent bumps never pass the max.
    let one = || al.bump_quota(3, "c", 0, 1, 5, later);
    let got = futures_util::future::join_all((0..20).map(|_| one())).await;
    let granted = got
        .into_iter()
        .map(|r| r.expect("bump"))
        .filter(Option::is_some)
        .count();
    assert_eq!(granted, 5);
    assert_eq!(al.quota_counter(3, "c", 0).await.expect("get"), 5);

    // Unfinished submissions, by ingest or not.
    let sub_id = tasks
        .add_submission(&NewSubmission {
            submit_type: "assemblyline".into(),
            data: json!({}),
        })
        .await
        .expect("add_submission");
    let mut ids = Vec::new();
    for (i, sid) in ["s1", "s2", "s3"].iter().enumerate() {
        let task_id = tasks
            .add_task(&url_task("http://q.test/"))
            .await
            .expect("task");
        ids.push(task_id);
        al.add_al_submission(&AlSubmission {
            sid: (*sid).into(),
            submission_id: sub_id,
            task_id,
            user_id: 9,
            name: "n".into(),
            sha256: "00".into(),
            size: 1,
            metadata: json!({}),
            params: json!({}),
            scan_key: format!("k{i}"),
            created_on: Timestamp::now(),
        })
        .await
        .expect("add");
    }
    al.add_al_ingest(&AlIngest {
        ingest_id: "i".into(),
        user_id: 9,
        sid: "s3".into(),
        queue: String::new(),
        threshold: None,
        generate_alert: false,
        created_on: Timestamp::now(),
        notified_on: None,
    })
    .await
    .expect("ingest");
    let counts = || async {
        (
            al.unfinished_al_submissions(9, false).await.expect("sync"),
            al.unfinished_al_submissions(9, true).await.expect("async"),
        )
    };
    assert_eq!(counts().await, (2, 1));
    assert!(
        tasks
            .transition(ids[0], &[TaskStatus::Pending], TaskStatus::Completed)
            .await
            .expect("transition")
    );
    assert_eq!(counts().await, (2, 1), "completed is not finished yet");
    assert!(
        tasks
            .transition(ids[0], &[TaskStatus::Completed], TaskStatus::Reported)
            .await
            .expect("transition")
    );
    assert_eq!(counts().await, (1, 1));
    assert!(tasks.delete_task(ids[2]).await.expect("delete"));
    assert_eq!(counts().await, (1, 0), "a deleted task is finished");
    assert_eq!(
        al.unfinished_al_submissions(10, false)
            .await
            .expect("other"),
        0
    );
}
