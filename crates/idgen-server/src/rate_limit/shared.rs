//! The limit shared by every node: [`shared_rate_limit`] asks the back end (in Redis, a GCRA Lua
//! script on Redis's clock) for the client's tokens, with the same key extraction and the same
//! 429. When the back end cannot be asked, `IDGEN_RATE_LIMIT_FAIL` decides: `open` lets the
//! request through (logged, counted), `closed` answers 503.
//!
//! One call per request costs the store (Redis) more CPU than the ID it guards, so a node takes tokens
//! in *slices* of [`slice_size`] (at most 10 ms of the rate and a tenth of the burst) and serves
//! the client's next requests from a local pool. Bounds, for a client with rate `r` and burst
//! `b`:
//! - the store charges a slice when it grants it, and a node uses a slice's tokens only within
//!   [`SLICE_TTL`] (10 ms) of asking for it, so over any interval of length T at most
//!   `b + r * (T + 10 ms)` requests of the client pass on the whole cluster;
//! - tokens left in a pool when it expires are lost, yet were charged, so a client whose
//!   requests are spread over several nodes may be limited somewhat below its rate. To keep
//!   that small, a node's slice follows its own demand for the client ([`Pool::next_want`]):
//!   it starts at 1, doubles while slices run dry before they expire, and after an expiry
//!   asks for what the expired slice served. A node that sees a client rarely asks for one
//!   token at a time (exact, one call per request); a busy one for up to `k` at a time;
//! - one slice request per client per node is in flight; requests that miss meanwhile ask
//!   the store for their own single token, so they neither wait nor hoard.
//!
//! With a slice of 1 (rate below 200/s or burst below 20) there is no pool: one script call
//! per request, exactly as without slices.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_governor::KeyExtractor;
use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use parking_lot::Mutex;

use super::{ClientIp, every, pacing_headers};
use crate::backend::{Backend, BackendError, RateBucket, RateDecision};
use crate::config::{Config, RateLimitFail};
use crate::error::{ApiError, Refusal};

/// How long a node may serve tokens of a slice after asking the store for it: this bounds how
/// far the cluster can run ahead of the shared limit (see the module doc).
pub const SLICE_TTL: Duration = Duration::from_millis(10);
/// The largest slice, whatever the rate.
const SLICE_MAX: u32 = 10_000;
/// How often expired slice pools are dropped (they are useless 10 ms after they were filled).
const POOL_PRUNE_INTERVAL: Duration = Duration::from_secs(5);

/// The limiter whose buckets the back end keeps for every node.
pub struct SharedLimit {
    /// Has [`Backend::rate_tokens`] (checked by [`SharedLimit::new`]).
    backend: Arc<dyn Backend>,
    extractor: ClientIp,
    per_second: u32,
    burst: u32,
    fail: RateLimitFail,
    /// Requests let through because Redis could not be asked (`open`) or refused (`closed`).
    failures: AtomicU64,
    /// The most tokens asked of the store at once ([`slice_size`]); 1 = no local pool.
    slice: u32,
    /// What is left of each client's last slice on this node.
    pools: Mutex<HashMap<IpAddr, Pool>>,
}

/// One client's tokens on this node.
struct Pool {
    /// The size of the last slice Redis granted (0 before the first).
    granted: u32,
    left: u32,
    /// Tokens left after this are not used (see [`SLICE_TTL`]).
    expires: Instant,
    /// What the bucket held after the store granted the last slice (for `RateLimit-Remaining`).
    store_left: u32,
    /// A slice request of this client is in flight.
    refilling: bool,
}

impl Pool {
    /// How many tokens to ask for, at most `slice`: the slice follows this node's demand, so
    /// that a node that sees few of a client's requests does not charge the client for tokens
    /// it will let expire. Ran dry before expiring: demand outgrew the slice, double it.
    /// Expired: ask for what the last slice served (the asking request's token included).
    fn next_want(&self, now: Instant, slice: u32) -> u32 {
        let want = if now < self.expires {
            self.granted.saturating_mul(2)
        } else {
            self.granted - self.left
        };
        want.clamp(1, slice)
    }
}

/// Tokens a node takes from Redis at once for a limit of `per_second` and `burst`: at most
/// 10 ms of the rate (the error the pools add) and a tenth of the burst (so that a burst still
/// spreads over several nodes), at least 1 (no pool), at most [`SLICE_MAX`].
pub fn slice_size(per_second: u32, burst: u32) -> u32 {
    (per_second / 100).min(burst / 10).clamp(1, SLICE_MAX)
}

impl SharedLimit {
    /// The configured limit, kept by `backend` (which must have [`Backend::rate_tokens`]).
    pub fn new(config: &Config, backend: Arc<dyn Backend>) -> Self {
        assert!(
            backend.rate_tokens().is_some(),
            "a shared limit needs a back end that shares buckets"
        );
        let burst = config.effective_burst().max(1);
        let per_second = config.rate_limit_per_second;
        Self {
            backend,
            extractor: ClientIp::new(config, burst),
            per_second,
            burst,
            fail: config.rate_limit_fail,
            failures: AtomicU64::new(0),
            slice: slice_size(per_second, burst),
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// Up to `want` of `client`'s tokens, from the back end.
    async fn take(&self, client: IpAddr, want: u32) -> Result<RateDecision, BackendError> {
        let tokens = self.backend.rate_tokens().expect("checked by SharedLimit::new");
        tokens.take(RateBucket::Client(client), self.per_second, self.burst, want).await
    }

    /// The task that drops expired slice pools (none without pools).
    pub fn spawn_maintenance(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        (self.slice > 1).then(|| {
            let shared = Arc::clone(self);
            tokio::spawn(every(POOL_PRUNE_INTERVAL, move || shared.prune_pools()))
        })
    }

    /// `Ok` when the request may pass, with what the client has left (none when the store could
    /// not be asked): the bucket's tokens when the store last answered for this client on this
    /// node, plus the pool's, so at most one slice (10 ms) out of date.
    async fn check(&self, request: &ServiceRequest) -> Result<Option<u32>, ApiError> {
        let client = self.extractor.extract(request)?;
        if self.slice == 1 {
            return self.verdict(self.take(client, 1).await);
        }
        // Taken before the store is asked, so that a slice's tokens are used within SLICE_TTL of
        // being charged however long the answer takes.
        let asked_at = Instant::now();
        let refill = {
            let mut pools = self.pools.lock();
            let pool = pools.entry(client).or_insert(Pool {
                granted: 0,
                left: 0,
                expires: asked_at,
                store_left: 0,
                refilling: false,
            });
            if pool.left > 0 && asked_at < pool.expires {
                pool.left -= 1;
                return Ok(Some(pool.store_left + pool.left));
            }
            if pool.refilling {
                None
            } else {
                pool.refilling = true;
                Some((
                    Refill { limit: self, client, slice: None },
                    pool.next_want(asked_at, self.slice),
                ))
            }
        };
        let (refill, want) = match refill {
            Some((refill, want)) => (Some(refill), want),
            None => (None, 1),
        };
        let decision = self.take(client, want).await;
        // Limited or failed: dropping the guard clears `refilling`.
        if let (Some(refill), Ok(RateDecision::Allowed { granted, remaining })) =
            (refill, &decision)
        {
            let (extra, remaining) = (granted - 1, *remaining);
            refill.fill(extra, remaining, asked_at + SLICE_TTL);
            return Ok(Some(remaining + extra));
        }
        self.verdict(decision)
    }

    /// The answer to a request from what the store said.
    fn verdict(
        &self,
        decision: Result<RateDecision, BackendError>,
    ) -> Result<Option<u32>, ApiError> {
        match decision {
            Ok(RateDecision::Allowed { remaining, .. }) => Ok(Some(remaining)),
            Ok(RateDecision::Limited { wait }) => Err(ApiError::rate_limited(wait, self.burst)),
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                // The observed back end logs the incident once; this is every occurrence.
                tracing::debug!(
                    error = %error,
                    failures,
                    mode = ?self.fail,
                    "shared rate limit: the store could not be asked"
                );
                match self.fail {
                    RateLimitFail::Open => Ok(None),
                    RateLimitFail::Closed => {
                        Err(Refusal::RateLimiterUnreachable { store: self.backend.store_name() }
                            .into())
                    }
                }
            }
        }
    }

    /// Forgets the pools that can serve nothing any more (a client's next request simply
    /// starts a new one).
    pub(super) fn prune_pools(&self) {
        let now = Instant::now();
        let mut pools = self.pools.lock();
        pools.retain(|_, pool| pool.refilling || now < pool.expires);
        pools.shrink_to_fit();
    }

    /// How many requests met an unreachable Redis so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// A client's slice request in flight. Dropped without a slice (limited, Redis failed, or the
/// request's future dropped while awaiting Redis) it only clears `refilling`, so that the
/// client's next miss asks for a slice again.
struct Refill<'a> {
    limit: &'a SharedLimit,
    client: IpAddr,
    /// Tokens beyond the asking request's own, what the bucket held after, and until when
    /// they may be used.
    slice: Option<(u32, u32, Instant)>,
}

impl Refill<'_> {
    fn fill(mut self, left: u32, store_left: u32, expires: Instant) {
        self.slice = Some((left, store_left, expires));
    }
}

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        let mut pools = self.limit.pools.lock();
        // Pruning spares pools that are refilling, so the entry is still there.
        let Some(pool) = pools.get_mut(&self.client) else { return };
        if let Some((left, store_left, expires)) = self.slice.take() {
            pool.granted = left + 1;
            pool.left = left;
            pool.store_left = store_left;
            pool.expires = expires;
        }
        pool.refilling = false;
    }
}

/// The shared rate limit as an actix middleware, around the limited routes.
pub async fn shared_rate_limit<B: MessageBody + 'static>(
    limit: Arc<SharedLimit>,
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let remaining = match limit.check(&request).await {
        Ok(remaining) => remaining,
        Err(error) => {
            return Ok(request.into_response(error.error_response()).map_into_right_body());
        }
    };
    let mut response = next.call(request).await?;
    if let Some(remaining) = remaining {
        pacing_headers(response.headers_mut(), limit.burst, remaining, limit.per_second);
    }
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    #[test]
    fn slices_are_10_ms_of_the_rate_and_a_tenth_of_the_burst() {
        let check = |per_second, burst, expected| {
            assert_eq!(slice_size(per_second, burst), expected, "{per_second}/s, burst {burst}");
        };
        // The existing limits of the tests: no pool.
        check(1, 12, 1);
        check(1, 1000, 1);
        check(50, 1000, 1);
        check(199, 1000, 1);
        check(200, 20, 2);
        check(1000, 300, 10);
        check(1000, 50, 5);
        check(1_000_000, 10, 1);
        check(1_000_000, 1_000_000, 10_000);
    }

    #[test]
    fn a_slice_follows_the_demand_it_served() {
        let now = Instant::now();
        let later = now + SLICE_TTL;
        let pool = |granted, left, expires| Pool {
            granted,
            left,
            expires,
            store_left: 0,
            refilling: false,
        };
        // First ask: one token.
        assert_eq!(pool(0, 0, now).next_want(now, 10), 1);
        // Ran dry while fresh: double, up to the slice size.
        assert_eq!(pool(1, 0, later).next_want(now, 10), 2);
        assert_eq!(pool(4, 0, later).next_want(now, 10), 8);
        assert_eq!(pool(8, 0, later).next_want(now, 10), 10);
        // Expired: what it served, at least 1.
        assert_eq!(pool(8, 3, now).next_want(later, 10), 5);
        assert_eq!(pool(8, 0, now).next_want(later, 10), 8);
        assert_eq!(pool(2, 1, now).next_want(later, 10), 1);
        // No pools: always 1.
        assert_eq!(pool(8, 0, later).next_want(now, 1), 1);
    }

    /// A shared limiter with slices of 10 whose store takes calls and never answers.
    fn limiter_on_a_stalled_store() -> SharedLimit {
        let config =
            Config { rate_limit_per_second: 1000, rate_limit_burst: 300, ..Config::default() };
        let store = MemoryBackend::new().sharing_rate_limits();
        store.stall(true);
        SharedLimit::new(&config, store.open(&config).backend)
    }

    #[actix_web::test]
    async fn a_slice_request_dropped_mid_flight_lets_the_next_miss_ask_again() {
        let limit = limiter_on_a_stalled_store();
        assert_eq!(limit.slice, 10);
        let request = actix_web::test::TestRequest::get().to_srv_request();
        let client = limit.extractor.extract(&request).unwrap();
        let refilling = || limit.pools.lock().get(&client).map(|pool| pool.refilling);

        let mut check = Box::pin(limit.check(&request));
        let pending = tokio::time::timeout(Duration::from_millis(50), check.as_mut()).await;
        assert!(pending.is_err(), "a stalled store cannot have answered");
        assert_eq!(refilling(), Some(true));
        drop(check);
        assert_eq!(refilling(), Some(false));
        // Expired and idle: pruned.
        limit.prune_pools();
        assert_eq!(refilling(), None);
    }
}
