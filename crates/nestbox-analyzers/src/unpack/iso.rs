//! ISO 9660 images (with Joliet names when present): a bounded reader of the volume
//! descriptors and directory records. Directories already visited (by extent) are not
//! walked again, so a directory pointing at an ancestor cannot loop; the walk stops at
//! [`MAX_DIRS`] directories, and members go through the unpacker's size/count limits.

use std::collections::HashSet;

use super::State;

const SECTOR: usize = 2048;
/// Most volume descriptors read, and directories walked.
const MAX_DESCRIPTORS: usize = 64;
const MAX_DIRS: usize = 10_000;

/// Whether `data` has an ISO 9660 volume descriptor at sector 16.
pub fn is_iso(data: &[u8]) -> bool {
    data.get(16 * SECTOR + 1..16 * SECTOR + 6) == Some(b"CD001")
}

fn u32_le(d: &[u8], o: usize) -> Option<usize> {
    d.get(o..o + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// A directory record: (extent, length, is_dir, name bytes).
struct Record<'a> {
    extent: usize,
    len: usize,
    dir: bool,
    name: &'a [u8],
}

fn record(r: &[u8]) -> Option<Record<'_>> {
    let name_len = usize::from(*r.get(32)?);
    Some(Record {
        extent: u32_le(r, 2)?,
        len: u32_le(r, 10)?,
        dir: r.get(25)? & 2 != 0,
        name: r.get(33..33 + name_len)?,
    })
}

/// Decodes a record name: UCS-2BE under Joliet, else d-characters; the `;1` version
/// suffix and a trailing dot go, as mount does.
fn name(raw: &[u8], joliet: bool) -> String {
    let s: String = if joliet {
        char::decode_utf16(
            raw.chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]])),
        )
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
    } else {
        raw.iter().map(|&b| b as char).collect()
    };
    let s = s.split(';').next().unwrap_or("").to_owned();
    s.strip_suffix('.').map(str::to_owned).unwrap_or(s)
}

pub(super) fn uniso(data: &[u8], prefix: &str, depth: u32, st: &mut State<'_>) {
    let label = if prefix.is_empty() { "iso" } else { prefix };
    // Primary volume descriptor, and a Joliet supplementary one if present.
    let (mut primary, mut joliet) = (None, None);
    for i in 0..MAX_DESCRIPTORS {
        let Some(vd) = data.get((16 + i) * SECTOR..(17 + i) * SECTOR) else {
            break;
        };
        if &vd[1..6] != b"CD001" {
            break;
        }
        match vd[0] {
            1 => primary = primary.or(Some(vd)),
            2 if matches!(&vd[88..91], b"%/@" | b"%/C" | b"%/E") => joliet = joliet.or(Some(vd)),
            255 => break,
            _ => {}
        }
    }
    let Some((vd, is_joliet)) = joliet.map(|v| (v, true)).or(primary.map(|v| (v, false))) else {
        st.error(format!("{label}: no primary volume descriptor"));
        return;
    };
    let block = usize::from(u16::from_le_bytes([vd[128], vd[129]]));
    if !matches!(block, 512 | 1024 | 2048) {
        st.error(format!("{label}: logical block size {block}"));
        return;
    }
    let Some(root) = record(&vd[156..190]) else {
        st.error(format!("{label}: bad root directory record"));
        return;
    };
    let mut seen = HashSet::new();
    let mut queue = vec![(root.extent, root.len, String::new())];
    while let Some((extent, len, path)) = queue.pop() {
        if seen.len() >= MAX_DIRS {
            st.finding(format!("{label}: directory limit ({MAX_DIRS}) reached"));
            break;
        }
        if !seen.insert(extent) {
            continue;
        }
        let start = extent.saturating_mul(block);
        let Some(dir) = data.get(start..start.saturating_add(len).min(data.len())) else {
            st.error(format!("{label}: directory {path:?} outside the image"));
            continue;
        };
        let mut pos = 0;
        while pos < dir.len() {
            let rlen = usize::from(dir[pos]);
            if rlen == 0 {
                // Records do not cross sectors: continue at the next one.
                pos = (pos / SECTOR + 1) * SECTOR;
                continue;
            }
            let Some(r) = dir.get(pos..pos + rlen).and_then(record) else {
                st.error(format!("{label}: truncated directory record in {path:?}"));
                break;
            };
            pos += rlen;
            if r.name == [0] || r.name == [1] {
                continue; // "." and ".."
            }
            let n = name(r.name, is_joliet);
            let full = if path.is_empty() {
                n
            } else {
                format!("{path}/{n}")
            };
            if r.dir {
                queue.push((r.extent, r.len, full));
                continue;
            }
            if st.full() {
                st.limit_reached(label);
                return;
            }
            let off = r.extent.saturating_mul(block);
            let Some(content) = data.get(off..off.saturating_add(r.len)) else {
                st.error(format!("{label}: {full}: data outside the image"));
                continue;
            };
            let mut reader = content;
            if let Some(d) = st.read_member(&mut reader, &full, None) {
                st.push(prefix, &full, d, depth, None);
            }
        }
    }
}
