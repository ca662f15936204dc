"""Reference output of olevba (oletools) and pdfid for the documents given on the command
line, as JSON on stdout: what nestbox's document analyzers must agree with.

For Office files: every VBA module olevba extracts (stream name, source after filter_vba,
the keywords of detect_autoexec and detect_suspicious, as CAPE calls them). For PDFs:
pdfid's header, keyword counts with hex-coded counts, and %%EOF count.
"""
import json
import sys
import xml.dom.minidom
import zipfile

import olefile

from oletools.olevba import VBA_Parser, detect_autoexec, detect_suspicious, filter_vba
from pdfid import pdfid as P

def ole_metadata(path):
    """olefile's get_metadata as CAPE's _get_meta prints it (str of each truthy value),
    byte strings decoded as Latin-1 rather than printed as b'...' reprs."""
    with olefile.OleFileIO(path) as ole:
        meta = ole.get_metadata()
    conv = lambda v: v.decode("latin-1") if isinstance(v, bytes) else str(v)
    return {
        "SummaryInformation": {p: conv(getattr(meta, p)) for p in meta.SUMMARY_ATTRIBS if getattr(meta, p)},
        "DocumentSummaryInformation": {p: conv(getattr(meta, p)) for p in meta.DOCSUM_ATTRIBS if getattr(meta, p)},
    }


def xml_metadata(path):
    """CAPE's _get_xml_meta: text children of docProps/core.xml (local names) and app.xml."""
    try:
        with zipfile.ZipFile(path) as z:
            core = xml.dom.minidom.parseString(z.read("docProps/core.xml"))
            app = xml.dom.minidom.parseString(z.read("docProps/app.xml"))
    except KeyError:
        return {}
    res = {"SummaryInformation": {}, "DocumentSummaryInformation": {}}
    for doc, key, local in ((core, "SummaryInformation", True), (app, "DocumentSummaryInformation", False)):
        for elem in doc.documentElement.childNodes:
            if elem.nodeType != elem.ELEMENT_NODE:
                continue
            n = elem.tagName
            data = doc.getElementsByTagName(n)[0].childNodes
            if not data or not hasattr(data[0], "data"):
                continue
            if local:
                if ":" not in n:
                    continue
                n = n.split(":")[1]
            res[key][n] = data[0].data
    return res


def metadata(path):
    return ole_metadata(path) if olefile.isOleFile(path) else xml_metadata(path)


out = {}
for path in sys.argv[1:]:
    if path.endswith(".pdf"):
        doc = P.PDFiD(path, allNames=False, extraData=True, force=False)
        j = json.loads(P.PDFiD2JSON(doc, False))[0]["pdfid"]
        out[path] = {
            "header": j["header"],
            "keywords": {k["name"]: [k["count"], k["hexcodecount"]] for k in j["keywords"]["keyword"]},
            "eof": int(j["countEof"]),
        }
    else:
        parser = VBA_Parser(path)
        # As olevba's main does: detection first, so the XLM listing is among the modules.
        xlm = parser.detect_xlm_macros()
        modules = []
        for _, _, stream, code in parser.extract_macros():
            if isinstance(code, bytes):
                code = code.decode("latin-1")
            code = filter_vba(code)
            if not code.strip():
                continue
            modules.append(
                {
                    "stream": stream,
                    "code": code,
                    "autoexec": sorted({k.replace(".", "_") for k, _ in detect_autoexec(code)}),
                    "suspicious": sorted({k.replace(".", "_") for k, _ in detect_suspicious(code)}),
                }
            )
        out[path] = {"macros": modules, "metadata": metadata(path), "xlm": xlm,
                     "xlm_lines": [str(l) for l in (parser.xlm_macros or [])]}
print(json.dumps(out))
