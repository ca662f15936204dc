//! The resource tree and the version information, walked by hand with bounds checks.
//!
//! goblin offers the raw directory entries; CAPE's `pe_resources` wants every leaf with
//! its type name, language, sub-language, libmagic type and entropy, and `versioninfo`
//! wants every StringFileInfo pair, so a small dedicated walker is clearer.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{MAX_ITEMS, entropy, tables};

/// One resource leaf, CAPE's `get_resources()` entry plus its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// Type name (`RT_ICON`, …; the type's string name when it has one; `None` as text for
    /// an unknown numeric type, as `str(None)` in CAPE).
    pub name: String,
    /// `OffsetToData` (an RVA), `0x%08x`.
    pub offset: String,
    /// Size, `0x%08x`.
    pub size: String,
    /// libmagic description of the data.
    pub filetype: Option<String>,
    /// `LANG_*` name, or null.
    pub language: Option<String>,
    /// `SUBLANG_*` name (pefile's `get_sublang_name_for_lang`).
    pub sublanguage: String,
    /// Entropy, `%.02f`.
    pub entropy: String,
    /// SHA-256 of the data (not in CAPE; lets an analyst look a payload up).
    pub sha256: String,
}

/// One version-information pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionEntry {
    /// Key (`CompanyName`, `FileVersion`, …, `Translation`).
    pub name: String,
    /// Value.
    pub value: String,
}

const RT_VERSION: u32 = 16;
/// libmagic looks at no more than this of each resource.
const MAGIC_BYTES: usize = 1 << 20;

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// A length-prefixed UTF-16 name of the resource directory.
fn dir_string(d: &[u8], o: usize) -> Option<String> {
    let len = u16_at(d, o)? as usize;
    let bytes = d.get(o + 2..o + 2 + len * 2)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// `(name or id, is_dir, offset)` entries of the directory at `base + off`.
fn entries(d: &[u8], base: usize, off: usize) -> Vec<(Result<String, u32>, bool, u32)> {
    let at = base.saturating_add(off);
    let (Some(named), Some(ids)) = (u16_at(d, at + 12), u16_at(d, at + 14)) else {
        return Vec::new();
    };
    let count = (named as usize + ids as usize).min(MAX_ITEMS);
    (0..count)
        .filter_map(|i| {
            let e = at + 16 + i * 8;
            let name = u32_at(d, e)?;
            let target = u32_at(d, e + 4)?;
            let name = if name & 0x8000_0000 != 0 {
                Ok(dir_string(d, base + (name & 0x7fff_ffff) as usize).unwrap_or_default())
            } else {
                Err(name & 0xffff)
            };
            Some((name, target & 0x8000_0000 != 0, target & 0x7fff_ffff))
        })
        .collect()
}

/// Walks the resource directory at `rva`; `to_offset` maps RVAs to file offsets.
pub(super) fn walk(
    data: &[u8],
    rva: u32,
    to_offset: &dyn Fn(u32) -> Option<usize>,
) -> (Vec<Resource>, Vec<VersionEntry>) {
    let mut out = Vec::new();
    let mut version = Vec::new();
    let Some(base) = to_offset(rva) else {
        return (out, version);
    };
    let mut seen = std::collections::HashSet::new();
    for (type_name, is_dir, off) in entries(data, base, 0) {
        if !is_dir || !seen.insert(off) {
            continue;
        }
        let type_id = type_name.as_ref().err().copied();
        let name = match &type_name {
            Ok(n) => n.clone(),
            Err(id) => tables::RESOURCE_TYPE
                .iter()
                .find(|(_, v)| u32::from(*v) == *id)
                .map_or_else(|| "None".to_owned(), |(n, _)| (*n).to_owned()),
        };
        for (_, is_dir, off2) in entries(data, base, off as usize) {
            if !is_dir || !seen.insert(off2) {
                continue;
            }
            for (lang_id, is_dir, off3) in entries(data, base, off2 as usize) {
                if is_dir || out.len() >= MAX_ITEMS {
                    continue;
                }
                let leaf = base.saturating_add(off3 as usize);
                let (Some(data_rva), Some(size)) = (u32_at(data, leaf), u32_at(data, leaf + 4))
                else {
                    continue;
                };
                let bytes = to_offset(data_rva)
                    .and_then(|o| data.get(o..o.saturating_add(size as usize).min(data.len())))
                    .unwrap_or(&[]);
                let id = lang_id.err().unwrap_or(0);
                let (lang, sub) = ((id & 0x3ff) as u16, (id >> 10) as u16);
                if type_id == Some(RT_VERSION) && version.is_empty() {
                    version = version_info(bytes);
                }
                out.push(Resource {
                    name: name.clone(),
                    offset: format!("0x{data_rva:08x}"),
                    size: format!("0x{size:08x}"),
                    filetype: (!bytes.is_empty()).then(|| {
                        crate::file_type_bytes(&bytes[..bytes.len().min(MAGIC_BYTES)]).description
                    }),
                    language: lang_name(lang).map(str::to_owned),
                    sublanguage: sublang_name(lang, sub).to_owned(),
                    entropy: format!("{:.2}", entropy(bytes)),
                    sha256: hex::encode(Sha256::digest(bytes)),
                });
            }
        }
    }
    (out, version)
}

/// pefile's `LANG.get(id)`: the last name listed for the value (a dict built in order).
fn lang_name(id: u16) -> Option<&'static str> {
    tables::LANG
        .iter()
        .rev()
        .find(|(_, v)| *v == id)
        .map(|(n, _)| *n)
}

/// pefile's `get_sublang_name_for_lang`.
fn sublang_name(lang: u16, sub: u16) -> &'static str {
    let lang_name = lang_name(lang).unwrap_or("*unknown*");
    let mut candidates = tables::SUBLANG
        .iter()
        .filter(|(_, v)| *v == sub)
        .map(|(n, _)| *n);
    let first = candidates.clone().next();
    candidates
        .find(|n| n.contains(lang_name))
        .or(first)
        .unwrap_or("*unknown*")
}

/// One VS_VERSIONINFO-style block: `(length, value length, type, key, value offset,
/// children offset)`, offsets relative to `d`.
fn block(d: &[u8], at: usize) -> Option<(usize, usize, u16, String, usize)> {
    let len = u16_at(d, at)? as usize;
    let value_len = u16_at(d, at + 2)? as usize;
    let kind = u16_at(d, at + 4)?;
    if len < 6 || at + len > d.len() {
        return None;
    }
    let mut o = at + 6;
    let mut units = Vec::new();
    while let Some(u) = u16_at(d, o) {
        o += 2;
        if u == 0 || units.len() > 256 {
            break;
        }
        units.push(u);
    }
    let value_at = (o + 3) & !3;
    Some((
        len,
        value_len,
        kind,
        String::from_utf16_lossy(&units),
        value_at,
    ))
}

fn utf16z(d: &[u8], at: usize, max_units: usize) -> String {
    let units: Vec<u16> = (0..max_units)
        .map_while(|i| u16_at(d, at + i * 2).filter(|&u| u != 0))
        .collect();
    String::from_utf16_lossy(&units)
}

/// StringFileInfo pairs and the VarFileInfo translation, in file order (pefile's
/// `FileInfo` as CAPE's `get_versioninfo` flattens it).
fn version_info(d: &[u8]) -> Vec<VersionEntry> {
    let mut out = Vec::new();
    let Some((len, value_len, _, key, value_at)) = block(d, 0) else {
        return out;
    };
    if key != "VS_VERSION_INFO" {
        return out;
    }
    let end = len.min(d.len());
    let mut child = (value_at + value_len + 3) & !3;
    while child < end && out.len() < MAX_ITEMS {
        let Some((clen, _, _, ckey, cval)) = block(d, child) else {
            break;
        };
        let cend = (child + clen).min(end);
        if ckey == "StringFileInfo" {
            let mut table = cval;
            while table < cend {
                let Some((tlen, _, _, _, tval)) = block(d, table) else {
                    break;
                };
                let tend = (table + tlen).min(cend);
                let mut s = tval;
                while s < tend && out.len() < MAX_ITEMS {
                    let Some((slen, svlen, _, skey, sval)) = block(d, s) else {
                        break;
                    };
                    // wValueLength counts UTF-16 units for text values.
                    let value = if svlen == 0 {
                        String::new()
                    } else {
                        utf16z(d, sval, svlen)
                    };
                    out.push(VersionEntry { name: skey, value });
                    s = (s + slen.max(6) + 3) & !3;
                }
                table = (table + tlen.max(6) + 3) & !3;
            }
        } else if ckey == "VarFileInfo" {
            let mut v = cval;
            while v < cend {
                let Some((vlen, vvlen, _, vkey, vval)) = block(d, v) else {
                    break;
                };
                if vvlen >= 4
                    && let (Some(lang), Some(cp)) = (u16_at(d, vval), u16_at(d, vval + 2))
                {
                    out.push(VersionEntry {
                        name: vkey,
                        value: format!("0x{lang:04x} 0x{cp:04x}"),
                    });
                }
                v = (v + vlen.max(6) + 3) & !3;
            }
        }
        child = (child + clen.max(6) + 3) & !3;
    }
    out
}
