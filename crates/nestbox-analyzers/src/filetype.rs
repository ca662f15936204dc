//! File type identification through the system libmagic, the same engine as `file(1)`.
//!
//! Cuckoo fills `target.file.type` with `file -b` and CAPE/clients key behaviour off those
//! exact strings ("PE32 executable (GUI) Intel 80386, for MS Windows", ...), so this module
//! does not try to be clever: it asks libmagic with the same flags the `file` command uses
//! and returns what it says.

use std::io::Write;
use std::path::Path;

use magic::cookie::{Cookie, DatabasePaths, Flags, Load};
use serde::{Deserialize, Serialize};

/// libmagic results; equal to `file -b` and `file -b --mime-type` for the same file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileType {
    /// Human-readable description, as printed by `file -b`.
    pub description: String,
    /// MIME type, as printed by `file -b --mime-type`.
    pub mime: String,
}

impl FileType {
    /// What is reported when libmagic itself fails (no database, internal error): the same
    /// answer `file` gives for bytes it cannot classify.
    fn fallback() -> Self {
        Self {
            description: "data".to_owned(),
            mime: "application/octet-stream".to_owned(),
        }
    }

    /// What `file` says about a zero-length regular file. (For a zero-length buffer or
    /// stdin libmagic says `application/x-empty`; for a file it says `inode/x-empty`.)
    fn empty() -> Self {
        Self {
            description: "empty".to_owned(),
            mime: "inode/x-empty".to_owned(),
        }
    }
}

/// A pair of loaded cookies: one for the description, one for the MIME type.
struct Cookies {
    describe: Cookie<Load>,
    mime: Cookie<Load>,
}

impl Cookies {
    /// Opens both cookies with the default database, or `None` if libmagic is unusable.
    fn open() -> Option<Self> {
        // `Flags::default()` is MAGIC_NONE, which is what `file` uses unless told otherwise
        // (it adds MAGIC_SYMLINK only under POSIXLY_CORRECT).
        let load = |flags: Flags| {
            Cookie::open(flags)
                .ok()?
                .load(&DatabasePaths::default())
                .ok()
        };
        Some(Self {
            describe: load(Flags::default())?,
            mime: load(Flags::MIME_TYPE)?,
        })
    }
}

thread_local! {
    // libmagic cookies are not thread-safe (`Cookie` is !Send), and loading the compiled
    // database costs milliseconds, so every thread keeps its own pair for its lifetime.
    static COOKIES: Option<Cookies> = Cookies::open();
}

/// Runs `f` with this thread's cookies, falling back when libmagic could not be loaded.
fn with_cookies(f: impl FnOnce(&Cookies) -> FileType) -> FileType {
    COOKIES
        .try_with(|cookies| cookies.as_ref().map(f))
        .ok()
        .flatten()
        .unwrap_or_else(FileType::fallback)
}

/// Identifies an in-memory buffer.
///
/// Matches what `file -b` / `file -b --mime-type` print for a file with these contents.
///
/// The buffer is written to a private temporary file (created exclusively, mode 0600,
/// removed before returning) and identified as a file. libmagic's buffer entry point is not
/// equivalent: several of its tests need to seek in a real file and silently do not run
/// without one, so the answers differ for common formats. Measured with file 5.44: ELF
/// loses its linking/interpreter/BuildID/stripped details, gzip loses "original size
/// modulo 2^32 ...", JARs come out as plain "Zip archive data" (tests anchored at the end
/// of the file never match), and an empty input's MIME type is `application/x-empty`
/// instead of `inode/x-empty`. Only if no temporary file can be created does this fall back
/// to the buffer API.
///
/// The one thing a buffer cannot reproduce is what `file` derives from the inode rather
/// than the contents, such as the "setuid " prefix. Callers whose sample is already on disk
/// should use [`file_type_path`] and skip the copy.
pub fn file_type_bytes(data: &[u8]) -> FileType {
    if let Some(found) = via_temp_file(data) {
        return found;
    }
    if data.is_empty() {
        return FileType::empty();
    }
    with_cookies(|c| FileType {
        description: c
            .describe
            .buffer(data)
            .unwrap_or_else(|_| "data".to_owned()),
        mime: c
            .mime
            .buffer(data)
            .unwrap_or_else(|_| "application/octet-stream".to_owned()),
    })
}

/// Identifies `data` by writing it to a temporary file, or `None` if that file could not
/// be created and filled.
fn via_temp_file(data: &[u8]) -> Option<FileType> {
    let mut file = tempfile::NamedTempFile::new().ok()?;
    file.write_all(data).ok()?;
    file.flush().ok()?;
    Some(file_type_path(file.path()))
}

/// Identifies a file on disk, exactly as `file -b` / `file -b --mime-type` would.
///
/// Like `file`, this describes what the path is (a directory, a symbolic link, a missing
/// file) rather than failing.
pub fn file_type_path(path: &Path) -> FileType {
    // The binding converts the path to a C string and panics on an interior NUL byte. No
    // such path can exist on disk, so there is nothing to describe: use the fallback.
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return FileType::fallback();
    }
    with_cookies(|c| FileType {
        description: c.describe.file(path).unwrap_or_else(|_| "data".to_owned()),
        mime: c
            .mime
            .file(path)
            .unwrap_or_else(|_| "application/octet-stream".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_described_like_an_empty_file() {
        assert_eq!(file_type_bytes(b""), FileType::empty());
    }

    #[test]
    fn nul_in_path_falls_back_instead_of_panicking() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\0b"));
        assert_eq!(file_type_path(path), FileType::fallback());
    }

    #[test]
    fn works_from_many_threads() {
        // Each thread lazily loads its own cookies; none may interfere with another.
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| file_type_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")))
            .collect();
        for h in handles {
            let t = h.join().expect("thread");
            assert_eq!(t.mime, "application/pdf");
            assert!(t.description.starts_with("PDF document"), "{t:?}");
        }
    }
}
