//! Signatures that are pure data: "the sample touched one of these paths / ran one of
//! these programs". Paths are as seen inside the sandbox (home is `/home/<user>`, so home
//! files are matched by their tail). Writes include refused attempts (the system is
//! read-only inside, so a persistence attempt usually fails, and is still persistence);
//! reads include opens of files that do not exist (probing is the behaviour).

use super::{Evidence, Marks, Meta, prog};

/// Where a rule looks.
#[derive(Clone, Copy)]
pub(crate) enum Src {
    /// Paths opened for reading (attempts included).
    Reads,
    /// Paths written or opened for writing (attempts included).
    Writes,
    /// Paths deleted or renamed away.
    Deletes,
    /// Command lines executed and programs whose execution was attempted.
    Commands,
}

/// How a value matches.
#[derive(Clone, Copy)]
pub(crate) enum Pat {
    Exact(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Contains(&'static str),
    /// The program of a command line (basename of its first word).
    Prog(&'static str),
}

impl Pat {
    fn matches(self, v: &str) -> bool {
        match self {
            Pat::Exact(p) => v == p,
            Pat::Prefix(p) => v.starts_with(p),
            Pat::Suffix(p) => v.ends_with(p),
            Pat::Contains(p) => v.contains(p),
            Pat::Prog(p) => prog(v) == p,
        }
    }
}

/// One data signature: any `(source, patterns)` pair matching is evidence; it fires when
/// at least `min` distinct values matched.
pub(crate) struct Rule {
    pub meta: Meta,
    pub checks: &'static [(Src, &'static [Pat])],
    pub min: usize,
}

impl Rule {
    pub(crate) fn check(&self, ev: &Evidence<'_>) -> Marks {
        let mut marks = Marks::new();
        for (src, pats) in self.checks {
            let (kind, values): (&str, Vec<&str>) = match src {
                Src::Reads => ("file", ev.reads().into_iter().collect()),
                Src::Writes => ("file", ev.writes().into_iter().collect()),
                Src::Deletes => ("file", ev.summary("delete_files")),
                Src::Commands => ("cmdline", ev.commands()),
            };
            for v in values {
                if pats.iter().any(|p| p.matches(v)) {
                    marks.push((kind.to_owned(), v.to_owned()));
                }
            }
        }
        marks.sort();
        marks.dedup();
        if marks.len() < self.min {
            marks.clear();
        }
        marks
    }
}

use Pat::{Contains, Exact, Prefix, Prog, Suffix};
use Src::{Commands, Deletes, Reads, Writes};

const fn rule(meta: Meta, checks: &'static [(Src, &'static [Pat])]) -> Rule {
    Rule {
        meta,
        checks,
        min: 1,
    }
}

/// The table.
pub(crate) static RULES: &[Rule] = &[
    rule(
        Meta {
            name: "reads_shadow",
            description: "Reads the system password hashes (/etc/shadow)",
            severity: 3,
            categories: &["credential_access"],
            ttp: &[(
                "T1003.008",
                "OS Credential Dumping: /etc/passwd and /etc/shadow",
            )],
            families: &[],
        },
        &[(
            Reads,
            &[
                Exact("/etc/shadow"),
                Exact("/etc/gshadow"),
                Exact("/etc/shadow-"),
            ],
        )],
    ),
    rule(
        Meta {
            name: "persistence_cron",
            description: "Installs a cron job for persistence",
            severity: 3,
            categories: &["persistence"],
            ttp: &[("T1053.003", "Scheduled Task/Job: Cron")],
            families: &[],
        },
        &[
            (
                Writes,
                &[
                    Exact("/etc/crontab"),
                    Prefix("/etc/cron."),
                    Prefix("/var/spool/cron/"),
                    Prefix("/etc/anacrontab"),
                ],
            ),
            (Commands, &[Prog("crontab")]),
        ],
    ),
    rule(
        Meta {
            name: "persistence_shell_rc",
            description: "Modifies shell start-up files for persistence",
            severity: 3,
            categories: &["persistence"],
            ttp: &[(
                "T1546.004",
                "Event Triggered Execution: Unix Shell Configuration Modification",
            )],
            families: &[],
        },
        &[(
            Writes,
            &[
                Suffix("/.bashrc"),
                Suffix("/.bash_profile"),
                Suffix("/.bash_login"),
                Suffix("/.bash_logout"),
                Suffix("/.profile"),
                Suffix("/.zshrc"),
                Exact("/etc/profile"),
                Prefix("/etc/profile.d/"),
                Exact("/etc/bash.bashrc"),
            ],
        )],
    ),
    rule(
        Meta {
            name: "persistence_ssh_authorized_keys",
            description: "Adds an SSH key to authorized_keys for persistent remote access",
            severity: 3,
            categories: &["persistence"],
            ttp: &[("T1098.004", "Account Manipulation: SSH Authorized Keys")],
            families: &[],
        },
        &[(
            Writes,
            &[
                Suffix("/.ssh/authorized_keys"),
                Suffix("/.ssh/authorized_keys2"),
            ],
        )],
    ),
    rule(
        Meta {
            name: "persistence_systemd",
            description: "Installs or enables a systemd service for persistence",
            severity: 3,
            categories: &["persistence"],
            ttp: &[(
                "T1543.002",
                "Create or Modify System Process: Systemd Service",
            )],
            families: &[],
        },
        &[
            (
                Writes,
                &[
                    Prefix("/etc/systemd/"),
                    Prefix("/usr/lib/systemd/system/"),
                    Prefix("/lib/systemd/system/"),
                    Contains("/.config/systemd/user/"),
                ],
            ),
            (
                Commands,
                &[
                    Contains("systemctl enable"),
                    Contains("systemctl --user enable"),
                ],
            ),
        ],
    ),
    rule(
        Meta {
            name: "persistence_rc_autostart",
            description: "Installs an init/rc script or desktop autostart entry",
            severity: 3,
            categories: &["persistence"],
            ttp: &[
                (
                    "T1037.004",
                    "Boot or Logon Initialization Scripts: RC Scripts",
                ),
                (
                    "T1547.013",
                    "Boot or Logon Autostart Execution: XDG Autostart Entries",
                ),
            ],
            families: &[],
        },
        &[
            (
                Writes,
                &[
                    Prefix("/etc/rc"),
                    Prefix("/etc/init.d/"),
                    Prefix("/etc/init/"),
                    Prefix("/etc/xdg/autostart/"),
                    Contains("/.config/autostart/"),
                ],
            ),
            (Commands, &[Prog("update-rc.d"), Prog("chkconfig")]),
        ],
    ),
    rule(
        Meta {
            name: "account_manipulation",
            description: "Creates or changes user accounts or sudo rights",
            severity: 3,
            categories: &["persistence", "privilege_escalation"],
            ttp: &[
                ("T1136.001", "Create Account: Local Account"),
                (
                    "T1548.003",
                    "Abuse Elevation Control Mechanism: Sudo and Sudo Caching",
                ),
            ],
            families: &[],
        },
        &[
            (
                Writes,
                &[
                    Exact("/etc/passwd"),
                    Exact("/etc/shadow"),
                    Exact("/etc/group"),
                    Exact("/etc/sudoers"),
                    Prefix("/etc/sudoers.d/"),
                ],
            ),
            (
                Commands,
                &[
                    Prog("useradd"),
                    Prog("adduser"),
                    Prog("usermod"),
                    Prog("chpasswd"),
                    Prog("visudo"),
                ],
            ),
        ],
    ),
    rule(
        Meta {
            name: "credential_ssh_keys",
            description: "Reads SSH private keys",
            severity: 3,
            categories: &["credential_access"],
            ttp: &[("T1552.004", "Unsecured Credentials: Private Keys")],
            families: &[],
        },
        &[(
            Reads,
            &[Contains("/.ssh/id_"), Prefix("/etc/ssh/ssh_host_")],
        )],
    ),
    rule(
        Meta {
            name: "credential_browser_stores",
            description: "Reads web browser credential or cookie stores",
            severity: 3,
            categories: &["credential_access", "infostealer"],
            ttp: &[(
                "T1555.003",
                "Credentials from Password Stores: Credentials from Web Browsers",
            )],
            families: &[],
        },
        &[(
            Reads,
            &[
                Contains("/.mozilla/firefox/"),
                Contains("/.config/google-chrome/"),
                Contains("/.config/chromium/"),
                Contains("/.config/BraveSoftware/"),
                Contains("/.config/opera/"),
            ],
        )],
    ),
    rule(
        Meta {
            name: "credential_files",
            description: "Reads stored credentials (cloud, container, git, netrc, GnuPG, shell history)",
            severity: 2,
            categories: &["credential_access", "infostealer"],
            ttp: &[
                ("T1552.001", "Unsecured Credentials: Credentials In Files"),
                ("T1552.003", "Unsecured Credentials: Bash History"),
            ],
            families: &[],
        },
        &[(
            Reads,
            &[
                Suffix("/.aws/credentials"),
                Suffix("/.docker/config.json"),
                Suffix("/.netrc"),
                Suffix("/.git-credentials"),
                Suffix("/.kube/config"),
                Suffix("/.pgpass"),
                Suffix("/.bash_history"),
                Contains("/.gnupg/"),
                Contains("/.password-store/"),
            ],
        )],
    ),
    rule(
        Meta {
            name: "ld_preload_hijack",
            description: "Installs a library into the dynamic loader's preload list",
            severity: 3,
            categories: &["persistence", "evasion", "rootkit"],
            ttp: &[(
                "T1574.006",
                "Hijack Execution Flow: Dynamic Linker Hijacking",
            )],
            families: &[],
        },
        &[
            (Writes, &[Exact("/etc/ld.so.preload")]),
            (Commands, &[Contains("LD_PRELOAD=")]),
        ],
    ),
    rule(
        Meta {
            name: "kernel_module_load",
            description: "Tries to load or remove a kernel module",
            severity: 3,
            categories: &["rootkit", "persistence"],
            ttp: &[(
                "T1547.006",
                "Boot or Logon Autostart Execution: Kernel Modules and Extensions",
            )],
            families: &[],
        },
        &[
            (
                Commands,
                &[
                    Prog("insmod"),
                    Prog("modprobe"),
                    Prog("rmmod"),
                    Prog("kmod"),
                ],
            ),
            (Reads, &[Suffix(".ko"), Suffix(".ko.xz"), Suffix(".ko.zst")]),
            (
                Writes,
                &[Prefix("/etc/modules"), Prefix("/etc/modprobe.d/")],
            ),
        ],
    ),
    rule(
        Meta {
            name: "sysctl_tampering",
            description: "Tries to change kernel parameters (/proc/sys, sysctl -w)",
            severity: 2,
            categories: &["evasion"],
            ttp: &[("T1562.001", "Impair Defenses: Disable or Modify Tools")],
            families: &[],
        },
        &[
            (Writes, &[Prefix("/proc/sys/"), Prefix("/etc/sysctl")]),
            (
                Commands,
                &[Contains("sysctl -w"), Contains("sysctl --write")],
            ),
        ],
    ),
    rule(
        Meta {
            name: "firewall_tampering",
            description: "Runs firewall tools (iptables, nftables, ufw) to change filtering",
            severity: 3,
            categories: &["evasion"],
            ttp: &[(
                "T1562.004",
                "Impair Defenses: Disable or Modify System Firewall",
            )],
            families: &[],
        },
        &[(
            Commands,
            &[
                Prog("iptables"),
                Prog("ip6tables"),
                Prog("iptables-legacy"),
                Prog("iptables-nft"),
                Prog("nft"),
                Prog("ufw"),
                Prog("firewall-cmd"),
            ],
        )],
    ),
    rule(
        Meta {
            name: "clears_history_and_logs",
            description: "Deletes or truncates shell history or system logs",
            severity: 2,
            categories: &["evasion"],
            ttp: &[
                ("T1070.003", "Indicator Removal: Clear Command History"),
                (
                    "T1070.002",
                    "Indicator Removal: Clear Linux or Mac System Logs",
                ),
            ],
            families: &[],
        },
        &[
            (
                Deletes,
                &[
                    Suffix("_history"),
                    Suffix("/.lesshst"),
                    Suffix("/.viminfo"),
                    Prefix("/var/log/"),
                ],
            ),
            (Writes, &[Suffix("_history"), Prefix("/var/log/")]),
            (Commands, &[Prog("shred"), Contains("history -c")]),
        ],
    ),
    rule(
        Meta {
            name: "container_escape_probe",
            description: "Probes container runtime sockets or host-escape paths",
            severity: 3,
            categories: &["privilege_escalation", "discovery"],
            ttp: &[("T1611", "Escape to Host")],
            families: &[],
        },
        &[
            (
                Reads,
                &[
                    Suffix("/docker.sock"),
                    Suffix("/containerd.sock"),
                    Suffix("/crio.sock"),
                    Prefix("/proc/1/root"),
                    Exact("/proc/sysrq-trigger"),
                    Exact("/sys/kernel/uevent_helper"),
                    Contains("/release_agent"),
                ],
            ),
            (
                Writes,
                &[
                    Exact("/proc/sys/kernel/core_pattern"),
                    Exact("/proc/sysrq-trigger"),
                ],
            ),
        ],
    ),
    rule(
        Meta {
            name: "antivm_checks",
            description: "Checks for a virtual machine, container or sandbox",
            severity: 2,
            categories: &["anti-vm", "evasion"],
            ttp: &[("T1497.001", "Virtualization/Sandbox Evasion: System Checks")],
            families: &[],
        },
        &[
            (
                Reads,
                &[
                    Prefix("/sys/class/dmi/id/"),
                    Prefix("/sys/devices/virtual/dmi/"),
                    Prefix("/sys/hypervisor"),
                    Prefix("/proc/xen"),
                    Prefix("/proc/vz"),
                    Exact("/proc/scsi/scsi"),
                    Exact("/proc/cpuinfo"),
                    Exact("/.dockerenv"),
                    Exact("/run/.containerenv"),
                    Exact("/proc/1/cgroup"),
                ],
            ),
            (
                Commands,
                &[
                    Prog("systemd-detect-virt"),
                    Prog("dmidecode"),
                    Prog("virt-what"),
                    Prog("lspci"),
                ],
            ),
        ],
    ),
    Rule {
        meta: Meta {
            name: "system_discovery",
            description: "Collects system, user and network information with several tools",
            severity: 1,
            categories: &["discovery"],
            ttp: &[
                ("T1082", "System Information Discovery"),
                ("T1033", "System Owner/User Discovery"),
                ("T1016", "System Network Configuration Discovery"),
            ],
            families: &[],
        },
        checks: &[(
            Commands,
            &[
                Prog("uname"),
                Prog("whoami"),
                Prog("id"),
                Prog("hostname"),
                Prog("ifconfig"),
                Prog("netstat"),
                Prog("ss"),
                Prog("lscpu"),
                Prog("lsb_release"),
                Prog("w"),
                Prog("last"),
                Prog("arp"),
                Prog("ps"),
                Contains("ip a"),
                Contains("ip route"),
            ],
        )],
        // One of these is ordinary scripting; a sweep through them is reconnaissance.
        min: 4,
    },
    rule(
        Meta {
            name: "timestomp",
            description: "Sets file times to hide when files were changed",
            severity: 2,
            categories: &["evasion"],
            ttp: &[("T1070.006", "Indicator Removal: Timestomp")],
            families: &[],
        },
        &[(
            Commands,
            &[
                Contains("touch -r"),
                Contains("touch -t"),
                Contains("touch -d"),
                Contains("touch --reference"),
                Contains("touch --date"),
            ],
        )],
    ),
];

#[cfg(test)]
mod tests {
    use crate::behavior::Attempts;
    use crate::signatures::tests::{behavior, fired};
    use nestbox_types::report::Network;

    /// Each row with one input that fires it and one close-by benign input that does not.
    #[test]
    fn rows_fire_on_evidence_and_stay_quiet_on_benign_neighbours() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // (signature, source, malicious value, benign value)
            ("reads_shadow", "read_files", "/etc/shadow", "/etc/passwd"),
            (
                "persistence_cron",
                "write_files",
                "/etc/cron.d/x",
                "/etc/cronos",
            ),
            (
                "persistence_shell_rc",
                "write_files",
                "/home/john/.bashrc",
                "/home/john/bashrc.txt",
            ),
            (
                "persistence_ssh_authorized_keys",
                "write_files",
                "/home/john/.ssh/authorized_keys",
                "/home/john/.ssh/known_hosts",
            ),
            (
                "persistence_systemd",
                "write_files",
                "/home/john/.config/systemd/user/x.service",
                "/home/john/.config/x.service",
            ),
            (
                "persistence_rc_autostart",
                "write_files",
                "/etc/rc.local",
                "/etc/hosts",
            ),
            (
                "account_manipulation",
                "executed_commands",
                "useradd -m eve",
                "users",
            ),
            (
                "credential_ssh_keys",
                "read_files",
                "/home/john/.ssh/id_ed25519",
                "/home/john/.ssh/known_hosts",
            ),
            (
                "credential_browser_stores",
                "read_files",
                "/home/john/.mozilla/firefox/a.default/logins.json",
                "/home/john/.config/gtk-3.0/settings.ini",
            ),
            (
                "credential_files",
                "read_files",
                "/home/john/.aws/credentials",
                "/home/john/.aws/config",
            ),
            (
                "ld_preload_hijack",
                "write_files",
                "/etc/ld.so.preload",
                "/home/john/ld.so.preload.txt",
            ),
            (
                "kernel_module_load",
                "executed_commands",
                "insmod /tmp/r.ko",
                "lsmod",
            ),
            (
                "sysctl_tampering",
                "write_files",
                "/proc/sys/kernel/randomize_va_space",
                "/proc/self/comm",
            ),
            (
                "firewall_tampering",
                "executed_commands",
                "/usr/sbin/iptables -F",
                "ip link",
            ),
            (
                "clears_history_and_logs",
                "delete_files",
                "/home/john/.bash_history",
                "/home/john/history.txt",
            ),
            (
                "container_escape_probe",
                "read_files",
                "/var/run/docker.sock",
                "/var/run/utmp",
            ),
            (
                "antivm_checks",
                "read_files",
                "/sys/class/dmi/id/product_name",
                "/sys/class/net/lo/mtu",
            ),
            (
                "timestomp",
                "executed_commands",
                "touch -r /bin/ls /tmp/x",
                "touch /tmp/x",
            ),
        ];
        for (sig, key, bad, good) in cases {
            let b = behavior(&[(key, &[bad])], &[]);
            let f = fired(&b, &Network::default(), &Attempts::default(), vec![]);
            assert!(
                f.iter().any(|n| n == sig),
                "{sig} did not fire on {bad}: {f:?}"
            );
            let b = behavior(&[(key, &[good])], &[]);
            let f = fired(&b, &Network::default(), &Attempts::default(), vec![]);
            assert!(!f.iter().any(|n| n == sig), "{sig} fired on {good}");
        }
    }

    #[test]
    fn refused_attempts_count_and_discovery_needs_a_sweep() {
        let mut a = Attempts::default();
        a.writes.insert("/etc/cron.d/evil".into());
        a.execs.insert("/usr/local/sbin/iptables".into());
        a.opens.insert("/.dockerenv".into());
        let f = fired(&Default::default(), &Network::default(), &a, vec![]);
        for want in ["persistence_cron", "firewall_tampering", "antivm_checks"] {
            assert!(f.iter().any(|n| n == want), "{want}: {f:?}");
        }
        let b = behavior(&[("executed_commands", &["uname -a", "id", "whoami"])], &[]);
        let f = fired(&b, &Network::default(), &Attempts::default(), vec![]);
        assert!(!f.iter().any(|n| n == "system_discovery"));
        let b = behavior(
            &[("executed_commands", &["uname -a", "id", "whoami", "ps aux"])],
            &[],
        );
        let f = fired(&b, &Network::default(), &Attempts::default(), vec![]);
        assert!(f.iter().any(|n| n == "system_discovery"));
    }
}
