//! A QEMU Machine Protocol client: screenshots (`screendump`), status, shutdown.
//!
//! QMP is line-delimited JSON over a unix socket: a greeting, `qmp_capabilities` to leave
//! negotiation mode, then one `{"return": …}` or `{"error": …}` per command, with
//! asynchronous `{"event": …}` lines interleaved (skipped here). Lines are bounded so a
//! misbehaving peer cannot grow memory.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// Longest QMP line read.
const MAX_LINE: usize = 1 << 20;

/// A negotiated QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

fn read_line(r: &mut BufReader<UnixStream>) -> Result<Value, String> {
    let mut buf = Vec::new();
    loop {
        let chunk = r.fill_buf().map_err(|e| format!("QMP read: {e}"))?;
        if chunk.is_empty() {
            return Err("QMP: the connection closed".to_owned());
        }
        if let Some(i) = chunk.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&chunk[..i]);
            r.consume(i + 1);
            break;
        }
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        r.consume(n);
        if buf.len() > MAX_LINE {
            return Err("QMP: line too long".to_owned());
        }
    }
    serde_json::from_slice(&buf).map_err(|e| format!("QMP: not JSON: {e}"))
}

impl Qmp {
    /// Connects and leaves capabilities-negotiation mode.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, String> {
        let s = UnixStream::connect(path)
            .map_err(|e| format!("QMP connect {}: {e}", path.display()))?;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let writer = s.try_clone().map_err(|e| e.to_string())?;
        let mut q = Qmp {
            reader: BufReader::new(s),
            writer,
        };
        let greeting = read_line(&mut q.reader)?;
        if greeting.get("QMP").is_none() {
            return Err(format!("QMP: unexpected greeting {greeting}"));
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    /// Runs a command; its `return` value, or the QMP error's description.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, String> {
        let mut msg = json!({"execute": command});
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| format!("QMP write: {e}"))?;
        loop {
            let v = read_line(&mut self.reader)?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(format!(
                    "QMP {command}: {}",
                    e["desc"].as_str().unwrap_or("error")
                ));
            }
            // An event: keep reading.
        }
    }

    /// Writes the screen to `file` as PNG.
    pub fn screendump(&mut self, file: &Path) -> Result<(), String> {
        self.execute(
            "screendump",
            Some(json!({"filename": file.to_string_lossy(), "format": "png"})),
        )
        .map(|_| ())
    }

    /// `running`, `paused`, `inmigrate`, … from `query-status`.
    pub fn status(&mut self) -> Result<String, String> {
        let r = self.execute("query-status", None)?;
        Ok(r["status"].as_str().unwrap_or("").to_owned())
    }

    /// Stops QEMU at once (the run's overlay is thrown away anyway).
    pub fn quit(&mut self) -> Result<(), String> {
        self.execute("quit", None).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A QMP peer that greets, answers capabilities, sends an event before each answer,
    /// and fails `screendump` to a path without a directory.
    fn fake(path: &Path) -> std::thread::JoinHandle<Vec<String>> {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
                .unwrap();
            let mut seen = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let v: Value = serde_json::from_str(&line).unwrap();
                let cmd = v["execute"].as_str().unwrap().to_owned();
                w.write_all(b"{\"event\": \"RTC_CHANGE\", \"data\": {}}\n")
                    .unwrap();
                let answer = match cmd.as_str() {
                    "query-status" => json!({"return": {"status": "running", "running": true}}),
                    "screendump"
                        if !v["arguments"]["filename"]
                            .as_str()
                            .unwrap()
                            .starts_with('/') =>
                    {
                        json!({"error": {"class": "GenericError", "desc": "Could not open"}})
                    }
                    _ => json!({"return": {}}),
                };
                w.write_all(format!("{answer}\n").as_bytes()).unwrap();
                seen.push(cmd);
                line.clear();
            }
            seen
        })
    }

    #[test]
    fn negotiates_skips_events_and_maps_errors() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("qmp.sock");
        let h = fake(&sock);
        let mut q = Qmp::connect(&sock, Duration::from_secs(5)).unwrap();
        assert_eq!(q.status().unwrap(), "running");
        q.screendump(&d.path().join("s.png")).unwrap();
        let e = q.screendump(Path::new("rel.png")).unwrap_err();
        assert!(e.contains("Could not open"), "{e}");
        q.quit().unwrap();
        drop(q);
        assert_eq!(
            h.join().unwrap(),
            [
                "qmp_capabilities",
                "query-status",
                "screendump",
                "screendump",
                "quit"
            ]
        );
    }

    #[test]
    fn a_peer_that_is_not_qmp_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("x.sock");
        let l = UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"hello\n");
        });
        assert!(Qmp::connect(&sock, Duration::from_secs(5)).is_err());
    }
}
