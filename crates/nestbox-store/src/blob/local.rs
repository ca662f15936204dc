//! The local-filesystem blob store, the zero-config default.
//!
//! A key is a relative path under the store's root directory (the data dir), with `/` as
//! separator. Keys are checked by [`super::components`] before they touch the filesystem,
//! so a key cannot name anything outside the root; symbolic links found while listing are
//! skipped, not followed.
//!
//! Writes are atomic: a blob appears under its key complete or not at all (temp file in the
//! target directory, then `rename`). Temp files carry a [`TMP_PREFIX`] name that listing
//! ignores. All filesystem work runs on tokio's blocking pool.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use nestbox_core::ports::{BlobReader, BlobStore, DiskUsage, LocalBlob};
use nestbox_core::{Error, Result};

use super::{components, invalid, prefix_key};
use tokio_util::io::ReaderStream;

/// Name prefix of in-flight temp files; [`BlobStore::list`] skips such names.
pub const TMP_PREFIX: &str = ".nestbox-tmp-";

/// Read buffer of [`BlobStore::open`] streams.
const STREAM_CHUNK: usize = 64 * 1024;

/// A [`BlobStore`] over a local directory.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// A store rooted at `root`. Nothing is touched until the first write, which creates
    /// the directories it needs.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBlobStore { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a blob key, or `InvalidInput` for a key that could escape the root.
    fn path(&self, key: &str) -> Result<PathBuf> {
        let mut path = self.root.clone();
        for part in components(key)? {
            path.push(part);
        }
        Ok(path)
    }

    /// The path of a prefix: like a key, but a trailing `/` is allowed, and the empty
    /// prefix is the root.
    fn prefix_path(&self, prefix: &str) -> Result<PathBuf> {
        match prefix_key(prefix)? {
            "" => Ok(self.root.clone()),
            trimmed => self.path(trimmed),
        }
    }
}

/// "Not there" in the sense of the trait: no such file, or the path is a directory or
/// goes through a file.
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
    )
}

/// Runs blocking filesystem work off the async runtime.
async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Blob(io::Error::other(e)))?
        .map_err(Error::Blob)
}

fn create_parent(path: &Path) -> io::Result<&Path> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "blob path has no parent"))?;
    std::fs::create_dir_all(parent)?;
    Ok(parent)
}

/// Whether `path` is a regular file. Symlinks are followed: the store never creates any,
/// so one can only have been put there by someone who already controls the data dir.
fn is_file(path: &Path) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.is_file()),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `fill`'s output to a temp file next to `dest`, syncs it, and renames it into
/// place, so readers see the old blob or the whole new one.
fn write_atomic(
    dest: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = create_parent(dest)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Recursively collects the keys of regular files under `dir` (whose key is `key`, empty
/// for the root) into `out`.
fn walk(dir: &Path, key: &str, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            // Not UTF-8, so not a key this store wrote; it cannot be named by a key either.
            continue;
        };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let child = if key.is_empty() {
            name
        } else {
            format!("{key}/{name}")
        };
        // `file_type` does not follow symlinks: links are neither listed nor entered.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &child, out)?;
        } else if kind.is_file() {
            out.push(child);
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put_file(&self, key: &str, file: &Path) -> Result<()> {
        let dest = self.path(key)?;
        let src = file.to_owned();
        blocking(move || {
            if is_file(&dest)? {
                // Content-addressed: the stored copy is the same bytes.
                return std::fs::remove_file(&src);
            }
            create_parent(&dest)?;
            match std::fs::rename(&src, &dest) {
                Ok(()) => Ok(()),
                // The temp dir is on another filesystem: copy into a temp file beside the
                // destination first so the blob still appears atomically.
                Err(e) if e.kind() == ErrorKind::CrossesDevices => {
                    write_atomic(&dest, |out| {
                        let mut input = std::fs::File::open(&src)?;
                        io::copy(&mut input, out).map(drop)
                    })?;
                    std::fs::remove_file(&src)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let dest = self.path(key)?;
        blocking(move || write_atomic(&dest, |out| io::Write::write_all(out, &data))).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(data)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(Error::Blob(e)),
        }
    }

    async fn open(&self, key: &str) -> Result<Option<BlobReader>> {
        let path = self.path(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(Error::Blob(e)),
        };
        let meta = file.metadata().await.map_err(Error::Blob)?;
        // Opening a directory succeeds on Unix; it is still not a blob.
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(BlobReader {
            size: meta.len(),
            stream: Box::pin(ReaderStream::with_capacity(file, STREAM_CHUNK)),
        }))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        blocking(move || is_file(&path)).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        blocking(move || match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let path = self.prefix_path(prefix)?;
        let key = prefix.trim_end_matches('/').to_owned();
        blocking(move || {
            let mut keys = Vec::new();
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => keys.push(key),
                Ok(meta) if meta.is_dir() => walk(&path, &key, &mut keys)?,
                Ok(_) => {}
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(e),
            }
            keys.sort_unstable();
            Ok(keys)
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        // The empty prefix would be the whole data dir: never a sensible delete.
        if prefix.is_empty() {
            return Err(invalid(prefix));
        }
        let path = self.prefix_path(prefix)?;
        blocking(move || {
            let result = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if is_missing(&e) => Ok(()),
                other => other,
            }
        })
        .await
    }

    async fn local(&self, key: &str) -> Result<Option<LocalBlob>> {
        let path = self.path(key)?;
        let check = path.clone();
        if !blocking(move || is_file(&check)).await? {
            return Ok(None);
        }
        Ok(Some(LocalBlob { path, guard: None }))
    }

    async fn probe(&self) -> Result<()> {
        // Writable, not only present: a full or read-only volume is not ready.
        let root = self.root.clone();
        blocking(move || {
            std::fs::create_dir_all(&root)?;
            tempfile::Builder::new()
                .prefix(TMP_PREFIX)
                .tempfile_in(&root)
                .map(drop)
        })
        .await
    }

    fn disk_usage(&self, prefix: &str) -> Option<DiskUsage> {
        // statvfs needs an existing path: use the closest existing ancestor of the prefix
        // (the root itself may not exist yet before the first upload).
        let path = self.prefix_path(prefix).ok()?;
        super::volume_usage(&path)
    }
}
