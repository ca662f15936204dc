"""Cross-checks `nestbox analyze` against the reference tools on the same files.

* PE: pefile (PyPI) -- imphash, timestamp, entry point, sections (name, addresses, sizes,
  entropy), imports per DLL (names as pefile resolves them, ordinals included), exports,
  resources (type, language, sub-language, size) and version information.
* YARA: the `yara` CLI (Debian) over the repository's starter rules: the same rule names
  must match each file.

usage: check.py REPORTS.jsonl RULES_DIR FILE...   (reports in the same order as FILEs)
Prints one line per failed check and a closing "N passed, N failed" line.
"""

import json
import subprocess
import sys
from datetime import datetime, timezone

import pefile

passed = failed = 0


def check(name, ours, theirs):
    global passed, failed
    if ours == theirs:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}:\n  nestbox: {ours!r}\n  reference: {theirs!r}")


def pe_checks(path, report):
    pe = pefile.PE(path)
    file_pe = report["target"]["file"]["pe"]
    st = report["static"]
    check(f"{path} imphash", file_pe["imphash"], pe.get_imphash())
    check(f"{path} static.pe_imphash", st["pe_imphash"], pe.get_imphash())
    ts = datetime.fromtimestamp(pe.FILE_HEADER.TimeDateStamp, timezone.utc)
    check(f"{path} timestamp", file_pe["timestamp"], ts.strftime("%Y-%m-%d %H:%M:%S"))
    check(
        f"{path} entrypoint",
        file_pe["entrypoint"],
        f"0x{pe.OPTIONAL_HEADER.ImageBase + pe.OPTIONAL_HEADER.AddressOfEntryPoint:08x}",
    )
    check(f"{path} actual_checksum", file_pe["actual_checksum"], f"0x{pe.generate_checksum():08x}")
    ref_sections = [
        {
            "name": s.Name.strip(b"\x00").decode("latin-1"),
            "virtual_address": f"0x{s.VirtualAddress:08x}",
            "virtual_size": f"0x{s.Misc_VirtualSize:08x}",
            "size_of_data": f"0x{s.SizeOfRawData:08x}",
            "entropy": f"{s.get_entropy():.02f}",
            "characteristics_raw": f"0x{s.Characteristics:08x}",
        }
        for s in pe.sections
    ]
    ours = [{k: s[k] for k in ref_sections[0]} for s in file_pe["sections"]] if ref_sections else []
    check(f"{path} sections", ours, ref_sections)
    ref_imports = [
        (e.dll.decode("latin-1"), [(i.name.decode() if i.name else None, hex(i.address)) for i in e.imports])
        for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])
    ]
    ours = [(d["dll"], [(i["name"], i["address"]) for i in d["imports"]]) for d in st["pe_imports"]]
    check(f"{path} imports", ours, ref_imports)
    ref_exports = sorted(
        (s.name.decode() if s.name else "", s.ordinal, hex(pe.OPTIONAL_HEADER.ImageBase + s.address))
        for s in (pe.DIRECTORY_ENTRY_EXPORT.symbols if hasattr(pe, "DIRECTORY_ENTRY_EXPORT") else [])
    )
    ours = sorted((e["name"], e["ordinal"], e["address"]) for e in file_pe["exports"])
    check(f"{path} exports", ours, ref_exports)
    ref_res = []
    if hasattr(pe, "DIRECTORY_ENTRY_RESOURCE"):
        for t in pe.DIRECTORY_ENTRY_RESOURCE.entries:
            name = str(t.name) if t.name is not None else str(pefile.RESOURCE_TYPE.get(t.struct.Id))
            for i in getattr(t, "directory", None).entries if hasattr(t, "directory") else []:
                for lang in i.directory.entries if hasattr(i, "directory") else []:
                    ref_res.append(
                        (
                            name,
                            f"0x{lang.data.struct.OffsetToData:08x}",
                            f"0x{lang.data.struct.Size:08x}",
                            pefile.LANG.get(lang.data.lang),
                            pefile.get_sublang_name_for_lang(lang.data.lang, lang.data.sublang),
                        )
                    )
    ours = [(r["name"], r["offset"], r["size"], r["language"], r["sublanguage"]) for r in file_pe["resources"]]
    check(f"{path} resources", ours, ref_res)
    ref_vi = []
    for info in getattr(pe, "FileInfo", []):
        for entry in info:
            if hasattr(entry, "StringTable"):
                for st_ in entry.StringTable:
                    ref_vi += [(k.decode(), v.decode()) for k, v in st_.entries.items()]
            elif hasattr(entry, "Var"):
                for v in entry.Var:
                    ref_vi += [(k.decode() if isinstance(k, bytes) else k, val) for k, val in v.entry.items()]
    ours = [(v["name"], v["value"]) for v in file_pe["versioninfo"]]
    check(f"{path} versioninfo", ours, ref_vi)
    overlay = pe.get_overlay_data_start_offset()
    ref_overlay = None if overlay is None else {"offset": f"0x{overlay:08x}", "size": f"0x{len(pe.__data__) - overlay:08x}"}
    check(f"{path} overlay", file_pe["overlay"], ref_overlay)


def yara_checks(rules_dir, path, report):
    import glob

    rules = sorted(glob.glob(f"{rules_dir}/*.yar"))
    out = subprocess.run(["yara", "-w", *rules, path], capture_output=True, text=True, check=True)
    theirs = sorted({line.split()[0] for line in out.stdout.splitlines() if line.strip()})
    ours = sorted({m["name"] for m in report["target"]["file"]["yara"]})
    check(f"{path} yara", ours, theirs)


def main():
    reports_path, rules_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(reports_path) as f:
        reports = [json.loads(line) for line in f if line.strip()]
    check("report count", len(reports), len(files))
    for path, report in zip(files, reports):
        check(f"{path} sha256 name", report["target"]["file"]["name"], path.rsplit("/", 1)[-1])
        yara_checks(rules_dir, path, report)
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"MZ" and report["target"]["file"].get("pe") is not None:
            pe_checks(path, report)
        elif head == b"MZ":
            check(f"{path} parsed as PE", None, "pe")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
