//! PDF: pdfid's keyword counts, JavaScript and URIs.
//!
//! Two passes over the raw bytes, neither of which trusts the cross-reference table
//! (hostile PDFs break it on purpose, and readers repair it anyway):
//!
//! * [`pdfid`] re-implements pdfid's tokenizer exactly: a word is a run of ASCII letters
//!   and digits, a name is a word after `/`, `#xx` escapes inside a name are decoded (and
//!   counted as hex-coded, the obfuscation pdfid exists to reveal), and only exact,
//!   case-sensitive matches of its keyword list count.
//! * [`objects`] finds every `N G obj … endobj`, decodes `FlateDecode`/`ASCIIHexDecode`
//!   streams (bounded), unpacks object streams (`/ObjStm`), and reads `/JS` (inline or by
//!   reference) and `/URI` values.
//!
//! The section has CAPE's `static.pdf` shape: `Info` (header, entropies, `%%EOF` count),
//! `Dates`, `Keywords`, `JSStreams` and `Annot_URLs`/`JS_URLs`.

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Map, Value, json};

use super::Findings;

/// pdfid's keyword list, in its output order.
pub const KEYWORDS: &[&str] = &[
    "obj",
    "endobj",
    "stream",
    "endstream",
    "xref",
    "trailer",
    "startxref",
    "/Page",
    "/Encrypt",
    "/ObjStm",
    "/JS",
    "/JavaScript",
    "/AA",
    "/OpenAction",
    "/AcroForm",
    "/JBIG2Decode",
    "/RichMedia",
    "/Launch",
    "/EmbeddedFile",
    "/XFA",
    "/URI",
];

/// Most objects parsed from one file.
const MAX_OBJECTS: usize = 200_000;
/// Largest decoded stream.
const MAX_STREAM: usize = 16 * 1024 * 1024;
/// Most bytes decoded from all streams of one file.
const MAX_DECODED_TOTAL: usize = 128 * 1024 * 1024;
/// Most JavaScript entries and URIs listed.
const MAX_LISTED: usize = 1000;

/// Where the `%PDF` header is, within pdfid's 1024-byte window.
pub fn header_offset(data: &[u8]) -> Option<usize> {
    memchr::memmem::find(&data[..data.len().min(1024)], b"%PDF")
}

/// pdfid's counts: keyword → (count, hex-coded count), plus `/Colors > 2^24`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfId {
    /// The header line from `%PDF`, at most 10 characters (pdfid's `Header`).
    pub header: String,
    /// Counts in [`KEYWORDS`] order.
    pub counts: Vec<(&'static str, u64, u64)>,
    /// pdfid's CVE-2009-3459 check: `/Colors` followed by a number above 2^24.
    pub colors: u64,
}

fn is_word(b: u8) -> bool {
    // pdfid upper-cases `chr(byte)` and compares with 'A'..'Z'/'0'..'9'; 0xDF (ß) becomes
    // "SS", which compares inside that range.
    b.is_ascii_alphanumeric() || b == 0xdf
}

/// pdfid's tokenizer and keyword counter over the bytes after the header line.
pub fn pdfid(data: &[u8]) -> PdfId {
    let start = header_offset(data).unwrap_or(0);
    let line_end = data[start..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(data.len(), |n| start + n);
    let header: String = data[start..line_end.min(start + 10)]
        .iter()
        .map(|&b| char::from(b))
        .collect();
    let mut counts: Vec<(&'static str, u64, u64)> = KEYWORDS.iter().map(|k| (*k, 0, 0)).collect();
    let mut colors = 0;
    let mut word: Vec<u8> = Vec::new();
    let mut hexcode = false;
    let mut slash = false;
    let mut last_name: Vec<u8> = Vec::new();
    let mut flush = |word: &mut Vec<u8>, slash: bool, hexcode: &mut bool, last: &mut Vec<u8>| {
        if !word.is_empty() {
            for (k, n, h) in counts.iter_mut() {
                let kb = k.as_bytes();
                let matches = if slash {
                    kb.first() == Some(&b'/') && &kb[1..] == word.as_slice()
                } else {
                    kb == word.as_slice()
                };
                if matches {
                    *n += 1;
                    if *hexcode {
                        *h += 1;
                    }
                }
            }
            if slash {
                last.clear();
                last.push(b'/');
                last.extend_from_slice(word);
            }
        }
        word.clear();
        *hexcode = false;
    };
    let body = &data[line_end..];
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if is_word(c) {
            word.push(c);
        } else if slash && c == b'#' {
            match (body.get(i + 1), body.get(i + 2)) {
                (Some(&d1), Some(&d2)) if d1.is_ascii_hexdigit() && d2.is_ascii_hexdigit() => {
                    let v = (hex_val(d1) << 4) | hex_val(d2);
                    word.push(v);
                    hexcode = true;
                    i += 2;
                }
                _ => flush(&mut word, slash, &mut hexcode, &mut last_name),
            }
        } else {
            if last_name == b"/Colors"
                && !word.is_empty()
                && word.iter().all(u8::is_ascii_digit)
                && word.len() <= 30
                && std::str::from_utf8(&word)
                    .ok()
                    .and_then(|w| w.parse::<u128>().ok())
                    .is_some_and(|n| n > 1 << 24)
            {
                colors += 1;
            }
            flush(&mut word, slash, &mut hexcode, &mut last_name);
            slash = c == b'/';
        }
        i += 1;
    }
    flush(&mut word, slash, &mut hexcode, &mut last_name);
    PdfId {
        header,
        counts,
        colors,
    }
}

fn hex_val(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

/// Shannon entropy in bits per byte.
fn entropy(counts: &[u64; 256]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}

/// One indirect object.
struct Object {
    id: u32,
    offset: usize,
    size: usize,
    /// The dictionary/value part with `#xx` name escapes decoded.
    dict: Vec<u8>,
    /// The decoded stream, if any.
    stream: Option<Vec<u8>>,
}

/// Analyses a PDF. Returns the `static.pdf` section.
pub fn analyze(data: &[u8], f: &mut Findings) -> Value {
    let id = pdfid(data);
    let mut keywords = Map::new();
    for (k, n, _) in &id.counts {
        keywords.insert((*k).to_owned(), json!(n));
    }
    keywords.insert("/Colors > 2^24".into(), json!(id.colors));
    let hex: Map<String, Value> = id
        .counts
        .iter()
        .filter(|(_, _, h)| *h > 0)
        .map(|(k, _, h)| ((*k).to_owned(), json!(h)))
        .collect();

    let (objects, stream_bytes, mut errors) = objects(data);
    let (eofs, after) = eof_counts(data);
    let mut all = [0u64; 256];
    for &b in data {
        all[usize::from(b)] += 1;
    }
    let mut inside = [0u64; 256];
    for range in &stream_bytes {
        for &b in &data[range.clone()] {
            inside[usize::from(b)] += 1;
        }
    }
    let mut outside = all;
    for (o, i) in outside.iter_mut().zip(inside.iter()) {
        *o -= *i;
    }

    let by_id: HashMap<u32, &Object> = objects.iter().map(|o| (o.id, o)).collect();
    let mut js = Vec::new();
    let mut uris: Vec<String> = Vec::new();
    let mut js_urls: Vec<String> = Vec::new();
    let mut dates = Vec::new();
    for o in &objects {
        for value in values_after(&o.dict, b"/JS") {
            let code = match value {
                PdfValue::Str(s) => Some(s),
                PdfValue::Ref(r) => by_id.get(&r).and_then(|t| {
                    t.stream.clone().or_else(|| match first_value(&t.dict) {
                        Some(PdfValue::Str(s)) => Some(s),
                        _ => None,
                    })
                }),
            };
            if let Some(code) = code
                && js.len() < MAX_LISTED
            {
                let text = String::from_utf8_lossy(&code).into_owned();
                for u in crate::strings::extract_urls(text.as_bytes()) {
                    if !js_urls.contains(&u) {
                        js_urls.push(u);
                    }
                }
                f.iocs.add_text(&text);
                js.push(json!({
                    "Object ID": o.id,
                    "Offset": o.offset,
                    "Size": o.size,
                    "Data": text,
                }));
            }
        }
        for value in values_after(&o.dict, b"/URI") {
            if let PdfValue::Str(s) = value {
                let u = String::from_utf8_lossy(&s).into_owned();
                if !u.is_empty() && uris.len() < MAX_LISTED && !uris.contains(&u) {
                    f.iocs.add_text(&u);
                    if u.contains("://") {
                        f.iocs.add_url(&u);
                    }
                    uris.push(u);
                }
            }
        }
        for key in [&b"/CreationDate"[..], b"/ModDate"] {
            for value in values_after(&o.dict, key) {
                if let PdfValue::Str(s) = value {
                    dates.push(json!({
                        "name": String::from_utf8_lossy(&key[1..]),
                        "value": String::from_utf8_lossy(&s),
                    }));
                }
            }
        }
    }
    if eofs == 0 {
        errors.push("no %%EOF marker: truncated or incomplete file".into());
    }
    if header_offset(data).is_none() {
        errors.push("no %PDF header in the first 1024 bytes".into());
    }
    f.errors
        .extend(errors.into_iter().map(|e| format!("pdf: {e}")));

    json!({
        "Info": {
            "PDF Header": id.header,
            "Total Entropy": format!("{:.6}", entropy(&all)),
            "Entropy In Streams": format!("{:.6}", entropy(&inside)),
            "Entropy Out Streams": format!("{:.6}", entropy(&outside)),
            "Count %% EOF": eofs,
            "Data After EOF": after,
        },
        "Dates": dates,
        "Keywords": keywords,
        "HexcodeKeywords": hex,
        "Objects": objects.len(),
        "JSStreams": js,
        "Annot_URLs": uris,
        "JS_URLs": js_urls,
    })
}

/// The number of `%%EOF` markers and how many bytes follow the last one (after its end
/// of line).
fn eof_counts(data: &[u8]) -> (usize, usize) {
    let hits: Vec<usize> = memchr::memmem::find_iter(data, b"%%EOF").collect();
    let Some(&last) = hits.last() else {
        return (0, 0);
    };
    let mut end = last + 5;
    if data.get(end) == Some(&b'\r') {
        end += 1;
    }
    if data.get(end) == Some(&b'\n') {
        end += 1;
    }
    (hits.len(), data.len() - end)
}

/// Finds the indirect objects, decodes their streams and unpacks object streams. Also
/// returns the byte ranges of the raw streams (for the entropy split) and parse issues.
fn objects(data: &[u8]) -> (Vec<Object>, Vec<std::ops::Range<usize>>, Vec<String>) {
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    let mut errors = Vec::new();
    let mut decoded_total = 0usize;
    let starts: Vec<(usize, u32, usize)> = memchr::memmem::find_iter(data, b"obj")
        .filter(|&p| !data[..p].ends_with(b"end"))
        .filter_map(|p| object_header(data, p).map(|(s, id)| (s, id, p + 3)))
        .take(MAX_OBJECTS)
        .collect();
    for (k, &(start, id, body_start)) in starts.iter().enumerate() {
        let limit = starts.get(k + 1).map_or(data.len(), |n| n.0);
        let region = &data[body_start..limit.max(body_start)];
        let end = memchr::memmem::find(region, b"endobj").unwrap_or(region.len());
        let body = &region[..end];
        let (dict_raw, stream_raw) = match find_keyword(body, b"stream") {
            Some(s) => {
                let mut ds = s + 6;
                if body.get(ds) == Some(&b'\r') {
                    ds += 1;
                }
                if body.get(ds) == Some(&b'\n') {
                    ds += 1;
                }
                let se =
                    memchr::memmem::rfind(&body[ds..], b"endstream").map_or(body.len(), |e| ds + e);
                ranges.push(body_start + ds..body_start + se);
                (&body[..s], Some(&body[ds..se]))
            }
            None => (body, None),
        };
        let dict = decode_names(dict_raw);
        let stream = stream_raw.map(|raw| {
            let room = MAX_DECODED_TOTAL.saturating_sub(decoded_total);
            let (d, err) = decode_stream(&dict, raw, room.min(MAX_STREAM));
            if let Some(e) = err {
                errors.push(format!("object {id}: {e}"));
            }
            decoded_total += d.len();
            d
        });
        let is_objstm = contains_name(&dict, b"/ObjStm");
        let obj = Object {
            id,
            offset: start,
            size: body_start + end - start,
            dict,
            stream,
        };
        if is_objstm && let Some(s) = &obj.stream {
            out.extend(unpack_objstm(&obj.dict, s));
        }
        out.push(obj);
        if out.len() >= MAX_OBJECTS {
            errors.push("object limit reached".into());
            break;
        }
    }
    (out, ranges, errors)
}

/// For `obj` at `p`, the start of `N G obj` and N, if the two integers precede it.
fn object_header(data: &[u8], p: usize) -> Option<(usize, u32)> {
    // The keyword must end a token.
    if data.get(p + 3).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut i = p;
    let skip_ws = |i: &mut usize| {
        while *i > 0 && data[*i - 1].is_ascii_whitespace() {
            *i -= 1;
        }
    };
    let digits = |i: &mut usize| -> Option<usize> {
        let end = *i;
        while *i > 0 && data[*i - 1].is_ascii_digit() && end - *i < 10 {
            *i -= 1;
        }
        (*i < end).then_some(end)
    };
    if i == 0 || !data[i - 1].is_ascii_whitespace() {
        return None;
    }
    skip_ws(&mut i);
    digits(&mut i)?;
    if i == 0 || !data[i - 1].is_ascii_whitespace() {
        return None;
    }
    skip_ws(&mut i);
    let id_end = digits(&mut i)?;
    let id = std::str::from_utf8(&data[i..id_end]).ok()?.parse().ok()?;
    Some((i, id))
}

/// The position of a keyword that is a whole token.
fn find_keyword(body: &[u8], kw: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(body, kw).find(|&p| {
        let before = p == 0 || !body[p - 1].is_ascii_alphanumeric();
        let after = body
            .get(p + kw.len())
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        before && after
    })
}

/// Decodes `#xx` escapes inside names, so `/J#53` is seen as `/JS`.
fn decode_names(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_name = false;
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'/' {
            in_name = true;
        } else if in_name && c == b'#' {
            if let (Some(&a), Some(&b)) = (raw.get(i + 1), raw.get(i + 2))
                && a.is_ascii_hexdigit()
                && b.is_ascii_hexdigit()
            {
                out.push((hex_val(a) << 4) | hex_val(b));
                i += 3;
                continue;
            }
        } else if !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-') {
            in_name = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn contains_name(dict: &[u8], name: &[u8]) -> bool {
    memchr::memmem::find_iter(dict, name).any(|p| {
        dict.get(p + name.len())
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// The filters named in `/Filter` (a name or an array of names), abbreviations expanded.
fn filters(dict: &[u8]) -> Vec<String> {
    let Some(p) = memchr::memmem::find(dict, b"/Filter") else {
        return Vec::new();
    };
    let rest = &dict[p + 7..];
    let rest = rest
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .map_or(&rest[..0], |s| &rest[s..]);
    let span = if rest.first() == Some(&b'[') {
        let end = rest.iter().position(|&c| c == b']').unwrap_or(rest.len());
        &rest[..end]
    } else {
        let end = rest
            .iter()
            .skip(1)
            .position(|&c| c == b'/' || c == b'>' || c.is_ascii_whitespace())
            .map_or(rest.len(), |e| e + 1);
        &rest[..end]
    };
    span.split(|&c| c == b'/')
        .skip(1)
        .map(|n| {
            let n: String = n
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .map(|&c| char::from(c))
                .collect();
            match n.as_str() {
                "Fl" => "FlateDecode".to_owned(),
                "AHx" => "ASCIIHexDecode".to_owned(),
                _ => n,
            }
        })
        .collect()
}

/// Applies the stream's filters, stopping at `limit` bytes and at filters not decoded here
/// (those leave the data as it was at that point).
fn decode_stream(dict: &[u8], raw: &[u8], limit: usize) -> (Vec<u8>, Option<String>) {
    let mut data = raw.to_vec();
    for filter in filters(dict) {
        match filter.as_str() {
            "FlateDecode" => {
                let mut out = Vec::new();
                let r = flate2::read::ZlibDecoder::new(&data[..])
                    .take(limit as u64 + 1)
                    .read_to_end(&mut out);
                if out.len() > limit {
                    out.truncate(limit);
                    return (out, Some("decoded stream size limit reached".into()));
                }
                // Truncated or corrupt deflate data is common; keep what inflated.
                if let Err(e) = r {
                    if out.is_empty() {
                        return (data, Some(format!("FlateDecode: {e}")));
                    }
                    return (out, Some(format!("FlateDecode: {e}")));
                }
                data = out;
            }
            "ASCIIHexDecode" => {
                let digits: Vec<u8> = data
                    .iter()
                    .copied()
                    .take_while(|&c| c != b'>')
                    .filter(u8::is_ascii_hexdigit)
                    .collect();
                data = digits
                    .chunks(2)
                    .map(|p| (hex_val(p[0]) << 4) | p.get(1).map_or(0, |&d| hex_val(d)))
                    .take(limit)
                    .collect();
            }
            _ => return (data, None),
        }
    }
    (data, None)
}

/// The objects inside an object stream: `/N` pairs of (number, offset) then the objects
/// from `/First`.
fn unpack_objstm(dict: &[u8], s: &[u8]) -> Vec<Object> {
    let int_after = |key: &[u8]| -> Option<usize> {
        let p = memchr::memmem::find(dict, key)? + key.len();
        let rest = &dict[p..];
        let start = rest.iter().position(|c| !c.is_ascii_whitespace())?;
        let end = rest[start..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(rest.len(), |e| start + e);
        std::str::from_utf8(&rest[start..end]).ok()?.parse().ok()
    };
    let (Some(n), Some(first)) = (int_after(b"/N"), int_after(b"/First")) else {
        return Vec::new();
    };
    let header = &s[..first.min(s.len())];
    let nums: Vec<usize> = header
        .split(|c| c.is_ascii_whitespace())
        .filter_map(|t| std::str::from_utf8(t).ok()?.parse().ok())
        .take(2 * n.min(MAX_OBJECTS))
        .collect();
    let pairs: Vec<(usize, usize)> = nums.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let mut out = Vec::new();
    for (k, &(id, off)) in pairs.iter().enumerate() {
        let start = first.saturating_add(off).min(s.len());
        let end = pairs
            .get(k + 1)
            .map_or(s.len(), |p| first.saturating_add(p.1).min(s.len()))
            .max(start);
        out.push(Object {
            id: u32::try_from(id).unwrap_or(u32::MAX),
            offset: 0,
            size: end - start,
            dict: decode_names(&s[start..end]),
            stream: None,
        });
    }
    out
}

/// A value found after a key.
enum PdfValue {
    Str(Vec<u8>),
    Ref(u32),
}

/// Every value following the name `key` (as a whole name) in `dict`: literal or hex
/// strings, or `N G R` references.
fn values_after(dict: &[u8], key: &[u8]) -> Vec<PdfValue> {
    memchr::memmem::find_iter(dict, key)
        .filter(|&p| {
            dict.get(p + key.len())
                .is_none_or(|c| !c.is_ascii_alphanumeric())
        })
        .filter_map(|p| first_value(&dict[p + key.len()..]))
        .collect()
}

/// The value at the start of `s` (after whitespace).
fn first_value(s: &[u8]) -> Option<PdfValue> {
    let start = s.iter().position(|c| !c.is_ascii_whitespace())?;
    let s = &s[start..];
    match s.first()? {
        b'(' => Some(PdfValue::Str(literal_string(s))),
        b'<' if s.get(1) != Some(&b'<') => {
            let end = s.iter().position(|&c| c == b'>').unwrap_or(s.len());
            let digits: Vec<u8> = s[1..end]
                .iter()
                .copied()
                .filter(u8::is_ascii_hexdigit)
                .collect();
            Some(PdfValue::Str(
                digits
                    .chunks(2)
                    .map(|p| (hex_val(p[0]) << 4) | p.get(1).map_or(0, |&d| hex_val(d)))
                    .collect(),
            ))
        }
        c if c.is_ascii_digit() => {
            let toks: Vec<&[u8]> = s
                .split(|c| c.is_ascii_whitespace())
                .filter(|t| !t.is_empty())
                .take(3)
                .collect();
            match toks.as_slice() {
                [n, g, r] if g.iter().all(u8::is_ascii_digit) && r.starts_with(b"R") => {
                    std::str::from_utf8(n).ok()?.parse().ok().map(PdfValue::Ref)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A literal string starting at `(`: balanced parentheses, backslash escapes (octal,
/// `\n` and friends, line continuation) decoded.
fn literal_string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b'(' => {
                if depth > 0 {
                    out.push(c);
                }
                depth += 1;
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
                out.push(c);
            }
            b'\\' => {
                i += 1;
                let Some(&e) = s.get(i) else { break };
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'\r' | b'\n' => {
                        if e == b'\r' && s.get(i + 1) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match s.get(i + 1) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xff) as u8);
                    }
                    _ => out.push(e),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    // UTF-16BE text strings (BOM FE FF) become their ASCII-range characters.
    if out.starts_with(&[0xfe, 0xff]) {
        let units: Vec<u16> = out[2..]
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        return String::from_utf16_lossy(&units).into_bytes();
    }
    out
}
