//! Generator set-ups shared by the benches (`generators` with criterion, `ratios` without).

use idgen_core::SystemClock;
use idgen_core::snowflake::{SnowflakeConfig, SnowflakeGenerator, WorkerId};

/// A snowflake generator at the start of its 1 s borrow allowance.
pub fn fresh_snowflake() -> SnowflakeGenerator {
    let worker_id = WorkerId::new(1).expect("1 is a valid worker id");
    SnowflakeGenerator::new(SystemClock, SnowflakeConfig::new(worker_id))
}

/// A snowflake generator that has used up its borrow allowance: from here on it can issue at
/// most 4096 IDs per millisecond of real time (the sustained state).
pub fn saturated_snowflake() -> SnowflakeGenerator {
    let generator = fresh_snowflake();
    let mut out = Vec::with_capacity(1 << 16);
    while generator.generate_batch(1 << 16, &mut out).is_ok() {
        out.clear();
    }
    generator
}
