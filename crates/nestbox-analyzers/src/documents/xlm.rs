//! Excel 4.0 (XLM) macro sheets in BIFF8 workbooks, as olevba's `--xlm` pass finds them
//! with oledump's plugin_biff: the BOUNDSHEET records (name, visibility, sheet type), the
//! defined names (`Auto_Open` and friends), and for each macro sheet its FORMULA cells,
//! reduced to the functions they call and the literals they carry. Formulas calling
//! EXEC/CALL/REGISTER/… or carrying URLs and download APIs are indicators. No emulation
//! or deobfuscation: this is detection.
//!
//! The walk is bounded: record lengths are 16-bit, at most [`MAX_RECORDS`] records are
//! read per substream, and every read is checked against the stream.

use serde_json::{Value, json};

/// Most records walked in one substream (a workbook stream of 64 MiB holds fewer).
const MAX_RECORDS: usize = 1_000_000;
/// Most formulas and names reported.
const MAX_LISTED: usize = 5000;

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000a;
const BOUNDSHEET: u16 = 0x0085;
const FORMULA: u16 = 0x0006;
const LBL: u16 = 0x0018;

/// What the workbook's XLM pass found.
#[derive(Debug, Default)]
pub struct Xlm {
    /// `{name, type, visibility}` per sheet.
    pub sheets: Vec<Value>,
    /// Defined names (built-in ones by their Excel name, e.g. `Auto_Open`).
    pub names: Vec<String>,
    /// `{cell, sheet, functions, strings}` per formula on a macro sheet.
    pub formulas: Vec<Value>,
    /// olevba-style listing (one line per sheet, name and formula) for keyword scans.
    pub lines: Vec<String>,
    /// `(function or literal, description)` for the risky calls.
    pub suspicious: Vec<(String, String)>,
}

use super::{u16_at, u32_at};

/// Records `(type, body)` from `pos` to the end of the stream (or an EOF record when
/// `stop_at_eof`).
fn records(d: &[u8], mut pos: usize, stop_at_eof: bool) -> impl Iterator<Item = (u16, &[u8])> {
    let mut n = 0;
    std::iter::from_fn(move || {
        if n >= MAX_RECORDS {
            return None;
        }
        n += 1;
        let ty = u16_at(d, pos)?;
        let len = usize::from(u16_at(d, pos + 2)?);
        let body = d.get(pos + 4..pos + 4 + len)?;
        pos += 4 + len;
        if stop_at_eof && ty == EOF {
            return None;
        }
        Some((ty, body))
    })
}

/// A BIFF8 short string: `cch` characters after a flags byte (bit 0: UTF-16LE).
fn xl_string(d: &[u8], cch: usize) -> String {
    let Some((&flags, chars)) = d.split_first() else {
        return String::new();
    };
    if flags & 1 == 1 {
        let b = &chars[..(2 * cch).min(chars.len() & !1)];
        char::decode_utf16(b.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])))
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else {
        super::vba::latin1(&chars[..cch.min(chars.len())])
    }
}

/// Analyses a `Workbook`/`Book` stream; `None` when it is not BIFF8 or has no macro sheet.
pub fn analyze(wb: &[u8]) -> Option<Xlm> {
    if u16_at(wb, 0) != Some(BOF) {
        return None;
    }
    let mut out = Xlm::default();
    let mut macro_sheets = Vec::new();
    for (ty, body) in records(wb, 0, true) {
        match ty {
            BOUNDSHEET => {
                let (Some(pos), Some(&state), Some(&dt), Some(&cch)) =
                    (u32_at(body, 0), body.get(4), body.get(5), body.get(6))
                else {
                    continue;
                };
                let name = xl_string(&body[7..], usize::from(cch));
                let kind = match dt {
                    0 => "worksheet or dialog sheet",
                    1 => "Excel 4.0 macro sheet",
                    2 => "chart",
                    6 => "Visual Basic module",
                    _ => "unknown",
                };
                let visibility = match state & 3 {
                    0 => "visible",
                    1 => "hidden",
                    _ => "very hidden",
                };
                out.lines.push(format!(
                    "BOUNDSHEET : Sheet Information - {kind}, {visibility} - {name}"
                ));
                if dt == 1 {
                    macro_sheets.push((pos as usize, name.clone()));
                }
                if out.sheets.len() < MAX_LISTED {
                    out.sheets
                        .push(json!({"name": name, "type": kind, "visibility": visibility}));
                }
            }
            LBL => {
                let (Some(grbit), Some(&cch)) = (u16_at(body, 0), body.get(3)) else {
                    continue;
                };
                let raw = body.get(14..).unwrap_or_default();
                let name = if grbit & 0x20 != 0 {
                    // fBuiltin: one character naming a built-in (MS-XLS 2.5.114).
                    let code = if raw.first().is_some_and(|f| f & 1 == 1) {
                        u16_at(raw, 1).unwrap_or(0xff)
                    } else {
                        raw.get(1).map_or(0xff, |&c| u16::from(c))
                    };
                    builtin_name(code).to_owned()
                } else {
                    xl_string(raw, usize::from(cch))
                };
                out.lines
                    .push(format!("LABEL : Cell Value, String Constant - {name}"));
                if out.names.len() < MAX_LISTED {
                    out.names.push(name);
                }
            }
            _ => {}
        }
    }
    if macro_sheets.is_empty() {
        return None;
    }
    for name in &out.names {
        if name.eq_ignore_ascii_case("Auto_Open") || name.eq_ignore_ascii_case("Auto_Close") {
            out.suspicious.push((
                name.clone(),
                "Runs when the Excel Workbook is opened or closed (XLM macro)".into(),
            ));
        }
    }
    for (pos, sheet) in macro_sheets {
        if u16_at(wb, pos) != Some(BOF) {
            out.lines
                .push(format!("{sheet}: no BOF record at offset {pos}"));
            continue;
        }
        for (ty, body) in records(wb, pos, true).skip(1) {
            if ty != FORMULA || out.formulas.len() >= MAX_LISTED {
                continue;
            }
            let (Some(row), Some(col), Some(cce)) =
                (u16_at(body, 0), u16_at(body, 2), u16_at(body, 20))
            else {
                continue;
            };
            let rgce = body.get(22..).unwrap_or_default();
            let rgce = &rgce[..usize::from(cce).min(rgce.len())];
            let cell = format!("R{}C{}", u32::from(row) + 1, u32::from(col & 0x3fff) + 1);
            let (functions, strings, tokens) = parse_rgce(rgce);
            out.lines
                .push(format!("FORMULA : {sheet}!{cell} {}", tokens.join(" ")));
            for f in &functions {
                if let Some(d) = risky_function(f) {
                    let pair = (f.clone(), d.to_owned());
                    if !out.suspicious.contains(&pair) {
                        out.suspicious.push(pair);
                    }
                }
            }
            for s in &strings {
                let lower = s.to_ascii_lowercase();
                for (needle, d) in RISKY_LITERALS {
                    if lower.contains(needle) {
                        let pair = ((*needle).to_owned(), (*d).to_owned());
                        if !out.suspicious.contains(&pair) {
                            out.suspicious.push(pair);
                        }
                    }
                }
            }
            out.formulas.push(json!({
                "sheet": sheet, "cell": cell, "functions": functions, "strings": strings,
            }));
        }
    }
    Some(out)
}

/// Built-in defined names (MS-XLS 2.5.114 Lbl `Name` when `fBuiltin`).
fn builtin_name(code: u16) -> &'static str {
    match code {
        0 => "Consolidate_Area",
        1 => "Auto_Open",
        2 => "Auto_Close",
        3 => "Extract",
        4 => "Database",
        5 => "Criteria",
        6 => "Print_Area",
        7 => "Print_Titles",
        8 => "Recorder",
        9 => "Data_Form",
        10 => "Auto_Activate",
        11 => "Auto_Deactivate",
        12 => "Sheet_Title",
        13 => "_FilterDatabase",
        _ => "unknown built-in name",
    }
}

/// Literal fragments that make a macro formula an indicator.
const RISKY_LITERALS: &[(&str, &str)] = &[
    ("urldownloadtofile", "May download files from the Internet"),
    (
        "shellexecute",
        "May run an executable file or a system command",
    ),
    ("winexec", "May run an executable file or a system command"),
    (
        "createprocess",
        "May run an executable file or a system command",
    ),
    ("virtualalloc", "May inject code into another process"),
    ("powershell", "May run PowerShell commands"),
    ("mshta", "May run an executable file or a system command"),
    ("rundll32", "May run an executable file or a system command"),
    ("regsvr32", "May run an executable file or a system command"),
    ("http://", "Contains a URL"),
    ("https://", "Contains a URL"),
];

/// Excel 4 functions that run code, touch files or hide activity.
fn risky_function(name: &str) -> Option<&'static str> {
    Some(match name {
        "EXEC" => "May run an executable file or a system command using Excel 4 Macros (XLM/XLF)",
        "CALL" | "REGISTER" | "REGISTER.ID" => "May call a DLL using Excel 4 Macros (XLM/XLF)",
        "RUN" | "EXECUTE" | "ON.TIME" => "May run another macro or command (XLM)",
        "FORMULA" | "FORMULA.FILL" | "SET.NAME" | "SET.VALUE" => {
            "May modify Excel 4 Macro formulas at runtime (XLM/XLF)"
        }
        "FOPEN" | "FWRITE" | "FWRITELN" | "FCLOSE" | "FILES" | "FILE.DELETE" | "SAVE.AS"
        | "DIRECTORY" => "May read or write files (XLM)",
        "GET.WORKSPACE" | "GET.DOCUMENT" => "May probe the environment (sandbox checks, XLM)",
        "WORKBOOK.HIDE" | "APP.MAXIMIZE" => "May hide or rearrange windows (XLM)",
        "CHAR" => "May obfuscate strings with CHAR (XLM)",
        _ => return None,
    })
}

/// Function names (MS-XLS 2.5.198.17 Ftab, 2.5.198.18 Cetab with bit 15) of the
/// functions that matter for macro analysis; others print as `func_0x….`.
fn function_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0001 => "IF",
        0x0035 => "GOTO",
        0x0036 => "HALT",
        0x0037 => "RETURN",
        0x0058 => "SET.NAME",
        0x0059 => "CALLER",
        0x006c => "SET.VALUE",
        0x006e => "EXEC",
        0x006f => "CHAR",
        0x007b => "DIRECTORY",
        0x0084 => "FOPEN",
        0x0085 => "FCLOSE",
        0x0089 => "FWRITELN",
        0x008a => "FWRITE",
        0x0095 => "REGISTER",
        0x0096 => "CALL",
        0x00a6 => "FILES",
        0x00ac => "WHILE",
        0x00ae => "NEXT",
        0x00b2 => "EXECUTE",
        0x00ba => "GET.WORKSPACE",
        0x00bc => "GET.DOCUMENT",
        0x010b => "REGISTER.ID",
        0x0150 => "CONCATENATE",
        0x8005 => "SAVE.AS",
        0x8006 => "FILE.DELETE",
        0x8011 => "RUN",
        0x8060 => "FORMULA",
        0x8061 => "FORMULA.FILL",
        0x8076 => "ALERT",
        0x8094 => "ON.TIME",
        0x80ad => "APP.MAXIMIZE",
        0x817f => "WORKBOOK.HIDE",
        _ => return None,
    })
}

/// Walks a formula's parsed expression: the functions called, the string literals, and a
/// token listing. An unknown token ends the walk (what follows cannot be framed).
fn parse_rgce(b: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut funcs, mut strs, mut toks) = (Vec::new(), Vec::new(), Vec::new());
    let mut p = 0usize;
    while let Some(&ptg) = b.get(p) {
        p += 1;
        // Classed tokens (0x20..0x7f) share the layout of their reference class.
        let base = if ptg >= 0x20 {
            (ptg & 0x1f) | 0x20
        } else {
            ptg
        };
        let skip = match base {
            0x01 | 0x02 => 4,
            0x03..=0x16 => 0,
            0x17 => {
                let (Some(&cch), Some(&flags)) = (b.get(p), b.get(p + 1)) else {
                    break;
                };
                let n = usize::from(cch) * if flags & 1 == 1 { 2 } else { 1 };
                let Some(raw) = b.get(p + 1..p + 2 + n) else {
                    break;
                };
                let s = xl_string(raw, usize::from(cch));
                toks.push(format!("{s:?}"));
                strs.push(s);
                p += 2 + n;
                continue;
            }
            0x19 => {
                let (Some(&grbit), Some(n)) = (b.get(p), u16_at(b, p + 1)) else {
                    break;
                };
                // tAttrChoose carries a jump table of n + 1 offsets.
                if grbit & 0x04 != 0 {
                    3 + (usize::from(n) + 1) * 2
                } else {
                    3
                }
            }
            0x1c | 0x1d => 1,
            0x1e => {
                let Some(v) = u16_at(b, p) else { break };
                toks.push(v.to_string());
                2
            }
            0x1f => 8,
            0x20 => 7,
            0x21 | 0x22 => {
                let (argc, id) = if base == 0x21 {
                    (None, u16_at(b, p))
                } else {
                    (b.get(p).map(|a| a & 0x7f), u16_at(b, p + 1))
                };
                let Some(id) = id else { break };
                let name = function_name(id)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("func_0x{id:04x}"));
                toks.push(match argc {
                    Some(a) => format!("{name}/{a}"),
                    None => name.clone(),
                });
                funcs.push(name);
                if base == 0x21 { 2 } else { 3 }
            }
            0x23 | 0x24 | 0x2a | 0x2c => {
                if (base == 0x24 || base == 0x2c)
                    && let (Some(r), Some(c)) = (u16_at(b, p), u16_at(b, p + 2))
                {
                    toks.push(format!(
                        "R{}C{}",
                        u32::from(r) + 1,
                        u32::from(c & 0x3fff) + 1
                    ));
                }
                4
            }
            0x25 | 0x2b | 0x2d => 8,
            0x26..=0x28 => 6,
            0x29 => 2,
            0x39 | 0x3a | 0x3c => 6,
            0x3b | 0x3d => 10,
            _ => break,
        };
        p += skip;
    }
    (funcs, strs, toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_walked_and_hostile_ones_end() {
        // CALL("urlmon","URLDownloadToFileA",...) then EXEC("calc"), HALT().
        let mut f = vec![0x17, 6, 0];
        f.extend(b"urlmon");
        f.extend([0x17, 18, 0]);
        f.extend(b"URLDownloadToFileA");
        f.extend([
            0x42, 2, 0x96, 0x00, 0x19, 0x04, 1, 0, 0, 0, 0, 0, 0x41, 0x6e, 0x00,
        ]);
        let (funcs, strs, _) = parse_rgce(&f);
        assert_eq!(funcs, ["CALL", "EXEC"]);
        assert_eq!(strs, ["urlmon", "URLDownloadToFileA"]);
        // Truncated at every length, and unknown tokens: no panic, a prefix of the result.
        for n in 0..f.len() {
            let (fu, _, _) = parse_rgce(&f[..n]);
            assert!(fu.len() <= 2);
        }
        assert_eq!(parse_rgce(&[0x18, 0x41, 0x6e, 0]).0.len(), 0);
        // A tAttrChoose with a 65535-entry table just skips past the end.
        assert!(parse_rgce(&[0x19, 0x04, 0xff, 0xff]).0.is_empty());
    }

    #[test]
    fn hostile_workbooks() {
        assert!(analyze(&[]).is_none());
        assert!(analyze(&[0x09, 0x08, 0xff, 0xff]).is_none());
        // A BOUNDSHEET pointing at the end of the stream for a macro sheet.
        let mut wb = vec![0x09, 0x08, 0, 0];
        wb.extend([0x85, 0, 9, 0, 0xff, 0xff, 0xff, 0x7f, 2, 1, 1, 0, b'M']);
        let x = analyze(&wb).unwrap();
        assert_eq!(x.sheets[0]["visibility"], "very hidden");
        assert!(x.formulas.is_empty());
    }
}
