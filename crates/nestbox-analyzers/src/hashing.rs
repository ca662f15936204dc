//! Identity hashes of a sample: size, MD5, SHA-1, SHA-256, SHA-512, CRC32, ssdeep and TLSH.
//!
//! Everything is computed in a single streaming pass by [`MultiHasher`], so a sample is never
//! held in memory just to hash it: the upload path feeds it chunk by chunk as it arrives.
//! The string forms are the ones Cuckoo/CAPE put in `target.file`, because that is what
//! clients compare against:
//!
//! * the cryptographic digests are lowercase hex (Python's `hexdigest()`);
//! * CRC32 is eight uppercase hex digits (`"%08X" % (zlib.crc32(data) & 0xffffffff)`);
//! * ssdeep is the libfuzzy/`ssdeep` CLI form, `"3::"` for empty input;
//! * TLSH is py-tlsh's `tlsh.hash()` (128 buckets, 1-byte checksum, `T1` prefix), which
//!   yields `TNULL` for inputs it cannot hash; that is represented as `None` here.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

/// All identity hashes of a sample, computed in one streaming pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex MD5.
    pub md5: String,
    /// Lowercase hex SHA-1.
    pub sha1: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Lowercase hex SHA-512.
    pub sha512: String,
    /// CRC32 as eight uppercase hex digits, like Cuckoo's `"%08X"`.
    pub crc32: String,
    /// ssdeep fuzzy hash in the `ssdeep` CLI form (`"3::"` for empty input).
    ///
    /// Empty only for inputs beyond ssdeep's hard 192 GiB limit, where the reference tool
    /// refuses to produce a hash at all.
    pub ssdeep: String,
    /// TLSH (`T1` + 70 hex digits) as py-tlsh computes it; `None` where py-tlsh says `TNULL`
    /// (fewer than 50 bytes, or too little variation in the data).
    pub tlsh: Option<String>,
}

/// Hashers see the input in pieces of at most this many bytes.
///
/// Every hasher walks the same bytes; handing them a cache-sized piece in turn means the
/// piece is still in L2 when the next hasher reads it, instead of each hasher streaming a
/// caller's multi-megabyte chunk through main memory separately.
const STRIPE: usize = 64 * 1024;

/// Above this many bytes no TLSH is produced.
///
/// The TLSH builder counts into `u32` buckets and may add up to six counts per input byte
/// to one bucket; past `u32::MAX / 6` bytes a bucket could overflow, which the Rust builder
/// turns into a panic in builds with overflow checks (the C++ reference silently wraps and
/// produces a meaningless hash). Samples this large are far beyond any upload limit, so
/// giving up on the one fuzzy hash is the safe trade.
const TLSH_MAX_INPUT: u64 = (u32::MAX / 6) as u64;

/// The buffer [`digest_file`] reads with.
const FILE_BUFFER: usize = 1024 * 1024;

/// Streaming hasher: feed chunks with [`update`](Self::update), get a [`Digest`] from
/// [`finish`](Self::finish).
///
/// Memory use is constant (a few KiB) whatever the input size. The result does not depend
/// on how the input is split into chunks.
#[derive(Clone)]
pub struct MultiHasher {
    size: u64,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    sha512: Sha512,
    crc32: crc32fast::Hasher,
    ssdeep: ssdeep::Generator,
    // Boxed: the builder carries a 1 KiB bucket array, and a `MultiHasher` gets moved
    // around by callers (into closures, `finish(self)`).
    tlsh: Box<tlsh2::TlshDefaultBuilder>,
}

impl std::fmt::Debug for MultiHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash states are opaque and huge; the byte count is what is useful in a log.
        f.debug_struct("MultiHasher")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Default for MultiHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl MultiHasher {
    /// A hasher that has seen no input yet.
    pub fn new() -> Self {
        Self {
            size: 0,
            md5: Md5::new(),
            sha1: Sha1::new(),
            sha256: Sha256::new(),
            sha512: Sha512::new(),
            crc32: crc32fast::Hasher::new(),
            ssdeep: ssdeep::Generator::new(),
            tlsh: Box::default(),
        }
    }

    /// Feeds the next chunk of input. Chunks may be of any size, including zero.
    pub fn update(&mut self, chunk: &[u8]) {
        for stripe in chunk.chunks(STRIPE) {
            self.md5.update(stripe);
            self.sha1.update(stripe);
            self.sha256.update(stripe);
            self.sha512.update(stripe);
            self.crc32.update(stripe);
            // Past its limit the generator only records the size and reports an error on
            // finalisation, so feeding it is always safe.
            self.ssdeep.update(stripe);
            let len = stripe.len() as u64;
            let tlsh_room = TLSH_MAX_INPUT.saturating_sub(self.size);
            if tlsh_room > 0 {
                let take = usize::try_from(tlsh_room.min(len)).unwrap_or(stripe.len());
                self.tlsh.update(&stripe[..take]);
            }
            self.size = self.size.saturating_add(len);
        }
    }

    /// Finishes all hashes.
    pub fn finish(self) -> Digest {
        let tlsh = if self.size > TLSH_MAX_INPUT {
            None
        } else {
            self.tlsh
                .build()
                .map(|t| String::from_utf8_lossy(&t.hash()).into_owned())
        };
        // `finalize` fails only beyond ssdeep's 192 GiB input limit; the reference tool
        // prints no hash there either.
        let ssdeep = self
            .ssdeep
            .finalize()
            .map(|h| h.to_string())
            .unwrap_or_default();
        Digest {
            size: self.size,
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
            crc32: format!("{:08X}", self.crc32.finalize()),
            ssdeep,
            tlsh,
        }
    }
}

/// All identity hashes of an in-memory buffer.
pub fn digest_bytes(data: &[u8]) -> Digest {
    let mut hasher = MultiHasher::new();
    hasher.update(data);
    hasher.finish()
}

/// All identity hashes of a file, streamed through a 1 MiB buffer.
///
/// # Errors
///
/// Any error opening or reading the file. Interrupted reads are retried.
pub fn digest_file(path: &Path) -> io::Result<Digest> {
    let mut hasher = MultiHasher::new();
    stream_file(path, |chunk| hasher.update(chunk))?;
    Ok(hasher.finish())
}

/// Feeds a file to `f` in chunks of [`FILE_BUFFER`] bytes; interrupted reads are retried.
fn stream_file(path: &Path, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; FILE_BUFFER];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => f(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The SHA-256 of a file alone (lowercase hex): for identifying a file already digested
/// elsewhere (the sample among the dropped files, the pcap's checksum), where the other
/// hashes would be work thrown away.
///
/// # Errors
///
/// Any error opening or reading the file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    stream_file(path, |chunk| hasher.update(chunk))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input() {
        let d = digest_bytes(b"");
        assert_eq!(d.size, 0);
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            d.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(d.sha512.starts_with("cf83e1357eefb8bdf1542850d66d8007"));
        assert_eq!(d.crc32, "00000000");
        assert_eq!(d.ssdeep, "3::");
        assert_eq!(d.tlsh, None);
    }

    #[test]
    fn crc32_is_eight_uppercase_hex_digits() {
        let d = digest_bytes(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(d.crc32, "414FA339");
        assert_eq!(d.md5, "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(digest_bytes(b"a").crc32, "E8B7BE43", "uppercase");
        // zlib.crc32(b"62") == 0x12d20a: zero-padded to eight digits like "%08X".
        assert_eq!(digest_bytes(b"62").crc32, "0012D20A");
    }

    #[test]
    fn tlsh_is_py_tlsh_compatible() {
        // Vector from the TLSH reference implementation (and py-tlsh's `tlsh.hash`).
        let mut h = MultiHasher::new();
        h.update(b"Sed ut perspiciatis unde omnis iste natus");
        h.update(b"error sit voluptatem accusantium");
        assert_eq!(
            h.finish().tlsh.as_deref(),
            Some("T184A022B383C2A2A20ACB0830880CF0202CCAC080033A023800338A30B0880AA8E0BE38")
        );
        // py-tlsh says TNULL below 50 bytes and for data without enough variation.
        assert_eq!(digest_bytes(&[b'x'; 49]).tlsh, None);
        assert_eq!(digest_bytes(&[0; 100_000]).tlsh, None);
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = digest_bytes(&data);
        let mut h = MultiHasher::default();
        for chunk in data.chunks(STRIPE + 3) {
            h.update(chunk);
            h.update(&[]);
        }
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn digest_serializes_with_the_report_field_names() {
        let d = digest_bytes(b"abc");
        let json = serde_json::to_value(&d).expect("serialize");
        for key in [
            "size", "md5", "sha1", "sha256", "sha512", "crc32", "ssdeep", "tlsh",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["tlsh"], serde_json::Value::Null);
        let back: Digest = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, d);
    }

    #[test]
    fn debug_does_not_dump_hash_state() {
        let mut h = MultiHasher::new();
        h.update(b"12345");
        assert_eq!(format!("{h:?}"), "MultiHasher { size: 5, .. }");
    }

    #[test]
    fn digest_file_reports_io_errors() {
        let err = digest_file(Path::new("/nonexistent/nestbox/sample")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
