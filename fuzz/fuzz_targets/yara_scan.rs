//! YARA: compiling arbitrary rule text and scanning arbitrary data with the starter rules.
//!
//! The input's first line is a rule source (written to a rule file in a directory, the
//! way operators add rules); the rest is scanned with the starter set plus that file.
//! Properties: a rule file that does not compile is reported, never a panic; scanning any
//! bytes succeeds and every match has a name. Needs the `yara` feature (yara-x is a long
//! build): `make fuzz` enables it, `fuzz/smoke.sh` only with FUZZ_YARA=1.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nestbox_yara::{RuleSources, YaraEngine, compile};

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

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (rule, content) = (&data[..split], &data[split.min(data.len())..]);
    if !rule.is_empty() && rule.len() < 2048 {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("fuzz.yar"), rule).expect("write rule");
        let compiled = compile(&RuleSources {
            starter: false,
            dirs: vec![dir.path().to_owned()],
        });
        assert!(compiled.files.len() + compiled.errors.len() == 1);
    }
    for m in starter().scan_bytes(content).expect("scan") {
        assert!(!m.name.is_empty());
    }
});
