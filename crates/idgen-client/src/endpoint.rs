//! The servers a [`Client`](crate::Client) sends to, in order of preference, their URLs, and
//! what it remembers of each: a circuit breaker that keeps requests away from an endpoint that
//! just failed, and lets one request (the probe) try it again after a cool-down.
//!
//! An endpoint is *closed* (in use) until an attempt on it fails (no connection, no answer,
//! 503). It is then *open* for the cool-down, and requests go to the next endpoint in order.
//! Once the cool-down is over, the next request to reach it is its probe, and it is
//! *probing* until that request ends: others keep away meanwhile. A probe that succeeds
//! closes it; one that fails opens it again for twice as long, up to 32 times the first
//! cool-down, so a server that stays down costs one failed request per cool-down, not one per
//! call. A request whose endpoints are all open goes to the one whose cool-down ends first:
//! with a single endpoint, that is every request, so the breaker never stands between a lone
//! server and its caller.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use idgen_core::wire::IdRequest;
use idgen_core::{Kind, Param};
use reqwest::Url;

use crate::error::Error;

/// How long an endpoint that failed is avoided, unless
/// [`ClientBuilder::endpoint_cool_down`](crate::ClientBuilder::endpoint_cool_down) says
/// otherwise. A server that is restarting is usually back within it; one that is not gets
/// one probe per cool-down, the cool-down doubling with each failed probe.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(1);

/// Failed probes double the cool-down up to this many times its first length.
const MAX_COOL_DOWN_FACTOR: u32 = 32;

/// Every endpoint of a client, in order of preference; shared by its clones.
pub(crate) struct Endpoints {
    list: Vec<Endpoint>,
    cool_down: Duration,
}

struct Endpoint {
    /// Absolute http(s) URL, without query or fragment; routes are appended to its path.
    base: Url,
    breaker: Mutex<Breaker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    /// Failed `failures` times in a row; avoided until `until`.
    Open {
        until: Instant,
        failures: u32,
    },
    /// The cool-down is over and one request is trying it.
    Probing {
        failures: u32,
    },
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list.iter().map(|endpoint| endpoint.base.as_str())).finish()
    }
}

impl Endpoints {
    /// `list` must not be empty: the builder refuses an empty list.
    pub(crate) fn new(list: Vec<Url>, cool_down: Duration) -> Self {
        assert!(!list.is_empty(), "ClientBuilder::build refuses an empty endpoint list");
        let list = list
            .into_iter()
            .map(|base| Endpoint { base, breaker: Mutex::new(Breaker::Closed) })
            .collect();
        Self { list, cool_down }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn urls(&self) -> impl ExactSizeIterator<Item = &Url> {
        self.list.iter().map(|endpoint| &endpoint.base)
    }

    fn breaker(&self, index: usize) -> MutexGuard<'_, Breaker> {
        // Every critical section is one assignment: a panic cannot leave it half done.
        self.list[index].breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether endpoint `index` takes a request at `now`, and if so whether that request is
    /// its probe (which marks it probing).
    fn take(&self, index: usize, now: Instant) -> Option<bool> {
        let mut breaker = self.breaker(index);
        match *breaker {
            Breaker::Closed => Some(false),
            Breaker::Open { until, failures } if until <= now => {
                *breaker = Breaker::Probing { failures };
                Some(true)
            }
            Breaker::Open { .. } | Breaker::Probing { .. } => None,
        }
    }

    /// Whether an endpoint that has not failed during this call (`failed`) would take a
    /// request at `now`, so that moving on to it needs no wait.
    pub(crate) fn has_other(&self, now: Instant, failed: &[bool]) -> bool {
        (0..self.list.len()).any(|index| {
            let available = match *self.breaker(index) {
                Breaker::Closed => true,
                Breaker::Open { until, .. } => until <= now,
                Breaker::Probing { .. } => false,
            };
            available && !failed[index]
        })
    }

    /// The endpoint for the next attempt: the first in order that takes a request, preferring
    /// one that has not failed during this call; when none does, the one that reopens first.
    pub(crate) fn pick(&self, now: Instant, failed: &[bool]) -> Ticket<'_> {
        let fresh = (0..self.list.len()).filter(|&index| !failed[index]);
        for index in fresh.chain(0..self.list.len()) {
            if let Some(probe) = self.take(index, now) {
                return Ticket { endpoints: self, index, probe, reported: false };
            }
        }
        let reopens = |index: &usize| match *self.breaker(*index) {
            Breaker::Open { until, .. } => until,
            Breaker::Closed | Breaker::Probing { .. } => now,
        };
        let index = (0..self.list.len()).min_by_key(reopens).expect("the list is not empty");
        Ticket { endpoints: self, index, probe: false, reported: false }
    }

    /// How long an endpoint is open after its `failures`-th failure in a row.
    fn open_for(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let longest = self.cool_down.saturating_mul(MAX_COOL_DOWN_FACTOR);
        let doubled = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        let cool_down = self.cool_down.saturating_mul(doubled).min(longest);
        // The server's own estimate counts, within the same bound.
        cool_down.max(retry_after.unwrap_or_default().min(longest))
    }
}

/// The endpoint one attempt goes to. Report the outcome with [`Ticket::succeeded`] or
/// [`Ticket::failed`]; dropped without either (the caller went away, or the outcome says
/// nothing of the server), a probe hands its turn to the next request.
pub(crate) struct Ticket<'a> {
    endpoints: &'a Endpoints,
    index: usize,
    probe: bool,
    reported: bool,
}

impl Ticket<'_> {
    pub(crate) fn base(&self) -> &Url {
        &self.endpoints.list[self.index].base
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The endpoint answered: it is in use again.
    pub(crate) fn succeeded(mut self) {
        self.reported = true;
        *self.endpoints.breaker(self.index) = Breaker::Closed;
    }

    /// The endpoint could not serve at `now`. Only the failure that opens a closed endpoint,
    /// or its probe's, counts as one more: the other requests that were in flight when a
    /// server died report the same incident, and must not double the cool-down. One sent to
    /// an open endpoint (all were open) pushes its reopening back, so that the next such
    /// request tries another.
    pub(crate) fn failed(mut self, now: Instant, retry_after: Option<Duration>) {
        self.reported = true;
        let mut breaker = self.endpoints.breaker(self.index);
        let (failures, earliest) = match *breaker {
            Breaker::Closed => (1, now),
            Breaker::Probing { failures } if self.probe => (failures + 1, now),
            Breaker::Open { until, failures } => (failures, until),
            // Another request's probe is out; its outcome decides.
            Breaker::Probing { .. } => return,
        };
        let until = earliest.max(now + self.endpoints.open_for(failures, retry_after));
        *breaker = Breaker::Open { until, failures };
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            let mut breaker = self.endpoints.breaker(self.index);
            if let Breaker::Probing { failures } = *breaker {
                *breaker = Breaker::Open { until: Instant::now(), failures };
            }
        }
    }
}

/// Checks a base URL: absolute, http or https, with a host; drops query and fragment.
pub(crate) fn parse_base_url(input: &str) -> Result<Url, Error> {
    let invalid =
        |reason: &str| Error::InvalidUrl { url: input.to_owned(), reason: reason.to_owned() };
    // `localhost:8080` parses as scheme `localhost`: ask for the scheme instead.
    if !input.contains("://") {
        return Err(invalid("give a full URL such as http://127.0.0.1:8080"));
    }
    let mut url = Url::parse(input.trim()).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the URL must start with http:// or https://"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("the URL has no host"));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// `scheme://host:port` of a URL, for messages.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `base` with `segments` appended to its path, each percent-encoded.
pub(crate) fn route_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("parse_base_url refused cannot-be-a-base URLs")
        .pop_if_empty()
        .extend(segments);
    url
}

/// `GET /v1/ids/{kind}` on `base`, with the request's parameters as the query.
pub(crate) fn ids_url(base: &Url, kind: Kind, request: &IdRequest) -> Url {
    let mut url = route_url(base, &["v1", "ids", kind.name()]);
    let IdRequest { count, name, length, alphabet, chars, prefix } = request;
    let count = count.map(|count| count.to_string());
    let length = length.map(|length| length.to_string());
    let pairs = [
        ("count", count.as_deref()),
        (Param::Name.key(), name.as_deref()),
        (Param::Length.key(), length.as_deref()),
        (Param::Alphabet.key(), alphabet.as_deref()),
        (Param::Chars.key(), chars.as_deref()),
        (Param::Prefix.key(), prefix.as_deref()),
    ];
    // Only touch the query when there is one: an empty query would leave a bare `?`.
    if pairs.iter().any(|(_, value)| value.is_some()) {
        let mut query = url.query_pairs_mut();
        for (key, value) in pairs {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(1);

    fn endpoints(count: usize) -> Endpoints {
        let urls = (0..count).map(|index| Url::parse(&format!("http://h{index}:1")).expect("URL"));
        Endpoints::new(urls.collect(), COOL_DOWN)
    }

    fn state(endpoints: &Endpoints, index: usize) -> Breaker {
        *endpoints.breaker(index)
    }

    /// The index and probe flag of the next pick at `now` by a call that saw no failure.
    fn pick(endpoints: &Endpoints, now: Instant) -> (usize, bool) {
        let ticket = endpoints.pick(now, &vec![false; endpoints.len()]);
        let picked = (ticket.index, ticket.probe);
        ticket.succeeded();
        picked
    }

    #[test]
    fn requests_stay_on_the_first_endpoint_while_it_works() {
        let three = endpoints(3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(pick(&three, now), (0, false));
        }
        assert_eq!(
            three.urls().map(Url::as_str).collect::<Vec<_>>(),
            ["http://h0:1/", "http://h1:1/", "http://h2:1/"]
        );
        assert_eq!(format!("{three:?}"), r#"["http://h0:1/", "http://h1:1/", "http://h2:1/"]"#);
    }

    #[test]
    fn a_failed_endpoint_is_avoided_for_its_cool_down_then_probed_by_one_request() {
        let three = endpoints(3);
        let start = Instant::now();
        three.pick(start, &[false; 3]).failed(start, None);
        assert_eq!(state(&three, 0), Breaker::Open { until: start + COOL_DOWN, failures: 1 });
        assert_eq!(pick(&three, start + COOL_DOWN / 2), (1, false));

        // Cool-down over: one request probes it, the others keep away while it is out.
        let later = start + COOL_DOWN;
        let probe = three.pick(later, &[false; 3]);
        assert_eq!((probe.index, probe.probe), (0, true));
        assert_eq!(state(&three, 0), Breaker::Probing { failures: 1 });
        assert_eq!(pick(&three, later), (1, false));
        assert_eq!(pick(&three, later), (1, false));
        probe.succeeded();
        assert_eq!(state(&three, 0), Breaker::Closed);
        assert_eq!(pick(&three, later), (0, false));
    }

    #[test]
    fn failed_probes_double_the_cool_down_up_to_a_cap() {
        let two = endpoints(2);
        let mut now = Instant::now();
        two.pick(now, &[false; 2]).failed(now, None);
        let mut expected = Vec::new();
        let mut seen = Vec::new();
        for failures in 2..=8 {
            let Breaker::Open { until, .. } = state(&two, 0) else { panic!("open") };
            now = until;
            let probe = two.pick(now, &[false; 2]);
            assert!(probe.probe && probe.index == 0);
            probe.failed(now, None);
            let Breaker::Open { until, failures: counted } = state(&two, 0) else {
                panic!("open again")
            };
            assert_eq!(counted, failures);
            seen.push((until - now).as_secs());
            expected.push(1u64 << (failures - 1).min(5));
        }
        assert_eq!(seen, [2, 4, 8, 16, 32, 32, 32]);
        assert_eq!(seen, expected);
    }

    #[test]
    fn the_requests_in_flight_when_a_server_dies_count_as_one_failure() {
        let two = endpoints(2);
        let now = Instant::now();
        let tickets: Vec<Ticket<'_>> = (0..5).map(|_| two.pick(now, &[false; 2])).collect();
        assert!(tickets.iter().all(|ticket| ticket.index == 0 && !ticket.probe));
        for ticket in tickets {
            ticket.failed(now, None);
        }
        assert_eq!(state(&two, 0), Breaker::Open { until: now + COOL_DOWN, failures: 1 });
    }

    #[test]
    fn a_probe_dropped_unanswered_lets_the_next_request_probe() {
        let two = endpoints(2);
        let start = Instant::now();
        two.pick(start, &[false; 2]).failed(start, None);
        let probe = two.pick(start + COOL_DOWN, &[false; 2]);
        assert!(probe.probe);
        drop(probe);
        assert!(matches!(state(&two, 0), Breaker::Open { failures: 1, .. }));
        assert_eq!(pick(&two, Instant::now() + COOL_DOWN), (0, true));
    }

    #[test]
    fn with_every_endpoint_open_the_one_reopening_first_is_tried() {
        let single = endpoints(1);
        let now = Instant::now();
        single.pick(now, &[false]).failed(now, None);
        // Not a probe, and not refused: a lone server is always tried.
        let ticket = single.pick(now, &[true]);
        assert_eq!((ticket.index, ticket.probe), (0, false));
        ticket.failed(now, None);
        assert_eq!(state(&single, 0), Breaker::Open { until: now + COOL_DOWN, failures: 1 });

        let three = endpoints(3);
        three.pick(now, &[false; 3]).failed(now + COOL_DOWN, None);
        three.pick(now, &[true, false, false]).failed(now, None);
        three.pick(now, &[true, true, false]).failed(now + COOL_DOWN * 2, None);
        assert_eq!(pick(&three, now), (1, false));

        // With every endpoint down, each failure pushes that one back: the calls take turns.
        let two = endpoints(2);
        two.pick(now, &[false; 2]).failed(now, None);
        two.pick(now, &[true, false]).failed(now + Duration::from_millis(1), None);
        let mut order = Vec::new();
        for step in 2..6 {
            let ticket = two.pick(now, &[true, true]);
            order.push(ticket.index);
            ticket.failed(now + Duration::from_millis(step), None);
        }
        assert_eq!(order, [0, 1, 0, 1]);
        assert!(matches!(state(&two, 0), Breaker::Open { failures: 1, .. }), "no doubling");
    }

    #[test]
    fn a_call_prefers_endpoints_it_has_not_seen_fail() {
        let three = endpoints(3);
        let now = Instant::now();
        assert!(three.has_other(now, &[true, false, false]));
        // Endpoint 0 is closed again (another call's success), but this call saw it fail.
        assert_eq!(three.pick(now, &[true, false, false]).index, 1);
        three.pick(now, &[false; 3]).failed(now, None);
        assert!(!three.has_other(now, &[false, true, true]));
        assert!(three.has_other(now + COOL_DOWN, &[false, true, true]), "due for its probe");
        assert_eq!(three.pick(now, &[false, true, true]).index, 1, "any that takes requests");
    }

    #[test]
    fn retry_after_lengthens_the_cool_down_within_the_cap() {
        let two = endpoints(2);
        assert_eq!(two.open_for(1, None), COOL_DOWN);
        assert_eq!(two.open_for(1, Some(Duration::from_millis(100))), COOL_DOWN);
        assert_eq!(two.open_for(1, Some(Duration::from_secs(5))), Duration::from_secs(5));
        assert_eq!(two.open_for(1, Some(Duration::from_secs(3600))), COOL_DOWN * 32);
        assert_eq!(two.open_for(3, None), COOL_DOWN * 4);
        assert_eq!(two.open_for(u32::MAX, None), COOL_DOWN * 32);
        let now = Instant::now();
        two.pick(now, &[false; 2]).failed(now, Some(Duration::from_secs(5)));
        assert_eq!(state(&two, 0), Breaker::Open { until: now + COOL_DOWN * 5, failures: 1 });
    }
}
