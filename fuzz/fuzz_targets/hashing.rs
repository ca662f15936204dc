//! `MultiHasher` fed the input in arbitrary chunks must equal `digest_bytes` (differential:
//! the streaming result may not depend on how the input is split), and the digest's string
//! forms have their documented shapes.
//!
//! Input layout: byte 0 = number of cut points `k` (mod 16), then `k` little-endian `u16`
//! chunk lengths (taken modulo the remaining length + 1, so empty chunks happen), then the
//! data. Everything after the cut points is hashed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::{MultiHasher, digest_bytes};

fn is_hex(s: &str, len: usize, upper: bool) -> bool {
    s.len() == len
        && s.bytes().all(|b| {
            b.is_ascii_digit()
                || if upper {
                    (b'A'..=b'F').contains(&b)
                } else {
                    (b'a'..=b'f').contains(&b)
                }
        })
}

fuzz_target!(|input: &[u8]| {
    let Some((&k, rest)) = input.split_first() else {
        let d = digest_bytes(&[]);
        assert_eq!(d, MultiHasher::new().finish());
        assert_eq!(d.ssdeep, "3::");
        return;
    };
    let k = usize::from(k % 16);
    let (cuts, data) = rest.split_at((2 * k).min(rest.len()));
    let cuts: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();

    let whole = digest_bytes(data);

    let mut h = MultiHasher::new();
    let mut pos = 0;
    for c in cuts {
        let n = c % (data.len() - pos + 1);
        h.update(&data[pos..pos + n]);
        // A clone mid-stream must not disturb the original.
        let _ = h.clone().finish();
        pos += n;
    }
    h.update(&data[pos..]);
    h.update(&[]);
    let streamed = h.finish();
    assert_eq!(whole, streamed, "chunked digest differs from digest_bytes");

    assert_eq!(whole.size, data.len() as u64);
    assert!(is_hex(&whole.md5, 32, false), "md5 {}", whole.md5);
    assert!(is_hex(&whole.sha1, 40, false), "sha1 {}", whole.sha1);
    assert!(is_hex(&whole.sha256, 64, false), "sha256 {}", whole.sha256);
    assert!(is_hex(&whole.sha512, 128, false), "sha512 {}", whole.sha512);
    assert!(is_hex(&whole.crc32, 8, true), "crc32 {}", whole.crc32);
    // ssdeep: "blocksize:hash1:hash2".
    let parts: Vec<&str> = whole.ssdeep.split(':').collect();
    assert_eq!(parts.len(), 3, "ssdeep {}", whole.ssdeep);
    assert!(parts[0].parse::<u64>().is_ok(), "ssdeep {}", whole.ssdeep);
    match &whole.tlsh {
        // py-tlsh: "T1" + 70 uppercase hex digits; never for fewer than 50 bytes.
        Some(t) => {
            assert!(data.len() >= 50, "TLSH for {} bytes", data.len());
            assert!(t.starts_with("T1") && is_hex(&t[2..], 70, true), "tlsh {t}");
        }
        None => {}
    }
});
