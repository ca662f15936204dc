//! nestbox's own guest agent: the Cuckoo 0.10 / CAPE 0.22 agent protocol in one static
//! binary (`nestbox-agent`), for Linux guests without Python, and the reference the host
//! side is tested against.
//!
//! Behaviour follows the upstream agents as recorded in the specs (cuckoo.md §7.1–7.2,
//! cape.md §7): HTTP/1.0, one request per connection, JSON bodies without Content-Type
//! or Content-Length (except `/retrieve`), routes matched against the raw path so a
//! query string or a trailing slash is a 404, errors as `{"message", "error_code"}`
//! with that status, and pinning (after `GET /pinning` other addresses get no answer
//! at all, except `POST /status` from 127.0.0.1). The dialect decides the few places
//! where the two differ: the `GET /` identity and features, the initial status (`null`
//! vs `"init"`), status validation, and whether `/mkdir` and `/store` create parents.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::form::{self, Form};

/// Which upstream agent to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Cuckoo's agent.py 0.10.
    Cuckoo,
    /// CAPE's agent.py 0.22.
    Cape,
}

/// Largest request body accepted (the `largefile` feature).
const MAX_BODY: usize = 1 << 30;

#[derive(Debug, Default)]
struct State {
    status: Option<String>,
    description: Option<String>,
    pinned: Option<IpAddr>,
    stop: bool,
}

/// A running agent's shared state.
#[derive(Clone)]
pub struct Agent {
    dialect: Dialect,
    state: Arc<Mutex<State>>,
}

struct Reply {
    code: u16,
    body: Vec<u8>,
    length: bool,
}

fn reply(code: u16, v: Value) -> Reply {
    Reply {
        code,
        body: v.to_string().into_bytes(),
        length: false,
    }
}

fn ok(message: &str, extra: Value) -> Reply {
    let mut v = json!({ "message": message });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    reply(200, v)
}

fn err(code: u16, message: &str) -> Reply {
    reply(code, json!({"message": message, "error_code": code}))
}

fn exception(message: &str, e: &dyn std::fmt::Display) -> Reply {
    reply(
        500,
        json!({"message": message, "error_code": 500, "traceback": e.to_string()}),
    )
}

impl Agent {
    /// A fresh agent.
    pub fn new(dialect: Dialect) -> Agent {
        let status = match dialect {
            Dialect::Cuckoo => None,
            Dialect::Cape => Some("init".to_owned()),
        };
        Agent {
            dialect,
            state: Arc::new(Mutex::new(State {
                status,
                ..State::default()
            })),
        }
    }

    /// Serves until `GET /kill`.
    pub fn serve(&self, listener: TcpListener) {
        for conn in listener.incoming() {
            let Ok(s) = conn else { continue };
            let me = self.clone();
            // One request at a time, like the upstream Cuckoo agent; a slow client cannot
            // block the next for longer than the timeouts.
            me.handle(s);
            if self.state.lock().is_ok_and(|st| st.stop) {
                return;
            }
        }
    }

    fn handle(&self, mut s: TcpStream) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
        let peer = s.peer_addr().map(|a| a.ip()).ok();
        let Some((method, path, ctype, body)) = read_request(&mut s) else {
            return;
        };
        let pinned = self.state.lock().ok().and_then(|st| st.pinned);
        if let (Some(pin), Some(peer)) = (pinned, peer)
            && pin != peer
            && !(peer.is_loopback() && method == "POST" && path == "/status")
        {
            // No answer at all: the connection just closes.
            return;
        }
        let form = form::parse(&ctype, &body);
        let r = self.route(&method, &path, &form, peer);
        let mut head = format!(
            "HTTP/1.0 {} {}\r\nServer: {} Agent nestbox\r\n",
            r.code,
            if r.code < 400 { "OK" } else { "Error" },
            match self.dialect {
                Dialect::Cuckoo => "Cuckoo",
                Dialect::Cape => "CAPE",
            }
        );
        if r.length {
            head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
        }
        head.push_str("\r\n");
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(&r.body);
    }

    fn route(&self, method: &str, path: &str, f: &Form, peer: Option<IpAddr>) -> Reply {
        let need = |k: &str, msg: &str| {
            f.get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(400, msg))
        };
        match (method, path) {
            ("GET", "/") => match self.dialect {
                Dialect::Cuckoo => ok(
                    "Cuckoo Agent!",
                    json!({"version": "0.10", "features": ["execpy", "pinning", "logs", "largefile", "unicodepath"]}),
                ),
                Dialect::Cape => ok(
                    "CAPE Agent!",
                    json!({"version": "0.22", "is_user_admin": nix_is_root(),
                        "features": ["execpy", "execute", "pinning", "logs", "largefile", "unicodepath", "subdir_upload"]}),
                ),
            },
            ("GET", "/status") => {
                let st = self
                    .state
                    .lock()
                    .map(|s| (s.status.clone(), s.description.clone()))
                    .unwrap_or_default();
                ok(
                    "Analysis status",
                    json!({"status": st.0, "description": st.1}),
                )
            }
            ("POST", "/status") => {
                let raw = f.get("status").unwrap_or("");
                let status = match (self.dialect, raw) {
                    (_, "") if self.dialect == Dialect::Cuckoo => {
                        return err(400, "No status has been provided");
                    }
                    (Dialect::Cuckoo, s) => s.to_owned(),
                    (Dialect::Cape, s) => match s {
                        "1" | "init" => "init",
                        "2" | "running" => "running",
                        "3" | "complete" => "complete",
                        "4" | "failed" => "failed",
                        "5" | "exception" => "exception",
                        _ => return err(400, "No valid status has been provided"),
                    }
                    .to_owned(),
                };
                if let Ok(mut st) = self.state.lock() {
                    st.status = Some(status);
                    st.description = f.get("description").map(str::to_owned);
                }
                ok("Analysis status updated", json!({}))
            }
            ("GET", "/logs") => ok("Agent logs", json!({"stdout": "", "stderr": ""})),
            ("GET", "/system") => ok("System", json!({"system": "Linux"})),
            ("GET", "/environ") => {
                let env: serde_json::Map<String, Value> = std::env::vars()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                ok("Environment variables", json!({"environ": env}))
            }
            ("GET", "/path") => ok(
                "Agent path",
                json!({"filepath": std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()}),
            ),
            ("POST", "/mkdir") => {
                let dir = match need("dirpath", "No dirpath has been provided") {
                    Ok(d) => d,
                    Err(e) => return e,
                };
                let r = match self.dialect {
                    Dialect::Cuckoo if Path::new(dir).exists() => {
                        Err(std::io::Error::other("the directory exists"))
                    }
                    _ => std::fs::create_dir_all(dir),
                };
                match r {
                    Ok(()) => ok("Successfully created directory", json!({})),
                    Err(e) => exception("Error creating directory", &e),
                }
            }
            ("GET" | "POST", "/mktemp" | "/mkdtemp") => {
                let base = f
                    .get("dirpath")
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| std::env::temp_dir().to_string_lossy().into_owned());
                let name = format!(
                    "{}{:x}{}",
                    f.get("prefix").unwrap_or("tmp"),
                    nonce(),
                    f.get("suffix").unwrap_or("")
                );
                let p = Path::new(&base).join(name);
                let dir = path == "/mkdtemp";
                let r = if dir {
                    std::fs::create_dir(&p)
                } else {
                    std::fs::File::create_new(&p).map(|_| ())
                };
                match (r, dir) {
                    (Ok(()), true) => ok(
                        "Successfully created temporary directory",
                        json!({"dirpath": p}),
                    ),
                    (Ok(()), false) => ok(
                        "Successfully created temporary file",
                        json!({"filepath": p}),
                    ),
                    (Err(e), true) => exception("Error creating temporary directory", &e),
                    (Err(e), false) => exception("Error creating temporary file", &e),
                }
            }
            ("POST", "/store") => {
                let fp = match need("filepath", "No filepath has been provided") {
                    Ok(p) => p,
                    Err(e) => return e,
                };
                let Some((_, data)) = f.files.get("file") else {
                    return err(400, "No file has been provided");
                };
                if self.dialect == Dialect::Cape
                    && let Some(parent) = Path::new(fp).parent()
                {
                    let _ = std::fs::create_dir_all(parent);
                }
                match std::fs::write(fp, data) {
                    Ok(()) => ok("Successfully stored file", json!({})),
                    Err(e) => exception("Error storing file", &e),
                }
            }
            ("POST", "/retrieve") => {
                let fp = match need("filepath", "No filepath has been provided") {
                    Ok(p) => p,
                    Err(e) => return e,
                };
                match std::fs::read(fp) {
                    Ok(b) => Reply {
                        code: 200,
                        body: b,
                        length: true,
                    },
                    Err(_) => Reply {
                        code: 404,
                        body: Vec::new(),
                        length: true,
                    },
                }
            }
            ("POST", "/extract") => {
                let dir = match need("dirpath", "No dirpath has been provided") {
                    Ok(d) => d,
                    Err(e) => return e,
                };
                let Some((_, data)) = f.files.get("zipfile") else {
                    return err(400, "No zip file has been provided");
                };
                match zip::ZipArchive::new(std::io::Cursor::new(data.clone()))
                    .and_then(|mut z| z.extract(dir))
                {
                    Ok(()) => ok("Successfully extracted zip file", json!({})),
                    Err(e) => exception("Error extracting zip file", &e),
                }
            }
            ("POST", "/remove") => {
                let p = match need("path", "No path has been provided") {
                    Ok(p) => Path::new(p),
                    Err(e) => return e,
                };
                if p.is_dir() {
                    match std::fs::remove_dir_all(p) {
                        Ok(()) => ok("Successfully deleted directory", json!({})),
                        Err(e) => exception("Error removing file or directory", &e),
                    }
                } else if p.exists() || p.is_symlink() {
                    match std::fs::remove_file(p) {
                        Ok(()) => ok("Successfully deleted file", json!({})),
                        Err(e) => exception("Error removing file or directory", &e),
                    }
                } else {
                    err(404, "Path provided does not exist")
                }
            }
            ("POST", "/execute") => {
                let cmd = match need("command", "No command has been provided") {
                    Ok(c) => c,
                    Err(e) => return e,
                };
                let c = if f.has("shell") {
                    let mut c = Command::new("/bin/sh");
                    c.arg("-c").arg(cmd);
                    c
                } else {
                    Command::new(cmd)
                };
                self.run(c, f)
            }
            ("POST", "/execpy") => {
                let py = match need("filepath", "No Python file has been provided") {
                    Ok(p) => p,
                    Err(e) => return e,
                };
                let mut c = Command::new("python3");
                c.arg(py);
                self.run(c, f)
            }
            ("GET", "/pinning") => {
                let Ok(mut st) = self.state.lock() else {
                    return err(500, "Agent state is broken");
                };
                if st.pinned.is_some() {
                    return err(500, "Agent has already been pinned to an IP!");
                }
                st.pinned = peer;
                ok(
                    "Successfully pinned Agent",
                    json!({"client_ip": peer.map(|p| p.to_string())}),
                )
            }
            ("GET", "/kill") => {
                if let Ok(mut st) = self.state.lock() {
                    st.stop = true;
                }
                ok("Quit the Cuckoo Agent", json!({}))
            }
            _ => err(404, "Route not found"),
        }
    }

    fn run(&self, mut c: Command, f: &Form) -> Reply {
        if let Some(cwd) = f.get("cwd").filter(|c| !c.is_empty()) {
            c.current_dir(cwd);
        }
        c.stdin(Stdio::null());
        if f.has("async") {
            c.stdout(Stdio::null()).stderr(Stdio::null());
            return match c.spawn() {
                Ok(child) => ok(
                    "Successfully executed command",
                    json!({"stdout": null, "stderr": null, "process_id": child.id()}),
                ),
                Err(e) => exception("Error executing command", &e),
            };
        }
        match c.output() {
            Ok(o) => ok(
                "Successfully executed command",
                json!({"stdout": String::from_utf8_lossy(&o.stdout), "stderr": String::from_utf8_lossy(&o.stderr)}),
            ),
            Err(e) => exception("Error executing command", &e),
        }
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ N.fetch_add(1, Ordering::Relaxed).rotate_left(32)
}

/// Reads one request: method, raw path, content type, body (bounded).
fn read_request(s: &mut TcpStream) -> Option<(String, String, String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut rl = lines.next()?.split_whitespace();
    let method = rl.next()?.to_owned();
    let path = rl.next()?.to_owned();
    let mut len = 0usize;
    let mut ctype = String::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().ok()?,
                "content-type" => ctype = v.trim().to_owned(),
                _ => {}
            }
        }
    }
    if len > MAX_BODY {
        return None;
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((method, path, ctype, body))
}
