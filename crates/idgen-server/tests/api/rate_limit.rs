//! Per-client-IP rate limiting: 429 with the headers, refill, unlimited health routes, and
//! `X-Forwarded-For` believed only from trusted proxies.

use std::time::{Duration, Instant};

use idgen_core::wire::ErrorCode;
use reqwest::{Response, StatusCode};

use crate::helpers::{Options, TestApp, assert_error, header, spawn_app};

const BURST: usize = 3;

fn limited_app(extra: Options) -> TestApp {
    spawn_app(extra.flag("--rate-limit-per-second", 1).flag("--rate-limit-burst", BURST))
}

/// `GET /v1/ids/uuid`, optionally with an `X-Forwarded-For` header.
async fn get_uuid(app: &TestApp, forwarded_for: Option<&str>) -> Response {
    let mut request = app.client.get(app.url("/v1/ids/uuid"));
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    request.send().await.expect("GET /v1/ids/uuid")
}

/// Spends a full bucket: the first `BURST` requests pass; then requests are sent until one is
/// limited, which must happen before a token could have refilled (1 per second). Returns the
/// 429 response.
async fn exhaust(app: &TestApp, forwarded_for: Option<&str>) -> Response {
    let started = Instant::now();
    for attempt in 0..BURST {
        let response = get_uuid(app, forwarded_for).await;
        assert_eq!(response.status(), StatusCode::OK, "request {attempt} of a full bucket");
    }
    for extra in 0..5 {
        let response = get_uuid(app, forwarded_for).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            return response;
        }
        assert_eq!(response.status(), StatusCode::OK);
        // One more pass is only allowed if a token could have refilled meanwhile.
        assert!(
            (extra as u64) < started.elapsed().as_secs() + 1,
            "request {} passed although the burst is {BURST} and {:?} passed",
            BURST + extra + 1,
            started.elapsed()
        );
    }
    panic!("no 429 after {} requests with a burst of {BURST}", BURST + 5);
}

/// Asserts that a request is limited. A slow machine may have let a token refill (one per
/// second) since the bucket was spent, so up to two passes are tolerated before the 429, which
/// must come and have the error body.
async fn expect_limited(what: &str, make: impl Fn() -> reqwest::RequestBuilder) {
    for _ in 0..3 {
        let response = make().send().await.unwrap_or_else(|error| panic!("{what}: {error}"));
        if response.status() == StatusCode::OK {
            continue;
        }
        assert_error(response, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;
        return;
    }
    panic!("{what}: three requests in a row passed a spent bucket");
}

/// [`expect_limited`] for `GET /v1/ids/uuid` with an optional `X-Forwarded-For`.
async fn expect_uuid_limited(app: &TestApp, forwarded_for: Option<&str>) {
    expect_limited(&format!("GET /v1/ids/uuid, X-Forwarded-For {forwarded_for:?}"), || {
        let request = app.client.get(app.url("/v1/ids/uuid"));
        match forwarded_for {
            Some(value) => request.header("x-forwarded-for", value),
            None => request,
        }
    })
    .await;
}

fn integer_header(response: &Response, name: &str) -> u64 {
    let value = header(response, name).unwrap_or_else(|| panic!("429 without a {name} header"));
    value.trim().parse().unwrap_or_else(|_| panic!("{name}: {value:?} is not an integer"))
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_burst_answers_429_with_headers_then_refills() {
    let app = limited_app(Options::new());
    let limited = exhaust(&app, None).await;
    let retry_after = integer_header(&limited, "retry-after");
    assert!(retry_after >= 1, "Retry-After {retry_after} must be at least 1 second");
    let limit = integer_header(&limited, "ratelimit-limit");
    assert!(limit >= 1, "RateLimit-Limit {limit}");
    assert_eq!(integer_header(&limited, "ratelimit-remaining"), 0, "RateLimit-Remaining");
    let reset = integer_header(&limited, "ratelimit-reset");
    assert!(reset >= 1, "RateLimit-Reset {reset} (seconds, rounded up)");
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;

    // Wait as told, then the bucket has a token again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let response = get_uuid(&app, None).await;
        if response.status() == StatusCode::OK {
            break;
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            Instant::now() < deadline,
            "still limited 3 s after waiting Retry-After ({retry_after} s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_the_spec_are_never_limited() {
    let app = limited_app(Options::new());
    exhaust(&app, None).await;
    for _ in 0..10 {
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path} while limited");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_id_route_shares_the_client_bucket() {
    let app = limited_app(Options::new());
    exhaust(&app, None).await;
    for path in [
        "/v1/ids/snowflake",
        "/v1/kinds",
        "/v1/decode/uuid/919108f7-52d1-4320-9bac-f847db4148a8",
        "/generate_uuid",
    ] {
        expect_limited(&format!("GET {path}"), || app.client.get(app.url(path))).await;
    }
    expect_limited("POST /v1/ids/uuid", || app.client.post(app.url("/v1/ids/uuid"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_rate_limit_by_default() {
    let app = spawn_app(Options::new());
    for attempt in 0..50 {
        assert_eq!(get_uuid(&app, None).await.status(), StatusCode::OK, "request {attempt}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let app = limited_app(Options::new());
    exhaust(&app, None).await;
    for spoofed in ["203.0.113.7", "198.51.100.1, 203.0.113.8"] {
        expect_uuid_limited(&app, Some(spoofed)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxies_give_each_forwarded_client_its_own_bucket() {
    let app = limited_app(Options::new().flag("--trusted-proxies", "127.0.0.1"));
    exhaust(&app, Some("203.0.113.1")).await;

    // The client is the rightmost untrusted address: what the first client typed on the left
    // does not buy it a new bucket.
    expect_uuid_limited(&app, Some("198.51.100.9, 203.0.113.1")).await;
    // Trusted proxies on the right are skipped.
    expect_uuid_limited(&app, Some("203.0.113.1, 127.0.0.1")).await;

    // Another client behind the proxy has a full bucket.
    for attempt in 0..BURST {
        let response = get_uuid(&app, Some("203.0.113.2")).await;
        assert_eq!(response.status(), StatusCode::OK, "203.0.113.2, request {attempt}");
    }
    // So does the proxy itself, for requests it makes on its own behalf.
    assert_eq!(get_uuid(&app, None).await.status(), StatusCode::OK, "the proxy's own bucket");
}
