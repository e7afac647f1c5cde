//! Millisecond timestamp IDs, strictly increasing per process.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kind::{Bounder, DecodeContext, TimeBounds};
use crate::wire::DecodeResponse;
use crate::{Clock, DecodeError, IssueError, KindInfo, SystemClock};

/// Catalogue entry of `timestamp`: no parameters; decodes the ID as its own time.
pub const INFO: KindInfo = KindInfo {
    name: "timestamp",
    description: "ms since the Unix epoch, strictly increasing: a later request in the same ms gets the next ms",
    sortable: true,
    time_based: true,
    bits: 64,
    text_len: 13,
    params: &[],
    decode: Some(|text, context: &DecodeContext| {
        if context.strict {
            crate::snowflake::check_no_leading_zero(text, INFO.name)?;
        }
        Ok(DecodeResponse::with_time(text, decode(text)?))
    }),
    bounds: Some(Bounder { range: |_| 0..=u64::MAX, at: bounds_at }),
};

/// A timestamp id is its millisecond: both bounds are the time itself.
fn bounds_at(unix_ms: u64, _: &DecodeContext) -> TimeBounds {
    TimeBounds { timestamp_ms: unix_ms, min: unix_ms.to_string(), max: unix_ms.to_string() }
}

/// Issues timestamps, strictly increasing across all threads.
///
/// Unlike the snowflake there is no sequence to absorb a burst: the second request in a
/// millisecond gets the next millisecond, so under load the values run ahead of the clock.
/// There is no bound on that other than the durable ceiling, which is what keeps a restart
/// from repeating values: the caller persists a mark ahead of use and raises the ceiling to it.
///
/// The state is the last value issued in one `AtomicU64`, advanced by a compare-and-swap loop;
/// a batch claims its whole range in one successful CAS.
#[derive(Debug)]
pub struct TimestampGenerator<C: Clock = SystemClock> {
    clock: C,
    /// The last value issued (or the floor); 0 before either.
    last: AtomicU64,
    /// Highest value that may be issued; `u64::MAX` means unlimited.
    ceiling: AtomicU64,
}

impl<C: Clock> TimestampGenerator<C> {
    /// A generator with no floor and an unlimited ceiling.
    pub fn new(clock: C) -> Self {
        Self { clock, last: AtomicU64::new(0), ceiling: AtomicU64::new(u64::MAX) }
    }

    /// The ceiling set last (`u64::MAX` before any).
    pub fn ceiling_ms(&self) -> u64 {
        self.ceiling.load(Ordering::Acquire)
    }

    /// Never issue a value at or below `unix_ms`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        self.last.fetch_max(unix_ms, Ordering::Relaxed);
        self
    }

    /// Allow values up to and including `unix_ms` (unlimited until first called); see
    /// `SnowflakeGenerator::set_ceiling`.
    pub fn set_ceiling(&self, unix_ms: u64) {
        // Release pairs with the Acquire load in `generate_batch`.
        self.ceiling.store(unix_ms, Ordering::Release);
    }

    /// The highest value issued (or the floor).
    pub fn high_water_ms(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// `max(clock, last + 1)`. Only error: [`IssueError::CeilingReached`].
    pub fn generate(&self) -> Result<u64, IssueError> {
        Ok(self.generate_batch(1)?.start)
    }

    /// `count` consecutive values `first..first + count` with `first = max(clock, last + 1)`,
    /// reserved in one atomic step.
    ///
    /// A `count` of 0 reserves nothing and returns an empty range. `u64::MAX` itself is never
    /// issued (a half-open `Range<u64>` cannot end after it); reaching it is reported as
    /// [`IssueError::CeilingReached`].
    pub fn generate_batch(&self, count: u64) -> Result<Range<u64>, IssueError> {
        let now_ms = self.clock.now_ms();
        // Relaxed: one atomic, whose modification order already orders every claimed range.
        let mut last = self.last.load(Ordering::Relaxed);
        if count == 0 {
            let next = last.saturating_add(1);
            return Ok(next..next);
        }
        loop {
            let ceiling = self.ceiling.load(Ordering::Acquire);
            let first = now_ms.max(last.saturating_add(1));
            let end = first.saturating_add(count - 1);
            if end > ceiling || end == u64::MAX {
                return Err(IssueError::CeilingReached { needed: end, ceiling });
            }
            match self.last.compare_exchange_weak(last, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(first..end + 1),
                Err(actual) => last = actual,
            }
        }
    }
}

/// A timestamp ID's value (decimal ms since the Unix epoch).
pub fn decode(text: &str) -> Result<u64, DecodeError> {
    // `u64::from_str` would also take a leading `+`; an ID is digits only.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::Malformed {
            kind: INFO.name,
            reason: "must be a decimal number of milliseconds",
        });
    }
    text.parse().map_err(|_| DecodeError::Malformed {
        kind: INFO.name,
        reason: "does not fit an unsigned 64-bit integer",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use proptest::prelude::*;

    const T: u64 = 1_700_000_000_000;

    fn check(text: &str, expected: Result<u64, ()>) {
        let actual = decode(text).map_err(|err| {
            assert!(matches!(err, DecodeError::Malformed { kind: "timestamp", .. }))
        });
        assert_eq!(actual, expected, "decoding {text:?}");
    }

    #[test]
    fn decodes_decimal_milliseconds() {
        check("1700000000000", Ok(T));
        check("0", Ok(0));
        check("18446744073709551615", Ok(u64::MAX));
        check("18446744073709551616", Err(()));
        check("", Err(()));
        check("-1", Err(()));
        check("+1", Err(()));
        check("17e11", Err(()));
        check("1700000000000 ", Err(()));
    }

    #[test]
    fn later_request_in_the_same_ms_gets_the_next_ms() {
        let clock = ManualClock::new(T);
        let generator = TimestampGenerator::new(&clock);
        assert_eq!(generator.generate(), Ok(T));
        assert_eq!(generator.generate(), Ok(T + 1));
        assert_eq!(generator.generate(), Ok(T + 2));
        // The clock catches up and passes: its reading wins again.
        clock.set(T + 10);
        assert_eq!(generator.generate(), Ok(T + 10));
        assert_eq!(generator.high_water_ms(), T + 10);
    }

    #[test]
    fn clock_going_back_continues_from_the_last_value() {
        let clock = ManualClock::new(T);
        let generator = TimestampGenerator::new(&clock);
        assert_eq!(generator.generate(), Ok(T));
        clock.set(T - 60_000);
        assert_eq!(generator.generate(), Ok(T + 1));
        assert_eq!(generator.generate_batch(3), Ok(T + 2..T + 5));
    }

    #[test]
    fn batch_is_a_consecutive_range() {
        let clock = ManualClock::new(T);
        let generator = TimestampGenerator::new(&clock);
        assert_eq!(generator.generate_batch(100), Ok(T..T + 100));
        assert_eq!(generator.generate(), Ok(T + 100));
        assert_eq!(generator.generate_batch(0), Ok(T + 101..T + 101));
        assert_eq!(generator.generate(), Ok(T + 101), "an empty batch reserves nothing");
    }

    #[test]
    fn floor_puts_the_next_value_after_it() {
        let clock = ManualClock::new(T);
        let generator = TimestampGenerator::new(&clock).with_floor(T + 50);
        assert_eq!(generator.high_water_ms(), T + 50);
        assert_eq!(generator.generate(), Ok(T + 51));
        let generator = TimestampGenerator::new(&clock).with_floor(T - 50);
        assert_eq!(generator.generate(), Ok(T));
    }

    #[test]
    fn ceiling_refuses_until_raised() {
        let clock = ManualClock::new(T);
        let generator = TimestampGenerator::new(&clock);
        generator.set_ceiling(T + 1);
        assert_eq!(generator.generate_batch(2), Ok(T..T + 2));
        assert_eq!(
            generator.generate(),
            Err(IssueError::CeilingReached { needed: T + 2, ceiling: T + 1 })
        );
        generator.set_ceiling(T + 10);
        // A batch that would pass the ceiling reserves nothing.
        assert_eq!(
            generator.generate_batch(10),
            Err(IssueError::CeilingReached { needed: T + 11, ceiling: T + 10 })
        );
        assert_eq!(generator.high_water_ms(), T + 1);
        assert_eq!(generator.generate_batch(9), Ok(T + 2..T + 11));
    }

    #[test]
    fn never_wraps_at_the_end_of_u64() {
        let clock = ManualClock::new(u64::MAX - 2);
        let generator = TimestampGenerator::new(&clock);
        assert_eq!(generator.generate(), Ok(u64::MAX - 2));
        assert_eq!(generator.generate(), Ok(u64::MAX - 1));
        let end = IssueError::CeilingReached { needed: u64::MAX, ceiling: u64::MAX };
        assert_eq!(generator.generate(), Err(end.clone()));
        assert_eq!(generator.generate_batch(u64::MAX), Err(end));
    }

    #[test]
    fn strictly_increasing_across_threads() {
        let generator = TimestampGenerator::new(SystemClock);
        crate::test_support::assert_unique_on_threads(4, 50_000, || generator.generate().unwrap());
    }

    proptest! {
        #[test]
        fn strictly_increasing_for_any_clock(
            steps in prop::collection::vec((-5_000i64..=5_000, 0u64..20), 1..100),
        ) {
            let clock = ManualClock::new(T);
            let generator = TimestampGenerator::new(&clock);
            let mut previous = 0;
            for (clock_step, count) in steps {
                clock.set(clock.now_ms().saturating_add_signed(clock_step));
                let range = generator.generate_batch(count).unwrap();
                prop_assert_eq!(range.end - range.start, count);
                if count > 0 {
                    prop_assert!(range.start > previous);
                    prop_assert!(range.start >= clock.now_ms());
                    previous = range.end - 1;
                }
                let single = generator.generate().unwrap();
                prop_assert!(single > previous && single >= clock.now_ms());
                prop_assert_eq!(generator.high_water_ms(), single);
                previous = single;
            }
        }

        #[test]
        fn decode_round_trips(ms: u64) {
            prop_assume!(ms < u64::MAX);
            let value = TimestampGenerator::new(ManualClock::new(ms)).generate().unwrap();
            prop_assert_eq!(decode(&value.to_string()), Ok(ms));
        }
    }
}
