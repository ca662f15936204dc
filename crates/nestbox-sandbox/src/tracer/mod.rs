//! The native tracer: a ptrace supervisor in Rust that records the sample's system calls
//! as the same [`Event`]s the strace parser produces, so [`crate::behavior`], the
//! signatures and the report do not know which tracer ran.
//!
//! How it is fast: the traced command gets a seccomp filter ([`filter`]) that returns
//! `SECCOMP_RET_TRACE` only for the recorded calls; every other call runs at full speed
//! and never stops. A recorded call stops twice (its seccomp stop, where the arguments
//! are read with `process_vm_readv`, and its syscall-exit stop for the result);
//! `exit`/`exit_group` and refused calls stop once. Arguments are decoded in the tracer
//! ([`decode`]) with bounded reads ([`memory`]); nothing is written to disk.
//!
//! How it stays in control: one dedicated thread forks the command ([`child`]), seizes it
//! before it runs anything, and follows every fork, vfork, clone (threads too) and exec
//! (`PTRACE_O_TRACE*`); `PTRACE_O_EXITKILL` kills every tracee if the tracer thread goes
//! away. `ptrace` itself and `clone(CLONE_UNTRACED)` are refused with `EPERM` inside the
//! trace (recorded, never run), so no process can leave the trace or attach to another.
//! The thread waits with `__WALL | __WNOTHREAD`, so it only ever sees its own tracees,
//! never children of the server's other threads. It ends when no tracee is left; a
//! [`Tracing::kill_all`] from the caller (at the timeout) SIGKILLs every known tracee,
//! which always ends the loop. Memory is bounded: at most [`Limits::max_events`] events
//! are kept (the rest counted), strings are cut like strace's `-s 256`.
//!
//! Repeats: a thread making the same call with the same arguments again and again (a
//! polling loop) gets its first [`FOLD_AFTER`] successful repeats recorded; later ones
//! are counted into `apistats`/`calls_total` without waiting for their result, which halves
//! their cost. The summary cannot differ (it lists each path and address once, and the
//! call already succeeded); only their individual lines in the call log are missing.

pub mod child;
pub mod decode;
pub mod ebpf;
pub mod filter;
pub mod memory;
pub(crate) mod supervise;
mod sys;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use nix::unistd::Pid;

use crate::strace::{Call, Event};
use decode::Action;
use sys::{OP_ENTRY, OP_EXIT, OP_SECCOMP, restart, syscall_info};

/// Which tracer records behaviour (`[sandbox] tracer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TracerKind {
    /// The native ptrace tracer (this module).
    Native,
    /// `strace --seccomp-bpf -f -ff` (the fallback; needs the strace package).
    Strace,
    /// Kernel programs on the syscall tracepoints ([`ebpf`]): no stops, so syscall-heavy
    /// samples run close to full speed. Needs root, tracefs and BPF ring buffers (5.8+);
    /// the start-up probe falls back to the native tracer where they are missing.
    #[default]
    Ebpf,
}

impl TracerKind {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            TracerKind::Native => "native",
            TracerKind::Strace => "strace",
            TracerKind::Ebpf => "ebpf",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<TracerKind> {
        match s {
            "native" => Some(TracerKind::Native),
            "strace" => Some(TracerKind::Strace),
            "ebpf" => Some(TracerKind::Ebpf),
            _ => None,
        }
    }
}

/// Bounds on what one trace keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events kept over all processes; later calls are counted, not kept (process
    /// creation and exec are always kept, the tree must stay whole).
    pub max_events: usize,
    /// Run the tracer and the traced tree on one CPU (chosen round-robin per run). Every
    /// stop wakes the tracer and then the tracee; across CPUs each wake-up is an IPI, and
    /// on a virtual machine that dominates: measured on the 2-core development VM, the
    /// open-heavy benchmark runs 5× faster pinned (BENCHMARKS.md).
    pub one_cpu: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 500_000,
            one_cpu: true,
        }
    }
}

/// Pins the calling thread to one of the CPUs it may run on, the next one each call, so
/// that concurrent runs spread over the machine. Nothing happens with a single CPU or if
/// the kernel refuses.
fn pin_to_one_cpu() {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let this = Pid::from_raw(0);
    let Ok(allowed) = sched_getaffinity(this) else {
        return;
    };
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    if cpus.len() < 2 {
        return;
    }
    let cpu = cpus[NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % cpus.len()];
    let mut one = CpuSet::new();
    if one.set(cpu).is_ok() {
        let _ = sched_setaffinity(this, &one);
    }
}

/// What a finished trace holds.
#[derive(Debug, Default)]
pub struct Finished {
    /// Events per thread id (host pids), like strace's `-ff` files.
    pub traces: BTreeMap<i64, Vec<Event>>,
    /// How the command (the first process) ended.
    pub status: Option<ExitStatus>,
    /// Calls seen but not kept (over [`Limits::max_events`], or repeats folded after
    /// [`FOLD_AFTER`]), per pid and call name.
    pub unrecorded: BTreeMap<i64, BTreeMap<String, u64>>,
    /// Counters for the log.
    pub stops: u64,
    /// Problems worth a log line.
    pub notes: Vec<String>,
}

/// The record of a run: the native tracer's, or else strace's `-ff` files in `dir`.
pub fn traces_of(native: Option<Finished>, dir: &std::path::Path) -> Finished {
    native.unwrap_or_else(|| Finished {
        traces: crate::behavior::read_traces(dir, "t"),
        ..Finished::default()
    })
}

/// Adds what the tracer counted but did not keep (over [`Limits::max_events`]) to the
/// behaviour's `apistats` and `calls_total`, and the tracer's notes to the log notes.
pub fn account(t: &mut crate::behavior::Traced, f: &Finished) {
    use serde_json::{Value, json};
    t.notes
        .extend(f.notes.iter().map(|n| format!("tracer: {n}")));
    for (pid, counted) in &f.unrecorded {
        // Only processes of the sample's tree are in the behaviour.
        let Some(stats) = t
            .behavior
            .apistats
            .get_mut(&pid.to_string())
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut total = 0u64;
        for (api, n) in counted {
            let was = stats.get(api).and_then(Value::as_u64).unwrap_or(0);
            stats.insert(api.clone(), json!(was + n));
            total += n;
        }
        if let Some(p) = t.behavior.processes.iter_mut().find(|p| p["pid"] == *pid) {
            let kept = p["calls_total"]
                .as_u64()
                .unwrap_or_else(|| p["calls"].as_array().map_or(0, |c| c.len() as u64));
            p["calls_truncated"] = json!(true);
            p["calls_total"] = json!(kept + total);
        }
        t.notes.push(format!(
            "process {pid}: {total} calls were counted, not recorded (the same call more than \
             {FOLD_AFTER} times in a row, or over the trace bound of {} calls)",
            Limits::default().max_events
        ));
    }
}

/// A running trace.
pub struct Tracing {
    /// The command's pid (also its process group).
    pub root: Pid,
    live: Arc<Mutex<HashSet<i32>>>,
    done: tokio::sync::oneshot::Receiver<Finished>,
}

impl Tracing {
    /// The trace a tracer thread started: it sends the command's pid, or why it could
    /// not start it.
    fn started(
        started: &std::sync::mpsc::Receiver<Result<Pid, String>>,
        live: Arc<Mutex<HashSet<i32>>>,
        done: tokio::sync::oneshot::Receiver<Finished>,
    ) -> Result<Tracing, String> {
        let root = started
            .recv()
            .map_err(|_| "tracer: the thread ended before starting the command".to_owned())??;
        Ok(Tracing { root, live, done })
    }

    /// SIGKILL to every live tracee (the trace then ends by itself).
    pub fn kill_all(&self) {
        let pids: Vec<i32> = self
            .live
            .lock()
            .map(|l| l.iter().copied().collect())
            .unwrap_or_default();
        for p in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Waits for the end of the trace (cancel-safe: may be awaited again after a
    /// timeout).
    pub async fn finished(&mut self) -> Finished {
        (&mut self.done).await.unwrap_or_else(|_| Finished {
            notes: vec!["the tracer thread ended without a result".into()],
            ..Finished::default()
        })
    }
}

/// Starts `cmd` under the tracer of that kind (the native or the eBPF one; strace is run
/// as a command of its own).
pub fn spawn_kind(
    kind: TracerKind,
    cmd: child::Command,
    limits: Limits,
) -> Result<Tracing, String> {
    match kind {
        TracerKind::Ebpf => ebpf::spawn(cmd, limits),
        TracerKind::Native => spawn(cmd, limits),
        TracerKind::Strace => Err("tracer: strace runs as a command of its own".into()),
    }
}

/// Starts `cmd` under the tracer on a thread of its own.
pub fn spawn(cmd: child::Command, limits: Limits) -> Result<Tracing, String> {
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel::<Result<Pid, String>>(1);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let live = Arc::new(Mutex::new(HashSet::new()));
    let live2 = live.clone();
    std::thread::Builder::new()
        .name("nestbox-tracer".into())
        .spawn(move || {
            if limits.one_cpu {
                // Before the fork: the traced tree inherits the mask.
                pin_to_one_cpu();
            }
            let filter = filter::program();
            let root = match child::spawn(&cmd, child::Attach::Ptrace(&filter)) {
                Ok(p) => p,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            drop(cmd);
            if let Ok(mut l) = live2.lock() {
                l.insert(root.as_raw());
            }
            let _ = started_tx.send(Ok(root));
            let mut t = Tracer::new(root, limits, live2);
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run()));
            if run.is_err() {
                // Leaving the thread detaches (and, with EXITKILL, kills) every tracee.
                t.rec
                    .out
                    .notes
                    .push("the tracer panicked; the trace is incomplete".into());
            }
            let _ = done_tx.send(std::mem::take(&mut t.rec.out));
        })
        .map_err(|e| format!("tracer: thread: {e}"))?;
    Tracing::started(&started_rx, live, done_rx)
}

/// A recorded call waiting for its result.
struct Pending {
    key: u64,
    time: f64,
    api: String,
    args: Vec<String>,
    /// The new process of a fork/clone, as the tracer numbers it (the tracee sees its
    /// own pid namespace's number).
    child: Option<i32>,
}

#[derive(Default)]
struct Task {
    pending: Option<Pending>,
    /// The last completed call (hash of name and arguments) and whether it succeeded.
    last: Option<(u64, bool)>,
    /// How many times in a row it was made.
    repeats: u32,
}

/// Identical successful calls a thread may make in a row with full recording; later ones
/// are counted only (they cannot change the summary: its lists hold each path, address
/// and command once) and cost one stop instead of two.
pub const FOLD_AFTER: u32 = 16;

fn call_key(api: &str, args: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    api.hash(&mut h);
    args.hash(&mut h);
    h.finish()
}

/// What became of a call's entry ([`Recorder::begin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begun {
    /// Recorded; its result is awaited.
    Pending,
    /// A repeat past [`FOLD_AFTER`], or a call over the bound: counted, no result wanted.
    Counted,
    /// Recorded whole already (a call that does not return, or one refused).
    Done,
}

/// The bookkeeping both tracers share: each thread's pending call, repeat folding, the
/// event bound, and the [`Finished`] record they fill.
struct Recorder {
    limits: Limits,
    tasks: HashMap<i32, Task>,
    kept: usize,
    out: Finished,
}

/// Calls that make or replace processes: always kept whole, the tree must stay whole.
fn structural(native: bool, nr: u64) -> bool {
    native
        && matches!(
            nr as i64,
            libc::SYS_clone
                | libc::SYS_clone3
                | libc::SYS_fork
                | libc::SYS_vfork
                | libc::SYS_execve
                | libc::SYS_execveat
        )
}

/// The name a call is counted under when it is not decoded.
fn api_name(native: bool, nr: u64) -> String {
    if native {
        filter::name(nr as i64).map_or_else(|| format!("syscall_{nr:#x}"), str::to_owned)
    } else {
        format!("syscall32_{nr:#x}")
    }
}

impl Recorder {
    fn new(limits: Limits) -> Recorder {
        Recorder {
            limits,
            tasks: HashMap::new(),
            kept: 0,
            out: Finished::default(),
        }
    }

    /// Whether a call is only to be counted by name (over [`Limits::max_events`]).
    fn over_bound(&self, native: bool, nr: u64) -> bool {
        !structural(native, nr) && self.kept >= self.limits.max_events
    }

    fn is_pending(&self, pid: i32) -> bool {
        self.tasks.get(&pid).is_some_and(|t| t.pending.is_some())
    }

    /// Records a decoded call entry made at `time`.
    fn begin(&mut self, pid: i32, time: f64, e: decode::Entry, structural: bool) -> Begun {
        let key = call_key(&e.api, &e.args);
        if e.action == Action::Run
            && !structural
            && let Some(t) = self.tasks.get(&pid)
            && t.last == Some((key, true))
            && t.repeats >= FOLD_AFTER
        {
            self.count(pid, e.api);
            return Begun::Counted;
        }
        let pending = Pending {
            key,
            time,
            api: e.api,
            args: e.args,
            child: None,
        };
        match e.action {
            Action::Run => {
                self.tasks.entry(pid).or_default().pending = Some(pending);
                Begun::Pending
            }
            Action::NoReturn => {
                self.push(pid, pending, "?".into(), None);
                Begun::Done
            }
            Action::Deny(errno) => {
                self.push(
                    pid,
                    pending,
                    "-1".into(),
                    Some(decode::errno_name(i64::from(errno))),
                );
                Begun::Done
            }
        }
    }

    /// Notes the new process a pending fork/clone made.
    fn forked(&mut self, pid: i32, child: i32) {
        if let Some(p) = self.tasks.get_mut(&pid).and_then(|t| t.pending.as_mut()) {
            p.child = Some(child);
        }
        self.tasks.entry(child).or_default();
    }

    /// Records the result of `pid`'s pending call (`rval`, negative errno when
    /// `is_error`); nothing happens when none is pending.
    fn end(&mut self, pid: i32, rval: i64, is_error: bool) {
        let Some(p) = self.tasks.get_mut(&pid).and_then(|t| t.pending.take()) else {
            return;
        };
        let (ret, errno) = if is_error {
            let e = -rval;
            let r = if decode::is_restart(e) { "?" } else { "-1" };
            (r.to_owned(), Some(decode::errno_name(e)))
        } else if let Some(c) = p.child.filter(|_| rval > 0) {
            // The tracee sees its child's pid in its own pid namespace; the trace is
            // keyed by the tracer's numbers.
            (c.to_string(), None)
        } else {
            (rval.to_string(), None)
        };
        if let Some(t) = self.tasks.get_mut(&pid) {
            let same = t.last.is_some_and(|(k, _)| k == p.key);
            t.repeats = if same { t.repeats.saturating_add(1) } else { 0 };
            t.last = Some((p.key, !is_error));
        }
        self.push(pid, p, ret, errno);
    }

    /// Keeps `pid`'s pending call without a result (its end was never seen).
    fn abandon(&mut self, pid: i32) {
        if let Some(p) = self.tasks.get_mut(&pid).and_then(|t| t.pending.take()) {
            self.push(pid, p, "?".into(), None);
        }
    }

    /// A thread ended: a call it died in is kept with result `?` (as strace prints it).
    fn gone(&mut self, pid: i32, time: f64, how: String) {
        self.abandon(pid);
        self.tasks.remove(&pid);
        self.out
            .traces
            .entry(i64::from(pid))
            .or_default()
            .push(Event::Exit { time, how });
    }

    /// A call seen but not kept.
    fn count(&mut self, pid: i32, api: String) {
        *self
            .out
            .unrecorded
            .entry(i64::from(pid))
            .or_default()
            .entry(api)
            .or_default() += 1;
    }

    fn push(&mut self, pid: i32, p: Pending, ret: String, errno: Option<String>) {
        self.kept += 1;
        self.out
            .traces
            .entry(i64::from(pid))
            .or_default()
            .push(Event::Call(Call {
                time: p.time,
                api: p.api,
                args: p.args,
                ret,
                errno,
            }));
    }
}

/// The ptrace tracer's state.
struct Tracer {
    root: Pid,
    rec: Recorder,
    live: Arc<Mutex<HashSet<i32>>>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn event_msg(pid: Pid) -> Option<i64> {
    nix::sys::ptrace::getevent(pid).ok()
}

/// How a waited-for process ended, as the trace records it.
fn end_of(st: i32) -> String {
    if libc::WIFSIGNALED(st) {
        format!(
            "killed by {}{}",
            decode::signal(libc::WTERMSIG(st) as u64),
            if libc::WCOREDUMP(st) {
                " (core dumped)"
            } else {
                ""
            }
        )
    } else {
        format!("exited with {}", libc::WEXITSTATUS(st))
    }
}

impl Tracer {
    fn new(root: Pid, limits: Limits, live: Arc<Mutex<HashSet<i32>>>) -> Tracer {
        let mut rec = Recorder::new(limits);
        rec.tasks.insert(root.as_raw(), Task::default());
        Tracer { root, rec, live }
    }

    fn run(&mut self) {
        loop {
            let (pid, st) = sys::wait_any();
            if pid < 0 {
                match nix::errno::Errno::last() {
                    nix::errno::Errno::EINTR => continue,
                    nix::errno::Errno::ECHILD => break,
                    e => {
                        self.rec.out.notes.push(format!("tracer: waitpid: {e}"));
                        break;
                    }
                }
            }
            let pid = Pid::from_raw(pid);
            if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
                self.gone(pid, st);
            } else if libc::WIFSTOPPED(st) {
                self.rec.out.stops += 1;
                self.rec.tasks.entry(pid.as_raw()).or_insert_with(|| {
                    if let Ok(mut l) = self.live.lock() {
                        l.insert(pid.as_raw());
                    }
                    Task::default()
                });
                let sig = libc::WSTOPSIG(st);
                let event = st >> 16;
                if sig == libc::SIGTRAP | 0x80 {
                    self.syscall_stop(pid);
                } else if event != 0 {
                    self.event_stop(pid, event, sig);
                } else {
                    // Signal-delivery stop: deliver the signal as it was meant.
                    self.resume(pid, sig);
                }
            }
        }
        // Tracees that never reported an end (the loop only ends with none left, so this
        // is only ever a waitpid failure).
        let left: Vec<i32> = self.rec.tasks.keys().copied().collect();
        for p in left {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Restarts a tracee: to its syscall-exit stop if a call is pending, else freely.
    fn resume(&self, pid: Pid, sig: i32) {
        let req = if self.rec.is_pending(pid.as_raw()) {
            libc::PTRACE_SYSCALL
        } else {
            libc::PTRACE_CONT
        };
        restart(req, pid, sig);
    }

    fn gone(&mut self, pid: Pid, status: i32) {
        self.rec.gone(pid.as_raw(), now(), end_of(status));
        if let Ok(mut l) = self.live.lock() {
            l.remove(&pid.as_raw());
        }
        if pid == self.root {
            self.rec.out.status = Some(ExitStatus::from_raw(status));
        }
    }

    fn event_stop(&mut self, pid: Pid, event: i32, sig: i32) {
        match event {
            libc::PTRACE_EVENT_SECCOMP => self.seccomp_stop(pid),
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Some(child) = event_msg(pid).and_then(|c| i32::try_from(c).ok()) {
                    self.rec.forked(pid.as_raw(), child);
                    if let Ok(mut l) = self.live.lock() {
                        l.insert(child);
                    }
                }
                self.resume(pid, 0);
            }
            libc::PTRACE_EVENT_EXEC => {
                // A thread other than the leader exec'd: it now has the leader's pid.
                if let Some(former) = event_msg(pid).and_then(|c| i32::try_from(c).ok())
                    && former != pid.as_raw()
                {
                    let moved = self.rec.tasks.remove(&former).and_then(|t| t.pending);
                    if let Ok(mut l) = self.live.lock() {
                        l.remove(&former);
                    }
                    self.rec.tasks.entry(pid.as_raw()).or_default().pending = moved;
                }
                self.resume(pid, 0);
            }
            128 /* PTRACE_EVENT_STOP */ => {
                if matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) {
                    // Group-stop: stay stopped (as without a tracer) but keep reporting.
                    restart(libc::PTRACE_LISTEN, pid, 0);
                } else {
                    self.resume(pid, 0);
                }
            }
            _ => self.resume(pid, 0),
        }
    }

    fn seccomp_stop(&mut self, pid: Pid) {
        let Some(info) = syscall_info(pid).filter(|i| i.op == OP_SECCOMP) else {
            self.resume(pid, 0);
            return;
        };
        let time = now();
        let nr = info.data[0];
        let mut args = [0u64; 6];
        args.copy_from_slice(&info.data[1..7]);
        let native = info.arch == sys::AUDIT_ARCH_X86_64;
        if self.rec.over_bound(native, nr) {
            // Over the bound: counted by name only, and no exit stop; refusals still hold.
            self.rec.count(pid.as_raw(), api_name(native, nr));
            if native && nr as i64 == libc::SYS_ptrace {
                deny(pid, libc::EPERM);
            }
            restart(libc::PTRACE_CONT, pid, 0);
            return;
        }
        let e = decode::entry(&memory::Live(pid), native, nr, args);
        let action = e.action;
        match self
            .rec
            .begin(pid.as_raw(), time, e, structural(native, nr))
        {
            Begun::Pending => restart(libc::PTRACE_SYSCALL, pid, 0),
            Begun::Counted => restart(libc::PTRACE_CONT, pid, 0),
            Begun::Done => {
                if let Action::Deny(errno) = action {
                    deny(pid, errno);
                }
                restart(libc::PTRACE_CONT, pid, 0);
            }
        }
    }

    fn syscall_stop(&mut self, pid: Pid) {
        match syscall_info(pid) {
            Some(i) if i.op == OP_EXIT => {
                self.rec
                    .end(pid.as_raw(), i.data[0] as i64, i.data[1] & 0xff != 0)
            }
            // The exit stop of the pending call was lost (should not happen): keep the
            // call without a result.
            Some(i) if i.op == OP_ENTRY => self.rec.abandon(pid.as_raw()),
            _ => {}
        }
        restart(libc::PTRACE_CONT, pid, 0);
    }
}

/// Skips the call at a seccomp stop and makes it return `-errno`.
fn deny(pid: Pid, errno: i32) {
    if let Ok(mut regs) = nix::sys::ptrace::getregs(pid) {
        regs.orig_rax = u64::MAX;
        regs.rax = (-i64::from(errno)) as u64;
        let _ = nix::sys::ptrace::setregs(pid, regs);
    }
}

#[cfg(test)]
mod tests;
