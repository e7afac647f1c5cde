//! The original tutorial's routes, kept for drop-in use: same paths, same shapes.

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    DEFAULT_EPOCH_MS, Options, assert_close_to_now, assert_error, json_ok, object_keys, spawn_app,
};

const SLACK_MS: u64 = 10_000;

#[tokio::test(flavor = "multi_thread")]
async fn generate_uuid_returns_a_v4_uuid_string() {
    let app = spawn_app(Options::new());
    let raw: Value = json_ok(app.get("/generate_uuid").await).await;
    assert_eq!(object_keys(&raw), ["id"], "{raw}");
    let id = raw["id"].as_str().unwrap_or_else(|| panic!("id is not a string: {raw}"));
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(&id[14..15], "4", "{id} is not version 4");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}: variant");
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_timestamp_id_returns_ms_as_a_string() {
    let app = spawn_app(Options::new());
    let mut previous = 0;
    for _ in 0..5 {
        let raw: Value = json_ok(app.get("/generate_timestamp_id").await).await;
        assert_eq!(object_keys(&raw), ["id"], "{raw}");
        let text = raw["id"].as_str().unwrap_or_else(|| panic!("id is not a string: {raw}"));
        let value: u64 = text.parse().unwrap_or_else(|_| panic!("{text:?} is not decimal ms"));
        assert_close_to_now("timestamp", value, SLACK_MS);
        assert!(value > previous, "{value} after {previous}");
        previous = value;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_counter_id_returns_an_increasing_integer() {
    let app = spawn_app(Options::new());
    let mut previous = 0;
    for _ in 0..5 {
        let raw: Value = json_ok(app.get("/generate_counter_id").await).await;
        assert_eq!(object_keys(&raw), ["id"], "{raw}");
        let value = raw["id"].as_u64().unwrap_or_else(|| panic!("id is not an integer: {raw}"));
        assert!(value > previous, "{value} after {previous}");
        previous = value;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_snowflake_id_returns_a_positive_integer() {
    let app = spawn_app(Options::new());
    let mut previous = 0;
    for _ in 0..5 {
        let raw: Value = json_ok(app.get("/generate_snowflake_id").await).await;
        assert_eq!(object_keys(&raw), ["id"], "{raw}");
        let value = raw["id"].as_i64().unwrap_or_else(|| panic!("id is not an i64: {raw}"));
        assert!(value > 0, "{value}");
        let value = value as u64;
        assert!(value > previous, "{value} after {previous}");
        assert_close_to_now("snowflake", (value >> 22) + DEFAULT_EPOCH_MS, SLACK_MS);
        previous = value;
    }
    // The same ids the v1 API decodes.
    let (decoded, _) = app.decoded("snowflake", &previous.to_string()).await;
    assert_eq!(decoded.worker_id, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_random_string_returns_that_many_alphanumeric_characters() {
    let app = spawn_app(Options::new());
    for length in [1usize, 32, 1024] {
        let raw: Value = json_ok(app.get(&format!("/generate_random_string/{length}")).await).await;
        let object = raw.as_object().unwrap_or_else(|| panic!("not an object: {raw}"));
        assert_eq!(object.len(), 1, "one field: {raw}");
        let text = object
            .values()
            .next()
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("the value is not a string: {raw}"));
        assert_eq!(text.len(), length, "{raw}");
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_random_string_rejects_bad_lengths() {
    let app = spawn_app(Options::new());
    for length in ["0", "1025", "x", "-1"] {
        let response = app.get(&format!("/generate_random_string/{length}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidLength).await;
    }
}
