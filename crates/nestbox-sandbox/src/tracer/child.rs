//! Starting the traced command: `fork` from the tracer thread, `PTRACE_SEIZE` before the
//! child runs anything of its own, then the seccomp filter and `execve` in the child.
//!
//! `std::process::Command` cannot be used: its `spawn` waits until the child has called
//! `execve`, but the child must not call `execve` before it is traced (a call that meets
//! `SECCOMP_RET_TRACE` with no tracer fails with `ENOSYS`). So the child waits on a pipe
//! until the tracer has seized it. Between `fork` and `execve` the child only makes raw
//! system calls (no allocation, no locks): everything it needs is prepared before the fork.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::unistd::Pid;

/// What to run.
pub struct Command {
    /// Path of the program (not searched in `PATH`).
    pub program: String,
    /// `argv`, `argv[0]` included.
    pub args: Vec<String>,
    /// The whole environment (`KEY=value`).
    pub env: Vec<String>,
    /// Standard output and error (standard input is `/dev/null`).
    pub output: File,
    /// Set-up the child does before its seccomp filter and `execve` (cgroup, fd 3,
    /// network namespace, uid and limits), untraced.
    pub entry: Option<std::sync::Arc<crate::launch::Entry>>,
}

/// The ptrace options every tracee gets (inherited by auto-attached children).
pub const OPTIONS: i32 = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_EXITKILL;

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("tracer: a NUL byte in {s:?}"))
}

/// How the child comes under the tracer.
#[derive(Clone, Copy)]
pub enum Attach<'a> {
    /// Seized by the forking thread; the seccomp filter makes the recorded calls stop.
    Ptrace(&'a [libc::sock_filter]),
    /// The child puts its own id in the eBPF tracer's `traced` map as its last act before
    /// `execve` (its set-up is not recorded, as with ptrace, and no call after is missed).
    Bpf {
        /// The `traced` map's fd.
        traced_map: i32,
        /// The run the child's records belong to.
        run: u32,
    },
}

/// Forks, attaches and releases the child; returns its pid. Must run on the tracer thread
/// (ptrace ties a tracee to the thread that seized it; the child's parent-death signal is
/// tied to it too).
pub fn spawn(cmd: &Command, attach: Attach<'_>) -> Result<Pid, String> {
    let filter: &[libc::sock_filter] = match attach {
        Attach::Ptrace(f) => f,
        Attach::Bpf { .. } => &[],
    };
    let program = cstring(&cmd.program)?;
    let args: Vec<CString> = cmd
        .args
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = cmd
        .env
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| "tracer: filter too long".to_owned())?,
        filter: filter.as_ptr().cast_mut(),
    };
    let null = File::open("/dev/null").map_err(|e| format!("tracer: /dev/null: {e}"))?;
    let (sync_r, sync_w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("tracer: pipe: {e}"))?;
    let out = cmd.output.as_raw_fd();
    let (null_fd, r_fd, w_fd) = (null.as_raw_fd(), sync_r.as_raw_fd(), sync_w.as_raw_fd());

    // SAFETY: the child branch below only makes async-signal-safe raw system calls on
    // memory prepared before the fork, and always ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("tracer: fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; every pointer is to memory owned by this (copied) frame.
        unsafe {
            libc::close(w_fd);
            libc::setpgid(0, 0);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            // The tracer thread gone means nobody may run this chain untraced.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::dup2(null_fd, 0) < 0 || libc::dup2(out, 1) < 0 || libc::dup2(out, 2) < 0 {
                libc::_exit(125);
            }
            let mut b = 0u8;
            if libc::read(r_fd, (&raw mut b).cast(), 1) != 1 {
                libc::_exit(125);
            }
            if let Some(entry) = &cmd.entry
                && entry.apply().is_err()
            {
                libc::_exit(125);
            }
            // A root tracer would let setuid programs run with their owner's rights under
            // ptrace; with no_new_privs no traced process ever gains privileges by exec.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(126);
            }
            match attach {
                Attach::Ptrace(_) => {
                    if libc::syscall(libc::SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, &prog) != 0 {
                        libc::_exit(126);
                    }
                }
                Attach::Bpf { traced_map, run } => {
                    // This process's id in the initial pid namespace (the server's).
                    let me = libc::getpid() as u32;
                    let elem = super::ebpf::Elem::new(
                        traced_map,
                        (&raw const me).cast(),
                        (&raw const run).cast(),
                    );
                    if super::ebpf::update_raw(&elem) < 0 {
                        libc::_exit(126);
                    }
                }
            }
            libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    drop(sync_r);
    let child = Pid::from_raw(pid);
    // SAFETY: plain ptrace request on our own child.
    let rc = if matches!(attach, Attach::Bpf { .. }) {
        0
    } else {
        unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                OPTIONS as usize as *mut libc::c_void,
            )
        }
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(format!("tracer: PTRACE_SEIZE: {e}"));
    }
    let go = nix::unistd::write(&sync_w, &[1u8]);
    drop(sync_w);
    drop(null);
    if let Err(e) = go {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        return Err(format!("tracer: releasing the child: {e}"));
    }
    Ok(child)
}
