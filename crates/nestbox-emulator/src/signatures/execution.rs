//! Execution: LOLBins in command lines, the command shell, mutexes.

use super::{Evidence, Sig, Signature, boxed, summary_marks};

const COMMANDS: &[&str] = &["executed_commands"];

fn powershell(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, COMMANDS, "cmdline", |c| {
        let c = c.to_ascii_lowercase();
        (c.contains("powershell") || c.contains("pwsh"))
            && [
                " -enc",
                " -e ",
                " -ec ",
                " -encodedcommand",
                "-w hidden",
                "-windowstyle hidden",
                "iex",
                "downloadstring",
                "frombase64string",
            ]
            .iter()
            .any(|f| c.contains(f))
    })
}

fn certutil(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, COMMANDS, "cmdline", |c| {
        let c = c.to_ascii_lowercase();
        c.contains("certutil")
            && ["-urlcache", "/urlcache", "-decode", "/decode", "-split"]
                .iter()
                .any(|f| c.contains(f))
    })
}

fn proxy_execution(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, COMMANDS, "cmdline", |c| {
        let c = c.to_ascii_lowercase();
        let remote = c.contains("http://") || c.contains("https://") || c.contains("\\\\");
        (c.contains("mshta") && (remote || c.contains("javascript:") || c.contains("vbscript:")))
            || (c.contains("regsvr32")
                && (c.contains("/i:") || c.contains("-i:") || c.contains("scrobj")))
            || (c.contains("rundll32")
                && (c.contains("javascript:")
                    || remote
                    || c.contains("\\temp\\")
                    || c.contains("\\appdata\\")))
            || (c.contains("wmic") && c.contains("process") && c.contains("call create"))
            || (c.contains("bitsadmin") && c.contains("/transfer"))
            || (c.contains("msiexec") && remote)
    })
}

fn shell(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, COMMANDS, "cmdline", |c| {
        let c = c.trim_start_matches('"').to_ascii_lowercase();
        c.starts_with("cmd ")
            || c.starts_with("cmd.exe")
            || c.contains("\\cmd.exe")
            || c.contains("comspec")
    })
}

fn mutex(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, &["mutexes"], "mutex", |_| true)
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "powershell_suspicious_command",
            description: "Runs PowerShell with an encoded, hidden or download-and-run command",
            severity: 3,
            categories: &["execution"],
            ttp: &[("T1059.001", "Command and Scripting Interpreter: PowerShell")],
            find: powershell,
        },
        Sig {
            name: "certutil_download_decode",
            description: "Uses certutil to download or decode files",
            severity: 3,
            categories: &["execution", "downloader"],
            ttp: &[
                ("T1105", "Ingress Tool Transfer"),
                ("T1140", "Deobfuscate/Decode Files or Information"),
            ],
            find: certutil,
        },
        Sig {
            name: "lolbin_proxy_execution",
            description: "Runs code through a signed Windows binary (mshta, regsvr32, rundll32, wmic, bitsadmin, msiexec)",
            severity: 3,
            categories: &["execution", "stealth"],
            ttp: &[("T1218", "System Binary Proxy Execution")],
            find: proxy_execution,
        },
        Sig {
            name: "executes_shell_command",
            description: "Runs commands through the Windows command shell",
            severity: 2,
            categories: &["execution"],
            ttp: &[(
                "T1059.003",
                "Command and Scripting Interpreter: Windows Command Shell",
            )],
            find: shell,
        },
        Sig {
            name: "creates_mutex",
            description: "Creates a named mutex (malware uses them to run one instance per machine)",
            severity: 1,
            categories: &["generic"],
            ttp: &[],
            find: mutex,
        },
    ])
}
