//! The tracer on real programs, outside the sandbox (it needs root or the same uid, which
//! a test has): trees, arguments, results, hostile tracees, and equivalence with strace.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::behavior;

thread_local! {
    /// The tracer the scenarios below run under (each test runs on a thread of its own).
    static KIND: std::cell::Cell<TracerKind> = const { std::cell::Cell::new(TracerKind::Native) };
}

fn ebpf() -> bool {
    KIND.get() == TracerKind::Ebpf
}

fn command(args: &[&str], dir: &std::path::Path) -> child::Command {
    child::Command {
        program: args[0].to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec!["PATH=/usr/bin:/bin".into(), "LC_ALL=C".into()],
        output: std::fs::File::create(dir.join("out.txt")).unwrap(),
        entry: None,
    }
}

fn trace_with(args: &[&str], limits: Limits, kill_after: Option<Duration>) -> Finished {
    trace_output(args, limits, kill_after).0
}

/// The trace and what the command printed.
fn trace_output(args: &[&str], limits: Limits, kill_after: Option<Duration>) -> (Finished, String) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let f = rt.block_on(async {
        let mut t = spawn_kind(KIND.get(), command(args, dir.path()), limits).unwrap();
        if let Some(d) = kill_after {
            tokio::time::sleep(d).await;
            t.kill_all();
        }
        tokio::time::timeout(Duration::from_secs(60), t.finished())
            .await
            .expect("the trace did not end")
    });
    let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap_or_default();
    (f, out)
}

fn trace(args: &[&str]) -> Finished {
    trace_with(args, Limits::default(), None)
}

fn calls<'a>(f: &'a Finished, api: &str) -> Vec<(i64, &'a Call)> {
    f.traces
        .iter()
        .flat_map(|(p, ev)| {
            ev.iter().filter_map(move |e| match e {
                Event::Call(c) if c.api == api => Some((*p, c)),
                _ => None,
            })
        })
        .collect()
}

fn gcc(src: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("p.c");
    std::fs::write(&c, src).unwrap();
    let exe = dir.path().join("p");
    let st = std::process::Command::new("gcc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(&c)
        .status()
        .expect("gcc");
    assert!(st.success());
    let e = exe.to_string_lossy().into_owned();
    (dir, e)
}

#[test]
fn shell_tree_with_exec_arguments_files_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let script = format!(
        "cd {d} && echo x > made.txt && mkdir sub && mv made.txt sub/moved.txt && \
         rm sub/moved.txt && /bin/echo 'a b' \"c,d\" > /dev/null; (exit 3) ; sh -c 'exit 4'; exit 5"
    );
    let f = trace(&["/bin/sh", "-c", &script]);
    assert_eq!(f.status.and_then(|s| s.code()), Some(5), "{:?}", f.notes);
    let execs = calls(&f, "execve");
    let echo = execs
        .iter()
        .find(|(_, c)| crate::strace::text(&c.args[0]) == "/bin/echo")
        .expect("echo exec");
    assert_eq!(
        crate::strace::list(&echo.1.args[1]),
        vec!["/bin/echo", "a b", "c,d"]
    );
    assert_eq!(echo.1.ret, "0");
    assert!(echo.1.args[2].ends_with("vars */"), "{}", echo.1.args[2]);
    // Every fork's result is a pid the trace has, and it ended as the shell said.
    let forks: Vec<i64> = ["clone", "clone3", "fork", "vfork"]
        .iter()
        .flat_map(|a| calls(&f, a))
        .filter_map(|(_, c)| c.ret_int())
        .collect();
    assert!(forks.len() >= 2, "{forks:?}");
    for p in &forks {
        assert!(f.traces.contains_key(p), "child {p} not traced");
    }
    let exits: Vec<String> = f
        .traces
        .values()
        .filter_map(|ev| match ev.last() {
            Some(Event::Exit { how, .. }) => Some(how.clone()),
            _ => None,
        })
        .collect();
    assert!(exits.iter().any(|h| h == "exited with 4"), "{exits:?}");
    // The behaviour built from it, as from strace output.
    let entry = "/bin/sh";
    let t = behavior::build(&f.traces, entry, "/", 1000);
    let s = &t.behavior.summary;
    let has = |k: &str, v: &str| s[k].iter().any(|x| x == v);
    assert!(has("write_files", &format!("{d}/made.txt")), "{s:?}");
    assert!(has("directory_created", &format!("{d}/sub")), "{s:?}");
    assert!(has("delete_files", &format!("{d}/sub/moved.txt")), "{s:?}");
    assert!(has("executed_commands", "/bin/echo a b c,d"), "{s:?}");
}

const NET_THREADS_C: &str = r#"
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

static int port;
static void *worker(void *arg) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connect(s, (struct sockaddr *)&a, sizeof a);
    close(s);
    return arg;
}
int main(int argc, char **argv) {
    port = atoi(argv[1]);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], 0, worker, 0);
    for (int i = 0; i < 3; i++) pthread_join(t[i], 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in d = {0};
    d.sin_family = AF_INET;
    d.sin_port = htons(53);
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    unsigned char q[] = "\022\064\001\000\000\001\000\000\000\000\000\000\004evil\007example\003com\000\000\001\000\001";
    sendto(u, q, sizeof q - 1, 0, (struct sockaddr *)&d, sizeof d);
    long r = ptrace(PTRACE_TRACEME, 0, 0, 0);
    printf("ptrace=%ld\n", r);
    prctl(PR_SET_NAME, "kworker/0:1");
    int fd = open("/nonexistent/x", O_RDONLY);
    chmod(argv[0], 04755);
    chmod(argv[0], 0755);
    raise(SIGRTMIN + 2);
    return fd == -1 ? 0 : 1;
}
"#;

#[test]
fn threads_network_refused_ptrace_and_realtime_signals() {
    let (_d, exe) = gcc(&NET_THREADS_C.replace(
        "#include <fcntl.h>",
        "#include <fcntl.h>\n#include <stdlib.h>",
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let f = trace(&[&exe, &port]);
    // SIGRTMIN+2 is fatal by default: it must be delivered, not swallowed or wedged.
    assert_eq!(
        f.status.and_then(|s| s.signal()),
        Some(libc::SIGRTMIN() + 2)
    );
    let connects = calls(&f, "connect");
    assert_eq!(connects.len(), 3, "{connects:?}");
    let tids: std::collections::BTreeSet<i64> = connects.iter().map(|(p, _)| *p).collect();
    assert_eq!(tids.len(), 3, "one connect per thread");
    for (_, c) in &connects {
        assert_eq!(
            crate::strace::sockaddr(&c.args[1]),
            Some(("127.0.0.1".into(), port.parse().unwrap()))
        );
    }
    let threads: Vec<i64> = calls(&f, "clone3")
        .into_iter()
        .chain(calls(&f, "clone"))
        .filter_map(|(_, c)| c.ret_int())
        .collect();
    for t in &tids {
        assert!(
            threads.contains(t),
            "thread {t} not from a clone: {threads:?}"
        );
    }
    let p = calls(&f, "ptrace");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].1.args, vec!["PTRACE_TRACEME"]);
    // ptrace refuses it; under eBPF it runs (this test's process becomes the tracer and
    // lets the signals through).
    let refused = if ebpf() { None } else { Some("EPERM") };
    assert_eq!(p[0].1.errno.as_deref(), refused);
    let o: Vec<_> = calls(&f, "openat")
        .into_iter()
        .filter(|(_, c)| c.args[1].contains("nonexistent"))
        .collect();
    assert_eq!(o[0].1.errno.as_deref(), Some("ENOENT"));
    let prctl = calls(&f, "prctl");
    assert!(
        prctl
            .iter()
            .any(|(_, c)| c.args == ["PR_SET_NAME", "\"kworker/0:1\""])
    );
    let modes: Vec<&str> = calls(&f, "chmod")
        .iter()
        .map(|(_, c)| c.args[1].as_str())
        .collect();
    assert_eq!(modes, ["04755", "0755"]);
    let t = behavior::build(&f.traces, &exe, "/", 1000);
    assert_eq!(
        t.behavior.summary["resolves_host"],
        vec![serde_json::json!("evil.example.com")]
    );
    assert!(t.behavior.summary["connects_ip"].contains(&serde_json::json!("127.0.0.1")));
    assert_eq!(t.behavior.processes.len(), 4, "main + 3 threads");
}

#[test]
fn a_thread_that_execs_takes_over_the_leader() {
    let (_d, exe) = gcc(r#"
#include <pthread.h>
#include <unistd.h>
static void *worker(void *a) { execl("/bin/echo", "echo", "from-thread", (char *)0); return a; }
int main(void) { pthread_t t; pthread_create(&t, 0, worker, 0); pause(); return 1; }
"#);
    let f = trace(&[&exe]);
    assert_eq!(f.status.and_then(|s| s.code()), Some(0), "{:?}", f.notes);
    let e = calls(&f, "execve");
    let echo = e
        .iter()
        .find(|(_, c)| c.args[0].contains("/bin/echo"))
        .unwrap_or_else(|| panic!("exec from the thread: {:#?}", f.traces));
    assert_eq!(echo.1.ret, "0");
}

#[test]
fn stops_kills_and_timeouts_never_hang() {
    // Stops itself, is continued by its child, then kills itself.
    let f = trace(&[
        "/bin/sh",
        "-c",
        "(sleep 0.2; kill -CONT $$) & kill -STOP $$; kill -KILL $$",
    ]);
    assert_eq!(f.status.and_then(|s| s.signal()), Some(libc::SIGKILL));
    // A tree that would run forever ends when the caller kills it.
    let t0 = Instant::now();
    let f = trace_with(
        &[
            "/bin/sh",
            "-c",
            "sleep 1000 & sleep 1000 & while :; do :; done",
        ],
        Limits::default(),
        Some(Duration::from_millis(300)),
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    let killed = f
        .traces
        .values()
        .filter(
            |ev| matches!(ev.last(), Some(Event::Exit { how, .. }) if how == "killed by SIGKILL"),
        )
        .count();
    assert!(killed >= 3, "{killed}");
}

#[test]
fn many_processes_and_the_event_bound() {
    // 300 short-lived processes, and far more calls than the bound keeps.
    let f = trace_with(
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do /bin/true & i=$((i+1)); done; wait; \
             i=0; while [ $i -lt 2000 ]; do : > /dev/null; i=$((i+1)); done",
        ],
        Limits {
            max_events: 1500,
            ..Limits::default()
        },
        None,
    );
    assert_eq!(f.status.and_then(|s| s.code()), Some(0), "{:?}", f.notes);
    let truths = calls(&f, "execve")
        .iter()
        .filter(|(_, c)| c.args[0] == "\"/bin/true\"")
        .count();
    assert_eq!(truths, 300, "process creation and exec are always kept");
    let unrecorded: u64 = f.unrecorded.values().flat_map(|m| m.values()).sum();
    assert!(unrecorded >= 1000, "{unrecorded}");
    let kept: usize = f
        .traces
        .values()
        .flatten()
        .filter(|e| matches!(e, Event::Call(c) if c.api == "openat"))
        .count();
    assert!(kept < 1500, "{kept}");
}

/// The same script under strace and under the native tracer gives the same behaviour.
#[test]
fn the_same_behaviour_as_strace() {
    let script = |d: &str| {
        format!(
            "cd {d}; echo a > one.txt; cat one.txt > two.txt; mkdir -p x/y; ln -s one.txt l; \
         mv two.txt x/y/three.txt; rm one.txt; ls -la > /dev/null; sh -c 'id -u' > id.txt; \
         python3 -c 'import socket; s=socket.socket(); s.settimeout(0.2); s.connect_ex((\"127.0.0.1\", 9))'"
        )
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (d1, d2) = (
        d1.path().to_string_lossy().into_owned(),
        d2.path().to_string_lossy().into_owned(),
    );
    let native = trace(&["/bin/sh", "-c", &script(&d1)]);
    let sdir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("strace")
        .args([
            "-q",
            "-f",
            "-ff",
            "-ttt",
            "-s",
            "256",
            "--seccomp-bpf",
            "-e",
        ])
        .arg(format!("trace={}", crate::run::TRACED))
        .arg("-o")
        .arg(sdir.path().join("t"))
        .args(["/bin/sh", "-c", &script(&d2)])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .status()
        .expect("strace");
    assert!(st.success());
    let strace = behavior::read_traces(sdir.path(), "t");
    let a = behavior::build(&native.traces, "/bin/sh", "/", 100_000);
    let b = behavior::build(&strace, "/bin/sh", "/", 100_000);
    // The same run in two directories: compare with the directory's name taken out.
    let norm = |m: &BTreeMap<String, Vec<serde_json::Value>>, d: &str| {
        let mut m: BTreeMap<String, Vec<String>> = m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().map(|x| x.to_string().replace(d, "D")).collect(),
                )
            })
            .collect();
        for v in m.values_mut() {
            v.sort();
        }
        m
    };
    let (na, nb) = (
        norm(&a.behavior.summary, &d1),
        norm(&b.behavior.summary, &d2),
    );
    for k in na.keys() {
        assert_eq!(na[k], nb[k], "summary {k}");
    }
    assert_eq!(a.behavior.processes.len(), b.behavior.processes.len());
    let names = |t: &behavior::Traced| {
        let mut v: Vec<String> = t
            .behavior
            .processes
            .iter()
            .map(|p| {
                format!("{} {}", p["process_name"], p["command_line"])
                    .replace(&d1, "D")
                    .replace(&d2, "D")
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&a), names(&b));
    // Same calls recorded, per api, over the whole tree.
    let stats = |t: &behavior::Traced| {
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        for v in t.behavior.apistats.values() {
            for (k, n) in v.as_object().unwrap() {
                *m.entry(k.clone()).or_default() += n.as_i64().unwrap();
            }
        }
        m
    };
    assert_eq!(stats(&a), stats(&b));
}

#[test]
fn untraced_clones_are_refused_and_setuid_exec_gains_nothing() {
    let (_d, exe) = gcc(r#"
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    return r == -1 ? 0 : 1;
}
"#);
    let f = trace(&[&exe]);
    assert_eq!(
        f.status.and_then(|s| s.code()),
        Some(0),
        "the clone was not refused"
    );
    let c = calls(&f, "clone");
    assert_eq!(c.len(), 1);
    assert!(
        c[0].1.args[1].contains("CLONE_UNTRACED"),
        "{:?}",
        c[0].1.args
    );
    assert_eq!(c[0].1.errno.as_deref(), Some("EPERM"));

    // A setuid-root copy of `id`, run by nobody: untraced it reports uid 0 ...
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let id = dir.path().join("id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    std::fs::set_permissions(&id, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    let id = id.to_string_lossy().into_owned();
    let as_nobody = [
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        id.as_str(),
        "-u",
    ];
    let bare = std::process::Command::new(as_nobody[0])
        .args(&as_nobody[1..])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&bare.stdout).trim(), "0");
    // ... traced (by root) it stays nobody.
    let (f, out) = trace_output(&as_nobody, Limits::default(), None);
    assert_eq!(out.trim(), "65534", "{:?}", f.notes);
}

#[test]
fn repeated_calls_are_folded_but_counted() {
    let (_d, exe) = gcc(r#"
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 1000; i++) { int fd = open("/etc/hostname", O_RDONLY); close(fd); }
    for (int i = 0; i < 3; i++) { int fd = open("/nonexistent", O_RDONLY); if (fd >= 0) close(fd); }
    int fd = open("/etc/passwd", O_RDONLY);
    return fd < 0;
}
"#);
    let f = trace(&[&exe]);
    assert_eq!(f.status.and_then(|s| s.code()), Some(0));
    let kept = |p: &str| {
        calls(&f, "openat")
            .iter()
            .filter(|(_, c)| c.args[1] == format!("\"{p}\""))
            .count()
    };
    assert_eq!(kept("/etc/hostname"), FOLD_AFTER as usize + 1);
    assert_eq!(kept("/nonexistent"), 3, "failures are never folded");
    assert_eq!(kept("/etc/passwd"), 1);
    let mut t = behavior::build(&f.traces, &exe, "/", 100);
    account(&mut t, &f);
    let root = t.behavior.processes[0]["pid"].as_i64().unwrap();
    let openat = t.behavior.apistats[&root.to_string()]["openat"]
        .as_u64()
        .unwrap();
    assert!(openat >= 1004, "{openat}");
    assert_eq!(
        t.behavior.processes[0]["calls_total"].as_u64(),
        Some(openat + 2)
    );
    let read = &t.behavior.summary["read_files"];
    assert!(read.contains(&serde_json::json!("/etc/hostname")));
    assert!(read.contains(&serde_json::json!("/etc/passwd")));
}

/// The scenarios again under the eBPF tracer (where this kernel allows it: root, tracefs,
/// BPF ring buffers; CI's does).
mod ebpf_tracer {
    use super::*;

    fn under_ebpf(scenario: fn()) {
        if let Err(e) = super::ebpf::available() {
            panic!("the eBPF tracer cannot load here: {e}");
        }
        KIND.set(TracerKind::Ebpf);
        scenario();
    }

    #[test]
    fn shell_tree() {
        under_ebpf(shell_tree_with_exec_arguments_files_and_exit_codes);
    }

    #[test]
    fn threads_network_and_signals() {
        under_ebpf(threads_network_refused_ptrace_and_realtime_signals);
    }

    #[test]
    fn thread_exec() {
        under_ebpf(a_thread_that_execs_takes_over_the_leader);
    }

    #[test]
    fn stops_and_kills() {
        under_ebpf(stops_kills_and_timeouts_never_hang);
    }

    #[test]
    fn many_processes() {
        under_ebpf(many_processes_and_the_event_bound);
    }

    #[test]
    fn same_as_strace() {
        under_ebpf(the_same_behaviour_as_strace);
    }

    #[test]
    fn folded_repeats() {
        under_ebpf(repeated_calls_are_folded_but_counted);
    }

    /// Runs share one set of kernel programs and one ring buffer: each trace holds its
    /// own processes only, even when they run at the same time.
    #[test]
    fn concurrent_runs_keep_their_own_records() {
        if let Err(e) = super::super::ebpf::available() {
            panic!("the eBPF tracer cannot load here: {e}");
        }
        let run = |mark: &'static str| {
            std::thread::spawn(move || {
                KIND.set(TracerKind::Ebpf);
                let script = format!(
                    "for i in 1 2 3 4 5 6 7 8; do /bin/echo {mark} > /dev/null; \
                     cat /etc/hostname > /dev/null; done"
                );
                trace(&["/bin/sh", "-c", &script])
            })
        };
        let (a, b) = (run("first-run"), run("second-run"));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        for (f, mine, theirs) in [
            (&a, "first-run", "second-run"),
            (&b, "second-run", "first-run"),
        ] {
            let echoes: Vec<String> = calls(f, "execve")
                .into_iter()
                .filter(|(_, c)| c.args[0] == "\"/bin/echo\"")
                .map(|(_, c)| c.args[1].clone())
                .collect();
            assert_eq!(echoes.len(), 8, "{echoes:?}");
            assert!(
                echoes
                    .iter()
                    .all(|e| e.contains(mine) && !e.contains(theirs)),
                "{echoes:?}"
            );
            assert_eq!(f.status.and_then(|s| s.code()), Some(0));
        }
        let pids = |f: &Finished| {
            f.traces
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert!(pids(&a).is_disjoint(&pids(&b)));
    }
}
