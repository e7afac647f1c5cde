//! Counter segments in Redis mode with `IDGEN_COUNTER_BLOCK` > 1: a node takes ranges of
//! `block` values with one `INCRBY block` and serves from memory.
//!
//! Double buffer: when fewer than half a block of values is left, a background task fetches the
//! next block, so requests rarely wait for Redis and a short Redis outage is absorbed by what is
//! buffered. Values are unique across nodes (each range comes from one `INCRBY`) and increasing
//! per node, not globally: two nodes serve interleaved ranges. A range that arrives late (below
//! what was already issued) is clipped, so per-node order always holds; gaps are fine.
//!
//! Fast path: the range being served is the *active* one, and a request takes from it with one
//! compare-and-swap under a read lock (no await, no `tokio::sync` lock). Only when the active
//! range cannot cover a request does it take the buffer's lock (the slow path): it puts what
//! is left of the active range back in front of the buffer, fetches if needed, takes, and
//! makes the buffer's next range active. The slow path swaps the active range under the write
//! lock, so no request takes from a range that is being replaced, and everything in the buffer
//! is above the active range (a range pushed while one is active is clipped above it).

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use idgen_core::counter::CounterName;

use super::connection::RedisError;
use super::store::RedisStore;

/// After a failed fetch, requests that find the buffer empty answer at once for this long
/// instead of each waiting for Redis in turn (they queue on the buffer's lock).
const FAILURE_BACKOFF: Duration = Duration::from_millis(250);

/// Buffered ranges of one counter on this node.
#[derive(Debug, Default)]
pub struct Segments {
    /// The range requests take from without the buffer's lock; replaced only under the
    /// buffer's lock and this write lock.
    active: parking_lot::RwLock<Option<Active>>,
    /// The ranges after the active one.
    buffer: tokio::sync::Mutex<Buffer>,
    /// `buffer.available()` as of its last change, for the fast path's prefetch decision.
    buffered: AtomicU64,
    fetching: AtomicBool,
    failed_at: parking_lot::Mutex<Option<Instant>>,
}

/// The range being served: `next..=last`, used up when `next > last`.
#[derive(Debug)]
struct Active {
    next: AtomicU64,
    last: u64,
}

impl Active {
    /// `count` values and how many are left after them, or `None` if fewer are left.
    fn take(&self, count: u64) -> Option<(RangeInclusive<u64>, u64)> {
        // Relaxed: `next` is the only location the CAS protects; `last` is published by the
        // lock the caller holds.
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let end = next.checked_add(count - 1)?;
            if end > self.last {
                return None;
            }
            let after = end.checked_add(1)?;
            match self.next.compare_exchange_weak(next, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((next..=end, self.last - end)),
                Err(actual) => next = actual,
            }
        }
    }
}

#[derive(Debug, Default)]
struct Buffer {
    /// Disjoint inclusive ranges `(first, last)`, sorted, all above `last_issued`.
    ranges: VecDeque<(u64, u64)>,
    /// The last value issued, or handed to the active range.
    last_issued: u64,
}

impl Buffer {
    fn available(&self) -> u64 {
        self.ranges.iter().map(|(first, last)| last - first + 1).sum()
    }

    fn push(&mut self, range: RangeInclusive<u64>) {
        let (first, last) = range.into_inner();
        let first = first.max(self.last_issued.saturating_add(1));
        if first > last {
            return;
        }
        let at =
            self.ranges.iter().position(|(start, _)| *start > first).unwrap_or(self.ranges.len());
        self.ranges.insert(at, (first, last));
    }

    /// Takes `count` values (the caller checked they are there), in increasing order.
    fn take(&mut self, mut count: u64) -> Vec<RangeInclusive<u64>> {
        let mut out = Vec::with_capacity(1);
        while count > 0 {
            let Some((first, last)) = self.ranges.front_mut() else { break };
            let size = (*last - *first + 1).min(count);
            let end = *first + size - 1;
            out.push(*first..=end);
            self.last_issued = end;
            count -= size;
            if end == *last {
                self.ranges.pop_front();
            } else {
                *first = end + 1;
            }
        }
        out
    }
}

impl Segments {
    /// Values buffered on this node and not handed out yet.
    pub fn remaining(&self) -> u64 {
        let active = self.active.read().as_ref().map_or(0, |active| {
            let next = active.next.load(Ordering::Relaxed);
            (active.last + 1).saturating_sub(next)
        });
        active + self.buffered.load(Ordering::Relaxed)
    }

    /// `count` values of counter `name`, increasing, as one or more ranges.
    pub async fn take(
        self: &Arc<Self>,
        store: &Arc<RedisStore>,
        name: &CounterName,
        count: u64,
        block: u64,
    ) -> Result<Vec<RangeInclusive<u64>>, RedisError> {
        let fast = self.active.read().as_ref().and_then(|active| active.take(count));
        if let Some((range, left)) = fast {
            self.prefetch_if_low(left, store, name, block);
            return Ok(vec![range]);
        }
        let mut buffer = self.buffer.lock().await;
        // Put what is left of the active range back in front of the buffer.
        if let Some(active) = self.active.write().take() {
            // Every value below `next` was issued; the buffer holds only ranges above `last`.
            let next = active.next.into_inner();
            buffer.last_issued = next.saturating_sub(1);
            if next <= active.last {
                buffer.ranges.push_front((next, active.last));
            }
        }
        let available = buffer.available();
        if available < count {
            // First use, a batch bigger than what is buffered, or an outage emptied the buffer.
            let failed_recently =
                self.failed_at.lock().is_some_and(|at| at.elapsed() < FAILURE_BACKOFF);
            if failed_recently {
                self.buffered.store(available, Ordering::Relaxed);
                return Err(RedisError::Backoff);
            }
            let size = block.max(count - available);
            match store.incr_counter(name, size).await {
                Ok(range) => buffer.push(range),
                Err(error) => {
                    *self.failed_at.lock() = Some(Instant::now());
                    self.buffered.store(available, Ordering::Relaxed);
                    return Err(error);
                }
            }
        }
        let ranges = buffer.take(count);
        // The next range becomes the active one; everything pushed from now on is above it.
        let left = match buffer.ranges.pop_front() {
            Some((first, last)) => {
                buffer.last_issued = last;
                *self.active.write() = Some(Active { next: AtomicU64::new(first), last });
                last - first + 1
            }
            None => 0,
        };
        self.buffered.store(buffer.available(), Ordering::Relaxed);
        drop(buffer);
        self.prefetch_if_low(left, store, name, block);
        Ok(ranges)
    }

    /// Fetches the next block in the background when fewer than half a block is left.
    fn prefetch_if_low(
        self: &Arc<Self>,
        active_left: u64,
        store: &Arc<RedisStore>,
        name: &CounterName,
        block: u64,
    ) {
        let low = active_left + self.buffered.load(Ordering::Relaxed) < block / 2 + 1;
        if !low || self.fetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let segments = Arc::clone(self);
        let store = Arc::clone(store);
        let name = name.clone();
        tokio::spawn(async move {
            match store.incr_counter(&name, block).await {
                Ok(range) => {
                    let mut buffer = segments.buffer.lock().await;
                    buffer.push(range);
                    segments.buffered.store(buffer.available(), Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::warn!(counter = %name, error = %error, "counter prefetch failed");
                }
            }
            segments.fetching.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_serves_in_order_and_clips_late_ranges() {
        let mut buffer = Buffer::default();
        buffer.push(11..=20);
        assert_eq!(buffer.take(3), vec![11..=13]);
        buffer.push(31..=40);
        assert_eq!(buffer.available(), 17);
        assert_eq!(buffer.take(9), vec![14..=20, 31..=32]);
        // A range below what was issued (a prefetch that lost a race) is dropped.
        buffer.push(21..=30);
        assert_eq!(buffer.take(8), vec![33..=40]);
        assert_eq!(buffer.available(), 0);
        // One straddling it is clipped.
        let mut buffer = Buffer { last_issued: 5, ..Buffer::default() };
        buffer.push(1..=8);
        assert_eq!(buffer.take(3), vec![6..=8]);
    }

    #[test]
    fn active_range_hands_out_each_value_once_and_refuses_past_its_end() {
        let active = Active { next: AtomicU64::new(11), last: 20 };
        assert_eq!(active.take(3), Some((11..=13, 7)));
        assert_eq!(active.take(8), None);
        assert_eq!(active.take(7), Some((14..=20, 0)));
        assert_eq!(active.take(1), None);
        // Concurrent takers: every value exactly once.
        let active = Arc::new(Active { next: AtomicU64::new(1), last: 40_000 });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let active = Arc::clone(&active);
                std::thread::spawn(move || {
                    let mut taken = Vec::new();
                    while let Some((range, _)) = active.take(1) {
                        taken.extend(range);
                    }
                    taken
                })
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (1..=40_000).collect::<Vec<_>>());
    }
}
