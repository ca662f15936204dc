//! JSON serialised the way Python's `json.dumps` does it, because Cuckoo's clients were
//! written against Flask's `jsonify` output and some compare bytes, not values.
//!
//! Flask 0.12 `jsonify`: keys sorted, `indent=2` with separators `", "`/`": "` (so pretty
//! lines end in `", "` + newline, a trailing space included), `ensure_ascii` (every
//! non-ASCII character escaped as `\uXXXX`, astral ones as surrogate pairs), and a final
//! newline. With `X-Requested-With: XMLHttpRequest` it is compact: `,` and `:`.

use std::fmt::Write;

use serde_json::Value;

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `indent=2`, separators `", "` / `": "`, trailing newline (jsonify's default).
    Pretty,
    /// Separators `,` / `:`, no newline (`X-Requested-With: XMLHttpRequest`, `?elements=`).
    Compact,
}

/// Serialises `v` in Python's format.
pub fn to_string(v: &Value, style: Style) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, v, style, 0);
    if style == Style::Pretty {
        out.push('\n');
    }
    out
}

fn newline(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, v: &Value, style: Style, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, style, level + 1, i == 0);
                write_value(out, item, style, level + 1);
            }
            if style == Style::Pretty {
                newline(out, level);
            }
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                separator(out, style, level + 1, i == 0);
                write_str(out, k);
                out.push_str(if style == Style::Pretty { ": " } else { ":" });
                write_value(out, &map[k], style, level + 1);
            }
            if style == Style::Pretty {
                newline(out, level);
            }
            out.push('}');
        }
    }
}

fn separator(out: &mut String, style: Style, level: usize, first: bool) {
    match style {
        Style::Pretty => {
            if !first {
                out.push_str(", ");
            }
            newline(out, level);
        }
        Style::Compact => {
            if !first {
                out.push(',');
            }
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        if !f.is_finite() {
            // Python writes NaN/Infinity; no JSON parser reads them, and we never emit them.
            out.push_str("null");
        } else if f.fract() == 0.0 && f.abs() < 1e16 {
            // Python's repr keeps ".0" on integral floats.
            let _ = write!(out, "{f:.1}");
        } else {
            let _ = write!(out, "{f}");
        }
    } else {
        let _ = write!(out, "{n}");
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_flask_jsonify() {
        let v = json!({"tasks": [], "b": {"y": 1, "x": [1, 2.0, 75.7]}, "a": "é\u{202e}😀"});
        let want = "{\n  \"a\": \"\\u00e9\\u202e\\ud83d\\ude00\", \n  \"b\": {\n    \"x\": [\n      1, \n      2.0, \n      75.7\n    ], \n    \"y\": 1\n  }, \n  \"tasks\": []\n}\n";
        assert_eq!(to_string(&v, Style::Pretty), want);
    }

    #[test]
    fn empty_list_like_python() {
        assert_eq!(
            to_string(&json!({"tasks": []}), Style::Pretty),
            "{\n  \"tasks\": []\n}\n"
        );
    }

    #[test]
    fn compact_form() {
        let v = json!({"b": [1, {"d": null, "c": true}], "a": "x\"\n"});
        assert_eq!(
            to_string(&v, Style::Compact),
            r#"{"a":"x\"\n","b":[1,{"c":true,"d":null}]}"#
        );
    }
}
