//! Credential access: LSASS memory, the SAM hive, credential stores.

use super::{Evidence, Sig, Signature, boxed, call_marks, contains_ci};

fn strings_matching(ev: &Evidence<'_>, needles: &[&str], category: &str) -> Vec<(String, String)> {
    ev.all_strings()
        .filter(|s| needles.iter().any(|n| contains_ci(s, n)))
        .map(|s| (category.to_owned(), s.to_owned()))
        .collect()
}

fn lsass(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut m = strings_matching(ev, &["lsass"], "target");
    if m.is_empty() {
        return m;
    }
    // Naming lsass is not enough; opening or dumping a process is.
    let acts = ev.calls_to(&[
        "OpenProcess",
        "MiniDumpWriteDump",
        "NtOpenProcess",
        "ReadProcessMemory",
    ]);
    let dumps = ev.summary("executed_commands").into_iter().any(|c| {
        contains_ci(c, "minidump") || contains_ci(c, "procdump") || contains_ci(c, "sekurlsa")
    });
    if acts.is_empty() && !dumps {
        return Vec::new();
    }
    m.extend(call_marks(&acts));
    m
}

fn sam(ev: &Evidence<'_>) -> Vec<(String, String)> {
    strings_matching(
        ev,
        &[
            "hkey_local_machine\\sam",
            "hklm\\sam",
            "\\config\\sam",
            "\\security\\policy\\secrets",
            "hklm\\security",
            "reg save hklm\\system",
        ],
        "hive",
    )
}

fn stores(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut m = strings_matching(
        ev,
        &[
            "\\microsoft\\vault",
            "\\microsoft\\credentials",
            "\\microsoft\\protect\\",
            "\\login data",
            "logins.json",
            "key4.db",
            "vaultcmd",
        ],
        "store",
    );
    m.extend(call_marks(&ev.calls_to(&[
        "CredEnumerate",
        "VaultEnumerateItems",
        "CryptUnprotectData",
    ])));
    m
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "credential_dumping_lsass",
            description: "Opens or dumps the LSASS process to steal credentials",
            severity: 3,
            categories: &["credential_access"],
            ttp: &[("T1003.001", "OS Credential Dumping: LSASS Memory")],
            find: lsass,
        },
        Sig {
            name: "credential_access_sam",
            description: "Accesses the SAM or SECURITY registry hives (password hashes, LSA secrets)",
            severity: 3,
            categories: &["credential_access"],
            ttp: &[(
                "T1003.002",
                "OS Credential Dumping: Security Account Manager",
            )],
            find: sam,
        },
        Sig {
            name: "credential_access_stores",
            description: "Reads Windows Vault, credential files or browser password stores",
            severity: 3,
            categories: &["credential_access", "infostealer"],
            ttp: &[("T1555", "Credentials from Password Stores")],
            find: stores,
        },
    ])
}
