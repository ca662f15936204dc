//! VBA projects: MS-OVBA decompression, the `dir` stream, module source, and olevba's
//! keyword flags.
//!
//! A VBA project is a storage (`Macros/VBA`, `_VBA_PROJECT_CUR/VBA`, or the root of a
//! `vbaProject.bin`) holding a compressed `dir` stream that names each module's stream and
//! the offset where its compressed source starts (MS-OVBA 2.3.4.2).

use std::io::{Read, Seek};

/// Largest decompressed output of one container (a module's source, the `dir` stream).
const MAX_DECOMPRESSED: usize = 16 * 1024 * 1024;

/// Largest stream read from the compound file.
pub(super) const MAX_STREAM: u64 = 64 * 1024 * 1024;

/// Most modules read from one project.
const MAX_MODULES: usize = 1000;

/// MS-OVBA 2.4.1 decompression of a CompressedContainer. Returns what could be
/// decompressed and an error if the container was malformed or truncated.
pub fn decompress(data: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    if data.first() != Some(&1) {
        return (out, Some("no compressed container signature".into()));
    }
    let mut pos = 1;
    while pos < data.len() {
        if pos + 2 > data.len() {
            return (out, Some("truncated chunk header".into()));
        }
        let header = u16::from_le_bytes([data[pos], data[pos + 1]]);
        pos += 2;
        let size = usize::from(header & 0x0fff) + 3;
        if (header >> 12) & 0b111 != 0b011 {
            return (out, Some("bad chunk signature".into()));
        }
        let compressed = header & 0x8000 != 0;
        let end = (pos - 2 + size).min(data.len());
        let chunk_start = out.len();
        if !compressed {
            // A raw chunk is always 4096 bytes.
            let raw_end = (pos + 4096).min(data.len());
            out.extend_from_slice(&data[pos..raw_end]);
            pos = raw_end;
        } else {
            while pos < end {
                let flags = data[pos];
                pos += 1;
                for bit in 0..8 {
                    if pos >= end {
                        break;
                    }
                    if flags & (1 << bit) == 0 {
                        out.push(data[pos]);
                        pos += 1;
                    } else {
                        if pos + 2 > end {
                            return (out, Some("truncated copy token".into()));
                        }
                        let token = u16::from_le_bytes([data[pos], data[pos + 1]]);
                        pos += 2;
                        let done = out.len() - chunk_start;
                        let bits = copy_token_bits(done);
                        let length = usize::from(token & (0xffff >> bits)) + 3;
                        let offset = usize::from(token >> (16 - bits)) + 1;
                        if offset > out.len() - chunk_start {
                            return (out, Some("copy token before chunk start".into()));
                        }
                        // Overlapping copies repeat the pattern, so copy byte by byte.
                        let from = out.len() - offset;
                        for k in 0..length {
                            let b = out[from + k];
                            out.push(b);
                        }
                    }
                }
                if out.len() > MAX_DECOMPRESSED {
                    out.truncate(MAX_DECOMPRESSED);
                    return (out, Some("decompressed size limit reached".into()));
                }
            }
            pos = end;
        }
        if out.len() > MAX_DECOMPRESSED {
            out.truncate(MAX_DECOMPRESSED);
            return (out, Some("decompressed size limit reached".into()));
        }
    }
    (out, None)
}

/// The number of offset bits of a copy token, from the bytes decompressed so far in the
/// chunk (MS-OVBA 2.4.1.3.19.1: at least 4, at most 12).
fn copy_token_bits(done: usize) -> u32 {
    let mut bits = 4;
    while bits < 12 && (1usize << bits) < done {
        bits += 1;
    }
    bits
}

/// One module as the `dir` stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRef {
    /// MODULENAME.
    pub name: String,
    /// MODULESTREAMNAME (the Unicode form when present).
    pub stream: String,
    /// MODULEOFFSET: where the compressed source starts in the stream.
    pub offset: u32,
    /// MODULETYPE: a document/class module (`true`, 0x0022) or a procedural one.
    pub class: bool,
}

/// The modules listed in a decompressed `dir` stream. Unknown records are skipped by
/// their size; PROJECTVERSION's size field is fixed at 4 but 6 bytes follow (MS-OVBA
/// 2.3.4.2.1.11), a quirk every parser must special-case.
pub fn parse_dir(dir: &[u8]) -> (Vec<ModuleRef>, Option<String>) {
    let mut modules = Vec::new();
    let mut cur: Option<ModuleRef> = None;
    let mut pos = 0;
    while pos + 6 <= dir.len() {
        let id = u16::from_le_bytes([dir[pos], dir[pos + 1]]);
        let size = u32::from_le_bytes([dir[pos + 2], dir[pos + 3], dir[pos + 4], dir[pos + 5]]);
        pos += 6;
        let size = if id == 0x0009 { 6 } else { size as usize };
        let Some(body) = dir.get(pos..pos.saturating_add(size)) else {
            return (modules, Some("truncated dir record".into()));
        };
        pos += size;
        match id {
            0x0019 => {
                if let Some(m) = cur.take() {
                    modules.push(m);
                }
                cur = Some(ModuleRef {
                    name: latin1(body),
                    stream: latin1(body),
                    offset: 0,
                    class: false,
                });
            }
            0x0047 => {
                if let Some(m) = cur.as_mut() {
                    m.name = utf16(body);
                }
            }
            0x001a => {
                if let Some(m) = cur.as_mut() {
                    m.stream = latin1(body);
                }
            }
            0x0032 => {
                if let Some(m) = cur.as_mut() {
                    m.stream = utf16(body);
                }
            }
            0x0031 if body.len() >= 4 => {
                if let Some(m) = cur.as_mut() {
                    m.offset = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                }
            }
            0x0022 => {
                if let Some(m) = cur.as_mut() {
                    m.class = true;
                }
            }
            0x002b => {
                if let Some(m) = cur.take() {
                    modules.push(m);
                }
            }
            0x0010 => break,
            _ => {}
        }
        if modules.len() >= MAX_MODULES {
            break;
        }
    }
    if let Some(m) = cur.take() {
        modules.push(m);
    }
    (modules, None)
}

/// Bytes as Latin-1 (close to the Windows-1252 code page VBA projects mostly use; never
/// fails).
pub(super) fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// One extracted module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Path of the project storage in the container, for the report (`word/vbaProject.bin`
    /// or `Macros/VBA`).
    pub container: String,
    /// Module file name as olevba names it: the module name with `.bas` (procedural),
    /// `.cls` (document or class) or `.frm` (form) from the PROJECT stream.
    pub filename: String,
    /// Module stream name.
    pub stream: String,
    /// Decompressed source, `Attribute VB_…` lines removed (olevba's `filter_vba`).
    pub code: String,
}

/// Reads every VBA project in a compound file. `label` names the file for the report.
pub fn extract_projects<F: Read + Seek>(
    cfb: &mut cfb::CompoundFile<F>,
    label: &str,
    errors: &mut Vec<String>,
) -> Vec<Module> {
    // A project storage is any storage holding a `dir` stream next to `_VBA_PROJECT`.
    let dirs: Vec<std::path::PathBuf> = cfb
        .walk()
        .filter(|e| e.is_stream() && e.name().eq_ignore_ascii_case("dir"))
        .map(|e| e.path().to_path_buf())
        .take(16)
        .collect();
    let mut out = Vec::new();
    for dir_path in dirs {
        let Some(storage) = dir_path.parent().map(std::path::Path::to_path_buf) else {
            continue;
        };
        let raw = match read_stream(cfb, &dir_path) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{label}: cannot read {}: {e}", dir_path.display()));
                continue;
            }
        };
        let (dir, err) = decompress(&raw);
        if let Some(e) = err {
            errors.push(format!("{label}: dir stream: {e}"));
        }
        let (modules, err) = parse_dir(&dir);
        if let Some(e) = err {
            errors.push(format!("{label}: dir stream: {e}"));
        }
        // The PROJECT stream sits next to the VBA storage.
        let kinds = storage
            .parent()
            .map(|p| p.join("PROJECT"))
            .and_then(|p| read_stream(cfb, &p).ok())
            .map(|b| module_kinds(&b))
            .unwrap_or_default();
        for m in modules {
            let path = storage.join(&m.stream);
            let data = match read_stream(cfb, &path) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(format!("{label}: module {}: {e}", m.stream));
                    continue;
                }
            };
            let Some(compressed) = data.get(m.offset as usize..) else {
                errors.push(format!("{label}: module {}: offset past the end", m.stream));
                continue;
            };
            let (src, err) = decompress(compressed);
            if let Some(e) = err {
                errors.push(format!("{label}: module {}: {e}", m.stream));
            }
            let ext = kinds
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&m.name))
                .map(|(_, e)| *e)
                .unwrap_or(if m.class { "cls" } else { "bas" });
            out.push(Module {
                filename: format!("{}.{ext}", m.name),
                container: format!("{label}/{}", storage.display())
                    .trim_end_matches('/')
                    .replace("//", "/"),
                stream: m.stream,
                code: filter_vba(&latin1(&src)),
            });
        }
    }
    out
}

/// Module name → file extension from the PROJECT stream's `Document=`, `Module=`,
/// `Class=` and `BaseClass=` lines (MS-OVBA 2.3.1).
fn module_kinds(project: &[u8]) -> Vec<(String, &'static str)> {
    latin1(project)
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('=')?;
            let ext = match k.trim().to_ascii_lowercase().as_str() {
                "document" | "class" => "cls",
                "module" => "bas",
                "baseclass" => "frm",
                _ => return None,
            };
            let name = v.split('/').next()?.trim().trim_matches('"');
            Some((name.to_owned(), ext))
        })
        .take(MAX_MODULES)
        .collect()
}

pub(super) fn read_stream<F: Read + Seek>(
    cfb: &mut cfb::CompoundFile<F>,
    path: &std::path::Path,
) -> std::io::Result<Vec<u8>> {
    let s = cfb.open_stream(path)?;
    let mut buf = Vec::new();
    s.take(MAX_STREAM).read_to_end(&mut buf)?;
    Ok(buf)
}

/// olevba's `filter_vba`: drops the `Attribute VB_…` lines the VBA editor hides, and
/// (Python's `splitlines` then `"\n".join`) normalises line breaks to `\n` with no
/// trailing one.
pub fn filter_vba(code: &str) -> String {
    splitlines(code)
        .filter(|l| !l.starts_with("Attribute VB_"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Python's `str.splitlines()`: `\r\n` and each of `\n \r \x0b \x0c \x1c \x1d \x1e
/// \x85 \u2028 \u2029` end a line; a break at the very end adds no empty line.
fn splitlines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let brk = rest.char_indices().find(|(_, c)| {
            matches!(
                c,
                '\n' | '\r'
                    | '\u{b}'
                    | '\u{c}'
                    | '\u{1c}'
                    | '\u{1d}'
                    | '\u{1e}'
                    | '\u{85}'
                    | '\u{2028}'
                    | '\u{2029}'
            )
        });
        match brk {
            None => Some(std::mem::take(&mut rest)),
            Some((i, c)) => {
                let line = &rest[..i];
                let mut next = i + c.len_utf8();
                if c == '\r' && rest[next..].starts_with('\n') {
                    next += 1;
                }
                rest = &rest[next..];
                Some(line)
            }
        }
    })
}

/// olevba's auto-executable macro names (plain keywords), each with what it means.
const AUTOEXEC: &[(&str, &[&str])] = &[
    (
        "Runs when the Word document is opened",
        &["AutoExec", "AutoOpen", "DocumentOpen"],
    ),
    (
        "Runs when the Word document is closed",
        &[
            "AutoExit",
            "AutoClose",
            "Document_Close",
            "DocumentBeforeClose",
        ],
    ),
    (
        "Runs when the Word document is modified",
        &["DocumentChange"],
    ),
    (
        "Runs when a new Word document is created",
        &["AutoNew", "Document_New", "NewDocument"],
    ),
    (
        "Runs when the Word or Publisher document is opened",
        &["Document_Open"],
    ),
    (
        "Runs when the Publisher document is closed",
        &["Document_BeforeClose"],
    ),
    (
        "Runs when the Excel Workbook is opened",
        &[
            "Auto_Open",
            "Workbook_Open",
            "Workbook_Activate",
            "Auto_Ope",
        ],
    ),
    (
        "Runs when the Excel Workbook is closed",
        &["Auto_Close", "Workbook_Close", "Workbook_BeforeClose"],
    ),
    (
        "May run when an Excel WorkSheet is opened",
        &["Worksheet_Calculate"],
    ),
];

/// ActiveX event handler suffixes olevba flags as auto-executable (`\w+_Click`, …).
const AUTOEXEC_SUFFIXES: &[(&str, &[&str])] = &[
    (
        "Runs when the file is opened (using InkPicture ActiveX object)",
        &["_Painted", "_Painting"],
    ),
    (
        "Runs when the file is opened and ActiveX objects trigger events",
        &[
            "_GotFocus",
            "_LostFocus",
            "_MouseHover",
            "_Click",
            "_Change",
            "_Resize",
            "_BeforeNavigate2",
            "_BeforeScriptExecute",
            "_DocumentComplete",
            "_DownloadBegin",
            "_DownloadComplete",
            "_FileDownload",
            "_NavigateComplete2",
            "_NavigateError",
            "_ProgressChange",
            "_PropertyChange",
            "_SetSecureLockIcon",
            "_StatusTextChange",
            "_TitleChange",
            "_MouseMove",
            "_MouseEnter",
            "_MouseLeave",
            "_Layout",
            "_OnConnecting",
            "_FollowHyperlink",
            "_ContentControlOnEnter",
        ],
    ),
];

/// olevba's suspicious keywords (plain ones), by what they suggest.
const SUSPICIOUS: &[(&str, &[&str])] = &[
    (
        "May read system environment variables",
        &[
            "Environ",
            "Win32_Environment",
            "Environment",
            "ExpandEnvironmentStrings",
            "HKCU\\Environment",
            "HKEY_CURRENT_USER\\Environment",
        ],
    ),
    ("May open a file", &["Open"]),
    (
        "May write to a file (if combined with Open)",
        &["Write", "Put", "Output", "Print #"],
    ),
    (
        "May read or write a binary file (if combined with Open)",
        &["Binary"],
    ),
    (
        "May copy a file",
        &["FileCopy", "CopyFile", "CopyHere", "CopyFolder"],
    ),
    ("May move a file", &["MoveHere", "MoveFile", "MoveFolder"]),
    ("May delete a file", &["Kill"]),
    (
        "May create a text file",
        &["CreateTextFile", "ADODB.Stream", "WriteText", "SaveToFile"],
    ),
    (
        "May run an executable file or a system command",
        &[
            "Shell",
            "vbNormal",
            "vbNormalFocus",
            "vbHide",
            "vbMinimizedFocus",
            "vbMaximizedFocus",
            "vbNormalNoFocus",
            "vbMinimizedNoFocus",
            "WScript.Shell",
            "Run",
            "ShellExecute",
            "ShellExecuteA",
            "shell32",
            "InvokeVerb",
            "InvokeVerbEx",
            "DoIt",
        ],
    ),
    ("May run a dll", &["ControlPanelItem"]),
    (
        "May execute file or a system command through WMI",
        &["Create"],
    ),
    (
        "May run an executable file or a system command on a Mac",
        &["MacScript", "AppleScript"],
    ),
    (
        "May run PowerShell commands",
        &[
            "PowerShell",
            "noexit",
            "ExecutionPolicy",
            "noprofile",
            "command",
            "EncodedCommand",
            "invoke-command",
            "scriptblock",
            "Invoke-Expression",
            "AuthorizationManager",
        ],
    ),
    (
        "May run an executable file or a system command using PowerShell",
        &["Start-Process"],
    ),
    ("May call a DLL using Excel 4 Macros (XLM/XLF)", &["CALL"]),
    (
        "May hide the application",
        &["Application.Visible", "ShowWindow", "SW_HIDE"],
    ),
    ("May create a directory", &["MkDir"]),
    ("May save the current workbook", &["ActiveWorkbook.SaveAs"]),
    (
        "May change which directory contains files to open at startup",
        &["Application.AltStartupPath"],
    ),
    ("May create an OLE object", &["CreateObject"]),
    (
        "May get an OLE object with a running instance",
        &["GetObject"],
    ),
    ("May create an OLE object using PowerShell", &["New-Object"]),
    (
        "May run an application (if combined with CreateObject)",
        &["Shell.Application"],
    ),
    (
        "May run an Excel 4 Macro (aka XLM/XLF) from VBA",
        &["ExecuteExcel4Macro"],
    ),
    (
        "May enumerate application windows (if combined with Shell.Application object)",
        &["Windows", "FindWindow"],
    ),
    ("May run code from a DLL", &["Lib"]),
    (
        "May run code from a library on a Mac",
        &["libc.dylib", "dylib"],
    ),
    (
        "May inject code into another process",
        &[
            "CreateThread",
            "CreateUserThread",
            "VirtualAlloc",
            "VirtualAllocEx",
            "RtlMoveMemory",
            "WriteProcessMemory",
            "SetContextThread",
            "QueueApcThread",
            "WriteVirtualMemory",
            "VirtualProtect",
        ],
    ),
    ("May run a shellcode in memory", &["SetTimer"]),
    (
        "May download files from the Internet",
        &[
            "URLDownloadToFileA",
            "Msxml2.XMLHTTP",
            "Microsoft.XMLHTTP",
            "MSXML2.ServerXMLHTTP",
            "User-Agent",
        ],
    ),
    (
        "May download files from the Internet using PowerShell",
        &["Net.WebClient", "DownloadFile", "DownloadString"],
    ),
    (
        "May control another application by simulating user keystrokes",
        &["SendKeys", "AppActivate"],
    ),
    (
        "May attempt to obfuscate malicious function calls",
        &["CallByName"],
    ),
    (
        "May attempt to obfuscate specific strings (use option --deobf to deobfuscate)",
        &["Chr", "ChrB", "ChrW", "StrReverse", "Xor"],
    ),
    (
        "May read or write registry keys",
        &["RegOpenKeyExA", "RegOpenKeyEx", "RegCloseKey"],
    ),
    (
        "May read registry keys",
        &["RegQueryValueExA", "RegQueryValueEx", "RegRead"],
    ),
    (
        "May detect virtualization",
        &[
            "SYSTEM\\ControlSet001\\Services\\Disk\\Enum",
            "VIRTUAL",
            "VMWARE",
            "VBOX",
        ],
    ),
    (
        "May detect Anubis Sandbox",
        &[
            "GetVolumeInformationA",
            "GetVolumeInformation",
            "1824245000",
            "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProductId",
            "76487-337-8429955-22614",
            "andy",
            "C:\\exec\\exec.exe",
            "popupkiller",
        ],
    ),
    (
        "May detect Sandboxie",
        &["SbieDll.dll", "SandboxieControlWndClass"],
    ),
    ("May detect Sunbelt Sandbox", &["C:\\file.exe"]),
    ("May detect Norman Sandbox", &["currentuser"]),
    ("May detect CW Sandbox", &["Schmidti"]),
    ("May detect WinJail Sandbox", &["Afx:400000:0"]),
    (
        "May attempt to disable VBA macro security and Protected View",
        &[
            "AccessVBOM",
            "VBAWarnings",
            "ProtectedView",
            "DisableAttachementsInPV",
            "DisableInternetFilesInPV",
            "DisableUnsafeLocationsInPV",
            "blockcontentexecutionfrominternet",
        ],
    ),
    (
        "May attempt to modify the VBA code (self-modification)",
        &["VBProject", "VBComponents", "CodeModule", "AddFromString"],
    ),
    (
        "May modify Excel 4 Macro formulas at runtime (XLM/XLF)",
        &["FORMULA.FILL"],
    ),
];

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether `kw` (lower-case) occurs in `lower` (the code, lower-cased) with regex `\b`
/// semantics on both sides: a boundary is a change between word and non-word characters,
/// so a keyword ending in `#` or `.` needs a word character next.
fn find_word(lower: &[u8], kw: &str) -> Option<usize> {
    let kw = kw.to_ascii_lowercase();
    let k = kw.as_bytes();
    let (Some(&first), Some(&last)) = (k.first(), k.last()) else {
        return None;
    };
    memchr::memmem::find_iter(lower, k).find(|&p| {
        let prev_word = p > 0 && is_word(lower[p - 1]);
        let next_word = lower.get(p + k.len()).is_some_and(|&c| is_word(c));
        prev_word != is_word(first) && next_word != is_word(last)
    })
}

/// The table's keywords found in `code` (`lower` is it lower-cased), each as written in
/// the code (as olevba reports them) with its description.
fn keywords_in(code: &str, lower: &[u8], table: &[(&str, &[&str])]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (desc, kws) in table {
        for kw in *kws {
            if let Some(p) = find_word(lower, kw) {
                let found = &code.as_bytes()[p..p + kw.len()];
                out.push((
                    String::from_utf8_lossy(found).into_owned(),
                    (*desc).to_owned(),
                ));
            }
        }
    }
    out
}

/// `(keyword, description)` pairs for the auto-executable entry points in `code`, as
/// olevba's `detect_autoexec` reports them.
pub fn detect_autoexec(code: &str) -> Vec<(String, String)> {
    let lower = code.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut out = keywords_in(code, b, AUTOEXEC);
    for (desc, suffixes) in AUTOEXEC_SUFFIXES {
        for suffix in *suffixes {
            if let Some(m) = find_suffixed_word(code.as_bytes(), b, suffix) {
                out.push((m, (*desc).to_owned()));
            }
        }
    }
    out
}

/// The first `\w+<suffix>\b` match (case-insensitive), as written in the code.
/// `lower` is `code` lower-cased (same byte offsets).
fn find_suffixed_word(code: &[u8], lower: &[u8], suffix: &str) -> Option<String> {
    let s = suffix.to_ascii_lowercase();
    memchr::memmem::find_iter(lower, s.as_bytes()).find_map(|p| {
        let end = p + s.len();
        let next_word = lower.get(end).is_some_and(|&c| is_word(c));
        let mut start = p;
        while start > 0 && is_word(lower[start - 1]) {
            start -= 1;
        }
        (start < p && !next_word).then(|| String::from_utf8_lossy(&code[start..end]).into_owned())
    })
}

/// olevba's `SUSPICIOUS_KEYWORDS_REGEX`, each regex spelled out as the literal
/// alternatives it matches (`EnumSystemLanguageGroupsW?` → two words). Matched with `\b`
/// on both sides like the plain keywords; the earliest match wins, the longest at one
/// position (Python's greedy `re.search`). `.Variables` allows blanks after the dot.
const SUSPICIOUS_REGEX: &[(&str, &[&str])] = &[
    (
        "May use Word Document Variables to store and hide data",
        &[".Variables"],
    ),
    (
        "May run a shellcode in memory",
        &[
            "EnumSystemLanguageGroups",
            "EnumSystemLanguageGroupsW",
            "EnumDateFormats",
            "EnumDateFormatsW",
            "EnumDateFormatsEx",
            "EnumDateFormatsExEx",
        ],
    ),
    (
        "May run an executable file or a system command on a Mac (if combined with libc.dylib)",
        &[
            "system", "popen", "execl", "execv", "execle", "execlp", "execve", "execvp",
        ],
    ),
    (
        "May run an executable file or a system command using Excel 4 Macros (XLM/XLF)",
        &["EXEC"],
    ),
    (
        "Could contain a function that allows to run an executable file or a system command using Excel 4 Macros (XLM/XLF)",
        &["Could contain following functions: EXEC"],
    ),
    (
        "May call a DLL using Excel 4 Macros (XLM/XLF)",
        &["REGISTER"],
    ),
    (
        "Could contain a function that allows to call a DLL using Excel 4 Macros (XLM/XLF)",
        &["Could contain following functions: REGISTER"],
    ),
];

/// The XLM keywords are not counted right after this phrase (olevba's lookbehind).
const XLM_LOOKBEHIND: &str = "could contain following functions: ";

/// Earliest word-bounded match of any alternative (longest at one position), as written.
fn regex_keyword(code: &str, lower: &[u8], alts: &[&str]) -> Option<String> {
    let mut best: Option<(usize, usize)> = None;
    for alt in alts {
        let kw = alt.to_ascii_lowercase();
        let k = kw.as_bytes();
        let hit = if let Some(rest) = kw.strip_prefix('.') {
            // `\b\.\s*Variables\b`: a word character before the dot.
            memchr::memmem::find_iter(lower, b".").find_map(|p| {
                if p == 0 || !is_word(lower[p - 1]) {
                    return None;
                }
                let mut q = p + 1;
                while lower.get(q).is_some_and(|c| c.is_ascii_whitespace()) {
                    q += 1;
                }
                let end = q + rest.len();
                (lower.get(q..end) == Some(rest.as_bytes())
                    && !lower.get(end).is_some_and(|&c| is_word(c)))
                .then_some((p, end - p))
            })
        } else {
            memchr::memmem::find_iter(lower, k)
                .find(|&p| {
                    let bounded = (p == 0 || !is_word(lower[p - 1]))
                        && !lower.get(p + k.len()).is_some_and(|&c| is_word(c));
                    let behind = (k == b"exec" || k == b"register")
                        && lower[..p].ends_with(XLM_LOOKBEHIND.as_bytes());
                    bounded && !behind
                })
                .map(|p| (p, k.len()))
        };
        if let Some((p, len)) = hit
            && best.is_none_or(|(bp, bl)| p < bp || (p == bp && len > bl))
        {
            best = Some((p, len));
        }
    }
    best.map(|(p, len)| String::from_utf8_lossy(&code.as_bytes()[p..p + len]).into_owned())
}

/// `(keyword, description)` pairs for olevba's suspicious keywords found in `code`.
pub fn detect_suspicious(code: &str) -> Vec<(String, String)> {
    let lower = code.to_ascii_lowercase();
    let mut out = keywords_in(code, lower.as_bytes(), SUSPICIOUS);
    for (desc, alts) in SUSPICIOUS_REGEX {
        if let Some(kw) = regex_keyword(code, lower.as_bytes(), alts) {
            out.push((kw, (*desc).to_owned()));
        }
    }
    if code.contains('\u{8}') {
        out.push((
            "\u{8}".to_owned(),
            "May use special characters such as backspace to obfuscate code when printed on the console".to_owned(),
        ));
    }
    out
}
