//! Portable Executable analysis: what pefile-based Cuckoo/CAPE report about a PE.
//!
//! [`analyze`] parses headers, sections, imports and exports with goblin (in its
//! permissive mode, falling back to headers and sections only when even that fails) and
//! walks resources and version information itself, with every offset bounds-checked and
//! every list capped. The result, [`PeInfo`], serialises as CAPE's `target.file.pe`
//! (`parse_pe.py` `PortableExecutable.run`); [`PeInfo::cuckoo_static`] gives Cuckoo's
//! `static` section (`pe_imports`, `pe_sections`, `pe_imphash`, …).
//!
//! Values are formatted the way the Python reference does, because clients compare them:
//! addresses as `0x%08x` strings, CAPE section entropy as `%.02f`, the imphash exactly as
//! `pefile.get_imphash()` (with pefile's ordinal-name tables for ws2_32/wsock32/oleaut32).
//! Malformed input never panics: what cannot be parsed becomes `error`.

mod authenticode;
mod der;
mod resources;
pub mod tables;

use goblin::pe::PE;
use goblin::pe::import::SyntheticImportLookupTableEntry;
use goblin::pe::options::{ParseMode, ParseOptions};
use md5::{Digest as _, Md5};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use resources::{Resource, VersionEntry};

/// Lists in the report are cut at this many entries (a crafted PE can declare millions).
pub const MAX_ITEMS: usize = 4096;

/// One section, CAPE's `get_sections()` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Name with NULs stripped, decoded as Latin-1.
    pub name: String,
    /// `PointerToRawData`, `0x%08x`.
    pub raw_address: String,
    /// `VirtualAddress`, `0x%08x`.
    pub virtual_address: String,
    /// `Misc_VirtualSize`, `0x%08x`.
    pub virtual_size: String,
    /// `SizeOfRawData`, `0x%08x`.
    pub size_of_data: String,
    /// `IMAGE_SCN_*` flag names joined with `|`.
    pub characteristics: String,
    /// `Characteristics`, `0x%08x`.
    pub characteristics_raw: String,
    /// Shannon entropy of the raw data, `%.02f`.
    pub entropy: String,
    /// The same as a number (Cuckoo's `pe_sections[].entropy`).
    #[serde(skip)]
    pub entropy_value: f64,
}

/// One imported symbol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedSymbol {
    /// IAT slot address (`ImageBase + FirstThunk + i*size`), Python `hex()`.
    pub address: String,
    /// Symbol name; `None` for an import by ordinal.
    pub name: Option<String>,
    /// Ordinal for imports by ordinal.
    #[serde(skip)]
    pub ordinal: Option<u16>,
}

/// The imports from one DLL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedDll {
    /// DLL name as written in the file.
    pub dll: String,
    /// Its symbols, in IAT order.
    pub imports: Vec<ImportedSymbol>,
}

/// One export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedSymbol {
    /// `ImageBase + RVA`, Python `hex()`.
    pub address: String,
    /// Name, empty for exports by ordinal only (CAPE).
    pub name: String,
    /// Ordinal.
    pub ordinal: u32,
}

/// A data directory entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirEntry {
    /// `IMAGE_DIRECTORY_ENTRY_*`.
    pub name: String,
    /// `0x%08x`.
    pub virtual_address: String,
    /// `0x%08x`.
    pub size: String,
}

/// The decoded Rich header (the linker's tool-use log between the DOS stub and the PE
/// header), useful to cluster samples built with the same tool chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RichHeader {
    /// XOR key, `0x%08x`.
    pub key: String,
    /// Start offset in the file.
    pub offset: u32,
    /// `{product_id, build, count}` entries.
    pub entries: Vec<Value>,
}

/// `{offset, size}` as `0x%08x` strings (CAPE's overlay shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// Offset in the file.
    pub offset: String,
    /// Size in bytes.
    pub size: String,
}

/// CAPE's `target.file.pe`, plus what pefile-based CAPE does not say (machine, Rich
/// header, Authenticode span, .NET) under extra keys.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PeInfo {
    /// Certificates of the Authenticode signature (CAPE's keys; not verified).
    pub digital_signers: Vec<Value>,
    /// Why the signature's certificates could not (all) be read; absent when they could.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digital_signers_error: Option<String>,
    /// Guest-side signature checks (none here).
    pub guest_signers: Map<String, Value>,
    /// `ImageBase`, `0x%08x`.
    pub imagebase: Option<String>,
    /// `ImageBase + AddressOfEntryPoint`, `0x%08x`.
    pub entrypoint: Option<String>,
    /// First 16 bytes at the entry point, hex.
    pub ep_bytes: Option<String>,
    /// PEiD signatures (no database here): null.
    pub peid_signatures: Option<Vec<String>>,
    /// `CheckSum` of the optional header, `0x%08x`.
    pub reported_checksum: Option<String>,
    /// The checksum pefile computes, `0x%08x`.
    pub actual_checksum: Option<String>,
    /// `MajorOperatingSystemVersion.MinorOperatingSystemVersion`.
    pub osversion: Option<String>,
    /// PDB path from the CodeView debug entry.
    pub pdbpath: Option<String>,
    /// Imports keyed by DLL name without extension (CAPE), only named symbols.
    pub imports: Map<String, Value>,
    /// `imports` count (present when there are imports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_dll_count: Option<usize>,
    /// Name in the export directory.
    pub exported_dll_name: Option<String>,
    /// Exports.
    pub exports: Vec<ExportedSymbol>,
    /// Data directories.
    pub dirents: Vec<DirEntry>,
    /// Sections.
    pub sections: Vec<Section>,
    /// Data past the end of the image.
    pub overlay: Option<Span>,
    /// Resources (type, language, sublanguage, size, libmagic type, entropy, sha256).
    pub resources: Vec<Resource>,
    /// StringFileInfo and VarFileInfo entries.
    pub versioninfo: Vec<VersionEntry>,
    /// `pefile.get_imphash()`; empty without an import directory.
    pub imphash: Option<String>,
    /// `TimeDateStamp` as `YYYY-MM-DD HH:MM:SS` (UTC).
    pub timestamp: Option<String>,
    /// Icon fields of CAPE (not extracted here): null.
    pub icon: Option<String>,
    /// See `icon`.
    pub icon_hash: Option<String>,
    /// See `icon`.
    pub icon_fuzzy: Option<String>,
    /// See `icon`.
    pub icon_dhash: Option<String>,
    /// `IMAGE_FILE_MACHINE_*` name of the COFF machine.
    pub machine: Option<String>,
    /// PE32 or PE32+.
    pub pe_type: Option<String>,
    /// DLL flag of the COFF characteristics.
    pub is_dll: bool,
    /// The Rich header, if any.
    pub rich_header: Option<RichHeader>,
    /// The security directory (an Authenticode signature) when present.
    pub authenticode: Option<Span>,
    /// A CLR (COM descriptor) directory: a .NET assembly.
    pub dotnet: bool,
    /// Why (part of) the file could not be parsed; the other fields hold what could.
    pub error: Option<String>,
    /// All imports with ordinals, for Cuckoo's `pe_imports` (not serialised here).
    #[serde(skip)]
    pub all_imports: Vec<ImportedDll>,
}

/// Does this look like an MZ/PE file worth parsing?
pub fn is_pe(data: &[u8]) -> bool {
    if data.len() < 0x40 || &data[..2] != b"MZ" {
        return false;
    }
    let lfanew = u32::from_le_bytes([data[0x3c], data[0x3d], data[0x3e], data[0x3f]]) as usize;
    data.get(lfanew..lfanew.saturating_add(4)) == Some(&b"PE\0\0"[..])
}

/// Analyses a PE. `None` when `data` is not a PE at all (no MZ header with a `PE\0\0`
/// signature where `e_lfanew` points); `Some` with `error` set when it is one but broken.
pub fn analyze(data: &[u8]) -> Option<PeInfo> {
    if !is_pe(data) {
        return None;
    }
    let permissive = ParseOptions::default().with_parse_mode(ParseMode::Permissive);
    let (pe, error) = match PE::parse_with_opts(data, &permissive) {
        Ok(pe) => (pe, None),
        Err(full) => {
            // Headers and sections are usually still readable when a directory is broken.
            let mut headers_only = permissive
                .with_parse_tls_data(false)
                .with_parse_resources(false)
                .with_parse_imports(false);
            headers_only.parse_attribute_certificates = false;
            match PE::parse_with_opts(data, &headers_only) {
                Ok(pe) => (pe, Some(format!("partially parsed: {full}"))),
                Err(e) => {
                    return Some(PeInfo {
                        error: Some(format!("not a parsable PE: {e}")),
                        ..PeInfo::default()
                    });
                }
            }
        }
    };
    let mut info = PeInfo {
        error,
        ..PeInfo::default()
    };
    fill(&mut info, &pe, data);
    Some(info)
}

fn hex8(v: u64) -> String {
    format!("0x{v:08x}")
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// pefile's `adjust_FileAlignment`: raw pointers are rounded down to 0x200 when the file
/// alignment is at least that, as the Windows loader does.
fn adjust_pointer(ptr: u32, file_alignment: u32) -> u32 {
    if file_alignment < 0x200 {
        ptr
    } else {
        ptr / 0x200 * 0x200
    }
}

/// Maps an RVA to a file offset like pefile's `get_offset_from_rva` (section containing
/// it, else the header region).
fn rva_to_offset(pe: &PE<'_>, rva: u32, data_len: usize) -> Option<usize> {
    let fa = file_alignment(pe);
    for s in &pe.sections {
        let size = s.virtual_size.max(s.size_of_raw_data);
        if rva >= s.virtual_address
            && u64::from(rva) < u64::from(s.virtual_address) + u64::from(size)
        {
            let off = u64::from(rva - s.virtual_address)
                + u64::from(adjust_pointer(s.pointer_to_raw_data, fa));
            return usize::try_from(off).ok().filter(|&o| o < data_len);
        }
    }
    let header_end = pe
        .sections
        .iter()
        .map(|s| adjust_pointer(s.pointer_to_raw_data, fa))
        .filter(|&p| p > 0)
        .min()
        .unwrap_or(data_len as u32) as usize;
    let rva = rva as usize;
    (rva < header_end.min(data_len)).then_some(rva)
}

fn file_alignment(pe: &PE<'_>) -> u32 {
    pe.header
        .optional_header
        .map_or(0x200, |o| o.windows_fields.file_alignment)
}

/// Shannon entropy in bits per byte.
pub fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let len = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum::<f64>()
        // A single-valued section sums to -0.0, which `%.02f` prints as "-0.00";
        // pefile says "0.00".
        + 0.0
}

fn fill(info: &mut PeInfo, pe: &PE<'_>, data: &[u8]) {
    let coff = &pe.header.coff_header;
    info.machine = Some(goblin::pe::header::machine_to_str(coff.machine).to_owned());
    info.timestamp = Some(utc_datetime(i64::from(coff.time_date_stamp)));
    info.is_dll = pe.is_lib;
    let fa = file_alignment(pe);
    if let Some(opt) = &pe.header.optional_header {
        let w = &opt.windows_fields;
        info.pe_type = Some(
            if opt.standard_fields.magic == 0x20b {
                "PE32+"
            } else {
                "PE32"
            }
            .to_owned(),
        );
        info.imagebase = Some(hex8(w.image_base));
        let ep = opt.standard_fields.address_of_entry_point;
        info.entrypoint = Some(hex8(w.image_base.wrapping_add(u64::from(ep))));
        info.ep_bytes = rva_to_offset(pe, ep, data.len())
            .map(|o| hex::encode(&data[o..(o + 16).min(data.len())]));
        info.reported_checksum = Some(hex8(u64::from(w.check_sum)));
        info.actual_checksum =
            checksum_offset(data).map(|off| hex8(u64::from(pe_checksum(data, off))));
        info.osversion = Some(format!(
            "{}.{}",
            w.major_operating_system_version, w.minor_operating_system_version
        ));
        for (i, dd) in opt
            .data_directories
            .data_directories
            .iter()
            .enumerate()
            .take(16)
        {
            let (va, size) = dd.map_or((0, 0), |(_, d)| (d.virtual_address, d.size));
            info.dirents.push(DirEntry {
                name: DIRECTORY_NAMES[i].to_owned(),
                virtual_address: hex8(u64::from(va)),
                size: hex8(u64::from(size)),
            });
            match i {
                4 if va != 0 && size != 0 => {
                    // The security directory's "RVA" is a file offset.
                    info.authenticode = Some(Span {
                        offset: hex8(u64::from(va)),
                        size: hex8(u64::from(size)),
                    });
                    (info.digital_signers, info.digital_signers_error) =
                        authenticode::digital_signers(data, va, size);
                }
                14 if va != 0 && size != 0 => info.dotnet = true,
                _ => {}
            }
        }
        let dirs: Vec<(u32, u32)> = opt
            .data_directories
            .data_directories
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4)
            .filter_map(|(_, d)| d.map(|(_, d)| (d.virtual_address, d.size)))
            .collect();
        info.overlay = overlay(pe, data, &dirs);
        if let Some((_, dd)) = opt
            .data_directories
            .data_directories
            .get(2)
            .copied()
            .flatten()
            && dd.virtual_address != 0
        {
            let (res, ver) = resources::walk(data, dd.virtual_address, &|rva| {
                rva_to_offset(pe, rva, data.len())
            });
            info.resources = res;
            info.versioninfo = ver;
        }
    }

    for s in pe.sections.iter().take(MAX_ITEMS) {
        let start = adjust_pointer(s.pointer_to_raw_data, fa) as usize;
        let end = start.saturating_add(s.size_of_raw_data as usize);
        let raw = data
            .get(start.min(data.len())..end.min(data.len()))
            .unwrap_or(&[]);
        let e = entropy(raw);
        let name_end = s.name.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        info.sections.push(Section {
            name: latin1(&s.name[..name_end]),
            raw_address: hex8(u64::from(s.pointer_to_raw_data)),
            virtual_address: hex8(u64::from(s.virtual_address)),
            virtual_size: hex8(u64::from(s.virtual_size)),
            size_of_data: hex8(u64::from(s.size_of_raw_data)),
            characteristics: section_flags(s.characteristics),
            characteristics_raw: hex8(u64::from(s.characteristics)),
            entropy: format!("{e:.2}"),
            entropy_value: e,
        });
    }

    info.rich_header = pe.header.rich_header.as_ref().map(|r| RichHeader {
        key: hex8(u64::from(r.key)),
        offset: r.start_offset,
        entries: r
            .metadatas()
            .take(MAX_ITEMS)
            .filter_map(Result::ok)
            .map(|m| json!({"product_id": m.product, "build": m.build, "count": m.use_count}))
            .collect(),
    });

    if let Some(dbg) = &pe.debug_data
        && let Some(cv) = &dbg.codeview_pdb70_debug_info
    {
        let name = cv.filename;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        info.pdbpath = Some(latin1(&name[..end]));
    }

    imports(info, pe);
    exports(info, pe);
}

/// Imports, imphash, and CAPE's map of named imports.
fn imports(info: &mut PeInfo, pe: &PE<'_>) {
    let Some(import_data) = &pe.import_data else {
        return;
    };
    let image_base = pe.image_base;
    let is64 = pe.is_64;
    let slot = if is64 { 8 } else { 4 };
    let mut impstrs: Vec<String> = Vec::new();
    for entry in import_data.import_data.iter().take(MAX_ITEMS) {
        let dll = entry.name.to_owned();
        let iat = u64::from(entry.import_directory_entry.import_address_table_rva);
        let mut symbols = Vec::new();
        let lib_lower = dll.to_lowercase();
        let lib_stem = match lib_lower.rsplit_once('.') {
            Some((stem, "ocx" | "sys" | "dll")) => stem.to_owned(),
            _ => lib_lower.clone(),
        };
        for (i, e) in entry
            .import_lookup_table
            .iter()
            .flatten()
            .enumerate()
            .take(MAX_ITEMS)
        {
            let address = format!(
                "{:#x}",
                image_base.wrapping_add(iat).wrapping_add((i * slot) as u64)
            );
            let (name, ordinal) = match e {
                // pefile names ordinal imports it has a table for (its `ordLookup` without
                // `make_name`), and Cuckoo/CAPE report that name.
                SyntheticImportLookupTableEntry::OrdinalNumber(o) => {
                    (known_ordinal(&lib_lower, *o).map(str::to_owned), Some(*o))
                }
                SyntheticImportLookupTableEntry::HintNameTableRVA((_, h)) => {
                    (Some(h.name.to_owned()).filter(|n| !n.is_empty()), None)
                }
            };
            // pefile.get_imphash(): lowercased "lib.func", ordinals through ordlookup.
            let func = match (&name, ordinal) {
                (Some(n), _) => n.clone(),
                (None, o) => ordinal_name(&lib_lower, o.unwrap_or(0)),
            };
            impstrs.push(format!("{lib_stem}.{}", func.to_lowercase()));
            symbols.push(ImportedSymbol {
                address,
                name,
                ordinal,
            });
        }
        // CAPE: keyed by the name before the first dot; named symbols only.
        let key = dll.split('.').next().unwrap_or("").to_owned();
        let named: Vec<Value> = symbols
            .iter()
            .filter_map(|s| {
                s.name
                    .as_ref()
                    .map(|n| json!({"address": s.address, "name": n}))
            })
            .collect();
        match info.imports.get_mut(&key) {
            Some(Value::Object(o)) => {
                if let Some(Value::Array(list)) = o.get_mut("imports") {
                    list.extend(named);
                }
            }
            _ => {
                info.imports
                    .insert(key, json!({"dll": dll, "imports": named}));
            }
        }
        info.all_imports.push(ImportedDll {
            dll,
            imports: symbols,
        });
    }
    if !info.imports.is_empty() {
        info.imported_dll_count = Some(info.imports.len());
    }
    info.imphash = Some(hex::encode(Md5::digest(impstrs.join(",").as_bytes())));
}

/// pefile's `ordlookup.ordLookup(dll, ord, make_name=True)`: the name from its tables for
/// ws2_32/wsock32/oleaut32 (matched on the full lowercased DLL name), else `ord<N>`.
pub fn ordinal_name(dll_lower: &str, ordinal: u16) -> String {
    known_ordinal(dll_lower, ordinal).map_or_else(|| format!("ord{ordinal}"), str::to_owned)
}

/// The name pefile's tables give an ordinal of `dll_lower`, if any.
fn known_ordinal(dll_lower: &str, ordinal: u16) -> Option<&'static str> {
    let table = match dll_lower {
        "ws2_32.dll" => tables::WS2_32_ORDINALS,
        "wsock32.dll" => tables::WSOCK32_ORDINALS,
        "oleaut32.dll" => tables::OLEAUT32_ORDINALS,
        _ => &[],
    };
    table
        .binary_search_by_key(&ordinal, |(o, _)| *o)
        .ok()
        .map(|i| table[i].1)
}

fn exports(info: &mut PeInfo, pe: &PE<'_>) {
    let Some(ed) = &pe.export_data else {
        return;
    };
    info.exported_dll_name = ed.name.map(str::to_owned);
    let base = ed.export_directory_table.ordinal_base;
    let rva_of = |idx: usize| {
        ed.export_address_table.get(idx).map(|e| match e {
            goblin::pe::export::ExportAddressTableEntry::ExportRVA(r)
            | goblin::pe::export::ExportAddressTableEntry::ForwarderRVA(r) => *r,
        })
    };
    // Named exports come from goblin in name-table order; pefile lists those first, then
    // the exports by ordinal only.
    let mut named_idx = std::collections::HashSet::new();
    for (j, idx) in ed.export_ordinal_table.iter().enumerate().take(MAX_ITEMS) {
        let idx = *idx as usize;
        let Some(rva) = rva_of(idx) else { continue };
        let name = pe
            .exports
            .iter()
            .find(|e| e.rva == rva as usize && e.name.is_some())
            .and_then(|e| e.name)
            .filter(|_| j < ed.export_name_pointer_table.len())
            .unwrap_or("");
        named_idx.insert(idx);
        info.exports.push(ExportedSymbol {
            address: format!("{:#x}", pe.image_base.wrapping_add(u64::from(rva))),
            name: name.to_owned(),
            ordinal: base.wrapping_add(idx as u32),
        });
    }
    for idx in 0..ed.export_address_table.len().min(MAX_ITEMS) {
        if named_idx.contains(&idx) {
            continue;
        }
        match rva_of(idx) {
            Some(rva) if rva != 0 => info.exports.push(ExportedSymbol {
                address: format!("{:#x}", pe.image_base.wrapping_add(u64::from(rva))),
                name: String::new(),
                ordinal: base.wrapping_add(idx as u32),
            }),
            _ => {}
        }
    }
}

/// pefile's `get_overlay_data_start_offset`: the end of the furthest of the optional
/// header, the sections' raw data and the data directories (except the security one);
/// bytes beyond it are the overlay.
fn overlay(pe: &PE<'_>, data: &[u8], dirs: &[(u32, u32)]) -> Option<Span> {
    let len = data.len() as u64;
    let mut largest = 0u64;
    let mut consider = |off: u64, size: u64| {
        let end = off.saturating_add(size);
        if end <= len && end > largest {
            largest = end;
        }
    };
    let lfanew = u64::from(pe.header.dos_header.pe_pointer);
    consider(
        lfanew + 24,
        u64::from(pe.header.coff_header.size_of_optional_header),
    );
    for s in &pe.sections {
        consider(
            u64::from(s.pointer_to_raw_data),
            u64::from(s.size_of_raw_data),
        );
    }
    for &(va, size) in dirs {
        if let Some(off) = rva_to_offset(pe, va, data.len()) {
            consider(off as u64, u64::from(size));
        }
    }
    (len > largest).then(|| Span {
        offset: hex8(largest),
        size: hex8(len - largest),
    })
}

fn checksum_offset(data: &[u8]) -> Option<usize> {
    let lfanew = u32::from_le_bytes(data.get(0x3c..0x40)?.try_into().ok()?) as usize;
    Some(lfanew + 24 + 0x40)
}

/// pefile's `generate_checksum` (the Windows image checksum).
fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    let skip = checksum_offset / 4;
    for (i, chunk) in data.chunks(4).enumerate() {
        if i == skip {
            continue;
        }
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        sum += u64::from(u32::from_le_bytes(w));
        if sum >= 1 << 32 {
            sum = (sum & 0xffff_ffff) + (sum >> 32);
        }
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum += sum >> 16;
    sum &= 0xffff;
    (sum + data.len() as u64) as u32
}

const DIRECTORY_NAMES: [&str; 16] = [
    "IMAGE_DIRECTORY_ENTRY_EXPORT",
    "IMAGE_DIRECTORY_ENTRY_IMPORT",
    "IMAGE_DIRECTORY_ENTRY_RESOURCE",
    "IMAGE_DIRECTORY_ENTRY_EXCEPTION",
    "IMAGE_DIRECTORY_ENTRY_SECURITY",
    "IMAGE_DIRECTORY_ENTRY_BASERELOC",
    "IMAGE_DIRECTORY_ENTRY_DEBUG",
    "IMAGE_DIRECTORY_ENTRY_COPYRIGHT",
    "IMAGE_DIRECTORY_ENTRY_GLOBALPTR",
    "IMAGE_DIRECTORY_ENTRY_TLS",
    "IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG",
    "IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT",
    "IMAGE_DIRECTORY_ENTRY_IAT",
    "IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT",
    "IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR",
    "IMAGE_DIRECTORY_ENTRY_RESERVED",
];

/// CAPE's `_convert_section_characteristics`.
fn section_flags(val: u32) -> String {
    const FLAGS: [&str; 32] = [
        "",
        "",
        "",
        "IMAGE_SCN_TYPE_NO_PAD",
        "",
        "IMAGE_SCN_CNT_CODE",
        "IMAGE_SCN_CNT_INITIALIZED_DATA",
        "IMAGE_SCN_CNT_UNINITIALIZED_DATA",
        "IMAGE_SCN_LNK_OTHER",
        "IMAGE_SCN_LNK_INFO",
        "",
        "IMAGE_SCN_LNK_REMOVE",
        "IMAGE_SCN_LNK_COMDAT",
        "",
        "IMAGE_SCN_NO_DEFER_SPEC_EXC",
        "IMAGE_SCN_GPREL",
        "",
        "IMAGE_SCN_MEM_PURGEABLE",
        "IMAGE_SCN_MEM_LOCKED",
        "IMAGE_SCN_MEM_PRELOAD",
        "",
        "",
        "",
        "",
        "IMAGE_SCN_LNK_NRELOC_OVFL",
        "IMAGE_SCN_MEM_DISCARDABLE",
        "IMAGE_SCN_MEM_NOT_CACHED",
        "IMAGE_SCN_MEM_NOT_PAGED",
        "IMAGE_SCN_MEM_SHARED",
        "IMAGE_SCN_MEM_EXECUTE",
        "IMAGE_SCN_MEM_READ",
        "IMAGE_SCN_MEM_WRITE",
    ];
    const ALIGN: [&str; 16] = [
        "",
        "IMAGE_SCN_ALIGN_1BYTES",
        "IMAGE_SCN_ALIGN_2BYTES",
        "IMAGE_SCN_ALIGN_4BYTES",
        "IMAGE_SCN_ALIGN_8BYTES",
        "IMAGE_SCN_ALIGN_16BYTES",
        "IMAGE_SCN_ALIGN_32BYTES",
        "IMAGE_SCN_ALIGN_64BYTES",
        "IMAGE_SCN_ALIGN_128BYTES",
        "IMAGE_SCN_ALIGN_256BYTES",
        "IMAGE_SCN_ALIGN_512BYTES",
        "IMAGE_SCN_ALIGN_1024BYTES",
        "IMAGE_SCN_ALIGN_2048BYTES",
        "IMAGE_SCN_ALIGN_4096BYTES",
        "IMAGE_SCN_ALIGN_8192BYTES",
        "",
    ];
    let mut tags: Vec<&str> = FLAGS
        .iter()
        .enumerate()
        .filter(|(i, f)| !f.is_empty() && val & (1 << i) != 0)
        .map(|(_, f)| *f)
        .collect();
    if val & 0x00F0_0000 != 0 {
        let a = ALIGN[((val >> 20) & 0xF) as usize];
        if !a.is_empty() {
            tags.push(a);
        }
    }
    tags.join("|")
}

/// `YYYY-MM-DD HH:MM:SS` for a Unix time, UTC (Howard Hinnant's civil-from-days).
pub fn utc_datetime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl PeInfo {
    /// Cuckoo 2.0.7's `static` section for this PE (`processing/static.py` `PortableExecutable.run`).
    pub fn cuckoo_static(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("peid_signatures".into(), Value::Null);
        m.insert(
            "pe_imports".into(),
            Value::Array(
                self.all_imports
                    .iter()
                    .map(|d| {
                        json!({"dll": d.dll, "imports": d.imports.iter().map(|s| json!({"address": s.address, "name": s.name})).collect::<Vec<_>>()})
                    })
                    .collect(),
            ),
        );
        m.insert(
            "pe_exports".into(),
            Value::Array(
                self.exports
                    .iter()
                    .map(|e| json!({"address": e.address, "name": Some(&e.name).filter(|n| !n.is_empty()), "ordinal": e.ordinal}))
                    .collect(),
            ),
        );
        m.insert(
            "pe_sections".into(),
            Value::Array(
                self.sections
                    .iter()
                    .map(|s| {
                        json!({"name": s.name, "virtual_address": s.virtual_address, "virtual_size": s.virtual_size, "size_of_data": s.size_of_data, "entropy": s.entropy_value})
                    })
                    .collect(),
            ),
        );
        m.insert(
            "pe_resources".into(),
            Value::Array(
                self.resources
                    .iter()
                    .map(|r| {
                        json!({"name": r.name, "offset": r.offset, "size": r.size, "filetype": r.filetype, "language": r.language, "sublanguage": r.sublanguage})
                    })
                    .collect(),
            ),
        );
        m.insert("pe_versioninfo".into(), json!(self.versioninfo));
        m.insert("pe_imphash".into(), json!(self.imphash));
        m.insert("pe_timestamp".into(), json!(self.timestamp));
        m.insert("pdb_path".into(), json!(self.pdbpath));
        // Cuckoo's `_get_signature` lists the same certificates.
        m.insert("signature".into(), json!(self.digital_signers));
        m.insert(
            "imported_dll_count".into(),
            json!(
                self.all_imports
                    .iter()
                    .filter(|d| !d.dll.is_empty())
                    .count()
            ),
        );
        m.insert("keys".into(), json!([]));
        if let Some(e) = &self.error {
            m.insert("pe_error".into(), json!(e));
        }
        m
    }
}

#[cfg(test)]
mod tests;
