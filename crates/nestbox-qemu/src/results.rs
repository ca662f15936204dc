//! What a guest's analyzer uploaded, turned into the report's sections.
//!
//! `nestbox-analyzer` (the Linux guest analyzer) uploads one strace log per process as
//! `aux/strace/t.<pid>` and the files the sample created as `files/…` (with the original
//! path in `files.json`); the same parser and behaviour builder as the `ns` machinery
//! turn the traces into Cuckoo's `behavior` (process tree, calls, summary), and the
//! Linux signatures run over it. A Windows monitor's `logs/*.bson` are kept in the run
//! directory but not decoded here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nestbox_core::machinery::Detonation;
use nestbox_sandbox::{behavior, dropped, signatures};

/// Per-process call-log cap, as the `ns` machinery's default.
const MAX_CALLS: usize = 2000;
/// Dropped files kept at most.
const MAX_DROPPED: usize = 100;

/// Fills `det` from the results directory `dir` of a run whose sample ran as
/// `guest_target` inside the guest.
pub fn apply(dir: &Path, guest_target: &str, det: &mut Detonation) {
    let traces = behavior::read_traces(&dir.join("aux/strace"), "t");
    let mut attempts = behavior::Attempts::default();
    let mut writers: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    if !traces.is_empty() {
        let cwd = Path::new(guest_target)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_owned());
        let traced = behavior::build(&traces, guest_target, &cwd, MAX_CALLS);
        if !traced.started {
            det.errors.push(format!(
                "the guest's traces do not show {guest_target} being executed"
            ));
        }
        det.log
            .extend(traced.notes.into_iter().map(|n| format!("qemu: {n}")));
        det.behavior = traced.behavior;
        attempts = traced.attempts;
        writers = traced.writers;
    }
    // Dropped files, with the guest paths the analyzer gave (files.json).
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("files.json")) {
        for l in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l)
                && let (Some(p), Some(f)) = (v["path"].as_str(), v["filepath"].as_str())
            {
                origin.insert(p.to_owned(), f.to_owned());
            }
        }
    }
    for (rel, guest_path) in origin.into_iter().take(MAX_DROPPED) {
        let local = dir.join(&rel);
        if std::fs::symlink_metadata(&local).is_ok_and(|m| m.is_file())
            && let Some(f) = dropped::describe(local, guest_path, &writers)
        {
            det.dropped.push(f);
        }
    }
    if let Ok(log) = std::fs::read_to_string(dir.join("analysis.log")) {
        det.log.extend(
            log.lines()
                .take(2000)
                .map(|l| format!("guest: {}", l.chars().take(500).collect::<String>())),
        );
    }
    let files: Vec<_> = det
        .dropped
        .iter()
        .map(|d| {
            (
                d.local.clone(),
                d.info.filepath.clone().unwrap_or_default(),
                false,
            )
        })
        .collect();
    let mut ev = signatures::Evidence::new(&det.behavior, &det.network, guest_target, &attempts);
    ev.read_contents(&files);
    det.signatures = signatures::evaluate(&ev);
}
