//! Snowflake IDs: 1 zero bit, 41 bits ms since an epoch, 10 bits worker id, 12 bits sequence.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::kind::{Bounder, DecodeContext, TimeBounds};
pub use crate::layout::{Layout, Order};
use crate::wire::DecodeResponse;
use crate::{Clock, DecodeError, IssueError, KindInfo, ParamError, SystemClock};

/// Catalogue entry of `snowflake`: no parameters; decodes time, worker id and sequence.
pub const INFO: KindInfo = KindInfo {
    name: "snowflake",
    description: "64-bit snowflake: 41-bit ms since the epoch, 10-bit worker id, 12-bit sequence, sortable",
    sortable: true,
    time_based: true,
    bits: 64,
    text_len: 19,
    params: &[],
    decode: Some(describe),
    bounds: Some(Bounder { range: bounds_range, at: bounds_at }),
};

/// The context's epoch to the end of its layout's time field.
fn bounds_range(context: &DecodeContext) -> std::ops::RangeInclusive<u64> {
    let epoch = context.snowflake_epoch_ms;
    epoch..=context.snowflake_layout.end_ms(epoch)
}

/// The smallest and largest snowflake of the time unit `unix_ms` falls in (its ms, for the
/// layouts over ms), every worker's: worker and sequence all clear (at the epoch's first unit,
/// 1: 0 is not a snowflake), then all set.
fn bounds_at(unix_ms: u64, context: &DecodeContext) -> TimeBounds {
    let layout = context.snowflake_layout;
    let units = (unix_ms - context.snowflake_epoch_ms) / layout.unit_ms();
    let time = units << layout.low_bits();
    let rest = (1 << layout.low_bits()) - 1;
    TimeBounds {
        timestamp_ms: context.snowflake_epoch_ms + units * layout.unit_ms(),
        min: time.max(1).to_string(),
        max: (time | rest).to_string(),
    }
}

/// 2020-01-01T00:00:00Z in ms since the Unix epoch.
pub const DEFAULT_EPOCH_MS: u64 = 1_577_836_800_000;
/// How far the clock may step back before the generator refuses (and how far ahead of the
/// clock it may borrow when a millisecond's 4096 sequence numbers are used up).
pub const DEFAULT_MAX_BACKWARD_MS: u64 = 1_000;

/// A worker id: 0..=1023 in the default layout, up to its [`Layout::max_worker`] in others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(u16);

impl WorkerId {
    /// The largest worker id the default (Twitter) layout's 10-bit field holds.
    pub const MAX: u16 = 1023;

    /// Accepts 0..=[`WorkerId::MAX`] (the default layout); [`ParamError::WorkerId`] otherwise.
    pub fn new(id: u16) -> Result<Self, ParamError> {
        Self::within(id, Layout::TWITTER)
    }

    /// Accepts 0 to `layout`'s largest worker id; [`ParamError::WorkerId`] otherwise.
    pub fn within(id: u16, layout: Layout) -> Result<Self, ParamError> {
        let max = layout.max_worker();
        if id <= max { Ok(Self(id)) } else { Err(ParamError::WorkerId { max }) }
    }

    /// The id as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// A snowflake ID; always fits a positive `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnowflakeId(u64);

impl SnowflakeId {
    /// The 64-bit value, bit 63 always clear; its decimal form is the ID's text.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for SnowflakeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Layout and safety settings of a generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnowflakeConfig {
    /// Unix ms that timestamp 0 stands for.
    pub epoch_ms: u64,
    /// Written into every ID; no two generators running at once may share it. Within the
    /// layout's worker field.
    pub worker_id: WorkerId,
    /// See [`DEFAULT_MAX_BACKWARD_MS`].
    pub max_backward_ms: u64,
    /// The bits of each field and the time unit.
    pub layout: Layout,
}

impl SnowflakeConfig {
    /// `worker_id` with [`DEFAULT_EPOCH_MS`], [`DEFAULT_MAX_BACKWARD_MS`] and the Twitter layout.
    pub fn new(worker_id: WorkerId) -> Self {
        Self {
            epoch_ms: DEFAULT_EPOCH_MS,
            worker_id,
            max_backward_ms: DEFAULT_MAX_BACKWARD_MS,
            layout: Layout::TWITTER,
        }
    }
}

/// The parts of a snowflake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnowflakeParts {
    /// Unix ms (epoch already added).
    pub timestamp_ms: u64,
    /// The issuing worker (0..=1023 in the default layout).
    pub worker_id: u16,
    /// Position within its worker's time unit (0..=4095 in the default layout's ms).
    pub sequence: u16,
}

/// Issues snowflakes for one worker id.
///
/// The state is one `AtomicU64` holding `(units_since_epoch << sequence bits) | sequence` of
/// the last ID issued (a unit is the layout's: a ms by default), advanced with a
/// compare-and-swap loop, so concurrent callers never lock. Because the sequence sits in the
/// low bits, "the sequence is used up, move to the next unit" is plain `state + 1` and a run
/// of consecutive state words is a run of consecutive, valid snowflakes: a batch is one CAS
/// that moves the state by `count`. The layout puts the worker id in the middle (Twitter) or
/// the low bits (Sonyflake) when a state word becomes an ID; either way IDs follow the state.
///
/// Every state word is checked against three limits before it is claimed: the layout's
/// time range, `max_backward_ms` ahead of the clock, and the durable ceiling. The ceiling
/// is what makes restarts safe: the caller persists a high-water mark first and only then
/// raises the ceiling, so nothing above a persisted mark is ever issued.
#[derive(Debug)]
pub struct SnowflakeGenerator<C: Clock = SystemClock> {
    clock: C,
    config: SnowflakeConfig,
    /// `(units_since_epoch << sequence bits) | sequence` of the last ID issued (or of the floor).
    state: AtomicU64,
    /// Highest Unix ms a timestamp may have; `u64::MAX` means unlimited.
    ceiling: AtomicU64,
}

impl<C: Clock> SnowflakeGenerator<C> {
    /// A generator with no floor and an unlimited ceiling.
    pub fn new(clock: C, config: SnowflakeConfig) -> Self {
        Self { clock, config, state: AtomicU64::new(0), ceiling: AtomicU64::new(u64::MAX) }
    }

    /// The settings the generator was built with.
    pub fn config(&self) -> SnowflakeConfig {
        self.config
    }

    /// Never issue an ID whose timestamp is at or below `unix_ms` (a high-water mark persisted
    /// by an earlier run, or by the previous holder of this worker id). Call before the first
    /// `generate`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        let layout = self.config.layout;
        if let Some(since_epoch) = unix_ms.checked_sub(self.config.epoch_ms) {
            // The largest sequence marks the floor's unit as used up, so the next ID is at a
            // later one. A floor past the time range is clamped to its end: nothing can be
            // issued after it either way.
            let units = (since_epoch / layout.unit_ms()).min(layout.max_time());
            let floor = (units << layout.sequence_bits()) | layout.max_sequence();
            self.state.fetch_max(floor, Ordering::Relaxed);
        }
        self
    }

    /// Allow timestamps up to and including `unix_ms`. Until this is called the ceiling is
    /// unlimited. The caller raises it only after persisting a mark at least this high, so
    /// that a restart can resume above everything issued.
    pub fn set_ceiling(&self, unix_ms: u64) {
        // Release pairs with the Acquire load in `reserve`: whoever sees the new ceiling also
        // sees everything the caller did before raising it (persisting the mark).
        self.ceiling.store(unix_ms, Ordering::Release);
    }

    /// The ceiling set last (Unix ms; `u64::MAX` before any).
    pub fn ceiling_ms(&self) -> u64 {
        self.ceiling.load(Ordering::Acquire)
    }

    /// The highest timestamp (Unix ms) this generator has issued or was floored at (the epoch
    /// before either).
    pub fn high_water_ms(&self) -> u64 {
        let layout = self.config.layout;
        let units = self.state.load(Ordering::Relaxed) >> layout.sequence_bits();
        units.saturating_mul(layout.unit_ms()).saturating_add(self.config.epoch_ms)
    }

    /// The next snowflake, greater than every one issued before by this generator.
    ///
    /// Rules (a unit is a ms in the default layout): a new unit starts at sequence 0; within
    /// one the sequence counts up; when its values are used, the generator moves to the next
    /// unit even if the clock has not reached it yet, but never to a timestamp more than `max_backward_ms` ahead of the
    /// clock ([`IssueError::Exhausted`] then). If the clock is behind the last issued
    /// timestamp by at most `max_backward_ms`, issuing continues from the last timestamp;
    /// beyond that it is refused with [`IssueError::ClockMovedBackwards`]. A timestamp above
    /// the ceiling gives [`IssueError::CeilingReached`] with `needed` = that timestamp.
    pub fn generate(&self) -> Result<SnowflakeId, IssueError> {
        let (first, _) = self.reserve(1)?;
        Ok(self.id_from_state(first))
    }

    /// Up to `count` snowflakes appended to `out` in increasing order, reserved with as few
    /// atomic operations as possible. On an error, the IDs already appended stay valid (they
    /// were issued) and the error says why no more could be.
    pub fn generate_batch(
        &self,
        count: usize,
        out: &mut Vec<SnowflakeId>,
    ) -> Result<(), IssueError> {
        out.reserve(count);
        let mut remaining = count as u64;
        // Usually one pass: a single CAS claims the whole run. A second pass only happens
        // when a limit cut the run short, and then it reports that limit as the error (or,
        // if the clock or ceiling moved meanwhile, claims the rest).
        while remaining > 0 {
            let (first, reserved) = self.reserve(remaining)?;
            out.extend((first..first + reserved).map(|state| self.id_from_state(state)));
            remaining -= reserved;
        }
        Ok(())
    }

    /// Claims up to `max_count` (>= 1) consecutive state words with one successful CAS and
    /// returns the first one and how many were claimed (at least 1).
    fn reserve(&self, max_count: u64) -> Result<(u64, u64), IssueError> {
        let config = self.config;
        let (layout, unit) = (config.layout, config.layout.unit_ms());
        let shift = layout.sequence_bits();
        let allowance = config.max_backward_ms / unit;
        // Relaxed suffices for the state: it is the only location the CAS protects, and the
        // modification order of one atomic is total, so claimed ranges never overlap and each
        // thread sees its own claims in increasing order.
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            // The clock is read on every attempt, not once before the loop: a reading taken
            // before another thread's successful CAS may be older than the state that thread
            // wrote, and would make a busy generator report a clock step that never happened.
            let now_ms = self.clock.now_ms();
            let now = match now_ms.checked_sub(config.epoch_ms) {
                // Past the time range nothing can be issued: the state never holds a time
                // beyond it, so the clock cannot be "behind" it within the allowance.
                Some(since) if since / unit <= layout.max_time() => since / unit,
                _ => return Err(IssueError::TimeOutOfRange { now_ms }),
            };
            let last = current >> shift;
            let first = if now > last {
                now << shift
            } else if last - now <= allowance {
                // Same unit, or the clock stepped back within the allowance: continue from the
                // last time. A full sequence carries into the next unit.
                current + 1
            } else {
                return Err(IssueError::ClockMovedBackwards {
                    last_ms: last.saturating_mul(unit).saturating_add(config.epoch_ms),
                    now_ms,
                });
            };

            // The furthest time this call may claim is the tightest of three limits.
            let ceiling_ms = self.ceiling.load(Ordering::Acquire);
            let borrow_limit = now.saturating_add(allowance);
            let ceiling_limit = ceiling_ms.checked_sub(config.epoch_ms).map(|since| since / unit);
            let limit = borrow_limit.min(layout.max_time()).min(ceiling_limit.unwrap_or(0));
            let first_time = first >> shift;
            if ceiling_limit.is_none() || first_time > limit {
                return Err(if first_time > layout.max_time() {
                    IssueError::TimeOutOfRange { now_ms }
                } else if first_time > borrow_limit {
                    IssueError::Exhausted { retry_after_ms: (first_time - borrow_limit) * unit }
                } else {
                    IssueError::CeilingReached {
                        needed: (first_time * unit).saturating_add(config.epoch_ms),
                        ceiling: ceiling_ms,
                    }
                });
            }
            let last_allowed = (limit << shift) | layout.max_sequence();
            let count = max_count.min(last_allowed - first + 1);
            let next = first + count - 1;
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok((first, count)),
                Err(actual) => current = actual,
            }
        }
    }

    fn id_from_state(&self, state: u64) -> SnowflakeId {
        let layout = self.config.layout;
        let time = state >> layout.sequence_bits();
        debug_assert!(time <= layout.max_time(), "reserve never claims past the time range");
        let sequence = state & layout.max_sequence();
        SnowflakeId(layout.compose(time, self.config.worker_id.get(), sequence))
    }
}

/// Strict mode's rule for a decimal ID: no leading zero (`007` is lenient's 7).
pub(crate) fn check_no_leading_zero(text: &str, kind: &'static str) -> Result<(), DecodeError> {
    if text.len() > 1 && text.starts_with('0') {
        return Err(DecodeError::Malformed { kind, reason: "strict: no leading zeros" });
    }
    Ok(())
}

/// The catalogue's decoder: time, worker id and sequence, with the context's epoch and layout.
fn describe(text: &str, context: &DecodeContext) -> Result<DecodeResponse, DecodeError> {
    if context.strict {
        check_no_leading_zero(text, INFO.name)?;
    }
    let parts = decode_with(text, context.snowflake_epoch_ms, context.snowflake_layout)?;
    Ok(DecodeResponse {
        worker_id: Some(parts.worker_id),
        sequence: Some(parts.sequence),
        ..DecodeResponse::with_time(text, parts.timestamp_ms)
    })
}

/// Split a snowflake (decimal string) made with `epoch_ms` in the default layout into its parts.
pub fn decode(text: &str, epoch_ms: u64) -> Result<SnowflakeParts, DecodeError> {
    decode_with(text, epoch_ms, Layout::TWITTER)
}

/// Split a snowflake (decimal string) made with `epoch_ms` and `layout` into its parts; its
/// time is the start of its unit.
pub fn decode_with(
    text: &str,
    epoch_ms: u64,
    layout: Layout,
) -> Result<SnowflakeParts, DecodeError> {
    let malformed = |reason| DecodeError::Malformed { kind: INFO.name, reason };
    // `u64::from_str` would also take a leading `+`; an ID is digits only.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("must be a positive decimal integer"));
    }
    let value: u64 =
        text.parse().map_err(|_| malformed("does not fit a positive 64-bit integer"))?;
    // Above the layout's bits (for the default layout: a negative i64) was never issued.
    if value == 0 || value > layout.max_id() {
        return Err(malformed("must be from 1 to the largest id of this server's layout"));
    }
    let (time, worker_id, sequence) = layout.split(value);
    let timestamp_ms = time
        .checked_mul(layout.unit_ms())
        .and_then(|ms| ms.checked_add(epoch_ms))
        .ok_or_else(|| malformed("timestamp is out of range for this epoch"))?;
    // At most 16 bits each (the layout's rule).
    Ok(SnowflakeParts { timestamp_ms, worker_id, sequence: sequence as u16 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default layout's largest time: about 69.7 years of ms.
    const MAX_TIMESTAMP: u64 = (1 << 41) - 1;
    use crate::ManualClock;
    use proptest::prelude::*;

    /// 2024-01-01T00:00:00Z, well inside the default epoch's range.
    const T: u64 = 1_704_067_200_000;
    const WORKER: u16 = 5;

    fn config(max_backward_ms: u64) -> SnowflakeConfig {
        SnowflakeConfig {
            max_backward_ms,
            ..SnowflakeConfig::new(WorkerId::new(WORKER).expect("5 is a valid worker id"))
        }
    }

    fn parts(id: SnowflakeId) -> (u64, u16) {
        let parts = decode(&id.to_string(), DEFAULT_EPOCH_MS).unwrap();
        assert_eq!(parts.worker_id, WORKER);
        (parts.timestamp_ms, parts.sequence)
    }

    fn check(text: &str, epoch_ms: u64, expected: Result<(u64, u16, u16), ()>) {
        let actual = decode(text, epoch_ms)
            .map(|parts| (parts.timestamp_ms, parts.worker_id, parts.sequence))
            .map_err(|err| {
                assert!(matches!(err, DecodeError::Malformed { kind: "snowflake", .. }))
            });
        assert_eq!(actual, expected, "decoding {text:?}");
    }

    #[test]
    fn decodes_and_rejects() {
        let id = (1000u64 << 22) | (7 << 12) | 42;
        check(&id.to_string(), DEFAULT_EPOCH_MS, Ok((DEFAULT_EPOCH_MS + 1000, 7, 42)));
        check(&id.to_string(), 0, Ok((1000, 7, 42)));
        check("1", DEFAULT_EPOCH_MS, Ok((DEFAULT_EPOCH_MS, 0, 1)));
        check("0001", DEFAULT_EPOCH_MS, Ok((DEFAULT_EPOCH_MS, 0, 1)));
        check("9223372036854775807", 0, Ok(((1 << 41) - 1, 1023, 4095))); // i64::MAX
        check("9223372036854775808", 0, Err(())); // bit 63: a negative i64
        check("18446744073709551615", 0, Err(())); // u64::MAX
        check("18446744073709551616", 0, Err(())); // past u64
        check("0", 0, Err(()));
        check("", 0, Err(()));
        check("-1", 0, Err(()));
        check("+1", 0, Err(()));
        check("12a", 0, Err(()));
        check(" 1", 0, Err(()));
        check("1.0", 0, Err(()));
        check("4194304", u64::MAX, Err(())); // timestamp 1 + epoch overflows
    }

    #[test]
    fn worker_id_range() {
        assert_eq!(WorkerId::new(0).map(WorkerId::get), Ok(0));
        assert_eq!(WorkerId::new(1023).map(WorkerId::get), Ok(1023));
        assert_eq!(WorkerId::new(1024), Err(ParamError::WorkerId { max: 1023 }));
    }

    #[test]
    fn lays_out_timestamp_worker_and_sequence() {
        let clock = ManualClock::new(DEFAULT_EPOCH_MS + 1000);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        let id = generator.generate().unwrap();
        assert_eq!(id.get(), (1000 << 22) | (u64::from(WORKER) << 12));
        assert_eq!(parts(id), (DEFAULT_EPOCH_MS + 1000, 0));
        assert_eq!(generator.high_water_ms(), DEFAULT_EPOCH_MS + 1000);
    }

    #[test]
    fn same_millisecond_counts_the_sequence_and_a_new_one_restarts_it() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        for sequence in 0..100 {
            assert_eq!(parts(generator.generate().unwrap()), (T, sequence));
        }
        clock.advance(3);
        assert_eq!(parts(generator.generate().unwrap()), (T + 3, 0));
    }

    #[test]
    fn exhausted_sequence_moves_to_the_next_ms_up_to_the_allowance() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(2));
        let mut previous = 0;
        // 4096 per ms at T, T + 1 and T + 2 (2 ms of allowance ahead of the clock).
        for index in 0..3 * 4096u64 {
            let id = generator.generate().unwrap();
            assert!(id.get() > previous);
            assert_eq!(parts(id), (T + index / 4096, (index % 4096) as u16));
            previous = id.get();
        }
        assert_eq!(generator.generate(), Err(IssueError::Exhausted { retry_after_ms: 1 }));
        assert_eq!(generator.high_water_ms(), T + 2);
        // Once the clock moves, the borrowed ms are behind it and issuing resumes.
        clock.advance(1);
        assert_eq!(parts(generator.generate().unwrap()), (T + 3, 0));
    }

    #[test]
    fn clock_going_back_within_the_allowance_keeps_the_last_timestamp() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        assert_eq!(parts(generator.generate().unwrap()), (T, 0));
        clock.set(T - 500);
        assert_eq!(parts(generator.generate().unwrap()), (T, 1));
        clock.set(T - 1000);
        assert_eq!(parts(generator.generate().unwrap()), (T, 2));
        // Sequence exhaustion while behind: the next ms is 1001 ms ahead of the clock.
        for _ in 3..4096 {
            generator.generate().unwrap();
        }
        assert_eq!(generator.generate(), Err(IssueError::Exhausted { retry_after_ms: 1 }));
    }

    #[test]
    fn clock_going_back_beyond_the_allowance_is_refused() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        generator.generate().unwrap();
        clock.set(T - 1001);
        assert_eq!(
            generator.generate(),
            Err(IssueError::ClockMovedBackwards { last_ms: T, now_ms: T - 1001 })
        );
        let mut out = Vec::new();
        assert_eq!(
            generator.generate_batch(10, &mut out),
            Err(IssueError::ClockMovedBackwards { last_ms: T, now_ms: T - 1001 })
        );
        assert!(out.is_empty());
        // Nothing was consumed: back within the allowance, issuing continues at T.
        clock.set(T - 1000);
        assert_eq!(parts(generator.generate().unwrap()), (T, 1));
    }

    #[test]
    fn floor_puts_the_next_id_after_it() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(1000)).with_floor(T + 10);
        assert_eq!(generator.high_water_ms(), T + 10);
        assert_eq!(parts(generator.generate().unwrap()), (T + 11, 0));

        // A floor below what the clock reads changes nothing.
        let generator = SnowflakeGenerator::new(&clock, config(1000)).with_floor(T - 10);
        assert_eq!(parts(generator.generate().unwrap()), (T, 0));

        // A floor far ahead of the clock (a previous run with a faster clock) refuses.
        let generator = SnowflakeGenerator::new(&clock, config(1000)).with_floor(T + 5000);
        assert_eq!(
            generator.generate(),
            Err(IssueError::ClockMovedBackwards { last_ms: T + 5000, now_ms: T })
        );

        // A floor before the epoch is no constraint at all.
        let generator = SnowflakeGenerator::new(&clock, config(1000)).with_floor(0);
        assert_eq!(generator.high_water_ms(), DEFAULT_EPOCH_MS);
    }

    #[test]
    fn ceiling_refuses_until_raised() {
        let clock = ManualClock::new(T + 5);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        generator.set_ceiling(T);
        assert_eq!(
            generator.generate(),
            Err(IssueError::CeilingReached { needed: T + 5, ceiling: T })
        );
        generator.set_ceiling(T + 5);
        assert_eq!(parts(generator.generate().unwrap()), (T + 5, 0));

        // Exhausting the ceiling's ms asks for the next one.
        let mut out = Vec::new();
        assert_eq!(
            generator.generate_batch(5000, &mut out),
            Err(IssueError::CeilingReached { needed: T + 6, ceiling: T + 5 })
        );
        assert_eq!(out.len(), 4095, "the rest of ms T + 5 was issued");
        generator.set_ceiling(T + 100);
        assert_eq!(parts(generator.generate().unwrap()), (T + 6, 0));

        // A ceiling before the epoch allows nothing.
        generator.set_ceiling(0);
        assert_eq!(
            generator.generate(),
            Err(IssueError::CeilingReached { needed: T + 6, ceiling: 0 })
        );
    }

    #[test]
    fn time_outside_the_41_bit_range_is_refused() {
        let clock = ManualClock::new(DEFAULT_EPOCH_MS - 1);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        let before_epoch = IssueError::TimeOutOfRange { now_ms: DEFAULT_EPOCH_MS - 1 };
        assert_eq!(generator.generate(), Err(before_epoch));

        let last_ms = DEFAULT_EPOCH_MS + MAX_TIMESTAMP;
        clock.set(last_ms);
        let id = generator.generate().unwrap();
        assert!(i64::try_from(id.get()).is_ok_and(|id| id > 0), "bit 63 stays clear");
        assert_eq!(parts(id), (last_ms, 0));

        clock.set(last_ms + 1);
        assert_eq!(generator.generate(), Err(IssueError::TimeOutOfRange { now_ms: last_ms + 1 }));
        clock.set(u64::MAX);
        assert_eq!(generator.generate(), Err(IssueError::TimeOutOfRange { now_ms: u64::MAX }));

        // Sequence exhaustion in the very last ms cannot borrow past the range.
        clock.set(last_ms);
        let mut out = Vec::new();
        assert_eq!(
            generator.generate_batch(5000, &mut out),
            Err(IssueError::TimeOutOfRange { now_ms: last_ms })
        );
        assert_eq!(out.len(), 4095);
    }

    #[test]
    fn batch_spans_milliseconds_in_order() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(1000));
        generator.generate().unwrap();
        let mut out = vec![SnowflakeId(1)]; // appends, keeps what was there
        generator.generate_batch(10_000, &mut out).unwrap();
        assert_eq!(out.len(), 10_001);
        let batch = &out[1..];
        assert!(batch.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(parts(batch[0]), (T, 1));
        assert_eq!(parts(batch[4094]), (T, 4095));
        assert_eq!(parts(batch[4095]), (T + 1, 0));
        assert_eq!(parts(batch[9_999]), (T + 2, 10_000 - 4095 - 4096 - 1));
        assert_eq!(parts(generator.generate().unwrap()), (T + 2, 10_000 - 4095 - 4096));

        generator.generate_batch(0, &mut out).unwrap();
        assert_eq!(out.len(), 10_001);
    }

    #[test]
    fn batch_stops_at_the_allowance_and_keeps_what_it_issued() {
        let clock = ManualClock::new(T);
        let generator = SnowflakeGenerator::new(&clock, config(1));
        let mut out = Vec::new();
        assert_eq!(
            generator.generate_batch(10_000, &mut out),
            Err(IssueError::Exhausted { retry_after_ms: 1 })
        );
        assert_eq!(out.len(), 2 * 4096);
        assert_eq!(parts(out[8191]), (T + 1, 4095));
        clock.advance(1);
        assert_eq!(parts(generator.generate().unwrap()), (T + 2, 0));
    }

    #[test]
    fn strictly_increasing_across_threads() {
        let generator = SnowflakeGenerator::new(SystemClock, config(DEFAULT_MAX_BACKWARD_MS));
        let per_thread: Vec<Vec<SnowflakeId>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut ids = Vec::with_capacity(50_000);
                        while ids.len() < 50_000 {
                            match generator.generate() {
                                Ok(id) => ids.push(id),
                                // Faster than 4096 per ms for a whole second: wait for the
                                // clock (no sleep; the condition is the clock moving).
                                Err(IssueError::Exhausted { .. }) => std::hint::spin_loop(),
                                Err(other) => panic!("unexpected {other}"),
                            }
                        }
                        ids
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        for ids in &per_thread {
            assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(ids.iter().all(|id| i64::try_from(id.get()).is_ok_and(|id| id > 0)));
        }
        let mut all: Vec<_> = per_thread.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 200_000);
    }

    /// One step of a simulated clock: move it by `clock_step` ms (possibly back), then ask
    /// for `count` IDs, one by one or as a batch.
    #[derive(Debug, Clone)]
    struct Step {
        clock_step: i64,
        count: usize,
        batch: bool,
    }

    fn step(max_step: i64) -> impl Strategy<Value = Step> {
        (-max_step..=max_step, 1usize..6000, any::<bool>())
            .prop_map(|(clock_step, count, batch)| Step { clock_step, count, batch })
    }

    proptest! {
        /// With a tiny allowance every path is reached: new ms, same ms, clock behind within
        /// and beyond the allowance, exhaustion. Whatever happens, what is issued increases,
        /// stays within the allowance ahead of the clock, and every error is justified.
        #[test]
        fn strictly_increasing_for_any_clock(steps in prop::collection::vec(step(4), 1..40)) {
            const ALLOWANCE: u64 = 3;
            let clock = ManualClock::new(T);
            let generator = SnowflakeGenerator::new(&clock, config(ALLOWANCE));
            let mut previous = 0;
            for Step { clock_step, count, batch } in steps {
                clock.set(clock.now_ms().saturating_add_signed(clock_step));
                let now = clock.now_ms();
                let mut ids = Vec::new();
                let result = if batch {
                    generator.generate_batch(count, &mut ids)
                } else {
                    (0..count).try_for_each(|_| generator.generate().map(|id| ids.push(id)))
                };
                for id in ids {
                    prop_assert!(id.get() > previous);
                    let (timestamp_ms, _) = parts(id);
                    // Never behind the clock, never more than the allowance ahead of it.
                    prop_assert!((now..=now + ALLOWANCE).contains(&timestamp_ms));
                    previous = id.get();
                }
                match result {
                    Ok(()) => {}
                    Err(IssueError::ClockMovedBackwards { last_ms, now_ms }) => {
                        prop_assert_eq!(now_ms, now);
                        prop_assert_eq!(last_ms, generator.high_water_ms());
                        prop_assert!(last_ms > now + ALLOWANCE);
                    }
                    Err(IssueError::Exhausted { retry_after_ms }) => {
                        prop_assert_eq!(generator.high_water_ms(), now + ALLOWANCE);
                        prop_assert_eq!(retry_after_ms, 1);
                    }
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
            }
        }

        /// Within the allowance and the sequence capacity the generator never refuses.
        #[test]
        fn clock_wobble_within_the_allowance_never_fails(
            steps in prop::collection::vec(-1000i64..=1000, 1..100),
        ) {
            let clock = ManualClock::new(T);
            let generator = SnowflakeGenerator::new(&clock, config(1000));
            let mut previous = 0;
            for clock_step in steps {
                // Never more than the allowance behind the highest timestamp issued.
                let target = T.saturating_add_signed(clock_step);
                clock.set(target.max(generator.high_water_ms().saturating_sub(1000)));
                let id = generator.generate().unwrap();
                prop_assert!(id.get() > previous);
                previous = id.get();
            }
        }

        #[test]
        fn decode_round_trips(
            since_epoch in 0..=MAX_TIMESTAMP,
            worker in 0..=WorkerId::MAX,
            epoch_ms in 0..=DEFAULT_EPOCH_MS,
        ) {
            let config = SnowflakeConfig {
                epoch_ms,
                ..SnowflakeConfig::new(WorkerId::new(worker).unwrap())
            };
            let timestamp_ms = epoch_ms + since_epoch;
            let generator = SnowflakeGenerator::new(ManualClock::new(timestamp_ms), config);
            let id = generator.generate().unwrap();
            let parts = decode(&id.to_string(), epoch_ms).unwrap();
            prop_assert_eq!(parts, SnowflakeParts { timestamp_ms, worker_id: worker, sequence: 0 });
        }
    }

    /// A generator of `layout` at `clock`, as the largest worker id the layout holds.
    fn of_layout(layout: Layout, clock: &ManualClock) -> SnowflakeGenerator<&ManualClock> {
        let worker = WorkerId::within(layout.max_worker(), layout).unwrap();
        SnowflakeGenerator::new(clock, SnowflakeConfig { layout, ..SnowflakeConfig::new(worker) })
    }

    #[test]
    fn js53_ids_stay_within_2_pow_53_at_the_largest_worker_sequence_and_time() {
        let layout = Layout::JS53;
        let last_ms = layout.end_ms(DEFAULT_EPOCH_MS);
        let clock = ManualClock::new(last_ms);
        let generator = of_layout(layout, &clock);
        let mut ids = Vec::new();
        generator.generate_batch(128, &mut ids).unwrap();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(ids.last().unwrap().get(), (1 << 53) - 1, "the largest js53 id, exactly");
        // The next would need a ms past the range.
        assert!(matches!(generator.generate(), Err(IssueError::TimeOutOfRange { .. })));
        let parts = decode_with(&ids[127].to_string(), DEFAULT_EPOCH_MS, layout).unwrap();
        assert_eq!(parts, SnowflakeParts { timestamp_ms: last_ms, worker_id: 31, sequence: 127 });
        assert_eq!(WorkerId::within(32, layout), Err(ParamError::WorkerId { max: 31 }));
        assert!(decode_with(&(1u64 << 53).to_string(), DEFAULT_EPOCH_MS, layout).is_err());
    }

    #[test]
    fn sonyflake_counts_256_per_10_ms_with_the_machine_id_in_the_low_bits() {
        let layout = Layout::SONYFLAKE;
        let clock = ManualClock::new(T + 3);
        let generator = of_layout(layout, &clock);
        let mut ids = Vec::new();
        generator.generate_batch(300, &mut ids).unwrap();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        for (index, id) in ids.iter().enumerate() {
            assert_eq!(id.get() & 0xFFFF, 65_535, "the machine id is the low 16 bits");
            let parts = decode_with(&id.to_string(), DEFAULT_EPOCH_MS, layout).unwrap();
            // T is a multiple of 10 ms: T + 3 is in the unit starting at T; the 257th id
            // borrows the next unit.
            let unit = if index < 256 { T } else { T + 10 };
            assert_eq!((parts.timestamp_ms, parts.sequence), (unit, (index % 256) as u16));
        }
        assert_eq!(generator.high_water_ms(), T + 10);
    }

    fn any_layout() -> impl Strategy<Value = Layout> {
        prop::sample::select(vec![
            Layout::TWITTER,
            Layout::SONYFLAKE,
            Layout::JS53,
            Layout::parse("custom:36/8/3/7").unwrap(),
            Layout::parse("custom:40/0/1").unwrap(),
        ])
    }

    proptest! {
        /// In every layout, under any clock within the allowance: strictly increasing, within
        /// the layout's bits, and decoding to the unit of the clock, the worker and the order
        /// of issue.
        #[test]
        fn every_layout_issues_increasing_ids_that_decode_to_their_unit(
            layout in any_layout(),
            steps in prop::collection::vec((-30i64..=30, 1usize..300), 1..20),
        ) {
            let clock = ManualClock::new(T);
            let generator = of_layout(layout, &clock);
            let mut previous: Option<SnowflakeId> = None;
            for (clock_step, count) in steps {
                let target = clock.now_ms().saturating_add_signed(clock_step);
                // Far enough behind what was issued that a batch never runs past the allowance.
                clock.set(target.max(generator.high_water_ms().saturating_sub(600)));
                let mut ids = Vec::new();
                generator.generate_batch(count, &mut ids).unwrap();
                for id in ids {
                    prop_assert!(previous.is_none_or(|previous| id > previous));
                    prop_assert!(id.get() <= layout.max_id());
                    let parts = decode_with(&id.to_string(), DEFAULT_EPOCH_MS, layout).unwrap();
                    prop_assert_eq!(parts.worker_id, layout.max_worker());
                    prop_assert_eq!((parts.timestamp_ms - DEFAULT_EPOCH_MS) % layout.unit_ms(), 0);
                    // Never behind the clock's unit, never past the allowance ahead of it.
                    let now = clock.now_ms();
                    prop_assert!(parts.timestamp_ms + layout.unit_ms() > now);
                    prop_assert!(parts.timestamp_ms <= now + 1000);
                    previous = Some(id);
                }
            }
        }
    }
}
