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
//! `tasks/list`). Object keys are sorted here, whatever the map type: yara-x turns on
//! serde_json's `preserve_order` for the whole build, so a `serde_json::Value` keeps
//! insertion order and cannot be trusted to arrive sorted. Each open object collects its
//! entries in a buffer and writes them in key order when it closes; entries that arrive
//! sorted (view structs declare their fields in order, `BTreeMap`s) cost one copy.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

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
    /// One frame per open object, innermost last; while any is open, output goes to the
    /// innermost frame's buffer instead of the writer.
    objects: Vec<ObjectFrame>,
}

/// The entries of one open object: `"key": value` runs in `buf`, without separators (they
/// depend on the final order, so they are written when the object closes).
#[derive(Default)]
struct ObjectFrame {
    buf: Vec<u8>,
    /// Per entry: where it starts in `buf` and where its key (quotes included) ends.
    entries: Vec<(usize, usize)>,
}

impl ObjectFrame {
    /// The key of entry `i` for sorting: the text between the quotes when it has no
    /// escapes (always the case for ASCII names), else the decoded string, so that the
    /// order is Python's code-point order rather than that of the `\uXXXX` escapes.
    fn sort_key(&self, i: usize) -> std::borrow::Cow<'_, [u8]> {
        let (start, key_end) = self.entries[i];
        let quoted = &self.buf[start..key_end];
        let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or(b"");
        if !inner.contains(&b'\\') {
            return inner.into();
        }
        serde_json::from_slice::<String>(quoted)
            .map(|s| s.into_bytes().into())
            .unwrap_or_else(|_| inner.into())
    }

    fn entry(&self, i: usize) -> &[u8] {
        let end = self.entries.get(i + 1).map_or(self.buf.len(), |e| e.0);
        &self.buf[self.entries[i].0..end]
    }
}

impl PyFormatter {
    /// A formatter in the given style.
    pub fn new(style: Style) -> Self {
        PyFormatter {
            style,
            level: 0,
            has_value: false,
            objects: Vec::new(),
        }
    }

    /// Where output goes now: the innermost open object's buffer, or the writer.
    fn sink<'a, W: ?Sized + Write>(&'a mut self, w: &'a mut W) -> Sink<'a, W> {
        match self.objects.last_mut() {
            Some(frame) => Sink::Object(&mut frame.buf),
            None => Sink::Out(w),
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.style == Style::Pretty && self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(close)
    }

    fn item<W: ?Sized + Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
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

/// The formatter's current output (see [`PyFormatter::sink`]).
enum Sink<'a, W: ?Sized> {
    Object(&'a mut Vec<u8>),
    Out(&'a mut W),
}

impl<W: ?Sized + Write> Write for Sink<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Object(v) => v.write(buf),
            Sink::Out(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Object(v) => v.write_all(buf),
            Sink::Out(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Object(_) => Ok(()),
            Sink::Out(w) => w.flush(),
        }
    }
}

/// Writes serde_json's default rendering of a scalar into the formatter's current sink.
macro_rules! to_sink {
    ($($name:ident($t:ty)),* $(,)?) => {$(
        fn $name<W: ?Sized + Write>(&mut self, w: &mut W, v: $t) -> io::Result<()> {
            CompactFormatter.$name(&mut self.sink(w), v)
        }
    )*};
}

impl Formatter for PyFormatter {
    to_sink!(
        write_bool(bool),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_number_str(&str),
        write_raw_fragment(&str),
        write_byte_array(&[u8]),
    );
    fn write_null<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.sink(w).write_all(b"null")
    }
    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, f: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(f))
    }
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, f: f64) -> io::Result<()> {
        self.sink(w).write_all(py_float_repr(f).as_bytes())
    }
    fn begin_string<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.sink(w).write_all(b"\"")
    }
    fn end_string<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.sink(w).write_all(b"\"")
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        self.sink(w).write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        match self.objects.last_mut() {
            Some(frame) => {
                let mut buf = std::mem::take(&mut frame.buf);
                let r = self.end(&mut buf, b"]");
                if let Some(frame) = self.objects.last_mut() {
                    frame.buf = buf;
                }
                r
            }
            None => self.end(w, b"]"),
        }
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match self.objects.last_mut() {
            Some(frame) => {
                let mut buf = std::mem::take(&mut frame.buf);
                let r = self.item(&mut buf, first);
                if let Some(frame) = self.objects.last_mut() {
                    frame.buf = buf;
                }
                r
            }
            None => self.item(w, first),
        }
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        // The brace goes to the enclosing sink now; the entries collect in a new frame.
        self.sink(w).write_all(b"{")?;
        self.level += 1;
        self.objects.push(ObjectFrame::default());
        Ok(())
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        let Some(frame) = self.objects.pop() else {
            return Ok(());
        };
        let mut order: Vec<usize> = (0..frame.entries.len()).collect();
        order.sort_by(|&a, &b| frame.sort_key(a).cmp(&frame.sort_key(b)));
        // Separators and indentation into a scratch buffer, then into the enclosing sink.
        let mut out = Vec::with_capacity(frame.buf.len() + 4 * order.len() * (self.level + 1) + 2);
        for (n, &i) in order.iter().enumerate() {
            self.item(&mut out, n == 0)?;
            out.extend_from_slice(frame.entry(i));
        }
        self.has_value = !order.is_empty();
        self.end(&mut out, b"}")?;
        self.sink(w).write_all(&out)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, _w: &mut W, _first: bool) -> io::Result<()> {
        if let Some(frame) = self.objects.last_mut() {
            let start = frame.buf.len();
            frame.entries.push((start, start));
        }
        Ok(())
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        let colon: &[u8] = if self.style == Style::Pretty {
            b": "
        } else {
            b":"
        };
        if let Some(frame) = self.objects.last_mut() {
            let key_end = frame.buf.len();
            if let Some(entry) = frame.entries.last_mut() {
                entry.1 = key_end;
            }
            frame.buf.extend_from_slice(colon);
        }
        Ok(())
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json hands over runs that need no JSON escaping; ensure_ascii still escapes
        // everything outside ' '..='~' (DEL included).
        let w = &mut self.sink(w);
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
        let w = &mut self.sink(w);
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
    fn keys_sorted_by_code_point_whatever_the_map_order() {
        // Insertion order is kept by serde_json::Map in this build (yara-x enables
        // preserve_order); Python sorts by code point, not by the escaped form.
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("z", 1),
            ("\u{e9}", 2),
            ("a\"b", 3),
            ("\u{1f600}", 4),
            ("\u{ffff}", 5),
        ] {
            m.insert(k.into(), v.into());
        }
        let v = json!([{"y": [m.clone(), {}], "x": null}, m]);
        let inner = r#"{"a\"b":3,"z":1,"\u00e9":2,"\uffff":5,"\ud83d\ude00":4}"#;
        assert_eq!(
            to_string(&v, Style::Compact),
            format!(r#"[{{"x":null,"y":[{inner},{{}}]}},{inner}]"#)
        );
        let pretty = to_string(&json!({"b": {"d": [1], "c": {}}, "a": []}), Style::Pretty);
        assert_eq!(
            pretty,
            "{\n  \"a\": [], \n  \"b\": {\n    \"c\": {}, \n    \"d\": [\n      1\n    ]\n  }\n}\n"
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
