//! The S3 blob store: AWS S3 or any S3-compatible server (MinIO, Ceph RGW, SeaweedFS),
//! through the `object_store` crate.
//!
//! Keys map one-to-one to object names under an optional prefix inside the bucket, so one
//! bucket can hold several installs and the bucket's layout is the Cuckoo analysis
//! folder layout of [`nestbox_core::keys`].
//!
//! Nothing is loaded whole in memory: [`BlobStore::put_file`] streams the file up through
//! object_store's buffered writer (one PUT below the part size, a multipart upload above
//! it, with at most [`UPLOAD_CONCURRENCY`] parts in flight), [`BlobStore::open`] hands
//! out the response body as a stream, and [`BlobStore::local`] streams the object into a
//! temp file in the scratch directory (analyzers and the sandbox need a file) that is
//! deleted when the returned guard drops.
//!
//! Objects appear atomically (a PUT or a completed multipart upload), which gives the same
//! guarantee as the local store's rename. An upload that fails midway is aborted, so no
//! parts are left billed in the bucket.

use std::io::{self, ErrorKind};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use nestbox_core::ports::{BlobReader, BlobStore, DiskUsage, LocalBlob};
use nestbox_core::{Error, Result};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::io::{AsyncWriteExt, BufReader};

use super::{components, invalid, prefix_key};

/// Parts of one multipart upload in flight at once. With the part size this bounds the
/// memory of an upload (`part_size × (UPLOAD_CONCURRENCY + 1)`).
pub const UPLOAD_CONCURRENCY: usize = 2;

/// S3's smallest allowed part (except the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Name prefix of the temp copies [`BlobStore::local`] makes.
const LOCAL_PREFIX: &str = "s3-";

/// Read buffer when uploading a file.
const READ_BUFFER: usize = 256 * 1024;

/// Where the bucket is and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint URL (`http://127.0.0.1:8333`, `https://minio.internal:9000`); `None` =
    /// AWS (from the region, or `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Region; `None` = `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Path-style requests (`endpoint/bucket/key`), what MinIO, Ceph and SeaweedFS expect;
    /// `false` = virtual-hosted style (`bucket.endpoint/key`), AWS's default.
    pub path_style: bool,
    /// Access key; `None` = `AWS_ACCESS_KEY_ID` (or instance/web-identity credentials).
    pub access_key_id: Option<String>,
    /// Secret key; `None` = `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials; `None` = `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// Prefix of every object name (`nestbox` → `nestbox/store/ab/cd/…`); empty = none.
    pub prefix: String,
    /// Multipart part size in bytes (at least [`MIN_PART_SIZE`]); files up to this size
    /// are sent in one PUT.
    pub part_size: usize,
    /// Local directory for the temp copies of [`BlobStore::local`].
    pub scratch_dir: PathBuf,
}

/// A [`BlobStore`] over an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    /// `""` or the configured prefix with a trailing `/`.
    prefix: String,
    part_size: usize,
    scratch_dir: PathBuf,
    /// For messages: `s3://bucket/prefix`.
    name: String,
}

fn blob_err(e: object_store::Error) -> Error {
    Error::Blob(io::Error::other(e))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl S3BlobStore {
    /// Builds the client. Settings left `None` come from the usual `AWS_*` environment
    /// variables; nothing is contacted until the first request ([`BlobStore::probe`]
    /// checks the bucket).
    pub fn new(settings: &S3Settings) -> Result<Self> {
        if settings.bucket.is_empty() {
            return Err(Error::Invalid("S3 bucket name is empty".into()));
        }
        let prefix = match settings.prefix.trim_matches('/') {
            "" => String::new(),
            p => {
                components(p)?;
                format!("{p}/")
            }
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_virtual_hosted_style_request(!settings.path_style)
            // A dead endpoint must fail a readiness probe in seconds, not after the
            // default three minutes of retries; large transfers still get ten minutes.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(600)),
            );
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token);
        }
        let store = builder.build().map_err(blob_err)?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            name: format!("s3://{}/{prefix}", settings.bucket),
            prefix,
            part_size: settings.part_size.max(MIN_PART_SIZE),
            scratch_dir: settings.scratch_dir.clone(),
        })
    }

    /// The object of a key, or `InvalidInput` for a key the store refuses.
    fn path(&self, key: &str) -> Result<Path> {
        components(key)?;
        Path::parse(format!("{}{key}", self.prefix)).map_err(|_| invalid(key))
    }

    /// The list prefix of a checked blob prefix; `None` = the whole bucket.
    fn list_path(&self, trimmed: &str) -> Result<Option<Path>> {
        let full = format!("{}{trimmed}", self.prefix);
        let full = full.trim_end_matches('/');
        if full.is_empty() {
            return Ok(None);
        }
        Path::parse(full).map(Some).map_err(|_| invalid(trimmed))
    }

    /// The key of an object name (without the store prefix).
    fn key_of<'a>(&self, location: &'a Path) -> Option<&'a str> {
        location.as_ref().strip_prefix(self.prefix.as_str())
    }

    /// Keys under a checked prefix, unsorted; a prefix naming a blob lists that blob.
    async fn keys_under(&self, trimmed: &str) -> Result<Vec<String>> {
        let path = self.list_path(trimmed)?;
        let mut keys: Vec<String> = self
            .store
            .list(path.as_ref())
            .map_err(blob_err)
            .try_filter_map(|meta| {
                let key = self.key_of(&meta.location).map(str::to_owned);
                std::future::ready(Ok(key))
            })
            .try_collect()
            .await?;
        // S3 lists `prefix/…`; the blob named by the prefix itself is not among them.
        if keys.is_empty() && !trimmed.is_empty() && self.exists(trimmed).await? {
            keys.push(trimmed.to_owned());
        }
        Ok(keys)
    }

    /// Streams a local file up to `path`; aborts the upload on failure.
    async fn upload(&self, path: Path, file: &FsPath) -> Result<()> {
        let input = tokio::fs::File::open(file).await.map_err(Error::Io)?;
        let mut input = BufReader::with_capacity(READ_BUFFER, input);
        let mut writer = BufWriter::with_capacity(self.store.clone(), path, self.part_size)
            .with_max_concurrency(UPLOAD_CONCURRENCY);
        if let Err(e) = tokio::io::copy_buf(&mut input, &mut writer).await {
            // Parts already sent would otherwise stay (and be billed) in the bucket.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(store = %self.name, error = %abort, "aborting a failed upload failed");
            }
            return Err(Error::Blob(e));
        }
        // The final PUT, or completing the multipart upload; a failed completion aborts
        // the upload itself (and the writer must not be aborted after its shutdown).
        writer.shutdown().await.map_err(Error::Blob)?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put_file(&self, key: &str, file: &FsPath) -> Result<()> {
        let path = self.path(key)?;
        // Content-addressed keys: an existing object is the same bytes.
        if !self.exists(key).await? {
            self.upload(path, file).await?;
        }
        tokio::fs::remove_file(file).await.map_err(Error::Io)
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(data))
            .await
            .map(drop)
            .map_err(blob_err)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(blob_err)?.to_vec())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(blob_err(e)),
        }
    }

    async fn open(&self, key: &str) -> Result<Option<BlobReader>> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(result) => Ok(Some(BlobReader {
                size: result.meta.size,
                stream: Box::pin(result.into_stream().map_err(io::Error::other)),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(blob_err(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(blob_err(e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(blob_err(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let trimmed = prefix_key(prefix)?;
        let mut keys = self.keys_under(trimmed).await?;
        keys.sort_unstable();
        Ok(keys)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        // The empty prefix would be the whole store: never a sensible delete.
        if prefix.is_empty() {
            return Err(invalid(prefix));
        }
        let trimmed = prefix_key(prefix)?;
        let paths = self
            .keys_under(trimmed)
            .await?
            .into_iter()
            .map(|k| self.path(&k))
            .collect::<Result<Vec<_>>>()?;
        let stream = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(stream);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(blob_err(e)),
            }
        }
        Ok(())
    }

    async fn local(&self, key: &str) -> Result<Option<LocalBlob>> {
        let Some(reader) = self.open(key).await? else {
            return Ok(None);
        };
        tokio::fs::create_dir_all(&self.scratch_dir)
            .await
            .map_err(Error::Io)?;
        let dir = self.scratch_dir.clone();
        let temp = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix(LOCAL_PREFIX)
                .tempfile_in(dir)
        })
        .await
        .map_err(|e| Error::Io(io::Error::other(e)))?
        .map_err(Error::Io)?;
        let (file, temp_path) = temp.into_parts();
        let mut out =
            tokio::io::BufWriter::with_capacity(READ_BUFFER, tokio::fs::File::from_std(file));
        let mut stream = reader.stream;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Error::Blob)?;
            written += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(Error::Io)?;
        }
        out.flush().await.map_err(Error::Io)?;
        if written != reader.size {
            return Err(Error::Blob(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("{key}: got {written} of {} bytes", reader.size),
            )));
        }
        Ok(Some(LocalBlob {
            path: temp_path.to_path_buf(),
            guard: Some(Box::new(temp_path)),
        }))
    }

    async fn probe(&self) -> Result<()> {
        // A listing fails for a missing bucket, wrong credentials or a dead endpoint;
        // a HEAD of a missing object would answer 404 in all of the first two cases.
        let probe = self.list_path("")?;
        self.store
            .list_with_delimiter(probe.as_ref())
            .await
            .map(drop)
            .map_err(blob_err)
    }

    fn disk_usage(&self, _prefix: &str) -> Option<DiskUsage> {
        // A bucket has no volume size; what fills up on a node is the local disk under the
        // scratch directory (temp copies for analysis), and that is what dist.py-style
        // clients watch in `cuckoo/status`.
        super::volume_usage(&self.scratch_dir)
    }
}

/// Removes the temp copies a killed process left in the scratch dir (start-up clean-up).
pub fn clean_scratch(dir: &FsPath) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(LOCAL_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
