//! `extract_strings` over arbitrary bytes with arbitrary limits.
//!
//! Input layout: 4 header bytes choose the options, the rest is the sample:
//! `[min_len, max_count, max_len, max_scan]`, each scaled into a small range so that every
//! limit (including 0) is hit often. Properties:
//!
//! * no panic, output bounded by `max_count`, every string at most `max_len` characters
//!   and made only of the printable class `[\x1f-\x7e]`;
//! * differential: the result equals a naive, obviously-correct reimplementation of
//!   Cuckoo's two `re.findall` passes (the real scanner uses a linear-time trick for the
//!   UTF-16LE pass; the reference is quadratic, which is fine at fuzzing sizes);
//! * with the default options, the same as with explicit Cuckoo defaults.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox_analyzers::{StringsOptions, extract_strings};

fn printable(b: u8) -> bool {
    (0x1f..=0x7e).contains(&b)
}

/// `re.findall(rb"[\x1f-\x7e]{min,}", d) + re.findall(rb"(?:[\x1f-\x7e]\x00){min,}", d)`,
/// capped and truncated, written the slow and obvious way.
fn reference(data: &[u8], o: &StringsOptions) -> Vec<String> {
    let data = &data[..data.len().min(o.max_scan)];
    let min = o.min_len.max(1);
    let mut out = Vec::new();
    if o.max_count == 0 {
        return out;
    }
    // ASCII: maximal runs.
    let mut i = 0;
    while i < data.len() {
        if !printable(data[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < data.len() && printable(data[j]) {
            j += 1;
        }
        if j - i >= min {
            out.push(
                data[i..j]
                    .iter()
                    .take(o.max_len)
                    .map(|&b| b as char)
                    .collect(),
            );
            if out.len() >= o.max_count {
                return out;
            }
        }
        i = j;
    }
    // UTF-16LE: leftmost-first greedy, non-overlapping, like re.findall.
    let mut pos = 0;
    while pos + 1 < data.len() {
        let mut end = pos;
        while end + 1 < data.len() && printable(data[end]) && data[end + 1] == 0 {
            end += 2;
        }
        if (end - pos) / 2 >= min {
            out.push(
                data[pos..end]
                    .iter()
                    .step_by(2)
                    .take(o.max_len)
                    .map(|&b| b as char)
                    .collect(),
            );
            if out.len() >= o.max_count {
                return out;
            }
            pos = end;
        } else {
            pos += 1;
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let (head, data) = match input {
        [a, b, c, d, rest @ ..] => ([*a, *b, *c, *d], rest),
        _ => ([6, 255, 255, 255], input),
    };
    let opts = StringsOptions {
        min_len: usize::from(head[0] % 12),
        max_count: usize::from(head[1] % 40),
        max_len: usize::from(head[2] % 80),
        // Mostly "everything", sometimes a cut inside the data.
        max_scan: if head[3] >= 128 {
            usize::MAX
        } else {
            usize::from(head[3])
        },
    };

    let got = extract_strings(data, &opts);
    assert!(got.len() <= opts.max_count, "more than max_count strings");
    for s in &got {
        assert!(s.len() <= opts.max_len, "string longer than max_len: {s:?}");
        assert!(s.bytes().all(printable), "non-printable byte in {s:?}");
        if opts.max_len >= opts.min_len.max(1) {
            assert!(
                s.len() >= opts.min_len.max(1),
                "string shorter than min_len: {s:?}"
            );
        }
    }
    assert_eq!(
        got,
        reference(data, &opts),
        "differs from the naive reference"
    );

    let defaults = extract_strings(data, &StringsOptions::default());
    assert_eq!(
        defaults,
        reference(data, &StringsOptions::default()),
        "default options differ from the naive reference"
    );
});
