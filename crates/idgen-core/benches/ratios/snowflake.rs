//! The sustained snowflake loops of the ratios bench: IDs at the layout's cap, one by one or
//! in batches, spinning while a millisecond's sequence is used up.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use idgen_core::snowflake::SnowflakeGenerator;
use idgen_core::{Clock, IssueError, SystemClock};

/// Refusals the sustained loops retried because they came from a stale clock reading, and the
/// largest apparent step back (ms) among them.
pub static STALE_REFUSALS: AtomicU64 = AtomicU64::new(0);
pub static STALE_REFUSAL_MAX_BEHIND_MS: AtomicU64 = AtomicU64::new(0);

/// `count` snowflakes one by one, spinning while the millisecond's sequence is used up.
pub fn sustained(generator: &SnowflakeGenerator, count: u64) -> Result<(), String> {
    let mut issued = 0;
    while issued < count {
        match generator.generate() {
            Ok(id) => {
                black_box(id);
                issued += 1;
            }
            Err(error) => wait_or_fail(generator, error)?,
        }
    }
    Ok(())
}

/// `count` snowflakes in batches of 1000 (one `Vec` each, as the server does per request).
pub fn sustained_batches(generator: &SnowflakeGenerator, count: u64) -> Result<(), String> {
    const BATCH: usize = 1_000;
    let mut issued = 0;
    while issued < count {
        let wanted = (count - issued).min(BATCH as u64) as usize;
        let mut out = Vec::with_capacity(wanted);
        while out.len() < wanted {
            if let Err(error) = generator.generate_batch(wanted - out.len(), &mut out) {
                wait_or_fail(generator, error)?;
            }
        }
        issued += out.len() as u64;
        black_box(out);
    }
    Ok(())
}

/// Decides what a sustained loop does with a refusal: `Exhausted` is the cap, so spin and
/// retry. A `ClockMovedBackwards` that a fresh clock reading contradicts is not the clock going
/// back: with two threads at the cap, one reads the clock (and may be preempted), the other
/// claims up to 1 s past *its* newer reading, and the first one's reading is now more than
/// 1 s behind the state. Count it and retry (the generator's race, reported in the notes under
/// the table). Anything else ends the run.
fn wait_or_fail(generator: &SnowflakeGenerator, error: IssueError) -> Result<(), String> {
    match error {
        IssueError::Exhausted { .. } => std::hint::spin_loop(),
        IssueError::ClockMovedBackwards { last_ms, now_ms }
            if last_ms <= SystemClock.now_ms() + generator.config().max_backward_ms =>
        {
            STALE_REFUSALS.fetch_add(1, Ordering::Relaxed);
            STALE_REFUSAL_MAX_BEHIND_MS.fetch_max(last_ms - now_ms, Ordering::Relaxed);
        }
        other => return Err(other.to_string()),
    }
    Ok(())
}
