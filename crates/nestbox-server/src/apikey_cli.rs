//! `nestbox apikey …`: Assemblyline API keys (`<name>:<secret>`) of a user.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use nestbox_core::users::{Auth, TokenKind};

use crate::config::Config;

/// `nestbox apikey …`
#[derive(Subcommand)]
pub enum ApikeyCmd {
    /// Create a key and print `<name>:<secret>` once (only its hash is stored).
    Add {
        /// Owner's login name.
        username: String,
        /// Key name (no `+@!#$%^&*()<>?/\|}{~:`).
        name: String,
        /// Privileges: R, W, RW, E (extended), or C with --roles.
        #[arg(long = "priv", default_value = "RW")]
        privileges: String,
        /// Roles of a custom (C) key, comma-separated.
        #[arg(long, default_value = "")]
        roles: String,
    },
    /// List a user's live keys.
    List {
        /// Login name.
        username: String,
    },
    /// Revoke a key by name.
    Revoke {
        /// Login name.
        username: String,
        /// Key name.
        name: String,
    },
}

/// Runs an `apikey` command.
pub fn apikey(cmd: ApikeyCmd, config: Option<&Path>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let cfg = Config::load(config)?;
        let stores = crate::cluster_config::open_stores(&cfg).await?;
        let auth = Auth::new(
            stores.users.clone(),
            crate::users_cli::server_secret(&cfg.data_dir)?,
        );
        let user_named = |name: String| {
            let auth = auth.clone();
            async move {
                auth.repo()
                    .user_by_name(&name)
                    .await?
                    .with_context(|| format!("no user named {name:?}"))
            }
        };
        match cmd {
            ApikeyCmd::Add {
                username,
                name,
                privileges,
                roles,
            } => {
                let user = user_named(username).await?;
                let privs: Vec<String> = privileges.chars().map(String::from).collect();
                let roles: Vec<String> = roles
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
                let stored = nestbox_api::assemblyline::validate_key(&name, &privs, &roles)
                    .map_err(anyhow::Error::msg)?;
                let live = auth.repo().tokens(user.id).await?;
                if live.iter().any(|t| {
                    t.kind == TokenKind::ApiKey && t.revoked_on.is_none() && t.name == name
                }) {
                    bail!("{} already has a key named {name:?}", user.username);
                }
                let key =
                    nestbox_api::assemblyline::create_apikey(&auth, &user, &name, &stored).await?;
                println!("{key}");
            }
            ApikeyCmd::List { username } => {
                let user = user_named(username).await?;
                println!("name\tprivileges\tcreated");
                for t in auth.repo().tokens(user.id).await? {
                    if t.kind == TokenKind::ApiKey && t.revoked_on.is_none() {
                        println!("{}\t{}\t{}", t.name, t.privileges, t.created_on.secs());
                    }
                }
            }
            ApikeyCmd::Revoke { username, name } => {
                let user = user_named(username).await?;
                if !stores.al.revoke_apikey(user.id, &name).await? {
                    bail!("{} has no live key named {name:?}", user.username);
                }
                println!("revoked {name}");
            }
        }
        Ok(())
    })
}
