//! Signatures over file activity as a whole: what was written, renamed, deleted and then
//! executed, across the process tree.

use std::collections::BTreeMap;

use super::{Check, Evidence, Marks, Meta, base, prog};

pub(crate) static SIGNATURES: &[(Meta, Check)] = &[
    (
        Meta {
            name: "deletes_itself",
            description: "Deletes its own executable file",
            severity: 2,
            categories: &["evasion"],
            ttp: &[("T1070.004", "Indicator Removal: File Deletion")],
            families: &[],
        },
        deletes_itself,
    ),
    (
        Meta {
            name: "hidden_files_dropped",
            description: "Creates hidden files or directories in temporary or home directories",
            severity: 2,
            categories: &["evasion"],
            ttp: &[("T1564.001", "Hide Artifacts: Hidden Files and Directories")],
            families: &[],
        },
        hidden_files,
    ),
    (
        Meta {
            name: "ransomware_mass_rename",
            description: "Renames or rewrites many files to one new extension",
            severity: 3,
            categories: &["ransomware"],
            ttp: &[("T1486", "Data Encrypted for Impact")],
            families: &[],
        },
        mass_rename,
    ),
    (
        Meta {
            name: "executes_dropped_file",
            description: "Executes a file it wrote itself",
            severity: 2,
            categories: &["dropper"],
            ttp: &[("T1204.002", "User Execution: Malicious File")],
            families: &[],
        },
        executes_dropped,
    ),
    (
        Meta {
            name: "download_and_execute",
            description: "Downloads content with curl/wget and runs it (piped to a shell or executed)",
            severity: 3,
            categories: &["dropper", "network"],
            ttp: &[
                ("T1105", "Ingress Tool Transfer"),
                ("T1059.004", "Command and Scripting Interpreter: Unix Shell"),
            ],
            families: &[],
        },
        download_execute,
    ),
];

fn deletes_itself(ev: &Evidence<'_>) -> Marks {
    ev.summary("delete_files")
        .into_iter()
        .filter(|f| *f == ev.sample_path)
        .map(|f| ("file".to_owned(), f.to_owned()))
        .collect()
}

/// Dot-names desktop software creates on its own.
const ORDINARY_DOTFILES: &[&str] = &[
    ".bashrc",
    ".profile",
    ".bash_history",
    ".bash_logout",
    ".config",
    ".cache",
    ".local",
    ".ssh",
    ".mozilla",
    ".gnupg",
    ".pki",
    ".npm",
    ".Xauthority",
    ".X11-unix",
    ".ICE-unix",
    ".font-unix",
    ".XIM-unix",
    ".Test-unix",
    ".python_history",
    ".lesshst",
    ".wget-hsts",
    ".viminfo",
    ".java",
    ".m2",
    ".gradle",
    ".dbus",
];

fn hidden_files(ev: &Evidence<'_>) -> Marks {
    let home = ev
        .sample_path
        .strip_prefix("/home/")
        .and_then(|r| r.split('/').next());
    let mut paths: Vec<&str> = ev.writes().into_iter().collect();
    paths.extend(ev.summary("directory_created"));
    paths
        .into_iter()
        .filter(|p| {
            let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            // The first component below a temporary directory or a home directory.
            let below = match parts.as_slice() {
                ["tmp", n, ..] | ["var", "tmp", n, ..] | ["dev" | "run", "shm", n, ..] => Some(*n),
                ["home", user, n, ..] if home.is_none_or(|h| h == *user) => Some(*n),
                _ => None,
            };
            below.is_some_and(|n| {
                n.starts_with('.') && n.len() > 1 && n != ".." && !ORDINARY_DOTFILES.contains(&n)
            })
        })
        .map(|p| ("file".to_owned(), p.to_owned()))
        .collect()
}

fn ext(p: &str) -> Option<&str> {
    base(p)
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 16)
}

fn mass_rename(ev: &Evidence<'_>) -> Marks {
    // New extension → files that got it, by rename or by "write X.ext, delete X".
    let mut by_ext: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, c) in ev.calls() {
        let (from, to) = match c["api"].as_str() {
            Some("rename") => ("oldname", "newname"),
            Some("renameat" | "renameat2") => ("oldname", "newname"),
            _ => continue,
        };
        let a = &c["arguments"];
        if let (Some(f), Some(t)) = (a[from].as_str(), a[to].as_str())
            && let Some(e) = ext(t)
            && ext(f) != Some(e)
        {
            by_ext.entry(e.to_owned()).or_default().push(t.to_owned());
        }
    }
    let deleted: Vec<&str> = ev.summary("delete_files");
    for w in ev.summary("write_files") {
        if let Some((orig, e)) = w.rsplit_once('.')
            && deleted.contains(&orig)
            && !e.contains('/')
        {
            by_ext.entry(e.to_owned()).or_default().push(w.to_owned());
        }
    }
    by_ext
        .into_iter()
        .filter(|(_, files)| {
            let mut f = files.clone();
            f.sort();
            f.dedup();
            f.len() >= 8
        })
        .flat_map(|(e, files)| {
            files
                .into_iter()
                .map(move |f| (format!("extension .{e}"), f))
        })
        .collect()
}

fn executes_dropped(ev: &Evidence<'_>) -> Marks {
    let written = ev.summary("write_files");
    ev.behavior
        .processes
        .iter()
        .filter_map(|p| p["process_path"].as_str())
        .filter(|p| *p != ev.sample_path && written.contains(p))
        .map(|p| ("file".to_owned(), p.to_owned()))
        .collect()
}

const DOWNLOADERS: &[&str] = &["curl", "wget", "tftp", "ftp", "fetch", "busybox"];
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash"];

fn download_execute(ev: &Evidence<'_>) -> Marks {
    let cmds = ev.summary("executed_commands");
    let downloads: Vec<&str> = cmds
        .iter()
        .copied()
        .filter(|c| {
            DOWNLOADERS.contains(&prog(c))
                && (c.contains("http://")
                    || c.contains("https://")
                    || c.contains("ftp://")
                    || prog(c) != "busybox")
        })
        .collect();
    if downloads.is_empty() {
        return Marks::new();
    }
    // A shell reading its script from stdin (`curl … | sh`), or a written file executed.
    let mut runs: Marks = cmds
        .iter()
        .filter(|c| {
            let words: Vec<&str> = c.split_whitespace().collect();
            SHELLS.contains(&prog(c))
                && (words.len() == 1 || words[1..] == ["-s"] || words[1..] == ["-"])
        })
        .map(|c| ("cmdline".to_owned(), (*c).to_owned()))
        .collect();
    runs.extend(executes_dropped(ev));
    if runs.is_empty() {
        return Marks::new();
    }
    runs.extend(
        downloads
            .into_iter()
            .map(|d| ("cmdline".to_owned(), d.to_owned())),
    );
    runs
}

#[cfg(test)]
mod tests {
    use crate::behavior::Attempts;
    use crate::signatures::tests::{behavior, call, fired};
    use nestbox_types::report::{Behavior, Network};
    use serde_json::json;

    fn run(b: &Behavior) -> Vec<String> {
        fired(b, &Network::default(), &Attempts::default(), vec![])
    }

    #[test]
    fn file_signatures_fire_and_stay_quiet() {
        let b = behavior(&[("delete_files", &["/tmp/sample"])], &[]);
        assert!(run(&b).contains(&"deletes_itself".to_owned()));
        let b = behavior(&[("delete_files", &["/tmp/other"])], &[]);
        assert!(!run(&b).contains(&"deletes_itself".to_owned()));

        for bad in [
            "/tmp/.x/payload",
            "/dev/shm/.ice",
            "/home/john/.hidden",
            "/var/tmp/.sshd",
        ] {
            let b = behavior(&[("write_files", &[bad])], &[]);
            assert!(
                run(&b).contains(&"hidden_files_dropped".to_owned()),
                "{bad}"
            );
        }
        for good in [
            "/tmp/.X11-unix/X0",
            "/home/john/.config/app.ini",
            "/tmp/out.txt",
            "/home/john/a/.git",
        ] {
            let b = behavior(&[("write_files", &[good])], &[]);
            assert!(
                !run(&b).contains(&"hidden_files_dropped".to_owned()),
                "{good}"
            );
        }

        let renames: Vec<serde_json::Value> = (0..9)
            .map(|i| {
                call(
                    "rename",
                    &[
                        ("oldname", &format!("/home/john/d{i}.txt")),
                        ("newname", &format!("/home/john/d{i}.txt.locked")),
                    ],
                    0,
                )
            })
            .collect();
        let b = behavior(&[], &[("enc", renames)]);
        assert!(run(&b).contains(&"ransomware_mass_rename".to_owned()));
        let renames: Vec<serde_json::Value> = (0..3)
            .map(|i| {
                call(
                    "rename",
                    &[
                        ("oldname", &format!("/tmp/d{i}.tmp")),
                        ("newname", &format!("/tmp/d{i}.txt")),
                    ],
                    0,
                )
            })
            .collect();
        let b = behavior(&[], &[("editor", renames)]);
        assert!(!run(&b).contains(&"ransomware_mass_rename".to_owned()));

        let mut b = behavior(
            &[
                ("executed_commands", &["curl -s http://x.test/a", "sh"]),
                ("write_files", &[]),
            ],
            &[],
        );
        assert!(run(&b).contains(&"download_and_execute".to_owned()));
        b.summary.insert(
            "executed_commands".into(),
            vec![json!("curl -s http://x.test/a"), json!("sh /tmp/build.sh")],
        );
        assert!(!run(&b).contains(&"download_and_execute".to_owned()));

        let mut b = behavior(
            &[("write_files", &["/tmp/p"])],
            &[("sample", vec![]), ("p", vec![])],
        );
        b.processes[1]["process_path"] = json!("/tmp/p");
        assert!(run(&b).contains(&"executes_dropped_file".to_owned()));
        b.processes[1]["process_path"] = json!("/usr/bin/ls");
        assert!(!run(&b).contains(&"executes_dropped_file".to_owned()));
    }
}
