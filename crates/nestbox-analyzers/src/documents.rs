//! Documents and scripts: Office (OLE2 and OOXML, with VBA), PDF, RTF, Windows shortcuts
//! and scripts. Bytes in, report sections out.
//!
//! [`analyze`] recognises the format from the content (and the file name for scripts),
//! runs the matching parser and returns the sections for the report's `static` object
//! under the keys CAPE uses (`office`, `pdf`, `lnk`; `rtf` and `script` for what CAPE
//! keeps elsewhere), the indicators the parsers found (macro source, JavaScript, link
//! targets, decoded commands) and parse errors. Every parser is total: hostile input
//! yields a partial section plus an error, never a panic; sizes and counts are capped.

use serde_json::{Map, Value};

use crate::iocs::Iocs;

pub mod lnk;
pub mod metadata;
pub mod office;
pub mod pdf;
pub mod rtf;
pub mod script;
pub mod vba;
pub mod xlm;

/// What the document parsers found in one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Sections for the report's `static` object, by key.
    pub sections: Map<String, Value>,
    /// Indicators from the extracted content.
    pub iocs: Iocs,
    /// Parse problems (the file is hostile or damaged); the sections hold what was read.
    pub errors: Vec<String>,
}

/// A little-endian u16 at `o`, if the data reaches that far (binary formats' fields).
fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    d.get(o..o.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// A little-endian u32 at `o`, if the data reaches that far.
fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Analyses a document or script. Files of no recognised kind give empty findings.
pub fn analyze(data: &[u8], name: &str) -> Findings {
    let mut f = Findings::default();
    if office::is_ole(data) {
        let s = office::analyze_ole(data, &mut f);
        f.sections.insert("office".into(), s);
    } else if data.starts_with(b"PK\x03\x04") {
        if let Some(s) = office::analyze_ooxml(data, &mut f) {
            f.sections.insert("office".into(), s);
        }
    } else if pdf::header_offset(data).is_some() {
        let s = pdf::analyze(data, &mut f);
        f.sections.insert("pdf".into(), s);
    } else if lnk::is_lnk(data) {
        let s = lnk::analyze(data, &mut f);
        f.sections.insert("lnk".into(), s);
    } else if rtf::is_rtf(data) {
        let s = rtf::analyze(data, &mut f);
        f.sections.insert("rtf".into(), s);
    } else if let Some(lang) = script::detect(data, name) {
        let s = script::analyze(data, lang, &mut f);
        f.sections.insert("script".into(), s);
    }
    f
}

#[cfg(test)]
mod tests;
