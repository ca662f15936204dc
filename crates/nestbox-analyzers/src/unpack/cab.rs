//! Microsoft cabinet files (MS-CAB), read here: the `cab` crate panics on hostile block
//! tables (it indexes past its block list and trusts decompressed block lengths), so the
//! headers are walked with every offset checked. Stored and MSZIP folders are extracted
//! (MSZIP is raw deflate per 32 KiB block with the previous block as dictionary, given to
//! the inflater as a stored block first); LZX and Quantum folders are listed with an
//! "extraction unsupported" finding. A file that does not fit its folder's data is an
//! error; members go through the unpacker's limits.

use super::State;

/// `MSCF` and a zero reserved field.
pub fn is_cab(data: &[u8]) -> bool {
    data.starts_with(b"MSCF\0\0\0\0")
}

fn u16_at(d: &[u8], o: usize) -> Result<usize, String> {
    d.get(o..o.saturating_add(2))
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or_else(|| format!("truncated at {o}"))
}

fn u32_at(d: &[u8], o: usize) -> Result<usize, String> {
    d.get(o..o.saturating_add(4))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| format!("truncated at {o}"))
}

struct Folder {
    first_block: usize,
    blocks: usize,
    compression: usize,
}

struct Entry {
    name: String,
    size: usize,
    offset: usize,
    folder: usize,
}

/// Header, folders and files (MS-CAB 2.1–2.3).
fn parse(d: &[u8]) -> Result<(Vec<Folder>, Vec<Entry>, usize), String> {
    let files_at = u32_at(d, 16)?;
    let folders = u16_at(d, 26)?;
    let files = u16_at(d, 28)?;
    let flags = u16_at(d, 30)?;
    let mut p = 36;
    let (mut folder_reserve, mut data_reserve) = (0, 0);
    if flags & 4 != 0 {
        let header_reserve = u16_at(d, 36)?;
        folder_reserve = usize::from(*d.get(38).ok_or("truncated header")?);
        data_reserve = usize::from(*d.get(39).ok_or("truncated header")?);
        p = 40 + header_reserve;
    }
    // Previous/next cabinet and disk names when the set spans files.
    let strings = usize::from(flags & 1 != 0) * 2 + usize::from(flags & 2 != 0) * 2;
    for _ in 0..strings {
        let rest = d.get(p..).ok_or("truncated header")?;
        p += rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("truncated header")?
            + 1;
    }
    let mut fs = Vec::with_capacity(folders);
    for i in 0..folders {
        let f = p + i * (8 + folder_reserve);
        fs.push(Folder {
            first_block: u32_at(d, f)?,
            blocks: u16_at(d, f + 4)?,
            compression: u16_at(d, f + 6)? & 0x0f,
        });
    }
    let mut es = Vec::with_capacity(files);
    let mut q = files_at;
    for _ in 0..files {
        let size = u32_at(d, q)?;
        let offset = u32_at(d, q + 4)?;
        let folder = u16_at(d, q + 8)?;
        let rest = d.get(q + 16..).ok_or("truncated file entry")?;
        let n = rest
            .iter()
            .take(1024)
            .position(|&b| b == 0)
            .ok_or("unterminated file name")?;
        es.push(Entry {
            name: String::from_utf8_lossy(&rest[..n]).into_owned(),
            size,
            offset,
            folder,
        });
        q += 16 + n + 1;
    }
    Ok((fs, es, data_reserve))
}

/// A folder's uncompressed data, at most `cap` bytes.
fn folder_data(d: &[u8], f: &Folder, data_reserve: usize, cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut at = f.first_block;
    let mut dict: Vec<u8> = Vec::new();
    for i in 0..f.blocks {
        let compressed = u16_at(d, at + 4)?;
        let uncompressed = u16_at(d, at + 6)?;
        let start = at + 8 + data_reserve;
        let block = d
            .get(start..start + compressed)
            .ok_or_else(|| format!("data block {i} outside the file"))?;
        at = start + compressed;
        let plain = match f.compression {
            0 => block.to_vec(),
            1 => mszip_block(block, &dict, uncompressed).map_err(|e| format!("block {i}: {e}"))?,
            c => return Err(format!("compression type {c} unsupported")),
        };
        if plain.len() != uncompressed {
            return Err(format!(
                "block {i}: {} bytes, {uncompressed} declared",
                plain.len()
            ));
        }
        out.extend_from_slice(&plain);
        if out.len() > cap {
            out.truncate(cap + 1);
            break;
        }
        dict = plain;
    }
    Ok(out)
}

/// One MSZIP block: `CK`, then raw deflate continuing from `dict`.
fn mszip_block(block: &[u8], dict: &[u8], uncompressed: usize) -> Result<Vec<u8>, String> {
    let data = block.strip_prefix(b"CK").ok_or("no CK signature")?;
    let mut z = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(dict.len() + uncompressed + 1);
    if !dict.is_empty() {
        // The dictionary as a stored (uncompressed) deflate block.
        let len = dict.len() as u16;
        let mut pre = vec![0u8];
        pre.extend(len.to_le_bytes());
        pre.extend((!len).to_le_bytes());
        pre.extend(dict);
        z.decompress_vec(&pre, &mut out, flate2::FlushDecompress::Sync)
            .map_err(|e| e.to_string())?;
        if out.len() != dict.len() {
            return Err("dictionary not accepted".into());
        }
    }
    z.decompress_vec(data, &mut out, flate2::FlushDecompress::Finish)
        .map_err(|e| e.to_string())?;
    Ok(out.split_off(dict.len()))
}

pub(super) fn uncab(data: &[u8], prefix: &str, depth: u32, st: &mut State<'_>) {
    let label = if prefix.is_empty() { "cab" } else { prefix };
    let (folders, entries, data_reserve) = match parse(data) {
        Ok(p) => p,
        Err(e) => {
            st.error(format!("{label}: {e}"));
            return;
        }
    };
    for (i, f) in folders.iter().enumerate() {
        let names: Vec<&Entry> = entries.iter().filter(|e| e.folder == i).collect();
        if names.is_empty() {
            continue;
        }
        if f.compression > 1 {
            let kind = if f.compression == 2 { "Quantum" } else { "LZX" };
            st.finding(format!(
                "{label}: {kind} folder: extraction unsupported; {} entries listed",
                names.len()
            ));
            for e in names {
                st.out.listed.push(serde_json::json!({
                    "archive": label, "name": e.name, "size": e.size,
                    "packed_size": null, "encrypted": false,
                }));
            }
            continue;
        }
        if st.full() {
            st.limit_reached(label);
            return;
        }
        let cap = usize::try_from(st.room()).unwrap_or(usize::MAX);
        let plain = match folder_data(data, f, data_reserve, cap) {
            Ok(p) => p,
            Err(e) => {
                st.error(format!("{label}: folder {i}: {e}"));
                continue;
            }
        };
        for e in names {
            let Some(content) = e
                .offset
                .checked_add(e.size)
                .and_then(|end| plain.get(e.offset..end))
            else {
                st.error(format!(
                    "{label}: {}: data past the end of its folder",
                    e.name
                ));
                continue;
            };
            if st.full() {
                st.limit_reached(label);
                return;
            }
            let mut r = content;
            if let Some(d) = st.read_member(&mut r, &e.name, None) {
                st.push(prefix, &e.name, d, depth, None);
            }
        }
    }
    for e in entries.iter().filter(|e| e.folder >= folders.len()) {
        st.error(format!(
            "{label}: {}: folder {} does not exist (a cabinet-set continuation?)",
            e.name, e.folder
        ));
    }
}
