//! Durable high-water marks: the only module that touches the data directory or Redis.
//!
//! The generators in idgen-core never issue above a *ceiling*; the store makes a mark durable
//! first and only then is the ceiling raised to it (see `state.rs`). After a crash the marks
//! are a floor for the next run, so nothing issued before is issued again: gaps, never repeats.
//!
//! Marks kept: the snowflake and timestamp time marks (Unix ms) and, per counter name, the
//! value reserved through. [`Store`] is an enum over the back ends. The embedded one is
//! synchronous (fsync on the blocking pool); the Redis one ([`RedisStore`]) is async and also
//! holds counters, worker-id leases and the shared rate limit, so `AppState` calls it directly.

pub mod embedded;
pub mod redis;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use idgen_core::counter::CounterName;

pub use embedded::EmbeddedStore;
pub use redis::RedisStore;

/// One durable high-water mark.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mark {
    /// Unix ms; no snowflake is issued at or below it after a restart.
    Snowflake,
    /// Unix ms; no timestamp id is issued at or below it after a restart.
    Timestamp,
    /// The last value reserved for this counter.
    Counter(CounterName),
}

/// Every mark at once: what was durable at start-up, or the real high water at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub snowflake_ms: u64,
    pub timestamp_ms: u64,
    pub counters: Vec<(CounterName, u64)>,
}

/// Why the store cannot do its job. Messages are for the operator's log and the start-up line
/// (they name paths); they are never sent to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create or open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is in use by another idgen-server (its lock file is held)", path.display())]
    Locked { path: PathBuf },
    #[error("{} is not valid idgen state ({reason}); restore it or move it away", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the Redis store has no synchronous writes")]
    NotLocal,
}

/// The back end holding the marks.
pub enum Store {
    /// A JSON file in `IDGEN_DATA_DIR`, written atomically, locked against a second server.
    Embedded(EmbeddedStore),
    /// Redis (`IDGEN_REDIS_URL`). Its operations are async and called by `AppState` directly;
    /// the synchronous methods below only read its cached marks.
    Redis(Arc<RedisStore>),
}

impl Store {
    /// Opens (creating if needed) and locks the data directory.
    pub fn open_embedded(dir: impl Into<PathBuf>) -> Result<Store, StoreError> {
        EmbeddedStore::open(dir.into()).map(Store::Embedded)
    }

    /// `embedded` (or, later, `redis`): shown in the start-up line.
    pub fn mode(&self) -> &'static str {
        match self {
            Store::Embedded(_) => "embedded",
            Store::Redis(_) => "redis",
        }
    }

    /// Every mark as it is durable now.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Store::Embedded(store) => store.snapshot(),
            Store::Redis(store) => Snapshot {
                snowflake_ms: store.snowflake_mark(),
                timestamp_ms: store.timestamp_mark(),
                counters: Vec::new(),
            },
        }
    }

    /// The durable value of one mark (0 if never written).
    pub fn mark(&self, mark: &Mark) -> u64 {
        match self {
            Store::Embedded(store) => store.mark(mark),
            Store::Redis(store) => match mark {
                Mark::Snowflake => store.snowflake_mark(),
                Mark::Timestamp => store.timestamp_mark(),
                Mark::Counter(_) => 0,
            },
        }
    }

    /// Makes `mark` durable at `target` unless it already is at `needed` or above; returns the
    /// durable value, which is the new ceiling (>= `needed`). Blocks on disk I/O.
    pub fn reserve(&self, mark: &Mark, needed: u64, target: u64) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(store) => store.reserve(mark, needed, target.max(needed)),
            Store::Redis(_) => Err(StoreError::NotLocal),
        }
    }

    /// Rewrites the marks to the real high water at a clean shutdown, so the next run starts
    /// with smaller gaps. Marks never go below what `high_water` says was issued.
    pub fn settle(&self, high_water: &Snapshot) -> Result<(), StoreError> {
        match self {
            Store::Embedded(store) => store.settle(high_water),
            // Settled (and the lease released) by `AppState::release_lease`.
            Store::Redis(_) => Ok(()),
        }
    }

    /// Whether a mark could be written now (for `/readyz`).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Store::Embedded(store) => store.check_writable(),
            Store::Redis(_) => Ok(()),
        }
    }
}
