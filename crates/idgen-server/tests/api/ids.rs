//! `GET` and `POST /v1/ids/{kind}`: shapes, headers, batches, text output and ID formats.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    DEFAULT_EPOCH_MS, Options, all_kinds, assert_close_to_now, assert_strictly_increasing, header,
    is_sortable, json_ok, numeric, object_keys, spawn_app, string_ids,
};

/// Ids from a few seconds ago or ahead still count as "now".
const SLACK_MS: u64 = 10_000;

#[tokio::test(flavor = "multi_thread")]
async fn get_single_id_of_every_kind_is_a_json_string() {
    let app = spawn_app(Options::new());
    for kind in all_kinds() {
        let raw: Value = json_ok(app.get_ids(kind, &[]).await).await;
        assert_eq!(object_keys(&raw), ["id"], "{kind}: {raw}");
        let id = raw["id"].as_str().unwrap_or_else(|| panic!("{kind}: id is not a string: {raw}"));
        assert!(!id.is_empty(), "{kind}: empty id");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_batch_of_every_kind_has_count_string_ids_in_order() {
    let app = spawn_app(Options::new());
    for kind in all_kinds() {
        let raw: Value = json_ok(app.get_ids(kind, &[("count", "50")]).await).await;
        assert_eq!(object_keys(&raw), ["ids"], "{kind}: {raw}");
        let ids = string_ids(&raw);
        assert_eq!(ids.len(), 50, "{kind}");
        if is_sortable(kind) {
            assert_strictly_increasing(kind, &ids);
        }
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{kind}: duplicates in one batch");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn count_one_is_a_batch_of_one() {
    let app = spawn_app(Options::new());
    for kind in all_kinds() {
        let raw: Value = json_ok(app.get_ids(kind, &[("count", "1")]).await).await;
        assert_eq!(object_keys(&raw), ["ids"], "{kind}: {raw}");
        assert_eq!(string_ids(&raw).len(), 1, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn post_does_what_get_does() {
    let app = spawn_app(Options::new());
    for kind in all_kinds() {
        // No body at all.
        let raw: Value = json_ok(app.post_ids(kind, &[], None).await).await;
        assert_eq!(object_keys(&raw), ["id"], "POST {kind}: {raw}");
        assert!(raw["id"].is_string(), "POST {kind}: {raw}");

        // An empty JSON object.
        let raw: Value = json_ok(app.post_ids(kind, &[], Some(json!({}))).await).await;
        assert_eq!(object_keys(&raw), ["id"], "POST {kind} {{}}: {raw}");

        // count in the query.
        let raw: Value = json_ok(app.post_ids(kind, &[("count", "7")], None).await).await;
        let ids = string_ids(&raw);
        assert_eq!(ids.len(), 7, "POST {kind}?count=7");

        // count in the body.
        let raw: Value = json_ok(app.post_ids(kind, &[], Some(json!({"count": 9}))).await).await;
        let ids = string_ids(&raw);
        assert_eq!(ids.len(), 9, "POST {kind} {{count: 9}}");
        if is_sortable(kind) {
            assert_strictly_increasing(kind, &ids);
        }

        // The query wins where both give one.
        let body = Some(json!({"count": 5}));
        let raw: Value = json_ok(app.post_ids(kind, &[("count", "2")], body).await).await;
        assert_eq!(string_ids(&raw).len(), 2, "POST {kind}?count=2 with {{count: 5}}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn post_body_carries_counter_name_and_random_options() {
    let app = spawn_app(Options::new());
    let body = Some(json!({"name": "posted", "count": 3}));
    let raw: Value = json_ok(app.post_ids("counter", &[], body).await).await;
    assert_eq!(numeric(&string_ids(&raw)), [1, 2, 3]);
    // The same sequence through GET.
    assert_eq!(app.id("counter", &[("name", "posted")]).await, "4");

    let body = Some(json!({"length": 40, "alphabet": "hex", "count": 4}));
    let raw: Value = json_ok(app.post_ids("random", &[], body).await).await;
    for id in string_ids(&raw) {
        assert_eq!(id.len(), 40, "{id}");
        assert!(id.bytes().all(|b| b"0123456789abcdef".contains(&b)), "{id} is not hex");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accept_text_plain_gives_one_id_per_line() {
    let app = spawn_app(Options::new());
    for kind in all_kinds() {
        for (query, expected) in [(vec![("count", "5")], 5), (vec![], 1)] {
            let response = app.get_ids_text(kind, &query).await;
            assert_eq!(response.status(), StatusCode::OK, "{kind} as text");
            assert_eq!(
                header(&response, "content-type").as_deref(),
                Some("text/plain; charset=utf-8"),
                "{kind} as text"
            );
            assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"), "{kind}");
            let text = response.text().await.expect("read the body");
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            assert_eq!(lines.len(), expected, "{kind} as text: {text:?}");
            for line in &lines {
                assert!(!line.is_empty() && !line.contains('"'), "{kind}: line {line:?}");
            }
            if is_sortable(kind) {
                assert_strictly_increasing(kind, &lines);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accept_text_plain_works_for_post() {
    let app = spawn_app(Options::new());
    let response = app
        .client
        .post(app.ids_url("snowflake", &[("count", "3")]))
        .header("accept", "text/plain")
        .send()
        .await
        .expect("POST as text");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("text/plain; charset=utf-8"));
    let text = response.text().await.expect("read the body");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert_strictly_increasing("snowflake", &lines);
}

/// Version nibble and variant bits of a hyphenated, lowercase UUID string.
fn uuid_version_and_variant(id: &str) -> (u8, u8) {
    assert_eq!(id.len(), 36, "{id} is not a hyphenated UUID");
    for (index, byte) in id.bytes().enumerate() {
        if [8, 13, 18, 23].contains(&index) {
            assert_eq!(byte, b'-', "{id}: expected '-' at {index}");
        } else {
            assert!(b"0123456789abcdef".contains(&byte), "{id}: not lowercase hex at {index}");
        }
    }
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let bytes: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
    (bytes[6] >> 4, bytes[8] >> 6)
}

/// The 48-bit millisecond prefix of a UUIDv7.
fn uuid7_ms(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').take(12).collect();
    u64::from_str_radix(&hex, 16).expect("hex")
}

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The 48-bit millisecond prefix of a ULID (its first 10 Crockford characters).
fn ulid_ms(id: &str) -> u64 {
    id.bytes().take(10).fold(0u64, |acc, byte| {
        let digit = CROCKFORD.iter().position(|c| *c == byte).expect("Crockford digit");
        acc * 32 + digit as u64
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn uuid_is_version_4_with_the_rfc_variant() {
    let app = spawn_app(Options::new());
    let ids = app.ids("uuid", 200, &[]).await;
    for id in &ids {
        assert_eq!(uuid_version_and_variant(id), (4, 0b10), "{id}");
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "duplicate v4 UUIDs");
}

#[tokio::test(flavor = "multi_thread")]
async fn uuid7_is_version_7_with_the_rfc_variant_and_current_time() {
    let app = spawn_app(Options::new());
    let ids = app.ids("uuid7", 200, &[]).await;
    for id in &ids {
        assert_eq!(uuid_version_and_variant(id), (7, 0b10), "{id}");
        assert_close_to_now(id, uuid7_ms(id), SLACK_MS);
    }
    let single = app.id("uuid7", &[]).await;
    assert!(ids.last().expect("200 ids") < &single, "a later request sorts after the batch");
}

#[tokio::test(flavor = "multi_thread")]
async fn ulid_is_26_crockford_characters_with_current_time() {
    let app = spawn_app(Options::new());
    let ids = app.ids("ulid", 200, &[]).await;
    for id in &ids {
        assert_eq!(id.len(), 26, "{id}");
        assert!(id.bytes().all(|b| CROCKFORD.contains(&b)), "{id} is not Crockford base32");
        assert!(id.as_bytes()[0] <= b'7', "{id} overflows 128 bits");
        assert_close_to_now(id, ulid_ms(id), SLACK_MS);
    }
    let single = app.id("ulid", &[]).await;
    assert!(ids.last().expect("200 ids") < &single, "a later request sorts after the batch");
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_is_a_positive_i64_with_the_default_layout() {
    let app = spawn_app(Options::new());
    assert_eq!(app.worker_id, 0, "default worker id");
    let ids = app.ids("snowflake", 100, &[]).await;
    for value in numeric(&ids) {
        assert!(value > 0 && value <= i64::MAX as u64, "{value} is not a positive i64");
        let timestamp_ms = (value >> 22) + DEFAULT_EPOCH_MS;
        assert_close_to_now(&value.to_string(), timestamp_ms, SLACK_MS);
        assert_eq!((value >> 12) & 0x3ff, 0, "{value}: worker bits");
    }
    for id in &ids {
        assert_eq!(id, &id.parse::<u64>().expect("decimal").to_string(), "canonical decimal");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamp_is_current_unix_ms_and_strictly_increasing_across_requests() {
    let app = spawn_app(Options::new());
    let mut previous = 0;
    for _ in 0..20 {
        let value: u64 = app.id("timestamp", &[]).await.parse().expect("decimal ms");
        assert!(value > previous, "{value} after {previous}");
        assert_close_to_now("timestamp", value, SLACK_MS);
        previous = value;
    }
    let batch = numeric(&app.ids("timestamp", 100, &[]).await);
    assert!(batch[0] > previous, "a batch continues above earlier single ids");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_defaults_to_21_alphanumeric_characters() {
    let app = spawn_app(Options::new());
    for id in app.ids("random", 100, &[]).await {
        assert_eq!(id.len(), 21, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_honours_length_and_alphabet() {
    let app = spawn_app(Options::new());
    let alphanumeric: Vec<u8> = (b'0'..=b'9').chain(b'A'..=b'Z').chain(b'a'..=b'z').collect();
    let base58: Vec<u8> = alphanumeric.iter().copied().filter(|b| !b"0OIl".contains(b)).collect();
    let nanoid: Vec<u8> = alphanumeric.iter().copied().chain(*b"_-").collect();
    let hex = b"0123456789abcdef".to_vec();
    for (name, alphabet) in
        [("alphanumeric", alphanumeric), ("hex", hex), ("base58", base58), ("nanoid", nanoid)]
    {
        let ids = app.ids("random", 100, &[("length", "100"), ("alphabet", name)]).await;
        let mut seen = HashSet::new();
        for id in &ids {
            assert_eq!(id.len(), 100, "{name}: {id}");
            for byte in id.bytes() {
                assert!(alphabet.contains(&byte), "{name}: {:?} in {id}", byte as char);
                seen.insert(byte);
            }
        }
        // 10,000 draws over at most 64 symbols: every symbol shows up (the chance one does not
        // is below 1e-60).
        assert_eq!(seen.len(), alphabet.len(), "{name}: not every character was drawn");
    }
    for length in ["1", "1024"] {
        let id = app.id("random", &[("length", length)]).await;
        assert_eq!(id.len().to_string(), length);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_draws_from_a_custom_alphabet_of_any_printable_characters() {
    let app = spawn_app(Options::new());
    let printable: String = (b' '..=b'~').map(char::from).collect();
    // Characters a query string must escape (`&`, `+`, `=`, `%`, `#`, space) among them.
    for chars in ["01", "abc", "&+=%# ", "\"\\", "0123456789", printable.as_str()] {
        let ids = app.ids("random", 100, &[("length", "100"), ("chars", chars)]).await;
        let mut seen = HashSet::new();
        for id in &ids {
            assert_eq!(id.len(), 100, "{chars:?}: {id}");
            assert!(id.chars().all(|c| chars.contains(c)), "{chars:?}: {id}");
            seen.extend(id.chars());
        }
        // 10,000 draws over at most 95 symbols: every one shows up (a miss is below 1e-40).
        assert_eq!(seen.len(), chars.len(), "{chars:?}: not every character was drawn");
    }
    // `chars` wins over `alphabet`, and the query's over the body's.
    let ids = app.ids("random", 20, &[("alphabet", "hex"), ("chars", "xy")]).await;
    assert!(ids.iter().flat_map(|id| id.chars()).all(|c| c == 'x' || c == 'y'), "{ids:?}");
    let body = Some(json!({"chars": "pq", "length": 30, "count": 3}));
    let raw: Value = json_ok(app.post_ids("random", &[("chars", "uv")], body.clone()).await).await;
    assert!(string_ids(&raw).iter().flat_map(|id| id.chars()).all(|c| "uv".contains(c)));
    let raw: Value = json_ok(app.post_ids("random", &[], body).await).await;
    for id in string_ids(&raw) {
        assert!(id.len() == 30 && id.chars().all(|c| "pq".contains(c)), "{id}");
    }
    // Other kinds ignore it, as they ignore `alphabet`.
    assert_eq!(app.id("uuid", &[("chars", "aa")]).await.len(), 36);
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_start_at_1_and_names_are_independent() {
    let app = spawn_app(Options::new());
    assert_eq!(app.id("counter", &[("name", "orders")]).await, "1");
    assert_eq!(app.id("counter", &[("name", "orders")]).await, "2");
    assert_eq!(app.id("counter", &[("name", "invoices")]).await, "1");
    assert_eq!(
        numeric(&app.ids("counter", 3, &[("name", "orders")]).await),
        [3, 4, 5],
        "a batch continues the sequence"
    );
    assert_eq!(app.id("counter", &[("name", "invoices")]).await, "2");
    let long_name = "a".repeat(64);
    assert_eq!(app.id("counter", &[("name", &long_name)]).await, "1", "64 characters is fine");
    assert_eq!(app.id("counter", &[("name", "A-z_0.9")]).await, "1", "every allowed character");
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_without_a_name_is_the_default_counter() {
    let app = spawn_app(Options::new());
    assert_eq!(app.id("counter", &[]).await, "1");
    assert_eq!(app.id("counter", &[("name", "default")]).await, "2");
    assert_eq!(app.id("counter", &[]).await, "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn default_max_batch_is_10000() {
    let app = spawn_app(Options::new());
    let ids = app.ids("snowflake", 10_000, &[]).await;
    assert_strictly_increasing("snowflake", &ids);
    let ids = app.ids("counter", 10_000, &[]).await;
    assert_eq!(numeric(&ids).first(), Some(&1));
    assert_eq!(numeric(&ids).last(), Some(&10_000));
}
