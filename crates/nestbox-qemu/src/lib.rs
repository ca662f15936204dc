//! The `qemu` machinery's host side: the Cuckoo/CAPE guest agent protocol.
//!
//! Operators bring QEMU guests (Windows or Linux images) with the agent they already
//! installed (Cuckoo's `agent.py` 0.10 or CAPE's 0.22); the host drives them exactly as
//! Cuckoo and CAPE do ([`guest`]) over a small HTTP/1.0 client ([`agent`]), and talks to
//! QEMU itself over QMP ([`qmp`]) for screenshots and shutdown. [`vm`] builds each run
//! (overlay, command line, accelerator probe) and [`machinery`] ties them together.
//! [`guest_agent`] is the same protocol from the guest's side: `nestbox-agent`, a static
//! binary for Linux guests without Python, tested against the upstream agents' checklists.
#![deny(missing_docs)]

pub mod agent;
pub mod form;
pub mod guest;
pub mod guest_agent;
pub mod machinery;
pub mod qmp;
pub mod results;
pub mod resultserver;
pub mod state;
pub mod vm;

pub use machinery::{QemuMachinery, QemuSettings};
