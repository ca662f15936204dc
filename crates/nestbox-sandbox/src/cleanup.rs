//! Start-up clean-up of what a killed server left behind.
//!
//! A server killed with SIGKILL in the middle of a detonation cannot remove its task
//! network namespaces, scratch trees or cgroups (the sandbox processes themselves die with
//! it: `--pdeathsig` on the tracer, `--die-with-parent` in bwrap). Every such resource
//! carries the owning server's pid in its name; at start-up, those of pids that are no
//! longer a running nestbox process are removed.

use std::path::Path;

/// Whether `pid` is a live process whose executable looks like nestbox.
fn alive(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().contains("nestbox"))
        .unwrap_or(false)
}

/// The pid in `<prefix><pid>-…`.
fn owner(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.split('-').next()?.parse().ok()
}

/// The pid in `nestbox-ns<slot>-<pid>-<nanos>` / `nestbox-probe-<pid>-<nanos>`.
fn scratch_owner(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix("nestbox-probe-") {
        return rest.split('-').next()?.parse().ok();
    }
    let rest = name.strip_prefix("nestbox-ns")?;
    rest.split('-').nth(1)?.parse().ok()
}

/// The pid at the end of `…task<id>-<pid>` / `…probe-<pid>`.
fn cgroup_owner(name: &str) -> Option<u32> {
    name.rsplit('-').next()?.parse().ok()
}

/// Removes stale namespaces, scratch trees and cgroups. Returns what was removed.
pub fn stale(scratch_dirs: &[&Path]) -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = owner(&name, "nbg-").or_else(|| owner(&name, "nbs-"));
            if pid.is_some_and(|p| !alive(p))
                && std::process::Command::new("ip")
                    .args(["netns", "del", &name])
                    .status()
                    .is_ok_and(|s| s.success())
            {
                removed.push(format!("netns {name}"));
            }
        }
    }
    for dir in scratch_dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if scratch_owner(&name).is_some_and(|p| !alive(p))
                && std::fs::remove_dir_all(e.path()).is_ok()
            {
                removed.push(format!("scratch {}", e.path().display()));
            }
        }
    }
    for (base, prefix) in [
        ("/sys/fs/cgroup/pids", "nestbox-"),
        ("/sys/fs/cgroup/memory", "nestbox-"),
        ("/sys/fs/cgroup/nestbox", ""),
    ] {
        let Ok(rd) = std::fs::read_dir(base) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.path().is_dir() || !name.starts_with(prefix) || name == "nestbox-probe" {
                continue;
            }
            if cgroup_owner(&name).is_some_and(|p| !alive(p)) {
                let procs =
                    std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if std::fs::remove_dir(e.path()).is_ok() {
                    removed.push(format!("cgroup {}", e.path().display()));
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_from_names() {
        assert_eq!(owner("nbg-123-7", "nbg-"), Some(123));
        assert_eq!(scratch_owner("nestbox-ns2-4567-1795410797000"), Some(4567));
        assert_eq!(scratch_owner("nestbox-probe-99-1"), Some(99));
        assert_eq!(scratch_owner("other"), None);
        assert_eq!(cgroup_owner("nestbox-task12-3456"), Some(3456));
        assert_eq!(cgroup_owner("probe-77"), Some(77));
        assert!(alive(std::process::id()));
    }
}
