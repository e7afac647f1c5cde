//! A back end in memory, for the in-process tests: marks in a map that clones share (so a
//! "restart" on the same `MemoryBackend` resumes above them), a fixed worker id, and faults on
//! command: writes that fail, calls that never answer, a store that forgets everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use idgen_core::counter::CounterName;
use parking_lot::Mutex;

use super::{
    Backend, BackendError, BackendFuture, Mark, Opened, RateBucket, RateDecision, RateTokens,
    Readiness, Snapshot,
};
use crate::config::Config;

/// The durable part, shared by every clone.
#[derive(Default)]
struct Durable {
    snowflake_ms: HashMap<u16, u64>,
    marks: HashMap<Mark, u64>,
    /// Retired counters' marks.
    retired: HashMap<CounterName, u64>,
}

#[derive(Default)]
struct Shared {
    durable: Mutex<Durable>,
    fail_writes: AtomicBool,
    stall: AtomicBool,
    share_rate_limits: AtomicBool,
    /// GCRA "theoretical arrival time" per client, ns after `epoch`.
    buckets: Mutex<HashMap<RateBucket, u128>>,
    /// Per-key quotas spent: (key, day) -> IDs.
    quotas: Mutex<HashMap<(Arc<str>, u64), u64>>,
    epoch: Mutex<Option<Instant>>,
}

/// See the module doc. Cheap to clone; clones share everything.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
}

/// One opened instance: the worker id it was opened with.
struct Instance {
    shared: Arc<Shared>,
    worker_id: u16,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also keeps rate-limit buckets, as a store shared by several nodes does.
    pub fn sharing_rate_limits(self) -> Self {
        self.shared.share_rate_limits.store(true, Ordering::Relaxed);
        self
    }

    /// While set, every mark write fails as a full disk would.
    pub fn fail_writes(&self, fail: bool) {
        self.shared.fail_writes.store(fail, Ordering::Relaxed);
    }

    /// While set, every call started never answers.
    pub fn stall(&self, stall: bool) {
        self.shared.stall.store(stall, Ordering::Relaxed);
    }

    /// Sets `mark` to `value` as if a run had written it (a runaway or hand-edited mark).
    pub fn set_mark(&self, mark: Mark, value: u64) {
        self.shared.durable.lock().marks.insert(mark, value);
    }

    /// Loses every mark, as a store restarted empty does.
    pub fn forget(&self) {
        *self.shared.durable.lock() = Durable::default();
    }

    /// Opens it for a server with `config` (its worker id), with what is durable now.
    pub fn open(&self, config: &Config) -> Opened {
        let durable = self.shared.durable.lock();
        let snapshot = Snapshot {
            worker_id: config.worker_id,
            snowflake_ms: durable.snowflake_ms.get(&config.worker_id).copied().unwrap_or(0),
            timestamp_ms: durable.marks.get(&Mark::Timestamp).copied().unwrap_or(0),
            uuid7_ms: durable.marks.get(&Mark::Uuid7).copied().unwrap_or(0),
            ulid_ms: durable.marks.get(&Mark::Ulid).copied().unwrap_or(0),
            ksuid_ms: durable.marks.get(&Mark::Ksuid).copied().unwrap_or(0),
            counters: durable
                .marks
                .iter()
                .filter_map(|(mark, value)| match mark {
                    Mark::Counter(name) => Some((name.clone(), *value)),
                    Mark::Timestamp | Mark::Uuid7 | Mark::Ulid | Mark::Ksuid => None,
                })
                .collect(),
            retired_counters: durable
                .retired
                .iter()
                .filter(|(name, _)| !durable.marks.contains_key(&Mark::Counter((*name).clone())))
                .map(|(name, mark)| (name.clone(), *mark))
                .collect(),
        };
        let instance = Instance { shared: Arc::clone(&self.shared), worker_id: config.worker_id };
        Opened { backend: Arc::new(instance), durable: snapshot }
    }
}

/// Which durable value a raise is for.
enum Slot<'a> {
    Worker(u16),
    Mark(&'a Mark),
}

impl Instance {
    /// The value of `slot`, raised to `target` unless at `needed` already.
    fn raise(&self, slot: Slot<'_>, needed: u64, target: u64) -> Result<u64, BackendError> {
        let mut durable = self.shared.durable.lock();
        let durable = &mut *durable;
        let value = match slot {
            Slot::Worker(worker_id) => durable.snowflake_ms.entry(worker_id).or_default(),
            Slot::Mark(mark) => durable.marks.entry(mark.clone()).or_default(),
        };
        if *value >= needed {
            return Ok(*value);
        }
        if self.shared.fail_writes.load(Ordering::Relaxed) {
            return Err(BackendError::NotDurable { detail: "injected write failure".to_owned() });
        }
        *value = target.max(needed);
        Ok(*value)
    }

    /// `answer`, or a future that never completes while the store stalls.
    fn answer<'a, T: Send + 'a>(
        &self,
        answer: impl FnOnce() -> T + Send + 'a,
    ) -> BackendFuture<'a, T> {
        if self.shared.stall.load(Ordering::Relaxed) {
            return Box::pin(std::future::pending());
        }
        let value = answer();
        Box::pin(async move { value })
    }
}

impl Backend for Instance {
    fn mode(&self) -> &'static str {
        "memory"
    }

    fn store_name(&self) -> &'static str {
        "memory store"
    }

    fn raise_mark<'a>(
        &'a self,
        mark: &'a Mark,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'a, Result<u64, BackendError>> {
        self.answer(move || self.raise(Slot::Mark(mark), needed, target))
    }

    fn worker_valid(&self) -> bool {
        true
    }

    fn worker_retry_after_secs(&self) -> u64 {
        1
    }

    fn raise_worker_mark(
        &self,
        worker_id: u16,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'_, Result<Option<u64>, BackendError>> {
        self.answer(move || {
            if worker_id != self.worker_id {
                return Ok(None);
            }
            self.raise(Slot::Worker(worker_id), needed, target).map(Some)
        })
    }

    fn rate_tokens(&self) -> Option<&dyn RateTokens> {
        self.shared.share_rate_limits.load(Ordering::Relaxed).then_some(self as &dyn RateTokens)
    }

    fn retire_counter<'a>(
        &'a self,
        name: &'a CounterName,
    ) -> BackendFuture<'a, Result<Option<u64>, BackendError>> {
        self.answer(move || {
            let mut durable = self.shared.durable.lock();
            let Some(mark) = durable.marks.remove(&Mark::Counter(name.clone())) else {
                return Ok(None);
            };
            let kept = durable.retired.entry(name.clone()).or_default();
            *kept = (*kept).max(mark);
            Ok(Some(*kept))
        })
    }

    fn readiness(&self) -> BackendFuture<'_, Readiness> {
        self.answer(|| {
            let mut readiness =
                Readiness { reasons: Vec::new(), retry_after_secs: 1, store_up: true };
            if self.shared.fail_writes.load(Ordering::Relaxed) {
                readiness.reasons.push("store: writes fail".to_owned());
            }
            readiness
        })
    }

    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>> {
        self.answer(move || {
            let mut durable = self.shared.durable.lock();
            durable.snowflake_ms.insert(high_water.worker_id, high_water.snowflake_ms);
            durable.marks.insert(Mark::Timestamp, high_water.timestamp_ms);
            durable.marks.insert(Mark::Uuid7, high_water.uuid7_ms);
            durable.marks.insert(Mark::Ulid, high_water.ulid_ms);
            durable.marks.insert(Mark::Ksuid, high_water.ksuid_ms);
            for (name, value) in &high_water.counters {
                durable.marks.insert(Mark::Counter(name.clone()), *value);
            }
            Ok(())
        })
    }
}

impl RateTokens for Instance {
    /// GCRA, as the Redis script does it, on this process's monotonic clock.
    fn take(
        &self,
        bucket: RateBucket,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> BackendFuture<'_, Result<RateDecision, BackendError>> {
        self.answer(move || {
            let now = {
                let mut epoch = self.shared.epoch.lock();
                epoch.get_or_insert_with(Instant::now).elapsed().as_nanos()
            };
            let interval = 1_000_000_000 / u128::from(per_second.max(1));
            let tolerance = interval * u128::from(burst);
            let mut buckets = self.shared.buckets.lock();
            let tat = buckets.entry(bucket).or_default();
            *tat = (*tat).max(now);
            let fits = (tolerance.saturating_sub(*tat - now)) / interval;
            let granted = fits.min(u128::from(want.max(1))) as u32;
            if granted == 0 {
                let wait = (*tat + interval).saturating_sub(tolerance + now);
                return Ok(RateDecision::Limited { wait: Duration::from_nanos(wait as u64) });
            }
            *tat += u128::from(granted) * interval;
            let remaining = (tolerance.saturating_sub(*tat - now) / interval) as u32;
            Ok(RateDecision::Allowed { granted, remaining })
        })
    }

    fn spend_quota(
        &self,
        key: Arc<str>,
        day: u64,
        want: u64,
        quota: u64,
    ) -> BackendFuture<'_, Result<bool, BackendError>> {
        self.answer(move || {
            let mut quotas = self.shared.quotas.lock();
            let spent = quotas.entry((key, day)).or_default();
            if spent.saturating_add(want) > quota {
                return Ok(false);
            }
            *spent += want;
            Ok(true)
        })
    }
}
