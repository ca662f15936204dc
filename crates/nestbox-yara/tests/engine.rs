//! The engine against real rule files: starter set, broken files, reloads, match shape.

use std::time::Duration;

use nestbox_yara::{RuleSources, YaraEngine, compile};

fn eicar() -> Vec<u8> {
    // Assembled at run time so this source file is not itself a test-virus file.
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    v
}

fn starter_only() -> RuleSources {
    RuleSources {
        starter: true,
        dirs: Vec::new(),
    }
}

#[test]
fn starter_rules_all_compile() {
    let c = compile(&starter_only());
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.files.len(), nestbox_yara::starter::STARTER_RULES.len());
    assert!(c.rule_count >= 30, "{} rules", c.rule_count);
}

#[test]
fn eicar_matches_in_cuckoo_shape() {
    let engine = YaraEngine::load(starter_only(), Duration::from_secs(10));
    let data = eicar();
    let m = engine.scan_bytes(&data).unwrap();
    assert_eq!(m.len(), 1, "{m:?}");
    let m = &m[0];
    assert_eq!(m.name, "EICAR_Test_File");
    assert_eq!(m.tags, vec!["test"]);
    assert_eq!(m.meta["description"], "EICAR anti-virus test file");
    assert_eq!(m.meta["severity"], 1);
    // Cuckoo: base64 of the matched bytes, and [[offset, index into strings]] per id.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    assert_eq!(m.strings, vec![b64]);
    assert_eq!(m.offsets["eicar"], serde_json::json!([[0, 0]]));
    // Trailing garbage beyond the standard's allowance: no match.
    let mut long = data.clone();
    long.extend(std::iter::repeat_n(b'A', 200));
    assert!(engine.scan_bytes(&long).unwrap().is_empty());
}

#[test]
fn description_defaults_like_cuckoo() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plain.yar"),
        "rule plain { strings: $a = \"abc\" $b = \"xyz\" condition: all of them }",
    )
    .unwrap();
    let engine = YaraEngine::load(
        RuleSources {
            starter: false,
            dirs: vec![dir.path().to_owned()],
        },
        Duration::from_secs(10),
    );
    let m = engine.scan_bytes(b"xyz..abc..abc").unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].meta["description"], "(no description)");
    // strings sorted and distinct: base64("abc") = YWJj < base64("xyz") = eHl6.
    assert_eq!(m[0].strings, vec!["YWJj", "eHl6"]);
    assert_eq!(m[0].offsets["a"], serde_json::json!([[5, 0], [10, 0]]));
    assert_eq!(m[0].offsets["b"], serde_json::json!([[0, 1]]));
}

#[test]
fn a_bad_file_is_reported_by_line_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yar"),
        "rule good_one { strings: $a = \"needle\" condition: $a }\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    // The error is on line 4; the valid rule before it must not load either.
    std::fs::write(
        dir.path().join("sub/bad.yara"),
        "rule fine_but_in_bad_file { condition: true }\n\nrule broken {\n  condition: $nope\n}\n",
    )
    .unwrap();
    // Same rule name as in good.yar: namespaces per file keep both.
    std::fs::write(
        dir.path().join("dup.yar"),
        "rule good_one { strings: $a = \"needle\" condition: $a }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule file").unwrap();
    let c = compile(&RuleSources {
        starter: false,
        dirs: vec![dir.path().to_owned()],
    });
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    let e = &c.errors[0];
    assert!(e.file.ends_with("sub/bad.yara"), "{e}");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().contains("bad.yara:4:"), "{e}");
    assert_eq!(c.rule_count, 2);
    let engine = YaraEngine::load(
        RuleSources {
            starter: false,
            dirs: vec![dir.path().to_owned()],
        },
        Duration::from_secs(10),
    );
    let m = engine.scan_bytes(b"a needle here").unwrap();
    assert_eq!(m.len(), 2);
    assert!(m.iter().all(|m| m.name == "good_one"));
}

#[test]
fn reload_picks_up_added_changed_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = YaraEngine::load(
        RuleSources {
            starter: false,
            dirs: vec![dir.path().join("rules")],
        },
        Duration::from_secs(10),
    );
    assert_eq!(engine.current().compiled.rule_count, 0);
    assert!(engine.reload_if_changed().is_none());
    // The directory appears later with a rule in it.
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let f = dir.path().join("rules/new.yar");
    std::fs::write(&f, "rule r1 { strings: $a = \"one\" condition: $a }").unwrap();
    let loaded = engine.reload_if_changed().expect("a change");
    assert_eq!(loaded.generation, 2);
    assert_eq!(engine.scan_bytes(b"one").unwrap()[0].name, "r1");
    // Changed content (and size): the new rule replaces the old.
    std::fs::write(
        &f,
        "rule r2_renamed { strings: $a = \"two\" condition: $a }",
    )
    .unwrap();
    assert!(engine.reload_if_changed().is_some());
    assert!(engine.scan_bytes(b"one").unwrap().is_empty());
    assert_eq!(engine.scan_bytes(b"two").unwrap()[0].name, "r2_renamed");
    // A broken edit keeps the server scanning with what still compiles (here: nothing
    // from that file), and says where.
    std::fs::write(&f, "rule oops {").unwrap();
    let loaded = engine.reload_if_changed().unwrap();
    assert_eq!(loaded.compiled.errors.len(), 1);
    assert_eq!(loaded.compiled.errors[0].line, 1);
    assert!(engine.scan_bytes(b"two").unwrap().is_empty());
    std::fs::remove_file(&f).unwrap();
    let loaded = engine.reload_if_changed().unwrap();
    assert!(loaded.compiled.errors.is_empty());
    // A forced reload always makes a new generation.
    let g = engine.current().generation;
    assert_eq!(engine.reload().generation, g + 1);
}

#[test]
fn shared_across_threads() {
    let engine = std::sync::Arc::new(YaraEngine::load(starter_only(), Duration::from_secs(10)));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = engine.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(e.scan_bytes(&eicar()).unwrap().len(), 1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn hostile_input_never_panics() {
    let engine = YaraEngine::load(starter_only(), Duration::from_secs(10));
    // Truncated PE headers, a PE with absurd section counts, random bytes, empty input.
    let mut pe = b"MZ".to_vec();
    pe.resize(0x40, 0);
    pe[0x3c] = 0x40;
    pe.extend_from_slice(b"PE\0\0\x4c\x01\xff\xff");
    let mut seed = 0x1234_5678u32;
    let random: Vec<u8> = (0..100_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as u8
        })
        .collect();
    for data in [&b""[..], &pe, &random, &vec![0u8; 1 << 20]] {
        engine.scan_bytes(data).unwrap();
    }
}
