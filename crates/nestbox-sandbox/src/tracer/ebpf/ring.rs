//! The user side of a BPF ring buffer: the consumer position page (ours to write), the
//! producer position page and the data pages, mapped twice in a row by the kernel so a
//! record that wraps is still contiguous.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: u64 = 8;

pub struct Ring {
    fd: OwnedFd,
    size: u64,
    page: usize,
    consumer: *mut u8,
    producer: *mut u8,
}

// SAFETY: the mappings are owned by the Ring and only read through atomics or as plain
// bytes the kernel has committed; one thread consumes at a time (`&mut self`).
unsafe impl Send for Ring {}

impl Ring {
    /// Maps the ring buffer map `fd` of `size` bytes (a power of two, page multiple).
    pub fn new(fd: OwnedFd, size: u64) -> Result<Ring, String> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let map = |len: usize, prot: i32, off: i64| {
            // SAFETY: a fresh shared mapping of the ring buffer's fd, checked below.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    off,
                )
            };
            if p == libc::MAP_FAILED {
                Err(format!(
                    "mmap ring buffer: {}",
                    std::io::Error::last_os_error()
                ))
            } else {
                Ok(p.cast::<u8>())
            }
        };
        let consumer = map(page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match map(page + 2 * size as usize, libc::PROT_READ, page as i64) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: unmapping what was just mapped.
                unsafe { libc::munmap(consumer.cast(), page) };
                return Err(e);
            }
        };
        Ok(Ring {
            fd,
            size,
            page,
            consumer,
            producer,
        })
    }

    fn positions(&self) -> (&AtomicU64, &AtomicU64) {
        // SAFETY: both pages start with the 8-byte aligned position the kernel keeps.
        unsafe {
            (
                &*self.consumer.cast::<AtomicU64>(),
                &*self.producer.cast::<AtomicU64>(),
            )
        }
    }

    /// Waits up to `ms` for records (the kernel wakes the poll when one is committed).
    pub fn wait(&self, ms: i32) {
        let (c, p) = self.positions();
        if c.load(Ordering::Relaxed) != p.load(Ordering::Acquire) {
            return;
        }
        let mut fds = [nix::poll::PollFd::new(
            self.fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms as u16));
    }

    /// Hands every committed record to `each`, in order; returns how many.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> usize {
        let (cons, prod) = self.positions();
        let mut c = cons.load(Ordering::Relaxed);
        let p = prod.load(Ordering::Acquire);
        let mut n = 0;
        // SAFETY: the data pages follow the producer page; offsets are masked into the
        // first copy and a record never exceeds the buffer, so it lies in the mapping.
        let data = unsafe { self.producer.add(self.page) };
        while c < p {
            let at = (c & (self.size - 1)) as usize;
            // SAFETY: see above; the length word is 4-byte aligned and written atomically.
            let len = unsafe { (*data.add(at).cast::<AtomicU32>()).load(Ordering::Acquire) };
            if len & BUSY != 0 {
                break;
            }
            let body = u64::from(len & !(BUSY | DISCARD));
            if len & DISCARD == 0 {
                // SAFETY: a committed record of `body` bytes after its 8-byte header.
                let rec = unsafe {
                    std::slice::from_raw_parts(data.add(at + HEADER as usize), body as usize)
                };
                each(rec);
                n += 1;
            }
            c += (HEADER + body + 7) & !7;
            cons.store(c, Ordering::Release);
        }
        n
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping the two mappings made in `new`, with their lengths.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast(), self.page + 2 * self.size as usize);
        }
    }
}
