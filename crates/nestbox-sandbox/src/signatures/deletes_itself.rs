//! Defence evasion: the sample deletes its own file.

use nestbox_types::report::SignatureHit;

use super::{Evidence, Signature, hit};

/// The sample's path is among the deleted files.
pub struct DeletesItself;

impl Signature for DeletesItself {
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit> {
        ev.summary("delete_files")
            .into_iter()
            .any(|f| f == ev.sample_path)
            .then(|| {
                hit(
                    "deletes_itself",
                    "Deletes its own executable file",
                    2,
                    &["evasion"],
                    &[("T1070.004", "Indicator Removal: File Deletion")],
                    vec![("file".to_owned(), ev.sample_path.to_owned())],
                )
            })
    }
}
