//! The task network: a guest namespace joined by a veth pair to a sink namespace that
//! has no other link, so no packet can reach the host or the internet.
//!
//! ```text
//!  sandbox (netns G)                 sink (netns S, no route anywhere else)
//!  10.0.2.15/24 ── veth ───────────  10.0.2.2/24, 10.0.2.3/24 + "local 0.0.0.0/0 dev lo"
//!  default via 10.0.2.2              DNS 10.0.2.3:53 (every name → 10.0.2.2),
//!                                    every TCP port → one catch-all listener (nftables
//!                                    REDIRECT): HTTP answered, TLS ClientHello → SNI/JA3,
//!                                    AF_PACKET capture → pcap
//! ```
//!
//! The "local 0.0.0.0/0" route (AnyIP) makes the sink accept traffic for *every* address,
//! so a sample connecting to a literal IP reaches nestbox's listeners too; an nftables
//! `redirect` in the sink sends every TCP port to one catch-all listener, which reads the
//! original destination back (`SO_ORIGINAL_DST`) and recognises the protocol from the first
//! bytes, as INetSim's dummy services do. Without `nft` the sink falls back to listeners
//! on common ports (other ports answer RST, visible in the capture). UDP goes to a
//! catch-all too (`tproxy`, see [`crate::udp`]: DNS on any address, NTP, the rest taken
//! silently); every UDP flow is recorded from the capture. Route `drop`: the same wiring with nothing listening. DNS is answered only at the resolver address of the sandbox's resolv.conf
//! (replies must come from the queried address; queries to hard-coded resolvers stay
//! unanswered but are in the capture). The sink services are threads of the server whose sockets were created
//! inside S (`setns` on a short-lived thread); the capture is a raw `AF_PACKET` socket in S.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nestbox_types::report::Network;
use serde_json::{Value, json};

/// The sandbox's address.
pub const GUEST_IP: &str = "10.0.2.15";
/// The sink's address (every DNS answer).
pub const SINK_IP: &str = "10.0.2.2";
/// The resolver address in the sandbox's resolv.conf.
pub const DNS_IP: &str = "10.0.2.3";
/// TCP ports with a listener in the sink; HTTP is spoken on the first three.
const HTTP_PORTS: &[u16] = &[80, 8080, 8000];
const TCP_PORTS: &[u16] = &[
    21, 22, 23, 25, 443, 445, 1337, 4444, 5555, 6667, 8443, 9001, 31337,
];
/// The catch-all listener every TCP port is redirected to.
const CATCHALL_PORT: u16 = 65_000;
/// Connections served at once (one thread each); more wait their turn.
const MAX_CONNS: usize = 64;

#[derive(Default)]
pub(crate) struct Logs {
    pub(crate) dns: Vec<Value>,
    http: Vec<Value>,
    tls: Vec<Value>,
    frames: Vec<(f64, Vec<u8>)>,
    frames_dropped: usize,
}

/// The namespaces, veth, addresses, routes and nftables rules of one slot. Made once, on
/// the slot's first task (or at start-up, see `NsMachinery::warm`), and reused by every
/// later task of the slot (only one task uses a slot at a time): the sample cannot change
/// any of it (it runs in a user namespace of its own, without `CAP_NET_ADMIN` over these
/// namespaces), so a task finds the network as the previous one did, and setting it up
/// (about twenty `ip`/`nft` processes, tens of milliseconds idle, far more under load) is
/// off the per-task path.
///
/// The namespaces are named (in `/run/netns`) only while they are configured; after that
/// they are held by open file descriptors of the server alone, so they vanish with it,
/// even when it is killed, and dropping a `SlotNet` removes them (and stops the slot's
/// display server, which lives in the guest one).
pub struct SlotNet {
    guest: std::fs::File,
    sink: std::fs::File,
    catchall: bool,
    udp_catchall: bool,
    display: Option<crate::display::Server>,
    /// The capture sockets (sink side, guest side), kept between tasks: closing an
    /// `AF_PACKET` socket waits for an RCU grace period (`synchronize_net`), 10–25 ms
    /// here, which was half of a short detonation's teardown.
    captures: Option<(OwnedFd, OwnedFd)>,
}

/// The `/proc` path of one of our open namespace descriptors (what `nsenter --net=` and
/// `setns` open).
fn fd_path(f: &std::fs::File) -> PathBuf {
    PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd()))
}

impl SlotNet {
    /// Creates the namespace pair. Names carry the server's pid (so a restarted server
    /// removes what a killed one left mid-set-up, see `cleanup`) and a per-process counter.
    pub fn create() -> Result<SlotNet, String> {
        // veth names must be unique host-wide while the pair is being created (the kernel
        // checks them in the creating namespace too), so they carry the counter as well.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, Ordering::Relaxed) % 100_000;
        let pid = std::process::id();
        let guest = format!("nbg-{pid}-s{k}");
        let sink = format!("nbs-{pid}-s{k}");
        let configured = configure(&guest, &sink, k);
        let opened = configured.and_then(|(catchall, udp_catchall)| {
            let open = |n: &str| {
                std::fs::File::open(PathBuf::from("/run/netns").join(n))
                    .map_err(|e| format!("netns {n}: {e}"))
            };
            Ok(SlotNet {
                guest: open(&guest)?,
                sink: open(&sink)?,
                catchall,
                udp_catchall,
                display: None,
                captures: None,
            })
        });
        // The names go; the descriptors keep the namespaces alive.
        let _ = ip(&["netns", "del", &guest]);
        let _ = ip(&["netns", "del", &sink]);
        opened
    }

    /// The path `nsenter --net=` joins.
    pub fn guest_path(&self) -> PathBuf {
        fd_path(&self.guest)
    }

    /// Makes sure the slot's virtual display is up (started on first use, restarted if a
    /// sample killed it); it serves `DISPLAY=:99` on an abstract socket, which only
    /// processes in this slot's guest namespace can reach.
    pub fn ensure_display(&mut self) -> Result<(), String> {
        if self.display.as_mut().is_some_and(|d| d.alive()) {
            return Ok(());
        }
        self.display = None;
        self.display = Some(crate::display::Server::start(&self.guest_path())?);
        Ok(())
    }
}

/// Creates and configures the named namespaces `guest` and `sink`; whether every TCP
/// port, and every UDP port, goes to its catch-all (nftables and `tproxy` worked).
fn configure(guest: &str, sink: &str, k: u32) -> Result<(bool, bool), String> {
    let id = format!("{:05}{k:05}", std::process::id() % 100_000);
    let (vg, vs) = (format!("nb{id}g"), format!("nb{id}s"));
    ip(&["netns", "add", guest])?;
    ip(&["netns", "add", sink])?;
    ip(&[
        "link", "add", &vg, "netns", guest, "type", "veth", "peer", "name", &vs, "netns", sink,
    ])?;
    for (ns, cmd) in [
        (guest, vec!["addr", "add", "10.0.2.15/24", "dev", &vg]),
        (guest, vec!["link", "set", "lo", "up"]),
        (guest, vec!["link", "set", &vg, "up"]),
        (guest, vec!["route", "add", "default", "via", SINK_IP]),
        (sink, vec!["addr", "add", "10.0.2.2/24", "dev", &vs]),
        (sink, vec!["addr", "add", "10.0.2.3/24", "dev", &vs]),
        (sink, vec!["link", "set", "lo", "up"]),
        (sink, vec!["link", "set", &vs, "up"]),
        (
            sink,
            vec!["route", "add", "local", "0.0.0.0/0", "dev", "lo"],
        ),
        // The sandbox's own subnet is "everything but the guest" too, in the local
        // table (consulted first), so neighbours it scans answer ARP and then TCP;
        // the guest's /32 keeps replies going out of the veth.
        (
            sink,
            vec!["route", "add", "10.0.2.15/32", "dev", &vs, "table", "local"],
        ),
        (
            sink,
            vec![
                "route",
                "add",
                "local",
                "10.0.2.0/24",
                "dev",
                "lo",
                "table",
                "local",
            ],
        ),
    ] {
        let mut a = vec!["-n", ns];
        a.extend(cmd);
        ip(&a)?;
    }
    Ok((
        redirect_all_tcp(sink, &vs).is_ok(),
        tproxy_all_udp(sink, &vs).is_ok(),
    ))
}

/// The slots' networks while no task uses them.
#[derive(Default)]
pub struct SlotNets {
    idle: Mutex<BTreeMap<u32, SlotNet>>,
}

impl SlotNets {
    /// The network of `slot`: the one it used last, or a new one.
    pub fn take(&self, slot: u32) -> Result<SlotNet, String> {
        let kept = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&slot);
        match kept {
            Some(n) => Ok(n),
            None => SlotNet::create(),
        }
    }

    /// Gives `slot`'s network back for its next task.
    pub fn put(&self, slot: u32, net: SlotNet) {
        let old = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slot, net);
        drop(old);
    }
}

/// A live network for one run; [`NetSandbox::finish`] stops it and hands the slot's
/// network back.
pub struct NetSandbox {
    slot: Option<SlotNet>,
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
    /// The capture threads (sink side, guest side); they hand their sockets back.
    captures: Vec<JoinHandle<OwnedFd>>,
    logs: Arc<Mutex<Logs>>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How long the teardown lets the last frames reach the capture before stopping it.
const SETTLE: Duration = Duration::from_millis(10);

/// Tells the sink's threads to end, at once: a flag, and a pipe that becomes readable,
/// which every thread polls next to its socket (so the teardown does not wait for
/// socket timeouts).
pub(crate) struct Stop {
    flag: AtomicBool,
    rx: OwnedFd,
    tx: OwnedFd,
}

impl Stop {
    pub(crate) fn new() -> Result<Arc<Stop>, String> {
        let (rx, tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        Ok(Arc::new(Stop {
            flag: AtomicBool::new(false),
            rx,
            tx,
        }))
    }

    pub(crate) fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub(crate) fn set(&self) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            let _ = nix::unistd::write(&self.tx, b"x");
        }
    }

    /// Waits until `fd` is readable (`true`) or the run is stopping (`false`).
    pub(crate) fn wait(&self, fd: std::os::fd::BorrowedFd<'_>) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        loop {
            if self.stopped() {
                return false;
            }
            let mut fds = [
                PollFd::new(fd, PollFlags::POLLIN),
                PollFd::new(self.rx.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                Ok(_) => {
                    if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                        return false;
                    }
                    if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                        return true;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl NetSandbox {
    /// Starts the sink's services and the capture on the slot's network for one run.
    /// `listen`: false for route `drop` (capture only).
    pub fn start(slot: SlotNet, listen: bool) -> Result<NetSandbox, String> {
        let mut n = NetSandbox {
            slot: Some(slot),
            stop: Stop::new()?,
            threads: Vec::new(),
            captures: Vec::new(),
            logs: Arc::new(Mutex::new(Logs::default())),
        };
        // Loopback inside the sandbox never reaches the veth: capture it in G as well, so
        // a sample probing 127.0.0.1 shows up in the pcap.
        let kept = n.slot.as_mut().and_then(|s| s.captures.take());
        let (sink_cap, guest_cap) = match kept {
            Some((s, g)) => {
                // What reached the slot between tasks is not this task's.
                drain(&s);
                drain(&g);
                (Some(s), g)
            }
            None => (None, packet_socket_in(n.guest_path())?),
        };
        n.start_sink(listen, sink_cap)?;
        let (stop, logs) = (n.stop.clone(), n.logs.clone());
        n.captures.push(std::thread::spawn(move || {
            capture(guest_cap, stop, logs, true)
        }));
        Ok(n)
    }

    /// The path `nsenter --net=` joins.
    pub fn guest_path(&self) -> PathBuf {
        self.slot
            .as_ref()
            .map(SlotNet::guest_path)
            .unwrap_or_default()
    }

    fn start_sink(&mut self, listen: bool, cap: Option<OwnedFd>) -> Result<(), String> {
        let slot = self.slot.as_ref().ok_or("no slot network")?;
        let path = fd_path(&slot.sink);
        let sink_path = path.clone();
        let catchall = slot.catchall;
        let udp_catchall = slot.udp_catchall;
        // Sockets belong to the namespace they are created in: make them on a thread that
        // entered S, then serve them from ordinary threads.
        type Socks = (
            OwnedFd,
            Option<UdpSocket>,
            Vec<TcpListener>,
            Option<OwnedFd>,
        );
        let socks: Socks = std::thread::spawn(move || -> Result<Socks, String> {
            enter_netns(&path).map_err(|e| format!("sink {e}"))?;
            let cap = match cap {
                Some(c) => c,
                None => packet_socket_here()?,
            };
            if !listen {
                return Ok((cap, None, Vec::new(), None));
            }
            let dns = bind_retrying("dns", || UdpSocket::bind((DNS_IP, 53)))?;
            let ports: Vec<u16> = if catchall {
                vec![CATCHALL_PORT]
            } else {
                HTTP_PORTS.iter().chain(TCP_PORTS).copied().collect()
            };
            let mut tcp = Vec::new();
            for p in ports {
                let l = bind_retrying(&format!("tcp {p}"), || TcpListener::bind(("0.0.0.0", p)))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                tcp.push(l);
            }
            let udp = if udp_catchall {
                Some(crate::udp::catchall_socket()?)
            } else {
                None
            };
            Ok((cap, Some(dns), tcp, udp))
        })
        .join()
        .map_err(|_| "the sink set-up thread panicked".to_owned())??;
        let (cap, dns, tcp, udp) = socks;
        if let Some(udp) = udp {
            let (stop, logs) = (self.stop.clone(), self.logs.clone());
            self.threads.push(std::thread::spawn(move || {
                crate::udp::serve(&sink_path, udp, stop, logs)
            }));
        }
        let (stop, logs) = (self.stop.clone(), self.logs.clone());
        self.captures
            .push(std::thread::spawn(move || capture(cap, stop, logs, false)));
        if let Some(dns) = dns {
            let (stop, logs) = (self.stop.clone(), self.logs.clone());
            self.threads
                .push(std::thread::spawn(move || serve_dns(dns, stop, logs)));
        }
        for l in tcp {
            let (stop, logs) = (self.stop.clone(), self.logs.clone());
            self.threads.push(std::thread::spawn(move || {
                serve_tcp(l, catchall, stop, logs)
            }));
        }
        Ok(())
    }

    /// Stops the sink, writes the capture as pcap to `pcap` and returns the `network`
    /// section, and the slot's network for the next task.
    pub fn finish(mut self, pcap: &std::path::Path) -> (Network, Vec<String>, Option<SlotNet>) {
        // Let the sink's last replies reach the capture. What the sample sent, and the
        // resets of its killed sockets, are already queued on the capture sockets when
        // the sandbox is reaped (the packet tap runs inside the sending call; the capture
        // drains its queue on stop): a run that sent nothing has nothing in flight.
        let quiet = self
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frames
            .is_empty();
        if !quiet {
            std::thread::sleep(SETTLE);
        }
        self.stop.set();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The sockets stay open for the slot's next task (see `SlotNet::captures`).
        let mut caps = self.captures.drain(..).map(|t| t.join().ok());
        if let (Some(Some(sink)), Some(Some(guest)), Some(slot)) =
            (caps.next(), caps.next(), self.slot.as_mut())
        {
            slot.captures = Some((sink, guest));
        }
        let mut notes = Vec::new();
        let logs = std::mem::take(&mut *self.logs.lock().unwrap_or_else(|e| e.into_inner()));
        if logs.frames_dropped > 0 {
            notes.push(format!(
                "the capture kept the first {} frames; {} more were not kept",
                logs.frames.len(),
                logs.frames_dropped
            ));
        }
        let mut logs = logs;
        logs.frames.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Err(e) = write_pcap(pcap, &logs.frames) {
            notes.push(format!("writing the pcap failed: {e}"));
        }
        let net = summarise(&logs);
        (net, notes, self.slot.take())
    }
}

impl Drop for NetSandbox {
    fn drop(&mut self) {
        self.stop.set();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for t in self.captures.drain(..) {
            let _ = t.join();
        }
    }
}

/// Throws away what is queued on a capture socket.
fn drain(cap: &OwnedFd) {
    let mut buf = [0u8; 2048];
    while let Ok(n) = nix::sys::socket::recv(
        cap.as_raw_fd(),
        &mut buf,
        nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_TRUNC,
    ) {
        if n == 0 {
            break;
        }
    }
}

const MAX_FRAMES: usize = 200_000;
const MAX_BYTES: usize = 64 << 20;

/// A raw `AF_PACKET` socket (all protocols) in the netns at `path`.
fn packet_socket_in(path: PathBuf) -> Result<OwnedFd, String> {
    std::thread::spawn(move || {
        enter_netns(&path)?;
        packet_socket_here()
    })
    .join()
    .map_err(|_| "the capture set-up thread panicked".to_owned())?
}

/// Runs `bind`, retrying for up to two seconds while the address is still in use. A
/// sandbox being started for another slot holds a copy of every descriptor of the server
/// from its fork until its exec (close-on-exec closes them only then), so the previous
/// task's sink sockets can outlive their close by a few milliseconds.
pub(crate) fn bind_retrying<T>(
    what: &str,
    mut bind: impl FnMut() -> std::io::Result<T>,
) -> Result<T, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match bind() {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r.map_err(|e| format!("{what}: {e}")),
        }
    }
}

/// Moves the calling thread into the network namespace at `path` (sockets belong to the
/// namespace they are created in).
pub(crate) fn enter_netns(path: &std::path::Path) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("netns: {e}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))
}

/// A raw `AF_PACKET` socket (all protocols) in the calling thread's
/// network namespace.
fn packet_socket_here() -> Result<OwnedFd, String> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
    let cap = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(|e| format!("AF_PACKET socket: {e}"))?;
    Ok(cap)
}

/// Captures frames until `stop`. `loopback_only`: keep only loopback frames (all-zero
/// MAC addresses), for the guest-side socket whose veth traffic the sink already sees.
fn capture(cap: OwnedFd, stop: Arc<Stop>, logs: Arc<Mutex<Logs>>, loopback_only: bool) -> OwnedFd {
    use std::os::fd::AsFd;
    let mut buf = vec![0u8; 65_536];
    let mut bytes = 0usize;
    loop {
        // Once stopped, drain what is queued without waiting, then end.
        let stopping = !stop.wait(cap.as_fd());
        match nix::sys::socket::recv(
            cap.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) if n > 0 => {
                if loopback_only && (n < 14 || buf[..12].iter().any(|b| *b != 0)) {
                    continue;
                }
                let mut l = logs.lock().unwrap_or_else(|e| e.into_inner());
                if l.frames.len() < MAX_FRAMES && bytes + n <= MAX_BYTES {
                    bytes += n;
                    l.frames.push((now(), buf[..n].to_vec()));
                } else {
                    l.frames_dropped += 1;
                }
            }
            _ if stopping => break,
            _ => {}
        }
    }
    cap
}

fn serve_dns(sock: UdpSocket, stop: Arc<Stop>, logs: Arc<Mutex<Logs>>) {
    use std::os::fd::AsFd;
    let mut buf = [0u8; 1500];
    let _ = sock.set_nonblocking(true);
    while stop.wait(sock.as_fd()) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Some((resp, entry)) = dns_reply(&buf[..n]) else {
            continue;
        };
        let _ = sock.send_to(&resp, from);
        logs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .dns
            .push(entry);
    }
}

/// The sink's answer to a DNS query (every A record is the sink) and its `network.dns`
/// entry; `None` for anything that is not a query.
pub(crate) fn dns_reply(q: &[u8]) -> Option<(Vec<u8>, Value)> {
    let (name, qtype, qend) = parse_question(q)?;
    let a = qtype == 1;
    let mut resp = Vec::with_capacity(qend + 16);
    resp.extend_from_slice(&q[..2]);
    resp.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(a), 0, 0, 0, 0]);
    resp.extend_from_slice(q.get(12..qend)?);
    if a {
        resp.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 2, 2]);
    }
    let t = match qtype {
        1 => "A",
        28 => "AAAA",
        5 => "CNAME",
        15 => "MX",
        16 => "TXT",
        _ => "OTHER",
    };
    let answers = if a {
        json!([{"type": "A", "data": SINK_IP}])
    } else {
        json!([])
    };
    Some((
        resp,
        json!({"request": name, "type": t, "answers": answers, "time": now()}),
    ))
}

/// `(name, qtype, end of question)` of a DNS query.
fn parse_question(q: &[u8]) -> Option<(String, u16, usize)> {
    // A standard query (QR 0, opcode 0) with one question.
    if q.len() < 17 || q[2] & 0xf8 != 0 || q[4..6] != [0, 1] {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = usize::from(*q.get(i)?);
        if n == 0 {
            i += 1;
            break;
        }
        if n > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + n)?).into_owned());
        i += 1 + n;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

const BODY: &str = "<html><head><title>nestbox</title></head><body>It works.</body></html>\n";

/// Sends every TCP connection arriving on the sink's veth to the catch-all port.
fn redirect_all_tcp(sink: &str, veth: &str) -> Result<(), String> {
    nft(
        sink,
        &format!(
            "table ip nestbox {{\n chain prerouting {{\n  type nat hook prerouting priority dstnat; policy accept;\n  iifname \"{veth}\" meta l4proto tcp redirect to :{CATCHALL_PORT}\n }}\n}}\n"
        ),
    )
}

/// Hands every UDP datagram arriving on the sink's veth, except those for the resolver
/// address, to the UDP catch-all socket (`tproxy` keeps the original destination, which
/// the socket reads back). A table of its own: a kernel without `nft_tproxy` then only
/// loses the UDP catch-all.
fn tproxy_all_udp(sink: &str, veth: &str) -> Result<(), String> {
    let port = crate::udp::UDP_CATCHALL_PORT;
    nft(
        sink,
        &format!(
            "table ip nestbox_udp {{\n chain prerouting {{\n  type filter hook prerouting priority mangle; policy accept;\n  iifname \"{veth}\" ip daddr != {DNS_IP} meta l4proto udp tproxy to :{port}\n }}\n}}\n"
        ),
    )
}

/// Loads `rules` into the named namespace `ns` with `nft -f -`.
fn nft(ns: &str, rules: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(rules.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The destination the client asked for before the redirect (`SO_ORIGINAL_DST`).
fn original_dst(c: &std::net::TcpStream) -> Option<std::net::SocketAddrV4> {
    let sa = nix::sys::socket::getsockopt(c, nix::sys::socket::sockopt::OriginalDst).ok()?;
    (i32::from(sa.sin_family) == libc::AF_INET).then(|| {
        std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
            u16::from_be(sa.sin_port),
        )
    })
}

fn serve_tcp(l: TcpListener, catchall: bool, stop: Arc<Stop>, logs: Arc<Mutex<Logs>>) {
    use std::os::fd::AsFd;
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while stop.wait(l.as_fd()) {
        let Ok((c, peer)) = l.accept() else {
            continue;
        };
        let local = c.local_addr().ok();
        let (dst, dport) = match (catchall.then(|| original_dst(&c)).flatten(), local) {
            (Some(o), _) => (o.ip().to_string(), o.port()),
            (None, Some(a)) => (a.ip().to_string(), a.port()),
            (None, None) => continue,
        };
        let conn = Conn {
            src: peer.ip().to_string(),
            sport: peer.port(),
            dst,
            dport,
        };
        if live.load(Ordering::SeqCst) < MAX_CONNS {
            live.fetch_add(1, Ordering::SeqCst);
            let (logs, live) = (logs.clone(), live.clone());
            std::thread::spawn(move || {
                serve_conn(c, &conn, &logs);
                live.fetch_sub(1, Ordering::SeqCst);
            });
        } else {
            serve_conn(c, &conn, &logs);
        }
    }
}

/// One accepted connection's endpoints (the original destination).
struct Conn {
    src: String,
    sport: u16,
    dst: String,
    dport: u16,
}

/// Reads what the client sends first (up to 64 KiB, 500 ms of silence ends it) and
/// answers by content: HTTP gets the harmless page, a TLS ClientHello is recorded (SNI,
/// JA3) and the connection closed, anything else is just taken.
fn serve_conn(mut c: std::net::TcpStream, conn: &Conn, logs: &Mutex<Logs>) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = c.set_write_timeout(Some(Duration::from_millis(500)));
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    while req.len() < 65_536 {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                req.extend_from_slice(&buf[..n]);
                if http_complete(&req) || (req[0] == 0x16 && !crate::tls::needs_more(&req)) {
                    break;
                }
            }
        }
    }
    if let Some(h) = crate::tls::client_hello(&req) {
        logs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .tls
            .push(json!({
                "srcip": conn.src, "srcport": conn.sport, "dstip": conn.dst, "dstport": conn.dport,
                "sni": h.sni.unwrap_or_default(), "version": crate::tls::version_name(h.version),
                "ja3": {"hash": h.ja3_hash, "string": h.ja3},
                "time": now(),
            }));
        return;
    }
    if let Some(mut h) = parse_http(&req) {
        let _ = c.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nServer: Apache\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            )
            .as_bytes(),
        );
        if h["host"] == "" {
            h["host"] = json!(conn.dst);
        }
        if conn.dport != 80
            && !h["uri"]
                .as_str()
                .unwrap_or("")
                .contains(&format!(":{}", conn.dport))
        {
            // Cuckoo's uri carries the port when it is not 80.
            let host = h["host"].as_str().unwrap_or("").to_owned();
            let path = h["data"]
                .as_str()
                .and_then(|d| d.split_whitespace().nth(1))
                .unwrap_or("/")
                .to_owned();
            h["uri"] = json!(format!("http://{host}:{}{path}", conn.dport));
        }
        h["port"] = json!(conn.dport);
        h["dst"] = json!(conn.dst);
        logs.lock().unwrap_or_else(|e| e.into_inner()).http.push(h);
    }
}

fn http_complete(req: &[u8]) -> bool {
    let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    req.len() >= end + 4 + len
}

/// Cuckoo's `network.http` entry for a request.
fn parse_http(req: &[u8]) -> Option<Value> {
    let end = req
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(req.len());
    let head = String::from_utf8_lossy(&req[..end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let uri = first.next()?.to_owned();
    let version = first.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let mut headers = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let host = headers.get("host").cloned().unwrap_or_default();
    let host_name = host.split(':').next().unwrap_or("").to_owned();
    let path = uri.split('?').next().unwrap_or("").to_owned();
    let body = req
        .get(end + 4..)
        .map(|b| String::from_utf8_lossy(b).into_owned());
    Some(json!({
        "host": host_name,
        "method": method,
        "uri": format!("http://{host}{uri}"),
        "path": path,
        "user-agent": headers.get("user-agent").cloned().unwrap_or_default(),
        "version": version.trim_start_matches("HTTP/"),
        "body": body.unwrap_or_default(),
        "data": head,
        "count": 1,
    }))
}

fn write_pcap(path: &std::path::Path, frames: &[(f64, Vec<u8>)]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(24 + frames.iter().map(|f| f.1.len() + 16).sum::<usize>());
    // Classic pcap, microsecond timestamps, LINKTYPE_ETHERNET.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (t, f) in frames {
        let secs = t.trunc() as u32;
        let usec = ((t.fract()) * 1e6) as u32;
        let len = f.len() as u32;
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&usec.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out)
}

/// An IPv4 packet inside an Ethernet frame: (src, dst, proto, payload).
fn ipv4(frame: &[u8]) -> Option<(String, String, u8, &[u8])> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    if ihl < 20 || total < ihl {
        return None;
    }
    let a = |o: usize| format!("{}.{}.{}.{}", ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
    Some((a(12), a(16), ip[9], &ip[ihl..total]))
}

/// The `network` section from the sink's logs and the captured frames.
fn summarise(logs: &Logs) -> Network {
    let mut net = Network::default();
    let t0 = logs.frames.first().map_or(0.0, |f| f.0);
    let mut hosts = BTreeSet::new();
    let mut tcp_seen = BTreeSet::new();
    let mut udp_seen = BTreeSet::new();
    for (t, f) in &logs.frames {
        let Some((src, dst, proto, payload)) = ipv4(f) else {
            continue;
        };
        let from_guest = src == GUEST_IP || src.starts_with("127.");
        if !from_guest || payload.len() < 8 {
            continue;
        }
        let sport = u16::from_be_bytes([payload[0], payload[1]]);
        let dport = u16::from_be_bytes([payload[2], payload[3]]);
        let flow = json!({"src": src, "sport": sport, "dst": dst, "dport": dport, "time": t - t0});
        match proto {
            6 if payload.len() >= 14 && payload[13] & 0x12 == 0x02 => {
                if tcp_seen.insert((sport, dst.clone(), dport)) {
                    net.tcp.push(flow);
                }
                hosts.insert(dst);
            }
            17 => {
                if udp_seen.insert((sport, dst.clone(), dport)) {
                    net.udp.push(flow);
                }
                if dst != DNS_IP {
                    hosts.insert(dst);
                }
            }
            1 => {
                net.icmp
                    .push(json!({"src": src, "dst": dst, "type": payload[0], "data": ""}));
                hosts.insert(dst);
            }
            _ => {}
        }
    }
    net.hosts = hosts.into_iter().map(|h| json!(h)).collect();
    let mut domains = BTreeSet::new();
    for d in &logs.dns {
        if let Some(name) = d["request"].as_str()
            && d["type"] == "A"
            && domains.insert(name.to_owned())
        {
            net.domains.push(json!({"domain": name, "ip": SINK_IP}));
        }
        net.dns.push(d.clone());
    }
    // Identical requests are one entry with a count, as in Cuckoo.
    let mut http: Vec<Value> = Vec::new();
    for h in &logs.http {
        match http
            .iter_mut()
            .find(|x| x["uri"] == h["uri"] && x["method"] == h["method"])
        {
            Some(x) => x["count"] = json!(x["count"].as_i64().unwrap_or(1) + 1),
            None => http.push(h.clone()),
        }
    }
    net.http = http;
    net.tls = logs.tls.clone();
    if !logs.dns.is_empty() {
        net.dns_servers = vec![json!(DNS_IP)];
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_question_and_http_request_parse() {
        let q =
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x03com\x00\x00\x01\x00\x01";
        assert_eq!(parse_question(q), Some(("evil.com".into(), 1, q.len())));
        let r = b"GET /a/b?x=1 HTTP/1.1\r\nHost: evil.com\r\nUser-Agent: curl/7\r\n\r\n";
        let h = parse_http(r).unwrap();
        assert_eq!(h["uri"], "http://evil.com/a/b?x=1");
        assert_eq!(h["path"], "/a/b");
        assert_eq!(h["user-agent"], "curl/7");
        assert!(http_complete(r));
        assert!(parse_http(b"\x16\x03\x01 tls").is_none());
    }
}
