//! Users and their credentials: one table of users for every dialect, one table of
//! credentials ("tokens") with a `kind` per dialect.
//!
//! # Schema and meaning
//!
//! * A [`User`] is a person or a machine client: a unique `username`, an optional argon2
//!   password hash (PHC string), `is_staff` (CAPE's staff: never throttled, may delete),
//!   `is_active` (a disabled user's credentials all stop working), `subscription` (CAPE's
//!   `UserProfile.subscription` rate, `"5/m"` by default, empty = unlimited), `roles`
//!   (a free list for dialects that have roles, e.g. Assemblyline) and `token_generation`.
//! * A [`Token`] is one credential of a user, of a [`TokenKind`]. Only a SHA-256 of the
//!   secret is stored (secrets are random or derived with ≥160 bits, so a fast hash is
//!   enough; passwords, which are not, use argon2). `name` and `privileges` are for kinds
//!   that have them (Assemblyline API keys `name:secret` with `R`/`W`/`E` privileges);
//!   CAPE tokens leave them empty.
//!
//! # CAPE's legacy token
//!
//! DRF's `Token` is one stable 40-hex key per user: `api-token-auth` returns the same key on
//! every call. We never store it: it is derived as
//! `hex(HMAC-SHA256(server secret, "cape-token" ‖ user id ‖ token generation))[..40]`, and
//! its SHA-256 is stored as a [`TokenKind::Cape`] row so a request is authenticated with
//! one indexed lookup. `token revoke` revokes the row and bumps the user's generation, so
//! the next derived key differs. The server secret is 32 random bytes generated once into
//! the data directory (mode 0600) by the composition root.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use async_trait::async_trait;
use hmac::{KeyInit, Mac};
use nestbox_types::{TaskId, Timestamp};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id (CAPE's `user_id` on tasks; 0 is never a user: it means anonymous).
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// argon2 PHC string; `None` = no password login.
    pub password_hash: Option<String>,
    /// CAPE staff: unthrottled, may delete with the switch off.
    pub is_staff: bool,
    /// Disabled users cannot authenticate.
    pub is_active: bool,
    /// Throttle rate `N/<s|m|h|d>`; empty = unlimited.
    pub subscription: String,
    /// Roles for dialects that have them.
    pub roles: Vec<String>,
    /// Bumped by `token revoke`; input of the derived CAPE token.
    pub token_generation: i64,
    /// Creation time.
    pub created_on: Timestamp,
}

/// What [`UserRepo::add_user`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// argon2 PHC string (see [`hash_password`]).
    pub password_hash: Option<String>,
    /// Staff flag.
    pub is_staff: bool,
    /// Throttle rate; CAPE's default is `5/m`.
    pub subscription: String,
    /// Roles.
    pub roles: Vec<String>,
}

/// The dialect a credential belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// CAPE's DRF token (`Authorization: Token <40 hex>`), derived, one live per user.
    Cape,
    /// An Assemblyline API key (`name:secret`), several per user (reserved).
    ApiKey,
}

impl TokenKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Cape => "cape",
            TokenKind::ApiKey => "apikey",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cape" => Some(TokenKind::Cape),
            "apikey" => Some(TokenKind::ApiKey),
            _ => None,
        }
    }
}

/// A stored credential (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Dialect.
    pub kind: TokenKind,
    /// Key name (Assemblyline); empty for CAPE.
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Privilege letters (Assemblyline `R`, `W`, `E`); empty for CAPE.
    pub privileges: String,
    /// Creation time.
    pub created_on: Timestamp,
    /// When it was revoked; revoked tokens never authenticate.
    pub revoked_on: Option<Timestamp>,
}

/// What [`UserRepo::add_token`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Owner.
    pub user_id: i64,
    /// Dialect.
    pub kind: TokenKind,
    /// Key name.
    pub name: String,
    /// Hex SHA-256 of the secret ([`hash_secret`]).
    pub secret_hash: String,
    /// Privilege letters.
    pub privileges: String,
}

/// The user store.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Adds a user; [`Error::Invalid`] if the name is taken.
    async fn add_user(&self, user: &NewUser) -> Result<User>;
    /// A user by id.
    async fn user(&self, id: i64) -> Result<Option<User>>;
    /// A user by name.
    async fn user_by_name(&self, username: &str) -> Result<Option<User>>;
    /// Every user, by id.
    async fn users(&self) -> Result<Vec<User>>;
    /// Number of users.
    async fn user_count(&self) -> Result<i64>;
    /// Enables or disables a user; `false` if there is no such user.
    async fn set_active(&self, id: i64, active: bool) -> Result<bool>;
    /// Replaces a user's password hash.
    async fn set_password(&self, id: i64, password_hash: Option<&str>) -> Result<bool>;
    /// Adds a credential unless one with the same `secret_hash` exists; returns its id.
    async fn add_token(&self, token: &NewToken) -> Result<i64>;
    /// A live (not revoked) credential by kind and hash, with its user.
    async fn token_by_hash(&self, kind: TokenKind, secret_hash: &str) -> Result<Option<Token>>;
    /// The user of a live credential, in one lookup (the per-request check of CAPE
    /// tokens); `None` if there is no live credential with that hash.
    async fn user_by_token(&self, kind: TokenKind, secret_hash: &str) -> Result<Option<User>>;
    /// A user's credentials, revoked ones included, by id.
    async fn tokens(&self, user_id: i64) -> Result<Vec<Token>>;
    /// Revokes every live credential of a kind of a user and bumps the user's token
    /// generation (in one transaction); returns how many were revoked.
    async fn revoke_tokens(&self, user_id: i64, kind: TokenKind) -> Result<u64>;
    /// Records which user created a task (CAPE `user_id`; no row = 0, anonymous).
    async fn set_task_user(&self, task: TaskId, user_id: i64) -> Result<()>;
    /// The user that created a task, 0 when anonymous or unknown.
    async fn task_user(&self, task: TaskId) -> Result<i64>;
}

/// Hashes a password with argon2id (default parameters, random salt).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("password hashing failed: {e}")))
}

/// Checks a password against a PHC hash (argon2's comparison is constant-time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Hex SHA-256 of a token secret: what is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    b
}

/// A random password for a generated first admin: 24 characters from an unambiguous
/// alphabet (≈ 140 bits).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes(24)
        .into_iter()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The credential service: derives, issues and checks tokens over a [`UserRepo`].
#[derive(Clone)]
pub struct Auth {
    repo: std::sync::Arc<dyn UserRepo>,
    secret: std::sync::Arc<[u8]>,
}

/// Why a CAPE token did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No live token with that value.
    InvalidToken,
    /// The token's user is disabled or gone.
    UserInactive,
}

impl Auth {
    /// Over a user store, with the server secret (≥ 32 random bytes).
    pub fn new(repo: std::sync::Arc<dyn UserRepo>, secret: Vec<u8>) -> Self {
        Auth {
            repo,
            secret: secret.into(),
        }
    }

    /// The user store.
    pub fn repo(&self) -> &dyn UserRepo {
        &*self.repo
    }

    /// The CAPE key of a user at its current generation (see the module docs).
    pub fn derive_cape_token(&self, user: &User) -> String {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(b"cape-token\0");
        mac.update(&user.id.to_be_bytes());
        mac.update(&user.token_generation.to_be_bytes());
        let out = mac.finalize().into_bytes();
        hex::encode(&out[..20])
    }

    /// CAPE's `Token.objects.get_or_create(user)`: the user's stable key, its hash stored.
    pub async fn cape_token(&self, user: &User) -> Result<String> {
        let key = self.derive_cape_token(user);
        self.repo
            .add_token(&NewToken {
                user_id: user.id,
                kind: TokenKind::Cape,
                name: String::new(),
                secret_hash: hash_secret(&key),
                privileges: String::new(),
            })
            .await?;
        Ok(key)
    }

    /// `username` + `password` → the user, when the password matches and the user is
    /// active (DRF's `authenticate`). Unknown users still cost one hash, so timing does
    /// not tell which names exist.
    pub async fn login(&self, username: &str, password: &str) -> Result<Option<User>> {
        let user = self.repo.user_by_name(username).await?;
        let Some(user) = user else {
            let _ = verify_password(password, DUMMY_HASH);
            return Ok(None);
        };
        let Some(hash) = user.password_hash.clone() else {
            return Ok(None);
        };
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        Ok((ok && user.is_active).then_some(user))
    }

    /// Authenticates a CAPE key.
    pub async fn check_cape_token(&self, key: &str) -> Result<Result<User, AuthFailure>> {
        // The key is looked up by its SHA-256, so the comparison happens on hashes in the
        // index, never on the secret; token and user come back in one query.
        let hash = hash_secret(key);
        match self.repo.user_by_token(TokenKind::Cape, &hash).await? {
            None => Ok(Err(AuthFailure::InvalidToken)),
            Some(u) if u.is_active => Ok(Ok(u)),
            Some(_) => Ok(Err(AuthFailure::UserInactive)),
        }
    }
}

/// An argon2 hash of a random string, verified against for unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yk0mO4Rt3j3cHBdUv0aRZQvBvhc0cCzcvuTZAq7bIXg";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret ", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", DUMMY_HASH));
    }

    #[test]
    fn secrets_and_random() {
        assert_eq!(hash_secret("abc").len(), 64);
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        let p = random_password();
        assert_eq!(p.len(), 24);
        assert_ne!(p, random_password());
    }
}
