//! `nestbox submit`: a minimal Cuckoo API client, so a user can try the server without
//! curl. Files are streamed from disk into the multipart body, not read whole.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};

/// Submits a file or URL and prints the server's answer.
pub fn run(target: &str, server: &str, token: Option<&str>) -> anyhow::Result<()> {
    let base = server.trim_end_matches('/');
    let lower = target.to_ascii_lowercase();
    let is_url = lower.starts_with("http://") || lower.starts_with("https://");
    let agent = ureq::Agent::new_with_defaults();
    // Check reachability and the token first: a server that refuses the request answers
    // before reading an upload, and the client would only see a broken pipe mid-stream.
    let mut probe = agent.get(format!("{base}/cuckoo/status"));
    if let Some(t) = token {
        probe = probe.header("Authorization", &format!("Bearer {t}"));
    }
    let probe = probe
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .with_context(|| format!("cannot reach {base}"))?;
    if !probe.status().is_success() {
        let status = probe.status();
        let text = probe.into_body().read_to_string().unwrap_or_default();
        bail!("server answered {status}: {}", text.trim());
    }
    let (url, content_type, body): (String, String, Box<dyn Read + Send>) = if is_url {
        let form = format!("url={}", encode(target));
        (
            format!("{base}/tasks/create/url"),
            "application/x-www-form-urlencoded".to_owned(),
            Box::new(std::io::Cursor::new(form.into_bytes())),
        )
    } else {
        let path = Path::new(target);
        let file = std::fs::File::open(path).with_context(|| format!("opening {target}"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let boundary = "nestbox-boundary-7d3c1f0a9b";
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            name.replace(['"', '\r', '\n'], "_")
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let body = std::io::Cursor::new(head.into_bytes())
            .chain(file)
            .chain(std::io::Cursor::new(tail.into_bytes()));
        (
            format!("{base}/tasks/create/file"),
            format!("multipart/form-data; boundary={boundary}"),
            Box::new(body),
        )
    };
    let mut req = agent.post(&url).header("Content-Type", &content_type);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut reader = body;
    let resp = req
        .config()
        .http_status_as_error(false)
        .build()
        .send(ureq::SendBody::from_reader(&mut reader))
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp
        .into_body()
        .read_to_string()
        .context("reading the answer")?;
    if !status.is_success() {
        bail!("server answered {status}: {}", text.trim());
    }
    println!("{}", text.trim());
    Ok(())
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn encode(s: &str) -> String {
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
