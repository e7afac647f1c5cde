//! The pools behind [`BufferedClient`](super::BufferedClient): one [`Pool`] per kind, counter
//! name or random options, its one refill task at a time, and what waiting callers get when a
//! refill fails or arrives too old.
//!
//! # How it works
//!
//! There is one pool per kind, per counter name and per random length and alphabet. A pool is a
//! queue of batches, each the answer of one `GET /v1/ids/{kind}?count=batch_size`, tagged with
//! the [`Instant`] its request was sent. A call takes the front ID under a short `std` mutex
//! (never held across an `.await`). When the pool falls below `low_water`, the call spawns a
//! tokio task that fetches the next batch; a pool has at most one such refill in flight, so
//! batches arrive in the order the server generated them. A call that finds the pool empty
//! queues a `oneshot` sender and sleeps on it; the refill hands the new IDs to the queued
//! callers first (in the order they queued), then keeps the rest.
//!
//! An ID leaves the pool exactly once: it is popped under the lock, or sent to one waiter (an
//! ID sent to a caller that has gone away comes back from `send` and goes to the next caller
//! or back to the pool). Nothing is ever re-queued behind newer IDs.
//!
//! # Failures
//!
//! A failed refill answers every caller waiting on it. The first in line gets the refill's
//! [`Error`] itself. The others get an identical copy when the server answered ([`Error::Api`],
//! e.g. 400 for a batch above `IDGEN_MAX_BATCH` or 429), or an invalid answer. A transport
//! error cannot be copied (it carries the underlying `reqwest::Error`). So each of the other
//! callers then makes one unbuffered request of its own. All of them run at once, bounded by
//! the client's timeout. Each caller gets its own error, or an ID if the server is back. No
//! refill starts until those requests are done, so the order guarantee of
//! [`BufferedClient`](super::BufferedClient) still holds.
//! A refill's request (and each of those fallback requests) is retried by the client's
//! [`RetryPolicy`](crate::RetryPolicy) like any other, so a 429 or a lost connection makes
//! callers wait, not fail; what is described here happens once the policy gives up. Nothing
//! is retried beyond that. The next call after a failure starts a new refill.
//!
//! # Age
//!
//! `max_age` applies to the kinds the catalogue marks time-based ([`Kind::time_based`]: uuid7,
//! ulid, snowflake, timestamp). A batch's age
//! counts from when its request was *sent*, which is no later than when the server generated
//! it. So the bound is conservative. After a retry (a 429 waited out, a lost connection) it is
//! the retry's sending that counts: the IDs came from that attempt, and counting the waits
//! before it would drop every batch a rate-limited server hands out. Batches older than `max_age` are dropped whole, and those
//! IDs are never served. A batch that is already too old when it arrives is dropped too, and
//! fetched again. After three such batches in a row the waiting callers get
//! [`Error::InvalidResponse`] saying so: `max_age` is then below the server's response time.

use std::collections::VecDeque;
use std::fmt::Display;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use idgen_core::Kind;
use idgen_core::wire::IdRequest;
use tokio::sync::oneshot;

use super::BufferConfig;
use crate::request;
use crate::{Client, Error, RandomOptions};

/// How many batches in a row may arrive older than `max_age` before waiting callers get an
/// error instead of another attempt.
const MAX_STALE_REFILLS: u32 = 3;

/// What a pool asks the server for.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Kind(Kind),
    Counter(String),
    Random(RandomOptions),
    /// TypeIDs with this prefix (valid: checked by the caller).
    TypeId(String),
}

impl Source {
    fn kind(&self) -> Kind {
        match self {
            Source::Kind(kind) => *kind,
            Source::Counter(_) => Kind::Counter,
            Source::Random(_) => Kind::Random,
            Source::TypeId(_) => Kind::TypeId,
        }
    }

    /// Whether IDs carry their creation time, so `max_age` applies (the catalogue says).
    fn is_time_based(&self) -> bool {
        self.kind().time_based()
    }

    /// The request for `count` IDs, or one without a count.
    fn request(&self, count: Option<u32>) -> IdRequest {
        match self {
            Source::Kind(_) => IdRequest { count, ..IdRequest::default() },
            Source::Counter(name) => request::named(name, count),
            Source::Random(options) => options.to_request(count),
            Source::TypeId(prefix) => request::prefixed(prefix, count),
        }
    }
}

/// A typed ID a pool can hold: parsed from the server's string, sent between tasks.
pub(super) trait PoolId: Send + 'static {
    fn parse(kind: Kind, text: &str) -> Result<Self, Error>
    where
        Self: Sized;
}

impl<T> PoolId for T
where
    T: FromStr + Send + 'static,
    T::Err: Display,
{
    fn parse(kind: Kind, text: &str) -> Result<Self, Error> {
        text.parse().map_err(|error| Error::InvalidResponse {
            message: format!("`{text}` is not a valid {kind} id: {error}"),
        })
    }
}

/// The buffered IDs of one kind (or counter name, or random options) and their refill state.
pub(super) struct Pool<T: PoolId> {
    client: Client,
    source: Source,
    batch_size: u32,
    low_water: usize,
    /// `None` for kinds without a time, or when the config sets no limit.
    max_age: Option<Duration>,
    state: Mutex<PoolState<T>>,
}

struct PoolState<T: PoolId> {
    /// Oldest first; never holds an empty batch.
    batches: VecDeque<Batch<T>>,
    /// IDs in `batches`.
    len: usize,
    /// Callers waiting for the next refill, first come first served. Invariant: non-empty only
    /// while `batches` is empty, and then a refill is in flight or starts once `fallbacks`
    /// reaches zero.
    waiters: VecDeque<oneshot::Sender<Delivery<T>>>,
    /// A refill task is running.
    refilling: bool,
    /// Callers doing their own request after a failed refill; no refill starts until they are
    /// done, or a batch generated before their IDs could be served after them.
    fallbacks: usize,
}

/// The answer of one refill request.
struct Batch<T> {
    requested_at: Instant,
    ids: VecDeque<T>,
}

/// What a waiting caller receives.
enum Delivery<T: PoolId> {
    Id(T),
    Failed(Error),
    /// The refill failed with an error that cannot be copied: make one request yourself.
    Fallback(FallbackPermit<T>),
}

impl<T: PoolId> Pool<T> {
    pub(super) fn new(client: &Client, source: Source, config: &BufferConfig) -> Arc<Self> {
        let max_age = if source.is_time_based() { config.max_age() } else { None };
        Arc::new(Self {
            client: client.clone(),
            batch_size: config.batch_size(),
            low_water: usize::try_from(config.low_water()).expect("u32 fits in usize"),
            max_age,
            source,
            state: Mutex::new(PoolState {
                batches: VecDeque::new(),
                len: 0,
                waiters: VecDeque::new(),
                refilling: false,
                fallbacks: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState<T>> {
        lock(&self.state)
    }

    /// Whether a batch requested at `requested_at` is past `max_age` at `now`.
    fn is_expired(&self, requested_at: Instant, now: Instant) -> bool {
        self.max_age.is_some_and(|max_age| now.saturating_duration_since(requested_at) > max_age)
    }

    /// One ID: from the pool, or from the next refill.
    pub(super) async fn take(self: &Arc<Self>) -> Result<T, Error> {
        // The pool path never waits, so without this a task looping on it would hold its
        // worker thread and starve other tasks, timers and this pool's own refill. Like
        // tokio's channels, spend cooperative budget: it yields once in a while.
        tokio::task::consume_budget().await;
        loop {
            let receiver = {
                let mut state = self.lock();
                self.drop_expired(&mut state);
                if let Some(id) = state.pop() {
                    self.start_refill_if_needed(&mut state);
                    return Ok(id);
                }
                let (sender, receiver) = oneshot::channel();
                state.waiters.push_back(sender);
                self.start_refill_if_needed(&mut state);
                receiver
            };
            match receiver.await {
                Ok(Delivery::Id(id)) => return Ok(id),
                Ok(Delivery::Failed(error)) => return Err(error),
                Ok(Delivery::Fallback(permit)) => {
                    let result = self.fetch_one().await;
                    // Only now may a refill start: its batch is generated after our ID.
                    drop(permit);
                    return result;
                }
                // The refill task was dropped before it answered (its runtime shut down):
                // queue again, which starts a refill on this task's runtime.
                Err(_) => continue,
            }
        }
    }

    fn drop_expired(&self, state: &mut PoolState<T>) {
        if self.max_age.is_none() {
            return;
        }
        let now = Instant::now();
        while let Some(front) = state.batches.front()
            && self.is_expired(front.requested_at, now)
        {
            state.len -= front.ids.len();
            state.batches.pop_front();
        }
    }

    /// Spawns the refill task unless one runs, fallbacks are pending, or the pool is full
    /// enough with nobody waiting.
    fn start_refill_if_needed(self: &Arc<Self>, state: &mut PoolState<T>) {
        let wanted = state.len < self.low_water || !state.waiters.is_empty();
        if !wanted || state.refilling || state.fallbacks > 0 {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                state.refilling = true;
                runtime.spawn(Refill { pool: Arc::clone(self), finished: false }.run());
            }
            // Only when a fallback permit is dropped outside any runtime. Wake the waiters so
            // they queue again from their own tasks, which can spawn.
            Err(_) => state.waiters.clear(),
        }
    }

    /// `count` IDs (one without), and when the request that brought them was sent: the
    /// client's last attempt, after any retries and their waits.
    async fn fetch(&self, count: Option<u32>) -> Result<(Vec<T>, Instant), Error> {
        let kind = self.source.kind();
        let (ids, sent) = self.client.ids_sent_at(kind, &self.source.request(count)).await?;
        let ids = ids.iter().map(|id| T::parse(kind, id)).collect::<Result<_, _>>()?;
        Ok((ids, sent))
    }

    /// One unbuffered request, for a caller whose refill failed.
    async fn fetch_one(&self) -> Result<T, Error> {
        let (mut ids, _) = self.fetch(None).await?;
        Ok(ids.pop().expect("Client::ids checked that exactly one id came back"))
    }

    /// Applies a refill's result; returns whether to fetch another batch right away.
    fn finish_refill(
        self: &Arc<Self>,
        result: Result<(Vec<T>, Instant), Error>,
        stale_in_a_row: &mut u32,
    ) -> bool {
        let mut state = self.lock();
        match result {
            Ok((_, requested_at)) if self.is_expired(requested_at, Instant::now()) => {
                *stale_in_a_row += 1;
                if *stale_in_a_row < MAX_STALE_REFILLS {
                    return true;
                }
                let max_age = self.max_age.expect("only batches with a max_age expire");
                let error = Error::InvalidResponse {
                    message: format!(
                        "{MAX_STALE_REFILLS} batches of {} ids in a row arrived older than \
                         max_age ({} ms); raise BufferConfig::max_age above the server's \
                         response time",
                        self.source.kind(),
                        max_age.as_millis()
                    ),
                };
                self.fail(&mut state, error);
            }
            Ok((ids, requested_at)) => {
                *stale_in_a_row = 0;
                state.deliver(ids, requested_at);
                // More callers waited than one batch could serve.
                if !state.waiters.is_empty() {
                    return true;
                }
            }
            Err(error) => self.fail(&mut state, error),
        }
        state.refilling = false;
        false
    }

    /// Answers every waiting caller after a failed refill; see the module docs.
    fn fail(self: &Arc<Self>, state: &mut PoolState<T>, error: Error) {
        let template = copy_error(&error);
        let mut original = Some(error);
        for waiter in std::mem::take(&mut state.waiters) {
            let (delivery, is_original) = match (original.take(), &template) {
                (Some(error), _) => (Delivery::Failed(error), true),
                (None, Some(template)) => {
                    (Delivery::Failed(copy_error(template).expect("copied once")), false)
                }
                (None, None) => {
                    state.fallbacks += 1;
                    let permit = FallbackPermit { pool: Arc::clone(self), armed: true };
                    (Delivery::Fallback(permit), false)
                }
            };
            // A caller that has gone away sends its delivery back.
            match waiter.send(delivery) {
                Ok(()) => {}
                Err(Delivery::Failed(error)) if is_original => original = Some(error),
                Err(Delivery::Fallback(mut permit)) => {
                    // We hold the lock: release the permit here, not in its `Drop`.
                    state.fallbacks -= 1;
                    permit.armed = false;
                }
                Err(_) => {}
            }
        }
    }
}

impl<T: PoolId> PoolState<T> {
    /// The oldest buffered ID.
    fn pop(&mut self) -> Option<T> {
        let front = self.batches.front_mut()?;
        let id = front.ids.pop_front().expect("the pool never holds an empty batch");
        if front.ids.is_empty() {
            self.batches.pop_front();
        }
        self.len -= 1;
        Some(id)
    }

    /// Hands a fresh batch to the waiting callers in order, and keeps the rest.
    fn deliver(&mut self, ids: Vec<T>, requested_at: Instant) {
        let mut ids = VecDeque::from(ids);
        while !ids.is_empty()
            && let Some(waiter) = self.waiters.pop_front()
        {
            let id = ids.pop_front().expect("checked non-empty");
            if let Err(Delivery::Id(id)) = waiter.send(Delivery::Id(id)) {
                // That caller has gone away; the ID goes to the next one.
                ids.push_front(id);
            }
        }
        if !ids.is_empty() {
            self.len += ids.len();
            self.batches.push_back(Batch { requested_at, ids });
        }
    }
}

/// The one refill task of a pool, while it runs.
struct Refill<T: PoolId> {
    pool: Arc<Pool<T>>,
    /// Set once the task has cleared `refilling` itself.
    finished: bool,
}

impl<T: PoolId> Refill<T> {
    async fn run(mut self) {
        let mut stale_in_a_row = 0;
        loop {
            let result = self.pool.fetch(Some(self.pool.batch_size)).await;
            if !self.pool.finish_refill(result, &mut stale_in_a_row) {
                self.finished = true;
                return;
            }
        }
    }
}

impl<T: PoolId> Drop for Refill<T> {
    /// A refill dropped mid-request (its runtime shut down) must not leave the pool marked as
    /// refilling forever: clear the mark and wake the waiters, which queue again.
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.pool.lock();
            state.refilling = false;
            state.waiters.clear();
        }
    }
}

/// Held by a caller making its own request after a failed refill; the pool starts no refill
/// until every permit is dropped.
struct FallbackPermit<T: PoolId> {
    pool: Arc<Pool<T>>,
    armed: bool,
}

impl<T: PoolId> Drop for FallbackPermit<T> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.pool.lock();
            state.fallbacks -= 1;
            self.pool.start_refill_if_needed(&mut state);
        }
    }
}

/// A copy of an error that holds only data; `None` for a transport error, whose
/// `reqwest::Error` source cannot be cloned.
fn copy_error(error: &Error) -> Option<Error> {
    match error {
        Error::Api { status, code, message, retry_after } => Some(Error::Api {
            status: *status,
            code: *code,
            message: message.clone(),
            retry_after: *retry_after,
        }),
        Error::InvalidResponse { message } => {
            Some(Error::InvalidResponse { message: message.clone() })
        }
        Error::InvalidUrl { url, reason } => {
            Some(Error::InvalidUrl { url: url.clone(), reason: reason.clone() })
        }
        Error::InvalidApiKey { reason } => Some(Error::InvalidApiKey { reason: reason.clone() }),
        Error::InvalidCertificate { from, reason } => {
            Some(Error::InvalidCertificate { from: from.clone(), reason: reason.clone() })
        }
        Error::Runtime { reason } => Some(Error::Runtime { reason: reason.clone() }),
        Error::Transport { .. } => None,
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked: every critical
/// section here finishes its updates before anything that could panic.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_time_based_kinds_expire() {
        let config = BufferConfig::new().with_max_age(Some(Duration::from_millis(5)));
        let client = Client::new("http://127.0.0.1:1").expect("valid URL");
        for kind in Kind::ALL {
            let source = match kind {
                Kind::Counter => Source::Counter("orders".to_owned()),
                Kind::Random => Source::Random(RandomOptions::default()),
                Kind::TypeId => Source::TypeId("user".to_owned()),
                kind => Source::Kind(kind),
            };
            let time_based = source.is_time_based();
            let pool = Pool::<String>::new(&client, source, &config);
            assert_eq!(pool.max_age.is_some(), time_based, "{kind}");
            let long_ago = Instant::now();
            let later = long_ago + Duration::from_millis(6);
            assert_eq!(pool.is_expired(long_ago, later), time_based, "{kind}");
            assert!(!pool.is_expired(long_ago, long_ago + Duration::from_millis(5)), "{kind}");
        }
    }

    #[test]
    fn pool_serves_batches_oldest_first_and_waiters_before_the_pool() {
        let client = Client::new("http://127.0.0.1:1").expect("valid URL");
        let pool = Pool::<u64>::new(&client, Source::Kind(Kind::Snowflake), &BufferConfig::new());
        let mut state = pool.lock();
        let (first_sender, mut first) = oneshot::channel();
        let (gone_sender, gone) = oneshot::channel();
        let (second_sender, mut second) = oneshot::channel();
        drop(gone);
        state.waiters.extend([first_sender, gone_sender, second_sender]);
        let now = Instant::now();
        state.deliver(vec![1, 2, 3, 4], now);
        assert!(matches!(first.try_recv(), Ok(Delivery::Id(1))));
        // The caller that went away did not swallow an ID.
        assert!(matches!(second.try_recv(), Ok(Delivery::Id(2))));
        state.deliver(vec![5, 6], now);
        assert_eq!(state.len, 4);
        let served: Vec<u64> = std::iter::from_fn(|| state.pop()).collect();
        assert_eq!(served, [3, 4, 5, 6]);
        assert_eq!(state.len, 0);
        assert!(state.batches.is_empty());
    }

    #[test]
    fn copies_errors_that_hold_only_data() {
        let api = Error::Api {
            status: 429,
            code: idgen_core::wire::ErrorCode::RateLimited,
            message: "too many requests".to_owned(),
            retry_after: Some(Duration::from_secs(1)),
        };
        let copy = copy_error(&api).expect("api errors copy");
        assert_eq!(copy.to_string(), api.to_string());
        let invalid = Error::InvalidResponse { message: "bad".to_owned() };
        assert_eq!(copy_error(&invalid).expect("copies").to_string(), invalid.to_string());
    }
}
