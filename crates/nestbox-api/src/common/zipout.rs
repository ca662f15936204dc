//! Zip downloads (CAPE's `dropped`, `payloadfiles`, `procmemory`, report bundles,
//! `files/get?encrypted=1`; Assemblyline's `encoding=zip`), optionally AES-256 encrypted
//! with a password as CAPE's `pyzipper.AESZipFile` does.
//!
//! The archive is streamed: a blocking thread reads each blob chunk by chunk, compresses
//! it into a non-seekable zip writer (sizes and CRCs go into data descriptors after each
//! entry) and hands 64 KiB pieces to the response body through a bounded channel. Memory
//! stays at a few chunks whatever the size of the dumps; a client that goes away closes
//! the channel, which ends the thread at its next write.

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use nestbox_core::ports::BlobStore;
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;

/// What an archive entry holds.
pub enum ZipSource {
    /// Bytes already in memory (small derived documents such as `lite.json`).
    Bytes(Vec<u8>),
    /// A blob of the store, read as a stream when its turn comes.
    Blob(String),
}

/// One archive entry: its name in the zip and its content.
pub type ZipEntry = (String, ZipSource);

/// Size of the pieces sent to the body (and of the channel's elements).
const PIECE: usize = 64 << 10;

/// A response body that is the zip of `entries`; `password` = AES-256 encryption.
pub fn stream(blobs: Arc<dyn BlobStore>, entries: Vec<ZipEntry>, password: Option<String>) -> Body {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(PIECE),
        };
        if let Err(e) = write_zip(&handle, &*blobs, entries, password.as_deref(), out) {
            tracing::warn!(error = %e, "zip download ended early");
            let _ = tx.blocking_send(Err(e));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

fn write_zip(
    handle: &tokio::runtime::Handle,
    blobs: &dyn BlobStore,
    entries: Vec<ZipEntry>,
    password: Option<&str>,
    out: ChannelWriter,
) -> std::io::Result<()> {
    let mut w = zip::ZipWriter::new_stream(out);
    let mut opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    if let Some(pw) = password {
        opts = opts.with_aes_encryption(zip::AesMode::Aes256, pw);
    }
    for (name, source) in entries {
        w.start_file(name.as_str(), opts)
            .map_err(std::io::Error::other)?;
        match source {
            ZipSource::Bytes(data) => w.write_all(&data)?,
            ZipSource::Blob(key) => {
                // A blob deleted since the listing becomes an empty entry rather than a
                // truncated archive.
                let Some(mut reader) = handle
                    .block_on(blobs.open(&key))
                    .map_err(std::io::Error::other)?
                else {
                    continue;
                };
                while let Some(chunk) = handle.block_on(reader.stream.next()) {
                    w.write_all(&chunk?)?;
                }
            }
        }
    }
    let mut out = w.finish().map_err(std::io::Error::other)?.into_inner();
    out.flush()
}

/// A `Write` that sends 64 KiB pieces into the body's channel.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// An in-memory blob store is not available here; entries from memory exercise the
    /// writer, the channel and AES, and the archive must open with the password.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_an_aes_zip_that_opens_with_the_password() {
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        let entries = vec![
            ("files/a".to_owned(), ZipSource::Bytes(big.clone())),
            ("b.txt".to_owned(), ZipSource::Bytes(b"hello".to_vec())),
        ];
        let blobs: Arc<dyn BlobStore> = Arc::new(NoBlobs);
        let body = stream(blobs, entries, Some("infected".into()));
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        assert_eq!(z.len(), 2);
        let mut got = Vec::new();
        z.by_name_decrypt("files/a", b"infected")
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == big);
        assert!(z.by_name_decrypt("b.txt", b"wrong").is_err());
    }

    struct NoBlobs;

    #[async_trait::async_trait]
    impl BlobStore for NoBlobs {
        async fn put_file(&self, _: &str, _: &std::path::Path) -> nestbox_core::Result<()> {
            Ok(())
        }
        async fn put(&self, _: &str, _: Vec<u8>) -> nestbox_core::Result<()> {
            Ok(())
        }
        async fn get(&self, _: &str) -> nestbox_core::Result<Option<Vec<u8>>> {
            Ok(None)
        }
        async fn open(
            &self,
            _: &str,
        ) -> nestbox_core::Result<Option<nestbox_core::ports::BlobReader>> {
            Ok(None)
        }
        async fn exists(&self, _: &str) -> nestbox_core::Result<bool> {
            Ok(false)
        }
        async fn list(&self, _: &str) -> nestbox_core::Result<Vec<String>> {
            Ok(Vec::new())
        }
        async fn delete_prefix(&self, _: &str) -> nestbox_core::Result<()> {
            Ok(())
        }
        async fn local(
            &self,
            _: &str,
        ) -> nestbox_core::Result<Option<nestbox_core::ports::LocalBlob>> {
            Ok(None)
        }
        fn disk_usage(&self, _: &str) -> Option<nestbox_core::ports::DiskUsage> {
            None
        }
    }
}
