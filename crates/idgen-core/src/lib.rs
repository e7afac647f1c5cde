//! idgen-core: every ID generator idgen serves, plus the wire types shared by server and client.
//!
//! Pure by design: no I/O, no async, no global state. Time comes in through a [`Clock`] and
//! randomness through a `rand::Rng` parameter, so every edge case (same millisecond, clock going
//! back, sequence exhaustion, overflow) is reproducible in a unit test with a fixed clock and a
//! seeded RNG. Persistence (counter blocks, snowflake time marks) is the server's job: the
//! stateful generators expose a *ceiling* the caller raises only after it has made the new
//! high-water mark durable.

pub mod clock;
pub mod counter;
pub mod error;
pub mod kind;
pub mod random;
pub mod snowflake;
pub mod timestamp;
pub mod ulid;
pub mod uuid;
pub mod uuid7;
pub mod wire;

pub use ::ulid::Ulid;
pub use ::uuid::Uuid;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{DecodeError, IssueError, ParamError};
pub use kind::{KINDS, Kind, KindInfo};
