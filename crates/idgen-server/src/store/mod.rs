//! Durable high-water marks: the only module that touches the data directory.
//!
//! The generators in idgen-core never issue above a *ceiling*; the store makes a mark durable
//! first and only then is the ceiling raised to it (see `state.rs`). After a crash the marks
//! are a floor for the next run, so nothing issued before is issued again: gaps, never repeats.
//!
//! Marks kept: the snowflake and timestamp time marks (Unix ms) and, per counter name, the
//! value reserved through. [`Store`] is an enum over back ends so a Redis one can sit next to
//! the embedded one; the rest of the server only sees this interface.

pub mod embedded;

use std::io;
use std::path::PathBuf;

use idgen_core::counter::CounterName;

pub use embedded::EmbeddedStore;

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
}

/// The back end holding the marks.
pub enum Store {
    /// A JSON file in `IDGEN_DATA_DIR`, written atomically, locked against a second server.
    Embedded(EmbeddedStore),
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
        }
    }

    /// Every mark as it is durable now.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Store::Embedded(store) => store.snapshot(),
        }
    }

    /// The durable value of one mark (0 if never written).
    pub fn mark(&self, mark: &Mark) -> u64 {
        match self {
            Store::Embedded(store) => store.mark(mark),
        }
    }

    /// Makes `mark` durable at `target` unless it already is at `needed` or above; returns the
    /// durable value, which is the new ceiling (>= `needed`). Blocks on disk I/O.
    pub fn reserve(&self, mark: &Mark, needed: u64, target: u64) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(store) => store.reserve(mark, needed, target.max(needed)),
        }
    }

    /// Rewrites the marks to the real high water at a clean shutdown, so the next run starts
    /// with smaller gaps. Marks never go below what `high_water` says was issued.
    pub fn settle(&self, high_water: &Snapshot) -> Result<(), StoreError> {
        match self {
            Store::Embedded(store) => store.settle(high_water),
        }
    }

    /// Whether a mark could be written now (for `/readyz`).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Store::Embedded(store) => store.check_writable(),
        }
    }
}
