//! A small cache of rendered response bodies, valid for one store data version.
//!
//! Listing and viewing tasks are the hot read paths of every dialect (clients poll them),
//! and their answers change only when the store does. An entry is the body rendered at a
//! given [`TaskRepo::data_version`](nestbox_core::ports::TaskRepo::data_version); any commit
//! by anyone moves the version and so invalidates every entry at once. When the store
//! cannot tell its version nothing is cached.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Entries kept before the cache starts over (bodies are a few KiB each).
const CAPACITY: usize = 512;

/// Rendered bodies by request key.
#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<String, (u64, Bytes)>>,
}

impl ResponseCache {
    /// The body cached for `key` at exactly `version`.
    pub fn get(&self, key: &str, version: u64) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    /// Caches a body rendered at `version`.
    pub fn put(&self, key: String, version: u64, body: Bytes) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY && !entries.contains_key(&key) {
                // Entries of older versions are dead anyway; dropping everything is the
                // cheapest bound and costs one re-render per live key.
                entries.clear();
            }
            entries.insert(key, (version, body));
        }
    }
}

/// Serves a body from the context's response cache when the store has not changed since
/// it was rendered; otherwise renders it (`None` = no such resource, never cached) and
/// caches it. Without a store version nothing is cached.
pub async fn cached<F, Fut, E>(
    ctx: &crate::ApiContext,
    key: String,
    render_body: F,
) -> Result<Option<Bytes>, E>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Bytes>, E>>,
    E: From<nestbox_core::Error>,
{
    // The version is read before the data, so a body is never filed under a newer version
    // than the data it shows.
    let version = ctx.core.repo.data_version().await?;
    if let Some(v) = version
        && let Some(body) = ctx.cache.get(&key, v)
    {
        return Ok(Some(body));
    }
    let Some(body) = render_body().await? else {
        return Ok(None);
    };
    if let Some(v) = version {
        ctx.cache.put(key, v, body.clone());
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_valid_for_one_version() {
        let c = ResponseCache::default();
        c.put("k".into(), 1, Bytes::from_static(b"a"));
        assert_eq!(c.get("k", 1).as_deref(), Some(&b"a"[..]));
        assert!(c.get("k", 2).is_none());
        assert!(c.get("other", 1).is_none());
        for i in 0..CAPACITY + 10 {
            c.put(format!("k{i}"), 1, Bytes::new());
        }
        assert!(c.entries.lock().unwrap().len() <= CAPACITY);
    }
}
