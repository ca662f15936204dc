//! Mach-O basics: CPU, file type, load commands, linked libraries, entry point and
//! segments, for single and universal (fat) binaries. Parsed with goblin; a file that does
//! not parse yields `error` instead of a panic.

use goblin::mach::{Mach, MachO};
use serde_json::{Map, Value, json};

/// Most entries kept per list.
pub const MAX_ITEMS: usize = 4096;

/// Is this a Mach-O or universal binary (by its magic)?
pub fn is_macho(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some(
            [0xfe, 0xed, 0xfa, 0xce | 0xcf]
                | [0xce | 0xcf, 0xfa, 0xed, 0xfe]
                | [0xca, 0xfe, 0xba, 0xbe]
        )
    )
}

/// The Mach-O report, or `None` without a Mach-O magic. `cafebabe` is shared with Java
/// class files: a file goblin cannot read as a fat binary is then simply not reported.
pub fn analyze(data: &[u8]) -> Option<Map<String, Value>> {
    if !is_macho(data) {
        return None;
    }
    // `cafebabe` followed by a Java class version (major >= 45) is a class file, not a fat
    // binary with dozens of architectures; `file` draws the line the same way.
    if data.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
        && data
            .get(4..8)
            .is_some_and(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) >= 20)
    {
        return None;
    }
    let mut out = Map::new();
    match Mach::parse(data) {
        Ok(Mach::Binary(m)) => {
            out.insert("binaries".into(), json!([one(&m)]));
        }
        Ok(Mach::Fat(fat)) => {
            let mut bins = Vec::new();
            for arch in fat.into_iter().take(16) {
                match arch {
                    Ok(goblin::mach::SingleArch::MachO(m)) => bins.push(Value::Object(one(&m))),
                    Ok(goblin::mach::SingleArch::Archive(_)) => bins.push(json!({"archive": true})),
                    Err(e) => bins.push(json!({"error": e.to_string()})),
                }
            }
            out.insert("fat".into(), json!(true));
            out.insert("binaries".into(), Value::Array(bins));
        }
        Err(e) if data.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) => {
            let _ = e;
            return None;
        }
        Err(e) => {
            out.insert("error".into(), json!(format!("not a parsable Mach-O: {e}")));
        }
    }
    Some(out)
}

fn one(m: &MachO<'_>) -> Map<String, Value> {
    let h = &m.header;
    let mut o = Map::new();
    o.insert(
        "cpu".into(),
        json!(
            goblin::mach::constants::cputype::get_arch_name_from_types(h.cputype, h.cpusubtype)
                .unwrap_or("unknown")
        ),
    );
    o.insert(
        "filetype".into(),
        json!(goblin::mach::header::filetype_to_str(h.filetype)),
    );
    o.insert("flags".into(), json!(format!("0x{:08x}", h.flags)));
    o.insert("ncmds".into(), json!(h.ncmds));
    o.insert("entry".into(), json!(format!("0x{:x}", m.entry)));
    o.insert("name".into(), json!(m.name));
    o.insert(
        "libraries".into(),
        json!(
            m.libs
                .iter()
                .filter(|l| **l != "self")
                .take(MAX_ITEMS)
                .collect::<Vec<_>>()
        ),
    );
    o.insert(
        "segments".into(),
        Value::Array(
            m.segments
                .iter()
                .take(MAX_ITEMS)
                .map(|s| {
                    json!({
                        "name": s.name().unwrap_or(""),
                        "vmaddr": format!("0x{:x}", s.vmaddr),
                        "vmsize": s.vmsize,
                        "fileoff": s.fileoff,
                        "filesize": s.filesize,
                    })
                })
                .collect(),
        ),
    );
    o.insert(
        "load_commands".into(),
        Value::Array(
            m.load_commands
                .iter()
                .take(MAX_ITEMS)
                .map(|c| json!(goblin::mach::load_command::cmd_to_str(c.command.cmd())))
                .collect(),
        ),
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_only_and_garbage() {
        let mut h = vec![
            0xcf, 0xfa, 0xed, 0xfe, 0x07, 0, 0, 0x01, 0x03, 0, 0, 0, 0x02, 0, 0, 0,
        ];
        h.extend([0xff; 16]);
        let r = analyze(&h).unwrap();
        assert!(r.contains_key("error") || r.contains_key("binaries"));
        // A Java class file shares the fat magic and is not reported as Mach-O.
        assert!(analyze(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0x34, 0, 1]).is_none());
        assert!(analyze(b"\x7fELF").is_none());
        for len in 0..h.len() {
            let _ = analyze(&h[..len]);
        }
    }
}
