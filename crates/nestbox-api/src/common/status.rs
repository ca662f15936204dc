//! Host figures reported by the status endpoints (Cuckoo `cuckoo/status`, CAPE
//! `cuckoo/status`): load, memory, CPU count, host name. Read from /proc so that no
//! system-information crate is needed; absent files give `None`, never an error.

/// 1/5/15-minute load averages, or empty where unavailable (Cuckoo gives `[]`).
pub fn cpuload() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `(MemAvailable, MemTotal)` in kB.
pub fn meminfo() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("MemAvailable:")?, field("MemTotal:")?))
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Number of CPUs available to us.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
