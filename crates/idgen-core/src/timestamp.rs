//! Millisecond timestamp IDs, strictly increasing per process.

use crate::{Clock, DecodeError, IssueError, KindInfo, SystemClock};

pub const INFO: KindInfo = KindInfo {
    name: "timestamp",
    description: "ms since the Unix epoch, strictly increasing: a later request in the same ms gets the next ms",
    sortable: true,
    bits: 64,
};

/// Issues timestamps, strictly increasing across all threads.
pub struct TimestampGenerator<C: Clock = SystemClock> {
    clock: C,
}

impl<C: Clock> TimestampGenerator<C> {
    pub fn new(clock: C) -> Self {
        Self { clock }
    }

    /// Never issue a value at or below `unix_ms`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        let _ = unix_ms;
        todo!()
    }

    /// Allow values up to and including `unix_ms` (unlimited until first called); see
    /// `SnowflakeGenerator::set_ceiling`.
    pub fn set_ceiling(&self, unix_ms: u64) {
        let _ = unix_ms;
        todo!()
    }

    /// The highest value issued (or the floor).
    pub fn high_water_ms(&self) -> u64 {
        todo!()
    }

    /// `max(clock, last + 1)`. Only error: [`IssueError::CeilingReached`].
    pub fn generate(&self) -> Result<u64, IssueError> {
        let _ = &self.clock;
        todo!()
    }

    /// `count` consecutive values `first..first + count` with `first = max(clock, last + 1)`,
    /// reserved in one atomic step.
    pub fn generate_batch(&self, count: u64) -> Result<std::ops::Range<u64>, IssueError> {
        let _ = count;
        todo!()
    }
}

/// A timestamp ID's value (decimal ms since the Unix epoch).
pub fn decode(text: &str) -> Result<u64, DecodeError> {
    let _ = text;
    todo!()
}
