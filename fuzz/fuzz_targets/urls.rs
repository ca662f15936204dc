//! `extract_urls` over arbitrary bytes.
//!
//! Properties: no panic; at most 1000 URLs, no duplicates; each starts with `http://`,
//! `https://` or `ftp://` (any case), is at most 4096 characters of printable ASCII, and
//! occurs in the input either as bytes or as UTF-16LE; and a URL that was not truncated,
//! scanned again on its own, yields exactly itself (the grammar is self-consistent:
//! nothing it accepted depends on bytes it did not include).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::extract_urls;

const MAX_URLS: usize = 1000;
const MAX_URL_LEN: usize = 4096;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn wide(s: &str) -> Vec<u8> {
    s.bytes().flat_map(|b| [b, 0]).collect()
}

fuzz_target!(|data: &[u8]| {
    let urls = extract_urls(data);
    assert!(urls.len() <= MAX_URLS, "{} URLs", urls.len());
    let mut seen = HashSet::new();
    for u in &urls {
        assert!(seen.insert(u.as_str()), "duplicate URL {u:?}");
        assert!(u.len() <= MAX_URL_LEN, "URL of {} chars", u.len());
        assert!(u.bytes().all(|b| b.is_ascii_graphic()), "odd byte in {u:?}");
        let lower = u.to_ascii_lowercase();
        assert!(
            ["http://", "https://", "ftp://"]
                .iter()
                .any(|s| lower.starts_with(s)),
            "bad scheme: {u:?}"
        );
        assert!(
            lower.len() > lower.find("://").unwrap() + 3,
            "URL without authority: {u:?}"
        );
        assert!(
            contains(data, u.as_bytes()) || contains(data, &wide(u)),
            "URL not in the input: {u:?}"
        );
        if u.len() < MAX_URL_LEN {
            assert_eq!(
                extract_urls(u.as_bytes()),
                [u.clone()],
                "URL not found again when scanned alone"
            );
        }
    }
});
