//! Typed errors of the generators, parameter validation and decoders.

use thiserror::Error;

/// A generator could not issue an ID right now. None of these is the caller's fault; the
/// server maps them to 503 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IssueError {
    /// The wall clock is behind the last issued timestamp by more than the allowance.
    #[error("clock moved backwards: last issued ms {last_ms}, clock reads {now_ms}")]
    ClockMovedBackwards { last_ms: u64, now_ms: u64 },
    /// All sequence numbers up to the furthest timestamp we may borrow are used; try again
    /// after `retry_after_ms`.
    #[error("sequence exhausted, retry in {retry_after_ms} ms")]
    Exhausted { retry_after_ms: u64 },
    /// The next value is above the durable ceiling the caller granted; the caller must persist
    /// a new high-water mark (at least `needed`) and raise the ceiling before retrying.
    #[error("value {needed} is above the durable ceiling {ceiling}")]
    CeilingReached { needed: u64, ceiling: u64 },
    /// The clock reads a time the ID layout cannot represent (before the epoch, or past its end).
    #[error("clock reads {now_ms} ms, outside what the id layout can represent")]
    TimeOutOfRange { now_ms: u64 },
}

/// A request parameter is invalid. Messages are written for the API's users.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    #[error("count must be an integer from 1 to {max}")]
    Count { max: u32 },
    #[error("length must be an integer from 1 to {max}")]
    Length { max: usize },
    #[error("unknown alphabet; use one of: alphanumeric, hex, base58, nanoid")]
    Alphabet,
    #[error("counter name must be 1 to 64 characters from A-Z a-z 0-9 _ . -")]
    CounterName,
    #[error("worker id must be an integer from 0 to 1023")]
    WorkerId,
}

/// An ID given to a decoder is not a valid ID of that kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("not a valid {kind} id: {reason}")]
    Malformed { kind: &'static str, reason: &'static str },
    #[error("ids of kind {kind} cannot be decoded")]
    NotDecodable { kind: &'static str },
}
