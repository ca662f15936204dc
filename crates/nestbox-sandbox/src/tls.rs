//! TLS ClientHello parsing for the sink: the server name (SNI), the offered versions and
//! the JA3 fingerprint (`version,ciphers,extensions,groups,point_formats`, decimal values
//! joined by `-`, GREASE values left out, MD5 of that string).
//!
//! The bytes come from the sample: the parser is total (every length is checked against
//! what is there) and answers `None` for anything that is not a complete ClientHello.

use md5::{Digest, Md5};

/// Largest TLS record accepted (2^14 plaintext plus room for the header).
pub const MAX_RECORD: usize = 16_384 + 5;

/// What a ClientHello says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The server name asked for.
    pub sni: Option<String>,
    /// The highest version offered (`supported_versions` if present, else the legacy field).
    pub version: u16,
    /// The JA3 string.
    pub ja3: String,
    /// Its MD5, lower-case hex.
    pub ja3_hash: String,
}

/// Whether `buf` starts a TLS handshake record that is not complete yet (keep reading).
pub fn needs_more(buf: &[u8]) -> bool {
    match buf {
        [0x16, 3, _, hi, lo, ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            len + 5 <= MAX_RECORD && buf.len() < len + 5
        }
        [0x16] | [0x16, 3] | [0x16, 3, _] | [0x16, 3, _, _] => true,
        _ => false,
    }
}

/// GREASE values (RFC 8701) are random per connection and not part of JA3.
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fn join<T: ToString>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// Parses the first record of a connection as a ClientHello.
pub fn client_hello(buf: &[u8]) -> Option<ClientHello> {
    let mut rec = Reader { b: buf };
    if rec.u8()? != 0x16 {
        return None;
    }
    rec.take(2)?;
    let body = rec.vec16()?;
    let mut hs = Reader { b: body };
    if hs.u8()? != 1 {
        return None;
    }
    let len = hs.u24()?;
    let mut h = Reader { b: hs.take(len)? };
    let legacy = h.u16()?;
    h.take(32)?;
    h.vec8()?;
    let ciphers: Vec<u16> = u16s(h.vec16()?)
        .into_iter()
        .filter(|c| !grease(*c))
        .collect();
    h.vec8()?;
    let mut exts = Vec::new();
    let (mut groups, mut formats, mut sni, mut versions) =
        (Vec::new(), Vec::new(), None, Vec::new());
    if !h.b.is_empty() {
        let mut e = Reader { b: h.vec16()? };
        while !e.b.is_empty() {
            let kind = e.u16()?;
            let data = e.vec16()?;
            if grease(kind) {
                continue;
            }
            exts.push(kind);
            let mut d = Reader { b: data };
            match kind {
                0 => {
                    let mut list = Reader { b: d.vec16()? };
                    while !list.b.is_empty() {
                        let t = list.u8()?;
                        let name = list.vec16()?;
                        if t == 0 && sni.is_none() {
                            sni = Some(String::from_utf8_lossy(name).into_owned());
                        }
                    }
                }
                10 => {
                    groups = u16s(d.vec16()?)
                        .into_iter()
                        .filter(|g| !grease(*g))
                        .collect()
                }
                11 => formats = d.vec8()?.to_vec(),
                43 => {
                    versions = d
                        .vec8()
                        .map(u16s)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|v| !grease(*v))
                        .collect()
                }
                _ => {}
            }
        }
    }
    let ja3 = format!(
        "{legacy},{},{},{},{}",
        join(&ciphers),
        join(&exts),
        join(&groups),
        join(&formats)
    );
    let ja3_hash = Md5::digest(ja3.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(ClientHello {
        sni,
        version: versions.into_iter().max().unwrap_or(legacy).max(legacy),
        ja3,
        ja3_hash,
    })
}

/// The version as Suricata names it (`TLS 1.3`).
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSLv3".into(),
        0x0301..=0x0304 => format!("TLS 1.{}", v - 0x0301),
        other => format!("0x{other:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with SNI `a.test`, ciphers GREASE+0x1301+0x1302, extensions
    /// GREASE, SNI, supported_groups (GREASE, 29, 23), ec_point_formats (0),
    /// supported_versions (0x0304, 0x0303).
    pub(crate) fn hello() -> Vec<u8> {
        let mut ext = Vec::new();
        ext.extend_from_slice(&[0x3a, 0x3a, 0, 0]);
        let name = b"a.test";
        let mut sni = vec![0, (name.len() + 3) as u8, 0, 0, name.len() as u8];
        sni.extend_from_slice(name);
        ext.extend_from_slice(&[0, 0, 0, sni.len() as u8]);
        ext.extend_from_slice(&sni);
        ext.extend_from_slice(&[0, 10, 0, 8, 0, 6, 0x2a, 0x2a, 0, 29, 0, 23]);
        ext.extend_from_slice(&[0, 11, 0, 2, 1, 0]);
        ext.extend_from_slice(&[0, 43, 0, 5, 4, 3, 4, 3, 3]);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 6, 0x0a, 0x0a, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn ja3_and_sni() {
        let h = client_hello(&hello()).unwrap();
        assert_eq!(h.sni.as_deref(), Some("a.test"));
        assert_eq!(h.ja3, "771,4865-4866,0-10-11-43,29-23,0");
        assert_eq!(h.ja3_hash.len(), 32);
        assert_eq!(version_name(h.version), "TLS 1.3");
        assert!(!needs_more(&hello()));
    }

    #[test]
    fn truncated_or_foreign_input_is_none() {
        let h = hello();
        for n in 0..h.len() {
            assert!(client_hello(&h[..n]).is_none(), "cut at {n}");
            assert!(needs_more(&h[..n]) || n == 0, "cut at {n}");
        }
        assert!(client_hello(b"GET / HTTP/1.1\r\n\r\n").is_none());
        let mut bad = h.clone();
        bad[7] = 0xff; // handshake length past the record
        assert!(client_hello(&bad).is_none());
        assert!(!needs_more(b"\x16\x03\x01\xff\xff"));
    }
}
