//! Indicator extraction over arbitrary bytes and arbitrary text. Properties: no panic, no
//! hang, every list capped at `MAX_PER_KIND`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::iocs::{IocOptions, Iocs, MAX_PER_KIND, extract_iocs};

fuzz_target!(|data: &[u8]| {
    let i = extract_iocs(data, &IocOptions::default());
    let mut t = Iocs::default();
    t.add_text(&String::from_utf8_lossy(data));
    for iocs in [&i, &t] {
        for (_, list) in iocs.lists() {
            assert!(list.len() <= MAX_PER_KIND);
        }
    }
});
