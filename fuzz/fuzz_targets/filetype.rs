//! `file_type_bytes` (libmagic, through a temporary file) over arbitrary bytes.
//!
//! Properties: no panic, no crash inside libmagic (C code: the sanitizer build catches
//! memory errors in the Rust side only, but a libmagic segfault still stops the run), a
//! non-empty description and a MIME type of the form `type/subtype`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::file_type_bytes;

fuzz_target!(|data: &[u8]| {
    let t = file_type_bytes(data);
    assert!(!t.description.is_empty(), "empty description");
    assert!(
        t.mime
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
        "odd MIME type {:?}",
        t.mime
    );
    if data.is_empty() {
        assert_eq!(t.mime, "inode/x-empty");
    }
});
