//! PE / ELF / Mach-O parsing over arbitrary bytes.
//!
//! Properties: no panic, no hang; every list in the output is capped; the output always
//! serialises. The seeds include a hand-assembled PE with imports by name and ordinal,
//! resources and version information, so mutations reach the deep parsers quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::{elf, executable, macho, pe};

fuzz_target!(|data: &[u8]| {
    if let Some(info) = pe::analyze(data) {
        assert!(info.sections.len() <= pe::MAX_ITEMS);
        assert!(info.resources.len() <= pe::MAX_ITEMS);
        assert!(info.exports.len() <= 2 * pe::MAX_ITEMS);
        serde_json::to_string(&info).expect("PE info serialises");
        let _ = info.cuckoo_static();
    }
    let _ = elf::analyze(data);
    let _ = macho::analyze(data);
    let sections = executable::analyze(data);
    serde_json::to_string(&sections.static_section).expect("static section serialises");
});
