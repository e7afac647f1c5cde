//! Group commit for strict counters (`IDGEN_COUNTER_BLOCK=1`): requests for one counter that
//! arrive while its `INCRBY` is in flight wait for the next one, which asks for the sum of
//! their counts; when it returns, each gets its own contiguous slice, in arrival order.
//!
//! Every strict promise survives the grouping. A request is answered from a round trip sent
//! after it arrived, so a client that got a value and then asks any node gets a larger one
//! (the global order of one-`INCRBY`-per-request). One round trip per counter is in flight
//! per node, so a node's answers increase in the order it gives them. Nothing is buffered: a
//! round trip asks for exactly what its requests want, so a crash skips only values already
//! handed to a request. A lone request goes out at once (there is no timer): the delay a
//! request can see is the round trip in flight when it arrived.
//!
//! A lone request sends its round trip from its own future. The requests that arrive while it
//! is in flight are served by a task of their own, not by a request's future: a request whose
//! client went away (its future dropped) still has its slice taken and dropped (a gap, never
//! a value handed to two requests), and the requests waiting behind it still get theirs.

use std::future::Future;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::connection::RedisError;

/// What one request gets: its slice, or why there is none.
type Reply = Result<RangeInclusive<u64>, RedisError>;

/// The requests of one counter on this node, and whether a round trip is in flight for it.
#[derive(Debug, Default)]
pub struct Group {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// A task is sending round trips; it takes [`State::waiting`] before each.
    busy: bool,
    /// In arrival order.
    waiting: Vec<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    count: u64,
    /// Passed on to the round trip as the largest of its batch's (timestamps: the
    /// request's clock, the least first value it may get).
    floor: u64,
    reply: oneshot::Sender<Reply>,
}

/// A round trip: `fetch(n, floor)` takes `n` values from the store, `floor` being the largest
/// `floor` of the requests it serves.
pub type Fetched = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What sends the round trips of one [`Group`].
pub trait Fetch: Fn(u64, u64) -> Fetched + Send + 'static {}

impl<F: Fn(u64, u64) -> Fetched + Send + 'static> Fetch for F {}

impl Group {
    /// `count` contiguous values, from the first round trip sent after this call. When none
    /// is in flight, this request's goes out at once, from its own future (no task, no
    /// channel); `make_fetch` is only called then, so a waiting request clones nothing.
    pub async fn take<F: Fetch>(
        self: &Arc<Self>,
        count: u64,
        floor: u64,
        make_fetch: impl FnOnce() -> F,
    ) -> Reply {
        let waiting = {
            let mut state = self.state.lock();
            if state.busy {
                let (reply, answer) = oneshot::channel();
                state.waiting.push(Waiter { count, floor, reply });
                Some(answer)
            } else {
                state.busy = true;
                None
            }
        };
        if let Some(answer) = waiting {
            return answer.await.unwrap_or(Err(RedisError::Abandoned));
        }
        let lead = Lead { group: Arc::clone(self), fetch: Some(make_fetch()) };
        let round_trip = (lead.fetch.as_ref().expect("set above"))(count, floor);
        let reply = round_trip.await;
        // Hands the requests that arrived meanwhile to a task, before this one is answered:
        // theirs come from a later round trip, so they are above it.
        drop(lead);
        reply
    }

    /// Sends round trips while requests wait, each for all the requests that arrived during
    /// the one before.
    async fn drive(self: Arc<Self>, fetch: impl Fetch) {
        // If this task is dropped (the runtime stops), the next request starts another; the
        // requests it held get `Abandoned` when their senders drop with it.
        let idle = Idle(&self);
        loop {
            let batch = {
                let mut state = self.state.lock();
                if state.waiting.is_empty() {
                    state.busy = false;
                    // Not dropped: once the lock is released, another task may be driving.
                    std::mem::forget(idle);
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let total = batch.iter().fold(0u64, |total, waiter| total.saturating_add(waiter.count));
            let floor = batch.iter().map(|waiter| waiter.floor).max().unwrap_or_default();
            match fetch(total, floor).await {
                Ok(range) => hand_out(batch, range),
                Err(error) => {
                    for waiter in batch {
                        // A request that went away needs no error.
                        let _ = waiter.reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// The round trip a request sends from its own future. Dropped when it is answered, or with
/// the request when its client goes away mid-flight: either way the requests that arrived
/// meanwhile go on in a task of their own.
struct Lead<F: Fetch> {
    group: Arc<Group>,
    fetch: Option<F>,
}

impl<F: Fetch> Drop for Lead<F> {
    fn drop(&mut self) {
        let Some(fetch) = self.fetch.take() else { return };
        let mut state = self.group.state.lock();
        if state.waiting.is_empty() {
            state.busy = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(state);
                runtime.spawn(Arc::clone(&self.group).drive(fetch));
            }
            // No runtime left to send them from (the node is stopping): they get `Abandoned`.
            Err(_) => {
                state.busy = false;
                state.waiting.clear();
            }
        }
    }
}

/// Clears [`State::busy`] when a driving task ends without doing so itself.
struct Idle<'a>(&'a Group);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.state.lock().busy = false;
    }
}

/// Gives each waiter of `batch` its slice of `range` (which holds exactly their counts), in
/// arrival order. A waiter that went away still has its slice taken: a gap.
fn hand_out(batch: Vec<Waiter>, range: RangeInclusive<u64>) {
    let mut next = *range.start();
    for Waiter { count, reply, .. } in batch {
        let last = next + (count - 1);
        let _ = reply.send(Ok(next..=last));
        next = last + 1;
    }
    debug_assert_eq!(next - 1, *range.end(), "a round trip takes exactly what its batch wants");
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// A store counter: `fetch(n)` takes the next `n` values, counting its round trips. A
    /// round trip completes after 2 ms, or (gated) when the test lets one through.
    struct Store {
        value: AtomicU64,
        round_trips: AtomicU64,
        fail: std::sync::atomic::AtomicBool,
        gate: tokio::sync::Semaphore,
    }

    impl Store {
        fn open() -> Arc<Store> {
            Store::with_gate(tokio::sync::Semaphore::MAX_PERMITS)
        }

        fn gated() -> Arc<Store> {
            Store::with_gate(0)
        }

        fn with_gate(permits: usize) -> Arc<Store> {
            Arc::new(Store {
                value: AtomicU64::new(0),
                round_trips: AtomicU64::new(0),
                fail: Default::default(),
                gate: tokio::sync::Semaphore::new(permits),
            })
        }

        fn fetch(self: &Arc<Self>) -> impl Fetch + use<> {
            let store = Arc::clone(self);
            move |count, _floor| -> Fetched {
                let store = Arc::clone(&store);
                Box::pin(async move {
                    store.round_trips.fetch_add(1, Ordering::SeqCst);
                    store.gate.acquire().await.expect("gate").forget();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    if store.fail.load(Ordering::SeqCst) {
                        return Err(RedisError::Timeout);
                    }
                    let last = store.value.fetch_add(count, Ordering::SeqCst) + count;
                    Ok(last - count + 1..=last)
                })
            }
        }
    }

    /// Lets the tasks spawned so far run until they wait (a current-thread runtime).
    async fn settle() {
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_round_trips_and_get_disjoint_contiguous_slices() {
        let store = Store::open();
        let group = Arc::new(Group::default());
        let tasks: Vec<_> = (0..200u64)
            .map(|task| {
                let (group, store) = (Arc::clone(&group), Arc::clone(&store));
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..20 {
                        let count = 1 + task % 7;
                        let range = group.take(count, 0, || store.fetch()).await.expect("values");
                        assert_eq!(range.end() - range.start() + 1, count, "{range:?}");
                        got.push(range);
                    }
                    got
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut wanted = 0;
        for task in tasks {
            let ranges = task.await.expect("task");
            // One caller's values increase: each call goes into a later round trip.
            for pair in ranges.windows(2) {
                assert!(pair[1].start() > pair[0].end(), "{pair:?}");
            }
            for range in ranges {
                wanted += range.end() - range.start() + 1;
                for value in range {
                    assert!(seen.insert(value), "{value} handed out twice");
                }
            }
        }
        // Nothing buffered: the store handed out exactly what the requests got.
        assert_eq!(store.value.load(Ordering::SeqCst), wanted);
        let round_trips = store.round_trips.load(Ordering::SeqCst);
        assert!(round_trips < 4000 / 10, "{round_trips} round trips for 4000 requests");
    }

    #[tokio::test]
    async fn a_lone_request_goes_out_at_once_and_alone() {
        let store = Store::open();
        let group = Arc::new(Group::default());
        for expected in 1..=5u64 {
            let range = group.take(1, 0, || store.fetch()).await.expect("value");
            assert_eq!(range, expected..=expected);
        }
        assert_eq!(store.round_trips.load(Ordering::SeqCst), 5);
    }

    /// `n` requests for `count` values each, spawned in turn.
    fn spawn_takes(group: &Arc<Group>, store: &Arc<Store>, n: usize, count: u64) -> Vec<Task> {
        (0..n)
            .map(|_| {
                let (group, store) = (Arc::clone(group), Arc::clone(store));
                tokio::spawn(async move { group.take(count, 0, || store.fetch()).await })
            })
            .collect()
    }

    type Task = tokio::task::JoinHandle<Reply>;

    #[tokio::test]
    async fn a_request_that_went_away_leaves_a_gap_and_the_others_get_their_slices() {
        let (store, group) = (Store::gated(), Arc::new(Group::default()));
        // The first request's round trip is in flight; three more wait behind it.
        let first = spawn_takes(&group, &store, 1, 1).remove(0);
        settle().await;
        let waiting = spawn_takes(&group, &store, 3, 10);
        settle().await;
        waiting[1].abort();
        settle().await;
        store.gate.add_permits(2);
        assert_eq!(first.await.unwrap().unwrap(), 1..=1);
        let mut waiting = waiting.into_iter();
        let a = waiting.next().unwrap().await.unwrap().unwrap();
        assert!(waiting.next().unwrap().await.unwrap_err().is_cancelled());
        let c = waiting.next().unwrap().await.unwrap().unwrap();
        // The aborted request's slice (12..=21) was taken with the others' and dropped.
        assert_eq!((a, c), (2..=11, 22..=31));
        assert_eq!(store.value.load(Ordering::SeqCst), 31);
        assert_eq!(store.round_trips.load(Ordering::SeqCst), 2);
        // The next request starts above the gap.
        store.gate.add_permits(1);
        assert_eq!(group.take(1, 0, || store.fetch()).await.unwrap(), 32..=32);
    }

    #[tokio::test]
    async fn the_requests_behind_a_lone_request_that_went_away_are_still_served() {
        let (store, group) = (Store::gated(), Arc::new(Group::default()));
        // The lone request sends its round trip from its own future; two wait behind it.
        let lead = spawn_takes(&group, &store, 1, 1).remove(0);
        settle().await;
        let waiting = spawn_takes(&group, &store, 2, 5);
        settle().await;
        // Its client goes away mid-flight: this fake store then takes nothing for it (Redis
        // may have: a gap either way); the two behind it get the next round trip.
        lead.abort();
        assert!(lead.await.unwrap_err().is_cancelled());
        store.gate.add_permits(1);
        let mut got = Vec::new();
        for task in waiting {
            got.push(task.await.unwrap().unwrap());
        }
        assert_eq!(got, vec![1..=5, 6..=10]);
        assert_eq!(store.round_trips.load(Ordering::SeqCst), 2);
        store.gate.add_permits(1);
        assert_eq!(group.take(1, 0, || store.fetch()).await.unwrap(), 11..=11);
    }

    #[tokio::test]
    async fn a_failed_round_trip_fails_its_requests_and_the_next_one_is_sent() {
        let store = Store::open();
        let group = Arc::new(Group::default());
        store.fail.store(true, Ordering::SeqCst);
        for task in spawn_takes(&group, &store, 4, 1) {
            assert!(matches!(task.await.unwrap(), Err(RedisError::Timeout)));
        }
        store.fail.store(false, Ordering::SeqCst);
        assert_eq!(group.take(3, 0, || store.fetch()).await.unwrap(), 1..=3);
    }
}
