//! The archive package: members are unpacked on the host into the sandbox's `/tmp`
//! before the run (so unpacking is neither the sample's behaviour nor its dropped files),
//! then one runnable member is started, as Cuckoo's `zip` package does (`file=` picks it,
//! `password=` opens encrypted zips, default `infected`).
//!
//! Archives are hostile: member names are reduced to safe components (no `..`, no
//! absolute paths, no links followed), files are created exclusively, and the member
//! count, each member's size and the total are capped, so a bomb stops being read.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use nestbox_analyzers::archive::{ArchiveKind, archive_kind};

/// Most members unpacked.
const MAX_MEMBERS: usize = 100;
/// Most bytes unpacked in total.
const MAX_TOTAL: u64 = 256 << 20;

/// One unpacked member.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Its (sanitised) path relative to the unpack directory.
    pub name: String,
    /// Its first bytes.
    pub head: Vec<u8>,
}

/// Limits and ownership for an unpack.
pub struct Target<'a> {
    /// Host directory to unpack into (created).
    pub dir: &'a Path,
    /// Owner of what is written (the slot uid).
    pub uid: u32,
    /// Largest member kept.
    pub max_file: u64,
    /// Password for encrypted zip members.
    pub password: &'a str,
}

/// The archive kind of a file's first bytes, if the archive package applies.
pub fn kind(head: &[u8]) -> Option<ArchiveKind> {
    archive_kind(head)
}

/// `a/../b\\c` → `a/b/c` with each component made safe; `None` if nothing is left.
fn safe_path(name: &str) -> Option<String> {
    let parts: Vec<String> = name
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .map(|c| nestbox_core::safe_component(c, "member"))
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

struct Writer<'a> {
    t: &'a Target<'a>,
    total: u64,
    out: Vec<Unpacked>,
    notes: Vec<String>,
}

impl Writer<'_> {
    fn full(&self) -> bool {
        self.out.len() >= MAX_MEMBERS || self.total >= MAX_TOTAL
    }

    fn add(&mut self, name: &str, r: &mut dyn Read) {
        let Some(rel) = safe_path(name) else { return };
        let path = self.t.dir.join(&rel);
        if let Err(e) = self.write(&path, r, &rel) {
            self.notes
                .push(format!("archive member {rel} not unpacked: {e}"));
        }
    }

    fn write(&mut self, path: &Path, r: &mut dyn Read, rel: &str) -> std::io::Result<()> {
        let mut made = Vec::new();
        let mut p = path.parent();
        while let Some(d) = p.filter(|d| *d != self.t.dir && !d.exists()) {
            made.push(d.to_path_buf());
            p = d.parent();
        }
        for d in made.iter().rev() {
            std::fs::create_dir(d)?;
            chown(d, Some(self.t.uid), Some(self.t.uid))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let limit = self.t.max_file.min(MAX_TOTAL - self.total);
        let mut head = Vec::new();
        let mut buf = [0u8; 65_536];
        let mut n_total = 0u64;
        let mut lim = r.take(limit);
        loop {
            let n = lim.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if head.len() < 4096 {
                head.extend_from_slice(&buf[..n.min(4096 - head.len())]);
            }
            f.write_all(&buf[..n])?;
            n_total += n as u64;
        }
        self.total += n_total;
        let runnable = head.starts_with(b"\x7fELF") || head.starts_with(b"#!");
        f.set_permissions(std::fs::Permissions::from_mode(if runnable {
            0o755
        } else {
            0o644
        }))?;
        chown(path, Some(self.t.uid), Some(self.t.uid))?;
        self.out.push(Unpacked {
            name: rel.to_owned(),
            head,
        });
        Ok(())
    }
}

/// Unpacks `archive` into `t.dir`. Returns the members written and notes.
pub fn unpack(archive: &Path, kind: ArchiveKind, t: &Target<'_>) -> (Vec<Unpacked>, Vec<String>) {
    let mut w = Writer {
        t,
        total: 0,
        out: Vec::new(),
        notes: Vec::new(),
    };
    let made = std::fs::create_dir(t.dir)
        .and_then(|()| chown(t.dir, Some(t.uid), Some(t.uid)))
        .and_then(|()| std::fs::set_permissions(t.dir, std::fs::Permissions::from_mode(0o755)));
    if let Err(e) = made {
        w.notes.push(format!("cannot unpack the archive: {e}"));
        return (w.out, w.notes);
    }
    let file = match std::fs::File::open(archive) {
        Ok(f) => f,
        Err(e) => {
            w.notes.push(format!("cannot open the archive: {e}"));
            return (w.out, w.notes);
        }
    };
    match kind {
        ArchiveKind::Zip => unzip(file, &mut w),
        ArchiveKind::Tar => untar(file, &mut w),
        ArchiveKind::TarGz => untar(flate2::read::GzDecoder::new(file), &mut w),
    }
    (w.out, w.notes)
}

fn unzip(file: std::fs::File, w: &mut Writer<'_>) {
    let mut zip = match zip::ZipArchive::new(file) {
        Ok(z) => z,
        Err(e) => {
            w.notes.push(format!("not a readable zip: {e}"));
            return;
        }
    };
    for i in 0..zip.len() {
        if w.full() {
            w.notes
                .push("the archive has more than the unpack limits; the rest was skipped".into());
            break;
        }
        let encrypted = zip.by_index_raw(i).map(|e| e.encrypted()).unwrap_or(false);
        let entry = if encrypted {
            zip.by_index_decrypt(i, w.t.password.as_bytes())
        } else {
            zip.by_index(i)
        };
        match entry {
            Ok(mut e) if e.is_file() => {
                let name = e.name().map(|n| n.into_owned()).unwrap_or_default();
                w.add(&name, &mut e);
            }
            Ok(_) => {}
            Err(e) => w.notes.push(format!("zip member {i} unreadable: {e}")),
        }
    }
}

fn untar(r: impl Read, w: &mut Writer<'_>) {
    let mut tar = tar::Archive::new(r);
    let Ok(entries) = tar.entries() else {
        w.notes.push("not a readable tar".into());
        return;
    };
    for entry in entries {
        if w.full() {
            w.notes
                .push("the archive has more than the unpack limits; the rest was skipped".into());
            break;
        }
        let Ok(mut e) = entry else { break };
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        w.add(&name, &mut e);
    }
}

/// The member to run: the one named by `file=` (full name or base name), else the first
/// ELF executable, else the first script, else the first member any package runs.
pub fn pick<'a>(
    members: &'a [Unpacked],
    file: Option<&str>,
    runs: impl Fn(&Unpacked) -> bool,
) -> Option<&'a Unpacked> {
    if let Some(f) = file {
        return members
            .iter()
            .find(|m| m.name == f || m.name.rsplit('/').next() == Some(f));
    }
    members
        .iter()
        .find(|m| m.head.starts_with(b"\x7fELF"))
        .or_else(|| members.iter().find(|m| m.head.starts_with(b"#!")))
        .or_else(|| members.iter().find(|m| runs(m)))
}

/// Where members of the archive named `name` go, on the host and inside.
pub fn dirs(scratch_tmp: &Path, name: &str) -> (PathBuf, String) {
    let d = format!("{name}_files");
    (scratch_tmp.join(&d), format!("/tmp/{d}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &Path) -> Target<'_> {
        Target {
            dir,
            uid: nix::unistd::geteuid().as_raw(),
            max_file: 1 << 20,
            password: "infected",
        }
    }

    #[test]
    fn zip_members_are_unpacked_safely_and_picked() {
        let tmp = tempfile::tempdir().unwrap();
        let zpath = tmp.path().join("a.zip");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("../../escape.txt", o).unwrap();
        z.write_all(b"nope").unwrap();
        z.start_file("docs/readme.txt", o).unwrap();
        z.write_all(b"hello").unwrap();
        z.start_file("bin/run.sh", o).unwrap();
        z.write_all(b"#!/bin/sh\necho hi\n").unwrap();
        z.start_file("big.bin", o).unwrap();
        z.write_all(&vec![0u8; 2 << 20]).unwrap();
        z.finish().unwrap();
        let dir = tmp.path().join("out");
        let (m, notes) = unpack(&zpath, ArchiveKind::Zip, &target(&dir));
        assert!(notes.is_empty(), "{notes:?}");
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["escape.txt", "docs/readme.txt", "bin/run.sh", "big.bin"]
        );
        assert!(!tmp.path().join("escape.txt").exists());
        assert_eq!(
            std::fs::metadata(dir.join("big.bin")).unwrap().len(),
            1 << 20
        );
        assert_eq!(pick(&m, None, |_| false).unwrap().name, "bin/run.sh");
        assert_eq!(
            pick(&m, Some("readme.txt"), |_| false).unwrap().name,
            "docs/readme.txt"
        );
        let mode = std::fs::metadata(dir.join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn garbage_is_a_note_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x");
        std::fs::write(&p, b"PK\x03\x04garbage").unwrap();
        let (m, notes) = unpack(&p, ArchiveKind::Zip, &target(&tmp.path().join("o")));
        assert!(m.is_empty() && !notes.is_empty());
        std::fs::write(&p, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        let (m, _) = unpack(&p, ArchiveKind::TarGz, &target(&tmp.path().join("o2")));
        assert!(m.is_empty());
        assert_eq!(safe_path("/../a/./b\\c").as_deref(), Some("a/b/c"));
        assert_eq!(safe_path("../.."), None);
    }
}
