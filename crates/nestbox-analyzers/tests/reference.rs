//! Checks the analyzers against the reference tools the values must agree with:
//! coreutils `md5sum`/`sha1sum`/`sha256sum`/`sha512sum`, `ssdeep` and `file`.
//!
//! A missing reference tool is a failure, not a skip: a skipped comparison would let the
//! crate drift from the tools it promises to match. CI installs them (`file`, `ssdeep`).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nestbox_analyzers::{
    Digest, MultiHasher, digest_bytes, digest_file, file_type_bytes, file_type_path,
};

/// Runs a reference tool and returns its stdout, failing loudly if it is not installed.
fn run(tool: &str, args: &[&OsStr]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "reference tool `{tool}` could not be run ({e}). These tests compare against it \
             and never skip: install it (Debian: apt-get install -y coreutils file ssdeep)."
        )
    });
    assert!(
        out.status.success(),
        "`{tool} {args:?}` failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("reference tool printed non-UTF-8")
}

/// A sample on disk with its contents.
struct Sample {
    name: &'static str,
    path: PathBuf,
    data: Vec<u8>,
}

/// Deterministic pseudo-random bytes (xorshift64), so the inputs are the same everywhere.
fn xorshift_bytes(mut state: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Some paragraphs of English-looking text, deterministic.
fn paragraphs() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "sample",
        "was",
        "submitted",
        "to",
        "a",
        "sandbox",
        "and",
        "its",
        "behaviour",
        "recorded",
        "while",
        "process",
        "created",
        "registry",
        "keys",
        "network",
        "traffic",
        "towards",
        "several",
        "domains",
        "analysis",
        "report",
        "contains",
        "signatures",
        "memory",
        "dump",
        "screenshots",
        "of",
        "desktop",
        "during",
        "execution",
    ];
    let noise = xorshift_bytes(0x2545_F491_4F6C_DD1D, 4096);
    let mut text = String::new();
    let mut k = 0;
    for paragraph in 0..12 {
        text.push_str(&format!("Paragraph {paragraph}. "));
        for sentence in 0..(4 + paragraph % 3) {
            for word in 0..(6 + (sentence * 5 + paragraph) % 9) {
                let w = WORDS[usize::from(noise[k % noise.len()]) % WORDS.len()];
                k += 1;
                if word == 0 {
                    let mut c = w.chars();
                    let first = c.next().unwrap_or('x').to_ascii_uppercase();
                    text.push(first);
                    text.push_str(c.as_str());
                } else {
                    text.push(' ');
                    text.push_str(w);
                }
            }
            text.push_str(". ");
        }
        text.push_str("\n\n");
    }
    text.into_bytes()
}

/// A minimal gzip member holding `data` in one stored deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("stored block holds at most 64 KiB");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    out.push(1); // final block, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A valid 1x1 RGB PNG, built by hand (stored zlib stream, real CRCs and Adler-32).
fn tiny_png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(body);
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    let raw = [0u8, 0xff, 0x80, 0x00]; // filter byte + one RGB pixel
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    let mut zlib = vec![0x78, 0x01, 0x01, 4, 0, !4, 0xff];
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Writes the varied sample set into `dir`.
fn samples(dir: &Path) -> Vec<Sample> {
    let text = paragraphs();
    let mut utf16 = vec![0xff, 0xfe];
    for unit in "Hello from a UTF-16 document.\r\nSecond line.\r\n".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let mut mz = b"MZ".to_vec();
    mz.resize(128, 0);
    let inputs: Vec<(&'static str, Vec<u8>)> = vec![
        ("elf", fs::read("/bin/ls").expect("/bin/ls is readable")),
        ("text", text.clone()),
        ("empty", Vec::new()),
        ("one-byte", b"A".to_vec()),
        (
            "62-bytes",
            b"62 bytes of text, enough for TLSH (>= 50) but tiny for ssdeep".to_vec(),
        ),
        (
            "random-1mib",
            xorshift_bytes(0x9E37_79B9_7F4A_7C15, 1 << 20),
        ),
        ("zeros-10k", vec![0; 10_000]),
        ("gzip", gzip_stored(&text)),
        ("png", tiny_png()),
        ("utf16-text", utf16),
        ("script", b"#!/bin/sh\necho hello\nexit 0\n".to_vec()),
        ("mz-stub", mz),
    ];
    inputs
        .into_iter()
        .map(|(name, data)| {
            let path = dir.join(name);
            fs::write(&path, &data).expect("write sample");
            Sample { name, path, data }
        })
        .collect()
}

/// Feeds `data` to a fresh hasher in chunks of `size`.
fn digest_chunked(data: &[u8], size: usize) -> Digest {
    let mut hasher = MultiHasher::new();
    for chunk in data.chunks(size) {
        hasher.update(chunk);
    }
    hasher.update(&[]);
    hasher.finish()
}

#[test]
fn all_digest_entry_points_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    for s in samples(dir.path()) {
        let from_bytes = digest_bytes(&s.data);
        let from_file = digest_file(&s.path).expect("digest_file");
        assert_eq!(
            from_bytes, from_file,
            "{}: digest_bytes vs digest_file",
            s.name
        );
        for size in [1, 7, 4096, 65537, 1 << 20] {
            assert_eq!(
                from_bytes,
                digest_chunked(&s.data, size),
                "{}: streaming in {size}-byte chunks",
                s.name
            );
        }
        assert_eq!(from_bytes.size, s.data.len() as u64, "{}: size", s.name);
    }
}

#[test]
fn cryptographic_hashes_match_coreutils() {
    let dir = tempfile::tempdir().expect("tempdir");
    for s in samples(dir.path()) {
        let d = digest_file(&s.path).expect("digest_file");
        for (tool, ours) in [
            ("md5sum", &d.md5),
            ("sha1sum", &d.sha1),
            ("sha256sum", &d.sha256),
            ("sha512sum", &d.sha512),
        ] {
            let out = run(tool, &[s.path.as_os_str()]);
            let reference = out.split_whitespace().next().unwrap_or_default();
            assert_eq!(ours, reference, "{}: {tool}", s.name);
        }
    }
}

#[test]
fn ssdeep_matches_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    for s in samples(dir.path()) {
        let out = run(
            "ssdeep",
            &["-s".as_ref(), "-b".as_ref(), s.path.as_os_str()],
        );
        // Line 1 is the "ssdeep,1.1--blocksize:hash:hash,filename" header; line 2 is
        // `hash,"filename"`.
        let line = out.lines().nth(1).unwrap_or_else(|| {
            panic!("{}: unexpected ssdeep output {out:?}", s.name);
        });
        let reference = line.split(',').next().unwrap_or_default();
        assert_eq!(
            digest_bytes(&s.data).ssdeep,
            reference,
            "{}: ssdeep",
            s.name
        );
    }
}

#[test]
fn file_type_matches_file_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    for s in samples(dir.path()) {
        let description = run("file", &["-b".as_ref(), s.path.as_os_str()]);
        let mime = run(
            "file",
            &["-b".as_ref(), "--mime-type".as_ref(), s.path.as_os_str()],
        );
        let expected = nestbox_analyzers::FileType {
            description: description.trim_end_matches('\n').to_owned(),
            mime: mime.trim_end_matches('\n').to_owned(),
        };
        assert_eq!(
            file_type_path(&s.path),
            expected,
            "{}: file_type_path",
            s.name
        );
        assert_eq!(
            file_type_bytes(&s.data),
            expected,
            "{}: file_type_bytes",
            s.name
        );
    }
}

/// TLSH values computed with py-tlsh 5.0.0 (`tlsh.hash(data)`) for the deterministic
/// samples. There is no TLSH tool in Debian's default install, so these are pinned.
#[test]
fn tlsh_matches_py_tlsh() {
    let expected: &[(&str, Option<&str>)] = &[
        (
            "text",
            Some("T15A91BE3F4856556967C383AF391261A1C323AF4932E715B4ED2BC7DC214C4D8A33F66A"),
        ),
        ("empty", None),
        ("one-byte", None),
        (
            "62-bytes",
            Some("T195A0024DCC04D25BE2DE4D5422488289A56C96358A3FC0AC2044C8294848B74B9ED144"),
        ),
        (
            "random-1mib",
            Some("T1C72533014CE6D19F78E1594392B9F17216AA41FBC7EC1787F2FEBA3019023768A0B567"),
        ),
        ("zeros-10k", None),
        (
            "gzip",
            Some("T15A91BD3F4856556967C382AF391261A1C323AF4932E715B4ED2BC7DC214C8D8A33F66B"),
        ),
        (
            "png",
            Some("T163A022E3B3AB0E3CF88A023B8C0A0E38EE3000A8AA000E0000C3802E3828200808E2C2"),
        ),
        (
            "utf16-text",
            Some("T1C6B0011662F9630461529615693D0B62AEB37C12A9BC561DA45150060ED8E081A05BAB"),
        ),
        ("script", None),
        ("mz-stub", None),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = samples(dir.path());
    for (name, tlsh) in expected {
        let s = samples.iter().find(|s| s.name == *name).expect("sample");
        assert_eq!(
            digest_bytes(&s.data).tlsh.as_deref(),
            *tlsh,
            "{name}: TLSH vs py-tlsh"
        );
    }
    // The ELF differs between machines; only check that it hashes.
    let elf = samples
        .iter()
        .find(|s| s.name == "elf")
        .expect("elf sample");
    assert!(digest_bytes(&elf.data).tlsh.is_some(), "/bin/ls has a TLSH");
}

/// Like `file`, the path variant describes what a path is even when it is not a readable
/// regular file.
#[test]
fn file_type_path_matches_file_cli_for_non_regular_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    for path in [dir.path().to_path_buf(), missing] {
        let description = run("file", &["-b".as_ref(), path.as_os_str()]);
        let mime = run(
            "file",
            &["-b".as_ref(), "--mime-type".as_ref(), path.as_os_str()],
        );
        let ours = file_type_path(&path);
        assert_eq!(
            ours.description,
            description.trim_end_matches('\n'),
            "{path:?}"
        );
        assert_eq!(ours.mime, mime.trim_end_matches('\n'), "{path:?}");
    }
}
