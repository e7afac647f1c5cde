//! Counter segments in Redis mode with `IDGEN_COUNTER_BLOCK` > 1: a node takes ranges of
//! `block` values with one `INCRBY block` and serves from memory.
//!
//! Double buffer: when fewer than half a block of values is left, a background task fetches the
//! next block, so requests rarely wait for Redis and a short Redis outage is absorbed by what is
//! buffered. Values are unique across nodes (each range comes from one `INCRBY`) and increasing
//! per node, not globally: two nodes serve interleaved ranges. A range that arrives late (below
//! what was already issued) is clipped, so per-node order always holds; gaps are fine.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use idgen_core::counter::CounterName;

use crate::store::redis::{RedisError, RedisStore};

/// After a failed fetch, requests that find the buffer empty answer at once for this long
/// instead of each waiting for Redis in turn (they queue on the buffer's lock).
const FAILURE_BACKOFF: Duration = Duration::from_millis(250);

/// Buffered ranges of one counter on this node.
#[derive(Debug, Default)]
pub struct Segments {
    buffer: tokio::sync::Mutex<Buffer>,
    fetching: AtomicBool,
    failed_at: parking_lot::Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Buffer {
    /// Disjoint inclusive ranges `(first, last)`, sorted, all above `last_issued`.
    ranges: VecDeque<(u64, u64)>,
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
    /// `count` values of counter `name`, increasing, as one or more ranges.
    pub async fn take(
        self: &Arc<Self>,
        store: &Arc<RedisStore>,
        name: &CounterName,
        count: u64,
        block: u64,
    ) -> Result<Vec<RangeInclusive<u64>>, RedisError> {
        let mut buffer = self.buffer.lock().await;
        let available = buffer.available();
        if available < count {
            // First use, a batch bigger than what is buffered, or an outage emptied the buffer.
            let failed_recently =
                self.failed_at.lock().is_some_and(|at| at.elapsed() < FAILURE_BACKOFF);
            if failed_recently {
                return Err(RedisError::Backoff);
            }
            let size = block.max(count - available);
            match store.incr_counter(name, size).await {
                Ok(range) => buffer.push(range),
                Err(error) => {
                    *self.failed_at.lock() = Some(Instant::now());
                    return Err(error);
                }
            }
        }
        let ranges = buffer.take(count);
        let low = buffer.available() < block / 2 + 1;
        drop(buffer);
        if low && !self.fetching.swap(true, Ordering::AcqRel) {
            let segments = Arc::clone(self);
            let store = Arc::clone(store);
            let name = name.clone();
            tokio::spawn(async move {
                match store.incr_counter(&name, block).await {
                    Ok(range) => segments.buffer.lock().await.push(range),
                    Err(error) => {
                        tracing::warn!(counter = %name, error = %error, "counter prefetch failed");
                    }
                }
                segments.fetching.store(false, Ordering::Release);
            });
        }
        Ok(ranges)
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
}
