//! Golden reports: `nestbox analyze` over the kept samples in `tests/golden/` (documents,
//! executables, archives, scripts as we built them; EICAR zipped with password `infected`
//! and named by the zip's sha256), each compared with `tests/golden/expected/<name>.json`.
//! A change in any analyzer's output shows up here as a path-by-path difference; when the
//! change is intended, `NESTBOX_REGEN_GOLDEN=1 cargo test -p nestbox-server --test it
//! golden` rewrites the expected files (review the diff before committing it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{nestbox_bin, run_ok};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Drops what changes from run to run or release to release (times, the version, the
/// path the file was given as), so the rest must match exactly.
fn normalise(mut report: Value) -> Value {
    if let Some(info) = report.get_mut("info").and_then(Value::as_object_mut) {
        for k in ["added", "started", "ended", "duration", "version"] {
            info.remove(k);
        }
    }
    if let Some(file) = report
        .pointer_mut("/target/file")
        .and_then(Value::as_object_mut)
    {
        file.remove("path");
    }
    report
}

/// Up to `limit` JSON paths where `want` and `got` differ.
fn differences(path: &str, want: &Value, got: &Value, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || want == got {
        return;
    }
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(&format!("{path}.{k}"), v, w, out, limit),
                    None => out.push(format!("{path}.{k}: missing now")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{k}: new"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), v, w, out, limit);
            }
        }
        _ => {
            let short = |v: &Value| v.to_string().chars().take(160).collect::<String>();
            out.push(format!(
                "{path}: expected {} got {}",
                short(want),
                short(got)
            ));
        }
    }
}

#[test]
fn static_reports_match_the_golden_files() {
    let dir = golden_dir();
    let mut samples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    samples.sort();
    assert!(samples.len() >= 15, "samples missing in {}", dir.display());
    // The starter rules only, whatever nestbox.toml or data dir the machine has.
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("nestbox.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = \"{}\"\n", work.path().join("data").display()),
    )
    .unwrap();
    let out = run_ok(
        Command::new(nestbox_bin())
            .args(["analyze", "--format", "jsonl", "-j", "2", "--config"])
            .arg(&cfg)
            .args(&samples),
    );
    let reports: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| normalise(serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(reports.len(), samples.len());

    let expected = dir.join("expected");
    let regen = std::env::var_os("NESTBOX_REGEN_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (sample, got) in samples.iter().zip(&reports) {
        let name = sample.file_name().unwrap().to_string_lossy();
        let file = expected.join(format!("{name}.json"));
        if regen {
            std::fs::create_dir_all(&expected).unwrap();
            let mut text = serde_json::to_string_pretty(got).unwrap();
            text.push('\n');
            std::fs::write(&file, text).unwrap();
            continue;
        }
        let want: Value = match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice(&b).unwrap(),
            Err(_) => {
                failures.push(format!("{name}: no {}", file.display()));
                continue;
            }
        };
        let mut diffs = Vec::new();
        differences("", &want, got, &mut diffs, 12);
        if !diffs.is_empty() {
            failures.push(format!("{name}:\n  {}", diffs.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "reports differ from tests/golden/expected (NESTBOX_REGEN_GOLDEN=1 rewrites them \
         when the change is intended):\n{}",
        failures.join("\n")
    );
    // The goldens themselves say what they are about: spot checks that would be wrong
    // in a regenerated file if an analyzer broke while regenerating.
    let by_name = |n: &str| {
        &reports[samples
            .iter()
            .position(|p| p.file_name().unwrap().to_string_lossy().starts_with(n))
            .unwrap()]
    };
    let member = &by_name("361908a8")["static"]["archive"]["members"][0];
    assert_eq!(member["md5"], "44d88612fea8a8f36de82e1278abb02f", "EICAR");
    assert_eq!(member["password"], "infected");
    assert_eq!(
        by_name("vba.ppt")["static"]["office"]["Macro"]["Analysis"]["AutoExec"][0][0],
        "AutoOpen"
    );
    assert!(by_name("pe_authenticode_signed")["static"]["pe_imphash"].is_string());
}
