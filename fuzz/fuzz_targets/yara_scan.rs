//! YARA: compiling arbitrary rule text and scanning arbitrary data with the starter rules.
//!
//! The input's first line is a rule source (written to a rule file in a directory, the
//! way operators add rules); the rest is scanned with the starter set plus that file.
//! Properties: a rule file that does not compile is reported, never a panic; scanning any
//! bytes within the timeout succeeds and every match has a name and its strings decode.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nestbox_yara::{RuleSources, YaraEngine};

fn starter() -> &'static YaraEngine {
    static ENGINE: OnceLock<YaraEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        YaraEngine::load(
            RuleSources {
                starter: true,
                dirs: Vec::new(),
            },
            Duration::from_secs(5),
        )
    })
}

/// Every match is well formed: a name, base64 strings, offsets pointing into them.
fn check(matches: &[nestbox_types::report::YaraMatch], len: usize) {
    use base64::Engine as _;
    for m in matches {
        assert!(!m.name.is_empty());
        for s in &m.strings {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("base64 match data");
            assert!(raw.len() <= len.min(nestbox_yara::MAX_MATCH_DATA));
        }
        for list in m.offsets.values() {
            for pair in list.as_array().expect("offset list") {
                let offset = pair[0].as_u64().expect("offset") as usize;
                let index = pair[1].as_u64().expect("index") as usize;
                assert!(offset <= len && index < m.strings.len());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (rule, content) = (&data[..split], &data[split.min(data.len())..]);
    if !rule.is_empty() && rule.len() < 2048 {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("fuzz.yar"), rule).expect("write rule");
        let engine = YaraEngine::load(
            RuleSources {
                starter: false,
                dirs: vec![dir.path().to_owned()],
            },
            Duration::from_secs(5),
        );
        let loaded = engine.current();
        // The file either loaded or is reported (with a line within the file), never both.
        assert_eq!(loaded.compiled.files.len() + loaded.compiled.errors.len(), 1);
        for e in &loaded.compiled.errors {
            assert!(e.line <= rule.iter().filter(|&&b| b == b'\n').count() + 1);
        }
        // A fuzzer-written rule may legitimately time out on its content.
        if let Ok(m) = engine.scan_bytes(content) {
            check(&m, content.len());
        }
    }
    check(&starter().scan_bytes(content).expect("scan"), content.len());
});
