//! One sandboxed run under the native or the eBPF tracer, with the timeout: what `run::execute` does
//! with a `tokio::process::Command` for strace, done for [`super::spawn`].

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};

use super::{Finished, Limits, TracerKind, child};
use crate::cgroup::Group;

/// How the run ended.
pub(crate) struct Supervised {
    /// The timeout was reached and everything was killed.
    pub timed_out: bool,
    /// How the command ended.
    pub status: Option<ExitStatus>,
    /// The trace.
    pub trace: Finished,
}

/// Runs `cmd` (program, arguments and the environment set on it; the inherited
/// environment is not used) with its output to `output`, traced, for at most `timeout`.
pub(crate) async fn run(
    cmd: &std::process::Command,
    output: &Path,
    group: Option<&Group>,
    timeout: Duration,
    kind: TracerKind,
    limits: Limits,
    entry: Option<std::sync::Arc<crate::launch::Entry>>,
) -> Result<Supervised, String> {
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    let program = text(cmd.get_program());
    let mut args = vec![program.clone()];
    args.extend(cmd.get_args().map(text));
    let env = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", text(k), text(v))))
        .collect();
    let out = std::fs::File::create(output).map_err(|e| format!("output file: {e}"))?;
    let mut tracing = super::spawn_kind(
        kind,
        child::Command {
            program,
            args,
            env,
            output: out,
            entry,
        },
        limits,
    )
    .map_err(|e| format!("starting the sandbox: {e}"))?;
    let pg = tracing.root;
    let kill_group = || {
        let _ = killpg(pg, Signal::SIGKILL);
    };
    let (timed_out, trace) = match tokio::time::timeout(timeout, tracing.finished()).await {
        Ok(t) => {
            // The trace ends when no traced process is left; the cgroup and the process
            // group are emptied all the same, as after strace.
            if let Some(g) = group {
                g.kill();
            }
            kill_group();
            (false, t)
        }
        Err(_) => {
            // The sandbox first (its pid-namespace init takes every process in it along)
            // so the deaths are traced; then everything the tracer knows, the cgroup and
            // the process group. SIGKILL always ends a tracee, so the trace ends too.
            crate::run::kill_descendants(pg.as_raw());
            let t = match tokio::time::timeout(Duration::from_secs(3), tracing.finished()).await {
                Ok(t) => t,
                Err(_) => {
                    tracing.kill_all();
                    if let Some(g) = group {
                        g.kill();
                    }
                    kill_group();
                    match tokio::time::timeout(Duration::from_secs(10), tracing.finished()).await {
                        Ok(t) => t,
                        Err(_) => Finished {
                            notes: vec![
                                "the tracer did not finish 10 s after killing the sandbox".into(),
                            ],
                            ..Finished::default()
                        },
                    }
                }
            };
            if let Some(g) = group {
                g.kill();
            }
            kill_group();
            (true, t)
        }
    };
    Ok(Supervised {
        timed_out,
        status: trace.status,
        trace,
    })
}
