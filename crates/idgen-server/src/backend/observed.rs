//! A back end seen through the metrics: every operation of the wrapped [`Backend`] counted by
//! outcome and timed (`idgen_store_operations_total`, `idgen_store_operation_duration_seconds`),
//! whichever store it is. The decorator sits on the seam, so no back end records anything.

use std::ops::{Range, RangeInclusive};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen_core::counter::CounterName;

use super::{
    Backend, BackendError, BackendFuture, CounterStatus, Mark, NewCounterName, RateBucket,
    RateDecision, RateTokens, Readiness, SharedCounters, SharedTimestamps, Snapshot, WorkerEvents,
};
use crate::observe::incidents::Incidents;
use crate::observe::metrics::{Metrics, STORE_OPS, STORE_OUTCOMES};

/// Operation numbers, as in [`crate::observe::metrics::STORE_OPS`].
const RAISE_MARK: usize = 0;
const RAISE_WORKER_MARK: usize = 1;
const TAKE_COUNTER: usize = 2;
const TAKE_TIMESTAMPS: usize = 3;
const TAKE_TOKENS: usize = 4;
const READINESS: usize = 5;
const MAINTAIN_WORKER: usize = 6;
const SETTLE: usize = 7;
const RETIRE_COUNTER: usize = 8;

/// The outcome label of a result (see [`crate::observe::metrics::STORE_OUTCOMES`]).
fn outcome<T>(result: &Result<T, BackendError>) -> usize {
    match result {
        Ok(_) => 0,
        Err(BackendError::Unreachable { .. }) => 1,
        Err(BackendError::NotDurable { .. }) => 2,
        Err(BackendError::Regressed { .. }) => 3,
        Err(BackendError::TooManyCounters { .. } | BackendError::NewCounterRefused { .. }) => 4,
        Err(BackendError::Internal { .. }) => 5,
    }
}

/// `inner`, observed.
pub struct Observed {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    incidents: Arc<Incidents>,
}

impl Observed {
    pub fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>, incidents: Arc<Incidents>) -> Self {
        Self { inner, metrics, incidents }
    }

    /// Awaits `future`, counting and timing it as operation `op`.
    fn timed<'a, T: Send + 'a>(
        &'a self,
        op: usize,
        future: BackendFuture<'a, Result<T, BackendError>>,
    ) -> BackendFuture<'a, Result<T, BackendError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = future.await;
            let outcome = outcome(&result);
            self.metrics.store_operation(op, outcome, started.elapsed().as_secs_f64());
            if let Err(error) = &result {
                let what = format!("store:{}:{}", STORE_OPS[op], STORE_OUTCOMES[outcome]);
                self.incidents.record(&what, || error.to_string());
            }
            result
        })
    }
}

impl Backend for Observed {
    fn mode(&self) -> &'static str {
        self.inner.mode()
    }

    fn store_name(&self) -> &'static str {
        self.inner.store_name()
    }

    fn describe(&self) -> Option<String> {
        self.inner.describe()
    }

    fn raise_mark<'a>(
        &'a self,
        mark: &'a Mark,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'a, Result<u64, BackendError>> {
        self.timed(RAISE_MARK, self.inner.raise_mark(mark, needed, target))
    }

    fn worker_valid(&self) -> bool {
        self.inner.worker_valid()
    }

    fn worker_retry_after_secs(&self) -> u64 {
        self.inner.worker_retry_after_secs()
    }

    fn lease_remaining(&self) -> Option<Duration> {
        self.inner.lease_remaining()
    }

    fn raise_worker_mark(
        &self,
        worker_id: u16,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'_, Result<Option<u64>, BackendError>> {
        self.timed(RAISE_WORKER_MARK, self.inner.raise_worker_mark(worker_id, needed, target))
    }

    fn worker_tick(&self) -> Option<Duration> {
        self.inner.worker_tick()
    }

    fn maintain_worker<'a>(&'a self, events: &'a dyn WorkerEvents) -> BackendFuture<'a, ()> {
        let maintain = self.inner.maintain_worker(events);
        Box::pin(async move {
            let started = Instant::now();
            maintain.await;
            self.metrics.store_operation(MAINTAIN_WORKER, 0, started.elapsed().as_secs_f64());
        })
    }

    fn shared_counters(&self) -> Option<&dyn SharedCounters> {
        self.inner.shared_counters().map(|_| self as &dyn SharedCounters)
    }

    fn retire_counter<'a>(
        &'a self,
        name: &'a CounterName,
    ) -> BackendFuture<'a, Result<Option<u64>, BackendError>> {
        self.timed(RETIRE_COUNTER, self.inner.retire_counter(name))
    }

    fn shared_timestamps(&self) -> Option<&dyn SharedTimestamps> {
        self.inner.shared_timestamps().map(|_| self as &dyn SharedTimestamps)
    }

    fn rate_tokens(&self) -> Option<&dyn RateTokens> {
        self.inner.rate_tokens().map(|_| self as &dyn RateTokens)
    }

    fn counter_status(&self, limit: usize) -> Vec<CounterStatus> {
        self.inner.counter_status(limit)
    }

    fn readiness(&self) -> BackendFuture<'_, Readiness> {
        let readiness = self.inner.readiness();
        Box::pin(async move {
            let started = Instant::now();
            let readiness = readiness.await;
            let outcome = if readiness.store_up { 0 } else { 1 };
            self.metrics.store_operation(READINESS, outcome, started.elapsed().as_secs_f64());
            readiness
        })
    }

    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>> {
        self.timed(SETTLE, self.inner.settle(high_water))
    }
}

impl SharedCounters for Observed {
    fn take<'a>(
        &'a self,
        name: &'a CounterName,
        count: u64,
        new_name: &'a dyn NewCounterName,
    ) -> BackendFuture<'a, Result<Vec<RangeInclusive<u64>>, BackendError>> {
        let shared = self.inner.shared_counters().expect("checked by shared_counters");
        self.timed(TAKE_COUNTER, shared.take(name, count, new_name))
    }
}

impl SharedTimestamps for Observed {
    fn take(&self, count: u64, now_ms: u64) -> BackendFuture<'_, Result<Range<u64>, BackendError>> {
        let shared = self.inner.shared_timestamps().expect("checked by shared_timestamps");
        self.timed(TAKE_TIMESTAMPS, shared.take(count, now_ms))
    }
}

impl RateTokens for Observed {
    fn take(
        &self,
        bucket: RateBucket,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> BackendFuture<'_, Result<RateDecision, BackendError>> {
        let tokens = self.inner.rate_tokens().expect("checked by rate_tokens");
        self.timed(TAKE_TOKENS, tokens.take(bucket, per_second, burst, want))
    }

    fn spend_quota(
        &self,
        key: Arc<str>,
        day: u64,
        want: u64,
        quota: u64,
    ) -> BackendFuture<'_, Result<bool, BackendError>> {
        let tokens = self.inner.rate_tokens().expect("checked by rate_tokens");
        self.timed(TAKE_TOKENS, tokens.spend_quota(key, day, want, quota))
    }
}
