//! The archive unpacker over arbitrary bytes, with small limits so a generated bomb is cut
//! quickly. Properties: no panic, no hang, member count and total bytes within the limits,
//! member names safe (relative, no `..`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::unpack::{UnpackLimits, unpack};

fuzz_target!(|data: &[u8]| {
    let limits = UnpackLimits {
        max_total: 8 << 20,
        max_member: 4 << 20,
        max_members: 200,
        // In-process only: a sandboxed tool per RAR-looking input would slow fuzzing down.
        rar_tool: false,
        ..UnpackLimits::default()
    };
    let u = unpack(data, "fuzz.bin", &["infected".to_owned()], &limits);
    assert!(u.members.len() <= limits.max_members);
    let total: u64 = u.members.iter().map(|m| m.data.len() as u64).sum();
    assert!(total <= limits.max_total);
    for m in &u.members {
        assert!(!m.name.starts_with('/') && !m.name.split('/').any(|c| c == ".." || c.is_empty()), "{:?}", m.name);
    }
    let _ = u.section();
});
