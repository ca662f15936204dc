//! `nestbox migrate`: a single box (SQLite, blobs in its data dir) moved onto PostgreSQL
//! and a new blob store, then served from there. "Without loss" is checked through the
//! API: every sample (`files/get`) and every file of every analysis folder
//! (`tasks/report/<id>/all`) comes back byte for byte from the migrated install.
//!
//! Local → local (another directory) runs in `make pg`; local → S3 in `make s3-test`
//! (see `s3.rs`), both on the throw-away PostgreSQL of tests/pg/with-pg.sh.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{Server, nestbox_bin};

/// Static analysis only: the test is about moving data, not producing it.
const CONFIG: &str = "[analysis]\nworkers = 2\n[sandbox]\nmachinery = \"none\"\n";

/// What a box serves: each task's list entry, each sample's bytes, each analysis
/// folder's files (name → bytes).
#[derive(Debug, PartialEq)]
pub struct Served {
    tasks: Value,
    samples: BTreeMap<String, Vec<u8>>,
    folders: BTreeMap<i64, BTreeMap<String, Vec<u8>>>,
}

fn served(s: &Server, ids: &[i64]) -> Served {
    let tasks = s.get("/tasks/list").json()["tasks"].clone();
    let mut samples = BTreeMap::new();
    let mut folders = BTreeMap::new();
    for id in ids {
        let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
        let sha256 = t["sample"]["sha256"]
            .as_str()
            .expect("a file task")
            .to_owned();
        let r = s.get(&format!("/files/get/{sha256}"));
        assert_eq!(r.status, 200, "sample {sha256}: {}", r.text());
        samples.insert(sha256, r.body);
        let r = s.get(&format!("/tasks/report/{id}/all?tar=tar"));
        assert_eq!(r.status, 200, "folder of {id}: {}", r.text());
        let mut files = BTreeMap::new();
        let mut archive = tar::Archive::new(&r.body[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(name, data);
        }
        assert!(
            files.contains_key("reports/report.json"),
            "{id}: {:?}",
            files.keys()
        );
        folders.insert(*id, files);
    }
    Served {
        tasks,
        samples,
        folders,
    }
}

/// Pseudo-random bytes, so a sample is not one compressible run.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A single box on SQLite with analysed tasks (one sample above an S3 part, so it moves
/// as a multipart upload); returns the stopped box's directory, SQLite file, task ids and
/// what it served.
/// Blobs under `data_dir` (named, so the suite's S3 mode does not apply).
const LOCAL_STORE: &str = "[storage]\nbackend = \"local\"\n";

pub fn single_box() -> (tempfile::TempDir, PathBuf, Vec<i64>, Served) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/nestbox.db");
    let s = Server::start_in(
        dir,
        // A single box: SQLite and the local store, whatever the suite runs on.
        &format!(
            "{CONFIG}[database]\nurl = \"sqlite://{}\"\n{LOCAL_STORE}",
            db.display()
        ),
    );
    let mut ids: Vec<i64> = (0..4)
        .map(|n| s.submit_file(&format!("m{n}.bin"), &noise(1000 + n * 777, n as u64 + 1)))
        .collect();
    ids.push(s.submit_file("big.bin", &noise(6 << 20, 99)));
    // The same sample twice: one blob, two analysis folders.
    ids.push(s.submit_file("again.bin", &noise(1000, 1)));
    for id in &ids {
        s.wait_status(*id, "reported");
    }
    let before = served(&s, &ids);
    let dir = s.kill();
    (dir, db, ids, before)
}

/// Runs `nestbox migrate`; returns its stdout as `name → number` lines.
/// The blobs are found next to the SQLite file (the default of `--blobs-from`).
pub fn migrate(db: &Path, url: &str, config: &Path) -> BTreeMap<String, u64> {
    let out = Command::new(nestbox_bin())
        .args(["migrate", "--from"])
        .arg(format!("sqlite://{}", db.display()))
        .args(["--to", url, "--config"])
        .arg(config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The blobs of a data dir (`store/…`, `analyses/…` keys).
pub fn local_blobs(data: &Path) -> Vec<String> {
    let mut keys: Vec<String> = crate::harness::files_under(data)
        .into_iter()
        .filter_map(|p| {
            let k = p.strip_prefix(data).ok()?.to_string_lossy().into_owned();
            (k.starts_with("store/") || k.starts_with("analyses/")).then_some(k)
        })
        .collect();
    keys.sort();
    keys
}

/// Migrates a single box into `storage_toml`'s store (a new data dir under `new_dir`),
/// twice with a lost blob in between, and checks the migrated install serves the same.
/// `delete` removes one migrated blob from the destination (to resume).
pub fn migrate_and_compare(storage_toml: &str, delete: impl Fn(&Path, &str)) {
    let (old_dir, db, ids, before) = single_box();
    let old_data = old_dir.path().join("data");
    let blobs = local_blobs(&old_data);
    assert!(blobs.len() >= ids.len() * 2 + 5, "{blobs:?}");

    let url = crate::harness::pg_database("migrate");
    let new_dir = tempfile::tempdir().unwrap();
    let new_data = new_dir.path().join("data");
    let config = new_dir.path().join("nestbox.toml");
    let new_config = format!("{CONFIG}[database]\nurl = {url:?}\n{storage_toml}");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n{new_config}", new_data.to_string_lossy()),
    )
    .unwrap();

    let first = migrate(&db, &url, &config);
    assert_eq!(first["tasks"], ids.len() as u64);
    assert_eq!(first["blobs copied"], blobs.len() as u64, "{first:?}");
    assert_eq!(first["blobs skipped"], 0);
    // Interrupted-and-resumed, as far as the destination can tell: one blob missing.
    let lost = blobs
        .iter()
        .find(|k| k.ends_with("report.json"))
        .unwrap()
        .clone();
    delete(&new_data, &lost);
    let again = migrate(&db, &url, &config);
    assert_eq!(again["blobs copied"], 1, "{again:?}");
    assert_eq!(again["blobs skipped"], blobs.len() as u64 - 1);

    // The old box is gone; the new install serves everything it served.
    drop(old_dir);
    let s = Server::start_in(new_dir, &new_config);
    let after = served(&s, &ids);
    assert_eq!(after.samples, before.samples);
    assert_eq!(after.folders, before.folders);
    assert_eq!(after.tasks, before.tasks);
    // And keeps working.
    let next = s.submit_file("new.bin", b"after the move");
    assert_eq!(next, ids.last().unwrap() + 1);
    s.wait_status(next, "reported");
}

#[test]
fn migrate_moves_rows_and_blobs_to_another_directory() {
    if std::env::var_os("NESTBOX_TEST_PG_URL").is_none() {
        eprintln!("migrate: runs under tests/pg/with-pg.sh (make pg)");
        return;
    }
    migrate_and_compare(LOCAL_STORE, |data, key| {
        std::fs::remove_file(data.join(key)).unwrap();
    });
}
