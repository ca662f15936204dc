//! The speakeasy virtual environment: pinned, installed once, shared by every run.
//!
//! Every package is pinned (speakeasy and its whole dependency closure) so an install
//! today and one next year emulate alike; the pins are the versions whose wheels install
//! on Debian 12's Python 3.11 (unicorn 1.0.2 ships manylinux wheels, so nothing compiles).
//! A venv counts as ready when its marker file holds exactly these pins, so changing a pin
//! reinstalls. The install goes into a fresh sibling directory that is renamed into place
//! when complete: a crash mid-install leaves no half venv behind, and two processes
//! installing at once (tests, several nodes on one data dir) both end with a whole one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The emulator release this machinery is written against (its report format, its API
/// models, its bugs the runner works around).
pub const SPEAKEASY_VERSION: &str = "1.5.11";

/// `pip install -r` content: speakeasy and its dependency closure, pinned (the file is
/// also what `scripts/emulator-venv.sh` installs for the tests).
pub const REQUIREMENTS: &str = include_str!("../speakeasy-requirements.txt");

const MARKER: &str = "nestbox-requirements.txt";

/// The interpreter inside the venv.
pub fn python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python3")
}

/// Whether `venv` holds the pinned install.
pub fn is_ready(venv: &Path) -> bool {
    python(venv).exists()
        && std::fs::read_to_string(venv.join(MARKER)).is_ok_and(|m| m == REQUIREMENTS)
}

/// Creates the venv with `python3 -m venv` and installs the pins with pip (from the
/// package index pip is configured for). Blocking; takes ~10 s.
pub fn install(python3: &Path, venv: &Path) -> Result<(), String> {
    if is_ready(venv) {
        return Ok(());
    }
    let parent = venv
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let name = venv
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "venv".to_owned());
    let staging = parent.join(format!(".{name}.installing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        run(
            Command::new(python3).arg("-m").arg("venv").arg(&staging),
            "python3 -m venv",
        )?;
        let req = staging.join("requirements.txt");
        std::fs::write(&req, REQUIREMENTS).map_err(|e| format!("writing pins: {e}"))?;
        run(
            Command::new(python(&staging))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--prefer-binary",
                    "-r",
                ])
                .arg(&req),
            "pip install speakeasy-emulator",
        )?;
        // Bytecode for the runner's imports, so every sandboxed run (read-only venv)
        // starts without compiling.
        let _ = Command::new(python(&staging))
            .args(["-c", "import speakeasy"])
            .output();
        std::fs::write(staging.join(MARKER), REQUIREMENTS)
            .map_err(|e| format!("writing the marker: {e}"))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if is_ready(venv) {
        // Someone else finished first.
        let _ = std::fs::remove_dir_all(&staging);
        return Ok(());
    }
    // An outdated venv (other pins) is replaced.
    let _ = std::fs::remove_dir_all(venv);
    std::fs::rename(&staging, venv).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        format!("moving the venv into place: {e}")
    })?;
    tracing::info!(venv = %venv.display(), "installed speakeasy-emulator {SPEAKEASY_VERSION}");
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: String = err
        .chars()
        .rev()
        .take(1500)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(format!("{what} failed ({}): {}", out.status, tail.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_must_match_the_pins() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(python(d.path()), "").unwrap();
        assert!(!is_ready(d.path()));
        std::fs::write(d.path().join(MARKER), "speakeasy-emulator==1.0\n").unwrap();
        assert!(!is_ready(d.path()), "other pins are not ready");
        std::fs::write(d.path().join(MARKER), REQUIREMENTS).unwrap();
        assert!(is_ready(d.path()));
        assert!(REQUIREMENTS.contains(&format!("speakeasy-emulator=={SPEAKEASY_VERSION}\n")));
    }

    #[test]
    fn a_failed_install_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join("venv");
        let e = install(Path::new("/nonexistent/python3"), &venv).unwrap_err();
        assert!(e.contains("python3 -m venv"), "{e}");
        assert!(!venv.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
