//! Listing the members of an archive, and guessing which members a sandbox would run.
//!
//! This is the selection step of Cuckoo's `tasks/create/submit` (sflock): an archive sample
//! becomes one `archive` task per member that has an analysis package. Only the directory
//! is read (zip central directory, tar headers); member content is never decompressed here,
//! so a bomb costs nothing. Hostile input gives an error value, never a panic, and the
//! listing is capped.

use std::io::Read;
use std::path::Path;

/// Most members listed from one archive.
pub const MAX_MEMBERS: usize = 10_000;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Path inside the archive, as stored (may be hostile: never use it as a host path).
    pub name: String,
    /// Uncompressed size as declared by the archive.
    pub size: u64,
}

/// Archive formats recognised from their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// PKZIP.
    Zip,
    /// POSIX/GNU tar.
    Tar,
    /// gzip-compressed tar.
    TarGz,
}

/// Recognises an archive from its first bytes (at least 512 for tar).
pub fn archive_kind(head: &[u8]) -> Option<ArchiveKind> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(ArchiveKind::Zip)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveKind::TarGz)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(ArchiveKind::Tar)
    } else {
        None
    }
}

/// Lists the regular-file members of an archive file. A gzip stream that is not a tar
/// gives an empty list.
pub fn list_members(path: &Path, kind: ArchiveKind) -> std::io::Result<Vec<Member>> {
    let file = std::fs::File::open(path)?;
    match kind {
        ArchiveKind::Zip => list_zip(file),
        ArchiveKind::Tar => list_tar(file),
        ArchiveKind::TarGz => list_tar(flate2::read::GzDecoder::new(file)),
    }
}

fn list_zip(file: std::fs::File) -> std::io::Result<Vec<Member>> {
    let mut zip = zip::ZipArchive::new(file).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    for i in 0..zip.len().min(MAX_MEMBERS) {
        // Metadata only: `by_index_raw` does not decompress (nor need a password).
        let Ok(entry) = zip.by_index_raw(i) else {
            continue;
        };
        if entry.is_file() {
            let Ok(name) = entry.name() else { continue };
            out.push(Member {
                name: name.into_owned(),
                size: entry.size(),
            });
        }
    }
    Ok(out)
}

fn list_tar(reader: impl Read) -> std::io::Result<Vec<Member>> {
    let mut tar = tar::Archive::new(reader);
    let mut out = Vec::new();
    // Walking a tar reads (and for .tgz decompresses) every member's data to skip it; cap
    // the total so that a bomb stops being read.
    let mut seen: u64 = 0;
    const MAX_TAR_BYTES: u64 = 1 << 30;
    let entries = match tar.entries() {
        Ok(e) => e,
        Err(_) => return Ok(out),
    };
    for entry in entries {
        let Ok(entry) = entry else { break };
        let size = entry.header().size().unwrap_or(0);
        seen = seen.saturating_add(size);
        if entry.header().entry_type().is_file()
            && let Ok(p) = entry.path()
        {
            out.push(Member {
                name: p.to_string_lossy().into_owned(),
                size,
            });
        }
        if out.len() >= MAX_MEMBERS || seen > MAX_TAR_BYTES {
            break;
        }
    }
    Ok(out)
}

/// The analysis package Cuckoo would pick for a file name (sflock's extension guess), or
/// `None` for files nothing would run.
pub fn package_for_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "exe" | "scr" | "com" | "pif" => "exe",
        "dll" | "ocx" | "cpl" => "dll",
        "pdf" => "pdf",
        "doc" | "docx" | "docm" | "dot" | "dotm" | "rtf" => "doc",
        "xls" | "xlsx" | "xlsm" | "xlsb" | "xlt" => "xls",
        "ppt" | "pptx" | "pptm" | "pps" | "ppsx" => "ppt",
        "js" | "jse" => "js",
        "vbs" | "vbe" => "vbs",
        "wsf" => "wsf",
        "hta" => "hta",
        "ps1" => "ps1",
        "jar" => "jar",
        "msi" => "msi",
        "bat" | "cmd" => "bat",
        "lnk" => "generic",
        "py" => "python",
        "sh" => "bash",
        "elf" => "elf",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_by_extension() {
        assert_eq!(package_for_name("files/pdf0.pdf"), Some("pdf"));
        assert_eq!(package_for_name("A.EXE"), Some("exe"));
        assert_eq!(package_for_name("readme"), None);
        assert_eq!(package_for_name("notes.txt"), None);
    }

    #[test]
    fn kinds_from_magic() {
        assert_eq!(archive_kind(b"PK\x03\x04rest"), Some(ArchiveKind::Zip));
        assert_eq!(archive_kind(&[0x1f, 0x8b, 8]), Some(ArchiveKind::TarGz));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(archive_kind(&tar), Some(ArchiveKind::Tar));
        assert_eq!(archive_kind(b"%PDF"), None);
    }

    #[test]
    fn hostile_archives_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes, kind) in [
            ("a.zip", &b"PK\x03\x04garbage"[..], ArchiveKind::Zip),
            ("b.tgz", &[0x1f, 0x8b, 8, 0, 0, 0][..], ArchiveKind::TarGz),
            ("c.tar", &[0u8; 100][..], ArchiveKind::Tar),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let _ = list_members(&p, kind);
        }
    }

    #[test]
    fn lists_zip_and_tgz_members() {
        let dir = tempfile::tempdir().unwrap();
        let zpath = dir.path().join("x.zip");
        {
            let mut w = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
            let o = zip::write::SimpleFileOptions::default();
            w.add_directory("files/", o).unwrap();
            w.start_file("files/pdf0.pdf", o).unwrap();
            std::io::Write::write_all(&mut w, b"%PDF-1.4").unwrap();
            w.finish().unwrap();
        }
        let m = list_members(&zpath, ArchiveKind::Zip).unwrap();
        assert_eq!(
            m,
            vec![Member {
                name: "files/pdf0.pdf".into(),
                size: 8
            }]
        );

        let tpath = dir.path().join("x.tgz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&tpath).unwrap(),
                flate2::Compression::fast(),
            );
            let mut b = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "files/pdf0.pdf", &b"abc"[..])
                .unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        let m = list_members(&tpath, ArchiveKind::TarGz).unwrap();
        assert_eq!(
            m,
            vec![Member {
                name: "files/pdf0.pdf".into(),
                size: 3
            }]
        );
    }
}
