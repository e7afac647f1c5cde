//! Per-client rate limiting of the ID routes with actix-governor.
//!
//! Three traps of actix-governor are handled here (see shared/DEPENDENCIES.md):
//! - the key: [`ClientIp`] keys on the peer address, and believes `X-Forwarded-For` only when
//!   the peer is a configured trusted proxy, walking the header from the right (the leftmost
//!   entry is whatever the client typed);
//! - the 429: built by us, with `Retry-After` rounded *up* and the `RateLimit-*` headers;
//! - memory: the keyed state grows with every client ever seen, so a task prunes it.
//!
//! The [`GovernorConfig`] is built once, outside `HttpServer::new`, so every worker shares one
//! limiter (per-worker limiters would multiply the limit by the worker count).
//!
//! Redis mode: the limit is shared by every node. [`shared_rate_limit`] asks a GCRA Lua script
//! in Redis (on Redis's clock) for the client's tokens, with the same key extraction and the
//! same 429. When Redis cannot be asked, `IDGEN_RATE_LIMIT_FAIL` decides: `open` lets the
//! request through (logged, counted), `closed` answers 503.
//!
//! One script per request costs Redis more CPU than the ID it guards, so a node takes tokens
//! in *slices* of [`slice_size`] (at most 10 ms of the rate and a tenth of the burst) and serves
//! the client's next requests from a local pool. Bounds, for a client with rate `r` and burst
//! `b`:
//! - Redis charges a slice when it grants it, and a node uses a slice's tokens only within
//!   [`SLICE_TTL`] (10 ms) of asking for it, so over any interval of length T at most
//!   `b + r * (T + 10 ms)` requests of the client pass on the whole cluster;
//! - tokens left in a pool when it expires are lost, yet were charged, so a client whose
//!   requests are spread over several nodes may be limited somewhat below its rate. To keep
//!   that small, a node's slice follows its own demand for the client ([`Pool::next_want`]):
//!   it starts at 1, doubles while slices run dry before they expire, and after an expiry
//!   asks for what the expired slice served. A node that sees a client rarely asks for one
//!   token at a time (exact, one call per request); a busy one for up to `k` at a time;
//! - one slice request per client per node is in flight; requests that miss meanwhile ask
//!   Redis for their own single token, so they neither wait nor hoard.
//!
//! With a slice of 1 (rate below 200/s or burst below 20) there is no pool: one script call
//! per request, exactly as without slices.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Condition;
use actix_web::middleware::Next;
use actix_web::web;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use parking_lot::Mutex;

use crate::config::{Config, RateLimitFail};
use crate::error::ApiError;
use crate::store::RedisStore;
use crate::store::redis::{RateDecision, RedisError};

/// How often idle clients are dropped from the limiter's memory.
const RETAIN_INTERVAL: Duration = Duration::from_secs(60);
/// How long a node may serve tokens of a slice after asking Redis for it: this bounds how far
/// the cluster can run ahead of the shared limit (see the module doc).
pub const SLICE_TTL: Duration = Duration::from_millis(10);
/// The largest slice, whatever the rate.
const SLICE_MAX: u32 = 10_000;
/// How often expired slice pools are dropped (they are useless 10 ms after they were filled).
const POOL_PRUNE_INTERVAL: Duration = Duration::from_secs(5);

/// The limiter settings and the shared limiter; cheap to clone (one `Arc` inside).
#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    config: GovernorConfig<ClientIp, NoOpMiddleware>,
    /// Redis mode: the limiter shared by all nodes (then the local one is off).
    shared: Option<Arc<SharedLimit>>,
}

/// The Redis-backed limiter of Redis mode.
pub struct SharedLimit {
    store: Arc<RedisStore>,
    extractor: ClientIp,
    per_second: u32,
    burst: u32,
    fail: RateLimitFail,
    /// Requests let through because Redis could not be asked (`open`) or refused (`closed`).
    failures: AtomicU64,
    /// The most tokens asked of Redis at once ([`slice_size`]); 1 = no local pool.
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

/// App data: the shared limiter, if any (read by [`shared_rate_limit`]).
#[derive(Clone)]
pub struct SharedLimitSlot(Option<Arc<SharedLimit>>);

impl RateLimit {
    /// From `rate_limit_per_second` (0 = off), `rate_limit_burst` (0 = same as the rate) and
    /// `trusted_proxies`.
    pub fn new(config: &Config) -> Self {
        let per_second = config.rate_limit_per_second;
        let burst = if config.rate_limit_burst == 0 { per_second } else { config.rate_limit_burst };
        let enabled = per_second > 0;
        // Disabled: the middleware is switched off by `Condition`, but it still needs a
        // well-formed config to exist; this one is never consulted.
        let (per_second, burst) = if enabled { (per_second, burst.max(1)) } else { (1, 1) };
        let extractor = ClientIp::new(config, burst);
        let governor = GovernorConfigBuilder::default()
            .requests_per_second(u64::from(per_second))
            .burst_size(burst)
            .key_extractor(extractor)
            .finish()
            .expect("the period and burst are both non-zero");
        Self { enabled, config: governor, shared: None }
    }

    /// Redis mode: the same settings, applied by Redis for every node together.
    pub fn new_shared(config: &Config, store: Arc<RedisStore>) -> Self {
        let mut limit = Self::new(config);
        if limit.enabled {
            let burst = config.rate_limit_burst.max(1);
            let per_second = config.rate_limit_per_second;
            limit.shared = Some(Arc::new(SharedLimit {
                store,
                extractor: ClientIp::new(config, burst),
                per_second,
                burst,
                fail: config.rate_limit_fail,
                failures: AtomicU64::new(0),
                slice: slice_size(per_second, burst),
                pools: Mutex::new(HashMap::new()),
            }));
        }
        limit
    }

    /// The app data [`shared_rate_limit`] reads.
    pub fn shared_data(&self) -> web::Data<SharedLimitSlot> {
        web::Data::new(SharedLimitSlot(self.shared.clone()))
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redis mode with a limit: [`shared_rate_limit`] applies it.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The middleware for the ID routes: a no-op when rate limiting is off.
    pub fn middleware(&self) -> Condition<Governor<ClientIp, NoOpMiddleware>> {
        Condition::new(self.enabled && self.shared.is_none(), Governor::new(&self.config))
    }

    /// The local limiter itself, for routes that are only registered when it applies (rate
    /// limiting on, not shared).
    pub fn governor(&self) -> Governor<ClientIp, NoOpMiddleware> {
        Governor::new(&self.config)
    }

    /// Drops the state of clients not seen lately; call every minute or so.
    pub fn retain_recent(&self) {
        let limiter = self.config.limiter();
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }

    /// A task that calls [`RateLimit::retain_recent`] periodically, or in Redis mode drops
    /// expired slice pools (none when disabled, or in Redis mode without pools).
    pub fn spawn_maintenance(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.enabled {
            return None;
        }
        match &self.shared {
            None => {
                let limit = self.clone();
                Some(tokio::spawn(every(RETAIN_INTERVAL, move || limit.retain_recent())))
            }
            Some(shared) if shared.slice > 1 => {
                let shared = Arc::clone(shared);
                Some(tokio::spawn(every(POOL_PRUNE_INTERVAL, move || shared.prune_pools())))
            }
            Some(_) => None,
        }
    }
}

/// Calls `job` every `period`, the first time one period from now.
async fn every(period: Duration, mut job: impl FnMut()) {
    let mut interval = tokio::time::interval(period);
    interval.tick().await;
    loop {
        interval.tick().await;
        job();
    }
}

/// The rate-limit key: the client's IP address (IPv6 by its /64, the smallest block one
/// subscriber usually gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp {
    trusted_proxies: Arc<[IpAddr]>,
    burst: u32,
}

impl ClientIp {
    fn new(config: &Config, burst: u32) -> Self {
        Self {
            trusted_proxies: config.trusted_proxies.iter().map(|ip| ip.to_canonical()).collect(),
            burst,
        }
    }

    /// The client of a request that came from `peer` with these headers.
    ///
    /// The peer is the client unless it is a trusted proxy. Then `X-Forwarded-For` is read
    /// from the right (each proxy appends the address it saw): trusted proxies are skipped
    /// and the first other address is the client. An entry that does not parse stops the
    /// walk, and the last trusted hop is used: the chain beyond it cannot be believed.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.is_trusted(client) {
            return client;
        }
        // Several X-Forwarded-For headers are one list, in order.
        let entries = headers
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for entry in entries.into_iter().rev() {
            let Some(address) = parse_forwarded_address(entry) else { break };
            client = address;
            if !self.is_trusted(address) {
                break;
            }
        }
        client
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies.contains(&address)
    }
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:5678`.
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(|address| address.to_canonical())
}

/// Rate-limit bucket of an address: IPv4 as is, IPv6 by its /64 prefix.
fn bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;
    type KeyExtractionError = ApiError;

    fn extract(&self, request: &ServiceRequest) -> Result<IpAddr, ApiError> {
        // No peer address only happens for in-process test requests; they share one bucket.
        let peer =
            request.peer_addr().map(|socket| socket.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(bucket(self.client_of(peer, request.headers())))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _response: HttpResponseBuilder,
    ) -> HttpResponse {
        // actix-governor rounds down (a 1/s limit would say "retry after 0"); round up.
        let wait = negative.wait_time_from(DefaultClock::default().now());
        let retry_after_secs = ceil_secs(wait).max(1);
        ApiError::RateLimited { retry_after_secs, limit: self.burst, reset_secs: retry_after_secs }
            .error_response()
    }
}

impl SharedLimit {
    /// `Ok` when the request may pass.
    async fn check(&self, request: &ServiceRequest) -> Result<(), ApiError> {
        let client = self.extractor.extract(request)?;
        if self.slice == 1 {
            return self
                .verdict(self.store.rate_check(client, self.per_second, self.burst, 1).await);
        }
        // Taken before Redis is asked, so that a slice's tokens are used within SLICE_TTL of
        // being charged however long the answer takes.
        let asked_at = Instant::now();
        let refill = {
            let mut pools = self.pools.lock();
            let pool = pools.entry(client).or_insert(Pool {
                granted: 0,
                left: 0,
                expires: asked_at,
                refilling: false,
            });
            if pool.left > 0 && asked_at < pool.expires {
                pool.left -= 1;
                return Ok(());
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
        let decision = self.store.rate_check(client, self.per_second, self.burst, want).await;
        // Limited or failed: dropping the guard clears `refilling`.
        if let (Some(refill), Ok(RateDecision::Allowed { granted })) = (refill, &decision) {
            refill.fill(granted - 1, asked_at + SLICE_TTL);
        }
        self.verdict(decision)
    }

    /// The answer to a request from what Redis said.
    fn verdict(&self, decision: Result<RateDecision, RedisError>) -> Result<(), ApiError> {
        match decision {
            Ok(RateDecision::Allowed { .. }) => Ok(()),
            Ok(RateDecision::Limited { wait }) => {
                let retry_after_secs = ceil_secs(wait).max(1);
                Err(ApiError::RateLimited {
                    retry_after_secs,
                    limit: self.burst,
                    reset_secs: retry_after_secs,
                })
            }
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    error = %error,
                    failures,
                    mode = ?self.fail,
                    "shared rate limit: Redis could not be asked"
                );
                match self.fail {
                    RateLimitFail::Open => Ok(()),
                    RateLimitFail::Closed => Err(ApiError::unavailable(
                        "the rate limiter cannot reach its Redis right now; retry in a moment",
                        1,
                    )),
                }
            }
        }
    }

    /// Forgets the pools that can serve nothing any more (a client's next request simply
    /// starts a new one).
    fn prune_pools(&self) {
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
    /// Tokens beyond the asking request's own, and until when they may be used.
    slice: Option<(u32, Instant)>,
}

impl Refill<'_> {
    fn fill(mut self, left: u32, expires: Instant) {
        self.slice = Some((left, expires));
    }
}

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        let mut pools = self.limit.pools.lock();
        // Pruning spares pools that are refilling, so the entry is still there.
        let Some(pool) = pools.get_mut(&self.client) else { return };
        if let Some((left, expires)) = self.slice.take() {
            pool.granted = left + 1;
            pool.left = left;
            pool.expires = expires;
        }
        pool.refilling = false;
    }
}

/// The shared (Redis) rate limit as an actix middleware; passes everything through when the
/// app has no shared limiter (embedded mode, or rate limiting off).
pub async fn shared_rate_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let limit = request.app_data::<web::Data<SharedLimitSlot>>().and_then(|slot| slot.0.clone());
    if let Some(limit) = limit
        && let Err(error) = limit.check(&request).await
    {
        return Ok(request.into_response(error.error_response()).map_into_right_body());
    }
    next.call(request).await.map(ServiceResponse::map_into_left_body)
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn extractor(trusted: &[&str]) -> ClientIp {
        ClientIp {
            trusted_proxies: trusted.iter().map(|ip| ip.parse().unwrap()).collect(),
            burst: 1,
        }
    }

    fn check(trusted: &[&str], peer: &str, forwarded: &[&str], expected: &str) {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let client = extractor(trusted).client_of(peer.parse().unwrap(), &headers);
        assert_eq!(
            client,
            expected.parse::<IpAddr>().unwrap(),
            "trusted {trusted:?}, peer {peer}, XFF {forwarded:?}"
        );
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_forwards() {
        check(&[], "203.0.113.9", &["1.1.1.1"], "203.0.113.9");
        check(&["10.0.0.1"], "203.0.113.9", &["1.1.1.1"], "203.0.113.9");
        check(&[], "::1", &[], "::1");
    }

    #[test]
    fn trusted_proxy_is_walked_from_the_right() {
        let proxies = ["10.0.0.1", "10.0.0.2"];
        // One proxy: the entry it appended is the client.
        check(&proxies, "10.0.0.1", &["198.51.100.7"], "198.51.100.7");
        // The client tried to spoof by sending its own header: the leftmost lie is ignored.
        check(&proxies, "10.0.0.1", &["6.6.6.6, 198.51.100.7"], "198.51.100.7");
        // Two proxies in a chain, the inner one appended by the outer.
        check(&proxies, "10.0.0.1", &["6.6.6.6, 198.51.100.7, 10.0.0.2"], "198.51.100.7");
        // Several headers are one list.
        check(&proxies, "10.0.0.1", &["6.6.6.6", "198.51.100.7", "10.0.0.2"], "198.51.100.7");
        // Ports and brackets are tolerated.
        check(&proxies, "10.0.0.1", &["198.51.100.7:5555"], "198.51.100.7");
        check(&proxies, "10.0.0.1", &["[2001:db8::1]:443"], "2001:db8::1");
        check(&proxies, "10.0.0.1", &["2001:db8::1"], "2001:db8::1");
        // IPv4-mapped peers match IPv4 proxies.
        check(&proxies, "::ffff:10.0.0.1", &["198.51.100.7"], "198.51.100.7");
    }

    #[test]
    fn trusted_proxy_without_a_usable_header_is_the_client() {
        let proxies = ["10.0.0.1", "10.0.0.2"];
        check(&proxies, "10.0.0.1", &[], "10.0.0.1");
        // Only proxies in the chain: the last one walked.
        check(&proxies, "10.0.0.1", &["10.0.0.2"], "10.0.0.2");
        // Garbage stops the walk at the last trusted hop.
        check(&proxies, "10.0.0.1", &["198.51.100.7, garbage"], "10.0.0.1");
        check(&proxies, "10.0.0.1", &["garbage, 10.0.0.2"], "10.0.0.2");
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(
            bucket("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(bucket("192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

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
        let pool = |granted, left, expires| Pool { granted, left, expires, refilling: false };
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

    /// A shared limiter with slices of 10 whose "Redis" accepts connections and never answers.
    fn limiter_on_a_silent_redis(listener: &std::net::TcpListener) -> SharedLimit {
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let config =
            Config { rate_limit_per_second: 1000, rate_limit_burst: 300, ..Config::default() };
        let store =
            RedisStore::new(&crate::config::RedisUrl::new(url), false, "idgen:", 0).unwrap();
        let RateLimit { shared, .. } = RateLimit::new_shared(&config, Arc::new(store));
        Arc::into_inner(shared.unwrap()).unwrap()
    }

    #[actix_web::test]
    async fn a_slice_request_dropped_mid_flight_lets_the_next_miss_ask_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let limit = limiter_on_a_silent_redis(&listener);
        assert_eq!(limit.slice, 10);
        let request = actix_web::test::TestRequest::get().to_srv_request();
        let client = limit.extractor.extract(&request).unwrap();
        let refilling = || limit.pools.lock().get(&client).map(|pool| pool.refilling);

        let mut check = Box::pin(limit.check(&request));
        let pending = tokio::time::timeout(Duration::from_millis(50), check.as_mut()).await;
        assert!(pending.is_err(), "a silent Redis cannot have answered");
        assert_eq!(refilling(), Some(true));
        drop(check);
        assert_eq!(refilling(), Some(false));
        // Expired and idle: pruned.
        limit.prune_pools();
        assert_eq!(refilling(), None);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
