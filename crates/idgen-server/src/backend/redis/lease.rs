//! Snowflake worker-id leases in Redis mode: which worker id this node holds, under which
//! random owner token, and until when it may issue snowflakes with it.
//!
//! A lease is a Redis key with a TTL (`IDGEN_LEASE_TTL_MS`). The node renews it every third of
//! the TTL. Validity is measured on the *monotonic* clock from the moment a successful renewal
//! was *sent*: Redis set the key's expiry at or after that moment, so if the node stops issuing
//! at `sent + ttl - margin` it stops at least `margin` before the key can expire and another
//! node can lease the id. The margin covers clock-rate differences and scheduling delays.
//!
//! Fencing is also done on the data: the next holder starts above the worker's mark in Redis,
//! and a node can only raise that mark while its token is the lease's value (one Lua script).
//! So even a node that is paused past its lease cannot issue above the mark it had reserved,
//! and the new holder starts above it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngExt;

use super::connection::RedisError;
use super::store::{LeaseOutcome, RedisStore};

/// The worker id and token of a held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub worker_id: u16,
    pub token: String,
}

/// This node's lease and its validity.
#[derive(Debug)]
pub struct Lease {
    ttl: Duration,
    margin: Duration,
    base: Instant,
    /// Nanoseconds after `base` until which snowflakes may be issued; 0 = not valid.
    valid_until_ns: AtomicU64,
    /// When the last successful renewal (or acquisition) was sent, ns after `base`.
    renewed_at_ns: AtomicU64,
    held: Mutex<Option<Held>>,
}

impl Lease {
    /// A lease of `ttl`, not yet held.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            margin: safety_margin(ttl),
            base: Instant::now(),
            valid_until_ns: AtomicU64::new(0),
            renewed_at_ns: AtomicU64::new(0),
            held: Mutex::new(None),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ns(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Whether snowflakes may be issued now.
    pub fn is_valid(&self) -> bool {
        self.is_valid_at(Instant::now())
    }

    fn is_valid_at(&self, instant: Instant) -> bool {
        self.ns(instant) < self.valid_until_ns.load(Ordering::Acquire)
    }

    /// How long snowflakes may still be issued without a renewal (zero when not valid).
    pub fn remaining(&self) -> Duration {
        let now = self.ns(Instant::now());
        let until = self.valid_until_ns.load(Ordering::Acquire);
        Duration::from_nanos(until.saturating_sub(now))
    }

    /// The held worker id and token, if any.
    pub fn held(&self) -> Option<Held> {
        self.held.lock().clone()
    }

    /// Records a lease acquired (or renewed) by a request sent at `sent`.
    pub fn confirm(&self, held: Held, sent: Instant) {
        *self.held.lock() = Some(held);
        let sent_ns = self.ns(sent);
        self.renewed_at_ns.store(sent_ns, Ordering::Release);
        let until = sent_ns + (self.ttl - self.margin).as_nanos() as u64;
        self.valid_until_ns.store(until, Ordering::Release);
    }

    /// Stops issuing at once and forgets the lease (it was lost or released).
    pub fn drop_lease(&self) -> Option<Held> {
        self.valid_until_ns.store(0, Ordering::Release);
        self.held.lock().take()
    }

    /// Whether a renewal is due (a third of the TTL after the last one).
    pub fn renewal_due(&self) -> bool {
        let since =
            self.ns(Instant::now()).saturating_sub(self.renewed_at_ns.load(Ordering::Acquire));
        since >= (self.ttl / 3).as_nanos() as u64
    }

    /// How often the maintenance task looks at the lease.
    pub fn tick(&self) -> Duration {
        (self.ttl / 10).clamp(Duration::from_millis(20), Duration::from_millis(500))
    }

    /// Seconds a client should wait before asking for a snowflake again.
    pub fn retry_after_secs(&self) -> u64 {
        self.ttl.as_secs().max(1)
    }
}

/// How long before the lease's expiry the node stops issuing: a fifth of the TTL, at least
/// 50 ms.
fn safety_margin(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_millis(50)).min(ttl / 2)
}

/// A random owner token (128 bits, hex).
pub fn new_token() -> String {
    let value: u128 = rand::rng().random();
    format!("{value:032x}")
}

/// Leases a worker id: `fixed` only, or else `preferred` first and then any free one (the scan
/// starts at a random id so that nodes starting together rarely collide). `Ok(None)`: the
/// fixed id is taken, or all of `0..=max_worker` (the layout's) are. Returns the worker id,
/// its mark and when the request was sent.
pub async fn acquire(
    store: &RedisStore,
    fixed: Option<u16>,
    preferred: Option<u16>,
    max_worker: u16,
    token: &str,
    ttl: Duration,
) -> Result<Option<(u16, u64, Instant)>, RedisError> {
    let candidates: Vec<u16> = match fixed {
        Some(worker_id) => vec![worker_id],
        None => {
            let count = u32::from(max_worker) + 1;
            let start = rand::rng().random_range(0..count);
            let scan = (0..count).map(|offset| ((start + offset) % count) as u16);
            preferred.into_iter().chain(scan.filter(move |id| Some(*id) != preferred)).collect()
        }
    };
    for worker_id in candidates {
        let sent = Instant::now();
        if let LeaseOutcome::Acquired { mark_ms } = store.acquire(worker_id, token, ttl).await? {
            return Ok(Some((worker_id, mark_ms, sent)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_follows_confirmations() {
        let lease = Lease::new(Duration::from_secs(10));
        assert!(!lease.is_valid());
        lease.confirm(Held { worker_id: 3, token: "t".into() }, Instant::now());
        assert!(lease.is_valid());
        assert!(!lease.renewal_due());
        assert_eq!(lease.held().unwrap().worker_id, 3);
        // Valid until a margin (2 s) before the TTL (10 s) after the confirmation was sent.
        let sent = Instant::now();
        lease.confirm(Held { worker_id: 3, token: "t".into() }, sent);
        assert!(lease.is_valid_at(sent + Duration::from_millis(7_900)));
        assert!(!lease.is_valid_at(sent + Duration::from_millis(8_000)), "stops before the TTL");
        assert_eq!(lease.drop_lease().unwrap().token, "t");
        assert!(lease.held().is_none() && !lease.is_valid());
    }

    #[test]
    fn margins() {
        assert_eq!(safety_margin(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(safety_margin(Duration::from_millis(300)), Duration::from_millis(60));
        assert_eq!(new_token().len(), 32);
        assert_ne!(new_token(), new_token());
    }
}
