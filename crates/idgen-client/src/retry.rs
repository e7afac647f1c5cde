//! [`RetryPolicy`]: which failed requests are sent again, how long each retry waits
//! (exponential backoff with full jitter, the server's `Retry-After` as a floor) and when to give
//! up (attempts, total deadline); and [`send`], the loop that applies it across the endpoints.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::RngExt;
use reqwest::Url;

use crate::endpoint::Endpoints;
use crate::error::Error;

/// When and how a [`Client`](crate::Client) sends a failed request again; set with
/// [`ClientBuilder::retry_policy`](crate::ClientBuilder::retry_policy).
///
/// Retried: 429 (the server's rate limit), 503 (the server cannot issue now), and failures to
/// get an answer at all (connection refused or reset, the connection lost mid-answer, a
/// timeout). Never retried: any other 4xx (the request itself is wrong and would be refused
/// again), other 5xx, an answer that is not what the API promises, and a TLS handshake the
/// server's certificate fails. With several endpoints, a 503 or a failure to connect moves the
/// request to the next endpoint at once; see
/// [`ClientBuilder::endpoints`](crate::ClientBuilder::endpoints).
///
/// Retry number `n` (0 for the first) waits a random time between zero and `base_delay × 2ⁿ`,
/// capped at `max_delay` (full jitter: clients that failed together do not come back together),
/// but never less than the server's `Retry-After`. A move to another endpoint does not wait.
/// No wait runs past `deadline`, counted from the first attempt: a `Retry-After` beyond it
/// returns the error at once.
///
/// **Retrying a request for new IDs is safe.** Every attempt asks for fresh IDs; if the server
/// issued some and its answer was lost, those IDs are never handed to anyone: a gap in a
/// counter, never a duplicate.
///
/// ```
/// use std::time::Duration;
/// use idgen_client::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts(), 5);
/// assert_eq!(policy.base_delay(), Duration::from_millis(50));
/// assert_eq!(policy.max_delay(), Duration::from_secs(2));
/// assert_eq!(policy.deadline(), Duration::from_secs(10));
///
/// assert_eq!(RetryPolicy::none().max_attempts(), 1, "one attempt: every error at once");
/// let patient = RetryPolicy::default().with_max_attempts(10).with_deadline(Duration::from_secs(60));
/// assert_eq!(patient.max_attempts(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    deadline: Duration,
}

impl RetryPolicy {
    /// Attempts per call unless [`RetryPolicy::with_max_attempts`] says otherwise: the first
    /// and four retries. Without `Retry-After`, the four waits add up to at most 750 ms
    /// (375 ms on average): long enough to ride out a dropped connection or a server's
    /// restart on a nearby endpoint, short enough that a caller learns of an outage quickly.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    /// The longest first wait unless [`RetryPolicy::with_base_delay`] says otherwise: about a
    /// round trip and a half to a loaded server on the same network.
    pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(50);

    /// The cap on any wait's random part unless [`RetryPolicy::with_max_delay`] says
    /// otherwise. `Retry-After` may ask for longer, and is honoured up to the deadline.
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);

    /// How long a call may keep retrying unless [`RetryPolicy::with_deadline`] says
    /// otherwise: room for a few one-second `Retry-After`s of a rate-limited server, well
    /// under the request timeout ([`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), 30 s).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

    /// The defaults: 5 attempts, waits from 50 ms doubling up to 2 s, 10 s in all.
    pub fn new() -> Self {
        Self {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            base_delay: Self::DEFAULT_BASE_DELAY,
            max_delay: Self::DEFAULT_MAX_DELAY,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// No retries: every call is one request, and its error (a 429 included) comes back at
    /// once. With several endpoints there is no failover either: that would be a retry.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::new() }
    }

    /// Requests per call, the first included (0 counts as 1).
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// The ceiling of the first retry's wait; each further retry doubles it.
    #[must_use]
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// The cap on the ceiling that doubling reaches.
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// How long after its first attempt a call stops retrying: no wait ends after it, and a
    /// retry on an endpoint that already failed has its timeout cut to what is left of it. The
    /// first attempt on each endpoint has the client's whole
    /// [`timeout`](crate::ClientBuilder::timeout), as a request without retries would, so a
    /// server that never answers cannot use up the deadline of the move to the next one.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Requests per call, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The ceiling of the first retry's wait.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The cap on a wait's ceiling.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// How long a call may keep retrying.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The ceiling of retry number `retry`'s wait: `base_delay × 2^retry`, capped.
    fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry number `retry`: uniform in zero..=ceiling, at least `retry_after`.
    fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl RngExt) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        let jittered = Duration::from_nanos(rng.random_range(0..=ceiling));
        jittered.max(retry_after.unwrap_or_default())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// What a failed attempt calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Hand the error to the caller: sent again, the request would fail the same way.
    GiveUp,
    /// The endpoint is up but asks to slow down (429): wait, then the same endpoint.
    Wait { retry_after: Option<Duration> },
    /// The endpoint cannot serve (503, no connection, no answer in time): another endpoint
    /// at once, or this one after a wait.
    Failover { retry_after: Option<Duration> },
}

fn next_step(error: &Error) -> Next {
    match error {
        Error::Api { status: 429, retry_after, .. } => Next::Wait { retry_after: *retry_after },
        Error::Api { status: 503, retry_after, .. } => Next::Failover { retry_after: *retry_after },
        Error::Transport { source, .. } => {
            if source.is_builder() || source.is_redirect() || is_tls_refusal(source) {
                Next::GiveUp
            } else {
                Next::Failover { retry_after: None }
            }
        }
        _ => Next::GiveUp,
    }
}

/// Whether the TLS handshake failed (the server's certificate, no common protocol): the same
/// server refuses the same way every time.
fn is_tls_refusal(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return true;
        }
        // rustls's error travels inside `io::Error`s, whose `source` skips the error they
        // wrap: open them instead.
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    false
}

/// Sends one request under `policy`: `attempt(base, limit)` makes one attempt on the endpoint
/// `base`, with its timeout cut to `limit` when there is one. Returns the first success, or the
/// last error once the policy gives up.
///
/// The first attempt on each endpoint has the client's whole timeout, as a lone request would:
/// a server that never answers must not use up the deadline of the move to a healthy one. The
/// deadline bounds the waits and the retries on endpoints that already failed.
pub(crate) async fn send<T, F, Fut>(
    policy: &RetryPolicy,
    endpoints: &Endpoints,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut(Url, Option<Duration>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let started = Instant::now();
    // Endpoints that failed during this call: moving on to one that has not needs no wait.
    let mut failed = vec![false; endpoints.len()];
    let mut attempts = 0;
    let mut waits = 0;
    let mut limit = None;
    loop {
        attempts += 1;
        let ticket = endpoints.pick(Instant::now(), &failed);
        let error = match attempt(ticket.base().clone(), limit).await {
            Ok(value) => {
                ticket.succeeded();
                return Ok(value);
            }
            Err(error) => error,
        };
        let wait_for = match next_step(&error) {
            Next::GiveUp => {
                // An answer, even a refusal, shows the endpoint is up.
                if matches!(error, Error::Api { .. } | Error::InvalidResponse { .. }) {
                    ticket.succeeded();
                }
                return Err(error);
            }
            Next::Wait { retry_after } => {
                ticket.succeeded();
                Some(retry_after)
            }
            Next::Failover { retry_after } => {
                failed[ticket.index()] = true;
                ticket.failed(Instant::now(), retry_after);
                let elsewhere = endpoints.has_other(Instant::now(), &failed);
                (!elsewhere).then_some(retry_after)
            }
        };
        if attempts >= policy.max_attempts {
            return Err(error);
        }
        let Some(retry_after) = wait_for else {
            limit = None;
            continue;
        };
        let delay = policy.delay(waits, retry_after, &mut rand::rng());
        waits += 1;
        if started.elapsed() + delay >= policy.deadline {
            return Err(error);
        }
        tokio::time::sleep(delay).await;
        match policy.deadline.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => limit = Some(left),
            _ => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use idgen_core::wire::ErrorCode;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_ceilings_double_from_the_base_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<u128> = (0..9).map(|retry| policy.ceiling(retry).as_millis()).collect();
        assert_eq!(ceilings, [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        // Far past any real attempt count, nothing overflows.
        assert_eq!(policy.ceiling(31), Duration::from_secs(2));
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(2));
        let huge = RetryPolicy::new().with_base_delay(Duration::MAX).with_max_delay(Duration::MAX);
        assert_eq!(huge.ceiling(3), Duration::MAX);
        let flat = RetryPolicy::new().with_base_delay(MS * 30).with_max_delay(MS * 10);
        assert_eq!(flat.ceiling(0), MS * 10, "the cap applies to the first wait too");
    }

    #[test]
    fn full_jitter_spreads_waits_under_the_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for retry in [0, 2, 6] {
            let ceiling = policy.ceiling(retry);
            let waits: Vec<Duration> =
                (0..2000).map(|_| policy.delay(retry, None, &mut rng)).collect();
            assert!(waits.iter().all(|wait| *wait <= ceiling), "retry {retry}");
            // Uniform over the whole range: some near zero, some near the ceiling, the mean
            // about half of it.
            assert!(waits.iter().any(|wait| *wait < ceiling / 20), "retry {retry}");
            assert!(waits.iter().any(|wait| *wait > ceiling * 19 / 20), "retry {retry}");
            let mean = waits.iter().sum::<Duration>() / 2000;
            assert!(mean > ceiling * 45 / 100 && mean < ceiling * 55 / 100, "{mean:?}");
        }
        let zero = RetryPolicy::new().with_base_delay(Duration::ZERO);
        assert_eq!(zero.delay(3, None, &mut rng), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_a_floor_under_the_jitter() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..200 {
            // The first ceiling (50 ms) is below it: the server's delay, exactly.
            assert_eq!(policy.delay(0, Some(Duration::from_secs(1)), &mut rng), MS * 1000);
            // A later ceiling (2 s) is above it: at least the server's delay.
            let wait = policy.delay(6, Some(Duration::from_secs(1)), &mut rng);
            assert!(wait >= MS * 1000 && wait <= MS * 2000, "{wait:?}");
            // Beyond the cap: still honoured (the deadline decides whether to wait at all).
            assert_eq!(policy.delay(6, Some(Duration::from_secs(7)), &mut rng), MS * 7000);
        }
    }

    #[test]
    fn policies_clamp_and_none_is_one_attempt() {
        let policy = RetryPolicy::default();
        assert_eq!(policy, RetryPolicy::new());
        assert_eq!(
            (policy.max_attempts(), policy.base_delay(), policy.max_delay(), policy.deadline()),
            (5, MS * 50, MS * 2000, MS * 10_000)
        );
        assert_eq!(RetryPolicy::none().max_attempts(), 1);
        assert_eq!(RetryPolicy::new().with_max_attempts(0).max_attempts(), 1);
        let custom = RetryPolicy::none()
            .with_max_attempts(8)
            .with_base_delay(MS * 10)
            .with_max_delay(MS * 500)
            .with_deadline(MS * 3000);
        assert_eq!(
            (custom.max_attempts(), custom.base_delay(), custom.max_delay(), custom.deadline()),
            (8, MS * 10, MS * 500, MS * 3000)
        );
    }

    fn api(status: u16, retry_after: Option<Duration>) -> Error {
        let code = match status {
            429 => ErrorCode::RateLimited,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::Unknown,
        };
        Error::Api { status, code, message: "test".to_owned(), retry_after }
    }

    #[test]
    fn only_429_and_503_answers_are_retried() {
        let later = Some(Duration::from_secs(2));
        assert_eq!(next_step(&api(429, later)), Next::Wait { retry_after: later });
        assert_eq!(next_step(&api(429, None)), Next::Wait { retry_after: None });
        assert_eq!(next_step(&api(503, later)), Next::Failover { retry_after: later });
        for status in [400, 401, 403, 404, 405, 406, 408, 413, 414, 431, 500, 502, 504] {
            assert_eq!(next_step(&api(status, later)), Next::GiveUp, "{status}");
        }
        let invalid = Error::InvalidResponse { message: "not JSON".to_owned() };
        assert_eq!(next_step(&invalid), Next::GiveUp);
    }

    /// What a real request to `url` fails with, through reqwest.
    async fn transport_error(url: &str, timeout: Duration) -> reqwest::Error {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().timeout(timeout).build().expect("a client");
        client.get(url).send().await.expect_err("nothing good listens there")
    }

    fn transport(source: reqwest::Error) -> Error {
        Error::Transport { url: "test".to_owned(), reason: "test".to_owned(), source }
    }

    #[tokio::test]
    async fn lost_connections_are_retried_and_tls_refusals_are_not() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = free.local_addr().expect("bound").port();
        drop(free);
        let refused = transport_error(&format!("http://127.0.0.1:{port}"), MS * 5000).await;
        assert!(refused.is_connect(), "{refused:?}");
        assert_eq!(next_step(&transport(refused)), Next::Failover { retry_after: None });

        // Accepted by the kernel's backlog, never answered.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", silent.local_addr().expect("bound"));
        let timed_out = transport_error(&url, MS * 100).await;
        assert!(timed_out.is_timeout(), "{timed_out:?}");
        assert_eq!(next_step(&transport(timed_out)), Next::Failover { retry_after: None });

        // An https client talking to a plain-HTTP server: the handshake fails the same way on
        // every attempt.
        let plain = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}", plain.local_addr().expect("bound"));
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = plain.accept().expect("accept");
            let _ = stream.read(&mut [0u8; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        });
        let tls = transport_error(&url, MS * 5000).await;
        server.join().expect("server thread");
        assert!(is_tls_refusal(&tls), "{tls:?}");
        assert_eq!(next_step(&transport(tls)), Next::GiveUp);
    }

    /// A call's attempts: the endpoint and time limit of each, and the answers to give.
    struct Script {
        answers: Mutex<Vec<Result<u32, Error>>>,
        seen: Mutex<Vec<(String, Option<Duration>)>>,
    }

    impl Script {
        /// `answers` in order; after the last, every attempt gets the last again.
        fn new(answers: Vec<Result<u32, Error>>) -> Arc<Self> {
            let mut answers = answers;
            answers.reverse();
            Arc::new(Self { answers: Mutex::new(answers), seen: Mutex::new(Vec::new()) })
        }

        fn answer(&self, base: &Url, limit: Option<Duration>) -> Result<u32, Error> {
            self.seen
                .lock()
                .expect("lock")
                .push((base.host_str().expect("host").to_owned(), limit));
            let mut answers = self.answers.lock().expect("lock");
            if answers.len() > 1 {
                return answers.pop().expect("checked");
            }
            match answers.last().expect("at least one answer") {
                Ok(value) => Ok(*value),
                Err(Error::Api { status, retry_after, .. }) => Err(api(*status, *retry_after)),
                Err(other) => panic!("scripts repeat answers, not {other:?}"),
            }
        }

        fn hosts(&self) -> Vec<String> {
            self.seen.lock().expect("lock").iter().map(|(host, _)| host.clone()).collect()
        }

        fn limits(&self) -> Vec<Option<Duration>> {
            self.seen.lock().expect("lock").iter().map(|(_, limit)| *limit).collect()
        }
    }

    fn endpoints(hosts: &[&str]) -> Endpoints {
        let urls = hosts.iter().map(|host| Url::parse(&format!("http://{host}:1")).expect("URL"));
        Endpoints::new(urls.collect(), Duration::from_secs(60))
    }

    async fn run(
        policy: RetryPolicy,
        endpoints: &Endpoints,
        script: &Arc<Script>,
    ) -> Result<u32, Error> {
        send(&policy, endpoints, |base, limit| std::future::ready(script.answer(&base, limit)))
            .await
    }

    #[tokio::test]
    async fn a_refusal_is_one_attempt_and_429s_run_out_of_attempts() {
        let single = endpoints(&["a"]);
        let script = Script::new(vec![Err(api(400, None))]);
        let error = run(RetryPolicy::default(), &single, &script).await.expect_err("400");
        assert_eq!((error.status(), script.hosts().len()), (Some(400), 1));

        let fast = RetryPolicy::new().with_base_delay(MS).with_max_attempts(3);
        let script = Script::new(vec![Err(api(429, None))]);
        let error = run(fast, &single, &script).await.expect_err("always 429");
        assert_eq!((error.status(), script.hosts().len()), (Some(429), 3));

        let script = Script::new(vec![Err(api(429, None))]);
        let error = run(RetryPolicy::none(), &single, &script).await.expect_err("429");
        assert_eq!((error.status(), script.hosts().len()), (Some(429), 1));
    }

    #[tokio::test]
    async fn retry_after_is_waited_for_unless_it_ends_past_the_deadline() {
        let single = endpoints(&["a"]);
        let script = Script::new(vec![Err(api(429, Some(MS * 300))), Ok(7)]);
        let started = Instant::now();
        assert_eq!(run(RetryPolicy::default(), &single, &script).await.expect("then 7"), 7);
        assert!(started.elapsed() >= MS * 300, "{:?}", started.elapsed());

        let short = RetryPolicy::new().with_deadline(MS * 1000);
        let script = Script::new(vec![Err(api(429, Some(Duration::from_secs(5)))), Ok(7)]);
        let started = Instant::now();
        let error = run(short, &single, &script).await.expect_err("5 s is past the deadline");
        assert_eq!((error.status(), script.hosts().len()), (Some(429), 1));
        assert!(started.elapsed() < MS * 500, "returned at once: {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_failing_endpoint_hands_over_at_once_and_stays_avoided() {
        let three = endpoints(&["a", "b", "c"]);
        // Any wait at all would take 10 s.
        let patient = RetryPolicy::new().with_base_delay(Duration::from_secs(10));
        let script = Script::new(vec![Err(api(503, None)), Ok(1)]);
        let started = Instant::now();
        assert_eq!(run(patient, &three, &script).await.expect("b answers"), 1);
        assert!(started.elapsed() < MS * 1000, "{:?}", started.elapsed());
        assert_eq!(run(patient, &three, &script).await.expect("b again"), 1);
        assert_eq!(script.hosts(), ["a", "b", "b"]);
        // Each endpoint's first attempt has the client's own timeout.
        assert_eq!(script.limits(), [None, None, None]);
    }

    #[tokio::test]
    async fn when_every_endpoint_failed_the_call_backs_off_and_tries_again() {
        let two = endpoints(&["a", "b"]);
        let fast = RetryPolicy::new().with_base_delay(MS * 5);
        let script = Script::new(vec![Err(api(503, None)), Err(api(503, None)), Ok(2)]);
        assert_eq!(run(fast, &two, &script).await.expect("third attempt"), 2);
        // Both are cooling down: the one that reopens first (a, which failed first) gets it,
        // with what is left of the deadline as its timeout.
        assert_eq!(script.hosts(), ["a", "b", "a"]);
        let limits = script.limits();
        assert_eq!((limits[0], limits[1]), (None, None));
        assert!(limits[2].is_some_and(|limit| limit < fast.deadline()), "{limits:?}");

        let script = Script::new(vec![Err(api(503, None))]);
        let error = run(fast.with_max_attempts(4), &two, &script).await.expect_err("all 503");
        assert_eq!((error.status(), script.hosts().len()), (Some(503), 4));
    }
}
