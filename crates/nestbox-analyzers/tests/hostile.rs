//! Hostile inputs: every analyzer must return (no panic), in bounded time, with bounded
//! output, whatever the bytes.

use std::time::{Duration, Instant};

use nestbox_analyzers::{
    MultiHasher, StringsOptions, digest_bytes, extract_strings, extract_urls, file_type_bytes,
};

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

/// Runs every analyzer over `data` and checks the output bounds.
fn analyze_all(name: &str, data: &[u8]) {
    let started = Instant::now();
    let opts = StringsOptions::default();

    let strings = extract_strings(data, &opts);
    assert!(strings.len() <= opts.max_count, "{name}: string count");
    assert!(
        strings
            .iter()
            .all(|s| s.len() <= opts.max_len && s.is_ascii()),
        "{name}: string length"
    );

    let urls = extract_urls(data);
    assert!(urls.len() <= 1000, "{name}: URL count");
    assert!(urls.iter().all(|u| u.len() <= 4096), "{name}: URL length");

    let digest = digest_bytes(data);
    assert_eq!(digest.size, data.len() as u64);
    let mut streamed = MultiHasher::new();
    for chunk in data.chunks(65_537) {
        streamed.update(chunk);
    }
    assert_eq!(streamed.finish(), digest, "{name}: streaming");

    let file_type = file_type_bytes(data);
    assert!(!file_type.description.is_empty() && !file_type.mime.is_empty());

    // Generous: only a super-linear blow-up (or a hang) can get near it, even unoptimised.
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{name}: took {:?}",
        started.elapsed()
    );
}

#[test]
fn random_garbage() {
    for (seed, len) in [(1, 0), (2, 1), (3, 3), (4, 4096), (5, 4 << 20)] {
        analyze_all(&format!("random {len}"), &xorshift_bytes(seed, len));
    }
}

#[test]
fn huge_printable_run() {
    let data = vec![b'A'; 20 << 20];
    analyze_all("20 MiB of 'A'", &data);
    // One run, cut at max_scan and truncated to max_len.
    let strings = extract_strings(&data, &StringsOptions::default());
    assert_eq!(strings, vec!["A".repeat(1024)]);
}

#[test]
fn huge_url() {
    let mut data = b"http://a.example/".to_vec();
    data.resize(20 << 20, b'a');
    analyze_all("20 MiB URL", &data);
    assert_eq!(
        extract_urls(&data),
        vec![String::from_utf8_lossy(&data[..4096])]
    );
}

#[test]
fn all_ff_bytes() {
    let data = vec![0xff; 8 << 20];
    analyze_all("8 MiB of 0xFF", &data);
    assert!(extract_strings(&data, &StringsOptions::default()).is_empty());
    assert!(extract_urls(&data).is_empty());
}

#[test]
fn huge_utf16_run() {
    let data: Vec<u8> = b"a\0".repeat(10 << 20);
    analyze_all("20 MiB of UTF-16 'a'", &data);
    let strings = extract_strings(&data, &StringsOptions::default());
    assert_eq!(strings, vec!["a".repeat(1024)]);
}

#[test]
fn near_miss_utf16_runs_with_a_large_minimum_stay_linear() {
    // 999 valid pairs then a break, repeated: a naive scanner re-counts ~1000 pairs at
    // every offset (billions of steps here); this must stay linear.
    let mut data = Vec::new();
    while data.len() < 16 << 20 {
        data.extend_from_slice(&b"x\0".repeat(999));
        data.push(1);
    }
    let opts = StringsOptions {
        min_len: 1000,
        ..StringsOptions::default()
    };
    let started = Instant::now();
    assert!(extract_strings(&data, &opts).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn separator_and_scheme_storms() {
    analyze_all("://", &b"://".repeat(1 << 20));
    analyze_all("http://", &b"http://".repeat(1 << 20));
    analyze_all("http://a", &b"http://a".repeat(1 << 20));
    analyze_all("[ipv6", &b"http://[::::".repeat(1 << 20));
    analyze_all(
        "parens",
        &[b"http://a/".as_slice(), &b")".repeat(1 << 20)].concat(),
    );
    analyze_all(
        "userinfo",
        &[b"http://".as_slice(), &b"u:".repeat(1 << 20)].concat(),
    );
    // Every 8th byte starting a distinct URL: the 1000-URL cap ends the scan.
    let many: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("http://h{i}.example ").into_bytes())
        .collect();
    assert_eq!(extract_urls(&many).len(), 1000);
}

#[test]
fn truncated_and_malformed_headers() {
    // libmagic parses these formats in depth; a header that lies must not hurt it.
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.extend_from_slice(&[0xff; 120]);
    let mut pe = b"MZ".to_vec();
    pe.resize(0x3c, 0);
    pe.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(&[0xff; 60]);
    let ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".repeat(64);
    for (name, data) in [("elf", elf), ("pe", pe), ("zip", zip), ("ole", ole)] {
        analyze_all(name, &data);
    }
}
