//! idgen-core: every ID generator idgen serves, plus the wire types shared by server and client.
//!
//! Pure by design: no I/O, no async, no global state. Time comes in through a [`Clock`] and
//! randomness through a `rand::Rng` parameter, so every edge case (same millisecond, clock going
//! back, sequence exhaustion, overflow) is reproducible in a unit test with a fixed clock and a
//! seeded RNG. Persistence (counter blocks, snowflake time marks) is the server's job: the
//! stateful generators expose a *ceiling* the caller raises only after it has made the new
//! high-water mark durable.
//!
//! # Example
//!
//! ```
//! use idgen_core::snowflake::{self, SnowflakeConfig, SnowflakeGenerator, WorkerId};
//! use idgen_core::{Clock, IssueError, ManualClock};
//!
//! let clock = ManualClock::new(snowflake::DEFAULT_EPOCH_MS + 1_000);
//! let worker_id = WorkerId::new(7).expect("7 is in 0..=1023");
//! let generator = SnowflakeGenerator::new(&clock, SnowflakeConfig::new(worker_id));
//!
//! // The caller persists a high-water mark, then allows timestamps up to it.
//! let mark = clock.now_ms() + 10_000;
//! generator.set_ceiling(mark);
//! let id = generator.generate()?;
//! let parts = snowflake::decode(&id.to_string(), snowflake::DEFAULT_EPOCH_MS).unwrap();
//! assert_eq!((parts.timestamp_ms, parts.worker_id, parts.sequence), (clock.now_ms(), 7, 0));
//!
//! // Past the mark the generator refuses until a new one is persisted.
//! clock.advance(20_000);
//! let refused = IssueError::CeilingReached { needed: clock.now_ms(), ceiling: mark };
//! assert_eq!(generator.generate(), Err(refused));
//! # Ok::<(), IssueError>(())
//! ```

#![warn(missing_docs)]

pub mod clock;
pub mod counter;
pub mod error;
pub mod kind;
pub mod ksuid;
pub mod layout;
pub mod random;
pub mod snowflake;
#[cfg(test)]
mod test_support;
pub mod time;
pub mod timestamp;
pub mod typeid;
pub mod ulid;
pub mod uuid;
pub mod uuid7;
pub mod wire;

pub use ::ulid::Ulid;
pub use ::uuid::Uuid;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoundsError, DecodeError, IssueError, ParamError};
pub use kind::{Bounder, DecodeContext, KINDS, Kind, KindInfo, Param, TimeBounds};
