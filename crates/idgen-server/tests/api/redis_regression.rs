//! A Redis that forgets what it acknowledged (flushed, restarted empty) makes every node refuse
//! with `store_regressed` rather than hand out a value again, until `idgen-server recover` runs;
//! a Redis that would evict keys is refused at start; start-up errors name their real cause;
//! timestamp ids are unique across nodes.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, assert_error, http_client, numeric, run_to_exit};
use crate::redis_harness::RedisServer;
use crate::redis_mode::{node, wait_until};

/// Three nodes with a short lease, so that `recover` waits little.
fn nodes(redis: &RedisServer) -> Vec<TestApp> {
    (0..3).map(|_| node(redis, Options::new().flag("--lease-ttl-ms", 1000))).collect()
}

/// Every value of counter `orders` the nodes answer, `rounds` batches of 50 per node.
async fn take_orders(nodes: &[TestApp], rounds: usize) -> Vec<u64> {
    let mut values = Vec::new();
    for _ in 0..rounds {
        for node in nodes {
            values.extend(numeric(&node.ids("counter", 50, &[("name", "orders")]).await));
        }
    }
    values
}

/// Runs `idgen-server recover` with every node's data dir; returns its stdout.
fn recover(redis: &RedisServer, nodes: &[TestApp]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgen-server"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(&name);
        }
    }
    command.args(["recover", "--redis-url", &redis.url(), "--lease-ttl-ms", "1000"]);
    for node in nodes {
        command.arg("--node-data-dir").arg(node.data_dir.as_ref().expect("a data dir"));
    }
    let output = command.stdin(Stdio::null()).output().expect("run idgen-server recover");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "recover failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Until each node refuses counters with `store_regressed` and `/readyz` says why.
async fn assert_every_node_refuses(nodes: &[TestApp]) {
    for node in nodes {
        let response = node.get_ids("counter", &[("name", "orders")]).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::StoreRegressed).await;
        let ready = node.get("/readyz").await;
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = ready.json().await.expect("readyz JSON");
        let reasons = body["reasons"].to_string();
        assert!(reasons.contains("store_regressed"), "{reasons}");
        // uuid needs no store.
        assert_eq!(node.get_ids("uuid", &[]).await.status(), StatusCode::OK);
    }
}

/// After `recover`: every node issues again, above everything issued before the loss.
async fn assert_resumed_above(nodes: &[TestApp], before: &[u64]) {
    for node in nodes {
        wait_until("a node adopts the recovered store", Duration::from_secs(10), || async {
            node.get_ids("counter", &[("name", "orders")]).await.status() == StatusCode::OK
        })
        .await;
    }
    let after = take_orders(nodes, 3).await;
    let highest = before.iter().copied().max().unwrap_or(0);
    assert!(
        after.iter().all(|value| *value > highest),
        "a value at or below {highest} after recover"
    );
    let all: HashSet<u64> = before.iter().chain(&after).copied().collect();
    assert_eq!(all.len(), before.len() + after.len(), "repeated values");
}

#[tokio::test(flavor = "multi_thread")]
async fn flushall_makes_every_node_refuse_until_recovered() {
    let Some(redis) = RedisServer::start("flushall_makes_every_node_refuse_until_recovered") else {
        return;
    };
    let nodes = nodes(&redis);
    let mut issued = take_orders(&nodes, 17).await;
    assert!(issued.len() >= 2_500);
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");
    assert_every_node_refuses(&nodes).await;
    // Many refused requests, one error line per node for the incident.
    for _ in 0..20 {
        let _ = nodes[0].get_ids("counter", &[("name", "orders")]).await;
    }
    let incidents = nodes[0].stderr().matches("store went back in time").count();
    assert_eq!(incidents, 1, "{}", nodes[0].stderr());
    let summary = recover(&redis, &nodes);
    assert!(summary.starts_with("recover: "), "{summary}");
    assert_resumed_above(&nodes, &issued).await;
    issued.clear();
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_empty_is_detected_and_a_restarting_node_refuses_to_start() {
    let Some(mut redis) = RedisServer::start("redis_restarted_empty_is_detected") else {
        return;
    };
    let nodes = nodes(&redis);
    let issued = take_orders(&nodes, 5).await;
    redis.restart_empty();
    wait_until("a node notices the empty store", Duration::from_secs(10), || async {
        nodes[1].get_ids("counter", &[("name", "orders")]).await.status()
            == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert_every_node_refuses(&nodes).await;
    // A node restarting on its data dir remembers the store and refuses to start.
    let data_dir = nodes[2].data_dir.clone().expect("a data dir");
    let exited = run_to_exit(Options::new().data_dir(&data_dir).flag("--redis-url", redis.url()));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("no identity any more") && exited.stderr.contains("recover"),
        "{}",
        exited.stderr
    );
    recover(&redis, &nodes);
    assert_resumed_above(&nodes, &issued).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_evicts_keys_is_refused_at_start() {
    let Some(redis) = RedisServer::start_with(
        "a_redis_that_evicts_keys_is_refused_at_start",
        &["--maxmemory-policy", "allkeys-lru"],
    ) else {
        return;
    };
    let exited = run_to_exit(Options::new().flag("--redis-url", redis.url()));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("maxmemory-policy allkeys-lru"), "{}", exited.stderr);
    assert_eq!(
        exited.stderr.trim().lines().filter(|line| line.starts_with("idgen-server:")).count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_up_errors_name_the_real_cause() {
    let Some(redis) = RedisServer::start("start_up_errors_name_the_real_cause") else {
        return;
    };
    // A password set after start (the harness checks a new server without one).
    assert_eq!(redis.cli(&["CONFIG", "SET", "requirepass", "s3cret-pw"]).trim(), "OK");
    let wrong = format!("redis://:not-it@127.0.0.1:{}", redis.port);
    let exited = run_to_exit(Options::new().flag("--redis-url", &wrong));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("authentication failed"), "{}", exited.stderr);
    assert!(!exited.stderr.contains("not-it"), "the password never shows: {}", exited.stderr);
    // Waiting for a replica that is not there.
    let right = format!("redis://:s3cret-pw@127.0.0.1:{}", redis.port);
    let exited =
        run_to_exit(Options::new().flag("--redis-url", &right).flag("--redis-wait-replicas", 1));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("invalid IDGEN_REDIS_WAIT_REPLICAS")
            && exited.stderr.contains("0 of the 1 replicas"),
        "{}",
        exited.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamp_ids_are_unique_across_nodes() {
    let Some(redis) = RedisServer::start("timestamp_ids_are_unique_across_nodes") else {
        return;
    };
    let nodes = nodes(&redis);
    let mut tasks = Vec::new();
    for client in 0..6 {
        let url = nodes[client % 3].ids_url("timestamp", &[("count", "100")]);
        tasks.push(tokio::spawn(async move {
            let http = http_client();
            let mut values = Vec::new();
            for _ in 0..40 {
                let response = http.get(&url).send().await.expect("GET timestamps");
                assert_eq!(response.status(), StatusCode::OK);
                let body: idgen_core::wire::IdsResponse = response.json().await.expect("ids");
                let batch = numeric(&body.ids);
                for pair in batch.windows(2) {
                    assert_eq!(pair[0] + 1, pair[1], "a batch is consecutive milliseconds");
                }
                values.extend(batch);
            }
            values
        }));
    }
    let mut all = HashSet::new();
    let mut total = 0;
    for task in tasks {
        let values = task.await.expect("client");
        total += values.len();
        all.extend(values);
    }
    assert_eq!(all.len(), total, "timestamp ids repeated across nodes");
    assert_eq!(total, 6 * 40 * 100);
}
