//! Kind `typeid` over HTTP: prefixed and bare IDs, batches strictly increasing and decoding to
//! recent UUIDv7s, prefixes refused with `invalid_prefix`, and the spec's vectors through
//! `/v1/decode/typeid/{id}` (valid rows decoded, invalid rows a JSON 400).

use std::time::{SystemTime, UNIX_EPOCH};

use idgen_core::typeid::TypeId;
use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, assert_error, percent_encode, spawn_app};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64
}

fn vectors(file: &str) -> Vec<Value> {
    let path = format!("{}/../idgen-core/tests/data/typeid/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the vectors")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn issues_prefixed_ids_that_sort_and_decode_to_recent_uuid7s() {
    let app = spawn_app(Options::new());
    let before = now_ms();
    let ids = app.ids("typeid", 500, &[("prefix", "user")]).await;
    assert_eq!(ids.len(), 500);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing as text");
    let mut previous = None;
    for id in &ids {
        let parsed: TypeId = id.parse().unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(parsed.prefix().as_str(), "user", "{id}");
        assert_eq!(parsed.uuid().get_version_num(), 7, "{id}");
        assert!(previous < Some(parsed.uuid()), "UUIDs increase too");
        previous = Some(parsed.uuid());
    }
    let (decoded, raw) = app.decoded("typeid", &ids[0]).await;
    assert_eq!(decoded.prefix.as_deref(), Some("user"), "{raw}");
    let ms = decoded.timestamp_ms.expect("a uuid7's time");
    assert!(ms >= before.saturating_sub(1000) && ms <= now_ms() + 1000, "{raw}");
    assert_eq!(
        decoded.uuid.as_deref(),
        Some(ids[0].parse::<TypeId>().unwrap().uuid().to_string().as_str())
    );

    // No prefix: the bare 26-character suffix, and one ID without count.
    let bare = app.id("typeid", &[]).await;
    assert_eq!(bare.len(), 26, "{bare}");
    assert!(bare.as_str() > &ids[499][5..], "after the batch: {bare}");
    // In a JSON body too.
    let body = serde_json::json!({ "count": 2, "prefix": "order_line" });
    let response = app.post_ids("typeid", &[], Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    for id in body["ids"].as_array().expect("ids") {
        assert!(id.as_str().expect("text").starts_with("order_line_"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_outside_the_spec_is_invalid_prefix() {
    let app = spawn_app(Options::new());
    for prefix in ["User", "_user", "user_", "us3r", &"a".repeat(64)] {
        let response = app.get_ids("typeid", &[("prefix", prefix)]).await;
        let message =
            assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidPrefix).await;
        assert!(message.contains("at most 63 characters"), "{message}");
    }
    // Other kinds ignore the parameter, as they ignore every parameter not theirs.
    assert_eq!(app.ids("uuid7", 2, &[("prefix", "User")]).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spec_vectors_decode_over_http() {
    let app = spawn_app(Options::new());
    for row in vectors("valid.json") {
        let text = row["typeid"].as_str().expect("typeid");
        let (decoded, raw) = app.decoded("typeid", &percent_encode(text)).await;
        assert_eq!(decoded.id, text, "{raw}");
        assert_eq!(decoded.prefix.as_deref(), row["prefix"].as_str(), "{raw}");
        assert_eq!(decoded.uuid.as_deref(), row["uuid"].as_str(), "{raw}");
        // Only a UUIDv7 carries a time.
        let is_v7 = row["uuid"].as_str().expect("uuid").as_bytes()[14] == b'7';
        assert_eq!(decoded.timestamp_ms.is_some(), is_v7, "{raw}");
    }
    for row in vectors("invalid.json") {
        let text = row["typeid"].as_str().expect("typeid");
        if text.is_empty() {
            // No path segment at all: the route is not matched (a JSON 404, checked elsewhere).
            continue;
        }
        let response = app.decode("typeid", &percent_encode(text)).await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidId).await;
    }
}
