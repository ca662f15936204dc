//! Unit tests on a hand-assembled PE (imports by name and by ordinal, a resource tree with
//! version information, an overlay) and on every truncation and corruption of it.

use super::*;

fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A version-information block: header, key, aligned value, aligned children.
fn vblock(key: &str, value: &[u8], value_len: u16, kind: u16, children: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 6];
    b.extend(utf16(key));
    b.extend([0, 0]);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    b.extend(value);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    b.extend(children);
    let len = b.len() as u16;
    put16(&mut b, 0, len);
    put16(&mut b, 2, value_len);
    put16(&mut b, 4, kind);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    b
}

fn version_resource() -> Vec<u8> {
    let s1 = {
        let mut v = utf16("ACME Corp");
        v.extend([0, 0]);
        vblock("CompanyName", &v, 10, 1, &[])
    };
    let s2 = {
        let mut v = utf16("1.2.3.4");
        v.extend([0, 0]);
        vblock("FileVersion", &v, 8, 1, &[])
    };
    let table = vblock("040904b0", &[], 0, 1, &[s1, s2].concat());
    let sfi = vblock("StringFileInfo", &[], 0, 1, &table);
    let var = vblock("Translation", &[0x09, 0x04, 0xb0, 0x04], 4, 0, &[]);
    let vfi = vblock("VarFileInfo", &[], 0, 1, &var);
    let mut fixed = vec![0u8; 52];
    put32(&mut fixed, 0, 0xFEEF04BD);
    vblock("VS_VERSION_INFO", &fixed, 52, 0, &[sfi, vfi].concat())
}

/// PE32, one RWX section at RVA 0x1000 / file 0x200 holding code, imports and resources,
/// then 16 bytes of overlay.
pub(crate) fn sample_pe() -> Vec<u8> {
    let mut f = vec![0u8; 0x200 + 0x600];
    f[0..2].copy_from_slice(b"MZ");
    put32(&mut f, 0x3c, 0x40);
    f[0x40..0x44].copy_from_slice(b"PE\0\0");
    let coff = 0x44;
    put16(&mut f, coff, 0x14c);
    put16(&mut f, coff + 2, 1);
    put32(&mut f, coff + 4, 0x5f5e1000); // 2020-09-13 12:26:40 UTC
    put16(&mut f, coff + 16, 0xe0);
    put16(&mut f, coff + 18, 0x0102);
    let opt = 0x58;
    put16(&mut f, opt, 0x10b);
    put32(&mut f, opt + 16, 0x1000); // entry point
    put32(&mut f, opt + 28, 0x400000); // image base
    put32(&mut f, opt + 32, 0x1000);
    put32(&mut f, opt + 36, 0x200);
    put16(&mut f, opt + 40, 6);
    put32(&mut f, opt + 56, 0x2000);
    put32(&mut f, opt + 60, 0x200);
    put16(&mut f, opt + 68, 3);
    put32(&mut f, opt + 92, 16);
    let dirs = opt + 96;
    put32(&mut f, dirs + 8, 0x1010); // import
    put32(&mut f, dirs + 12, 60);
    put32(&mut f, dirs + 16, 0x1200); // resource
    put32(&mut f, dirs + 20, 0x300);
    let sec = opt + 0xe0;
    f[sec..sec + 5].copy_from_slice(b".text");
    put32(&mut f, sec + 8, 0x600);
    put32(&mut f, sec + 12, 0x1000);
    put32(&mut f, sec + 16, 0x600);
    put32(&mut f, sec + 20, 0x200);
    put32(&mut f, sec + 36, 0xE000_0020);
    // RVA r lives at file offset r - 0x1000 + 0x200.
    let at = |rva: usize| rva - 0x1000 + 0x200;
    f[at(0x1000)] = 0xC3;
    // Import descriptors: kernel32 (by name), ws2_32 (by ordinal), terminator.
    let d1 = at(0x1010);
    put32(&mut f, d1, 0x1100); // OriginalFirstThunk
    put32(&mut f, d1 + 12, 0x1180); // Name
    put32(&mut f, d1 + 16, 0x1120); // FirstThunk
    let d2 = d1 + 20;
    put32(&mut f, d2, 0x1140);
    put32(&mut f, d2 + 12, 0x1190);
    put32(&mut f, d2 + 16, 0x1160);
    for base in [0x1100, 0x1120] {
        put32(&mut f, at(base), 0x11a0);
    }
    for base in [0x1140, 0x1160] {
        put32(&mut f, at(base), 0x8000_0073); // WSAStartup
        put32(&mut f, at(base) + 4, 0x8000_0017); // socket
        put32(&mut f, at(base) + 8, 0x8000_03e7); // 999: not in pefile's table
    }
    f[at(0x1180)..at(0x1180) + 12].copy_from_slice(b"KERNEL32.dll");
    f[at(0x1190)..at(0x1190) + 10].copy_from_slice(b"WS2_32.dll");
    f[at(0x11a2)..at(0x11a2) + 11].copy_from_slice(b"ExitProcess");
    // Resources: root → RT_VERSION(16) → id 1 → lang 0x409 → data entry.
    let r = at(0x1200);
    let dir = |f: &mut Vec<u8>, o: usize, id: u32, target: u32| {
        put16(f, o + 14, 1);
        put32(f, o + 16, id);
        put32(f, o + 20, target);
    };
    dir(&mut f, r, 16, 0x8000_0018);
    dir(&mut f, r + 0x18, 1, 0x8000_0030);
    dir(&mut f, r + 0x30, 0x409, 0x48);
    let ver = version_resource();
    put32(&mut f, r + 0x48, 0x1260);
    put32(&mut f, r + 0x4c, ver.len() as u32);
    f[at(0x1260)..at(0x1260) + ver.len()].copy_from_slice(&ver);
    f.extend_from_slice(b"OVERLAY-OVERLAY!");
    f
}

#[test]
fn hand_made_pe() {
    let pe = analyze(&sample_pe()).expect("a PE");
    assert_eq!(pe.error, None);
    assert_eq!(pe.machine.as_deref(), Some("X86"));
    assert_eq!(pe.pe_type.as_deref(), Some("PE32"));
    assert_eq!(pe.timestamp.as_deref(), Some("2020-09-13 12:26:40"));
    assert_eq!(pe.imagebase.as_deref(), Some("0x00400000"));
    assert_eq!(pe.entrypoint.as_deref(), Some("0x00401000"));
    assert_eq!(
        pe.ep_bytes.as_deref(),
        Some("c3000000000000000000000000000000")
    );
    assert_eq!(pe.sections.len(), 1);
    let s = &pe.sections[0];
    assert_eq!(s.name, ".text");
    assert_eq!(s.virtual_address, "0x00001000");
    assert_eq!(s.size_of_data, "0x00000600");
    assert_eq!(
        s.characteristics,
        "IMAGE_SCN_CNT_CODE|IMAGE_SCN_MEM_EXECUTE|IMAGE_SCN_MEM_READ|IMAGE_SCN_MEM_WRITE"
    );
    // md5("kernel32.exitprocess,ws2_32.wsastartup,ws2_32.socket,ws2_32.ord999"), the
    // string pefile builds: ordinals named through its ws2_32 table.
    assert_eq!(
        pe.imphash.as_deref(),
        Some("789ff2e572ee2587be666ff4457c1953")
    );
    // CAPE keeps named imports only, keyed by the name before the dot.
    assert_eq!(pe.imports["KERNEL32"]["imports"][0]["name"], "ExitProcess");
    assert_eq!(pe.imports["KERNEL32"]["imports"][0]["address"], "0x401120");
    // Ordinals pefile knows get their names (and then count as named for CAPE).
    assert_eq!(
        pe.imports["WS2_32"]["imports"],
        serde_json::json!([
            {"address": "0x401160", "name": "WSAStartup"},
            {"address": "0x401164", "name": "socket"}
        ])
    );
    assert_eq!(pe.imported_dll_count, Some(2));
    assert_eq!(pe.all_imports[1].imports.len(), 3);
    assert_eq!(
        pe.overlay,
        Some(Span {
            offset: "0x00000800".into(),
            size: "0x00000010".into()
        })
    );
    assert_eq!(pe.resources.len(), 1);
    let r = &pe.resources[0];
    assert_eq!(r.name, "RT_VERSION");
    assert_eq!(r.language.as_deref(), Some("LANG_ENGLISH"));
    assert_eq!(r.sublanguage, "SUBLANG_ENGLISH_US");
    assert_eq!(r.offset, "0x00001260");
    let vi: Vec<(&str, &str)> = pe
        .versioninfo
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(
        vi,
        [
            ("CompanyName", "ACME Corp"),
            ("FileVersion", "1.2.3.4"),
            ("Translation", "0x0409 0x04b0")
        ]
    );
    assert!(!pe.dotnet);
    assert_eq!(pe.authenticode, None);
    let cuckoo = pe.cuckoo_static();
    assert_eq!(cuckoo["pe_imphash"], "789ff2e572ee2587be666ff4457c1953");
    assert_eq!(cuckoo["pe_imports"][1]["imports"][0]["name"], "WSAStartup");
    assert_eq!(
        cuckoo["pe_imports"][1]["imports"][2]["name"],
        serde_json::Value::Null
    );
    assert_eq!(cuckoo["imported_dll_count"], 2);
    assert_eq!(cuckoo["pe_timestamp"], "2020-09-13 12:26:40");
}

#[test]
fn ordinal_names_follow_pefile() {
    assert_eq!(ordinal_name("ws2_32.dll", 115), "WSAStartup");
    assert_eq!(ordinal_name("wsock32.dll", 3), "closesocket");
    assert_eq!(ordinal_name("oleaut32.dll", 2), "SysAllocString");
    assert_eq!(ordinal_name("ws2_32.dll", 60000), "ord60000");
    assert_eq!(ordinal_name("kernel32.dll", 1), "ord1");
}

#[test]
fn not_a_pe() {
    assert!(analyze(b"").is_none());
    assert!(analyze(b"MZ").is_none());
    assert!(analyze(&[0u8; 4096]).is_none());
    let mut mz = vec![0u8; 0x80];
    mz[..2].copy_from_slice(b"MZ");
    assert!(analyze(&mz).is_none());
}

#[test]
fn every_truncation_and_byte_flip_is_total() {
    let good = sample_pe();
    for len in 0..good.len() {
        let _ = analyze(&good[..len]);
    }
    // Flip each header/directory byte to 0xff and to 0x7f: huge counts, wild RVAs.
    for i in 0..0x700usize.min(good.len()) {
        let values: &[u8] = if i < 0x200 {
            &[0xff, 0x7f, 0x00]
        } else {
            &[0xff]
        };
        for &v in values {
            let mut bad = good.clone();
            bad[i] = v;
            if let Some(pe) = analyze(&bad) {
                assert!(pe.sections.len() <= MAX_ITEMS);
                assert!(pe.resources.len() <= MAX_ITEMS);
                let _ = serde_json::to_string(&pe).unwrap();
                let _ = pe.cuckoo_static();
            }
        }
    }
}

#[test]
fn timestamps() {
    assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
    assert_eq!(utc_datetime(0xffff_ffff), "2106-02-07 06:28:15");
    assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00:00");
}

/// Writes the hand-made PE as a fuzz seed when `NESTBOX_WRITE_SEED` names a file
/// (`fuzz/corpus/executable/` holds the result).
#[test]
fn write_seed() {
    if let Ok(path) = std::env::var("NESTBOX_WRITE_SEED") {
        std::fs::write(path, sample_pe()).unwrap();
    }
}

#[test]
fn entropy_of_a_single_valued_section_is_plus_zero() {
    // pefile prints 0.00 for a section of one repeated byte, never -0.00.
    assert_eq!(format!("{:.2}", entropy(&[0u8; 512])), "0.00");
    assert_eq!(format!("{:.2}", entropy(b"")), "0.00");
    assert_eq!(format!("{:.2}", entropy(&[0u8, 1])), "1.00");
}
