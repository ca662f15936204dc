//! Authenticode signers against OpenSSL: a PE built with mingw-w64 is signed with
//! `osslsigncode` by a throw-away two-level PKI made with `openssl`, and every
//! certificate nestbox reads from the security directory must carry the fingerprints,
//! serial, validity and names `openssl x509` prints for the same certificate. Then the
//! signed file is cut and corrupted every way: a report with an error, never a panic.
//!
//! A missing tool is a failure, not a skip (scripts/bootstrap.sh installs them).

use std::path::Path;
use std::process::Command;

use nestbox_analyzers::pe;
use serde_json::Value;

fn run(dir: &Path, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("`{tool}` could not be run ({e}); scripts/bootstrap.sh installs it")
        });
    assert!(
        out.status.success(),
        "`{tool} {args:?}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PKI: &str = "[req]
distinguished_name=dn
prompt=no
[dn]
C=DE
O=Nestbox Test
CN=Nestbox Test Root CA
[ca_ext]
basicConstraints=critical,CA:true
keyUsage=keyCertSign,cRLSign
subjectKeyIdentifier=hash
[leaf_ext]
basicConstraints=CA:false
keyUsage=digitalSignature
extendedKeyUsage=codeSigning
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
crlDistributionPoints=URI:http://crl.nestbox.invalid/root.crl
authorityInfoAccess=caIssuers;URI:http://ca.nestbox.invalid/root.crt,OCSP;URI:http://ocsp.nestbox.invalid
subjectAltName=email:sign@nestbox.invalid,URI:https://nestbox.invalid/,IP:192.0.2.7
certificatePolicies=@pol
[pol]
policyIdentifier=1.3.6.1.4.1.99999.1
CPS.1=https://cps.nestbox.invalid/
";

/// Builds and signs the PE; returns the signed bytes.
fn signed_pe(dir: &Path) -> Vec<u8> {
    std::fs::write(dir.join("a.c"), "int main(void) { return 0; }\n").unwrap();
    std::fs::write(dir.join("pki.cnf"), PKI).unwrap();
    run(
        dir,
        "x86_64-w64-mingw32-gcc",
        &["-O1", "-s", "-o", "a.exe", "a.c"],
    );
    // A serial with the top bit set in its first octet (DER adds a 0x00) and one that
    // does not fit 64 bits, to exercise the decimal conversion.
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-config",
            "pki.cnf",
            "-extensions",
            "ca_ext",
            "-set_serial",
            "0x7a11b2c3d4e5f60718293a4b5c6d7e8f",
        ],
    );
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/C=DE/ST=Berlin/L=Berlin/O=Nestbox Signing GmbH/OU=Build/CN=Nestbox Code Signer/emailAddress=sign@nestbox.invalid",
        ],
    );
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0xf1e2d3c4b5a69788",
            "-days",
            "400",
            "-extfile",
            "pki.cnf",
            "-extensions",
            "leaf_ext",
            "-out",
            "leaf.pem",
        ],
    );
    let chain = [
        std::fs::read(dir.join("leaf.pem")).unwrap(),
        std::fs::read(dir.join("ca.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    run(
        dir,
        "osslsigncode",
        &[
            "sign",
            "-certs",
            "chain.pem",
            "-key",
            "leaf.key",
            "-n",
            "nestbox test",
            "-in",
            "a.exe",
            "-out",
            "signed.exe",
        ],
    );
    std::fs::read(dir.join("signed.exe")).unwrap()
}

/// `openssl x509` values for one certificate, keyed like nestbox's output.
fn openssl_view(dir: &Path, pem: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (alg, key) in [
        ("-md5", "md5_fingerprint"),
        ("-sha1", "sha1_fingerprint"),
        ("-sha256", "sha256_fingerprint"),
    ] {
        let line = run(
            dir,
            "openssl",
            &["x509", "-in", pem, "-noout", "-fingerprint", alg],
        );
        let hex = line.trim().split_once('=').unwrap().1.replace(':', "");
        out.push((key.into(), hex.to_lowercase()));
    }
    let serial = run(dir, "openssl", &["x509", "-in", pem, "-noout", "-serial"]);
    let serial = u128::from_str_radix(serial.trim().trim_start_matches("serial="), 16).unwrap();
    out.push(("serial_number".into(), serial.to_string()));
    for (flag, key) in [("-startdate", "not_before"), ("-enddate", "not_after")] {
        let line = run(
            dir,
            "openssl",
            &["x509", "-in", pem, "-noout", flag, "-dateopt", "iso_8601"],
        );
        // "notBefore=2026-11-23 11:24:38Z" -> "2026-11-23T11:24:38"
        let v = line.trim().split_once('=').unwrap().1.trim_end_matches('Z');
        out.push((key.into(), v.replacen(' ', "T", 1)));
    }
    for (flag, prefix) in [("-subject", "subject"), ("-issuer", "issuer")] {
        // One attribute per line, long names (`commonName = ...`).
        let text = run(
            dir,
            "openssl",
            &[
                "x509",
                "-in",
                pem,
                "-noout",
                flag,
                "-nameopt",
                "sep_multiline,lname,utf8",
            ],
        );
        for line in text.lines().skip(1) {
            let (name, value) = line.trim().split_once('=').unwrap();
            out.push((format!("{prefix}_{name}"), value.to_owned()));
        }
    }
    out
}

#[test]
fn signers_match_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let signed = signed_pe(dir.path());
    let info = pe::analyze(&signed).expect("a PE");
    assert!(info.authenticode.is_some());
    assert_eq!(info.digital_signers_error, None);
    assert_eq!(info.digital_signers.len(), 2, "{:#?}", info.digital_signers);
    for pem in ["leaf.pem", "ca.pem"] {
        let want = openssl_view(dir.path(), pem);
        let sha256 = &want
            .iter()
            .find(|(k, _)| k == "sha256_fingerprint")
            .unwrap()
            .1;
        let got = info
            .digital_signers
            .iter()
            .find(|c| c["sha256_fingerprint"] == sha256.as_str())
            .unwrap_or_else(|| panic!("{pem} ({sha256}) not among the signers"));
        for (k, v) in &want {
            assert_eq!(got[k].as_str(), Some(v.as_str()), "{pem}: {k}");
        }
    }
    let leaf = info
        .digital_signers
        .iter()
        .find(|c| c["subject_commonName"] == "Nestbox Code Signer")
        .unwrap();
    // openssl spells the long names like cryptography does, checked above; the
    // extension values are checked against the configuration that produced them, and
    // the key identifiers against each other (the leaf's AKI is the CA's SKI).
    let ca = info
        .digital_signers
        .iter()
        .find(|c| c["subject_commonName"] == "Nestbox Test Root CA")
        .unwrap();
    assert_eq!(
        leaf["extensions_authorityKeyIdentifier"], ca["extensions_subjectKeyIdentifier"],
        "{leaf:#?}"
    );
    for (k, v) in [
        (
            "extensions_cRLDistributionPoints_0",
            "http://crl.nestbox.invalid/root.crl",
        ),
        (
            "extensions_authorityInfoAccess_caIssuers",
            "http://ca.nestbox.invalid/root.crt",
        ),
        (
            "extensions_authorityInfoAccess_OCSP",
            "http://ocsp.nestbox.invalid",
        ),
        ("extensions_subjectAltName_0", "sign@nestbox.invalid"),
        ("extensions_subjectAltName_1", "https://nestbox.invalid/"),
        ("extensions_subjectAltName_2", "192.0.2.7"),
        (
            "extensions_certificatePolicies_0",
            "https://cps.nestbox.invalid/",
        ),
    ] {
        assert_eq!(leaf[k], v, "{k} in {leaf:#?}");
    }
    // Cuckoo's static section lists the same certificates.
    let st = info.cuckoo_static();
    assert_eq!(st["signature"], Value::from(info.digital_signers.clone()));
}

#[test]
fn damaged_signatures_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let signed = signed_pe(dir.path());
    let info = pe::analyze(&signed).unwrap();
    let span = info.authenticode.unwrap();
    let off = usize::from_str_radix(span.offset.trim_start_matches("0x"), 16).unwrap();
    // Every truncation inside the signature: whatever is read, a cut is reported.
    for cut in (off..signed.len()).step_by(7) {
        let info = pe::analyze(&signed[..cut]).unwrap();
        assert!(
            info.digital_signers_error.is_some(),
            "cut at {cut}: no error, {} signers",
            info.digital_signers.len()
        );
    }
    // Every single-byte corruption of the first 600 bytes of the PKCS#7 (lengths, tags,
    // OIDs, the first certificate's header and names) ends in a report.
    for i in off..(off + 600).min(signed.len()) {
        for v in [0x00, 0x80, 0xff] {
            let mut bad = signed.clone();
            bad[i] = v;
            let info = pe::analyze(&bad).unwrap();
            assert!(info.digital_signers.len() <= 2);
        }
    }
    // A WIN_CERTIFICATE length of zero and one pointing far past the end.
    for len in [0u32, 7, u32::MAX] {
        let mut bad = signed.clone();
        bad[off..off + 4].copy_from_slice(&len.to_le_bytes());
        let info = pe::analyze(&bad).unwrap();
        assert!(info.digital_signers.len() <= 2);
    }
}
