//! Process injection (T1055) and code generated at run time.

use super::{Evidence, Sig, Signature, boxed, call_marks};

const ALLOC: &[&str] = &[
    "VirtualAllocEx",
    "VirtualAllocExNuma",
    "NtAllocateVirtualMemory",
];
const WRITE: &[&str] = &["WriteProcessMemory", "NtWriteVirtualMemory"];
const REMOTE_THREAD: &[&str] = &[
    "CreateRemoteThread",
    "CreateRemoteThreadEx",
    "NtCreateThreadEx",
    "RtlCreateUserThread",
];
const HIJACK: &[&str] = &[
    "QueueUserAPC",
    "NtQueueApcThread",
    "SetThreadContext",
    "NtSetContextThread",
];

fn remote_thread(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let (a, w, t) = (
        ev.calls_to(ALLOC),
        ev.calls_to(WRITE),
        ev.calls_to(REMOTE_THREAD),
    );
    if a.is_empty() || w.is_empty() || t.is_empty() {
        return Vec::new();
    }
    [a, w, t].iter().flat_map(|c| call_marks(c)).collect()
}

fn thread_hijack(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let (w, h) = (ev.calls_to(WRITE), ev.calls_to(HIJACK));
    if w.is_empty() || h.is_empty() {
        return Vec::new();
    }
    [w, h].iter().flat_map(|c| call_marks(c)).collect()
}

fn dynamic_code(ev: &Evidence<'_>) -> Vec<(String, String)> {
    ev.procmemory
        .iter()
        .flat_map(|p| p["address_space"].as_array().cloned().unwrap_or_default())
        .map(|seg| {
            let tag = seg["tag"].as_str().unwrap_or("");
            let base = seg["base"].as_str().unwrap_or("");
            ("memory".to_owned(), format!("{tag} @ {base}"))
        })
        .collect()
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "injection_createremotethread",
            description: "Injects code into another process (VirtualAllocEx, WriteProcessMemory, CreateRemoteThread)",
            severity: 3,
            categories: &["injection"],
            ttp: &[(
                "T1055.002",
                "Process Injection: Portable Executable Injection",
            )],
            find: remote_thread,
        },
        Sig {
            name: "injection_thread_hijack",
            description: "Writes into another process and redirects one of its threads (APC queueing or thread context change)",
            severity: 3,
            categories: &["injection"],
            ttp: &[
                (
                    "T1055.004",
                    "Process Injection: Asynchronous Procedure Call",
                ),
                ("T1055.003", "Process Injection: Thread Execution Hijacking"),
            ],
            find: thread_hijack,
        },
        Sig {
            name: "executes_dynamic_code",
            description: "Executes code from memory it allocated at run time (unpacking or a shellcode stage)",
            severity: 2,
            categories: &["unpacker", "injection"],
            ttp: &[("T1620", "Reflective Code Loading")],
            find: dynamic_code,
        },
    ])
}
