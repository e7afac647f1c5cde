//! Timestamp IDs: one generator per node, above the back end's timestamp mark.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use idgen_core::timestamp::TimestampGenerator;
use idgen_core::{Clock, IssueError};

use super::policy::{CEILING_DEADLINE, timestamp_target};
use super::{Issuer, SharedClock};
use crate::backend::Mark;
use crate::error::{ApiError, Refusal};

/// A timestamp generator that resumes above the durable `mark` and stops at it until a higher
/// one is written.
pub(super) fn timestamp_above(clock: &SharedClock, mark: u64) -> TimestampGenerator<SharedClock> {
    let generator = TimestampGenerator::new(Arc::clone(clock)).with_floor(mark);
    generator.set_ceiling(mark);
    generator
}

impl Issuer {
    /// `count` consecutive timestamp ids.
    pub async fn timestamps(&self, count: u64) -> Result<Range<u64>, ApiError> {
        let issue = || {
            if count == 1 {
                self.timestamp.generate().map(|value| value..value + 1)
            } else {
                self.timestamp.generate_batch(count)
            }
        };
        // Fast path: below the ceiling, no clock read for a deadline.
        if let Ok(range) = issue() {
            return Ok(range);
        }
        let deadline = Instant::now() + CEILING_DEADLINE;
        while Instant::now() <= deadline {
            match issue() {
                Ok(range) => return Ok(range),
                Err(IssueError::CeilingReached { needed, .. }) => {
                    let target = timestamp_target(needed, count, self.clock.now_ms());
                    let raise = self.backend.raise_mark(&Mark::Timestamp, needed, target);
                    self.timestamp.set_ceiling(raise.await?);
                }
                Err(error) => return Err(self.issue_error("timestamp", error)),
            }
        }
        Err(Refusal::CeilingUnavailable.into())
    }

    /// Once less than half a reservation is left above the high water (which also holds when
    /// the generator runs far ahead of the clock). An idle generator's high water stays put,
    /// so it stops after one write.
    pub(super) async fn refresh_timestamp_mark(&self) {
        let high_water = self.timestamp.high_water_ms();
        // The ceiling is always a value the back end made durable.
        let durable = self.timestamp.ceiling_ms();
        let now_ms = self.clock.now_ms();
        let needed = high_water.saturating_add(1);
        let target = timestamp_target(needed, 1, now_ms);
        let reservation = target.saturating_sub(needed);
        let left = durable.saturating_sub(high_water);
        let clock_passed_it = durable < now_ms;
        if left > reservation / 2 || clock_passed_it {
            return;
        }
        if let Ok(ceiling) = self.backend.raise_mark(&Mark::Timestamp, target, target).await {
            self.timestamp.set_ceiling(ceiling);
        }
    }
}
