//! The tracer's kernel programs, written with [`super::asm`].
//!
//! A thread is traced when its id is in the `traced` hash map; the value is the run it
//! belongs to, so concurrent detonations share one set of programs. The forked child puts
//! itself in the map just before `execve`; `sched_process_fork` adds every thread and
//! process a traced one creates, `sched_process_exit` takes them out. Every record goes
//! to one ring buffer, starting with a 16-byte header (kind, run, tid, one more word):
//!
//! - `CAPTURE` (word: length) at 16 the user address, at 24 the bytes, copied in the
//!   kernel at the call: the strings, socket addresses and structures the decoder reads.
//!   A call's captures come before its `ENTER`.
//! - `ENTER` (word: the process id): at 16 the number, 24..72 the six arguments, 72 the
//!   time.
//! - `EXIT`: at 16 the number, 24 the result, 32 the time.
//! - `GONE` (word: whether the whole process ended): at 16 the time, at 24 the process id.
//! - `FORK` (word: the child),
//!   `SIGNAL` (word: a signal delivered with its default action), `EXEC` (a thread other
//!   than the leader exec'd and took the leader's id; tid: the new id, word: the old):
//!   at 16 the time.
//! - `FILENAME`: laid out as `CAPTURE`, the path an exec ran, as the kernel copied it.
//! - `LATE_ENTER`: laid out as `ENTER`, sent at the exit of a `ptrace` call: the sandbox's
//!   seccomp filter refuses `ptrace`, and a refused call never reaches the entry
//!   tracepoint, so its arguments are taken from the thread's registers at the exit.
//! - `NEW_STACK`: at 16 the address of `argv` on the stack of the image an `execve` just
//!   started (its own copy of the arguments, mapped: the old memory is gone).
//!
//! A string whose page was not mapped yet at the call (`bpf_probe_read_user` cannot fault
//! pages in) is read again at the call's exit, after the kernel itself faulted it in; its
//! address waits in the `retry` map.
//!
//! Only the recorded system calls ([`super::super::filter::TRACED`]) leave the kernel; a
//! record that does not fit in the ring buffer is counted in the `lost` map.

use super::asm::{
    Asm, Cond, FP, Insn, Label, R0, R1, R2, R3, R4, R6, R7, R8, R9, Reg, Size, helper,
};
use crate::tracer::filter::TRACED;

pub const ENTER: u32 = 1;
pub const CAPTURE: u32 = 2;
pub const EXIT: u32 = 3;
pub const FORK: u32 = 4;
pub const GONE: u32 = 5;
pub const SIGNAL: u32 = 6;
pub const EXEC: u32 = 7;
pub const FILENAME: u32 = 8;
pub const NEW_STACK: u32 = 9;
pub const LATE_ENTER: u32 = 10;

/// `bpf_ringbuf_output` flags: no wake-up for this record; a wake-up even if the reader
/// is behind (the default wakes it only when it has read everything before).
const BPF_RB_NO_WAKEUP: i32 = 1;
const BPF_RB_FORCE_WAKEUP: i32 = 2;
/// The per-CPU scratch buffer the captures are built in.
pub const SCRATCH: u32 = 8192;
/// Longest path copied (the decoder's `MAX_PATH`); strings get the decoder's `MAX_STR`.
/// Two bytes more are read so a cut string can be told from one that fits exactly.
const PATH: i32 = 4096 + 2;
const STRING: i32 = 256 + 2;
/// `offsetof(struct pt_regs, …)` on x86-64 (the user-visible register layout): the stack
/// pointer and the six system call arguments (rdi, rsi, rdx, r10, r8, r9).
const PT_REGS_SP: i16 = 19 * 8;
const PT_REGS_ARGS: [i16; 6] = [14 * 8, 13 * 8, 12 * 8, 7 * 8, 9 * 8, 8 * 8];
/// Pointers of `argv` copied (with their strings); the rest show as cut.
const ARGV_ITEMS: i32 = 16;
/// Entries of an `mmsghdr` array copied.
const MMSG_ITEMS: i32 = 2;

/// The maps the programs use.
#[derive(Clone, Copy)]
pub struct Maps {
    pub traced: i32,
    pub retry: i32,
    pub ring: i32,
    pub scratch: i32,
    pub lost: i32,
}

/// Tracepoint field offsets of the running kernel.
pub struct Fields {
    pub enter_id: i16,
    pub enter_args: i16,
    pub exit_id: i16,
    pub exit_ret: i16,
    pub fork_parent: i16,
    pub fork_child: i16,
    pub exit_group_dead: i16,
    pub signal_sig: i16,
    pub signal_handler: i16,
    pub exec_pid: i16,
    pub exec_old_pid: i16,
    pub exec_filename: i16,
}

/// Where a captured argument's address comes from.
#[derive(Clone, Copy)]
enum Src {
    /// The call's argument `i`.
    Arg(i16),
    /// A 64-bit stack slot.
    Slot(i16),
}

/// How many bytes to capture.
#[derive(Clone, Copy)]
enum Len {
    Fixed(i32),
    /// The call's argument `i`, at most the bound.
    Arg(i16, i32),
    /// A 64-bit stack slot, at most the bound.
    Slot(i16, i32),
}

/// What to capture for one argument of a call.
#[derive(Clone, Copy)]
enum Capture {
    /// A NUL-terminated string of at most this many bytes.
    Str(i16, i32),
    /// Bytes.
    Buf(i16, Len),
    /// A NULL-terminated array of string pointers.
    Argv(i16),
    /// A `struct msghdr`, its socket address and first `iovec`.
    Msghdr(i16),
    /// `struct mmsghdr[count]`: the array at argument `.0`, the count in argument `.1`.
    Mmsg(i16, i16),
}

/// The captures a recorded call gets: what [`crate::tracer::decode`] reads from memory.
fn captures(api: &str) -> Vec<Capture> {
    use Capture::*;
    let path = |i| Str(i, PATH);
    match api {
        "execve" => vec![path(0), Argv(1), Buf(2, Len::Fixed(512))],
        "execveat" => vec![path(1), Argv(2), Buf(3, Len::Fixed(512))],
        "clone3" => vec![Buf(0, Len::Fixed(40))],
        "bind" | "connect" => vec![Buf(1, Len::Arg(2, 128))],
        "sendto" => vec![Buf(1, Len::Arg(2, 256)), Buf(4, Len::Arg(5, 128))],
        "sendmsg" => vec![Msghdr(1)],
        "sendmmsg" => vec![Mmsg(1, 2)],
        "open" | "creat" | "unlink" | "rmdir" | "chdir" | "mkdir" | "chmod" | "truncate" => {
            vec![path(0)]
        }
        "openat" | "unlinkat" | "mkdirat" | "fchmodat" | "fchmodat2" => vec![path(1)],
        "openat2" => vec![path(1), Buf(2, Len::Fixed(24))],
        "rename" | "link" | "symlink" => vec![path(0), path(1)],
        "renameat" | "renameat2" | "linkat" => vec![path(1), path(3)],
        "symlinkat" => vec![path(0), path(2)],
        "utimensat" => vec![path(1), Buf(2, Len::Fixed(32))],
        "memfd_create" => vec![Str(0, STRING)],
        // PR_SET_NAME's name (for other options the read fails harmlessly).
        "prctl" => vec![Str(1, STRING)],
        _ => vec![],
    }
}

// Stack slots.
const KEY_TID: i16 = -4;
const KEY_ZERO: i16 = -8;
const RUN: i16 = -12;
const SLOT_A: i16 = -24;
const SLOT_B: i16 = -32;
const SLOT_C: i16 = -40;
const SLOT_D: i16 = -48;
const SLOT_E: i16 = -56;
/// Addresses of the call's strings that could not be read (`retry` map value).
const RETRY0: i16 = -72;
const RETRY1: i16 = -64;
/// The thread's `pid_tgid` (process id in the upper half).
const PID_TGID: i16 = -80;
const RECORD: i16 = -120;

struct Gen<'a> {
    a: Asm,
    maps: Maps,
    f: &'a Fields,
}

impl Gen<'_> {
    fn arg(&self, i: i16) -> i16 {
        self.f.enter_args + 8 * i
    }

    /// `r0 = map[*(fp + key)]` (NULL when absent).
    fn lookup(&mut self, map: i32, key: i16) {
        let a = &mut self.a;
        a.load_map(R1, map);
        a.mov(R2, FP);
        a.add_imm(R2, i32::from(key));
        a.call(helper::MAP_LOOKUP_ELEM);
    }

    /// `map[*(fp + key)] = *(fp + value)`.
    fn update(&mut self, map: i32, key: i16, value: i16) {
        let a = &mut self.a;
        a.load_map(R1, map);
        a.mov(R2, FP);
        a.add_imm(R2, i32::from(key));
        a.mov(R3, FP);
        a.add_imm(R3, i32::from(value));
        a.mov_imm(R4, 0);
        a.call(helper::MAP_UPDATE_ELEM);
    }

    /// Removes `map[*(fp + key)]`.
    fn delete(&mut self, map: i32, key: i16) {
        let a = &mut self.a;
        a.load_map(R1, map);
        a.mov(R2, FP);
        a.add_imm(R2, i32::from(key));
        a.call(helper::MAP_DELETE_ELEM);
    }

    /// `RUN` = the run of the thread whose id is at `key`; out unless it is traced.
    fn run_of(&mut self, key: i16, out: Label) {
        self.lookup(self.maps.traced, key);
        self.a.jump_if(Cond::Eq, R0, 0, out);
        self.a.load(Size::W, R1, R0, 0);
        self.a.store(Size::W, FP, RUN, R1);
    }

    /// A 24-byte record on the stack: the header with `word` (a register), and the time.
    fn event(&mut self, kind: u32, word: Reg, wake: bool) {
        self.header(FP, RECORD, kind);
        self.a.store(Size::W, FP, RECORD + 12, word);
        self.a.call(helper::KTIME_GET_NS);
        self.a.store(Size::DW, FP, RECORD + 16, R0);
        self.output_stack(24, wake);
    }

    /// `r6` = context, `r8` = thread id, `RUN` = its run; out unless traced.
    fn prologue(&mut self, out: Label) {
        let a = &mut self.a;
        a.mov(R6, R1);
        a.call(helper::GET_CURRENT_PID_TGID);
        a.store(Size::DW, FP, PID_TGID, R0);
        a.mov32(R8, R0);
        a.store(Size::W, FP, KEY_TID, R8);
        a.store_imm(Size::W, FP, KEY_ZERO, 0);
        self.run_of(KEY_TID, out);
    }

    /// The 16-byte header at `base + off`.
    fn header(&mut self, base: Reg, off: i16, kind: u32) {
        let a = &mut self.a;
        a.store_imm(Size::W, base, off, kind as i32);
        a.load(Size::W, R1, FP, RUN);
        a.store(Size::W, base, off + 4, R1);
        a.store(Size::W, base, off + 8, R8);
        if base == FP {
            // Stack bytes must all be written before they are sent (a capture has its
            // length there already).
            a.store_imm(Size::W, base, off + 12, 0);
        }
    }

    /// Sends `r3` bytes at `base + off` to the ring buffer, counting a failure. Only
    /// `wake` records wake the reader (a thread's end: the run may be over); the rest
    /// wait for its next look, so a busy sample is not slowed by a wake-up per call.
    fn output(&mut self, base: Reg, off: i16, wake: bool) {
        let done = self.a.label();
        let a = &mut self.a;
        a.load_map(R1, self.maps.ring);
        a.mov(R2, base);
        a.add_imm(R2, i32::from(off));
        a.mov_imm(
            R4,
            if wake {
                BPF_RB_FORCE_WAKEUP
            } else {
                BPF_RB_NO_WAKEUP
            },
        );
        a.call(helper::RINGBUF_OUTPUT);
        a.jump_if(Cond::Eq, R0, 0, done);
        self.lookup(self.maps.lost, KEY_ZERO);
        let a = &mut self.a;
        a.jump_if(Cond::Eq, R0, 0, done);
        a.mov_imm(R1, 1);
        a.atomic_add(R0, 0, R1);
        a.bind(done);
    }

    /// A small record built on the stack at `RECORD`, `len` bytes.
    fn output_stack(&mut self, len: i32, wake: bool) {
        self.a.mov_imm(R3, len);
        self.output(FP, RECORD, wake);
    }

    fn load_src(&mut self, dst: Reg, src: Src) {
        match src {
            Src::Arg(i) => {
                let off = self.arg(i);
                self.a.load(Size::DW, dst, R6, off);
            }
            Src::Slot(s) => self.a.load(Size::DW, dst, FP, s),
        }
    }

    /// A NUL-terminated string at `src` into a `CAPTURE` record.
    /// A string that cannot be read now has its address kept in `retry` (a stack slot).
    fn capture_str(&mut self, src: Src, max: i32, retry: Option<i16>) {
        let skip = self.a.label();
        let failed = self.a.label();
        self.load_src(R3, src);
        self.a.jump_if(Cond::Eq, R3, 0, skip);
        self.a.store(Size::DW, R9, 16, R3);
        self.string_record(helper::PROBE_READ_USER_STR, max, CAPTURE, failed);
        self.a.jump(skip);
        self.a.bind(failed);
        if let Some(slot) = retry {
            self.a.load(Size::DW, R1, R9, 16);
            self.a.store(Size::DW, FP, slot, R1);
        }
        self.a.bind(skip);
    }

    /// Copies the string at `r3` (with `read`, a `probe_read_*_str` helper) after the
    /// header in the scratch buffer, whose address word is set, and sends it as a `kind`
    /// record; to `failed` when nothing could be read.
    fn string_record(&mut self, read: i32, max: i32, kind: u32, failed: Label) {
        let a = &mut self.a;
        a.mov(R1, R9);
        a.add_imm(R1, 24);
        a.mov_imm(R2, max);
        a.call(read);
        a.jump_if(Cond::Sle, R0, 0, failed);
        a.jump_if(Cond::Gt, R0, max, failed);
        a.store(Size::W, R9, 12, R0);
        a.mov(R3, R0);
        a.add_imm(R3, 24);
        self.header(R9, 0, kind);
        self.output(R9, 0, false);
    }

    /// Bytes at `src` into a `CAPTURE` record; jumps to `failed` when none could be read.
    fn capture_buf(&mut self, src: Src, len: Len, failed: Label) {
        self.load_src(R3, src);
        self.a.jump_if(Cond::Eq, R3, 0, failed);
        self.a.store(Size::DW, R9, 16, R3);
        let max = match len {
            Len::Fixed(n) => {
                self.a.mov_imm(R2, n);
                n
            }
            Len::Arg(i, max) => {
                let off = self.arg(i);
                self.a.load(Size::DW, R2, R6, off);
                self.bound_r2(max, failed);
                max
            }
            Len::Slot(s, max) => {
                self.a.load(Size::DW, R2, FP, s);
                self.bound_r2(max, failed);
                max
            }
        };
        let a = &mut self.a;
        a.store(Size::W, R9, 12, R2);
        a.mov(R1, R9);
        a.add_imm(R1, 24);
        a.call(helper::PROBE_READ_USER);
        a.jump_if(Cond::Ne, R0, 0, failed);
        // Read back from memory: bounded again for the verifier.
        a.load(Size::W, R3, R9, 12);
        a.jump_if(Cond::Gt, R3, max, failed);
        a.add_imm(R3, 24);
        self.header(R9, 0, CAPTURE);
        self.output(R9, 0, false);
    }

    /// `r2 = min(r2, max)`, to `failed` when zero.
    fn bound_r2(&mut self, max: i32, failed: Label) {
        let fits = self.a.label();
        self.a.jump_if(Cond::Eq, R2, 0, failed);
        self.a.jump_if(Cond::Le, R2, max, fits);
        self.a.mov_imm(R2, max);
        self.a.bind(fits);
    }

    /// One argument's capture; `retry`: the slot a string's address waits in when its
    /// page is not mapped yet.
    fn capture(&mut self, c: Capture, retry: Option<i16>) {
        let end = self.a.label();
        match c {
            Capture::Str(i, max) => self.capture_str(Src::Arg(i), max, retry),
            Capture::Buf(i, len) => self.capture_buf(Src::Arg(i), len, end),
            Capture::Argv(i) => {
                self.load_src(R1, Src::Arg(i));
                self.a.store(Size::DW, FP, SLOT_A, R1);
                self.argv(end);
            }
            Capture::Msghdr(i) => {
                self.load_src(R1, Src::Arg(i));
                self.a.store(Size::DW, FP, SLOT_A, R1);
                self.msghdr(56, end);
            }
            Capture::Mmsg(i, count) => {
                for m in 0..MMSG_ITEMS {
                    let off = self.arg(count);
                    self.a.load(Size::DW, R1, R6, off);
                    self.a.jump_if(Cond::Le, R1, m, end);
                    self.load_src(R1, Src::Arg(i));
                    self.a.add_imm(R1, 64 * m);
                    self.a.store(Size::DW, FP, SLOT_A, R1);
                    let next = self.a.label();
                    self.msghdr(64, next);
                    self.a.bind(next);
                }
            }
        }
        self.a.bind(end);
    }

    /// The pointer array at `SLOT_A` and its strings, up to [`ARGV_ITEMS`].
    fn argv(&mut self, end: Label) {
        for k in 0..ARGV_ITEMS {
            self.a.load(Size::DW, R1, FP, SLOT_A);
            self.a.add_imm(R1, 8 * k);
            self.a.store(Size::DW, FP, SLOT_B, R1);
            self.capture_buf(Src::Slot(SLOT_B), Len::Fixed(8), end);
            self.a.load(Size::DW, R1, R9, 24);
            self.a.jump_if(Cond::Eq, R1, 0, end);
            self.a.store(Size::DW, FP, SLOT_B, R1);
            self.capture_str(Src::Slot(SLOT_B), STRING, None);
        }
    }

    /// `r9` = the per-CPU scratch buffer; to `out` if it cannot be had.
    fn scratch(&mut self, out: Label) {
        self.lookup(self.maps.scratch, KEY_ZERO);
        self.a.jump_if(Cond::Eq, R0, 0, out);
        self.a.mov(R9, R0);
    }

    /// The `struct msghdr` (`size` bytes: 64 with an mmsghdr's `msg_len`) at `SLOT_A`.
    fn msghdr(&mut self, size: i32, end: Label) {
        self.capture_buf(Src::Slot(SLOT_A), Len::Fixed(size), end);
        let a = &mut self.a;
        // msg_name, msg_namelen, msg_iov.
        a.load(Size::DW, R1, R9, 24);
        a.store(Size::DW, FP, SLOT_C, R1);
        a.load(Size::W, R1, R9, 24 + 8);
        a.store(Size::DW, FP, SLOT_D, R1);
        a.load(Size::DW, R1, R9, 24 + 16);
        a.store(Size::DW, FP, SLOT_E, R1);
        let iov = self.a.label();
        self.capture_buf(Src::Slot(SLOT_C), Len::Slot(SLOT_D, 128), iov);
        self.a.bind(iov);
        self.capture_buf(Src::Slot(SLOT_E), Len::Fixed(16), end);
        let a = &mut self.a;
        a.load(Size::DW, R1, R9, 24);
        a.store(Size::DW, FP, SLOT_C, R1);
        a.load(Size::DW, R1, R9, 24 + 8);
        a.store(Size::DW, FP, SLOT_D, R1);
        self.capture_buf(Src::Slot(SLOT_C), Len::Slot(SLOT_D, 256), end);
    }

    fn ret0(&mut self) {
        self.a.mov_imm(R0, 0);
        self.a.exit();
    }

    fn finish(self) -> Result<Vec<Insn>, String> {
        self.a.finish()
    }
}

fn generator(maps: Maps, f: &Fields) -> Gen<'_> {
    Gen {
        a: Asm::default(),
        maps,
        f,
    }
}

/// A program: `body` writes it, jumping to the label it gets to return.
fn program(
    maps: Maps,
    f: &Fields,
    body: impl FnOnce(&mut Gen<'_>, Label),
) -> Result<Vec<Insn>, String> {
    let mut g = generator(maps, f);
    let out = g.a.label();
    body(&mut g, out);
    g.a.bind(out);
    g.ret0();
    g.finish()
}

/// `raw_syscalls:sys_enter`: a recorded call's captures, then its `ENTER`.
pub fn enter(maps: Maps, f: &Fields) -> Result<Vec<Insn>, String> {
    program(maps, f, |g, out| {
        let record = g.a.label();
        g.prologue(out);
        g.a.load(Size::DW, R7, R6, f.enter_id);
        g.scratch(out);
        let mut blocks = Vec::new();
        for (nr, api) in TRACED {
            let c = captures(api);
            if c.is_empty() {
                g.a.jump_if(Cond::Eq, R7, *nr as i32, record);
            } else {
                let l = g.a.label();
                g.a.jump_if(Cond::Eq, R7, *nr as i32, l);
                blocks.push((l, c));
            }
        }
        g.a.jump(out);
        let stash = g.a.label();
        for (l, cs) in blocks {
            g.a.bind(l);
            g.a.store_imm(Size::DW, FP, RETRY0, 0);
            g.a.store_imm(Size::DW, FP, RETRY1, 0);
            let mut slots = [RETRY0, RETRY1].into_iter();
            for c in cs {
                let retry = matches!(c, Capture::Str(..))
                    .then(|| slots.next())
                    .flatten();
                g.capture(c, retry);
            }
            g.a.jump(stash);
        }
        // Strings that could not be read wait for the call's exit.
        g.a.bind(stash);
        g.a.load(Size::DW, R1, FP, RETRY0);
        g.a.load(Size::DW, R2, FP, RETRY1);
        let keep = g.a.label();
        g.a.jump_if(Cond::Ne, R1, 0, keep);
        g.a.jump_if(Cond::Eq, R2, 0, record);
        g.a.bind(keep);
        g.update(maps.retry, KEY_TID, RETRY0);
        g.a.bind(record);
        g.header(R9, 0, ENTER);
        g.a.load(Size::W, R1, FP, PID_TGID + 4);
        g.a.store(Size::W, R9, 12, R1);
        g.a.store(Size::DW, R9, 16, R7);
        for i in 0..6 {
            let off = g.arg(i);
            g.a.load(Size::DW, R1, R6, off);
            g.a.store(Size::DW, R9, 24 + 8 * i, R1);
        }
        g.a.call(helper::KTIME_GET_NS);
        g.a.store(Size::DW, R9, 72, R0);
        g.a.mov_imm(R3, 80);
        g.output(R9, 0, false);
    })
}

/// `raw_syscalls:sys_exit`: the strings the call's entry could not read, the new
/// image's `argv` after an `execve`, then the call's `EXIT`.
pub fn exit(maps: Maps, f: &Fields) -> Result<Vec<Insn>, String> {
    program(maps, f, |g, out| {
        let record = g.a.label();
        let recorded = g.a.label();
        g.prologue(out);
        g.a.load(Size::DW, R7, R6, f.exit_id);
        for (nr, _) in TRACED {
            g.a.jump_if(Cond::Eq, R7, *nr as i32, recorded);
        }
        g.a.jump(out);
        g.a.bind(recorded);
        g.scratch(record);
        let not_ptrace = g.a.label();
        g.a.jump_if(Cond::Ne, R7, libc::SYS_ptrace as i32, not_ptrace);
        g.a.call(helper::GET_CURRENT_TASK_BTF);
        g.a.mov(R1, R0);
        g.a.call(helper::TASK_PT_REGS);
        g.header(R9, 0, LATE_ENTER);
        g.a.store(Size::DW, R9, 16, R7);
        for (i, off) in PT_REGS_ARGS.iter().enumerate() {
            g.a.load(Size::DW, R1, R0, *off);
            g.a.store(Size::DW, R9, 24 + 8 * i as i16, R1);
        }
        g.a.call(helper::KTIME_GET_NS);
        g.a.store(Size::DW, R9, 72, R0);
        g.a.mov_imm(R3, 80);
        g.output(R9, 0, false);
        g.a.bind(not_ptrace);
        let exec = g.a.label();
        g.lookup(maps.retry, KEY_TID);
        g.a.jump_if(Cond::Eq, R0, 0, exec);
        g.a.load(Size::DW, R1, R0, 0);
        g.a.store(Size::DW, FP, RETRY0, R1);
        g.a.load(Size::DW, R1, R0, 8);
        g.a.store(Size::DW, FP, RETRY1, R1);
        g.delete(maps.retry, KEY_TID);
        // After an exec the addresses belong to the memory that is gone.
        g.a.jump_if(Cond::Eq, R7, libc::SYS_execve as i32, exec);
        g.a.jump_if(Cond::Eq, R7, libc::SYS_execveat as i32, exec);
        g.capture_str(Src::Slot(RETRY0), PATH, None);
        g.capture_str(Src::Slot(RETRY1), PATH, None);
        g.a.bind(exec);
        let new_image = g.a.label();
        g.a.jump_if(Cond::Eq, R7, libc::SYS_execve as i32, new_image);
        g.a.jump_if(Cond::Ne, R7, libc::SYS_execveat as i32, record);
        g.a.bind(new_image);
        g.a.load(Size::DW, R1, R6, f.exit_ret);
        g.a.jump_if(Cond::Ne, R1, 0, record);
        // The new image's stack: argc at the user stack pointer, then argv.
        g.a.call(helper::GET_CURRENT_TASK_BTF);
        g.a.mov(R1, R0);
        g.a.call(helper::TASK_PT_REGS);
        g.a.load(Size::DW, R1, R0, PT_REGS_SP);
        g.a.add_imm(R1, 8);
        g.a.store(Size::DW, FP, SLOT_A, R1);
        g.header(FP, RECORD, NEW_STACK);
        g.a.load(Size::DW, R1, FP, SLOT_A);
        g.a.store(Size::DW, FP, RECORD + 16, R1);
        g.output_stack(24, false);
        g.argv(record);
        g.a.bind(record);
        g.header(FP, RECORD, EXIT);
        g.a.store(Size::DW, FP, RECORD + 16, R7);
        g.a.load(Size::DW, R1, R6, f.exit_ret);
        g.a.store(Size::DW, FP, RECORD + 24, R1);
        g.a.call(helper::KTIME_GET_NS);
        g.a.store(Size::DW, FP, RECORD + 32, R0);
        g.output_stack(40, false);
    })
}

/// `sched:sched_process_fork`: a traced thread's new thread or process is traced in the
/// same run (`FORK`).
pub fn fork(maps: Maps, f: &Fields) -> Result<Vec<Insn>, String> {
    program(maps, f, |g, out| {
        g.a.mov(R6, R1);
        g.a.load(Size::W, R8, R6, f.fork_parent);
        g.a.store(Size::W, FP, KEY_TID, R8);
        g.a.store_imm(Size::W, FP, KEY_ZERO, 0);
        g.run_of(KEY_TID, out);
        g.a.load(Size::W, R7, R6, f.fork_child);
        g.a.store(Size::W, FP, SLOT_A, R7);
        g.update(maps.traced, SLOT_A, RUN);
        g.event(FORK, R7, false);
    })
}

/// `sched:sched_process_exit`: a traced thread ended (`GONE`); it leaves the map, so a
/// reused id is not traced by mistake.
pub fn gone(maps: Maps, f: &Fields) -> Result<Vec<Insn>, String> {
    program(maps, f, |g, out| {
        g.prologue(out);
        g.a.load(Size::B, R7, R6, f.exit_group_dead);
        g.header(FP, RECORD, GONE);
        g.a.store(Size::W, FP, RECORD + 12, R7);
        g.a.call(helper::KTIME_GET_NS);
        g.a.store(Size::DW, FP, RECORD + 16, R0);
        g.a.load(Size::W, R1, FP, PID_TGID + 4);
        g.a.store(Size::DW, FP, RECORD + 24, R1);
        g.output_stack(32, true);
        g.delete(maps.traced, KEY_TID);
        g.delete(maps.retry, KEY_TID);
    })
}

/// `signal:signal_deliver`: a signal a traced thread takes with its default action (the
/// one that kills it, when it dies of it: `SIGNAL`).
pub fn signal(maps: Maps, f: &Fields) -> Result<Vec<Insn>, String> {
    program(maps, f, |g, out| {
        g.prologue(out);
        g.a.load(Size::DW, R1, R6, f.signal_handler);
        g.a.jump_if(Cond::Ne, R1, 0, out);
        g.a.load(Size::W, R7, R6, f.signal_sig);
        g.event(SIGNAL, R7, false);
    })
}

/// `sched:sched_process_exec`: the path the kernel ran (`FILENAME`); and when a thread
/// other than the leader execs, it takes the leader's id (whose own end already took that
/// id out of the map): the new id is traced in the old one's run, the old one leaves the
/// map (`EXEC`).
pub fn exec(maps: Maps, f: &Fields) -> Result<Vec<Insn>, String> {
    program(maps, f, |g, out| {
        let filename = g.a.label();
        g.a.mov(R6, R1);
        g.a.load(Size::W, R8, R6, f.exec_pid);
        g.a.load(Size::W, R7, R6, f.exec_old_pid);
        g.a.store(Size::W, FP, SLOT_A, R7);
        g.a.store(Size::W, FP, KEY_TID, R8);
        g.a.store_imm(Size::W, FP, KEY_ZERO, 0);
        g.run_of(SLOT_A, out);
        // The leader itself: an ordinary exec.
        g.a.jump_if_reg(Cond::Eq, R7, R8, filename);
        g.update(maps.traced, KEY_TID, RUN);
        g.delete(maps.traced, SLOT_A);
        g.event(EXEC, R7, false);
        g.a.bind(filename);
        g.scratch(out);
        // `__data_loc char[] filename`: the string's offset in the record, low 16 bits.
        g.a.load(Size::W, R3, R6, f.exec_filename);
        g.a.and_imm(R3, 0xffff);
        g.a.add(R3, R6);
        g.a.store_imm(Size::DW, R9, 16, 0);
        g.string_record(helper::PROBE_READ_KERNEL_STR, PATH, FILENAME, out);
    })
}
