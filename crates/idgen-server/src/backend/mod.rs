//! The back-end seam: everything the rest of the server needs from a store, as one trait,
//! [`Backend`], with one folder per implementation: [`embedded`] (a data directory) and
//! [`redis`] (Redis or Redis Cluster, shared by many nodes), plus a test-only in-memory one
//! that can fail, stall or forget on command. Callers hold an `Arc<dyn Backend>`; nothing
//! outside this folder names a store's client library.
//!
//! What a back end keeps and guards:
//! - **marks**: durable high-water marks (the timestamp mark, and per counter name the value
//!   reserved through when counters are issued by the node). The issuing layer never issues
//!   above a mark it has not had made durable ([`Backend::raise_mark`]); after a crash the
//!   marks are the floor of the next run: gaps, never repeats;
//! - **the worker id** snowflakes are issued with, and its own mark, raised only while the id
//!   is this node's ([`Backend::raise_worker_mark`]); a back end that leases ids renews them in
//!   [`Backend::maintain_worker`] and tells the issuing layer through [`WorkerEvents`];
//! - optionally **shared counters** and **shared timestamp ids** (handed out by the store
//!   itself, unique across nodes) and **rate-limit tokens** shared by every node;
//! - **readiness** (can it do all of the above now?) and the final **settle** at shutdown.
//!
//! Every method that may wait returns a boxed future: the trait is used as a trait object, and
//! a boxed cold path keeps every request's future small (see `routes::router`'s tests).

pub mod embedded;
#[cfg(test)]
pub mod memory;
pub mod observed;
pub mod redis;

use std::future::Future;
use std::net::IpAddr;
use std::ops::{Range, RangeInclusive};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use idgen_core::counter::CounterName;

use crate::config::Config;

/// What a back end's methods return when they may wait.
pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A durable high-water mark other than a worker's snowflake mark.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mark {
    /// Unix ms; no timestamp id is issued at or below it after a restart.
    Timestamp,
    /// Unix ms; no uuid7 is issued with a time at or below it after a restart, so output never
    /// goes backwards, even when the clock was set back while the server was down.
    Uuid7,
    /// The same for ULIDs.
    Ulid,
    /// The same for KSUIDs (Unix ms of the last second issued, whole seconds).
    Ksuid,
    /// The last value reserved for this counter (node-issued counters only).
    Counter(CounterName),
}

/// Every mark at once: what was durable when the back end opened, or the real high water at
/// shutdown (then [`Backend::settle`] lowers the marks to it, for smaller gaps next time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The worker id snowflakes are issued with.
    pub worker_id: u16,
    /// Unix ms; no snowflake of `worker_id` is issued at or below it after a restart.
    pub snowflake_ms: u64,
    pub timestamp_ms: u64,
    pub uuid7_ms: u64,
    pub ulid_ms: u64,
    pub ksuid_ms: u64,
    /// Node-issued counters and the value reserved (or, at shutdown, issued) through.
    pub counters: Vec<(CounterName, u64)>,
    /// Retired node-issued counters (see [`Backend::retire_counter`]) and their marks; not
    /// written by [`Backend::settle`].
    pub retired_counters: Vec<(CounterName, u64)>,
}

/// Why a back end could not do what was asked. The `detail` strings are for the operator's
/// log; `error.rs` turns each case into what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The store did not answer, or failed (down, timed out, a protocol error).
    #[error("{store} failed: {detail}")]
    Unreachable { store: &'static str, detail: String },
    /// A mark could not be made durable (disk full, permissions).
    #[error("cannot make a high-water mark durable: {detail}")]
    NotDurable { detail: String },
    /// The store went back in time (it lost what it had acknowledged): nothing it guards is
    /// handed out until an operator recovers it.
    #[error("{store} went back in time: {detail}")]
    Regressed { store: &'static str, detail: String },
    /// A new counter name would pass `IDGEN_MAX_COUNTERS`.
    #[error("too many counters (limit {max})")]
    TooManyCounters { max: usize },
    /// The caller may not create another counter name (`what`: a 403's sentence fragment).
    #[error("may not {what}")]
    NewCounterRefused { what: String },
    /// A bug or a broken environment (a blocking task that died).
    #[error("{detail}")]
    Internal { detail: String },
}

/// What the shared rate limiter asked of the store: `granted` tokens (at least 1, at most the
/// `want` asked for) were charged to the bucket, which then holds `remaining`; or not even one
/// fits for `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed { granted: u32, remaining: u32 },
    Limited { wait: Duration },
}

/// Why `/readyz` fails, and when to ask again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    pub reasons: Vec<String>,
    pub retry_after_secs: u64,
    /// Whether the store itself answered (`idgen_store_up`), whatever else is wrong.
    pub store_up: bool,
}

/// What `/v1/status` shows of one counter the back end keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterStatus {
    pub name: String,
    /// The last value handed to this node.
    pub last: u64,
    /// Values this node holds but has not handed out yet (segment mode).
    pub buffered: Option<u64>,
}

/// What the issuing layer does when the worker id changes under it.
pub trait WorkerEvents: Sync {
    /// The worker id snowflakes are issued with now (asked for first when re-leasing).
    fn current_worker_id(&self) -> u16;
    /// The worker id is no longer this node's: stop issuing snowflakes at once.
    fn lost(&self);
    /// `worker_id` is this node's again (or a new one is), with durable mark `mark_ms`: issue
    /// above it from now on. Called before the lease counts as valid.
    fn leased(&self, worker_id: u16, mark_ms: u64);
}

/// Who may create a counter name (an API key's `max_new_counters`): asked when a node first
/// keeps something for a name, so that a key cannot fill `IDGEN_MAX_COUNTERS` on any node.
pub trait NewCounterName: Sync {
    /// `Err(what)`: it may not (the sentence fragment of a 403).
    fn allow(&self) -> Result<(), String>;
    /// A name whose creation failed gives its place back.
    fn undo(&self);
}

/// Counter values handed out by the store itself, unique across every node sharing it.
pub trait SharedCounters: Send + Sync {
    /// `count` values of counter `name`, increasing, as one or more ranges. A name this node
    /// keeps nothing for yet is created only if `new_name` allows it.
    fn take<'a>(
        &'a self,
        name: &'a CounterName,
        count: u64,
        new_name: &'a dyn NewCounterName,
    ) -> BackendFuture<'a, Result<Vec<RangeInclusive<u64>>, BackendError>>;
}

/// Timestamp ids handed out by the store itself, unique across every node sharing it.
pub trait SharedTimestamps: Send + Sync {
    /// `count` consecutive timestamp ids, the first at least `now_ms` (the node's clock).
    fn take(&self, count: u64, now_ms: u64) -> BackendFuture<'_, Result<Range<u64>, BackendError>>;
}

/// Whose rate-limit bucket: a client address (`IDGEN_RATE_LIMIT_PER_SECOND`) or an API key's
/// (by its name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateBucket {
    Client(IpAddr),
    Key(Arc<str>),
}

/// Rate-limit tokens and per-key daily quotas kept by the store, so that every node draws from
/// one bucket per client or key.
pub trait RateTokens: Send + Sync {
    /// Up to `want` tokens of `bucket`, a GCRA bucket of `burst` refilling `per_second`.
    fn take(
        &self,
        bucket: RateBucket,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> BackendFuture<'_, Result<RateDecision, BackendError>>;

    /// Spends `want` of key `key`'s `quota` for UTC day `day` (days since the epoch), all or
    /// nothing: `false` when fewer than `want` are left.
    fn spend_quota(
        &self,
        key: Arc<str>,
        day: u64,
        want: u64,
        quota: u64,
    ) -> BackendFuture<'_, Result<bool, BackendError>>;
}

/// Everything a store must do for the rest of the server.
pub trait Backend: Send + Sync {
    /// `embedded`, `redis`: shown in the start-up line.
    fn mode(&self) -> &'static str;

    /// The store as a client reads about it in a refusal ("cannot reach its Redis").
    fn store_name(&self) -> &'static str;

    /// What an operator should know about the store at a glance (the start-up line and
    /// `/readyz`), e.g. how it keeps what it acknowledges.
    fn describe(&self) -> Option<String> {
        None
    }

    /// Makes `mark` durable at `target` unless it already is at `needed` or above; returns the
    /// durable value, which is the new ceiling (>= `needed`).
    fn raise_mark<'a>(
        &'a self,
        mark: &'a Mark,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'a, Result<u64, BackendError>>;

    /// Whether snowflakes may be issued with the held worker id now (a leased id: only while
    /// its lease is valid).
    fn worker_valid(&self) -> bool;

    /// Seconds a client should wait while no worker id is held.
    fn worker_retry_after_secs(&self) -> u64;

    /// Raises the snowflake mark of `worker_id` as [`Backend::raise_mark`] does, only while
    /// the id is this node's. `Ok(None)`: it is not (any more); the back end has then dropped it.
    fn raise_worker_mark(
        &self,
        worker_id: u16,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'_, Result<Option<u64>, BackendError>>;

    /// How long the worker id's lease stays valid without a renewal; `None` for a fixed id.
    fn lease_remaining(&self) -> Option<Duration> {
        None
    }

    /// How often [`Backend::maintain_worker`] must run; `None`: the worker id is fixed.
    fn worker_tick(&self) -> Option<Duration> {
        None
    }

    /// Renews the worker id's lease when due, or takes one again when it was lost, telling
    /// `events` what changed.
    fn maintain_worker<'a>(&'a self, events: &'a dyn WorkerEvents) -> BackendFuture<'a, ()> {
        let _ = events;
        Box::pin(async {})
    }

    /// `Some` when the store hands out counter values itself; `None`: the issuing layer issues
    /// them from memory above [`Mark::Counter`] marks.
    fn shared_counters(&self) -> Option<&dyn SharedCounters> {
        None
    }

    /// `Some` when the store hands out timestamp ids itself (nodes would otherwise issue the
    /// same milliseconds); `None`: the issuing layer issues them above [`Mark::Timestamp`].
    fn shared_timestamps(&self) -> Option<&dyn SharedTimestamps> {
        None
    }

    /// `Some` when the store can share rate-limit buckets between nodes.
    fn rate_tokens(&self) -> Option<&dyn RateTokens> {
        None
    }

    /// Up to `limit` of the counters the back end keeps itself, for `/v1/status`.
    fn counter_status(&self, limit: usize) -> Vec<CounterStatus> {
        let _ = limit;
        Vec::new()
    }

    /// What the store cannot do right now (empty when it can do everything).
    fn readiness(&self) -> BackendFuture<'_, Readiness>;

    /// Retires counter `name`, which no request uses any more (the issuing layer made sure).
    /// A node-issued counter (embedded) keeps its mark durably but is no longer loaded at
    /// start, so its `IDGEN_MAX_COUNTERS` slot is free and a later use continues above the
    /// mark; returns the mark (`None`: the store has none). A shared counter (Redis) lives on
    /// in the store: the node forgets what it keeps for it (segments, waiting requests) and
    /// returns the last value it was handed.
    fn retire_counter<'a>(
        &'a self,
        name: &'a CounterName,
    ) -> BackendFuture<'a, Result<Option<u64>, BackendError>>;

    /// At a clean shutdown, when nothing is issued any more: lowers the marks to what was
    /// really issued (never below it) and gives up the worker id.
    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>>;
}

/// A back end and what was durable in it when it opened.
pub struct Opened {
    pub backend: Arc<dyn Backend>,
    pub durable: Snapshot,
}

/// Opens the back end the configuration asks for: the one place where back ends are chosen.
/// Setting problems (an unusable data dir, an unreachable Redis, a worker id held by another
/// node) come back as a `ConfigError` inside the `anyhow::Error`.
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    match &config.redis_url {
        Some(url) => redis::open(config, url),
        None => embedded::open(config),
    }
}
