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
}
