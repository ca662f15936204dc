//! Signatures over network activity: `network` (what the sink and the capture saw) and
//! the `connect` calls (which also cover attempts the sink refused).

use std::collections::{BTreeMap, BTreeSet};

use super::{Check, Evidence, Marks, Meta};
use crate::strace;

pub(crate) static SIGNATURES: &[(Meta, Check)] = &[
    (
        Meta {
            name: "http_request",
            description: "Performs HTTP requests",
            severity: 1,
            categories: &["network"],
            ttp: &[("T1071.001", "Application Layer Protocol: Web Protocols")],
            families: &[],
        },
        http_request,
    ),
    (
        Meta {
            name: "http_to_ip_address",
            description: "Makes HTTP requests to a bare IP address instead of a host name",
            severity: 2,
            categories: &["network", "command_and_control"],
            ttp: &[("T1071.001", "Application Layer Protocol: Web Protocols")],
            families: &[],
        },
        http_ip,
    ),
    (
        Meta {
            name: "port_scan",
            description: "Connects to many ports on one host or one port on many hosts",
            severity: 2,
            categories: &["discovery", "network"],
            ttp: &[("T1046", "Network Service Discovery")],
            families: &[],
        },
        port_scan,
    ),
    (
        Meta {
            name: "network_many_dns_lookups",
            description: "Resolves an unusually large number of distinct domains",
            severity: 1,
            categories: &["network"],
            ttp: &[("T1568", "Dynamic Resolution")],
            families: &[],
        },
        many_dns,
    ),
    (
        Meta {
            name: "network_dga",
            description: "Resolves several random-looking domains (domain generation algorithm)",
            severity: 3,
            categories: &["network", "command_and_control"],
            ttp: &[(
                "T1568.002",
                "Dynamic Resolution: Domain Generation Algorithms",
            )],
            families: &[],
        },
        dga,
    ),
    (
        Meta {
            name: "cryptomining_pool",
            description: "Contacts a cryptocurrency mining pool (stratum ports or pool domains)",
            severity: 3,
            categories: &["cryptomining", "network"],
            ttp: &[("T1496", "Resource Hijacking")],
            families: &[],
        },
        mining_pool,
    ),
    (
        Meta {
            name: "network_irc",
            description: "Connects to IRC (a classic botnet command channel)",
            severity: 2,
            categories: &["network", "command_and_control"],
            ttp: &[("T1071", "Application Layer Protocol")],
            families: &[],
        },
        irc,
    ),
    (
        Meta {
            name: "network_tor",
            description: "Uses Tor (SOCKS/relay ports or .onion names)",
            severity: 2,
            categories: &["network", "command_and_control"],
            ttp: &[("T1090.003", "Proxy: Multi-hop Proxy")],
            families: &[],
        },
        tor,
    ),
];

fn http_request(ev: &Evidence<'_>) -> Marks {
    ev.network
        .http
        .iter()
        .filter_map(|h| h["uri"].as_str())
        .map(|u| ("url".to_owned(), u.to_owned()))
        .collect()
}

fn http_ip(ev: &Evidence<'_>) -> Marks {
    ev.network
        .http
        .iter()
        .filter(|h| {
            h["host"]
                .as_str()
                .map(|x| x.rsplit_once(':').map_or(x, |(a, _)| a))
                .is_some_and(|x| x.parse::<std::net::Ipv4Addr>().is_ok())
        })
        .filter_map(|h| h["uri"].as_str())
        .map(|u| ("url".to_owned(), u.to_owned()))
        .collect()
}

/// Every (address, port) the sample tried: connect calls and TCP/UDP flows.
fn endpoints(ev: &Evidence<'_>) -> BTreeSet<(String, u16)> {
    let mut v: BTreeSet<(String, u16)> = ev
        .calls()
        .filter(|(_, c)| c["api"] == "connect")
        .filter_map(|(_, c)| strace::sockaddr(c["arguments"]["addr"].as_str().unwrap_or("")))
        .collect();
    for f in ev.network.tcp.iter().chain(&ev.network.udp) {
        if let (Some(d), Some(p)) = (f["dst"].as_str(), f["dport"].as_u64()) {
            v.insert((d.to_owned(), p as u16));
        }
    }
    v.retain(|(_, p)| *p != 53);
    v
}

fn port_scan(ev: &Evidence<'_>) -> Marks {
    let eps = endpoints(ev);
    let mut by_host: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
    let mut by_port: BTreeMap<u16, BTreeSet<&str>> = BTreeMap::new();
    for (h, p) in &eps {
        by_host.entry(h).or_default().insert(*p);
        by_port.entry(*p).or_default().insert(h);
    }
    let mut m = Marks::new();
    for (h, ports) in by_host.into_iter().filter(|(_, p)| p.len() >= 10) {
        let list: Vec<String> = ports.iter().take(20).map(u16::to_string).collect();
        m.push((
            "host".to_owned(),
            format!("{h}: {} ports ({}…)", ports.len(), list.join(",")),
        ));
    }
    for (p, hosts) in by_port.into_iter().filter(|(_, h)| h.len() >= 16) {
        m.push(("port".to_owned(), format!("{p}: {} hosts", hosts.len())));
    }
    m
}

/// Distinct names looked up (the sink's DNS log and the queries in the trace).
fn names(ev: &Evidence<'_>) -> BTreeSet<String> {
    let mut v: BTreeSet<String> = ev
        .network
        .dns
        .iter()
        .filter_map(|d| d["request"].as_str())
        .map(str::to_ascii_lowercase)
        .collect();
    v.extend(
        ev.summary("resolves_host")
            .into_iter()
            .map(str::to_ascii_lowercase),
    );
    v
}

fn many_dns(ev: &Evidence<'_>) -> Marks {
    let n = names(ev);
    if n.len() < 15 {
        return Marks::new();
    }
    n.into_iter().map(|d| ("domain".to_owned(), d)).collect()
}

/// Whether a registrable label looks machine-generated: long and either nearly without
/// vowels, with a long consonant run, or mixing many digits into letters. Real names are
/// pronounceable (about 40% vowels); uniformly random letters have about 19%.
pub(crate) fn dga_like(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    if l.len() < 8 || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return false;
    }
    let letters = l.bytes().filter(u8::is_ascii_alphabetic).count();
    let digits = l.bytes().filter(u8::is_ascii_digit).count();
    let vowels = l.bytes().filter(|b| b"aeiouy".contains(b)).count();
    let mut run = 0;
    let mut longest = 0;
    for b in l.bytes() {
        if b.is_ascii_alphabetic() && !b"aeiouy".contains(&b) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    letters > 0
        && ((vowels * 100 / letters.max(1)) < 25 || longest >= 5 || (digits >= 3 && letters >= 3))
}

fn dga(ev: &Evidence<'_>) -> Marks {
    let odd: Marks = names(ev)
        .into_iter()
        .filter(|d| {
            let labels: Vec<&str> = d.split('.').collect();
            labels.len() >= 2 && dga_like(labels[labels.len() - 2])
        })
        .map(|d| ("domain".to_owned(), d))
        .collect();
    if odd.len() >= 5 { odd } else { Marks::new() }
}

const POOL_PORTS: &[u16] = &[3333, 3334, 5555, 7777, 9999, 14433, 14444, 45560, 45700];
const POOL_WORDS: &[&str] = &[
    "pool.",
    "xmr",
    "monero",
    "nanopool",
    "minexmr",
    "supportxmr",
    "hashvault",
    "2miners",
    "f2pool",
    "nicehash",
    "ethermine",
    "moneroocean",
    "mining",
];

fn mining_pool(ev: &Evidence<'_>) -> Marks {
    let mut m: Marks = names(ev)
        .into_iter()
        .filter(|d| POOL_WORDS.iter().any(|w| d.contains(w)))
        .map(|d| ("domain".to_owned(), d))
        .collect();
    m.extend(
        ev.commands()
            .into_iter()
            .filter(|c| c.contains("stratum+tcp://") || c.contains("stratum+ssl://"))
            .map(|c| ("cmdline".to_owned(), c.to_owned())),
    );
    // A pool port alone is weak (5555 and 9999 are common elsewhere); it counts next to
    // other evidence.
    if !m.is_empty() {
        m.extend(
            endpoints(ev)
                .into_iter()
                .filter(|(_, p)| POOL_PORTS.contains(p))
                .map(|(h, p)| ("endpoint".to_owned(), format!("{h}:{p}"))),
        );
    }
    m
}

fn irc(ev: &Evidence<'_>) -> Marks {
    let mut m: Marks = endpoints(ev)
        .into_iter()
        .filter(|(_, p)| (6660..=6669).contains(p) || *p == 6697)
        .map(|(h, p)| ("endpoint".to_owned(), format!("{h}:{p}")))
        .collect();
    m.extend(
        names(ev)
            .into_iter()
            .filter(|d| d.starts_with("irc."))
            .map(|d| ("domain".to_owned(), d)),
    );
    m
}

fn tor(ev: &Evidence<'_>) -> Marks {
    let mut m: Marks = endpoints(ev)
        .into_iter()
        .filter(|(_, p)| matches!(p, 9001 | 9030 | 9050 | 9051 | 9150))
        .map(|(h, p)| ("endpoint".to_owned(), format!("{h}:{p}")))
        .collect();
    m.extend(
        names(ev)
            .into_iter()
            .filter(|d| d.ends_with(".onion"))
            .map(|d| ("domain".to_owned(), d)),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::dga_like;
    use crate::behavior::Attempts;
    use crate::signatures::tests::fired;
    use nestbox_types::report::{Behavior, Network};
    use serde_json::json;

    fn with(f: impl FnOnce(&mut Network)) -> Vec<String> {
        let mut n = Network::default();
        f(&mut n);
        fired(&Behavior::default(), &n, &Attempts::default(), vec![])
    }

    fn flows(n: &mut Network, host: &str, ports: impl Iterator<Item = u16>) {
        for p in ports {
            n.tcp
                .push(json!({"src": "10.0.2.15", "sport": 40000, "dst": host, "dport": p}));
        }
    }

    fn dns(n: &mut Network, names: &[&str]) {
        for d in names {
            n.dns
                .push(json!({"request": d, "type": "A", "answers": []}));
        }
    }

    #[test]
    fn network_signatures_fire_and_stay_quiet() {
        let f = with(|n| flows(n, "10.0.2.9", 20..40));
        assert!(f.contains(&"port_scan".to_owned()), "{f:?}");
        let f = with(|n| flows(n, "10.0.2.9", [80, 443, 8080].into_iter()));
        assert!(!f.contains(&"port_scan".to_owned()), "{f:?}");

        let random = [
            "qxkzjvbwpt.com",
            "zrtplkmnvb.net",
            "bcdfghjklm.org",
            "xwvtsrqpnm.info",
            "kq3x9z7v2w.biz",
        ];
        let f = with(|n| dns(n, &random));
        assert!(f.contains(&"network_dga".to_owned()), "{f:?}");
        let real = [
            "google.com",
            "debian.org",
            "wikipedia.org",
            "microsoft.com",
            "facebook.com",
            "example.com",
        ];
        let f = with(|n| dns(n, &real));
        assert!(!f.contains(&"network_dga".to_owned()), "{f:?}");
        assert!(!f.contains(&"network_many_dns_lookups".to_owned()));
        let many: Vec<String> = (0..16).map(|i| format!("host{i}.example.com")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let f = with(|n| dns(n, &many));
        assert!(f.contains(&"network_many_dns_lookups".to_owned()));

        let f = with(|n| {
            dns(n, &["pool.minexmr.com"]);
            flows(n, "10.0.2.2", [4444].into_iter());
        });
        assert!(f.contains(&"cryptomining_pool".to_owned()), "{f:?}");
        let f = with(|n| flows(n, "10.0.2.2", [3333].into_iter()));
        assert!(
            !f.contains(&"cryptomining_pool".to_owned()),
            "a port alone: {f:?}"
        );

        let f = with(|n| flows(n, "10.0.2.2", [6667].into_iter()));
        assert!(f.contains(&"network_irc".to_owned()));
        let f = with(|n| flows(n, "10.0.2.2", [9050].into_iter()));
        assert!(f.contains(&"network_tor".to_owned()));
        let f = with(|n| flows(n, "10.0.2.2", [443].into_iter()));
        assert!(!f.iter().any(|x| x == "network_irc" || x == "network_tor"));

        let f = with(|n| {
            n.http
                .push(json!({"host": "203.0.113.9", "uri": "http://203.0.113.9/gate.php"}));
        });
        assert!(
            f.contains(&"http_to_ip_address".to_owned()) && f.contains(&"http_request".to_owned())
        );
        let f = with(|n| {
            n.http
                .push(json!({"host": "example.com", "uri": "http://example.com/"}));
        });
        assert!(!f.contains(&"http_to_ip_address".to_owned()));
    }

    #[test]
    fn dga_heuristic() {
        for d in ["qxkzjvbwpt", "kq3x9z7v2w", "bcdfghjklmnp"] {
            assert!(dga_like(d), "{d}");
        }
        for d in [
            "google",
            "microsoft",
            "windowsupdate",
            "wikipedia",
            "cloudflare",
            "debian",
        ] {
            assert!(!dga_like(d), "{d}");
        }
    }
}
