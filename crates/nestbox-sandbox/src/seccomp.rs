//! The seccomp deny-list applied to everything inside the sandbox.
//!
//! A deny-list, not an allow-list: samples are arbitrary programs (interpreters, shells,
//! static binaries) and an allow-list that breaks them hides behaviour. What is denied is
//! what a sample never needs and what could reach the host kernel's privileged surface or
//! the tracer: mounts, kernel modules, kexec, BPF, keyrings, ptrace (anti-debugging and
//! attacks on the tracer), namespace changes, perf, userfaultfd, swap, reboot, clock
//! setting, raw I/O ports. Denied calls fail with `EPERM`, as on a hardened machine, so a
//! sample sees an ordinary error rather than being killed.
//!
//! The filter is compiled with `seccompiler` (pure Rust) and handed to bubblewrap as raw
//! `struct sock_filter` bytes (`--seccomp FD`), which installs it after `no_new_privs`,
//! right before the sample's `execve`.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// System calls the sample may never make (names as in the kernel's syscall table).
pub const DENIED: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "perf_event_open",
    "userfaultfd",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "syslog",
    "iopl",
    "ioperm",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "lookup_dcookie",
    "chroot",
];

/// The syscall number of `name` on x86-64, for the names in [`DENIED`].
fn nr(name: &str) -> Option<i64> {
    Some(match name {
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "move_mount" => libc::SYS_move_mount,
        "open_tree" => libc::SYS_open_tree,
        "fsopen" => libc::SYS_fsopen,
        "fsconfig" => libc::SYS_fsconfig,
        "fsmount" => libc::SYS_fsmount,
        "fspick" => libc::SYS_fspick,
        "mount_setattr" => libc::SYS_mount_setattr,
        "kexec_load" => libc::SYS_kexec_load,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "bpf" => libc::SYS_bpf,
        "ptrace" => libc::SYS_ptrace,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "keyctl" => libc::SYS_keyctl,
        "add_key" => libc::SYS_add_key,
        "request_key" => libc::SYS_request_key,
        "unshare" => libc::SYS_unshare,
        "setns" => libc::SYS_setns,
        "perf_event_open" => libc::SYS_perf_event_open,
        "userfaultfd" => libc::SYS_userfaultfd,
        "swapon" => libc::SYS_swapon,
        "swapoff" => libc::SYS_swapoff,
        "reboot" => libc::SYS_reboot,
        "acct" => libc::SYS_acct,
        "syslog" => libc::SYS_syslog,
        "iopl" => libc::SYS_iopl,
        "ioperm" => libc::SYS_ioperm,
        "quotactl" => libc::SYS_quotactl,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        "fanotify_init" => libc::SYS_fanotify_init,
        "settimeofday" => libc::SYS_settimeofday,
        "clock_settime" => libc::SYS_clock_settime,
        "clock_adjtime" => libc::SYS_clock_adjtime,
        "adjtimex" => libc::SYS_adjtimex,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        "chroot" => libc::SYS_chroot,
        _ => return None,
    })
}

/// What the filter does with `ptrace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ptrace {
    /// No ptrace tracer: refused with `EPERM` like the rest of the deny-list (the eBPF
    /// tracer still records the attempt, from the call's exit).
    Denied,
    /// A ptrace tracer (native or strace) is attached: `SECCOMP_RET_TRACE`, because an
    /// `ERRNO` action outranks the tracer's own `SECCOMP_RET_TRACE` and the call would
    /// vanish from the trace, hiding anti-debugging (`PTRACE_TRACEME`) and injection
    /// attempts. It still cannot succeed: every process in the sandbox is already traced
    /// (followed from its first instruction), so `PTRACE_TRACEME`/`PTRACE_ATTACH` fail
    /// with `EPERM`, and the sandbox's pid namespace shows nothing else. Without a tracer
    /// `RET_TRACE` fails with `ENOSYS`.
    Traced,
}

/// The deny-list as a BPF program in the byte layout bubblewrap reads from `--seccomp FD`
/// (an array of native-endian `struct sock_filter`).
pub fn filter_bytes(ptrace: Ptrace) -> Result<Vec<u8>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| format!("seccomp: unsupported architecture: {e}"))?;
    if std::env::consts::ARCH != "x86_64" {
        return Err("seccomp: the deny-list is only defined for x86_64".to_owned());
    }
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = DENIED
        .iter()
        .filter(|n| ptrace == Ptrace::Denied || **n != "ptrace")
        .filter_map(|n| nr(n))
        .map(|n| (n, Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let mut prog: BpfProgram = filter.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    if ptrace == Ptrace::Traced {
        prog = ptrace_traced_first(prog);
    }
    let mut out = Vec::with_capacity(prog.len() * 8);
    for ins in prog {
        out.extend_from_slice(&ins.code.to_ne_bytes());
        out.push(ins.jt);
        out.push(ins.jf);
        out.extend_from_slice(&ins.k.to_ne_bytes());
    }
    Ok(out)
}

/// Prepends `if (nr == ptrace) return SECCOMP_RET_TRACE` to a program whose first three
/// instructions are seccompiler's architecture check (load arch, compare, kill), keeping
/// the check first.
fn ptrace_traced_first(prog: BpfProgram) -> BpfProgram {
    use seccompiler::sock_filter;
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
    let (head, tail) = prog.split_at(3.min(prog.len()));
    let mut out = head.to_vec();
    out.extend([
        // Load the syscall number (offset 0 of struct seccomp_data).
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: BPF_JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_ptrace as u32,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_TRACE,
        },
    ]);
    out.extend_from_slice(tail);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_denied_name_has_a_number_and_the_filter_compiles() {
        for n in super::DENIED {
            assert!(super::nr(n).is_some(), "{n}");
        }
        use super::Ptrace;
        let bytes = super::filter_bytes(Ptrace::Denied).unwrap();
        let traced = super::filter_bytes(Ptrace::Traced).unwrap();
        assert_ne!(bytes, traced);
        assert!(bytes.len() >= 8 * super::DENIED.len());
        assert_eq!(bytes.len() % 8, 0);
    }
}
