//! Reading request cookies (Assemblyline's session cookie, the web UI's session and CSRF).

use axum::http::{HeaderMap, header};

/// The value of cookie `name`, from any `Cookie` header of the request.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
