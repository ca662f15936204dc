//! The archive package: members are unpacked on the host into the sandbox's `/tmp`
//! before the run (so unpacking is neither the sample's behaviour nor its dropped files),
//! then one runnable member is started, as Cuckoo's `zip` package does (`file=` or the
//! archive task's `filename=` picks it, `password=` opens encrypted members, then
//! `infected`).
//!
//! The unpacking itself is the analyzers' bomb-safe [`nestbox_analyzers::unpack`] (the
//! same one `tasks/create/submit` uses to choose members); this module only writes its
//! members into the sandbox: names reduced to safe components again, files created
//! exclusively without following links, owned by the slot uid.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use nestbox_analyzers::unpack::{UnpackLimits, format_of, unpack as unpack_bytes};

/// Largest archive read for unpacking.
const MAX_ARCHIVE: u64 = 256 << 20;

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
    /// Passwords tried on encrypted members, in order.
    pub passwords: &'a [String],
}

/// Whether the archive package applies to a file starting with `head`.
pub fn is_archive(head: &[u8]) -> bool {
    format_of(head).is_some()
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

fn write_member(t: &Target<'_>, rel: &str, data: &[u8]) -> std::io::Result<()> {
    let path = t.dir.join(rel);
    let mut made = Vec::new();
    let mut p = path.parent();
    while let Some(d) = p.filter(|d| *d != t.dir && !d.exists()) {
        made.push(d.to_path_buf());
        p = d.parent();
    }
    for d in made.iter().rev() {
        std::fs::create_dir(d)?;
        chown(d, Some(t.uid), Some(t.uid))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    f.write_all(data)?;
    let runnable = data.starts_with(b"\x7fELF") || data.starts_with(b"#!");
    f.set_permissions(std::fs::Permissions::from_mode(if runnable {
        0o755
    } else {
        0o644
    }))?;
    chown(&path, Some(t.uid), Some(t.uid))
}

/// Unpacks `archive` into `t.dir`. Returns the members written and notes.
pub fn unpack(archive: &Path, t: &Target<'_>) -> (Vec<Unpacked>, Vec<String>) {
    use std::io::Read;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let made = std::fs::create_dir(t.dir)
        .and_then(|()| chown(t.dir, Some(t.uid), Some(t.uid)))
        .and_then(|()| std::fs::set_permissions(t.dir, std::fs::Permissions::from_mode(0o755)));
    if let Err(e) = made {
        notes.push(format!("cannot unpack the archive: {e}"));
        return (out, notes);
    }
    let mut data = Vec::new();
    if let Err(e) =
        std::fs::File::open(archive).and_then(|f| f.take(MAX_ARCHIVE).read_to_end(&mut data))
    {
        notes.push(format!("cannot read the archive: {e}"));
        return (out, notes);
    }
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let limits = UnpackLimits {
        max_member: t.max_file,
        ..UnpackLimits::default()
    };
    let u = unpack_bytes(&data, &name, t.passwords, &limits);
    drop(data);
    notes.extend(u.findings.into_iter().map(|f| format!("archive: {f}")));
    notes.extend(u.errors.into_iter().map(|f| format!("archive: {f}")));
    for m in u.members {
        let Some(rel) = safe_path(&m.name) else {
            continue;
        };
        match write_member(t, &rel, &m.data) {
            Ok(()) => out.push(Unpacked {
                name: rel,
                head: m.data[..m.data.len().min(4096)].to_vec(),
            }),
            Err(e) => notes.push(format!("archive member {rel} not unpacked: {e}")),
        }
    }
    (out, notes)
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

    fn target<'a>(dir: &'a Path, pw: &'a [String]) -> Target<'a> {
        Target {
            dir,
            uid: nix::unistd::geteuid().as_raw(),
            max_file: 1 << 20,
            passwords: pw,
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
        z.finish().unwrap();
        let dir = tmp.path().join("out");
        let (m, _) = unpack(&zpath, &target(&dir, &[]));
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert!(
            names.contains(&"bin/run.sh") && names.contains(&"docs/readme.txt"),
            "{names:?}"
        );
        assert!(!tmp.path().join("escape.txt").exists());
        assert!(m.iter().all(|x| dir.join(&x.name).starts_with(&dir)));
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
        let (m, notes) = unpack(&p, &target(&tmp.path().join("o"), &[]));
        assert!(m.is_empty() && !notes.is_empty());
        assert_eq!(safe_path("/../a/./b\\c").as_deref(), Some("a/b/c"));
        assert_eq!(safe_path("../.."), None);
    }
}
