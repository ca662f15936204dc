//! The Cuckoo-compatible JSON writer, `nestbox_api::common::pyjson`, checked against
//! serde_json and against a plain reference of Flask's `jsonify` format.
//!
//! For every `serde_json::Value` parsed from the input, in `Style::Pretty` and
//! `Style::Compact`:
//!
//! * **round trip** (differential against serde_json): the output parses back to an equal
//!   `Value`; it is pure ASCII (`ensure_ascii`); pretty output ends in exactly one newline,
//!   compact output has none; `to_vec` and `to_string` agree;
//! * **byte-exact** against [`reference`], a direct transcription of Python's
//!   `json.dumps(v, sort_keys=True, ensure_ascii=True, indent=2, separators=(", ", ": "))`
//!   (+ `"\n"`) and of the compact form `separators=(",", ":")`, floats in `repr` form.
//!
//! If the input also parses as a `Report`, the report written by `pyjson` must parse back
//! to the same `Report` (the writer is a serde `Formatter`, so structs go through it too).
#![no_main]

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use nestbox_api::common::pyjson::{Style, to_string, to_vec};
use nestbox_types::report::Report;
use serde_json::Value;

/// Flask 0.12 `jsonify` output for `v`, written the obvious recursive way.
fn reference(v: &Value, style: Style) -> String {
    fn indent(out: &mut String, style: Style, level: usize) {
        if style == Style::Pretty {
            out.push('\n');
            for _ in 0..level {
                out.push_str("  ");
            }
        }
    }
    fn item_sep(out: &mut String, style: Style) {
        out.push_str(if style == Style::Pretty { ", " } else { "," });
    }
    fn string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                ' '..='~' => out.push(c),
                _ => {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
            }
        }
        out.push('"');
    }
    fn value(out: &mut String, v: &Value, style: Style, level: usize) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
                Some(f) => out.push_str(&python_float_repr(f)),
                None => out.push_str(&n.to_string()),
            },
            Value::String(s) => string(out, s),
            Value::Array(a) if a.is_empty() => out.push_str("[]"),
            Value::Object(m) if m.is_empty() => out.push_str("{}"),
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        item_sep(out, style);
                    }
                    indent(out, style, level + 1);
                    value(out, x, style, level + 1);
                }
                indent(out, style, level);
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort(); // Python sorts by code point; UTF-8 byte order is the same.
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        item_sep(out, style);
                    }
                    indent(out, style, level + 1);
                    string(out, k);
                    out.push_str(if style == Style::Pretty { ": " } else { ":" });
                    value(out, &m[k], style, level + 1);
                }
                indent(out, style, level);
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    value(&mut out, v, style, 0);
    if style == Style::Pretty {
        out.push('\n');
    }
    out
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for decimal
/// exponents -4..16, otherwise `d.ddde±XX`.
fn python_float_repr(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    if !(1e-4..1e16).contains(&f.abs()) {
        let sci = format!("{f:e}"); // shortest digits: "1.5e300", "-1e-5"
        let (mantissa, exp) = sci.split_once('e').expect("exponent");
        let exp: i32 = exp.parse().expect("exponent digits");
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let s = format!("{f}");
        if s.contains('.') { s } else { s + ".0" }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        for style in [Style::Pretty, Style::Compact] {
            let out = to_string(&value, style);
            assert_eq!(out.as_bytes(), to_vec(&value, style), "to_vec != to_string");
            assert!(out.is_ascii(), "{style:?} output is not ASCII: {out:?}");
            match style {
                Style::Pretty => assert!(out.ends_with('\n') && !out.ends_with("\n\n")),
                Style::Compact => assert!(!out.contains('\n'), "newline in compact output"),
            }
            let back: Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{style:?} output does not parse: {e}\n{out}"));
            assert_eq!(
                back, value,
                "{style:?} output parses to a different value\noutput: {out}"
            );
            assert_eq!(
                out,
                reference(&value, style),
                "{style:?} output is not jsonify's"
            );
        }
    }

    if let Ok(report) = serde_json::from_slice::<Report>(data) {
        for style in [Style::Pretty, Style::Compact] {
            let out = to_string(&report, style);
            let back: Report = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{style:?} report does not parse: {e}\n{out}"));
            assert_eq!(
                back, report,
                "{style:?} report changed on a round trip\n{out}"
            );
        }
    }
});
