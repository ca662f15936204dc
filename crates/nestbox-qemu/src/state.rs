//! Warm starts: a guest booted once, its agent answering, saved with QMP `migrate` to a
//! file; every later run resumes it with `-incoming file:` over a fresh overlay
//! (`shared/design/sandbox.md` §4: ~0.2 s instead of a multi-second cold boot).
//!
//! The guest's memory remembers what it wrote to its disk while booting (a mounted file
//! system), so the disk that goes with the state is the boot's own overlay, flushed by
//! the migration: it becomes the machine's image (backed by the original base, which is
//! still never written), and runs put their overlays over it. The command line must be
//! the one runs use, which [`vm::command`] and the machinery's result-server rule give.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::agent::AgentClient;
use crate::qmp::Qmp;
use crate::resultserver;
use crate::vm::{self, GuestConfig, RunPaths};

/// A saved guest: the disk and the migration state to put in its config.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The image (qcow2 over the original base) that goes with the state.
    pub image: PathBuf,
    /// The migration state.
    pub state: PathBuf,
    /// From launch to the agent's first answer (the cold boot).
    pub boot: Duration,
}

/// Boots `g` cold under `accel`, waits up to `timeout` for its agent, and saves it as
/// `<out>.qcow2` + `<out>.state`. `resultserver` is the `(ip, port)` the machinery forwards.
pub fn save(
    g: &GuestConfig,
    accel: &str,
    resultserver: (&str, i64),
    out: &Path,
    timeout: Duration,
) -> Result<Saved, String> {
    let image = out.with_extension("qcow2");
    let state = out.with_extension("state");
    let dir = out.with_extension("saving");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("spool")).map_err(|e| e.to_string())?;
    let p = RunPaths {
        overlay: image.clone(),
        ..RunPaths::in_dir(&dir)
    };
    let _ = std::fs::remove_file(&image);
    vm::create_overlay(&g.image, &image)?;
    let mut g = g.clone();
    g.state = None;
    g.guestfwd.push(resultserver::guestfwd_rule(
        resultserver.0,
        resultserver.1,
        &dir.join("spool"),
        resultserver::Limits::default().upload_max_size,
    )?);
    let port = vm::free_port().map_err(|e| e.to_string())?;
    let argv = vm::command(&g, &p, accel, port);
    let t0 = Instant::now();
    let mut child = vm::spawn_quiet(&argv).map_err(|e| format!("starting {}: {e}", argv[0]))?;
    let r = (|| {
        let agent = AgentClient::new(([127, 0, 0, 1], port).into(), Duration::from_secs(2));
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!("QEMU exited while booting: {st}"));
            }
            if agent.get("/").is_ok_and(|r| r.status == 200) {
                break;
            }
            if t0.elapsed() > timeout {
                return Err(format!("the agent did not answer within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let boot = t0.elapsed();
        let mut q = Qmp::connect(&p.qmp, Duration::from_secs(10))?;
        let _ = std::fs::remove_file(&state);
        q.execute(
            "migrate",
            Some(json!({"uri": format!("file:{}", state.to_string_lossy())})),
        )?;
        let t1 = Instant::now();
        loop {
            let m = q.execute("query-migrate", None)?;
            match m["status"].as_str().unwrap_or("") {
                "completed" => break,
                "failed" | "cancelled" => {
                    return Err(format!("migration {}: {}", m["status"], m["error-desc"]));
                }
                _ if t1.elapsed() > Duration::from_secs(120) => {
                    return Err("migration did not complete in 120 s".to_owned());
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let _ = q.quit();
        Ok(boot)
    })();
    if child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(200));
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(boot) => Ok(Saved { image, state, boot }),
        Err(e) => {
            let _ = std::fs::remove_file(&image);
            let _ = std::fs::remove_file(&state);
            Err(e)
        }
    }
}
