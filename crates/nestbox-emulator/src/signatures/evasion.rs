//! Anti-analysis: debugger checks, virtual-machine artefacts, long sleeps, process
//! discovery (looking for analysis tools).

use super::{Evidence, Sig, Signature, boxed, call_marks};

fn anti_debug(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut calls = ev.calls_to(&[
        "IsDebuggerPresent",
        "CheckRemoteDebuggerPresent",
        "OutputDebugString",
    ]);
    // NtQueryInformationProcess with ProcessDebugPort (7), ProcessDebugObjectHandle
    // (0x1e) or ProcessDebugFlags (0x1f).
    calls.extend(
        ev.calls_to(&["NtQueryInformationProcess", "ZwQueryInformationProcess"])
            .into_iter()
            .filter(|c| matches!(c.num(1), Some(7 | 0x1e | 0x1f))),
    );
    // NtSetInformationThread(ThreadHideFromDebugger = 0x11).
    calls.extend(
        ev.calls_to(&["NtSetInformationThread", "ZwSetInformationThread"])
            .into_iter()
            .filter(|c| c.num(1) == Some(0x11)),
    );
    call_marks(&calls)
}

/// Names that only exist inside VirtualBox, VMware, QEMU, Xen, Hyper-V or Sandboxie.
const VM_ARTEFACTS: &[&str] = &[
    "vbox",
    "virtualbox",
    "vmware",
    "vmtools",
    "vmhgfs",
    "vmmouse",
    "vmci",
    "vm3dgl",
    "qemu",
    "xenservice",
    "xenvbd",
    "sbiedll",
    "vboxguest",
    "vmicheartbeat",
    "prl_tools",
];

fn anti_vm(ev: &Evidence<'_>) -> Vec<(String, String)> {
    ev.all_strings()
        .filter(|s| {
            let l = s.to_ascii_lowercase();
            VM_ARTEFACTS.iter().any(|a| l.contains(a))
        })
        .map(|s| ("artefact".to_owned(), s.to_owned()))
        .collect()
}

fn long_sleep(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let sleeps = ev.calls_to(&["Sleep", "SleepEx", "NtDelayExecution"]);
    let total: u64 = sleeps
        .iter()
        .filter(|c| c.api != "NtDelayExecution")
        .filter_map(|c| c.num(0))
        .filter(|ms| *ms < 0xffff_ffff)
        .sum();
    let long: Vec<_> = sleeps
        .iter()
        .filter(|c| {
            c.num(0)
                .is_some_and(|ms| (60_000..0xffff_ffff).contains(&ms))
        })
        .copied()
        .collect();
    if long.is_empty() && total < 120_000 {
        return Vec::new();
    }
    let mut m = call_marks(&long);
    m.push(("total_ms".to_owned(), total.to_string()));
    m
}

fn process_discovery(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let snap = ev.calls_to(&[
        "CreateToolhelp32Snapshot",
        "EnumProcesses",
        "NtQuerySystemInformation",
    ]);
    let walk = ev.calls_to(&[
        "Process32First",
        "Process32Next",
        "EnumProcesses",
        "NtQuerySystemInformation",
    ]);
    if snap.is_empty() || walk.is_empty() {
        return Vec::new();
    }
    call_marks(&snap)
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "antidebug_api",
            description: "Checks whether it is being debugged",
            severity: 2,
            categories: &["anti-debug"],
            ttp: &[("T1622", "Debugger Evasion")],
            find: anti_debug,
        },
        Sig {
            name: "antivm_artefacts",
            description: "Looks for registry keys, files, devices or processes of virtual machines and sandboxes",
            severity: 3,
            categories: &["anti-vm"],
            ttp: &[("T1497.001", "Virtualization/Sandbox Evasion: System Checks")],
            find: anti_vm,
        },
        Sig {
            name: "antisandbox_sleep",
            description: "Sleeps for a long time, a way to outlast sandbox analysis timeouts",
            severity: 2,
            categories: &["anti-sandbox"],
            ttp: &[(
                "T1497.003",
                "Virtualization/Sandbox Evasion: Time Based Evasion",
            )],
            find: long_sleep,
        },
        Sig {
            name: "process_discovery",
            description: "Lists the running processes (often to find analysis tools or a process to inject into)",
            severity: 1,
            categories: &["discovery"],
            ttp: &[("T1057", "Process Discovery")],
            find: process_discovery,
        },
    ])
}
