//! The dependency rules of house-style §7.3, checked mechanically from `cargo metadata`:
//! the core knows no HTTP or SQL, analyzers know no other nestbox crate, the API never
//! reaches the store, workers never reach the API, and only the binary names them all.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn workspace_deps() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null()) // normal deps; dev-deps may cross
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependency_direction() {
    let deps = workspace_deps();
    let forbid = |krate: &str, banned: &[&str]| {
        let have = deps.get(krate).unwrap_or_else(|| panic!("{krate} missing"));
        for b in banned {
            assert!(!have.contains(*b), "{krate} must not depend on {b}");
        }
    };
    let io = [
        "axum",
        "hyper",
        "tower",
        "tower-http",
        "sqlx",
        "reqwest",
        "ureq",
        "yara-x",
        "object_store",
    ];
    forbid("nestbox-types", &io);
    forbid("nestbox-types", &["tokio", "nestbox-core"]);
    forbid("nestbox-core", &io);
    forbid(
        "nestbox-core",
        &["nestbox-store", "nestbox-api", "nestbox-worker"],
    );
    forbid("nestbox-analyzers", &io);
    let nb: Vec<&str> = deps
        .keys()
        .filter(|k| k.starts_with("nestbox-"))
        .map(String::as_str)
        .collect();
    forbid("nestbox-analyzers", &nb);
    forbid("nestbox-api", &["nestbox-store", "sqlx", "nestbox-worker"]);
    // The web UI reads through the core's ports like the APIs do.
    forbid("nestbox-web", &["nestbox-store", "sqlx", "nestbox-worker"]);
    forbid(
        "nestbox-worker",
        &["nestbox-api", "axum", "nestbox-store", "sqlx"],
    );
    forbid("nestbox-store", &["nestbox-api", "nestbox-worker", "axum"]);
    // The binary, and the web benchmark (bench/web), which wires a server of its own to
    // time pages without a network, are the composition roots.
    for (krate, have) in &deps {
        if krate != "nestbox-server" && krate != "nestbox-bench-web" {
            assert!(
                !(have.contains("nestbox-store") && have.contains("nestbox-api")),
                "only the binary may name both the store and the API ({krate} does)"
            );
        }
    }
}
