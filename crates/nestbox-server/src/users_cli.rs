//! Users and tokens: the `nestbox user …` / `nestbox token …` commands, the server secret
//! and the first admin created at start-up.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use nestbox_core::users::{self, Auth, NewUser, TokenKind};

use crate::cape_config::CapeConfig;
use crate::config::Config;

/// `nestbox user …`
#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user. The password is read from --password-file, or from stdin (one line).
    Add {
        /// Login name.
        username: String,
        /// Staff: never throttled, may delete tasks with the switch off.
        #[arg(long)]
        staff: bool,
        /// Throttle rate (`5/m`, `100/h`); empty = unlimited. Default: `cape.default_subscription`.
        #[arg(long)]
        subscription: Option<String>,
        /// Read the password from this file instead of stdin.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Create the user without a password (token-only).
        #[arg(long, conflicts_with = "password_file")]
        no_password: bool,
    },
    /// List users.
    List,
    /// Disable a user: every credential stops working.
    Disable {
        /// Login name.
        username: String,
    },
}

/// `nestbox token …`
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Print a user's CAPE token (the one `api-token-auth` returns).
    Create {
        /// Login name.
        username: String,
    },
    /// Revoke a user's CAPE token; the next one differs.
    Revoke {
        /// Login name.
        username: String,
    },
}

/// The HMAC key for derived tokens: 32 random bytes in `<data_dir>/server.secret`, created
/// once with mode 0600.
pub fn server_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("server.secret");
    match std::fs::read(&path) {
        Ok(b) if b.len() >= 32 => return Ok(b),
        Ok(_) => bail!("{} is shorter than 32 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = users::random_bytes(32);
    write_new_secret(&path, &secret)?;
    Ok(secret)
}

/// Creates `path` (which must not exist) with mode 0600 holding `secret`, synced.
pub fn write_new_secret(path: &Path, secret: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(secret)?;
    f.sync_all()?;
    Ok(())
}

/// Creates the first admin (staff) when there are no users: the configured password, or
/// a generated one printed once to stderr.
pub async fn bootstrap_admin(auth: &Auth, cape: &CapeConfig) -> anyhow::Result<()> {
    if auth.repo().user_count().await? > 0 {
        return Ok(());
    }
    let (password, generated) = if cape.admin_password.is_empty() {
        (users::random_password(), true)
    } else {
        (cape.admin_password.clone(), false)
    };
    let hash =
        tokio::task::spawn_blocking(move || users::hash_password(&password).map(|h| (h, password)))
            .await??;
    auth.repo()
        .add_user(&NewUser {
            username: cape.admin_username.clone(),
            password_hash: Some(hash.0),
            is_staff: true,
            subscription: String::new(),
            roles: vec!["admin".into()],
        })
        .await?;
    if generated {
        eprintln!(
            "*** first admin user {:?} created with password {}  (shown once; set cape.admin_password_file to choose it)",
            cape.admin_username, hash.1
        );
    } else {
        tracing::info!(user = %cape.admin_username, "created the first admin user");
    }
    Ok(())
}

async fn open(config: Option<&Path>) -> anyhow::Result<(Config, Auth)> {
    let cfg = Config::load(config)?;
    let repo = crate::cluster_config::open_stores(&cfg).await?.users;
    let secret = server_secret(&cfg.data_dir)?;
    Ok((cfg, Auth::new(repo, secret)))
}

async fn user_named(auth: &Auth, name: &str) -> anyhow::Result<users::User> {
    auth.repo()
        .user_by_name(name)
        .await?
        .with_context(|| format!("no user named {name:?}"))
}

fn read_password(file: Option<&Path>) -> anyhow::Result<String> {
    let text = match file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    let pw = text.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        bail!("empty password (use --no-password for a token-only user)");
    }
    Ok(pw)
}

/// Runs a `user` command.
pub fn user(cmd: UserCmd, config: Option<&Path>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (cfg, auth) = open(config).await?;
        match cmd {
            UserCmd::Add {
                username,
                staff,
                subscription,
                password_file,
                no_password,
            } => {
                let subscription = subscription.unwrap_or(cfg.cape.default_subscription.clone());
                if !subscription.is_empty()
                    && nestbox_api::cape::parse_rate(&subscription).is_none()
                {
                    bail!("subscription {subscription:?} is not a rate like 5/m");
                }
                let hash = if no_password {
                    None
                } else {
                    Some(users::hash_password(&read_password(
                        password_file.as_deref(),
                    )?)?)
                };
                let u = auth
                    .repo()
                    .add_user(&NewUser {
                        username,
                        password_hash: hash,
                        is_staff: staff,
                        subscription,
                        roles: Vec::new(),
                    })
                    .await?;
                println!("{}\t{}", u.id, u.username);
            }
            UserCmd::List => {
                println!("id\tusername\tstaff\tactive\tsubscription");
                for u in auth.repo().users().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.id, u.username, u.is_staff, u.is_active, u.subscription
                    );
                }
            }
            UserCmd::Disable { username } => {
                let u = user_named(&auth, &username).await?;
                auth.repo().set_active(u.id, false).await?;
                println!("disabled {username}");
            }
        }
        Ok(())
    })
}

/// Runs a `token` command.
pub fn token(cmd: TokenCmd, config: Option<&Path>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (_cfg, auth) = open(config).await?;
        match cmd {
            TokenCmd::Create { username } => {
                let u = user_named(&auth, &username).await?;
                println!("{}", auth.cape_token(&u).await?);
            }
            TokenCmd::Revoke { username } => {
                let u = user_named(&auth, &username).await?;
                let n = auth.repo().revoke_tokens(u.id, TokenKind::Cape).await?;
                println!("revoked {n} token(s) of {username}");
            }
        }
        Ok(())
    })
}
