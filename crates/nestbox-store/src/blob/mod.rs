//! The blob stores: sample content and analysis artifacts, by key.
//!
//! * [`LocalBlobStore`]: a directory on the local filesystem (the data dir), the
//!   zero-config default of a single box;
//! * [`S3BlobStore`]: an S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS)
//!   through the `object_store` crate, shared by API and worker nodes.
//!
//! Both implement [`BlobStore`] with the same semantics, checked by one conformance suite
//! (`tests.rs`) that runs against each:
//!
//! * A key is `/`-separated plain names: `store/ab/cd/<sha256>`,
//!   `analyses/7/reports/report.json` (see [`nestbox_core::keys`]). Keys reach this code
//!   from the network (report file names, dropped-file names), so every key is checked
//!   first: absolute keys, keys with empty, `.` or `..` components and control characters
//!   are refused with `InvalidInput`, by every backend alike.
//! * Prefixes ([`BlobStore::list`], [`BlobStore::delete_prefix`]) are *path* prefixes:
//!   `analyses/7/` (or `analyses/7`) means the folder, never `analyses/70/`; a prefix that
//!   names a blob means that blob. That is the safe reading of a prefix for deletes, and
//!   what callers build with [`nestbox_core::keys::analysis`].
//! * A blob appears under its key complete or not at all.
//! * Nothing is held whole in memory except through [`BlobStore::get`]/[`BlobStore::put`],
//!   which are for small blobs (reports, task rows); samples and artifacts move through
//!   files ([`BlobStore::put_file`], [`BlobStore::local`]) and streams ([`BlobStore::open`]).
//!
//! [`BlobStore`]: nestbox_core::ports::BlobStore
//! [`BlobStore::list`]: nestbox_core::ports::BlobStore::list
//! [`BlobStore::delete_prefix`]: nestbox_core::ports::BlobStore::delete_prefix
//! [`BlobStore::get`]: nestbox_core::ports::BlobStore::get
//! [`BlobStore::put`]: nestbox_core::ports::BlobStore::put
//! [`BlobStore::put_file`]: nestbox_core::ports::BlobStore::put_file
//! [`BlobStore::local`]: nestbox_core::ports::BlobStore::local
//! [`BlobStore::open`]: nestbox_core::ports::BlobStore::open

use std::io::{self, ErrorKind};

use nestbox_core::{Error, Result};

pub mod copy;
pub mod local;
pub mod s3;

#[cfg(test)]
mod tests;

pub use local::{LocalBlobStore, TMP_PREFIX};
pub use s3::{S3BlobStore, S3Settings};

fn invalid(key: &str) -> Error {
    Error::Blob(io::Error::new(
        ErrorKind::InvalidInput,
        format!("invalid blob key {key:?}"),
    ))
}

/// The components of a key; refuses anything but plain names joined by single `/`.
/// Control characters are refused too: object stores reject them, and no key the server
/// builds contains one, so every backend refuses the same keys.
fn components(key: &str) -> Result<Vec<&str>> {
    if key.is_empty() || key.chars().any(|c| c.is_control()) {
        return Err(invalid(key));
    }
    let parts: Vec<&str> = key.split('/').collect();
    // A leading `/` shows up as an empty first component, `a//b` and `a/` as empty ones.
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(invalid(key));
    }
    Ok(parts)
}

/// A checked prefix without its trailing `/`: `Some("")` for the empty prefix (the whole
/// store), `InvalidInput` for anything [`components`] refuses (and for `/` alone, which
/// is an absolute path, not "everything").
fn prefix_key(prefix: &str) -> Result<&str> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        if prefix.is_empty() {
            return Ok("");
        }
        return Err(invalid(prefix));
    }
    components(trimmed)?;
    Ok(trimmed)
}

/// statvfs figures of the volume holding `path` (or its closest existing ancestor: a
/// directory may not exist before the first write).
pub(crate) fn volume_usage(path: &std::path::Path) -> Option<nestbox_core::ports::DiskUsage> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statvfs::statvfs(existing).ok()?;
    // The field types are platform-sized (u32 on some 32-bit targets).
    #[allow(clippy::useless_conversion)]
    let (frsize, blocks, avail) = (
        u64::from(st.fragment_size()),
        u64::from(st.blocks()),
        u64::from(st.blocks_available()),
    );
    Some(nestbox_core::ports::DiskUsage {
        free: avail.saturating_mul(frsize),
        total: blocks.saturating_mul(frsize),
        used: blocks.saturating_sub(avail).saturating_mul(frsize),
    })
}
