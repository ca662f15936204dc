//! `Report` deserialisation from arbitrary JSON bytes.
//!
//! Properties: no panic; if the bytes parse as a `Report`, serialising it succeeds (both
//! to a string and to a `Value`), and parsing that output gives the same `Report` back
//! (a stored report survives the store/load round trip, unknown sections included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_types::report::Report;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    let text = serde_json::to_string(&report).expect("a parsed Report must serialise");
    let pretty = serde_json::to_string_pretty(&report).expect("pretty serialisation");
    let value = serde_json::to_value(&report).expect("serialise to Value");

    let back: Report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("own output does not parse: {e}\n{text}"));
    assert_eq!(back, report, "Report changed on a round trip\n{text}");
    let back_pretty: Report = serde_json::from_str(&pretty).expect("pretty output parses");
    assert_eq!(back_pretty, report);
    let back_value: Report = serde_json::from_value(value).expect("Value form parses");
    assert_eq!(back_value, report);
});
