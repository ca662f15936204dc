//! The raw system calls the tracer makes that nix does not wrap (or wraps in a way that
//! loses information: nix's `waitpid` rejects real-time stop signals, and its restart
//! requests cannot deliver them).
#![allow(unsafe_code)]

use nix::unistd::Pid;

/// `struct ptrace_syscall_info` (linux/ptrace.h), declared here so the layout does not
/// depend on the libc crate's version.
#[repr(C)]
#[derive(Default)]
pub struct SyscallInfo {
    pub op: u8,
    _pad: u8,
    _flags: u16,
    pub arch: u32,
    _ip: u64,
    _sp: u64,
    /// entry/seccomp: nr, args[6], ret_data; exit: sval, is_error.
    pub data: [u64; 8],
}

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
pub const OP_ENTRY: u8 = 1;
pub const OP_EXIT: u8 = 2;
pub const OP_SECCOMP: u8 = 3;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

pub fn syscall_info(pid: Pid) -> Option<SyscallInfo> {
    let mut info = SyscallInfo::default();
    // SAFETY: the kernel writes at most `size_of::<SyscallInfo>()` bytes into `info`.
    let n = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            std::mem::size_of::<SyscallInfo>(),
            &raw mut info,
        )
    };
    (n > 0).then_some(info)
}

/// A ptrace restart request with an optional signal to deliver (any number, real-time
/// signals included). Fails only when the tracee is gone, which its exit then reports.
pub fn restart(req: libc::c_uint, pid: Pid, sig: i32) {
    // SAFETY: plain ptrace request; `data` carries the signal number.
    unsafe {
        libc::ptrace(
            req,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            sig as usize as *mut libc::c_void,
        );
    }
}

/// `waitpid(-1, __WALL | __WNOTHREAD)`: any stop or end of this thread's tracees and
/// children, and nobody else's. Returns (pid or -1, status).
pub fn wait_any() -> (i32, i32) {
    let mut st = 0i32;
    // SAFETY: waitpid only writes the status into `st`.
    let pid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL | libc::__WNOTHREAD) };
    (pid, st)
}
