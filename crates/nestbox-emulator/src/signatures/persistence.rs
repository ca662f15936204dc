//! Persistence: autorun keys, scheduled tasks, services, the startup folder, UAC bypass
//! through hijacked shell verbs.

use super::{Evidence, Sig, Signature, boxed, call_marks, contains_ci, summary_marks};

const WRITE_KEYS: &[&str] = &["write_keys"];
const COMMANDS: &[&str] = &["executed_commands"];

fn autorun(ev: &Evidence<'_>) -> Vec<(String, String)> {
    const KEYS: &[&str] = &[
        "\\currentversion\\run",
        "\\currentversion\\policies\\explorer\\run",
        "\\currentversion\\winlogon\\shell",
        "\\currentversion\\winlogon\\userinit",
        "\\currentversion\\windows\\load",
        "\\currentversion\\windows\\appinit_dlls",
    ];
    summary_marks(ev, WRITE_KEYS, "registry", |k| {
        KEYS.iter().any(|p| contains_ci(k, p))
    })
}

fn scheduled_task(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut m = summary_marks(ev, COMMANDS, "cmdline", |c| {
        let c = c.to_ascii_lowercase();
        (c.contains("schtasks") && c.contains("/create")) || c.contains("register-scheduledtask")
    });
    // CLSID_TaskScheduler / the ITaskService COM object.
    m.extend(
        ev.all_strings()
            .filter(|s| {
                contains_ci(s, "0f87369f-a4e5-4cfc-bd3e-73e6154572dd")
                    || contains_ci(s, "schedule.service")
            })
            .map(|s| ("com".to_owned(), s.to_owned())),
    );
    m
}

fn service(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let mut m = call_marks(&ev.calls_to(&["CreateService"]));
    m.extend(summary_marks(ev, COMMANDS, "cmdline", |c| {
        let c = c.to_ascii_lowercase();
        (c.contains("sc ") || c.contains("sc.exe")) && c.contains(" create ")
            || c.contains("new-service")
    }));
    m
}

fn startup_folder(ev: &Evidence<'_>) -> Vec<(String, String)> {
    summary_marks(ev, &["write_files"], "file", |f| {
        contains_ci(f, "\\start menu\\programs\\startup\\")
    })
}

fn uac_bypass(ev: &Evidence<'_>) -> Vec<(String, String)> {
    const KEYS: &[&str] = &[
        "\\ms-settings\\shell\\open\\command",
        "\\mscfile\\shell\\open\\command",
        "\\exefile\\shell\\open\\command",
        "\\folder\\shell\\open\\command",
        "\\delegateexecute",
        "\\policies\\system\\enablelua",
        "\\policies\\system\\consentpromptbehavioradmin",
    ];
    summary_marks(ev, WRITE_KEYS, "registry", |k| {
        KEYS.iter().any(|p| contains_ci(k, p))
    })
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "persistence_autorun",
            description: "Installs itself for autorun at Windows startup (Run keys, Winlogon, AppInit)",
            severity: 3,
            categories: &["persistence"],
            ttp: &[(
                "T1547.001",
                "Boot or Logon Autostart Execution: Registry Run Keys / Startup Folder",
            )],
            find: autorun,
        },
        Sig {
            name: "persistence_scheduled_task",
            description: "Creates a scheduled task (schtasks or the Task Scheduler COM interface)",
            severity: 3,
            categories: &["persistence"],
            ttp: &[("T1053.005", "Scheduled Task/Job: Scheduled Task")],
            find: scheduled_task,
        },
        Sig {
            name: "persistence_service",
            description: "Creates a Windows service",
            severity: 3,
            categories: &["persistence"],
            ttp: &[(
                "T1543.003",
                "Create or Modify System Process: Windows Service",
            )],
            find: service,
        },
        Sig {
            name: "persistence_startup_folder",
            description: "Writes a file into a Startup folder",
            severity: 3,
            categories: &["persistence"],
            ttp: &[(
                "T1547.001",
                "Boot or Logon Autostart Execution: Registry Run Keys / Startup Folder",
            )],
            find: startup_folder,
        },
        Sig {
            name: "uac_bypass_registry",
            description: "Changes registry keys used to bypass User Account Control (hijacked shell verbs, UAC policy)",
            severity: 3,
            categories: &["privilege_escalation", "stealth"],
            ttp: &[(
                "T1548.002",
                "Abuse Elevation Control Mechanism: Bypass User Account Control",
            )],
            find: uac_bypass,
        },
    ])
}
