//! Authenticode signers: the certificates of the PKCS#7 SignedData in a PE's security
//! directory, in CAPE's `digital_signers` shape (`parse_pe.py` `get_digital_signers`,
//! which loads them with `cryptography`'s `load_der_pkcs7_certificates`):
//! `md5_fingerprint`, `sha1_fingerprint`, `sha256_fingerprint` (hex over the certificate
//! DER), `serial_number` (decimal), `not_before`/`not_after` (naive ISO time, UTC),
//! `subject_<name>`/`issuer_<name>` per name attribute (cryptography's OID names, e.g.
//! `subject_commonName`), and the `extensions_*` keys CAPE derives from the key
//! identifiers, CRL distribution points, authority info access, subject alternative
//! names and certificate policy CPS URIs.
//!
//! Nothing is verified (neither the signature nor the chain): this says who claims to
//! have signed, as CAPE does. Broken DER gives the certificates read so far plus an error.

use base64::Engine as _;
use md5::Md5;
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::der::{self, INTEGER, OCTET_STRING, OID, SEQUENCE, SET, Tlv};

/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
const PKCS_SIGNED_DATA: u16 = 2;
/// At most this many WIN_CERTIFICATE entries and certificates are read.
const MAX_ENTRIES: usize = 16;
const MAX_CERTS: usize = 64;
/// Name attributes and extensions per certificate.
const MAX_ATTRS: usize = 256;

/// The signers of the security directory at file offset `offset` (`size` bytes), and
/// the first problem met, if any.
pub fn digital_signers(data: &[u8], offset: u32, size: u32) -> (Vec<Value>, Option<String>) {
    let start = offset as usize;
    let end = start.saturating_add(size as usize);
    let Some(dir) = data
        .get(start..end.min(data.len()))
        .filter(|d| !d.is_empty())
    else {
        return (
            vec![],
            Some(format!(
                "security directory at 0x{offset:x} is outside the file"
            )),
        );
    };
    let mut out = Vec::new();
    let mut error = (end > data.len()).then(|| {
        format!(
            "security directory truncated: {} of {size} bytes in the file",
            dir.len()
        )
    });
    // WIN_CERTIFICATE entries, each 8-byte aligned.
    let mut pos = 0usize;
    for _ in 0..MAX_ENTRIES {
        let Some(h) = dir.get(pos..pos + 8) else {
            break;
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_le_bytes([h[6], h[7]]);
        if len < 8 {
            error.get_or_insert_with(|| format!("WIN_CERTIFICATE with length {len}"));
            break;
        }
        let body = &dir[pos + 8..(pos + len).min(dir.len())];
        if kind == PKCS_SIGNED_DATA
            && let Err(e) = signed_data_certificates(body, &mut out)
        {
            error.get_or_insert(e);
        }
        pos = pos.saturating_add(len.next_multiple_of(8));
    }
    (out, error)
}

/// Appends the certificates of a DER ContentInfo holding SignedData.
fn signed_data_certificates(body: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
    let (ci, _) = der::expect(body, SEQUENCE)?;
    let (ctype, rest) = der::expect(ci.content, OID)?;
    let ctype = der::oid(ctype.content)?;
    if ctype != "1.2.840.113549.1.7.2" {
        return Err(format!("PKCS#7 content type {ctype} is not signedData"));
    }
    let (explicit, _) = der::expect(rest, 0xa0)?;
    let (sd, _) = der::expect(explicit.content, SEQUENCE)?;
    let (_version, rest) = der::expect(sd.content, INTEGER)?;
    let (_digests, rest) = der::expect(rest, SET)?;
    let (_encap, rest) = der::expect(rest, SEQUENCE)?;
    let Ok((certs, _)) = der::expect(rest, 0xa0) else {
        return Ok(()); // No certificates: a detached or stripped signature.
    };
    for cert in der::children(certs.content, MAX_CERTS)? {
        // Other choices ([1] extended, [2]/[3] attribute certificates) are skipped.
        if cert.tag == SEQUENCE && out.len() < MAX_CERTS {
            out.push(Value::Object(certificate(&cert)?));
        }
    }
    Ok(())
}

/// One certificate in CAPE's shape.
fn certificate(cert: &Tlv<'_>) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    m.insert(
        "md5_fingerprint".into(),
        json!(hex::encode(Md5::digest(cert.raw))),
    );
    m.insert(
        "sha1_fingerprint".into(),
        json!(hex::encode(Sha1::digest(cert.raw))),
    );
    m.insert(
        "sha256_fingerprint".into(),
        json!(hex::encode(Sha256::digest(cert.raw))),
    );
    let (tbs, _) = der::expect(cert.content, SEQUENCE)?;
    let mut rest = tbs.content;
    if rest.first() == Some(&0xa0) {
        rest = der::read(rest)?.1; // [0] version
    }
    let (serial, rest) = der::expect(rest, INTEGER)?;
    m.insert(
        "serial_number".into(),
        json!(der::integer_decimal(serial.content)),
    );
    let (_sig_alg, rest) = der::expect(rest, SEQUENCE)?;
    let (issuer, rest) = der::expect(rest, SEQUENCE)?;
    let (validity, rest) = der::expect(rest, SEQUENCE)?;
    let (subject, rest) = der::expect(rest, SEQUENCE)?;
    let (not_before, vrest) = der::read(validity.content)?;
    let (not_after, _) = der::read(vrest)?;
    m.insert("not_before".into(), json!(der::time(&not_before)?));
    m.insert("not_after".into(), json!(der::time(&not_after)?));
    name_attributes(subject.content, "subject", &mut m)?;
    name_attributes(issuer.content, "issuer", &mut m)?;
    let (_spki, mut rest) = der::expect(rest, SEQUENCE)?;
    while let Ok((tlv, r)) = der::read(rest) {
        if tlv.tag == 0xa3 {
            let (exts, _) = der::expect(tlv.content, SEQUENCE)?;
            for ext in der::children(exts.content, MAX_ATTRS)? {
                extension(ext.content, &mut m)?;
            }
        }
        rest = r;
    }
    Ok(m)
}

/// `<prefix>_<attribute name>` for every attribute of a Name (later ones win, as in
/// CAPE's dict).
fn name_attributes(name: &[u8], prefix: &str, m: &mut Map<String, Value>) -> Result<(), String> {
    for rdn in der::children(name, MAX_ATTRS)? {
        for atv in der::children(rdn.content, MAX_ATTRS)? {
            let (oid, rest) = der::expect(atv.content, OID)?;
            let (value, _) = der::read(rest)?;
            let oid = der::oid(oid.content)?;
            m.insert(
                format!("{prefix}_{}", attribute_name(&oid)),
                json!(der::string(&value)),
            );
        }
    }
    Ok(())
}

/// `cryptography`'s `_OID_NAMES` for name attributes; what it does not know it calls
/// "Unknown OID", and so does CAPE's key.
fn attribute_name(oid: &str) -> &'static str {
    match oid {
        "2.5.4.3" => "commonName",
        "2.5.4.4" => "surname",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "countryName",
        "2.5.4.7" => "localityName",
        "2.5.4.8" => "stateOrProvinceName",
        "2.5.4.9" => "streetAddress",
        "2.5.4.10" => "organizationName",
        "2.5.4.11" => "organizationalUnitName",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.16" => "postalAddress",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "givenName",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "x500UniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "0.9.2342.19200300.100.1.1" => "userID",
        "0.9.2342.19200300.100.1.25" => "domainComponent",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionLocalityName",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionStateOrProvinceName",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionCountryName",
        "1.2.643.3.131.1.1" => "INN",
        "1.2.643.100.1" => "OGRN",
        "1.2.643.100.3" => "SNILS",
        _ => "Unknown OID",
    }
}

/// The `extensions_*` keys of one Extension { extnID, critical?, extnValue }.
fn extension(ext: &[u8], m: &mut Map<String, Value>) -> Result<(), String> {
    let (oid, mut rest) = der::expect(ext, OID)?;
    let oid = der::oid(oid.content)?;
    if rest.first() == Some(&0x01) {
        rest = der::read(rest)?.1; // critical
    }
    let (value, _) = der::expect(rest, OCTET_STRING)?;
    let b64 = |b: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(b));
    match oid.as_str() {
        // authorityKeyIdentifier: SEQUENCE { [0] keyIdentifier, ... }
        "2.5.29.35" => {
            let (seq, _) = der::expect(value.content, SEQUENCE)?;
            if let Some(kid) = der::children(seq.content, 4)?
                .into_iter()
                .find(|t| t.tag == 0x80)
            {
                m.insert("extensions_authorityKeyIdentifier".into(), b64(kid.content));
            }
        }
        // subjectKeyIdentifier: OCTET STRING
        "2.5.29.14" => {
            let (kid, _) = der::expect(value.content, OCTET_STRING)?;
            m.insert("extensions_subjectKeyIdentifier".into(), b64(kid.content));
        }
        // cRLDistributionPoints: SEQUENCE OF { [0] { [0] fullName GeneralNames } }
        "2.5.29.31" => {
            let (seq, _) = der::expect(value.content, SEQUENCE)?;
            for (i, dp) in der::children(seq.content, MAX_ATTRS)?.iter().enumerate() {
                let Some(dpn) = der::children(dp.content, 4)?
                    .into_iter()
                    .find(|t| t.tag == 0xa0)
                else {
                    continue;
                };
                for full in der::children(dpn.content, 4)?
                    .iter()
                    .filter(|t| t.tag == 0xa0)
                {
                    for gn in der::children(full.content, MAX_ATTRS)? {
                        if let Some(v) = general_name(&gn) {
                            m.insert(format!("extensions_cRLDistributionPoints_{i}"), v);
                        }
                    }
                }
            }
        }
        // authorityInfoAccess: SEQUENCE OF { accessMethod, accessLocation }
        "1.3.6.1.5.5.7.1.1" => {
            let (seq, _) = der::expect(value.content, SEQUENCE)?;
            for ad in der::children(seq.content, MAX_ATTRS)? {
                let (method, rest) = der::expect(ad.content, OID)?;
                let (loc, _) = der::read(rest)?;
                let key = match der::oid(method.content)?.as_str() {
                    "1.3.6.1.5.5.7.48.2" => "extensions_authorityInfoAccess_caIssuers",
                    "1.3.6.1.5.5.7.48.1" => "extensions_authorityInfoAccess_OCSP",
                    _ => continue,
                };
                if let Some(v) = general_name(&loc) {
                    m.insert(key.into(), v);
                }
            }
        }
        // subjectAltName: GeneralNames
        "2.5.29.17" => {
            let (seq, _) = der::expect(value.content, SEQUENCE)?;
            for (i, gn) in der::children(seq.content, MAX_ATTRS)?.iter().enumerate() {
                if let Some(v) = general_name(gn) {
                    m.insert(format!("extensions_subjectAltName_{i}"), v);
                }
            }
        }
        // certificatePolicies: the CPS URI qualifiers (user notices are skipped, as CAPE does).
        "2.5.29.32" => {
            let (seq, _) = der::expect(value.content, SEQUENCE)?;
            for (i, pi) in der::children(seq.content, MAX_ATTRS)?.iter().enumerate() {
                let (_policy, rest) = der::expect(pi.content, OID)?;
                let Ok((quals, _)) = der::expect(rest, SEQUENCE) else {
                    continue;
                };
                for q in der::children(quals.content, MAX_ATTRS)? {
                    let (qid, rest) = der::expect(q.content, OID)?;
                    if der::oid(qid.content)? == "1.3.6.1.5.5.7.2.1" {
                        let (uri, _) = der::read(rest)?;
                        m.insert(
                            format!("extensions_certificatePolicies_{i}"),
                            json!(der::string(&uri)),
                        );
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The text of a GeneralName CAPE reports: rfc822Name, dNSName, URI (IA5 strings) and
/// an IP address.
fn general_name(gn: &Tlv<'_>) -> Option<Value> {
    match gn.tag {
        0x81 | 0x82 | 0x86 => Some(json!(
            gn.content.iter().map(|&b| b as char).collect::<String>()
        )),
        0x87 => match gn.content.len() {
            4 => <[u8; 4]>::try_from(gn.content)
                .ok()
                .map(|a| json!(std::net::Ipv4Addr::from(a).to_string())),
            16 => <[u8; 16]>::try_from(gn.content)
                .ok()
                .map(|a| json!(std::net::Ipv6Addr::from(a).to_string())),
            _ => Some(json!(hex::encode(gn.content))),
        },
        _ => None,
    }
}
