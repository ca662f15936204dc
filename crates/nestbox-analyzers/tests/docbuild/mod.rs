//! Builders for the documents the tests analyse: Word 97 files and OOXML packages with VBA
//! projects, PDFs, RTF, shortcuts. Everything is constructed here from the format
//! specifications (MS-OVBA, MS-CFB, MS-SHLLINK, ISO 32000), so no binary fixture has to be
//! trusted or stored.
#![allow(dead_code)]

use std::io::{Cursor, Write};

/// MS-OVBA 2.4.1 compression: greedy longest-match copy tokens within each 4096-byte
/// chunk. Real Office output differs in match choice but decompresses the same way.
pub fn ovba_compress(src: &[u8]) -> Vec<u8> {
    let mut out = vec![1u8];
    for chunk in src.chunks(4096) {
        let mut body = Vec::new();
        let mut pos = 0;
        while pos < chunk.len() {
            let flag_at = body.len();
            body.push(0u8);
            for bit in 0..8 {
                if pos >= chunk.len() {
                    break;
                }
                let mut bits = 4;
                while bits < 12 && (1usize << bits) < pos {
                    bits += 1;
                }
                let max_len = (0xffffusize >> bits) + 3;
                let max_off = 1usize << (16 - bits);
                let (mut best_len, mut best_off) = (0, 0);
                for off in 1..=pos.min(max_off) {
                    let mut l = 0;
                    while l < max_len
                        && pos + l < chunk.len()
                        && chunk[pos + l - off] == chunk[pos + l]
                    {
                        l += 1;
                    }
                    if l > best_len {
                        best_len = l;
                        best_off = off;
                    }
                }
                if best_len >= 3 {
                    let token = (((best_off - 1) << (16 - bits)) | (best_len - 3)) as u16;
                    body.extend_from_slice(&token.to_le_bytes());
                    body[flag_at] |= 1 << bit;
                    pos += best_len;
                } else {
                    body.push(chunk[pos]);
                    pos += 1;
                }
            }
        }
        assert!(body.len() <= 4096, "chunk does not compress");
        let header = 0xb000u16 | (body.len() as u16 + 2 - 3);
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn rec(out: &mut Vec<u8>, id: u16, data: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A decompressed `dir` stream (MS-OVBA 2.3.4.2) for modules (name, is_document).
pub fn dir_stream(modules: &[(&str, bool)]) -> Vec<u8> {
    let mut d = Vec::new();
    rec(&mut d, 0x0001, &1u32.to_le_bytes()); // SYSKIND: Win32
    rec(&mut d, 0x0002, &0x409u32.to_le_bytes()); // LCID
    rec(&mut d, 0x0014, &0x409u32.to_le_bytes()); // LCIDINVOKE
    rec(&mut d, 0x0003, &1252u16.to_le_bytes()); // CODEPAGE
    rec(&mut d, 0x0004, b"Project"); // NAME
    rec(&mut d, 0x0005, b""); // DOCSTRING
    rec(&mut d, 0x0040, b"");
    rec(&mut d, 0x0006, b""); // HELPFILEPATH
    rec(&mut d, 0x003d, b"");
    rec(&mut d, 0x0007, &0u32.to_le_bytes()); // HELPCONTEXT
    rec(&mut d, 0x0008, &0u32.to_le_bytes()); // LIBFLAGS
    // VERSION: Size is fixed at 4 but 6 bytes follow.
    d.extend_from_slice(&0x0009u16.to_le_bytes());
    d.extend_from_slice(&4u32.to_le_bytes());
    d.extend_from_slice(&1u32.to_le_bytes());
    d.extend_from_slice(&1u16.to_le_bytes());
    rec(&mut d, 0x000c, b""); // CONSTANTS
    rec(&mut d, 0x003c, b"");
    rec(&mut d, 0x000f, &(modules.len() as u16).to_le_bytes()); // MODULES
    rec(&mut d, 0x0013, &0xffffu16.to_le_bytes()); // COOKIE
    for (name, is_doc) in modules {
        rec(&mut d, 0x0019, name.as_bytes());
        rec(&mut d, 0x0047, &utf16(name));
        rec(&mut d, 0x001a, name.as_bytes());
        rec(&mut d, 0x0032, &utf16(name));
        rec(&mut d, 0x001c, b"");
        rec(&mut d, 0x0048, b"");
        rec(&mut d, 0x0031, &0u32.to_le_bytes()); // OFFSET: source at the start
        rec(&mut d, 0x001e, &0u32.to_le_bytes());
        rec(&mut d, 0x002c, &0xffffu16.to_le_bytes());
        rec(&mut d, if *is_doc { 0x0022 } else { 0x0021 }, b"");
        rec(&mut d, 0x002b, b"");
    }
    rec(&mut d, 0x0010, b"");
    d
}

/// Writes a VBA project (PROJECT, VBA/dir, VBA/_VBA_PROJECT, module streams) under
/// `root` ("" for a vbaProject.bin, "/Macros" in a Word 97 file).
fn write_project<F: std::io::Read + Write + std::io::Seek>(
    cf: &mut cfb::CompoundFile<F>,
    root: &str,
    modules: &[(&str, &str)],
) {
    let vba = format!("{root}/VBA");
    cf.create_storage_all(&vba).unwrap();
    let mut project = String::from("ID=\"{00000000-0000-0000-0000-000000000000}\"\r\n");
    for (name, _) in modules {
        if *name == "ThisDocument" {
            project.push_str("Document=ThisDocument/&H00000000\r\n");
        } else {
            project.push_str(&format!("Module={name}\r\n"));
        }
    }
    project.push_str("Name=\"Project\"\r\nHelpContextID=\"0\"\r\n");
    cf.create_stream(format!("{root}/PROJECT"))
        .unwrap()
        .write_all(project.as_bytes())
        .unwrap();
    let dir_mods: Vec<(&str, bool)> = modules
        .iter()
        .map(|(n, _)| (*n, *n == "ThisDocument"))
        .collect();
    cf.create_stream(format!("{vba}/dir"))
        .unwrap()
        .write_all(&ovba_compress(&dir_stream(&dir_mods)))
        .unwrap();
    cf.create_stream(format!("{vba}/_VBA_PROJECT"))
        .unwrap()
        .write_all(&[0xcc, 0x61, 0xff, 0xff, 0x00, 0x00, 0x00])
        .unwrap();
    for (name, code) in modules {
        let src = if *name == "ThisDocument" {
            format!(
                "Attribute VB_Name = \"ThisDocument\"\r\nAttribute VB_Base = \"1Normal.ThisDocument\"\r\n{code}"
            )
        } else {
            format!("Attribute VB_Name = \"{name}\"\r\n{code}")
        };
        cf.create_stream(format!("{vba}/{name}"))
            .unwrap()
            .write_all(&ovba_compress(src.as_bytes()))
            .unwrap();
    }
}

/// A Word 97 document (`WordDocument` stream, `Macros` project) with the given modules.
pub fn word97_with_macros(modules: &[(&str, &str)]) -> Vec<u8> {
    let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    // A FIB-shaped prefix: wIdent 0xA5EC, nFib 0x00C1.
    let mut fib = vec![0u8; 1536];
    fib[0..2].copy_from_slice(&0xa5ecu16.to_le_bytes());
    fib[2..4].copy_from_slice(&0x00c1u16.to_le_bytes());
    cf.create_stream("/WordDocument")
        .unwrap()
        .write_all(&fib)
        .unwrap();
    cf.create_stream("/1Table")
        .unwrap()
        .write_all(&[0u8; 512])
        .unwrap();
    write_project(&mut cf, "/Macros", modules);
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

/// A `vbaProject.bin` compound file.
pub fn vba_project_bin(modules: &[(&str, &str)]) -> Vec<u8> {
    let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    write_project(&mut cf, "", modules);
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

/// An OLE embedding (`oleObject1.bin`) holding an `\x01Ole10Native` package.
pub fn ole_package(label: &str, src_path: &str, content: &[u8]) -> Vec<u8> {
    let mut native = Vec::new();
    native.extend_from_slice(&2u16.to_le_bytes());
    native.extend_from_slice(label.as_bytes());
    native.push(0);
    native.extend_from_slice(src_path.as_bytes());
    native.push(0);
    native.extend_from_slice(&[0, 0, 3, 0]);
    let temp = format!("C:\\Users\\x\\AppData\\Local\\Temp\\{label}\0");
    native.extend_from_slice(&(temp.len() as u32).to_le_bytes());
    native.extend_from_slice(temp.as_bytes());
    native.extend_from_slice(&(content.len() as u32).to_le_bytes());
    native.extend_from_slice(content);
    let mut stream = (native.len() as u32).to_le_bytes().to_vec();
    stream.extend_from_slice(&native);
    let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    cf.create_stream("/\u{1}Ole10Native")
        .unwrap()
        .write_all(&stream)
        .unwrap();
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

/// A .docm package: document, macros, a remote template and an embedded package.
pub fn docm(modules: &[(&str, &str)], template_url: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    let mut put = |name: &str, data: &[u8]| {
        w.start_file(name, o).unwrap();
        w.write_all(data).unwrap();
    };
    put(
        "[Content_Types].xml",
        br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>"#,
    );
    put(
        "_rels/.rels",
        br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
    );
    put(
        "word/document.xml",
        br#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Enable content</w:t></w:r></w:p></w:body></w:document>"#,
    );
    put(
        "word/_rels/document.xml.rels",
        br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/oleObject" Target="embeddings/oleObject1.bin"/></Relationships>"#,
    );
    let settings = format!(
        r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="{}" TargetMode="External"/></Relationships>"#,
        template_url.replace('&', "&amp;")
    );
    put("word/_rels/settings.xml.rels", settings.as_bytes());
    put("word/vbaProject.bin", &vba_project_bin(modules));
    put(
        "word/embeddings/oleObject1.bin",
        &ole_package(
            "invoice.exe",
            "C:\\Users\\a\\Desktop\\invoice.exe",
            b"MZ\x90\x00payload",
        ),
    );
    w.finish().unwrap().into_inner()
}

/// A PDF with an OpenAction JavaScript (in a Flate stream, referenced), a URI link
/// annotation, and `/J#61vaScript` name obfuscation.
pub fn pdf_with_js(js: &str, uri: &str) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(js.as_bytes()).unwrap();
    let js_stream = z.finish().unwrap();
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let mut obj = |out: &mut Vec<u8>, body: &[u8]| {
        offsets.push(out.len());
        let n = offsets.len();
        out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(
        &mut out,
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
    );
    obj(&mut out, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    obj(
        &mut out,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [6 0 R] >>",
    );
    obj(&mut out, b"<< /Type /Action /S /J#61vaScript /JS 5 0 R >>");
    let mut s5 = format!(
        "<< /Length {} /Filter /FlateDecode >>\nstream\n",
        js_stream.len()
    )
    .into_bytes();
    s5.extend_from_slice(&js_stream);
    s5.extend_from_slice(b"\nendstream");
    obj(&mut out, &s5);
    obj(
        &mut out,
        format!(
            "<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] /A << /S /URI /URI ({uri}) >> >>"
        )
        .as_bytes(),
    );
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes(),
    );
    for o in &offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// An RTF document with an embedded OLE1 object of class `class`.
pub fn rtf_with_object(class: &str, native: &[u8]) -> Vec<u8> {
    let mut ole1 = Vec::new();
    ole1.extend_from_slice(&0x0501u32.to_le_bytes());
    ole1.extend_from_slice(&2u32.to_le_bytes());
    for s in [class, "", ""] {
        let z = format!("{s}\0");
        ole1.extend_from_slice(&(z.len() as u32).to_le_bytes());
        ole1.extend_from_slice(z.as_bytes());
    }
    ole1.extend_from_slice(&(native.len() as u32).to_le_bytes());
    ole1.extend_from_slice(native);
    let hex: String = ole1.iter().map(|b| format!("{b:02x}")).collect();
    // Whitespace and a control word inside the hex, as exploit kits write it.
    let (a, b) = hex.split_at(hex.len() / 2);
    format!(
        "{{\\rtf1{{\\object\\objemb{{\\*\\objclass {class}}}{{\\*\\objdata {a}\n\\par {b}}}}}}}"
    )
    .into_bytes()
}

/// A shell link to `target` with arguments and a working directory (Unicode strings).
pub fn lnk(target: &str, args: &str, workdir: &str) -> Vec<u8> {
    let flags: u32 = 0x2 | 0x10 | 0x20 | 0x80; // LinkInfo, WorkingDir, Arguments, Unicode
    let mut d = Vec::new();
    d.extend_from_slice(&0x4cu32.to_le_bytes());
    d.extend_from_slice(&[
        0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
    ]);
    d.extend_from_slice(&flags.to_le_bytes());
    d.extend_from_slice(&0x20u32.to_le_bytes()); // archive
    d.extend_from_slice(&[0u8; 24]); // times
    d.extend_from_slice(&1234u32.to_le_bytes()); // file size
    d.extend_from_slice(&0u32.to_le_bytes()); // icon index
    d.extend_from_slice(&7u32.to_le_bytes()); // SW_SHOWMINNOACTIVE
    d.extend_from_slice(&[0u8; 12]); // hotkey + reserved
    assert_eq!(d.len(), 0x4c);
    // LinkInfo: header 0x1C, VolumeID + LocalBasePath, empty suffix.
    let mut volume = Vec::new();
    volume.extend_from_slice(&0x11u32.to_le_bytes());
    volume.extend_from_slice(&3u32.to_le_bytes());
    volume.extend_from_slice(&0u32.to_le_bytes());
    volume.extend_from_slice(&0x10u32.to_le_bytes());
    volume.push(0);
    let base = format!("{target}\0");
    let volume_off = 0x1c;
    let base_off = volume_off + volume.len();
    let suffix_off = base_off + base.len();
    let size = suffix_off + 1;
    let mut li = Vec::new();
    li.extend_from_slice(&(size as u32).to_le_bytes());
    li.extend_from_slice(&0x1cu32.to_le_bytes());
    li.extend_from_slice(&1u32.to_le_bytes());
    li.extend_from_slice(&(volume_off as u32).to_le_bytes());
    li.extend_from_slice(&(base_off as u32).to_le_bytes());
    li.extend_from_slice(&0u32.to_le_bytes());
    li.extend_from_slice(&(suffix_off as u32).to_le_bytes());
    li.extend_from_slice(&volume);
    li.extend_from_slice(base.as_bytes());
    li.push(0);
    d.extend_from_slice(&li);
    for s in [workdir, args] {
        d.extend_from_slice(&(s.encode_utf16().count() as u16).to_le_bytes());
        d.extend_from_slice(&utf16(s));
    }
    d.extend_from_slice(&0u32.to_le_bytes()); // terminal block
    d
}
