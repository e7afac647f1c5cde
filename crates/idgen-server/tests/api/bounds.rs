//! `GET /v1/bounds/{kind}?time=`: bounds that bracket the IDs really issued in a millisecond,
//! and exclude them from the neighbouring milliseconds' bounds; times in ms or RFC 3339.

use idgen_core::wire::{BoundsResponse, ErrorCode, rfc3339_ms};
use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, assert_error, percent_encode, spawn_app};

/// Compares two IDs of `kind` in its order: numbers by value, the rest as text.
fn less(kind: &str, a: &str, b: &str) -> bool {
    match kind {
        "snowflake" | "timestamp" => a.parse::<u64>().unwrap() < b.parse::<u64>().unwrap(),
        _ => a < b,
    }
}

/// The 200 answer of `GET /v1/bounds/{kind}?{query}`.
async fn bounds(app: &TestApp, kind: &str, query: &str) -> BoundsResponse {
    let response = app.get(&format!("/v1/bounds/{kind}?{query}")).await;
    let status = response.status();
    let text = response.text().await.expect("read the body");
    assert_eq!(status, StatusCode::OK, "bounds {kind}?{query}: {text}");
    serde_json::from_str(&text).expect("a bounds body")
}

#[tokio::test(flavor = "multi_thread")]
async fn bounds_bracket_the_ids_issued_in_their_millisecond_and_no_other() {
    let app = spawn_app(Options::new().flag("--worker-id", 7));
    for (kind, prefix) in [
        ("uuid7", ""),
        ("ulid", ""),
        ("snowflake", ""),
        ("timestamp", ""),
        ("typeid", "order"),
        ("typeid", ""),
        ("ksuid", ""),
    ] {
        let query = if prefix.is_empty() { vec![] } else { vec![("prefix", prefix)] };
        let ids = app.ids(kind, 50, &query).await;
        for id in ids.iter().step_by(7) {
            let (decoded, _) = app.decoded(kind, id).await;
            let ms = decoded.timestamp_ms.expect("a time-ordered kind");
            let with = |time: u64| {
                let mut query = format!("time={time}");
                if !prefix.is_empty() {
                    query.push_str(&format!("&prefix={prefix}"));
                }
                query
            };
            let here = bounds(&app, kind, &with(ms)).await;
            assert_eq!((here.kind.as_str(), here.timestamp_ms), (kind, ms), "{id}");
            assert_eq!(here.time, rfc3339_ms(ms));
            assert!(!less(kind, id, &here.min) && !less(kind, &here.max, id), "{id} in {here:?}");
            // A ksuid's bounds cover its second.
            let step = if kind == "ksuid" { 1_000 } else { 1 };
            let before = bounds(&app, kind, &with(ms - step)).await;
            let after = bounds(&app, kind, &with(ms + step)).await;
            assert!(less(kind, &before.max, id), "{id} is not above {before:?}");
            assert!(less(kind, id, &after.min), "{id} is not below {after:?}");
            if !prefix.is_empty() {
                assert!(here.min.starts_with("order_") && here.max.starts_with("order_"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_is_unix_ms_or_rfc3339_and_a_kind_without_time_order_is_refused() {
    let app = spawn_app(Options::new());
    let ms = bounds(&app, "snowflake", "time=1796590800125").await;
    for text in
        ["2026-12-06T21:00:00.125Z", "2026-12-06T22:00:00.125+01:00", "2026-12-06t21:00:00.125999z"]
    {
        let query = format!("time={}", percent_encode(text));
        assert_eq!(bounds(&app, "snowflake", &query).await, ms, "{text}");
    }
    assert_eq!(ms.time, "2026-12-06T21:00:00.125Z");
    // The snowflake of that ms from every worker, every sequence: time << 22, then its 22 low
    // bits set.
    let shifted = (1_796_590_800_125 - 1_577_836_800_000u64) << 22;
    assert_eq!((ms.min, ms.max), (shifted.to_string(), (shifted | 0x3F_FFFF).to_string()));

    for kind in ["uuid", "counter", "random"] {
        let response = app.get(&format!("/v1/bounds/{kind}?time=0")).await;
        let message =
            assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::NotTimeOrdered).await;
        assert!(message.contains(kind), "{message}");
    }
    let refused = [
        ("snowflake", "time=1577836799999"),
        ("ksuid", "time=1399999999999"),
        ("timestamp", "time=253402300800000"),
        ("uuid7", "time=18446744073709551615"),
        ("ulid", "time=2023-02-29T00:00:00Z"),
        ("ulid", "time=yesterday"),
        ("ulid", "time="),
        ("ulid", ""),
    ];
    for (kind, query) in refused {
        let response = app.get(&format!("/v1/bounds/{kind}?{query}")).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidTime).await;
        assert!(message.contains("time") || message.contains("hold"), "{kind} {query}: {message}");
    }
    let response = app.get("/v1/bounds/typeid?time=0&prefix=Bad").await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidPrefix).await;
    let response = app.get("/v1/bounds/nope?time=0").await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::UnknownKind).await;
}
