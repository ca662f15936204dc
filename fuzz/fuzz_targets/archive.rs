//! Archive directory listing over arbitrary bytes.
//!
//! The input is written to a temporary file and listed as every `ArchiveKind` (not only
//! the one `archive_kind` guesses: a caller may trust a file name or a client's word), and
//! `archive_kind` is run on the head. Properties: no panic, no hang, at most `MAX_MEMBERS`
//! members, and the member names go through `package_for_name` without panicking.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::archive::{
    ArchiveKind, MAX_MEMBERS, archive_kind, list_members, package_for_name,
};

fuzz_target!(|data: &[u8]| {
    // The guess is not compared with the listings: zip readers find a central directory
    // anywhere in a file, so a listing without the leading magic is legitimate.
    let _ = archive_kind(data);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write temp file");
    file.flush().expect("flush temp file");

    for kind in [ArchiveKind::Zip, ArchiveKind::Tar, ArchiveKind::TarGz] {
        let Ok(members) = list_members(file.path(), kind) else {
            continue;
        };
        assert!(members.len() <= MAX_MEMBERS);
        for m in &members {
            let _ = package_for_name(&m.name);
        }
    }
});
