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

/// A typed property value for [`property_set_stream`] (MS-OLEPS).
pub enum Prop<'a> {
    /// VT_LPSTR in code page 1252.
    Str(&'a str),
    /// VT_I2.
    I2(i16),
    /// VT_I4.
    I4(i32),
    /// VT_FILETIME, 100 ns ticks since 1601.
    Time(u64),
    /// VT_BOOL.
    Bool(bool),
}

/// A property set stream with one set of the given format id and properties.
pub fn property_set_stream(fmtid: [u8; 16], props: &[(u32, Prop<'_>)]) -> Vec<u8> {
    let mut values = Vec::new();
    let mut table = Vec::new();
    let table_len = 8 + 8 * props.len();
    for (id, p) in props {
        table.extend(id.to_le_bytes());
        table.extend(((table_len + values.len()) as u32).to_le_bytes());
        match p {
            Prop::Str(s) => {
                values.extend(30u32.to_le_bytes());
                let b: Vec<u8> = s.chars().map(|c| c as u8).chain([0]).collect();
                values.extend((b.len() as u32).to_le_bytes());
                values.extend(&b);
            }
            Prop::I2(v) => {
                values.extend(2u32.to_le_bytes());
                values.extend(v.to_le_bytes());
                values.extend([0, 0]);
            }
            Prop::I4(v) => {
                values.extend(3u32.to_le_bytes());
                values.extend(v.to_le_bytes());
            }
            Prop::Time(t) => {
                values.extend(64u32.to_le_bytes());
                values.extend(t.to_le_bytes());
            }
            Prop::Bool(b) => {
                values.extend(11u32.to_le_bytes());
                values.extend(if *b { [0xff, 0xff] } else { [0, 0] });
                values.extend([0, 0]);
            }
        }
        while values.len() % 4 != 0 {
            values.push(0);
        }
    }
    let mut out = vec![0u8; 48];
    out[0..2].copy_from_slice(&0xfffeu16.to_le_bytes());
    out[4..8].copy_from_slice(&0x0002_0005u32.to_le_bytes()); // OS version
    out[24..28].copy_from_slice(&1u32.to_le_bytes());
    out[28..44].copy_from_slice(&fmtid);
    out[44..48].copy_from_slice(&48u32.to_le_bytes());
    out.extend(((table_len + values.len()) as u32).to_le_bytes());
    out.extend((props.len() as u32).to_le_bytes());
    out.extend(table);
    out.extend(values);
    out
}

/// FMTID_SummaryInformation and FMTID_DocSummaryInformation (little-endian GUIDs).
pub const FMTID_SUMMARY: [u8; 16] = [
    0xe0, 0x85, 0x9f, 0xf2, 0xf9, 0x4f, 0x68, 0x10, 0xab, 0x91, 0x08, 0x00, 0x2b, 0x27, 0xb3, 0xd9,
];
pub const FMTID_DOCSUM: [u8; 16] = [
    0x02, 0xd5, 0xcd, 0xd5, 0x9c, 0x2e, 0x1b, 0x10, 0x93, 0x97, 0x08, 0x00, 0x2b, 0x2c, 0xf9, 0xae,
];

/// Adds `\x05SummaryInformation` and `\x05DocumentSummaryInformation` to a compound file.
pub fn with_metadata(doc: Vec<u8>, summary: &[u8], docsum: &[u8]) -> Vec<u8> {
    let mut cf = cfb::CompoundFile::open(Cursor::new(doc)).unwrap();
    cf.create_stream("/\u{5}SummaryInformation")
        .unwrap()
        .write_all(summary)
        .unwrap();
    cf.create_stream("/\u{5}DocumentSummaryInformation")
        .unwrap()
        .write_all(docsum)
        .unwrap();
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

/// An OOXML document with `docProps/core.xml` and `docProps/app.xml`.
pub fn docx_with_props(core: &str, app: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>"#,
        ),
        ("docProps/core.xml", core),
        ("docProps/app.xml", app),
    ] {
        w.start_file(name, o).unwrap();
        w.write_all(data.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A PowerPoint 97 presentation whose VBA project sits, zlib-compressed, in an
/// ExOleObjStg record (type 0x1011, instance 1) of the `PowerPoint Document` stream, the
/// way PowerPoint stores it (MS-PPT 2.10.34), between a couple of other records.
pub fn ppt97_with_macros(modules: &[(&str, &str)]) -> Vec<u8> {
    let project = vba_project_bin(modules);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&project).unwrap();
    let packed = z.finish().unwrap();
    let mut doc = Vec::new();
    // A DocumentContainer header with an empty DocumentAtom-sized body.
    doc.extend(0x000fu16.to_le_bytes());
    doc.extend(0x03e8u16.to_le_bytes());
    doc.extend(40u32.to_le_bytes());
    doc.extend([0u8; 40]);
    doc.extend(0x0010u16.to_le_bytes()); // recVer 0, recInstance 1: compressed
    doc.extend(0x1011u16.to_le_bytes());
    doc.extend(((packed.len() + 4) as u32).to_le_bytes());
    doc.extend((project.len() as u32).to_le_bytes());
    doc.extend(&packed);
    doc.extend([0u8; 64]);
    // CurrentUserAtom (MS-PPT 2.3.2), unencrypted.
    let mut cu = Vec::new();
    cu.extend(0u16.to_le_bytes());
    cu.extend(0x0ff6u16.to_le_bytes());
    let user = b"nestbox";
    cu.extend(((20 + user.len() + 4) as u32).to_le_bytes());
    cu.extend(0x14u32.to_le_bytes());
    cu.extend(0xe391c05fu32.to_le_bytes());
    cu.extend(0u32.to_le_bytes()); // offsetToCurrentEdit
    cu.extend((user.len() as u16).to_le_bytes());
    cu.extend(0x03f4u16.to_le_bytes());
    cu.extend([3, 0, 0, 0]);
    cu.extend(user);
    cu.extend(8u32.to_le_bytes());
    let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    cf.create_stream("/PowerPoint Document")
        .unwrap()
        .write_all(&doc)
        .unwrap();
    cf.create_stream("/Current User")
        .unwrap()
        .write_all(&cu)
        .unwrap();
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

fn biff(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend(ty.to_le_bytes());
    out.extend((data.len() as u16).to_le_bytes());
    out.extend(data);
}

/// A BIFF8 ptgStr token (8-bit characters).
pub fn ptg_str(s: &str) -> Vec<u8> {
    let mut v = vec![0x17, s.len() as u8, 0];
    v.extend(s.as_bytes());
    v
}

/// A ptgFuncVar token calling built-in function `iftab` with `argc` arguments.
pub fn ptg_funcvar(argc: u8, iftab: u16) -> Vec<u8> {
    let mut v = vec![0x42, argc];
    v.extend(iftab.to_le_bytes());
    v
}

/// A ptgFunc token (fixed-arity function `iftab`).
pub fn ptg_func(iftab: u16) -> Vec<u8> {
    let mut v = vec![0x41];
    v.extend(iftab.to_le_bytes());
    v
}

/// An Excel 97 workbook: one visible worksheet and one (very) hidden Excel 4.0 macro sheet
/// named `macro_name` whose column A holds the given formulas (parsed-expression bytes).
pub fn xls_with_xlm(macro_name: &str, very_hidden: bool, formulas: &[Vec<u8>]) -> Vec<u8> {
    let bof = |dt: u16| {
        let mut b = Vec::new();
        b.extend(0x0600u16.to_le_bytes());
        b.extend(dt.to_le_bytes());
        b.extend([0u8; 12]);
        b
    };
    let sheet_rec = |pos: u32, state: u8, dt: u8, name: &str| {
        let mut b = Vec::new();
        b.extend(pos.to_le_bytes());
        b.extend([state, dt, name.len() as u8, 0]);
        b.extend(name.as_bytes());
        b
    };
    // Globals: BOF, two BOUNDSHEETs (positions patched below), EOF.
    let names = [
        ("Sheet1", 0u8, 0u8),
        (macro_name, if very_hidden { 2 } else { 1 }, 1),
    ];
    let mut globals = Vec::new();
    biff(&mut globals, 0x0809, &bof(0x0005));
    let mut patch = Vec::new();
    for (n, state, dt) in names {
        patch.push(globals.len() + 4);
        biff(&mut globals, 0x0085, &sheet_rec(0, state, dt, n));
    }
    biff(&mut globals, 0x000a, &[]);
    let mut sheet1 = Vec::new();
    biff(&mut sheet1, 0x0809, &bof(0x0010));
    biff(&mut sheet1, 0x000a, &[]);
    let mut macro_sheet = Vec::new();
    biff(&mut macro_sheet, 0x0809, &bof(0x0040));
    for (row, f) in formulas.iter().enumerate() {
        let mut rec = Vec::new();
        rec.extend((row as u16).to_le_bytes());
        rec.extend(0u16.to_le_bytes()); // column A
        rec.extend(15u16.to_le_bytes()); // ixfe
        rec.extend([0u8; 8]); // cached value
        rec.extend(0u16.to_le_bytes()); // grbit
        rec.extend(0u32.to_le_bytes()); // chn
        rec.extend((f.len() as u16).to_le_bytes());
        rec.extend(f);
        biff(&mut macro_sheet, 0x0006, &rec);
    }
    biff(&mut macro_sheet, 0x000a, &[]);
    let p1 = globals.len() as u32;
    let p2 = p1 + sheet1.len() as u32;
    globals[patch[0]..patch[0] + 4].copy_from_slice(&p1.to_le_bytes());
    globals[patch[1]..patch[1] + 4].copy_from_slice(&p2.to_le_bytes());
    let wb = [globals, sheet1, macro_sheet].concat();
    let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    cf.create_stream("/Workbook")
        .unwrap()
        .write_all(&wb)
        .unwrap();
    cf.flush().unwrap();
    let mut out = cf.into_inner().into_inner();
    // The root entry's CLSID says Excel.Sheet.8 (what Excel writes and olevba's ftguess
    // requires): directory entry 0 of the first directory sector, offset 0x50.
    let dir_sid = u32::from_le_bytes(out[0x30..0x34].try_into().unwrap()) as usize;
    let sector = 1usize << u16::from_le_bytes([out[0x1e], out[0x1f]]);
    let root = (dir_sid + 1) * sector;
    out[root + 0x50..root + 0x60].copy_from_slice(&[
        0x20, 0x08, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x46,
    ]);
    out
}

/// A ptgInt token.
pub fn ptg_int(v: u16) -> Vec<u8> {
    let mut t = vec![0x1e];
    t.extend(v.to_le_bytes());
    t
}
