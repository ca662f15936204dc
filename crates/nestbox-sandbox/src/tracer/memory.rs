//! Bounded reads of a tracee's memory: [`Memory`] is what the decoder reads arguments
//! through; [`Live`] reads a stopped tracee with `process_vm_readv` (the ptrace tracer),
//! the eBPF tracer answers from the bytes its kernel program copied at the call.
//!
//! Every read has a size limit the caller chooses; a C string is read page by page, so a
//! string that ends just before an unmapped page is still read, and one that never ends
//! stops at the limit. A bad pointer is an ordinary `None`, never an error: the sample
//! controls every pointer it passes.

use std::io::IoSliceMut;

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

const PAGE: u64 = 4096;

/// Where the decoder reads pointed-to arguments from. Every read is bounded by the
/// caller; a pointer that cannot be read is `None`, never an error.
pub trait Memory {
    /// Up to `len` bytes at `addr` (fewer when the readable part ends sooner).
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// A NUL-terminated string at `addr`, at most `max` bytes; the flag says it was cut.
    fn cstring(&self, addr: u64, max: usize) -> Option<(Vec<u8>, bool)>;
    /// A native-endian `u64` at `addr`.
    fn word(&self, addr: u64) -> Option<u64> {
        let b = self.read(addr, 8)?;
        Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
    }
}

/// A stopped tracee's memory, read with `process_vm_readv`.
pub struct Live(pub Pid);

impl Memory for Live {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        read(self.0, addr, len)
    }
    fn cstring(&self, addr: u64, max: usize) -> Option<(Vec<u8>, bool)> {
        cstring(self.0, addr, max)
    }
}

/// Reads up to `len` bytes at `addr`; `None` when nothing could be read.
pub fn read(pid: Pid, addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 || len == 0 {
        return None;
    }
    let mut out = vec![0u8; len];
    let mut got = 0usize;
    // One page at a time: a read never spans a page that may be unmapped, so whatever is
    // readable before the first bad page is kept.
    while got < len {
        let at = addr.checked_add(got as u64)?;
        let want = ((PAGE - at % PAGE) as usize).min(len - got);
        let mut local = [IoSliceMut::new(&mut out[got..got + want])];
        let remote = [RemoteIoVec {
            base: at as usize,
            len: want,
        }];
        match process_vm_readv(pid, &mut local, &remote) {
            Ok(n) if n > 0 => got += n,
            _ => break,
        }
    }
    if got == 0 {
        return None;
    }
    out.truncate(got);
    Some(out)
}

/// A NUL-terminated string at `addr`, at most `max` bytes; the flag says it was cut.
pub fn cstring(pid: Pid, addr: u64, max: usize) -> Option<(Vec<u8>, bool)> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    // One byte past the limit tells a string of exactly `max` bytes from a longer one.
    while out.len() <= max {
        let chunk = ((PAGE - at % PAGE) as usize).min(max + 1 - out.len());
        let buf = match read(pid, at, chunk) {
            Some(b) => b,
            None if out.is_empty() => return None,
            None => return Some((out, true)),
        };
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            let cut = out.len() > max;
            out.truncate(max);
            return Some((out, cut));
        }
        out.extend_from_slice(&buf);
        if buf.len() < chunk {
            return Some((out, true));
        }
        at = at.checked_add(chunk as u64)?;
    }
    out.truncate(max);
    Some((out, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading this process's own memory exercises the same paths (same uid).
    #[test]
    fn reads_strings_words_and_refuses_bad_pointers() {
        let me = nix::unistd::getpid();
        let s = b"hello\0world";
        let (v, cut) = cstring(me, s.as_ptr() as u64, 64).unwrap();
        assert_eq!(v, b"hello");
        assert!(!cut);
        let (v, cut) = cstring(me, s.as_ptr() as u64, 3).unwrap();
        assert_eq!(v, b"hel");
        assert!(cut);
        let x: u64 = 0x1122_3344_5566_7788;
        assert_eq!(Live(me).word(&x as *const u64 as u64), Some(x));
        assert_eq!(cstring(me, 0, 10), None);
        assert_eq!(read(me, 8, 10), None);
        // A string running into an unmapped page: what is readable, marked cut.
        let big = vec![b'a'; 10_000];
        let (v, cut) = cstring(me, big.as_ptr() as u64, 256).unwrap();
        assert_eq!(v.len(), 256);
        assert!(cut);
    }
}
