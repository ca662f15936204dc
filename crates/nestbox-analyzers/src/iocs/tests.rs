use super::*;

fn text(s: &str) -> Iocs {
    let mut i = Iocs::default();
    i.add_text(s);
    i
}

fn wide(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn urls_bring_their_domain_or_address() {
    let i = text(
        "get http://evil.example.com/a.php then https://10.1.2.3:8080/x and http://[2001:db8::1]/",
    );
    assert_eq!(
        i.urls,
        [
            "http://evil.example.com/a.php",
            "https://10.1.2.3:8080/x",
            "http://[2001:db8::1]/"
        ]
    );
    assert_eq!(i.domains, ["evil.example.com"]);
    assert_eq!(i.ipv4, ["10.1.2.3"]);
    assert_eq!(i.ipv6, ["2001:db8::1"]);
}

#[test]
fn domains_need_a_public_suffix() {
    let i =
        text("c2.badguy.ru beacon.example.co.uk notadomain.invalidtld System.IO kernel32.dll a.b");
    assert_eq!(i.domains, ["c2.badguy.ru", "beacon.example.co.uk"]);
    // File names whose extension is a TLD are files, unless a URL says otherwise.
    let i = text("invoice.zip setup.exe payload.py http://files.zip/");
    assert_eq!(i.domains, ["files.zip"]);
    // Labels are LDH, and a bare suffix is not a domain.
    assert!(text("co.uk -bad-.com bad-.com").domains.is_empty());
    assert_eq!(
        text("WWW.Example.com. EVIL.ORG").domains,
        ["www.example.com", "evil.org"]
    );
    assert!(text("WScript.Network Foo.Bar.Com").domains.is_empty());
}

#[test]
fn ipv4_drops_version_lookalikes() {
    let i = text("connect 192.168.1.20 and 8.8.8.8; Version 1.2.3.4 v10.0.0.1 ver=2.0.0.1");
    assert_eq!(i.ipv4, ["192.168.1.20", "8.8.8.8"]);
    let i = text("6.1.7601.17514 1.2.3.4.5 255.255.255.0 0.0.0.0 01.2.3.4 300.1.1.1");
    assert!(i.ipv4.is_empty(), "{:?}", i.ipv4);
}

#[test]
fn ipv6_is_canonical_and_skips_scopes_and_times() {
    let i =
        text("srv 2001:0db8:0000:0000:0000:0000:0000:0042 fe80::1:2:3 std::vector 12:30:45 ::1 ::");
    assert_eq!(i.ipv6, ["2001:db8::42", "fe80::1:2:3"]);
}

#[test]
fn emails() {
    let i = text("mail to: John.Doe+x@Mail.Example.COM, bad@nowhere.invalidtld, @example.com");
    assert_eq!(i.emails, ["John.Doe+x@mail.example.com"]);
}

#[test]
fn registry_keys() {
    let i = text(
        r#"reg add "HKCU\Software\Microsoft\Windows\CurrentVersion\Run" /v x; HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\evil"#,
    );
    assert_eq!(
        i.registry_keys,
        [
            r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run",
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\evil",
        ]
    );
    let i = text(r"Software\Microsoft\Windows NT\CurrentVersion\Winlogon");
    assert_eq!(
        i.registry_keys,
        [r"Software\Microsoft\Windows NT\CurrentVersion\Winlogon"]
    );
    assert!(text(r"HKLM\").registry_keys.is_empty());
}

#[test]
fn file_paths_windows_and_unix() {
    let i = text(
        r#"copy C:\Users\Public\evil.exe "C:\Program Files\a b\c.exe" "%APPDATA%\Microsoft\x.dll" \\srv\share\drop.bat /tmp/.x/run.sh and /etc/passwd. /usr"#,
    );
    assert_eq!(
        i.file_paths,
        [
            r"C:\Users\Public\evil.exe",
            r"C:\Program Files\a b\c.exe",
            r"%APPDATA%\Microsoft\x.dll",
            r"\\srv\share\drop.bat",
            "/tmp/.x/run.sh",
            "/etc/passwd",
        ]
    );
    assert!(text("a/b/c 1/2 http/1.1").file_paths.is_empty());
}

#[test]
fn hashes_by_length() {
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let sha1 = "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709";
    let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let i = text(&format!("{md5} {sha1}:{sha256}"));
    assert_eq!(i.md5, [md5]);
    assert_eq!(i.sha1, [sha1.to_ascii_lowercase()]);
    assert_eq!(i.sha256, [sha256]);
    // Not digests: one repeated digit, all digits, mixed case, wrong length.
    let i = text(&format!(
        "{} {} {} {}",
        "0".repeat(32),
        "1234567890".repeat(4),
        "d41d8cd98f00b204e9800998ecf8427E",
        &md5[..31]
    ));
    assert!(i.md5.is_empty() && i.sha1.is_empty(), "{i:?}");
}

#[test]
fn file_scan_sees_wide_strings_and_dedups() {
    let mut data = b"\x00\x01http://a.example.net/x\x00evil.example.org\x00".to_vec();
    data.extend(wide("C:\\ProgramData\\w.exe"));
    data.extend(b"\x00\x00evil.example.org\x00");
    let i = extract_iocs(&data, &IocOptions::default());
    assert_eq!(i.urls, ["http://a.example.net/x"]);
    assert_eq!(i.domains, ["a.example.net", "evil.example.org"]);
    assert_eq!(i.file_paths, ["C:\\ProgramData\\w.exe"]);
}

#[test]
fn caps_hold() {
    let mut s = String::new();
    for n in 0..3000 {
        s.push_str(&format!("host{n}.example.com "));
    }
    let i = text(&s);
    assert_eq!(i.domains.len(), MAX_PER_KIND);
    let long = format!("C:\\{}", "a".repeat(5000));
    assert_eq!(text(&long).file_paths[0].len(), MAX_VALUE_LEN);
}

#[test]
fn hostile_bytes_do_not_panic() {
    let mut data = Vec::new();
    for i in 0..20_000u32 {
        data.extend_from_slice(&i.to_le_bytes());
        data.extend_from_slice(b"\\\\:%.@/");
    }
    let _ = extract_iocs(&data, &IocOptions::default());
    let _ = text("é@é.com C:\\é\\x %é%\\x ::é:: HKLM\\é");
}

#[test]
fn serialises_every_kind() {
    let v = serde_json::to_value(Iocs::default()).unwrap();
    for k in [
        "urls",
        "domains",
        "ipv4",
        "ipv6",
        "emails",
        "registry_keys",
        "file_paths",
        "md5",
        "sha1",
        "sha256",
    ] {
        assert!(v[k].is_array(), "{k}");
    }
}

/// A deterministic mix of indicator pieces and noise, as strings and as file bytes.
fn noisy_text(seed: u64, n: usize) -> String {
    const PIECES: &[&str] = &[
        "evil.example.com",
        "http://a.example.net/x?y=1",
        "10.0.0.1",
        "1.2.3.4.5",
        "::1",
        "2001:db8::7",
        "fe80::1:2:3",
        "C:\\Windows\\x.exe",
        "\\\\srv\\share\\f",
        "%APPDATA%\\m.dll",
        "/etc/passwd",
        "/usr/bin/x",
        "HKLM\\Software\\Run",
        "SOFTWARE\\Microsoft\\Windows",
        "a@b.example.org",
        "d41d8cd98f00b204e9800998ecf8427e",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "abc",
        "v1.2.3.4",
        " ",
        "\"",
        ":",
        ".",
        "@",
        "/",
        "\\",
        "%",
        "-",
        "_",
        "x",
        "0123456789abcdef0123456789abcdef01",
    ];
    let mut x = seed;
    let mut out = String::new();
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(PIECES[(x % PIECES.len() as u64) as usize]);
        if x.is_multiple_of(7) {
            out.push('\0');
        }
    }
    out
}

#[test]
fn the_scanner_gate_loses_nothing() {
    for seed in 1..400u64 {
        let t = noisy_text(seed, 1 + (seed as usize % 40));
        for s in t.split('\0') {
            let (mut gated, mut all) = (Iocs::default(), Iocs::default());
            scan_text_gated(s, &mut gated, true);
            scan_text_gated(s, &mut all, false);
            assert_eq!(gated, all, "{s:?}");
        }
    }
}

#[test]
fn one_pass_finds_what_the_separate_extractors_find() {
    let opts = crate::StringsOptions {
        max_count: 50,
        max_len: 20,
        ..crate::StringsOptions::default()
    };
    for seed in 1..60u64 {
        let mut data = noisy_text(seed, 200).into_bytes();
        data.extend(wide(&noisy_text(seed + 1000, 100)));
        data.extend(noisy_text(seed + 2000, 50).bytes().flat_map(|b| [0, b]));
        let one = text_findings(&data, &opts);
        assert_eq!(one.strings, crate::extract_strings(&data, &opts));
        assert_eq!(one.urls, extract_urls(&data));
        let iocs = extract_iocs(
            &data,
            &IocOptions {
                min_len: opts.min_len,
                max_scan: opts.max_scan,
            },
        );
        assert_eq!(one.iocs, iocs);
    }
}
