//! Speakeasy's JSON report → Cuckoo/CAPE `behavior`, `network` and `procmemory`.
//!
//! Speakeasy emulates one process; each *entry point* it ran (the module entry, TLS
//! callbacks, DLL exports, threads the sample created or injected) becomes a thread of
//! that process, and its `apis[]` become the thread's `calls[]`. File, registry, process
//! and network events, plus what the calls say (mutex names, command lines, resolved
//! APIs, loaded DLLs, services), fill the summary lists under both CAPE's names
//! (`files`, `write_keys`, `mutexes`, `executed_commands`, …) and Cuckoo 2's
//! (`file_written`, `regkey_written`, `mutex`, `command_line`, …), because clients of
//! either read them. An entry point that stopped on an error (an API speakeasy does not
//! model, an invalid memory access) is an `anomaly` and an error line; the rest of the
//! report stands.
//!
//! The report comes from inside the sandbox and is treated as hostile: every field is
//! optional, every string is cut, every list is bounded.

use std::collections::{BTreeMap, BTreeSet};

use nestbox_types::report::{Behavior, Network};
use serde_json::{Map, Value, json};

use crate::launch::SAMPLE_PID;

/// Longest string kept from the report (arguments, paths, command lines).
const MAX_STR: usize = 4096;
/// Most entries per summary list.
const MAX_LIST: usize = 1000;
/// Most memory strings kept.
const MAX_STRINGS: usize = 4096;

/// What the mapping produced.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Processes, calls, summary.
    pub behavior: Behavior,
    /// DNS, hosts, HTTP and connections the emulated network saw.
    pub network: Network,
    /// Dynamic code segments and strings found in memory, per process.
    pub procmemory: Vec<Value>,
    /// Emulation errors (each also an `anomaly`).
    pub errors: Vec<String>,
    /// Log lines.
    pub log: Vec<String>,
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_STR {
        return s.to_owned();
    }
    let mut end = MAX_STR;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => cut(s),
        Value::Null => String::new(),
        other => cut(&other.to_string()),
    }
}

/// An argument that speakeasy decoded to a string (not a bare number or pointer).
fn arg_str(args: &[Value], i: usize) -> Option<String> {
    let s = args.get(i)?.as_str()?;
    let numeric = s
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    (!s.is_empty() && !numeric).then(|| cut(s))
}

fn parse_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .map(|u| u as i64),
        _ => None,
    }
}

/// `CreateFileW` → `CreateFile`: the A/W suffix of Win32 names, for matching.
pub fn base_name(api: &str) -> &str {
    let b = api.as_bytes();
    if b.len() > 2 && matches!(b[b.len() - 1], b'A' | b'W') && b[b.len() - 2].is_ascii_lowercase() {
        &api[..api.len() - 1]
    } else {
        api
    }
}

/// Parameter names of the APIs signatures and readers care about (MSDN names).
fn params(api: &str) -> &'static [&'static str] {
    match base_name(api) {
        "CreateFile" => &[
            "lpFileName",
            "dwDesiredAccess",
            "dwShareMode",
            "lpSecurityAttributes",
            "dwCreationDisposition",
            "dwFlagsAndAttributes",
            "hTemplateFile",
        ],
        "WriteFile" | "ReadFile" => &[
            "hFile",
            "lpBuffer",
            "nNumberOfBytes",
            "lpNumberOfBytes",
            "lpOverlapped",
        ],
        "DeleteFile" | "CreateDirectory" => &["lpPathName", "lpSecurityAttributes"],
        "CopyFile" | "MoveFile" => &["lpExistingFileName", "lpNewFileName", "bFailIfExists"],
        "CreateMutex" | "OpenMutex" => &["lpMutexAttributes", "bInitialOwner", "lpName"],
        "RegOpenKeyEx" => &["hKey", "lpSubKey", "ulOptions", "samDesired", "phkResult"],
        "RegOpenKey" | "RegCreateKey" => &["hKey", "lpSubKey", "phkResult"],
        "RegCreateKeyEx" => &[
            "hKey",
            "lpSubKey",
            "Reserved",
            "lpClass",
            "dwOptions",
            "samDesired",
            "lpSecurityAttributes",
            "phkResult",
            "lpdwDisposition",
        ],
        "RegSetValueEx" => &[
            "hKey",
            "lpValueName",
            "Reserved",
            "dwType",
            "lpData",
            "cbData",
        ],
        "RegSetValue" => &["hKey", "lpSubKey", "dwType", "lpData", "cbData"],
        "RegQueryValueEx" => &[
            "hKey",
            "lpValueName",
            "lpReserved",
            "lpType",
            "lpData",
            "lpcbData",
        ],
        "RegDeleteValue" => &["hKey", "lpValueName"],
        "RegDeleteKey" => &["hKey", "lpSubKey"],
        "WinExec" => &["lpCmdLine", "uCmdShow"],
        "ShellExecute" => &[
            "hwnd",
            "lpOperation",
            "lpFile",
            "lpParameters",
            "lpDirectory",
            "nShowCmd",
        ],
        "CreateProcess" => &[
            "lpApplicationName",
            "lpCommandLine",
            "lpProcessAttributes",
            "lpThreadAttributes",
            "bInheritHandles",
            "dwCreationFlags",
            "lpEnvironment",
            "lpCurrentDirectory",
            "lpStartupInfo",
            "lpProcessInformation",
        ],
        "OpenProcess" => &["dwDesiredAccess", "bInheritHandle", "dwProcessId"],
        "VirtualAllocEx" => &[
            "hProcess",
            "lpAddress",
            "dwSize",
            "flAllocationType",
            "flProtect",
        ],
        "VirtualAlloc" => &["lpAddress", "dwSize", "flAllocationType", "flProtect"],
        "WriteProcessMemory" => &[
            "hProcess",
            "lpBaseAddress",
            "lpBuffer",
            "nSize",
            "lpNumberOfBytesWritten",
        ],
        "CreateRemoteThread" => &[
            "hProcess",
            "lpThreadAttributes",
            "dwStackSize",
            "lpStartAddress",
            "lpParameter",
            "dwCreationFlags",
            "lpThreadId",
        ],
        "LoadLibrary" | "LoadLibraryEx" => &["lpLibFileName", "hFile", "dwFlags"],
        "GetProcAddress" => &["hModule", "lpProcName"],
        "URLDownloadToFile" => &["pCaller", "szURL", "szFileName", "dwReserved", "lpfnCB"],
        "InternetOpenUrl" => &[
            "hInternet",
            "lpszUrl",
            "lpszHeaders",
            "dwHeadersLength",
            "dwFlags",
            "dwContext",
        ],
        "InternetConnect" => &[
            "hInternet",
            "lpszServerName",
            "nServerPort",
            "lpszUserName",
            "lpszPassword",
            "dwService",
            "dwFlags",
            "dwContext",
        ],
        "HttpOpenRequest" => &[
            "hConnect",
            "lpszVerb",
            "lpszObjectName",
            "lpszVersion",
            "lpszReferrer",
            "lplpszAcceptTypes",
            "dwFlags",
            "dwContext",
        ],
        "gethostbyname" => &["name"],
        "getaddrinfo" => &["pNodeName", "pServiceName", "pHints", "ppResult"],
        "SetWindowsHookEx" => &["idHook", "lpfn", "hmod", "dwThreadId"],
        "CreateService" => &[
            "hSCManager",
            "lpServiceName",
            "lpDisplayName",
            "dwDesiredAccess",
            "dwServiceType",
            "dwStartType",
            "dwErrorControl",
            "lpBinaryPathName",
        ],
        "OpenService" => &["hSCManager", "lpServiceName", "dwDesiredAccess"],
        "Sleep" => &["dwMilliseconds"],
        "CryptEncrypt" => &[
            "hKey",
            "hHash",
            "Final",
            "dwFlags",
            "pbData",
            "pdwDataLen",
            "dwBufLen",
        ],
        "NtQueryInformationProcess" => &[
            "ProcessHandle",
            "ProcessInformationClass",
            "ProcessInformation",
            "ProcessInformationLength",
            "ReturnLength",
        ],
        "CheckRemoteDebuggerPresent" => &["hProcess", "pbDebuggerPresent"],
        "CoCreateInstance" => &["rclsid", "pUnkOuter", "dwClsContext", "riid", "ppv"],
        _ => &[],
    }
}

/// The position of argument `key` of `api`, as named by the mapping.
pub fn param_index(api: &str, key: &str) -> usize {
    if let Some(n) = key.strip_prefix("arg").and_then(|d| d.parse().ok()) {
        return n;
    }
    params(api)
        .iter()
        .position(|p| *p == key)
        .unwrap_or(usize::MAX)
}

fn category(module: &str, api: &str) -> &'static str {
    let b = base_name(api);
    let m = module.to_ascii_lowercase();
    if b.starts_with("Reg") || b.starts_with("NtOpenKey") || b.starts_with("NtSetValueKey") {
        "registry"
    } else if matches!(
        m.as_str(),
        "ws2_32" | "wsock32" | "wininet" | "winhttp" | "urlmon" | "dnsapi" | "iphlpapi"
    ) {
        "network"
    } else if b.starts_with("Crypt") || b.starts_with("BCrypt") || m == "crypt32" || m == "bcrypt" {
        "crypto"
    } else if b.contains("Service") || b.starts_with("OpenSCManager") {
        "services"
    } else if b.contains("Mutex") || b.contains("Event") || b.contains("Semaphore") {
        "synchronisation"
    } else if b.contains("File") || b.contains("Directory") {
        "file"
    } else if b.contains("Process")
        || b.contains("Thread")
        || b.contains("VirtualAlloc")
        || b.contains("VirtualProtect")
        || b == "WinExec"
        || b == "ShellExecute"
        || b.contains("Memory")
    {
        "process"
    } else if b.contains("Hook") {
        "hooking"
    } else if matches!(m.as_str(), "user32" | "gdi32") {
        "ui"
    } else if b.starts_with("LoadLibrary")
        || b == "GetProcAddress"
        || b.starts_with("GetModule")
        || b.starts_with("Ldr")
    {
        "system"
    } else {
        "misc"
    }
}

/// Whether a call succeeded, from its return value and the API's convention.
fn status(api: &str, ret: Option<i64>) -> bool {
    let Some(r) = ret else { return true };
    let b = base_name(api);
    if b.starts_with("Reg")
        || b.starts_with("Nt")
        || b.starts_with("Zw")
        || b.starts_with("Rtl")
        || b == "WSAStartup"
        || b == "getaddrinfo"
        || b == "URLDownloadToFile"
        || b == "CoCreateInstance"
    {
        r == 0
    } else if b == "WinExec" {
        r > 31
    } else {
        r != 0 && r != 0xffff_ffff && r != -1
    }
}

/// Ordered, de-duplicated, bounded summary lists.
#[derive(Default)]
struct Summary {
    lists: BTreeMap<&'static str, (Vec<String>, BTreeSet<String>)>,
}

impl Summary {
    fn add(&mut self, keys: &[&'static str], v: &str) {
        if v.is_empty() {
            return;
        }
        for k in keys {
            let (list, seen) = self.lists.entry(k).or_default();
            if list.len() < MAX_LIST && seen.insert(v.to_owned()) {
                list.push(v.to_owned());
            }
        }
    }

    fn into_map(self) -> BTreeMap<String, Vec<Value>> {
        self.lists
            .into_iter()
            .map(|(k, (l, _))| (k.to_owned(), l.into_iter().map(Value::String).collect()))
            .collect()
    }
}

const FILES_WRITTEN: &[&str] = &["files", "write_files", "file_written"];
const FILES_CREATED: &[&str] = &["files", "write_files", "file_created"];
const FILES_READ: &[&str] = &["files", "read_files", "file_read"];
const FILES_OPENED: &[&str] = &["files", "file_opened"];
const FILES_DELETED: &[&str] = &["files", "delete_files", "file_deleted"];
const KEYS_READ: &[&str] = &["keys", "read_keys", "regkey_read"];
const KEYS_OPENED: &[&str] = &["keys", "regkey_opened"];
const KEYS_WRITTEN: &[&str] = &["keys", "write_keys", "regkey_written"];
const KEYS_DELETED: &[&str] = &["keys", "delete_keys", "regkey_deleted"];
const COMMANDS: &[&str] = &["executed_commands", "command_line"];
const MUTEXES: &[&str] = &["mutexes", "mutex"];

/// What calls say that events do not (mutex names, commands, loaded DLLs, …).
fn summarise_call(s: &mut Summary, api: &str, args: &[Value]) {
    let a = |i| arg_str(args, i).unwrap_or_default();
    match base_name(api) {
        "CreateMutex" | "OpenMutex" => s.add(MUTEXES, &a(2)),
        "CreateMutexEx" => s.add(MUTEXES, &a(1)),
        "WinExec" | "system" | "_wsystem" => s.add(COMMANDS, &a(0)),
        "ShellExecute" => {
            let cmd = [a(2), a(3)]
                .iter()
                .filter(|x| !x.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            s.add(COMMANDS, &cmd);
        }
        "CreateProcess" | "CreateProcessInternal" => {
            let cmd = if a(1).is_empty() { a(0) } else { a(1) };
            s.add(COMMANDS, &cmd);
        }
        "DeleteFile" => s.add(FILES_DELETED, &a(0)),
        "CreateDirectory" => s.add(&["directory_created"], &a(0)),
        "CopyFile" => {
            s.add(FILES_READ, &a(0));
            s.add(FILES_WRITTEN, &a(1));
        }
        "MoveFile" => {
            s.add(FILES_DELETED, &a(0));
            s.add(FILES_WRITTEN, &a(1));
        }
        "GetProcAddress" => s.add(&["resolved_apis"], &a(1)),
        "LoadLibrary" | "LoadLibraryEx" | "LdrLoadDll" => s.add(&["dll_loaded"], &a(0)),
        "CreateService" => {
            s.add(&["created_services"], &a(1));
            s.add(&["service_binaries"], &a(7));
        }
        "OpenService" => s.add(&["opened_services"], &a(1)),
        "URLDownloadToFile" => {
            s.add(&["fetches_url", "downloads_file"], &a(1));
            s.add(FILES_WRITTEN, &a(2));
        }
        "InternetOpenUrl" => s.add(&["fetches_url"], &a(1)),
        "InternetConnect" => s.add(&["connects_host"], &a(1)),
        "gethostbyname" | "getaddrinfo" | "DnsQuery_" | "DnsQuery" => {
            s.add(&["resolves_host"], &a(0))
        }
        _ => {}
    }
}

fn call_json(
    api_full: &str,
    args: &[Value],
    ret: &Value,
    pc: &Value,
    tid: i64,
    time: f64,
    ep: &str,
) -> Value {
    let (module, api) = api_full.split_once('.').unwrap_or(("", api_full));
    let names = params(api);
    let mut arguments = Map::new();
    for (i, v) in args.iter().enumerate().take(32) {
        let name = names
            .get(i)
            .map_or_else(|| format!("arg{i}"), |n| (*n).to_owned());
        arguments.insert(name, Value::String(text(v)));
    }
    let ret_int = parse_int(ret);
    json!({
        "category": category(module, api),
        "api": cut(api),
        "module": module.to_ascii_lowercase(),
        "arguments": arguments,
        "return": text(ret),
        "return_value": ret_int,
        "status": status(api, ret_int),
        "caller": text(pc),
        "tid": tid,
        "time": time,
        "repeated": 0,
        "entry_point": ep,
    })
}

fn file_event(s: &mut Summary, e: &Value) {
    let path = text(&e["path"]);
    match e["event"].as_str().unwrap_or("") {
        "write" => s.add(FILES_WRITTEN, &path),
        "create" => {
            let creates = e["open_flags"].as_array().is_some_and(|f| {
                f.iter().any(|x| {
                    matches!(
                        x.as_str(),
                        Some("CREATE_ALWAYS" | "CREATE_NEW" | "OPEN_ALWAYS" | "TRUNCATE_EXISTING")
                    )
                })
            });
            if creates {
                s.add(FILES_CREATED, &path)
            } else {
                s.add(FILES_OPENED, &path)
            }
        }
        "read" => s.add(FILES_READ, &path),
        "delete" => s.add(FILES_DELETED, &path),
        _ => s.add(FILES_OPENED, &path),
    }
}

fn registry_event(s: &mut Summary, e: &Value) {
    let path = text(&e["path"]);
    let with_value = match e["value_name"].as_str() {
        Some(v) if !v.is_empty() => format!("{path}\\{}", cut(v)),
        _ => path.clone(),
    };
    match e["event"].as_str().unwrap_or("") {
        "write_value" | "create_key" => s.add(KEYS_WRITTEN, &with_value),
        "read_value" => s.add(KEYS_READ, &with_value),
        "delete_value" | "delete_key" => s.add(KEYS_DELETED, &with_value),
        _ => s.add(KEYS_OPENED, &path),
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// HTTP request line from speakeasy's raw `headers` text.
fn http_entry(t: &Value) -> Value {
    let host = text(&t["server"]);
    let port = parse_int(&t["port"]).unwrap_or(80);
    let headers = text(&t["headers"]);
    let mut lines = headers.lines();
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    let ua = lines
        .find_map(|l| {
            l.strip_prefix("User-Agent:")
                .or_else(|| l.strip_prefix("user-agent:"))
        })
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let secure = t["proto"].as_str().is_some_and(|p| p.ends_with("https"));
    let scheme = if secure { "https" } else { "http" };
    json!({
        "host": host, "port": port, "method": method, "path": path,
        "uri": format!("{scheme}://{host}{path}"), "user-agent": ua,
        "data": headers, "version": "1.1", "body": "",
    })
}

/// Maps the report. `max_calls` caps the calls kept per process (the rest are counted).
pub fn map(v: &Value, max_calls: usize) -> Mapped {
    let mut m = Mapped::default();
    let mut s = Summary::default();
    let mut calls = Vec::new();
    let mut total_calls = 0usize;
    let mut apistats: BTreeMap<String, i64> = BTreeMap::new();
    let mut threads = Vec::new();
    let mut children = Vec::new();
    let mut dyn_code = Vec::new();
    let mut dns_seen = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    let time = v["timestamp"].as_f64().unwrap_or(0.0);
    let eps = v["entry_points"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, ep) in eps.iter().enumerate().take(10_000) {
        let tid = SAMPLE_PID + 1 + i as i64;
        threads.push(Value::String(tid.to_string()));
        let ep_type = text(&ep["ep_type"]);
        for a in ep["apis"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let name = text(&a["api_name"]);
            let args = a["args"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let short = name.split_once('.').map_or(name.as_str(), |x| x.1);
            summarise_call(&mut s, short, args);
            *apistats.entry(short.to_owned()).or_default() += 1;
            total_calls += 1;
            if calls.len() < max_calls {
                calls.push(call_json(
                    &name,
                    args,
                    &a["ret_val"],
                    &a["pc"],
                    tid,
                    time,
                    &ep_type,
                ));
            }
        }
        for e in ep["file_access"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            file_event(&mut s, e);
        }
        for e in ep["registry_access"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            registry_event(&mut s, e);
        }
        for e in ep["process_events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            match e["event"].as_str().unwrap_or("") {
                "create" => {
                    let cmd = text(&e["cmdline"]);
                    s.add(COMMANDS, &cmd);
                    let path = text(&e["path"]);
                    if children.len() < 256 {
                        children.push(json!({
                            "pid": parse_int(&e["pid"]).unwrap_or(0), "ppid": SAMPLE_PID,
                            "process_name": path.rsplit(['\\', '/']).next().unwrap_or(""),
                            "process_path": path, "command_line": cmd, "track": false,
                            "first_seen": time, "children": [],
                        }));
                    }
                }
                other => {
                    // Memory written into / threads started in another process.
                    let target = text(&e["path"]);
                    s.add(&["process_memory_access"], &format!("{other} {target}"));
                }
            }
        }
        if let Some(net) = ep.get("network_events") {
            for d in net["dns"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let q = text(&d["query"]);
                let ip = text(&d["response"]);
                s.add(&["resolves_host"], &q);
                if dns_seen.insert(q.clone()) && m.network.dns.len() < MAX_LIST {
                    let answers = if ip.is_empty() {
                        json!([])
                    } else {
                        json!([{"type": "A", "data": ip}])
                    };
                    m.network
                        .dns
                        .push(json!({"request": q, "type": "A", "answers": answers}));
                    m.network.domains.push(json!({"domain": q, "ip": ip}));
                }
            }
            for t in net["traffic"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .take(MAX_LIST)
            {
                let server = text(&t["server"]);
                let port = parse_int(&t["port"]).unwrap_or(0);
                if is_ip(&server) {
                    s.add(&["connects_ip"], &server);
                    hosts.insert(server.clone());
                } else {
                    s.add(&["connects_host"], &server);
                }
                let proto = t["proto"].as_str().unwrap_or("");
                if proto.starts_with("tcp.http") {
                    let h = http_entry(t);
                    s.add(&["fetches_url"], h["uri"].as_str().unwrap_or(""));
                    m.network.http.push(h);
                }
                let flow =
                    json!({"src": "", "sport": 0, "dst": server, "dport": port, "time": 0.0});
                if proto.starts_with("udp") {
                    m.network.udp.push(flow);
                } else {
                    m.network.tcp.push(flow);
                }
            }
        }
        for d in ep["dynamic_code_segments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .take(256)
        {
            dyn_code.push(json!({"tag": text(&d["tag"]), "base": text(&d["base"]), "size": text(&d["size"]), "entry_point": ep_type}));
        }
        if let Some(err) = ep["error"].as_object().filter(|e| !e.is_empty()) {
            let kind = err.get("type").map(text).unwrap_or_default();
            let pc = err.get("pc").map(text).unwrap_or_default();
            let msg = match err.get("api_name").map(text) {
                Some(api) if kind == "unsupported_api" => format!(
                    "emulator: {ep_type} stopped at the unsupported API {api} (pc {pc}); later behaviour of this entry point was not seen"
                ),
                _ => format!("emulator: {ep_type} stopped: {kind} at pc {pc}"),
            };
            m.behavior.anomaly.push(json!({
                "pid": SAMPLE_PID, "tid": tid, "name": if kind == "unsupported_api" { "unsupported_api" } else { "emulation_error" },
                "category": "emulator", "function": err.get("api_name").map(text).unwrap_or_default(),
                "message": msg,
            }));
            m.errors.push(msg);
        }
    }
    for e in v["nestbox"]["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .take(100)
    {
        let msg = format!("emulator: {}", text(e));
        m.behavior.anomaly.push(json!({"pid": SAMPLE_PID, "name": "emulation_error", "category": "emulator", "message": msg}));
        m.errors.push(msg);
    }
    if eps.is_empty() {
        return m;
    }
    let name = "sample";
    let process_name = v["nestbox"]["process_name"]
        .as_str()
        .map(cut)
        .unwrap_or_else(|| name.to_owned());
    let mut proc_ = json!({
        "pid": SAMPLE_PID, "ppid": 0, "process_name": process_name,
        "process_path": format!("C:\\Users\\John\\AppData\\Local\\Temp\\{process_name}"),
        "command_line": format!("\"C:\\Users\\John\\AppData\\Local\\Temp\\{process_name}\""),
        "first_seen": time, "track": true, "modules": [], "threads": threads,
        "calls": calls, "dynamic_code_segments": dyn_code,
    });
    if total_calls > max_calls {
        proc_["calls_truncated"] = json!(true);
        proc_["calls_total"] = json!(total_calls);
        let msg =
            format!("the sample made {total_calls} calls; the call log was cut at {max_calls}");
        m.behavior.anomaly.push(json!({"pid": SAMPLE_PID, "name": "calls_truncated", "category": "behavior", "message": msg}));
        m.log.push(format!("emulator: {msg}"));
    }
    m.behavior.processtree.push(json!({
        "pid": SAMPLE_PID, "ppid": 0, "process_name": proc_["process_name"], "name": proc_["process_name"],
        "command_line": proc_["command_line"], "first_seen": time, "track": true, "children": children,
    }));
    m.behavior.processes.push(proc_);
    let summary = s.into_map();
    m.behavior.generic.push(json!({
        "pid": SAMPLE_PID, "ppid": 0, "process_name": process_name, "first_seen": time,
        "summary": summary,
    }));
    m.behavior.summary = summary;
    m.behavior.apistats.insert(
        SAMPLE_PID.to_string(),
        Value::Object(apistats.into_iter().map(|(k, n)| (k, json!(n))).collect()),
    );
    m.network.hosts = hosts.into_iter().map(Value::String).collect();
    // Strings found in memory during emulation, and the code the sample generated.
    let mut strings = Vec::new();
    for kind in ["ansi", "unicode"] {
        for x in v["strings"]["in_memory"][kind]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if strings.len() < MAX_STRINGS {
                strings.push(Value::String(text(x)));
            }
        }
    }
    if !strings.is_empty() || !dyn_code.is_empty() {
        let joined: Vec<u8> = strings
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        m.procmemory.push(json!({
            "pid": SAMPLE_PID, "name": process_name, "file": "", "yara": [], "cape_yara": [],
            "urls": nestbox_analyzers::extract_urls(&joined),
            "strings": strings, "address_space": dyn_code,
        }));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Value {
        json!({
            "timestamp": 1_700_000_000,
            "strings": {"in_memory": {"ansi": ["http://evil.example/a", "svchost.exe x"], "unicode": ["wide"]}},
            "entry_points": [{
                "ep_type": "module_entry",
                "apis": [
                    {"pc": "0x1", "api_name": "KERNEL32.CreateMutexA", "args": ["0x0", "0x0", "Global\\m1"], "ret_val": "0x220"},
                    {"pc": "0x2", "api_name": "KERNEL32.WinExec", "args": ["cmd.exe /c whoami", "0x0"], "ret_val": "0x20"},
                    {"pc": "0x3", "api_name": "ADVAPI32.RegSetValueExA", "args": ["HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "x", "0x0", "0x1", "C:\\a.exe", "0x8"], "ret_val": "0x0"},
                    {"pc": "0x4", "api_name": "WS2_32.gethostbyname", "args": ["c2.example"], "ret_val": "0x4930"},
                ],
                "file_access": [
                    {"event": "create", "path": "C:\\f.txt", "open_flags": ["CREATE_ALWAYS"]},
                    {"event": "write", "path": "C:\\f.txt", "size": 3},
                ],
                "registry_access": [{"event": "write_value", "path": "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "value_name": "x"}],
                "process_events": [{"event": "create", "pid": 1148, "path": "cmd.exe", "cmdline": "cmd.exe /c whoami"}],
                "network_events": {"dns": [{"query": "c2.example", "response": "10.1.2.3"}],
                    "traffic": [{"server": "c2.example", "proto": "tcp.http", "port": 80, "headers": "GET /gate.php HTTP/1.1\r\nUser-Agent: x\r\n"}]},
                "dynamic_code_segments": [{"tag": "api.VirtualAlloc.0x5000", "base": "0x5000", "size": "0x1000"}],
                "error": {"type": "unsupported_api", "api_name": "USER32.Foo", "pc": "0xfeedf000"},
            }],
            "nestbox": {"errors": [], "dropped": [], "process_name": "s.exe"},
        })
    }

    #[test]
    fn maps_calls_summary_network_and_errors() {
        let m = map(&sample_report(), 100);
        let p = &m.behavior.processes[0];
        assert_eq!(p["process_name"], "s.exe");
        assert_eq!(p["calls"].as_array().unwrap().len(), 4);
        let c = &p["calls"][0];
        assert_eq!(c["api"], "CreateMutexA");
        assert_eq!(c["category"], "synchronisation");
        assert_eq!(c["arguments"]["lpName"], "Global\\m1");
        assert_eq!(c["return_value"], 0x220);
        assert_eq!(c["status"], true);
        let s = &m.behavior.summary;
        assert_eq!(s["mutexes"], vec![json!("Global\\m1")]);
        assert!(s["executed_commands"].contains(&json!("cmd.exe /c whoami")));
        assert_eq!(
            s["write_keys"],
            vec![json!(
                "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\x"
            )]
        );
        assert_eq!(s["file_created"], vec![json!("C:\\f.txt")]);
        assert_eq!(s["resolves_host"], vec![json!("c2.example")]);
        assert_eq!(m.network.domains[0]["domain"], "c2.example");
        assert_eq!(m.network.http[0]["uri"], "http://c2.example/gate.php");
        assert_eq!(m.behavior.processtree[0]["children"][0]["pid"], 1148);
        assert_eq!(m.behavior.apistats["1000"]["WinExec"], 1);
        assert_eq!(m.errors.len(), 1);
        assert!(m.errors[0].contains("USER32.Foo"));
        assert_eq!(m.behavior.anomaly[0]["name"], "unsupported_api");
        assert_eq!(m.procmemory[0]["urls"], json!(["http://evil.example/a"]));
        assert_eq!(m.procmemory[0]["address_space"][0]["base"], "0x5000");
    }

    #[test]
    fn call_cap_is_recorded() {
        let m = map(&sample_report(), 2);
        assert_eq!(
            m.behavior.processes[0]["calls"].as_array().unwrap().len(),
            2
        );
        assert_eq!(m.behavior.processes[0]["calls_total"], 4);
        assert!(
            m.behavior
                .anomaly
                .iter()
                .any(|a| a["name"] == "calls_truncated")
        );
    }

    #[test]
    fn hostile_reports_never_panic() {
        for v in [
            json!(null),
            json!([]),
            json!({"entry_points": "x"}),
            json!({"entry_points": [null, 1, {"apis": [null, {"api_name": 3, "args": "x"}], "error": []}]}),
            json!({"entry_points": [{"apis": [{"api_name": "A.B", "args": [{"x": 1}], "ret_val": "0xzz"}],
                "network_events": {"dns": [{}], "traffic": [{"port": "x"}]}, "process_events": [{}]}]}),
        ] {
            let _ = map(&v, 10);
        }
        let long = "x".repeat(100_000);
        let m = map(
            &json!({"entry_points": [{"apis": [{"api_name": "K.WinExec", "args": [long]}]}]}),
            10,
        );
        assert!(
            m.behavior.summary["executed_commands"][0]
                .as_str()
                .unwrap()
                .len()
                <= MAX_STR
        );
    }

    #[test]
    fn names_and_status() {
        assert_eq!(base_name("CreateFileW"), "CreateFile");
        assert_eq!(base_name("GetDC"), "GetDC");
        assert_eq!(base_name("WinExec"), "WinExec");
        assert!(status("RegSetValueExA", Some(0)));
        assert!(!status("RegOpenKeyExA", Some(2)));
        assert!(!status("WinExec", Some(2)));
        assert!(!status("CreateFileA", Some(-1)));
    }
}
