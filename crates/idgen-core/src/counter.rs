//! Named counters: strictly increasing u64 sequences starting at 1 that never repeat.

use std::borrow::Cow;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kind::Param;
use crate::{IssueError, KindInfo, ParamError};

/// Catalogue entry of `counter`: takes `name`, has no decoder.
pub const INFO: KindInfo = KindInfo {
    name: "counter",
    description: "named 64-bit sequence starting at 1, strictly increasing, never repeats",
    sortable: true,
    time_based: false,
    bits: 64,
    text_len: 20,
    params: &[Param::Name],
    decode: None,
    bounds: None,
};

/// A validated counter name: `[A-Za-z0-9_.-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterName(Cow<'static, str>);

impl CounterName {
    /// Checks `name` against `[A-Za-z0-9_.-]{1,64}`; [`ParamError::CounterName`] otherwise.
    pub fn parse(name: &str) -> Result<Self, ParamError> {
        let valid = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid { Ok(Self(Cow::Owned(name.to_owned()))) } else { Err(ParamError::CounterName) }
    }

    /// The name as given, already known to be valid.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CounterName {
    /// `default`, without allocating (the tutorial route asks for it on every request).
    fn default() -> Self {
        Self(Cow::Borrowed("default"))
    }
}

impl std::fmt::Display for CounterName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One counter's in-memory state: the next value and the durable ceiling, both atomics, so
/// concurrent `take`s never lock.
///
/// The state is held as the last value issued rather than the next one, so that a counter
/// that has issued `u64::MAX` is representable and cannot wrap back to 0. The caller keeps
/// the ceiling at or below a value it has persisted (typically it reserves blocks: persist
/// `last + block`, then raise the ceiling), so a restart resumes above everything issued.
#[derive(Debug)]
pub struct Counter {
    /// The last value handed out (the next one is this + 1).
    last: AtomicU64,
    /// Highest value that may be handed out.
    ceiling: AtomicU64,
}

impl Counter {
    /// A counter whose first value will be `last_issued + 1` and whose ceiling is
    /// `last_issued` (nothing may be issued until the caller raises it).
    pub fn starting_after(last_issued: u64) -> Self {
        Self { last: AtomicU64::new(last_issued), ceiling: AtomicU64::new(last_issued) }
    }

    /// Reserve `count` (>= 1) consecutive values. Fails with
    /// [`IssueError::CeilingReached`] (`needed` = last value of the range) when the range
    /// would pass the ceiling; nothing is reserved then.
    ///
    /// A range that would pass `u64::MAX` is refused the same way, with `needed` =
    /// `u64::MAX`: the counter never wraps. A `count` of 0 reserves nothing and returns an
    /// empty range.
    pub fn take(&self, count: u64) -> Result<RangeInclusive<u64>, IssueError> {
        if count == 0 {
            // An inclusive range cannot start after `last` without overflowing at `u64::MAX`,
            // so return a fixed empty one (start > end).
            return Ok(RangeInclusive::new(1, 0));
        }
        // Relaxed for `last`: it is the only location the CAS protects and its modification
        // order orders every reservation. Acquire on the ceiling pairs with `set_ceiling`.
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let ceiling = self.ceiling.load(Ordering::Acquire);
            let end = match last.checked_add(count) {
                Some(end) if end <= ceiling => end,
                end => {
                    let needed = end.unwrap_or(u64::MAX);
                    return Err(IssueError::CeilingReached { needed, ceiling });
                }
            };
            match self.last.compare_exchange_weak(last, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(last + 1..=end),
                Err(actual) => last = actual,
            }
        }
    }

    /// Allow values up to and including `ceiling` (never lowers it).
    pub fn set_ceiling(&self, ceiling: u64) {
        self.ceiling.fetch_max(ceiling, Ordering::Release);
    }

    /// The highest value that may be issued now (the last one set with `set_ceiling`).
    pub fn ceiling(&self) -> u64 {
        self.ceiling.load(Ordering::Acquire)
    }

    /// The last value handed out (or the starting point).
    pub fn last_issued(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(name: &str, valid: bool) {
        let expected = if valid { Ok(name) } else { Err(ParamError::CounterName) };
        assert_eq!(
            CounterName::parse(name).as_ref().map(CounterName::as_str).map_err(Clone::clone),
            expected,
            "{name:?}"
        );
    }

    #[test]
    fn counter_names() {
        check("default", true);
        check("orders", true);
        check("Orders.v2_eu-west", true);
        check("a", true);
        check(&"x".repeat(64), true);
        check(&"x".repeat(65), false);
        check("", false);
        check("with space", false);
        check("slash/name", false);
        check("colon:name", false);
        check("ünïcode", false);
        check("{tag}", false);
        assert_eq!(CounterName::default().as_str(), "default");
        assert_eq!(CounterName::default().to_string(), "default");
    }

    #[test]
    fn starts_at_one_once_the_ceiling_allows() {
        let counter = Counter::starting_after(0);
        assert_eq!((counter.last_issued(), counter.ceiling()), (0, 0));
        assert_eq!(counter.take(1), Err(IssueError::CeilingReached { needed: 1, ceiling: 0 }));
        counter.set_ceiling(10);
        assert_eq!(counter.take(1), Ok(1..=1));
        assert_eq!(counter.take(3), Ok(2..=4));
        assert_eq!(counter.take(6), Ok(5..=10));
        assert_eq!(counter.last_issued(), 10);
    }

    #[test]
    fn a_take_past_the_ceiling_reserves_nothing() {
        let counter = Counter::starting_after(100);
        counter.set_ceiling(110);
        assert_eq!(counter.take(5), Ok(101..=105));
        assert_eq!(counter.take(6), Err(IssueError::CeilingReached { needed: 111, ceiling: 110 }));
        assert_eq!(counter.last_issued(), 105);
        assert_eq!(counter.take(5), Ok(106..=110));
        counter.set_ceiling(1_000);
        assert_eq!(counter.take(6), Ok(111..=116));
    }

    #[test]
    fn ceiling_never_goes_down() {
        let counter = Counter::starting_after(0);
        counter.set_ceiling(50);
        counter.set_ceiling(20);
        assert_eq!(counter.ceiling(), 50);
    }

    #[test]
    fn empty_take_reserves_nothing() {
        let counter = Counter::starting_after(7);
        counter.set_ceiling(100);
        assert!(counter.take(0).unwrap().is_empty());
        assert_eq!(counter.take(1), Ok(8..=8));
    }

    #[test]
    fn never_wraps_past_u64_max() {
        let counter = Counter::starting_after(u64::MAX - 2);
        counter.set_ceiling(u64::MAX);
        assert_eq!(
            counter.take(3),
            Err(IssueError::CeilingReached { needed: u64::MAX, ceiling: u64::MAX })
        );
        assert_eq!(counter.take(2), Ok(u64::MAX - 1..=u64::MAX));
        let exhausted = IssueError::CeilingReached { needed: u64::MAX, ceiling: u64::MAX };
        assert_eq!(counter.take(1), Err(exhausted.clone()));
        assert_eq!(counter.take(u64::MAX), Err(exhausted));
        assert_eq!(counter.last_issued(), u64::MAX);
        let done = Counter::starting_after(u64::MAX);
        done.set_ceiling(u64::MAX);
        assert!(done.take(1).is_err());
    }

    #[test]
    fn strictly_increasing_and_dense_across_threads() {
        let counter = Counter::starting_after(0);
        counter.set_ceiling(u64::MAX);
        let all = crate::test_support::generate_on_threads(4, 50_000, || {
            *counter.take(1).unwrap().start()
        });
        assert_eq!(all, (1..=200_000).collect::<Vec<_>>(), "every value once, no gaps");
    }

    proptest! {
        /// Whatever the takes and ceiling raises, the ranges handed out are consecutive,
        /// never overlap, and never pass the ceiling.
        #[test]
        fn ranges_are_consecutive_and_under_the_ceiling(
            start in 0u64..1_000,
            ops in prop::collection::vec((1u64..50, 0u64..100), 1..100),
        ) {
            let counter = Counter::starting_after(start);
            let mut expected_next = start + 1;
            for (count, raise) in ops {
                counter.set_ceiling(counter.ceiling() + raise);
                match counter.take(count) {
                    Ok(range) => {
                        prop_assert_eq!(*range.start(), expected_next);
                        prop_assert_eq!(range.end() - range.start() + 1, count);
                        prop_assert!(*range.end() <= counter.ceiling());
                        expected_next = range.end() + 1;
                    }
                    Err(IssueError::CeilingReached { needed, ceiling }) => {
                        prop_assert_eq!(needed, expected_next + count - 1);
                        prop_assert!(needed > ceiling);
                    }
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
                prop_assert_eq!(counter.last_issued(), expected_next - 1);
            }
        }
    }
}
