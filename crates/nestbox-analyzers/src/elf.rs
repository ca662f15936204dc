//! ELF analysis: CAPE's `static.elf` / `target.file.elf` shape (`parse_elf.py`, pyelftools
//! descriptions) for the parts analysts read: header, sections, segments, needed
//! libraries, interpreter and symbols. Parsed with goblin; lists are capped and a file that
//! does not parse yields `error` instead of a panic.

use goblin::elf::Elf;
use goblin::elf::header;
use goblin::elf::program_header;
use goblin::elf::section_header;
use goblin::elf::sym;
use serde_json::{Map, Value, json};

/// Most entries kept per list (section headers, symbols, …).
pub const MAX_ITEMS: usize = 4096;

/// Is this an ELF file (by its magic)?
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// The ELF report, or `None` for a file without the ELF magic.
pub fn analyze(data: &[u8]) -> Option<Map<String, Value>> {
    if !is_elf(data) {
        return None;
    }
    let mut out = Map::new();
    let elf = match Elf::parse(data) {
        Ok(e) => e,
        Err(e) => {
            out.insert("error".into(), json!(format!("not a parsable ELF: {e}")));
            return Some(out);
        }
    };
    let is64 = elf.is_64;
    let addr = |v: u64| {
        if is64 {
            format!("0x{v:016x}")
        } else {
            format!("0x{v:08x}")
        }
    };
    let h = &elf.header;
    out.insert(
        "file_header".into(),
        json!({
            "magic": "\u{7f}ELF",
            "class": if is64 { "ELF64" } else { "ELF32" },
            "data": if elf.little_endian { "2's complement, little endian" } else { "2's complement, big endian" },
            "type": e_type(h.e_type),
            "machine": header::machine_to_str(h.e_machine),
            "version": format!("{:#x}", h.e_version),
            "entry_point_address": addr(h.e_entry),
            "start_of_program_headers": h.e_phoff,
            "start_of_section_headers": h.e_shoff,
            "flags": addr(u64::from(h.e_flags)),
            "size_of_this_header": h.e_ehsize,
            "size_of_program_headers": h.e_phentsize,
            "number_of_program_headers": h.e_phnum,
            "size_of_section_headers": h.e_shentsize,
            "number_of_section_headers": h.e_shnum,
            "section_header_string_table_index": h.e_shstrndx,
        }),
    );
    let sections: Vec<Value> = elf
        .section_headers
        .iter()
        .take(MAX_ITEMS)
        .map(|s| {
            json!({
                "name": elf.shdr_strtab.get_at(s.sh_name).unwrap_or(""),
                "type": section_header::sht_to_str(s.sh_type).trim_start_matches("SHT_"),
                "addr": addr(s.sh_addr),
                "size": s.sh_size,
            })
        })
        .collect();
    out.insert("section_headers".into(), Value::Array(sections));
    let segments: Vec<Value> = elf
        .program_headers
        .iter()
        .take(MAX_ITEMS)
        .map(|p| {
            json!({
                "type": program_header::pt_to_str(p.p_type).trim_start_matches("PT_"),
                "addr": addr(p.p_vaddr),
                "flags": p_flags(p.p_flags),
                "size": p.p_memsz,
            })
        })
        .collect();
    out.insert("program_headers".into(), Value::Array(segments));
    let dynamic: Vec<Value> = elf
        .libraries
        .iter()
        .take(MAX_ITEMS)
        .map(|l| json!({"tag": "NEEDED", "type": "NEEDED", "value": format!("Shared library: [{l}]")}))
        .chain(elf.soname.iter().map(|s| json!({"tag": "SONAME", "type": "SONAME", "value": format!("Library soname: [{s}]")})))
        .collect();
    out.insert("dynamic_tags".into(), Value::Array(dynamic));
    let mut symbols = Vec::new();
    for (table, strtab) in [(&elf.dynsyms, &elf.dynstrtab), (&elf.syms, &elf.strtab)] {
        for s in table.iter() {
            if symbols.len() >= MAX_ITEMS {
                break;
            }
            symbols.push(json!({
                "value": addr(s.st_value),
                "type": sym::type_to_str(s.st_type()).trim_start_matches("STT_"),
                "bind": sym::bind_to_str(s.st_bind()).trim_start_matches("STB_"),
                "ndx_name": strtab.get_at(s.st_name).unwrap_or(""),
            }));
        }
    }
    out.insert("symbol_tables".into(), Value::Array(symbols));
    // Not in CAPE: the plain facts its descriptions bury.
    out.insert("interpreter".into(), json!(elf.interpreter));
    out.insert(
        "needed".into(),
        json!(elf.libraries.iter().take(MAX_ITEMS).collect::<Vec<_>>()),
    );
    Some(out)
}

fn e_type(t: u16) -> &'static str {
    match t {
        header::ET_NONE => "NONE (None)",
        header::ET_REL => "REL (Relocatable file)",
        header::ET_EXEC => "EXEC (Executable file)",
        header::ET_DYN => "DYN (Shared object file)",
        header::ET_CORE => "CORE (Core file)",
        _ => "<unknown>",
    }
}

/// pyelftools' `describe_p_flags`: `RWE` with spaces for absent bits, stripped.
fn p_flags(f: u32) -> String {
    let s: String = [(4, 'R'), (2, 'W'), (1, 'E')]
        .iter()
        .map(|&(bit, c)| if f & bit != 0 { c } else { ' ' })
        .collect();
    s.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_binary() {
        let data = std::fs::read("/bin/ls").unwrap();
        let r = analyze(&data).unwrap();
        assert!(r.get("error").is_none(), "{r:?}");
        assert_eq!(r["file_header"]["class"], "ELF64");
        assert!(
            r["needed"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "libc.so.6")
        );
        assert!(r["interpreter"].as_str().unwrap().contains("ld-linux"));
        assert!(
            r["section_headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == ".text" && s["type"] == "PROGBITS")
        );
        assert!(analyze(b"MZ not an elf").is_none());
    }

    #[test]
    fn truncated_and_corrupted_elves_are_total() {
        let data = std::fs::read("/bin/true").unwrap();
        for len in (0..data.len().min(8192)).step_by(7) {
            let _ = analyze(&data[..len]);
        }
        for i in 0..0x100.min(data.len()) {
            let mut bad = data.clone();
            bad[i] ^= 0xff;
            if let Some(r) = analyze(&bad) {
                serde_json::to_string(&r).unwrap();
            }
        }
    }
}
