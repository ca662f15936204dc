"""Reference output of olevba (oletools) and pdfid for the documents given on the command
line, as JSON on stdout: what nestbox's document analyzers must agree with.

For Office files: every VBA module olevba extracts (stream name, source after filter_vba,
the keywords of detect_autoexec and detect_suspicious, as CAPE calls them). For PDFs:
pdfid's header, keyword counts with hex-coded counts, and %%EOF count.
"""
import json
import sys

from oletools.olevba import VBA_Parser, detect_autoexec, detect_suspicious, filter_vba
from pdfid import pdfid as P

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
        out[path] = {"macros": modules}
print(json.dumps(out))
