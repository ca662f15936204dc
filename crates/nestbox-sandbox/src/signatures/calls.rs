//! Signatures over the recorded system calls: what one call's arguments or a short
//! sequence of calls in one process tree give away.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::{Check, Evidence, Marks, Meta, base};
use crate::strace;

pub(crate) static SIGNATURES: &[(Meta, Check)] = &[
    (
        Meta {
            name: "antidebug_ptrace",
            description: "Checks for a debugger with ptrace(PTRACE_TRACEME) or makes itself undumpable",
            severity: 2,
            categories: &["anti-debug", "evasion"],
            ttp: &[("T1622", "Debugger Evasion")],
            families: &[],
        },
        antidebug,
    ),
    (
        Meta {
            name: "process_injection",
            description: "Attaches to or writes another process's memory (ptrace, /proc/<pid>/mem)",
            severity: 3,
            categories: &["injection"],
            ttp: &[
                ("T1055.008", "Process Injection: Ptrace System Calls"),
                ("T1055.009", "Process Injection: Proc Memory"),
            ],
            families: &[],
        },
        injection,
    ),
    (
        Meta {
            name: "network_sniffing",
            description: "Opens a raw or packet socket to capture traffic",
            severity: 2,
            categories: &["network", "credential_access"],
            ttp: &[("T1040", "Network Sniffing")],
            families: &[],
        },
        raw_socket,
    ),
    (
        Meta {
            name: "process_masquerading",
            description: "Renames its process or runs under a false argv[0] (kernel thread or daemon name)",
            severity: 2,
            categories: &["evasion"],
            ttp: &[("T1036.004", "Masquerading: Masquerade Task or Service")],
            families: &[],
        },
        masquerade,
    ),
    (
        Meta {
            name: "fileless_execution",
            description: "Executes a program from memory (memfd_create + exec of the descriptor)",
            severity: 3,
            categories: &["evasion"],
            ttp: &[("T1620", "Reflective Code Loading")],
            families: &[],
        },
        fileless,
    ),
    (
        Meta {
            name: "setuid_file_created",
            description: "Sets the setuid or setgid bit on a file",
            severity: 3,
            categories: &["privilege_escalation", "persistence"],
            ttp: &[(
                "T1548.001",
                "Abuse Elevation Control Mechanism: Setuid and Setgid",
            )],
            families: &[],
        },
        setuid,
    ),
    (
        Meta {
            name: "reverse_shell",
            description: "Connects a shell's standard input/output to a network socket",
            severity: 3,
            categories: &["network", "command_and_control"],
            ttp: &[("T1059.004", "Command and Scripting Interpreter: Unix Shell")],
            families: &[],
        },
        reverse_shell,
    ),
    (
        Meta {
            name: "resource_exhaustion",
            description: "Spawns processes without bound (fork bomb) until the sandbox refuses",
            severity: 2,
            categories: &["impact"],
            ttp: &[(
                "T1499.001",
                "Endpoint Denial of Service: OS Exhaustion Flood",
            )],
            families: &[],
        },
        fork_bomb,
    ),
];

fn arg<'a>(c: &'a Value, name: &str) -> &'a str {
    c["arguments"][name].as_str().unwrap_or("")
}

fn api(c: &Value) -> &str {
    c["api"].as_str().unwrap_or("")
}

fn pname(p: &Value) -> String {
    p["process_name"].as_str().unwrap_or("").to_owned()
}

fn antidebug(ev: &Evidence<'_>) -> Marks {
    ev.calls()
        .filter(|(_, c)| {
            (api(c) == "ptrace" && arg(c, "request") == "PTRACE_TRACEME")
                || (api(c) == "prctl"
                    && arg(c, "option") == "PR_SET_DUMPABLE"
                    // strace (and the native tracer) print the value by name.
                    && matches!(arg(c, "arg2"), "0" | "SUID_DUMP_DISABLE"))
        })
        .map(|(p, c)| ("call".to_owned(), format!("{} {}", pname(p), api(c))))
        .collect()
}

fn injection(ev: &Evidence<'_>) -> Marks {
    let mut m: Marks = ev
        .calls()
        .filter(|(_, c)| {
            api(c) == "ptrace"
                && matches!(
                    arg(c, "request"),
                    "PTRACE_ATTACH"
                        | "PTRACE_SEIZE"
                        | "PTRACE_POKETEXT"
                        | "PTRACE_POKEDATA"
                        | "PTRACE_SETREGS"
                )
        })
        .map(|(p, c)| {
            (
                "call".to_owned(),
                format!(
                    "{} ptrace {} {}",
                    pname(p),
                    arg(c, "request"),
                    arg(c, "pid")
                ),
            )
        })
        .collect();
    // `/proc/<pid>/mem` opened (read: memory scraping; write: code injection).
    m.extend(
        ev.attempts
            .opens
            .iter()
            .filter(|p| {
                p.strip_prefix("/proc/")
                    .and_then(|r| r.strip_suffix("/mem"))
                    .is_some_and(|mid| !mid.contains('/'))
            })
            .map(|p| ("file".to_owned(), p.clone())),
    );
    m
}

fn raw_socket(ev: &Evidence<'_>) -> Marks {
    ev.calls()
        .filter(|(_, c)| {
            // Netlink sockets are SOCK_RAW too (audit, routing) and capture nothing.
            api(c) == "socket"
                && (arg(c, "domain") == "AF_PACKET"
                    || (arg(c, "domain").starts_with("AF_INET")
                        && arg(c, "type").contains("SOCK_RAW")))
        })
        .map(|(p, c)| {
            (
                "call".to_owned(),
                format!(
                    "{} socket({}, {}, {})",
                    pname(p),
                    arg(c, "domain"),
                    arg(c, "type"),
                    arg(c, "protocol")
                ),
            )
        })
        .collect()
}

/// Names malware borrows to blend into `ps` output.
fn looks_like_system(name: &str) -> bool {
    let n = name.trim_start_matches('[');
    name.starts_with('[')
        || [
            "kworker",
            "kthreadd",
            "ksoftirqd",
            "migration",
            "rcu_",
            "watchdog",
            "sshd",
            "systemd",
            "cron",
            "dbus-daemon",
            "rsyslogd",
            "udevd",
            "agetty",
            "polkitd",
            "init",
        ]
        .iter()
        .any(|s| n.starts_with(s))
}

fn masquerade(ev: &Evidence<'_>) -> Marks {
    let mut m = Marks::new();
    for (p, c) in ev.calls() {
        match api(c) {
            "prctl" if arg(c, "option") == "PR_SET_NAME" => {
                let new = arg(c, "arg2");
                let own = pname(p);
                if !new.is_empty() && !own.starts_with(new) && looks_like_system(new) {
                    m.push(("process".to_owned(), format!("{own} → {new}")));
                }
            }
            "execve" if c["status"] == true => {
                let file = base(arg(c, "filename"));
                let argv = strace::list(arg(c, "argv"));
                if let Some(a0) = argv.first()
                    && base(a0) != file
                    && looks_like_system(a0)
                {
                    m.push(("process".to_owned(), format!("{file} as {a0}")));
                }
            }
            _ => {}
        }
    }
    m
}

fn fileless(ev: &Evidence<'_>) -> Marks {
    let memfd = ev
        .calls()
        .any(|(_, c)| api(c) == "memfd_create" && c["status"] == true);
    if !memfd {
        return Marks::new();
    }
    ev.calls()
        .filter(|(_, c)| {
            let f = arg(c, "filename");
            (api(c) == "execveat" && arg(c, "flags").contains("AT_EMPTY_PATH"))
                || (api(c) == "execve"
                    && (f.starts_with("/proc/self/fd/")
                        || f.starts_with("/dev/fd/")
                        || (f.starts_with("/proc/") && f.contains("/fd/"))))
        })
        .map(|(p, c)| {
            (
                "call".to_owned(),
                format!("{} {} {}", pname(p), api(c), arg(c, "filename")),
            )
        })
        .collect()
}

/// The mode argument (strace prints octal: `04755`).
fn mode_bits(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim(), 8).ok()
}

fn setuid(ev: &Evidence<'_>) -> Marks {
    ev.calls()
        .filter(|(_, c)| matches!(api(c), "chmod" | "fchmodat" | "fchmod"))
        .filter(|(_, c)| mode_bits(arg(c, "mode")).is_some_and(|m| m & 0o6000 != 0))
        .map(|(_, c)| {
            let target = match arg(c, "pathname") {
                "" => format!("fd {}", arg(c, "fd")),
                p => p.to_owned(),
            };
            (
                "file".to_owned(),
                format!("{target} mode {}", arg(c, "mode")),
            )
        })
        .collect()
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"];

fn reverse_shell(ev: &Evidence<'_>) -> Marks {
    // Per process: fd numbers that are connected inet sockets, inherited from the parent
    // (processes are in tree order, parents first).
    let mut sockets: HashMap<i64, BTreeSet<String>> = HashMap::new();
    let mut m = Marks::new();
    for p in &ev.behavior.processes {
        let pid = p["pid"].as_i64().unwrap_or(0);
        let ppid = p["ppid"].as_i64().unwrap_or(0);
        let mut fds = sockets.get(&ppid).cloned().unwrap_or_default();
        let mut redirected = BTreeSet::new();
        let mut shell_after = false;
        for c in p["calls"].as_array().into_iter().flatten() {
            match api(c) {
                "connect" => {
                    let inet = arg(c, "addr").contains("AF_INET");
                    let ok = c["status"] == true || c["errno"] == "EINPROGRESS";
                    if inet && ok {
                        fds.insert(arg(c, "fd").to_owned());
                    }
                }
                "dup2" | "dup3" if c["status"] == true => {
                    let (old, new) = (arg(c, "oldfd"), arg(c, "newfd"));
                    if fds.contains(old) {
                        fds.insert(new.to_owned());
                        if matches!(new, "0" | "1" | "2") {
                            redirected.insert(new.to_owned());
                        }
                    } else {
                        fds.remove(new);
                    }
                }
                "execve" if c["status"] == true && !redirected.is_empty() => {
                    shell_after |= SHELLS.contains(&base(arg(c, "filename")));
                }
                _ => {}
            }
        }
        let is_shell = SHELLS.contains(&pname(p).as_str());
        if redirected.len() >= 2 && (shell_after || is_shell) {
            m.push((
                "process".to_owned(),
                format!(
                    "{} (pid {pid}): fds {:?} → socket",
                    p["command_line"].as_str().unwrap_or(""),
                    redirected
                ),
            ));
        }
        sockets.insert(pid, fds);
    }
    m
}

fn fork_bomb(ev: &Evidence<'_>) -> Marks {
    let procs = &ev.behavior.processes;
    let refused = ev
        .calls()
        .filter(|(_, c)| {
            matches!(api(c), "clone" | "clone3" | "fork" | "vfork") && c["errno"] == "EAGAIN"
        })
        .count();
    let mut names: HashMap<String, usize> = HashMap::new();
    for p in procs {
        *names.entry(pname(p)).or_default() += 1;
    }
    let (top, n) = names
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap_or_default();
    if refused >= 5 || (procs.len() >= 32 && n * 4 >= procs.len() * 3) {
        vec![(
            "process".to_owned(),
            format!(
                "{} processes ({n} × {top}), {refused} forks refused",
                procs.len()
            ),
        )]
    } else {
        Marks::new()
    }
}

#[cfg(test)]
mod tests {
    use crate::behavior::Attempts;
    use crate::signatures::tests::{behavior, call, fired};
    use nestbox_types::report::Network;

    fn run(calls: Vec<serde_json::Value>) -> Vec<String> {
        fired(
            &behavior(&[], &[("a.out", calls)]),
            &Network::default(),
            &Attempts::default(),
            vec![],
        )
    }

    #[test]
    fn call_signatures_fire_and_benign_calls_do_not() {
        let cases: Vec<(&str, Vec<serde_json::Value>, Vec<serde_json::Value>)> = vec![
            (
                "antidebug_ptrace",
                vec![call("ptrace", &[("request", "PTRACE_TRACEME")], -1)],
                vec![call(
                    "prctl",
                    &[("option", "PR_SET_DUMPABLE"), ("arg2", "SUID_DUMP_USER")],
                    0,
                )],
            ),
            (
                "antidebug_ptrace",
                vec![call(
                    "prctl",
                    &[("option", "PR_SET_DUMPABLE"), ("arg2", "SUID_DUMP_DISABLE")],
                    0,
                )],
                vec![call(
                    "prctl",
                    &[("option", "PR_SET_DUMPABLE"), ("arg2", "1")],
                    0,
                )],
            ),
            (
                "process_injection",
                vec![call(
                    "ptrace",
                    &[("request", "PTRACE_ATTACH"), ("pid", "7")],
                    -1,
                )],
                vec![call("ptrace", &[("request", "PTRACE_TRACEME")], -1)],
            ),
            (
                "network_sniffing",
                vec![call(
                    "socket",
                    &[("domain", "AF_PACKET"), ("type", "SOCK_RAW")],
                    -1,
                )],
                vec![
                    call(
                        "socket",
                        &[("domain", "AF_INET"), ("type", "SOCK_STREAM")],
                        3,
                    ),
                    call(
                        "socket",
                        &[("domain", "AF_NETLINK"), ("type", "SOCK_RAW")],
                        4,
                    ),
                ],
            ),
            (
                "process_masquerading",
                vec![call(
                    "prctl",
                    &[("option", "PR_SET_NAME"), ("arg2", "kworker/0:1")],
                    0,
                )],
                vec![call(
                    "prctl",
                    &[("option", "PR_SET_NAME"), ("arg2", "worker-3")],
                    0,
                )],
            ),
            (
                "fileless_execution",
                vec![
                    call("memfd_create", &[("name", "x")], 3),
                    call(
                        "execveat",
                        &[("dirfd", "3"), ("filename", ""), ("flags", "AT_EMPTY_PATH")],
                        0,
                    ),
                ],
                vec![
                    call("memfd_create", &[("name", "x")], 3),
                    call(
                        "execve",
                        &[("filename", "/usr/bin/true"), ("argv", "[\"true\"]")],
                        0,
                    ),
                ],
            ),
            (
                "setuid_file_created",
                vec![call(
                    "chmod",
                    &[("pathname", "/tmp/x"), ("mode", "04755")],
                    0,
                )],
                vec![call(
                    "chmod",
                    &[("pathname", "/tmp/x"), ("mode", "0755")],
                    0,
                )],
            ),
            (
                "reverse_shell",
                vec![
                    call(
                        "connect",
                        &[
                            ("fd", "3"),
                            ("addr", "{sa_family=AF_INET, sin_port=htons(4444)}"),
                        ],
                        0,
                    ),
                    call("dup2", &[("oldfd", "3"), ("newfd", "0")], 0),
                    call("dup2", &[("oldfd", "3"), ("newfd", "1")], 1),
                    call(
                        "execve",
                        &[("filename", "/bin/sh"), ("argv", "[\"sh\"]")],
                        0,
                    ),
                ],
                vec![
                    call(
                        "connect",
                        &[
                            ("fd", "3"),
                            ("addr", "{sa_family=AF_INET, sin_port=htons(80)}"),
                        ],
                        0,
                    ),
                    call("dup2", &[("oldfd", "4"), ("newfd", "1")], 1),
                    call("dup2", &[("oldfd", "1"), ("newfd", "2")], 2),
                    call(
                        "execve",
                        &[("filename", "/bin/sh"), ("argv", "[\"sh\"]")],
                        0,
                    ),
                ],
            ),
        ];
        for (sig, bad, good) in cases {
            let f = run(bad);
            assert!(f.iter().any(|n| n == sig), "{sig} did not fire: {f:?}");
            let f = run(good);
            assert!(
                !f.iter().any(|n| n == sig),
                "{sig} fired on benign calls: {f:?}"
            );
        }
    }

    #[test]
    fn fork_bomb_by_count_or_refusals() {
        let many: Vec<(&str, Vec<serde_json::Value>)> = (0..40).map(|_| ("bomb", vec![])).collect();
        let f = fired(
            &behavior(&[], &many),
            &Network::default(),
            &Attempts::default(),
            vec![],
        );
        assert!(f.iter().any(|n| n == "resource_exhaustion"));
        let few: Vec<(&str, Vec<serde_json::Value>)> = (0..10).map(|_| ("make", vec![])).collect();
        let f = fired(
            &behavior(&[], &few),
            &Network::default(),
            &Attempts::default(),
            vec![],
        );
        assert!(!f.iter().any(|n| n == "resource_exhaustion"));
    }
}
