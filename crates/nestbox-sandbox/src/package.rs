//! Packages: how a sample is started, from the `package` option or the file's first bytes
//! and name, like Cuckoo's analysis packages.

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

/// Chooses the package. `sample` is the sample's path inside the sandbox, `head` its first
/// bytes, `arguments` the `arguments=` option split on whitespace. `None`: nothing to run.
pub fn choose(
    package: &str,
    file_name: &str,
    head: &[u8],
    sample: &str,
    arguments: Vec<String>,
) -> Option<Launch> {
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
    match package.to_ascii_lowercase().as_str() {
        "elf" | "bin" | "exe" => return direct("elf"),
        "sh" | "shell" => return interp("sh", "/bin/sh"),
        "bash" => return interp("bash", "/bin/bash"),
        "python" | "py" => return interp("python", "/usr/bin/python3"),
        "perl" | "pl" => return interp("perl", "/usr/bin/perl"),
        "php" => return interp("php", "/usr/bin/php"),
        "node" | "js" => return interp("node", "/usr/bin/node"),
        _ => {}
    }
    if head.starts_with(b"\x7fELF") {
        return direct("elf");
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
        _ => None,
    }
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
        return Some(Launch {
            package: "chromium",
            entry: CHROMIUM.to_owned(),
            args,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_magic_extension_and_option() {
        let l = choose("", "x", b"\x7fELF\x02", "/tmp/x", vec![]).unwrap();
        assert_eq!((l.package, l.entry.as_str()), ("elf", "/tmp/x"));
        let l = choose("", "a.txt", b"#!/bin/sh\n", "/tmp/a.txt", vec!["-v".into()]).unwrap();
        assert_eq!(l.args, vec!["-v"]);
        let l = choose("", "a.py", b"import os", "/tmp/a.py", vec![]).unwrap();
        assert_eq!(l.entry, "/usr/bin/python3");
        assert_eq!(l.args, vec!["/tmp/a.py"]);
        assert!(choose("", "a.txt", b"hello", "/tmp/a.txt", vec![]).is_none());
        let l = choose("bash", "a.txt", b"hello", "/tmp/a.txt", vec![]).unwrap();
        assert_eq!(l.entry, "/bin/bash");
    }

    #[test]
    fn urls_only_http() {
        let l = url("http://example.test/a", true).unwrap();
        assert_eq!(l.entry, CHROMIUM);
        assert_eq!(l.args.last().unwrap(), "http://example.test/a");
        let l = url("HTTPS://example.test/", false).unwrap();
        assert_eq!(l.entry, "/usr/bin/curl");
        assert!(url("--gpu-launcher=/bin/sh", true).is_none());
        assert!(url("file:///etc/passwd", true).is_none());
    }
}
