//! The kinds whose IDs carry a time and that run ahead of the clock rather than repeat
//! (timestamp, uuid7, ulid): each generator resumes above its durable mark and stops at its
//! ceiling until the back end has made a higher mark durable, so output never goes backwards
//! across a restart, even with the clock set back while the server was down.

use std::ops::Range;
use std::time::Instant;

use idgen_core::ksuid::{Ksuid, KsuidGenerator};
use idgen_core::timestamp::TimestampGenerator;
use idgen_core::ulid::UlidGenerator;
use idgen_core::uuid7::Uuid7Generator;
use idgen_core::{Clock, IssueError, Ulid, Uuid};
use rand::Rng;

use super::policy::{CEILING_DEADLINE, time_mark_target};
use super::{IdSink, Issuer, SharedClock};
use crate::backend::{Mark, Readiness};
use crate::error::{ApiError, Refusal};

/// What the issuing layer needs of a generator with a durable ceiling.
pub(super) trait Ceiling {
    fn high_water_ms(&self) -> u64;
    fn ceiling_ms(&self) -> u64;
    fn set_ceiling(&self, unix_ms: u64);
}

macro_rules! ceiling {
    ($generator:ident) => {
        impl Ceiling for $generator<SharedClock> {
            fn high_water_ms(&self) -> u64 {
                $generator::high_water_ms(self)
            }
            fn ceiling_ms(&self) -> u64 {
                $generator::ceiling_ms(self)
            }
            fn set_ceiling(&self, unix_ms: u64) {
                $generator::set_ceiling(self, unix_ms)
            }
        }
    };
}
ceiling!(TimestampGenerator);
ceiling!(Uuid7Generator);
ceiling!(UlidGenerator);
ceiling!(KsuidGenerator);

/// A time-ordered generator, its mark, and the mark it started above.
pub(super) struct Marked<G> {
    pub(super) generator: G,
    mark: Mark,
    kind: &'static str,
    /// The first time the kind's IDs cannot hold.
    range_end_ms: u64,
    /// The durable mark at start: a lead above it was inherited, not built up by load now
    /// (see `policy::time_mark_target`).
    start_floor: u64,
}

impl<G: Ceiling> Marked<G> {
    /// `generator` (already floored at `durable`), stopping at `durable` until a higher mark
    /// is written.
    pub(super) fn new(
        generator: G,
        mark: Mark,
        kind: &'static str,
        durable: u64,
        range_end_ms: u64,
    ) -> Self {
        generator.set_ceiling(durable);
        if durable >= range_end_ms {
            tracing::error!(
                kind,
                mark = durable,
                "the durable {kind} mark is at the end of what {kind} ids can hold: no {kind} id can be issued; see docs/operations.md#runaway-marks"
            );
        }
        Self { generator, mark, kind, range_end_ms, start_floor: durable }
    }

    /// Why this kind cannot be issued at all any more: its high water has reached the end of
    /// what its IDs can hold (a mark at the edge of the range).
    fn readiness(&self, readiness: &mut Readiness) {
        if self.generator.high_water_ms() >= self.range_end_ms {
            readiness.reasons.push(format!(
                "{}: the durable mark is at the end of what {} ids can hold; see docs/operations.md#runaway-marks",
                self.kind, self.kind
            ));
            readiness.retry_after_secs = readiness.retry_after_secs.max(60);
        }
    }
}

/// The first timestamp a kind cannot issue (its IDs hold times below it).
pub(super) const TIMESTAMP_END_MS: u64 = u64::MAX - 1;
/// uuid7 and ULID hold 48 bits of Unix ms.
pub(super) const MS48_END: u64 = (1 << 48) - 1;

/// A timestamp generator that resumes above the durable `mark`.
pub(super) fn timestamp_above(
    clock: &SharedClock,
    mark: u64,
) -> Marked<TimestampGenerator<SharedClock>> {
    let generator = TimestampGenerator::new(clock.clone()).with_floor(mark);
    Marked::new(generator, Mark::Timestamp, "timestamp", mark, TIMESTAMP_END_MS)
}

pub(super) fn uuid7_above(clock: &SharedClock, mark: u64) -> Marked<Uuid7Generator<SharedClock>> {
    let generator = Uuid7Generator::new(clock.clone()).with_floor(mark);
    Marked::new(generator, Mark::Uuid7, "uuid7", mark, MS48_END)
}

pub(super) fn ulid_above(clock: &SharedClock, mark: u64) -> Marked<UlidGenerator<SharedClock>> {
    let generator = UlidGenerator::new(clock.clone()).with_floor(mark);
    Marked::new(generator, Mark::Ulid, "ulid", mark, MS48_END)
}

pub(super) fn ksuid_above(clock: &SharedClock, mark: u64) -> Marked<KsuidGenerator<SharedClock>> {
    let generator = KsuidGenerator::new(clock.clone()).with_floor(mark);
    Marked::new(generator, Mark::Ksuid, "ksuid", mark, idgen_core::ksuid::MAX_MS)
}

impl Issuer {
    /// Runs `issue` (one call of `marked`'s generator, for `count` IDs) until it issues,
    /// raising the kind's mark through the back end each time it reaches the ceiling.
    async fn within_mark<G: Ceiling, T>(
        &self,
        marked: &Marked<G>,
        count: u64,
        mut issue: impl FnMut() -> Result<T, IssueError>,
    ) -> Result<T, ApiError> {
        // Fast path: below the ceiling, no clock read for a deadline.
        if let Ok(value) = issue() {
            return Ok(value);
        }
        let deadline = Instant::now() + CEILING_DEADLINE;
        while Instant::now() <= deadline {
            match issue() {
                Ok(value) => return Ok(value),
                Err(IssueError::CeilingReached { needed, .. }) if needed >= marked.range_end_ms => {
                    return Err(Refusal::MarkAtRangeEnd { kind: marked.kind }.into());
                }
                Err(IssueError::CeilingReached { needed, .. }) => {
                    let now_ms = self.clock.now_ms();
                    let target = time_mark_target(needed, count, now_ms, marked.start_floor);
                    let raise = self.backend.raise_mark(&marked.mark, needed, target);
                    marked.generator.set_ceiling(raise.await?);
                }
                Err(error) => return Err(self.issue_error(marked.kind, error)),
            }
        }
        Err(Refusal::CeilingUnavailable.into())
    }

    /// `count` consecutive timestamp ids: from the back end when it shares them between
    /// nodes (milliseconds are few: two nodes would otherwise issue the same ones), else from
    /// this node's generator.
    pub async fn timestamps(&self, count: u64) -> Result<Range<u64>, ApiError> {
        if let Some(shared) = self.backend.shared_timestamps() {
            return Ok(shared.take(count, self.clock.now_ms()).await?);
        }
        let generator = &self.timestamp.generator;
        self.within_mark(&self.timestamp, count, || {
            if count == 1 {
                generator.generate().map(|value| value..value + 1)
            } else {
                generator.generate_batch(count)
            }
        })
        .await
    }

    /// `count` uuid7s in increasing order into `out`, one clock read for all (see
    /// `generate_batch`).
    pub(super) async fn uuid7s<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        count: usize,
        out: &mut impl IdSink,
    ) -> Result<(), ApiError> {
        let generator = &self.uuid7.generator;
        self.within_mark(&self.uuid7, count as u64, || {
            generator.generate_batch(rng, count, |id| out.push_uuid(id))
        })
        .await
    }

    /// One uuid7.
    pub async fn uuid7<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Uuid, ApiError> {
        self.within_mark(&self.uuid7, 1, || self.uuid7.generator.generate(rng)).await
    }

    /// One ULID.
    pub async fn ulid<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Ulid, ApiError> {
        self.within_mark(&self.ulid, 1, || self.ulid.generator.generate(rng)).await
    }

    /// One KSUID.
    pub async fn ksuid<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Ksuid, ApiError> {
        self.within_mark(&self.ksuid, 1, || self.ksuid.generator.generate(rng)).await
    }

    /// What keeps a time-ordered kind from issuing at all (a mark at the end of its range).
    pub(super) fn time_readiness(&self, readiness: &mut Readiness) {
        self.timestamp.readiness(readiness);
        self.uuid7.readiness(readiness);
        self.ulid.readiness(readiness);
        self.ksuid.readiness(readiness);
    }

    /// Keeps each time mark ahead of a busy generator.
    pub(super) async fn refresh_time_marks(&self) {
        self.refresh_time_mark(&self.timestamp).await;
        self.refresh_time_mark(&self.uuid7).await;
        self.refresh_time_mark(&self.ulid).await;
        self.refresh_time_mark(&self.ksuid).await;
    }

    /// Once less than half a reservation is left above the high water (which also holds when
    /// the generator runs far ahead of the clock). An idle generator's high water stays put,
    /// so it stops after one write.
    async fn refresh_time_mark<G: Ceiling>(&self, marked: &Marked<G>) {
        let high_water = marked.generator.high_water_ms();
        // The ceiling is always a value the back end made durable.
        let durable = marked.generator.ceiling_ms();
        let now_ms = self.clock.now_ms();
        let needed = high_water.saturating_add(1);
        let target = time_mark_target(needed, 1, now_ms, marked.start_floor);
        let reservation = target.saturating_sub(needed);
        let left = durable.saturating_sub(high_water);
        let clock_passed_it = durable < now_ms;
        if left > reservation / 2 || clock_passed_it || needed > target {
            return;
        }
        if let Ok(ceiling) = self.backend.raise_mark(&marked.mark, target, target).await {
            marked.generator.set_ceiling(ceiling);
        }
    }
}
