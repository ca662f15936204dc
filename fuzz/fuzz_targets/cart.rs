//! CaRT unpacking (`nestbox_analyzers::cart`), Assemblyline's neutering format, over
//! arbitrary bytes.
//!
//! Byte 0 picks a mode, byte 1 a size cap; the rest is the payload:
//!
//! * mode 0: `unpack(payload, cap)` on the raw bytes. No panic; `Ok` content is at most
//!   `cap` bytes; input that `is_cart` rejects is `NotCart`.
//! * mode 1: **round trip**. The payload is `[n][n bytes of header JSON][content]`, and a
//!   header that is not a JSON object counts as `{}`. `unpack(pack(content, header))`
//!   gives back exactly `content` and `header`. With a cap one byte too small it gives
//!   `TooLarge`.
//! * mode 2: corruption. `pack(content)` is made, then bytes chosen by the payload's head
//!   are overwritten. `unpack` may fail but must not panic, and what it returns respects
//!   the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::cart::{CartError, is_cart, pack, unpack};
use serde_json::{Map, Value};

fuzz_target!(|input: &[u8]| {
    let [mode, cap, payload @ ..] = input else {
        return;
    };
    let cap = if *cap == 255 {
        1 << 20
    } else {
        u64::from(*cap) * 16
    };
    match mode % 3 {
        0 => match unpack(payload, cap) {
            Ok(u) => {
                assert!(is_cart(payload));
                assert!(
                    u.data.len() as u64 <= cap,
                    "{} bytes over cap {cap}",
                    u.data.len()
                );
            }
            Err(e) => {
                if !is_cart(payload) {
                    assert_eq!(e, CartError::NotCart);
                }
            }
        },
        1 => {
            let (header, content) = match payload.split_first() {
                Some((&n, rest)) => rest.split_at(usize::from(n).min(rest.len())),
                None => (&[][..], &[][..]),
            };
            let header: Map<String, Value> = match serde_json::from_slice(header) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let packed = pack(content, &header);
            assert!(is_cart(&packed), "pack output is not a CaRT");
            let len = content.len() as u64;
            let u = unpack(&packed, len).unwrap_or_else(|e| panic!("own CaRT rejected: {e}"));
            assert_eq!(u.data, content, "content changed");
            assert_eq!(u.header, header, "header changed");
            if len > 0 {
                assert_eq!(unpack(&packed, len - 1), Err(CartError::TooLarge));
            }
        }
        _ => {
            // Head: pairs of (position, byte) to overwrite; the first byte is the count.
            let (edits, content) = match payload.split_first() {
                Some((&n, rest)) => rest.split_at((2 * usize::from(n % 8)).min(rest.len())),
                None => (&[][..], &[][..]),
            };
            let mut packed = pack(content, &Map::new());
            for e in edits.chunks_exact(2) {
                let at = usize::from(e[0]) % packed.len();
                packed[at] = e[1];
            }
            if let Ok(u) = unpack(&packed, cap) {
                assert!(u.data.len() as u64 <= cap);
            }
        }
    }
});
