//! API keys in Redis mode: a key's rate and daily quota are shared by every node, so three
//! nodes let about the key's limit through, not three times it.

use std::time::Instant;

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::auth::new_key;
use crate::helpers::{Options, TestApp, assert_error, header};
use crate::redis_harness::RedisServer;
use crate::redis_mode::node;

/// A keys file with one key, `svc`, with `limits` (TOML lines): (its dir, its path, the secret).
fn keys_file(limits: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let (secret, entry) = new_key("svc", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, format!("{entry}\n{limits}\n")).unwrap();
    (dir, file, secret)
}

fn three_keyed_nodes(redis: &RedisServer, file: &std::path::Path) -> [TestApp; 3] {
    let keyed = || Options::new().env("IDGEN_API_KEYS_FILE", file.display());
    [node(redis, keyed()), node(redis, keyed()), node(redis, keyed())]
}

async fn ask(app: &TestApp, secret: &str, count: u32) -> reqwest::Response {
    let url = app.ids_url("uuid7", &[("count", &count.to_string())]);
    app.client.get(url).bearer_auth(secret).send().await.expect("send")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keys_rate_is_shared_by_three_nodes() {
    let Some(redis) = RedisServer::start("a_keys_rate_is_shared_by_three_nodes") else { return };
    let (_dir, file, secret) = keys_file("rate_per_second = 2\nburst = 20");
    let nodes = three_keyed_nodes(&redis, &file);
    let started = Instant::now();
    let (mut passed, mut refused) = (0u64, None);
    // 60 IDs asked in batches of 2 round the nodes: three times the burst.
    for attempt in 0..30 {
        let response = ask(&nodes[attempt % 3], &secret, 2).await;
        match response.status() {
            StatusCode::OK => passed += 2,
            StatusCode::TOO_MANY_REQUESTS => refused = Some(response),
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    let refilled = 2 * (started.elapsed().as_secs() + 1);
    eprintln!("shared per-key rate: {passed} of 60 IDs passed (burst 20)");
    assert!(passed >= 20, "only {passed} IDs of a burst of 20 passed");
    assert!(passed <= 20 + refilled + 2, "{passed} passed: the key's rate is per node, not shared");
    let refused = refused.expect("some requests were limited");
    assert_eq!(header(&refused, "ratelimit-limit").as_deref(), Some("20"));
    assert!(header(&refused, "retry-after").is_some());
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keys_daily_quota_is_shared_by_three_nodes_and_never_exceeded() {
    let Some(redis) = RedisServer::start("a_keys_daily_quota_is_shared_by_three_nodes") else {
        return;
    };
    let (_dir, file, secret) = keys_file("daily_quota = 1200");
    let nodes = three_keyed_nodes(&redis, &file);
    let mut passed = 0u64;
    // 1,800 IDs asked, 3 at a time, one node after the other. A node reserves slices of 12 (a
    // hundredth of the quota) and serves its next requests from them; every node keeps being
    // asked, so what a node reserved ahead is spent too.
    for attempt in 0..600 {
        let response = ask(&nodes[attempt % 3], &secret, 3).await;
        match response.status() {
            StatusCode::OK => passed += 3,
            StatusCode::TOO_MANY_REQUESTS => {
                let message =
                    assert_error(response, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited)
                        .await;
                assert!(message.contains("daily quota of 1200"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(passed, 1200, "the quota is shared: 1,200 IDs in all, on any node");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keys_cap_on_new_counter_names_holds_in_redis_mode_and_a_failed_creation_takes_none() {
    let Some(redis) = RedisServer::start(
        "a_keys_cap_on_new_counter_names_holds_in_redis_mode_and_a_failed_creation_takes_none",
    ) else {
        return;
    };
    let (_dir, file, secret) = keys_file("max_new_counters = 2");
    for block in [1, 100] {
        let app = node(
            &redis,
            Options::new()
                .env("IDGEN_API_KEYS_FILE", file.display())
                .flag("--counter-block", block),
        );
        let counter = |name: &str| {
            let url = app.ids_url("counter", &[("name", name)]);
            app.client.get(url).bearer_auth(&secret).send()
        };
        // A creation that fails (Redis down) takes none of the two.
        redis.pause();
        let failed = counter("a").await.expect("send");
        assert_error(failed, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).await;
        redis.resume();
        for name in ["a", "b", "a", "b"] {
            assert_eq!(
                counter(name).await.unwrap().status(),
                StatusCode::OK,
                "block {block} {name}"
            );
        }
        let refused = counter("c").await.expect("send");
        let message = assert_error(refused, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
        assert!(message.contains("create more counter names"), "{message}");
    }
}
