//! Scripts (JavaScript, VBScript, PowerShell, batch, shell): the language, the
//! constructs droppers use, and encoded payloads decoded (PowerShell `-EncodedCommand`,
//! `FromBase64String`, long base64 literals), with indicators from all of it.

use base64::Engine as _;
use serde_json::{Value, json};

use super::Findings;

/// Most decoded payloads kept.
const MAX_DECODED: usize = 100;
/// Longest decoded payload kept (characters).
const MAX_DECODED_LEN: usize = 64 * 1024;
/// Scripts larger than this are only partly examined.
const MAX_SCRIPT: usize = 16 * 1024 * 1024;

/// Script languages nestbox recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// JScript / JavaScript (`.js`, `.jse`).
    JavaScript,
    /// VBScript (`.vbs`, `.vbe`).
    VbScript,
    /// PowerShell (`.ps1`, `.psm1`).
    PowerShell,
    /// cmd.exe batch (`.bat`, `.cmd`).
    Batch,
    /// POSIX shell (`.sh`, `#!…sh`).
    Shell,
    /// HTML application (`.hta`) or Windows Script File (`.wsf`): markup carrying one of
    /// the above.
    Hta,
}

impl Language {
    fn as_str(self) -> &'static str {
        match self {
            Language::JavaScript => "javascript",
            Language::VbScript => "vbscript",
            Language::PowerShell => "powershell",
            Language::Batch => "batch",
            Language::Shell => "shell",
            Language::Hta => "hta",
        }
    }
}

/// The script language from the file name, or from the content of text files.
pub fn detect(data: &[u8], name: &str) -> Option<Language> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("js" | "jse") => Some(Language::JavaScript),
        Some("vbs" | "vbe") => Some(Language::VbScript),
        Some("ps1" | "psm1" | "psd1") => Some(Language::PowerShell),
        Some("bat" | "cmd") => Some(Language::Batch),
        Some("sh" | "bash") => Some(Language::Shell),
        Some("hta" | "wsf") => Some(Language::Hta),
        _ => None,
    };
    if by_ext.is_some() {
        return by_ext;
    }
    let head = &data[..data.len().min(4096)];
    // Binary content is not a script.
    if head.iter().filter(|&&b| b == 0).count() > 0 {
        return None;
    }
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if text.starts_with("#!") {
        let line = text.lines().next().unwrap_or("");
        if line.contains("sh") {
            return Some(Language::Shell);
        }
        if line.contains("pwsh") {
            return Some(Language::PowerShell);
        }
        if line.contains("node") {
            return Some(Language::JavaScript);
        }
    }
    if text.starts_with("@echo off") || text.contains("\n@echo off") {
        return Some(Language::Batch);
    }
    if text.contains("<hta:application") || text.contains("<job") && text.contains("<script") {
        return Some(Language::Hta);
    }
    let score = |kws: &[&str]| kws.iter().filter(|k| text.contains(*k)).count();
    let ps = score(&[
        "invoke-expression",
        "iex ",
        "$env:",
        "new-object",
        "-encodedcommand",
        "[convert]::",
    ]);
    let vbs = score(&[
        "createobject(",
        "wscript.",
        "dim ",
        "end sub",
        "end function",
    ]);
    let js = score(&[
        "var ",
        "function(",
        "new activexobject",
        "eval(",
        "wscript.createobject",
    ]);
    let best = [
        (ps, Language::PowerShell),
        (vbs, Language::VbScript),
        (js, Language::JavaScript),
    ]
    .into_iter()
    .max_by_key(|(n, _)| *n)?;
    (best.0 >= 2).then_some(best.1)
}

/// Constructs flagged per language: (keyword, what it suggests). Matched
/// case-insensitively as substrings.
fn keywords(lang: Language) -> &'static [(&'static str, &'static str)] {
    match lang {
        Language::JavaScript | Language::Hta => &[
            ("eval(", "Evaluates code built at run time"),
            ("new activexobject", "Creates a COM object"),
            ("wscript.shell", "Runs commands through WScript.Shell"),
            (
                "shell.application",
                "Runs programs through Shell.Application",
            ),
            ("scripting.filesystemobject", "Accesses the file system"),
            ("adodb.stream", "Writes binary files"),
            ("msxml2.xmlhttp", "Downloads over HTTP"),
            ("winhttp.winhttprequest", "Downloads over HTTP"),
            (
                "string.fromcharcode",
                "Builds strings from character codes (obfuscation)",
            ),
            ("unescape(", "Decodes escaped strings (obfuscation)"),
            ("powershell", "Starts PowerShell"),
            ("cmd.exe", "Starts cmd.exe"),
            (".run(", "Runs a command"),
        ],
        Language::VbScript => &[
            ("execute", "Evaluates code built at run time"),
            ("executeglobal", "Evaluates code built at run time"),
            ("createobject", "Creates a COM object"),
            ("wscript.shell", "Runs commands through WScript.Shell"),
            (
                "shell.application",
                "Runs programs through Shell.Application",
            ),
            ("scripting.filesystemobject", "Accesses the file system"),
            ("adodb.stream", "Writes binary files"),
            ("msxml2.xmlhttp", "Downloads over HTTP"),
            ("chr(", "Builds strings from character codes (obfuscation)"),
            ("strreverse", "Reverses strings (obfuscation)"),
            ("powershell", "Starts PowerShell"),
            (".run", "Runs a command"),
        ],
        Language::PowerShell => &[
            ("invoke-expression", "Evaluates code built at run time"),
            ("iex", "Evaluates code built at run time"),
            ("downloadstring", "Downloads and runs code"),
            ("downloadfile", "Downloads a file"),
            ("net.webclient", "Downloads over HTTP"),
            ("invoke-webrequest", "Downloads over HTTP"),
            ("frombase64string", "Decodes base64 payloads"),
            ("-encodedcommand", "Runs an encoded command"),
            ("-enc", "Runs an encoded command"),
            ("bypass", "Bypasses the execution policy"),
            ("-windowstyle hidden", "Hides its window"),
            ("-w hidden", "Hides its window"),
            ("-nop", "Skips the profile"),
            ("start-process", "Starts processes"),
            ("reflection.assembly", "Loads .NET assemblies in memory"),
            ("virtualalloc", "Allocates executable memory"),
            ("add-mppreference", "Changes Defender exclusions"),
        ],
        Language::Batch => &[
            ("powershell", "Starts PowerShell"),
            ("certutil", "Downloads or decodes with certutil"),
            ("bitsadmin", "Downloads with BITS"),
            ("mshta", "Runs an HTML application"),
            ("regsvr32", "Registers or runs a DLL"),
            ("rundll32", "Runs a DLL export"),
            ("reg add", "Writes the registry"),
            ("schtasks", "Creates scheduled tasks"),
            ("vssadmin delete shadows", "Deletes shadow copies"),
            ("bcdedit", "Changes boot configuration"),
            ("attrib +h", "Hides files"),
            ("del /f", "Force-deletes files"),
        ],
        Language::Shell => &[
            ("curl ", "Downloads over HTTP"),
            ("wget ", "Downloads over HTTP"),
            ("| sh", "Pipes downloaded content into a shell"),
            ("| bash", "Pipes downloaded content into a shell"),
            ("chmod +x", "Makes a file executable"),
            ("/dev/tcp/", "Opens a raw TCP connection (reverse shell)"),
            ("nc -e", "Runs a netcat reverse shell"),
            ("base64 -d", "Decodes base64 payloads"),
            ("crontab", "Installs cron jobs"),
            ("iptables -f", "Flushes the firewall"),
            ("rm -rf", "Deletes files recursively"),
            ("nohup", "Keeps running after logout"),
        ],
    }
}

/// Analyses a script: `static.script` = `{language, suspicious: [[keyword, description]],
/// decoded: [{source, text}]}`.
pub fn analyze(data: &[u8], lang: Language, f: &mut Findings) -> Value {
    let text = decode_text(&data[..data.len().min(MAX_SCRIPT)]);
    let lower = text.to_ascii_lowercase();
    let suspicious: Vec<Value> = keywords(lang)
        .iter()
        .filter(|(k, _)| contains_token(&lower, k))
        .map(|(k, d)| json!([k, d]))
        .collect();
    let decoded = decode_payloads(&text);
    f.iocs.add_text(&text);
    for d in &decoded {
        if let Some(t) = d["text"].as_str() {
            f.iocs.add_text(t);
        }
    }
    json!({
        "language": lang.as_str(),
        "suspicious": suspicious,
        "decoded": decoded,
    })
}

/// `kw` in `lower`, not inside a longer identifier when it starts/ends with a letter.
fn contains_token(lower: &str, kw: &str) -> bool {
    let b = lower.as_bytes();
    let k = kw.as_bytes();
    memchr::memmem::find_iter(b, k).any(|p| {
        let before_ok =
            !k[0].is_ascii_alphanumeric() || p == 0 || !b[p - 1].is_ascii_alphanumeric();
        let end = p + k.len();
        let after_ok = !k[k.len() - 1].is_ascii_alphanumeric()
            || b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        before_ok && after_ok
    })
}

/// Script text: UTF-16LE when it has a BOM or looks wide, UTF-8 otherwise (lossy).
fn decode_text(data: &[u8]) -> String {
    let wide = data.starts_with(&[0xff, 0xfe])
        || (data.len() >= 4 && data[1] == 0 && data[3] == 0 && data[0] != 0);
    if wide {
        let body = data.strip_prefix(&[0xff, 0xfe][..]).unwrap_or(data);
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    String::from_utf8_lossy(data).into_owned()
}

/// Base64 payloads: the argument of PowerShell's `-e`/`-enc`/`-EncodedCommand` (UTF-16LE
/// inside), and quoted base64 literals of 40+ characters (printable results only).
/// Nested encodings are followed one level (an encoded command that itself decodes a
/// literal).
pub fn decode_payloads(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    decode_into(text, 0, &mut out);
    out
}

fn decode_into(text: &str, depth: u32, out: &mut Vec<Value>) {
    if depth > 1 {
        return;
    }
    let lower = text.to_ascii_lowercase();
    let mut seen = std::collections::HashSet::new();
    // PowerShell accepts any unambiguous prefix of -EncodedCommand ("-e", "-en", "-enc", …)
    // and "-ec".
    for (p, _) in lower.match_indices(" -e") {
        let rest = &lower[p + 2..];
        let flag_len = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        let flag = &rest[..flag_len];
        if !("encodedcommand".starts_with(flag) || flag == "ec") {
            continue;
        }
        let arg_start = p + 2 + flag_len;
        let arg = text[arg_start..]
            .trim_start()
            .trim_start_matches(['"', '\''])
            .split(|c: char| !is_b64(c))
            .next()
            .unwrap_or("");
        if arg.len() >= 8
            && seen.insert(arg.to_owned())
            && let Some(s) = b64_utf16(arg)
        {
            push(out, "powershell -EncodedCommand", &s, depth);
        }
    }
    for lit in base64_literals(text) {
        if !seen.insert(lit.to_owned()) {
            continue;
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(lit) else {
            continue;
        };
        let s = if bytes.len() >= 4 && bytes[1] == 0 && bytes[3] == 0 {
            b64_utf16(lit)
        } else {
            std::str::from_utf8(&bytes).ok().map(str::to_owned)
        };
        if let Some(s) = s.filter(|s| printable(s)) {
            push(out, "base64 literal", &s, depth);
        }
    }
}

fn push(out: &mut Vec<Value>, source: &str, text: &str, depth: u32) {
    if out.len() >= MAX_DECODED {
        return;
    }
    let t: String = text.chars().take(MAX_DECODED_LEN).collect();
    out.push(json!({"source": source, "text": t}));
    decode_into(text, depth + 1, out);
}

fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='
}

fn b64_utf16(arg: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(arg)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(arg.trim_end_matches('='))
        })
        .ok()?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16(&units).ok()?;
    printable(&s).then_some(s)
}

fn printable(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
}

/// Quoted runs of 40+ base64 characters whose length is a multiple of 4.
fn base64_literals(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for q in ['"', '\''] {
        for (k, piece) in text.split(q).enumerate() {
            if k % 2 == 1
                && piece.len() >= 40
                && piece.len() % 4 == 0
                && piece.chars().all(is_b64)
                && out.len() < MAX_DECODED
            {
                out.push(piece);
            }
        }
    }
    out
}
