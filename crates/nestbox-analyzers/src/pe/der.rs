//! A small, bounded DER reader: just enough ASN.1 to walk PKCS#7 SignedData and X.509
//! certificates. Every read is checked against the slice it comes from, lengths are
//! limited to four bytes, and nothing recurses on its own: callers walk a fixed shape.
//! Indefinite (BER) lengths and high tag numbers are errors, not guesses.

use std::fmt::Write as _;

/// Universal tags used by the certificate walker.
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and tag number).
    pub tag: u8,
    /// The value octets.
    pub content: &'a [u8],
    /// The whole element, identifier and length included (what fingerprints hash).
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("DER: unexpected end of data")?;
    if tag & 0x1f == 0x1f {
        return Err(format!(
            "DER: high tag number form (0x{tag:02x}) unsupported"
        ));
    }
    let (&first, mut rest) = rest.split_first().ok_or("DER: missing length")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else if first == 0x80 {
        return Err("DER: indefinite length (BER) unsupported".into());
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 || rest.len() < n {
            return Err(format!("DER: bad length of {n} octets"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(format!(
            "DER: element of {len} bytes overruns the {} left",
            rest.len()
        ));
    }
    let header = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
            raw: &input[..header + len],
        },
        &rest[len..],
    ))
}

/// Reads one element and requires its tag.
pub fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), String> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag {
        return Err(format!(
            "DER: expected tag 0x{tag:02x}, found 0x{:02x}",
            tlv.tag
        ));
    }
    Ok((tlv, rest))
}

/// The elements of a constructed value, at most `limit` of them (a hostile count is cut,
/// not followed); the error of a broken element ends the list.
pub fn children(content: &[u8], limit: usize) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() && out.len() < limit {
        let (tlv, r) = read(rest)?;
        out.push(tlv);
        rest = r;
    }
    Ok(out)
}

/// An OBJECT IDENTIFIER in dotted form.
pub fn oid(content: &[u8]) -> Result<String, String> {
    let (&first, rest) = content.split_first().ok_or("DER: empty OID")?;
    let mut out = String::new();
    let mut arcs = vec![];
    let mut v: u64 = 0;
    let mut pending = false;
    for &b in std::iter::once(&first).chain(rest) {
        if v > u64::MAX >> 7 {
            return Err("DER: OID arc too large".into());
        }
        v = (v << 7) | u64::from(b & 0x7f);
        pending = true;
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
            pending = false;
        }
    }
    if pending {
        return Err("DER: truncated OID".into());
    }
    let head = arcs[0];
    let (a, b) = match head {
        0..=39 => (0, head),
        40..=79 => (1, head - 40),
        _ => (2, head - 80),
    };
    let _ = write!(out, "{a}.{b}");
    for arc in &arcs[1..] {
        let _ = write!(out, ".{arc}");
    }
    Ok(out)
}

/// An INTEGER's content as a decimal string (what Python's `str(int)` prints), two's
/// complement sign included. Certificate serials are at most 20 octets by RFC 5280; a
/// hostile one is cut at 256 to keep this quadratic loop small.
pub fn integer_decimal(content: &[u8]) -> String {
    let content = &content[..content.len().min(256)];
    let negative = content.first().is_some_and(|b| b & 0x80 != 0);
    let mut mag: Vec<u8> = content.to_vec();
    if negative {
        // Two's complement: invert and add one to get the magnitude.
        for b in &mut mag {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    // Repeated division by 10^9 of the big-endian magnitude.
    let mut chunks = Vec::new();
    while mag.iter().any(|&b| b != 0) {
        let mut rem: u64 = 0;
        for b in &mut mag {
            let cur = (rem << 8) | u64::from(*b);
            *b = (cur / 1_000_000_000) as u8;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
    }
    let mut out = String::from(if negative { "-" } else { "" });
    match chunks.split_last() {
        None => out.push('0'),
        Some((top, lower)) => {
            let _ = write!(out, "{top}");
            for c in lower.iter().rev() {
                let _ = write!(out, "{c:09}");
            }
        }
    }
    out
}

/// A string-valued element as text: the ASN.1 string types by their encodings
/// (UTF-8, Latin-1 for the 8-bit legacy ones, UTF-16BE BMP, UTF-32BE universal); any
/// other type as lower-case hex.
pub fn string(tlv: &Tlv<'_>) -> String {
    let c = tlv.content;
    match tlv.tag & 0x1f {
        // UTF8String
        0x0c => String::from_utf8_lossy(c).into_owned(),
        // Numeric, Printable, Teletex, Videotex, IA5, Graphic, Visible, General
        0x12 | 0x13 | 0x14 | 0x15 | 0x16 | 0x19 | 0x1a | 0x1b => {
            c.iter().map(|&b| b as char).collect()
        }
        // BMPString
        0x1e => char::decode_utf16(c.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])))
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        // UniversalString
        0x1c => c
            .chunks_exact(4)
            .map(|p| {
                char::from_u32(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        _ => hex::encode(c),
    }
}

/// A UTCTime or GeneralizedTime as Python's naive `datetime.isoformat()`
/// (`YYYY-MM-DDTHH:MM:SS`), the way `cryptography` reports validity in UTC.
pub fn time(tlv: &Tlv<'_>) -> Result<String, String> {
    let s = std::str::from_utf8(tlv.content)
        .ok()
        .filter(|s| s.is_ascii())
        .ok_or("DER: time is not ASCII")?;
    let digits = s.trim_end_matches('Z');
    let (year, rest) = match tlv.tag {
        UTC_TIME if digits.len() >= 10 => {
            let yy: u32 = digits[..2].parse().map_err(|_| "DER: bad UTCTime")?;
            // RFC 5280: 50..99 are 19xx, 00..49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        GENERALIZED_TIME if digits.len() >= 12 => (
            digits[..4]
                .parse()
                .map_err(|_| "DER: bad GeneralizedTime")?,
            &digits[4..],
        ),
        _ => return Err(format!("DER: bad time element (tag 0x{:02x})", tlv.tag)),
    };
    let field = |i: usize| -> Result<u32, String> {
        rest.get(i..i + 2)
            .unwrap_or("00")
            .parse()
            .map_err(|_| format!("DER: bad time {s:?}"))
    };
    let (mo, d, h, mi, se) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(format!("DER: time out of range {s:?}"));
    }
    Ok(format!("{year:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_like_python() {
        assert_eq!(integer_decimal(&[]), "0");
        assert_eq!(integer_decimal(&[0]), "0");
        assert_eq!(integer_decimal(&[0x7f]), "127");
        assert_eq!(integer_decimal(&[0x00, 0xff]), "255");
        assert_eq!(integer_decimal(&[0xff]), "-1");
        assert_eq!(integer_decimal(&[0x80, 0x00]), "-32768");
        let big = 0x7a11b2c3d4e5f60718293a4b5c6d7e8fu128;
        assert_eq!(integer_decimal(&big.to_be_bytes()), big.to_string());
        // A hostile 100 KB integer is cut, not ground through.
        assert!(integer_decimal(&vec![0x11; 100_000]).len() < 700);
    }

    #[test]
    fn oids_and_times() {
        assert_eq!(oid(&[0x55, 0x04, 0x03]).unwrap(), "2.5.4.3");
        assert_eq!(
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]).unwrap(),
            "1.2.840.113549.1.7.2"
        );
        assert!(oid(&[]).is_err());
        assert!(oid(&[0x2a, 0x86]).is_err());
        assert!(oid(&[0xff; 20]).is_err());
        let t = |tag, s: &str| {
            time(&Tlv {
                tag,
                content: s.as_bytes(),
                raw: &[],
            })
        };
        assert_eq!(t(UTC_TIME, "491231235959Z").unwrap(), "2049-12-31T23:59:59");
        assert_eq!(t(UTC_TIME, "500101000000Z").unwrap(), "1950-01-01T00:00:00");
        assert_eq!(
            t(GENERALIZED_TIME, "21060207062815Z").unwrap(),
            "2106-02-07T06:28:15"
        );
        for bad in ["", "99", "2613xx000000Z", "261332000000Z", "ééééééééééééZ"] {
            assert!(t(UTC_TIME, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_lengths_are_errors() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x80, 0, 0],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x05, 1, 2],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(read(input).is_err(), "{input:?}");
        }
        let (tlv, rest) = read(&[0x04, 0x82, 0x00, 0x01, 0xaa, 0xbb]).unwrap();
        assert_eq!(
            (tlv.content, rest, tlv.raw.len()),
            (&[0xaa][..], &[0xbb][..], 5)
        );
        // A list of 10 000 empty elements is cut at the limit.
        let many = [0x05u8, 0x00].repeat(10_000);
        assert_eq!(children(&many, 64).unwrap().len(), 64);
    }
}
