//! A client for the Cuckoo (0.10) and CAPE (0.22) guest agents.
//!
//! Both agents are single-request HTTP/1.0 servers: one request per connection, the
//! connection closed after the response, no `Content-Length` on JSON answers (the body
//! ends at close), no `Content-Type`. So this is a small blocking HTTP/1.0 client over a
//! `TcpStream` rather than a general HTTP library: it writes one request, reads to EOF
//! (bounded in size and time) and parses the status line. Requests with a file part are
//! `multipart/form-data` (the agents read them with `cgi.FieldStorage`), the others are
//! urlencoded, as Cuckoo's host sends them with `requests`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// Largest agent answer read (a `/retrieve` of a big file is not something the host does).
const MAX_RESPONSE: u64 = 64 << 20;

/// One form field.
#[derive(Debug, Clone)]
pub enum Field {
    /// A plain value.
    Text(String, String),
    /// A file part: field name, file name, content.
    File(String, String, Vec<u8>),
}

impl Field {
    /// A plain field.
    pub fn text(name: &str, value: impl Into<String>) -> Field {
        Field::Text(name.to_owned(), value.into())
    }
}

/// An agent's answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum AgentError {
    /// Connecting, writing or reading failed (includes "no response at all").
    Io(std::io::Error),
    /// The answer was not HTTP.
    Protocol(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Io(e) => write!(f, "agent I/O: {e}"),
            AgentError::Protocol(m) => write!(f, "agent protocol: {m}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<std::io::Error> for AgentError {
    fn from(e: std::io::Error) -> Self {
        AgentError::Io(e)
    }
}

/// The agent at one address.
#[derive(Debug, Clone)]
pub struct AgentClient {
    /// Where the agent listens (for a slirp guest: the host-forwarded port).
    pub addr: SocketAddr,
    /// Connect/read/write timeout of one request.
    pub timeout: Duration,
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The body and content type of a form.
pub fn encode_form(fields: &[Field]) -> (String, Vec<u8>) {
    if !fields.iter().any(|f| matches!(f, Field::File(..))) {
        let body = fields
            .iter()
            .filter_map(|f| match f {
                Field::Text(k, v) => Some(format!("{}={}", urlencode(k), urlencode(v))),
                Field::File(..) => None,
            })
            .collect::<Vec<_>>()
            .join("&");
        return (
            "application/x-www-form-urlencoded".to_owned(),
            body.into_bytes(),
        );
    }
    let boundary = format!("nestbox{:016x}", nonce());
    let mut body = Vec::new();
    for f in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match f {
            Field::Text(k, v) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{k}\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(v.as_bytes());
            }
            Field::File(k, name, data) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{k}\"; filename=\"{}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n",
                        name.replace(['"', '\r', '\n'], "_")
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32
}

impl AgentClient {
    /// A client for `addr`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        AgentClient { addr, timeout }
    }

    /// Whether something accepts TCP connections there (the host's wait loop).
    pub fn reachable(&self) -> bool {
        TcpStream::connect_timeout(&self.addr, self.timeout.min(Duration::from_secs(1))).is_ok()
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Response, AgentError> {
        self.send("GET", path, None)
    }

    /// `POST path` with a form.
    pub fn post(&self, path: &str, fields: &[Field]) -> Result<Response, AgentError> {
        self.send("POST", path, Some(encode_form(fields)))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<Response, AgentError> {
        let mut s = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", self.addr);
        let data = match body {
            Some((ctype, data)) => {
                req.push_str(&format!(
                    "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
                    data.len()
                ));
                data
            }
            None => Vec::new(),
        };
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        s.write_all(&data)?;
        s.flush()?;
        let mut raw = Vec::new();
        s.take(MAX_RESPONSE).read_to_end(&mut raw)?;
        parse_response(&raw)
    }
}

/// Parses an HTTP/1.x response read to EOF; honours `Content-Length` when present.
pub fn parse_response(raw: &[u8]) -> Result<Response, AgentError> {
    if raw.is_empty() {
        return Err(AgentError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no response (the agent closed the connection)",
        )));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| AgentError::Protocol("no end of headers".to_owned()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(AgentError::Protocol(format!(
            "not an HTTP response: {:?}",
            status_line.chars().take(80).collect::<String>()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| AgentError::Protocol(format!("bad status line {status_line:?}")))?;
    let mut body = raw[split + 4..].to_vec();
    for l in lines {
        if let Some((k, v)) = l.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
            && let Ok(n) = v.trim().parse::<usize>()
        {
            body.truncate(n);
        }
    }
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let (ct, b) = encode_form(&[Field::text("status", "complete"), Field::text("d", "a b&c")]);
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(b, b"status=complete&d=a+b%26c");
        let (ct, b) = encode_form(&[
            Field::text("filepath", "/tmp/x"),
            Field::File("file".into(), "sample.bin".into(), b"MZ\x00".to_vec()),
        ]);
        assert!(ct.starts_with("multipart/form-data; boundary="));
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("name=\"file\"; filename=\"sample.bin\""));
        assert!(text.contains("name=\"filepath\"\r\n\r\n/tmp/x\r\n"));
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n{\"a\": 1}").unwrap();
        assert_eq!((r.status, r.json()["a"].as_i64()), (200, Some(1)));
        let r = parse_response(b"HTTP/1.0 404 NF\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (404, 0));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcdef").unwrap();
        assert_eq!(r.body, b"ab");
        for bad in [
            &b""[..],
            b"garbage",
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.0 abc\r\n\r\n",
        ] {
            assert!(parse_response(bad).is_err());
        }
    }
}
