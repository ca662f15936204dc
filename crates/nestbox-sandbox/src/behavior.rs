//! Per-process strace logs → Cuckoo's `behavior` section.
//!
//! The traces contain the sandbox's own plumbing too (setpriv, prlimit, bubblewrap's
//! set-up and its pid-1 reaper). The sample's tree starts at the process that executed the
//! entry command; only it and its descendants (found through `clone`/`fork` return values)
//! are reported, and the root's calls before that `execve` are bwrap's and are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use nestbox_types::report::Behavior;
use serde_json::{Map, Value, json};

use crate::strace::{self, Call, Event};

/// What the trace says, beyond the report section.
#[derive(Debug, Default)]
pub struct Traced {
    /// The `behavior` section.
    pub behavior: Behavior,
    /// Paths (inside the sandbox) opened for writing, with the pids that did it.
    pub writers: BTreeMap<String, BTreeSet<i64>>,
    /// Whether the entry command was found in the trace (it started).
    pub started: bool,
    /// Log lines (call logs cut, …).
    pub notes: Vec<String>,
    /// What the sample *tried*, failed attempts included (the summary keeps only what
    /// worked, but a refused write to `/etc/cron.d` is still persistence).
    pub attempts: Attempts,
}

/// Paths and programs the sample's processes tried to use, whatever the outcome. Not in
/// the report (Cuckoo has no such section); signatures read it.
#[derive(Debug, Default, Clone)]
pub struct Attempts {
    /// Every path opened (read or write), `ENOENT` included: probes for files that are
    /// not there (`/.dockerenv`, `/sys/hypervisor`) are evidence too.
    pub opens: BTreeSet<String>,
    /// Paths opened with a write flag, whatever the result.
    pub writes: BTreeSet<String>,
    /// Programs `execve` was called on, whatever the result (a shell looking for
    /// `iptables` along `PATH` fails with `ENOENT` on each entry).
    pub execs: BTreeSet<String>,
}

/// Reads `dir/<prefix>.<pid>` files written by `strace -ff -o dir/<prefix>`.
pub fn read_traces(dir: &Path, prefix: &str) -> BTreeMap<i64, Vec<Event>> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|p| p.parse::<i64>().ok())
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        out.insert(pid, text.lines().filter_map(strace::parse_line).collect());
    }
    out
}

#[derive(Default, Clone)]
struct Summary {
    files: Vec<String>,
    read_files: Vec<String>,
    write_files: Vec<String>,
    delete_files: Vec<String>,
    directory_created: Vec<String>,
    executed_commands: Vec<String>,
    connects_ip: Vec<String>,
    connects_host: Vec<String>,
    resolves_host: Vec<String>,
}

impl Summary {
    fn add(list: &mut Vec<String>, v: String) {
        if !list.contains(&v) {
            list.push(v);
        }
    }
    fn merge(&mut self, o: &Summary) {
        for (a, b) in self.lists_mut().into_iter().zip(o.lists()) {
            for v in b {
                Summary::add(a, v.clone());
            }
        }
    }
    fn lists(&self) -> [&Vec<String>; 9] {
        [
            &self.files,
            &self.read_files,
            &self.write_files,
            &self.delete_files,
            &self.directory_created,
            &self.executed_commands,
            &self.connects_ip,
            &self.connects_host,
            &self.resolves_host,
        ]
    }
    fn lists_mut(&mut self) -> [&mut Vec<String>; 9] {
        [
            &mut self.files,
            &mut self.read_files,
            &mut self.write_files,
            &mut self.delete_files,
            &mut self.directory_created,
            &mut self.executed_commands,
            &mut self.connects_ip,
            &mut self.connects_host,
            &mut self.resolves_host,
        ]
    }
    const KEYS: [&'static str; 9] = [
        "files",
        "read_files",
        "write_files",
        "delete_files",
        "directory_created",
        "executed_commands",
        "connects_ip",
        "connects_host",
        "resolves_host",
    ];
    fn to_map(&self) -> BTreeMap<String, Vec<Value>> {
        Summary::KEYS
            .iter()
            .zip(self.lists())
            .map(|(k, l)| (k.to_string(), l.iter().map(|v| json!(v)).collect()))
            .collect()
    }
}

/// Builds the behaviour from the traces. `entry` is the path bwrap executed, `cwd` the
/// sample's start directory, `max_calls` the per-process call-log cap.
pub fn build(
    traces: &BTreeMap<i64, Vec<Event>>,
    entry: &str,
    cwd: &str,
    max_calls: usize,
) -> Traced {
    let mut t = Traced::default();
    // The root: the first process that executed the entry command.
    let root = traces
        .iter()
        .filter_map(|(pid, ev)| {
            ev.iter().find_map(|e| match e {
                Event::Call(c)
                    if c.api == "execve"
                        && c.args.first().map(|a| strace::text(a)).as_deref() == Some(entry) =>
                {
                    Some((c.time, *pid))
                }
                _ => None,
            })
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, p)| p);
    let Some(root) = root else {
        return t;
    };
    t.started = true;
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for (pid, ev) in traces {
        for e in ev {
            if let Event::Call(c) = e
                && matches!(c.api.as_str(), "clone" | "clone3" | "fork" | "vfork")
                && let Some(child) = c.ret_int().filter(|&p| p > 0)
                && traces.contains_key(&child)
            {
                children.entry(*pid).or_default().push(child);
            }
        }
    }

    let mut total = Summary::default();
    let mut processes = Vec::new();
    let mut nodes: BTreeMap<i64, Value> = BTreeMap::new();
    let mut order = Vec::new();
    let mut parent_of: HashMap<i64, i64> = HashMap::new();
    let mut start_cwd: HashMap<i64, String> = HashMap::new();
    let mut inherited: HashMap<i64, (String, String, String)> = HashMap::new();
    start_cwd.insert(root, cwd.to_owned());
    let mut queue = VecDeque::from([root]);
    let mut seen = BTreeSet::new();
    while let Some(pid) = queue.pop_front() {
        if !seen.insert(pid) {
            continue;
        }
        order.push(pid);
        let ppid = parent_of.get(&pid).copied().unwrap_or(0);
        let events = &traces[&pid];
        let skip = if pid == root {
            events
                .iter()
                .position(|e| matches!(e, Event::Call(c) if c.api == "execve" && c.args.first().map(|a| strace::text(a)).as_deref() == Some(entry)))
                .unwrap_or(0)
        } else {
            0
        };
        let mut cwd = start_cwd.get(&pid).cloned().unwrap_or_else(|| "/".into());
        let (mut name, mut path, mut cmdline) = inherited.get(&pid).cloned().unwrap_or_default();
        let mut first_seen = None;
        let mut calls = Vec::new();
        let mut stats: BTreeMap<String, i64> = BTreeMap::new();
        let mut s = Summary::default();
        let mut dns_fds: BTreeSet<String> = BTreeSet::new();
        let mut fds: HashMap<String, String> = HashMap::new();
        let mut count = 0usize;
        for e in &events[skip..] {
            let Event::Call(c) = e else { continue };
            first_seen.get_or_insert(c.time);
            count += 1;
            *stats.entry(c.api.clone()).or_default() += 1;
            // Paths of `*at` calls are relative to their dirfd when it is not AT_FDCWD.
            let at = matches!(
                c.api.as_str(),
                "openat"
                    | "unlinkat"
                    | "mkdirat"
                    | "renameat"
                    | "renameat2"
                    | "fchmodat"
                    | "execveat"
            );
            let p = |i: usize| {
                let base = if at && i > 0 {
                    c.args
                        .get(i - 1)
                        .and_then(|fd| fds.get(fd))
                        .map_or(cwd.as_str(), String::as_str)
                } else {
                    cwd.as_str()
                };
                c.args.get(i).map(|a| resolve(base, &strace::text(a)))
            };
            match c.api.as_str() {
                "execve" | "execveat" => {
                    let i = usize::from(c.api == "execveat");
                    if let Some(f) = p(i) {
                        t.attempts.execs.insert(f);
                    }
                    if c.ok() {
                        let argv = c
                            .args
                            .get(i + 1)
                            .map(|a| strace::list(a))
                            .unwrap_or_default();
                        path = p(i).unwrap_or_default();
                        name = path.rsplit('/').next().unwrap_or("").to_owned();
                        cmdline = argv.join(" ");
                        Summary::add(&mut s.executed_commands, cmdline.clone());
                    }
                }
                "clone" | "clone3" | "fork" | "vfork" => {
                    if let Some(child) = c.ret_int().filter(|&p| p > 0) {
                        parent_of.insert(child, pid);
                        start_cwd.insert(child, cwd.clone());
                        inherited.insert(child, (name.clone(), path.clone(), cmdline.clone()));
                        if children.get(&pid).is_some_and(|v| v.contains(&child)) {
                            queue.push_back(child);
                        }
                    }
                }
                "fchdir" if c.ok() => {
                    if let Some(d) = c.args.first().and_then(|fd| fds.get(fd)) {
                        cwd = d.clone();
                    }
                }
                "chdir" if c.ok() => {
                    if let Some(d) = p(0) {
                        cwd = d;
                    }
                }
                "open" | "openat" | "creat" => {
                    let (fi, flags) = match c.api.as_str() {
                        "openat" => (1, c.args.get(2).cloned().unwrap_or_default()),
                        "open" => (0, c.args.get(1).cloned().unwrap_or_default()),
                        _ => (0, "O_CREAT|O_WRONLY".to_owned()),
                    };
                    if let Some(f) = p(fi) {
                        t.attempts.opens.insert(f.clone());
                        if ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"]
                            .iter()
                            .any(|w| flags.contains(w))
                        {
                            t.attempts.writes.insert(f.clone());
                        }
                        let enoent = c.errno.as_deref() == Some("ENOENT");
                        if !enoent {
                            Summary::add(&mut s.files, f.clone());
                        }
                        if let Some(fd) = c.ret_int().filter(|_| c.ok()) {
                            fds.insert(fd.to_string(), f.clone());
                        }
                        if c.ok() {
                            let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"]
                                .iter()
                                .any(|w| flags.contains(w));
                            if writes {
                                Summary::add(&mut s.write_files, f.clone());
                                t.writers.entry(f).or_default().insert(pid);
                            } else {
                                Summary::add(&mut s.read_files, f);
                            }
                        }
                    }
                }
                "unlink" | "unlinkat" | "rmdir" if c.ok() => {
                    let i = usize::from(c.api == "unlinkat");
                    if let Some(f) = p(i) {
                        Summary::add(&mut s.files, f.clone());
                        Summary::add(&mut s.delete_files, f);
                    }
                }
                "rename" | "renameat" | "renameat2" if c.ok() => {
                    let (a, b) = if c.api == "rename" { (0, 1) } else { (1, 3) };
                    if let (Some(from), Some(to)) = (p(a), p(b)) {
                        Summary::add(&mut s.files, from.clone());
                        Summary::add(&mut s.delete_files, from);
                        Summary::add(&mut s.files, to.clone());
                        Summary::add(&mut s.write_files, to.clone());
                        t.writers.entry(to).or_default().insert(pid);
                    }
                }
                "mkdir" | "mkdirat" if c.ok() => {
                    let i = usize::from(c.api == "mkdirat");
                    if let Some(d) = p(i) {
                        Summary::add(&mut s.directory_created, d);
                    }
                }
                "connect" => {
                    if let Some((ip, port)) = c.args.get(1).and_then(|a| strace::sockaddr(a)) {
                        if port == 53 {
                            dns_fds.insert(c.args[0].clone());
                        } else {
                            Summary::add(&mut s.connects_ip, ip.clone());
                            Summary::add(&mut s.connects_host, ip);
                        }
                    }
                }
                "sendto" | "sendmsg" | "sendmmsg" | "send" | "write" => {
                    let to53 = c
                        .args
                        .get(4)
                        .and_then(|a| strace::sockaddr(a))
                        .is_some_and(|(_, p)| p == 53);
                    if (to53 || c.args.first().is_some_and(|fd| dns_fds.contains(fd)))
                        && let Some(name) = dns_name(c)
                    {
                        Summary::add(&mut s.resolves_host, name);
                    }
                }
                _ => {}
            }
            if calls.len() < max_calls {
                calls.push(call_json(c, pid));
            }
        }
        for ch in children.get(&pid).into_iter().flatten() {
            if !seen.contains(ch) && !queue.contains(ch) {
                parent_of.entry(*ch).or_insert(pid);
                queue.push_back(*ch);
            }
        }
        let exit = events.iter().rev().find_map(|e| match e {
            Event::Exit { how, .. } => Some(how.clone()),
            _ => None,
        });
        let first_seen = first_seen.unwrap_or(0.0);
        let mut proc_ = json!({
            "pid": pid,
            "ppid": ppid,
            "process_name": name,
            "process_path": path,
            "command_line": cmdline,
            "first_seen": first_seen,
            "track": true,
            "modules": [],
            "calls": calls,
        });
        if let Some(x) = &exit {
            proc_["exit"] = json!(x);
        }
        if count > max_calls {
            proc_["calls_truncated"] = json!(true);
            proc_["calls_total"] = json!(count);
            let msg = format!(
                "process {pid} ({name}) made {count} calls; the call log was cut at {max_calls}"
            );
            t.behavior.anomaly.push(json!({
                "pid": pid, "name": "calls_truncated", "category": "behavior", "message": msg,
            }));
            t.notes.push(msg);
        }
        processes.push(proc_);
        t.behavior.apistats.insert(
            pid.to_string(),
            Value::Object(
                stats
                    .into_iter()
                    .map(|(k, v)| (k, json!(v)))
                    .collect::<Map<_, _>>(),
            ),
        );
        t.behavior.generic.push(json!({
            "pid": pid, "ppid": ppid, "process_name": name, "process_path": path,
            "first_seen": first_seen, "summary": s.to_map(),
        }));
        nodes.insert(
            pid,
            json!({
                "pid": pid, "ppid": ppid, "process_name": name, "command_line": cmdline,
                "first_seen": first_seen, "track": true, "children": [],
            }),
        );
        total.merge(&s);
    }
    // The tree, children attached bottom-up (reverse BFS order).
    for pid in order.iter().rev() {
        if *pid == root {
            continue;
        }
        let (Some(node), Some(pp)) = (nodes.remove(pid), parent_of.get(pid)) else {
            continue;
        };
        if let Some(parent) = nodes.get_mut(pp)
            && let Some(ch) = parent["children"].as_array_mut()
        {
            ch.insert(0, node);
        }
    }
    if let Some(r) = nodes.remove(&root) {
        t.behavior.processtree.push(r);
    }
    t.behavior.processes = processes;
    t.behavior.summary = total.to_map();
    t
}

/// The queried name in a send-type call's buffer, if it is a DNS query.
fn dns_name(c: &Call) -> Option<String> {
    let arg = c.args.get(1)?;
    let lit = match arg.find("iov_base=") {
        Some(i) => &arg[i + 9..],
        None => arg.as_str(),
    };
    // The literal runs to the closing quote that is not escaped.
    let bytes = lit.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut end = None;
    let mut esc = false;
    for (i, b) in bytes.iter().enumerate().skip(1) {
        if esc {
            esc = false;
        } else if *b == b'\\' {
            esc = true;
        } else if *b == b'"' {
            end = Some(i);
            break;
        }
    }
    let msg = strace::unquote(&lit[..=end?])?;
    strace::dns_query_name(&msg)
}

/// Argument names for the calls analysts look at most; others get `p0`, `p1`, ….
fn arg_names(api: &str) -> &'static [&'static str] {
    match api {
        "execve" => &["filename", "argv", "envp"],
        "execveat" => &["dirfd", "filename", "argv", "envp", "flags"],
        "openat" => &["dirfd", "filename", "flags", "mode"],
        "open" => &["filename", "flags", "mode"],
        "creat" => &["filename", "mode"],
        "unlink" | "rmdir" | "chdir" => &["filename"],
        "unlinkat" => &["dirfd", "filename", "flags"],
        "rename" => &["oldname", "newname"],
        "renameat" | "renameat2" => &["olddirfd", "oldname", "newdirfd", "newname", "flags"],
        "mkdir" => &["pathname", "mode"],
        "mkdirat" => &["dirfd", "pathname", "mode"],
        "socket" => &["domain", "type", "protocol"],
        "connect" | "bind" => &["fd", "addr", "addrlen"],
        "sendto" => &["fd", "buf", "len", "flags", "addr", "addrlen"],
        "kill" => &["pid", "sig"],
        "ptrace" => &["request", "pid", "addr", "data"],
        "prctl" => &["option", "arg2", "arg3", "arg4", "arg5"],
        "memfd_create" => &["name", "flags"],
        "dup2" => &["oldfd", "newfd"],
        "dup3" => &["oldfd", "newfd", "flags"],
        "fchmod" => &["fd", "mode"],
        "utimensat" => &["dirfd", "pathname", "times", "flags"],
        "symlink" => &["target", "linkpath"],
        "symlinkat" => &["target", "newdirfd", "linkpath"],
        "chmod" => &["pathname", "mode"],
        "fchmodat" => &["dirfd", "pathname", "mode"],
        _ => &[],
    }
}

fn call_json(c: &Call, pid: i64) -> Value {
    let names = arg_names(&c.api);
    let mut args = Map::new();
    for (i, a) in c.args.iter().enumerate() {
        // strace already names struct-like arguments (`flags=CLONE_VM|…`).
        let (k, v) = match (names.get(i), a.split_once('=')) {
            (Some(n), _) => ((*n).to_owned(), a.as_str()),
            (None, Some((k, v))) if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                (k.to_owned(), v)
            }
            _ => (format!("p{i}"), a.as_str()),
        };
        let v = if v.starts_with('"') {
            strace::text(v)
        } else {
            v.to_owned()
        };
        args.insert(k, json!(v));
    }
    let ret = c.ret_int().map_or_else(|| json!(c.ret), |r| json!(r));
    let mut call = json!({
        "category": category(&c.api),
        "api": c.api,
        "arguments": args,
        "return": ret,
        "status": c.ok(),
        "time": c.time,
        "tid": pid,
    });
    if let Some(e) = &c.errno {
        call["errno"] = json!(e);
    }
    call
}

fn category(api: &str) -> &'static str {
    match api {
        "execve" | "execveat" | "clone" | "clone3" | "fork" | "vfork" | "exit" | "exit_group"
        | "kill" | "tkill" | "tgkill" | "wait4" | "waitid" | "prctl" | "setsid" | "setpgid" => {
            "process"
        }
        "socket" | "connect" | "bind" | "listen" | "accept" | "accept4" | "sendto" | "recvfrom"
        | "sendmsg" | "recvmsg" | "sendmmsg" | "recvmmsg" | "getsockopt" | "setsockopt"
        | "getsockname" | "getpeername" | "shutdown" | "socketpair" => "network",
        "open" | "openat" | "creat" | "unlink" | "unlinkat" | "rename" | "renameat"
        | "renameat2" | "mkdir" | "mkdirat" | "rmdir" | "chmod" | "fchmodat" | "chown"
        | "fchownat" | "symlink" | "symlinkat" | "link" | "linkat" | "truncate" | "utimensat"
        | "chdir" | "readlink" | "readlinkat" => "file",
        _ => "system",
    }
}

/// `rel` against `cwd`, normalised lexically (`.`/`..`).
pub fn resolve(cwd: &str, rel: &str) -> String {
    let joined = if rel.starts_with('/') {
        rel.to_owned()
    } else {
        format!("{cwd}/{rel}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(lines: &str) -> Vec<Event> {
        lines.lines().filter_map(strace::parse_line).collect()
    }

    #[test]
    fn tree_summary_and_cap() {
        let mut t = BTreeMap::new();
        t.insert(
            10,
            ev(
                r#"1.0 execve("/usr/bin/bwrap", ["bwrap"], 0x1 /* 1 vars */) = 0
1.1 clone(child_stack=NULL, flags=CLONE_NEWPID|SIGCHLD) = 11"#,
            ),
        );
        t.insert(
            11,
            ev(r#"1.2 mount("none", "/", NULL, MS_REC|MS_PRIVATE, NULL) = 0
1.3 execve("/tmp/s.sh", ["/tmp/s.sh", "x"], 0x1 /* 1 vars */) = 0
1.4 openat(AT_FDCWD, "out.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
1.5 openat(AT_FDCWD, "/etc/shadow", O_RDONLY) = 3
1.55 openat(AT_FDCWD, "/lib/nope.so", O_RDONLY) = -1 ENOENT (No such file or directory)
1.6 clone(child_stack=NULL, flags=SIGCHLD) = 12
1.9 +++ exited with 0 +++"#),
        );
        t.insert(
            12,
            ev(r#"1.7 execve("/usr/bin/cat", ["cat", "/etc/passwd"], 0x1 /* 1 vars */) = 0
1.75 connect(3, {sa_family=AF_INET, sin_port=htons(4444), sin_addr=inet_addr("10.0.0.1")}, 16) = -1 ECONNREFUSED (Connection refused)
1.76 connect(4, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.1")}, 16) = 0
1.77 sendmmsg(4, [{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x03com\x00\x00\x01\x00\x01", iov_len=26}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=26}], 1, MSG_NOSIGNAL) = 1
1.8 unlinkat(AT_FDCWD, "/tmp/s.sh", 0) = 0
1.81 openat(AT_FDCWD, "/home/user/.config", O_RDONLY|O_DIRECTORY) = 5
1.82 mkdirat(5, "evil", 0777) = 0
1.85 +++ exited with 0 +++"#),
        );
        let r = build(&t, "/tmp/s.sh", "/home/user", 3);
        assert!(r.started);
        let b = &r.behavior;
        assert_eq!(b.processes.len(), 2);
        assert_eq!(b.processes[0]["pid"], 11);
        assert_eq!(b.processes[0]["calls"].as_array().unwrap().len(), 3);
        assert_eq!(b.processes[0]["calls_truncated"], true);
        assert_eq!(b.processes[1]["ppid"], 11);
        assert_eq!(b.processes[1]["command_line"], "cat /etc/passwd");
        assert_eq!(b.processtree[0]["children"][0]["pid"], 12);
        let s = &b.summary;
        assert_eq!(s["write_files"], vec![json!("/home/user/out.txt")]);
        assert!(s["read_files"].contains(&json!("/etc/shadow")));
        assert!(!s["files"].contains(&json!("/lib/nope.so")));
        assert_eq!(s["connects_ip"], vec![json!("10.0.0.1")]);
        assert_eq!(s["resolves_host"], vec![json!("evil.com")]);
        assert_eq!(s["delete_files"], vec![json!("/tmp/s.sh")]);
        assert_eq!(
            s["directory_created"],
            vec![json!("/home/user/.config/evil")]
        );
        assert!(s["executed_commands"].contains(&json!("cat /etc/passwd")));
        assert_eq!(r.writers["/home/user/out.txt"], BTreeSet::from([11]));
        assert_eq!(b.anomaly.len(), 2);
    }
}
