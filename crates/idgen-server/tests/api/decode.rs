//! `GET /v1/decode/{kind}/{id}`: exact fields per kind, RFC 3339 times (none past the year
//! 9999), worker ids, strict and lenient reading.

use idgen_core::wire::{ErrorCode, rfc3339_ms};
use reqwest::StatusCode;

use crate::helpers::{
    DEFAULT_EPOCH_MS, Options, assert_close_to_now, assert_error, numeric, object_keys,
    percent_encode, spawn_app,
};

const SLACK_MS: u64 = 10_000;

/// `time` must be RFC 3339 UTC: `YYYY-MM-DDTHH:MM:SS[.fff]Z`, and name the same instant as
/// `timestamp_ms` (the wire format is millisecond precision).
fn assert_rfc3339_utc(time: &str, timestamp_ms: u64) {
    let bytes = time.as_bytes();
    let digits =
        |range: std::ops::Range<usize>| range.into_iter().all(|i| bytes[i].is_ascii_digit());
    let shaped = bytes.len() >= 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && time.ends_with('Z');
    assert!(shaped, "{time:?} is not RFC 3339 UTC");
    assert_eq!(time, rfc3339_ms(timestamp_ms), "time and timestamp_ms disagree");
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_decodes_to_time_worker_and_sequence() {
    let app = spawn_app(Options::new().flag("--worker-id", 42));
    assert_eq!(app.worker_id, 42, "start-up line: {}", app.startup_line);
    let ids = app.ids("snowflake", 20, &[]).await;
    for id in &ids {
        let (decoded, raw) = app.decoded("snowflake", id).await;
        assert_eq!(
            object_keys(&raw),
            ["id", "sequence", "time", "timestamp_ms", "worker_id"],
            "fields of {raw}"
        );
        assert_eq!(&decoded.id, id);
        assert!(raw["id"].is_string(), "id stays a string: {raw}");
        let timestamp_ms = decoded.timestamp_ms.expect("timestamp_ms");
        assert_close_to_now(id, timestamp_ms, SLACK_MS);
        assert_rfc3339_utc(decoded.time.as_deref().expect("time"), timestamp_ms);
        assert_eq!(decoded.worker_id, Some(42));
        let sequence = u64::from(decoded.sequence.expect("sequence"));
        let value: u64 = id.parse().expect("decimal");
        assert_eq!(
            value,
            ((timestamp_ms - DEFAULT_EPOCH_MS) << 22) | (42 << 12) | sequence,
            "{id}: the parts must rebuild the id"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_decodes_a_known_value() {
    let app = spawn_app(Options::new());
    // 1000 ms after the default epoch, worker 5, sequence 7.
    let id = ((1000u64 << 22) | (5 << 12) | 7).to_string();
    let (decoded, _) = app.decoded("snowflake", &id).await;
    assert_eq!(decoded.timestamp_ms, Some(1_577_836_801_000));
    assert_eq!(decoded.time.as_deref(), Some("2020-01-01T00:00:01.000Z"));
    assert_eq!(decoded.worker_id, Some(5));
    assert_eq!(decoded.sequence, Some(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn time_kinds_decode_to_timestamp_and_time() {
    let app = spawn_app(Options::new());
    for kind in ["uuid7", "ulid", "timestamp"] {
        for id in app.ids(kind, 5, &[]).await {
            let (decoded, raw) = app.decoded(kind, &id).await;
            assert_eq!(object_keys(&raw), ["id", "time", "timestamp_ms"], "{kind}: {raw}");
            assert_eq!(decoded.id, id, "{kind}");
            let timestamp_ms = decoded.timestamp_ms.expect("timestamp_ms");
            assert_close_to_now(&id, timestamp_ms, SLACK_MS);
            assert_rfc3339_utc(decoded.time.as_deref().expect("time"), timestamp_ms);
            if kind == "timestamp" {
                assert_eq!(timestamp_ms.to_string(), id, "a timestamp id is its own ms");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn time_kinds_decode_known_values() {
    let app = spawn_app(Options::new());
    let cases = [
        // RFC 9562 appendix A.6.
        ("uuid7", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", 1_645_557_742_000),
        // The ULID spec's example.
        ("ulid", "01ARZ3NDEKTSV4RRFFQ69G5FAV", 1_469_922_850_259),
        ("timestamp", "1577836800000", 1_577_836_800_000),
    ];
    for (kind, id, timestamp_ms) in cases {
        let (decoded, _) = app.decoded(kind, id).await;
        assert_eq!(decoded.id, id, "{kind}");
        assert_eq!(decoded.timestamp_ms, Some(timestamp_ms), "{kind} {id}");
        assert_eq!(decoded.time, Some(rfc3339_ms(timestamp_ms)), "{kind} {id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uuid_decodes_to_version_and_variant() {
    let app = spawn_app(Options::new());
    for id in app.ids("uuid", 5, &[]).await {
        let (decoded, raw) = app.decoded("uuid", &id).await;
        assert_eq!(object_keys(&raw), ["id", "variant", "version"], "{raw}");
        assert_eq!(decoded.id, id);
        assert_eq!(decoded.version, Some(4));
        assert_eq!(decoded.variant.as_deref(), Some("rfc9562"));
    }
    // Any UUID decodes as a uuid: a v7 says version 7.
    let uuid7 = app.id("uuid7", &[]).await;
    let (decoded, _) = app.decoded("uuid", &uuid7).await;
    assert_eq!(decoded.version, Some(7));
    assert_eq!(decoded.variant.as_deref(), Some("rfc9562"));
    // RFC 9562 appendix A.4.
    let (decoded, _) = app.decoded("uuid", "919108f7-52d1-4320-9bac-f847db4148a8").await;
    assert_eq!((decoded.version, decoded.variant.as_deref()), (Some(4), Some("rfc9562")));
}

#[tokio::test(flavor = "multi_thread")]
async fn decode_answers_json() {
    let app = spawn_app(Options::new());
    let id = app.id("snowflake", &[]).await;
    let response = app.decode("snowflake", &id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or(""));
    assert!(
        content_type.is_some_and(|value| value.starts_with("application/json")),
        "content-type {content_type:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn decoded_worker_id_follows_the_setting() {
    for worker_id in [0u16, 1, 1023] {
        let app = spawn_app(Options::new().flag("--worker-id", worker_id));
        assert_eq!(app.worker_id, worker_id, "start-up line: {}", app.startup_line);
        let id = app.id("snowflake", &[]).await;
        let (decoded, _) = app.decoded("snowflake", &id).await;
        assert_eq!(decoded.worker_id, Some(worker_id));
        // The counter kind is unaffected by the worker id.
        let counters = numeric(&app.ids("counter", 2, &[]).await);
        assert_eq!(counters, [1, 2]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_decoding_takes_only_the_canonical_text_and_lenient_stays_the_default() {
    let app = spawn_app(Options::new());
    let uuid = app.id("uuid", &[]).await;
    let uuid7 = app.id("uuid7", &[]).await;
    let ulid = app.id("ulid", &[]).await;
    let snowflake = app.id("snowflake", &[]).await;
    let app = &app;
    let get = |kind: &str, id: &str, strict: &str| {
        let path = format!("/v1/decode/{kind}/{}{strict}", percent_encode(id));
        async move { app.get(&path).await }
    };
    // What the server issues is canonical: strict reads it as lenient does.
    for (kind, id) in
        [("uuid", &uuid), ("uuid7", &uuid7), ("ulid", &ulid), ("snowflake", &snowflake)]
    {
        for strict in ["?strict=true", "?strict=false", ""] {
            assert_eq!(get(kind, id, strict).await.status(), StatusCode::OK, "{kind} {id}{strict}");
        }
    }
    let lenient_only = [
        ("uuid", uuid.to_uppercase()),
        ("uuid", format!("{{{uuid}}}")),
        ("uuid", format!("urn:uuid:{uuid}")),
        ("uuid", uuid.replace('-', "")),
        // Version 0: RFC 9562 defines 1 to 8 (and the nil and max UUIDs).
        ("uuid", "3a3d11a2-c2f6-02bd-8035-9cdbf03ea359".to_owned()),
        ("uuid7", uuid7.to_uppercase()),
        ("ulid", ulid.to_lowercase()),
        ("snowflake", format!("0{snowflake}")),
        ("timestamp", "01577836800000".to_owned()),
    ];
    for (kind, id) in &lenient_only {
        assert_eq!(get(kind, id, "").await.status(), StatusCode::OK, "{kind} {id}: lenient");
        let message = assert_error(
            get(kind, id, "?strict=true").await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidId,
        )
        .await;
        assert!(message.contains("strict"), "{kind} {id}: {message}");
    }
    for strict in ["?strict=yes", "?strict=", "?strict=TRUE"] {
        let response = get("uuid", &uuid, strict).await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidStrict).await;
    }
    for id in ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"] {
        assert_eq!(get("uuid", id, "?strict=true").await.status(), StatusCode::OK, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_past_the_year_9999_is_a_400_not_a_longer_year() {
    let app = spawn_app(Options::new());
    let last = idgen_core::wire::MAX_RFC3339_MS;
    let (decoded, _) = app.decoded("timestamp", &last.to_string()).await;
    assert_eq!(decoded.time.as_deref(), Some("9999-12-31T23:59:59.999Z"));
    // 2^48 - 1 ms, the largest a uuid7 or ULID holds, is in the year 10889.
    let past = [
        ("timestamp", (last + 1).to_string()),
        ("timestamp", u64::MAX.to_string()),
        ("uuid7", "ffffffff-ffff-7fff-bfff-ffffffffffff".to_owned()),
        ("uuid7", "e677d21f-dc00-7000-8000-000000000000".to_owned()),
        ("ulid", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned()),
    ];
    for (kind, id) in past {
        let response = app.decode(kind, &id).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidId).await;
        assert!(message.contains("9999-12-31T23:59:59.999Z"), "{kind} {id}: {message}");
    }
    let (decoded, _) = app.decoded("uuid7", "e677d21f-dbff-7000-8000-000000000000").await;
    assert_eq!(decoded.time.as_deref(), Some("9999-12-31T23:59:59.999Z"));
}
