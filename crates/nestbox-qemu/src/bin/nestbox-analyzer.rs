//! `nestbox-analyzer`: the in-guest analyzer for Linux guests, the counterpart of
//! Cuckoo's/CAPE's `analyzer.py` for guests without Python. The host sends it through the
//! agent (`/extract` of the analyzer zip) and starts it in the analyzer directory; it
//! reads `analysis.conf`, runs the target under `strace -f -ff` until it ends or the
//! timeout, and uploads over the result-server protocol (cuckoo.md §7.4): one `FILE 2`
//! stream per process trace (`aux/strace/t.<pid>`), one per file the sample created or
//! changed (`files/…`), and a `LOG` stream with its own log; then it tells the agent
//! `POST /status status=complete` as Cuckoo's Linux analyzer does. Standard library only,
//! so it runs on the guest's glibc.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Syscalls traced: what the host's behaviour builder reads (processes, network, files).
const TRACE: &str = "trace=%process,%network,open,openat,creat,unlink,unlinkat,rename,renameat,\
renameat2,mkdir,mkdirat,rmdir,chdir,fchdir,chmod,fchmodat,symlink,symlinkat,link,linkat,truncate,\
ptrace,setuid,setgid,setresuid,prctl,memfd_create";
/// Dropped files uploaded at most (the host caps again).
const MAX_DROPPED: usize = 50;
/// Places that are not the sample's doing.
const SKIP: &[&str] = &["/proc", "/sys", "/dev", "/run"];

fn conf(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join("analysis.conf"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// One result-server stream: the header, then the body, then close.
fn upload(addr: &str, header: &str, body: &mut dyn Read) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(header.as_bytes())?;
    std::io::copy(body, &mut s)?;
    s.shutdown(std::net::Shutdown::Write)
}

/// Regular files under `dir` modified since `since`, outside `skip`.
fn changed(dir: &Path, since: SystemTime, skip: &[PathBuf], out: &mut Vec<PathBuf>, depth: u32) {
    if depth > 24 || out.len() >= MAX_DROPPED {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if skip.iter().any(|s| p.starts_with(s)) || SKIP.iter().any(|s| p == Path::new(s)) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            changed(&p, since, skip, out, depth + 1);
        } else if m.is_file() && m.modified().is_ok_and(|t| t >= since) {
            out.push(p);
        }
    }
}

fn status(description: &str) {
    let body = format!("status=complete&description={description}");
    let req = format!(
        "POST /status HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut s) = TcpStream::connect("127.0.0.1:8000") {
        let _ = s.write_all(req.as_bytes());
        let _ = s.read_to_end(&mut Vec::new());
    }
}

fn main() {
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let c = conf(&dir);
    let get = |k: &str| c.get(k).cloned().unwrap_or_default();
    let addr = format!("{}:{}", get("ip"), get("port"));
    let timeout = Duration::from_secs(get("timeout").parse().unwrap_or(60).clamp(1, 3600));
    let target = get("target");
    let mut log = vec![format!(
        "nestbox-analyzer: task {} target {target}",
        get("id")
    )];
    let out = std::env::temp_dir().join(format!("nestbox-analysis-{}", get("id")));
    let traces = out.join("strace");
    let _ = std::fs::create_dir_all(&traces);
    // File timestamps have coarse granularity; anything at or after this is the sample's.
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut ok = true;
    if get("category") == "file" || get("category") == "archive" {
        let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755));
        let cwd = Path::new(&target).parent().unwrap_or(Path::new("/tmp"));
        let started = Instant::now();
        let child = Command::new("strace")
            .args(["-q", "-f", "-ff", "-ttt", "-s", "256", "-e", TRACE, "-o"])
            .arg(traces.join("t"))
            .arg(&target)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(mut ch) => loop {
                match ch.try_wait() {
                    Ok(Some(st)) => {
                        log.push(format!(
                            "the sample ended after {:.1} s: {st}",
                            started.elapsed().as_secs_f64()
                        ));
                        break;
                    }
                    Ok(None) if started.elapsed() >= timeout => {
                        // strace kills its tracees when it is killed (-f, attached by it).
                        let _ = ch.kill();
                        let _ = ch.wait();
                        log.push(format!("timeout after {} s", timeout.as_secs()));
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                    Err(e) => {
                        log.push(format!("waiting for strace: {e}"));
                        break;
                    }
                }
            },
            Err(e) => {
                ok = false;
                log.push(format!("starting strace: {e}"));
            }
        }
    } else {
        log.push(format!(
            "category {} is not run by this analyzer",
            get("category")
        ));
    }
    // Behaviour: the per-process traces.
    if let Ok(rd) = std::fs::read_dir(&traces) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let header = format!("FILE 2\naux/strace/{name}\n{}\n\n", e.path().display());
            if let Err(e) =
                std::fs::File::open(e.path()).and_then(|mut f| upload(&addr, &header, &mut f))
            {
                log.push(format!("upload of trace {name} failed: {e}"));
            }
        }
    }
    // Dropped files: created or changed since the start, outside our own places.
    let mut files = Vec::new();
    let skip = [out.clone(), dir.clone(), PathBuf::from(&target)];
    changed(Path::new("/"), since, &skip, &mut files, 0);
    for (i, f) in files.iter().enumerate() {
        let base = f
            .file_name()
            .map(|n| n.to_string_lossy().replace(['/', '\n'], "_"))
            .unwrap_or_default();
        let header = format!(
            "FILE 2\nfiles/{i}_{base}\n{}\n\n",
            f.display().to_string().replace('\n', " ")
        );
        if let Err(e) = std::fs::File::open(f).and_then(|mut fh| upload(&addr, &header, &mut fh)) {
            log.push(format!("upload of {} failed: {e}", f.display()));
        }
    }
    log.push(format!("{} dropped file(s) uploaded", files.len()));
    let mut text = log.join("\n").into_bytes();
    text.push(b'\n');
    if upload(&addr, "LOG\n", &mut text.as_slice()).is_err() {
        ok = false;
    }
    let _ = std::fs::remove_dir_all(&out);
    status(if ok { "True" } else { "False" });
}
