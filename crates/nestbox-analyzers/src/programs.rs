//! Finding the external programs a few analyzers and the sandbox run (`unar`, `bwrap`).

use std::path::{Path, PathBuf};

/// The first `name` in the system directories. `PATH` is not searched: a forked child
/// cannot, and what runs hostile input must not depend on the caller's environment.
pub fn find_program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
