//! Arguments and results of the recorded calls, printed the way `strace` prints them, so
//! the events feed [`crate::behavior`] and the signatures exactly like parsed strace lines
//! (`"path"` literals, `O_WRONLY|O_CREAT`, `{sa_family=AF_INET, sin_port=htons(80), …}`,
//! `["argv0", "arg1"]`, octal modes).
//!
//! Strings are cut at [`MAX_STR`] bytes (strace's `-s 256`) and paths at `PATH_MAX`;
//! arrays at [`MAX_ITEMS`] entries; every read goes through [`memory`]'s bounded reads.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::memory::Memory;

/// Longest string argument kept (strace `-s 256`).
pub const MAX_STR: usize = 256;
/// Longest path kept.
pub const MAX_PATH: usize = 4096;
/// Most array entries printed (argv, iovecs, messages).
pub const MAX_ITEMS: usize = 256;

/// What the tracer does with a call after recording its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let it run and record its result.
    Run,
    /// Let it run; it does not return (`exit`, `exit_group`).
    NoReturn,
    /// Skip it and make it fail with this errno (calls that would let a process escape
    /// the tracer).
    Deny(i32),
}

/// One decoded call entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Syscall name.
    pub api: String,
    /// Arguments as strace prints them.
    pub args: Vec<String>,
    /// What to do with it.
    pub action: Action,
}

/// Decodes a call at its seccomp stop. `native`: the x86-64 ABI (other ABIs are recorded
/// by number only).
pub fn entry(mem: &dyn Memory, native: bool, nr: u64, a: [u64; 6]) -> Entry {
    let name = if native {
        super::filter::name(nr as i64)
    } else {
        None
    };
    let Some(api) = name else {
        let prefix = if native { "syscall" } else { "syscall32" };
        return Entry {
            api: format!("{prefix}_{nr:#x}"),
            args: a.iter().map(|v| hex(*v)).collect(),
            action: Action::Run,
        };
    };
    let m = Mem(mem);
    let mut action = Action::Run;
    let args: Vec<String> = match api {
        "execve" => vec![m.path(a[0]), m.argv(a[1]), m.envp(a[2])],
        "execveat" => vec![
            dirfd(a[0]),
            m.path(a[1]),
            m.argv(a[2]),
            m.envp(a[3]),
            flags(a[4], AT_FLAGS, "0"),
        ],
        "clone" => {
            if a[0] & CLONE_UNTRACED != 0 {
                action = Action::Deny(libc::EPERM);
            }
            vec![
                format!("child_stack={}", ptr(a[1])),
                format!("flags={}", clone_flags(a[0])),
                format!("child_tidptr={}", ptr(a[3])),
            ]
        }
        "clone3" => {
            let fl = mem.word(a[0]).unwrap_or(0);
            let exit_signal = mem.word(a[0].wrapping_add(32)).unwrap_or(0);
            // clone3's flags live in memory another thread may rewrite after this read,
            // so CLONE_UNTRACED is refused on what was read *and* the kernel's own check
            // cannot be raced: the call is skipped, not edited.
            if fl & CLONE_UNTRACED != 0 {
                action = Action::Deny(libc::EPERM);
            }
            vec![
                format!(
                    "{{flags={}, exit_signal={}}}",
                    clone_flags(fl & !0xff),
                    signal(exit_signal)
                ),
                a[1].to_string(),
            ]
        }
        "fork" | "vfork" => vec![],
        "exit" | "exit_group" => {
            action = Action::NoReturn;
            vec![int(a[0])]
        }
        "wait4" => vec![
            int(a[0]),
            ptr(a[1]),
            flags(a[2], WAIT_FLAGS, "0"),
            ptr(a[3]),
        ],
        "waitid" => vec![
            int(a[0]),
            int(a[1]),
            ptr(a[2]),
            flags(a[3], WAIT_FLAGS, "0"),
            ptr(a[4]),
        ],
        "kill" | "tkill" => vec![int(a[0]), signal(a[1])],
        "tgkill" => vec![int(a[0]), int(a[1]), signal(a[2])],
        "rt_sigqueueinfo" => vec![int(a[0]), signal(a[1]), ptr(a[2])],
        "rt_tgsigqueueinfo" => vec![int(a[0]), int(a[1]), signal(a[2]), ptr(a[3])],
        "pidfd_send_signal" => vec![fd(a[0]), signal(a[1]), ptr(a[2]), hex(a[3])],
        "socket" => vec![family(a[0]), sock_type(a[1]), protocol(a[0], a[2])],
        "socketpair" => vec![family(a[0]), sock_type(a[1]), int(a[2]), ptr(a[3])],
        "bind" | "connect" => vec![fd(a[0]), m.sockaddr(a[1], a[2]), int(a[2])],
        "listen" => vec![fd(a[0]), int(a[1])],
        "accept" | "getsockname" | "getpeername" => vec![fd(a[0]), ptr(a[1]), ptr(a[2])],
        "accept4" => vec![fd(a[0]), ptr(a[1]), ptr(a[2]), flags(a[3], SOCK_FLAGS, "0")],
        "sendto" => vec![
            fd(a[0]),
            m.buffer(a[1], a[2]),
            a[2].to_string(),
            flags(a[3], MSG_FLAGS, "0"),
            if a[4] == 0 {
                "NULL".into()
            } else {
                m.sockaddr(a[4], a[5])
            },
            int(a[5]),
        ],
        "recvfrom" => vec![
            fd(a[0]),
            ptr(a[1]),
            a[2].to_string(),
            flags(a[3], MSG_FLAGS, "0"),
            ptr(a[4]),
            ptr(a[5]),
        ],
        "sendmsg" => vec![fd(a[0]), m.msghdr(a[1]), flags(a[2], MSG_FLAGS, "0")],
        "recvmsg" => vec![fd(a[0]), ptr(a[1]), flags(a[2], MSG_FLAGS, "0")],
        "sendmmsg" => vec![
            fd(a[0]),
            m.mmsghdrs(a[1], a[2]),
            a[2].to_string(),
            flags(a[3], MSG_FLAGS, "0"),
        ],
        "recvmmsg" => vec![
            fd(a[0]),
            ptr(a[1]),
            a[2].to_string(),
            flags(a[3], MSG_FLAGS, "0"),
            ptr(a[4]),
        ],
        "shutdown" => vec![
            fd(a[0]),
            match a[1] {
                0 => "SHUT_RD".into(),
                1 => "SHUT_WR".into(),
                2 => "SHUT_RDWR".into(),
                v => int(v),
            },
        ],
        "setsockopt" | "getsockopt" => vec![
            fd(a[0]),
            if a[1] == 1 {
                "SOL_SOCKET".into()
            } else {
                int(a[1])
            },
            int(a[2]),
            ptr(a[3]),
            if api == "setsockopt" {
                int(a[4])
            } else {
                ptr(a[4])
            },
        ],
        "open" => open_args(&m, None, a[0], a[1], a[2]),
        "openat" => open_args(&m, Some(a[0]), a[1], a[2], a[3]),
        "openat2" => {
            let how = mem.read(a[2], 24).filter(|b| b.len() == 24);
            let how = match how {
                Some(b) => {
                    let w = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
                    format!(
                        "{{flags={}, mode={}, resolve={}}}",
                        open_flags(w(0)),
                        mode(w(8)),
                        hex(w(16))
                    )
                }
                None => ptr(a[2]),
            };
            vec![dirfd(a[0]), m.path(a[1]), how, a[3].to_string()]
        }
        "creat" => vec![m.path(a[0]), mode(a[1])],
        "unlink" | "rmdir" | "chdir" => vec![m.path(a[0])],
        "unlinkat" => vec![
            dirfd(a[0]),
            m.path(a[1]),
            if a[2] & 0x200 != 0 {
                "AT_REMOVEDIR".into()
            } else {
                hexz(a[2])
            },
        ],
        "rename" | "link" | "symlink" => vec![m.path(a[0]), m.path(a[1])],
        "renameat" => vec![dirfd(a[0]), m.path(a[1]), dirfd(a[2]), m.path(a[3])],
        "renameat2" => vec![
            dirfd(a[0]),
            m.path(a[1]),
            dirfd(a[2]),
            m.path(a[3]),
            flags(a[4], RENAME_FLAGS, "0"),
        ],
        "linkat" => vec![
            dirfd(a[0]),
            m.path(a[1]),
            dirfd(a[2]),
            m.path(a[3]),
            flags(a[4], AT_FLAGS, "0"),
        ],
        "symlinkat" => vec![m.path(a[0]), dirfd(a[1]), m.path(a[2])],
        "mkdir" | "chmod" => vec![m.path(a[0]), mode(a[1])],
        "mkdirat" => vec![dirfd(a[0]), m.path(a[1]), mode(a[2])],
        "fchmodat" => vec![dirfd(a[0]), m.path(a[1]), mode(a[2])],
        "fchmodat2" => vec![
            dirfd(a[0]),
            m.path(a[1]),
            mode(a[2]),
            flags(a[3], AT_FLAGS, "0"),
        ],
        "fchdir" => vec![fd(a[0])],
        "fchmod" => vec![fd(a[0]), mode(a[1])],
        "truncate" => vec![m.path(a[0]), long(a[1])],
        "utimensat" => vec![
            dirfd(a[0]),
            if a[1] == 0 {
                "NULL".into()
            } else {
                m.path(a[1])
            },
            m.timespecs(a[2]),
            flags(a[3], AT_FLAGS, "0"),
        ],
        "memfd_create" => vec![m.string(a[0]), flags(a[1], MFD_FLAGS, "0")],
        "dup2" => vec![fd(a[0]), fd(a[1])],
        "dup3" => vec![
            fd(a[0]),
            fd(a[1]),
            flags(a[2], &[(0o2000000, "O_CLOEXEC")], "0"),
        ],
        "ptrace" => {
            // Every process in the sandbox is already traced by us: no ptrace request can
            // do anything but fail, so none is let through (it is still recorded).
            action = Action::Deny(libc::EPERM);
            let req = ptrace_request(a[0]);
            if a[0] == 0 {
                vec![req]
            } else {
                vec![req, int(a[1]), ptr(a[2]), ptr(a[3])]
            }
        }
        "setuid" | "setgid" => vec![int(a[0])],
        "setresuid" => vec![int(a[0]), int(a[1]), int(a[2])],
        "prctl" => prctl_args(&m, a),
        _ => a.iter().map(|v| hex(*v)).collect(),
    };
    Entry {
        api: api.to_owned(),
        args,
        action,
    }
}

/// The errno name strace prints for a failed call (`ENOENT`), or the kernel's internal
/// restart codes.
pub fn errno_name(e: i64) -> String {
    match e {
        512 => "ERESTARTSYS".into(),
        513 => "ERESTARTNOINTR".into(),
        514 => "ERESTARTNOHAND".into(),
        516 => "ERESTART_RESTARTBLOCK".into(),
        _ => {
            let n = format!("{:?}", nix::errno::Errno::from_raw(e as i32));
            if n.starts_with('E')
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                n
            } else {
                format!("E{e}")
            }
        }
    }
}

/// Whether an error code is one of the kernel's restart codes (the call is redone; strace
/// prints its result as `?`).
pub fn is_restart(e: i64) -> bool {
    matches!(e, 512..=516)
}

/// A signal's name (`SIGKILL`), or its number.
pub fn signal(v: u64) -> String {
    let n = v as i32;
    if n == 0 {
        return "0".into();
    }
    match nix::sys::signal::Signal::try_from(n) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) => {
            format!("SIGRT_{}", n - libc::SIGRTMIN())
        }
        Err(_) => n.to_string(),
    }
}

/// A NULL-terminated array of string pointers at `addr` as strace prints it (`["a", "b"]`).
pub fn argv(mem: &dyn Memory, addr: u64) -> String {
    Mem(mem).argv(addr)
}

struct Mem<'a>(&'a dyn Memory);

impl Mem<'_> {
    fn path(&self, addr: u64) -> String {
        self.text(addr, MAX_PATH)
    }

    fn string(&self, addr: u64) -> String {
        self.text(addr, MAX_STR)
    }

    fn text(&self, addr: u64, max: usize) -> String {
        if addr == 0 {
            return "NULL".into();
        }
        match self.0.cstring(addr, max) {
            Some((b, cut)) => quote(&b, cut),
            None => hex(addr),
        }
    }

    /// `len` bytes at `addr` as a string literal, cut at [`MAX_STR`].
    fn buffer(&self, addr: u64, len: u64) -> String {
        if addr == 0 {
            return "NULL".into();
        }
        let want = (len as usize).min(MAX_STR);
        if want == 0 {
            return "\"\"".into();
        }
        match self.0.read(addr, want) {
            Some(b) => quote(&b, (len as usize) > b.len()),
            None => hex(addr),
        }
    }

    /// A NULL-terminated array of string pointers: `["a", "b"]`.
    fn argv(&self, addr: u64) -> String {
        if addr == 0 {
            return "NULL".into();
        }
        let mut out = String::from("[");
        for i in 0..=MAX_ITEMS {
            let Some(p) = self.0.word(addr.wrapping_add(8 * i as u64)) else {
                return if i == 0 { hex(addr) } else { out + "]" };
            };
            if p == 0 {
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            if i == MAX_ITEMS {
                out.push_str("...");
                break;
            }
            out.push_str(&self.string(p));
        }
        out.push(']');
        out
    }

    /// The environment pointer with its entry count, as strace prints it by default.
    fn envp(&self, addr: u64) -> String {
        if addr == 0 {
            return "NULL".into();
        }
        let mut n = 0usize;
        while n < 4096 {
            match self.0.word(addr.wrapping_add(8 * n as u64)) {
                Some(0) | None => break,
                Some(_) => n += 1,
            }
        }
        format!("{} /* {n} vars */", hex(addr))
    }

    fn sockaddr(&self, addr: u64, len: u64) -> String {
        if addr == 0 {
            return "NULL".into();
        }
        let len = (len as usize).min(128);
        match self.0.read(addr, len) {
            Some(b) if b.len() >= 2 => sockaddr(&b),
            _ => hex(addr),
        }
    }

    fn iovecs(&self, addr: u64, count: u64) -> String {
        let mut out = String::from("[");
        let mut budget = MAX_STR;
        for i in 0..(count as usize).min(MAX_ITEMS) {
            let at = addr.wrapping_add(16 * i as u64);
            let (Some(base), Some(len)) = (self.0.word(at), self.0.word(at.wrapping_add(8))) else {
                break;
            };
            if i > 0 {
                out.push_str(", ");
            }
            let shown = (len as usize).min(budget);
            let data = if shown == 0 {
                "\"\"".to_owned()
            } else {
                match self.0.read(base, shown) {
                    Some(b) => quote(&b, (len as usize) > b.len()),
                    None => hex(base),
                }
            };
            budget -= shown;
            let _ = write!(out, "{{iov_base={data}, iov_len={len}}}");
        }
        out.push(']');
        out
    }

    /// `struct msghdr` (56 bytes on x86-64).
    fn msghdr(&self, addr: u64) -> String {
        let Some(b) = self.0.read(addr, 56).filter(|b| b.len() == 56) else {
            return hex(addr);
        };
        let w = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let name = if w(0) == 0 {
            "NULL".to_owned()
        } else {
            self.sockaddr(w(0), w(8) & 0xffff_ffff)
        };
        format!(
            "{{msg_name={name}, msg_namelen={}, msg_iov={}, msg_iovlen={}, msg_controllen={}, msg_flags={}}}",
            w(8) as u32,
            self.iovecs(w(16), w(24)),
            w(24),
            w(40),
            w(48) as u32
        )
    }

    /// An array of `struct mmsghdr` (64 bytes each).
    fn mmsghdrs(&self, addr: u64, count: u64) -> String {
        let mut out = String::from("[");
        for i in 0..(count as usize).min(8) {
            if i > 0 {
                out.push_str(", ");
            }
            let at = addr.wrapping_add(64 * i as u64);
            let len = self
                .0
                .read(at.wrapping_add(56), 4)
                .and_then(|b| {
                    b.get(..4)
                        .map(|x| u32::from_ne_bytes(x.try_into().unwrap_or([0; 4])))
                })
                .unwrap_or(0);
            let _ = write!(out, "{{msg_hdr={}, msg_len={len}}}", self.msghdr(at));
        }
        out.push(']');
        out
    }

    /// utimensat's two timespecs.
    fn timespecs(&self, addr: u64) -> String {
        if addr == 0 {
            return "NULL".into();
        }
        match self.0.read(addr, 32).filter(|b| b.len() == 32) {
            Some(b) => {
                let w = |i: usize| i64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
                let one = |s: i64, ns: i64| match ns {
                    0x3fff_ffff => "UTIME_NOW".to_owned(),
                    0x3fff_fffe => "UTIME_OMIT".to_owned(),
                    _ => format!("{{tv_sec={s}, tv_nsec={ns}}}"),
                };
                format!("[{}, {}]", one(w(0), w(8)), one(w(16), w(24)))
            }
            None => hex(addr),
        }
    }
}

fn open_args(m: &Mem<'_>, dir: Option<u64>, path: u64, fl: u64, md: u64) -> Vec<String> {
    let mut v: Vec<String> = dir.map(dirfd).into_iter().collect();
    v.push(m.path(path));
    v.push(open_flags(fl));
    // The mode is only meaningful (and only printed by strace) when a file can be created.
    if fl & (libc::O_CREAT as u64) != 0 || fl & 0o20000000 != 0 {
        v.push(mode(md));
    }
    v
}

fn prctl_args(m: &Mem<'_>, a: [u64; 6]) -> Vec<String> {
    let opt = match a[0] {
        1 => "PR_SET_PDEATHSIG",
        2 => "PR_GET_PDEATHSIG",
        3 => "PR_GET_DUMPABLE",
        4 => "PR_SET_DUMPABLE",
        8 => "PR_SET_KEEPCAPS",
        15 => "PR_SET_NAME",
        16 => "PR_GET_NAME",
        22 => "PR_SET_SECCOMP",
        24 => "PR_CAPBSET_DROP",
        35 => "PR_SET_MM",
        36 => "PR_SET_CHILD_SUBREAPER",
        38 => "PR_SET_NO_NEW_PRIVS",
        0x5961_6d61 => "PR_SET_PTRACER",
        _ => return a[..5].iter().map(|v| hex(*v)).collect(),
    };
    let arg2 = match a[0] {
        1 => signal(a[1]),
        4 => match a[1] {
            0 => "SUID_DUMP_DISABLE".into(),
            1 => "SUID_DUMP_USER".into(),
            v => v.to_string(),
        },
        15 => m.string(a[1]),
        2 | 3 | 16 => return vec![opt.to_owned(), ptr(a[1])],
        _ => long(a[1]),
    };
    vec![opt.to_owned(), arg2]
}

/// A byte string as a C literal (`"a\n\x01"`), `...` after it when cut.
pub fn quote(b: &[u8], cut: bool) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x0b => s.push_str("\\v"),
            0x0c => s.push_str("\\f"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    if cut {
        s.push_str("...");
    }
    s
}

fn sockaddr(b: &[u8]) -> String {
    let fam = u16::from_ne_bytes([b[0], b[1]]);
    match fam {
        1 => {
            let p = &b[2..];
            if p.first() == Some(&0) && p.len() > 1 {
                let end = p.len();
                format!(
                    "{{sa_family=AF_UNIX, sun_path=@{}}}",
                    quote(&p[1..end], false)
                )
            } else {
                let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                format!(
                    "{{sa_family=AF_UNIX, sun_path={}}}",
                    quote(&p[..end], false)
                )
            }
        }
        2 if b.len() >= 8 => format!(
            "{{sa_family=AF_INET, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}",
            u16::from_be_bytes([b[2], b[3]]),
            Ipv4Addr::new(b[4], b[5], b[6], b[7])
        ),
        10 if b.len() >= 24 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[8..24]);
            let scope = b
                .get(24..28)
                .map(|x| u32::from_ne_bytes(x.try_into().unwrap_or([0; 4])))
                .unwrap_or(0);
            format!(
                "{{sa_family=AF_INET6, sin6_port=htons({}), sin6_flowinfo=htonl({}), inet_pton(AF_INET6, \"{}\", &sin6_addr), sin6_scope_id={scope}}}",
                u16::from_be_bytes([b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                Ipv6Addr::from(ip)
            )
        }
        16 if b.len() >= 12 => format!(
            "{{sa_family=AF_NETLINK, nl_pid={}, nl_groups={:08x}}}",
            u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            u32::from_ne_bytes([b[8], b[9], b[10], b[11]])
        ),
        _ => format!(
            "{{sa_family={}, sa_data={}}}",
            family(u64::from(fam)),
            quote(&b[2..], false)
        ),
    }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// `0` or hex.
fn hexz(v: u64) -> String {
    if v == 0 { "0".into() } else { hex(v) }
}

fn ptr(v: u64) -> String {
    if v == 0 { "NULL".into() } else { hex(v) }
}

fn int(v: u64) -> String {
    (v as i32).to_string()
}

fn long(v: u64) -> String {
    (v as i64).to_string()
}

fn fd(v: u64) -> String {
    int(v)
}

fn dirfd(v: u64) -> String {
    if v as i32 == libc::AT_FDCWD {
        "AT_FDCWD".into()
    } else {
        int(v)
    }
}

/// strace prints modes in octal with a leading zero (`0644`, `04755`).
fn mode(v: u64) -> String {
    format!("0{:o}", v & 0o7777)
}

/// `A|B|0x40` from a flag table; `zero` when no bit is set.
fn flags(v: u64, table: &[(u64, &str)], zero: &str) -> String {
    let mut out = Vec::new();
    let mut rest = v;
    for (bit, name) in table {
        if *bit != 0 && rest & bit == *bit {
            out.push((*name).to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(hex(rest));
    }
    if out.is_empty() {
        zero.to_owned()
    } else {
        out.join("|")
    }
}

fn open_flags(v: u64) -> String {
    let acc = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let rest = flags(v & !3, OPEN_FLAGS, "");
    if rest.is_empty() {
        acc.to_owned()
    } else {
        format!("{acc}|{rest}")
    }
}

fn clone_flags(v: u64) -> String {
    let sig = v & 0xff;
    let mut s = flags(v & !0xff, CLONE_FLAGS, "");
    if sig != 0 {
        if !s.is_empty() {
            s.push('|');
        }
        s.push_str(&signal(sig));
    }
    if s.is_empty() { "0".into() } else { s }
}

fn family(v: u64) -> String {
    match v {
        0 => "AF_UNSPEC".into(),
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        _ => format!("{v}"),
    }
}

fn sock_type(v: u64) -> String {
    let base = match v & 0xf {
        1 => "SOCK_STREAM".to_owned(),
        2 => "SOCK_DGRAM".to_owned(),
        3 => "SOCK_RAW".to_owned(),
        4 => "SOCK_RDM".to_owned(),
        5 => "SOCK_SEQPACKET".to_owned(),
        10 => "SOCK_PACKET".to_owned(),
        t => t.to_string(),
    };
    let rest = flags(v & !0xf, SOCK_FLAGS, "");
    if rest.is_empty() {
        base
    } else {
        format!("{base}|{rest}")
    }
}

fn protocol(family: u64, v: u64) -> String {
    if family != 2 && family != 10 {
        return v.to_string();
    }
    match v {
        0 => "IPPROTO_IP".into(),
        1 => "IPPROTO_ICMP".into(),
        6 => "IPPROTO_TCP".into(),
        17 => "IPPROTO_UDP".into(),
        58 => "IPPROTO_ICMPV6".into(),
        255 => "IPPROTO_RAW".into(),
        _ => v.to_string(),
    }
}

fn ptrace_request(v: u64) -> String {
    let n = match v {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSER",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSER",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        14 => "PTRACE_GETFPREGS",
        15 => "PTRACE_SETFPREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4201 => "PTRACE_GETEVENTMSG",
        0x4202 => "PTRACE_GETSIGINFO",
        0x4203 => "PTRACE_SETSIGINFO",
        0x4204 => "PTRACE_GETREGSET",
        0x4205 => "PTRACE_SETREGSET",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        0x4208 => "PTRACE_LISTEN",
        _ => return hex(v),
    };
    n.to_owned()
}

const CLONE_UNTRACED: u64 = 0x0080_0000;

const CLONE_FLAGS: &[(u64, &str)] = &[
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (CLONE_UNTRACED, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
];

const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o4010000, "O_SYNC"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o20200000, "O_TMPFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];

const SOCK_FLAGS: &[(u64, &str)] = &[(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")];

const MSG_FLAGS: &[(u64, &str)] = &[
    (0x1, "MSG_OOB"),
    (0x2, "MSG_PEEK"),
    (0x4, "MSG_DONTROUTE"),
    (0x20, "MSG_TRUNC"),
    (0x40, "MSG_DONTWAIT"),
    (0x80, "MSG_EOR"),
    (0x100, "MSG_WAITALL"),
    (0x4000, "MSG_NOSIGNAL"),
    (0x8000, "MSG_MORE"),
    (0x40000000, "MSG_CMSG_CLOEXEC"),
];

const WAIT_FLAGS: &[(u64, &str)] = &[
    (1, "WNOHANG"),
    (2, "WSTOPPED"),
    (4, "WEXITED"),
    (8, "WCONTINUED"),
    (0x0100_0000, "WNOWAIT"),
    (0x2000_0000, "__WNOTHREAD"),
    (0x4000_0000, "__WALL"),
    (0x8000_0000, "__WCLONE"),
];

const AT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_REMOVEDIR"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
];

const RENAME_FLAGS: &[(u64, &str)] = &[
    (1, "RENAME_NOREPLACE"),
    (2, "RENAME_EXCHANGE"),
    (4, "RENAME_WHITEOUT"),
];

const MFD_FLAGS: &[(u64, &str)] = &[
    (1, "MFD_CLOEXEC"),
    (2, "MFD_ALLOW_SEALING"),
    (4, "MFD_HUGETLB"),
    (8, "MFD_NOEXEC_SEAL"),
    (16, "MFD_EXEC"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strace;

    /// Memory that answers every read with zeros: every pointer the decoder follows is
    /// "readable", however absurd.
    struct Zeros;

    impl Memory for Zeros {
        fn read(&self, _: u64, len: usize) -> Option<Vec<u8>> {
            Some(vec![0; len.min(4096)])
        }
        fn cstring(&self, _: u64, _: usize) -> Option<(Vec<u8>, bool)> {
            Some((Vec::new(), false))
        }
    }

    /// Pointers at the top of the address space: offsets into the structures they point
    /// at wrap instead of overflowing (found by the `tracer_records` fuzz target).
    #[test]
    fn pointers_near_the_end_of_memory_do_not_overflow() {
        let top = u64::MAX - 10;
        for (nr, a) in [
            (libc::SYS_sendmmsg, [3, top, 8, 0, 0, 0]),
            (libc::SYS_sendmsg, [3, top, 0, 0, 0, 0]),
            (libc::SYS_execve, [top, top, top, 0, 0, 0]),
        ] {
            let e = entry(&Zeros, true, nr as u64, a);
            assert!(!e.api.is_empty());
        }
    }

    #[test]
    fn formats_parse_back_like_strace_output() {
        assert_eq!(open_flags(0o2001101), "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(open_flags(0o4010000 | 2), "O_RDWR|O_SYNC");
        assert_eq!(mode(0o4755), "04755");
        assert_eq!(mode(0o644), "0644");
        assert_eq!(
            clone_flags(0x1200011),
            "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
        );
        assert_eq!(sock_type(0o2000002), "SOCK_DGRAM|SOCK_CLOEXEC");
        assert_eq!(dirfd(-100i64 as u64), "AT_FDCWD");
        assert_eq!(signal(9), "SIGKILL");
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(512), "ERESTARTSYS");
        let q = quote(b"a\"b\\\n\x01\xff", false);
        assert_eq!(strace::unquote(&q).unwrap(), b"a\"b\\\n\x01\xff");
        assert_eq!(strace::unquote(&quote(b"abc", true)).unwrap(), b"abc");
        let mut v4 = vec![2u8, 0, 0x11, 0x5c, 10, 0, 0, 1];
        v4.extend([0; 8]);
        assert_eq!(
            strace::sockaddr(&sockaddr(&v4)),
            Some(("10.0.0.1".into(), 4444))
        );
        let mut v6 = vec![10u8, 0, 0, 53, 0, 0, 0, 0];
        v6.extend(std::net::Ipv6Addr::LOCALHOST.octets());
        v6.extend([0; 4]);
        assert_eq!(strace::sockaddr(&sockaddr(&v6)), Some(("::1".into(), 53)));
        assert!(sockaddr(&[1, 0, b'/', b'x', 0]).contains("sun_path=\"/x\""));
        assert!(sockaddr(&[17, 0, 1]).starts_with("{sa_family=AF_PACKET"));
    }
}
