//! Detecting a Redis that went back in time. Redis can forget what it acknowledged: it restarts
//! without persistence, is flushed, evicts keys under memory pressure, or fails over to a
//! replica that lagged; counters would then start again at 1 with status 200. A node notices:
//! - the store identity (`idgen:{store}:id`, a random token set once) is missing or changed:
//!   checked atomically by every fencing script on standalone Redis, and by every node at each
//!   maintenance tick (also on Redis Cluster, where scripts cannot reach it);
//! - Redis hands it a counter value at or below one it was already handed (`store.rs`).
//!
//! Then the back end *regresses*: counters, marks and worker ids are refused (503
//! `store_regressed`) and `/readyz` says why, until an operator runs `idgen-server recover`
//! (which raises every counter above what was issued and sets a new identity marked as
//! recovered); each node adopts that identity at its next tick. One error line per incident.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::connection::RedisError;
use super::store::{Identity, RedisStore};

/// Whether (and why) the store is known to have gone back.
#[derive(Debug, Default)]
pub struct Regression {
    flag: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Regression {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub fn reason(&self) -> Option<String> {
        self.reason.lock().clone()
    }

    /// Enters the regressed state; the first report of an incident is logged, the rest are not.
    pub fn set(&self, detail: &str) {
        let mut reason = self.reason.lock();
        if reason.is_none() {
            tracing::error!(
                reason = detail,
                "the Redis store went back in time; counters, marks and worker ids are refused until `idgen-server recover` runs (docs/operations.md#store-regressed)"
            );
            *reason = Some(detail.to_owned());
        }
        self.flag.store(true, Ordering::Release);
    }

    pub fn clear(&self) {
        *self.reason.lock() = None;
        self.flag.store(false, Ordering::Release);
    }
}

/// What the start-up handshake decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Work under this identity.
    Adopt(String),
    /// The store lost what this node remembers: it must not start.
    Regressed(String),
}

/// At start: the identity to work under, given the one this node `remembered` (from its data
/// dir). A fresh node on a fresh store creates one with `token`.
pub async fn handshake(
    store: &RedisStore,
    remembered: Option<&str>,
    token: &str,
) -> Result<Handshake, RedisError> {
    let found = store.read_identity().await?;
    Ok(match (remembered, found.current.as_deref()) {
        (Some(mine), Some(current)) if mine == current => Handshake::Adopt(current.to_owned()),
        (Some(_), Some(current)) if found.recovered.as_deref() == Some(current) => {
            tracing::info!("the Redis store was recovered since this node last ran; adopting it");
            Handshake::Adopt(current.to_owned())
        }
        (Some(mine), current) => Handshake::Regressed(lost(mine, current)),
        (None, Some(current)) => Handshake::Adopt(current.to_owned()),
        (None, None) => {
            // A new store: the first node's token wins (`SET NX`), every node adopts it.
            let created = store.ensure_identity(token).await?;
            Handshake::Adopt(created.current.unwrap_or_else(|| token.to_owned()))
        }
    })
}

fn lost(mine: &str, current: Option<&str>) -> String {
    match current {
        None => format!(
            "the Redis store has no identity any more (this node worked under {mine}): it restarted empty, was flushed or failed over to a replica that lagged"
        ),
        Some(current) => format!(
            "the Redis store identity changed from {mine} to {current} without `idgen-server recover`: it may be a different or an older store"
        ),
    }
}

/// What a periodic look at the identity found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    Unchanged,
    /// `recover` set this identity: adopt it.
    Recovered(String),
    Lost(String),
}

/// Compares the identity keys with `mine`.
pub fn look(found: &Identity, mine: &str) -> Look {
    match found.current.as_deref() {
        Some(current) if current == mine => Look::Unchanged,
        Some(current) if found.recovered.as_deref() == Some(current) => {
            Look::Recovered(current.to_owned())
        }
        current => Look::Lost(lost(mine, current)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(current: Option<&str>, recovered: Option<&str>) -> Identity {
        Identity { current: current.map(str::to_owned), recovered: recovered.map(str::to_owned) }
    }

    #[test]
    fn a_missing_or_changed_identity_is_lost_unless_recovered() {
        assert_eq!(look(&identity(Some("a"), None), "a"), Look::Unchanged);
        assert_eq!(look(&identity(Some("b"), Some("b")), "a"), Look::Recovered("b".into()));
        assert!(
            matches!(look(&identity(None, None), "a"), Look::Lost(reason) if reason.contains("no identity"))
        );
        assert!(
            matches!(look(&identity(Some("b"), Some("c")), "a"), Look::Lost(reason) if reason.contains("changed from a to b"))
        );
    }

    #[test]
    fn a_regression_is_reported_once_per_incident() {
        let regression = Regression::default();
        assert!(!regression.is_set());
        regression.set("first");
        regression.set("second");
        assert_eq!(regression.reason().as_deref(), Some("first"));
        regression.clear();
        assert!(!regression.is_set() && regression.reason().is_none());
    }
}
