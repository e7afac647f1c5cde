//! Snowflake IDs: 1 zero bit, 41 bits ms since an epoch, 10 bits worker id, 12 bits sequence.

use crate::{Clock, DecodeError, IssueError, KindInfo, ParamError, SystemClock};

pub const INFO: KindInfo = KindInfo {
    name: "snowflake",
    description: "64-bit snowflake: 41-bit ms since the epoch, 10-bit worker id, 12-bit sequence, sortable",
    sortable: true,
    bits: 64,
};

/// 2020-01-01T00:00:00Z in ms since the Unix epoch.
pub const DEFAULT_EPOCH_MS: u64 = 1_577_836_800_000;
/// How far the clock may step back before the generator refuses (and how far ahead of the
/// clock it may borrow when a millisecond's 4096 sequence numbers are used up).
pub const DEFAULT_MAX_BACKWARD_MS: u64 = 1_000;

/// A worker id, 0..=1023.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(u16);

impl WorkerId {
    pub const MAX: u16 = 1023;

    pub fn new(id: u16) -> Result<Self, ParamError> {
        if id <= Self::MAX { Ok(Self(id)) } else { Err(ParamError::WorkerId) }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// A snowflake ID; always fits a positive `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnowflakeId(u64);

impl SnowflakeId {
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
    pub worker_id: WorkerId,
    /// See [`DEFAULT_MAX_BACKWARD_MS`].
    pub max_backward_ms: u64,
}

impl SnowflakeConfig {
    pub fn new(worker_id: WorkerId) -> Self {
        Self { epoch_ms: DEFAULT_EPOCH_MS, worker_id, max_backward_ms: DEFAULT_MAX_BACKWARD_MS }
    }
}

/// The parts of a snowflake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnowflakeParts {
    /// Unix ms (epoch already added).
    pub timestamp_ms: u64,
    pub worker_id: u16,
    pub sequence: u16,
}

/// Issues snowflakes for one worker id.
pub struct SnowflakeGenerator<C: Clock = SystemClock> {
    clock: C,
    config: SnowflakeConfig,
}

impl<C: Clock> SnowflakeGenerator<C> {
    /// A generator with no floor and an unlimited ceiling.
    pub fn new(clock: C, config: SnowflakeConfig) -> Self {
        Self { clock, config }
    }

    pub fn config(&self) -> SnowflakeConfig {
        self.config
    }

    /// Never issue an ID whose timestamp is at or below `unix_ms` (a high-water mark persisted
    /// by an earlier run, or by the previous holder of this worker id). Call before the first
    /// `generate`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        let _ = unix_ms;
        todo!()
    }

    /// Allow timestamps up to and including `unix_ms`. Until this is called the ceiling is
    /// unlimited. The caller raises it only after persisting a mark at least this high, so
    /// that a restart can resume above everything issued.
    pub fn set_ceiling(&self, unix_ms: u64) {
        let _ = unix_ms;
        todo!()
    }

    /// The highest timestamp (Unix ms) this generator has issued or was floored at.
    pub fn high_water_ms(&self) -> u64 {
        todo!()
    }

    /// The next snowflake, greater than every one issued before by this generator.
    ///
    /// Rules: a new millisecond starts at sequence 0; within one ms the sequence counts up;
    /// when its 4096 values are used, the generator moves to the next ms even if the clock has
    /// not reached it yet, but never to a timestamp more than `max_backward_ms` ahead of the
    /// clock ([`IssueError::Exhausted`] then). If the clock is behind the last issued
    /// timestamp by at most `max_backward_ms`, issuing continues from the last timestamp;
    /// beyond that it is refused with [`IssueError::ClockMovedBackwards`]. A timestamp above
    /// the ceiling gives [`IssueError::CeilingReached`] with `needed` = that timestamp.
    pub fn generate(&self) -> Result<SnowflakeId, IssueError> {
        let _ = &self.clock;
        todo!()
    }

    /// Up to `count` snowflakes appended to `out` in increasing order, reserved with as few
    /// atomic operations as possible. On an error, the IDs already appended stay valid (they
    /// were issued) and the error says why no more could be.
    pub fn generate_batch(&self, count: usize, out: &mut Vec<SnowflakeId>) -> Result<(), IssueError> {
        let _ = (count, out);
        todo!()
    }
}

/// Split a snowflake (decimal string) made with `epoch_ms` into its parts.
pub fn decode(text: &str, epoch_ms: u64) -> Result<SnowflakeParts, DecodeError> {
    let _ = (text, epoch_ms);
    todo!()
}
