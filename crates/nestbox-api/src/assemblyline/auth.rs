//! Authentication (spec §2): API-key headers, login sessions with XSRF, API keys, whoami.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nestbox_core::users::{self, NewToken, TokenKind};
use nestbox_core::{Auth, User};
use serde_json::{Map, Value, json};

use super::{AlError, AlState, Result, St, ok, privilege_roles, quota, user_roles};

/// A login session (Assemblyline keeps `{ip, roles_limit, user_agent, username,
/// xsrf_token}` in Redis).
#[derive(Debug, Clone)]
pub struct Session {
    user_id: i64,
    roles_limit: Option<Vec<String>>,
    xsrf: String,
    expires: Instant,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// Effective roles (the user's, limited by the key's).
    pub roles: BTreeSet<String>,
    /// The request path (for `Access Denied (<path>)`).
    pub path: String,
}

impl Caller {
    /// 403 unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[&str]) -> Result<()> {
        if roles.iter().any(|r| self.roles.contains(*r)) {
            return Ok(());
        }
        Err(AlError::Forbidden(
            self.path.clone(),
            format!(
                "API {} requires one of the following roles: {}",
                self.path,
                roles.join(", ")
            ),
        ))
    }

    /// Whether the caller administers everything.
    pub fn is_admin(&self) -> bool {
        self.roles.contains("administration")
    }
}

use crate::common::cookie::get as cookie;

/// `<name>:<secret>` → the user when the key is live, belongs to `username`, and the user
/// is active; `Err` carries Assemblyline's 401 message.
async fn check_apikey(
    auth: &Auth,
    username: &str,
    apikey: &str,
) -> Result<Result<(User, BTreeSet<String>), &'static str>> {
    const INVALID: &str = "Invalid user or APIKey";
    let Some((name, secret)) = apikey.split_once(':') else {
        return Ok(Err(INVALID));
    };
    let Some(user) = auth.repo().user_by_name(username).await? else {
        return Ok(Err(INVALID));
    };
    let hash = users::hash_secret(secret);
    let Some(token) = auth.repo().token_by_hash(TokenKind::ApiKey, &hash).await? else {
        return Ok(Err(INVALID));
    };
    if token.user_id != user.id
        || !users::constant_time_eq(token.name.as_bytes(), name.as_bytes())
        || !users::constant_time_eq(token.secret_hash.as_bytes(), hash.as_bytes())
    {
        return Ok(Err(INVALID));
    }
    if !user.is_active {
        return Ok(Err("This owner of this API Key is not active."));
    }
    let roles: BTreeSet<String> = privilege_roles(&token.privileges)
        .intersection(&user_roles(&user))
        .cloned()
        .collect();
    Ok(Ok((user, roles)))
}

/// The `api_login` decorator: headers first, then the session cookie.
pub async fn authenticate(State(st): St, mut req: Request, next: Next) -> Response {
    let (method, uri, headers) = (
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
    );
    let c = match caller(&st, &method, &uri, &headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let settings = &st.ctx.assemblyline;
    if !settings.enforce_quota {
        req.extensions_mut().insert(c);
        return next.run(req).await;
    }
    let q = settings.quotas_of(&c.user.username);
    let guard = match quota::begin_call(&st.ctx.al_repo, c.user.id, q.concurrent_api_calls).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let Some(guard) = guard else {
        return AlError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "You've exceeded your maximum concurrent API calls quota of {}",
                q.concurrent_api_calls
            ),
        )
        .into_response();
    };
    let mut remaining = None;
    if q.daily_api_calls != 0 && quota::counts_toward_quota(&c.path) {
        match quota::count_call(st.ctx.al_repo.as_ref(), c.user.id, q.daily_api_calls).await {
            Ok(n) => remaining = Some(n),
            Err(e) => return e.into_response(),
        }
    }
    req.extensions_mut().insert(c);
    let mut resp = next.run(req).await;
    drop(guard);
    if let Some(n) = remaining {
        resp.headers_mut()
            .insert("x-remaining-quota-api", HeaderValue::from(n));
    }
    resp
}

async fn caller(
    st: &AlState,
    method: &Method,
    uri: &axum::http::Uri,
    h: &HeaderMap,
) -> Result<Caller> {
    let path = format!("/api{}", uri.path().trim_start_matches("/api"));
    let hv = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    if let (Some(u), Some(k)) = (hv("x-user"), hv("x-apikey")) {
        return match check_apikey(&st.ctx.auth, u, k).await? {
            Ok((user, roles)) => Ok(Caller { user, roles, path }),
            Err(msg) => Err(AlError::Unauthorized(msg.into())),
        };
    }
    let Some(sid) = cookie(h, "session") else {
        return Err(AlError::Unauthorized("Session not found".into()));
    };
    let session = {
        let mut map = st.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.get(sid).cloned()
    };
    let Some(session) = session else {
        return Err(AlError::Unauthorized("Session expired".into()));
    };
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if session.roles_limit.is_none() && unsafe_method {
        let query_token = uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "XSRF_TOKEN")
                .map(|(_, v)| v.into_owned())
        });
        let sent = hv("x-xsrf-token").map(str::to_owned).or(query_token);
        if !sent.is_some_and(|t| users::constant_time_eq(t.as_bytes(), session.xsrf.as_bytes())) {
            return Err(AlError::Forbidden(path, "Invalid XSRF token".into()));
        }
    }
    let user = match st.ctx.auth.repo().user(session.user_id).await? {
        Some(u) if u.is_active => u,
        _ => return Err(AlError::Unauthorized("Session expired".into())),
    };
    let mut roles = user_roles(&user);
    if let Some(limit) = &session.roles_limit {
        roles.retain(|r| limit.contains(r));
    }
    Ok(Caller { user, roles, path })
}

/// `POST|GET /api/v4/auth/login/`: JSON body, or form values.
pub async fn login(State(st): St, req: Request) -> Result<Response> {
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| AlError::bad("No data block provided or data block not in JSON format.'"))?;
    let data: Map<String, Value> = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        _ => url::form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    };
    let s = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let auth = &st.ctx.auth;
    let (user, roles_limit) = match (s("user"), s("apikey"), s("password")) {
        (Some(u), Some(k), _) => match check_apikey(auth, u, k).await? {
            Ok((user, roles)) => (user, Some(roles.into_iter().collect::<Vec<_>>())),
            Err(msg) => return Err(AlError::Unauthorized(msg.into())),
        },
        (Some(u), None, Some(p)) => match auth.login(u, p).await? {
            Some(user) => (user, None),
            None => return Err(AlError::Unauthorized("Wrong username or password".into())),
        },
        _ => {
            return Err(AlError::Unauthorized(
                "Not enough information to proceed with authentication".into(),
            ));
        }
    };
    let duration = st.ctx.assemblyline.session_duration;
    let id = hex::encode(users::random_bytes(32));
    let xsrf = hex::encode(users::random_bytes(16));
    st.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            id.clone(),
            Session {
                user_id: user.id,
                roles_limit: roles_limit.clone(),
                xsrf: xsrf.clone(),
                expires: Instant::now() + Duration::from_secs(duration),
            },
        );
    let mut r = ok(json!({
        "username": user.username,
        "roles_limit": roles_limit,
        "session_duration": duration,
    }));
    // Never `Secure`: requests drops Secure cookies on plain HTTP and the client loops.
    for c in [
        format!("session={id}; HttpOnly; Path=/; SameSite=Lax"),
        format!("XSRF-TOKEN={xsrf}; Path=/; SameSite=Lax"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

/// `GET /api/v4/auth/logout/`.
pub async fn logout(State(st): St, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, "session") {
        st.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
    let mut r = ok(json!({"success": true}));
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("session=; Max-Age=0; Path=/"),
    );
    r
}

/// `GET /api/v4/user/whoami/`.
pub async fn whoami(State(st): St, Extension(c): Extension<Caller>) -> Response {
    let s = &st.ctx.assemblyline;
    let q = s.quotas_of(&c.user.username);
    let (api_left, sub_left) = match quota::remaining(st.ctx.al_repo.as_ref(), c.user.id, &q).await
    {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut types = vec!["user"];
    if c.is_admin() {
        types = vec!["admin"];
    }
    let mut r = ok(json!({
        "username": c.user.username,
        "name": c.user.username,
        "email": "",
        "groups": [],
        "roles": c.roles,
        "type": types,
        "classification": "TLP:C",
        "is_active": c.user.is_active,
        "is_admin": c.is_admin(),
        "agrees_with_tos": true,
        "avatar": null,
        "c12nDef": {},
        "classification_aliases": {},
        "configuration": {
            "auth": {"allow_apikeys": true, "allow_extended_apikeys": true, "apikey_max_dtl": null},
            "submission": {
                "dtl": s.dtl, "max_dtl": s.max_dtl, "max_file_size": s.max_file_size,
                "verdicts": {"info": 0, "suspicious": 300, "highly_suspicious": 700, "malicious": 1000},
                "profiles": {}, "metadata": {}, "file_sources": {},
            },
            "system": {"version": "4.6", "organisation": "nestbox", "type": "production"},
            "ui": {"allow_raw_downloads": s.allow_raw_download, "download_encoding": "cart",
                   "enforce_quota": s.enforce_quota},
        },
        "indexes": {},
        "settings": {"download_encoding": "cart", "default_zip_password": "infected"},
        "api_quota": q.concurrent_api_calls,
        "api_daily_quota": q.daily_api_calls,
        "submission_quota": q.concurrent_submissions,
        "submission_async_quota": q.concurrent_async_submissions,
        "submission_daily_quota": q.daily_submissions,
    }));
    // As upstream, whoami puts both remaining daily quotas in the headers (the UI reads them).
    if s.enforce_quota {
        if q.daily_api_calls != 0 {
            r.headers_mut()
                .insert("x-remaining-quota-api", HeaderValue::from(api_left));
        }
        if q.daily_submissions != 0 {
            r.headers_mut()
                .insert("x-remaining-quota-submission", HeaderValue::from(sub_left));
        }
    }
    r
}

/// `GET /api/v4/user/quotas/<user>/`: the remaining daily API calls and submissions.
pub async fn quotas(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(user): Path<String>,
) -> Result<Response> {
    let user_id = if user == c.user.username {
        c.user.id
    } else {
        if !c.is_admin() {
            return Err(AlError::Forbidden(
                c.path.clone(),
                "You are not allowed to view settings for another user then yourself.".into(),
            ));
        }
        match st.ctx.auth.repo().user_by_name(&user).await? {
            Some(u) => u.id,
            None => {
                return Err(AlError::WithBody(
                    axum::http::StatusCode::NOT_FOUND,
                    format!("User {user} does not exists"),
                    json!({}),
                ));
            }
        }
    };
    let q = st.ctx.assemblyline.quotas_of(&user);
    let (api, submission) = quota::remaining(st.ctx.al_repo.as_ref(), user_id, &q).await?;
    Ok(ok(
        json!({"daily_api": api, "daily_submission": submission}),
    ))
}

const KEY_NAME_FORBIDDEN: &str = "+@!#$%^&*()<>?/\\|}{~:";

/// Validates an API key name and privilege list; returns the stored privilege string.
pub fn validate_key(name: &str, privs: &[String], roles: &[String]) -> Result<String, String> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| KEY_NAME_FORBIDDEN.contains(c)) {
        return Err(format!("Invalid API key name: {name:?}"));
    }
    let mut p: Vec<char> = privs.iter().flat_map(|s| s.chars()).collect();
    p.sort_unstable();
    p.dedup();
    let joined: String = p.iter().collect();
    match joined.as_str() {
        "R" | "W" | "RW" | "E" | "ER" | "ERW" | "EW" => Ok(joined),
        "C" => {
            if roles.is_empty() || roles.iter().any(|r| r.contains(',') || r.is_empty()) {
                return Err("Custom API keys need a list of roles".into());
            }
            Ok(format!("C:{}", roles.join(",")))
        }
        _ => Err(format!("Invalid privileges: {joined}")),
    }
}

/// Creates an API key for a user; returns `<name>:<secret>`.
pub async fn create_apikey(
    auth: &Auth,
    user: &User,
    name: &str,
    privileges: &str,
) -> nestbox_core::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let secret: String = users::random_bytes(48)
        .into_iter()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect();
    auth.repo()
        .add_token(&NewToken {
            user_id: user.id,
            kind: TokenKind::ApiKey,
            name: name.to_owned(),
            secret_hash: users::hash_secret(&secret),
            privileges: privileges.to_owned(),
        })
        .await?;
    Ok(format!("{name}:{secret}"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `PUT /api/v4/apikey/add/` `{priv, key_name, roles?, expiry_ts?}` → `{keypassword}`.
pub async fn apikey_add(
    State(st): St,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response> {
    c.require(&["apikey_access"])?;
    let Ok(Value::Object(data)) = serde_json::from_slice::<Value>(&body) else {
        return Err(AlError::bad(
            "No data block provided or data block not in JSON format.'",
        ));
    };
    let name = data.get("key_name").and_then(Value::as_str).unwrap_or("");
    let privs = validate_key(
        name,
        &strings(data.get("priv")),
        &strings(data.get("roles")),
    )
    .map_err(AlError::bad)?;
    let live = st.ctx.auth.repo().tokens(c.user.id).await?;
    if live
        .iter()
        .any(|t| t.kind == TokenKind::ApiKey && t.revoked_on.is_none() && t.name == name)
    {
        return Err(AlError::bad(format!("APIKey '{name}' already exist")));
    }
    let key = create_apikey(&st.ctx.auth, &c.user, name, &privs).await?;
    Ok(ok(
        json!({"acl": privs.chars().filter(|c| c.is_ascii_uppercase()).map(String::from).collect::<Vec<_>>(), "keypassword": key}),
    ))
}

fn key_json(user: &User, t: &nestbox_core::Token) -> Value {
    let (acl, roles): (Vec<String>, Vec<String>) = match t.privileges.strip_prefix("C:") {
        Some(r) => (vec!["C".into()], r.split(',').map(str::to_owned).collect()),
        None => (
            t.privileges.chars().map(String::from).collect(),
            privilege_roles(&t.privileges).into_iter().collect(),
        ),
    };
    json!({
        "id": format!("{}+{}", t.name, user.username),
        "key_name": t.name,
        "uname": user.username,
        "acl": acl,
        "roles": roles,
        "creation_date": super::iso(t.created_on),
        "expiry_ts": null,
        "last_used": null,
    })
}

/// `GET /api/v4/apikey/list/`: the caller's live keys.
pub async fn apikey_list(State(st): St, Extension(c): Extension<Caller>) -> Result<Response> {
    let keys: Vec<Value> = st
        .ctx
        .auth
        .repo()
        .tokens(c.user.id)
        .await?
        .iter()
        .filter(|t| t.kind == TokenKind::ApiKey && t.revoked_on.is_none())
        .map(|t| key_json(&c.user, t))
        .collect();
    Ok(ok(
        json!({"items": keys, "total": keys.len(), "offset": 0, "rows": keys.len()}),
    ))
}

/// `<name>+<uname>` (or a bare name: the caller's) → (user, name), if the caller may.
async fn key_owner(st: &AlState, c: &Caller, key_id: &str) -> Result<(User, String)> {
    let (name, uname) = key_id
        .rsplit_once('+')
        .unwrap_or((key_id, &c.user.username));
    if uname != c.user.username && !c.is_admin() {
        return Err(AlError::Forbidden(
            c.path.clone(),
            "You are not allowed to manage this API key".into(),
        ));
    }
    let user = st
        .ctx
        .auth
        .repo()
        .user_by_name(uname)
        .await?
        .ok_or_else(|| AlError::not_found(format!("API Key ID {key_id} does not exist.")))?;
    Ok((user, name.to_owned()))
}

/// `GET /api/v4/apikey/<key_id>/`.
pub async fn apikey_get(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<Response> {
    let (user, name) = key_owner(&st, &c, &key_id).await?;
    let tokens = st.ctx.auth.repo().tokens(user.id).await?;
    let t = tokens
        .iter()
        .find(|t| t.kind == TokenKind::ApiKey && t.revoked_on.is_none() && t.name == name)
        .ok_or_else(|| AlError::not_found(format!("API Key ID {key_id} does not exist.")))?;
    Ok(ok(key_json(&user, t)))
}

/// `DELETE /api/v4/apikey/<key_id>/`: revokes the key.
pub async fn apikey_delete(
    State(st): St,
    Extension(c): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<Response> {
    let (user, name) = key_owner(&st, &c, &key_id).await?;
    if !st.ctx.al_repo.revoke_apikey(user.id, &name).await? {
        return Err(AlError::not_found(format!(
            "API Key ID {key_id} does not exist."
        )));
    }
    Ok(ok(json!({"success": true})))
}
