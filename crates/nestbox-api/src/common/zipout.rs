//! Building zip downloads (CAPE's `dropped`, `payloadfiles`, `files/get?encrypted=1`,
//! report bundles), optionally AES-256 encrypted with a password as CAPE's
//! `pyzipper.AESZipFile` does.

use std::io::Write;

use zip::write::SimpleFileOptions;

/// Zips `entries` (`name`, content) in memory; `password` = AES-256 encryption.
pub fn build(entries: &[(String, Vec<u8>)], password: Option<&str>) -> std::io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut opts =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    if let Some(pw) = password {
        opts = opts.with_aes_encryption(zip::AesMode::Aes256, pw);
    }
    for (name, data) in entries {
        w.start_file(name.as_str(), opts)
            .map_err(std::io::Error::other)?;
        w.write_all(data)?;
    }
    Ok(w.finish().map_err(std::io::Error::other)?.into_inner())
}
