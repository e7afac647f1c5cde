//! Per-client rate limiting of the ID routes: actix-governor's keyed limiter on the client IP
//! on one node, asked by the router itself ([`RateLimit::check`]), or (when the back end can
//! share buckets, as Redis can) one bucket per client for every node, in [`shared`].
//!
//! Three traps of actix-governor are handled here:
//! - the key: [`ClientIp`] keys on the peer address, and believes `X-Forwarded-For` only when
//!   the peer is a configured trusted proxy, walking the header from the right (the leftmost
//!   entry is whatever the client typed);
//! - the 429: ours (`ApiError::rate_limited`), with `Retry-After` rounded *up* and the
//!   `RateLimit-*` headers;
//! - memory: the keyed state grows with every client ever seen, so a task prunes it.
//!
//! The [`GovernorConfig`] is built once, outside `HttpServer::new`, so every worker shares one
//! limiter (per-worker limiters would multiply the limit by the worker count).

pub mod shared;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::governor::clock::{Clock, DefaultClock};
use actix_governor::governor::middleware::StateInformationMiddleware;
use actix_governor::{GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::backend::Backend;
use crate::config::Config;
use crate::error::ApiError;
pub use shared::SharedLimit;

/// How often idle clients are dropped from the limiter's memory.
const RETAIN_INTERVAL: Duration = Duration::from_secs(60);

/// The limiter settings and the shared limiter; cheap to clone (one `Arc` inside).
#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    config: GovernorConfig<ClientIp, StateInformationMiddleware>,
    extractor: ClientIp,
    /// When the back end shares buckets: the limiter shared by all nodes (then the local one
    /// is off).
    shared: Option<Arc<SharedLimit>>,
}

impl RateLimit {
    /// From `rate_limit_per_second` (0 = off), the burst and `trusted_proxies`; shared by
    /// every node when `backend` can share buckets.
    pub fn new(config: &Config, backend: &Arc<dyn Backend>) -> Self {
        let mut limit = Self::local(config);
        if limit.enabled && backend.rate_tokens().is_some() {
            limit.shared = Some(Arc::new(SharedLimit::new(config, Arc::clone(backend))));
        }
        limit
    }

    /// This node's own limiter only.
    pub fn local(config: &Config) -> Self {
        let per_second = config.rate_limit_per_second;
        let enabled = per_second > 0;
        // Disabled: no middleware is built from it, but it still needs a well-formed config to
        // exist; this one is never consulted.
        let burst = config.effective_burst();
        let (per_second, burst) = if enabled { (per_second, burst.max(1)) } else { (1, 1) };
        let extractor = ClientIp::new(config, burst);
        let governor = GovernorConfigBuilder::default()
            .requests_per_second(u64::from(per_second))
            .burst_size(burst)
            .key_extractor(extractor.clone())
            .use_headers()
            .finish()
            .expect("the period and burst are both non-zero");
        Self { enabled, config: governor, extractor, shared: None }
    }

    /// No limit (the admin listener).
    pub fn off() -> Self {
        Self::local(&Config::default())
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The shared limiter, when the limit is shared by every node.
    pub fn shared(&self) -> Option<&Arc<SharedLimit>> {
        self.shared.as_ref()
    }

    /// The local limiter's verdict on `request` (rate limiting on, not shared): what is left in
    /// the client's bucket, or the 429. Called by the router itself rather than as
    /// actix-governor's middleware, which cost the limited routes a fifth of their throughput
    /// (an extension per request, its headers written as text and parsed back, a boxed body).
    pub fn check(&self, request: &ServiceRequest) -> Result<u32, ApiError> {
        let client = self.extractor.extract(request)?;
        match self.config.limiter().check_key(&client) {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(negative) => {
                let wait = negative.wait_time_from(DefaultClock::default().now());
                Err(ApiError::rate_limited(wait, self.extractor.burst))
            }
        }
    }

    /// Drops the state of clients not seen lately; call every minute or so.
    pub fn retain_recent(&self) {
        let limiter = self.config.limiter();
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }

    /// A task that calls [`RateLimit::retain_recent`] periodically, or for a shared limit
    /// drops expired slice pools (none when disabled, or for a shared limit without pools).
    pub fn spawn_maintenance(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.enabled {
            return None;
        }
        match &self.shared {
            None => {
                let limit = self.clone();
                Some(tokio::spawn(every(RETAIN_INTERVAL, move || limit.retain_recent())))
            }
            Some(shared) => shared.spawn_maintenance(),
        }
    }
}

/// Calls `job` every `period`, the first time one period from now.
pub(crate) async fn every(period: Duration, mut job: impl FnMut()) {
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
    pub(crate) fn new(config: &Config, burst: u32) -> Self {
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
}

/// `RateLimit-Limit` (the burst), `RateLimit-Remaining` and `RateLimit-Reset` (whole seconds
/// until the bucket is full again) on a response that passed the limiter, so a client can pace
/// itself before it meets a 429.
pub(crate) fn pacing_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, per_second: u32) {
    let missing = u64::from(limit.saturating_sub(remaining));
    let reset = missing.div_ceil(u64::from(per_second.max(1)));
    headers.insert(HeaderName::from_static("ratelimit-limit"), HeaderValue::from(limit));
    headers.insert(HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(remaining));
    headers.insert(HeaderName::from_static("ratelimit-reset"), HeaderValue::from(reset));
}

pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
