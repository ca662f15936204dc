//! One entry point for executables: whichever of PE, ELF or Mach-O the bytes are, the
//! report sections Cuckoo and CAPE fill for it.

use serde_json::{Map, Value};

/// What the executable parsers add to a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutableSections {
    /// Cuckoo's `static` section: `pe_*` keys for a PE, `elf` or `macho` otherwise.
    pub static_section: Map<String, Value>,
    /// CAPE's `target.file.pe` for a PE.
    pub pe: Option<Value>,
}

/// Parses `data` as PE, ELF or Mach-O (by magic); empty sections for anything else.
pub fn analyze(data: &[u8]) -> ExecutableSections {
    let mut out = ExecutableSections::default();
    if let Some(pe) = crate::pe::analyze(data) {
        out.static_section = pe.cuckoo_static();
        out.pe = serde_json::to_value(&pe).ok();
    } else if let Some(elf) = crate::elf::analyze(data) {
        out.static_section.insert("elf".into(), Value::Object(elf));
    } else if let Some(m) = crate::macho::analyze(data) {
        out.static_section.insert("macho".into(), Value::Object(m));
    }
    out
}
