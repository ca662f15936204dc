//! Dropped files: what changed in the sandbox's writable places, collected after the run.
//!
//! The writable places are directories of the host's scratch tree, so after the sandbox is
//! gone they are diffed against a snapshot taken before the run (size + mtime + inode).
//! Only regular files are taken, opened with `O_NOFOLLOW`: a sample may leave symlinks
//! pointing at host files, and those must never be followed by the (root) collector.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nestbox_core::machinery::DroppedFile;
use nestbox_types::report::FileInfo;

use crate::run::writable;

type Snapshot = BTreeMap<String, (u64, i64, i64, u64)>;

const MAX_WALK: usize = 20_000;

fn walk(dir: &Path, inside: &str, depth: usize, out: &mut Vec<(String, std::path::PathBuf)>) {
    if depth > 32 || out.len() >= MAX_WALK {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        let ip = format!("{}/{name}", inside.trim_end_matches('/'));
        if ft.is_dir() {
            walk(&e.path(), &ip, depth + 1, out);
        } else if ft.is_file() {
            out.push((ip, e.path()));
        }
    }
}

fn files(root: &Path, user: &str) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    for (d, inside) in writable(user) {
        walk(&root.join(d), &inside, 0, &mut out);
    }
    out
}

/// Sizes, mtimes and inodes of every file in the writable places.
pub(crate) fn snapshot(root: &Path, user: &str) -> Snapshot {
    files(root, user)
        .into_iter()
        .filter_map(|(ip, p)| {
            let m = std::fs::symlink_metadata(&p).ok()?;
            Some((ip, (m.size(), m.mtime(), m.mtime_nsec(), m.ino())))
        })
        .collect()
}

/// New or changed files, copied into `dest` and identified. The untouched sample itself
/// (`sample_sha256`) is not a dropped file.
#[allow(clippy::too_many_arguments)]
pub(crate) fn collect(
    root: &Path,
    user: &str,
    before: &Snapshot,
    writers: &BTreeMap<String, BTreeSet<i64>>,
    dest: &Path,
    max: usize,
    max_size: u64,
    sample_sha256: Option<&str>,
) -> (Vec<DroppedFile>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let after = snapshot(root, user);
    let changed: Vec<_> = files(root, user)
        .into_iter()
        .filter(|(ip, _)| before.get(ip) != after.get(ip))
        .collect();
    if changed.is_empty() {
        return (out, notes);
    }
    if let Err(e) = std::fs::create_dir_all(dest) {
        notes.push(format!("cannot store dropped files: {e}"));
        return (out, notes);
    }
    for (n, (inside, path)) in changed.into_iter().enumerate() {
        if out.len() >= max {
            notes.push(format!(
                "more than {max} dropped files; the rest were not kept"
            ));
            break;
        }
        let local = dest.join(format!("{n:05}"));
        let copied = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .and_then(|mut f| {
                if !f.metadata()?.is_file() {
                    return Err(std::io::Error::other("not a regular file"));
                }
                let mut o = std::fs::File::create(&local)?;
                use std::io::Read;
                std::io::copy(&mut (&mut f).take(max_size), &mut o)
            });
        if let Err(e) = copied {
            notes.push(format!("dropped file {inside} not kept: {e}"));
            continue;
        }
        let Some(file) = describe(local, inside, writers) else {
            continue;
        };
        if Some(file.info.sha256.as_str()) == sample_sha256
            && before.contains_key(&file_path(&file))
        {
            continue;
        }
        out.push(file);
    }
    (out, notes)
}

fn file_path(f: &DroppedFile) -> String {
    f.info.filepath.clone().unwrap_or_default()
}

/// A dropped file's report entry: hashes, type and URLs of the copy at `local`, `inside`
/// its path in the sandbox or guest, `writers` the pids that wrote each path. Shared with
/// the `qemu` machinery, whose guests upload their dropped files, and the emulator.
pub fn describe(
    local: std::path::PathBuf,
    inside: String,
    writers: &BTreeMap<String, BTreeSet<i64>>,
) -> Option<DroppedFile> {
    let d = nestbox_analyzers::digest_file(&local).ok()?;
    let ft = nestbox_analyzers::file_type_path(&local);
    let urls = std::fs::read(&local)
        .map(|b| nestbox_analyzers::extract_urls(&b))
        .unwrap_or_default();
    // Guest paths may be Windows paths.
    let name = inside
        .rsplit(['\\', '/'])
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("file")
        .to_owned();
    Some(DroppedFile {
        info: FileInfo {
            name,
            path: local.to_string_lossy().into_owned(),
            size: d.size,
            crc32: d.crc32,
            md5: d.md5,
            sha1: d.sha1,
            sha256: d.sha256,
            sha512: d.sha512,
            ssdeep: Some(d.ssdeep),
            tlsh: d.tlsh,
            file_type: ft.description,
            mime: ft.mime,
            urls,
            pids: writers
                .get(&inside)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
            filepath: Some(inside),
            ..FileInfo::default()
        },
        local,
    })
}
