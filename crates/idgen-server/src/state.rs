//! `AppState`: the generators, the counters and the store, built once and shared by every
//! worker, plus the rules that tie the generators' ceilings to durable marks.
//!
//! The hot paths (uuid, uuid7, ulid, snowflake, timestamp, random) take no lock here: the
//! generators are lock-light atomics in idgen-core. Only when a generator reports
//! `CeilingReached` does a request go to the store, which writes a mark *ahead* of what it
//! needs, and then raises the ceiling. A background task ([`AppState::refresh_marks`]) keeps
//! the marks ahead of a busy server so that requests rarely wait for that fsync.
//!
//! How far ahead (the reservation policy; gaps after a crash are allowed, repeats are not):
//! - snowflake: 500 ms past the clock, at most half the backward allowance, never past the
//!   previous mark plus that (see [`TIME_MARK_AHEAD_MS`]);
//! - timestamp: `max(500 ms, 16 batches, the current lead)` past what is needed, where the
//!   lead is how far the generator already runs ahead of the clock. Above 1,000 requests/s
//!   timestamp ids outrun the clock, and a fixed 500 ms would then last a few ms of real time
//!   (one fsync every few ms); reserving in proportion to the lead makes the number of writes
//!   grow with the logarithm of the lead instead;
//! - counter (embedded): a block that doubles (up to [`MAX_COUNTER_BLOCK`]) while each block
//!   lasts less than [`FAST_BLOCK`], and falls back to [`COUNTER_BLOCK`] after
//!   [`IDLE_BLOCK`] without a reservation; at least 16 batches.
//!
//! Redis mode ([`AppState::new_redis`]): counters go to Redis (one `INCRBY` per request, or
//! buffered [`Segments`]); the snowflake mark belongs to the leased worker id and is raised only
//! while the lease is ours; snowflakes are refused (503) while the [`Lease`] is not valid, and
//! [`AppState::maintain_lease`] renews or re-takes it (swapping the generator when the worker id
//! changes).

use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use idgen_core::counter::{Counter, CounterName};
use idgen_core::snowflake::{SnowflakeConfig, SnowflakeGenerator, SnowflakeId, WorkerId};
use idgen_core::timestamp::TimestampGenerator;
use idgen_core::ulid::UlidGenerator;
use idgen_core::uuid7::Uuid7Generator;
use idgen_core::{Clock, IssueError, Ulid, Uuid};
use parking_lot::RwLock;
use rand::Rng;

use crate::config::Config;
use crate::error::ApiError;
use crate::lease::{self, Held, Lease};
use crate::segment::Segments;
use crate::store::redis::RedisError;
use crate::store::{Mark, RedisStore, Snapshot, Store, StoreError};

/// The clock every generator reads; a trait object so tests (and a later issue) can inject one.
pub type SharedClock = Arc<dyn Clock>;

/// How far ahead a time mark is written. Snowflake marks: at most this far past the *clock*
/// (see [`AppState::time_margin_ms`]), never past the previous mark: after `kill -9` the next
/// run starts above the mark, and if each run added a margin to the last one's, a few quick
/// restarts would put the floor beyond the snowflake backward allowance. Timestamp ids have no
/// such allowance, so their marks go at least this far past what is needed, and further when
/// the generator runs ahead of the clock (see [`AppState::timestamp_target`]).
const TIME_MARK_AHEAD_MS: u64 = 500;
/// Smallest block of counter values reserved per write (and the block of an idle counter).
const COUNTER_BLOCK: u64 = 1_000;
/// Largest block of counter values reserved per write: what a crash can skip at most.
const MAX_COUNTER_BLOCK: u64 = 1_000_000;
/// A counter block used up faster than this makes the next one twice as large.
const FAST_BLOCK: Duration = Duration::from_secs(1);
/// A counter with no reservation for this long starts again from [`COUNTER_BLOCK`].
const IDLE_BLOCK: Duration = Duration::from_secs(10);
/// A reservation for a batch of `count` covers this many such batches, so that concurrent
/// batch requests do not each need a write (and cannot starve each other of the block).
const BATCHES_PER_RESERVATION: u64 = 16;
/// Longest a request waits in total for snowflake sequence numbers to free up.
const EXHAUSTED_WAIT_BUDGET_MS: u64 = 50;
/// How long one request keeps raising a ceiling that concurrent requests use up before it
/// answers 503. Each raise is a durable write covering many batches, so in practice one or
/// two suffice; the bound only matters if the store stops keeping up.
const CEILING_DEADLINE: Duration = Duration::from_secs(2);

/// Request limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: u32,
    pub max_counters: usize,
}

/// Everything a handler needs, shared by all workers (`web::Data<AppState>`).
pub struct AppState {
    clock: SharedClock,
    uuid7: Uuid7Generator<SharedClock>,
    ulid: UlidGenerator<SharedClock>,
    /// Swapped only in Redis mode, when a new worker id is leased.
    snowflake: RwLock<Arc<SnowflakeGenerator<SharedClock>>>,
    timestamp: TimestampGenerator<SharedClock>,
    /// Read-mostly: a name is inserted once, then only looked up.
    counters: RwLock<HashMap<CounterName, Arc<CounterSlot>>>,
    store: Arc<Store>,
    limits: Limits,
    /// Redis mode only.
    redis: Option<RedisMode>,
}

/// An embedded-mode counter and the size of its next reservation.
struct CounterSlot {
    counter: Counter,
    reservation: parking_lot::Mutex<Reservation>,
}

impl CounterSlot {
    fn starting_after(last_issued: u64) -> Self {
        Self {
            counter: Counter::starting_after(last_issued),
            reservation: parking_lot::Mutex::new(Reservation::default()),
        }
    }
}

/// The adaptive block of one counter (see the module comment).
#[derive(Debug)]
struct Reservation {
    block: u64,
    /// When this process last chose a mark for the counter; `None` before its first use.
    at: Option<Instant>,
    /// The mark chosen then.
    target: u64,
}

impl Default for Reservation {
    fn default() -> Self {
        Self { block: COUNTER_BLOCK, at: None, target: 0 }
    }
}

impl Reservation {
    /// The mark to write so that values through `needed` (a batch of `count`) can be issued.
    /// Requests that reach the ceiling together get the same mark (one write, not one per
    /// request, and one doubling).
    fn target(&mut self, needed: u64, count: u64, now: Instant) -> u64 {
        if needed <= self.target {
            return self.target;
        }
        self.block = match self.at.map(|at| now.saturating_duration_since(at)) {
            Some(lasted) if lasted < FAST_BLOCK => {
                self.block.saturating_mul(2).min(MAX_COUNTER_BLOCK)
            }
            Some(lasted) if lasted < IDLE_BLOCK => self.block,
            _ => COUNTER_BLOCK,
        };
        self.at = Some(now);
        self.target = needed.saturating_add(self.block.max(batch_reservation(count)));
        self.target
    }
}

/// What Redis mode adds: the store, the worker-id lease and the counter segments.
struct RedisMode {
    store: Arc<RedisStore>,
    lease: Lease,
    /// `Some` when `IDGEN_WORKER_ID` was given: only that id may be leased.
    fixed_worker_id: Option<u16>,
    /// `IDGEN_COUNTER_BLOCK`; 1 sends every request to Redis.
    counter_block: u64,
    segments: RwLock<HashMap<CounterName, Arc<Segments>>>,
}

/// A worker-id lease taken at start-up, handed to [`AppState::new_redis`].
pub struct InitialLease {
    pub worker_id: u16,
    pub token: String,
    pub mark_ms: u64,
    pub sent: Instant,
}

impl AppState {
    /// Builds the generators above the store's durable marks. Nothing can be issued until a
    /// first mark above them is written (the ceilings start at the marks).
    pub fn new(config: &Config, store: Store, clock: SharedClock) -> anyhow::Result<Self> {
        let worker_id = WorkerId::new(config.worker_id)?;
        let durable = store.snapshot();
        let snowflake = snowflake_above(
            &clock,
            snowflake_config(config, worker_id),
            durable.snowflake_ms,
            durable.snowflake_ms,
        );
        let timestamp = timestamp_above(&clock, durable.timestamp_ms);
        let counters = durable
            .counters
            .into_iter()
            .map(|(name, reserved_through)| {
                // Ceiling = what was reserved, so the first use reserves a fresh block.
                (name, Arc::new(CounterSlot::starting_after(reserved_through)))
            })
            .collect();
        Ok(Self {
            uuid7: Uuid7Generator::new(Arc::clone(&clock)),
            ulid: UlidGenerator::new(Arc::clone(&clock)),
            clock,
            snowflake: RwLock::new(Arc::new(snowflake)),
            timestamp,
            counters: RwLock::new(counters),
            store: Arc::new(store),
            limits: Limits { max_batch: config.max_batch, max_counters: config.max_counters },
            redis: None,
        })
    }

    /// Redis mode: the generators above the marks read from Redis, snowflakes with the worker
    /// id leased at start-up.
    pub fn new_redis(
        config: &Config,
        store: Arc<RedisStore>,
        clock: SharedClock,
        initial: InitialLease,
        timestamp_mark_ms: u64,
    ) -> anyhow::Result<Self> {
        let snowflake = snowflake_above(
            &clock,
            snowflake_config(config, WorkerId::new(initial.worker_id)?),
            initial.mark_ms,
            initial.mark_ms,
        );
        let timestamp = timestamp_above(&clock, timestamp_mark_ms);
        let lease = Lease::new(Duration::from_millis(config.lease_ttl_ms));
        lease.confirm(Held { worker_id: initial.worker_id, token: initial.token }, initial.sent);
        Ok(Self {
            uuid7: Uuid7Generator::new(Arc::clone(&clock)),
            ulid: UlidGenerator::new(Arc::clone(&clock)),
            clock,
            snowflake: RwLock::new(Arc::new(snowflake)),
            timestamp,
            counters: RwLock::new(HashMap::new()),
            store: Arc::new(Store::Redis(Arc::clone(&store))),
            limits: Limits { max_batch: config.max_batch, max_counters: config.max_counters },
            redis: Some(RedisMode {
                store,
                lease,
                fixed_worker_id: config.worker_id_fixed.then_some(config.worker_id),
                counter_block: config.counter_block,
                segments: RwLock::new(HashMap::new()),
            }),
        })
    }

    fn generator(&self) -> Arc<SnowflakeGenerator<SharedClock>> {
        Arc::clone(&self.snowflake.read())
    }

    /// The worker id snowflakes are issued with now.
    pub fn worker_id(&self) -> u16 {
        self.generator().config().worker_id.get()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn snowflake_config(&self) -> SnowflakeConfig {
        self.generator().config()
    }

    /// `embedded` (later also `redis`).
    pub fn mode(&self) -> &'static str {
        self.store.mode()
    }

    pub fn uuid<R: Rng + ?Sized>(&self, rng: &mut R) -> Uuid {
        idgen_core::uuid::generate(rng)
    }

    pub fn uuid7<R: Rng + ?Sized>(&self, rng: &mut R) -> Uuid {
        self.uuid7.generate(rng)
    }

    /// `n` uuid7s in increasing order, one clock read for all (see `generate_batch`).
    pub fn uuid7_batch<R: Rng + ?Sized>(&self, rng: &mut R, n: usize, each: impl FnMut(Uuid)) {
        self.uuid7.generate_batch(rng, n, each);
    }

    pub fn ulid<R: Rng + ?Sized>(&self, rng: &mut R) -> Ulid {
        self.ulid.generate(rng)
    }

    /// `count` snowflakes appended to `out`, increasing.
    pub async fn snowflakes(
        &self,
        count: usize,
        out: &mut Vec<SnowflakeId>,
    ) -> Result<(), ApiError> {
        if let Some(redis) = &self.redis
            && !redis.lease.is_valid()
        {
            return Err(no_lease(&redis.lease));
        }
        let generator = self.generator();
        let target_len = out.len() + count;
        let mut waited_ms = 0;
        let deadline = Instant::now() + CEILING_DEADLINE;
        while out.len() < target_len {
            let missing = target_len - out.len();
            let before = out.len();
            let result = if missing == 1 {
                generator.generate().map(|id| out.push(id))
            } else {
                generator.generate_batch(missing, out)
            };
            match result {
                Ok(()) if out.len() == before => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "snowflake generator reported success without issuing"
                    )));
                }
                Ok(()) => {}
                Err(IssueError::CeilingReached { needed, .. }) => {
                    if Instant::now() > deadline {
                        return Err(ceiling_unavailable());
                    }
                    let target = self.time_target(needed);
                    let worker_id = generator.config().worker_id.get();
                    let ceiling = Box::pin(self.raise_snowflake(worker_id, needed, target)).await?;
                    generator.set_ceiling(ceiling);
                }
                Err(IssueError::Exhausted { retry_after_ms }) => {
                    let wait_ms = retry_after_ms.max(1);
                    if waited_ms + wait_ms > EXHAUSTED_WAIT_BUDGET_MS {
                        return Err(ApiError::unavailable(
                            "every snowflake sequence number the clock allows is in use; retry in a moment",
                            1,
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                    waited_ms += wait_ms;
                }
                Err(error) => return Err(self.issue_error("snowflake", error)),
            }
        }
        Ok(())
    }

    /// One snowflake.
    pub async fn snowflake(&self) -> Result<SnowflakeId, ApiError> {
        // Fast path: a lease (Redis mode) and room below the ceiling. Any error (ceiling, clock
        // behind) takes the general path, which waits, reserves or answers it; a failed
        // `generate` issues nothing.
        if self.redis.as_ref().is_none_or(|redis| redis.lease.is_valid())
            && let Ok(id) = self.snowflake.read().generate()
        {
            return Ok(id);
        }
        let mut out = Vec::with_capacity(1);
        self.snowflakes(1, &mut out).await?;
        Ok(out[0])
    }

    /// `count` consecutive timestamp ids.
    pub async fn timestamps(&self, count: u64) -> Result<Range<u64>, ApiError> {
        let issue = || {
            if count == 1 {
                self.timestamp.generate().map(|value| value..value + 1)
            } else {
                self.timestamp.generate_batch(count)
            }
        };
        // Fast path: below the ceiling, no clock read for a deadline.
        if let Ok(range) = issue() {
            return Ok(range);
        }
        let deadline = Instant::now() + CEILING_DEADLINE;
        while Instant::now() <= deadline {
            match issue() {
                Ok(range) => return Ok(range),
                Err(IssueError::CeilingReached { needed, .. }) => {
                    let target = self.timestamp_target(needed, count);
                    let ceiling = Box::pin(self.raise(Mark::Timestamp, needed, target)).await?;
                    self.timestamp.set_ceiling(ceiling);
                }
                Err(error) => return Err(self.issue_error("timestamp", error)),
            }
        }
        Err(ceiling_unavailable())
    }

    /// `count` consecutive values of the counter `name`, creating it on first use.
    ///
    /// One range, except in Redis segment mode (`IDGEN_COUNTER_BLOCK` > 1), where a batch may
    /// span two segments: still increasing, not contiguous.
    pub async fn counter_values(
        &self,
        name: &CounterName,
        count: u64,
    ) -> Result<Vec<RangeInclusive<u64>>, ApiError> {
        if let Some(redis) = &self.redis {
            // Boxed: inline, the Redis future (~1.4 KB) would size every request's future,
            // embedded ones included, and each is moved whole (see `routes::fixed`'s tests).
            return Box::pin(self.redis_counter_values(redis, name, count)).await;
        }
        // Fast path, most requests: the counter exists and has room. No `Arc` clone and no
        // clock read (the deadline only matters once a reservation is needed).
        if let Some(slot) = self.counters.read().get(name)
            && let Ok(range) = slot.counter.take(count)
        {
            return Ok(vec![range]);
        }
        let slot = self.counter(name)?;
        let deadline = Instant::now() + CEILING_DEADLINE;
        while Instant::now() <= deadline {
            match slot.counter.take(count) {
                Ok(range) => return Ok(vec![range]),
                Err(IssueError::CeilingReached { needed, .. }) => {
                    let target = slot.reservation.lock().target(needed, count, Instant::now());
                    let ceiling =
                        Box::pin(self.raise(Mark::Counter(name.clone()), needed, target)).await?;
                    slot.counter.set_ceiling(ceiling);
                }
                Err(error) => return Err(self.issue_error("counter", error)),
            }
        }
        Err(ceiling_unavailable())
    }

    async fn redis_counter_values(
        &self,
        redis: &RedisMode,
        name: &CounterName,
        count: u64,
    ) -> Result<Vec<RangeInclusive<u64>>, ApiError> {
        if redis.counter_block <= 1 {
            // Strict mode: one INCRBY per request, so values are globally ordered.
            let range = redis.store.incr_counter(name, count).await.map_err(redis_unavailable)?;
            return Ok(vec![range]);
        }
        let segments = {
            let existing = redis.segments.read().get(name).cloned();
            match existing {
                Some(segments) => segments,
                None => {
                    let mut all = redis.segments.write();
                    if !all.contains_key(name) && all.len() >= self.limits.max_counters {
                        return Err(ApiError::TooManyCounters { max: self.limits.max_counters });
                    }
                    Arc::clone(all.entry(name.clone()).or_default())
                }
            }
        };
        segments
            .take(&redis.store, name, count, redis.counter_block)
            .await
            .map_err(redis_unavailable)
    }

    fn counter(&self, name: &CounterName) -> Result<Arc<CounterSlot>, ApiError> {
        if let Some(counter) = self.counters.read().get(name) {
            return Ok(Arc::clone(counter));
        }
        let mut counters = self.counters.write();
        if let Some(counter) = counters.get(name) {
            return Ok(Arc::clone(counter));
        }
        if counters.len() >= self.limits.max_counters {
            return Err(ApiError::TooManyCounters { max: self.limits.max_counters });
        }
        // A name the store has never seen: nothing was issued, start after 0. Its ceiling is 0,
        // so the first `take` reserves a block durably before issuing.
        let counter = Arc::new(CounterSlot::starting_after(0));
        counters.insert(name.clone(), Arc::clone(&counter));
        Ok(counter)
    }

    /// Raises the snowflake mark of `worker_id`: in Redis, only while its lease is ours.
    async fn raise_snowflake(
        &self,
        worker_id: u16,
        needed: u64,
        target: u64,
    ) -> Result<u64, ApiError> {
        let Some(redis) = &self.redis else {
            return self.raise(Mark::Snowflake, needed, target).await;
        };
        let held = match redis.lease.held() {
            Some(held) if held.worker_id == worker_id => held,
            _ => return Err(no_lease(&redis.lease)),
        };
        match redis.store.raise_worker_mark(worker_id, &held.token, needed, target).await {
            Ok(Some(ceiling)) => Ok(ceiling),
            Ok(None) => {
                tracing::warn!(
                    worker_id,
                    "the worker-id lease is held by another node; snowflakes stop"
                );
                self.lose_lease(redis);
                Err(no_lease(&redis.lease))
            }
            Err(error) => Err(redis_unavailable(error)),
        }
    }

    /// Writes a mark through the store and returns the new ceiling. Embedded: on the blocking
    /// pool (it fsyncs). Redis: the shared timestamp mark.
    async fn raise(&self, mark: Mark, needed: u64, target: u64) -> Result<u64, ApiError> {
        if let Some(redis) = &self.redis {
            return match mark {
                Mark::Timestamp => redis
                    .store
                    .raise_timestamp_mark(needed, target)
                    .await
                    .map_err(redis_unavailable),
                Mark::Snowflake => {
                    let worker_id = self.worker_id();
                    Box::pin(self.raise_snowflake(worker_id, needed, target)).await
                }
                Mark::Counter(_) => Err(ApiError::Internal(anyhow::anyhow!(
                    "counter marks are not used in Redis mode"
                ))),
            };
        }
        let store = Arc::clone(&self.store);
        match web::block(move || store.reserve(&mark, needed, target)).await {
            Ok(Ok(ceiling)) => Ok(ceiling),
            Ok(Err(error)) => {
                tracing::error!(error = %error, "cannot make a high-water mark durable");
                Err(ApiError::unavailable(
                    "the server cannot save its state right now, so it issues no more ids of this kind; retry later",
                    1,
                ))
            }
            Err(error) => Err(ApiError::Internal(anyhow::anyhow!("store task failed: {error}"))),
        }
    }

    /// A generator's refusal, as a user-facing 503.
    fn issue_error(&self, kind: &str, error: IssueError) -> ApiError {
        match error {
            IssueError::ClockMovedBackwards { last_ms, now_ms } => {
                let behind_ms = last_ms.saturating_sub(now_ms);
                let allowance = self.snowflake_config().max_backward_ms;
                let retry = behind_ms.saturating_sub(allowance).div_ceil(1000);
                ApiError::unavailable(
                    format!(
                        "the server's clock is {behind_ms} ms behind the last {kind} id it issued; \
                         {kind} ids resume when the clock catches up"
                    ),
                    retry,
                )
            }
            IssueError::TimeOutOfRange { .. } => ApiError::unavailable(
                format!(
                    "the server's clock reads a time that {kind} ids cannot represent; the operator must check the clock and the epoch"
                ),
                60,
            ),
            IssueError::Exhausted { .. } => ApiError::unavailable(
                format!("no {kind} ids are left for this moment; retry in a moment"),
                1,
            ),
            IssueError::CeilingReached { .. } => ceiling_unavailable(),
        }
    }

    /// Why the server cannot issue every kind right now (empty when ready), and how many
    /// seconds to wait before asking again.
    pub async fn readiness(&self) -> (Vec<String>, u64) {
        let mut reasons = Vec::new();
        let mut retry_after_secs = 1;
        let generator = self.generator();
        let config = generator.config();
        let now_ms = self.clock.now_ms();
        let high_water_ms = generator.high_water_ms();
        if now_ms < config.epoch_ms {
            reasons.push("snowflake: the clock reads a time before the snowflake epoch".to_owned());
            retry_after_secs = 60;
        } else if high_water_ms > now_ms.saturating_add(config.max_backward_ms) {
            let behind_ms = high_water_ms - now_ms;
            reasons.push(format!(
                "snowflake: the clock is {behind_ms} ms behind the last issued id (allowance {} ms)",
                config.max_backward_ms
            ));
            retry_after_secs =
                retry_after_secs.max((behind_ms - config.max_backward_ms).div_ceil(1000));
        }
        if let Some(redis) = &self.redis {
            if let Err(error) = redis.store.ping().await {
                tracing::warn!(error = %error, "readiness: Redis unreachable");
                reasons.push("redis: unreachable".to_owned());
            }
            if !redis.lease.is_valid() {
                reasons.push("snowflake: this node holds no worker-id lease right now".to_owned());
                retry_after_secs = retry_after_secs.max(redis.lease.retry_after_secs());
            }
            return (reasons, retry_after_secs);
        }
        let store = Arc::clone(&self.store);
        match web::block(move || store.check_writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "readiness: data directory not writable");
                reasons.push("store: the data directory is not writable".to_owned());
            }
            Err(error) => {
                tracing::warn!(error = %error, "readiness: store check failed");
                reasons.push("store: the writability check failed".to_owned());
            }
        }
        (reasons, retry_after_secs)
    }

    /// How far ahead of the clock time marks go: 500 ms, but at most half the snowflake
    /// backward allowance, so that a restart right after `kill -9` (the floor is then ahead of
    /// the clock by up to this much) stays within the allowance.
    fn time_margin_ms(&self) -> u64 {
        TIME_MARK_AHEAD_MS.min(self.snowflake_config().max_backward_ms / 2).max(1)
    }

    /// The mark to write when `needed` is above the ceiling.
    fn time_target(&self, needed: u64) -> u64 {
        needed.max(self.clock.now_ms().saturating_add(self.time_margin_ms()))
    }

    /// The timestamp mark to write when `needed` (the last of a batch of `count`) is above the
    /// ceiling: `max(500 ms, 16 batches, the lead)` past `max(needed, clock)`. Timestamp ids
    /// have no backward allowance to protect (a restart simply continues above the mark), so
    /// the reservation can be generous; see the module comment.
    fn timestamp_target(&self, needed: u64, count: u64) -> u64 {
        let now_ms = self.clock.now_ms();
        let lead = needed.saturating_sub(now_ms);
        let ahead = TIME_MARK_AHEAD_MS.max(count.saturating_mul(BATCHES_PER_RESERVATION)).max(lead);
        needed.max(now_ms).saturating_add(ahead)
    }

    /// Keeps the marks ahead of a busy server so requests rarely wait for a write. Called
    /// every ~100 ms; writes only while ids are being issued close to a mark.
    pub async fn refresh_marks(&self) {
        self.refresh_snowflake_mark().await;
        self.refresh_timestamp_mark().await;
        self.refresh_counter_marks().await;
    }

    /// Snowflake: while ids are issued near a mark that the clock is about to reach.
    async fn refresh_snowflake_mark(&self) {
        if let Some(redis) = &self.redis
            && !redis.lease.is_valid()
        {
            return;
        }
        let within = self.time_margin_ms() / 2;
        let generator = self.generator();
        let high_water = generator.high_water_ms();
        let durable = self.store.mark(&Mark::Snowflake);
        let now_ms = self.clock.now_ms();
        let idle = high_water.saturating_add(within) < durable;
        let far_ahead = durable > now_ms.saturating_add(within);
        if idle || far_ahead {
            return;
        }
        let target = self.time_target(high_water.saturating_add(1));
        let worker_id = generator.config().worker_id.get();
        if let Ok(ceiling) = self.raise_snowflake(worker_id, target, target).await {
            generator.set_ceiling(ceiling);
        }
    }

    /// Timestamp: once less than half a reservation is left above the high water (which also
    /// holds when the generator runs far ahead of the clock). An idle generator's high water
    /// stays put, so it stops after one write.
    async fn refresh_timestamp_mark(&self) {
        let high_water = self.timestamp.high_water_ms();
        let durable = self.store.mark(&Mark::Timestamp);
        let needed = high_water.saturating_add(1);
        let target = self.timestamp_target(needed, 1);
        let reservation = target.saturating_sub(needed);
        let left = durable.saturating_sub(high_water);
        let clock_passed_it = durable < self.clock.now_ms();
        if left > reservation / 2 || clock_passed_it {
            return;
        }
        if let Ok(ceiling) = self.raise(Mark::Timestamp, target, target).await {
            self.timestamp.set_ceiling(ceiling);
        }
    }

    /// Embedded counters used in this run: once less than half a block is left.
    async fn refresh_counter_marks(&self) {
        if self.redis.is_some() {
            return;
        }
        let slots: Vec<(CounterName, Arc<CounterSlot>)> = self
            .counters
            .read()
            .iter()
            .map(|(name, slot)| (name.clone(), Arc::clone(slot)))
            .collect();
        for (name, slot) in slots {
            let ceiling = slot.counter.ceiling();
            let left = ceiling.saturating_sub(slot.counter.last_issued());
            let target = {
                let mut reservation = slot.reservation.lock();
                if reservation.at.is_none() || left > reservation.block / 2 {
                    continue;
                }
                reservation.target(ceiling.saturating_add(1), 1, Instant::now())
            };
            if let Ok(raised) = self.raise(Mark::Counter(name), target, target).await {
                slot.counter.set_ceiling(raised);
            }
        }
    }

    /// At a clean shutdown: rewrite the marks down to what was really issued.
    pub fn settle(&self) -> Result<(), StoreError> {
        let counters = self
            .counters
            .read()
            .iter()
            .map(|(name, slot)| (name.clone(), slot.counter.last_issued()))
            .collect();
        self.store.settle(&Snapshot {
            snowflake_ms: self.generator().high_water_ms(),
            timestamp_ms: self.timestamp.high_water_ms(),
            counters,
        })
    }
}

impl AppState {
    /// Redis mode: one look at the worker-id lease (called every [`Lease::tick`]). Renews it
    /// when due; when it was lost, stops snowflakes and leases a worker id again (the same one
    /// if it is free, else another unless `IDGEN_WORKER_ID` fixes it).
    pub async fn maintain_lease(&self) {
        let Some(redis) = &self.redis else { return };
        let lease = &redis.lease;
        match lease.held() {
            Some(held) => {
                if !lease.renewal_due() && lease.is_valid() {
                    return;
                }
                let sent = Instant::now();
                match redis.store.renew(held.worker_id, &held.token, lease.ttl()).await {
                    Ok(true) => lease.confirm(held, sent),
                    Ok(false) => {
                        tracing::warn!(
                            worker_id = held.worker_id,
                            "the worker-id lease expired or was taken; snowflakes stop until a new one is held"
                        );
                        self.lose_lease(redis);
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
            None => self.reacquire(redis).await,
        }
    }

    fn lose_lease(&self, redis: &RedisMode) {
        redis.lease.drop_lease();
        // Whatever is in flight stops at the next ceiling check.
        self.generator().set_ceiling(0);
    }

    async fn reacquire(&self, redis: &RedisMode) {
        let previous = self.generator();
        let previous_id = previous.config().worker_id.get();
        let token = lease::new_token();
        let ttl = redis.lease.ttl();
        let acquired =
            lease::acquire(&redis.store, redis.fixed_worker_id, Some(previous_id), &token, ttl)
                .await;
        let (worker_id, mark_ms, sent) = match acquired {
            Ok(Some(found)) => found,
            Ok(None) => {
                tracing::warn!(
                    "no worker id can be leased now (all taken, or the fixed one is held)"
                );
                return;
            }
            Err(error) => {
                tracing::debug!(error = %error, "cannot lease a worker id yet");
                return;
            }
        };
        // Start above the worker's mark, and above what this process issued with it.
        let mut floor = mark_ms;
        if worker_id == previous_id {
            floor = floor.max(previous.high_water_ms());
        }
        let config = SnowflakeConfig {
            worker_id: WorkerId::new(worker_id).expect("lease::acquire returns ids up to 1023"),
            ..previous.config()
        };
        let generator = snowflake_above(&self.clock, config, floor, mark_ms);
        redis.store.set_snowflake_mark(mark_ms);
        *self.snowflake.write() = Arc::new(generator);
        redis.lease.confirm(Held { worker_id, token }, sent);
        tracing::info!(worker_id, "leased a worker id; snowflakes resume");
    }

    /// Redis mode, at a clean shutdown: store the real snowflake high water as the worker's
    /// mark and release the lease, so that the id is free at once.
    pub async fn release_lease(&self) -> Result<(), RedisError> {
        let Some(redis) = &self.redis else { return Ok(()) };
        let Some(held) = redis.lease.drop_lease() else { return Ok(()) };
        let high_water = self.generator().high_water_ms();
        self.generator().set_ceiling(0);
        redis.store.release(held.worker_id, &held.token, high_water).await.map(|_| ())
    }

    /// The lease maintenance interval (Redis mode).
    pub fn lease_tick(&self) -> Option<Duration> {
        self.redis.as_ref().map(|redis| redis.lease.tick())
    }
}

fn no_lease(lease: &Lease) -> ApiError {
    ApiError::unavailable(
        "this node holds no snowflake worker id right now (its Redis lease could not be renewed); retry in a moment or use another node",
        lease.retry_after_secs(),
    )
}

fn redis_unavailable(error: RedisError) -> ApiError {
    tracing::warn!(error = %error, "Redis call failed");
    ApiError::unavailable("the server cannot reach its Redis right now; retry in a moment", 1)
}

/// How many values (counter) or ms (timestamp) one reservation for a batch of `count` covers.
fn batch_reservation(count: u64) -> u64 {
    COUNTER_BLOCK.max(count.saturating_mul(BATCHES_PER_RESERVATION))
}

fn ceiling_unavailable() -> ApiError {
    ApiError::unavailable("the server could not reserve ids durably; retry in a moment", 1)
}

fn snowflake_config(config: &Config, worker_id: WorkerId) -> SnowflakeConfig {
    SnowflakeConfig {
        epoch_ms: config.snowflake_epoch_ms,
        worker_id,
        max_backward_ms: config.snowflake_max_backward_ms,
    }
}

/// A snowflake generator that resumes above `floor` (a durable mark, or what this process
/// already issued) and issues nothing above `ceiling` until the store makes a higher mark
/// durable.
fn snowflake_above(
    clock: &SharedClock,
    config: SnowflakeConfig,
    floor: u64,
    ceiling: u64,
) -> SnowflakeGenerator<SharedClock> {
    let generator = SnowflakeGenerator::new(Arc::clone(clock), config).with_floor(floor);
    generator.set_ceiling(ceiling);
    generator
}

/// A timestamp generator that resumes above the durable `mark` and stops at it until a higher
/// one is written.
fn timestamp_above(clock: &SharedClock, mark: u64) -> TimestampGenerator<SharedClock> {
    let generator = TimestampGenerator::new(Arc::clone(clock)).with_floor(mark);
    generator.set_ceiling(mark);
    generator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_blocks_double_while_fast_and_reset_when_idle() {
        let start = Instant::now();
        let mut reservation = Reservation::default();
        // First use: the smallest block.
        assert_eq!(reservation.target(1, 1, start), 1 + COUNTER_BLOCK);
        // Requests that reach the same ceiling together share one mark (one doubling).
        assert_eq!(reservation.target(500, 1, start), 1 + COUNTER_BLOCK);
        // Used up within a second: twice as large each time, up to the maximum.
        let mut needed = 1 + COUNTER_BLOCK + 1;
        let mut expected_block = COUNTER_BLOCK;
        for step in 1..=15u32 {
            let now = start + Duration::from_millis(100 * u64::from(step));
            expected_block = (expected_block * 2).min(MAX_COUNTER_BLOCK);
            let target = reservation.target(needed, 1, now);
            assert_eq!(target - needed, expected_block, "step {step}");
            needed = target + 1;
        }
        assert_eq!(reservation.block, MAX_COUNTER_BLOCK);
        // A block that lasts a few seconds keeps its size; after an idle spell, back to 1000.
        let now = start + Duration::from_secs(5);
        let target = reservation.target(needed, 1, now);
        assert_eq!(target - needed, MAX_COUNTER_BLOCK);
        let later = now + IDLE_BLOCK;
        assert_eq!(reservation.target(target + 1, 1, later) - (target + 1), COUNTER_BLOCK);
        // A large batch still reserves 16 of its size.
        let mut reservation = Reservation::default();
        assert_eq!(reservation.target(10_000, 10_000, start), 10_000 + 160_000);
    }
}
