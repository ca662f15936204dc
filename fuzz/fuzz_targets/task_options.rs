//! `TaskOptions::parse` over arbitrary text.
//!
//! Properties: no panic; parse is a fixed point after one round trip,
//! `parse(emit(parse(s))) == parse(s)`, and `emit` is stable; every key is non-empty,
//! trimmed and free of `,` and `=`; every value is trimmed and free of `,`; `flag` and
//! `get` agree with the map.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_types::TaskOptions;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let parsed = TaskOptions::parse(&s);
    let emitted = parsed.emit();
    let again = TaskOptions::parse(&emitted);
    assert_eq!(
        again, parsed,
        "parse(emit(parse(s))) != parse(s); emit = {emitted:?}"
    );
    assert_eq!(again.emit(), emitted, "emit not stable");

    for (k, v) in &parsed.0 {
        assert!(!k.is_empty(), "empty key");
        assert_eq!(k.trim(), k, "untrimmed key {k:?}");
        assert!(
            !k.contains(',') && !k.contains('='),
            "separator in key {k:?}"
        );
        assert_eq!(v.trim(), v, "untrimmed value {v:?}");
        assert!(!v.contains(','), "comma in value {v:?}");
        assert_eq!(parsed.get(k), Some(v.as_str()));
        let truthy = matches!(v.to_ascii_lowercase().as_str(), "yes" | "1" | "true" | "on");
        assert_eq!(parsed.flag(k), truthy, "flag({k:?}) for {v:?}");
    }

    // The serde form is the plain map (`#[serde(transparent)]`).
    let json = serde_json::to_string(&parsed).expect("serialise options");
    let back: TaskOptions = serde_json::from_str(&json).expect("parse serialised options");
    assert_eq!(back, parsed);
});
