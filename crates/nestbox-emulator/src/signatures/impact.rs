//! Impact: encryption like ransomware, shadow-copy deletion, hosts-file tampering.

use super::{Evidence, Sig, Signature, boxed, call_marks, contains_ci, summary_marks};

/// Distinct files written before encryption calls count as "many".
const MANY_FILES: usize = 5;

fn ransomware(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let enc = ev.calls_to(&["CryptEncrypt", "BCryptEncrypt"]);
    let written = ev.summary("write_files");
    if enc.is_empty() || (written.len() < MANY_FILES && enc.len() < 10) {
        return Vec::new();
    }
    let mut m = call_marks(&enc[..enc.len().min(5)]);
    m.extend(
        written
            .iter()
            .take(20)
            .map(|f| ("file".to_owned(), (*f).to_owned())),
    );
    m.push((
        "count".to_owned(),
        format!("{} encryptions, {} files written", enc.len(), written.len()),
    ));
    m
}

fn crypto_api(ev: &Evidence<'_>) -> Vec<(String, String)> {
    call_marks(&ev.calls_to(&[
        "CryptAcquireContext",
        "CryptGenKey",
        "CryptImportKey",
        "CryptEncrypt",
        "CryptDeriveKey",
        "BCryptOpenAlgorithmProvider",
        "BCryptEncrypt",
    ]))
}

fn shadow_copies(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, &["executed_commands"], "cmdline", |c| {
        let c = c.to_ascii_lowercase();
        (c.contains("vssadmin") && c.contains("delete"))
            || (c.contains("shadowcopy") && c.contains("delete"))
            || (c.contains("wbadmin") && c.contains("delete"))
            || (c.contains("bcdedit") && c.contains("recoveryenabled"))
            || c.contains("win32_shadowcopy")
    })
}

fn hosts_file(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, &["write_files"], "file", |f| {
        contains_ci(f, "\\drivers\\etc\\hosts")
    })
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "ransomware_file_encryption",
            description: "Encrypts data with the Windows crypto API while writing many files, as ransomware does",
            severity: 3,
            categories: &["ransomware"],
            ttp: &[("T1486", "Data Encrypted for Impact")],
            find: ransomware,
        },
        Sig {
            name: "uses_windows_crypto",
            description: "Uses the Windows cryptography API",
            severity: 1,
            categories: &["crypto"],
            ttp: &[("T1027", "Obfuscated Files or Information")],
            find: crypto_api,
        },
        Sig {
            name: "deletes_shadow_copies",
            description: "Deletes volume shadow copies or disables recovery, so files cannot be restored",
            severity: 3,
            categories: &["ransomware"],
            ttp: &[("T1490", "Inhibit System Recovery")],
            find: shadow_copies,
        },
        Sig {
            name: "modifies_hosts_file",
            description: "Modifies the Windows hosts file (redirects or blocks domains)",
            severity: 3,
            categories: &["stealth"],
            ttp: &[("T1565.001", "Data Manipulation: Stored Data Manipulation")],
            find: hosts_file,
        },
    ])
}
