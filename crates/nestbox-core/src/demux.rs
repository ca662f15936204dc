//! CAPE's demux: an archive submitted without a package becomes one task per member worth
//! running, not one task for the archive.
//!
//! CAPEv2 (`lib/cuckoo/common/demux.py`, `Database.demux_sample_and_add_to_db`) unpacks a
//! zip/rar/7z/… with sflock, using the `password` option or `infected`, and submits up to
//! ten members whose extension is on its list or whose type is one it runs (PE, ELF, PDF,
//! LNK, Outlook messages, Java). Office documents, Java archives and executables are never
//! unpacked (OOXML and JAR files are zips), a `.bin` name is taken as "downloaded from
//! us" and left alone, ISO/VHD images go to the `archive` package whole, and when nothing
//! qualifies the archive itself is the task. Members are checked under the same bomb
//! limits as every other unpacking.

use std::io::Read;
use std::path::Path;

use nestbox_analyzers::unpack::{self, Format};
use nestbox_types::NewTask;

use crate::pipeline::{self, StaticSettings};
use crate::submit::StagedSample;
use crate::{Core, Result};

/// At most this many member tasks per archive (CAPE: `new_retlist[:10]`).
pub const MAX_MEMBERS: usize = 10;

/// Extensions CAPE always demuxes (`demux_extensions_list`), lower case, without the dot.
const EXTENSIONS: &[&str] = &[
    "accdr",
    "exe",
    "dll",
    "com",
    "jar",
    "pdf",
    "msi",
    "msix",
    "msixbundle",
    "bin",
    "scr",
    "zip",
    "tar",
    "gz",
    "tgz",
    "rar",
    "htm",
    "html",
    "hta",
    "doc",
    "dot",
    "docx",
    "dotx",
    "docm",
    "dotm",
    "docb",
    "mht",
    "mso",
    "js",
    "jse",
    "vbs",
    "vbe",
    "xls",
    "xlt",
    "xlm",
    "xlsx",
    "xltx",
    "xlsm",
    "xltm",
    "xlsb",
    "xla",
    "xlam",
    "xll",
    "xlw",
    "ppt",
    "pot",
    "pps",
    "pptx",
    "pptm",
    "potx",
    "potm",
    "ppam",
    "ppsx",
    "ppsm",
    "sldx",
    "sldm",
    "wsf",
    "bat",
    "ps1",
    "sh",
    "pl",
    "lnk",
    "one",
    "onetoc2",
];

/// Member types CAPE runs whatever their name (`VALID_TYPES`, libmagic substrings).
const TYPES: &[&str] = &[
    "PE32",
    "Java archive",
    "Outlook",
    "Message",
    "MS Windows shortcut",
    "PDF document",
    "ELF",
];

/// Whole-file types that are never unpacked although they are zips or contain archives.
const NOT_ARCHIVES: &[&str] = &[
    "Microsoft",
    "Composite Document File",
    "CDFV2",
    "Java archive",
    "Java Jar",
    "PE32",
    "MS-DOS executable",
    "ELF",
];

/// One member chosen for a task of its own, staged like an upload.
pub struct DemuxedMember {
    /// Its path inside the archive (made safe by the unpacker).
    pub name: String,
    /// The staged bytes, hashed.
    pub staged: StagedSample,
}

/// Whether CAPE would demux a submission: no package named and no `file=` option (which
/// makes CAPE pick the `zip` package and run the named member inside the VM).
pub fn wanted(task: &NewTask) -> bool {
    task.package.is_empty() && task.options.get("file").is_none()
}

impl Core {
    /// The members of the staged file `filename` that CAPE would turn into tasks, staged
    /// as samples; empty when the file is no archive, is one CAPE leaves whole, or holds
    /// nothing worth running (the caller then submits the file itself).
    pub async fn demux(
        &self,
        staged: &StagedSample,
        filename: &str,
        password: Option<&str>,
    ) -> Result<Vec<DemuxedMember>> {
        let path = staged.path().to_path_buf();
        let name = filename.to_owned();
        let password = password.map(str::to_owned);
        let chosen = tokio::task::spawn_blocking(move || choose(&path, &name, password.as_deref()))
            .await
            .unwrap_or_default();
        let mut out = Vec::with_capacity(chosen.len());
        for (name, data) in chosen {
            let mut upload = self.begin_upload().await?;
            upload.write(&data).await?;
            out.push(DemuxedMember {
                name,
                staged: upload.finish().await?,
            });
        }
        Ok(out)
    }
}

/// The archive format of the file at `path` from its first 512 bytes; `None` for anything
/// [`unpack::unpack`] does not read (blocking). ISO 9660 images show only at 32 KiB, so
/// they are never archives here: submissions keep them whole.
pub fn archive_format(path: &Path) -> Option<Format> {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    unpack::format_of(&head[..n])
}

/// The members of the archive at `path` (named `name` for single-stream formats),
/// extracted under the bomb limits with the `password` option and then the default list;
/// empty when the file is larger than the document limit or cannot be read (blocking).
pub fn read_members(path: &Path, name: &str, password: Option<&str>) -> Vec<unpack::Extracted> {
    let settings = StaticSettings::default();
    let too_big = std::fs::metadata(path).map_or(true, |m| m.len() > settings.max_document as u64);
    let Some(data) = (!too_big).then(|| std::fs::read(path).ok()).flatten() else {
        return Vec::new();
    };
    let options = password
        .map(|p| format!("password={p}"))
        .unwrap_or_default();
    let passwords = pipeline::archive_passwords(&options, &settings);
    unpack::unpack(&data, name, &passwords, &settings.unpack).members
}

/// The members worth a task, with their bytes (blocking: reads and unpacks the file).
fn choose(path: &Path, filename: &str, password: Option<&str>) -> Vec<(String, Vec<u8>)> {
    if extension(filename) == "bin" {
        return Vec::new();
    }
    match archive_format(path) {
        None | Some(Format::Iso) => return Vec::new(),
        Some(_) => {}
    }
    let whole = nestbox_analyzers::file_type_path(path).description;
    if NOT_ARCHIVES.iter().any(|t| whole.contains(t)) {
        return Vec::new();
    }
    let members = read_members(path, filename, password);
    // A nested archive that was unpacked stands for its members, as sflock's children do.
    let unpacked_archives: Vec<String> = members
        .iter()
        .filter_map(|m| m.name.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
        .collect();
    members
        .into_iter()
        .filter(|m| !m.data.is_empty() && !unpacked_archives.contains(&m.name))
        .filter(|m| {
            EXTENSIONS.contains(&extension(&m.name).as_str()) || {
                let t = nestbox_analyzers::file_type_bytes(&m.data).description;
                TYPES.iter().any(|v| t.contains(v))
            }
        })
        .take(MAX_MEMBERS)
        .map(|m| (m.name, m.data))
        .collect()
}

/// Lower-case extension of the last path component ("" without one).
fn extension(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_is_skipped_for_a_named_package_or_member() {
        let with = |package: &str, options: &str| {
            let mut t = NewTask::new(nestbox_types::Category::File, String::new());
            t.package = package.to_owned();
            t.options = nestbox_types::TaskOptions::parse(options);
            wanted(&t)
        };
        assert!(with("", ""));
        assert!(with("", "password=abc,procmemdump=1"));
        assert!(!with("exe", ""));
        assert!(!with("", "free=yes,file=a.exe"));
    }

    #[test]
    fn extension_is_of_the_last_component() {
        assert_eq!(extension("dir.d/A.EXE"), "exe");
        assert_eq!(extension("noext"), "");
        assert_eq!(extension("a\\b.Js"), "js");
    }
}
