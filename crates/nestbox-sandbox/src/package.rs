//! Packages: how a sample is started, from the `package` option or the file's first bytes
//! and name, like Cuckoo's analysis packages.

use std::path::Path;

/// How to start the sample: the program bwrap executes and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The package name (for the log).
    pub package: &'static str,
    /// The program executed first (the root of the process tree).
    pub entry: String,
    /// Its arguments (without argv\[0\]).
    pub args: Vec<String>,
}

/// The `options` a package reads (Cuckoo's names).
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// `arguments=`: split on whitespace, passed to the sample.
    pub arguments: Vec<String>,
    /// `function=`: the exported function the shared-object harness calls.
    pub function: Option<String>,
    /// `class=`: the main class of a jar (instead of its manifest's).
    pub class: Option<String>,
}

/// Loads a shared object (its constructors run) and calls `function` if one was named,
/// as Cuckoo's `dll` package does with rundll32.
const SO_HARNESS: &str = "import ctypes, sys\nlib = ctypes.CDLL(sys.argv[1])\nif len(sys.argv) > 2:\n    getattr(lib, sys.argv[2])()\n";

/// JVM flags that fit the sandbox's address-space and process limits (the defaults
/// reserve gigabytes and start a thread per core for GC and JIT).
const JVM_FLAGS: &[&str] = &[
    "-Xmx256m",
    "-Xss512k",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=32m",
    "-XX:MaxMetaspaceSize=128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:CICompilerCount=1",
    "-Xshare:off",
];

/// Whether an ELF is a shared library rather than an executable: `ET_DYN` without a
/// program interpreter (a PIE executable is `ET_DYN` too, but names its loader).
pub fn is_shared_object(head: &[u8]) -> bool {
    let u16le = |o: usize| head.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32le = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64le = |o: usize| {
        head.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    // 64-bit little-endian only (what runs here); anything else is treated as a program.
    if !head.starts_with(b"\x7fELF\x02\x01") || u16le(16) != Some(3) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64le(32), u16le(54), u16le(56)) else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    for i in 0..usize::from(phnum).min(256) {
        let off = phoff.saturating_add(i * usize::from(phentsize));
        match u32le(off) {
            Some(3) => return false,
            Some(_) => {}
            // Headers beyond what was read: cannot tell, run it as a program.
            None => return false,
        }
    }
    true
}

/// PDF viewers, by preference: the first one installed opens PDFs (on the virtual display).
pub const PDF_VIEWERS: &[&str] = &[
    "/usr/bin/mupdf",
    "/usr/bin/xpdf",
    "/usr/bin/evince",
    "/usr/bin/zathura",
];
/// Office suites that open documents (LibreOffice's `soffice`), by preference.
pub const OFFICE_VIEWERS: &[&str] = &["/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice"];

/// A document opened by a viewer rather than run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// A PDF.
    Pdf,
    /// A Word/Excel/PowerPoint/RTF/OpenDocument file.
    Office,
}

impl Document {
    /// The viewers that can open it.
    pub fn viewers(self) -> &'static [&'static str] {
        match self {
            Document::Pdf => PDF_VIEWERS,
            Document::Office => OFFICE_VIEWERS,
        }
    }

    /// A name for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Document::Pdf => "PDF",
            Document::Office => "Office document",
        }
    }
}

/// Whether the file is a document, from the `package` option, its first bytes or its
/// extension (Cuckoo's `pdf`, `doc`, `xls`, `ppt` packages).
pub fn document_kind(package: &str, file_name: &str, head: &[u8]) -> Option<Document> {
    match package.to_ascii_lowercase().as_str() {
        "pdf" => return Some(Document::Pdf),
        "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "rtf" | "office" | "word" | "excel"
        | "powerpoint" => return Some(Document::Office),
        "" => {}
        _ => return None,
    }
    if head.starts_with(b"%PDF-") {
        return Some(Document::Pdf);
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let ole = head.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1");
    let zip = head.starts_with(b"PK\x03\x04");
    match ext.as_str() {
        "pdf" => Some(Document::Pdf),
        "doc" | "dot" | "xls" | "xlt" | "ppt" | "pps" if ole => Some(Document::Office),
        "docx" | "docm" | "xlsx" | "xlsm" | "pptx" | "pptm" | "odt" | "ods" | "odp" if zip => {
            Some(Document::Office)
        }
        "rtf" if head.starts_with(b"{\\rt") => Some(Document::Office),
        _ if ole => Some(Document::Office),
        _ => None,
    }
}

/// How a document is opened: the first installed viewer, on the sandbox's display;
/// `None` when no viewer is installed.
pub fn document(kind: Document, sample: &str) -> Option<Launch> {
    let viewer = kind.viewers().iter().find(|v| Path::new(v).exists())?;
    let args = match kind {
        Document::Pdf => vec![sample.to_owned()],
        Document::Office => ["--norestore", "--nologo", "--nodefault", "--view", sample]
            .map(String::from)
            .to_vec(),
    };
    Some(Launch {
        package: match kind {
            Document::Pdf => "pdf",
            Document::Office => "doc",
        },
        entry: (*viewer).to_owned(),
        args,
    })
}

/// Chooses the package. `sample` is the sample's path inside the sandbox, `head` its first
/// bytes. `None`: nothing to run.
pub fn choose(
    package: &str,
    file_name: &str,
    head: &[u8],
    sample: &str,
    opts: &PackageOptions,
) -> Option<Launch> {
    let arguments = &opts.arguments;
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let interp = |package: &'static str, prog: &str| {
        let mut args = vec![sample.to_owned()];
        args.extend(arguments.clone());
        Some(Launch {
            package,
            entry: prog.to_owned(),
            args,
        })
    };
    let direct = |package: &'static str| {
        Some(Launch {
            package,
            entry: sample.to_owned(),
            args: arguments.clone(),
        })
    };
    let so = || {
        let mut args = vec!["-c".to_owned(), SO_HARNESS.to_owned(), sample.to_owned()];
        args.extend(opts.function.clone());
        Some(Launch {
            package: "so",
            entry: "/usr/bin/python3".to_owned(),
            args,
        })
    };
    let jar = || {
        let mut args: Vec<String> = JVM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        match &opts.class {
            Some(c) => args.extend(["-cp".to_owned(), sample.to_owned(), c.clone()]),
            None => args.extend(["-jar".to_owned(), sample.to_owned()]),
        }
        args.extend(arguments.clone());
        Some(Launch {
            package: "jar",
            entry: "/usr/bin/java".to_owned(),
            args,
        })
    };
    let html = || {
        browser(&format!("file://{sample}")).map(|mut l| {
            l.package = "html";
            l
        })
    };
    if let Some(kind) = document_kind(package, file_name, head) {
        return document(kind, sample);
    }
    match package.to_ascii_lowercase().as_str() {
        "elf" | "bin" | "exe" => return direct("elf"),
        "so" | "dll" | "lib" => return so(),
        "sh" | "shell" => return interp("sh", "/bin/sh"),
        "bash" => return interp("bash", "/bin/bash"),
        "python" | "py" => return interp("python", "/usr/bin/python3"),
        "perl" | "pl" => return interp("perl", "/usr/bin/perl"),
        "php" => return interp("php", "/usr/bin/php"),
        "node" | "js" => return interp("node", "/usr/bin/node"),
        "jar" | "java" => return jar(),
        "html" | "ie" | "chrome" | "firefox" => return html(),
        _ => {}
    }
    if head.starts_with(b"\x7fELF") {
        return if is_shared_object(head) || ext == "so" {
            so()
        } else {
            direct("elf")
        };
    }
    if head.starts_with(b"#!") {
        return direct("script");
    }
    match ext.as_str() {
        "sh" => interp("sh", "/bin/sh"),
        "bash" => interp("bash", "/bin/bash"),
        "py" => interp("python", "/usr/bin/python3"),
        "pl" => interp("perl", "/usr/bin/perl"),
        "php" => interp("php", "/usr/bin/php"),
        "js" => interp("node", "/usr/bin/node"),
        "jar" if head.starts_with(b"PK") => jar(),
        "html" | "htm" | "xhtml" | "svg" => html(),
        _ => None,
    }
    .filter(|l| Path::new(&l.entry).exists() || l.entry == sample)
}

/// Where the browser keeps its fresh profile and writes its screenshot, inside the
/// sandbox. It is the analyser's, not the sample's: removed before dropped files are
/// collected.
pub const BROWSER_DIR: &str = "/var/tmp/nestbox-browser";
/// The screenshot file in [`BROWSER_DIR`].
pub const BROWSER_SHOT: &str = "shot.png";
/// Debian's Chromium binary (the `/usr/bin/chromium` wrapper reads `/etc/chromium.d`,
/// which the sandbox does not show).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// What the fetch presents itself as.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// How a URL task is run: headless Chromium loading the page and taking a screenshot, or
/// (without Chromium) a plain fetch with curl. `None` for anything but http(s) URLs (a
/// leading `-` could otherwise be read as an option).
pub fn url(url: &str, chromium: bool) -> Option<Launch> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    if chromium {
        return browser(url);
    }
    Some(Launch {
        package: "url-fetch",
        entry: "/usr/bin/curl".to_owned(),
        args: vec![
            "-sS".into(),
            "-L".into(),
            "--max-time".into(),
            "30".into(),
            "-A".into(),
            USER_AGENT.into(),
            "--create-dirs".into(),
            "-o".into(),
            format!("{BROWSER_DIR}/page"),
            url.to_owned(),
        ],
    })
}

/// Headless Chromium loading `url` and taking a screenshot; `None` without Chromium.
fn browser(url: &str) -> Option<Launch> {
    if !Path::new(CHROMIUM).exists() {
        return None;
    }
    {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1024,768",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        args.push(format!("--user-data-dir={BROWSER_DIR}/profile"));
        args.push(format!("--screenshot={BROWSER_DIR}/{BROWSER_SHOT}"));
        args.push(url.to_owned());
        Some(Launch {
            package: "chromium",
            entry: CHROMIUM.to_owned(),
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> PackageOptions {
        PackageOptions {
            arguments: a.iter().map(|x| (*x).to_owned()).collect(),
            ..PackageOptions::default()
        }
    }

    /// A minimal 64-bit ELF header + program headers: `ET_DYN`, optionally with PT_INTERP.
    fn elf(interp: bool) -> Vec<u8> {
        let mut h = vec![0u8; 64 + 2 * 56];
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[16] = 3;
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&2u16.to_le_bytes());
        h[64..68].copy_from_slice(&1u32.to_le_bytes());
        h[120..124].copy_from_slice(&(if interp { 3u32 } else { 1 }).to_le_bytes());
        h
    }

    #[test]
    fn by_magic_extension_and_option() {
        let none = PackageOptions::default();
        let l = choose("", "x", &elf(true), "/tmp/x", &none).unwrap();
        assert_eq!((l.package, l.entry.as_str()), ("elf", "/tmp/x"));
        let l = choose("", "libx", &elf(false), "/tmp/libx", &none).unwrap();
        assert_eq!((l.package, l.entry.as_str()), ("so", "/usr/bin/python3"));
        assert!(is_shared_object(&elf(false)) && !is_shared_object(&elf(true)));
        assert!(!is_shared_object(&elf(false)[..70]));
        let l = choose("", "a.txt", b"#!/bin/sh\n", "/tmp/a.txt", &args(&["-v"])).unwrap();
        assert_eq!(l.args, vec!["-v"]);
        let l = choose("", "a.py", b"import os", "/tmp/a.py", &none).unwrap();
        assert_eq!(l.entry, "/usr/bin/python3");
        assert_eq!(l.args, vec!["/tmp/a.py"]);
        assert!(choose("", "a.txt", b"hello", "/tmp/a.txt", &none).is_none());
        let l = choose("bash", "a.txt", b"hello", "/tmp/a.txt", &none).unwrap();
        assert_eq!(l.entry, "/bin/bash");
        let opts = PackageOptions {
            class: Some("Main".into()),
            ..PackageOptions::default()
        };
        let l = choose("", "a.jar", b"PK\x03\x04", "/tmp/a.jar", &opts).unwrap();
        assert_eq!(l.entry, "/usr/bin/java");
        assert!(
            l.args
                .ends_with(&["-cp".into(), "/tmp/a.jar".into(), "Main".into()])
        );
        let opts = PackageOptions {
            function: Some("run".into()),
            ..PackageOptions::default()
        };
        let l = choose("so", "x.bin", b"", "/tmp/x.bin", &opts).unwrap();
        assert_eq!(l.args.last().unwrap(), "run");
    }

    #[test]
    fn documents_by_magic_extension_and_option() {
        let pdf = b"%PDF-1.4\n";
        assert_eq!(document_kind("", "x.bin", pdf), Some(Document::Pdf));
        assert_eq!(document_kind("pdf", "x", b""), Some(Document::Pdf));
        let ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest";
        assert_eq!(document_kind("", "a.doc", ole), Some(Document::Office));
        assert_eq!(
            document_kind("", "a.docx", b"PK\x03\x04"),
            Some(Document::Office)
        );
        assert_eq!(document_kind("", "a.zip", b"PK\x03\x04"), None);
        assert_eq!(
            document_kind("", "a.rtf", b"{\\rtf1"),
            Some(Document::Office)
        );
        // An explicit other package wins over the magic.
        assert_eq!(document_kind("sh", "a.pdf", pdf), None);
        assert_eq!(document_kind("", "a.txt", b"hello"), None);
        let none = PackageOptions::default();
        match choose("", "a.pdf", pdf, "/tmp/a.pdf", &none) {
            Some(l) => {
                assert_eq!(l.package, "pdf");
                assert!(PDF_VIEWERS.contains(&l.entry.as_str()));
                assert_eq!(l.args, vec!["/tmp/a.pdf"]);
            }
            None => assert!(PDF_VIEWERS.iter().all(|v| !Path::new(v).exists())),
        }
    }

    #[test]
    fn urls_only_http() {
        let l = url("http://example.test/a", true).unwrap();
        assert_eq!(l.args.last().unwrap(), "http://example.test/a");
        let l = url("HTTPS://example.test/", false).unwrap();
        assert_eq!(l.entry, "/usr/bin/curl");
        assert!(url("--gpu-launcher=/bin/sh", true).is_none());
        assert!(url("file:///etc/passwd", true).is_none());
    }
}
