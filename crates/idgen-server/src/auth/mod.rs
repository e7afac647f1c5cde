//! API keys (`IDGEN_API_KEYS_FILE`): who is calling, what they may do, how much. Without the
//! setting the server is open, as before, and this module is not consulted.
//!
//! A key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. No key or an unknown
//! one: 401 `unauthorized` with `WWW-Authenticate: Bearer`; a key without the scope: 403
//! `forbidden` saying what it may not do. [`keys`] reads the file, [`scope`] says what a key
//! allows, [`limits`] counts its IDs. The file is re-read on SIGHUP ([`Auth::reload`]): a bad
//! file keeps the keys in use.

pub mod keys;
pub mod limits;
pub mod scope;
pub mod shared;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{self, HeaderMap};
use parking_lot::RwLock;

use idgen_core::Kind;
use idgen_core::counter::CounterName;

use crate::error::ApiError;
use crate::issue::{NewCounters, SharedClock};
use crate::state::AppState;
pub use keys::{Key, Keyring, new_key};
use limits::KeyLimits;
pub use shared::SharedKeyLimits;

/// Tells one [`Auth`] from another in a worker's copy of the keys (tests run many servers in
/// one process).
static AUTH_IDS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This worker's copy of the keys in use: a request takes no lock and touches no counter
    /// shared with the other workers (a read lock and an `Arc` per request bounced two cache
    /// lines between the cores on every keyed request).
    static LOCAL_KEYS: RefCell<Option<LocalKeys>> = const { RefCell::new(None) };
}

/// A worker's copy of one [`Auth`]'s keys, as of one generation of the file.
struct LocalKeys {
    auth: u64,
    generation: u64,
    by_hash: HashMap<[u8; 32], Rc<Key>>,
}

/// The keys in use and their limits.
pub struct Auth {
    id: u64,
    path: PathBuf,
    keyring: RwLock<Arc<Keyring>>,
    /// Bumped by every reload, after the keys are swapped: the workers' copies follow it.
    generation: AtomicU64,
    pub limits: KeyLimits,
    /// The limits every node shares (Redis mode); `limits` counts only new counter names then.
    shared: Option<SharedKeyLimits>,
}

impl Auth {
    /// The keys of `path`, or why they cannot be used (the line of the problem).
    /// With `shared`, the rates and quotas are the store's, for every node.
    pub fn load(
        path: PathBuf,
        clock: SharedClock,
        shared: Option<SharedKeyLimits>,
    ) -> Result<Auth, String> {
        let keyring = Keyring::load(&path)?;
        let limits = KeyLimits::new(clock);
        let id = AUTH_IDS.fetch_add(1, Ordering::Relaxed);
        let (keyring, generation) = (RwLock::new(Arc::new(keyring)), AtomicU64::new(0));
        Ok(Auth { id, path, keyring, generation, limits, shared })
    }

    /// Each key's name and the IDs issued with it, by name (for `/metrics`).
    pub fn usage(&self) -> Vec<(Arc<str>, u64)> {
        let keyring = Arc::clone(&self.keyring.read());
        let mut usage: Vec<(Arc<str>, u64)> =
            keyring.keys().map(|key| (Arc::clone(&key.name), key.usage.total())).collect();
        usage.sort();
        usage
    }

    /// How many keys are in use.
    pub fn len(&self) -> usize {
        self.keyring.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file; on a problem the keys in use stay, and the problem is returned.
    pub fn reload(&self) -> Result<usize, String> {
        let keyring = Keyring::reload(&self.path, &self.keyring.read())?;
        let count = keyring.len();
        *self.keyring.write() = Arc::new(keyring);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(count)
    }

    /// The key a request presents, or 401. A lookup by the secret's hash: the same work for
    /// every wrong key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Rc<Key>, ApiError> {
        let secret = presented(headers).ok_or(ApiError::Unauthorized)?;
        let hash = keys::sha256(secret.as_bytes());
        let generation = self.generation.load(Ordering::Acquire);
        LOCAL_KEYS.with_borrow_mut(|local| {
            let current =
                local.as_ref().is_some_and(|l| l.auth == self.id && l.generation == generation);
            if !current {
                let keyring = Arc::clone(&self.keyring.read());
                let by_hash = keyring
                    .by_hash()
                    .map(|(hash, key)| (*hash, Rc::new(Key::clone(key))))
                    .collect();
                *local = Some(LocalKeys { auth: self.id, generation, by_hash });
            }
            let keys = local.as_ref().map(|local| &local.by_hash);
            keys.and_then(|keys| keys.get(&hash)).cloned().ok_or(ApiError::Unauthorized)
        })
    }
}

/// The key an answer was made for, in the answer's extensions (the access log's `key`).
pub struct Caller(pub Rc<Key>);

/// What a key may do with the counters it creates: its cap on new names.
pub struct KeyCounters<'a> {
    limits: &'a KeyLimits,
    key: &'a Key,
}

impl NewCounters for KeyCounters<'_> {
    fn allow(&self) -> Result<(), ApiError> {
        self.limits.new_counter(self.key)
    }
    fn undo(&self) {
        self.limits.counter_not_created(self.key);
    }
}

/// Whether `key` may have `count` IDs of `kind` (for a counter: of the counter `name`), spending
/// them from its rate and daily quota; 403 without the scope, 429 over a limit.
pub async fn permit<'a>(
    state: &'a AppState,
    key: &'a Key,
    kind: Kind,
    name: &CounterName,
    count: u64,
) -> Result<KeyCounters<'a>, ApiError> {
    let auth = state.auth().expect("a caller means keys are configured");
    if !key.scopes.allows_kind(kind) {
        return Err(ApiError::Forbidden { what: format!("issue {kind} ids") });
    }
    if kind == Kind::Counter && !key.scopes.allows_counter(name.as_str()) {
        return Err(ApiError::Forbidden { what: format!("use the counter {}", name.as_str()) });
    }
    match &auth.shared {
        Some(shared) => shared.spend(key, count).await?,
        None => auth.limits.spend(key, count)?,
    }
    Ok(KeyCounters { limits: &auth.limits, key })
}

/// Whether `key` may decode `kind`.
pub fn permit_decode(key: Option<&Key>, kind: Kind) -> Result<(), ApiError> {
    match key {
        Some(key) if !key.scopes.allows_kind(kind) => {
            Err(ApiError::Forbidden { what: format!("decode {kind} ids") })
        }
        _ => Ok(()),
    }
}

/// The secret in `Authorization: Bearer ...` or `X-API-Key`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, secret) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim());
    }
    headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::trim)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    #[test]
    fn a_key_comes_as_a_bearer_token_or_x_api_key() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer idg_abc"));
        assert_eq!(presented(&headers), Some("idg_abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  idg_abc "));
        assert_eq!(presented(&headers), Some("idg_abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dXNlcg=="));
        assert_eq!(presented(&headers), None);
        headers.remove(header::AUTHORIZATION);
        headers.insert(
            header::HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("idg_xyz"),
        );
        assert_eq!(presented(&headers), Some("idg_xyz"));
    }
}
