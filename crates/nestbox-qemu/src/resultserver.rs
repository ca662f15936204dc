//! The result server: what the analyzer in the guest uploads (cuckoo.md §7.4).
//!
//! One stream per TCP connection, its first line the header:
//! `BSON <pid>` (a monitor's behaviour log → `logs/<pid>.bson`), `FILE 2` with the
//! destination, the original guest path and the pids on the next lines (v1 `FILE`: the
//! destination only) → written under the analysis directory, or `LOG` → `analysis.log`.
//!
//! Guests on slirp (`restrict=on`) can reach nothing on the host, and a slirp `guestfwd`
//! to a host socket carries a single connection for the VM's life. So the only listener is
//! slirp's own, on the result-server address inside the guest network: each connection
//! there is handed to a fresh `head -c <cap>` writing into the run's spool directory
//! ([`guestfwd_rule`]), and the streams are read from the spool once the guest is stopped
//! ([`ingest_spool`]). Nothing on the host listens; the size of each stream is capped
//! while it is written. [`ingest`] parses one stream wherever it comes from and is where
//! the rules live: header lines at most 4 KiB, destinations only inside
//! `files|shots|buffer|extracted|memory|aux` with no `..`, never overwriting (O_EXCL),
//! each upload and the whole run capped in size and count, bad streams refused with a
//! reason instead of a panic.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Where uploads may go (Cuckoo's list, plus CAPE's `aux` where `nestbox-analyzer` puts
/// its per-process traces).
pub const UPLOAD_DIRS: &[&str] = &["files", "shots", "buffer", "extracted", "memory", "aux"];
/// Longest header line (Cuckoo: 4 KiB).
pub const MAX_LINE: usize = 4096;

/// Caps for one analysis.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One upload (Cuckoo's `upload_max_size`, 128 MiB).
    pub upload_max_size: u64,
    /// All uploads of the run together.
    pub total_max_size: u64,
    /// Streams of the run.
    pub max_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            upload_max_size: 128 << 20,
            total_max_size: 512 << 20,
            max_streams: 2000,
        }
    }
}

/// What the streams of one run left in its results directory.
#[derive(Debug, Default)]
pub struct Received {
    /// Streams accepted.
    pub streams: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Uploaded files: (destination relative to the results dir, original guest path, pids).
    pub files: Vec<(String, String, Vec<i64>)>,
    /// Why streams were refused or cut.
    pub notes: Vec<String>,
}

fn line(r: &mut dyn BufRead) -> Result<String, String> {
    let mut buf = Vec::new();
    r.take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|e| e.to_string())?;
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            "header line longer than 4 KiB".to_owned()
        } else {
            "stream ended inside the header".to_owned()
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The destination of an upload, relative to the results directory: NUL and `:` are
/// dropped as Cuckoo does, both separators split, and it must stay inside one of
/// [`UPLOAD_DIRS`].
pub fn sanitize_path(dump_path: &str) -> Result<String, String> {
    let cleaned: String = dump_path
        .chars()
        .filter(|c| *c != '\0' && *c != ':')
        .collect();
    let parts: Vec<&str> = cleaned
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("upload path {dump_path:?} leaves the analysis"));
    }
    match parts.first() {
        Some(top) if UPLOAD_DIRS.contains(top) && parts.len() >= 2 => Ok(parts.join("/")),
        _ => Err(format!(
            "upload path {dump_path:?} is not inside {}",
            UPLOAD_DIRS.join("|")
        )),
    }
}

/// Copies at most `cap` bytes of `r` into `w`; true when the stream had more.
fn copy_capped(r: &mut dyn Read, w: &mut dyn Write, cap: u64) -> std::io::Result<(u64, bool)> {
    let n = std::io::copy(&mut r.take(cap), w)?;
    let more = n == cap && r.read(&mut [0u8; 1])? > 0;
    Ok((n, more))
}

/// Reads one stream into `dir` (the analysis's results directory).
pub fn ingest(
    stream: &mut dyn Read,
    dir: &Path,
    limits: &Limits,
    got: &mut Received,
) -> Result<(), String> {
    if got.streams >= limits.max_streams {
        return Err(format!("more than {} streams", limits.max_streams));
    }
    let left = limits.total_max_size.saturating_sub(got.bytes);
    if left == 0 {
        return Err("the run's upload budget is used up".to_owned());
    }
    let mut r = BufReader::new(stream);
    let header = line(&mut r)?;
    let mut words = header.split(' ');
    let kind = words.next().unwrap_or("");
    let cap = limits.upload_max_size.min(left);
    let (path, append, file) = match kind {
        "BSON" => {
            let pid = words.next().unwrap_or("");
            if pid.is_empty() || pid.len() > 10 || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("BSON stream with a bad pid {pid:?}"));
            }
            (format!("logs/{pid}.bson"), false, None)
        }
        "FILE" => {
            let v2 = words.next() == Some("2");
            let dest = sanitize_path(&line(&mut r)?)?;
            let (orig, pids) = if v2 {
                let orig = line(&mut r)?;
                let pids: Vec<i64> = line(&mut r)?
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .take(64)
                    .collect();
                (orig, pids)
            } else {
                (String::new(), Vec::new())
            };
            (dest.clone(), false, Some((dest, orig, pids)))
        }
        "LOG" => ("analysis.log".to_owned(), true, None),
        other => {
            return Err(format!(
                "unknown stream {:?}",
                other.chars().take(40).collect::<String>()
            ));
        }
    };
    let target = dir.join(&path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
    }
    let mut out = std::fs::OpenOptions::new();
    if append {
        out.append(true).create(true);
    } else {
        // Never overwrite: a second upload to the same name is refused (Cuckoo: O_EXCL).
        out.write(true).create_new(true);
    }
    let mut f = out.open(&target).map_err(|e| format!("{path}: {e}"))?;
    let (n, more) = copy_capped(&mut r, &mut f, cap).map_err(|e| format!("{path}: {e}"))?;
    if more {
        let _ = f.write_all(b"... (truncated)");
        got.notes
            .push(format!("{path}: truncated at {cap} bytes (upload cap)"));
    }
    got.streams += 1;
    got.bytes += n;
    if let Some((dest, orig, pids)) = file {
        if dest.starts_with("files/") {
            let line = serde_json::json!({"path": dest, "filepath": orig, "pids": pids});
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dir.join("files.json"))
                .and_then(|mut j| writeln!(j, "{line}"));
        }
        got.files.push((dest, orig, pids));
    }
    Ok(())
}

/// The slirp rule that spools each guest connection to `ip:port` into `spool`, capped at
/// `cap` bytes (see the module comment). The spool path must be free of quotes.
pub fn guestfwd_rule(ip: &str, port: i64, spool: &Path, cap: u64) -> Result<String, String> {
    let s = spool.to_string_lossy();
    if s.contains(['\'', '"', '\\', '$', '`', ',', '\n']) {
        return Err(format!("the spool path {s:?} cannot be quoted for slirp"));
    }
    if ip.parse::<std::net::Ipv4Addr>().is_err() || !(1..=65535).contains(&port) {
        return Err(format!(
            "result server address {ip}:{port} is not IPv4:port"
        ));
    }
    Ok(format!(
        "tcp:{ip}:{port}-cmd:sh -c 'exec head -c {} >\"$(mktemp {s}/s.XXXXXXXX)\"'",
        cap.saturating_add(MAX_LINE as u64 * 4)
    ))
}

/// Reads every spooled stream (oldest first) into `dir`.
pub fn ingest_spool(spool: &Path, dir: &Path, limits: &Limits) -> Received {
    let mut got = Received::default();
    let mut streams: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(spool)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let m = std::fs::symlink_metadata(e.path()).ok()?;
                    m.is_file()
                        .then(|| (m.modified().unwrap_or(std::time::UNIX_EPOCH), e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    streams.sort();
    for (_, p) in streams {
        if std::fs::metadata(&p).is_ok_and(|m| m.len() == 0) {
            continue; // a connection that sent nothing
        }
        let r = std::fs::File::open(&p)
            .map_err(|e| e.to_string())
            .and_then(|mut f| ingest(&mut f, dir, limits, &mut got));
        if let Err(e) = r {
            got.notes
                .push(format!("result server: stream refused: {e}"));
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(streams: &[&[u8]], limits: Limits) -> (tempfile::TempDir, Received) {
        let d = tempfile::tempdir().unwrap();
        let mut got = Received::default();
        for s in streams {
            if let Err(e) = ingest(&mut &s[..], d.path(), &limits, &mut got) {
                got.notes.push(e);
            }
        }
        (d, got)
    }

    #[test]
    fn file_log_and_bson_streams_land_where_cuckoo_puts_them() {
        let (d, got) = run(
            &[
                b"FILE 2\nfiles/1_out.txt\n/tmp/out.txt\n12 13\nhello",
                b"FILE\nshots/0001.jpg\nJPEG",
                b"LOG\nline one\n",
                b"LOG\nline two\n",
                b"BSON 1234\n\x05\x00\x00\x00\x00",
            ],
            Limits::default(),
        );
        assert!(got.notes.is_empty(), "{:?}", got.notes);
        let p = d.path();
        assert_eq!(std::fs::read(p.join("files/1_out.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(p.join("shots/0001.jpg")).unwrap(), b"JPEG");
        assert_eq!(
            std::fs::read_to_string(p.join("analysis.log")).unwrap(),
            "line one\nline two\n"
        );
        assert_eq!(std::fs::read(p.join("logs/1234.bson")).unwrap().len(), 5);
        let j: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(p.join("files.json"))
                .unwrap()
                .trim(),
        )
        .unwrap();
        assert_eq!(j["filepath"], "/tmp/out.txt");
        assert_eq!(j["pids"], serde_json::json!([12, 13]));
        assert_eq!(got.streams, 5);
    }

    #[test]
    fn hostile_streams_are_refused() {
        let (d, got) = run(
            &[
                b"FILE 2\nfiles/../../etc/passwd\nx\n\nroot",
                b"FILE 2\n/etc/passwd\nx\n\nroot",
                b"FILE 2\nlogs/1.bson\nx\n\nfake",
                b"FILE 2\nfiles\nx\n\nno name",
                b"BSON ../1\nx",
                b"BSON\nx",
                b"EXEC\nrm -rf /",
                b"FILE 2\nfiles/a",
                b"",
                b"FILE 2\nfiles/dup\nx\n\none",
                b"FILE 2\nfiles/dup\nx\n\ntwo",
            ],
            Limits::default(),
        );
        assert_eq!(got.streams, 1, "{:?}", got.notes);
        assert_eq!(got.notes.len(), 10, "{:?}", got.notes);
        assert_eq!(std::fs::read(d.path().join("files/dup")).unwrap(), b"one");
        assert!(!d.path().join("etc").exists());
        // `C:` and NUL are dropped, backslashes split: a Windows path stays inside.
        assert_eq!(
            sanitize_path("files\\C:\\Users\\x\0.exe").unwrap(),
            "files/C/Users/x.exe"
        );
        let mut long = b"FILE 2\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', 5000));
        let (_, got) = run(&[&long], Limits::default());
        assert!(got.notes[0].contains("4 KiB"), "{:?}", got.notes);
    }

    #[test]
    fn uploads_are_capped_per_file_and_per_run() {
        let limits = Limits {
            upload_max_size: 4,
            total_max_size: 6,
            max_streams: 3,
        };
        let (d, got) = run(
            &[
                b"FILE 2\nfiles/a\nx\n\n0123456789",
                b"FILE 2\nfiles/b\nx\n\n0123456789",
                b"FILE 2\nfiles/c\nx\n\n01",
            ],
            limits,
        );
        assert_eq!(
            std::fs::read(d.path().join("files/a")).unwrap(),
            b"0123... (truncated)"
        );
        assert_eq!(
            std::fs::read(d.path().join("files/b")).unwrap(),
            b"01... (truncated)"
        );
        assert!(!d.path().join("files/c").exists());
        assert_eq!(got.bytes, 6);
        assert!(
            got.notes.iter().any(|n| n.contains("budget")),
            "{:?}",
            got.notes
        );
    }

    #[test]
    fn spool_rule_is_quoted_and_checked() {
        let r = guestfwd_rule("10.0.2.100", 2042, Path::new("/run/t1/spool"), 10).unwrap();
        assert!(r.starts_with("tcp:10.0.2.100:2042-cmd:sh -c 'exec head -c "));
        assert!(r.contains("mktemp /run/t1/spool/s.XXXXXXXX"));
        assert!(guestfwd_rule("10.0.2.100", 2042, Path::new("/tmp/a'b"), 10).is_err());
        assert!(guestfwd_rule("10.0.2.100", 2042, Path::new("/tmp/a,b"), 10).is_err());
        assert!(guestfwd_rule("evil;rm", 2042, Path::new("/tmp/s"), 10).is_err());
        assert!(guestfwd_rule("10.0.2.100", 0, Path::new("/tmp/s"), 10).is_err());
    }
}
