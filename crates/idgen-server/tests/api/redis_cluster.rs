//! Redis Cluster (three masters started by the test): counters, worker-id leases and the shared
//! rate limit work across slots (hash tags keep each script on one slot).

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, assert_strictly_increasing, numeric, spawn_app};
use crate::redis_harness::RedisCluster;
use crate::redis_mode::{status, try_ids, worker_of};

fn cluster_node(cluster: &RedisCluster, options: Options) -> TestApp {
    spawn_app(options.flag("--redis-url", cluster.url()).flag("--redis-cluster", "true"))
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cluster_serves_counters_leases_and_the_rate_limit() {
    let Some(cluster) =
        RedisCluster::start("redis_cluster_serves_counters_leases_and_the_rate_limit")
    else {
        return;
    };
    let options = || {
        Options::new()
            .flag("--rate-limit-per-second", 1)
            .flag("--rate-limit-burst", 1000)
            .flag("--counter-block", 1)
    };
    let nodes = [
        cluster_node(&cluster, options()),
        cluster_node(&cluster, options()),
        cluster_node(&cluster, options().flag("--counter-block", 50)),
    ];
    let workers: HashSet<u16> = nodes.iter().map(|node| node.worker_id).collect();
    assert_eq!(workers.len(), 3, "distinct worker ids on the cluster: {workers:?}");
    for node in &nodes {
        assert_eq!(status(node, "/readyz").await, StatusCode::OK);
    }

    // Counters with names on different slots, snowflakes from every node: no duplicates.
    let mut counters = HashSet::new();
    let mut snowflakes = HashSet::new();
    let mut last_strict = 0u64;
    for round in 0..60 {
        let node = &nodes[round % 3];
        for name in ["orders", "invoices", "users"] {
            let batch = node.ids("counter", 10, &[("name", name)]).await;
            assert_strictly_increasing("counter", &batch);
            for value in numeric(&batch) {
                assert!(counters.insert((name, value)), "{name} {value} issued twice");
            }
        }
        // The strict counter `default` on the two strict nodes: globally increasing.
        if round % 3 != 2 {
            let value: u64 = node.id("counter", &[]).await.parse().unwrap();
            assert!(value > last_strict, "{value} after {last_strict}");
            last_strict = value;
        }
        let ids = try_ids(node, "snowflake", 100).await.expect("snowflakes on the cluster");
        for id in numeric(&ids) {
            assert_eq!(worker_of(id), node.worker_id);
            assert!(snowflakes.insert(id), "{id} issued twice");
        }
    }
    eprintln!(
        "cluster: {} counter values and {} snowflakes, 0 duplicates",
        counters.len(),
        snowflakes.len()
    );

    // The shared limit holds across the cluster: 1000 burst minus what was spent above, then
    // 429 on every node.
    let mut limited = 0;
    for attempt in 0..1300 {
        let response = nodes[attempt % 3].get_ids("uuid", &[]).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 300, "only {limited} of 1300 requests were limited with a burst of 1000");
}
