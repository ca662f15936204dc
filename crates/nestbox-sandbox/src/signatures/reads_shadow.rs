//! Credential access: the sample read (or tried to read) the password hashes.

use nestbox_types::report::SignatureHit;

use super::{Evidence, Signature, hit};

/// `/etc/shadow` or `/etc/gshadow` opened.
pub struct ReadsShadow;

impl Signature for ReadsShadow {
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit> {
        let found: Vec<(String, String)> = ev
            .summary("files")
            .into_iter()
            .chain(ev.summary("read_files"))
            .filter(|f| matches!(*f, "/etc/shadow" | "/etc/gshadow" | "/etc/shadow-"))
            .map(|f| ("file".to_owned(), f.to_owned()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        (!found.is_empty()).then(|| {
            hit(
                "reads_shadow",
                "Reads the system password hashes (/etc/shadow)",
                3,
                &["credential_access"],
                &[(
                    "T1003.008",
                    "OS Credential Dumping: /etc/passwd and /etc/shadow",
                )],
                found,
            )
        })
    }
}
