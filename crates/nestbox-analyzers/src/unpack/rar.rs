//! RAR (v4 and v5): the block headers are walked here to list entry names, sizes and
//! whether they are encrypted; extraction is done by `unar` in a sandbox
//! ([`super::rar_tool`]), since no maintained pure-Rust RAR decoder exists (the `unrar`
//! crates bind the C++ library under its restrictive licence). Without the tool the
//! listing stays and that nothing was extracted is a finding. Encrypted headers
//! (`rar -hp`) hide the names: also a finding.

use serde_json::{Value, json};

use super::State;

pub const RAR4: &[u8] = b"Rar!\x1a\x07\x00";
pub const RAR5: &[u8] = b"Rar!\x1a\x07\x01\x00";
/// Most headers walked.
const MAX_BLOCKS: usize = 100_000;

fn u16_at(d: &[u8], o: usize) -> Option<usize> {
    d.get(o..o.checked_add(2)?)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(d: &[u8], o: usize) -> Option<u64> {
    d.get(o..o.checked_add(4)?)
        .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}

/// A RAR5 variable-length integer at `*p` (at most 10 bytes).
fn vint(d: &[u8], p: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *d.get(*p)?;
        *p += 1;
        v |= u64::from(b & 0x7f).checked_shl(7 * i)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `{name, size, packed_size, encrypted}` per file entry, or why the walk stopped.
pub fn list(data: &[u8]) -> (Vec<Value>, Option<String>) {
    if data.starts_with(RAR5) {
        list5(data)
    } else {
        list4(data)
    }
}

fn list4(d: &[u8]) -> (Vec<Value>, Option<String>) {
    let mut out = Vec::new();
    let mut p = RAR4.len();
    for _ in 0..MAX_BLOCKS {
        if p >= d.len() {
            return (out, None);
        }
        let (Some(&ty), Some(flags), Some(size)) =
            (d.get(p + 2), u16_at(d, p + 3), u16_at(d, p + 5))
        else {
            return (out, Some(format!("truncated block header at {p}")));
        };
        if size < 7 {
            return (out, Some(format!("block header of {size} bytes at {p}")));
        }
        let mut add = if flags & 0x8000 != 0 {
            u32_at(d, p + 7).unwrap_or(0)
        } else {
            0
        };
        match ty {
            0x73 if flags & 0x0080 != 0 => {
                return (
                    out,
                    Some("headers are encrypted: entry names hidden".into()),
                );
            }
            0x74 => {
                let h = p + 7;
                let (Some(packed), Some(unpacked), Some(name_len)) =
                    (u32_at(d, h), u32_at(d, h + 4), u16_at(d, h + 19))
                else {
                    return (out, Some(format!("truncated file header at {p}")));
                };
                let (mut packed, mut unpacked, mut name_at) = (packed, unpacked, h + 25);
                if flags & 0x100 != 0 {
                    packed |= u32_at(d, h + 25).unwrap_or(0) << 32;
                    unpacked |= u32_at(d, h + 29).unwrap_or(0) << 32;
                    name_at += 8;
                }
                let Some(raw) = d.get(name_at..name_at + name_len) else {
                    return (out, Some(format!("truncated file name at {p}")));
                };
                // Unicode names store the OEM name, a NUL, then an encoded form: keep the first.
                let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
                out.push(json!({
                    "name": String::from_utf8_lossy(raw),
                    "size": unpacked,
                    "packed_size": packed,
                    "encrypted": flags & 0x04 != 0,
                }));
                add = packed;
            }
            0x7b => return (out, None),
            _ => {}
        }
        p = match p
            .checked_add(size)
            .and_then(|q| q.checked_add(add as usize))
        {
            Some(q) => q,
            None => return (out, Some("block size overflows".into())),
        };
    }
    (out, Some(format!("block limit ({MAX_BLOCKS}) reached")))
}

fn list5(d: &[u8]) -> (Vec<Value>, Option<String>) {
    let mut out = Vec::new();
    let mut p = RAR5.len();
    for _ in 0..MAX_BLOCKS {
        if p >= d.len() {
            return (out, None);
        }
        let mut q = p + 4; // CRC32
        let Some(size) = vint(d, &mut q) else {
            return (out, Some(format!("truncated block header at {p}")));
        };
        let body_start = q;
        let Some(end) = usize::try_from(size)
            .ok()
            .and_then(|s| body_start.checked_add(s))
        else {
            return (out, Some("block size overflows".into()));
        };
        let (Some(ty), Some(flags)) = (vint(d, &mut q), vint(d, &mut q)) else {
            return (out, Some(format!("truncated block header at {p}")));
        };
        if flags & 1 != 0 && vint(d, &mut q).is_none() {
            return (out, Some(format!("truncated block header at {p}")));
        }
        let data_size = if flags & 2 != 0 {
            vint(d, &mut q).unwrap_or(0)
        } else {
            0
        };
        match ty {
            4 => {
                return (
                    out,
                    Some("headers are encrypted: entry names hidden".into()),
                );
            }
            2 => {
                let entry = (|| {
                    let file_flags = vint(d, &mut q)?;
                    let size = vint(d, &mut q)?;
                    vint(d, &mut q)?; // attributes
                    if file_flags & 2 != 0 {
                        q += 4;
                    }
                    if file_flags & 4 != 0 {
                        q += 4;
                    }
                    vint(d, &mut q)?; // compression
                    vint(d, &mut q)?; // host OS
                    let n = usize::try_from(vint(d, &mut q)?).ok()?;
                    let raw = d.get(q..q.checked_add(n)?)?;
                    // An encryption record (type 1) in the extra area marks an encrypted file.
                    let encrypted = flags & 1 != 0 && {
                        let mut e = q + n;
                        vint(d, &mut e).is_some() && vint(d, &mut e) == Some(1)
                    };
                    Some(json!({
                        "name": String::from_utf8_lossy(raw),
                        "size": size,
                        "packed_size": data_size,
                        "encrypted": encrypted,
                    }))
                })();
                match entry {
                    Some(e) => out.push(e),
                    None => return (out, Some(format!("truncated file header at {p}"))),
                }
            }
            5 => return (out, None),
            _ => {}
        }
        p = match usize::try_from(data_size)
            .ok()
            .and_then(|s| end.checked_add(s))
        {
            Some(n) => n,
            None => return (out, Some("block size overflows".into())),
        };
    }
    (out, Some(format!("block limit ({MAX_BLOCKS}) reached")))
}

pub(super) fn unrar(data: &[u8], prefix: &str, depth: u32, st: &mut State<'_>) {
    let label = if prefix.is_empty() { "rar" } else { prefix };
    let (entries, problem) = list(data);
    if let Some(p) = problem {
        st.finding(format!("{label}: {p}"));
    }
    let why = if !st.limits.rar_tool {
        "rar extraction is off".to_owned()
    } else if let Some(m) = super::rar_tool::missing() {
        m.to_owned()
    } else {
        match extract(data, prefix, label, depth, st, &entries) {
            Ok(()) => return,
            Err(e) => e,
        }
    };
    st.finding(format!(
        "{label}: not extracted ({why}); {} entries listed from the headers",
        entries.len()
    ));
    for e in entries.into_iter().take(st.limits.max_members) {
        let mut e = e;
        e["archive"] = json!(label);
        st.out.listed.push(e);
    }
}

/// Runs the sandboxed tool, with no password and then each candidate when entries are
/// encrypted, and pushes what came out as members (nested archives recurse as usual).
fn extract(
    data: &[u8],
    prefix: &str,
    label: &str,
    depth: u32,
    st: &mut State<'_>,
    entries: &[Value],
) -> Result<(), String> {
    let encrypted = entries.iter().any(|e| e["encrypted"] == true) || entries.is_empty();
    let mut candidates: Vec<Option<String>> = vec![None];
    if encrypted {
        candidates.extend(st.passwords.iter().cloned().map(Some));
    }
    let mut last = None;
    for password in candidates {
        let run = super::rar_tool::extract(data, password.as_deref().unwrap_or(""), st.room())?;
        let done = run.ok;
        last = Some((run, password));
        if done {
            break;
        }
    }
    let Some((run, password)) = last else {
        return Err("nothing ran".into());
    };
    let before = st.out.members.len();
    super::untar(std::io::Cursor::new(&run.tar), prefix, depth, st, password);
    let got = st.out.members.len() - before;
    if !run.ok {
        if got == 0 {
            return Err(
                "unar failed: damaged, encrypted with an unknown password, or over the size limit"
                    .into(),
            );
        }
        st.finding(format!(
            "{label}: unar stopped early (damaged, wrong password or size limit); {got} members kept"
        ));
    }
    Ok(())
}
