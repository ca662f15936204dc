//! Logins and CSRF protection, without server-side session storage.
//!
//! * **Session cookie** `nestbox_session` = `uid.expiry.generation.mac`, where `mac` is an
//!   HMAC-SHA256 (key derived from the server secret) over the rest. It names the same users
//!   as the APIs; a disabled user, an expired cookie or a `token revoke` (which bumps the
//!   user's token generation) ends the session.
//! * **CSRF**: every browser gets a random `nestbox_csrf` cookie (HttpOnly, SameSite=Strict);
//!   forms carry `csrf_token` = HMAC(key, cookie). A cross-site form cannot read the cookie,
//!   so it cannot produce the token. Checked on every POST, logged in or not.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{KeyInit, Mac};
use nestbox_api::common::cookie::get as cookie;
use nestbox_core::User;
use nestbox_core::users::{constant_time_eq, random_bytes};
use nestbox_types::Timestamp;
use sha2::Sha256;

use super::Web;

const SESSION: &str = "nestbox_session";
const CSRF: &str = "nestbox_csrf";

type HmacSha256 = hmac::Hmac<Sha256>;

pub(crate) fn derive_key(secret: &[u8]) -> Vec<u8> {
    mac(secret, b"nestbox web ui keys v1")
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Who is asking, resolved once per request by [`layer`].
#[derive(Clone)]
pub(crate) struct Session {
    pub user: Option<User>,
    /// The browser's CSRF cookie value.
    pub csrf_cookie: String,
}

impl Session {
    /// The token forms must echo.
    pub fn csrf_token(&self, web: &Web) -> String {
        hex::encode(&mac(&web.key, format!("csrf:{}", self.csrf_cookie).as_bytes())[..16])
    }

    /// Whether a submitted token is this browser's.
    pub fn csrf_ok(&self, web: &Web, token: Option<&str>) -> bool {
        let want = self.csrf_token(web);
        token.is_some_and(|t| constant_time_eq(t.as_bytes(), want.as_bytes()))
    }

    /// [`Session::csrf_ok`] as a page error (403) for handlers.
    pub fn require_csrf(&self, web: &Web, token: Option<&str>) -> Result<(), super::PageError> {
        if self.csrf_ok(web, token) {
            Ok(())
        } else {
            Err(super::PageError(
                StatusCode::FORBIDDEN,
                "The form expired or came from another site; reload the page and try again.".into(),
            ))
        }
    }

    /// What every page shows in its header (see base.html.j2), to merge into its context.
    pub fn page(&self, web: &Web, page: &str) -> minijinja::Value {
        minijinja::context! {
            page => page,
            version => &web.settings.version,
            auth => web.settings.auth,
            user => self.username(),
            csrf => self.csrf_token(web),
        }
    }

    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }
}

pub(crate) fn set_cookie(
    web: &Web,
    name: &str,
    value: &str,
    max_age: Option<u64>,
    strict: bool,
) -> HeaderValue {
    let mut c = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={}",
        if strict { "Strict" } else { "Lax" }
    );
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if web.settings.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session cookie value for a user.
pub(crate) fn session_cookie(web: &Web, user: &User) -> HeaderValue {
    let age = web.settings.session_hours.max(1) * 3600;
    let exp = Timestamp::now().secs() + age as i64;
    let body = format!("{}.{}.{}", user.id, exp, user.token_generation);
    let sig = hex::encode(mac(&web.key, format!("session:{body}").as_bytes()));
    set_cookie(web, SESSION, &format!("{body}.{sig}"), Some(age), false)
}

pub(crate) fn clear_session(web: &Web) -> HeaderValue {
    set_cookie(web, SESSION, "", Some(0), false)
}

async fn session_user(web: &Web, value: &str) -> Option<User> {
    let (body, sig) = value.rsplit_once('.')?;
    let want = hex::encode(mac(&web.key, format!("session:{body}").as_bytes()));
    if !constant_time_eq(sig.as_bytes(), want.as_bytes()) {
        return None;
    }
    let mut it = body.split('.');
    let uid: i64 = it.next()?.parse().ok()?;
    let exp: i64 = it.next()?.parse().ok()?;
    let generation: i64 = it.next()?.parse().ok()?;
    if exp < Timestamp::now().secs() {
        return None;
    }
    let user = web.api.auth.repo().user(uid).await.ok()??;
    (user.is_active && user.token_generation == generation).then_some(user)
}

/// Resolves the session (user and CSRF cookie) into the request, and gives a browser
/// without a CSRF cookie a fresh one.
pub(crate) async fn layer(State(web): State<Arc<Web>>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let user = match cookie(headers, SESSION) {
        Some(v) if web.settings.auth => session_user(&web, v).await,
        _ => None,
    };
    let existing = cookie(headers, CSRF)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let fresh = existing.is_none();
    let csrf_cookie = existing.unwrap_or_else(|| hex::encode(random_bytes(16)));
    req.extensions_mut().insert(Session {
        user,
        csrf_cookie: csrf_cookie.clone(),
    });
    let mut res = next.run(req).await;
    if fresh {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&web, CSRF, &csrf_cookie, None, true),
        );
    }
    res
}

/// A request allowed to see the UI: anyone when auth is off, a logged-in user when on.
/// Pages redirect to the login; JSON endpoints answer 401.
pub(crate) struct Viewer(pub Session);

impl FromRequestParts<Arc<Web>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Response> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        if !web.settings.auth || session.user.is_some() {
            return Ok(Viewer(session));
        }
        let path = parts.uri.path();
        if path.ends_with(".json") {
            return Err((StatusCode::UNAUTHORIZED, "login required").into_response());
        }
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        Err(Redirect::to(&format!("/login/?{q}")).into_response())
    }
}

/// A `next` parameter made safe: a local path only (no `//host`, no scheme).
pub(crate) fn local_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if ok { next.to_owned() } else { "/".to_owned() }
}
