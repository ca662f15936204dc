//! Office documents: OLE2 compound files (Word/Excel/PowerPoint 97–2003) and OOXML zips.
//!
//! The section has CAPE's `static.office` shape (`Metadata` with the summary property sets
//! of [`super::metadata`], `Macro.{Code, Analysis}` with VBA from Word/Excel projects,
//! OOXML `vbaProject.bin` and PowerPoint 97 ExOleObjStg records, and olevba's
//! `xlm_macro.txt` listing), plus what CAPE keeps elsewhere or not at all: `XLM` (Excel
//! 4.0 macro sheets, see [`super::xlm`]), `EmbeddedObjects` (OLE10Native packages,
//! `oleObject*.bin`, other embeddings) and `ExternalRelationships` (`TargetMode="External"`
//! targets, the template-injection vector).

use std::io::{Cursor, Read};

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::Findings;
use super::vba::{self, Module};
use crate::iocs::IocKind;

/// Most zip entries of an OOXML package looked at.
const MAX_ENTRIES: usize = 10_000;

/// Largest part read from an OOXML package (declared and actual size are both capped by
/// reading through `take`).
const MAX_PART: u64 = 64 * 1024 * 1024;

/// Most embedded objects and external relationships listed.
const MAX_LISTED: usize = 1000;

/// Whether the data is an OLE2 compound file.
pub fn is_ole(data: &[u8]) -> bool {
    data.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])
}

#[derive(Default)]
struct Office {
    doc_type: Option<&'static str>,
    modules: Vec<Module>,
    embedded: Vec<Value>,
    external: Vec<Value>,
    /// `SummaryInformation` / `DocumentSummaryInformation` (see [`super::metadata`]).
    metadata: Map<String, Value>,
    /// Excel 4.0 macro sheets of a BIFF8 workbook.
    xlm: Option<super::xlm::Xlm>,
}

/// Largest decompressed PowerPoint ExOleObjStg storage, and how many are opened.
const MAX_PPT_STORAGE: u64 = 32 * 1024 * 1024;
const MAX_PPT_STORAGES: usize = 64;

/// Analyses an OLE2 compound file.
pub fn analyze_ole(data: &[u8], f: &mut Findings) -> Value {
    let mut office = Office::default();
    ole_into(data, "", &mut office, f, 0);
    render(office, f)
}

/// Analyses an OOXML package; `None` if the zip has no Office content type part.
pub fn analyze_ooxml(data: &[u8], f: &mut Findings) -> Option<Value> {
    let mut zip = zip::ZipArchive::new(Cursor::new(data)).ok()?;
    let names: Vec<String> = (0..zip.len().min(MAX_ENTRIES))
        .filter_map(|i| {
            zip.by_index_raw(i)
                .ok()?
                .name()
                .ok()
                .map(|n| n.into_owned())
        })
        .collect();
    if !names.iter().any(|n| n == "[Content_Types].xml") {
        return None;
    }
    let mut office = Office {
        doc_type: if names.iter().any(|n| n.starts_with("word/")) {
            Some("Word Document")
        } else if names.iter().any(|n| n.starts_with("xl/")) {
            Some("Excel Workbook")
        } else if names.iter().any(|n| n.starts_with("ppt/")) {
            Some("PowerPoint Presentation")
        } else {
            None
        },
        ..Office::default()
    };
    let mut part_of = |n: &str| {
        names
            .iter()
            .any(|x| x == n)
            .then(|| read_part(&mut zip, n).ok())
            .flatten()
    };
    let (core, app) = (part_of("docProps/core.xml"), part_of("docProps/app.xml"));
    office.metadata = super::metadata::ooxml(core.as_deref(), app.as_deref()).unwrap_or_default();
    for name in &names {
        let lower = name.to_ascii_lowercase();
        let wanted = lower.ends_with(".rels")
            || lower.ends_with(".bin")
            || lower.contains("/embeddings/")
            || lower.ends_with("document.xml");
        if !wanted {
            continue;
        }
        let part = match read_part(&mut zip, name) {
            Ok(p) => p,
            Err(e) => {
                f.errors.push(format!("office: part {name}: {e}"));
                continue;
            }
        };
        if lower.ends_with(".rels") {
            external_relationships(name, &part, &mut office, f);
        } else if lower.ends_with("document.xml") {
            dde_fields(&part, f);
        } else if is_ole(&part) {
            // vbaProject.bin, oleObjectN.bin, embedded 97 documents.
            ole_into(&part, name, &mut office, f, 1);
            if lower.contains("/embeddings/") {
                push_embedded(&mut office, embedded_entry(name, None, &part));
            }
        } else if lower.contains("/embeddings/") {
            push_embedded(&mut office, embedded_entry(name, None, &part));
        }
    }
    Some(render(office, f))
}

fn read_part(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    entry
        .take(MAX_PART)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Macros, document type and OLE10Native packages of one compound file. `depth` stops
/// recursion through compound files nested in OOXML parts.
fn ole_into(data: &[u8], label: &str, office: &mut Office, f: &mut Findings, depth: u32) {
    let mut cfb = match cfb::CompoundFile::open(Cursor::new(data)) {
        Ok(c) => c,
        Err(e) => {
            let at = if label.is_empty() { "" } else { label };
            f.errors
                .push(format!("office: not a valid compound file {at}: {e}"));
            return;
        }
    };
    if depth == 0 {
        office.metadata = super::metadata::ole(&mut cfb, &mut f.errors);
        let has = |c: &cfb::CompoundFile<_>, n: &str| c.is_stream(n);
        office.doc_type = if has(&cfb, "/WordDocument") {
            Some("Word Document")
        } else if has(&cfb, "/Workbook") || has(&cfb, "/Book") {
            Some("Excel Workbook")
        } else if has(&cfb, "/PowerPoint Document") {
            Some("PowerPoint Presentation")
        } else {
            None
        };
    }
    office
        .modules
        .extend(vba::extract_projects(&mut cfb, label, &mut f.errors));
    for book in ["/Workbook", "/Book"] {
        if office.xlm.is_none() && cfb.is_stream(book) {
            match vba::read_stream(&mut cfb, std::path::Path::new(book)) {
                Ok(wb) => office.xlm = super::xlm::analyze(&wb),
                Err(e) => f.errors.push(format!("office: {book}: {e}")),
            }
        }
    }
    if depth < 2 && cfb.is_stream("/PowerPoint Document") {
        match vba::read_stream(&mut cfb, std::path::Path::new("/PowerPoint Document")) {
            Ok(stream) => {
                for (at, storage) in ppt_storages(&stream, f) {
                    let sub = format!("{label}PowerPoint Document@0x{at:x}");
                    ole_into(&storage, &sub, office, f, depth + 1);
                }
            }
            Err(e) => f.errors.push(format!("office: PowerPoint Document: {e}")),
        }
    }
    let natives: Vec<std::path::PathBuf> = cfb
        .walk()
        .filter(|e| e.is_stream() && e.name() == "\u{1}Ole10Native")
        .map(|e| e.path().to_path_buf())
        .take(MAX_LISTED)
        .collect();
    for path in natives {
        match vba::read_stream(&mut cfb, &path) {
            Ok(raw) => {
                let name = format!("{label}{}", path.display());
                let entry = match ole10native(&raw) {
                    Some(pkg) => {
                        for s in [&pkg.label, &pkg.source_path, &pkg.temp_path] {
                            f.iocs.add_text(s);
                        }
                        let mut e = embedded_entry(&name, Some("Package"), pkg.data);
                        e["filename"] = json!(pkg.label);
                        e["source_path"] = json!(pkg.source_path);
                        e["temp_path"] = json!(pkg.temp_path);
                        e
                    }
                    None => embedded_entry(&name, Some("Package"), &raw),
                };
                push_embedded(office, entry);
            }
            Err(e) => f.errors.push(format!("office: {}: {e}", path.display())),
        }
    }
}

/// The compound files PowerPoint 97 keeps in ExOleObjStg records (type 0x1011) of its
/// `PowerPoint Document` stream: the VBA project and embedded OLE objects, zlib
/// compressed when the record instance is 1 (a 4-byte decompressed size first). Found by
/// scanning for the record header, as olevba's `ppt_parser` does, so a damaged persist
/// directory does not hide them.
fn ppt_storages(stream: &[u8], f: &mut Findings) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let finder = memchr::memmem::Finder::new(&[0x11, 0x10]);
    for at in finder.find_iter(stream) {
        if out.len() >= MAX_PPT_STORAGES {
            break;
        }
        // recVer/recInstance sit in the two bytes before the type.
        let Some(start) = at.checked_sub(2) else {
            continue;
        };
        let ver_inst = u16::from_le_bytes([stream[start], stream[start + 1]]);
        let compressed = match ver_inst {
            0x0000 => false,
            0x0010 => true,
            _ => continue,
        };
        let Some(len) = stream
            .get(at + 2..at + 6)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            continue;
        };
        let body =
            &stream[(at + 6).min(stream.len())..(at + 6).saturating_add(len).min(stream.len())];
        let data = if compressed {
            let Some(packed) = body.get(4..) else {
                continue;
            };
            let mut buf = Vec::new();
            let z = flate2::read::ZlibDecoder::new(packed);
            if let Err(e) = z.take(MAX_PPT_STORAGE).read_to_end(&mut buf) {
                f.errors.push(format!(
                    "office: PowerPoint ExOleObjStg at 0x{start:x}: {e}"
                ));
                continue;
            }
            buf
        } else {
            body.to_vec()
        };
        if is_ole(&data) {
            out.push((start, data));
        }
    }
    out
}

fn push_embedded(office: &mut Office, v: Value) {
    if office.embedded.len() < MAX_LISTED {
        office.embedded.push(v);
    }
}

fn embedded_entry(name: &str, class: Option<&str>, data: &[u8]) -> Value {
    json!({
        "name": name,
        "class_name": class.unwrap_or(""),
        "size": data.len(),
        "sha256": hex::encode(Sha256::digest(data)),
    })
}

/// An OLE1 "Package" object as stored in an `\x01Ole10Native` stream.
struct Package<'a> {
    label: String,
    source_path: String,
    temp_path: String,
    data: &'a [u8],
}

/// Parses an `\x01Ole10Native` stream: total size, a 2-byte type, zero-terminated label
/// and source path, 4 reserved bytes, a length-prefixed temp path and the length-prefixed
/// content (the layout oletools' `oleobj` reads).
fn ole10native(raw: &[u8]) -> Option<Package<'_>> {
    let mut pos = 6;
    let zstr = |pos: &mut usize| -> Option<String> {
        let rest = raw.get(*pos..)?;
        let n = rest.iter().position(|&b| b == 0)?;
        *pos += n + 1;
        Some(vba::latin1(&rest[..n]))
    };
    let u32_at = |p: usize| -> Option<usize> {
        let b = raw.get(p..p + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let label = zstr(&mut pos)?;
    let source_path = zstr(&mut pos)?;
    pos += 4;
    let tlen = u32_at(pos)?;
    pos += 4;
    let temp = raw.get(pos..pos.checked_add(tlen)?)?;
    let temp_path = vba::latin1(temp.split(|&b| b == 0).next().unwrap_or_default());
    pos += tlen;
    let size = u32_at(pos)?;
    pos += 4;
    let data = raw.get(pos..pos.checked_add(size)?.min(raw.len()))?;
    Some(Package {
        label,
        source_path,
        temp_path,
        data,
    })
}

/// `Relationship` elements with `TargetMode="External"` in a `.rels` part.
fn external_relationships(part: &str, xml: &[u8], office: &mut Office, f: &mut Findings) {
    let text = String::from_utf8_lossy(xml);
    for tag in text.split('<').skip(1) {
        if !tag.starts_with("Relationship ") && !tag.starts_with("Relationship\t") {
            continue;
        }
        let tag = tag.split('>').next().unwrap_or("");
        let attrs = attributes(tag);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if !get("TargetMode").eq_ignore_ascii_case("External") {
            continue;
        }
        let target = get("Target");
        let ty = get("Type");
        let kind = ty.rsplit('/').next().unwrap_or("").to_owned();
        f.iocs.add_text(&target);
        if target.contains("://") {
            f.iocs.add(IocKind::Url, &target);
        }
        if office.external.len() < MAX_LISTED {
            office.external.push(json!({
                "part": part,
                "id": get("Id"),
                "type": kind,
                "target": target,
                // attachedTemplate/oleObject/frame pointing outside is remote template or
                // object injection.
                "suspicious": matches!(kind.as_str(), "attachedTemplate" | "oleObject" | "frame" | "subDocument"),
            }));
        }
    }
}

/// `name="value"` pairs of one XML tag (either quote style; the five predefined entities
/// and numeric references decoded).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = tag.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(eq) = tag[i..].find('=') else { break };
        let name = tag[i..i + eq]
            .trim()
            .rsplit([' ', '\t', '\n', '\r'])
            .next()
            .unwrap_or("");
        let mut j = i + eq + 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let Some(&q) = b.get(j) else { break };
        if q != b'"' && q != b'\'' {
            i = j;
            continue;
        }
        let Some(close) = tag[j + 1..].find(char::from(q)) else {
            break;
        };
        out.push((name.to_owned(), unescape(&tag[j + 1..j + 1 + close])));
        i = j + 1 + close + 1;
    }
    out
}

pub(super) fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let Some(semi) = rest.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// DDE field codes in WordprocessingML (`DDEAUTO`/`DDE` in `instrText`), CAPE's
/// `office_dde`.
fn dde_fields(xml: &[u8], f: &mut Findings) {
    let text = String::from_utf8_lossy(xml);
    let mut instr = String::new();
    for piece in text.split("<w:instrText").skip(1) {
        let body = piece.split_once('>').map_or("", |(_, b)| b);
        instr.push_str(&unescape(body.split("</w:instrText").next().unwrap_or("")));
    }
    let upper = instr.to_ascii_uppercase();
    if upper.contains("DDEAUTO") || upper.trim_start().starts_with("DDE ") {
        f.iocs.add_text(&instr);
        f.sections
            .insert("office_dde".into(), Value::String(instr.trim().to_owned()));
    }
}

/// Builds the section, adding each module's indicators to the findings.
fn render(office: Office, f: &mut Findings) -> Value {
    let mut office = office;
    let xlm = office.xlm.take();
    if let Some(x) = &xlm {
        // olevba yields the XLM listing as one more module, `xlm_macro.txt`, with every
        // line commented out; CAPE scans it like VBA.
        office.modules.push(Module {
            container: "xlm_macro".into(),
            filename: "xlm_macro.txt".into(),
            stream: "xlm_macro".into(),
            code: x
                .lines
                .iter()
                .map(|l| format!("' {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    let mut meta = office.metadata;
    meta.insert(
        "HasMacros".into(),
        json!(if office.modules.is_empty() {
            "No"
        } else {
            "Yes"
        }),
    );
    if let Some(t) = office.doc_type {
        meta.insert("DocumentType".into(), json!(t));
    }
    let mut section = Map::new();
    section.insert("Metadata".into(), Value::Object(meta));
    let mut code = Map::new();
    let mut analysis: Map<String, Value> = Map::new();
    let mut n = 0;
    for m in &office.modules {
        if m.code.trim().is_empty() {
            continue;
        }
        n += 1;
        code.insert(format!("Macro{n}"), json!([[m.filename, m.code]]));
        let mut push = |k: &str, pairs: Vec<(String, String)>| {
            let list = analysis
                .entry(k.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                for (kw, d) in pairs {
                    let v = json!([kw.replace('.', "_"), d]);
                    if !a.contains(&v) {
                        a.push(v);
                    }
                }
            }
        };
        push("AutoExec", vba::detect_autoexec(&m.code));
        push("Suspicious", vba::detect_suspicious(&m.code));
        let mut mi = crate::iocs::Iocs::default();
        mi.add_text(&m.code);
        let pairs = mi
            .lists()
            .iter()
            .flat_map(|(k, l)| l.iter().map(move |v| (format!("{k:?}"), v.clone())))
            .collect();
        push("IOCs", pairs);
        f.iocs.merge(&mi);
    }
    analysis.retain(|_, v| v.as_array().is_some_and(|a| !a.is_empty()));
    if !code.is_empty() {
        section.insert(
            "Macro".into(),
            json!({"Code": code, "info": {}, "Analysis": analysis}),
        );
    }
    if let Some(x) = xlm {
        section.insert(
            "XLM".into(),
            json!({
                "Sheets": x.sheets,
                "Names": x.names,
                "Formulas": x.formulas,
                "Suspicious": x.suspicious,
            }),
        );
    }
    section.insert("EmbeddedObjects".into(), Value::Array(office.embedded));
    section.insert(
        "ExternalRelationships".into(),
        Value::Array(office.external),
    );
    Value::Object(section)
}
