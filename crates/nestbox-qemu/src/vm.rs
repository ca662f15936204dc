//! One QEMU guest run: a throw-away qcow2 overlay over the operator's base image, the
//! command line, and the accelerator choice.
//!
//! Every run starts from the pristine base: `qemu-img create -b base.qcow2 run.qcow2`
//! makes a copy-on-write overlay in the run's directory, deleted with it, and when the
//! machine has a saved migration state (`state`, made once with QMP `migrate
//! file:…` from a booted guest with the agent running) the run starts with
//! `-incoming file:state` — measured ~0.2 s to a ready agent against ~3 s for a cold
//! boot under TCG (`shared/design/sandbox.md` §4). The network is slirp with
//! `restrict=on`: the guest reaches nothing but the explicit `guestfwd`s, and the agent
//! port is forwarded from 127.0.0.1 only; `filter-dump` writes the pcap. QMP on a unix
//! socket in the run directory takes screenshots.
//!
//! The accelerator is `kvm` only when a probe boot under KVM reaches the agent within a
//! timeout: `/dev/kvm` existing is not proof (on the PVM hosts of this project it exists
//! and cannot boot stock kernels).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A guest as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestConfig {
    /// Machine name (also the label).
    pub name: String,
    /// `windows` or `linux`.
    pub platform: String,
    /// The base image (qcow2), never written.
    pub image: PathBuf,
    /// A migration state saved from a booted guest with the agent running (optional).
    pub state: Option<PathBuf>,
    /// For Linux guests booted directly: kernel, initrd and command line (optional).
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk for `kernel`.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: Option<String>,
    /// Guest memory, MiB.
    pub memory_mb: u64,
    /// Virtual CPUs.
    pub cpus: u32,
    /// `auto` (probe), `kvm` or `tcg`.
    pub accel: String,
    /// The agent's port inside the guest (8000).
    pub agent_port: u16,
    /// The guest's IP as the agent sees it (`10.0.2.15` on slirp).
    pub ip: String,
    /// Extra `guestfwd` rules (`tcp:10.0.2.100:80-tcp:127.0.0.1:8080`), e.g. a result
    /// server or a fake internet.
    pub guestfwd: Vec<String>,
    /// The QEMU binary.
    pub qemu: PathBuf,
}

/// Files of one run, inside its directory.
#[derive(Debug, Clone)]
pub struct RunPaths {
    /// The overlay disk.
    pub overlay: PathBuf,
    /// The QMP socket.
    pub qmp: PathBuf,
    /// The packet capture.
    pub pcap: PathBuf,
    /// The serial console log.
    pub console: PathBuf,
}

impl RunPaths {
    /// The layout under `dir`.
    pub fn in_dir(dir: &Path) -> RunPaths {
        RunPaths {
            overlay: dir.join("run.qcow2"),
            qmp: dir.join("qmp.sock"),
            pcap: dir.join("dump.pcap"),
            console: dir.join("console.log"),
        }
    }
}

/// Creates the run's overlay over `base` with `qemu-img`.
pub fn create_overlay(base: &Path, overlay: &Path) -> Result<(), String> {
    let base = std::path::absolute(base).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(overlay)
        .output()
        .map_err(|e| format!("qemu-img (apt-get install qemu-utils): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "qemu-img create over {} failed: {}",
            base.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The QEMU command line for one run; `host_port` is the 127.0.0.1 port forwarded to
/// the agent.
pub fn command(g: &GuestConfig, p: &RunPaths, accel: &str, host_port: u16) -> Vec<String> {
    let mut a: Vec<String> = vec![
        g.qemu.to_string_lossy().into_owned(),
        "-M".into(),
        "q35".into(),
        "-accel".into(),
        accel.into(),
        "-cpu".into(),
        if accel == "kvm" { "host" } else { "max" }.into(),
        "-m".into(),
        g.memory_mb.to_string(),
        "-smp".into(),
        g.cpus.to_string(),
        "-drive".into(),
        format!(
            "file={},format=qcow2,if=virtio,cache=unsafe",
            p.overlay.to_string_lossy().replace(',', ",,")
        ),
    ];
    let mut netdev = format!(
        "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{host_port}-:{}",
        g.agent_port
    );
    for f in &g.guestfwd {
        netdev.push_str(&format!(",guestfwd={}", f.replace(',', "")));
    }
    a.extend([
        "-netdev".into(),
        netdev,
        "-device".into(),
        "virtio-net-pci,netdev=n0".into(),
        "-object".into(),
        format!(
            "filter-dump,id=f0,netdev=n0,file={}",
            p.pcap.to_string_lossy().replace(',', ",,")
        ),
        "-vga".into(),
        "std".into(),
        "-display".into(),
        "none".into(),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", p.qmp.to_string_lossy()),
        "-serial".into(),
        format!("file:{}", p.console.to_string_lossy()),
        "-no-reboot".into(),
    ]);
    if let Some(k) = &g.kernel {
        a.extend(["-kernel".into(), k.to_string_lossy().into_owned()]);
        if let Some(i) = &g.initrd {
            a.extend(["-initrd".into(), i.to_string_lossy().into_owned()]);
        }
        if let Some(c) = &g.append {
            a.extend(["-append".into(), c.clone()]);
        }
    }
    if let Some(s) = &g.state {
        a.extend(["-incoming".into(), format!("file:{}", s.to_string_lossy())]);
    }
    a
}

/// `kvm` or `tcg` for a guest: a fixed choice, `tcg` without `/dev/kvm`, else the result
/// of `probe_boot("kvm")` (true when a KVM boot reached the agent in time).
pub fn choose_accel(
    g: &GuestConfig,
    kvm_device: &Path,
    probe_boot: impl FnOnce(&str) -> bool,
) -> String {
    match g.accel.as_str() {
        "kvm" | "tcg" => g.accel.clone(),
        _ if !kvm_device.exists() => "tcg".to_owned(),
        _ if probe_boot("kvm") => "kvm".to_owned(),
        _ => "tcg".to_owned(),
    }
}

/// Starts QEMU with `argv` detached from the terminal, its output discarded (probe boots
/// and state saves; detonations keep it in `qemu.log`).
pub fn spawn_quiet(argv: &[String]) -> std::io::Result<std::process::Child> {
    let (exe, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command line"))?;
    std::process::Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

/// A free loopback port for the agent forward (bound and released; QEMU binds it next).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How long a probe boot may take before KVM is declared unusable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> GuestConfig {
        GuestConfig {
            name: "win7".into(),
            platform: "windows".into(),
            image: "/img/win7.qcow2".into(),
            state: Some("/img/win7.state".into()),
            kernel: None,
            initrd: None,
            append: None,
            memory_mb: 2048,
            cpus: 2,
            accel: "auto".into(),
            agent_port: 8000,
            ip: "10.0.2.15".into(),
            guestfwd: vec!["tcp:10.0.2.100:2042-tcp:127.0.0.1:2042".into()],
            qemu: "qemu-system-x86_64".into(),
        }
    }

    #[test]
    fn command_line_isolates_and_captures() {
        let p = RunPaths::in_dir(Path::new("/run/t1"));
        let c = command(&guest(), &p, "tcg", 40123).join(" ");
        for want in [
            "-accel tcg",
            "-cpu max",
            "-m 2048",
            "-smp 2",
            "file=/run/t1/run.qcow2,format=qcow2,if=virtio",
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40123-:8000,guestfwd=tcp:10.0.2.100:2042-tcp:127.0.0.1:2042",
            "filter-dump,id=f0,netdev=n0,file=/run/t1/dump.pcap",
            "-qmp unix:/run/t1/qmp.sock,server=on,wait=off",
            "-incoming file:/img/win7.state",
            "-display none",
        ] {
            assert!(c.contains(want), "{want:?} missing from {c}");
        }
        assert!(!c.contains("win7.qcow2"), "the base is never attached: {c}");
        let mut g = guest();
        g.guestfwd = vec!["tcp:1.2.3.4:80-tcp:127.0.0.1:80,hostfwd=tcp::22-:22".into()];
        let c = command(&g, &p, "kvm", 1).join(" ");
        assert!(c.contains("-cpu host"));
        assert!(
            !c.contains(",hostfwd=tcp::22"),
            "a guestfwd cannot add options: {c}"
        );
    }

    #[test]
    fn accelerator_choice() {
        let mut g = guest();
        let none = Path::new("/nonexistent/kvm");
        assert_eq!(
            choose_accel(&g, none, |_| panic!("no probe without /dev/kvm")),
            "tcg"
        );
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("kvm");
        std::fs::write(&dev, "").unwrap();
        assert_eq!(choose_accel(&g, &dev, |a| a == "kvm"), "kvm");
        assert_eq!(
            choose_accel(&g, &dev, |_| false),
            "tcg",
            "/dev/kvm is not proof"
        );
        g.accel = "tcg".into();
        assert_eq!(choose_accel(&g, &dev, |_| panic!("fixed")), "tcg");
    }

    #[test]
    fn overlay_leaves_the_base_alone() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base.qcow2");
        let st = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&base)
            .arg("16M")
            .status()
            .expect("qemu-img (qemu-utils) is needed");
        assert!(st.success());
        let before = std::fs::read(&base).unwrap();
        let ov = d.path().join("run.qcow2");
        create_overlay(&base, &ov).unwrap();
        let info = std::process::Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&ov)
            .output()
            .unwrap();
        let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(j["backing-filename"], base.to_string_lossy().as_ref());
        assert_eq!(std::fs::read(&base).unwrap(), before);
        assert!(
            create_overlay(&d.path().join("missing.qcow2"), &d.path().join("x.qcow2")).is_err()
        );
    }
}
