//! Screenshots of file tasks: a virtual X display (Xvfb) inside the sandbox, captured
//! with `xwd` about once a second, converted here to PNG.
//!
//! Each slot has one X server ([`Server`]), started on the slot's first task that wants a
//! display and kept for the next ones (Xvfb takes about half a second to start, most of
//! it compiling the keymap, which would otherwise be paid by every detonation). It runs
//! in its own bubblewrap sandbox as `nobody`, outside the task's pid namespace, so it is
//! never part of the sample's process tree (nor its behaviour), and listens only on an
//! abstract socket, which is private to the slot's network namespace. The X server resets
//! itself when its last client disconnects, so a task does not find the previous one's
//! windows or properties. The capture loop is started by the sandbox's reaper before the
//! sample.
//! The XWD files are written into a directory the sample can also write, so the decoder
//! treats them as hostile input: every size is checked and capped, and a bad file is an
//! error, never a panic or an unbounded allocation.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The display number inside the sandbox.
pub const DISPLAY: &str = ":99";
/// Where the capture loop writes `NNNN.xwd`, inside the sandbox.
pub const SHOTS_DIR: &str = "/var/tmp/nestbox-shots";
/// Most screenshots kept per task.
pub const MAX_SHOTS: usize = 30;
/// The Xvfb binary.
pub const XVFB: &str = "/usr/bin/Xvfb";
/// The capture tool (x11-apps).
pub const XWD: &str = "/usr/bin/xwd";
/// Largest side accepted from an XWD header.
const MAX_SIDE: u32 = 4096;
/// Largest XWD file read (a 4096² 32-bit screen plus header room).
const MAX_XWD_BYTES: u64 = 4096 * 4096 * 4 + (1 << 20);

/// Whether this host can give samples a display.
pub fn available() -> bool {
    Path::new(XVFB).exists() && Path::new(XWD).exists()
}

/// The host uid the display servers run as: not a slot uid, so no task process runs as
/// it, and a sample that took the X server over would gain nothing it had not.
const SERVER_UID: u32 = 65_534;

/// How long a new X server gets to accept connections.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A slot's X server (Xvfb in a bubblewrap sandbox in the slot's guest network
/// namespace). Dropping it kills it.
pub struct Server {
    child: std::process::Child,
}

impl Server {
    /// Starts Xvfb in the network namespace at `netns` and waits until it accepts
    /// connections.
    pub fn start(netns: &Path) -> Result<Server, String> {
        let mut cmd = std::process::Command::new("nsenter");
        cmd.arg(format!("--net={}", netns.display()))
            .args(["--", "setpriv", "--pdeathsig", "KILL"])
            .arg(format!("--reuid={SERVER_UID}"))
            .arg(format!("--regid={SERVER_UID}"))
            .args(["--clear-groups", "--"])
            .args(crate::launch::bwrap_base("display", true))
            .args([
                "--tmpfs",
                "/tmp",
                "--ro-bind-try",
                "/etc/fonts",
                "/etc/fonts",
            ])
            .args(["--remount-ro", "/", "--clearenv", "--", XVFB, DISPLAY])
            .args(["-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            .args(["-nolisten", "unix"])
            // An X server resets when its last client leaves, and refuses connections
            // meanwhile: the readiness check and each screenshot's xwd are such clients,
            // so a viewer starting then failed with "cannot open display".
            .arg("-noreset")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("starting Xvfb: {e}"))?;
        let mut server = Server { child };
        let path = netns.to_path_buf();
        let name = format!("/tmp/.X11-unix/X{}", DISPLAY.trim_start_matches(':'));
        let t0 = std::time::Instant::now();
        // Connect from a thread that entered the namespace (abstract sockets are per
        // network namespace).
        let ready = std::thread::spawn(move || -> Result<(), String> {
            use std::os::linux::net::SocketAddrExt;
            crate::net::enter_netns(&path)?;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(|e| e.to_string())?;
            let mut last = String::new();
            while t0.elapsed() < READY_TIMEOUT {
                match std::os::unix::net::UnixStream::connect_addr(&addr) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(format!("Xvfb did not accept connections: {last}"))
        });
        loop {
            if ready.is_finished() {
                break;
            }
            if !server.alive() {
                return Err("Xvfb exited at start-up".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        ready
            .join()
            .map_err(|_| "the display check panicked".to_owned())??;
        Ok(server)
    }

    /// Whether the X server is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// An image as RGB rows.
#[derive(Debug, PartialEq, Eq)]
pub struct Rgb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

fn be32(b: &[u8], field: usize) -> Result<u32, String> {
    b.get(field * 4..field * 4 + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or_else(|| "truncated XWD header".to_owned())
}

/// Decodes a ZPixmap XWD dump with 24/32 bits per pixel and true-colour masks (what
/// `xwd -root` writes for Xvfb's default 24-bit screen).
pub fn decode_xwd(b: &[u8]) -> Result<Rgb, String> {
    let header_size = be32(b, 0)? as usize;
    if be32(b, 1)? != 7 {
        return Err("not an XWD version 7 file".into());
    }
    if header_size < 100 || header_size > b.len() {
        return Err("bad XWD header size".into());
    }
    let format = be32(b, 2)?;
    let (width, height) = (be32(b, 4)?, be32(b, 5)?);
    let byte_order = be32(b, 7)?;
    let bpp = be32(b, 11)?;
    let bytes_per_line = be32(b, 12)? as usize;
    let masks = [be32(b, 14)?, be32(b, 15)?, be32(b, 16)?];
    let ncolors = be32(b, 19)? as usize;
    if format != 2 || !(bpp == 24 || bpp == 32) {
        return Err(format!(
            "unsupported XWD layout (format {format}, {bpp} bpp)"
        ));
    }
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!("bad XWD size {width}x{height}"));
    }
    let px = (bpp / 8) as usize;
    if bytes_per_line < width as usize * px {
        return Err("XWD lines shorter than the width".into());
    }
    let data = header_size
        .checked_add(ncolors.checked_mul(12).ok_or("bad colormap")?)
        .ok_or("bad colormap")?;
    let need = bytes_per_line
        .checked_mul(height as usize)
        .and_then(|n| n.checked_add(data))
        .ok_or("bad XWD size")?;
    if b.len() < need {
        return Err("truncated XWD pixel data".into());
    }
    let shift = |m: u32| if m == 0 { 0 } else { m.trailing_zeros() };
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height as usize {
        let row = &b[data + y * bytes_per_line..];
        for x in 0..width as usize {
            let p = &row[x * px..x * px + px];
            let mut word = [0u8; 4];
            word[..px].copy_from_slice(p);
            let v = if byte_order == 0 {
                u32::from_le_bytes(word)
            } else {
                let mut w = [0u8; 4];
                w[4 - px..].copy_from_slice(p);
                u32::from_be_bytes(w)
            };
            for m in masks {
                let bits = (m >> shift(m)).count_ones();
                let c = (v & m) >> shift(m);
                // Scale to 8 bits whatever the mask width.
                let c8 = if bits >= 8 {
                    c >> (bits - 8)
                } else if bits == 0 {
                    0
                } else {
                    c * 255 / ((1 << bits) - 1)
                };
                pixels.push(c8 as u8);
            }
        }
    }
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// Encodes RGB as PNG (8-bit truecolour, no filtering, zlib level 6).
pub fn encode_png(img: &Rgb) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&img.width.to_be_bytes());
    ihdr.extend_from_slice(&img.height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let line = img.width as usize * 3;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    for row in img.pixels.chunks(line) {
        let _ = z.write_all(&[0]);
        let _ = z.write_all(row);
    }
    let idat = z.finish().unwrap_or_default();
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Converts the capture loop's XWD files in `dir` (in name order) to PNGs in `dest`
/// (numbered from `first + 1`, as `0001.png`…), keeping a shot only when the screen
/// changed since the previous one. Returns the PNGs and notes about files that could not
/// be used.
pub fn collect(dir: &Path, dest: &Path, first: usize) -> (Vec<PathBuf>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (out, notes);
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xwd"))
        .collect();
    files.sort();
    let mut last: Option<Vec<u8>> = None;
    for f in files {
        if out.len() >= MAX_SHOTS {
            notes.push(format!(
                "more than {MAX_SHOTS} screenshots; the rest were dropped"
            ));
            break;
        }
        // The file is in a directory the sample can write: no symlinks, bounded size.
        let plain =
            std::fs::symlink_metadata(&f).is_ok_and(|m| m.is_file() && m.len() <= MAX_XWD_BYTES);
        if !plain {
            continue;
        }
        let img = match std::fs::read(&f)
            .map_err(|e| e.to_string())
            .and_then(|b| decode_xwd(&b))
        {
            Ok(i) => i,
            // The last dump may be cut short by the end of the run.
            Err(e) => {
                notes.push(format!("screenshot {} unusable: {e}", f.display()));
                continue;
            }
        };
        if last.as_ref() == Some(&img.pixels) {
            continue;
        }
        let png = dest.join(format!("{:04}.png", first + out.len() + 1));
        if std::fs::create_dir_all(dest)
            .and_then(|()| std::fs::write(&png, encode_png(&img)))
            .is_ok()
        {
            out.push(png);
        }
        last = Some(img.pixels);
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xwd(w: u32, h: u32, px: impl Fn(u32, u32) -> u32) -> Vec<u8> {
        let mut hdr = [0u32; 25];
        hdr[0] = 100 + 4;
        hdr[1] = 7;
        hdr[2] = 2;
        hdr[3] = 24;
        hdr[4] = w;
        hdr[5] = h;
        hdr[7] = 0;
        hdr[11] = 32;
        hdr[12] = w * 4;
        hdr[14] = 0xff0000;
        hdr[15] = 0xff00;
        hdr[16] = 0xff;
        let mut b: Vec<u8> = hdr.iter().flat_map(|v| v.to_be_bytes()).collect();
        b.extend_from_slice(b"x\0\0\0");
        for y in 0..h {
            for x in 0..w {
                b.extend_from_slice(&px(x, y).to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn xwd_to_png_round_trip() {
        let b = xwd(3, 2, |x, y| if x == 1 && y == 1 { 0x00ff8000 } else { 0 });
        let img = decode_xwd(&b).unwrap();
        assert_eq!((img.width, img.height), (3, 2));
        assert_eq!(&img.pixels[12..15], &[0xff, 0x80, 0x00]);
        let png = encode_png(&img);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
    }

    #[test]
    fn hostile_xwd_is_an_error() {
        let good = xwd(4, 4, |_, _| 0x123456);
        for n in [0, 10, 99, 104, good.len() - 1] {
            assert!(decode_xwd(&good[..n]).is_err(), "truncated at {n}");
        }
        let mut huge = good.clone();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(decode_xwd(&huge).is_err());
        let mut colors = good.clone();
        colors[76..80].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_xwd(&colors).is_err());
        let mut hs = good;
        hs[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_xwd(&hs).is_err());
    }

    #[test]
    fn collect_keeps_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = xwd(8, 8, |_, _| 0);
        let b = xwd(8, 8, |x, _| x * 1000);
        for (n, d) in [(1, &a), (2, &a), (3, &b)] {
            std::fs::write(dir.path().join(format!("{n:04}.xwd")), d).unwrap();
        }
        std::fs::write(dir.path().join("0004.xwd"), &b[..50]).unwrap();
        let dest = dir.path().join("png");
        let (shots, notes) = collect(dir.path(), &dest, 1);
        assert_eq!(shots.len(), 2);
        assert!(shots[0].ends_with("0002.png"));
        assert_eq!(notes.len(), 1);
    }
}
