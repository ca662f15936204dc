//! Signatures over bytes: the sample's and the dropped files' content (capped reads).

use super::{Check, Content, Evidence, Marks, Meta, base};

pub(crate) static SIGNATURES: &[(Meta, Check)] = &[
    (
        Meta {
            name: "cryptominer_strings",
            description: "Contains cryptocurrency miner strings (stratum URLs, miner options)",
            severity: 3,
            categories: &["cryptomining"],
            ttp: &[("T1496", "Resource Hijacking")],
            families: &[],
        },
        miner_strings,
    ),
    (
        Meta {
            name: "xmrig_miner",
            description: "Contains the XMRig miner or its configuration",
            severity: 3,
            categories: &["cryptomining"],
            ttp: &[("T1496", "Resource Hijacking")],
            families: &["XMRig"],
        },
        xmrig,
    ),
    (
        Meta {
            name: "packed_upx",
            description: "An ELF executable is packed with UPX",
            severity: 2,
            categories: &["packer", "evasion"],
            ttp: &[(
                "T1027.002",
                "Obfuscated Files or Information: Software Packing",
            )],
            families: &[],
        },
        upx,
    ),
    (
        Meta {
            name: "drops_elf",
            description: "Writes an ELF executable to disk",
            severity: 2,
            categories: &["dropper"],
            ttp: &[("T1105", "Ingress Tool Transfer")],
            families: &[],
        },
        drops_elf,
    ),
    (
        Meta {
            name: "dropped_high_entropy_files",
            description: "Writes several high-entropy files that are not a known compressed format (encryption)",
            severity: 3,
            categories: &["ransomware"],
            ttp: &[("T1486", "Data Encrypted for Impact")],
            families: &[],
        },
        high_entropy,
    ),
    (
        Meta {
            name: "ransomware_note",
            description: "Drops a ransom note",
            severity: 3,
            categories: &["ransomware"],
            ttp: &[("T1486", "Data Encrypted for Impact")],
            families: &[],
        },
        ransom_note,
    ),
];

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

fn find_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    n.len() <= hay.len() && hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn marks_where(ev: &Evidence<'_>, pred: impl Fn(&Content) -> Option<String>) -> Marks {
    ev.contents
        .iter()
        .filter_map(|c| pred(c).map(|why| ("file".to_owned(), format!("{}: {why}", c.path))))
        .collect()
}

const MINER: &[&str] = &[
    "stratum+tcp://",
    "stratum+ssl://",
    "mining.subscribe",
    "mining.authorize",
    "--donate-level",
    "cryptonight",
    "randomx",
];

fn miner_strings(ev: &Evidence<'_>) -> Marks {
    marks_where(ev, |c| {
        let hits: Vec<&str> = MINER
            .iter()
            .copied()
            .filter(|s| find_ci(&c.data, s))
            .collect();
        // One generic word is not enough (a crypto library mentions RandomX).
        (hits.len() >= 2 || hits.iter().any(|h| h.starts_with("stratum"))).then(|| hits.join(", "))
    })
}

fn xmrig(ev: &Evidence<'_>) -> Marks {
    marks_where(ev, |c| {
        find_ci(&c.data, "xmrig").then(|| "xmrig".to_owned())
    })
}

fn is_elf(c: &Content) -> bool {
    c.data.starts_with(b"\x7fELF")
}

fn upx(ev: &Evidence<'_>) -> Marks {
    marks_where(ev, |c| {
        let head = &c.data[..c.data.len().min(4096)];
        (is_elf(c)
            && (find(head, b"UPX!") || find(&c.data, b"$Info: This file is packed with the UPX")))
        .then(|| "UPX header".to_owned())
    })
}

fn drops_elf(ev: &Evidence<'_>) -> Marks {
    marks_where(ev, |c| (!c.sample && is_elf(c)).then(|| "ELF".to_owned()))
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for b in data {
        counts[usize::from(*b)] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Formats that are high-entropy by nature.
fn compressed(d: &[u8]) -> bool {
    [
        &b"\x1f\x8b"[..],
        b"PK\x03\x04",
        b"\xfd7zXZ",
        b"\x28\xb5\x2f\xfd",
        b"BZh",
        b"\x89PNG",
        b"\xff\xd8\xff",
        b"7z\xbc\xaf",
        b"Rar!",
        b"%PDF",
        b"GIF8",
        b"OggS",
    ]
    .iter()
    .any(|m| d.starts_with(m))
}

fn high_entropy(ev: &Evidence<'_>) -> Marks {
    let m = marks_where(ev, |c| {
        let e = entropy(&c.data);
        (!c.sample && c.data.len() >= 1024 && !compressed(&c.data) && e > 7.5)
            .then(|| format!("entropy {e:.2}"))
    });
    if m.len() >= 3 { m } else { Marks::new() }
}

fn ransom_note(ev: &Evidence<'_>) -> Marks {
    const NAMES: &[&str] = &[
        "decrypt",
        "ransom",
        "how_to_",
        "restore_files",
        "recover",
        "readme!",
    ];
    marks_where(ev, |c| {
        if c.sample {
            return None;
        }
        let name = base(&c.path).to_ascii_lowercase();
        let named = NAMES.iter().any(|n| name.contains(n));
        let text = c.data.len() < 64 << 10;
        let says = text
            && find_ci(&c.data, "encrypted")
            && (find_ci(&c.data, "bitcoin")
                || find_ci(&c.data, "decrypt")
                || find_ci(&c.data, "monero"));
        (says || (named && text && find_ci(&c.data, "files"))).then(|| "ransom note".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::entropy;
    use crate::behavior::Attempts;
    use crate::signatures::Content;
    use crate::signatures::tests::fired;
    use nestbox_types::report::{Behavior, Network};

    fn run(files: Vec<(&str, Vec<u8>, bool)>) -> Vec<String> {
        let c = files
            .into_iter()
            .map(|(p, d, s)| Content {
                path: p.into(),
                data: d,
                sample: s,
            })
            .collect();
        fired(
            &Behavior::default(),
            &Network::default(),
            &Attempts::default(),
            c,
        )
    }

    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn content_signatures_fire_and_stay_quiet() {
        let f = run(vec![(
            "/tmp/c.json",
            br#"{"url": "stratum+tcp://pool.x:3333", "algo": "rx/0"}"#.to_vec(),
            false,
        )]);
        assert!(f.contains(&"cryptominer_strings".to_owned()), "{f:?}");
        let f = run(vec![(
            "/tmp/c.txt",
            b"we benchmark RandomX hashes".to_vec(),
            false,
        )]);
        assert!(!f.contains(&"cryptominer_strings".to_owned()), "{f:?}");
        let f = run(vec![("/tmp/x", b"XMRig 6.20".to_vec(), true)]);
        assert!(f.contains(&"xmrig_miner".to_owned()));

        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(300, 0);
        let mut packed = elf.clone();
        packed.extend_from_slice(b"UPX!");
        assert!(run(vec![("/tmp/p", packed, true)]).contains(&"packed_upx".to_owned()));
        let f = run(vec![("/tmp/p", elf.clone(), true)]);
        assert!(!f.contains(&"packed_upx".to_owned()) && !f.contains(&"drops_elf".to_owned()));
        assert!(run(vec![("/tmp/d", elf, false)]).contains(&"drops_elf".to_owned()));

        let enc: Vec<(&str, Vec<u8>, bool)> = (0..3)
            .map(|i| ("/home/john/doc.locked", noise(i + 1, 8192), false))
            .collect();
        assert!(run(enc).contains(&"dropped_high_entropy_files".to_owned()));
        let gz: Vec<(&str, Vec<u8>, bool)> = (0..3)
            .map(|i| {
                let mut d = b"\x1f\x8b".to_vec();
                d.extend(noise(i + 1, 8192));
                ("/tmp/a.gz", d, false)
            })
            .collect();
        assert!(!run(gz).contains(&"dropped_high_entropy_files".to_owned()));

        let note = b"Your files are encrypted. Send 0.1 bitcoin to decrypt.".to_vec();
        assert!(
            run(vec![("/home/john/README.txt", note, false)])
                .contains(&"ransomware_note".to_owned())
        );
        let readme = b"This project builds with make.".to_vec();
        assert!(
            !run(vec![("/home/john/README.txt", readme, false)])
                .contains(&"ransomware_note".to_owned())
        );
        assert!(entropy(&noise(9, 65536)) > 7.9 && entropy(&[0u8; 100]) == 0.0);
    }
}
