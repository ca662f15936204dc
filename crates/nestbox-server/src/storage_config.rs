//! `[storage]`: where samples and analysis artifacts live.
//!
//! `local` (the default) keeps them under `data_dir`, which a single box needs and nothing
//! else. `s3` puts them in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS) so
//! API and worker nodes on different machines share them. Credentials come from
//! `access_key_id`/`secret_access_key`, their `*_file` variants (for secret mounts), or,
//! when those are empty, the usual `AWS_*` environment variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use nestbox_core::ports::BlobStore;
use nestbox_store::blob::{LocalBlobStore, S3BlobStore, S3Settings, s3};
use serde::{Deserialize, Serialize};

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `local` (default): files under `data_dir`; `s3`: the bucket of `[storage.s3]`.
    pub backend: String,
    /// The S3 bucket, when `backend = "s3"`.
    pub s3: S3Config,
}

/// `[storage.s3]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:8333`; empty (default) = AWS (or `AWS_ENDPOINT`).
    pub endpoint: String,
    /// Region; empty (default) = `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// Bucket (must exist). Default empty; required with `backend = "s3"`.
    pub bucket: String,
    /// Path-style requests (`endpoint/bucket/key`), what MinIO, Ceph and SeaweedFS expect.
    /// Default true; false = virtual-hosted style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Prefix of every object name, so one bucket can hold several installs. Default empty.
    pub prefix: String,
    /// Access key; empty (default) = `AWS_ACCESS_KEY_ID` or instance credentials.
    pub access_key_id: String,
    /// File to read `access_key_id` from. Default unset.
    pub access_key_id_file: Option<PathBuf>,
    /// Secret key; empty (default) = `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// File to read `secret_access_key` from. Default unset.
    pub secret_access_key_file: Option<PathBuf>,
    /// Multipart part size in MiB (5..=5120); smaller files go up in one PUT. Default 8.
    pub part_size_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: "local".into(),
            s3: S3Config::default(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: String::new(),
            bucket: String::new(),
            path_style: true,
            prefix: String::new(),
            access_key_id: String::new(),
            access_key_id_file: None,
            secret_access_key: String::new(),
            secret_access_key_file: None,
            part_size_mb: 8,
        }
    }
}

/// `value` from `file` when `file` is set (trailing newline trimmed); both set is an error.
fn secret_from_file(value: &mut String, file: Option<&Path>, name: &str) -> anyhow::Result<()> {
    let Some(file) = file else {
        return Ok(());
    };
    if !value.is_empty() {
        bail!("{name} and {name}_file are both set; use one");
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading {name}_file {}", file.display()))?;
    *value = text.trim_end_matches(['\n', '\r']).to_owned();
    Ok(())
}

impl StorageConfig {
    pub(crate) fn resolve_secrets(&mut self) -> anyhow::Result<()> {
        let s3 = &mut self.s3;
        secret_from_file(
            &mut s3.access_key_id,
            s3.access_key_id_file.as_deref(),
            "storage.s3.access_key_id",
        )?;
        secret_from_file(
            &mut s3.secret_access_key,
            s3.secret_access_key_file.as_deref(),
            "storage.s3.secret_access_key",
        )
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        match self.backend.as_str() {
            "local" => {}
            "s3" => {
                let s3 = &self.s3;
                if s3.bucket.trim().is_empty() {
                    problems.push("storage.s3.bucket is required with backend = \"s3\"".into());
                }
                let scheme_ok = ["http://", "https://"]
                    .iter()
                    .any(|p| s3.endpoint.starts_with(p));
                if !s3.endpoint.is_empty() && !scheme_ok {
                    problems.push(format!(
                        "storage.s3.endpoint {:?} must start with http:// or https://",
                        s3.endpoint
                    ));
                }
                if !(5..=5120).contains(&s3.part_size_mb) {
                    problems.push("storage.s3.part_size_mb must be between 5 and 5120".into());
                }
                if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
                    problems
                        .push("storage.s3.access_key_id and secret_access_key go together".into());
                }
            }
            other => problems.push(format!(
                "storage.backend {other:?}: expected \"local\" or \"s3\""
            )),
        }
    }

    /// Whether blobs are files under `data_dir`.
    pub fn is_local(&self) -> bool {
        self.backend != "s3"
    }

    /// The blob store. `tmp_dir` is the node's local scratch space (temp copies of S3
    /// objects for the analyzers); leftovers of a killed process are removed here.
    pub fn blob_store(
        &self,
        data_dir: &Path,
        tmp_dir: &Path,
    ) -> anyhow::Result<Arc<dyn BlobStore>> {
        if self.is_local() {
            return Ok(Arc::new(LocalBlobStore::new(data_dir)));
        }
        s3::clean_scratch(tmp_dir);
        let c = &self.s3;
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let store = S3BlobStore::new(&S3Settings {
            endpoint: some(&c.endpoint),
            region: some(&c.region),
            bucket: c.bucket.clone(),
            path_style: c.path_style,
            access_key_id: some(&c.access_key_id),
            secret_access_key: some(&c.secret_access_key),
            session_token: None,
            prefix: c.prefix.clone(),
            part_size: usize::try_from(c.part_size_mb << 20).unwrap_or(usize::MAX),
            scratch_dir: tmp_dir.to_owned(),
        })
        .context("configuring the S3 blob store")?;
        Ok(Arc::new(store))
    }

    /// What the start-up log says about the store.
    pub fn describe(&self, data_dir: &Path) -> String {
        match self.backend.as_str() {
            "s3" => format!(
                "s3://{}/{}{}",
                self.s3.bucket,
                self.s3.prefix,
                if self.s3.endpoint.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", self.s3.endpoint)
                }
            ),
            _ => data_dir.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_needs_a_bucket_and_sane_sizes() {
        let mut c = StorageConfig {
            backend: "s3".into(),
            ..StorageConfig::default()
        };
        c.s3.endpoint = "ftp://x".into();
        c.s3.part_size_mb = 1;
        c.s3.access_key_id = "k".into();
        let mut problems = Vec::new();
        c.validate(&mut problems);
        let all = problems.join("\n");
        for want in ["bucket", "endpoint", "part_size_mb", "go together"] {
            assert!(all.contains(want), "{want}: {all}");
        }
        let mut problems = Vec::new();
        StorageConfig {
            backend: "nfs".into(),
            ..StorageConfig::default()
        }
        .validate(&mut problems);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let secret = dir.path().join("secret");
        std::fs::write(&key, "AKIA\n").unwrap();
        std::fs::write(&secret, "s3cr3t\r\n").unwrap();
        let mut c = StorageConfig::default();
        c.s3.access_key_id_file = Some(key.clone());
        c.s3.secret_access_key_file = Some(secret);
        c.resolve_secrets().unwrap();
        assert_eq!(
            (c.s3.access_key_id.as_str(), c.s3.secret_access_key.as_str()),
            ("AKIA", "s3cr3t")
        );
        // Both the value and its file: refused.
        c.s3.access_key_id_file = Some(key);
        assert!(c.resolve_secrets().is_err());
    }
}
