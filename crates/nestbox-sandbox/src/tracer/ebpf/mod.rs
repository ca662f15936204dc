//! The eBPF tracer: kernel programs record the sample's system calls into a ring buffer
//! and nothing ever stops. Same [`Event`]s and [`Finished`] as the ptrace tracer, from the
//! same decoder, so nothing downstream knows which one ran.
//!
//! Why: a ptrace stop costs ~11 µs on the development VM (two context switches through
//! the hypervisor), so a sample making a recorded call every few µs ran 5× slower traced.
//! Here a recorded call costs a map lookup, its argument copies and a ring-buffer write in
//! the calling thread (1.3× on the same sample, BENCHMARKS.md).
//!
//! How: programs on `raw_syscalls:sys_enter/sys_exit` ([`progs`]) copy what the decoder
//! needs (paths, `argv`, socket addresses, …) at the call, so the decoder reads captured
//! bytes ([`Captured`]) instead of the live process. One set of programs serves every
//! run: the `traced` map says which run a thread belongs to, and one thread drains the
//! ring buffer and hands each run its records. The traced command puts itself in the map
//! between its set-up and `execve` ([`child::Attach::Bpf`]); its descendants follow by
//! `sched_process_fork`.
//!
//! What ptrace did that this does not: refuse `ptrace` and `CLONE_UNTRACED` (nothing can
//! leave this trace: it follows the kernel's fork, not a tracer's attach, so those calls
//! simply run and are recorded), and read memory past the copied bounds (16 `argv`
//! entries, two `mmsghdr`s, the first `iovec`).

mod asm;
mod bpf;
mod progs;
mod ring;

pub(super) use bpf::{Elem, update_raw};

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::unistd::Pid;

use super::memory::Memory;
use super::{Begun, Limits, Recorder, Tracing, child, decode, structural};

/// Size of the shared ring buffer.
const RING: u32 = 16 << 20;
/// Threads traced at once over all runs.
const MAX_TRACED: u32 = 65_536;

/// Where a run's records go: a bounded queue (a sample making calls faster than they are
/// decoded must not grow the server's memory), and what did not fit in it.
struct Route {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

/// Records queued per run before more are dropped (and counted).
const QUEUE: usize = 1 << 16;

/// The loaded programs and maps, shared by every run.
struct Shared {
    traced: OwnedFd,
    lost: OwnedFd,
    routes: Arc<Mutex<HashMap<u32, Route>>>,
    next_run: std::sync::atomic::AtomicU32,
    /// Closing these detaches the programs.
    _attached: Vec<OwnedFd>,
}

static SHARED: OnceLock<Result<Arc<Shared>, String>> = OnceLock::new();

/// Loads and attaches the programs once (the first call), or says why it cannot.
fn shared() -> Result<Arc<Shared>, String> {
    SHARED.get_or_init(|| load().map(Arc::new)).clone()
}

/// Whether the eBPF tracer can run here, and why not.
pub fn available() -> Result<(), String> {
    shared().map(|_| ())
}

/// Host thread ids must be what the kernel programs see: the server must be in the initial
/// pid namespace (one number on its `NSpid` line).
fn in_initial_pid_namespace() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|v| v.split_whitespace().count() == 1)
        })
        .unwrap_or(false)
}

fn load() -> Result<Shared, String> {
    if !in_initial_pid_namespace() {
        return Err("ebpf tracer: the server runs in a nested pid namespace".into());
    }
    bpf::mount_tracefs()?;
    let field = bpf::field_offset;
    let f = progs::Fields {
        enter_id: field("raw_syscalls/sys_enter", "id")?,
        enter_args: field("raw_syscalls/sys_enter", "args")?,
        exit_id: field("raw_syscalls/sys_exit", "id")?,
        exit_ret: field("raw_syscalls/sys_exit", "ret")?,
        fork_parent: field("sched/sched_process_fork", "parent_pid")?,
        fork_child: field("sched/sched_process_fork", "child_pid")?,
        exit_group_dead: field("sched/sched_process_exit", "group_dead")?,
        signal_sig: field("signal/signal_deliver", "sig")?,
        signal_handler: field("signal/signal_deliver", "sa_handler")?,
        exec_pid: field("sched/sched_process_exec", "pid")?,
        exec_old_pid: field("sched/sched_process_exec", "old_pid")?,
        exec_filename: field("sched/sched_process_exec", "filename")?,
    };
    let traced = bpf::map_create(bpf::MAP_HASH, 4, 4, MAX_TRACED)?;
    let retry = bpf::map_create(bpf::MAP_HASH, 4, 16, MAX_TRACED)?;
    let ring = bpf::map_create(bpf::MAP_RINGBUF, 0, 0, RING)?;
    let scratch = bpf::map_create(bpf::MAP_PERCPU_ARRAY, 4, progs::SCRATCH, 1)?;
    let lost = bpf::map_create(bpf::MAP_ARRAY, 4, 8, 1)?;
    let maps = progs::Maps {
        traced: traced.as_raw_fd(),
        retry: retry.as_raw_fd(),
        ring: ring.as_raw_fd(),
        scratch: scratch.as_raw_fd(),
        lost: lost.as_raw_fd(),
    };
    type Build = fn(progs::Maps, &progs::Fields) -> Result<Vec<asm::Insn>, String>;
    let programs: [(&str, Build); 6] = [
        ("raw_syscalls/sys_enter", progs::enter),
        ("raw_syscalls/sys_exit", progs::exit),
        ("sched/sched_process_fork", progs::fork),
        ("sched/sched_process_exit", progs::gone),
        ("signal/signal_deliver", progs::signal),
        ("sched/sched_process_exec", progs::exec),
    ];
    let mut attached = Vec::new();
    for (event, build) in programs {
        let prog = bpf::prog_load(event, &build(maps, &f)?)?;
        attached.push(bpf::attach(event, &prog)?);
    }
    let mut ring = ring::Ring::new(ring, u64::from(RING))?;
    let routes: Arc<Mutex<HashMap<u32, Route>>> = Arc::default();
    let shared = Shared {
        traced,
        lost,
        routes: routes.clone(),
        next_run: std::sync::atomic::AtomicU32::new(1),
        _attached: attached,
    };
    // These maps are held by the programs that use them.
    drop((scratch, retry));
    std::thread::Builder::new()
        .name("nestbox-ebpf".into())
        .spawn(move || {
            let mut busy = false;
            loop {
                // Records do not wake this thread (a thread's end does): while runs are
                // traced it looks every few milliseconds.
                ring.wait(if busy { 5 } else { 200 });
                let Ok(routes) = routes.lock() else { return };
                busy = !routes.is_empty();
                ring.drain(|rec| {
                    if let Some(route) = run_of(rec).and_then(|r| routes.get(&r))
                        && let Err(TrySendError::Full(_)) = route.tx.try_send(rec.to_vec())
                    {
                        route.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        })
        .map_err(|e| format!("ebpf tracer: thread: {e}"))?;
    Ok(shared)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn run_of(rec: &[u8]) -> Option<u32> {
    u32_at(rec, 4)
}

/// Memory as the kernel programs copied it at the call.
#[derive(Default)]
pub struct Captured(Vec<(u64, Vec<u8>)>);

impl Captured {
    fn at(&self, addr: u64) -> Option<&[u8]> {
        self.0.iter().find_map(|(start, bytes)| {
            let off = addr.checked_sub(*start)?;
            bytes
                .get(usize::try_from(off).ok()?..)
                .filter(|b| !b.is_empty())
        })
    }
}

impl Memory for Captured {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        if addr == 0 || len == 0 {
            return None;
        }
        let b = self.at(addr)?;
        Some(b[..len.min(b.len())].to_vec())
    }

    fn cstring(&self, addr: u64, max: usize) -> Option<(Vec<u8>, bool)> {
        if addr == 0 {
            return None;
        }
        let b = self.at(addr)?;
        Some(match b.iter().position(|&c| c == 0) {
            Some(end) => (b[..end.min(max)].to_vec(), end > max),
            // Copied up to its bound without an end: longer than what was kept.
            None => (b[..b.len().min(max)].to_vec(), true),
        })
    }
}

/// Starts `cmd` traced by the kernel programs, on a thread of its own.
pub fn spawn(cmd: child::Command, limits: Limits) -> Result<Tracing, String> {
    let shared = shared()?;
    let run = shared.next_run.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let route = Route {
        tx,
        dropped: dropped.clone(),
    };
    shared
        .routes
        .lock()
        .map_err(|_| "ebpf tracer: poisoned")?
        .insert(run, route);
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel::<Result<Pid, String>>(1);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let live = Arc::new(Mutex::new(HashSet::new()));
    let live2 = live.clone();
    let shared2 = shared.clone();
    let thread = std::thread::Builder::new()
        .name("nestbox-tracer".into())
        .spawn(move || {
            let attach = child::Attach::Bpf {
                traced_map: shared2.traced.as_raw_fd(),
                run,
            };
            let root = match child::spawn(&cmd, attach) {
                Ok(p) => p,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    unroute(&shared2, run);
                    return;
                }
            };
            drop(cmd);
            // Before the caller hears of the start: its `kill_all` must find the command.
            let mut t = Run::new(root, limits, live2);
            let _ = started_tx.send(Ok(root));
            let lost_before = lost(&shared2);
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.follow(&rx)));
            unroute(&shared2, run);
            if ran.is_err() {
                t.rec
                    .out
                    .notes
                    .push("the tracer panicked; the trace is incomplete".into());
            }
            let lost = lost(&shared2).saturating_sub(lost_before);
            if lost > 0 {
                t.rec.out.notes.push(format!(
                    "{lost} kernel records did not fit in the ring buffer while this ran \
                     (shared by concurrent runs): some calls are missing"
                ));
            }
            let dropped = dropped.load(Ordering::Relaxed);
            if dropped > 0 {
                t.rec.out.notes.push(format!(
                    "{dropped} records came faster than they were decoded and were dropped: \
                     some calls are missing"
                ));
            }
            t.finish();
            let _ = done_tx.send(std::mem::take(&mut t.rec.out));
        });
    if let Err(e) = thread {
        unroute(&shared, run);
        return Err(format!("tracer: thread: {e}"));
    }
    Tracing::started(&started_rx, live, done_rx)
}

fn unroute(shared: &Shared, run: u32) {
    if let Ok(mut r) = shared.routes.lock() {
        r.remove(&run);
    }
}

/// Records lost so far (over all runs).
fn lost(shared: &Shared) -> u64 {
    bpf::map_lookup(shared.lost.as_raw_fd(), &0u32).unwrap_or(0)
}

/// Signals whose default action ends the process.
fn fatal_by_default(sig: u32) -> bool {
    !matches!(
        sig as i32,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// A call between its entry and its exit: decoded at the exit, when the strings the entry
/// could not read have been read again.
struct Entered {
    nr: u64,
    args: [u64; 6],
    time: f64,
    memory: Captured,
    /// `execve`: the path the kernel ran, and `argv` on the new image's stack.
    filename: Option<Vec<u8>>,
    new_argv: Option<u64>,
    /// The thread or process a fork/clone made (host id).
    child: Option<i32>,
}

/// One traced run, fed by its records.
struct Run {
    root: Pid,
    rec: Recorder,
    /// Threads forked and not seen ending (shared with [`Tracing::kill_all`]).
    live: Arc<Mutex<HashSet<i32>>>,
    /// Captures of each thread's next call, and the call awaiting its exit.
    captured: HashMap<i32, Captured>,
    entered: HashMap<i32, Entered>,
    /// `exit`/`exit_group` codes and fatal signals seen, per thread; `exit_group` codes
    /// per process (its other threads end with it).
    exit_code: HashMap<i32, u64>,
    group_exit: HashMap<u32, u64>,
    signal: HashMap<i32, u32>,
    /// Wall-clock seconds at monotonic zero.
    epoch: f64,
    /// Threads found gone from the system while still running here: ended after one more
    /// quiet interval if no record says so.
    missing: HashSet<i32>,
    /// The command's wait status, once reaped.
    status: Option<i32>,
}

impl Run {
    fn new(root: Pid, limits: Limits, live: Arc<Mutex<HashSet<i32>>>) -> Run {
        if let Ok(mut l) = live.lock() {
            l.insert(root.as_raw());
        }
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
            .unwrap_or(0.0);
        Run {
            root,
            rec: Recorder::new(limits),
            live,
            captured: HashMap::new(),
            entered: HashMap::new(),
            exit_code: HashMap::new(),
            group_exit: HashMap::new(),
            signal: HashMap::new(),
            epoch: super::now() - mono,
            missing: HashSet::new(),
            status: None,
        }
    }

    fn time(&self, ns: u64) -> f64 {
        self.epoch + ns as f64 / 1e9
    }

    /// Takes records until every traced thread has ended.
    fn follow(&mut self, rx: &Receiver<Vec<u8>>) {
        while self.live.lock().is_ok_and(|l| !l.is_empty()) {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(rec) => self.record(&rec),
                Err(RecvTimeoutError::Timeout) => self.check_running(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Every quiet interval: threads that no longer exist end after one more interval
    /// even if their `GONE` record was lost; and the command is checked for stops. A
    /// command that called `PTRACE_TRACEME` made this thread its tracer: each stop is
    /// let go at once with its signal, as if no tracer were there.
    fn check_running(&mut self) {
        if self.status.is_none() {
            let mut st = 0i32;
            // SAFETY: waitpid only writes the status into `st`.
            #[allow(unsafe_code)]
            let r =
                unsafe { libc::waitpid(self.root.as_raw(), &mut st, libc::WNOHANG | libc::__WALL) };
            if r == self.root.as_raw() {
                if libc::WIFSTOPPED(st) {
                    let sig = libc::WSTOPSIG(st);
                    let deliver = if sig == libc::SIGTRAP { 0 } else { sig };
                    super::sys::restart(libc::PTRACE_DETACH, self.root, deliver);
                } else {
                    self.status = Some(st);
                }
            }
        }
        let running: Vec<i32> = self
            .live
            .lock()
            .map(|l| l.iter().copied().collect())
            .unwrap_or_default();
        let gone: Vec<i32> = running
            .into_iter()
            .filter(|&p| {
                (p != self.root.as_raw() || self.status.is_some())
                    && nix::sys::signal::kill(Pid::from_raw(p), None)
                        == Err(nix::errno::Errno::ESRCH)
            })
            .collect();
        for p in gone {
            if !self.missing.insert(p) {
                self.end_thread(p, super::now(), "ended (not seen)".into());
            }
        }
    }

    fn record(&mut self, rec: &[u8]) {
        let (Some(kind), Some(tid), Some(word)) = (u32_at(rec, 0), u32_at(rec, 8), u32_at(rec, 12))
        else {
            return;
        };
        let tid = tid as i32;
        let bytes = || rec.get(24..24 + word as usize).map(<[u8]>::to_vec);
        match kind {
            progs::CAPTURE => {
                if let (Some(addr), Some(bytes)) = (u64_at(rec, 16), bytes()) {
                    // Between entry and exit: a string read again at the exit.
                    let memory = match self.entered.get_mut(&tid) {
                        Some(e) => &mut e.memory,
                        None => self.captured.entry(tid).or_default(),
                    };
                    memory.0.push((addr, bytes));
                }
            }
            progs::FILENAME => {
                if let Some(e) = self.entered.get_mut(&tid) {
                    e.filename = bytes();
                }
            }
            progs::NEW_STACK => {
                if let Some(e) = self.entered.get_mut(&tid) {
                    e.new_argv = u64_at(rec, 16);
                }
            }
            progs::ENTER => self.enter(tid, rec),
            // A call seccomp refused never reached the entry tracepoint: its arguments
            // come with its exit (only when the entry was not seen).
            progs::LATE_ENTER if !self.entered.contains_key(&tid) => self.enter(tid, rec),
            progs::EXIT => {
                if let (Some(ret), Some(e)) = (u64_at(rec, 24), self.entered.remove(&tid)) {
                    let ret = ret as i64;
                    if self.begin(tid, e) == Begun::Pending {
                        self.rec.end(tid, ret, (-4095..0).contains(&ret));
                    }
                }
            }
            progs::FORK => {
                let child = word as i32;
                self.rec.forked(tid, child);
                if let Some(e) = self.entered.get_mut(&tid) {
                    e.child = Some(child);
                }
                if let Ok(mut l) = self.live.lock() {
                    l.insert(child);
                }
            }
            progs::GONE => {
                let time = self.time(u64_at(rec, 16).unwrap_or(0));
                // `word`: the whole process ended (not only this thread).
                if tid == self.root.as_raw() && word != 0 && self.status.is_none() {
                    // Our own child: its status is exact.
                    self.status = wait_status(self.root);
                }
                let how = match self.status {
                    Some(st) if tid == self.root.as_raw() && word != 0 => {
                        self.rec.out.status = Some(ExitStatus::from_raw(st));
                        super::end_of(st)
                    }
                    _ => self.how_it_ended(tid, u32_at(rec, 24)),
                };
                self.end_thread(tid, time, how);
            }
            progs::EXEC => {
                // A thread exec'd and took the leader's id: the leader's end just recorded
                // was that take-over, not the process's end (ptrace never reports it).
                let former = word as i32;
                if let Some(e) = self.entered.remove(&former) {
                    self.entered.insert(tid, e);
                }
                if let Some(ev) = self.rec.out.traces.get_mut(&i64::from(tid))
                    && matches!(ev.last(), Some(super::Event::Exit { .. }))
                {
                    ev.pop();
                }
                self.rec.tasks.remove(&former);
                if let Ok(mut l) = self.live.lock() {
                    l.remove(&former);
                    l.insert(tid);
                }
            }
            progs::SIGNAL if fatal_by_default(word) => {
                self.signal.insert(tid, word);
            }
            _ => {}
        }
    }

    fn how_it_ended(&self, tid: i32, process: Option<u32>) -> String {
        let group = process.and_then(|p| self.group_exit.get(&p));
        if let Some(code) = self.exit_code.get(&tid).or(group) {
            format!("exited with {}", code & 0xff)
        } else if let Some(sig) = self.signal.get(&tid) {
            format!("killed by {}", decode::signal(u64::from(*sig)))
        } else {
            "exited".into()
        }
    }

    fn end_thread(&mut self, tid: i32, time: f64, how: String) {
        // A call it died in is kept without a result.
        if let Some(e) = self.entered.remove(&tid) {
            let _: Begun = self.begin(tid, e);
        }
        self.rec.gone(tid, time, how);
        self.captured.remove(&tid);
        if let Ok(mut l) = self.live.lock() {
            l.remove(&tid);
        }
    }

    fn enter(&mut self, tid: i32, rec: &[u8]) {
        let memory = self.captured.remove(&tid).unwrap_or_default();
        let (Some(nr), Some(ns)) = (u64_at(rec, 16), u64_at(rec, 72)) else {
            return;
        };
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = u64_at(rec, 24 + 8 * i).unwrap_or(0);
        }
        // An entry never followed by its exit (the thread was killed in it) is kept
        // without a result.
        if let Some(e) = self.entered.remove(&tid) {
            let _: Begun = self.begin(tid, e);
            self.rec.abandon(tid);
        }
        let noreturn = matches!(nr as i64, libc::SYS_exit | libc::SYS_exit_group);
        if noreturn {
            self.exit_code.insert(tid, args[0]);
        }
        if nr as i64 == libc::SYS_exit_group
            && let Some(process) = u32_at(rec, 12)
        {
            self.group_exit.insert(process, args[0]);
        }
        if self.rec.over_bound(true, nr) {
            self.rec.count(tid, super::api_name(true, nr));
            return;
        }
        let e = Entered {
            nr,
            args,
            time: self.time(ns),
            memory,
            filename: None,
            new_argv: None,
            child: None,
        };
        if noreturn {
            let _: Begun = self.begin(tid, e);
        } else {
            self.entered.insert(tid, e);
        }
    }

    /// Decodes a call and records its entry (a folded repeat is only counted).
    fn begin(&mut self, tid: i32, e: Entered) -> Begun {
        let mut d = decode::entry(&e.memory, true, e.nr, e.args);
        // Nothing is refused here: the call runs and its real result is recorded.
        if matches!(d.action, decode::Action::Deny(_)) {
            d.action = decode::Action::Run;
        }
        let exec = matches!(e.nr as i64, libc::SYS_execve | libc::SYS_execveat);
        if exec {
            // A successful exec replaced the memory its arguments were in: the path as the
            // kernel ran it, and argv as the new image has it.
            let (path, list) = if e.nr as i64 == libc::SYS_execve {
                (0, 1)
            } else {
                (1, 2)
            };
            if let Some(f) = &e.filename
                && d.args.get(path).is_some_and(|a| !a.starts_with('"'))
            {
                let f = f.split(|&b| b == 0).next().unwrap_or_default();
                d.args[path] = decode::quote(f, false);
            }
            if let Some(at) = e.new_argv
                && d.args.get(list).is_some_and(|a| !a.starts_with("[\""))
            {
                d.args[list] = decode::argv(&e.memory, at);
            }
        }
        let begun = self.rec.begin(tid, e.time, d, structural(true, e.nr));
        if let (Begun::Pending, Some(c)) = (begun, e.child) {
            self.rec.forked(tid, c);
        }
        begun
    }

    /// Whatever is still pending stays without a result.
    fn finish(&mut self) {
        let entered: Vec<i32> = self.entered.keys().copied().collect();
        for tid in entered {
            if let Some(e) = self.entered.remove(&tid) {
                let _: Begun = self.begin(tid, e);
            }
        }
        let pending: Vec<i32> = self.rec.tasks.keys().copied().collect();
        for p in pending {
            self.rec.abandon(p);
        }
        if self.status.is_none() {
            self.status = wait_status(self.root);
        }
        if self.rec.out.status.is_none() {
            self.rec.out.status = self.status.map(ExitStatus::from_raw);
        }
    }
}

/// Feeds a stream of records (each a native-endian `u16` length and the record) through
/// the decoding a run does, as if the kernel had sent them: for fuzzing and tests. The
/// command's id is one no process has.
pub fn replay(stream: &[u8]) -> super::Finished {
    let mut run = Run::new(Pid::from_raw(i32::MAX), Limits::default(), Arc::default());
    let mut rest = stream;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_ne_bytes(*len)).min(tail.len());
        let (rec, tail) = tail.split_at(len);
        run.record(rec);
        rest = tail;
    }
    run.finish();
    std::mem::take(&mut run.rec.out)
}

/// Reaps the command (our child) and returns its raw wait status.
fn wait_status(pid: Pid) -> Option<i32> {
    let mut st = 0i32;
    loop {
        // SAFETY: waitpid only writes the status into `st`.
        #[allow(unsafe_code)]
        let r = unsafe { libc::waitpid(pid.as_raw(), &mut st, libc::__WALL) };
        if r == pid.as_raw() {
            return Some(st);
        }
        if r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
            continue;
        }
        return None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_memory_answers_like_a_process() {
        let mut m = Captured::default();
        m.0.push((0x1000, b"/etc/passwd\0".to_vec()));
        m.0.push((0x2000, 0x1000u64.to_ne_bytes().to_vec()));
        // A string copied to its bound (258 bytes, the last one the kernel's NUL).
        let mut long = vec![b'a'; 257];
        long.push(0);
        m.0.push((0x3000, long));
        assert_eq!(
            m.cstring(0x1000, 4096),
            Some((b"/etc/passwd".to_vec(), false))
        );
        assert_eq!(m.cstring(0x1005, 4096), Some((b"passwd".to_vec(), false)));
        assert_eq!(m.cstring(0x1000, 4), Some((b"/etc".to_vec(), true)));
        assert_eq!(m.word(0x2000), Some(0x1000));
        assert_eq!(m.word(0x2004), None, "only 4 bytes left: not a word");
        assert_eq!(m.read(0x2004, 8).map(|b| b.len()), Some(4));
        let (s, cut) = m.cstring(0x3000, 256).unwrap();
        assert_eq!((s.len(), cut), (256, true));
        assert_eq!(m.cstring(0x4000, 10), None);
        assert_eq!(m.read(0, 10), None);
    }

    /// A record as the kernel programs lay it out.
    fn rec(kind: u32, tid: u32, word: u32, body: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [kind, 1, tid, word] {
            r.extend_from_slice(&v.to_ne_bytes());
        }
        r.extend_from_slice(body);
        let mut framed = (r.len() as u16).to_ne_bytes().to_vec();
        framed.extend(r);
        framed
    }

    fn words(w: &[u64]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn a_recorded_stream_decodes_like_a_trace() {
        let tid = 4242;
        let mut s = Vec::new();
        let mut cap = words(&[0x1000]);
        cap.extend_from_slice(b"/etc/shadow\0");
        s.extend(rec(progs::CAPTURE, tid, 12, &cap));
        let nr = libc::SYS_openat as u64;
        s.extend(rec(
            progs::ENTER,
            tid,
            0,
            &words(&[nr, (-100i64) as u64, 0x1000, 0, 0, 0, 0, 5_000_000_000]),
        ));
        // The exit: -EACCES.
        s.extend(rec(
            progs::EXIT,
            tid,
            0,
            &words(&[nr, (-13i64) as u64, 5_000_001_000]),
        ));
        s.extend(rec(progs::SIGNAL, tid, libc::SIGSEGV as u32, &words(&[0])));
        s.extend(rec(progs::GONE, tid, 1, &words(&[5_000_002_000])));
        let f = replay(&s);
        let ev = &f.traces[&i64::from(tid)];
        let super::super::Event::Call(c) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(c.api, "openat");
        assert_eq!(c.args[..2], ["AT_FDCWD", "\"/etc/shadow\""]);
        assert_eq!((c.ret.as_str(), c.errno.as_deref()), ("-1", Some("EACCES")));
        assert!(
            matches!(&ev[1], super::super::Event::Exit { how, .. } if how == "killed by SIGSEGV"),
            "{ev:?}"
        );
    }

    /// A thread's `exit_group` ends the process's other threads with its code, as ptrace
    /// reports them (their SIGKILL is the kernel's way of ending them).
    #[test]
    fn threads_end_with_their_process_exit_code() {
        let (leader, worker) = (10u32, 11u32);
        let mut s = Vec::new();
        s.extend(rec(
            progs::ENTER,
            worker,
            leader,
            &words(&[libc::SYS_exit_group as u64, 3, 0, 0, 0, 0, 0, 1]),
        ));
        s.extend(rec(
            progs::SIGNAL,
            leader,
            libc::SIGKILL as u32,
            &words(&[0]),
        ));
        s.extend(rec(progs::GONE, leader, 0, &words(&[2, u64::from(leader)])));
        s.extend(rec(progs::GONE, worker, 1, &words(&[3, u64::from(leader)])));
        // Another process's thread killed by a signal keeps that.
        s.extend(rec(progs::SIGNAL, 20, libc::SIGKILL as u32, &words(&[0])));
        s.extend(rec(progs::GONE, 20, 1, &words(&[4, 20])));
        let f = replay(&s);
        let how = |t: u32| match f.traces[&i64::from(t)].last() {
            Some(super::super::Event::Exit { how, .. }) => how.clone(),
            e => panic!("{e:?}"),
        };
        assert_eq!(how(leader), "exited with 3");
        assert_eq!(how(worker), "exited with 3");
        assert_eq!(how(20), "killed by SIGKILL");
    }

    /// Whatever bytes arrive, decoding ends without a panic (the fuzz target
    /// `tracer_records` runs the same for longer).
    #[test]
    fn garbage_records_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut s = Vec::new();
            for _ in 0..(next() % 12) {
                let kind = (next() % 12) as u32;
                let tid = (next() % 4) as u32 + 1;
                let body: Vec<u8> = (0..next() % 100).map(|_| next() as u8).collect();
                s.extend(rec(kind, tid, (next() % 300) as u32, &body));
            }
            let _ = replay(&s);
        }
    }

    #[test]
    fn programs_assemble_for_every_recorded_call() {
        let maps = progs::Maps {
            traced: 3,
            retry: 7,
            ring: 4,
            scratch: 5,
            lost: 6,
        };
        let f = progs::Fields {
            enter_id: 8,
            enter_args: 16,
            exit_id: 8,
            exit_ret: 16,
            fork_parent: 12,
            fork_child: 20,
            exit_group_dead: 32,
            signal_sig: 8,
            signal_handler: 24,
            exec_pid: 12,
            exec_old_pid: 16,
            exec_filename: 8,
        };
        for build in [
            progs::enter,
            progs::exit,
            progs::fork,
            progs::gone,
            progs::signal,
        ] {
            let p = build(maps, &f).unwrap();
            assert!(p.len() > 10 && p.len() < 20_000, "{}", p.len());
        }
    }
}
