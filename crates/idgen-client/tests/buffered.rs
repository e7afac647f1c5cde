//! `BufferedClient` against a real `idgen-server` process: uniqueness under many tasks, order
//! per task, `max_age`, error propagation, refills that wait out a rate limit, and one pool per
//! counter name and random options.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{TestServer, dead_url, is_recent};
use idgen_client::{
    Alphabet, BufferConfig, BufferedClient, Client, Error, ErrorCode, Length, RandomOptions, Uuid,
};
use idgen_core::snowflake;

/// Bounds every wait on the SDK, so a hang fails the test instead of stalling the run.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

fn client(url: &str) -> Client {
    Client::builder(url).timeout(Duration::from_secs(10)).build().expect("valid URL")
}

fn buffered(server: &TestServer, config: BufferConfig) -> BufferedClient {
    BufferedClient::new(client(&server.url), config)
}

fn snowflake_ms(id: u64) -> u64 {
    snowflake::decode(&id.to_string(), snowflake::DEFAULT_EPOCH_MS)
        .expect("a snowflake")
        .timestamp_ms
}

fn assert_strictly_increasing<T: PartialOrd + std::fmt::Debug>(values: &[T], what: &str) {
    for pair in values.windows(2) {
        assert!(pair[0] < pair[1], "{what}: {:?} then {:?}", pair[0], pair[1]);
    }
}

/// What one task took, in the order it took them.
#[derive(Default)]
struct Taken {
    snowflakes: Vec<u64>,
    uuid7s: Vec<Uuid>,
    counters: Vec<u64>,
}

/// `tasks` tasks each take `per_task` snowflakes, uuid7s and `orders` counter values, one of
/// each per round, from one client. Checks each task's order, then that no ID repeats across
/// tasks and none is missing.
async fn many_tasks_share_one_client(config: BufferConfig, tasks: usize, per_task: usize) {
    let server = TestServer::start();
    let ids = buffered(&server, config);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut taken = Taken::default();
                for _ in 0..per_task {
                    taken.snowflakes.push(ids.snowflake().await.expect("snowflake"));
                    taken.uuid7s.push(ids.uuid7().await.expect("uuid7"));
                    taken.counters.push(ids.counter("orders").await.expect("counter"));
                }
                taken
            })
        })
        .collect();

    let mut snowflakes = HashSet::new();
    let mut uuid7s = HashSet::new();
    let mut counters = HashSet::new();
    for handle in handles {
        let taken = tokio::time::timeout(CALL_DEADLINE, handle)
            .await
            .expect("tasks finish before the deadline")
            .expect("task did not panic");
        assert_strictly_increasing(&taken.snowflakes, "one task's snowflakes");
        assert_strictly_increasing(&taken.uuid7s, "one task's uuid7s");
        assert_strictly_increasing(&taken.counters, "one task's counter values");
        snowflakes.extend(taken.snowflakes);
        uuid7s.extend(taken.uuid7s);
        counters.extend(taken.counters);
    }
    let total = tasks * per_task;
    assert_eq!(snowflakes.len(), total, "distinct snowflakes");
    assert_eq!(uuid7s.len(), total, "distinct uuid7s");
    assert_eq!(counters.len(), total, "distinct counter values");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_get_no_duplicates_with_default_batches() {
    many_tasks_share_one_client(BufferConfig::default(), 64, 2000).await;
}

/// Batches smaller than the number of tasks: most calls wait on a refill, and one refill
/// serves several waiters before more are fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_get_no_duplicates_with_tiny_batches() {
    let config = BufferConfig::default().with_batch_size(7).with_low_water(2);
    many_tasks_share_one_client(config, 32, 300).await;
}

#[tokio::test]
async fn one_task_sees_strictly_increasing_ids_across_refills() {
    let server = TestServer::start();
    let ids = buffered(&server, BufferConfig::default().with_batch_size(10).with_low_water(3));
    let plain = client(&server.url);

    let mut snowflakes = Vec::new();
    let mut counters = Vec::new();
    let mut ulids = Vec::new();
    let mut timestamps = Vec::new();
    for round in 0..500 {
        snowflakes.push(ids.snowflake().await.expect("snowflake"));
        counters.push(ids.counter("invoices").await.expect("counter"));
        ulids.push(ids.ulid().await.expect("ulid"));
        timestamps.push(ids.timestamp().await.expect("timestamp"));
        // Unbuffered calls in between take values from the same server sequences; the
        // buffered ones must still increase.
        if round % 50 == 0 {
            plain.snowflake().await.expect("plain snowflake");
            plain.counter("invoices").await.expect("plain counter");
        }
    }
    assert_strictly_increasing(&snowflakes, "snowflakes");
    assert_strictly_increasing(&counters, "counter values");
    assert_strictly_increasing(&ulids, "ulids");
    assert_strictly_increasing(&timestamps, "timestamps");
    assert_eq!(counters[0], 1, "the first buffered value of a new counter");
    assert!(is_recent(snowflake_ms(snowflakes[0])));
    assert!(is_recent(ulids[0].timestamp_ms()));
    assert_eq!(ids.uuid().await.expect("uuid").get_version_num(), 4);
    assert_eq!(ids.uuid7().await.expect("uuid7").get_version_num(), 7);
}

/// Waits until `duration` has passed since `start`, a few milliseconds at a time.
async fn wait_until_elapsed(start: Instant, duration: Duration) {
    while start.elapsed() <= duration {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn ids_older_than_max_age_are_dropped_not_served() {
    let server = TestServer::start();
    let config = BufferConfig::default().with_max_age(Some(Duration::from_millis(50)));
    let ids = buffered(&server, config);

    let first = ids.snowflake().await.expect("first snowflake");
    let taken_at = Instant::now();
    wait_until_elapsed(taken_at, Duration::from_millis(60)).await;
    let second = ids.snowflake().await.expect("second snowflake");
    // The first batch (999 IDs left) was dropped: the second ID is from a newer batch.
    let (first_ms, second_ms) = (snowflake_ms(first), snowflake_ms(second));
    assert!(second_ms >= first_ms + 40, "second ID is {} ms newer", second_ms - first_ms);
}

#[tokio::test]
async fn without_max_age_the_same_batch_keeps_serving() {
    let server = TestServer::start();
    let ids = buffered(&server, BufferConfig::default().with_max_age(None));

    let first = ids.snowflake().await.expect("first snowflake");
    let taken_at = Instant::now();
    wait_until_elapsed(taken_at, Duration::from_millis(60)).await;
    let second = ids.snowflake().await.expect("second snowflake");
    let (first_ms, second_ms) = (snowflake_ms(first), snowflake_ms(second));
    assert!(second > first);
    assert!(second_ms < first_ms + 40, "second ID is {} ms newer", second_ms - first_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_get_errors_not_hangs_when_the_server_dies() {
    let server = TestServer::start();
    let ids = BufferedClient::new(
        Client::builder(&server.url).timeout(Duration::from_secs(5)).build().expect("valid URL"),
        BufferConfig::default().with_batch_size(50),
    );
    let first = ids.snowflake().await.expect("snowflake while the server runs");
    drop(server); // kills the process and waits for it

    let handles: Vec<_> = (0..16)
        .map(|_| {
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut served = Vec::new();
                loop {
                    match ids.snowflake().await {
                        Ok(id) => served.push(id),
                        Err(error) => return (served, error),
                    }
                }
            })
        })
        .collect();
    let mut served_after_kill = vec![first];
    for handle in handles {
        let (served, error) = tokio::time::timeout(CALL_DEADLINE, handle)
            .await
            .expect("every caller gets an answer before the deadline")
            .expect("task did not panic");
        assert!(matches!(error, Error::Transport { .. }), "{error:?}");
        assert!(error.to_string().contains("cannot reach"), "{error}");
        served_after_kill.extend(served);
    }
    // Only what was buffered when the server died: 49 after the first call, no refill.
    assert!(served_after_kill.len() <= 50, "{} ids", served_after_kill.len());
    let distinct: HashSet<u64> = served_after_kill.iter().copied().collect();
    assert_eq!(distinct.len(), served_after_kill.len(), "duplicates");

    // And later calls fail again rather than wait.
    let again = tokio::time::timeout(CALL_DEADLINE, ids.counter("after")).await;
    assert!(matches!(again, Ok(Err(Error::Transport { .. }))), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refill_reaches_every_waiting_caller() {
    let server = TestServer::start();
    // Above the server's IDGEN_MAX_BATCH (10 000): every refill is refused with 400.
    let ids = buffered(&server, BufferConfig::default().with_batch_size(20_000));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let ids = ids.clone();
            tokio::spawn(async move { ids.uuid7().await })
        })
        .collect();
    for handle in handles {
        let result = tokio::time::timeout(CALL_DEADLINE, handle)
            .await
            .expect("answered before the deadline")
            .expect("task did not panic");
        let error = result.expect_err("the refill is refused");
        assert_eq!((error.status(), error.code()), (Some(400), Some(ErrorCode::InvalidCount)));
    }

    // A name the server refuses is not buffered, and its error is the server's.
    let ids = buffered(&server, BufferConfig::default());
    let error = ids.counter("no spaces allowed").await.expect_err("invalid name");
    assert_eq!(error.code(), Some(ErrorCode::InvalidCounterName));
}

#[tokio::test]
async fn a_dead_server_fails_the_first_call() {
    let ids = BufferedClient::new(client(&dead_url()), BufferConfig::default());
    let result = tokio::time::timeout(CALL_DEADLINE, ids.ulid()).await;
    assert!(matches!(result, Ok(Err(Error::Transport { .. }))), "{result:?}");
}

#[tokio::test]
async fn counters_random_options_and_typeid_prefixes_have_pools_of_their_own() {
    let server = TestServer::start();
    let ids = buffered(&server, BufferConfig::default().with_batch_size(100));
    let plain = client(&server.url);

    let mut apples = Vec::new();
    let mut pears = Vec::new();
    for _ in 0..150 {
        apples.push(ids.counter("apples").await.expect("apples"));
        pears.push(ids.counter("pears").await.expect("pears"));
    }
    // Each counter starts at 1 and runs on without the other's values in between.
    assert_eq!(apples, (1..=150).collect::<Vec<u64>>());
    assert_eq!(pears, (1..=150).collect::<Vec<u64>>());
    // The pools reserved whole batches: the server has moved past them.
    assert!(plain.counter("apples").await.expect("plain apples") > 150);

    let hex = RandomOptions::new(Length::new(8).expect("in range"), Alphabet::Hex);
    let base58 = RandomOptions::new(Length::new(32).expect("in range"), Alphabet::Base58);
    let mut tokens = HashSet::new();
    for _ in 0..150 {
        let short = ids.random(hex).await.expect("hex");
        assert!(short.len() == 8 && short.bytes().all(|byte| byte.is_ascii_hexdigit()), "{short}");
        assert!(!short.bytes().any(|byte| byte.is_ascii_uppercase()), "{short}");
        let long = ids.random(base58).await.expect("base58");
        assert!(long.len() == 32 && !long.contains(['0', 'O', 'I', 'l']), "{long}");
        let default = ids.random(RandomOptions::default()).await.expect("default");
        assert_eq!(default.len(), 21, "{default}");
        tokens.extend([short, long, default]);
    }
    assert_eq!(tokens.len(), 450, "duplicates");
    // A custom alphabet has its own pool, one per set of characters.
    let custom = |chars| {
        RandomOptions::new(
            Length::new(24).expect("in range"),
            Alphabet::custom(chars).expect("valid"),
        )
    };
    for _ in 0..150 {
        let ab = ids.random(custom("ab")).await.expect("ab");
        let xyz = ids.random(custom("xyz")).await.expect("xyz");
        assert!(
            ab.chars().all(|c| "ab".contains(c)) && xyz.chars().all(|c| "xyz".contains(c)),
            "{ab} {xyz}"
        );
    }

    // TypeIDs: a pool per prefix, each strictly increasing across refills.
    let (mut users, mut orders) = (Vec::new(), Vec::new());
    for _ in 0..250 {
        users.push(ids.typeid("user").await.expect("user typeid"));
        orders.push(ids.typeid("order").await.expect("order typeid"));
    }
    assert_strictly_increasing(&users, "user typeids");
    assert_strictly_increasing(&orders, "order typeids");
    assert!(users.iter().all(|id| id.prefix().as_str() == "user"));
    assert!(orders.iter().all(|id| id.to_string().starts_with("order_")));
    // A bad prefix is the server's 400, not a pool.
    match ids.typeid("Bad").await {
        Err(idgen_client::Error::Api { status: 400, code, .. }) => {
            assert_eq!(code, idgen_client::ErrorCode::InvalidPrefix);
        }
        other => panic!("expected 400 invalid_prefix, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_wait_out_a_rate_limit_instead_of_failing() {
    let server =
        TestServer::start_with_flags(&["--rate-limit-per-second", "2", "--rate-limit-burst", "2"]);
    // One ID per refill: each call is one request to the limited route.
    let ids = buffered(&server, BufferConfig::default().with_batch_size(1));
    let started = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut taken = Vec::new();
                for _ in 0..4 {
                    taken.push(ids.snowflake().await.expect("no error: refills wait out 429s"));
                }
                taken
            })
        })
        .collect();
    let mut all = HashSet::new();
    for handle in handles {
        let taken = tokio::time::timeout(CALL_DEADLINE, handle)
            .await
            .expect("answered before the deadline")
            .expect("task did not panic");
        assert_strictly_increasing(&taken, "one task's snowflakes");
        all.extend(taken);
    }
    assert_eq!(all.len(), 12, "duplicates");
    // 2 at once, then 2 a second: 10 more take 5 s. A batch that waited out a 429 is not
    // older than `max_age` (1 s): dropping it would halve the rate.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(4500), "too fast for the limit: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(9), "waited too long: {elapsed:?}");
}

/// A thousand callers at once against a node limited to 2 requests a second: none gets an
/// error, none an ID another got; they wait while the refills wait out the 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_under_a_two_per_second_limit_get_no_error() {
    let server =
        TestServer::start_with_flags(&["--rate-limit-per-second", "2", "--rate-limit-burst", "2"]);
    // 100 IDs per refill: the thousand need ten requests, eight of them past the burst.
    let ids = buffered(&server, BufferConfig::default().with_batch_size(100));
    let started = Instant::now();
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            let ids = ids.clone();
            tokio::spawn(async move { ids.snowflake().await })
        })
        .collect();
    let mut all = HashSet::new();
    let mut errors = Vec::new();
    for handle in handles {
        let answer = tokio::time::timeout(CALL_DEADLINE, handle)
            .await
            .expect("answered before the deadline")
            .expect("task did not panic");
        match answer {
            Ok(id) => {
                all.insert(id);
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    assert!(errors.is_empty(), "{} callers got errors, e.g. {:?}", errors.len(), errors.first());
    assert_eq!(all.len(), 1000, "every caller a different ID");
    // Ten requests at 2 a second after a burst of 2: about 4 s.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(3500), "too fast for the limit: {elapsed:?}");
}
