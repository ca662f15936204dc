"""nestbox's speakeasy runner: emulates one sample and writes what it did as JSON.

Run inside the emulator sandbox (no network, read-only system, one writable output
directory) as `python3 -I runner.py SETTINGS.json`. The settings name the sample, its kind
(exe, dll, shellcode), the architecture of shellcode, limits and the output directory.

Output (in the output directory):
  report.json   speakeasy's own report plus a "nestbox" section: errors that ended the
                emulation, APIs speakeasy does not implement that were called, and the
                dropped files written here as dropped/<n>.
  dropped/<n>   the content of each file the sample wrote.

Speakeasy stops a run at the first API it does not implement. The hooks below add the
APIs malware commonly uses and speakeasy lacks (registry writes, RegCreateKeyEx, crypto
encryption, clipboard, NtQueryInformationProcess, native injection calls), so that the
behaviour after them is still seen; each hook returns what a real Windows would on
success and leaves the call in the API log with readable arguments.
"""

import hashlib
import json
import os
import sys
import traceback

SETTINGS = json.load(open(sys.argv[1]))
OUT = SETTINGS["out"]
NOTES = {"errors": [], "unsupported": [], "dropped": [],
         "process_name": SETTINGS.get("name", "sample")}


def note_error(msg):
    if len(NOTES["errors"]) < 100:
        NOTES["errors"].append(msg[:4000])


try:
    import speakeasy
    import speakeasy.winenv.arch as arch
except Exception:  # noqa: BLE001 - reported to the host, never raised
    note_error("speakeasy could not be imported: " + traceback.format_exc())
    json.dump({"nestbox": NOTES}, open(os.path.join(OUT, "report.json"), "w"))
    sys.exit(0)

HKEY_ROOTS = {
    0x80000000: "HKEY_CLASSES_ROOT",
    0x80000001: "HKEY_CURRENT_USER",
    0x80000002: "HKEY_LOCAL_MACHINE",
    0x80000003: "HKEY_USERS",
}
REG_SZ_TYPES = (1, 2, 7)  # REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ
OWN_KEYS = {}  # handle -> path, for keys our RegCreateKeyEx hook opened
NEXT_HANDLE = [0x7000]


def config():
    path = os.path.join(os.path.dirname(speakeasy.__file__), "configs", "default.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["timeout"] = SETTINGS["timeout"]
    cfg["max_api_count"] = SETTINGS["max_api_count"]
    cfg.setdefault("analysis", {})["strings"] = True
    # Keys that exist on every Windows machine, so that opening them (the usual first step
    # of persistence) succeeds as it would there.
    keys = cfg.setdefault("registry", {}).setdefault("keys", [])
    for root in ("HKEY_CURRENT_USER", "HKEY_LOCAL_MACHINE"):
        for sub in ("Run", "RunOnce"):
            keys.append({"path": root + "\\Software\\Microsoft\\Windows\\CurrentVersion\\" + sub,
                         "values": []})
    return cfg


def key_path(emu, handle):
    h = handle & 0xFFFFFFFF if handle >= 0xFFFFFFFF80000000 else handle
    if h in OWN_KEYS:
        return OWN_KEYS[h]
    if h in HKEY_ROOTS:
        return HKEY_ROOTS[h]
    try:
        key = emu.regman.get_key_from_handle(handle) or emu.regman.get_key_from_handle(h)
        if key:
            return key.get_path()
    except Exception:  # noqa: BLE001
        pass
    return "0x%x" % handle


def read_str(emu, addr, wide):
    if not addr:
        return ""
    try:
        return emu.read_mem_string(addr, 2 if wide else 1, max_chars=1024)
    except Exception:  # noqa: BLE001
        return "0x%x" % addr


def write_ptr(emu, addr, value):
    if addr:
        try:
            emu.mem_write(addr, value.to_bytes(emu.get_ptr_size(), "little"))
        except Exception:  # noqa: BLE001
            pass


def reg_log(emu, path, event, name=None, data=None):
    try:
        emu.profiler.log_registry_access(emu.curr_run, path, event, value_name=name,
                                         data=data.encode("utf-8", "replace") if data else None)
    except Exception:  # noqa: BLE001
        pass


def hook_reg_set_value_ex(emu, api, func, argv):
    wide = api.endswith("W")
    hkey, name, _reserved, vtype, data, size = argv[:6]
    path = key_path(emu, hkey)
    argv[0] = path
    argv[1] = read_str(emu, name, wide)
    value = ""
    if vtype in REG_SZ_TYPES:
        value = read_str(emu, data, wide)
        argv[4] = value
    elif data and size:
        try:
            raw = emu.mem_read(data, min(size, 64))
            value = raw.hex()
        except Exception:  # noqa: BLE001
            pass
    reg_log(emu, path, "write_value", argv[1] or "default", value)
    return 0


def hook_reg_set_value(emu, api, func, argv):
    wide = api.endswith("W")
    hkey, sub, vtype, data, _size = argv[:5]
    path = key_path(emu, hkey)
    sub = read_str(emu, sub, wide)
    if sub:
        path = path + "\\" + sub
    argv[0], argv[1] = path, sub
    value = read_str(emu, data, wide) if vtype in REG_SZ_TYPES else ""
    argv[3] = value
    reg_log(emu, path, "write_value", "default", value)
    return 0


def hook_reg_create_key_ex(emu, api, func, argv):
    wide = api.endswith("W")
    hkey, sub = argv[0], argv[1]
    path = key_path(emu, hkey)
    sub = read_str(emu, sub, wide)
    full = path + ("\\" + sub if sub else "")
    argv[0], argv[1] = path, sub
    handle = NEXT_HANDLE[0]
    NEXT_HANDLE[0] += 4
    OWN_KEYS[handle] = full
    write_ptr(emu, argv[7], handle)
    reg_log(emu, full, "create_key")
    return 0


def hook_reg_delete_value(emu, api, func, argv):
    path = key_path(emu, argv[0])
    argv[0] = path
    argv[1] = read_str(emu, argv[1], api.endswith("W"))
    reg_log(emu, path, "delete_value", argv[1])
    return 0


def hook_reg_delete_key(emu, api, func, argv):
    path = key_path(emu, argv[0])
    sub = read_str(emu, argv[1], api.endswith("W"))
    argv[0], argv[1] = path, sub
    reg_log(emu, path + ("\\" + sub if sub else ""), "delete_key")
    return 0


def hook_success_true(emu, api, func, argv):
    return 1


def hook_status_success(emu, api, func, argv):
    return 0


def hook_query_info_process(emu, api, func, argv):
    # ProcessInformation zeroed: no debug port, no debug object; the call succeeds.
    _h, _cls, info, length = argv[:4]
    if info and length:
        try:
            emu.mem_write(info, b"\x00" * min(length, 64))
        except Exception:  # noqa: BLE001
            pass
    return 0


def hook_clipboard_data(emu, api, func, argv):
    return 0


def hook_move_file(emu, api, func, argv):
    wide = api.endswith("W")
    argv[0] = read_str(emu, argv[0], wide)
    argv[1] = read_str(emu, argv[1], wide)
    return 1


def hook_crypt_handle(emu, api, func, argv):
    # CryptGenKey/CryptImportKey(…, HCRYPTKEY *phKey) – the key handle is the last argument.
    handle = NEXT_HANDLE[0]
    NEXT_HANDLE[0] += 4
    write_ptr(emu, argv[-1], handle)
    return 1


def hook_startup_folder(emu, api, func, argv):
    # SHGetSpecialFolderPath(hwnd, path, csidl, create)
    wide = api.endswith("W")
    folders = {7: "C:\\Users\\John\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup",
               0x18: "C:\\ProgramData\\Microsoft\\Windows\\Start Menu\\Programs\\StartUp",
               0x1a: "C:\\Users\\John\\AppData\\Roaming",
               0x1c: "C:\\Users\\John\\AppData\\Local"}
    path = folders.get(argv[2] & 0xFF, "C:\\Users\\John\\Documents")
    data = path.encode("utf-16le" if wide else "latin-1") + (b"\x00\x00" if wide else b"\x00")
    try:
        emu.mem_write(argv[1], data)
    except Exception:  # noqa: BLE001
        return 0
    argv[1] = path
    return 1


def hook_predefined_key(emu, api, func, argv):
    # On x64, predefined keys arrive sign-extended (0xffffffff80000001); speakeasy only
    # knows the 32-bit values and would fail the call as a bad handle.
    if argv and isinstance(argv[0], int) and argv[0] >= 0xFFFFFFFF80000000:
        argv[0] &= 0xFFFFFFFF
    if argv and isinstance(argv[0], int) and argv[0] in OWN_KEYS:
        # A key our RegCreateKeyEx hook made: open it in speakeasy's registry first.
        argv[0] = emu.reg_open_key(OWN_KEYS[argv[0]], create=True) or argv[0]
    return func(argv)


# (module, api, argc, callback); argc 0 = speakeasy's own handler (a supported API).
HOOKS = [
    ("advapi32", "RegOpenKeyExA", 0, hook_predefined_key),
    ("advapi32", "RegOpenKeyExW", 0, hook_predefined_key),
    ("advapi32", "RegOpenKeyA", 0, hook_predefined_key),
    ("advapi32", "RegOpenKeyW", 0, hook_predefined_key),
    ("advapi32", "RegQueryValueExA", 0, hook_predefined_key),
    ("advapi32", "RegQueryValueExW", 0, hook_predefined_key),
    ("advapi32", "RegCreateKeyA", 0, hook_predefined_key),
    ("advapi32", "RegCreateKeyW", 0, hook_predefined_key),
    ("advapi32", "RegSetValueExA", 6, hook_reg_set_value_ex),
    ("advapi32", "RegSetValueExW", 6, hook_reg_set_value_ex),
    ("advapi32", "RegSetValueA", 5, hook_reg_set_value),
    ("advapi32", "RegSetValueW", 5, hook_reg_set_value),
    ("advapi32", "RegCreateKeyExA", 9, hook_reg_create_key_ex),
    ("advapi32", "RegCreateKeyExW", 9, hook_reg_create_key_ex),
    ("advapi32", "RegDeleteValueA", 2, hook_reg_delete_value),
    ("advapi32", "RegDeleteValueW", 2, hook_reg_delete_value),
    ("advapi32", "RegDeleteKeyA", 2, hook_reg_delete_key),
    ("advapi32", "RegDeleteKeyW", 2, hook_reg_delete_key),
    ("advapi32", "CryptEncrypt", 7, hook_success_true),
    ("advapi32", "CryptGenKey", 4, hook_crypt_handle),
    ("advapi32", "CryptImportKey", 6, hook_crypt_handle),
    ("advapi32", "CryptDestroyKey", 1, hook_success_true),
    ("ntdll", "NtQueryInformationProcess", 5, hook_query_info_process),
    ("ntdll", "ZwQueryInformationProcess", 5, hook_query_info_process),
    ("ntdll", "NtWriteVirtualMemory", 5, hook_status_success),
    ("ntdll", "NtCreateThreadEx", 11, hook_status_success),
    ("ntdll", "RtlCreateUserThread", 10, hook_status_success),
    ("user32", "OpenClipboard", 1, hook_success_true),
    ("user32", "CloseClipboard", 0, hook_success_true),
    ("user32", "EmptyClipboard", 0, hook_success_true),
    ("user32", "GetClipboardData", 1, hook_clipboard_data),
    ("user32", "SetClipboardData", 2, hook_clipboard_data),
    ("user32", "GetKeyState", 1, hook_status_success),
    ("user32", "GetKeyboardState", 1, hook_success_true),
    ("kernel32", "MoveFileA", 2, hook_move_file),
    ("kernel32", "MoveFileW", 2, hook_move_file),
    ("shell32", "SHGetSpecialFolderPathA", 4, hook_startup_folder),
    ("shell32", "SHGetSpecialFolderPathW", 4, hook_startup_folder),
]


def collect_dropped(se):
    os.makedirs(os.path.join(OUT, "dropped"), exist_ok=True)
    try:
        files = se.get_dropped_files()
    except Exception:  # noqa: BLE001
        note_error("listing dropped files failed: " + traceback.format_exc())
        return
    for n, f in enumerate(files):
        if n >= SETTINGS["max_dropped"]:
            note_error("more than %d dropped files; the rest were not kept" % SETTINGS["max_dropped"])
            break
        try:
            f.seek(0, 0)
            data = f.get_data(reset_pointer=True) or b""
        except Exception:  # noqa: BLE001
            continue
        data = data[: SETTINGS["max_file_size"]]
        name = "dropped/%d" % n
        with open(os.path.join(OUT, name), "wb") as out:
            out.write(data)
        NOTES["dropped"].append({"path": f.get_path(), "file": name, "size": len(data),
                                 "sha256": hashlib.sha256(data).hexdigest()})


def main():
    cfg = config()
    se = speakeasy.Speakeasy(config=cfg, argv=SETTINGS.get("argv", []))
    for module, api, argc, cb in HOOKS:
        if argc:
            se.add_api_hook(cb, module, api, argc=argc, call_conv=arch.CALL_CONV_STDCALL)
        else:
            se.add_api_hook(cb, module, api)
    kind = SETTINGS["kind"]
    try:
        if kind == "shellcode":
            sc_arch = "x86" if SETTINGS["arch"] == "x86" else "amd64"
            addr = se.load_shellcode(SETTINGS["sample"], sc_arch)
            se.run_shellcode(addr)
        else:
            module = se.load_module(SETTINGS["sample"])
            se.run_module(module, all_entrypoints=(kind == "dll"))
    except Exception:  # noqa: BLE001 - the sample broke the emulator: recorded, not fatal
        note_error("emulation stopped: " + traceback.format_exc(limit=8))
    report = {}
    try:
        report = se.get_report()
    except Exception:  # noqa: BLE001
        note_error("speakeasy could not build its report: " + traceback.format_exc(limit=8))
    for ep in report.get("entry_points", []):
        err = ep.get("error") or {}
        if err.get("type") == "unsupported_api" and err.get("api_name"):
            NOTES["unsupported"].append(err["api_name"])
    collect_dropped(se)
    report["nestbox"] = NOTES
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, default=str)


if __name__ == "__main__":
    main()
