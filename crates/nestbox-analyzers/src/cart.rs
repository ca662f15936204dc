//! CaRT ("Compressed and RC4 Transport"), Assemblyline's neutering format.
//!
//! Layout (all integers little-endian), as `cart.py` 1.2.3 writes it:
//!
//! ```text
//! "CART" i16 version=1 u64 reserved=0 [16] arc4 key  u64 opt_header_len     (38 bytes)
//! RC4(key, json(header))                          opt_header_len bytes
//! RC4(key, zlib(data))                            fresh RC4 state
//! RC4(key, json({"length","md5","sha1","sha256"})) fresh RC4 state
//! "TRAC" u64 reserved=0 u64 opt_footer_pos u64 opt_footer_len             (28 bytes)
//! ```
//!
//! JSON is compact with sorted keys. The default key is the first eight digits of π,
//! twice; it is written in clear, so this is neutering, not encryption.
//!
//! [`unpack`] reads untrusted bytes: it is total (every input gives `Ok` or an
//! [`CartError`], never a panic) and bounded (the output is capped by the caller's
//! `max_len`, the optional header by [`MAX_HEADER`]).

use std::io::{Read, Write};

use md5::Digest as _;
use serde_json::{Map, Value};

/// The default ARC4 key: `03 01 04 01 05 09 02 06` twice.
pub const DEFAULT_KEY: [u8; 16] = [3, 1, 4, 1, 5, 9, 2, 6, 3, 1, 4, 1, 5, 9, 2, 6];
/// Size of the mandatory header.
pub const HEADER_LEN: usize = 38;
/// Size of the mandatory footer.
pub const FOOTER_LEN: usize = 28;
/// Largest optional header or footer we decode.
pub const MAX_HEADER: u64 = 1 << 20;

/// Why bytes are not a CaRT we can unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartError {
    /// No `CART` v1 mandatory header.
    NotCart,
    /// The optional header is out of bounds or not a JSON object.
    BadHeader,
    /// The body is not a complete zlib stream.
    BadBody,
    /// The content is larger than allowed.
    TooLarge,
}

impl std::fmt::Display for CartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CartError::NotCart => "not a CaRT file",
            CartError::BadHeader => "invalid CaRT optional header",
            CartError::BadBody => "invalid CaRT body",
            CartError::TooLarge => "CaRT content is too large",
        })
    }
}

impl std::error::Error for CartError {}

/// ARC4 keystream.
struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    fn new(key: &[u8; 16]) -> Self {
        let mut s = [0u8; 256];
        for (i, v) in s.iter_mut().enumerate() {
            *v = i as u8;
        }
        let mut j = 0u8;
        for i in 0..256 {
            j = j.wrapping_add(s[i]).wrapping_add(key[i % 16]);
            s.swap(i, usize::from(j));
        }
        Rc4 { s, i: 0, j: 0 }
    }

    fn apply(&mut self, data: &mut [u8]) {
        for b in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.s[usize::from(self.i)]);
            self.s.swap(usize::from(self.i), usize::from(self.j));
            let k = self.s[usize::from(
                self.s[usize::from(self.i)].wrapping_add(self.s[usize::from(self.j)]),
            )];
            *b ^= k;
        }
    }
}

fn crypt(key: &[u8; 16], mut data: Vec<u8>) -> Vec<u8> {
    Rc4::new(key).apply(&mut data);
    data
}

/// Whether `data` starts with a CaRT v1 mandatory header (Assemblyline's detection).
pub fn is_cart(data: &[u8]) -> bool {
    data.len() >= HEADER_LEN
        && &data[..4] == b"CART"
        && data[4..6] == [1, 0]
        && data[6..14] == [0; 8]
}

/// Packs `data` with the default key and an optional header (omitted when empty).
pub fn pack(data: &[u8], header: &Map<String, Value>) -> Vec<u8> {
    let (mut p, mut out) = Packer::new(header);
    out.reserve(data.len() / 2 + 512);
    out.extend_from_slice(&p.update(data));
    out.extend_from_slice(&p.finish());
    out
}

/// A streaming CaRT writer: [`Packer::new`] gives the leading bytes, [`Packer::update`]
/// the encrypted body for each chunk, [`Packer::finish`] the footers. Memory stays at one
/// zlib window however large the content (downloads of big samples stream through it);
/// the output equals [`pack`]'s, since zlib's stream does not depend on how its input is
/// split.
pub struct Packer {
    key: [u8; 16],
    body_rc4: Rc4,
    z: flate2::write::ZlibEncoder<Vec<u8>>,
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
    length: u64,
    written: u64,
    /// Input not yet compressed: the compressor is always fed whole 64 KiB blocks (as
    /// cart.py does), so the output does not depend on how callers split the content.
    pending: Vec<u8>,
}

/// cart.py's block size.
const BLOCK: usize = 64 << 10;

impl Packer {
    /// Starts a CaRT with the default key; returns the mandatory and optional headers.
    pub fn new(header: &Map<String, Value>) -> (Packer, Vec<u8>) {
        let key = DEFAULT_KEY;
        let opt_header = if header.is_empty() {
            Vec::new()
        } else {
            // cart.py's sort_keys + compact separators. Sorted explicitly: serde_json's Map
            // keeps insertion order in builds with `preserve_order` (yara-x turns it on).
            let mut sorted = Value::Object(header.clone());
            sorted.sort_all_objects();
            crypt(&key, serde_json::to_vec(&sorted).unwrap_or_default())
        };
        let mut out = Vec::with_capacity(HEADER_LEN + opt_header.len());
        out.extend_from_slice(b"CART");
        out.extend_from_slice(&1i16.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&key);
        out.extend_from_slice(&(opt_header.len() as u64).to_le_bytes());
        out.extend_from_slice(&opt_header);
        let p = Packer {
            key,
            body_rc4: Rc4::new(&key),
            z: flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1)),
            md5: md5::Md5::new(),
            sha1: sha1::Sha1::new(),
            sha256: sha2::Sha256::new(),
            length: 0,
            written: out.len() as u64,
            pending: Vec::with_capacity(BLOCK),
        };
        (p, out)
    }

    /// Feeds content; returns the body bytes ready so far (possibly none).
    pub fn update(&mut self, data: &[u8]) -> Vec<u8> {
        self.md5.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
        self.length += data.len() as u64;
        let mut data = data;
        while !data.is_empty() {
            let take = (BLOCK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == BLOCK {
                // Writing to a Vec cannot fail.
                let _ = self.z.write_all(&self.pending);
                self.pending.clear();
            }
        }
        self.drain()
    }

    fn drain(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(self.z.get_mut());
        self.body_rc4.apply(&mut out);
        self.written += out.len() as u64;
        out
    }

    /// Ends the body; returns its last bytes and both footers.
    pub fn finish(mut self) -> Vec<u8> {
        let _ = self.z.write_all(&self.pending);
        let _ = self.z.try_finish();
        let mut out = self.drain();
        let footer_pos = self.written;
        let mut footer = Map::new();
        footer.insert("length".into(), Value::String(self.length.to_string()));
        footer.insert("md5".into(), hex::encode(self.md5.finalize()).into());
        footer.insert("sha1".into(), hex::encode(self.sha1.finalize()).into());
        footer.insert("sha256".into(), hex::encode(self.sha256.finalize()).into());
        let footer = crypt(&self.key, serde_json::to_vec(&footer).unwrap_or_default());
        out.extend_from_slice(&footer);
        out.extend_from_slice(b"TRAC");
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&footer_pos.to_le_bytes());
        out.extend_from_slice(&(footer.len() as u64).to_le_bytes());
        out
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// An unpacked CaRT.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpacked {
    /// The optional header (`{}` when absent).
    pub header: Map<String, Value>,
    /// The content.
    pub data: Vec<u8>,
}

/// Unpacks a CaRT held in memory; the content may be at most `max_len` bytes.
pub fn unpack(cart: &[u8], max_len: u64) -> Result<Unpacked, CartError> {
    if !is_cart(cart) {
        return Err(CartError::NotCart);
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&cart[14..30]);
    let ohl = le_u64(&cart[30..38]);
    if ohl > MAX_HEADER || ohl > (cart.len() - HEADER_LEN) as u64 {
        return Err(CartError::BadHeader);
    }
    let body_start = HEADER_LEN + ohl as usize;
    let header = if ohl == 0 {
        Map::new()
    } else {
        let raw = crypt(&key, cart[HEADER_LEN..body_start].to_vec());
        match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => m,
            _ => return Err(CartError::BadHeader),
        }
    };
    // The body ends where the optional footer starts, when a sane mandatory footer says so.
    let mut body_end = cart.len();
    if cart.len() >= body_start + FOOTER_LEN {
        let f = &cart[cart.len() - FOOTER_LEN..];
        if &f[..4] == b"TRAC" {
            let pos = le_u64(&f[12..20]);
            if pos >= body_start as u64 && pos <= (cart.len() - FOOTER_LEN) as u64 {
                body_end = pos as usize;
            } else {
                body_end = cart.len() - FOOTER_LEN;
            }
        }
    }
    let body = crypt(&key, cart[body_start..body_end].to_vec());
    let mut z = flate2::read::ZlibDecoder::new(&body[..]);
    let mut data = Vec::new();
    let limit = max_len.saturating_add(1);
    match (&mut z).take(limit).read_to_end(&mut data) {
        Ok(_) => {}
        Err(_) => return Err(CartError::BadBody),
    }
    if data.len() as u64 > max_len {
        return Err(CartError::TooLarge);
    }
    // A truncated stream reads as a short success in flate2; require the end marker.
    if !zlib_complete(&body) {
        return Err(CartError::BadBody);
    }
    Ok(Unpacked { header, data })
}

/// Whether `body` holds a complete zlib stream (flate2's reader stops silently on
/// truncation, so check with a raw decompressor).
fn zlib_complete(body: &[u8]) -> bool {
    let mut d = flate2::Decompress::new(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut input = body;
    loop {
        let before_in = d.total_in();
        let before_out = d.total_out();
        match d.decompress(input, &mut buf, flate2::FlushDecompress::None) {
            Ok(flate2::Status::StreamEnd) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        let used = (d.total_in() - before_in) as usize;
        input = &input[used.min(input.len())..];
        if used == 0 && d.total_out() == before_out {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_cart_py() {
        let mut h = Map::new();
        h.insert("name".into(), "hello.txt".into());
        let c = pack(b"hello world\n", &h);
        // cart.py 1.2.3 gives 288 bytes: header 20, footer at 78, footer 182.
        assert_eq!(c.len(), 288);
        assert_eq!(le_u64(&c[30..38]), 20);
        let f = &c[c.len() - 28..];
        assert_eq!(&f[..4], b"TRAC");
        assert_eq!(le_u64(&f[12..20]), 78);
        assert_eq!(le_u64(&f[20..28]), 182);
        let u = unpack(&c, 100).unwrap();
        assert_eq!(u.data, b"hello world\n");
        assert_eq!(u.header, h);
        assert_eq!(unpack(&c, 5), Err(CartError::TooLarge));
    }

    #[test]
    fn hostile_input_never_panics() {
        let good = pack(b"abc", &Map::new());
        assert_eq!(unpack(&good, 10).unwrap().data, b"abc");
        assert_eq!(unpack(b"", 10), Err(CartError::NotCart));
        assert_eq!(unpack(b"hello", 10), Err(CartError::NotCart));
        for cut in 0..good.len() {
            let _ = unpack(&good[..cut], 10);
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = unpack(&bad, 10);
        }
        let mut huge = good.clone();
        huge[30..38].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(unpack(&huge, 10), Err(CartError::BadHeader));
        let mut trunc = good.clone();
        trunc.truncate(HEADER_LEN + 4);
        assert!(unpack(&trunc, 10).is_err());
    }

    #[test]
    fn streaming_packer_equals_pack_whatever_the_chunking() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = Map::new();
        h.insert("name".into(), "x.bin".into());
        let whole = pack(&data, &h);
        for chunk in [1usize, 4096, 65536, 1 << 20] {
            let (mut p, mut out) = Packer::new(&h);
            for c in data.chunks(chunk.min(data.len())) {
                out.extend(p.update(c));
            }
            out.extend(p.finish());
            assert!(out == whole, "chunk {chunk}");
        }
        assert_eq!(unpack(&whole, 1 << 20).unwrap().data, data);
    }
}
