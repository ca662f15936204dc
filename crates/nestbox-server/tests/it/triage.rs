//! Static triage through the whole server equals the reference tools.

use crate::harness::{Server, tool};

fn xorshift_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn report_hashes_and_types_equal_reference_tools() {
    let s = Server::start("[analysis]\nworkers = 2\n");
    let dir = tempfile::tempdir().unwrap();
    let elf = std::fs::read("/bin/ls").expect("/bin/ls");
    let text = "The quick brown fox jumps over the lazy dog.\n".repeat(200);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ls", elf),
        ("text.txt", text.into_bytes()),
        ("empty", Vec::new()),
        (
            "b62",
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec(),
        ),
        ("random.bin", xorshift_bytes(1 << 20)),
        ("zeros", vec![0u8; 10_000]),
    ];
    let mut ids = Vec::new();
    for (name, content) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        ids.push((s.submit_file(name, content), path));
    }
    for (id, path) in ids {
        s.wait_status(id, "reported");
        let rep = s.get(&format!("/tasks/report/{id}")).json();
        let f = &rep["target"]["file"];
        let p = path.to_str().unwrap();
        let first = |out: String| out.split_whitespace().next().unwrap_or("").to_owned();
        assert_eq!(f["md5"], first(tool("md5sum", &[p])), "{p}");
        assert_eq!(f["sha1"], first(tool("sha1sum", &[p])), "{p}");
        assert_eq!(f["sha256"], first(tool("sha256sum", &[p])), "{p}");
        assert_eq!(f["sha512"], first(tool("sha512sum", &[p])), "{p}");
        let ssdeep = tool("ssdeep", &["-s", "-b", p]);
        let want = ssdeep.lines().nth(1).unwrap().split(',').next().unwrap();
        assert_eq!(f["ssdeep"], want, "{p}");
        assert_eq!(f["type"], tool("file", &["-b", p]).trim_end(), "{p}");
        assert_eq!(
            f["mime"],
            tool("file", &["-b", "--mime-type", p]).trim_end(),
            "{p}"
        );
        assert_eq!(f["size"], std::fs::metadata(&path).unwrap().len());
        let crc = format!("{:08X}", crc32(&std::fs::read(&path).unwrap()));
        assert_eq!(f["crc32"], crc, "{p}");
        // The sample row (files/view) agrees with the report.
        let sample = s
            .get(&format!(
                "/files/view/sha256/{}",
                f["sha256"].as_str().unwrap()
            ))
            .json();
        assert_eq!(sample["sample"]["file_type"], f["type"]);
        assert_eq!(sample["sample"]["ssdeep"], f["ssdeep"]);
    }
}

/// Plain bitwise CRC-32 (IEEE), independent of the implementation under test.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
