//! Network: download-and-execute, DNS lookups, command-and-control beacons.

use super::{Evidence, Sig, Signature, boxed, call_marks};

const DOWNLOAD: &[&str] = &[
    "URLDownloadToFile",
    "URLDownloadToCacheFile",
    "InternetOpenUrl",
    "InternetReadFile",
    "WinHttpReadData",
    "HttpSendRequest",
];
const EXECUTE: &[&str] = &[
    "WinExec",
    "ShellExecute",
    "ShellExecuteEx",
    "CreateProcess",
    "CreateProcessInternal",
];

fn download_execute(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let (d, x) = (ev.calls_to(DOWNLOAD), ev.calls_to(EXECUTE));
    if d.is_empty() || x.is_empty() {
        return Vec::new();
    }
    // URLDownloadToFile names the file: what runs must be it. Other download APIs hand
    // back bytes, so any program start after them counts.
    let saved: Vec<String> = d
        .iter()
        .filter(|c| c.api.starts_with("URLDownloadTo"))
        .filter_map(|c| c.arg(2).rsplit(['\\', '/']).next())
        .filter(|n| !n.is_empty() && !n.starts_with("0x"))
        .map(str::to_ascii_lowercase)
        .collect();
    let unnamed = d.iter().any(|c| !c.api.starts_with("URLDownloadTo"));
    let runs: Vec<_> = x
        .into_iter()
        .filter(|c| {
            unnamed
                || c.args.iter().any(|a| {
                    saved
                        .iter()
                        .any(|n| a.to_ascii_lowercase().contains(n.as_str()))
                })
        })
        .collect();
    if runs.is_empty() {
        return Vec::new();
    }
    [d, runs].iter().flat_map(|c| call_marks(c)).collect()
}

fn dns(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = ev
        .summary("resolves_host")
        .into_iter()
        .map(|d| ("domain".to_owned(), d.to_owned()))
        .collect();
    m.extend(
        ev.network
            .domains
            .iter()
            .filter_map(|d| d["domain"].as_str())
            .map(|d| ("domain".to_owned(), d.to_owned())),
    );
    m
}

fn beacon(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = ev
        .network
        .http
        .iter()
        .filter_map(|h| h["uri"].as_str())
        .map(|u| ("url".to_owned(), u.to_owned()))
        .collect();
    for key in ["connects_ip", "connects_host", "fetches_url"] {
        m.extend(
            ev.summary(key)
                .into_iter()
                .map(|h| ("host".to_owned(), h.to_owned())),
        );
    }
    m.extend(call_marks(&ev.calls_to(&[
        "connect",
        "WSAConnect",
        "InternetConnect",
        "WinHttpConnect",
    ])));
    m
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "downloads_and_executes",
            description: "Downloads a file and starts a program (download-and-execute)",
            severity: 3,
            categories: &["downloader"],
            ttp: &[("T1105", "Ingress Tool Transfer")],
            find: download_execute,
        },
        Sig {
            name: "network_dns_lookup",
            description: "Resolves domain names",
            severity: 1,
            categories: &["network"],
            ttp: &[("T1071.004", "Application Layer Protocol: DNS")],
            find: dns,
        },
        Sig {
            name: "network_beacon",
            description: "Connects to a remote host (HTTP requests or raw sockets), a command-and-control pattern",
            severity: 2,
            categories: &["network", "c2"],
            ttp: &[("T1071.001", "Application Layer Protocol: Web Protocols")],
            find: beacon,
        },
    ])
}
