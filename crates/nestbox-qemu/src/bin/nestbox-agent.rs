//! `nestbox-agent [host] [port] [--cape]`: the Cuckoo/CAPE guest agent protocol for
//! guests (see `nestbox_qemu::guest_agent`). Defaults: 0.0.0.0, 8000, Cuckoo 0.10.
#![deny(missing_docs)]

use nestbox_qemu::guest_agent::{Agent, Dialect};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cape = args.iter().any(|a| a == "--cape");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let host = pos.first().map_or("0.0.0.0", |s| s.as_str());
    let port = pos.get(1).map_or("8000", |s| s.as_str());
    let listener = std::net::TcpListener::bind(format!("{host}:{port}"))?;
    Agent::new(if cape { Dialect::Cape } else { Dialect::Cuckoo }).serve(listener);
    Ok(())
}
