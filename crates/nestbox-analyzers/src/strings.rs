//! Printable strings and embedded URLs.
//!
//! [`extract_strings`] reproduces Cuckoo's `strings` processing module, which runs two
//! regular expressions over the first 16 MiB of the sample and keeps the matches in order:
//!
//! ```text
//! re.findall(b"[\x20-\x7e]{6,}", data)            # ASCII runs first,
//! re.findall(b"(?:[\x20-\x7e]\x00){6,}", data)    # then UTF-16LE runs,
//! strings[:2048], each s[:1024]
//! ```
//!
//! Both are scanned by hand instead of with a regex engine: the languages are trivial, the
//! scanners are linear-time on any input and never allocate more than the strings they
//! return.
//!
//! [`extract_urls`] fills `target.file.urls`: `http`, `https` and `ftp` URLs, found in both
//! single-byte and UTF-16LE text (Windows malware keeps most of its strings wide).

use std::collections::HashSet;

/// Limits for [`extract_strings`]. The defaults are Cuckoo's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringsOptions {
    /// Minimum run length in characters (Cuckoo: 6). Zero is treated as one: an empty
    /// "string" at every offset is never useful.
    pub min_len: usize,
    /// Maximum number of strings returned, ASCII ones counted first (Cuckoo: 2048).
    pub max_count: usize,
    /// Longer strings are truncated to this many characters (Cuckoo: 1024).
    pub max_len: usize,
    /// Only the first `max_scan` bytes are searched (Cuckoo: 16 MiB).
    pub max_scan: usize,
}

impl Default for StringsOptions {
    fn default() -> Self {
        Self {
            min_len: 6,
            max_count: 2048,
            max_len: 1024,
            max_scan: 16 * 1024 * 1024,
        }
    }
}

/// The characters a string may consist of: Cuckoo 2.0's pattern `[\x1f-\x7e]`, printable
/// ASCII plus the unit-separator control 0x1f. Kept byte-exact with upstream so that the
/// `strings` section of a report equals what Cuckoo would have produced for the same file.
fn is_printable(b: u8) -> bool {
    (0x1f..=0x7e).contains(&b)
}

/// Cuckoo's string list: ASCII runs, then UTF-16LE runs, capped and truncated per `opts`.
pub fn extract_strings(data: &[u8], opts: &StringsOptions) -> Vec<String> {
    let data = &data[..data.len().min(opts.max_scan)];
    let min_len = opts.min_len.max(1);
    let mut out = Vec::new();
    if opts.max_count == 0 {
        return out;
    }

    for run in ascii_runs(data, min_len) {
        out.push(ascii_string(run.iter().copied().take(opts.max_len)));
        if out.len() >= opts.max_count {
            return out;
        }
    }

    for (start, end) in Utf16Runs::new(data, min_len) {
        let chars = data[start..end].iter().step_by(2).copied();
        out.push(ascii_string(chars.take(opts.max_len)));
        if out.len() >= opts.max_count {
            break;
        }
    }
    out
}

/// Calls `f` with every ASCII run, then every UTF-16LE run, of at least `min_len`
/// printable characters, uncapped and untruncated: for scanners that bound their own
/// output (indicator extraction), which must not miss what lies past string 2048.
pub(crate) fn each_string(data: &[u8], min_len: usize, mut f: impl FnMut(&str)) {
    for run in ascii_runs(data, min_len) {
        f(std::str::from_utf8(run).unwrap_or_default());
    }
    let mut buf = String::new();
    for (start, end) in Utf16Runs::new(data, min_len) {
        buf.clear();
        buf.extend(data[start..end].iter().step_by(2).map(|&b| char::from(b)));
        f(&buf);
    }
}

/// The runs of at least `min_len` printable bytes, in order. (A hand loop rather than
/// `split`: binary data is mostly separators, and `split` yields an empty slice for each.)
fn ascii_runs(data: &[u8], min_len: usize) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        loop {
            while i < data.len() && !is_printable(data[i]) {
                i += 1;
            }
            if i >= data.len() {
                return None;
            }
            let start = i;
            while i < data.len() && is_printable(data[i]) {
                i += 1;
            }
            if i - start >= min_len {
                return Some(&data[start..i]);
            }
        }
    })
}

/// Builds a `String` from bytes already known to be printable ASCII.
fn ascii_string(bytes: impl Iterator<Item = u8>) -> String {
    bytes.map(char::from).collect()
}

/// Non-overlapping matches of `(?:[\x20-\x7e]\x00){min_len,}`, leftmost first, greedy: the
/// exact sequence Python's `re.findall` produces.
///
/// The naive scan (count the pairs at every offset) is quadratic in `min_len`. Instead, the
/// end of the last run seen at each byte parity is remembered: an offset inside a known run
/// shares its end, so every byte is examined O(1) times.
struct Utf16Runs<'a> {
    data: &'a [u8],
    min_len: usize,
    pos: usize,
    /// For each parity, the end of the last run measured at that parity: pairs from any
    /// offset of that parity at or after the run's start up to here are all valid.
    run_end: [usize; 2],
}

impl<'a> Utf16Runs<'a> {
    fn new(data: &'a [u8], min_len: usize) -> Self {
        Self {
            data,
            min_len,
            pos: 0,
            run_end: [0; 2],
        }
    }

    /// End (exclusive) of the run of valid pairs starting at `at`.
    fn run_end_from(&mut self, at: usize) -> usize {
        let parity = at & 1;
        if at < self.run_end[parity] {
            return self.run_end[parity];
        }
        let mut end = at;
        while let [c, 0, ..] = self.data[end..] {
            if !is_printable(c) {
                break;
            }
            end += 2;
        }
        self.run_end[parity] = end;
        end
    }
}

impl Iterator for Utf16Runs<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        while self.pos + 1 < self.data.len() {
            // A run starts with a pair whose high byte is NUL: jump to the next NUL with
            // memchr instead of trying every offset (an offset before a non-NUL byte is
            // never inside a run of its parity, so it could only yield an empty one).
            match memchr::memchr(0, &self.data[self.pos + 1..]) {
                Some(k) => self.pos += k,
                None => {
                    self.pos = self.data.len();
                    return None;
                }
            }
            let start = self.pos;
            let end = self.run_end_from(start);
            if (end - start) / 2 >= self.min_len {
                self.pos = end;
                return Some((start, end));
            }
            self.pos += 1;
        }
        None
    }
}

/// At most this many URLs are returned.
const MAX_URLS: usize = 1000;

/// URLs longer than this many characters are truncated, so one pathological run cannot
/// make the result arbitrarily large.
const MAX_URL_LEN: usize = 4096;

/// `http`, `https` and `ftp` URLs in the data, deduplicated in first-seen order, at most
/// 1000 of them.
///
/// Single-byte text is searched first, then UTF-16LE text (at both byte alignments).
/// Schemes are matched case-insensitively and reported as written. The grammar is
/// deliberately conservative so that binary noise around a URL is not swept into it:
///
/// ```text
/// scheme "://" [userinfo "@"] host [":" digits] [("/" | "?" | "#") path-chars*]
/// ```
///
/// where `host` is a name of letters, digits, `-`, `_` and `.` starting with a letter or
/// digit, or a bracketed IPv6 literal. Trailing sentence punctuation (`.`, `,`, `;`, `:`,
/// `!`, `?`, and unbalanced `)`) is not part of the URL. URLs longer than 4096 characters
/// are truncated.
///
/// Compared with Cuckoo's `URL_REGEX` (`https?://`, host `[a-zA-Z0-9.-]+`, optional port,
/// path `[()a-zA-Z0-9_:%?=/.-]*`, on the raw bytes only) this adds `ftp`, wide strings,
/// userinfo and the rest of the query syntax (Cuckoo cuts URLs at `&`), and drops trailing
/// punctuation. Cuckoo returned a Python set, so no ordering contract is lost.
pub fn extract_urls(data: &[u8]) -> Vec<String> {
    let mut found = UrlSet::default();
    // The separator is found with memchr's vectorised search; the byte-by-byte grammar
    // only runs where one is.
    let narrow = memchr::memmem::find_iter(data, b"://");
    scan_urls(&Narrow(data), narrow, &mut found);
    if found.is_full() {
        return found.urls;
    }
    // In UTF-16LE ":\0/\0/\0" at an even offset is unit `p / 2` of the text at offset
    // 0, at an odd one unit `(p - 1) / 2` of the text at offset 1.
    let wide: Vec<usize> = memchr::memmem::find_iter(data, b":\0/\0/\0").collect();
    for parity in 0..2 {
        let units = wide
            .iter()
            .filter(|p| *p % 2 == parity)
            .map(|p| (p - parity) / 2);
        scan_urls(&Wide::new(data, parity), units, &mut found);
    }
    found.urls
}

/// The deduplicating, capped result list.
#[derive(Default)]
struct UrlSet {
    urls: Vec<String>,
    seen: HashSet<String>,
}

impl UrlSet {
    fn is_full(&self) -> bool {
        self.urls.len() >= MAX_URLS
    }

    fn add(&mut self, url: String) {
        if !self.is_full() && self.seen.insert(url.clone()) {
            self.urls.push(url);
        }
    }
}

/// A sequence of text units that URLs are searched in.
///
/// Units outside ASCII are presented as NUL, which no part of the URL grammar accepts, so
/// they simply end a URL.
trait Text {
    fn len(&self) -> usize;
    fn at(&self, i: usize) -> u8;
}

/// Single-byte text: the bytes themselves.
struct Narrow<'a>(&'a [u8]);

impl Text for Narrow<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn at(&self, i: usize) -> u8 {
        match self.0.get(i) {
            Some(&b) if b.is_ascii() => b,
            _ => 0,
        }
    }
}

/// UTF-16LE text starting at byte `offset`: unit `i` is the pair at `offset + 2 * i`, an
/// ASCII character if its high byte is zero.
struct Wide<'a> {
    data: &'a [u8],
}

impl<'a> Wide<'a> {
    fn new(data: &'a [u8], offset: usize) -> Self {
        Self {
            data: data.get(offset..).unwrap_or_default(),
        }
    }
}

impl Text for Wide<'_> {
    fn len(&self) -> usize {
        self.data.len() / 2
    }
    fn at(&self, i: usize) -> u8 {
        match self.data.get(2 * i..2 * i + 2) {
            Some(&[lo, 0]) if lo.is_ascii() => lo,
            _ => 0,
        }
    }
}

/// Adds every URL in `text` to `found`, stopping once it is full. `separators`: the
/// positions of "://" in `text`, in increasing order.
fn scan_urls(text: &impl Text, separators: impl Iterator<Item = usize>, found: &mut UrlSet) {
    // Anchor on "://" and look back for the scheme: the separator is much rarer in binary
    // data than the scheme letters. A URL's end skips the separators inside it.
    let mut next = 0;
    for i in separators {
        if found.is_full() {
            break;
        }
        if i < next {
            continue;
        }
        let Some(start) = scheme_start(text, i) else {
            continue;
        };
        match url_end(text, i + 3) {
            Some(end) => {
                let url = (start..end.min(start + MAX_URL_LEN))
                    .map(|k| char::from(text.at(k)))
                    .collect();
                found.add(url);
                next = end;
            }
            None => next = i + 3,
        }
    }
}

/// Start of the scheme whose "://" is at `sep`, if it is one we report.
fn scheme_start(text: &impl Text, sep: usize) -> Option<usize> {
    ["https", "http", "ftp"].iter().find_map(|scheme| {
        let start = sep.checked_sub(scheme.len())?;
        let matches = scheme
            .bytes()
            .enumerate()
            .all(|(k, c)| text.at(start + k).eq_ignore_ascii_case(&c));
        matches.then_some(start)
    })
}

fn is_userinfo(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b)
}

fn is_host(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._".contains(&b)
}

fn is_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#@!$&()*+,;=%".contains(&b)
}

/// End (exclusive) of the URL whose authority starts at `pos`, or `None` if there is no
/// plausible host there.
fn url_end(text: &impl Text, mut pos: usize) -> Option<usize> {
    let n = text.len();
    let scan = |from: usize, accept: fn(u8) -> bool| {
        let mut end = from;
        while end < n && accept(text.at(end)) {
            end += 1;
        }
        end
    };

    // Optional userinfo: only if the run ends in '@'; otherwise it was the host (and port).
    let userinfo_end = scan(pos, is_userinfo);
    if userinfo_end > pos && userinfo_end < n && text.at(userinfo_end) == b'@' {
        pos = userinfo_end + 1;
    }

    let host_start = pos;
    match text.at(pos) {
        b'[' => {
            pos = scan(pos + 1, |b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if pos == host_start + 1 || text.at(pos) != b']' {
                return None;
            }
            pos += 1;
        }
        b if b.is_ascii_alphanumeric() => pos = scan(pos, is_host),
        _ => return None,
    }

    if text.at(pos) == b':' && text.at(pos + 1).is_ascii_digit() {
        pos = scan(pos + 1, |b| b.is_ascii_digit());
    }

    if matches!(text.at(pos), b'/' | b'?' | b'#') {
        pos = scan(pos + 1, is_path);
    }

    // Drop trailing punctuation that belongs to the surrounding prose, never eating into
    // the host's first character. A closing parenthesis stays only if it closes one
    // opened inside the URL (as in Wikipedia links).
    let (mut open, mut close) = (0usize, 0usize);
    for k in host_start..pos {
        match text.at(k) {
            b'(' => open += 1,
            b')' => close += 1,
            _ => {}
        }
    }
    while pos > host_start + 1 {
        match text.at(pos - 1) {
            b'.' | b',' | b';' | b':' | b'!' | b'?' => pos -= 1,
            b')' if close > open => {
                close -= 1;
                pos -= 1;
            }
            _ => break,
        }
    }
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn strings(data: &[u8]) -> Vec<String> {
        extract_strings(data, &StringsOptions::default())
    }

    /// The quadratic scan `Utf16Runs` replaces: at each offset, count valid pairs.
    fn naive_utf16_runs(data: &[u8], min_len: usize) -> Vec<(usize, usize)> {
        let (mut out, mut pos) = (Vec::new(), 0);
        while pos + 1 < data.len() {
            let mut end = pos;
            while end + 1 < data.len() && data[end + 1] == 0 && is_printable(data[end]) {
                end += 2;
            }
            if (end - pos) / 2 >= min_len {
                out.push((pos, end));
                pos = end;
            } else {
                pos += 1;
            }
        }
        out
    }

    #[test]
    fn utf16_runs_equal_the_naive_scan() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..300 {
            let len = 1 + round * 7 % 500;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly NULs and printables, some noise: runs of every length.
                    match x % 10 {
                        0..=3 => 0,
                        4..=8 => b'a' + (x % 26) as u8,
                        _ => (x >> 8) as u8,
                    }
                })
                .collect();
            for min_len in [1, 2, 4, 6] {
                assert_eq!(
                    Utf16Runs::new(&data, min_len).collect::<Vec<_>>(),
                    naive_utf16_runs(&data, min_len),
                    "{data:?} {min_len}"
                );
            }
        }
    }

    #[test]
    fn ascii_runs_equal_split() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let data: Vec<u8> = (0..round * 3)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x.is_multiple_of(3) {
                        (x >> 8) as u8
                    } else {
                        b'a' + (x % 26) as u8
                    }
                })
                .collect();
            for min_len in [1, 3, 6] {
                let want: Vec<&[u8]> = data
                    .split(|&b| !is_printable(b))
                    .filter(|r| r.len() >= min_len)
                    .collect();
                assert_eq!(ascii_runs(&data, min_len).collect::<Vec<_>>(), want);
            }
        }
    }

    #[test]
    fn defaults_are_cuckoos() {
        let o = StringsOptions::default();
        assert_eq!(
            (o.min_len, o.max_count, o.max_len, o.max_scan),
            (6, 2048, 1024, 16 << 20)
        );
    }

    #[test]
    fn ascii_runs_at_the_minimum_length_boundary() {
        let data = b"\x00hello world\x00five5\x01sixsix\xffseven77\x1fabc\x7fdefghi";
        assert_eq!(
            strings(data),
            ["hello world", "sixsix", "seven77\x1fabc", "defghi"]
        );
        assert_eq!(strings(b"12345"), Vec::<String>::new());
        assert_eq!(strings(b"123456"), ["123456"]);
    }

    #[test]
    fn printable_range_is_unit_separator_to_tilde() {
        assert_eq!(strings(b" !\"#~}|{"), [" !\"#~}|{"]);
        // Upstream's class starts at 0x1f; 0x7f, high bytes, tab and newline break a run.
        assert_eq!(strings(b"abc\x1fdef"), ["abc\x1fdef"]);
        assert!(strings(b"abc\x7fghi\x80jkl\tmno\npqr").is_empty());
    }

    #[test]
    fn utf16le_runs_come_after_all_ascii_runs() {
        let mut data = wide("wide string here");
        data.extend_from_slice(b"\x00\x00narrow one\x01");
        data.extend_from_slice(&wide("short"));
        data.extend_from_slice(b"\x01");
        data.extend_from_slice(&wide("sixchr"));
        assert_eq!(
            strings(&data),
            ["narrow one", "wide string here", "sixchr"],
            "ASCII first, then UTF-16LE; 5-char wide run dropped"
        );
    }

    #[test]
    fn utf16le_matches_python_findall_semantics() {
        // Cross-checked with Python: re.findall(b"(?:[\x20-\x7e]\x00){6,}", data)
        assert_eq!(
            strings(b"ABCDEFGH\x00I\x00J\x00K\x00L\x00M\x00"),
            ["ABCDEFGH", "HIJKLM"]
        );
        assert_eq!(strings(b"\x01a\x00b\x00c\x00d\x00e\x00f\x00"), ["abcdef"]);
        assert_eq!(
            strings(b"a\x00b\x00c\x00d\x00e\x00\x00f\x00g\x00h\x00i\x00j\x00k\x00"),
            ["fghijk"]
        );
        // The last character of a NUL-terminated ASCII string starts a UTF-16LE pair, so it
        // joins a wide string that follows (Cuckoo reports the same).
        let mut data = b"narrow\x00".to_vec();
        data.extend_from_slice(&wide("short"));
        assert_eq!(strings(&data), ["narrow", "wshort"]);
        // A trailing lone byte cannot complete a pair.
        assert_eq!(strings(b"a\x00b\x00c\x00d\x00e\x00f"), Vec::<String>::new());
    }

    #[test]
    fn min_len_is_configurable_and_zero_means_one() {
        let opts = |min_len| StringsOptions {
            min_len,
            ..StringsOptions::default()
        };
        assert_eq!(extract_strings(b"ab\x00c\x00defg", &opts(3)), ["defg"]);
        // As with the regex, "b\0" is also a one-character UTF-16LE string.
        assert_eq!(extract_strings(b"ab\x00c", &opts(0)), ["ab", "c", "b"]);
        assert_eq!(extract_strings(&wide("xy"), &opts(1)), ["x", "y", "xy"]);
    }

    #[test]
    fn max_count_caps_the_total_ascii_first() {
        let mut data = Vec::new();
        for i in 0..10 {
            data.extend_from_slice(format!("string{i}\x01").as_bytes());
        }
        data.extend_from_slice(&wide("a wide one"));
        let opts = StringsOptions {
            max_count: 4,
            ..StringsOptions::default()
        };
        assert_eq!(
            extract_strings(&data, &opts),
            ["string0", "string1", "string2", "string3"]
        );
        let all = extract_strings(&data, &StringsOptions::default());
        assert_eq!(all.len(), 11);
        assert_eq!(all[10], "a wide one");
        let none = StringsOptions {
            max_count: 0,
            ..StringsOptions::default()
        };
        assert!(extract_strings(&data, &none).is_empty());
    }

    #[test]
    fn long_strings_are_truncated_to_max_len() {
        let opts = StringsOptions {
            max_len: 8,
            ..StringsOptions::default()
        };
        let mut data = b"0123456789abcdef\x00short!\x01".to_vec();
        data.extend_from_slice(&wide("wide and long string"));
        assert_eq!(
            extract_strings(&data, &opts),
            ["01234567", "short!", "wide and"]
        );
        let huge = vec![b'A'; 100_000];
        let out = strings(&huge);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 1024);
    }

    #[test]
    fn only_the_first_max_scan_bytes_are_searched() {
        let opts = StringsOptions {
            max_scan: 10,
            ..StringsOptions::default()
        };
        // The run crossing the boundary is cut there, like Python's read(MAX_FILESIZE).
        assert_eq!(extract_strings(b"\x00abcdefghijkl", &opts), ["abcdefghi"]);
        assert!(extract_strings(b"\x00\x00\x00\x00\x00abcdefghijkl", &opts).is_empty());
    }

    fn urls(data: &[u8]) -> Vec<String> {
        extract_urls(data)
    }

    #[test]
    fn finds_http_https_and_ftp_urls() {
        let data = b"\x00\x01GET http://example.com/path?q=1&x=2#frag\x00\
            https://10.0.0.1:8443/a/b.php\xff\
            ftp://user:pw@ftp.example.org/pub/file.zip\r\n\
            http://localhost\x00";
        assert_eq!(
            urls(data),
            [
                "http://example.com/path?q=1&x=2#frag",
                "https://10.0.0.1:8443/a/b.php",
                "ftp://user:pw@ftp.example.org/pub/file.zip",
                "http://localhost",
            ]
        );
    }

    #[test]
    fn urls_are_deduplicated_in_first_seen_order() {
        let data = b"http://b.example/ http://a.example/ http://b.example/ http://c.example/";
        assert_eq!(
            urls(data),
            [
                "http://b.example/",
                "http://a.example/",
                "http://c.example/"
            ]
        );
    }

    #[test]
    fn surrounding_punctuation_and_quotes_are_not_part_of_urls() {
        assert_eq!(
            urls(b"See http://example.com/foo."),
            ["http://example.com/foo"]
        );
        assert_eq!(
            urls(b"(see http://example.com/x)"),
            ["http://example.com/x"]
        );
        assert_eq!(
            urls(b"http://en.wikipedia.org/wiki/Foo_(bar), next"),
            ["http://en.wikipedia.org/wiki/Foo_(bar)"]
        );
        assert_eq!(urls(b"\"http://a.example/c\""), ["http://a.example/c"]);
        assert_eq!(urls(b"'http://a.example/c'"), ["http://a.example/c"]);
        assert_eq!(urls(b"<a href=http://a.example>"), ["http://a.example"]);
        assert_eq!(urls(b"http://example.com."), ["http://example.com"]);
    }

    #[test]
    fn schemes_match_case_insensitively_and_ports_and_ipv6_are_kept() {
        assert_eq!(urls(b"HTTP://EXAMPLE.COM/X"), ["HTTP://EXAMPLE.COM/X"]);
        assert_eq!(urls(b"hTtPs://h.example:"), ["hTtPs://h.example"]);
        assert_eq!(urls(b"http://[::1]:8080/x"), ["http://[::1]:8080/x"]);
        assert_eq!(urls(b"http://h.example:80"), ["http://h.example:80"]);
    }

    #[test]
    fn things_that_are_not_urls() {
        for data in [
            &b"http://"[..],
            b"http:///etc/passwd",
            b"file:///etc/passwd",
            b"mailto:someone@example.com",
            b"gopher://example.com/",
            b"http://-",
            b"http://[]/",
            b"http://[::1",
            b"://example.com",
            b"ttp://example.com",
        ] {
            assert!(urls(data).is_empty(), "{:?}", String::from_utf8_lossy(data));
        }
        // Embedded in a longer word, the scheme still starts the URL.
        assert_eq!(urls(b"xhttp://a.example"), ["http://a.example"]);
    }

    #[test]
    fn utf16le_urls_at_either_alignment() {
        let mut data = wide("GET http://wide.example/a?b=c ");
        data.push(0x01);
        data.extend_from_slice(&wide("ftp://odd.example/f"));
        data.extend_from_slice(b"\x00http://narrow.example/");
        assert_eq!(
            urls(&data),
            [
                "http://narrow.example/",
                "http://wide.example/a?b=c",
                "ftp://odd.example/f",
            ]
        );
    }

    #[test]
    fn url_count_and_length_are_capped() {
        let mut data = Vec::new();
        for i in 0..1500 {
            data.extend_from_slice(format!("http://host{i}.example/ ").as_bytes());
        }
        let found = urls(&data);
        assert_eq!(found.len(), MAX_URLS);
        assert_eq!(found[999], "http://host999.example/");

        let mut long = b"http://long.example/".to_vec();
        long.resize(100_000, b'a');
        long.extend_from_slice(b" http://after.example");
        let found = urls(&long);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].len(), MAX_URL_LEN);
        assert_eq!(found[1], "http://after.example");
    }
}
