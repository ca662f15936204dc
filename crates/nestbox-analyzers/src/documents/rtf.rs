//! RTF: embedded OLE objects (`\objdata`) and the exploit classes they are known for.
//!
//! Each `\objdata` group is hex text (whitespace and control words interleaved, as
//! exploit kits do to defeat naive scanners) holding an OLE1 ObjectHeader: version,
//! format id, class name, topic, item, then the native data. Entries have the keys of
//! CAPE's `office_rtf` records (`class_name`, `size`, `filename`, `type_embed`, `CVE`,
//! `sha256`, `index`).

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::Findings;

/// Most objects reported.
const MAX_OBJECTS: usize = 1000;
/// Largest decoded object.
const MAX_OBJECT: usize = 64 * 1024 * 1024;

/// Whether the data is RTF (Word accepts `{\rt` followed by anything).
pub fn is_rtf(data: &[u8]) -> bool {
    data.starts_with(b"{\\rt")
}

/// The `static.rtf` section: `{objects: [...]}`.
pub fn analyze(data: &[u8], f: &mut Findings) -> Value {
    let mut objects = Vec::new();
    for p in memchr::memmem::find_iter(data, b"\\objdata").take(MAX_OBJECTS) {
        let bytes = hex_group(&data[p + 8..]);
        let mut entry = json!({
            "class_name": "", "size": bytes.len(), "filename": "", "type_embed": "",
            "CVE": "", "sha256": hex::encode(Sha256::digest(&bytes)), "index": format!("{p:08X}h"),
        });
        match ole1(&bytes) {
            Some(obj) => {
                entry["class_name"] = json!(obj.class);
                entry["type_embed"] = json!(match obj.format {
                    1 => "Linked",
                    2 => "Embedded",
                    _ => "Unknown",
                });
                entry["size"] = json!(obj.native.len());
                entry["sha256"] = json!(hex::encode(Sha256::digest(obj.native)));
                let class = obj.class.to_ascii_lowercase();
                entry["CVE"] = json!(if class == "ole2link" {
                    "Possibly an exploit for the OLE2Link vulnerability (VU#921560, CVE-2017-0199)"
                } else if class.starts_with("equation.3") {
                    "Possibly an exploit for the Equation Editor vulnerability (CVE-2017-11882, CVE-2018-0802)"
                } else {
                    ""
                });
                if class == "package"
                    && let Some(name) = package_name(obj.native)
                {
                    f.iocs.add_text(&name);
                    entry["filename"] = json!(name);
                }
                // Linked objects and OLE2Link carry their URL in the native data.
                let mut i = crate::iocs::Iocs::default();
                for u in crate::strings::extract_urls(obj.native) {
                    i.add_url(&u);
                }
                f.iocs.merge(&i);
            }
            None => {
                entry["filename"] = json!(format!("object_{p:08X}.raw"));
            }
        }
        objects.push(entry);
    }
    json!({ "objects": objects })
}

/// Decodes the hex digits of a group up to its closing brace, skipping whitespace,
/// nested groups' braces and control words (`\bin` payloads are not followed).
fn hex_group(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut hi: Option<u8> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() && out.len() < MAX_OBJECT {
        let c = s[i];
        match c {
            b'{' => depth += 1,
            b'}' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b'\\' => {
                // Skip the control word and its numeric parameter.
                i += 1;
                while i < s.len() && s[i].is_ascii_alphabetic() {
                    i += 1;
                }
                while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'-') {
                    i += 1;
                }
                continue;
            }
            _ if c.is_ascii_hexdigit() => {
                let v = (c as char).to_digit(16).unwrap_or(0) as u8;
                match hi.take() {
                    Some(h) => out.push((h << 4) | v),
                    None => hi = Some(v),
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

struct Ole1<'a> {
    format: u32,
    class: String,
    native: &'a [u8],
}

/// OLE1 ObjectHeader: OLEVersion, FormatID, then length-prefixed ClassName, TopicName and
/// ItemName, then NativeDataSize and the data.
fn ole1(b: &[u8]) -> Option<Ole1<'_>> {
    let u32_at = |p: usize| -> Option<usize> {
        let s = b.get(p..p.checked_add(4)?)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    let format = u32_at(4)? as u32;
    let mut pos = 8;
    let mut strings = Vec::new();
    for _ in 0..3 {
        let n = u32_at(pos)?;
        pos += 4;
        let s = b.get(pos..pos.checked_add(n)?)?;
        strings.push(
            s.iter()
                .take_while(|&&c| c != 0)
                .map(|&c| char::from(c))
                .collect::<String>(),
        );
        pos += n;
    }
    let size = u32_at(pos)?;
    pos += 4;
    let native = b.get(pos..pos.checked_add(size)?.min(b.len()))?;
    Some(Ole1 {
        format,
        class: strings.swap_remove(0),
        native,
    })
}

/// The file name of an OLE Package's native data (2-byte type, then the label).
fn package_name(native: &[u8]) -> Option<String> {
    let rest = native.get(2..)?;
    let n = rest.iter().take(1024).position(|&c| c == 0)?;
    Some(rest[..n].iter().map(|&c| char::from(c)).collect())
}
