//! Every error answer: status, `{"error": {"code", "message"}}`, JSON content type, and no
//! internal detail in the body.

use idgen_core::wire::ErrorCode;
use reqwest::{Method, StatusCode};

use crate::helpers::{Options, all_kinds, assert_error, spawn_app};

const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;

#[tokio::test(flavor = "multi_thread")]
async fn count_out_of_range_or_not_a_number_is_invalid_count() {
    let app = spawn_app(Options::new().flag("--max-batch", 100));
    for kind in all_kinds() {
        for count in ["0", "101", "abc", "-1", "1.5", "", "99999999999999999999"] {
            let response = app.get_ids(kind, &[("count", count)]).await;
            let message = assert_error(response, BAD_REQUEST, ErrorCode::InvalidCount).await;
            if count == "101" && kind == "uuid" {
                assert!(message.contains("100"), "the message should name the limit: {message}");
            }
            let response = app.post_ids(kind, &[("count", count)], None).await;
            assert_error(response, BAD_REQUEST, ErrorCode::InvalidCount).await;
        }
        // The limit itself is fine.
        assert_eq!(app.ids(kind, 100, &[]).await.len(), 100);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn count_above_the_default_max_batch_is_invalid_count() {
    let app = spawn_app(Options::new());
    let response = app.get_ids("uuid", &[("count", "10001")]).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidCount).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn count_in_a_post_body_is_validated_too() {
    let app = spawn_app(Options::new().flag("--max-batch", 100));
    for count in [0, 101] {
        let body = Some(serde_json::json!({ "count": count }));
        let response = app.post_ids("snowflake", &[], body).await;
        assert_error(response, BAD_REQUEST, ErrorCode::InvalidCount).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_random_length_is_invalid_length() {
    let app = spawn_app(Options::new());
    for length in ["0", "1025", "x", "-1", ""] {
        let response = app.get_ids("random", &[("length", length)]).await;
        assert_error(response, BAD_REQUEST, ErrorCode::InvalidLength).await;
    }
    let body = Some(serde_json::json!({"length": 1025}));
    let response = app.post_ids("random", &[], body).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidLength).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_alphabet_is_invalid_alphabet() {
    let app = spawn_app(Options::new());
    for alphabet in ["klingon", "HEX", "", "base64"] {
        let response = app.get_ids("random", &[("alphabet", alphabet)]).await;
        let message = assert_error(response, BAD_REQUEST, ErrorCode::InvalidAlphabet).await;
        assert!(message.contains("hex"), "the message should list the alphabets: {message}");
    }
    let body = Some(serde_json::json!({"alphabet": "klingon"}));
    let response = app.post_ids("random", &[], body).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidAlphabet).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_custom_alphabet_is_invalid_alphabet_saying_why() {
    let app = spawn_app(Options::new());
    let long = "ab".repeat(129);
    for (chars, why) in [
        ("aa", "twice"),
        ("abcb", "twice"),
        ("a", "fewer than 2"),
        ("", "fewer than 2"),
        ("ab\t", "outside printable ASCII"),
        ("abé", "outside printable ASCII"),
        (long.as_str(), "longer than 256"),
    ] {
        let response = app.get_ids("random", &[("chars", chars)]).await;
        let message = assert_error(response, BAD_REQUEST, ErrorCode::InvalidAlphabet).await;
        assert!(message.contains(why), "{chars:?}: {message}");
    }
    // Refused wherever it is sent, even where a valid one wins.
    let body = Some(serde_json::json!({"chars": "zz"}));
    let response = app.post_ids("random", &[("chars", "xy")], body).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidAlphabet).await;
    let response = app.get_ids("random", &[("chars", "xy"), ("alphabet", "klingon")]).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidAlphabet).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_counter_name_is_invalid_counter_name() {
    let app = spawn_app(Options::new());
    let too_long = "a".repeat(65);
    for name in [too_long.as_str(), "a b", "ä", "", "a/b", "orders!"] {
        let response = app.get_ids("counter", &[("name", name)]).await;
        assert_error(response, BAD_REQUEST, ErrorCode::InvalidCounterName).await;
    }
    let body = Some(serde_json::json!({"name": "a b"}));
    let response = app.post_ids("counter", &[], body).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidCounterName).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_id_to_decode_is_invalid_id() {
    let app = spawn_app(Options::new());
    let cases = [
        ("snowflake", "abc"),
        ("snowflake", "-1"),
        ("snowflake", "99999999999999999999"),
        ("snowflake", "12ab"),
        ("uuid", "not-a-uuid"),
        ("uuid", "919108f7-52d1-4320-9bac-f847db4148a"),
        ("uuid7", "123"),
        ("ulid", "xyz"),
        ("ulid", "01ARZ3NDEKTSV4RRFFQ69G5FAVX"),
        ("ulid", "01ARZ3NDEKTSV4RRFFQ69G5FA!"),
        ("timestamp", "abc"),
        ("timestamp", "-5"),
    ];
    for (kind, id) in cases {
        let response = app.decode(kind, id).await;
        assert_error(response, BAD_REQUEST, ErrorCode::InvalidId).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kind_is_404_unknown_kind() {
    let app = spawn_app(Options::new());
    for path in ["/v1/ids/nope", "/v1/ids/UUID", "/v1/decode/nope/123"] {
        let response = app.get(path).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::UnknownKind).await;
    }
    let response = app.post_ids("nope", &[], None).await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::UnknownKind).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kinds_without_a_decoder_answer_a_client_error() {
    let app = spawn_app(Options::new());
    for (kind, id) in [("counter", "1"), ("random", "abc")] {
        let response = app.decode(kind, id).await;
        let status = response.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "decode {kind}: {status}"
        );
        assert_error(response, status, ErrorCode::NotDecodable).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_route_is_404_not_found() {
    let app = spawn_app(Options::new());
    for path in ["/nope", "/v2/ids/uuid", "/v1/nope", "/generate_nothing"] {
        let response = app.get(path).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_is_405_method_not_allowed() {
    let app = spawn_app(Options::new());
    let cases = [
        (Method::DELETE, "/v1/ids/uuid"),
        (Method::PUT, "/v1/ids/snowflake"),
        (Method::POST, "/v1/kinds"),
        (Method::POST, "/v1/decode/uuid/919108f7-52d1-4320-9bac-f847db4148a8"),
        (Method::POST, "/healthz"),
        (Method::DELETE, "/generate_uuid"),
    ];
    for (method, path) in cases {
        let response = app.request(method, path).await;
        assert_error(response, StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_post_body_is_invalid_body() {
    let app = spawn_app(Options::new());
    for body in ["{not json", "\"text\"", "{\"count\": \"many\"}", "{\"count\": -3}"] {
        let response = app
            .client
            .post(app.url("/v1/ids/uuid"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST a bad body");
        assert_error(response, BAD_REQUEST, ErrorCode::InvalidBody).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_stay_json_when_text_is_accepted() {
    let app = spawn_app(Options::new());
    let response = app.get_ids_text("uuid", &[("count", "0")]).await;
    assert_error(response, BAD_REQUEST, ErrorCode::InvalidCount).await;
    let response = app.get_ids_text("nope", &[]).await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::UnknownKind).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_counter_names_than_allowed_is_too_many_counters() {
    let app = spawn_app(Options::new().flag("--max-counters", 2));
    assert_eq!(app.id("counter", &[("name", "one")]).await, "1");
    assert_eq!(app.id("counter", &[("name", "two")]).await, "1");
    let response = app.get_ids("counter", &[("name", "three")]).await;
    assert_error(response, BAD_REQUEST, ErrorCode::TooManyCounters).await;
    // Existing names keep working.
    assert_eq!(app.id("counter", &[("name", "one")]).await, "2");
}
