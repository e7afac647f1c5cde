//! The Redis back end (`IDGEN_REDIS_URL`): many nodes share one Redis (or Redis Cluster) for
//! counters, worker-id leases with their snowflake marks, the timestamp mark and the rate limit.
//!
//! Map: [`connection`] (pools, the shared and per-thread connections, timeouts), [`scripts`]
//! (the Lua check-and-sets), [`store`] (every command, the key layout), [`lease`] (this node's
//! worker-id lease and its validity), [`segment`] (counter ranges buffered per node when
//! `IDGEN_COUNTER_BLOCK` > 1). This file opens the back end (checks Redis, seeds counters,
//! reads the timestamp mark, leases a worker id) and implements [`Backend`] over them.
//!
//! Worker ids: the lease is renewed every third of its TTL and re-taken when lost (the same id
//! if it is free, else another unless `IDGEN_WORKER_ID` fixes it); the snowflake mark belongs
//! to the leased id and is raised only while Redis holds this node's token (fencing), so a
//! node that takes the id over starts above everything the previous holder could issue.

mod connection;
pub mod lease;
mod scripts;
pub mod segment;
pub mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use idgen_core::counter::CounterName;
use parking_lot::RwLock;

pub use connection::{OP_TIMEOUT, RedisError};
use lease::{Held, Lease};
use segment::Segments;
pub use store::RedisStore;

use super::{
    Backend, BackendError, BackendFuture, Mark, Opened, RateDecision, RateTokens, Readiness,
    SharedCounters, Snapshot, WorkerEvents,
};
use crate::config::{Config, ConfigError, RedisUrl, Setting, Source};

/// How refusals name this store.
const STORE: &str = "Redis";

fn unreachable(error: RedisError) -> BackendError {
    BackendError::Unreachable { store: STORE, detail: error.to_string() }
}

/// Redis as a [`Backend`].
pub struct RedisBackend {
    store: Arc<RedisStore>,
    lease: Lease,
    /// `Some` when `IDGEN_WORKER_ID` was given: only that id may be leased.
    fixed_worker_id: Option<u16>,
    /// `IDGEN_COUNTER_BLOCK`; 1 sends every request to Redis.
    counter_block: u64,
    max_counters: usize,
    segments: RwLock<HashMap<CounterName, Arc<Segments>>>,
}

/// What start-up found in Redis.
struct Found {
    worker_id: u16,
    mark_ms: u64,
    sent: Instant,
    timestamp_mark: u64,
}

/// Checks that Redis answers, seeds counters, reads the timestamp mark and leases a worker id.
/// Problems are setting errors (`IDGEN_REDIS_URL`, `IDGEN_WORKER_ID`).
pub fn open(config: &Config, url: &RedisUrl) -> anyhow::Result<Opened> {
    // rediss:// runs on rustls, which needs a process-wide crypto provider (ring: the build
    // has no aws-lc-sys). An error means one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = RedisStore::new(
        url,
        config.redis_cluster,
        &config.redis_prefix,
        config.redis_wait_replicas,
    )
    .map_err(|error| unreachable_setting(url, &error))?;
    let store = Arc::new(store);
    let token = lease::new_token();
    // Start-up runs before the server's runtime exists (and may be called from async code), so
    // it drives the store on a runtime of its own, on a helper thread. The store's shared
    // connection lives on the store's own runtime, so it outlives this one.
    let found = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("start a runtime for the Redis start-up checks")?;
                runtime.block_on(start(config, url, &store, &token))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the Redis start-up checks panicked"))?
    })?;
    let lease = Lease::new(Duration::from_millis(config.lease_ttl_ms));
    lease.confirm(Held { worker_id: found.worker_id, token }, found.sent);
    let backend = RedisBackend {
        store,
        lease,
        fixed_worker_id: config.worker_id_fixed.then_some(config.worker_id),
        counter_block: config.counter_block,
        max_counters: config.max_counters,
        segments: RwLock::new(HashMap::new()),
    };
    let durable = Snapshot {
        worker_id: found.worker_id,
        snowflake_ms: found.mark_ms,
        timestamp_ms: found.timestamp_mark,
        counters: Vec::new(),
    };
    Ok(Opened { backend: Arc::new(backend), durable })
}

fn unreachable_setting(url: &RedisUrl, error: &RedisError) -> anyhow::Error {
    ConfigError::new(
        Setting::RedisUrl,
        Source::Env,
        url.redact(&format!(
            "cannot reach Redis ({error}); check that it runs and that the URL is right"
        )),
    )
    .into()
}

async fn start(
    config: &Config,
    url: &RedisUrl,
    store: &RedisStore,
    token: &str,
) -> anyhow::Result<Found> {
    let unreachable = |error: RedisError| unreachable_setting(url, &error);
    store.ping().await.map_err(unreachable)?;
    for (name, value) in &config.seed_counters {
        let now = store.seed_counter(name, *value).await.map_err(unreachable)?;
        tracing::info!(counter = %name, seed = value, now, "counter seeded");
    }
    let timestamp_mark = store.load_timestamp_mark().await.map_err(unreachable)?;
    let fixed = config.worker_id_fixed.then_some(config.worker_id);
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    match lease::acquire(store, fixed, None, token, ttl).await.map_err(unreachable)? {
        Some((worker_id, mark_ms, sent)) => Ok(Found { worker_id, mark_ms, sent, timestamp_mark }),
        None => Err(match fixed {
            Some(worker_id) => ConfigError::new(
                Setting::WorkerId,
                Source::Env,
                format!(
                    "worker id {worker_id} is leased by another idgen node; pick another or leave IDGEN_WORKER_ID unset to lease a free one"
                ),
            ),
            None => ConfigError::new(
                Setting::WorkerId,
                Source::Env,
                "all 1024 worker ids are leased by other idgen nodes",
            ),
        }
        .into()),
    }
}

impl RedisBackend {
    /// The segments of counter `name`, created on first use within `IDGEN_MAX_COUNTERS`.
    fn segments(&self, name: &CounterName) -> Result<Arc<Segments>, BackendError> {
        if let Some(segments) = self.segments.read().get(name) {
            return Ok(Arc::clone(segments));
        }
        let mut all = self.segments.write();
        if !all.contains_key(name) && all.len() >= self.max_counters {
            return Err(BackendError::TooManyCounters { max: self.max_counters });
        }
        Ok(Arc::clone(all.entry(name.clone()).or_default()))
    }

    /// Renews the held lease when due; drops it (and stops snowflakes) when Redis says it is
    /// not ours any more.
    async fn renew(&self, held: Held, events: &dyn WorkerEvents) {
        let lease = &self.lease;
        if !lease.renewal_due() && lease.is_valid() {
            return;
        }
        let sent = Instant::now();
        match self.store.renew(held.worker_id, &held.token, lease.ttl()).await {
            Ok(true) => lease.confirm(held, sent),
            Ok(false) => {
                tracing::warn!(
                    worker_id = held.worker_id,
                    "the worker-id lease expired or was taken; snowflakes stop until a new one is held"
                );
                lease.drop_lease();
                events.lost();
            }
            Err(error) => {
                if lease.is_valid() {
                    tracing::warn!(error = %error, "cannot renew the worker-id lease; retrying");
                } else {
                    tracing::debug!(error = %error, "cannot renew the worker-id lease");
                }
            }
        }
    }

    /// Leases a worker id again after the lease was lost: the one snowflakes were issued with
    /// if it is free, else another (unless `IDGEN_WORKER_ID` fixes it).
    async fn reacquire(&self, events: &dyn WorkerEvents) {
        let token = lease::new_token();
        let previous = events.current_worker_id();
        let acquired = lease::acquire(
            &self.store,
            self.fixed_worker_id,
            Some(previous),
            &token,
            self.lease.ttl(),
        )
        .await;
        match acquired {
            Ok(Some((worker_id, mark_ms, sent))) => {
                events.leased(worker_id, mark_ms);
                self.lease.confirm(Held { worker_id, token }, sent);
                tracing::info!(worker_id, "leased a worker id; snowflakes resume");
            }
            Ok(None) => {
                tracing::warn!(
                    "no worker id can be leased now (all taken, or the fixed one is held)"
                );
            }
            Err(error) => tracing::debug!(error = %error, "cannot lease a worker id yet"),
        }
    }
}

impl Backend for RedisBackend {
    fn mode(&self) -> &'static str {
        "redis"
    }

    fn store_name(&self) -> &'static str {
        STORE
    }

    fn raise_mark<'a>(
        &'a self,
        mark: &'a Mark,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'a, Result<u64, BackendError>> {
        Box::pin(async move {
            match mark {
                Mark::Timestamp => {
                    self.store.raise_timestamp_mark(needed, target).await.map_err(unreachable)
                }
                // Counters live in Redis itself (see `shared_counters`).
                Mark::Counter(_) => Err(BackendError::Internal {
                    detail: "counter marks are not used in Redis mode".to_owned(),
                }),
            }
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
            let held = match self.lease.held() {
                Some(held) if held.worker_id == worker_id => held,
                _ => return Ok(None),
            };
            match self.store.raise_worker_mark(worker_id, &held.token, needed, target).await {
                Ok(Some(ceiling)) => Ok(Some(ceiling)),
                Ok(None) => {
                    tracing::warn!(
                        worker_id,
                        "the worker-id lease is held by another node; snowflakes stop"
                    );
                    self.lease.drop_lease();
                    Ok(None)
                }
                Err(error) => Err(unreachable(error)),
            }
        })
    }

    fn worker_tick(&self) -> Option<Duration> {
        Some(self.lease.tick())
    }

    fn maintain_worker<'a>(&'a self, events: &'a dyn WorkerEvents) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            match self.lease.held() {
                Some(held) => self.renew(held, events).await,
                None => self.reacquire(events).await,
            }
        })
    }

    fn shared_counters(&self) -> Option<&dyn SharedCounters> {
        Some(self)
    }

    fn rate_tokens(&self) -> Option<&dyn RateTokens> {
        Some(self)
    }

    fn readiness(&self) -> BackendFuture<'_, Readiness> {
        Box::pin(async move {
            let mut readiness = Readiness { reasons: Vec::new(), retry_after_secs: 1 };
            if let Err(error) = self.store.ping().await {
                tracing::warn!(error = %error, "readiness: Redis unreachable");
                readiness.reasons.push("redis: unreachable".to_owned());
            }
            if !self.lease.is_valid() {
                readiness
                    .reasons
                    .push("snowflake: this node holds no worker-id lease right now".to_owned());
                readiness.retry_after_secs = self.lease.retry_after_secs();
            }
            readiness
        })
    }

    /// Stores the real snowflake high water as the worker's mark and releases the lease, so
    /// that the id is free at once.
    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
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
    /// Strict mode (`IDGEN_COUNTER_BLOCK=1`): one `INCRBY` per request, so values are globally
    /// ordered. Segment mode: from this node's buffered ranges (a batch may span two of them:
    /// increasing, not contiguous).
    fn take<'a>(
        &'a self,
        name: &'a CounterName,
        count: u64,
    ) -> BackendFuture<'a, Result<Vec<RangeInclusive<u64>>, BackendError>> {
        Box::pin(async move {
            if self.counter_block <= 1 {
                let range = self.store.incr_counter(name, count).await.map_err(unreachable)?;
                return Ok(vec![range]);
            }
            self.segments(name)?
                .take(&self.store, name, count, self.counter_block)
                .await
                .map_err(unreachable)
        })
    }
}

impl RateTokens for RedisBackend {
    fn take(
        &self,
        client: IpAddr,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> BackendFuture<'_, Result<RateDecision, BackendError>> {
        Box::pin(async move {
            self.store.rate_check(client, per_second, burst, want).await.map_err(unreachable)
        })
    }
}
