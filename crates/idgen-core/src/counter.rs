//! Named counters: strictly increasing u64 sequences starting at 1 that never repeat.

use crate::{IssueError, KindInfo, ParamError};

pub const INFO: KindInfo = KindInfo {
    name: "counter",
    description: "named 64-bit sequence starting at 1, strictly increasing, never repeats",
    sortable: true,
    bits: 64,
};

/// A validated counter name: `[A-Za-z0-9_.-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterName(String);

impl CounterName {
    pub fn parse(name: &str) -> Result<Self, ParamError> {
        let valid = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid { Ok(Self(name.to_owned())) } else { Err(ParamError::CounterName) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CounterName {
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl std::fmt::Display for CounterName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One counter's in-memory state: the next value and the durable ceiling, both atomics, so
/// concurrent `take`s never lock.
pub struct Counter {}

impl Counter {
    /// A counter whose first value will be `last_issued + 1` and whose ceiling is
    /// `last_issued` (nothing may be issued until the caller raises it).
    pub fn starting_after(last_issued: u64) -> Self {
        let _ = last_issued;
        todo!()
    }

    /// Reserve `count` (>= 1) consecutive values. Fails with
    /// [`IssueError::CeilingReached`] (`needed` = last value of the range) when the range
    /// would pass the ceiling; nothing is reserved then.
    pub fn take(&self, count: u64) -> Result<std::ops::RangeInclusive<u64>, IssueError> {
        let _ = count;
        todo!()
    }

    /// Allow values up to and including `ceiling` (never lowers it).
    pub fn set_ceiling(&self, ceiling: u64) {
        let _ = ceiling;
        todo!()
    }

    pub fn ceiling(&self) -> u64 {
        todo!()
    }

    /// The last value handed out (or the starting point).
    pub fn last_issued(&self) -> u64 {
        todo!()
    }
}
