//! Typed errors of the generators, parameter validation and decoders.

use thiserror::Error;

/// A generator could not issue an ID right now. None of these is the caller's fault; the
/// server maps them to 503 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IssueError {
    /// The wall clock is behind the last issued timestamp by more than the allowance.
    #[error("clock moved backwards: last issued ms {last_ms}, clock reads {now_ms}")]
    ClockMovedBackwards {
        /// Unix ms of the last ID issued.
        last_ms: u64,
        /// Unix ms the clock read, more than the allowance earlier than `last_ms`.
        now_ms: u64,
    },
    /// All sequence numbers up to the furthest timestamp we may borrow are used; try again
    /// after `retry_after_ms`.
    #[error("sequence exhausted, retry in {retry_after_ms} ms")]
    Exhausted {
        /// Milliseconds until the clock has moved far enough for the next value to be allowed.
        retry_after_ms: u64,
    },
    /// The next value is above the durable ceiling the caller granted; the caller must persist
    /// a new high-water mark (at least `needed`) and raise the ceiling before retrying.
    #[error("value {needed} is above the durable ceiling {ceiling}")]
    CeilingReached {
        /// The value the ceiling must reach first: Unix ms for the time-based kinds, the last
        /// value of the range for a counter.
        needed: u64,
        /// The ceiling in force when the ID was refused.
        ceiling: u64,
    },
    /// The clock reads a time the ID layout cannot represent (before the epoch, or past its end).
    #[error("clock reads {now_ms} ms, outside what the id layout can represent")]
    TimeOutOfRange {
        /// Unix ms the clock read.
        now_ms: u64,
    },
}

/// A request parameter is invalid. Messages are written for the API's users.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    /// `count` is not an integer from 1 to the largest batch allowed.
    #[error("count must be an integer from 1 to {max}")]
    Count {
        /// The largest batch this request may ask for.
        max: u32,
    },
    /// A random string's `length` is not an integer from 1 to `max`.
    #[error("length must be an integer from 1 to {max}")]
    Length {
        /// The longest string allowed ([`Length::MAX`](crate::random::Length::MAX)).
        max: usize,
    },
    /// `alphabet` names none of the [`Alphabet`](crate::random::Alphabet)s.
    #[error("unknown alphabet; use one of: alphanumeric, hex, base58, nanoid")]
    Alphabet,
    /// A random string's own alphabet (`chars`) is not 2 to 95 distinct printable ASCII
    /// characters.
    #[error(
        "chars {reason}; give 2 to 95 distinct printable ASCII characters (space to ~), percent-encoded"
    )]
    Chars {
        /// What is wrong with it, e.g. `has a character twice`.
        reason: &'static str,
    },
    /// A counter name is empty, longer than 64 characters or has one outside `[A-Za-z0-9_.-]`.
    #[error("counter name must be 1 to 64 characters from A-Z a-z 0-9 _ . -")]
    CounterName,
    /// A TypeID prefix is longer than 63 characters, has one outside `a-z` and `_`, or
    /// starts or ends with `_`.
    #[error("prefix must be at most 63 characters from a-z and _, not starting or ending with _")]
    Prefix,
    /// `time` is missing or is neither Unix ms nor an RFC 3339 date-time.
    #[error(
        "time must be Unix ms or an RFC 3339 date-time such as 2026-12-06T21:00:00Z (from 1970, no leap second)"
    )]
    Time,
    /// A decode route's `strict` is neither `true` nor `false`.
    #[error("strict must be true or false")]
    Strict,
    /// A worker id is above the layout's largest (1023 by default); it comes from
    /// configuration, never from a request.
    #[error("worker id must be an integer from 0 to {max}")]
    WorkerId {
        /// The layout's largest worker id (1023 by default).
        max: u16,
    },
}

/// An ID given to a decoder is not a valid ID of that kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The text does not parse as an ID of `kind`.
    #[error("not a valid {kind} id: {reason}")]
    Malformed {
        /// The kind's catalogue name, e.g. `snowflake`.
        kind: &'static str,
        /// What is wrong with the text, as a phrase for the API's users.
        reason: &'static str,
    },
    /// The ID decodes to a time past 9999-12-31T23:59:59.999Z, which RFC 3339 cannot write
    /// (a uuid7 or ULID holds times up to the year 10889, a `timestamp` any u64).
    #[error(
        "this {kind} id decodes to {timestamp_ms} ms since the Unix epoch, past 9999-12-31T23:59:59.999Z, the last time RFC 3339 can write"
    )]
    TimeOutOfRange {
        /// The kind's catalogue name.
        kind: &'static str,
        /// The time the ID holds, in Unix ms.
        timestamp_ms: u64,
    },
    /// The kind's IDs carry nothing to decode (`counter`, `random`), whatever the text.
    #[error("ids of kind {kind} cannot be decoded")]
    NotDecodable {
        /// The kind's catalogue name.
        kind: &'static str,
    },
}

/// `GET /v1/bounds/{kind}` cannot answer for this kind or time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoundsError {
    /// The kind's IDs are not ordered by time (`uuid`, `counter`, `random`).
    #[error("ids of kind {kind} are not ordered by time: they have no bounds")]
    NotTimeOrdered {
        /// The kind's catalogue name.
        kind: &'static str,
    },
    /// The kind cannot hold this time (or RFC 3339 cannot write it).
    #[error(
        "{kind} ids hold times from {first_ms} to {last_ms} ms since the Unix epoch, not {unix_ms}"
    )]
    OutOfRange {
        /// The kind's catalogue name.
        kind: &'static str,
        /// The time asked for, in Unix ms.
        unix_ms: u64,
        /// The first time the kind holds.
        first_ms: u64,
        /// The last time the kind holds (at most 9999-12-31T23:59:59.999Z).
        last_ms: u64,
    },
}
