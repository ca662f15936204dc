//! Building blocks for running something under bubblewrap the way the `ns` machinery
//! does, shared with the other machineries (the emulator runs speakeasy with them) so the
//! isolation is written once.

use std::path::Path;

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
