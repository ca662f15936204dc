//! The `bpf(2)` and `perf_event_open(2)` calls the eBPF tracer needs, and tracefs: event
//! ids and field offsets are read from the running kernel's `format` files, never
//! assumed.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

use super::asm::Insn;

const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_PROG_LOAD: i32 = 5;
pub const MAP_HASH: u32 = 1;
pub const MAP_ARRAY: u32 = 2;
pub const MAP_PERCPU_ARRAY: u32 = 6;
pub const MAP_RINGBUF: u32 = 27;
const PROG_TRACEPOINT: u32 = 5;
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

pub const TRACEFS: &str = "/sys/kernel/tracing";

/// `bpf(cmd, attr, size)`; `attr` is the command's part of `union bpf_attr`, zero-padded
/// (the kernel checks that bytes past what it knows are zero).
fn bpf<T>(cmd: i32, attr: &T) -> std::io::Result<i64> {
    // SAFETY: `attr` is a plain `repr(C)` struct that lives across the call; the kernel
    // reads `size_of::<T>()` bytes of it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: a file descriptor the kernel just returned to us, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// A new map (its fd is close-on-exec, like every bpf fd).
pub fn map_create(map_type: u32, key: u32, value: u32, entries: u32) -> Result<OwnedFd, String> {
    let a = MapCreate {
        map_type,
        key_size: key,
        value_size: value,
        max_entries: entries,
        map_flags: 0,
    };
    bpf(BPF_MAP_CREATE, &a)
        .map(owned)
        .map_err(|e| format!("BPF_MAP_CREATE (type {map_type}): {e}"))
}

/// `union bpf_attr` for the element commands.
#[repr(C)]
pub struct Elem {
    pub map_fd: u32,
    _pad: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
}

impl Elem {
    /// The attribute block for `key`/`value` pointers into the caller's memory.
    pub fn new(map_fd: i32, key: *const u8, value: *const u8) -> Elem {
        Elem {
            map_fd: map_fd as u32,
            _pad: 0,
            key: key as u64,
            value: value as u64,
            flags: 0,
        }
    }
}

/// `BPF_MAP_UPDATE_ELEM` with a raw system call only: safe between `fork` and `execve`.
pub fn update_raw(attr: &Elem) -> i64 {
    // SAFETY: `attr` points at live memory; the key and value it names are the caller's.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_UPDATE_ELEM,
            std::ptr::from_ref(attr),
            std::mem::size_of::<Elem>(),
        )
    }
}

/// `map[key]` for plain-old-data values (`None` when absent or on error).
pub fn map_lookup<K, V: Default>(map: i32, key: &K) -> Option<V> {
    let mut value = V::default();
    let a = Elem::new(
        map,
        std::ptr::from_ref(key).cast(),
        std::ptr::from_mut(&mut value).cast_const().cast(),
    );
    // The kernel writes the value through the pointer in `a`.
    bpf(BPF_MAP_LOOKUP_ELEM, &a).ok().map(|_| value)
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// Loads a tracepoint program; a refusal carries the verifier's log.
pub fn prog_load(name: &str, insns: &[Insn]) -> Result<OwnedFd, String> {
    let license = c"GPL";
    let mut a = ProgLoad {
        prog_type: PROG_TRACEPOINT,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoad::default()
    };
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &a) {
        return Ok(owned(fd));
    }
    // Again with the verifier's log, only to explain the refusal.
    let mut log = vec![0u8; 1 << 20];
    a.log_level = 1;
    a.log_size = log.len() as u32;
    a.log_buf = log.as_mut_ptr() as u64;
    let e = match bpf(BPF_PROG_LOAD, &a) {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    let text = String::from_utf8_lossy(&log);
    let text = text.trim_end_matches('\0');
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    Err(format!(
        "BPF_PROG_LOAD {name}: {e}; verifier: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

/// Makes tracefs reachable (mounting it where the kernel expects it if needed).
pub fn mount_tracefs() -> Result<(), String> {
    let events = std::path::Path::new(TRACEFS).join("events");
    if events.is_dir() {
        return Ok(());
    }
    let _ = std::fs::create_dir_all(TRACEFS);
    nix::mount::mount(
        Some("nodev"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mounting tracefs on {TRACEFS}: {e}"))
}

/// A tracepoint's `format` file (`"raw_syscalls/sys_enter"`).
fn format(event: &str) -> Result<String, String> {
    let p = format!("{TRACEFS}/events/{event}/format");
    std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))
}

/// The offset of field `name` in a tracepoint's record.
pub fn field_offset(event: &str, name: &str) -> Result<i16, String> {
    parse_offset(&format(event)?, name).ok_or_else(|| format!("{event}: no field {name}"))
}

fn parse_offset(format: &str, name: &str) -> Option<i16> {
    format.lines().find_map(|l| {
        let decl = l.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let field = decl.rsplit([' ', '*']).next()?;
        let field = field.split('[').next()?;
        if field != name {
            return None;
        }
        rest.trim()
            .strip_prefix("offset:")?
            .split(';')
            .next()?
            .parse()
            .ok()
    })
}

#[repr(C)]
#[derive(Default)]
struct PerfAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
}

/// Runs `prog` on every hit of tracepoint `event`, on every CPU, until the returned fd
/// is closed.
pub fn attach(event: &str, prog: &OwnedFd) -> Result<OwnedFd, String> {
    use std::os::fd::AsRawFd;
    let id_path = format!("{TRACEFS}/events/{event}/id");
    let id: u64 = std::fs::read_to_string(&id_path)
        .map_err(|e| format!("{id_path}: {e}"))?
        .trim()
        .parse()
        .map_err(|_| format!("{id_path}: not a number"))?;
    let a = PerfAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfAttr>() as u32,
        config: id,
        sample_period: 1,
        wakeup_events: 1,
        ..PerfAttr::default()
    };
    // SAFETY: `a` is a complete perf_event_attr of the size it declares.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&a),
            -1,
            0,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "perf_event_open {event}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let pfd = owned(fd);
    // SAFETY: ioctls on the perf fd we own; SET_BPF takes the program fd by value.
    let ok = unsafe {
        libc::ioctl(pfd.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) == 0
            && libc::ioctl(pfd.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) == 0
    };
    if !ok {
        return Err(format!(
            "attaching to {event}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(pfd)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_field_offsets_in_a_format_file() {
        let f = "name: sched_process_fork\nformat:\n\
                 \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
                 \tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
                 \tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
                 \tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;\n";
        assert_eq!(super::parse_offset(f, "parent_pid"), Some(12));
        assert_eq!(super::parse_offset(f, "parent_comm"), Some(8));
        assert_eq!(super::parse_offset(f, "args"), Some(16));
        assert_eq!(super::parse_offset(f, "child_pid"), None);
    }
}
