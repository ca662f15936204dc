//! ISO 9660 (built with genisoimage, plain and Joliet) and RAR listing (v4 and v5
//! headers assembled from the format documentation), plus damaged variants of each.

use super::*;

fn genisoimage(joliet: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("docs/deeper")).unwrap();
    std::fs::write(root.join("setup.exe"), b"MZ setup").unwrap();
    std::fs::write(root.join("docs/readme.txt"), b"read me").unwrap();
    std::fs::write(
        root.join("docs/deeper/Invoice Long Name.lnk"),
        b"L\0\0\0link",
    )
    .unwrap();
    let out = dir.path().join("x.iso");
    let mut args = vec!["-quiet", "-o"];
    let out_s = out.to_str().unwrap().to_owned();
    args.push(&out_s);
    if joliet {
        args.push("-J");
    }
    let root_s = root.to_str().unwrap().to_owned();
    args.push(&root_s);
    let st = std::process::Command::new("genisoimage")
        .args(&args)
        .status()
        .expect("genisoimage (scripts/bootstrap.sh installs it)");
    assert!(st.success());
    std::fs::read(out).unwrap()
}

fn sorted_names(u: &Unpacked) -> Vec<String> {
    let mut v: Vec<String> = u.members.iter().map(|m| m.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn iso9660_plain_and_joliet() {
    let plain = genisoimage(false);
    let u = unpack(&plain, "x.iso", &[], &UnpackLimits::default());
    assert_eq!(u.format, Some(Format::Iso));
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    // ISO level 1 names: upper case 8.3.
    assert_eq!(
        sorted_names(&u),
        ["DOCS/DEEPER/INVOICE_.LNK", "DOCS/README.TXT", "SETUP.EXE"]
    );
    let joliet = genisoimage(true);
    let u = unpack(&joliet, "x.iso", &[], &UnpackLimits::default());
    assert_eq!(
        sorted_names(&u),
        [
            "docs/deeper/Invoice Long Name.lnk",
            "docs/readme.txt",
            "setup.exe"
        ]
    );
    let setup = u.members.iter().find(|m| m.name == "setup.exe").unwrap();
    assert_eq!(setup.data, b"MZ setup");
    // The member limit holds here as for every format.
    let few = UnpackLimits {
        max_members: 1,
        ..UnpackLimits::default()
    };
    let u = unpack(&joliet, "x.iso", &[], &few);
    assert_eq!(u.members.len(), 1);
    assert!(u.findings.iter().any(|f| f.contains("member count limit")));
}

#[test]
fn damaged_and_looping_isos_end() {
    let iso = genisoimage(true);
    for cut in (0..iso.len()).step_by(997) {
        let u = unpack(&iso[..cut], "x.iso", &[], &UnpackLimits::default());
        assert!(u.members.len() <= 3);
    }
    for i in (16 * 2048..iso.len().min(40 * 2048)).step_by(13) {
        let mut bad = iso.clone();
        bad[i] ^= 0xff;
        let u = unpack(&bad, "x.iso", &[], &UnpackLimits::default());
        assert!(u.members.len() <= 1000);
    }
    // Every directory record's extent pointed at the root directory: a loop, visited once.
    let mut looped = iso.clone();
    let root_extent = {
        let vd = &iso[17 * 2048..18 * 2048]; // Joliet SVD follows the PVD
        u32::from_le_bytes(vd[158..162].try_into().unwrap())
    };
    let root = root_extent as usize * 2048;
    let mut pos = root;
    while looped[pos] != 0 {
        let len = looped[pos] as usize;
        if looped[pos + 25] & 2 != 0 {
            looped[pos + 2..pos + 6].copy_from_slice(&root_extent.to_le_bytes());
        }
        pos += len;
    }
    let u = unpack(&looped, "x.iso", &[], &UnpackLimits::default());
    assert_eq!(sorted_names(&u), ["setup.exe"]);
}

fn vint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A RAR5 block: CRC (not checked), size, then the header body.
fn rar5_block(body: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0];
    b.extend(vint(body.len() as u64));
    b.extend(body);
    b.extend(data);
    b
}

fn rar5(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = rar::RAR5.to_vec();
    out.extend(rar5_block(&[1, 0, 0], &[])); // main header
    for (name, data) in files {
        let mut h = vec![2, 2]; // type file, flags: data area
        h.extend(vint(data.len() as u64));
        h.extend([0]); // file flags
        h.extend(vint(data.len() as u64 * 3)); // unpacked size
        h.extend([0x20, 0, 0]); // attributes, compression, host OS
        h.extend(vint(name.len() as u64));
        h.extend(name.as_bytes());
        out.extend(rar5_block(&h, data));
    }
    out.extend(rar5_block(&[5, 0, 0], &[]));
    out
}

fn rar4(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = rar::RAR4.to_vec();
    out.extend([0, 0, 0x73, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0]); // main header
    for (name, data) in files {
        let size = 7 + 25 + name.len();
        let mut h = vec![0, 0, 0x74, 0x00, 0x80];
        h.extend((size as u16).to_le_bytes());
        h.extend((data.len() as u32).to_le_bytes());
        h.extend((data.len() as u32 * 2).to_le_bytes());
        h.extend([2, 0, 0, 0, 0, 0, 0, 0, 0, 29, 0x33]);
        h.extend((name.len() as u16).to_le_bytes());
        h.extend([0x20, 0, 0, 0]);
        h.extend(name.as_bytes());
        out.extend(h);
        out.extend(*data);
    }
    out.extend([0, 0, 0x7b, 0, 0x40, 7, 0]);
    out
}

/// A valid RAR5 archive of stored (method 0) files, CRCs and all, as `rar -m0` writes
/// one (the format documentation's layout; no RAR writer is free to install).
fn rar5_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    fn block(body: &[u8], data: &[u8]) -> Vec<u8> {
        let size = vint(body.len() as u64);
        let mut h = crc32fast::Hasher::new();
        h.update(&size);
        h.update(body);
        let mut b = h.finalize().to_le_bytes().to_vec();
        b.extend(size);
        b.extend(body);
        b.extend(data);
        b
    }
    let mut out = rar::RAR5.to_vec();
    out.extend(block(&[1, 0, 0], &[]));
    for (name, data) in files {
        let mut h = vec![2, 2]; // file header, with a data area
        h.extend(vint(data.len() as u64));
        h.push(0x04); // file flags: CRC32 present
        h.extend(vint(data.len() as u64));
        h.push(0x20); // attributes
        h.extend(crc32fast::hash(data).to_le_bytes());
        h.extend([0, 1]); // compression: stored; host OS: Unix
        h.extend(vint(name.len() as u64));
        h.extend(name.as_bytes());
        out.extend(block(&h, data));
    }
    out.extend(block(&[5, 0, 0], &[]));
    out
}

#[test]
fn rar_is_extracted_in_the_sandbox_with_limits() {
    let inner_zip = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("deep.exe", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut w, b"MZ deep").unwrap();
        w.finish().unwrap().into_inner()
    };
    let data = rar5_stored(&[
        ("a.exe", b"MZ hello"),
        ("dir/../../b.js", b"WScript.Echo(1)"),
        ("inner/c.zip", &inner_zip),
    ]);
    let u = unpack(&data, "x.rar", &[], &UnpackLimits::default());
    assert_eq!(u.format, Some(Format::Rar));
    if let Some(why) = rar_tool::missing() {
        // Without the tool (scripts/bootstrap.sh installs it) the entries are listed.
        assert!(u.members.is_empty());
        assert!(
            u.findings.iter().any(|f| f.contains(why)),
            "{:?}",
            u.findings
        );
        assert_eq!(u.listed.len(), 3);
        return;
    }
    let got: Vec<(&str, &[u8])> = u
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.data.as_slice()))
        .collect();
    let mut names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    // The traversal comes out contained (unar's "__Parent__" for a "../" it cannot
    // resolve inside the archive); the nested zip is unpacked in turn.
    assert_eq!(
        names,
        [
            "__Parent__/b.js",
            "a.exe",
            "inner/c.zip",
            "inner/c.zip/deep.exe"
        ],
        "{:?} {:?}",
        u.findings,
        u.errors
    );
    assert!(got.contains(&("a.exe", b"MZ hello".as_slice())));
    assert!(u.listed.is_empty(), "extracted archives are not listed too");
    // The size budget holds: the tool's tmpfs is the budget, the reader caps the rest.
    let big = vec![b'A'; 300_000];
    let data = rar5_stored(&[("big1.bin", &big), ("big2.bin", &big)]);
    let small = UnpackLimits {
        max_total: 400_000,
        ..UnpackLimits::default()
    };
    let u = unpack(&data, "x.rar", &[], &small);
    let total: usize = u.members.iter().map(|m| m.data.len()).sum();
    assert!(total <= 400_000, "{total}");
    assert!(!u.findings.is_empty(), "hitting the limit is a finding");
    // Damaged: an error-free report with a finding, never a panic.
    let mut bad = rar5_stored(&[("a.exe", b"MZ hello")]);
    let n = bad.len();
    bad[n - 20] ^= 0xff;
    let u = unpack(&bad, "x.rar", &[], &UnpackLimits::default());
    assert!(u.members.len() <= 1);
}

#[test]
fn rar_is_listed_not_extracted() {
    for (label, data) in [
        (
            "rar5",
            rar5(&[("a.exe", b"packed-a"), ("dir\\..\\b.js", b"bb")]),
        ),
        (
            "rar4",
            rar4(&[("a.exe", b"packed-a"), ("dir\\..\\b.js", b"bb")]),
        ),
    ] {
        // The listing itself (the tool off, as when it is not installed).
        let listing_only = UnpackLimits {
            rar_tool: false,
            ..UnpackLimits::default()
        };
        let u = unpack(&data, "x.rar", &[], &listing_only);
        assert_eq!(u.format, Some(Format::Rar), "{label}");
        assert!(u.members.is_empty());
        assert!(
            u.findings
                .iter()
                .any(|f| f.contains("not extracted (rar extraction is off)")
                    && f.contains("2 entries listed")),
            "{label}: {:?}",
            u.findings
        );
        assert_eq!(u.listed[0]["name"], "a.exe", "{label}");
        assert_eq!(u.listed[0]["packed_size"], 8, "{label}");
        assert_eq!(u.listed[1]["name"], "dir\\..\\b.js", "{label}");
        assert_eq!(u.section()["listed"].as_array().unwrap().len(), 2);
        for cut in 0..data.len() {
            let u = unpack(&data[..cut], "x.rar", &[], &listing_only);
            assert!(u.listed.len() <= 2);
        }
    }
    // Oversized sizes and endless vints stop the walk.
    let mut bad = rar::RAR5.to_vec();
    bad.extend([
        0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    let u = unpack(&bad, "x.rar", &[], &UnpackLimits::default());
    assert!(u.listed.is_empty());
    let mut bad4 = rar::RAR4.to_vec();
    bad4.extend([0, 0, 0x74, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let u = unpack(&bad4, "x.rar", &[], &UnpackLimits::default());
    assert!(u.listed.is_empty());
}

fn big() -> Vec<u8> {
    (0..110_000u32)
        .map(|i| (i / 7 % 251) as u8 ^ (i % 3) as u8)
        .collect()
}

/// A cabinet written by GNOME's gcab (MSZIP-compressed) with nested paths.
fn gcab() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("setup.exe"), b"MZ setup ".repeat(500)).unwrap();
    std::fs::write(dir.path().join("sub/readme.txt"), b"read me").unwrap();
    // Over three 32 KiB MSZIP blocks, with matches reaching back across block boundaries.
    std::fs::write(dir.path().join("big.bin"), big()).unwrap();
    let st = std::process::Command::new("gcab")
        .current_dir(dir.path())
        .args([
            "-c",
            "-z",
            "x.cab",
            "setup.exe",
            "sub/readme.txt",
            "big.bin",
        ])
        .status()
        .expect("gcab (scripts/bootstrap.sh installs it)");
    assert!(st.success());
    std::fs::read(dir.path().join("x.cab")).unwrap()
}

#[test]
fn cab_from_gcab_and_hostile_names() {
    let data = gcab();
    let u = unpack(&data, "x.cab", &[], &UnpackLimits::default());
    assert_eq!(u.format, Some(Format::Cab));
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(sorted_names(&u), ["big.bin", "setup.exe", "sub/readme.txt"]);
    let b = u.members.iter().find(|m| m.name == "big.bin").unwrap();
    assert!(
        b.data == big(),
        "MSZIP blocks chained through their dictionaries"
    );
    let setup = u.members.iter().find(|m| m.name == "setup.exe").unwrap();
    assert_eq!(setup.data, b"MZ setup ".repeat(500));
    // Traversal and absolute names: gcab keeps the names it is given.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.exe"), b"MZ").unwrap();
    let st = std::process::Command::new("gcab")
        .current_dir(dir.path())
        .args(["-c", "-n", "h.cab", "evil.exe"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut hostile = std::fs::read(dir.path().join("h.cab")).unwrap();
    // Rename the entry in place to a same-length traversal name.
    let at = hostile.windows(8).position(|w| w == b"evil.exe").unwrap();
    hostile[at..at + 8].copy_from_slice(b"..\\e.exe");
    let u = unpack(&hostile, "h.cab", &[], &UnpackLimits::default());
    assert_eq!(sorted_names(&u), ["e.exe"]);
    assert!(
        u.findings.iter().any(|f| f.contains("neutralised")),
        "{:?}",
        u.findings
    );
    // Every truncation and a sweep of corruptions end in a result.
    for cut in (0..data.len()).step_by(5) {
        let u = unpack(&data[..cut], "x.cab", &[], &UnpackLimits::default());
        assert!(u.members.len() <= 3);
    }
    for i in (0..data.len()).filter(|i| *i < 600 || i % 31 == 0) {
        for v in [0x00, 0xff] {
            let mut bad = data.clone();
            bad[i] = v;
            let u = unpack(&bad, "x.cab", &[], &UnpackLimits::default());
            assert!(u.members.len() <= 3);
        }
    }
}

#[test]
fn truncated_long_names_stay_safe() {
    // A cut right after a separator, and one that leaves "..".
    for name in [
        format!("{}/{}", "a".repeat(99), "b".repeat(300)),
        format!("{}/..{}", "a".repeat(98), "c".repeat(300)),
    ] {
        let safe = safe_path(&name, 100);
        assert!(safe.len() <= 100, "{safe}");
        assert!(
            !safe
                .split('/')
                .any(|c| c.is_empty() || c == ".." || c == "."),
            "{safe:?}"
        );
    }
}
