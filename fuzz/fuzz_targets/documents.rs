//! The document parsers (OLE2/VBA, OOXML, PDF, RTF, LNK, scripts) over arbitrary bytes,
//! under every file name that steers the dispatch (scripts are chosen by extension).
//! Properties: no panic, no hang, and the findings serialise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::documents::{analyze, vba};

fuzz_target!(|data: &[u8]| {
    for name in ["sample", "a.js", "a.vbs", "a.ps1", "a.bat", "a.sh", "a.hta"] {
        let f = analyze(data, name);
        serde_json::to_string(&f.sections).expect("sections serialise");
        serde_json::to_string(&f.iocs).expect("iocs serialise");
    }
    // The MS-OVBA decompressor and dir parser on raw input too (they are reached only
    // through a valid compound file otherwise).
    let (out, _) = vba::decompress(data);
    let _ = vba::parse_dir(&out);
    let _ = vba::parse_dir(data);
});
