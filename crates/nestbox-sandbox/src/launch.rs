//! Building blocks for running something under bubblewrap the way the `ns` machinery
//! does, shared with the other machineries (the emulator runs speakeasy with them) so the
//! isolation is written once.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// bwrap arguments for the read-only system view: `/usr` and the merged-usr links
/// (`/bin`, `/lib*`, `/sbin`) as the host has them (a link where the host has a link, a
/// read-only bind where it has a directory).
pub fn system_binds() -> Vec<String> {
    let mut a: Vec<String> = ["--ro-bind", "/usr", "/usr"].map(String::from).to_vec();
    for l in ["bin", "lib", "lib32", "lib64", "libx32", "sbin"] {
        let host = Path::new("/").join(l);
        match std::fs::read_link(&host) {
            Ok(t) => a.extend([
                "--symlink".to_owned(),
                t.to_string_lossy().into_owned(),
                format!("/{l}"),
            ]),
            Err(_) if host.is_dir() => {
                a.extend(["--ro-bind".to_owned(), format!("/{l}"), format!("/{l}")])
            }
            Err(_) => {}
        }
    }
    a
}

/// The start of every bwrap command line: every namespace new (the network too unless
/// `share_net`: then the caller has already joined the one it wants), no way to make more
/// user namespaces, dies with its parent, a new session (no terminal injection), no
/// capabilities, uid/gid 1000 inside, then [`system_binds`], `/proc` and `/dev`.
pub fn bwrap_base(hostname: &str, share_net: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "bwrap",
        "--unshare-all",
        if share_net {
            "--share-net"
        } else {
            "--unshare-net"
        },
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--hostname",
        hostname,
    ]
    .map(String::from)
    .to_vec();
    a.extend(system_binds());
    a.extend(["--proc", "/proc", "--dev", "/dev"].map(String::from));
    a
}

/// What the ns machinery's forked child does as root between `fork` and `exec` of bwrap
/// (or of strace in front of it), in place of a chain of helper programs (`sh` for the
/// cgroup and fd 3, `setpriv`, `nsenter`, `setpriv`, `prlimit`: five dynamic-linker
/// starts, most of a detonation's fixed cost). Everything is prepared before the fork;
/// [`Entry::apply`] only makes raw system calls.
pub struct Entry {
    /// `cgroup.procs` files the child joins.
    procs: Vec<CString>,
    /// The seccomp filter file, opened as fd 3 for bwrap's `--seccomp 3`.
    seccomp: CString,
    /// The slot's network namespace, joined with `setns`.
    netns: Option<OwnedFd>,
    /// Drop to this uid/gid with no supplementary groups, then set `rlimits`.
    uid: Option<u32>,
    rlimits: Vec<(Resource, u64)>,
}

/// An `RLIMIT_*` resource as `setrlimit` takes it.
#[cfg(target_env = "gnu")]
pub type Resource = libc::__rlimit_resource_t;
/// An `RLIMIT_*` resource as `setrlimit` takes it.
#[cfg(not(target_env = "gnu"))]
pub type Resource = libc::c_int;

impl Entry {
    /// Prepares the steps: join `procs`, open `seccomp` as fd 3, enter `netns` (a
    /// `/proc/<pid>/ns/net`-style path), and with `uid` drop to it and set `rlimits`
    /// (limits are set after the drop, as `prlimit` did after `setpriv`: the kernel checks
    /// `RLIMIT_NPROC` against the new user).
    pub fn new(
        procs: &[PathBuf],
        seccomp: &Path,
        netns: Option<&Path>,
        uid: Option<u32>,
        rlimits: Vec<(Resource, u64)>,
    ) -> Result<Entry, String> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("a NUL byte in {p:?}"))
        };
        let netns = match netns {
            Some(ns) => Some(OwnedFd::from(
                std::fs::File::open(ns).map_err(|e| format!("network namespace {ns:?}: {e}"))?,
            )),
            None => None,
        };
        Ok(Entry {
            procs: procs.iter().map(|p| c(p)).collect::<Result<_, _>>()?,
            seccomp: c(seccomp)?,
            netns,
            uid,
            rlimits,
        })
    }

    /// Runs the steps in the calling process; `Err` is the errno of the step that failed.
    /// Ends by setting the parent-death signal (a uid change clears it).
    ///
    /// # Safety
    /// Only in a freshly forked child before `exec`: it changes the process's cgroup,
    /// namespace, credentials and fd 3, and makes only async-signal-safe system calls on
    /// memory prepared before the fork.
    #[allow(unsafe_code)]
    pub unsafe fn apply(&self) -> Result<(), i32> {
        // SAFETY: raw system calls on buffers owned by `self` or this frame.
        unsafe {
            let errno = || *libc::__errno_location();
            let mut digits = [0u8; 20];
            let pid = decimal(libc::getpid() as u64, &mut digits);
            for f in &self.procs {
                let fd = libc::open(f.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(errno());
                }
                let n = libc::write(fd, pid.as_ptr().cast(), pid.len());
                let e = errno();
                libc::close(fd);
                if n < 0 {
                    return Err(e);
                }
            }
            // Without O_CLOEXEC: bwrap reads the filter from fd 3 after its exec.
            let fd = libc::open(self.seccomp.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return Err(errno());
            }
            if fd != 3 {
                if libc::dup2(fd, 3) < 0 {
                    return Err(errno());
                }
                libc::close(fd);
            }
            if let Some(ns) = &self.netns
                && libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0
            {
                return Err(errno());
            }
            if let Some(uid) = self.uid {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(uid, uid, uid) != 0
                    || libc::setresuid(uid, uid, uid) != 0
                {
                    return Err(errno());
                }
                for (resource, value) in &self.rlimits {
                    let r = libc::rlimit {
                        rlim_cur: *value,
                        rlim_max: *value,
                    };
                    if libc::setrlimit(*resource, &r) != 0 {
                        return Err(errno());
                    }
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(errno());
            }
        }
        Ok(())
    }
}

/// `n` in decimal, written into `buf` without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

pub use nestbox_analyzers::programs::find_program;

/// The chain in front of bwrap: `/bin/sh` opens the seccomp filter named by
/// `$NBX_SECCOMP` as fd 3 (bwrap's `--seccomp 3`) and joins the cgroups in `$NBX_PROCS`
/// (space-separated `cgroup.procs` paths, may be empty); `setpriv` sets the parent-death
/// signal (so nothing outlives the server) and, when `uid` is given, drops to it with no
/// supplementary groups; `prlimit` sets `limits` (`--as=…`, `--cpu=…`, …). The caller
/// appends what runs next (bwrap, or a tracer in front of it) and sets the environment.
pub fn chain(name: &str, uid: Option<u32>, limits: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("for f in $NBX_PROCS; do echo $$ > \"$f\" || exit 125; done; exec 3<\"$NBX_SECCOMP\" || exit 125; exec \"$@\"")
        .arg(name)
        .args(["setpriv", "--pdeathsig", "KILL"]);
    if let Some(uid) = uid {
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups");
    }
    cmd.args(["--", "prlimit"]).args(limits).arg("--");
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_digits() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(4_194_304, &mut b), b"4194304");
        assert_eq!(decimal(u64::MAX, &mut b), b"18446744073709551615");
    }

    #[test]
    fn system_view_is_read_only_usr_and_its_links() {
        let a = system_binds();
        assert_eq!(&a[..3], ["--ro-bind", "/usr", "/usr"]);
        // Debian 12 is merged-usr: /bin is a link to usr/bin.
        let bin = a.iter().position(|x| x == "/bin").unwrap();
        assert!(a[bin - 2] == "--symlink" || a[bin - 2] == "--ro-bind");
        let b = bwrap_base("h", false);
        assert!(b.contains(&"--unshare-net".to_owned()));
        assert!(bwrap_base("h", true).contains(&"--share-net".to_owned()));
        assert!(b.ends_with(&["--dev".to_owned(), "/dev".to_owned()]));
    }
}
