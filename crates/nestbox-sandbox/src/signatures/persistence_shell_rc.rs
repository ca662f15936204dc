//! Persistence through shell start-up files and SSH keys.

use nestbox_types::report::SignatureHit;

use super::{Evidence, Signature, hit};

/// A shell rc/profile file or `authorized_keys` written.
pub struct PersistenceShellRc;

fn is_rc(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or("");
    matches!(
        base,
        ".bashrc" | ".bash_profile" | ".bash_login" | ".profile" | ".zshrc" | ".bash_logout"
    ) || path.ends_with("/.ssh/authorized_keys")
        || path.ends_with("/.ssh/authorized_keys2")
        || path == "/etc/profile"
        || path.starts_with("/etc/profile.d/")
        || path == "/etc/bash.bashrc"
}

impl Signature for PersistenceShellRc {
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit> {
        let mut found: Vec<(String, String)> = ev
            .summary("write_files")
            .into_iter()
            .filter(|f| is_rc(f))
            .map(|f| ("file".to_owned(), f.to_owned()))
            .collect();
        found.dedup();
        (!found.is_empty()).then(|| {
            hit(
                "persistence_shell_rc",
                "Modifies shell start-up files or SSH authorized keys for persistence",
                3,
                &["persistence"],
                &[
                    (
                        "T1546.004",
                        "Event Triggered Execution: Unix Shell Configuration Modification",
                    ),
                    ("T1098.004", "Account Manipulation: SSH Authorized Keys"),
                ],
                found,
            )
        })
    }
}
