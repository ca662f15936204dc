//! cgroup limits (memory, pids) for one sandbox, on cgroup v2 or the v1 controllers.
//!
//! Optional: where the hierarchy is not writable (an unprivileged server, a container)
//! the rlimits set inside the sandbox (`RLIMIT_NPROC` for a per-slot uid, `RLIMIT_AS`,
//! `RLIMIT_CPU`, `RLIMIT_FSIZE`) are the limits, and the probe says so.

use std::path::{Path, PathBuf};

/// Which cgroup hierarchy this host offers to nestbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupKind {
    /// Unified hierarchy with the memory and pids controllers at `/sys/fs/cgroup`.
    V2,
    /// Legacy `pids` and `memory` hierarchies under `/sys/fs/cgroup/{pids,memory}`.
    V1,
    /// Nothing usable.
    None,
}

const ROOT: &str = "/sys/fs/cgroup";

/// Detects a writable hierarchy (creating nestbox's parent group if needed).
pub fn detect() -> CgroupKind {
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.contains("memory") && controllers.contains("pids") {
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids");
            let base = root.join("nestbox");
            if std::fs::create_dir_all(&base).is_ok()
                && std::fs::write(base.join("cgroup.subtree_control"), "+memory +pids").is_ok()
            {
                return CgroupKind::V2;
            }
        }
        return CgroupKind::None;
    }
    let ok = ["pids", "memory"].iter().all(|c| {
        let d = root.join(c).join("nestbox-probe");
        let made = std::fs::create_dir_all(&d).is_ok() && d.join("cgroup.procs").exists();
        let _ = std::fs::remove_dir(&d);
        made
    });
    if ok { CgroupKind::V1 } else { CgroupKind::None }
}

/// One sandbox's groups; removed on drop (after its processes are gone).
pub struct Group {
    dirs: Vec<PathBuf>,
    kind: CgroupKind,
}

impl Group {
    /// Creates the group(s) named `name` with the limits.
    pub fn create(kind: CgroupKind, name: &str, memory: u64, pids: u64) -> Result<Group, String> {
        let root = Path::new(ROOT);
        let mut g = Group {
            dirs: Vec::new(),
            kind,
        };
        let w = |p: PathBuf, v: String| {
            std::fs::write(&p, v).map_err(|e| format!("writing {}: {e}", p.display()))
        };
        match kind {
            CgroupKind::V2 => {
                let d = root.join("nestbox").join(name);
                std::fs::create_dir_all(&d).map_err(|e| format!("cgroup {}: {e}", d.display()))?;
                g.dirs.push(d.clone());
                w(d.join("memory.max"), memory.to_string())?;
                let _ = std::fs::write(d.join("memory.swap.max"), "0");
                w(d.join("pids.max"), pids.to_string())?;
            }
            CgroupKind::V1 => {
                for c in ["pids", "memory"] {
                    let d = root.join(c).join(format!("nestbox-{name}"));
                    std::fs::create_dir_all(&d)
                        .map_err(|e| format!("cgroup {}: {e}", d.display()))?;
                    g.dirs.push(d);
                }
                w(g.dirs[0].join("pids.max"), pids.to_string())?;
                w(g.dirs[1].join("memory.limit_in_bytes"), memory.to_string())?;
                let _ = std::fs::write(
                    g.dirs[1].join("memory.memsw.limit_in_bytes"),
                    memory.to_string(),
                );
            }
            CgroupKind::None => {}
        }
        Ok(g)
    }

    /// The `cgroup.procs` files a process writes its pid into to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Whether the memory limit was hit (an OOM kill happened).
    pub fn oom_killed(&self) -> bool {
        let events = match self.kind {
            CgroupKind::V2 => self.dirs.first().map(|d| d.join("memory.events")),
            CgroupKind::V1 => self.dirs.get(1).map(|d| d.join("memory.oom_control")),
            CgroupKind::None => None,
        };
        let Some(text) = events.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return false;
        };
        text.lines().any(|l| {
            let mut it = l.split_whitespace();
            matches!(it.next(), Some("oom_kill")) && it.next().is_some_and(|n| n != "0")
        })
    }

    /// Whether the pid limit refused a fork.
    pub fn pids_refused(&self) -> bool {
        let f = match self.kind {
            CgroupKind::V2 | CgroupKind::V1 => self.dirs.first().map(|d| d.join("pids.events")),
            CgroupKind::None => None,
        };
        f.and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|t| {
                t.lines()
                    .any(|l| l.starts_with("max ") && !l.ends_with(" 0"))
            })
    }

    /// Kills every process in the group.
    pub fn kill(&self) {
        if self.kind == CgroupKind::V2
            && let Some(d) = self.dirs.first()
            && std::fs::write(d.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for _ in 0..3 {
            for d in &self.dirs {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // A group empties asynchronously after a kill (a memory hog can take a while to
        // release its pages): what cannot be removed at once is retried in the
        // background, so the teardown does not wait for it.
        let mut left: Vec<_> = self
            .dirs
            .drain(..)
            .filter(|d| std::fs::remove_dir(d).is_err() && d.exists())
            .collect();
        if !left.is_empty() {
            std::thread::spawn(move || {
                for i in 0..320 {
                    std::thread::sleep(std::time::Duration::from_millis(if i < 20 {
                        10
                    } else {
                        100
                    }));
                    left.retain(|d| std::fs::remove_dir(d).is_err() && d.exists());
                    if left.is_empty() {
                        return;
                    }
                }
                tracing::warn!(?left, "ns: cgroups could not be removed");
            });
        }
    }
}
