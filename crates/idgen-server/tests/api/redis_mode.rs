//! Redis mode: several nodes on one `redis-server` started by the test (see `redis_harness`).
//! Every test skips with a notice when redis-server is missing (fails under
//! `IDGEN_REQUIRE_REDIS=1`), and every wait is a condition with a deadline.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{
    Options, TestApp, assert_error, assert_strictly_increasing, header, http_client, numeric,
    run_to_exit, spawn_app,
};
use crate::redis_harness::RedisServer;

/// Waits until `condition` holds, polling every 20 ms; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node on `redis` with extra options.
pub fn node(redis: &RedisServer, options: Options) -> TestApp {
    spawn_app(options.flag("--redis-url", redis.url()))
}

/// The worker id inside a snowflake.
pub fn worker_of(snowflake: u64) -> u16 {
    ((snowflake >> 12) & 0x3ff) as u16
}

/// `GET path` status.
pub async fn status(app: &TestApp, path: &str) -> StatusCode {
    match app.client.get(app.url(path)).send().await {
        Ok(response) => response.status(),
        Err(error) => panic!("GET {path}: {error}"),
    }
}

/// A batch of `count` ids of `kind` from `app`, or `None` on a 503 (which must carry JSON and
/// `Retry-After`).
pub async fn try_ids(app: &TestApp, kind: &str, count: usize) -> Option<Vec<String>> {
    let response = app.get_ids(kind, &[("count", &count.to_string())]).await;
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        let retry_after = header(&response, "retry-after");
        assert!(
            retry_after.as_deref().and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v >= 1),
            "{kind}: 503 without a Retry-After of at least 1 s"
        );
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).await;
        return None;
    }
    let body: idgen_core::wire::IdsResponse = crate::helpers::json_ok(response).await;
    assert_eq!(body.ids.len(), count);
    Some(body.ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_share_one_redis_without_duplicates() {
    let Some(redis) = RedisServer::start("three_nodes_share_one_redis_without_duplicates") else {
        return;
    };
    let nodes =
        [node(&redis, Options::new()), node(&redis, Options::new()), node(&redis, Options::new())];
    let workers: HashSet<u16> = nodes.iter().map(|node| node.worker_id).collect();
    assert_eq!(workers.len(), 3, "worker ids {:?} must be distinct", workers);

    // 12 concurrent clients, each cycling over the three nodes.
    const CLIENTS: usize = 12;
    const ROUNDS: usize = 12;
    const SNOWFLAKES: usize = 200;
    const COUNTERS: usize = 50;
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let targets: Vec<(String, String, u16)> = nodes
            .iter()
            .map(|node| {
                (
                    node.ids_url("snowflake", &[("count", &SNOWFLAKES.to_string())]),
                    node.ids_url("counter", &[("count", &COUNTERS.to_string())]),
                    node.worker_id,
                )
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let client = http_client();
            let mut snowflakes = Vec::new();
            let mut counters = Vec::new();
            for round in 0..ROUNDS {
                let (snowflake_url, counter_url, worker_id) = &targets[(client_index + round) % 3];
                for (url, out) in [(snowflake_url, &mut snowflakes), (counter_url, &mut counters)] {
                    let response = client.get(url).send().await.expect("GET ids");
                    let status = response.status();
                    let text = response.text().await.expect("body");
                    assert_eq!(status, StatusCode::OK, "{url}: {text}");
                    let body: idgen_core::wire::IdsResponse =
                        serde_json::from_str(&text).expect("ids body");
                    out.push((body.ids, *worker_id));
                }
            }
            (snowflakes, counters)
        }));
    }
    let (snowflakes, counters, duplicates) = tally(tasks).await;
    let total = snowflakes.len() + counters.len();
    eprintln!(
        "three nodes: {} snowflakes and {} counter values, {duplicates} duplicates",
        snowflakes.len(),
        counters.len()
    );
    assert_eq!(duplicates, 0);
    assert_eq!(snowflakes.len(), CLIENTS * ROUNDS * SNOWFLAKES);
    assert_eq!(counters.len(), CLIENTS * ROUNDS * COUNTERS);
    assert!(total >= 30_000);

    // Strict counters are globally ordered: one client going round the nodes always gets a
    // larger value than the last one, whichever node answers.
    let mut last = 0u64;
    for round in 0..300 {
        let node = &nodes[round % 3];
        let value: u64 = node.id("counter", &[]).await.parse().expect("counter value");
        assert!(value > last, "node {round}: {value} after {last}");
        last = value;
    }
}

/// What the clients of `three_nodes_share_one_redis_without_duplicates` got: every snowflake and
/// counter value, and how many of them were already there. Checks each batch on the way.
async fn tally(
    tasks: Vec<tokio::task::JoinHandle<(IdBatches, IdBatches)>>,
) -> (HashSet<u64>, HashSet<u64>, usize) {
    let mut snowflakes = HashSet::new();
    let mut counters = HashSet::new();
    let mut duplicates = 0usize;
    for task in tasks {
        let (snowflake_batches, counter_batches) = task.await.expect("client task");
        for (batch, worker_id) in snowflake_batches {
            assert_strictly_increasing("snowflake", &batch);
            for id in numeric(&batch) {
                assert_eq!(worker_of(id), worker_id, "snowflake {id} carries another worker id");
                duplicates += usize::from(!snowflakes.insert(id));
            }
        }
        for (batch, _) in counter_batches {
            let values = numeric(&batch);
            // Strict mode: one INCRBY per batch, so a batch is contiguous.
            for pair in values.windows(2) {
                assert_eq!(pair[0] + 1, pair[1], "a strict counter batch is contiguous");
            }
            for value in values {
                duplicates += usize::from(!counters.insert(value));
            }
        }
    }
    (snowflakes, counters, duplicates)
}

/// Batches of IDs, each with the worker id of the node that answered.
type IdBatches = Vec<(Vec<String>, u16)>;

#[tokio::test(flavor = "multi_thread")]
async fn segment_counters_are_unique_across_nodes_and_restarts() {
    let Some(redis) = RedisServer::start("segment_counters_are_unique_across_nodes_and_restarts")
    else {
        return;
    };
    let options = || Options::new().flag("--counter-block", 100);
    let mut nodes = vec![node(&redis, options()), node(&redis, options()), node(&redis, options())];
    let mut seen = HashSet::new();
    let pull = async |nodes: &[TestApp], seen: &mut HashSet<u64>| {
        for round in 0..60 {
            let node = &nodes[round % nodes.len()];
            let batch = node.ids("counter", 1 + round % 70, &[("name", "orders")]).await;
            assert_strictly_increasing("counter", &batch);
            for value in numeric(&batch) {
                assert!(seen.insert(value), "counter value {value} issued twice");
            }
        }
    };
    pull(&nodes, &mut seen).await;
    // kill -9 one node (its buffered values are lost: gaps, never repeats) and start another.
    nodes.remove(0).kill();
    nodes.push(node(&redis, options()));
    pull(&nodes, &mut seen).await;
    eprintln!("segment mode: {} counter values, 0 duplicates", seen.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_counters_never_go_below_the_seed() {
    let Some(redis) = RedisServer::start("seeded_counters_never_go_below_the_seed") else {
        return;
    };
    let app = node(&redis, Options::new().flag("--seed-counters", "default=5000,orders=70"));
    let value: u64 = app.id("counter", &[]).await.parse().unwrap();
    assert_eq!(value, 5001);
    let orders: u64 = app.id("counter", &[("name", "orders")]).await.parse().unwrap();
    assert_eq!(orders, 71);
    drop(app);
    // A lower seed never lowers a counter.
    let app = node(&redis, Options::new().env("IDGEN_SEED_COUNTERS", "default=10"));
    let value: u64 = app.id("counter", &[]).await.parse().unwrap();
    assert_eq!(value, 5002);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_mid_traffic_and_restarted_repeats_nothing() {
    let Some(mut redis) =
        RedisServer::start("redis_killed_mid_traffic_and_restarted_repeats_nothing")
    else {
        return;
    };
    // A segment node (absorbs the outage from its buffer) and a strict one (answers 503).
    let buffered = node(&redis, Options::new().flag("--counter-block", 1000));
    let strict = node(&redis, Options::new());
    let mut counters = HashSet::new();
    let mut snowflakes = HashSet::new();
    let record = |ids: Vec<String>, seen: &mut HashSet<u64>| {
        for id in numeric(&ids) {
            assert!(seen.insert(id), "{id} issued twice");
        }
    };
    for app in [&buffered, &strict] {
        for _ in 0..5 {
            record(try_ids(app, "counter", 100).await.expect("counter"), &mut counters);
            record(try_ids(app, "snowflake", 100).await.expect("snowflake"), &mut snowflakes);
        }
    }

    redis.kill();
    for app in [&buffered, &strict] {
        wait_until("/readyz goes 503 without Redis", Duration::from_secs(10), || async {
            status(app, "/readyz").await == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
        assert_eq!(app.get_ids("uuid", &[]).await.status(), StatusCode::OK, "uuid without Redis");
        if let Some(ids) = try_ids(app, "counter", 10).await {
            record(ids, &mut counters);
        }
        if let Some(ids) = try_ids(app, "snowflake", 10).await {
            record(ids, &mut snowflakes);
        }
    }
    // The segment node serves from its buffer; the strict one cannot.
    assert!(try_ids(&buffered, "counter", 10).await.is_some(), "the buffer absorbs an outage");
    assert!(try_ids(&strict, "counter", 1).await.is_none(), "strict counters need Redis");

    redis.restart();
    for app in [&buffered, &strict] {
        wait_until("/readyz back to 200 by itself", Duration::from_secs(30), || async {
            status(app, "/readyz").await == StatusCode::OK
        })
        .await;
        for _ in 0..5 {
            record(try_ids(app, "counter", 100).await.expect("counter after"), &mut counters);
            record(try_ids(app, "snowflake", 100).await.expect("snowflake after"), &mut snowflakes);
        }
    }
    eprintln!(
        "outage: {} counter values and {} snowflakes, 0 duplicates",
        counters.len(),
        snowflakes.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_cut_off_from_redis_stops_snowflakes_before_its_lease_expires() {
    let Some(redis) =
        RedisServer::start("a_node_cut_off_from_redis_stops_snowflakes_before_its_lease_expires")
    else {
        return;
    };
    const TTL_MS: u64 = 2000;
    let app = node(&redis, Options::new().flag("--lease-ttl-ms", TTL_MS));
    let worker_id = app.worker_id;
    let mut seen = HashSet::new();
    for id in numeric(&try_ids(&app, "snowflake", 500).await.unwrap()) {
        seen.insert(id);
    }
    // Cut off: Redis stops answering (its key expiry is frozen too, but the node cannot know).
    redis.pause();
    let cut = Instant::now();
    loop {
        // What counts is when the request was sent: the node checks its lease on arrival, and
        // a slow machine may take a while to answer.
        let sent = cut.elapsed();
        match try_ids(&app, "snowflake", 10).await {
            Some(ids) => {
                for id in numeric(&ids) {
                    assert!(seen.insert(id), "{id} issued twice");
                }
            }
            None => break,
        }
        assert!(
            sent < Duration::from_millis(TTL_MS),
            "still issuing snowflakes {sent:?} after the cut, with a {TTL_MS} ms lease"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status(&app, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    redis.resume();
    wait_until("the node leases a worker id again", Duration::from_secs(20), || async {
        status(&app, "/readyz").await == StatusCode::OK
    })
    .await;
    let after = numeric(&try_ids(&app, "snowflake", 500).await.expect("snowflakes again"));
    for id in after {
        assert!(seen.insert(id), "{id} issued twice");
        assert_eq!(worker_of(id), worker_id, "the free id is taken again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_taken_by_another_node_fences_the_old_holder() {
    let Some(redis) = RedisServer::start("a_lease_taken_by_another_node_fences_the_old_holder")
    else {
        return;
    };
    // A long TTL: the first node will not notice the loss for a few seconds.
    let first = node(&redis, Options::new().flag("--lease-ttl-ms", 6000));
    let worker_id = first.worker_id;
    let mut seen = HashSet::new();
    for id in numeric(&try_ids(&first, "snowflake", 1000).await.unwrap()) {
        seen.insert(id);
    }
    // The lease key vanishes (an operator, a failover): another node takes the id at once. If
    // the first node happens to renew in between, it takes its free id back and the second
    // cannot start; then try again.
    let lease_key = format!("idgen:{{worker-{worker_id}}}:lease");
    let mut second = None;
    for _ in 0..5 {
        redis.cli(&["DEL", &lease_key]);
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node(&redis, Options::new().flag("--worker-id", worker_id))
        }));
        if let Ok(app) = started {
            second = Some(app);
            break;
        }
    }
    let second = second.expect("a second node takes the deleted lease");
    assert_eq!(second.worker_id, worker_id);
    // Both issue concurrently: the old holder only up to the mark it had reserved, the new one
    // above it; then the old one notices and moves to another id.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut moved = false;
    while !moved {
        assert!(Instant::now() < deadline, "the old holder never moved off worker {worker_id}");
        for app in [&first, &second] {
            if let Some(ids) = try_ids(app, "snowflake", 200).await {
                for id in numeric(&ids) {
                    assert!(seen.insert(id), "{id} issued twice");
                    if std::ptr::eq(app, &first) && worker_of(id) != worker_id {
                        moved = true;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("lease takeover: {} snowflakes, 0 duplicates", seen.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_worker_id_held_by_another_node_is_refused() {
    let Some(redis) = RedisServer::start("a_fixed_worker_id_held_by_another_node_is_refused")
    else {
        return;
    };
    let _first = node(&redis, Options::new().flag("--worker-id", 9));
    let exited =
        run_to_exit(Options::new().flag("--redis-url", redis.url()).flag("--worker-id", 9));
    assert!(!exited.status.success());
    let lines: Vec<&str> = exited.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", exited.stderr);
    assert!(lines[0].contains("worker id 9 is leased by another idgen node"), "{}", lines[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_releases_the_worker_id() {
    let Some(redis) = RedisServer::start("graceful_shutdown_releases_the_worker_id") else {
        return;
    };
    let mut first = node(&redis, Options::new().flag("--worker-id", 3));
    let before = numeric(&try_ids(&first, "snowflake", 100).await.unwrap());
    // Timestamp ids run ahead of the clock when asked for in bulk; the shared mark in Redis
    // keeps the next node above them.
    let timestamps = numeric(&try_ids(&first, "timestamp", 2000).await.unwrap());
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(15)).success());
    // Free at once (no waiting for the TTL), and the next holder starts above the last id.
    let second = node(&redis, Options::new().flag("--worker-id", 3));
    let after = numeric(&try_ids(&second, "snowflake", 100).await.unwrap());
    assert!(after[0] > *before.last().unwrap());
    let later = numeric(&try_ids(&second, "timestamp", 10).await.unwrap());
    assert!(later[0] > *timestamps.last().unwrap(), "a timestamp id repeated after a restart");
}

#[test]
fn unreachable_redis_exits_with_one_line_without_the_password() {
    let port = crate::redis_harness::free_port();
    let url = format!("redis://:s3cret-pw@127.0.0.1:{port}");
    let exited = run_to_exit(Options::new().env("IDGEN_REDIS_URL", &url));
    assert!(!exited.status.success());
    let lines: Vec<&str> = exited.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", exited.stderr);
    assert!(lines[0].contains("IDGEN_REDIS_URL") && lines[0].contains("cannot reach Redis"));
    assert!(!exited.stderr.contains("s3cret-pw"), "{}", exited.stderr);
    assert!(!exited.stdout.contains("listening"));

    // As a flag, the password is in every local user's process list: a warning comes first,
    // without the password either.
    let exited = run_to_exit(Options::new().flag("--redis-url", &url));
    let lines: Vec<&str> = exited.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "{}", exited.stderr);
    assert!(lines[0].contains("warning: --redis-url") && lines[0].contains("IDGEN_REDIS_URL_FILE"));
    assert!(lines[1].contains("cannot reach Redis"), "{}", lines[1]);
    assert!(!exited.stderr.contains("s3cret-pw"), "{}", exited.stderr);
}

#[test]
fn bad_redis_settings_are_refused() {
    for (options, name) in [
        // rediss:// is accepted (see redis_tls.rs), but redis-rs takes no fragment but #insecure.
        (Options::new().flag("--redis-url", "rediss://127.0.0.1:6380/#nocheck"), "--redis-url"),
        (Options::new().env("IDGEN_REDIS_URL", "http://x:secret@host"), "IDGEN_REDIS_URL"),
        (Options::new().env("IDGEN_COUNTER_BLOCK", "0"), "IDGEN_COUNTER_BLOCK"),
        (Options::new().flag("--lease-ttl-ms", "10"), "--lease-ttl-ms"),
        (Options::new().env("IDGEN_RATE_LIMIT_FAIL", "maybe"), "IDGEN_RATE_LIMIT_FAIL"),
        (Options::new().env("IDGEN_REDIS_PREFIX", "a{b}"), "IDGEN_REDIS_PREFIX"),
        (Options::new().flag("--seed-counters", "orders=5"), "--seed-counters"),
    ] {
        let what = format!("{options:?}");
        let exited = run_to_exit(options);
        assert_eq!(exited.status.code(), Some(2), "{what}: {}", exited.stderr);
        let lines: Vec<&str> = exited.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: {}", exited.stderr);
        assert!(lines[0].contains(name), "{what}: {}", lines[0]);
        assert!(!exited.stderr.contains("secret"), "{what}: {}", exited.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_replica_hands_out_only_replicated_values() {
    let test = "waiting_for_a_replica_hands_out_only_replicated_values";
    let Some(primary) = RedisServer::start(test) else {
        return;
    };
    let primary_port = primary.port.to_string();
    let Some(mut replica) =
        RedisServer::start_with(test, &["--replicaof", "127.0.0.1", &primary_port])
    else {
        return;
    };
    let linked = |replica: &RedisServer| {
        replica.cli(&["INFO", "replication"]).contains("master_link_status:up")
    };
    wait_until("the replica links up", Duration::from_secs(20), || async { linked(&replica) })
        .await;
    let app = node(&primary, Options::new().flag("--redis-wait-replicas", 1));
    let mut seen = HashSet::new();
    let mut last = 0;
    let take = async |app: &TestApp, seen: &mut HashSet<u64>| -> Option<u64> {
        let values = numeric(&try_ids(app, "counter", 20).await?);
        for value in &values {
            assert!(seen.insert(*value), "{value} issued twice");
        }
        values.last().copied()
    };
    for _ in 0..10 {
        let value = take(&app, &mut seen).await.expect("counters with the replica up");
        assert!(value > last);
        last = value;
    }
    // Without its replica, the primary still accepts writes, but they could be lost in a
    // failover: the node refuses to hand them out (503).
    replica.kill();
    assert_eq!(take(&app, &mut seen).await, None, "a value that no replica has");
    replica.restart();
    wait_until("the replica links up again", Duration::from_secs(20), || async {
        linked(&replica)
    })
    .await;
    wait_until("counters are served again", Duration::from_secs(20), || async {
        try_ids(&app, "counter", 1).await.is_some()
    })
    .await;
    for _ in 0..10 {
        let value = take(&app, &mut seen).await.expect("counters with the replica back");
        assert!(value > last);
        last = value;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_to_a_replica_that_acknowledged_loses_no_counter_value_or_lease() {
    let test = "failover_to_a_replica_that_acknowledged_loses_no_counter_value_or_lease";
    let Some(mut primary) = RedisServer::start(test) else {
        return;
    };
    let primary_port = primary.port.to_string();
    let Some(replica) = RedisServer::start_with(test, &["--replicaof", "127.0.0.1", &primary_port])
    else {
        return;
    };
    wait_until("the replica links up", Duration::from_secs(20), || async {
        replica.cli(&["INFO", "replication"]).contains("master_link_status:up")
    })
    .await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let options = || {
        Options::new()
            .data_dir(data_dir.path())
            .flag("--redis-wait-replicas", 1)
            .flag("--lease-ttl-ms", 1000)
            .flag("--worker-id", 12)
    };
    let app = node(&primary, options());
    let mut issued = Vec::new();
    for _ in 0..20 {
        issued.extend(numeric(&app.ids("counter", 25, &[]).await));
    }
    let snowflakes = numeric(&app.ids("snowflake", 1000, &[]).await);
    // The primary dies: nothing it acknowledged to the node is missing on the replica, which
    // is promoted; the node is pointed at it (same data dir: it remembers the store).
    primary.kill();
    drop(app);
    assert_eq!(replica.cli(&["REPLICAOF", "NO", "ONE"]).trim(), "OK");
    // The lease survived too: worker 12 stays taken until the dead node's lease runs out.
    let refused = run_to_exit(
        Options::new()
            .data_dir(data_dir.path())
            .flag("--worker-id", 12)
            .flag("--redis-url", replica.url()),
    );
    assert!(refused.stderr.contains("worker id 12 is leased"), "{}", refused.stderr);
    wait_until("the dead node's lease runs out", Duration::from_secs(10), || async {
        replica.cli(&["EXISTS", "idgen:{worker-12}:lease"]).trim() == "0"
    })
    .await;
    let moved = node(&replica, Options::new().data_dir(data_dir.path()).flag("--worker-id", 12));
    let after = numeric(&moved.ids("counter", 100, &[]).await);
    let highest = issued.iter().copied().max().unwrap();
    assert!(after.iter().all(|value| *value > highest), "{after:?} after {highest}");
    // The lease and mark of worker 12 were on the replica: the new run issues above them.
    let next = numeric(&moved.ids("snowflake", 10, &[]).await);
    assert!(next[0] > *snowflakes.last().unwrap(), "snowflakes went back after the failover");
    assert_eq!(status(&moved, "/readyz").await, StatusCode::OK);
}
