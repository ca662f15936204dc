//! JSON serialised the way Python's `json.dumps` does it, because Cuckoo's clients were
//! written against Flask's `jsonify` output and some compare bytes, not values.
//!
//! Flask 0.12 `jsonify`: keys sorted, `indent=2` with separators `", "`/`": "` (so pretty
//! lines end in `", "` + newline, a trailing space included), `ensure_ascii` (every
//! character outside `' '..='~'` escaped as `\uXXXX`, astral ones as surrogate pairs), and a
//! final newline. With `X-Requested-With: XMLHttpRequest` it is compact: `,` and `:`.
//!
//! This is a `serde_json` [`Formatter`], so any `Serialize` value is written directly,
//! without building a `serde_json::Value` first (the hot path of `tasks/view` and
//! `tasks/list`). Key order is the caller's job: maps from `serde_json::Value` and
//! `BTreeMap` are sorted; view structs declare their fields in sorted order.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `indent=2`, separators `", "` / `": "`, trailing newline (jsonify's default).
    Pretty,
    /// Separators `,` / `:`, no newline (`X-Requested-With: XMLHttpRequest`, `?elements=`).
    Compact,
}

/// Serialises `v` in Python's format.
pub fn to_string<T: Serialize + ?Sized>(v: &T, style: Style) -> String {
    let mut out = Vec::with_capacity(1024);
    write(&mut out, v, style);
    // The formatter only ever writes ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Serialises `v` in Python's format into a byte buffer.
pub fn to_vec<T: Serialize + ?Sized>(v: &T, style: Style) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write(&mut out, v, style);
    out
}

fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T, style: Style) {
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, PyFormatter::new(style));
    if let Err(e) = v.serialize(&mut ser) {
        // Only a failing Serialize impl (e.g. a map with non-string keys) gets here.
        tracing::error!(error = %e, "serialising a response failed");
        out.clear();
        out.extend_from_slice(b"null");
    }
    if style == Style::Pretty {
        out.push(b'\n');
    }
}

/// The Python `json.dumps` formatter.
pub struct PyFormatter {
    style: Style,
    level: usize,
    has_value: bool,
}

impl PyFormatter {
    /// A formatter in the given style.
    pub fn new(style: Style) -> Self {
        PyFormatter {
            style,
            level: 0,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, open: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(open)
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.style == Style::Pretty && self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(close)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match self.style {
            Style::Pretty => {
                if !first {
                    w.write_all(b", ")?;
                }
                self.newline(w)
            }
            Style::Compact if !first => w.write_all(b","),
            Style::Compact => Ok(()),
        }
    }
}

impl Formatter for PyFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.style == Style::Pretty {
            b": "
        } else {
            b":"
        })
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, f: f64) -> io::Result<()> {
        w.write_all(py_float_repr(f).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json hands over runs that need no JSON escaping; ensure_ascii still escapes
        // everything outside ' '..='~' (DEL included).
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&bytes[start..i])?;
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(b) => return write!(w, "\\u{:04x}", b),
        };
        w.write_all(s)
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip (what Rust's `{:e}` also
/// gives), written in fixed notation when the decimal point falls within 16 digits either
/// way (`75.7`, `2.0`, `0.0001`), else in exponent notation with a signed, at least two-digit
/// exponent (`1e+16`, `1.5e+300`, `1e-05`). Non-finite values become `null`: Python's `NaN`
/// is not JSON and we never produce it.
fn py_float_repr(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Position of the decimal point relative to the digits: value = 0.DIGITS × 10^point.
    let point = exp + 1;
    let mut out = String::from(sign);
    if point > -4 && point <= 16 {
        let len = i32::try_from(digits.len()).unwrap_or(i32::MAX);
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
            out.push_str(&digits);
        } else if point >= len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - len) as usize));
            out.push_str(".0");
        } else {
            let (int, frac) = digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_flask_jsonify() {
        let v =
            json!({"tasks": [], "b": {"y": 1, "x": [1, 2.0, 75.7]}, "a": "é\u{202e}😀\u{7f}\u{1}"});
        let want = "{\n  \"a\": \"\\u00e9\\u202e\\ud83d\\ude00\\u007f\\u0001\", \n  \"b\": {\n    \"x\": [\n      1, \n      2.0, \n      75.7\n    ], \n    \"y\": 1\n  }, \n  \"tasks\": []\n}\n";
        assert_eq!(to_string(&v, Style::Pretty), want);
    }

    #[test]
    fn empty_containers_like_python() {
        assert_eq!(
            to_string(&json!({"tasks": []}), Style::Pretty),
            "{\n  \"tasks\": []\n}\n"
        );
        assert_eq!(
            to_string(&json!({"a": {}, "b": [[]]}), Style::Pretty),
            "{\n  \"a\": {}, \n  \"b\": [\n    []\n  ]\n}\n"
        );
        assert_eq!(to_string(&json!([]), Style::Compact), "[]");
    }

    #[test]
    fn floats_like_python_repr() {
        for (f, want) in [
            (75.7, "75.7"),
            (2.0, "2.0"),
            (0.5, "0.5"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (-2.5e-300, "-2.5e-300"),
            (123456.789, "123456.789"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (f64::NAN, "null"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f:e}");
            if f.is_finite() {
                assert_eq!(
                    py_float_repr(f).parse::<f64>().unwrap(),
                    f,
                    "round trip {want}"
                );
            }
        }
    }

    #[test]
    fn compact_form() {
        let v = json!({"b": [1, {"d": null, "c": true}], "a": "x\"\n/"});
        assert_eq!(
            to_string(&v, Style::Compact),
            r#"{"a":"x\"\n/","b":[1,{"c":true,"d":null}]}"#
        );
    }

    #[test]
    fn structs_serialise_in_field_order() {
        #[derive(Serialize)]
        struct S {
            a: u8,
            b: Vec<u8>,
        }
        assert_eq!(
            to_string(&S { a: 1, b: vec![] }, Style::Compact),
            r#"{"a":1,"b":[]}"#
        );
    }
}
