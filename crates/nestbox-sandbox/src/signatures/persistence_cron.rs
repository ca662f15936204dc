//! Persistence through cron: writing crontabs or running `crontab`.

use nestbox_types::report::SignatureHit;

use super::{Evidence, Signature, hit};

/// A crontab or cron directory written (or attempted), or `crontab` executed.
pub struct PersistenceCron;

fn is_cron(path: &str) -> bool {
    path == "/etc/crontab"
        || path.starts_with("/etc/cron.")
        || path.starts_with("/var/spool/cron/")
        || path.starts_with("/etc/anacrontab")
}

impl Signature for PersistenceCron {
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit> {
        let mut found: Vec<(String, String)> = ev
            .summary("write_files")
            .into_iter()
            .chain(ev.summary("files"))
            .filter(|f| is_cron(f))
            .map(|f| ("file".to_owned(), f.to_owned()))
            .collect();
        found.extend(
            ev.summary("executed_commands")
                .into_iter()
                .filter(|c| {
                    c.split_whitespace()
                        .next()
                        .is_some_and(|p| p.ends_with("crontab"))
                })
                .map(|c| ("cmdline".to_owned(), c.to_owned())),
        );
        found.sort();
        found.dedup();
        (!found.is_empty()).then(|| {
            hit(
                "persistence_cron",
                "Installs a cron job for persistence",
                3,
                &["persistence"],
                &[("T1053.003", "Scheduled Task/Job: Cron")],
                found,
            )
        })
    }
}
