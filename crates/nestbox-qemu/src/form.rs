//! Server-side parsing of agent requests: the request head, urlencoded and multipart
//! bodies (what `cgi.FieldStorage` accepts in the upstream agents). Total: malformed
//! input yields fewer fields, never a panic.

use std::collections::BTreeMap;

/// A parsed form: plain fields and file parts (`name → (filename, bytes)`).
#[derive(Debug, Default, Clone)]
pub struct Form {
    /// Plain fields (the last of a repeated name wins).
    pub fields: BTreeMap<String, String>,
    /// File parts.
    pub files: BTreeMap<String, (String, Vec<u8>)>,
}

impl Form {
    /// A plain field.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }

    /// Whether a field is present (the agents test presence for `async`/`shell`).
    pub fn has(&self, k: &str) -> bool {
        self.fields.contains_key(k)
    }
}

/// `%XX` and `+` decoding.
pub fn urldecode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a body by its content type.
pub fn parse(content_type: &str, body: &[u8]) -> Form {
    let mut form = Form::default();
    let ct = content_type.trim();
    if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        if let Some(b) = ct
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
        {
            multipart(b.trim_matches('"'), body, &mut form);
        }
    } else if ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        for kv in String::from_utf8_lossy(body)
            .split('&')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            form.fields.insert(urldecode(k), urldecode(v));
        }
    }
    form
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn param(headers: &str, key: &str) -> Option<String> {
    let lower = headers.to_ascii_lowercase();
    let pat = format!("{key}=\"");
    let i = lower.find(&pat)? + pat.len();
    let j = headers[i..].find('"')? + i;
    Some(headers[i..j].to_owned())
}

fn multipart(boundary: &str, body: &[u8], form: &mut Form) {
    let delim = format!("--{boundary}").into_bytes();
    let Some(mut pos) = find(body, &delim, 0) else {
        return;
    };
    for _ in 0..10_000 {
        let start = pos + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            return;
        }
        let Some(next) = find(body, &delim, start) else {
            return;
        };
        let part = &body[start..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(h) = find(part, b"\r\n\r\n", 0) {
            let headers = String::from_utf8_lossy(&part[..h]).into_owned();
            let data = &part[h + 4..];
            // `name=` must not match inside `filename=`.
            let name = headers.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix("name=\"")
                    .map(|r| r.trim_end_matches('"').to_owned())
            });
            if let Some(name) = name {
                match param(&headers, "filename") {
                    Some(f) => {
                        form.files.insert(name, (f, data.to_vec()));
                    }
                    None => {
                        form.fields
                            .insert(name, String::from_utf8_lossy(data).into_owned());
                    }
                }
            }
        }
        pos = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Field, encode_form};

    #[test]
    fn round_trips_the_client_encoding() {
        let fields = vec![
            Field::text("filepath", "C:\\a b\\x.conf"),
            Field::File(
                "file".into(),
                "analysis.conf".into(),
                b"[analysis]\r\nid = 1\r\n--x".to_vec(),
            ),
        ];
        let (ct, body) = encode_form(&fields);
        let f = parse(&ct, &body);
        assert_eq!(f.get("filepath"), Some("C:\\a b\\x.conf"));
        assert_eq!(f.files["file"].0, "analysis.conf");
        assert_eq!(f.files["file"].1, b"[analysis]\r\nid = 1\r\n--x");
        let (ct, body) =
            encode_form(&[Field::text("status", "complete"), Field::text("d", "a+b%")]);
        let f = parse(&ct, &body);
        assert_eq!(
            (f.get("status"), f.get("d")),
            (Some("complete"), Some("a+b%"))
        );
    }

    #[test]
    fn hostile_bodies() {
        for (ct, b) in [
            (
                "multipart/form-data; boundary=x",
                &b"--x\r\nno headers end"[..],
            ),
            ("multipart/form-data; boundary=x", b"--x"),
            ("multipart/form-data", b"--x\r\n\r\n"),
            ("application/x-www-form-urlencoded", b"%%%=%z&&=&a"),
            ("text/xml", b"<x/>"),
        ] {
            let _ = parse(ct, b);
        }
        assert_eq!(urldecode("%4"), "%4");
        assert_eq!(urldecode("%41%zz"), "A%zz");
    }
}
