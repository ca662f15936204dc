//! Copying every sample and artifact from one blob store into another: the blob half of
//! `nestbox migrate` (a single box's data dir into a bucket, or into another directory).
//!
//! * Only the folders the server writes are copied ([`COPIED_PREFIXES`]): the data dir
//!   also holds the SQLite file, the server secret and scratch space, which are no blobs.
//! * Resumable: a blob already at the destination with the source's size is skipped, so
//!   an interrupted copy is finished by running it again. Blobs appear atomically in
//!   both stores, so a blob that is there is whole; a different size means different
//!   content, which is replaced.
//! * Bounded memory: each blob streams from the source into a temp file in `scratch`
//!   and moves into the destination from there ([`BlobStore::put_file`] streams an
//!   upload in parts); at most [`PARALLEL`] blobs are in flight.
//! * Sample keys name their content (`store/ab/cd/<sha256>`): the bytes are hashed on
//!   the way through and a sample whose content does not match its name is not copied
//!   but reported, so a corrupt source file never becomes a corrupt object.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use nestbox_core::ports::BlobStore;
use nestbox_core::{Error, Result};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The folders of [`nestbox_core::keys`]: sample content and analysis folders.
pub const COPIED_PREFIXES: &[&str] = &["store/", "analyses/"];

/// Blobs copied at once (S3 round trips overlap; the local disk is not thrashed).
pub const PARALLEL: usize = 4;

/// Name prefix of the temp copies in the scratch dir.
const TEMP_PREFIX: &str = "migrate-";

/// Write buffer of the temp copies.
const BUFFER: usize = 256 * 1024;

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyStats {
    /// Blobs copied in this run.
    pub copied: u64,
    /// Bytes copied in this run.
    pub bytes: u64,
    /// Blobs already at the destination with the same size.
    pub skipped: u64,
    /// Samples whose content does not match their key (left out, reported).
    pub corrupt: Vec<String>,
}

enum Outcome {
    Copied(u64),
    Skipped,
    /// Listed but gone by the time it was read (a task deleted meanwhile).
    Vanished,
    Corrupt(String),
}

/// Copies every blob under [`COPIED_PREFIXES`] from `from` to `to`, through temp files
/// in `scratch` (created if missing; put it on the destination's filesystem for a local
/// destination, so a blob moves in by rename). Calls `progress(&stats)` after each blob.
pub async fn copy_blobs(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    scratch: &Path,
    mut progress: impl FnMut(&CopyStats),
) -> Result<CopyStats> {
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(Error::Io)?;
    remove_leftovers(scratch);
    let mut stats = CopyStats::default();
    for prefix in COPIED_PREFIXES {
        let keys = from.list(prefix).await?;
        let mut results = futures_util::stream::iter(keys)
            .map(|key| copy_one(from, to, scratch, key))
            .buffer_unordered(PARALLEL);
        while let Some(outcome) = results.try_next().await? {
            match outcome {
                Outcome::Copied(bytes) => {
                    stats.copied += 1;
                    stats.bytes += bytes;
                }
                Outcome::Skipped => stats.skipped += 1,
                Outcome::Vanished => {}
                Outcome::Corrupt(key) => stats.corrupt.push(key),
            }
            progress(&stats);
        }
    }
    stats.corrupt.sort_unstable();
    Ok(stats)
}

/// Removes the temp copies of a copy that was killed (one migration runs at a time).
fn remove_leftovers(scratch: &Path) {
    if let Ok(entries) = std::fs::read_dir(scratch) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The sha256 a sample key names, `None` for other keys.
fn named_sha256(key: &str) -> Option<&str> {
    let name = key.strip_prefix("store/")?.rsplit('/').next()?;
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then_some(name)
}

async fn copy_one(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    scratch: &Path,
    key: String,
) -> Result<Outcome> {
    let Some(reader) = from.open(&key).await? else {
        return Ok(Outcome::Vanished);
    };
    match to.size(&key).await? {
        Some(size) if size == reader.size => return Ok(Outcome::Skipped),
        // put_file keeps an existing blob: a different one must go first.
        Some(_) => to.delete_prefix(&key).await?,
        None => {}
    }
    let (file, temp) = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(scratch)
        .map_err(Error::Io)?
        .into_parts();
    let mut out = tokio::io::BufWriter::with_capacity(BUFFER, tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut stream = reader.stream;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Error::Blob)?;
        hasher.update(&chunk);
        written += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(Error::Io)?;
    }
    out.flush().await.map_err(Error::Io)?;
    drop(out);
    if written != reader.size {
        return Err(Error::Blob(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{key}: read {written} of {} bytes", reader.size),
        )));
    }
    if let Some(want) = named_sha256(&key) {
        let got: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !got.eq_ignore_ascii_case(want) {
            return Ok(Outcome::Corrupt(key));
        }
    }
    // put_file moves the file away; the guard then has nothing left to delete.
    let path: PathBuf = temp.to_path_buf();
    to.put_file(&key, &path).await?;
    drop(temp);
    Ok(Outcome::Copied(written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::LocalBlobStore;

    fn sha256_hex(data: &[u8]) -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[tokio::test]
    async fn copies_resumes_and_refuses_corrupt_samples() {
        let dir = tempfile::tempdir().unwrap();
        let from = LocalBlobStore::new(dir.path().join("old"));
        let to = LocalBlobStore::new(dir.path().join("new"));
        let scratch = dir.path().join("new/tmp");
        let sample = vec![7u8; 300_000];
        let sample_key = nestbox_core::keys::sample(&sha256_hex(&sample));
        from.put(&sample_key, sample.clone()).await.unwrap();
        from.put("analyses/1/reports/report.json", b"{}".to_vec())
            .await
            .unwrap();
        from.put("analyses/1/dump.pcap", vec![1; 5000])
            .await
            .unwrap();
        // Not blobs of the server: stay behind.
        std::fs::write(dir.path().join("old/nestbox.db"), b"sqlite").unwrap();

        // The destination already has one blob whole and one stale.
        to.put("analyses/1/reports/report.json", b"{}".to_vec())
            .await
            .unwrap();
        to.put("analyses/1/dump.pcap", vec![9; 10]).await.unwrap();

        let stats = copy_blobs(&from, &to, &scratch, |_| {}).await.unwrap();
        assert_eq!((stats.copied, stats.skipped), (2, 1), "{stats:?}");
        assert_eq!(stats.bytes, 305_000);
        assert_eq!(to.get(&sample_key).await.unwrap().unwrap(), sample);
        assert_eq!(
            to.get("analyses/1/dump.pcap").await.unwrap().unwrap(),
            vec![1; 5000]
        );
        assert!(!to.exists("nestbox.db").await.unwrap());
        // The source is untouched, the scratch dir left empty.
        assert_eq!(from.get(&sample_key).await.unwrap().unwrap(), sample);
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);

        // Run again after a kill left a temp copy behind: nothing to do, and the
        // leftover is gone.
        std::fs::write(scratch.join("migrate-leftover"), b"partial").unwrap();
        let again = copy_blobs(&from, &to, &scratch, |_| {}).await.unwrap();
        assert_eq!((again.copied, again.skipped), (0, 3), "{again:?}");
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);

        // A sample whose bytes do not match its name is reported, not copied.
        let bad_key = nestbox_core::keys::sample(&sha256_hex(b"the real content"));
        from.put(&bad_key, b"bit rot".to_vec()).await.unwrap();
        let bad = copy_blobs(&from, &to, &scratch, |_| {}).await.unwrap();
        assert_eq!(bad.corrupt, vec![bad_key.clone()]);
        assert!(!to.exists(&bad_key).await.unwrap());
    }
}
