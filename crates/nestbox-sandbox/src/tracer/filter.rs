//! The tracer's seccomp filter: `SECCOMP_RET_TRACE` for the recorded system calls,
//! `SECCOMP_RET_ALLOW` for everything else, so only recorded calls ever stop the tracee.
//!
//! The program only looks at the architecture and the syscall number, never at arguments:
//! the kernel then caches its verdict per number (`seccomp` action cache, Linux 5.11+) and
//! an unrecorded call costs nothing. Calls made through another ABI (i386 `int 0x80`, x32
//! numbers) are all traced, so switching ABI cannot hide a call (the sandbox's deny-list
//! kills i386 calls anyway).

/// The recorded calls (x86-64 numbers): what strace's `%process,%network` classes hold
/// plus the file, identity and anti-analysis calls the behaviour summary and signatures
/// read.
pub const TRACED: &[(i64, &str)] = &[
    // %process
    (libc::SYS_clone, "clone"),
    (libc::SYS_clone3, "clone3"),
    (libc::SYS_fork, "fork"),
    (libc::SYS_vfork, "vfork"),
    (libc::SYS_execve, "execve"),
    (libc::SYS_execveat, "execveat"),
    (libc::SYS_exit, "exit"),
    (libc::SYS_exit_group, "exit_group"),
    (libc::SYS_wait4, "wait4"),
    (libc::SYS_waitid, "waitid"),
    (libc::SYS_kill, "kill"),
    (libc::SYS_tkill, "tkill"),
    (libc::SYS_tgkill, "tgkill"),
    (libc::SYS_rt_sigqueueinfo, "rt_sigqueueinfo"),
    (libc::SYS_rt_tgsigqueueinfo, "rt_tgsigqueueinfo"),
    (libc::SYS_pidfd_send_signal, "pidfd_send_signal"),
    // %network
    (libc::SYS_socket, "socket"),
    (libc::SYS_socketpair, "socketpair"),
    (libc::SYS_bind, "bind"),
    (libc::SYS_listen, "listen"),
    (libc::SYS_accept, "accept"),
    (libc::SYS_accept4, "accept4"),
    (libc::SYS_connect, "connect"),
    (libc::SYS_getsockname, "getsockname"),
    (libc::SYS_getpeername, "getpeername"),
    (libc::SYS_sendto, "sendto"),
    (libc::SYS_recvfrom, "recvfrom"),
    (libc::SYS_sendmsg, "sendmsg"),
    (libc::SYS_recvmsg, "recvmsg"),
    (libc::SYS_sendmmsg, "sendmmsg"),
    (libc::SYS_recvmmsg, "recvmmsg"),
    (libc::SYS_shutdown, "shutdown"),
    (libc::SYS_setsockopt, "setsockopt"),
    (libc::SYS_getsockopt, "getsockopt"),
    // files
    (libc::SYS_open, "open"),
    (libc::SYS_openat, "openat"),
    (libc::SYS_openat2, "openat2"),
    (libc::SYS_creat, "creat"),
    (libc::SYS_unlink, "unlink"),
    (libc::SYS_unlinkat, "unlinkat"),
    (libc::SYS_rename, "rename"),
    (libc::SYS_renameat, "renameat"),
    (libc::SYS_renameat2, "renameat2"),
    (libc::SYS_mkdir, "mkdir"),
    (libc::SYS_mkdirat, "mkdirat"),
    (libc::SYS_rmdir, "rmdir"),
    (libc::SYS_chdir, "chdir"),
    (libc::SYS_fchdir, "fchdir"),
    (libc::SYS_chmod, "chmod"),
    (libc::SYS_fchmod, "fchmod"),
    (libc::SYS_fchmodat, "fchmodat"),
    (452, "fchmodat2"),
    (libc::SYS_symlink, "symlink"),
    (libc::SYS_symlinkat, "symlinkat"),
    (libc::SYS_link, "link"),
    (libc::SYS_linkat, "linkat"),
    (libc::SYS_truncate, "truncate"),
    (libc::SYS_utimensat, "utimensat"),
    (libc::SYS_memfd_create, "memfd_create"),
    (libc::SYS_dup2, "dup2"),
    (libc::SYS_dup3, "dup3"),
    // identity and anti-analysis
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_setuid, "setuid"),
    (libc::SYS_setgid, "setgid"),
    (libc::SYS_setresuid, "setresuid"),
    (libc::SYS_prctl, "prctl"),
];

/// The name of a recorded x86-64 call.
pub fn name(nr: i64) -> Option<&'static str> {
    TRACED.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s)
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program.
pub fn program() -> Vec<libc::sock_filter> {
    let n = TRACED.len();
    // Jump targets are 8-bit: the list must stay well under 255 entries.
    debug_assert!(n < 250);
    let mut p = vec![
        // seccomp_data.arch
        ins(BPF_LD_W_ABS, 0, 0, 4),
        // Another ABI: trace everything (jump to the final RET_TRACE).
        ins(BPF_JEQ_K, 0, (n + 3) as u8, AUDIT_ARCH_X86_64),
        // seccomp_data.nr
        ins(BPF_LD_W_ABS, 0, 0, 0),
        ins(BPF_JGE_K, (n + 1) as u8, 0, X32_SYSCALL_BIT),
    ];
    for (i, (nr, _)) in TRACED.iter().enumerate() {
        p.push(ins(BPF_JEQ_K, (n - i) as u8, 0, *nr as u32));
    }
    p.push(ins(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW));
    p.push(ins(BPF_RET_K, 0, 0, SECCOMP_RET_TRACE));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions the program uses.
    fn run(p: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let mut pc = 0usize;
        let mut a = 0u32;
        loop {
            let i = p[pc];
            match i.code {
                BPF_LD_W_ABS => a = if i.k == 4 { arch } else { nr },
                BPF_JEQ_K | BPF_JGE_K => {
                    let hit = if i.code == BPF_JEQ_K {
                        a == i.k
                    } else {
                        a >= i.k
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
                BPF_RET_K => return i.k,
                c => panic!("unexpected opcode {c}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn traces_exactly_the_listed_calls() {
        let p = program();
        for (nr, name) in TRACED {
            assert_eq!(
                run(&p, AUDIT_ARCH_X86_64, *nr as u32),
                SECCOMP_RET_TRACE,
                "{name}"
            );
        }
        for nr in [0u32, 1, 3, 4, 9, 39, 186, 202, 228] {
            assert_eq!(run(&p, AUDIT_ARCH_X86_64, nr), SECCOMP_RET_ALLOW, "{nr}");
        }
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 2),
            SECCOMP_RET_TRACE
        );
        assert_eq!(run(&p, 0x4000_0003, 5), SECCOMP_RET_TRACE);
        assert_eq!(name(libc::SYS_openat), Some("openat"));
        assert_eq!(name(0), None);
    }
}
