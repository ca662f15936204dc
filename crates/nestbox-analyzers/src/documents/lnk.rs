//! Windows shortcuts (MS-SHLLINK): target path, arguments, working directory.
//!
//! The section has the shape of CAPE's built-in LNK parser (`flags`, `attrs`, `basepath`,
//! `net_share`, `remaining_path`, `description`, `relapath`, `workingdir`, `cmdline`,
//! `icon`) plus `target_path` (base path and suffix joined) and `environment_target`
//! (the EnvironmentVariableDataBlock, where `%COMSPEC%`-style targets hide).

use serde_json::{Map, Value, json};

use super::Findings;

/// The shell link header: size 0x4C and the ShellLink CLSID.
const MAGIC: [u8; 20] = [
    0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
];

/// Whether the data is a shell link.
pub fn is_lnk(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

const FLAG_NAMES: [&str; 7] = [
    "shellidlist",
    "references",
    "description",
    "relapath",
    "workingdir",
    "cmdline",
    "icon",
];

const ATTR_NAMES: [Option<&str>; 15] = [
    Some("readonly"),
    Some("hidden"),
    Some("system"),
    None,
    Some("directory"),
    Some("archive"),
    Some("ntfs_efs"),
    Some("normal"),
    Some("temporary"),
    Some("sparse"),
    Some("reparse"),
    Some("compressed"),
    Some("offline"),
    Some("not_indexed"),
    Some("encrypted"),
];

fn u16_at(d: &[u8], p: usize) -> Option<usize> {
    let b = d.get(p..p.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(d: &[u8], p: usize) -> Option<usize> {
    let b = d.get(p..p.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// A NUL-terminated ANSI string at `p` (Latin-1), at most 1024 bytes.
fn cstr(d: &[u8], p: usize) -> Option<String> {
    let rest = d.get(p..)?;
    let n = rest.iter().take(1024).position(|&b| b == 0)?;
    Some(rest[..n].iter().map(|&b| char::from(b)).collect())
}

/// A NUL-terminated UTF-16LE string at `p`, at most 1024 characters.
fn wstr(d: &[u8], p: usize) -> Option<String> {
    let rest = d.get(p..)?;
    let units: Vec<u16> = rest
        .chunks_exact(2)
        .take(1024)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// Parses a shell link into the `static.lnk` section. Truncated or inconsistent
/// structures stop the parse; what was read so far is kept and an error recorded.
pub fn analyze(d: &[u8], f: &mut Findings) -> Value {
    let mut out = Map::new();
    if let Err(e) = parse(d, &mut out) {
        f.errors.push(format!("lnk: {e}"));
    }
    for k in [
        "target_path",
        "cmdline",
        "workingdir",
        "relapath",
        "icon",
        "environment_target",
        "net_share",
        "description",
    ] {
        if let Some(s) = out.get(k).and_then(Value::as_str) {
            f.iocs.add_text(s);
        }
    }
    Value::Object(out)
}

fn parse(d: &[u8], out: &mut Map<String, Value>) -> Result<(), String> {
    let short = || "truncated".to_owned();
    let flags = u32_at(d, 20).ok_or_else(short)?;
    let attrs = u32_at(d, 24).ok_or_else(short)?;
    let flag_map: Map<String, Value> = FLAG_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), json!(flags & (1 << i) != 0)))
        .collect();
    out.insert("flags".into(), Value::Object(flag_map));
    let attr_list: Vec<&str> = ATTR_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| attrs & (1 << i) != 0)
        .filter_map(|(_, n)| *n)
        .collect();
    out.insert("attrs".into(), json!(attr_list));
    out.insert("file_size".into(), json!(u32_at(d, 52).ok_or_else(short)?));
    out.insert(
        "show_command".into(),
        json!(u32_at(d, 60).ok_or_else(short)?),
    );
    let unicode = flags & (1 << 7) != 0;

    let mut pos = 0x4c;
    if flags & 1 != 0 {
        pos += 2 + u16_at(d, pos).ok_or_else(short)?;
    }
    if flags & 2 != 0 {
        let info = d.get(pos..).ok_or_else(short)?;
        let size = u32_at(info, 0).ok_or_else(short)?;
        let header = u32_at(info, 4).ok_or_else(short)?;
        let li_flags = u32_at(info, 8).ok_or_else(short)?;
        let mut base = String::new();
        if li_flags & 1 != 0 {
            let off = u32_at(info, 16).ok_or_else(short)?;
            base = cstr(info, off).ok_or("bad LocalBasePath")?;
            if header >= 0x24
                && let Some(uoff) = u32_at(info, 28).filter(|&o| o > 0)
                && let Some(s) = wstr(info, uoff)
            {
                base = s;
            }
            out.insert("basepath".into(), json!(base));
        }
        if li_flags & 2 != 0 {
            let off = u32_at(info, 20).ok_or_else(short)?;
            let net = info.get(off..).ok_or_else(short)?;
            let name_off = u32_at(net, 8).ok_or_else(short)?;
            out.insert(
                "net_share".into(),
                json!(cstr(net, name_off).ok_or("bad NetName")?),
            );
            if let Some(dev_off) = u32_at(net, 12).filter(|&o| o > 0)
                && let Some(dev) = cstr(net, dev_off)
            {
                out.insert("network_drive".into(), json!(dev));
            }
        }
        let suffix_off = u32_at(info, 24).ok_or_else(short)?;
        let mut suffix = cstr(info, suffix_off).unwrap_or_default();
        if header >= 0x24
            && let Some(uoff) = u32_at(info, 32).filter(|&o| o > 0)
            && let Some(s) = wstr(info, uoff)
        {
            suffix = s;
        }
        out.insert("remaining_path".into(), json!(suffix));
        let share = out.get("net_share").and_then(Value::as_str).unwrap_or("");
        let target = if !base.is_empty() {
            format!("{base}{suffix}")
        } else if !share.is_empty() {
            format!("{share}\\{suffix}")
        } else {
            suffix.clone()
        };
        out.insert("target_path".into(), json!(target));
        pos = pos.checked_add(size).ok_or_else(short)?;
    }
    for (bit, key) in [
        (2, "description"),
        (3, "relapath"),
        (4, "workingdir"),
        (5, "cmdline"),
        (6, "icon"),
    ] {
        if flags & (1 << bit) == 0 {
            continue;
        }
        let count = u16_at(d, pos).ok_or_else(short)?;
        pos += 2;
        let len = if unicode { count * 2 } else { count };
        let raw = d.get(pos..pos + len).ok_or_else(short)?;
        let s = if unicode {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            raw.iter().map(|&b| char::from(b)).collect()
        };
        out.insert(key.into(), json!(s));
        pos += len;
    }
    if !out.contains_key("target_path")
        && let Some(rel) = out.get("relapath").cloned()
    {
        out.insert("target_path".into(), rel);
    }
    // ExtraData blocks until a terminal block (size < 4).
    for _ in 0..64 {
        let Some(size) = u32_at(d, pos) else { break };
        if size < 8 {
            break;
        }
        let sig = u32_at(d, pos + 4).unwrap_or(0);
        if sig == 0xa000_0001 {
            let ansi = cstr(d, pos + 8).unwrap_or_default();
            let wide = wstr(d, pos + 8 + 260).unwrap_or_default();
            let t = if wide.is_empty() { ansi } else { wide };
            out.insert("environment_target".into(), json!(t));
        }
        pos = pos.checked_add(size).ok_or_else(short)?;
    }
    Ok(())
}
