//! The shared rate limit of Redis mode: one bucket per client IP for the whole cluster, and
//! `IDGEN_RATE_LIMIT_FAIL` when Redis is gone.

use std::time::{Duration, Instant};

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{Options, assert_error, header};
use crate::redis_harness::RedisServer;
use crate::redis_mode::{node, status, wait_until};

const BURST: u64 = 12;

fn limited(fail: &str) -> Options {
    Options::new()
        .flag("--rate-limit-per-second", 1)
        .flag("--rate-limit-burst", BURST)
        .flag("--rate-limit-fail", fail)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_across_three_nodes_lets_about_the_burst_through() {
    let Some(redis) = RedisServer::start("a_burst_across_three_nodes_lets_about_the_burst_through")
    else {
        return;
    };
    let nodes = [
        node(&redis, limited("open")),
        node(&redis, limited("open")),
        node(&redis, limited("open")),
    ];
    let started = Instant::now();
    let mut passed = 0u64;
    let mut limited_response = None;
    for attempt in 0..(3 * BURST) as usize {
        let app = &nodes[attempt % 3];
        let response = app.get_ids("uuid", &[]).await;
        match response.status() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => limited_response = Some(response),
            other => panic!("unexpected {other}"),
        }
    }
    // One token refills per second while the burst is sent.
    let refilled = started.elapsed().as_secs() + 1;
    eprintln!("shared rate limit: {passed} of {} passed (burst {BURST})", 3 * BURST);
    assert!(passed >= BURST, "only {passed} of a burst of {BURST} passed");
    assert!(passed <= BURST + refilled, "{passed} passed: the limit is per node, not shared");

    let response = limited_response.expect("some requests were limited");
    for name in ["retry-after", "ratelimit-reset"] {
        let value: u64 = header(&response, name).unwrap().parse().unwrap();
        assert!(value >= 1, "{name}: {value}");
    }
    assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("12"));
    assert_eq!(header(&response, "ratelimit-remaining").as_deref(), Some("0"));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;
    // Probes are never limited.
    assert_eq!(status(&nodes[0], "/healthz").await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_the_limit_fails_open_or_closed_as_configured() {
    let Some(mut redis) =
        RedisServer::start("without_redis_the_limit_fails_open_or_closed_as_configured")
    else {
        return;
    };
    let open = node(&redis, limited("open"));
    let closed = node(&redis, limited("closed"));
    redis.kill();
    for _ in 0..3 {
        assert_eq!(open.get_ids("uuid", &[]).await.status(), StatusCode::OK, "fail open");
        let response = closed.get_ids("uuid", &[]).await;
        assert!(header(&response, "retry-after").is_some());
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).await;
    }
    redis.restart();
    wait_until("the closed node serves again", Duration::from_secs(20), || async {
        closed.get_ids("uuid", &[]).await.status() == StatusCode::OK
    })
    .await;
}
