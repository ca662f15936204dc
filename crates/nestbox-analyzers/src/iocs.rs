//! Indicators of compromise (IOCs) found in a sample's strings and in what the document
//! parsers extract (macro source, PDF JavaScript, shortcut arguments, decoded scripts).
//!
//! The result, [`Iocs`], is the report's `iocs` section: one deduplicated list per kind, in
//! first-seen order, capped per kind. Every API dialect derives its view from it (CAPE
//! `tasks/get/iocs`, Assemblyline `network.static.*` tags).
//!
//! Extraction is a hand-written tokenizer over printable text rather than a set of
//! regular expressions: each kind has a small grammar, the scan is linear, and the
//! false-positive filters (version numbers that look like IPv4 addresses, file names whose
//! extension is also a top-level domain) need context a regex does not give.
//!
//! Domains are accepted only if their suffix is in the public suffix list (the `psl`
//! crate compiles the list in; nothing is fetched) and a registrable label precedes it.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::strings::{each_string, extract_urls};

/// Most values kept per kind.
pub const MAX_PER_KIND: usize = 1000;

/// Longest value kept (longer ones are cut, so one run cannot make the section huge).
const MAX_VALUE_LEN: usize = 1024;

/// The `iocs` section: observables by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Iocs {
    /// `http`, `https` and `ftp` URLs.
    pub urls: Vec<String>,
    /// Domain names under a public suffix, lower-cased.
    pub domains: Vec<String>,
    /// IPv4 addresses (version-number lookalikes dropped).
    pub ipv4: Vec<String>,
    /// IPv6 addresses, in canonical form.
    pub ipv6: Vec<String>,
    /// E-mail addresses.
    pub emails: Vec<String>,
    /// Windows registry keys (`HKLM\…`, `HKEY_CURRENT_USER\…`, `SOFTWARE\…`).
    pub registry_keys: Vec<String>,
    /// Windows (`C:\…`, `\\server\share\…`, `%APPDATA%\…`) and Unix (`/etc/…`) paths.
    pub file_paths: Vec<String>,
    /// MD5 digests (32 hex digits), lower-cased.
    pub md5: Vec<String>,
    /// SHA-1 digests (40 hex digits), lower-cased.
    pub sha1: Vec<String>,
    /// SHA-256 digests (64 hex digits), lower-cased.
    pub sha256: Vec<String>,
}

/// The kinds, for iteration by name (`tasks/get/iocs`, tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IocKind {
    /// [`Iocs::urls`].
    Url,
    /// [`Iocs::domains`].
    Domain,
    /// [`Iocs::ipv4`].
    Ipv4,
    /// [`Iocs::ipv6`].
    Ipv6,
    /// [`Iocs::emails`].
    Email,
    /// [`Iocs::registry_keys`].
    RegistryKey,
    /// [`Iocs::file_paths`].
    FilePath,
    /// [`Iocs::md5`].
    Md5,
    /// [`Iocs::sha1`].
    Sha1,
    /// [`Iocs::sha256`].
    Sha256,
}

impl Iocs {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.lists().iter().all(|(_, l)| l.is_empty())
    }

    /// Each kind with its list.
    pub fn lists(&self) -> [(IocKind, &Vec<String>); 10] {
        [
            (IocKind::Url, &self.urls),
            (IocKind::Domain, &self.domains),
            (IocKind::Ipv4, &self.ipv4),
            (IocKind::Ipv6, &self.ipv6),
            (IocKind::Email, &self.emails),
            (IocKind::RegistryKey, &self.registry_keys),
            (IocKind::FilePath, &self.file_paths),
            (IocKind::Md5, &self.md5),
            (IocKind::Sha1, &self.sha1),
            (IocKind::Sha256, &self.sha256),
        ]
    }

    fn list_mut(&mut self, kind: IocKind) -> &mut Vec<String> {
        match kind {
            IocKind::Url => &mut self.urls,
            IocKind::Domain => &mut self.domains,
            IocKind::Ipv4 => &mut self.ipv4,
            IocKind::Ipv6 => &mut self.ipv6,
            IocKind::Email => &mut self.emails,
            IocKind::RegistryKey => &mut self.registry_keys,
            IocKind::FilePath => &mut self.file_paths,
            IocKind::Md5 => &mut self.md5,
            IocKind::Sha1 => &mut self.sha1,
            IocKind::Sha256 => &mut self.sha256,
        }
    }

    /// Adds one value of a kind, keeping first-seen order, no duplicates and the cap.
    pub fn add(&mut self, kind: IocKind, value: &str) {
        let mut value = value.to_owned();
        if value.len() > MAX_VALUE_LEN {
            let mut cut = MAX_VALUE_LEN;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
        }
        let list = self.list_mut(kind);
        if list.len() < MAX_PER_KIND && !list.contains(&value) {
            list.push(value);
        }
    }

    /// Adds everything in `other` (after what is already here).
    pub fn merge(&mut self, other: &Iocs) {
        for (kind, list) in other.lists() {
            for v in list {
                self.add(kind, v);
            }
        }
    }

    /// Adds a URL and the domain or IP address it names.
    pub fn add_url(&mut self, url: &str) {
        self.add(IocKind::Url, url);
        if let Some(host) = url_host(url) {
            if let Ok(ip) = host.parse::<Ipv4Addr>() {
                self.add(IocKind::Ipv4, &ip.to_string());
            } else if let Some(ip) = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
            {
                self.add(IocKind::Ipv6, &ip.to_string());
            } else if let Some(d) = registrable_domain(host, true) {
                self.add(IocKind::Domain, &d);
            }
        }
    }

    /// Scans one piece of decoded text (macro source, script, a string) for every kind.
    pub fn add_text(&mut self, text: &str) {
        for url in extract_urls(text.as_bytes()) {
            self.add_url(&url);
        }
        scan_text(text, self);
    }
}

/// Options of [`extract_iocs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocOptions {
    /// Minimum length of the ASCII/UTF-16LE strings searched (shorter runs cannot hold an
    /// indicator worth reporting).
    pub min_len: usize,
    /// Only the first `max_scan` bytes are searched.
    pub max_scan: usize,
}

impl Default for IocOptions {
    fn default() -> Self {
        Self {
            min_len: 4,
            max_scan: 16 * 1024 * 1024,
        }
    }
}

/// What one pass over a file's text finds: Cuckoo's string list, the URLs and the
/// indicators (the same as [`extract_strings`](crate::extract_strings),
/// [`extract_urls`] and [`extract_iocs`] with the strings' options, without walking the
/// strings twice and the URLs three times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextFindings {
    /// The `strings` section (capped and truncated per the options).
    pub strings: Vec<String>,
    /// `target.file.urls`.
    pub urls: Vec<String>,
    /// The `iocs` section.
    pub iocs: Iocs,
}

/// Strings, URLs and indicators of `data` in one pass (see [`TextFindings`]).
pub fn text_findings(data: &[u8], opts: &crate::StringsOptions) -> TextFindings {
    let data = &data[..data.len().min(opts.max_scan)];
    let urls = extract_urls(data);
    let mut iocs = Iocs::default();
    for url in &urls {
        iocs.add_url(url);
    }
    let mut strings = Vec::new();
    each_string(data, opts.min_len.max(1), |s| {
        if strings.len() < opts.max_count {
            // Strings are printable ASCII: bytes are characters.
            strings.push(s[..s.len().min(opts.max_len)].to_owned());
        }
        scan_text(s, &mut iocs);
    });
    TextFindings {
        strings,
        urls,
        iocs,
    }
}

/// Indicators in a file's ASCII and UTF-16LE strings.
pub fn extract_iocs(data: &[u8], opts: &IocOptions) -> Iocs {
    // The one pass, keeping no strings.
    let strings = crate::StringsOptions {
        min_len: opts.min_len,
        max_scan: opts.max_scan,
        max_count: 0,
        ..crate::StringsOptions::default()
    };
    text_findings(data, &strings).iocs
}

/// The host part of a URL (`[v6]` keeps its brackets), or `None`.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Runs every non-URL scanner over one string.
///
/// Most strings of a binary can hold no indicator at all, and one look at their
/// characters says which scanners could match: registry keys and Windows paths need a
/// `\`, Unix paths a `/`, domains, IPv4 and e-mail addresses a `.` or `@`, hashes 32 or
/// more characters, IPv6 two `:`. Skipping the others halves the time of this pass.
fn scan_text(s: &str, out: &mut Iocs) {
    scan_text_gated(s, out, true);
}

/// [`scan_text`]; `gate: false` runs every scanner (the tests check the gate loses
/// nothing).
fn scan_text_gated(s: &str, out: &mut Iocs, gate: bool) {
    let (mut backslash, mut slash, mut dot_or_at, mut colons) = (!gate, !gate, !gate, 0u8);
    if !gate {
        colons = 2;
    }
    for &c in s.as_bytes() {
        match c {
            b'\\' => backslash = true,
            b'/' => slash = true,
            b'.' | b'@' => dot_or_at = true,
            b':' => colons = colons.saturating_add(1),
            _ => {}
        }
    }
    if backslash {
        scan_registry(s, out);
    }
    if backslash || slash {
        scan_paths(s, out);
    }
    if dot_or_at || s.len() >= 32 {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !is_word(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            word(s, start, i, out);
        }
    }
    if colons >= 2 {
        scan_ipv6(s, out);
    }
}

/// Characters of the tokens domains, IPv4 addresses, e-mail addresses and hashes are
/// made of.
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'@' | b'+' | b'%')
}

/// Classifies one token `s[start..end]`.
fn word(s: &str, start: usize, end: usize, out: &mut Iocs) {
    let tok = s[start..end].trim_matches(|c: char| matches!(c, '.' | '-' | '_' | '%' | '+'));
    if tok.is_empty() {
        return;
    }
    if let Some((local, domain)) = tok.split_once('@') {
        if let Some(email) = email(local, domain) {
            out.add(IocKind::Email, &email);
        }
        return;
    }
    if let Some(kind) = hash_kind(tok) {
        out.add(kind, &tok.to_ascii_lowercase());
        return;
    }
    if tok.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        if let Some(ip) = ipv4(tok, &s[..start]) {
            out.add(IocKind::Ipv4, &ip);
        }
        return;
    }
    if let Some(d) = registrable_domain(tok, false) {
        out.add(IocKind::Domain, &d);
    }
}

fn email(local: &str, domain: &str) -> Option<String> {
    let local = local.trim_start_matches(['.', '-', '+', '%']);
    let ok_local = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c));
    let domain = registrable_domain(domain, true)?;
    ok_local.then(|| format!("{}@{}", local, domain))
}

/// `Some(kind)` for a 32/40/64-digit hex token that is not a run of one repeated digit and
/// mixes digits with letters (all-digit or all-letter runs are nearly always something
/// else: numbers, padding, alphabets).
fn hash_kind(tok: &str) -> Option<IocKind> {
    let kind = match tok.len() {
        32 => IocKind::Md5,
        40 => IocKind::Sha1,
        64 => IocKind::Sha256,
        _ => return None,
    };
    let b = tok.as_bytes();
    let hex = b.iter().all(u8::is_ascii_hexdigit);
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let mixed = digits > 0 && digits < b.len();
    let varied = b.iter().collect::<HashSet<_>>().len() > 4;
    // A real digest is one case; mixed case hex is more likely base64 or an identifier.
    let one_case = !(b.iter().any(u8::is_ascii_lowercase) && b.iter().any(u8::is_ascii_uppercase));
    (hex && mixed && varied && one_case).then_some(kind)
}

/// A dotted-quad IPv4 address, unless it is a version number in disguise: preceded by
/// `v`/`version`, starting with 0 or 255 (netmasks), or with leading zeros in an octet.
fn ipv4(tok: &str, before: &str) -> Option<String> {
    let parts: Vec<&str> = tok.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    if octets[0] == 0 || octets[0] == 255 {
        return None;
    }
    let lead = before.trim_end_matches([' ', '=', ':', '"', '\'']);
    let lower = lead.to_ascii_lowercase();
    if lower.ends_with('v')
        || lower.ends_with("version")
        || lower.ends_with("ver")
        || lower.ends_with("build")
        || lead.ends_with(',')
    {
        return None;
    }
    Some(Ipv4Addr::from(octets).to_string())
}

/// Top-level domains that are also common file extensions: `name.zip` in a string is a
/// file far more often than a host. Accepted when they come from a URL.
const EXTENSION_TLDS: &[&str] = &[
    "zip", "mov", "py", "sh", "pl", "rs", "so", "md", "pm", "cc", "app", "run", "exe", "cab",
    "bat", "ps", "js", "vb", "cs", "in", "im", "id", "name", "sys", "ini", "dat", "txt",
];

/// The lower-cased domain if `tok` is a host name under a known public suffix with at
/// least one registrable label before it.
///
/// Outside URLs, a top-level label with capitals in a token that is not all capitals is
/// taken for a program identifier (`System.IO`, `WScript.Network`), not a host.
fn registrable_domain(tok: &str, from_url: bool) -> Option<String> {
    let raw = tok.trim_end_matches('.');
    let raw_tld = raw.rsplit('.').next().unwrap_or("");
    if !from_url
        && raw_tld.bytes().any(|c| c.is_ascii_uppercase())
        && raw.bytes().any(|c| c.is_ascii_lowercase())
    {
        return None;
    }
    let d = raw.to_ascii_lowercase();
    if d.len() > 253 || !d.contains('.') {
        return None;
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || (from_url && c == b'_'));
        if !ok {
            return None;
        }
    }
    let tld = d.rsplit('.').next()?;
    if !tld.bytes().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    if !from_url && EXTENSION_TLDS.contains(&tld) {
        return None;
    }
    let suffix = psl::suffix(d.as_bytes())?;
    if !suffix.is_known() {
        return None;
    }
    psl::domain(d.as_bytes())?;
    Some(d)
}

/// IPv6 addresses: runs of hex digits, `:` and `.` (embedded IPv4) with at least two
/// colons that parse, excluding the unspecified and loopback addresses and bare `::x`
/// forms (C++ scopes and times are common in strings).
fn scan_ipv6(s: &str, out: &mut Iocs) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_hexdigit() || b[i] == b':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b':' || b[i] == b'.') {
            i += 1;
        }
        let before_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric());
        let after_ok = i == b.len() || !(b[i].is_ascii_alphanumeric());
        let tok = s[start..i].trim_end_matches('.');
        if !before_ok || !after_ok || tok.matches(':').count() < 2 {
            continue;
        }
        let groups = tok.split(':').filter(|g| !g.is_empty()).count();
        if groups < 3 {
            continue;
        }
        if let Ok(ip) = tok.parse::<Ipv6Addr>()
            && !ip.is_unspecified()
            && !ip.is_loopback()
        {
            out.add(IocKind::Ipv6, &ip.to_string());
        }
    }
}

/// Registry roots, long and short forms, matched case-insensitively.
const REGISTRY_ROOTS: &[&str] = &[
    "HKEY_LOCAL_MACHINE\\",
    "HKEY_CURRENT_USER\\",
    "HKEY_CLASSES_ROOT\\",
    "HKEY_USERS\\",
    "HKEY_CURRENT_CONFIG\\",
    "HKLM\\",
    "HKCU\\",
    "HKCR\\",
    "HKU\\",
    "HKCC\\",
    "SOFTWARE\\MICROSOFT\\",
    "SOFTWARE\\CLASSES\\",
    "SOFTWARE\\POLICIES\\",
    "SOFTWARE\\WOW6432NODE\\",
    "SYSTEM\\CURRENTCONTROLSET\\",
];

/// Registry keys: from a root to the end of the key (a quote, a control character or the
/// end of the string). Keys contain spaces (`Windows NT`), so the string end is the
/// natural boundary.
fn scan_registry(s: &str, out: &mut Iocs) {
    let upper = s.to_ascii_uppercase();
    let mut from = 0;
    while from < upper.len() {
        let Some((pos, root)) = REGISTRY_ROOTS
            .iter()
            .filter_map(|r| upper[from..].find(r).map(|p| (from + p, r)))
            .min_by_key(|(p, _)| *p)
        else {
            return;
        };
        // A root must start a word ("xHKLM\" is not one); the relative SOFTWARE\ forms are
        // also found inside a full key, which was already taken whole.
        let starts_word = pos == 0 || !s.as_bytes()[pos - 1].is_ascii_alphanumeric();
        let inside_previous = pos > 0 && s.as_bytes()[pos - 1] == b'\\';
        let rest = &s[pos..];
        let end = rest
            .find(|c: char| c == '"' || c == '\'' || c.is_control() || c == '<' || c == '>')
            .unwrap_or(rest.len());
        let key = rest[..end].trim_end_matches([' ', '\\', ',', ';', '.']);
        if starts_word && !inside_previous && key.len() > root.len() {
            out.add(IocKind::RegistryKey, key);
        }
        from = pos + end.max(root.len());
    }
}

/// Unix directories a path must start in to be reported (a lone `/word` is too common).
const UNIX_ROOTS: &[&str] = &[
    "/bin/",
    "/boot/",
    "/dev/",
    "/etc/",
    "/home/",
    "/lib/",
    "/lib64/",
    "/mnt/",
    "/opt/",
    "/proc/",
    "/root/",
    "/run/",
    "/sbin/",
    "/srv/",
    "/sys/",
    "/tmp/",
    "/usr/",
    "/var/",
    "/Library/",
    "/System/",
    "/Users/",
    "/Applications/",
    "/private/",
];

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"\\/._-~$%{}() #@+=,!&[]".contains(&c)
}

/// Windows paths (`C:\…`, `\\server\share\…`, `%VAR%\…`) and Unix paths under a known
/// root, up to the first character that cannot be part of one. Trailing spaces and
/// punctuation are dropped.
fn scan_paths(s: &str, out: &mut Iocs) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        // Where the scan for path characters starts (a drive's ':' is not one).
        let mut body = i;
        let found = if i + 2 < b.len()
            && b[i].is_ascii_alphabetic()
            && b[i + 1] == b':'
            && b[i + 2] == b'\\'
        {
            body = i + 2;
            true
        } else if b[i..].starts_with(b"\\\\")
            && b.get(i + 2).is_some_and(u8::is_ascii_alphanumeric)
            && (i == 0 || b[i - 1] != b'\\')
        {
            true
        } else if b[i] == b'%'
            && let Some(close) = b[i + 1..].iter().position(|&c| c == b'%')
            && close > 0
            && b[i + 1..i + 1 + close]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            && b.get(i + 2 + close) == Some(&b'\\')
        {
            true
        } else {
            b[i] == b'/'
                && (i == 0 || !is_path_char(b[i - 1]) || b[i - 1] == b' ')
                && UNIX_ROOTS.iter().any(|r| b[i..].starts_with(r.as_bytes()))
        };
        if !found {
            i += 1;
            continue;
        }
        // Spaces are allowed only in a quoted path ("C:\Program Files\x.exe"): unquoted,
        // a space ends it.
        let quoted = start > 0 && matches!(b[start - 1], b'"' | b'\'');
        let mut end = body;
        while end < b.len() && is_path_char(b[end]) && (quoted || b[end] != b' ') {
            end += 1;
        }
        let path = s[start..end].trim_end_matches([' ', '.', ',', ';', ')', '(']);
        // At least one component after the root.
        let components = path.split(['\\', '/']).filter(|c| !c.is_empty()).count();
        if components >= 2 {
            out.add(IocKind::FilePath, path);
        }
        i = end.max(start + 1);
    }
}

#[cfg(test)]
mod tests;
