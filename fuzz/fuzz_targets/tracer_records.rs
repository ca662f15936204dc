//! The eBPF tracer's record decoding (`nestbox_sandbox::tracer::ebpf::replay`) over
//! arbitrary record streams: what a sample controls is every byte the kernel copied from
//! its memory (paths, argv, socket addresses, message headers) and the order and mix of
//! its calls, forks and exits.
//!
//! Properties: no panic; no amplification (at most two events per record: a call, or an
//! end, or a pending call kept at an end); every call has a name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_sandbox::strace::Event;

fn records(mut s: &[u8]) -> usize {
    let mut n = 0;
    while let Some((len, tail)) = s.split_first_chunk::<2>() {
        let len = usize::from(u16::from_ne_bytes(*len)).min(tail.len());
        s = &tail[len..];
        n += 1;
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let f = nestbox_sandbox::tracer::ebpf::replay(data);
    let events: usize = f.traces.values().map(Vec::len).sum();
    assert!(events <= 2 * records(data), "{events} events");
    for e in f.traces.values().flatten() {
        if let Event::Call(c) = e {
            assert!(!c.api.is_empty());
        }
    }
});
