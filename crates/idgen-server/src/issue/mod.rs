//! The issuing layer: every generator, and the rules that tie their ceilings to durable marks
//! ([`policy`]). It talks to its store only through the [`Backend`] trait and knows nothing of
//! which one that is.
//!
//! The hot paths (uuid, uuid7, ulid, snowflake, timestamp, random, node-issued counters) take
//! no lock here: the generators are lock-light atomics in idgen-core. Only when a generator
//! reports `CeilingReached` does a request go to the back end, which writes a mark *ahead* of
//! what it needs, and then the ceiling is raised. A background task ([`Issuer::refresh_marks`])
//! keeps the marks ahead of a busy server so that requests rarely wait for that write.
//!
//! One file per stateful kind: [`snowflake`] (the worker id and its swaps), [`timestamp`],
//! [`counter`] (node-issued counters, or the back end's shared ones).

mod counter;
pub use counter::{AnyNewCounter, NewCounters};
pub mod policy;
mod snowflake;
mod time;

use std::sync::Arc;

use idgen_core::counter::CounterName;
use idgen_core::random::{self, Alphabet, Length};
use idgen_core::snowflake::{SnowflakeConfig, WorkerId};
use idgen_core::timestamp::TimestampGenerator;
use idgen_core::typeid::{self, Prefix};
use idgen_core::ulid::UlidGenerator;
use idgen_core::uuid7::Uuid7Generator;
use idgen_core::wire::{CounterStatus, MarkStatus};
use idgen_core::{Clock, Kind, Ulid, Uuid};
use rand::Rng;

use crate::backend::{Backend, Readiness, Snapshot};
use crate::config::Config;
use crate::error::ApiError;
use counter::LocalCounters;
use snowflake::SnowflakeSlot;
use time::{Marked, ksuid_above, timestamp_above, ulid_above, uuid7_above};

/// The clock every generator reads; a trait object so tests can inject one.
pub type SharedClock = Arc<dyn Clock>;

/// The parameters of a kind besides the count, validated (see `routes::ids`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    /// Kind counter.
    pub name: CounterName,
    /// Kind random.
    pub length: Length,
    pub alphabet: Alphabet,
    /// Kind typeid.
    pub prefix: Prefix,
}

/// Where issued IDs go, each as text: the response body being written.
pub trait IdSink {
    /// Appends one ID, which `write` puts straight into the body. Its text must need no
    /// escaping in a JSON string: true of every kind's characters but a caller's alphabet.
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>));

    /// Appends one ID whose text may hold `"` or `\` (a caller's own alphabet for `random`),
    /// escaped where the body is JSON.
    fn push_escaped_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.push_with(write);
    }

    /// A UUID, hyphenated lower case, without going through `core::fmt` (batches of uuid7
    /// spend a noticeable share of their time formatting).
    fn push_uuid(&mut self, id: Uuid) {
        let mut text = Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut text);
        self.push_with(|buffer| buffer.extend_from_slice(text.as_bytes()));
    }

    /// Crockford base32, through the crate's array encoder rather than its `Display`, which
    /// encodes into the same array and then goes through `core::fmt`.
    fn push_ulid(&mut self, id: Ulid) {
        let mut text = [0; 26];
        self.push_with(|buffer| buffer.extend_from_slice(id.array_to_str(&mut text).as_bytes()));
    }

    /// A number in decimal (see [`push_decimal`]).
    fn push_u64(&mut self, id: u64) {
        self.push_with(|buffer| push_decimal(buffer, id));
    }
}

/// A sink that writes each UUID pushed to it as a TypeID with `prefix` into `out`.
struct TypeIds<'a, S> {
    prefix: &'a Prefix,
    out: &'a mut S,
}

impl<S: IdSink> IdSink for TypeIds<'_, S> {
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.out.push_with(write);
    }

    fn push_uuid(&mut self, id: Uuid) {
        let prefix = self.prefix;
        self.out.push_with(|buffer| typeid::encode_into(prefix, id, buffer));
    }
}

/// Appends `value` in decimal: `itoa` writes it in a few dozen instructions where `Display`
/// goes through `core::fmt` (about 200 per ID).
pub fn push_decimal(buffer: &mut Vec<u8>, value: u64) {
    buffer.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// The generators, above the marks of one back end.
pub struct Issuer {
    clock: SharedClock,
    backend: Arc<dyn Backend>,
    uuid7: Marked<Uuid7Generator<SharedClock>>,
    ulid: Marked<UlidGenerator<SharedClock>>,
    ksuid: Marked<idgen_core::ksuid::KsuidGenerator<SharedClock>>,
    snowflake: SnowflakeSlot,
    timestamp: Marked<TimestampGenerator<SharedClock>>,
    counters: LocalCounters,
}

impl Issuer {
    /// Builds the generators above `durable`, the marks the back end held when it opened.
    /// Nothing durable can be issued until a first mark above them is written (the ceilings
    /// start at the marks).
    pub fn new(
        config: &Config,
        backend: Arc<dyn Backend>,
        durable: Snapshot,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let snowflake_config = SnowflakeConfig {
            epoch_ms: config.snowflake_epoch_ms,
            worker_id: WorkerId::within(durable.worker_id, config.snowflake_layout)?,
            max_backward_ms: config.snowflake_max_backward_ms,
            layout: config.snowflake_layout,
        };
        Ok(Self {
            uuid7: uuid7_above(&clock, durable.uuid7_ms),
            ulid: ulid_above(&clock, durable.ulid_ms),
            ksuid: ksuid_above(&clock, durable.ksuid_ms),
            snowflake: SnowflakeSlot::new(&clock, snowflake_config, durable.snowflake_ms),
            timestamp: timestamp_above(&clock, durable.timestamp_ms),
            counters: LocalCounters::new(
                durable.counters,
                durable.retired_counters,
                config.max_counters,
            ),
            clock,
            backend,
        })
    }

    /// The back end the marks are kept in.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The back end, shared (the rate limiter's shared buckets live in it too).
    pub fn backend_arc(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    /// The clock every generator reads.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Each time-ordered kind's ceiling (the durable mark it may issue up to) and high water,
    /// for `/v1/status` and `idgen_mark_lead_seconds`.
    pub fn marks(&self) -> Vec<MarkStatus> {
        let now = self.clock.now_ms();
        let status = |kind: &str, mark_ms: u64, high_water_ms: u64| {
            let lead_ms =
                i64::try_from(mark_ms).unwrap_or(i64::MAX) - i64::try_from(now).unwrap_or(i64::MAX);
            MarkStatus::new(kind, mark_ms, high_water_ms, lead_ms)
        };
        let snowflake = self.snowflake.generator();
        vec![
            status("snowflake", snowflake.ceiling_ms(), snowflake.high_water_ms()),
            status(
                "timestamp",
                self.timestamp.generator.ceiling_ms(),
                self.timestamp.generator.high_water_ms(),
            ),
            status(
                "uuid7",
                self.uuid7.generator.ceiling_ms(),
                self.uuid7.generator.high_water_ms(),
            ),
            status("ulid", self.ulid.generator.ceiling_ms(), self.ulid.generator.high_water_ms()),
            status(
                "ksuid",
                self.ksuid.generator.ceiling_ms(),
                self.ksuid.generator.high_water_ms(),
            ),
        ]
    }

    /// Up to `limit` of the counters this node issues itself, by name.
    pub fn local_counters(&self, limit: usize) -> Vec<CounterStatus> {
        self.counters.status(limit)
    }

    /// The worker id snowflakes are issued with now.
    pub fn worker_id(&self) -> u16 {
        self.snowflake_config().worker_id.get()
    }

    pub fn snowflake_config(&self) -> SnowflakeConfig {
        self.snowflake.generator().config()
    }

    /// `count` IDs of `kind` with `params`, in generation order, into `out`.
    pub async fn issue(
        &self,
        kind: Kind,
        params: &Params,
        count: usize,
        out: &mut impl IdSink,
    ) -> Result<(), ApiError> {
        self.issue_for(kind, params, count, out, AnyNewCounter).await
    }

    /// [`Issuer::issue`], where a new counter name must be allowed by `new_names`.
    pub async fn issue_for(
        &self,
        kind: Kind,
        params: &Params,
        count: usize,
        out: &mut impl IdSink,
        new_names: impl NewCounters,
    ) -> Result<(), ApiError> {
        match kind {
            Kind::Uuid => {
                let mut rng = rand::rng();
                (0..count).for_each(|_| out.push_uuid(self.uuid(&mut rng)));
            }
            Kind::Uuid7 => self.uuid7s(&mut rand::rng(), count, out).await?,
            // The uuid7 generator's UUIDs, written as TypeIDs; boxed, so that its larger
            // state stays out of every other kind's request future.
            Kind::TypeId => Box::pin(self.typeids(&params.prefix, count, out)).await?,
            Kind::Ulid => {
                let mut rng = rand::rng();
                for _ in 0..count {
                    out.push_ulid(self.ulid(&mut rng).await?);
                }
            }
            Kind::Ksuid => {
                let mut rng = rand::rng();
                for _ in 0..count {
                    let ksuid = self.ksuid(&mut rng).await?;
                    out.push_with(|buffer| ksuid.encode_into(buffer));
                }
            }
            Kind::Random => {
                let mut rng = rand::rng();
                // Only a caller's own alphabet can hold a character JSON escapes.
                let quoted = |set: random::CharSet| set.contains(b'"') || set.contains(b'\\');
                let escape = matches!(params.alphabet, Alphabet::Custom(set) if quoted(set));
                let drawer = random::Drawer::new(params.alphabet);
                for _ in 0..count {
                    let write = |buffer: &mut Vec<u8>| {
                        drawer.generate_into(&mut rng, params.length, buffer);
                    };
                    if escape { out.push_escaped_with(write) } else { out.push_with(write) }
                }
            }
            Kind::Snowflake if count == 1 => out.push_u64(self.snowflake().await?.get()),
            Kind::Snowflake => {
                let mut ids = Vec::with_capacity(count);
                self.snowflakes(count, &mut ids).await?;
                ids.into_iter().for_each(|id| out.push_u64(id.get()));
            }
            Kind::Timestamp => {
                self.timestamps(count as u64).await?.for_each(|value| out.push_u64(value));
            }
            Kind::Counter => {
                let ranges = self.counter_values_for(&params.name, count as u64, new_names).await?;
                ranges.into_iter().flatten().for_each(|value| out.push_u64(value));
            }
            // `Kind` is non-exhaustive for the SDK's sake, so the compiler no longer names a
            // catalogue kind this match forgot; the black-box tests that issue every kind of
            // `Kind::ALL` do, and a client meanwhile gets a 404 rather than a wrong ID.
            _ => return Err(ApiError::UnknownKind),
        }
        Ok(())
    }

    /// `count` TypeIDs with `prefix` into `out`.
    async fn typeids(
        &self,
        prefix: &Prefix,
        count: usize,
        out: &mut impl IdSink,
    ) -> Result<(), ApiError> {
        let mut typeids = TypeIds { prefix, out };
        self.uuid7s(&mut rand::rng(), count, &mut typeids).await
    }

    pub fn uuid<R: Rng + ?Sized>(&self, rng: &mut R) -> Uuid {
        idgen_core::uuid::generate(rng)
    }

    /// Why the server cannot issue every kind right now (empty when ready), and how many
    /// seconds to wait before asking again.
    pub async fn readiness(&self) -> Readiness {
        let mut readiness = self.snowflake_readiness();
        self.time_readiness(&mut readiness);
        let store = self.backend.readiness().await;
        readiness.reasons.extend(store.reasons);
        readiness.retry_after_secs = readiness.retry_after_secs.max(store.retry_after_secs);
        readiness.store_up = store.store_up;
        readiness
    }

    /// Keeps the marks ahead of a busy server so requests rarely wait for a write. Called
    /// every ~100 ms; writes only while ids are being issued close to a mark.
    pub async fn refresh_marks(&self) {
        self.refresh_snowflake_mark().await;
        self.refresh_time_marks().await;
        self.refresh_counter_marks().await;
    }

    /// The back end's worker-id maintenance interval, if it has any.
    pub fn worker_tick(&self) -> Option<std::time::Duration> {
        self.backend.worker_tick()
    }

    /// One look at the worker id (called every [`Issuer::worker_tick`]): renews its lease, or
    /// takes one again when it was lost, swapping the snowflake generator when the id changes.
    pub async fn maintain_worker(&self) {
        self.backend.maintain_worker(self).await;
    }

    /// At a clean shutdown, when nothing is issued any more: the marks go down to what was
    /// really issued, and the worker id is given up.
    pub async fn settle(&self) -> Result<(), crate::backend::BackendError> {
        let generator = self.snowflake.generator();
        let high_water = Snapshot {
            worker_id: generator.config().worker_id.get(),
            snowflake_ms: generator.high_water_ms(),
            timestamp_ms: self.timestamp.generator.high_water_ms(),
            uuid7_ms: self.uuid7.generator.high_water_ms(),
            ulid_ms: self.ulid.generator.high_water_ms(),
            ksuid_ms: self.ksuid.generator.high_water_ms(),
            counters: self.counters.issued(),
            retired_counters: Vec::new(),
        };
        generator.set_ceiling(0);
        self.backend.settle(&high_water).await
    }
}
