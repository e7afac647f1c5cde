//! The Redis back end (`IDGEN_REDIS_URL`): many nodes share one Redis (or Redis Cluster) for
//! counters, worker-id leases with their snowflake marks, the time marks, timestamp ids and
//! the rate limit.
//!
//! Map: [`connection`] (pools, the shared and per-thread connections, timeouts), [`scripts`]
//! (the Lua check-and-sets), [`store`] (every command, the key layout), [`lease`] (this node's
//! worker-id lease and its validity), [`segment`] (counter ranges buffered per node when
//! `IDGEN_COUNTER_BLOCK` > 1), [`group`] (strict counters: concurrent requests share one
//! `INCRBY`), [`identity`] (noticing a store that went back in time),
//! [`node`] (what this node remembers in its data dir), [`open`] (start-up), [`worker`] (the
//! maintenance tick), [`recover`] (`idgen-server recover`). This file implements [`Backend`].
//!
//! Worker ids: the lease is renewed every third of its TTL and re-taken when lost (the same id
//! if it is free, else another unless `IDGEN_WORKER_ID` fixes it); the snowflake mark belongs
//! to the leased id and is raised only while Redis holds this node's token (fencing), so a
//! node that takes the id over starts above everything the previous holder could issue.

mod buckets;
mod connection;
mod group;
mod identity;
pub mod lease;
mod node;
mod open;
pub mod recover;
mod scripts;
pub mod segment;
pub mod store;
mod worker;

use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use idgen_core::counter::CounterName;
use parking_lot::{Mutex, RwLock};

pub use connection::{OP_TIMEOUT, RedisError};
use group::Group;
use identity::Regression;
use lease::Lease;
use node::NodeFile;
pub use open::open;
use segment::Segments;
pub use store::{RedisStore, TimeMark};

use super::{
    Backend, BackendError, BackendFuture, CounterStatus, Mark, NewCounterName, RateBucket,
    RateDecision, RateTokens, Readiness, SharedCounters, SharedTimestamps, Snapshot, WorkerEvents,
};

/// How refusals name this store.
const STORE: &str = "Redis";

/// Redis as a [`Backend`].
pub struct RedisBackend {
    store: Arc<RedisStore>,
    lease: Lease,
    /// `Some` when `IDGEN_WORKER_ID` was given: only that id may be leased.
    fixed_worker_id: Option<u16>,
    /// The layout's largest worker id: leases are taken in `0..=max_worker`.
    max_worker: u16,
    /// `IDGEN_COUNTER_BLOCK`; 1 sends every request to Redis.
    counter_block: u64,
    max_counters: usize,
    segments: RwLock<HashMap<CounterName, Arc<Segments>>>,
    /// Strict mode: the requests waiting for each counter's next `INCRBY`.
    groups: RwLock<HashMap<CounterName, Arc<Group>>>,
    regression: Regression,
    /// `IDGEN_DATA_DIR`: where [`NodeFile`] lives.
    node_dir: PathBuf,
    node_file: Mutex<NodeFile>,
    /// Worker id -> the highest snowflake mark this node raised (or found) for it.
    worker_marks: Mutex<HashMap<u16, u64>>,
    /// The last shared timestamp id handed to this node.
    last_timestamp: AtomicU64,
    /// The requests waiting for the next timestamp round trip.
    timestamps: Arc<Group>,
    last_saved: Mutex<Instant>,
    /// How Redis keeps what it acknowledges (read at start).
    persistence: String,
}

impl RedisBackend {
    /// A failed call as the back end's error; a store that went back enters the regressed
    /// state (logged once per incident).
    fn failed(&self, error: RedisError) -> BackendError {
        match error {
            RedisError::Regressed(reason) => {
                self.regress(&reason);
                self.regressed()
            }
            error => BackendError::Unreachable { store: STORE, detail: error.to_string() },
        }
    }

    /// Enters the regressed state; on a new incident, records at once in the node file
    /// everything this node was handed, so that `recover` has exact floors.
    fn regress(&self, reason: &str) {
        let new = !self.regression.is_set();
        self.regression.set(reason);
        // Pairs with the fence in `handed_out`: a reply recorded after this point sees the
        // flag and is not handed out; one handed out was recorded before, and is in the file.
        fence(Ordering::SeqCst);
        if new {
            self.save_node_file(&[]);
        }
    }

    /// After a reply has been recorded in what this node was handed (the node file's source):
    /// `Err` if the store has meanwhile been found to have gone back. Without this, a reply
    /// that arrived just after the regression was recorded would be handed out without being in
    /// the node file `recover` reads, and issued again after the recovery.
    fn handed_out(&self) -> Result<(), BackendError> {
        fence(Ordering::SeqCst);
        self.check()
    }

    fn regressed(&self) -> BackendError {
        BackendError::Regressed {
            store: STORE,
            detail: self.regression.reason().unwrap_or_default(),
        }
    }

    /// `Err` while the store is known to have gone back.
    fn check(&self) -> Result<(), BackendError> {
        if self.regression.is_set() { Err(self.regressed()) } else { Ok(()) }
    }

    /// What `map` keeps for counter `name`, created on first use within `IDGEN_MAX_COUNTERS`
    /// if `new_name` allows it; and whether this call created it.
    fn per_counter<T: Default>(
        &self,
        map: &RwLock<HashMap<CounterName, Arc<T>>>,
        name: &CounterName,
        new_name: &dyn NewCounterName,
    ) -> Result<(Arc<T>, bool), BackendError> {
        if let Some(found) = map.read().get(name) {
            return Ok((Arc::clone(found), false));
        }
        let mut all = map.write();
        if let Some(found) = all.get(name) {
            return Ok((Arc::clone(found), false));
        }
        if all.len() >= self.max_counters {
            return Err(BackendError::TooManyCounters { max: self.max_counters });
        }
        new_name.allow().map_err(|what| BackendError::NewCounterRefused { what })?;
        Ok((Arc::clone(all.entry(name.clone()).or_default()), true))
    }

    /// After a failed first use: the name takes no slot, and `new_name` gets its place back.
    fn forget_new<T>(
        map: &RwLock<HashMap<CounterName, Arc<T>>>,
        name: &CounterName,
        new_name: &dyn NewCounterName,
    ) {
        map.write().remove(name);
        new_name.undo();
    }
}

impl Backend for RedisBackend {
    fn mode(&self) -> &'static str {
        "redis"
    }

    fn store_name(&self) -> &'static str {
        STORE
    }

    fn describe(&self) -> Option<String> {
        Some(self.persistence.clone())
    }

    fn raise_mark<'a>(
        &'a self,
        mark: &'a Mark,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'a, Result<u64, BackendError>> {
        Box::pin(async move {
            self.check()?;
            let time = match mark {
                Mark::Timestamp => TimeMark::Timestamp,
                Mark::Uuid7 => TimeMark::Uuid7,
                Mark::Ulid => TimeMark::Ulid,
                Mark::Ksuid => TimeMark::Ksuid,
                // Counters live in Redis itself (see `shared_counters`).
                Mark::Counter(_) => {
                    return Err(BackendError::Internal {
                        detail: "counter marks are not used in Redis mode".to_owned(),
                    });
                }
            };
            self.store.raise_time_mark(time, needed, target).await.map_err(|e| self.failed(e))
        })
    }

    fn worker_valid(&self) -> bool {
        self.lease.is_valid()
    }

    fn worker_retry_after_secs(&self) -> u64 {
        self.lease.retry_after_secs()
    }

    fn raise_worker_mark(
        &self,
        worker_id: u16,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'_, Result<Option<u64>, BackendError>> {
        Box::pin(async move {
            self.check()?;
            let held = match self.lease.held() {
                Some(held) if held.worker_id == worker_id => held,
                _ => return Ok(None),
            };
            let raised = self.store.raise_worker_mark(worker_id, &held.token, needed, target);
            match raised.await.map_err(|error| self.failed(error))? {
                Some(ceiling) => {
                    {
                        let mut marks = self.worker_marks.lock();
                        let recorded = marks.entry(worker_id).or_default();
                        *recorded = (*recorded).max(ceiling);
                    }
                    self.handed_out()?;
                    Ok(Some(ceiling))
                }
                None => {
                    tracing::warn!(
                        worker_id,
                        "the worker-id lease is held by another node; snowflakes stop"
                    );
                    self.lease.drop_lease();
                    Ok(None)
                }
            }
        })
    }

    fn worker_tick(&self) -> Option<Duration> {
        Some(self.lease.tick())
    }

    fn lease_remaining(&self) -> Option<Duration> {
        Some(self.lease.remaining())
    }

    fn counter_status(&self, limit: usize) -> Vec<CounterStatus> {
        let segments = self.segments.read();
        let mut counters: Vec<CounterStatus> = self
            .store
            .counters_seen()
            .into_iter()
            .map(|(name, last)| CounterStatus {
                buffered: segments.get(&name).map(|segments| segments.remaining()),
                name: name.as_str().to_owned(),
                last,
            })
            .collect();
        counters.sort_by(|a, b| a.name.cmp(&b.name));
        counters.truncate(limit);
        counters
    }

    fn maintain_worker<'a>(&'a self, events: &'a dyn WorkerEvents) -> BackendFuture<'a, ()> {
        Box::pin(self.tick(events))
    }

    fn shared_counters(&self) -> Option<&dyn SharedCounters> {
        Some(self)
    }

    fn shared_timestamps(&self) -> Option<&dyn SharedTimestamps> {
        Some(self)
    }

    fn rate_tokens(&self) -> Option<&dyn RateTokens> {
        Some(self)
    }

    fn readiness(&self) -> BackendFuture<'_, Readiness> {
        Box::pin(async move {
            let mut readiness =
                Readiness { reasons: Vec::new(), retry_after_secs: 1, store_up: true };
            if let Err(error) = self.store.ping().await {
                tracing::warn!(error = %error, "readiness: Redis unreachable");
                readiness.reasons.push("redis: unreachable".to_owned());
                readiness.store_up = false;
            }
            if let Some(reason) = self.regression.reason() {
                readiness.reasons.push(format!(
                    "redis: store_regressed: {reason}; run `idgen-server recover` (docs/operations.md#store-regressed)"
                ));
                readiness.retry_after_secs = 60;
            }
            if !self.lease.is_valid() {
                readiness
                    .reasons
                    .push("snowflake: this node holds no worker-id lease right now".to_owned());
                readiness.retry_after_secs =
                    readiness.retry_after_secs.max(self.lease.retry_after_secs());
            }
            readiness
        })
    }

    /// Forgets this node's segments or waiting queue of `name` (buffered values become a
    /// gap); the counter itself lives on in Redis, so a later use continues above it.
    fn retire_counter<'a>(
        &'a self,
        name: &'a CounterName,
    ) -> BackendFuture<'a, Result<Option<u64>, BackendError>> {
        Box::pin(async move {
            let segments = self.segments.write().remove(name).is_some();
            let group = self.groups.write().remove(name).is_some();
            let seen = self.store.counters_seen().into_iter().find(|(seen, _)| seen == name);
            Ok(if segments || group { Some(seen.map_or(0, |(_, last)| last)) } else { None })
        })
    }

    /// Stores the real snowflake high water as the worker's mark and releases the lease, so
    /// that the id is free at once; records what this node was handed in its data dir.
    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.save_node_file(&[(high_water.worker_id, high_water.snowflake_ms)]);
            let Some(held) = self.lease.drop_lease() else { return Ok(()) };
            let released =
                self.store.release(held.worker_id, &held.token, high_water.snowflake_ms).await;
            if let Err(error) = released {
                // Not fatal: the lease expires by itself after IDGEN_LEASE_TTL_MS, and the mark
                // in Redis is already above everything issued.
                tracing::warn!(error = %error, "shutdown: the worker-id lease was not released");
            }
            Ok(())
        })
    }
}

impl SharedCounters for RedisBackend {
    /// Strict mode (`IDGEN_COUNTER_BLOCK=1`): each request's values come from an `INCRBY`
    /// sent after it arrived (shared with the requests that arrived with it, see [`group`]),
    /// so values are globally ordered. Segment mode: from this node's buffered ranges (a batch
    /// may span two of them: increasing, not contiguous).
    fn take<'a>(
        &'a self,
        name: &'a CounterName,
        count: u64,
        new_name: &'a dyn NewCounterName,
    ) -> BackendFuture<'a, Result<Vec<RangeInclusive<u64>>, BackendError>> {
        Box::pin(async move {
            self.check()?;
            if self.counter_block <= 1 {
                let fetch = || {
                    let (store, name) = (Arc::clone(&self.store), name.clone());
                    move |count, _| -> group::Fetched {
                        let (store, name) = (Arc::clone(&store), name.clone());
                        Box::pin(async move { store.incr_counter(&name, count).await })
                    }
                };
                let (group, created) = self.per_counter(&self.groups, name, new_name)?;
                let range = group.take(count, 0, fetch).await.map_err(|e| self.failed(e));
                if created && range.is_err() {
                    Self::forget_new(&self.groups, name, new_name);
                }
                let range = range?;
                self.handed_out()?;
                return Ok(vec![range]);
            }
            let (segments, created) = self.per_counter(&self.segments, name, new_name)?;
            let ranges = segments
                .take(&self.store, name, count, self.counter_block)
                .await
                .map_err(|error| self.failed(error));
            if created && ranges.is_err() {
                Self::forget_new(&self.segments, name, new_name);
            }
            let ranges = ranges?;
            self.handed_out()?;
            Ok(ranges)
        })
    }
}

impl SharedTimestamps for RedisBackend {
    /// From a round trip sent after the request arrived (shared with the requests that
    /// arrived with it, see [`group`]): ids unique across every node sharing the store, and,
    /// per node, above everything it was handed before.
    fn take(&self, count: u64, now_ms: u64) -> BackendFuture<'_, Result<Range<u64>, BackendError>> {
        Box::pin(async move {
            self.check()?;
            // Read before asking (replies to concurrent requests arrive in any order).
            let floor = self.last_timestamp.load(Ordering::Relaxed);
            let fetch = || {
                let store = Arc::clone(&self.store);
                move |count, now_ms| -> group::Fetched {
                    let store = Arc::clone(&store);
                    Box::pin(async move {
                        let first = store.next_timestamps(count, now_ms).await?;
                        Ok(first..=first.saturating_add(count - 1))
                    })
                }
            };
            let first = *self
                .timestamps
                .take(count, now_ms, fetch)
                .await
                .map_err(|e| self.failed(e))?
                .start();
            if first <= floor {
                return Err(self.failed(RedisError::Regressed(format!(
                    "Redis handed out timestamp id {first} again, but this node already had {floor}"
                ))));
            }
            let last = first.saturating_add(count - 1);
            self.last_timestamp.fetch_max(last, Ordering::Relaxed);
            self.handed_out()?;
            Ok(first..last + 1)
        })
    }
}

impl RateTokens for RedisBackend {
    fn take(
        &self,
        bucket: RateBucket,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> BackendFuture<'_, Result<RateDecision, BackendError>> {
        Box::pin(async move {
            self.store.rate_check(&bucket, per_second, burst, want).await.map_err(|error| {
                BackendError::Unreachable { store: STORE, detail: error.to_string() }
            })
        })
    }

    fn spend_quota(
        &self,
        key: Arc<str>,
        day: u64,
        want: u64,
        quota: u64,
    ) -> BackendFuture<'_, Result<bool, BackendError>> {
        Box::pin(async move {
            self.store.spend_quota(&key, day, want, quota).await.map_err(|error| {
                BackendError::Unreachable { store: STORE, detail: error.to_string() }
            })
        })
    }
}
