//! Static triage of samples for nestbox.
//!
//! Pure functions from bytes (or a file, or a stream of chunks) to findings, each producing
//! exactly the values Cuckoo/CAPE put in a report's `target.file` section:
//!
//! * [`hashing`]: size, MD5, SHA-1, SHA-256, SHA-512, CRC32, ssdeep and TLSH in one
//!   streaming pass ([`MultiHasher`], [`digest_bytes`], [`digest_file`]);
//! * [`filetype`]: the `file -b` description and `file -b --mime-type` MIME type via the
//!   system libmagic ([`file_type_bytes`], [`file_type_path`]);
//! * [`strings`]: Cuckoo's printable-strings list and embedded URLs ([`extract_strings`],
//!   [`extract_urls`]);
//! * [`cart`]: Assemblyline's CaRT neutering format, packing and (total, bounded) unpacking;
//! * [`archive`]: archive member listing and the package guess that selects members to run;
//! * [`pe`], [`elf`], [`macho`]: executable structure (goblin) in Cuckoo/CAPE's shapes, with
//!   a pefile-identical imphash.
//!
//! What this crate is not: it does no I/O beyond reading the file it is given, no
//! networking, no database access and no async; it knows nothing about tasks, reports or
//! the rest of nestbox (it depends on no other nestbox crate). Callers decide where the
//! results go and run these CPU-bound functions off their async executors.
//!
//! Every function is total: any input, however hostile, yields a result (libmagic failures
//! degrade to `data` / `application/octet-stream`) and the output size is bounded.
#![deny(missing_docs)]

pub mod archive;
pub mod cart;
pub mod documents;
pub mod elf;
pub mod executable;
pub mod filetype;
pub mod hashing;
pub mod iocs;
pub mod macho;
pub mod pe;
pub mod programs;
pub mod strings;
pub mod unpack;

pub use filetype::{FileType, file_type_bytes, file_type_path};
pub use hashing::{Digest, MultiHasher, digest_bytes, digest_file, sha256_file};
pub use strings::{StringsOptions, extract_strings, extract_urls};
