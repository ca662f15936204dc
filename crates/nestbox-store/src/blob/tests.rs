//! The blob store conformance suite.
//!
//! Every check is a function over `&dyn BlobStore`; [`suite!`] instantiates all of them
//! for a backend. The local store runs them in every `cargo test`; the S3 store runs them
//! against a real S3 server (SeaweedFS) started by `tests/s3/run.sh` (`make s3-test`),
//! which passes its address in `NESTBOX_TEST_S3_*` and runs the ignored tests. Each S3
//! fixture gets its own key prefix in the bucket, so the tests run in parallel and a
//! `list("")` sees only that test's blobs.

use std::path::Path;

use futures_util::StreamExt;
use nestbox_core::ports::BlobStore;
use nestbox_core::{Error, Result, keys};
use nestbox_types::TaskId;
use sha2::{Digest, Sha256};

use super::*;

/// A backend under test, with a scratch dir for source files.
struct Fixture {
    store: Box<dyn BlobStore>,
    scratch: tempfile::TempDir,
}

fn is_invalid(r: Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::Blob(ref e)) if e.kind() == ErrorKind::InvalidInput)
}

/// Deterministic bytes that are not all one value.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 31 % 251) as u8).collect()
}

async fn read_stream(store: &dyn BlobStore, key: &str) -> (u64, Vec<u8>, usize) {
    let reader = store.open(key).await.expect("open").expect("some");
    let mut stream = reader.stream;
    let (mut got, mut chunks) = (Vec::new(), 0);
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("chunk"));
        chunks += 1;
    }
    (reader.size, got, chunks)
}

async fn put_get_round_trip(store: &dyn BlobStore) {
    let key = keys::report_json(TaskId(7));
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert!(!store.exists(&key).await.expect("exists"));
    assert_eq!(store.size(&key).await.expect("size"), None);
    assert!(store.open(&key).await.expect("open").is_none());
    assert!(store.local(&key).await.expect("local").is_none());

    store.put(&key, b"{\"a\":1}".to_vec()).await.expect("put");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"{\"a\":1}"[..])
    );
    assert!(store.exists(&key).await.expect("exists"));
    assert_eq!(store.size(&key).await.expect("size"), Some(7));
    // A folder is not a blob.
    assert_eq!(store.size("analyses/7").await.expect("size"), None);

    // put overwrites.
    store.put(&key, b"v2".to_vec()).await.expect("put");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"v2"[..])
    );

    // A folder is not a blob.
    assert_eq!(store.get("analyses/7").await.expect("get"), None);
    assert!(!store.exists("analyses/7").await.expect("exists"));
    assert!(store.open("analyses/7").await.expect("open").is_none());
    assert!(store.local("analyses/7").await.expect("local").is_none());
    // Nor is a path through a blob.
    assert_eq!(
        store
            .get("analyses/7/reports/report.json/x")
            .await
            .expect("get"),
        None
    );
    // Names as dropped files have them (safe_component keeps letters of any script).
    let odd = "analyses/7/files/0123456789abcdef_r\u{e9}sum\u{e9} (1).pdf";
    store.put(odd, b"odd".to_vec()).await.expect("put odd");
    assert_eq!(
        store.get(odd).await.expect("get").as_deref(),
        Some(&b"odd"[..])
    );
    assert!(
        store
            .list("analyses/7/files")
            .await
            .expect("list")
            .contains(&odd.to_owned())
    );
}

async fn open_streams_exact_bytes(store: &dyn BlobStore) {
    // Larger than one stream chunk, with a non-round tail.
    let data = pattern(200_003);
    store.put("blobs/big", data.clone()).await.expect("put");
    let (size, got, chunks) = read_stream(store, "blobs/big").await;
    assert_eq!(size, data.len() as u64);
    assert!(chunks > 1, "streamed in pieces");
    assert_eq!(got, data);

    store.put("blobs/empty", Vec::new()).await.expect("put");
    let (size, got, _) = read_stream(store, "blobs/empty").await;
    assert_eq!((size, got.len()), (0, 0));
}

async fn put_file_moves_and_dedups(store: &dyn BlobStore, scratch: &Path) {
    let sha = "c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9";
    let key = keys::sample(sha);

    let src = scratch.join("upload1");
    std::fs::write(&src, b"sample bytes").expect("write");
    store.put_file(&key, &src).await.expect("put_file");
    assert!(!src.exists(), "the source is moved");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"sample bytes"[..])
    );

    // Same key again: the new file is discarded and the stored one kept (content
    // addressing makes them equal; different bytes prove which one was kept).
    let src2 = scratch.join("upload2");
    std::fs::write(&src2, b"other bytes").expect("write");
    store.put_file(&key, &src2).await.expect("put_file again");
    assert!(!src2.exists(), "the duplicate is removed");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"sample bytes"[..])
    );

    let src3 = scratch.join("upload3");
    std::fs::write(&src3, b"x").expect("write");
    assert!(is_invalid(store.put_file("../escape", &src3).await));
    assert!(src3.exists(), "a refused put_file leaves its source");
    assert!(
        store
            .put_file("blobs/missing-source", &scratch.join("nope"))
            .await
            .is_err(),
        "a missing source is an error"
    );
    assert!(!store.exists("blobs/missing-source").await.expect("exists"));
}

/// A file bigger than S3's multipart threshold (the suite's part size is 5 MiB) goes up
/// in parts and comes back byte for byte through `open` and `local`.
async fn large_file_round_trip(store: &dyn BlobStore, scratch: &Path) {
    let len = 12 * 1024 * 1024 + 4321;
    let data = pattern(len);
    let want = Sha256::digest(&data);
    let src = scratch.join("large");
    std::fs::write(&src, &data).expect("write");
    drop(data);
    let key = "analyses/3/memory.dmp";
    store.put_file(key, &src).await.expect("put_file");
    assert!(!src.exists());

    let reader = store.open(key).await.expect("open").expect("some");
    assert_eq!(reader.size, len as u64);
    let mut hasher = Sha256::new();
    let mut stream = reader.stream;
    let (mut total, mut biggest) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        total += chunk.len();
        biggest = biggest.max(chunk.len());
        hasher.update(&chunk);
    }
    assert_eq!(total, len);
    assert_eq!(hasher.finalize(), want);
    assert!(
        biggest < len / 2,
        "streamed, not one buffer ({biggest} bytes)"
    );

    let local = store.local(key).await.expect("local").expect("some");
    let on_disk = std::fs::read(&local.path).expect("read local copy");
    assert_eq!(Sha256::digest(&on_disk), want);
}

async fn traversal_keys_are_rejected(store: &dyn BlobStore, scratch: &Path) {
    let bad = [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "a//b",
        "..",
        ".",
        "./a",
        "a/./b",
        "a/",
        "",
        "a/b/..",
        "../secret",
        "nul\0byte",
        "line\nbreak",
    ];
    let src = scratch.join("src");
    std::fs::write(&src, b"s").expect("write");
    for key in bad {
        assert!(is_invalid(store.get(key).await), "get {key:?}");
        assert!(
            is_invalid(store.put(key, b"x".to_vec()).await),
            "put {key:?}"
        );
        assert!(
            is_invalid(store.put_file(key, &src).await),
            "put_file {key:?}"
        );
        assert!(
            is_invalid(store.open(key).await.map(|r| r.is_some())),
            "open {key:?}"
        );
        assert!(is_invalid(store.exists(key).await), "exists {key:?}");
        assert!(
            is_invalid(store.local(key).await.map(|l| l.is_some())),
            "local {key:?}"
        );
    }
    for prefix in ["../", "/", "/etc/", "a/../", "a//", "..", "", "x\0/"] {
        assert!(
            is_invalid(store.delete_prefix(prefix).await),
            "delete_prefix {prefix:?}"
        );
    }
    for prefix in ["../", "/", "/etc", "a/../b/", "a//b/"] {
        assert!(is_invalid(store.list(prefix).await), "list {prefix:?}");
    }
    assert!(
        store.list("").await.expect("list").is_empty(),
        "nothing was written"
    );
}

async fn list_and_delete_prefix(store: &dyn BlobStore) {
    assert!(
        store.list("").await.expect("list").is_empty(),
        "empty store"
    );
    assert!(
        store.list("analyses/1/").await.expect("list").is_empty(),
        "missing prefix"
    );
    store
        .delete_prefix("analyses/1/")
        .await
        .expect("missing prefix is fine");

    for key in [
        "analyses/1/reports/report.json",
        "analyses/1/task.json",
        "analyses/1/shots/0001.jpg",
        "analyses/10/task.json",
        "store/ab/cd/abcd",
    ] {
        store.put(key, key.as_bytes().to_vec()).await.expect("put");
    }
    let one = store.list(&keys::analysis(TaskId(1))).await.expect("list");
    assert_eq!(
        one,
        vec![
            "analyses/1/reports/report.json",
            "analyses/1/shots/0001.jpg",
            "analyses/1/task.json",
        ],
        "recursive, sorted, a path prefix (not analyses/10)"
    );
    assert_eq!(
        store.list("analyses/1").await.expect("list"),
        one,
        "trailing slash optional"
    );
    assert_eq!(
        store.list("analyses/1/task.json").await.expect("list"),
        vec!["analyses/1/task.json"]
    );
    assert!(
        store
            .list("analyses/1/task")
            .await
            .expect("list")
            .is_empty(),
        "not a name prefix"
    );
    assert_eq!(store.list("").await.expect("list").len(), 5);

    store
        .delete_prefix("analyses/1/task.json")
        .await
        .expect("delete file");
    assert!(!store.exists("analyses/1/task.json").await.expect("exists"));
    store
        .delete_prefix(&keys::analysis(TaskId(1)))
        .await
        .expect("delete dir");
    assert!(store.list("analyses/1/").await.expect("list").is_empty());
    assert_eq!(
        store.list("").await.expect("list"),
        vec!["analyses/10/task.json", "store/ab/cd/abcd"]
    );
    store
        .delete_prefix("analyses/1/")
        .await
        .expect("twice is fine");
}

async fn local_copy_is_readable(store: &dyn BlobStore) {
    let key = "analyses/5/dump.pcap";
    store.put(key, pattern(70_000)).await.expect("put");
    let local = store.local(key).await.expect("local").expect("some");
    assert_eq!(std::fs::read(&local.path).expect("read"), pattern(70_000));
    let path = local.path.clone();
    let temporary = local.guard.is_some();
    drop(local);
    // A temp copy goes with its guard; the local store's own file stays.
    assert_eq!(path.exists(), !temporary);
    assert!(store.exists(key).await.expect("exists"));
}

async fn probe_succeeds(store: &dyn BlobStore) {
    store.probe().await.expect("probe");
}

/// Instantiates every conformance check for a backend: `suite!(fixture_fn)` or
/// `suite!(fixture_fn, ignore = "why")`.
macro_rules! suite {
    ($fixture:path $(, $attr:meta)?) => {
        #[tokio::test]
        $(#[$attr])?
        async fn put_get_round_trip() {
            let f = $fixture();
            super::put_get_round_trip(&*f.store).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn open_streams_exact_bytes() {
            let f = $fixture();
            super::open_streams_exact_bytes(&*f.store).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn put_file_moves_and_dedups() {
            let f = $fixture();
            super::put_file_moves_and_dedups(&*f.store, f.scratch.path()).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn large_file_round_trip() {
            let f = $fixture();
            super::large_file_round_trip(&*f.store, f.scratch.path()).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn traversal_keys_are_rejected() {
            let f = $fixture();
            super::traversal_keys_are_rejected(&*f.store, f.scratch.path()).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn list_and_delete_prefix() {
            let f = $fixture();
            super::list_and_delete_prefix(&*f.store).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn local_copy_is_readable() {
            let f = $fixture();
            super::local_copy_is_readable(&*f.store).await;
        }
        #[tokio::test]
        $(#[$attr])?
        async fn probe_succeeds() {
            let f = $fixture();
            super::probe_succeeds(&*f.store).await;
        }
    };
}

fn local_fixture() -> Fixture {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = LocalBlobStore::new(scratch.path().join("data"));
    Fixture {
        store: Box::new(store),
        scratch,
    }
}

/// An S3 store on the server named by `NESTBOX_TEST_S3_ENDPOINT`/`_BUCKET` (credentials
/// from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`), under a prefix of its own.
fn s3_settings(scratch: &Path, test_prefix: &str) -> S3Settings {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: the S3 tests run through `make s3-test`")
        })
    };
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    S3Settings {
        endpoint: Some(var("NESTBOX_TEST_S3_ENDPOINT")),
        region: Some("us-east-1".into()),
        bucket: var("NESTBOX_TEST_S3_BUCKET"),
        path_style: true,
        prefix: format!("{test_prefix}-{}-{seq}", std::process::id()),
        // The smallest part S3 allows, so the suite's 12 MiB file takes three parts.
        part_size: s3::MIN_PART_SIZE,
        scratch_dir: scratch.join("s3-scratch"),
        ..S3Settings::default()
    }
}

fn s3_fixture() -> Fixture {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = S3BlobStore::new(&s3_settings(scratch.path(), "conformance")).expect("s3 store");
    Fixture {
        store: Box::new(store),
        scratch,
    }
}

mod local_backend {
    suite!(super::local_fixture);
}

mod s3_backend {
    suite!(
        super::s3_fixture,
        ignore = "needs a real S3 server: make s3-test"
    );
}

/// Uploads into a bucket that does not exist fail with an error (no panic, no hang) and
/// leave their source file, for a one-PUT file and a multipart one alike.
#[tokio::test]
#[ignore = "needs a real S3 server: make s3-test"]
async fn s3_uploads_to_a_missing_bucket_fail_cleanly() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = S3BlobStore::new(&S3Settings {
        bucket: "nestbox-no-such-bucket".into(),
        ..s3_settings(scratch.path(), "missing")
    })
    .expect("client");
    assert!(store.probe().await.is_err());
    for (name, len) in [("small", 10), ("multipart", 11 << 20)] {
        let src = scratch.path().join(name);
        std::fs::write(&src, pattern(len)).expect("write");
        let r = store.put_file(&format!("blobs/{name}"), &src).await;
        assert!(matches!(r, Err(Error::Blob(_))), "{name}: {r:?}");
        assert!(src.exists(), "{name}: the source is kept for a retry");
    }
    assert!(store.put("blobs/x", b"x".to_vec()).await.is_err());
}

// Local-store specifics: where files live, temp files, disk figures.

#[tokio::test]
async fn local_blobs_are_files_under_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalBlobStore::new(dir.path().join("data"));
    let key = keys::report_json(TaskId(7));
    store.put(&key, b"{}".to_vec()).await.expect("put");
    let local = store.local(&key).await.expect("local").expect("some");
    assert!(local.guard.is_none());
    assert_eq!(
        local.path,
        store.root().join("analyses/7/reports/report.json")
    );

    // A leftover temp file is not a blob.
    std::fs::write(
        store
            .root()
            .join("analyses/7")
            .join(format!("{TMP_PREFIX}x")),
        b"t",
    )
    .expect("write");
    assert_eq!(
        store.list("analyses/7").await.expect("list"),
        vec!["analyses/7/reports/report.json"]
    );

    // The stored copy of a content-addressed blob is not rewritten.
    let before = std::fs::metadata(store.root().join(&key))
        .expect("meta")
        .modified()
        .ok();
    let src = dir.path().join("dup");
    std::fs::write(&src, b"{}").expect("write");
    store.put_file(&key, &src).await.expect("put_file");
    let after = std::fs::metadata(store.root().join(&key))
        .expect("meta")
        .modified()
        .ok();
    assert_eq!(before, after);
}

#[tokio::test]
async fn local_refused_keys_write_nothing() {
    let f = local_fixture();
    // Something outside the root that a traversal would reach.
    std::fs::write(f.scratch.path().join("secret"), b"s").expect("write");
    traversal_keys_are_rejected(&*f.store, f.scratch.path()).await;
    assert!(f.scratch.path().join("secret").exists());
    assert!(
        !f.scratch.path().join("data").exists(),
        "nothing was written"
    );
}

#[tokio::test]
async fn local_probe_fails_on_an_unwritable_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The root's parent is a file: the root can never be created.
    std::fs::write(dir.path().join("file"), b"x").expect("write");
    let store = LocalBlobStore::new(dir.path().join("file/data"));
    assert!(store.probe().await.is_err());
}

#[test]
fn disk_usage_is_sane() {
    let f = local_fixture();
    // The root does not exist yet: the figures are those of the volume that will hold it.
    let du = f.store.disk_usage("analyses/").expect("statvfs");
    assert!(du.total > 0);
    assert!(du.free <= du.total);
    assert_eq!(du.used, du.total - du.free);
    assert_eq!(f.store.disk_usage("../x"), None);
}

// S3 specifics that need no server.

#[tokio::test]
async fn s3_probe_fails_fast_without_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A loopback port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let store = S3BlobStore::new(&S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        bucket: "nestbox".into(),
        path_style: true,
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        scratch_dir: dir.path().to_owned(),
        ..S3Settings::default()
    })
    .expect("client");
    let started = std::time::Instant::now();
    assert!(store.probe().await.is_err());
    assert!(
        store.exists("store/ab/cd/abcd").await.is_err(),
        "an outage is an error, not absence"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // Keys are checked before any request.
    assert!(is_invalid(store.get("../x").await));
    // Disk figures are the local scratch volume's (a bucket has none), outage or not.
    let usage = store.disk_usage("analyses/").expect("scratch volume");
    assert!(usage.total > 0 && usage.free <= usage.total);
}

#[test]
fn s3_settings_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = S3Settings {
        endpoint: Some("http://127.0.0.1:1".into()),
        region: Some("us-east-1".into()),
        bucket: "b".into(),
        scratch_dir: dir.path().to_owned(),
        ..S3Settings::default()
    };
    assert!(
        S3BlobStore::new(&S3Settings {
            bucket: String::new(),
            ..base.clone()
        })
        .is_err()
    );
    assert!(
        S3BlobStore::new(&S3Settings {
            prefix: "a/../b".into(),
            ..base.clone()
        })
        .is_err()
    );
    assert!(
        S3BlobStore::new(&S3Settings {
            prefix: "/nestbox/".into(),
            ..base
        })
        .is_ok()
    );
}
