//! RAR extraction through `unar` (The Unarchiver, LGPL, Debian main), run in a
//! throw-away bubblewrap sandbox: no Rust RAR decoder exists and the `unrar` crates bind
//! the C++ library under its non-free licence (`dependencies.md` chose an external tool
//! in a sandbox for RAR).
//!
//! The tool runs as `nobody`, sees the archive (a private temporary copy) read-only and
//! writes into a tmpfs whose size is the unpacked-bytes budget (a bomb fills it and stops
//! with `ENOSPC`); it has no network, no other namespace of ours and a wall-clock limit.
//! What it extracted comes back as a tar stream on its stdout, which the caller reads
//! through the same limits as any archive's members: no member lands on the host's disk.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::programs::find_program;
use std::time::{Duration, Instant};

/// The longest one extraction may run.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What one run produced: the tar stream of the extracted tree, and whether `unar`
/// reported success (a wrong password, damage or a full tmpfs make it fail, possibly
/// after some members came out).
pub(super) struct Run {
    pub tar: Vec<u8>,
    pub ok: bool,
}

/// Whether the tool and the sandbox are installed (`None`), or what is missing.
pub(super) fn missing() -> Option<&'static str> {
    bwrap().err()
}

/// The bubblewrap to run, once `unar` is known to be there too.
fn bwrap() -> Result<&'static Path, &'static str> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, &'static str>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| match (find_program("unar"), find_program("bwrap")) {
            (Some(_), Some(b)) => Ok(b),
            (None, _) => Err("unar is not installed"),
            (_, None) => Err("bubblewrap is not installed"),
        })
        .as_deref()
        .map_err(|e| *e)
}

/// Extracts `data` with `password` ("" for none) into at most `budget` bytes.
pub(super) fn extract(data: &[u8], password: &str, budget: u64) -> Result<Run, String> {
    let mut archive = tempfile::NamedTempFile::new().map_err(|e| format!("temp file: {e}"))?;
    archive
        .write_all(data)
        .and_then(|()| archive.flush())
        .map_err(|e| format!("temp file: {e}"))?;
    let size = budget.max(4096).to_string();
    let src = archive.path().to_string_lossy().into_owned();
    let mut cmd = Command::new(bwrap()?);
    // As `nobody` in a user namespace of its own: a parser of hostile input gets no
    // identity of ours (the tmpfs it writes is its own; the archive stays readable
    // because the namespace maps `nobody` to the caller).
    cmd.args([
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
    ])
    .args(["--uid", "65534", "--gid", "65534"])
    .args(["--ro-bind", "/usr", "/usr"])
    .args(["--symlink", "usr/bin", "/bin"])
    .args(["--symlink", "usr/lib", "/lib"])
    .args(["--symlink", "usr/lib64", "/lib64"])
    // GNUstep asks who the user is and gives up without an answer.
    .args(["--ro-bind", "/etc/passwd", "/etc/passwd"])
    .args(["--ro-bind", "/etc/group", "/etc/group"])
    .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
    .args(["--ro-bind", &src, "/in.rar"])
    .args(["--size", &size, "--tmpfs", "/out"])
    .args(["--setenv", "HOME", "/tmp", "--chdir", "/out", "--"])
    // The status is unar's; tar always runs so that a partial extraction is seen (in
    // name order: the report must not depend on the tmpfs's directory order).
    .args([
        "/bin/sh",
        "-c",
        "unar -q -D -f -o /out -p \"$1\" /in.rar >/dev/null 2>&1; s=$?; \
             tar --sort=name -C /out -cf - . 2>/dev/null; exit $s",
        "sh",
        password,
    ])
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("bwrap: {e}"))?;
    let Some(out) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("bwrap: no stdout".into());
    };
    // The tree is at most `budget` bytes; tar adds headers and padding.
    let cap = budget.saturating_add(budget / 8).saturating_add(1 << 20);
    let reader = std::thread::spawn(move || {
        let mut tar = Vec::new();
        let mut out = out;
        let _ = (&mut out).take(cap).read_to_end(&mut tar);
        // Drain the rest so that the tool is never left blocked on a full pipe.
        let _ = std::io::copy(&mut out, &mut std::io::sink());
        tar
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let tar = reader
        .join()
        .map_err(|_| "the rar reader thread panicked".to_owned())?;
    match status {
        None => Err(format!(
            "unar did not finish within {} s",
            TIMEOUT.as_secs()
        )),
        Some(st) => Ok(Run {
            tar,
            ok: st.success(),
        }),
    }
}
