//! One detonation: scratch directory, command line, timeout and kill, then processing.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nestbox_core::machinery::{Detonation, DetonationJob};

use crate::behavior;
use crate::cgroup::{CgroupKind, Group};
use crate::dropped;
use crate::package::{self, Launch};
use crate::tracer::{Limits, TracerKind, supervise};
use crate::unpack;
use crate::{SandboxSettings, seccomp};

/// System calls strace reports (a seccomp-bpf pre-filter keeps the rest untraced, which
/// is what keeps the overhead near 1.35× instead of ~18×).
pub(crate) const TRACED: &str = "%process,%network,open,openat,creat,unlink,unlinkat,rename,renameat,renameat2,\
mkdir,mkdirat,rmdir,chdir,fchdir,chmod,fchmodat,symlink,symlinkat,link,linkat,truncate,ptrace,setuid,\
setgid,setresuid,prctl,dup2,dup3,fchmod,utimensat,memfd_create";

/// `prctl(PR_SET_CHILD_SUBREAPER)`; with `NBX_SHOTS` set (the slot's display is up),
/// start a capture loop (`xwd` about once a second into `$NBX_SHOTS`) first, as the
/// reaper's child rather than the sample's; run the command; reap every descendant;
/// once only the capture loop is left, kill it; exit with the command's status.
const SUBREAPER: &str = r#"syscall(157, 36, 1, 0, 0, 0);
my @h;
if (my $d = delete $ENV{NBX_SHOTS}) {
  my $c = fork();
  if (!$c) { open(STDOUT, ">/dev/null"); open(STDERR, ">/dev/null"); for my $n (1..600) { system("/usr/bin/xwd", "-root", "-silent", "-out", sprintf("%s/%04d.xwd", $d, $n)); select(undef, undef, undef, 1.0) } exit 0 }
  push @h, $c;
}
my $p = fork();
if (!$p) { exec { $ARGV[0] } @ARGV; exit 127 }
my $rc = 0;
while ((my $w = wait()) != -1) {
  $rc = $? >> 8 if $w == $p;
  if (@h) { my %k = map { $_ => 1 } @h; my @o = grep { !$k{$_} } kids(); if (!@o) { kill 9, @h; @h = () } }
}
exit $rc;
sub kids { my @k; for my $f (glob "/proc/self/task/*/children") { open(my $fh, "<", $f) or next; push @k, split(" ", scalar(<$fh>) // "") } @k }
"#;

/// Host `/etc` entries visible (read-only) inside: what loaders, libc, TLS and
/// interpreters read. Everything else in `/etc` is absent; identity files are fakes.
const ETC: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "nsswitch.conf",
    "localtime",
    "timezone",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "protocols",
    "services",
    "mime.types",
    "magic",
    "bash.bashrc",
    "profile",
    "profile.d",
    "inputrc",
    "environment",
    "gai.conf",
    "host.conf",
    "login.defs",
    "debian_version",
    "python3",
    "python3.11",
    "perl",
    "fonts",
    "mailcap",
];

/// Directories under the scratch root that become writable places inside.
pub(crate) fn writable(user: &str) -> [(&'static str, String); 3] {
    [
        ("home", format!("/home/{user}")),
        ("tmp", "/tmp".to_owned()),
        ("vartmp", "/var/tmp".to_owned()),
    ]
}

struct Scratch {
    root: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks the sample may have planted.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The slot number behind a machine name (`ns3` → 3), which picks the slot's uid and
/// cgroup. Several nodes may share one box, so a node prefix (`w1/ns3`) moves the number
/// into a band of its own instead of being read as part of it (`w1/ns12` is not slot 112).
pub(crate) fn slot_of(name: &str) -> u32 {
    let (node, local) = name.rsplit_once('/').unwrap_or(("", name));
    let digits = local.len() - local.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let n = local[local.len() - digits..]
        .parse::<u32>()
        .unwrap_or_else(|_| local.bytes().map(u32::from).sum::<u32>() % 100);
    let band = if node.is_empty() {
        0
    } else {
        // FNV-1a: stable across runs and builds, unlike std's hasher.
        let h = node.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        1 + h % 99
    };
    (band * 100 + n % 100) % 10_000
}

fn fake_etc(s: &SandboxSettings) -> Vec<(&'static str, String)> {
    let u = &s.user;
    let h = &s.hostname;
    vec![
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n{u}:x:1000:1000:{u},,,:/home/{u}:/bin/bash\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\nsudo:x:27:{u}\nusers:x:100:{u}\nnogroup:x:65534:\n{u}:x:1000:\n"),
        ),
        (
            "shadow",
            format!(
                "root:$y$j9T$Jx0dA1Vt6yq0m2dYc8Gm5.$4o3lNq4n0wF7wK3r4YyQyqK3xD1vJm8gWc6t3E0bQ2/:19700:0:99999:7:::\n{u}:$y$j9T$9kq3WbVdKp0e1rS7uP2x9/$8vQm1c3Zb5YtJ6nR0wL2pK4sD7fH9gE1aC3xV5bN6m8:19700:0:99999:7:::\n"
            ),
        ),
        ("hostname", format!("{h}\n")),
        (
            "hosts",
            format!(
                "127.0.0.1\tlocalhost\n127.0.1.1\t{h}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            ),
        ),
        ("resolv.conf", "nameserver 10.0.2.3\n".to_owned()),
        (
            "machine-id",
            "4c4f2b2a8e0d4d8f9a1c6e3b7d5f0a12\n".to_owned(),
        ),
    ]
}

/// Everything one run needs, prepared on disk.
struct Prepared {
    scratch: Scratch,
    trace_dir: PathBuf,
    filter: PathBuf,
    output: PathBuf,
    uid: u32,
    /// Whether the sample gets a virtual display (and periodic screenshots).
    display: bool,
}

fn prepare(
    s: &SandboxSettings,
    workdir: &Path,
    slot: u32,
    traced: bool,
) -> Result<Prepared, String> {
    let base = s.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    let uid = s.uid_base + slot;
    let root = base.join(format!(
        "nestbox-ns{slot}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let e = |what: &str, err: std::io::Error| format!("sandbox set-up: {what}: {err}");
    std::fs::create_dir(&root).map_err(|x| e("scratch directory", x))?;
    let scratch = Scratch { root: root.clone() };
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))
        .map_err(|x| e("chmod", x))?;
    for (d, _) in writable(&s.user) {
        let p = root.join(d);
        std::fs::create_dir(&p).map_err(|x| e(d, x))?;
        chown(&p, Some(uid), Some(uid)).map_err(|x| e("chown", x))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|x| e("chmod", x))?;
    }
    let etc = root.join("etc");
    std::fs::create_dir(&etc).map_err(|x| e("etc", x))?;
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755))
        .map_err(|x| e("chmod", x))?;
    for (name, content) in fake_etc(s) {
        let p = etc.join(name);
        std::fs::write(&p, content).map_err(|x| e(name, x))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .map_err(|x| e("chmod", x))?;
    }
    // A lived-in home, with the credentials a desktop has (fakes): an infostealer's reads
    // then succeed and show in the trace like on a real victim.
    let home = root.join("home");
    for (name, content) in [
        (
            ".bashrc",
            "# ~/.bashrc\nexport HISTSIZE=1000\nalias ll='ls -l'\n",
        ),
        (
            ".profile",
            "# ~/.profile\n[ -f ~/.bashrc ] && . ~/.bashrc\n",
        ),
        (
            ".bash_history",
            "ls\ncd projects\ngit pull\nssh john@build01\n",
        ),
        (
            ".ssh/known_hosts",
            "build01 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6W0\n",
        ),
        (
            ".ssh/id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
        (
            ".aws/credentials",
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        ),
        (
            ".mozilla/firefox/k3j2h1g0.default-release/logins.json",
            "{\"nextId\":2,\"logins\":[]}\n",
        ),
    ] {
        let path = home.join(name);
        let mut dir = path.parent();
        let mut made = Vec::new();
        while let Some(d) = dir.filter(|d| *d != home && !d.exists()) {
            made.push(d.to_path_buf());
            dir = d.parent();
        }
        for d in made.iter().rev() {
            std::fs::create_dir(d).map_err(|x| e(name, x))?;
            chown(d, Some(uid), Some(uid)).map_err(|x| e("chown", x))?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(|x| e("chmod", x))?;
        }
        std::fs::write(&path, content).map_err(|x| e(name, x))?;
        chown(&path, Some(uid), Some(uid)).map_err(|x| e("chown", x))?;
    }
    let trace_dir = workdir.join("trace");
    std::fs::create_dir_all(&trace_dir).map_err(|x| e("trace directory", x))?;
    let filter = workdir.join("seccomp.bpf");
    let ptrace = match (traced, s.tracer) {
        (true, TracerKind::Native | TracerKind::Strace) => seccomp::Ptrace::Traced,
        _ => seccomp::Ptrace::Denied,
    };
    std::fs::write(&filter, seccomp::filter_bytes(ptrace)?).map_err(|x| e("seccomp filter", x))?;
    Ok(Prepared {
        scratch,
        trace_dir,
        filter,
        output: workdir.join("output.txt"),
        uid,
        display: false,
    })
}

/// The bwrap arguments for a prepared run.
fn bwrap_args(s: &SandboxSettings, p: &Prepared, launch: &Launch, net: bool) -> Vec<String> {
    let mut a = crate::launch::bwrap_base(&s.hostname, net);
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|x| (*x).to_owned()));
    push(&["--tmpfs", "/run", "--dir", "/etc"]);
    // The JDK keeps its configuration in /etc/java-NN-openjdk (Debian).
    let java: Vec<String> = std::fs::read_dir("/etc")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("java-"))
                .collect()
        })
        .unwrap_or_default();
    for e in ETC.iter().copied().chain(java.iter().map(String::as_str)) {
        let host = Path::new("/etc").join(e);
        if host.exists() {
            let h = host.to_string_lossy();
            push(&["--ro-bind", &h, &h]);
        }
    }
    for (name, _) in fake_etc(s) {
        let src = p.scratch.root.join("etc").join(name);
        push(&["--ro-bind", &src.to_string_lossy(), &format!("/etc/{name}")]);
    }
    push(&["--symlink", "../usr/lib/os-release", "/etc/os-release"]);
    // Places persistence lands in on a real machine exist (read-only: attempts fail with
    // EROFS and stay visible in the trace, instead of ENOENT noise).
    for d in [
        "/etc/cron.d",
        "/etc/cron.daily",
        "/etc/cron.hourly",
        "/etc/systemd/system",
        "/etc/init.d",
        "/var/spool/cron/crontabs",
    ] {
        push(&["--dir", d]);
    }
    push(&[
        "--dir",
        "/var",
        "--symlink",
        "../run",
        "/var/run",
        "--dir",
        "/home",
    ]);
    for (d, inside) in writable(&s.user) {
        let src = p.scratch.root.join(d);
        push(&["--bind", &src.to_string_lossy(), &inside]);
    }
    // The root itself (bwrap's tmpfs holding the mount points) is read-only: the only
    // writable places are the ones collected as dropped files (and /dev/shm, /run).
    push(&["--remount-ro", "/"]);
    let home = format!("/home/{}", s.user);
    push(&[
        "--chdir",
        &home,
        "--clearenv",
        "--setenv",
        "HOME",
        &home,
        "--setenv",
        "USER",
        &s.user,
        "--setenv",
        "LOGNAME",
        &s.user,
        "--setenv",
        "SHELL",
        "/bin/bash",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        "--setenv",
        "LANG",
        "en_US.UTF-8",
        "--setenv",
        "TERM",
        "xterm-256color",
        "--setenv",
        "HOSTNAME",
        &s.hostname,
    ]);
    if p.display {
        push(&[
            "--setenv",
            "DISPLAY",
            crate::display::DISPLAY,
            "--setenv",
            "NBX_SHOTS",
            crate::display::SHOTS_DIR,
        ]);
    }
    push(&[
        "--seccomp",
        "3",
        "--",
        // A child subreaper (perl is Essential in Debian): the sandbox lives until the
        // sample *and everything it left behind* has exited, as Cuckoo tracks daemonised
        // children; bwrap alone would end it with the first process.
        "/usr/bin/perl",
        "-e",
        SUBREAPER,
        &launch.entry,
    ]);
    a.extend(launch.args.iter().cloned());
    a
}

/// How a run ended.
struct Outcome {
    timed_out: bool,
    elapsed: Duration,
    status: Option<std::process::ExitStatus>,
    /// The native tracer's record (strace writes files into the trace directory instead).
    trace: Option<crate::tracer::Finished>,
}

async fn execute(
    s: &SandboxSettings,
    p: &Prepared,
    launch: &Launch,
    group: Option<&Group>,
    timeout: Duration,
    trace: bool,
    netns: Option<&Path>,
) -> Result<Outcome, String> {
    let cpu = timeout.as_secs() + 5;
    // The forked child joins the cgroup(s), opens the seccomp filter as fd 3 for bwrap,
    // enters the slot's network namespace, drops to the slot uid and sets the limits
    // itself (launch::Entry), then execs bwrap directly: no helper programs in front.
    // One list for both ways of setting them: by the child, or by prlimit under strace.
    let limits: [(crate::launch::Resource, &str, u64); 6] = [
        (libc::RLIMIT_NPROC, "nproc", s.max_pids),
        (libc::RLIMIT_AS, "as", s.address_space),
        (libc::RLIMIT_CPU, "cpu", cpu),
        (libc::RLIMIT_FSIZE, "fsize", s.max_file_size),
        (libc::RLIMIT_CORE, "core", 0),
        (libc::RLIMIT_NOFILE, "nofile", 1024),
    ];
    let procs = group.map(|g| g.procs_files()).unwrap_or_default();
    let strace = trace && s.tracer == TracerKind::Strace;
    let bwrap = bwrap_args(s, p, launch, netns.is_some());
    let program = |name: &str| {
        crate::launch::find_program(name).ok_or_else(|| format!("{name} is not installed"))
    };
    let (mut cmd, entry) = if strace {
        // strace runs as root in front of the drop (it must trace across the uid change):
        // the child only joins the cgroup, fd 3 and the namespace, strace then runs
        // setpriv and prlimit in front of bwrap, as before.
        let entry = crate::launch::Entry::new(&procs, &p.filter, netns, None, Vec::new())?;
        let mut cmd = tokio::process::Command::new(program("strace")?);
        cmd.args([
            "-q",
            "-f",
            "-ff",
            "-ttt",
            "-s",
            "256",
            "--seccomp-bpf",
            "--pidns-translation",
            "-e",
        ])
        .arg(format!("trace={TRACED}"))
        .arg("-o")
        .arg(p.trace_dir.join("t"))
        .arg("setpriv")
        .arg(format!("--reuid={}", p.uid))
        .arg(format!("--regid={}", p.uid))
        .args(["--clear-groups", "--", "prlimit"])
        .args(limits.iter().map(|(_, flag, v)| format!("--{flag}={v}")))
        .arg("--")
        .args(&bwrap);
        (cmd, entry)
    } else {
        let rlimits = limits.iter().map(|(r, _, v)| (*r, *v)).collect();
        let entry = crate::launch::Entry::new(&procs, &p.filter, netns, Some(p.uid), rlimits)?;
        let mut cmd = tokio::process::Command::new(program("bwrap")?);
        cmd.arg0("bwrap").args(&bwrap[1..]);
        (cmd, entry)
    };
    let entry = std::sync::Arc::new(entry);
    let out = std::fs::File::create(&p.output).map_err(|e| format!("output file: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("output file: {e}"))?;
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    if trace && matches!(s.tracer, TracerKind::Native | TracerKind::Ebpf) {
        let limits = Limits {
            one_cpu: s.trace_on_one_cpu,
            ..Limits::default()
        };
        let r = supervise::run(
            cmd.as_std(),
            &p.output,
            group,
            timeout,
            s.tracer,
            limits,
            Some(entry),
        )
        .await?;
        return Ok(Outcome {
            timed_out: r.timed_out,
            elapsed: started.elapsed(),
            status: r.status,
            trace: Some(r.trace),
        });
    }
    // SAFETY: `apply` only makes raw system calls on memory prepared before the fork.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || entry.apply().map_err(std::io::Error::from_raw_os_error));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting the sandbox: {e}"))?;
    let pgid = child.id().map(|i| i as i32);
    let kill_group = || {
        if let Some(pg) = pgid {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pg),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    };
    let (timed_out, status) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(st) => {
            // The main chain ended; nothing of the sample may outlive it.
            if let Some(g) = group {
                g.kill();
            }
            kill_group();
            (false, st.ok())
        }
        Err(_) => {
            // Kill the sandbox first (its pid-namespace init takes every process in it
            // along) and let the tracer record the deaths and exit by itself; then the
            // cgroup (which holds the tracer too) and the process group, whatever is left.
            if let Some(pg) = pgid {
                kill_descendants(pg);
            }
            let st = match tokio::time::timeout(Duration::from_secs(3), child.wait()).await {
                Ok(st) => st.ok(),
                Err(_) => {
                    kill_group();
                    child.wait().await.ok()
                }
            };
            if let Some(g) = group {
                g.kill();
            }
            kill_group();
            (true, st)
        }
    };
    Ok(Outcome {
        timed_out,
        elapsed: started.elapsed(),
        status,
        trace: None,
    })
}

/// SIGKILL to every descendant of `root` (not `root` itself), found through
/// `/proc/<pid>/task/<tid>/children`.
pub(crate) fn kill_descendants(root: i32) {
    let mut todo = vec![root];
    let mut found = Vec::new();
    while let Some(pid) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                if !found.contains(&c) && found.len() < 100_000 {
                    found.push(c);
                    todo.push(c);
                }
            }
        }
    }
    for pid in found {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn read_tail(p: &Path, max: usize) -> String {
    let b = std::fs::read(p).unwrap_or_default();
    let start = b.len().saturating_sub(max);
    String::from_utf8_lossy(&b[start..]).trim().to_owned()
}

/// `/bin/true` through the whole chain; `Err` says what broke.
pub(crate) fn probe_run(s: &SandboxSettings, kind: CgroupKind) -> Result<(), String> {
    let work = tempfile_dir()?;
    let result = (|| {
        let p = prepare(s, work.path(), 0, true)?;
        let group = match kind {
            CgroupKind::None => None,
            k => Some(Group::create(
                k,
                &format!("probe-{}", std::process::id()),
                s.memory_limit,
                s.max_pids,
            )?),
        };
        let launch = Launch {
            package: "probe",
            entry: "/usr/bin/true".into(),
            args: vec![],
        };
        // A thread of its own: the caller may be inside an async runtime.
        let o = std::thread::scope(|sc| {
            sc.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(execute(
                    s,
                    &p,
                    &launch,
                    group.as_ref(),
                    Duration::from_secs(20),
                    true,
                    None,
                ))
            })
            .join()
            .map_err(|_| "the probe thread panicked".to_owned())?
        })?;
        let traces = crate::tracer::traces_of(o.trace, &p.trace_dir);
        let t = behavior::build(&traces.traces, "/usr/bin/true", "/", 10);
        if o.status.is_some_and(|s| s.success()) && t.started {
            Ok(())
        } else {
            Err(format!(
                "the test detonation failed ({:?}): {}",
                o.status,
                read_tail(&p.output, 600)
            ))
        }
    })();
    drop(work);
    result
}

fn tempfile_dir() -> Result<TempDir, String> {
    let p = std::env::temp_dir().join(format!(
        "nestbox-probe-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&p).map_err(|e| format!("probe directory: {e}"))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("probe directory: {e}"))?;
    Ok(TempDir(p))
}

struct TempDir(PathBuf);
impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the teardown's time went, for the task's log (the fixed cost of a detonation is
/// a benchmark target).
struct Split {
    last: Instant,
    parts: Vec<String>,
}

impl Default for Split {
    fn default() -> Split {
        Split {
            last: Instant::now(),
            parts: Vec::new(),
        }
    }
}

impl Split {
    fn mark(&mut self, what: &str) {
        let now = Instant::now();
        self.parts.push(format!(
            "{what} {:.1}",
            (now - self.last).as_secs_f64() * 1000.0
        ));
        self.last = now;
    }
}

/// Runs one job; never fails: problems are `errors` in the result.
pub(crate) async fn detonate(
    s: &SandboxSettings,
    kind: CgroupKind,
    nets: &std::sync::Arc<crate::net::SlotNets>,
    job: DetonationJob<'_>,
) -> Detonation {
    let mut det = Detonation::default();
    let t0 = Instant::now();
    if !job.machine.spec.platform.eq_ignore_ascii_case("linux") {
        det.log.push(format!(
            "ns: machine {} has platform {}; only linux samples are detonated",
            job.machine.spec.name, job.machine.spec.platform
        ));
        return det;
    }
    let slot = slot_of(&job.machine.spec.name);
    let opts = &job.task.spec.options.0;
    let trace = opts.get("free").map(String::as_str) != Some("yes");
    let mut p = match prepare(s, job.workdir, slot, trace) {
        Ok(p) => p,
        Err(e) => {
            det.errors.push(e);
            return det;
        }
    };
    let is_url = job.task.spec.category == nestbox_types::Category::Url;
    let staged = if is_url {
        stage_url(&job.task.spec.target).map(|(l, i)| (l, i, Vec::new()))
    } else {
        // Copying and unpacking (an archive package may run unar for up to 30 s) must not
        // stall the runtime's other tasks.
        blocking(|| stage_file(s, &job, &p))
    };
    let (launch, inside) = match staged {
        Ok((l, i, notes)) => {
            det.log.extend(notes);
            (l, i)
        }
        Err(Stop::Log(m)) => {
            det.log.push(m);
            return det;
        }
        Err(Stop::Error(m)) => {
            det.errors.push(m);
            return det;
        }
    };
    let sample = job.sample;
    // For a browser run the process tree is our browser, not the sample: only what the
    // page caused on the network and the files it downloaded are evidence.
    let browser = matches!(launch.package, "chromium" | "html");
    // A virtual display for file tasks (Cuckoo takes screenshots of every analysis);
    // `screenshots=no` skips it (it costs about half a second of start-up).
    let no_shots = matches!(
        opts.get("screenshots").map(String::as_str),
        Some("no" | "0" | "off" | "false")
    );
    let wants_display = !browser && !no_shots && crate::display::available();
    // The task network (route none: the sink answers; drop: nothing answers), on the
    // slot's namespaces, which also hold the slot's display.
    let route = job
        .task
        .spec
        .route
        .clone()
        .or_else(|| opts.get("route").cloned())
        .unwrap_or_else(|| "none".to_owned());
    let listen = match route.as_str() {
        "none" | "" | "inetsim" => true,
        "drop" => false,
        other => {
            det.log.push(format!(
                "ns: route {other:?} is not enabled on this node; using \"none\" (the sink)"
            ));
            true
        }
    };
    let mut display_up = false;
    let net = match nets.take(slot).and_then(|mut n| {
        if wants_display {
            match n.ensure_display() {
                Ok(()) => display_up = true,
                Err(e) => det.log.push(format!("ns: no display for this run: {e}")),
            }
        }
        crate::net::NetSandbox::start(n, listen)
    }) {
        Ok(n) => Some(n),
        Err(e) => {
            det.errors.push(format!(
                "The task network could not be set up ({e}); the sample ran with loopback only"
            ));
            None
        }
    };
    if display_up {
        let dir = p
            .scratch
            .root
            .join("vartmp")
            .join(crate::display::SHOTS_DIR.trim_start_matches("/var/tmp/"));
        match std::fs::create_dir(&dir).and_then(|()| chown(&dir, Some(p.uid), Some(p.uid))) {
            Ok(()) => p.display = true,
            Err(e) => det.log.push(format!("ns: no display for this run: {e}")),
        }
    }
    // The browser is a big multi-process program: the sample limits would starve it.
    // Address-space limits break V8's reservations; the cgroup still bounds real memory.
    let runtime_limits;
    let s = if browser {
        runtime_limits = SandboxSettings {
            memory_limit: s.memory_limit.max(1 << 30),
            max_pids: s.max_pids.max(512),
            address_space: u64::MAX,
            // A dozen processes and threads of its own: one CPU would slow the page more
            // than the cross-CPU stops cost.
            trace_on_one_cpu: false,
            ..s.clone()
        };
        &runtime_limits
    } else if launch.package == "jar" {
        // The JVM reserves its heap, class space and code cache up front and starts a
        // dozen threads before `main`.
        runtime_limits = SandboxSettings {
            memory_limit: s.memory_limit.max(512 << 20),
            max_pids: s.max_pids.max(256),
            address_space: s.address_space.max(4 << 30),
            ..s.clone()
        };
        &runtime_limits
    } else {
        s
    };
    let before = dropped::snapshot(&p.scratch.root, &s.user);
    let group = match kind {
        CgroupKind::None => None,
        k => match Group::create(
            k,
            &format!("task{}-{}", job.task.id, std::process::id()),
            s.memory_limit,
            s.max_pids,
        ) {
            Ok(g) => Some(g),
            Err(e) => {
                det.log
                    .push(format!("ns: no cgroup limits for this run: {e}"));
                None
            }
        },
    };
    let setup_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let netns = net.as_ref().map(|n| n.guest_path());
    // A viewer never exits by itself: a document is shown for `view_time` seconds
    // (default 5: enough to load, render and be captured), within the timeout.
    let viewer = matches!(launch.package, "pdf" | "doc");
    let run_limit = if viewer {
        let view = opts
            .get("view_time")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(5)
            .max(1);
        job.timeout.min(Duration::from_secs(view))
    } else {
        job.timeout
    };
    let mut outcome = match execute(
        s,
        &p,
        &launch,
        group.as_ref(),
        run_limit,
        trace,
        netns.as_deref(),
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            det.errors.push(e);
            return det;
        }
    };
    det.log.push(format!(
        "ns: package {} ran {} {:?} as uid {} (slot {slot}); set-up {setup_ms:.1} ms, run {:.3} s, {}",
        launch.package,
        launch.entry,
        launch.args,
        p.uid,
        outcome.elapsed.as_secs_f64(),
        match (outcome.timed_out, outcome.status) {
            (true, _) => "stopped at the timeout; every process was killed".to_owned(),
            (false, Some(st)) => format!("ended with {st}"),
            (false, None) => "ended".to_owned(),
        }
    ));
    if outcome.timed_out && run_limit < job.timeout {
        det.log.push(format!(
            "ns: the viewer was closed after showing the document for {} s (view_time)",
            run_limit.as_secs()
        ));
    } else if outcome.timed_out {
        det.log.push(format!(
            "ns: the analysis timeout ({} s) was reached",
            job.timeout.as_secs()
        ));
    }
    if let Some(g) = &group {
        if g.oom_killed() {
            det.errors.push(format!(
                "The sample hit the sandbox memory limit ({} MiB) and was killed",
                s.memory_limit >> 20
            ));
        }
        if g.pids_refused() {
            det.errors.push(format!(
                "The sample hit the sandbox process limit ({}); forks were refused",
                s.max_pids
            ));
        }
    }
    drop(group);
    if job.task.spec.enforce_timeout && !outcome.timed_out {
        // Cuckoo keeps the guest for the whole timeout; nothing can run in an emptied
        // sandbox, so this only keeps the timing semantics.
        tokio::time::sleep(job.timeout.saturating_sub(outcome.elapsed)).await;
    }

    // Processing off the async executor.
    let processing_started = Instant::now();
    let user = s.user.clone();
    let max_calls = s.max_calls_per_process;
    let max_dropped = s.max_dropped;
    let max_size = s.max_file_size;
    let workdir = job.workdir.to_path_buf();
    let entry = launch.entry.clone();
    let sample_path = sample.map(Path::to_path_buf);
    let shots_dir = job.workdir.join("shots");
    let pcap_path = job.workdir.join("dump.pcap");
    let native = outcome.trace.take();
    let nets = nets.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let mut split = Split::default();
        let network = net.map(|n| {
            let (network, notes, slot_net) = n.finish(&pcap_path);
            if let Some(sn) = slot_net {
                nets.put(slot, sn);
            }
            (network, notes)
        });
        split.mark("network");
        let traces = crate::tracer::traces_of(native, &p.trace_dir);
        let home = format!("/home/{user}");
        let mut traced = behavior::build(&traces.traces, &entry, &home, max_calls);
        crate::tracer::account(&mut traced, &traces);
        split.mark("behaviour");
        let mut shot = take_browser_shot(&p.scratch.root, &shots_dir)
            .map(|s| s.into_iter().collect::<Vec<_>>());
        let display_notes = if p.display {
            let (pngs, notes) = take_display_shots(&p.scratch.root, &shots_dir);
            if let Ok(v) = &mut shot {
                v.extend(pngs);
            }
            notes
        } else {
            Vec::new()
        };
        split.mark("screenshots");
        let sample_sha = sample_path.and_then(|x| nestbox_analyzers::sha256_file(&x).ok());
        let files = dropped::collect(
            &p.scratch.root,
            &user,
            &before,
            &traced.writers,
            &workdir.join("dropped"),
            max_dropped,
            max_size,
            sample_sha.as_deref(),
        );
        split.mark("dropped");
        let tail = read_tail(&p.output, 2000);
        // Removing the scratch tree is the slowest part of the teardown and nothing
        // waits for it: it overlaps the slot's next task.
        std::thread::spawn(move || drop(p));
        (traced, files, tail, network, shot, display_notes, split)
    });
    let failed = outcome.status.is_some_and(|st| !st.success());
    let mut split = Split::default();
    let mut attempts = behavior::Attempts::default();
    match handle.await {
        Ok((traced, (files, notes), tail, network, shot, display_notes, s)) => {
            split = s;
            match shot {
                Ok(v) if v.is_empty() && browser => {
                    det.log.push("ns: the browser took no screenshot".into())
                }
                Ok(v) => det.screenshots.extend(v),
                Err(e) => det.errors.push(e),
            }
            det.log
                .extend(display_notes.into_iter().map(|n| format!("ns: {n}")));
            if let Some((mut network, net_notes)) = network {
                let pcap = job.workdir.join("dump.pcap");
                if let Ok(sha256) = nestbox_analyzers::sha256_file(&pcap) {
                    network.pcap_sha256 = Some(sha256);
                    det.pcap = Some(pcap);
                }
                det.network = network;
                det.log
                    .extend(net_notes.into_iter().map(|n| format!("ns: {n}")));
            }
            if trace && !traced.started {
                det.errors.push(format!(
                    "The sample did not start in the sandbox: {}",
                    if tail.is_empty() {
                        "no trace".to_owned()
                    } else {
                        tail
                    }
                ));
            } else if failed && !tail.is_empty() {
                // What the program printed last, when it failed (the analyst's first
                // question); capped, and sample-controlled text only goes to the log.
                let cut: String = tail
                    .chars()
                    .rev()
                    .take(600)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                det.log.push(format!("ns: the sample's last output: {cut}"));
            }
            det.log
                .extend(traced.notes.into_iter().map(|n| format!("ns: {n}")));
            det.log
                .extend(notes.into_iter().map(|n| format!("ns: {n}")));
            det.behavior = traced.behavior;
            det.dropped = files;
            attempts = traced.attempts;
        }
        Err(e) => det
            .errors
            .push(format!("processing the trace crashed: {e}")),
    }
    let no_behavior = nestbox_types::report::Behavior::default();
    let no_attempts = behavior::Attempts::default();
    let mut ev = if browser {
        crate::signatures::Evidence::new(&no_behavior, &det.network, &inside, &no_attempts)
    } else {
        crate::signatures::Evidence::new(&det.behavior, &det.network, &inside, &attempts)
    };
    let mut contents: Vec<_> = sample
        .map(|x| (x.to_path_buf(), inside.clone(), true))
        .into_iter()
        .collect();
    contents.extend(det.dropped.iter().map(|d| {
        let inside = d.info.filepath.clone().unwrap_or_default();
        (d.local.clone(), inside, false)
    }));
    ev.read_contents(&contents);
    let hits = crate::signatures::evaluate(&ev);
    det.signatures = hits;
    split.mark("signatures");
    det.log.push(format!(
        "ns: detonation total {:.3} s (set-up {setup_ms:.1} ms, run {:.1} ms, teardown and processing {:.1} ms: {})",
        t0.elapsed().as_secs_f64(),
        outcome.elapsed.as_secs_f64() * 1000.0,
        processing_started.elapsed().as_secs_f64() * 1000.0,
        split.parts.join(", "),
    ));
    det
}

/// Why a detonation stops before running anything.
enum Stop {
    /// Nothing to run (static analysis only): a log line.
    Log(String),
    /// A failure: an error entry.
    Error(String),
}

/// Runs blocking work in place on a multi-threaded runtime's worker (the runtime moves its
/// other tasks elsewhere meanwhile); elsewhere (a current-thread runtime, no runtime) it
/// simply runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Copies the sample into the sandbox's `/tmp` and chooses its package (for an archive:
/// unpacks it next to the sample and chooses the member to run). Returns the launch, the
/// path of what runs inside the sandbox, and notes for the log.
fn stage_file(
    s: &SandboxSettings,
    job: &DetonationJob<'_>,
    p: &Prepared,
) -> Result<(Launch, String, Vec<String>), Stop> {
    let Some(sample) = job.sample else {
        return Err(Stop::Log(format!(
            "ns: nothing to run for a {} task",
            job.task.spec.category
        )));
    };
    let name = nestbox_core::safe_component(job.file_name, "sample");
    let inside = format!("/tmp/{name}");
    let tmp = p.scratch.root.join("tmp");
    let local = tmp.join(&name);
    std::fs::copy(sample, &local)
        .and_then(|_| std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o755)))
        .and_then(|()| chown(&local, Some(p.uid), Some(p.uid)))
        .map_err(|e| Stop::Error(format!("copying the sample into the sandbox: {e}")))?;
    let head = read_head(&local);
    let o = &job.task.spec.options.0;
    let popts = package::PackageOptions {
        arguments: o
            .get("arguments")
            .map(|a| a.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        function: o.get("function").cloned(),
        class: o.get("class").cloned(),
    };
    let pkg = job.task.spec.package.to_ascii_lowercase();
    let is_jar = name.to_ascii_lowercase().ends_with(".jar") || pkg == "jar";
    let none = || match package::document_kind(&pkg, &name, &head) {
        // A document nothing here can open: say so as an error (the static report stays).
        Some(kind) => Stop::Error(format!(
            "No {} viewer is installed on this node (looked for {}); the document was not opened, static analysis only",
            kind.describe(),
            kind.viewers().join(", ")
        )),
        None => Stop::Log(format!(
            "ns: no analysis package runs this file ({name}); static analysis only"
        )),
    };
    if unpack::is_archive(&head)
        && !is_jar
        && package::document_kind(&pkg, &name, &head).is_none()
        && matches!(pkg.as_str(), "" | "zip" | "archive" | "tar" | "7z")
    {
        let (host_dir, inside_dir) = unpack::dirs(&tmp, &name);
        let mut passwords: Vec<String> = o.get("password").cloned().into_iter().collect();
        passwords.push("infected".to_owned());
        let target = unpack::Target {
            dir: &host_dir,
            uid: p.uid,
            max_file: s.max_file_size,
            passwords: &passwords,
        };
        let (members, mut notes) = unpack::unpack(&local, &target);
        let runs =
            |m: &unpack::Unpacked| package::choose("", &m.name, &m.head, "/x", &popts).is_some();
        // `file=` (Cuckoo's zip package) or the archive task's member (`filename=`).
        let wanted = o
            .get("file")
            .or_else(|| o.get("filename"))
            .map(String::as_str);
        let m = unpack::pick(&members, wanted, runs).ok_or_else(|| {
            Stop::Log(format!(
                "ns: the archive {name} has no member a package runs ({} unpacked); static analysis only",
                members.len()
            ))
        })?;
        let path = format!("{inside_dir}/{}", m.name);
        let launch = package::choose("", &m.name, &m.head, &path, &popts).ok_or_else(none)?;
        notes.push(format!(
            "ns: archive {name}: {} members unpacked to {inside_dir}; running {}",
            members.len(),
            m.name
        ));
        return Ok((launch, path, notes));
    }
    let launch = package::choose(
        &job.task.spec.package,
        job.file_name,
        &head,
        &inside,
        &popts,
    )
    .ok_or_else(none)?;
    Ok((launch, inside, Vec::new()))
}

/// The browser (or a plain fetch without Chromium) for a URL task.
fn stage_url(url: &str) -> Result<(Launch, String), Stop> {
    let chromium = Path::new(package::CHROMIUM).exists();
    let launch = package::url(url, chromium)
        .ok_or_else(|| Stop::Error(format!("ns: not an http(s) URL: {url:?}")))?;
    Ok((launch, url.to_owned()))
}

/// Moves the browser's screenshot out of the sandbox (as `shots/0001.png` under
/// `shots`) and removes the browser's directory so its profile is not taken for dropped
/// files. `Ok(None)`: no screenshot was taken.
fn take_browser_shot(root: &Path, shots: &Path) -> Result<Option<PathBuf>, String> {
    let rel = package::BROWSER_DIR.trim_start_matches("/var/tmp/");
    let dir = root.join("vartmp").join(rel);
    let src = dir.join(package::BROWSER_SHOT);
    let result = match std::fs::symlink_metadata(&src) {
        Ok(m) if m.is_file() && m.len() > 0 => {
            let dst = shots.join("0001.png");
            std::fs::create_dir_all(shots)
                .and_then(|()| std::fs::copy(&src, &dst))
                .map(|_| Some(dst))
                .map_err(|e| format!("keeping the screenshot: {e}"))
        }
        _ => Ok(None),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Converts the display captures to PNGs (after any already in `shots`) and removes the
/// capture directory and the X server's lock file, which are the analyser's, not dropped
/// files.
fn take_display_shots(root: &Path, shots: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let dir = root
        .join("vartmp")
        .join(crate::display::SHOTS_DIR.trim_start_matches("/var/tmp/"));
    let first = std::fs::read_dir(shots).map(|d| d.count()).unwrap_or(0);
    let (pngs, notes) = crate::display::collect(&dir, shots, first);
    let _ = std::fs::remove_dir_all(&dir);
    let lock = root.join("tmp").join(format!(
        ".X{}-lock",
        crate::display::DISPLAY.trim_start_matches(':')
    ));
    let _ = std::fs::remove_file(lock);
    (pngs, notes)
}

fn read_head(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.take(4096).read_to_end(&mut buf);
    }
    buf
}

#[cfg(test)]
mod slot_tests {
    use super::slot_of;

    #[test]
    fn slot_numbers_come_from_the_local_name_only() {
        assert_eq!(slot_of("ns1"), 1);
        assert_eq!(slot_of("ns12"), 12);
        assert_ne!(slot_of("w1/ns12"), slot_of("w11/ns2"));
        assert_eq!(slot_of("w1/ns12") % 100, 12);
        assert_eq!(slot_of("w1/ns12"), slot_of("w1/ns12"));
        assert!(slot_of("w1/ns3") >= 100);
    }
}
