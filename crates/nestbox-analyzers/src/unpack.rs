//! Bomb-safe extraction of archives and compressed files, from bytes to bytes.
//!
//! Formats: zip (stored/deflate, ZipCrypto and WinZip AES with a list of passwords), 7z
//! (including encrypted headers), tar, gzip, bzip2, xz, zstd, cab (stored and MSZIP; LZX
//! folders listed) and ISO 9660 (Joliet names
//! when present), nested up to a depth. RAR (v4/v5) is recognised and its entries are
//! listed from the headers (`listed`), with an "extraction unsupported" finding: there is
//! no maintained pure-Rust RAR decoder.
//! Nothing is written anywhere: members come back as byte vectors under names reduced to
//! safe relative paths (no `..`, no absolute paths, no drive letters, bounded length).
//!
//! Every limit ([`UnpackLimits`]) is checked while decompressing, not from the sizes an
//! archive declares: total bytes produced, bytes per member, compression ratio, member
//! count, nesting depth. Hitting one is a *finding* (recorded, the rest goes on), not an
//! error; a damaged archive yields what could be read plus an error.

use std::io::{Cursor, Read};

/// Limits of one [`unpack`] call (all members of all nesting levels together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most bytes produced in total (read attempts count, kept or not).
    pub max_total: u64,
    /// Largest member kept.
    pub max_member: u64,
    /// Most members kept.
    pub max_members: usize,
    /// Deepest nesting unpacked (1 = the archive's own members only).
    pub max_depth: u32,
    /// Largest ratio of a member's size to its compressed size (members under 1 MiB are
    /// exempt: tiny highly-compressible files are normal).
    pub max_ratio: u64,
    /// Longest member name kept; longer ones are shortened.
    pub max_name_len: usize,
    /// Extract RAR with `unar` in a bubblewrap sandbox (when both are installed); off,
    /// RAR entries are only listed. The fuzz targets turn it off to stay in-process.
    pub rar_tool: bool,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_total: 256 * 1024 * 1024,
            max_member: 64 * 1024 * 1024,
            max_members: 1000,
            max_depth: 4,
            max_ratio: 1000,
            max_name_len: 255,
            rar_tool: true,
        }
    }
}

/// Formats recognised from their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PKZIP.
    Zip,
    /// 7-Zip.
    SevenZ,
    /// POSIX/GNU tar.
    Tar,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
    /// ISO 9660 image.
    Iso,
    /// RAR v4/v5 (listed only).
    Rar,
    /// Microsoft cabinet.
    Cab,
}

impl Format {
    /// Lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::SevenZ => "7z",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Iso => "iso",
            Format::Rar => "rar",
            Format::Cab => "cab",
        }
    }
}

/// The format of `data`, if it is one [`unpack`] reads.
pub fn format_of(data: &[u8]) -> Option<Format> {
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if data.starts_with(b"7z\xbc\xaf\x27\x1c") {
        Some(Format::SevenZ)
    } else if data.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if data.starts_with(b"BZh") {
        Some(Format::Bzip2)
    } else if data.starts_with(b"\xfd7zXZ\x00") {
        Some(Format::Xz)
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if data.len() >= 262 && &data[257..262] == b"ustar" {
        Some(Format::Tar)
    } else if cab::is_cab(data) {
        Some(Format::Cab)
    } else if data.starts_with(rar::RAR4) || data.starts_with(rar::RAR5) {
        Some(Format::Rar)
    } else if iso::is_iso(data) {
        Some(Format::Iso)
    } else {
        None
    }
}

/// One extracted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Safe relative path; nested members are `outer/inner` joined with `/`.
    pub name: String,
    /// The name as stored in the archive (hostile: for display only).
    pub original: String,
    /// Content.
    pub data: Vec<u8>,
    /// Nesting level (1 for the archive's own members).
    pub depth: u32,
    /// The password that opened it, if it was encrypted.
    pub password: Option<String>,
}

/// What [`unpack`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// The outer format, `None` if the data is no archive.
    pub format: Option<Format>,
    /// Extracted files (nested archives are kept and unpacked too).
    pub members: Vec<Extracted>,
    /// Limits hit and other findings (encrypted members no password opened, neutralised
    /// names).
    pub findings: Vec<String>,
    /// Damage: what could not be read.
    pub errors: Vec<String>,
    /// Entries listed but not extracted (RAR): `{archive, name, size, packed_size,
    /// encrypted}`.
    pub listed: Vec<serde_json::Value>,
}

/// Running totals shared by all levels.
struct State<'a> {
    limits: &'a UnpackLimits,
    passwords: &'a [String],
    produced: u64,
    out: Unpacked,
}

impl State<'_> {
    fn room(&self) -> u64 {
        self.limits.max_total.saturating_sub(self.produced)
    }

    fn full(&self) -> bool {
        self.out.members.len() >= self.limits.max_members || self.room() == 0
    }

    /// Records that the member count or total size limit stopped `label`'s walk.
    fn limit_reached(&mut self, label: &str) {
        self.finding(format!(
            "{label}: member count limit ({}) or total size limit reached",
            self.limits.max_members
        ));
    }

    fn finding(&mut self, s: String) {
        if self.out.findings.len() < 1000 && !self.out.findings.contains(&s) {
            self.out.findings.push(s);
        }
    }

    fn error(&mut self, s: String) {
        if self.out.errors.len() < 1000 {
            self.out.errors.push(s);
        }
    }

    /// Reads one member through the limits. `None` when it was dropped (a finding is
    /// recorded).
    fn read_member(
        &mut self,
        r: &mut dyn Read,
        name: &str,
        compressed: Option<u64>,
    ) -> Option<Vec<u8>> {
        let cap = self.limits.max_member.min(self.room());
        let mut data = Vec::new();
        let res = r.take(cap + 1).read_to_end(&mut data);
        self.produced += data.len() as u64;
        if data.len() as u64 > cap {
            let which = if cap < self.limits.max_member {
                format!(
                    "total unpacked size limit ({} bytes)",
                    self.limits.max_total
                )
            } else {
                format!("member size limit ({} bytes)", self.limits.max_member)
            };
            self.finding(format!("{name}: {which} reached; member skipped"));
            return None;
        }
        if let Err(e) = res {
            self.error(format!("{name}: {e}"));
            return None;
        }
        if let Some(c) = compressed
            && data.len() > 1 << 20
            && data.len() as u64 / c.max(1) > self.limits.max_ratio
        {
            self.finding(format!(
                "{name}: compression ratio over {} (possible bomb); member skipped",
                self.limits.max_ratio
            ));
            return None;
        }
        Some(data)
    }

    fn push(
        &mut self,
        prefix: &str,
        original: &str,
        data: Vec<u8>,
        depth: u32,
        password: Option<String>,
    ) {
        if self.out.members.len() >= self.limits.max_members {
            self.finding(format!(
                "member count limit ({}) reached",
                self.limits.max_members
            ));
            return;
        }
        let safe = safe_path(original, self.limits.max_name_len);
        if safe != original.replace('\\', "/") {
            self.finding(format!("member name neutralised: {original:?} -> {safe:?}"));
        }
        let name = if prefix.is_empty() {
            safe
        } else {
            format!("{prefix}/{safe}")
        };
        let is_archive = format_of(&data).is_some();
        let nested = is_archive && depth < self.limits.max_depth;
        let copy = nested.then(|| data.clone());
        self.out.members.push(Extracted {
            name: name.clone(),
            original: original.to_owned(),
            data,
            depth,
            password,
        });
        if let Some(inner) = copy {
            unpack_level(&inner, &name, depth + 1, self);
        } else if is_archive {
            self.finding(format!(
                "{name}: nesting depth limit ({}) reached",
                self.limits.max_depth
            ));
        }
    }
}

/// Unpacks `data` (named `name`, used for single-stream formats' member name) with the
/// given passwords tried in order on encrypted members.
pub fn unpack(data: &[u8], name: &str, passwords: &[String], limits: &UnpackLimits) -> Unpacked {
    let mut st = State {
        limits,
        passwords,
        produced: 0,
        out: Unpacked {
            format: format_of(data),
            ..Unpacked::default()
        },
    };
    if st.out.format.is_some() {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        unpack_level_named(data, "", base, 1, &mut st);
    }
    st.out
}

fn unpack_level(data: &[u8], prefix: &str, depth: u32, st: &mut State<'_>) {
    let base = prefix.rsplit('/').next().unwrap_or(prefix).to_owned();
    unpack_level_named(data, prefix, &base, depth, st);
}

/// One archive level: `prefix` is where its members go, `base` its own file name (for
/// the member name of a single compressed stream).
fn unpack_level_named(data: &[u8], prefix: &str, base: &str, depth: u32, st: &mut State<'_>) {
    let Some(format) = format_of(data) else {
        return;
    };
    let label = if prefix.is_empty() { base } else { prefix };
    match format {
        Format::Zip => unzip(data, prefix, depth, st),
        Format::SevenZ => un7z(data, prefix, depth, st),
        Format::Tar => untar(Cursor::new(data), prefix, depth, st, None),
        Format::Iso => iso::uniso(data, prefix, depth, st),
        Format::Rar => rar::unrar(data, prefix, depth, st),
        Format::Cab => cab::uncab(data, prefix, depth, st),
        Format::Gzip | Format::Bzip2 | Format::Xz | Format::Zstd => {
            let inner_name = strip_compression_ext(base);
            let reader: Result<Box<dyn Read + '_>, String> = match format {
                Format::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(data))),
                Format::Bzip2 => Ok(Box::new(bzip2::read::MultiBzDecoder::new(data))),
                Format::Xz => Ok(Box::new(lzma_rust2::XzReader::new(data, true))),
                _ => ruzstd::decoding::StreamingDecoder::new(data)
                    .map(|d| Box::new(d) as Box<dyn Read>)
                    .map_err(|e| e.to_string()),
            };
            let mut reader = match reader {
                Ok(r) => r,
                Err(e) => {
                    st.error(format!("{label}: {e}"));
                    return;
                }
            };
            // A compressed tar is a tar inside: unpack it as one level.
            let Some(out) = st.read_member(&mut reader, label, Some(data.len() as u64)) else {
                return;
            };
            if format_of(&out) == Some(Format::Tar) {
                let n = out.len() as u64;
                // The bytes were counted once already; tar members count again.
                st.produced = st.produced.saturating_sub(n);
                untar(Cursor::new(&out[..]), prefix, depth, st, None);
            } else {
                st.push(prefix, &inner_name, out, depth, None);
            }
        }
    }
}

/// `x.tar.gz` → `x.tar`, `a.gz` → `a`, `b.tgz` → `b.tar`; no known extension → `data`.
fn strip_compression_ext(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for (ext, repl) in [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".txz", ".tar"),
        (".gz", ""),
        (".bz2", ""),
        (".xz", ""),
        (".zst", ""),
    ] {
        if lower.ends_with(ext) && name.len() > ext.len() {
            return format!("{}{repl}", &name[..name.len() - ext.len()]);
        }
    }
    "data".to_owned()
}

fn unzip(data: &[u8], prefix: &str, depth: u32, st: &mut State<'_>) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(z) => z,
        Err(e) => {
            st.error(format!(
                "{}: {e}",
                if prefix.is_empty() { "zip" } else { prefix }
            ));
            return;
        }
    };
    if zip.len() > st.limits.max_members {
        st.finding(format!(
            "{} entries: member count limit ({}) applies",
            zip.len(),
            st.limits.max_members
        ));
    }
    for i in 0..zip.len() {
        if st.full() {
            if st.room() == 0 {
                st.finding(format!(
                    "total unpacked size limit ({} bytes) reached",
                    st.limits.max_total
                ));
            } else {
                st.finding(format!(
                    "member count limit ({}) reached",
                    st.limits.max_members
                ));
            }
            return;
        }
        let (name, encrypted, compressed, is_file) = match zip.by_index_raw(i) {
            Ok(e) => (
                e.name()
                    .map(|n| n.into_owned())
                    .unwrap_or_else(|_| format!("member{i}")),
                e.encrypted(),
                e.compressed_size(),
                e.is_file(),
            ),
            Err(e) => {
                st.error(format!("zip entry {i}: {e}"));
                continue;
            }
        };
        if !is_file {
            continue;
        }
        if !encrypted {
            let got = match zip.by_index(i) {
                Ok(mut f) => st.read_member(&mut f, &name, Some(compressed)),
                Err(e) => {
                    st.error(format!("{name}: {e}"));
                    None
                }
            };
            if let Some(d) = got {
                st.push(prefix, &name, d, depth, None);
            }
            continue;
        }
        // ZipCrypto's one-byte check passes a wrong password 1 time in 256; the CRC at the
        // end then fails, so a read error means "try the next password".
        let passwords = st.passwords;
        let mut opened = false;
        for pw in passwords {
            let Ok(mut f) = zip.by_index_decrypt(i, pw.as_bytes()) else {
                continue;
            };
            let (before, errors) = (st.produced, st.out.errors.len());
            match st.read_member(&mut f, &name, Some(compressed)) {
                Some(d) => {
                    drop(f);
                    st.push(prefix, &name, d, depth, Some(pw.clone()));
                }
                None if st.out.errors.len() > errors => {
                    st.out.errors.truncate(errors);
                    st.produced = before;
                    continue;
                }
                // Opened, but a limit dropped it (recorded).
                None => {}
            }
            opened = true;
            break;
        }
        if !opened {
            st.finding(format!(
                "{name}: encrypted and none of the passwords opened it"
            ));
        }
    }
}

fn un7z(data: &[u8], prefix: &str, depth: u32, st: &mut State<'_>) {
    let label = if prefix.is_empty() { "7z" } else { prefix }.to_owned();
    let passwords = st.passwords;
    let candidates = std::iter::once(None).chain(passwords.iter().map(Some));
    let mut last_err = String::new();
    for pw in candidates {
        let password = pw.map_or_else(sevenz_rust2::Password::empty, |p| {
            sevenz_rust2::Password::from(p.as_str())
        });
        // An encrypted header fails here with a wrong password; encrypted content fails
        // at the first member.
        let mut reader = match sevenz_rust2::ArchiveReader::new_with_memory_limit(
            Cursor::new(data),
            password,
            256 * 1024,
        ) {
            Ok(r) => r,
            Err(e) => {
                last_err = e.to_string();
                continue;
            }
        };
        let mut got: Vec<(String, Vec<u8>)> = Vec::new();
        let mut stopped = false;
        let (before, errors) = (st.produced, st.out.errors.len());
        let res = reader.for_each_entries(|entry, r| {
            if !entry.has_stream() || entry.is_directory() {
                return Ok(true);
            }
            if st.out.members.len() + got.len() >= st.limits.max_members || st.room() == 0 {
                stopped = true;
                return Ok(false);
            }
            let name = entry.name().to_owned();
            if let Some(d) = st.read_member(r, &name, None) {
                got.push((name, d));
            }
            Ok(true)
        });
        if let Err(e) = res {
            if got.is_empty() {
                // Most likely the wrong password: undo and try the next one.
                st.out.errors.truncate(errors);
                st.produced = before;
                last_err = e.to_string();
                continue;
            }
            st.error(format!("{label}: {e}"));
        }
        if stopped {
            st.finding(format!("{label}: member count or total size limit reached"));
        }
        let pw = pw.cloned();
        for (name, d) in got {
            st.push(prefix, &name, d, depth, pw.clone());
        }
        return;
    }
    if last_err.to_ascii_lowercase().contains("password") {
        st.finding(format!(
            "{label}: encrypted and none of the passwords opened it ({last_err})"
        ));
    } else {
        st.error(format!("{label}: {last_err}"));
    }
}

/// A tar stream's files as members (`password`: what opened the archive they came from,
/// for RAR extracted by the tool).
fn untar(r: impl Read, prefix: &str, depth: u32, st: &mut State<'_>, password: Option<String>) {
    let mut tar = tar::Archive::new(r);
    let entries = match tar.entries() {
        Ok(e) => e,
        Err(e) => {
            st.error(format!("tar: {e}"));
            return;
        }
    };
    for entry in entries {
        if st.full() {
            st.finding("member count or total size limit reached".to_owned());
            return;
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                st.error(format!("tar: {e}"));
                return;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path_bytes()
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>();
        // `tar -C dir -cf - .` names everything "./…".
        let name = name.strip_prefix("./").map(str::to_owned).unwrap_or(name);
        if let Some(d) = st.read_member(&mut entry, &name, None) {
            st.push(prefix, &name, d, depth, password.clone());
        }
    }
}

impl Unpacked {
    /// The report's `static.archive` section: format, members (name, size, hashes,
    /// depth, password used), findings (limits hit) and errors.
    pub fn section(&self) -> serde_json::Value {
        use sha2::Digest as _;
        let members: Vec<serde_json::Value> = self
            .members
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "original_name": m.original,
                    "size": m.data.len(),
                    "md5": hex::encode(md5::Md5::digest(&m.data)),
                    "sha256": hex::encode(sha2::Sha256::digest(&m.data)),
                    "depth": m.depth,
                    "password": m.password,
                    "package": crate::archive::package_for_name(&m.name),
                })
            })
            .collect();
        serde_json::json!({
            "format": self.format.map(Format::as_str),
            "members": members,
            "findings": self.findings,
            "errors": self.errors,
            "listed": self.listed,
        })
    }
}

/// A hostile member name reduced to a safe relative path: `\` becomes `/`, drive letters
/// and leading `/` go, `.`/`..`/empty components are dropped, control characters removed,
/// and the result is at most `max_len` bytes (the extension kept). Never empty.
pub fn safe_path(name: &str, max_len: usize) -> String {
    let unified = name.replace('\\', "/");
    let parts: Vec<String> = unified
        .split('/')
        .enumerate()
        .filter_map(|(i, c)| {
            let c: String = c.chars().filter(|ch| !ch.is_control()).collect();
            let c = c.trim();
            // A drive letter ("C:") as the first component.
            if i == 0 && c.len() == 2 && c.ends_with(':') {
                return None;
            }
            if c.is_empty() || c == "." || c == ".." {
                return None;
            }
            Some(c.replace(':', "_"))
        })
        .collect();
    let mut path = parts.join("/");
    if path.is_empty() {
        path = "member".to_owned();
    }
    if path.len() > max_len.max(16) {
        let ext = path
            .rfind('.')
            .filter(|&i| path.len() - i <= 16 && !path[i..].contains('/'))
            .map(|i| path[i..].to_owned())
            .unwrap_or_default();
        let mut cut = max_len.max(16) - ext.len();
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        // The cut can end a component in "/" or turn "..x" into "..": filter again (the
        // result is short enough now, so this recurses once).
        return safe_path(&format!("{}{ext}", &path[..cut]), max_len);
    }
    path
}

mod cab;
mod iso;
mod rar;
mod rar_tool;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_iso_rar;
