//! Office document metadata in CAPE's `static.office.Metadata` shape:
//! `SummaryInformation` and `DocumentSummaryInformation`, each a map of property name to
//! text.
//!
//! * OLE2: the `\x05SummaryInformation` / `\x05DocumentSummaryInformation` property set
//!   streams (MS-OLEPS), named and formatted as olefile's `OleMetadata` does and CAPE
//!   prints them (`str(value)`): integers in decimal, `True`, times as
//!   `YYYY-MM-DD HH:MM:SS[.ffffff]`, `total_edit_time` in seconds, empty and
//!   zero values left out. Byte strings are decoded (UTF-8 for code page 65001, else
//!   Latin-1) where CAPE would print Python's `b'…'` repr.
//! * OOXML: the child elements of `docProps/core.xml` (local name, e.g. `creator`,
//!   `lastModifiedBy`, `created`) and `docProps/app.xml` (tag, e.g. `Application`,
//!   `Company`) that hold text, as CAPE's `_get_xml_meta` reads them.

use std::io::{Read, Seek};

use serde_json::{Map, Value, json};

/// olefile's `SUMMARY_ATTRIBS`, by property id (index + 1).
const SUMMARY: &[&str] = &[
    "codepage",
    "title",
    "subject",
    "author",
    "keywords",
    "comments",
    "template",
    "last_saved_by",
    "revision_number",
    "total_edit_time",
    "last_printed",
    "create_time",
    "last_saved_time",
    "num_pages",
    "num_words",
    "num_chars",
    "thumbnail",
    "creating_application",
    "security",
];

/// olefile's `DOCSUM_ATTRIBS`, by property id (index + 1).
const DOCSUM: &[&str] = &[
    "codepage_doc",
    "category",
    "presentation_target",
    "bytes",
    "lines",
    "paragraphs",
    "slides",
    "notes",
    "hidden_slides",
    "mm_clips",
    "scale_crop",
    "heading_pairs",
    "titles_of_parts",
    "manager",
    "company",
    "links_dirty",
    "chars_with_spaces",
    "unused",
    "shared_doc",
    "link_base",
    "hlinks",
    "hlinks_changed",
    "version",
    "dig_sig",
    "content_type",
    "content_status",
    "language",
    "doc_version",
];

/// Most properties read from one set (a hostile count is cut).
const MAX_PROPS: usize = 512;
/// Longest string value kept.
const MAX_VALUE: usize = 64 * 1024;
/// PIDSI_EDITTIME: a duration, which olefile gives in seconds.
const EDIT_TIME: u32 = 10;

/// `SummaryInformation` and `DocumentSummaryInformation` of a compound file (each empty
/// when its stream is missing); problems are appended to `errors`.
pub fn ole<F: Read + Seek>(
    cfb: &mut cfb::CompoundFile<F>,
    errors: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (stream, key, names) in [
        ("/\u{5}SummaryInformation", "SummaryInformation", SUMMARY),
        (
            "/\u{5}DocumentSummaryInformation",
            "DocumentSummaryInformation",
            DOCSUM,
        ),
    ] {
        let mut props = Map::new();
        if cfb.is_stream(stream) {
            match super::vba::read_stream(cfb, std::path::Path::new(stream)) {
                Ok(data) => {
                    if let Err(e) = property_set(&data, names, &mut props) {
                        errors.push(format!("office: {key}: {e}"));
                    }
                }
                Err(e) => errors.push(format!("office: {key}: {e}")),
            }
        }
        out.insert(key.into(), Value::Object(props));
    }
    out
}

use super::{u16_at, u32_at};

/// Reads the first property set of a property set stream into `out`.
fn property_set(d: &[u8], names: &[&str], out: &mut Map<String, Value>) -> Result<(), String> {
    if u16_at(d, 0) != Some(0xfffe) {
        return Err("not a property set stream (byte order mark)".into());
    }
    let sets = u32_at(d, 24).ok_or("truncated header")?;
    if sets == 0 {
        return Ok(());
    }
    let start = u32_at(d, 44).ok_or("truncated header")? as usize;
    let set = d.get(start..).ok_or("property set offset past the end")?;
    let count = u32_at(set, 4).ok_or("truncated property set")? as usize;
    let mut codepage: i64 = 1252;
    let mut values = Vec::new();
    for i in 0..count.min(MAX_PROPS) {
        let (Some(id), Some(off)) = (u32_at(set, 8 + 8 * i), u32_at(set, 12 + 8 * i)) else {
            return Err(format!("property table cut after {i} of {count} entries"));
        };
        let Some(v) = property(set, off as usize, id) else {
            continue;
        };
        if id == 1
            && let Prop::Int(cp) = v
        {
            codepage = cp;
        }
        values.push((id, v));
    }
    for (id, v) in values {
        let Some(name) = (id as usize).checked_sub(1).and_then(|i| names.get(i)) else {
            continue;
        };
        let text = match v {
            Prop::Int(0) | Prop::Bool(false) => continue,
            Prop::Int(n) => n.to_string(),
            Prop::Bool(true) => "True".into(),
            Prop::Time(t) => t,
            Prop::Bytes(b) => decode(&b, codepage),
            Prop::Text(s) => s,
        };
        if !text.is_empty() {
            out.insert((*name).into(), json!(text));
        }
    }
    Ok(())
}

enum Prop {
    Int(i64),
    Bool(bool),
    Time(String),
    Bytes(Vec<u8>),
    Text(String),
}

/// One typed property value at `off` in the set (olefile's `getproperties` cases; the
/// types it does not implement, vectors and blobs, are `None`).
fn property(set: &[u8], off: usize, id: u32) -> Option<Prop> {
    let ty = u32_at(set, off)? & 0xffff;
    let v = off.checked_add(4)?;
    Some(match ty {
        2 => Prop::Int(i64::from(u16_at(set, v)? as i16)),
        18 => Prop::Int(i64::from(u16_at(set, v)?)),
        3 | 22 | 10 => Prop::Int(i64::from(u32_at(set, v)? as i32)),
        19 | 23 => Prop::Int(i64::from(u32_at(set, v)?)),
        17 => Prop::Int(i64::from(*set.get(v)?)),
        11 => Prop::Bool(u16_at(set, v)? != 0),
        // VT_BSTR / VT_LPSTR: count includes the terminating NUL; NULs are dropped.
        8 | 30 => {
            let n = (u32_at(set, v)? as usize).min(MAX_VALUE);
            let b = set.get(v + 4..(v + 4 + n.saturating_sub(1)).min(set.len()))?;
            Prop::Bytes(b.iter().copied().filter(|&c| c != 0).collect())
        }
        // VT_LPWSTR: count in characters.
        31 => {
            let n = (u32_at(set, v)? as usize).min(MAX_VALUE);
            let b = set.get(v + 4..(v + 4 + 2 * n).min(set.len()))?;
            let s: String =
                char::decode_utf16(b.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])))
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect();
            Prop::Text(s.trim_end_matches('\0').to_owned())
        }
        64 => {
            let lo = u32_at(set, v)?;
            let hi = u32_at(set, v + 4)?;
            let ticks = (u64::from(hi) << 32) | u64::from(lo);
            if id == EDIT_TIME {
                // olefile gives the editing time in whole seconds.
                Prop::Int((ticks / 10_000_000) as i64)
            } else {
                Prop::Time(filetime(ticks))
            }
        }
        _ => return None,
    })
}

fn decode(b: &[u8], codepage: i64) -> String {
    // 65001 as a signed VT_I2 is -535.
    if codepage == 65001 || codepage == -535 {
        String::from_utf8_lossy(b).into_owned()
    } else {
        super::vba::latin1(b)
    }
}

/// A FILETIME (100 ns ticks since 1601-01-01 UTC) as Python's `str(datetime)`.
pub fn filetime(ticks: u64) -> String {
    let micros = ticks / 10;
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    // 1601-01-01 is 11 644 473 600 s before the Unix epoch.
    let mut s = crate::pe::utc_datetime(secs as i64 - 11_644_473_600);
    if frac != 0 {
        s.push_str(&format!(".{frac:06}"));
    }
    s
}

/// OOXML metadata from `docProps/core.xml` and `docProps/app.xml`; `None` without both
/// parts (CAPE's `_get_xml_meta` then leaves `Metadata` empty).
pub fn ooxml(core: Option<&[u8]>, app: Option<&[u8]>) -> Option<Map<String, Value>> {
    let (core, app) = (core?, app?);
    let mut summary = Map::new();
    for (tag, text) in text_children(&String::from_utf8_lossy(core)) {
        // "dc:creator" -> "creator"; unprefixed tags are skipped, as CAPE's split does.
        if let Some((_, local)) = tag.split_once(':') {
            summary.entry(local.to_owned()).or_insert(json!(text));
        }
    }
    let mut docsum = Map::new();
    for (tag, text) in text_children(&String::from_utf8_lossy(app)) {
        docsum.entry(tag).or_insert(json!(text));
    }
    let mut out = Map::new();
    out.insert("SummaryInformation".into(), Value::Object(summary));
    out.insert("DocumentSummaryInformation".into(), Value::Object(docsum));
    Some(out)
}

/// `(tag, text)` for each child element of the root whose first content is text.
fn text_children(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            // Declaration, comment or doctype: skip to its end.
            let end = if rest.starts_with("!--") {
                rest.find("-->").map(|e| e + 3)
            } else {
                rest.find('>').map(|e| e + 1)
            };
            rest = &rest[end.unwrap_or(rest.len())..];
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        if let Some(_closing) = tag.strip_prefix('/') {
            depth = depth.saturating_sub(1);
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag
            .trim_end_matches('/')
            .split(|c: char| c.is_ascii_whitespace())
            .next()
            .unwrap_or("");
        if depth == 1 && !self_closing {
            let text = &rest[..rest.find('<').unwrap_or(rest.len())];
            if !text.is_empty() && out.len() < MAX_PROPS {
                let text = super::office::unescape(text);
                out.push((name.to_owned(), text.chars().take(MAX_VALUE).collect()));
            }
        }
        if !self_closing {
            depth += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetimes_print_like_python() {
        assert_eq!(filetime(0), "1601-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC = unix 1709210096.
        let t = (1_709_210_096u64 + 11_644_473_600) * 10_000_000;
        assert_eq!(filetime(t), "2024-02-29 12:34:56");
        assert_eq!(filetime(t + 1_234_560), "2024-02-29 12:34:56.123456");
        assert_eq!(filetime(u64::MAX), "60056-05-28 05:36:10.955161");
    }

    #[test]
    fn hostile_property_sets() {
        let mut m = Map::new();
        for d in [
            &[][..],
            &[0xfe, 0xff],
            &[
                0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
        ] {
            assert!(property_set(d, SUMMARY, &mut m).is_err());
        }
        // One set at offset 48 declaring 2^32-1 properties, then nothing.
        let mut d = vec![0u8; 48];
        d[0] = 0xfe;
        d[1] = 0xff;
        d[24] = 1;
        d[44] = 48;
        d.extend([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(property_set(&d, SUMMARY, &mut m).is_err());
        assert!(m.is_empty());
        // A string whose length runs past the end is cut, not followed.
        let mut d2 = d[..48].to_vec();
        d2.extend(8u32.to_le_bytes()); // size
        d2.extend(1u32.to_le_bytes()); // count
        d2.extend(2u32.to_le_bytes()); // id: title
        d2.extend(16u32.to_le_bytes()); // offset
        d2.extend(30u32.to_le_bytes()); // VT_LPSTR
        d2.extend(u32::MAX.to_le_bytes());
        d2.extend(b"Hi");
        property_set(&d2, SUMMARY, &mut m).unwrap();
        assert_eq!(m["title"], "Hi");
    }

    #[test]
    fn xml_children() {
        let xml = r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="x"><dc:title>A &amp; B</dc:title><dc:subject/><!-- c --><cp:keywords></cp:keywords><dcterms:created xsi:type="W3CDTF">2024-01-02T03:04:05Z</dcterms:created><x><y>deep</y></x></cp:coreProperties>"#;
        let m = ooxml(Some(xml.as_bytes()), Some(b"<Properties><Company>ACME</Company><HeadingPairs><vt:vector/></HeadingPairs></Properties>")).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"SummaryInformation": {"title": "A & B", "created": "2024-01-02T03:04:05Z"},
                   "DocumentSummaryInformation": {"Company": "ACME"}})
        );
        assert!(ooxml(Some(b"<a>"), None).is_none());
        // Unbalanced and garbage input ends.
        let _ = text_children("<<<>>></></></a><b");
    }
}
