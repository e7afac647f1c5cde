//! The reservation policy: how far ahead of what is issued a durable mark is written, so that
//! a busy server rarely waits for a write, while a crash skips at most one reservation (gaps
//! after a crash are allowed, repeats are not).
//!
//! - snowflake: 500 ms past the clock, at most half the backward allowance, never past the
//!   previous mark plus that (see [`TIME_MARK_AHEAD_MS`]);
//! - timestamp, uuid7, ulid: `max(500 ms, 16 batches, the current lead)` past what is needed,
//!   at most a minute ([`MAX_TIME_RESERVATION_MS`]), where the lead is how far the generator
//!   has run ahead of the clock in this process. Above 1,000 requests/s timestamp ids outrun
//!   the clock, and a fixed 500 ms would then last a few ms of real time (one fsync every few
//!   ms); reserving in proportion to the lead makes the number of writes grow with the
//!   logarithm of the lead instead;
//! - counter (node-issued): a block that doubles (up to [`MAX_COUNTER_BLOCK`]) while each
//!   block lasts less than [`FAST_BLOCK`], and falls back to [`COUNTER_BLOCK`] after
//!   [`IDLE_BLOCK`] without a reservation; at least 16 batches.

use std::time::{Duration, Instant};

/// How far ahead a time mark is written. Snowflake marks: at most this far past the *clock*
/// (see [`time_margin_ms`]), never past the previous mark: after `kill -9` the next
/// run starts above the mark, and if each run added a margin to the last one's, a few quick
/// restarts would put the floor beyond the snowflake backward allowance. Timestamp ids have no
/// such allowance, so their marks go at least this far past what is needed, and further when
/// the generator runs ahead of the clock (see [`timestamp_target`]).
pub const TIME_MARK_AHEAD_MS: u64 = 500;
/// Smallest block of counter values reserved per write (and the block of an idle counter).
pub const COUNTER_BLOCK: u64 = 1_000;
/// Largest block of counter values reserved per write: what a crash can skip at most.
pub const MAX_COUNTER_BLOCK: u64 = 1_000_000;
/// A counter block used up faster than this makes the next one twice as large.
pub const FAST_BLOCK: Duration = Duration::from_secs(1);
/// A counter with no reservation for this long starts again from [`COUNTER_BLOCK`].
pub const IDLE_BLOCK: Duration = Duration::from_secs(10);
/// A reservation for a batch of `count` covers this many such batches, so that concurrent
/// batch requests do not each need a write (and cannot starve each other of the block).
pub const BATCHES_PER_RESERVATION: u64 = 16;
/// Longest a request waits in total for snowflake sequence numbers to free up.
pub const EXHAUSTED_WAIT_BUDGET_MS: u64 = 50;
/// How long one request keeps raising a ceiling that concurrent requests use up before it
/// answers 503. Each raise is a durable write covering many batches, so in practice one or
/// two suffice; the bound only matters if the store stops keeping up.
pub const CEILING_DEADLINE: Duration = Duration::from_secs(2);

/// The adaptive block of one counter (see the module comment).
#[derive(Debug)]
pub struct Reservation {
    pub block: u64,
    /// When this process last chose a mark for the counter; `None` before its first use.
    pub at: Option<Instant>,
    /// The mark chosen then.
    target: u64,
}

impl Default for Reservation {
    fn default() -> Self {
        Self { block: COUNTER_BLOCK, at: None, target: 0 }
    }
}

impl Reservation {
    /// The mark to write so that values through `needed` (a batch of `count`) can be issued.
    /// Requests that reach the ceiling together get the same mark (one write, not one per
    /// request, and one doubling).
    pub fn target(&mut self, needed: u64, count: u64, now: Instant) -> u64 {
        if needed <= self.target {
            return self.target;
        }
        self.block = match self.at.map(|at| now.saturating_duration_since(at)) {
            Some(lasted) if lasted < FAST_BLOCK => {
                self.block.saturating_mul(2).min(MAX_COUNTER_BLOCK)
            }
            Some(lasted) if lasted < IDLE_BLOCK => self.block,
            _ => COUNTER_BLOCK,
        };
        self.at = Some(now);
        self.target = needed.saturating_add(self.block.max(batch_reservation(count)));
        self.target
    }
}

/// How many values (counter) or ms (timestamp) one reservation for a batch of `count` covers.
pub fn batch_reservation(count: u64) -> u64 {
    COUNTER_BLOCK.max(count.saturating_mul(BATCHES_PER_RESERVATION))
}

/// How far ahead of the clock snowflake marks go: 500 ms, but at most half the backward
/// allowance, so that a restart right after `kill -9` (the floor is then ahead of the clock by
/// up to this much) stays within the allowance.
pub fn time_margin_ms(max_backward_ms: u64) -> u64 {
    TIME_MARK_AHEAD_MS.min(max_backward_ms / 2).max(1)
}

/// The snowflake mark to write when `needed` is above the ceiling.
pub fn time_target(needed: u64, now_ms: u64, max_backward_ms: u64) -> u64 {
    needed.max(now_ms.saturating_add(time_margin_ms(max_backward_ms)))
}

/// The most a time mark (timestamp, uuid7, ulid) is written ahead of what is needed: whatever
/// the load, a crash skips at most this much of the kind's time, so a mark written at a
/// restart is at most `MAX_TIME_RESERVATION_MS` plus one batch ahead of `max(clock, previous
/// mark)`, however many crashes came before. At 120,000 timestamp requests a second it still
/// lasts half a second, a few writes a second.
pub const MAX_TIME_RESERVATION_MS: u64 = 60_000;

/// The mark to write for a time-ordered kind without a backward allowance (timestamp, uuid7,
/// ulid) when `needed` (the time of the last of a batch of `count`) is above the ceiling:
/// `max(500 ms, 16 batches, the lead)` past `max(needed, clock)`, at most
/// [`MAX_TIME_RESERVATION_MS`]. Such kinds run ahead of the clock rather than repeat, so a
/// restart simply continues above the mark and the reservation can be generous.
///
/// The lead is how far this process has run ahead of `max(clock, start_floor)`, where
/// `start_floor` is the mark it started above: a lead inherited from an earlier run is not
/// evidence of load now, and counting it made each crash double the lead (one batch per life:
/// 0, 1, 3, 6, 13 ... s) until the mark overflowed.
pub fn time_mark_target(needed: u64, count: u64, now_ms: u64, start_floor: u64) -> u64 {
    let lead = needed.saturating_sub(now_ms.max(start_floor));
    let ahead = TIME_MARK_AHEAD_MS
        .max(count.saturating_mul(BATCHES_PER_RESERVATION))
        .max(lead)
        .min(MAX_TIME_RESERVATION_MS);
    needed.max(now_ms).saturating_add(ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_blocks_double_while_fast_and_reset_when_idle() {
        let start = Instant::now();
        let mut reservation = Reservation::default();
        // First use: the smallest block.
        assert_eq!(reservation.target(1, 1, start), 1 + COUNTER_BLOCK);
        // Requests that reach the same ceiling together share one mark (one doubling).
        assert_eq!(reservation.target(500, 1, start), 1 + COUNTER_BLOCK);
        // Used up within a second: twice as large each time, up to the maximum.
        let mut needed = 1 + COUNTER_BLOCK + 1;
        let mut expected_block = COUNTER_BLOCK;
        for step in 1..=15u32 {
            let now = start + Duration::from_millis(100 * u64::from(step));
            expected_block = (expected_block * 2).min(MAX_COUNTER_BLOCK);
            let target = reservation.target(needed, 1, now);
            assert_eq!(target - needed, expected_block, "step {step}");
            needed = target + 1;
        }
        assert_eq!(reservation.block, MAX_COUNTER_BLOCK);
        // A block that lasts a few seconds keeps its size; after an idle spell, back to 1000.
        let now = start + Duration::from_secs(5);
        let target = reservation.target(needed, 1, now);
        assert_eq!(target - needed, MAX_COUNTER_BLOCK);
        let later = now + IDLE_BLOCK;
        assert_eq!(reservation.target(target + 1, 1, later) - (target + 1), COUNTER_BLOCK);
        // A large batch still reserves 16 of its size.
        let mut reservation = Reservation::default();
        assert_eq!(reservation.target(10_000, 10_000, start), 10_000 + 160_000);
    }

    #[test]
    fn time_marks_stay_within_a_minute_of_the_clock_or_the_last_mark() {
        let now = 1_700_000_000_000;
        // Idle: half a second ahead. Busy (running 10 s ahead in this run): 10 s more.
        assert_eq!(time_mark_target(now, 1, now, 0), now + 500);
        assert_eq!(time_mark_target(now + 10_000, 1, now, 0), now + 20_000);
        // Never more than a minute past what is needed, whatever the lead or the batch.
        assert_eq!(time_mark_target(now + 3_600_000, 1, now, 0), now + 3_660_000);
        assert_eq!(time_mark_target(now, 10_000, now, 0), now + 60_000);
        // A lead inherited from a crashed run (the floor) is not this run's load: a restart
        // after a crash reserves half a second above the floor, not the floor's lead again.
        let floor = now + 600_000;
        assert_eq!(time_mark_target(floor + 1, 1, now, floor), floor + 501);
        // 100 crashes in a row, one request per life and 50 ms per life: the lead grows by at
        // most 500 ms per crash, and each mark is within the bound of the one before.
        let (mut mark, mut clock) = (now, now);
        for _ in 0..100 {
            let next = time_mark_target(mark + 1, 1, clock, mark);
            assert!(next <= mark.max(clock) + 1 + MAX_TIME_RESERVATION_MS);
            (mark, clock) = (next, clock + 50);
        }
        assert!(mark - clock <= 100 * 500, "lead {} ms", mark - clock);
        // At the end of the range: saturates, never wraps.
        assert_eq!(time_mark_target(u64::MAX - 1, 1, now, 0), u64::MAX);
        assert_eq!(time_mark_target(u64::MAX, u64::MAX, u64::MAX, u64::MAX), u64::MAX);
    }
}
