use futures_util::StreamExt;
use nestbox_core::ports::BlobStore;
use nestbox_core::{Error, keys};
use nestbox_types::TaskId;

use super::*;

fn store() -> (tempfile::TempDir, LocalBlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalBlobStore::new(dir.path().join("data"));
    (dir, store)
}

fn is_invalid(r: Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::Blob(ref e)) if e.kind() == ErrorKind::InvalidInput)
}

#[tokio::test]
async fn put_get_round_trip() {
    let (_dir, store) = store();
    let key = keys::report_json(TaskId(7));
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert!(!store.exists(&key).await.expect("exists"));
    assert!(store.open(&key).await.expect("open").is_none());
    assert!(store.local(&key).await.expect("local").is_none());

    store.put(&key, b"{\"a\":1}".to_vec()).await.expect("put");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"{\"a\":1}"[..])
    );
    assert!(store.exists(&key).await.expect("exists"));
    let local = store.local(&key).await.expect("local").expect("some");
    assert!(local.guard.is_none());
    assert_eq!(
        local.path,
        store.root().join("analyses/7/reports/report.json")
    );

    // put overwrites.
    store.put(&key, b"v2".to_vec()).await.expect("put");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"v2"[..])
    );

    // A directory is not a blob.
    assert_eq!(store.get("analyses/7").await.expect("get"), None);
    assert!(!store.exists("analyses/7").await.expect("exists"));
    assert!(store.open("analyses/7").await.expect("open").is_none());
    // Nor is a path through a file.
    assert_eq!(
        store
            .get("analyses/7/reports/report.json/x")
            .await
            .expect("get"),
        None
    );
}

#[tokio::test]
async fn open_streams_exact_bytes() {
    let (_dir, store) = store();
    // Larger than one stream chunk, with a non-round tail.
    let data: Vec<u8> = (0..200_003u32).map(|i| (i * 31 % 251) as u8).collect();
    store.put("blobs/big", data.clone()).await.expect("put");
    let reader = store.open("blobs/big").await.expect("open").expect("some");
    assert_eq!(reader.size, data.len() as u64);
    let mut stream = reader.stream;
    let mut got = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("chunk"));
        chunks += 1;
    }
    assert!(chunks > 1, "streamed in pieces");
    assert_eq!(got, data);

    store.put("blobs/empty", Vec::new()).await.expect("put");
    let reader = store
        .open("blobs/empty")
        .await
        .expect("open")
        .expect("some");
    assert_eq!(reader.size, 0);
}

#[tokio::test]
async fn put_file_moves_and_dedups() {
    let (dir, store) = store();
    let sha = "c6039bfcdfdfbf714caa94a3bb837a6a4907f3f84ed580ce2916bae7676b68f9";
    let key = keys::sample(sha);

    let src = dir.path().join("upload1");
    std::fs::write(&src, b"sample bytes").expect("write");
    store.put_file(&key, &src).await.expect("put_file");
    assert!(!src.exists(), "the source is moved");
    assert_eq!(
        store.get(&key).await.expect("get").as_deref(),
        Some(&b"sample bytes"[..])
    );

    // Same key again: the new file is discarded and the stored one kept.
    let src2 = dir.path().join("upload2");
    std::fs::write(&src2, b"sample bytes").expect("write");
    let before = std::fs::metadata(store.root().join(&key))
        .expect("meta")
        .modified()
        .ok();
    store.put_file(&key, &src2).await.expect("put_file again");
    assert!(!src2.exists(), "the duplicate is removed");
    let after = std::fs::metadata(store.root().join(&key))
        .expect("meta")
        .modified()
        .ok();
    assert_eq!(before, after);

    assert!(is_invalid(store.put_file("../escape", &src2).await));
}

#[tokio::test]
async fn traversal_keys_are_rejected() {
    let (dir, store) = store();
    // Something outside the root that a traversal would reach.
    std::fs::write(dir.path().join("secret"), b"s").expect("write");
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
    ];
    for key in bad {
        assert!(is_invalid(store.get(key).await), "get {key:?}");
        assert!(
            is_invalid(store.put(key, b"x".to_vec()).await),
            "put {key:?}"
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
    assert!(dir.path().join("secret").exists());
    assert!(!store.root().exists(), "nothing was written");
}

#[tokio::test]
async fn list_and_delete_prefix() {
    let (_dir, store) = store();
    assert!(
        store.list("").await.expect("list").is_empty(),
        "missing root"
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
    // A leftover temp file is not a blob.
    std::fs::write(
        store
            .root()
            .join("analyses/1")
            .join(format!("{TMP_PREFIX}x")),
        b"t",
    )
    .expect("write");

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

#[test]
fn disk_usage_is_sane() {
    let (_dir, store) = store();
    // The root does not exist yet: the figures are those of the volume that will hold it.
    let du = store.disk_usage("analyses/").expect("statvfs");
    assert!(du.total > 0);
    assert!(du.free <= du.total);
    assert_eq!(du.used, du.total - du.free);
    assert_eq!(store.disk_usage("../x"), None);
}
