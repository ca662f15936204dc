//! What to emulate: a PE executable, a DLL (entry point and exports) or a shellcode blob,
//! from the task's package, the file's header and its name.

/// How the runner loads the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A PE image run from its entry point.
    Exe,
    /// A DLL: `DllMain` and then every export.
    Dll,
    /// Raw code run from its first byte.
    Shellcode,
}

impl Kind {
    /// The runner's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exe => "exe",
            Kind::Dll => "dll",
            Kind::Shellcode => "shellcode",
        }
    }
}

/// A decided target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// How to load it.
    pub kind: Kind,
    /// `x86` or `x64`.
    pub arch: &'static str,
}

/// The PE header facts that matter here; `None` when `head` is not a PE.
pub fn pe_header(head: &[u8]) -> Option<(u16, u16)> {
    if head.get(..2)? != b"MZ" {
        return None;
    }
    let off = u32::from_le_bytes(head.get(0x3c..0x40)?.try_into().ok()?) as usize;
    let nt = head.get(off..off.checked_add(24)?)?;
    if &nt[..4] != b"PE\0\0" {
        return None;
    }
    let machine = u16::from_le_bytes([nt[4], nt[5]]);
    let characteristics = u16::from_le_bytes([nt[22], nt[23]]);
    Some((machine, characteristics))
}

/// Decides what to run. `package` is the task's package (CAPE's `shellcode`,
/// `shellcode_x64`, `dll`, `exe`, …), `arch_option` the task option `arch` if given.
pub fn choose(
    package: &str,
    file_name: &str,
    head: &[u8],
    arch_option: Option<&str>,
) -> Option<Target> {
    let package = package.to_ascii_lowercase();
    let x64 = |default: bool| match arch_option {
        Some("x64" | "amd64" | "x86_64") => "x64",
        Some("x86" | "i386") => "x86",
        _ if default => "x64",
        _ => "x86",
    };
    match package.as_str() {
        "shellcode" => {
            return Some(Target {
                kind: Kind::Shellcode,
                arch: x64(false),
            });
        }
        "shellcode_x64" => {
            return Some(Target {
                kind: Kind::Shellcode,
                arch: "x64",
            });
        }
        _ => {}
    }
    if let Some((machine, characteristics)) = pe_header(head) {
        let arch = match machine {
            0x8664 => "x64",
            0x14c => "x86",
            // ARM and other machines cannot be emulated by speakeasy.
            _ => return None,
        };
        let is_dll = characteristics & 0x2000 != 0;
        let kind = match package.as_str() {
            "dll" | "rundll32" | "regsvr" | "regsvr32" => Kind::Dll,
            "exe" => Kind::Exe,
            _ if is_dll => Kind::Dll,
            _ => Kind::Exe,
        };
        return Some(Target { kind, arch });
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    matches!(ext.as_deref(), Some("sc" | "shellcode" | "bin" | "raw")).then(|| Target {
        kind: Kind::Shellcode,
        arch: x64(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe(machine: u16, characteristics: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x100];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        b[0x96..0x98].copy_from_slice(&characteristics.to_le_bytes());
        b
    }

    #[test]
    fn pe_kinds_and_arches() {
        let t = choose("", "a.exe", &pe(0x8664, 0x22), None).unwrap();
        assert_eq!((t.kind, t.arch), (Kind::Exe, "x64"));
        let t = choose("", "a.dll", &pe(0x14c, 0x2102), None).unwrap();
        assert_eq!((t.kind, t.arch), (Kind::Dll, "x86"));
        let t = choose("dll", "a.bin", &pe(0x14c, 0x102), None).unwrap();
        assert_eq!(t.kind, Kind::Dll);
        assert_eq!(choose("", "a.exe", &pe(0xaa64, 0x22), None), None, "ARM64");
    }

    #[test]
    fn shellcode_by_package_or_extension() {
        let t = choose("Shellcode_x64", "blob", b"\x90\x90", None).unwrap();
        assert_eq!((t.kind, t.arch), (Kind::Shellcode, "x64"));
        let t = choose("shellcode", "blob", b"\x90", Some("x64")).unwrap();
        assert_eq!(t.arch, "x64");
        let t = choose("", "payload.sc", b"\xfc\xe8", None).unwrap();
        assert_eq!((t.kind, t.arch), (Kind::Shellcode, "x86"));
        assert_eq!(choose("", "x.sh", b"#!/bin/sh", None), None);
    }

    #[test]
    fn hostile_headers() {
        assert_eq!(pe_header(b""), None);
        assert_eq!(pe_header(b"MZ"), None);
        let mut b = pe(0x14c, 0);
        b[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(pe_header(&b), None, "e_lfanew past the end");
        let mut b = pe(0x14c, 0);
        b[0x80] = b'X';
        assert_eq!(pe_header(&b), None);
    }
}
