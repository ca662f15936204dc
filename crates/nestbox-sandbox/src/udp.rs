//! The sink's UDP catch-all: every UDP datagram the sandbox sends (except to the resolver
//! address, which has its own DNS service) is handed by an nftables `tproxy` rule to one
//! socket, which reads the address the sample aimed at (`IP_RECVORIGDSTADDR`) and answers
//! from that address, as INetSim's services do: DNS on any address and port (a sample's
//! hard-coded resolver gets the sink's answer too), NTP (the current time), anything else
//! is taken without reply (no ICMP "port unreachable" either: the port looks open). The
//! datagrams themselves are in the capture, so `network.udp` lists every flow.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, SockaddrIn, bind, recvmsg,
    setsockopt, socket, sockopt,
};

use crate::net::{Logs, Stop};

/// The port the `tproxy` rule hands UDP to.
pub(crate) const UDP_CATCHALL_PORT: u16 = 65_001;

/// Seconds between the NTP epoch (1900) and the Unix epoch.
const NTP_EPOCH: u64 = 2_208_988_800;

/// A UDP socket for `addr` that may use a foreign address (`IP_TRANSPARENT`), optionally
/// told each datagram's original destination.
fn transparent(addr: SocketAddrV4, orig_dst: bool) -> Result<OwnedFd, String> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("udp socket: {e}"))?;
    setsockopt(&fd, sockopt::IpTransparent, &true).map_err(|e| format!("IP_TRANSPARENT: {e}"))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    if orig_dst {
        setsockopt(&fd, sockopt::Ipv4OrigDstAddr, &true)
            .map_err(|e| format!("IP_RECVORIGDSTADDR: {e}"))?;
    }
    crate::net::bind_retrying(&format!("udp bind {addr}"), || {
        bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(std::io::Error::from)
    })?;
    Ok(fd)
}

/// The catch-all socket, made in the sink namespace (on the calling thread).
pub(crate) fn catchall_socket() -> Result<OwnedFd, String> {
    transparent(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, UDP_CATCHALL_PORT),
        true,
    )
}

/// The reply to a datagram sent to `dport`, if the sink speaks its protocol; and the
/// DNS log entry when it was a DNS query.
pub(crate) fn answer(dport: u16, data: &[u8]) -> Option<(Vec<u8>, Option<serde_json::Value>)> {
    if dport == 123
        && let Some(r) = ntp_reply(data)
    {
        return Some((r, None));
    }
    crate::net::dns_reply(data).map(|(reply, entry)| (reply, Some(entry)))
}

/// A server reply (mode 4, stratum 2) to an NTP client request (mode 3), with the time.
fn ntp_reply(req: &[u8]) -> Option<Vec<u8>> {
    if req.len() < 48 || req[0] & 0x07 != 3 {
        return None;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let secs = (now.as_secs() + NTP_EPOCH) as u32;
    let frac = ((u64::from(now.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mut r = vec![0u8; 48];
    r[0] = (req[0] & 0x38) | 0x04;
    r[1] = 2;
    r[2] = req[2];
    r[3] = 0xec;
    r[12..16].copy_from_slice(b"LOCL");
    let stamp: Vec<u8> = [secs.to_be_bytes(), frac.to_be_bytes()].concat();
    r[16..24].copy_from_slice(&stamp);
    // Originate = the client's transmit time; receive = transmit = now.
    r[24..32].copy_from_slice(&req[40..48]);
    r[32..40].copy_from_slice(&stamp);
    r[40..48].copy_from_slice(&stamp);
    Some(r)
}

/// Serves the catch-all until `stop`, on a thread that enters the sink namespace at
/// `sink` first: the reply sockets are made per datagram and must belong to the sink
/// (made anywhere else they would send on the host's network).
pub(crate) fn serve(
    sink: &std::path::Path,
    sock: OwnedFd,
    stop: Arc<Stop>,
    logs: Arc<Mutex<Logs>>,
) {
    if crate::net::enter_netns(sink).is_err() {
        return;
    }
    let mut buf = vec![0u8; 65_536];
    while stop.wait(sock.as_fd()) {
        let mut cmsg = nix::cmsg_space!(libc::sockaddr_in);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let (n, from, orig) = {
            let Ok(msg) = recvmsg::<SockaddrIn>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) else {
                continue;
            };
            let orig = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::Ipv4OrigDstAddr(sa) => Some(SocketAddrV4::new(
                        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
                        u16::from_be(sa.sin_port),
                    )),
                    _ => None,
                })
            });
            (msg.bytes, msg.address, orig)
        };
        let (Some(from), Some(orig)) = (from, orig) else {
            continue;
        };
        let Some((reply, dns)) = answer(orig.port(), &buf[..n]) else {
            continue;
        };
        // The reply must come from the address and port the sample asked.
        if let Ok(fd) = transparent(orig, false) {
            let _ = UdpSocket::from(fd).send_to(&reply, SocketAddrV4::new(from.ip(), from.port()));
        }
        if let Some(entry) = dns {
            logs.lock()
                .unwrap_or_else(|e| e.into_inner())
                .dns
                .push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_and_dns_are_answered_and_junk_is_not() {
        let mut req = vec![0u8; 48];
        req[0] = 0x23; // version 4, client
        req[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let (r, dns) = answer(123, &req).unwrap();
        assert!(dns.is_none());
        assert_eq!(r[0] & 0x07, 4);
        assert_eq!(&r[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let secs = u32::from_be_bytes([r[40], r[41], r[42], r[43]]);
        assert!(u64::from(secs) > NTP_EPOCH);
        assert!(answer(123, &req[..47]).is_none());
        let q =
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x03com\x00\x00\x01\x00\x01";
        let (r, dns) = answer(5353, q).unwrap();
        assert_eq!(&r[..2], b"\x12\x34");
        assert_eq!(dns.unwrap()["request"], "evil.com");
        assert!(answer(9999, b"hello").is_none());
        assert!(answer(53, &[0xff; 3]).is_none());
    }
}
