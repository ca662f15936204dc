//! Configuration: one typed TOML file, every field documented with its default here.
//!
//! Sources, lowest to highest priority: built-in defaults < `nestbox.toml` (or `--config`)
//! < environment (`NESTBOX_<SECTION>__<KEY>`, e.g. `NESTBOX_SERVER__PORT=9000`) < CLI flags.
//! Any secret can instead be read from a file named by `<key>_file`; setting both is an
//! error. [`Config::validate`] runs once at start-up and lists every problem it finds.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use nestbox_types::MachineSpec;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the database, the sample store and analysis folders.
    /// Default `./nestbox-data`.
    pub data_dir: PathBuf,
    /// HTTP server.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// The Cuckoo REST dialect.
    pub cuckoo: CuckooConfig,
    /// The CAPEv2 `/apiv2/` dialect, users and tokens.
    pub cape: crate::cape_config::CapeConfig,
    /// The Assemblyline `/api/v4/` dialect: sessions, submission defaults, quotas.
    pub assemblyline: crate::al_config::AlConfig,
    /// Several nodes on one PostgreSQL database.
    pub cluster: crate::cluster_config::ClusterConfig,
    /// Analysis workers and stages.
    pub analysis: AnalysisConfig,
    /// Machines (analysis slots). Empty = `static1..static<workers>`, platform `linux`.
    pub machines: Vec<MachineConfig>,
    /// The `ns` sandbox machinery (detonation).
    pub sandbox: crate::sandbox_config::SandboxConfig,
    /// The web UI.
    pub web: crate::web_config::WebConfig,
    /// The `emulator` machinery (Windows PEs and shellcode).
    pub emulator: crate::emulator_config::EmulatorConfig,
    /// The `qemu` machinery (QEMU guests with the Cuckoo/CAPE agent).
    pub qemu: crate::qemu_config::QemuConfig,
    /// Where samples and artifacts live (local directory or S3 bucket).
    pub storage: crate::storage_config::StorageConfig,
    /// Log format and filter.
    pub logging: crate::logging_config::LoggingConfig,
    /// YARA rules and scanning.
    pub yara: crate::yara_config::YaraConfig,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind. Default `127.0.0.1` (never expose a sandbox API by accident).
    pub host: String,
    /// Port. Default `8090` (Cuckoo's API port). `0` lets the kernel pick a free port (the
    /// address is logged at start-up).
    pub port: u16,
    /// Largest accepted sample upload in bytes. Default 100 MiB; larger → 413, nothing kept.
    pub max_upload: u64,
}

/// `[database]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://<path>` or `postgres://user:password@host:port/database` (for several
    /// nodes; `?host=/socket/dir` for a unix socket). Empty (default) =
    /// `sqlite://<data_dir>/nestbox.db`.
    pub url: String,
}

/// `[cuckoo]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CuckooConfig {
    /// Bearer token required by the Cuckoo API; empty (default) = no auth.
    pub api_token: String,
    /// File to read `api_token` from (trailing newline trimmed). Default unset.
    pub api_token_file: Option<PathBuf>,
    /// Version reported by `cuckoo/status`. Default `2.0.7`, what clients expect.
    pub version: String,
    /// Cuckoo's debug mode: enables `GET /exit`. Default false.
    pub debug: bool,
}

/// `[analysis]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Concurrent analysis workers. Default 2. `0` runs an API-only node that queues
    /// tasks for workers elsewhere (or for a later start).
    pub workers: usize,
    /// Analysis timeout in seconds when a task says 0. Default 120 (Cuckoo).
    pub default_timeout: u64,
    /// Extra seconds before an analysis is abandoned. Default 60 (Cuckoo's `critical`).
    pub critical_timeout: u64,
    /// How often idle workers look at the queue, in milliseconds. Default 1000.
    pub poll_interval_ms: u64,
    /// Tasks a crash left `running`: `true` (default) re-queues them (status `recovered` +
    /// a new pending task, Cuckoo's `reschedule = on`), `false` marks them `failed_analysis`.
    pub reschedule: bool,
    /// Seconds a machine that failed (its VM did not start, its agent never answered)
    /// stays out of rotation before it is tried again. Default 300; a restart retries at once.
    pub machine_retry_secs: u64,
    /// Write `reports/report.html` for every task. Default true.
    pub html_report: bool,
    /// Minimum string length for the strings section. Default 6 (Cuckoo).
    pub strings_min_len: usize,
    /// Most strings kept. Default 2048 (Cuckoo).
    pub strings_max_count: usize,
    /// Passwords tried on encrypted archive members, after a task's own `password=`
    /// option. Default `["infected"]`.
    pub archive_passwords: Vec<String>,
    /// Most bytes unpacked from one archive, all members and nesting levels together.
    /// Default 256 MiB; reaching it is a finding in `static.archive`, not a failure.
    pub unpack_max_bytes: u64,
    /// Most members unpacked from one archive. Default 1000.
    pub unpack_max_members: usize,
    /// Deepest archive nesting unpacked. Default 4.
    pub unpack_max_depth: u32,
}

/// One `[[machines]]` entry (Cuckoo machinery conf fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// Unique name.
    pub name: String,
    /// Label; default = name.
    #[serde(default)]
    pub label: Option<String>,
    /// Platform. Default `linux`.
    #[serde(default = "default_platform")]
    pub platform: String,
    /// Guest IP. Default `127.0.0.1`.
    #[serde(default = "default_ip")]
    pub ip: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Machinery options.
    #[serde(default)]
    pub options: Vec<String>,
    /// Snapshot name.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Capture interface.
    #[serde(default)]
    pub interface: Option<String>,
    /// Result server IP. Default `127.0.0.1`.
    #[serde(default = "default_ip")]
    pub resultserver_ip: String,
    /// Result server port. Default 2042.
    #[serde(default = "default_rs_port")]
    pub resultserver_port: i64,
    /// Architecture. Default `x64`.
    #[serde(default = "default_arch")]
    pub arch: String,
}

fn default_platform() -> String {
    "linux".into()
}
fn default_ip() -> String {
    "127.0.0.1".into()
}
fn default_rs_port() -> i64 {
    2042
}
fn default_arch() -> String {
    "x64".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./nestbox-data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            cuckoo: CuckooConfig::default(),
            cape: crate::cape_config::CapeConfig::default(),
            assemblyline: crate::al_config::AlConfig::default(),
            cluster: crate::cluster_config::ClusterConfig::default(),
            analysis: AnalysisConfig::default(),
            machines: Vec::new(),
            sandbox: crate::sandbox_config::SandboxConfig::default(),
            web: crate::web_config::WebConfig::default(),
            emulator: crate::emulator_config::EmulatorConfig::default(),
            qemu: crate::qemu_config::QemuConfig::default(),
            storage: crate::storage_config::StorageConfig::default(),
            logging: crate::logging_config::LoggingConfig::default(),
            yara: crate::yara_config::YaraConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8090,
            max_upload: 100 * 1024 * 1024,
        }
    }
}

impl Default for CuckooConfig {
    fn default() -> Self {
        CuckooConfig {
            api_token: String::new(),
            api_token_file: None,
            version: "2.0.7".into(),
            debug: false,
        }
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            workers: 2,
            default_timeout: 120,
            critical_timeout: 60,
            poll_interval_ms: 1000,
            reschedule: true,
            machine_retry_secs: 300,
            html_report: true,
            strings_min_len: 6,
            strings_max_count: 2048,
            archive_passwords: vec!["infected".into()],
            unpack_max_bytes: 256 * 1024 * 1024,
            unpack_max_members: 1000,
            unpack_max_depth: 4,
        }
    }
}

impl Config {
    /// Loads defaults < file < environment. A missing file is fine only when it was not
    /// named explicitly.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) => {
                if !p.exists() {
                    bail!("config file {} does not exist", p.display());
                }
                fig = fig.merge(Toml::file(p));
            }
            None => fig = fig.merge(Toml::file("nestbox.toml")),
        }
        // Only `NESTBOX_<SECTION>__<KEY>` and `NESTBOX_DATA_DIR` are configuration; other
        // NESTBOX_* variables (NESTBOX_LOG, the CLI's NESTBOX_SERVER) are not.
        let env = Env::prefixed("NESTBOX_")
            .filter(|k| k.as_str().contains("__") || k.as_str() == "data_dir")
            .split("__");
        fig = fig.merge(env);
        let mut cfg: Config = fig.extract().context("invalid configuration")?;
        cfg.resolve_secrets()?;
        Ok(cfg)
    }

    fn resolve_secrets(&mut self) -> anyhow::Result<()> {
        self.cape.resolve_secrets()?;
        self.storage.resolve_secrets()?;
        if let Some(file) = &self.cuckoo.api_token_file {
            if !self.cuckoo.api_token.is_empty() {
                bail!("cuckoo.api_token and cuckoo.api_token_file are both set; use one");
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading cuckoo.api_token_file {}", file.display()))?;
            self.cuckoo.api_token = text.trim_end_matches(['\n', '\r']).to_owned();
        }
        Ok(())
    }

    /// Checks every setting and reports all problems at once.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if self.server.host.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!(
                "server.host {:?} is not an IP address",
                self.server.host
            ));
        }
        if self.server.max_upload == 0 {
            problems.push("server.max_upload must be at least 1 byte".to_owned());
        }
        if self.analysis.workers > 256 {
            problems.push("analysis.workers must be at most 256".to_owned());
        }
        if self.analysis.default_timeout == 0 {
            problems.push("analysis.default_timeout must be at least 1 second".to_owned());
        }
        if self.analysis.poll_interval_ms == 0 {
            problems.push("analysis.poll_interval_ms must be at least 1".to_owned());
        }
        if self.analysis.strings_min_len == 0 {
            problems.push("analysis.strings_min_len must be at least 1".to_owned());
        }
        let url = &self.database.url;
        if !url.is_empty()
            && !url.starts_with("sqlite://")
            && !crate::cluster_config::is_postgres(url)
        {
            problems.push(format!(
                "database.url {url:?}: expected sqlite://<path> or postgres://…"
            ));
        }
        self.cape.validate(&mut problems);
        self.assemblyline.validate(&mut problems);
        self.cluster.validate(&mut problems);
        self.sandbox.validate(&mut problems);
        self.web.validate(&mut problems);
        self.emulator.validate(&mut problems);
        self.qemu.validate(&mut problems);
        self.storage.validate(&mut problems);
        self.logging.validate(&mut problems);
        let mut names = std::collections::BTreeSet::new();
        for m in &self.machines {
            if m.name.trim().is_empty() {
                problems.push("a machine has an empty name".to_owned());
            }
            if !names.insert(&m.name) {
                problems.push(format!("machine name {:?} is used twice", m.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("invalid configuration:\n  - {}", problems.join("\n  - "))
        }
    }

    /// Path of the SQLite database.
    pub fn sqlite_path(&self) -> PathBuf {
        match self.database.url.strip_prefix("sqlite://") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => self.data_dir.join("nestbox.db"),
        }
    }

    /// The machines to register: configured ones, or one static slot per worker.
    pub fn machine_specs(&self) -> Vec<MachineSpec> {
        if self.machines.is_empty() {
            return (1..=self.analysis.workers.max(1))
                .map(|n| {
                    let name = format!("static{n}");
                    MachineSpec {
                        label: name.clone(),
                        name,
                        platform: default_platform(),
                        ip: default_ip(),
                        tags: Vec::new(),
                        options: Vec::new(),
                        snapshot: None,
                        interface: None,
                        resultserver_ip: default_ip(),
                        resultserver_port: default_rs_port(),
                        arch: default_arch(),
                    }
                })
                .collect();
        }
        self.machines
            .iter()
            .map(|m| MachineSpec {
                name: m.name.clone(),
                label: m.label.clone().unwrap_or_else(|| m.name.clone()),
                platform: m.platform.clone(),
                ip: m.ip.clone(),
                tags: m.tags.clone(),
                options: m.options.clone(),
                snapshot: m.snapshot.clone(),
                interface: m.interface.clone(),
                resultserver_ip: m.resultserver_ip.clone(),
                resultserver_port: m.resultserver_port,
                arch: m.arch.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.machine_specs().len(), 2);
        assert_eq!(c.sqlite_path(), PathBuf::from("./nestbox-data/nestbox.db"));
    }

    #[test]
    fn problems_are_listed_together() {
        let mut c = Config::default();
        c.server.host = "localhost:80".into();
        c.analysis.workers = 1000;
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("server.host") && err.contains("analysis.workers"),
            "{err}"
        );
    }

    #[test]
    fn file_and_env_layering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "[server]\nport = 9001\n[analysis]\nworkers = 3\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.server.port, 9001);
        assert_eq!(c.analysis.workers, 3);
        std::fs::write(&path, "[server]\nbogus = 1\n").unwrap();
        assert!(
            Config::load(Some(&path)).is_err(),
            "unknown keys are refused"
        );
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
    }
}

#[cfg(test)]
mod example_tests {
    /// The shipped example must stay loadable and equal to the built-in defaults.
    #[test]
    fn example_config_matches_defaults() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nestbox.example.toml");
        let cfg = super::Config::load(Some(&path)).unwrap();
        let defaults = super::Config::default();
        assert_eq!(
            serde_json::to_value(&cfg).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "nestbox.example.toml drifted from the defaults in config.rs"
        );
    }
}
