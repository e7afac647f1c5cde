//! `IDGEN_SNOWFLAKE_LAYOUT`: js53 IDs a JavaScript `Number` holds exactly, Sonyflake's order,
//! custom layouts checked at start, and a layout that cannot change on existing state
//! (embedded and Redis).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{DEFAULT_EPOCH_MS, EXIT_DEADLINE, Options, numeric, run_to_exit, spawn_app};
use crate::redis_harness::RedisServer;
use crate::redis_mode::node;

const JS_MAX: u64 = (1 << 53) - 1;

/// The one stderr line of a server that refused to start with exit 2.
fn refusal(options: Options) -> String {
    let exited = run_to_exit(options);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    let lines: Vec<&str> = exited.stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", exited.stderr);
    lines[0].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn js53_ids_are_exact_javascript_numbers_everywhere_they_are_served() {
    let app =
        spawn_app(Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "js53").flag("--worker-id", 31));
    let ids = numeric(&app.ids("snowflake", 5_000, &[]).await);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing");
    assert!(ids.iter().all(|&id| id <= JS_MAX), "an id above 2^53 - 1");
    // 5,000 at 128 per ms: the batch ran through many ms, each with the sequence's maximum.
    assert!(ids.iter().any(|id| id & 0x7f == 0x7f));
    let (decoded, _) = app.decoded("snowflake", &ids[0].to_string()).await;
    assert_eq!(decoded.worker_id, Some(31));
    assert!(decoded.sequence.is_some_and(|sequence| sequence < 128));
    // The tutorial route answers a JSON number: exactly the id a JavaScript client reads.
    let body: Value = app.get("/generate_snowflake_id").await.json().await.expect("json");
    let number = body.as_object().and_then(|o| o.values().next()).and_then(Value::as_u64);
    let number = number.unwrap_or_else(|| panic!("no integer in {body}"));
    assert!(number <= JS_MAX && number > *ids.last().unwrap(), "{number}");
    // The document and the bounds follow the layout.
    let document: Value = app.get("/openapi.json").await.json().await.expect("json");
    let id = &document["paths"]["/v1/decode/snowflake/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["maximum"], JS_MAX, "{id}");
    let ms = decoded.timestamp_ms.unwrap();
    let bounds: Value =
        app.get(&format!("/v1/bounds/snowflake?time={ms}")).await.json().await.unwrap();
    let shifted = (ms - DEFAULT_EPOCH_MS) << 12;
    assert_eq!(bounds["min"], shifted.to_string());
    assert_eq!(bounds["max"], (shifted | 0xfff).to_string());
    let response = app.decode("snowflake", &(JS_MAX + 1).to_string()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn sonyflake_puts_the_machine_id_low_and_counts_in_10_ms() {
    let app = spawn_app(
        Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "sonyflake").flag("--worker-id", 40_000),
    );
    assert_eq!(app.worker_id, 40_000, "{}", app.startup_line);
    let ids = numeric(&app.ids("snowflake", 1_000, &[]).await);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(ids.iter().all(|id| id & 0xffff == 40_000), "the machine id is the low 16 bits");
    // The status says which layout, and counts the years of its time field: 2^39 x 10 ms from
    // 2020 is 174 years, not the default's 69.7.
    let status: Value = app.get("/v1/status").await.json().await.expect("json");
    assert_eq!(status["snowflake_layout"], "sonyflake");
    let years = status["snowflake_years_left"].as_f64().expect("years");
    assert!((160.0..174.0).contains(&years), "{years}");
    let page = app.get("/status").await.text().await.expect("page");
    assert!(page.contains("years (sonyflake)"), "{page}");
    for id in ids.iter().step_by(9) {
        let (decoded, _) = app.decoded("snowflake", &id.to_string()).await;
        let ms = decoded.timestamp_ms.unwrap();
        assert_eq!((ms - DEFAULT_EPOCH_MS) % 10, 0, "a 10 ms unit");
        assert_eq!(decoded.sequence, Some(((id >> 16) & 0xff) as u16));
    }
}

#[test]
fn a_layout_the_settings_cannot_serve_is_refused_at_start_saying_why() {
    let line =
        refusal(Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "js53").flag("--worker-id", 32));
    assert!(line.contains("from 0 to 31") && line.contains("js53"), "{line}");
    // 2^30 ms is 12 days: far too short.
    let line = refusal(Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "custom:30/10/12"));
    assert!(line.contains("IDGEN_SNOWFLAKE_LAYOUT") && line.contains("years are left"), "{line}");
    let line = refusal(Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "custom:42/10/12"));
    assert!(line.contains("invalid IDGEN_SNOWFLAKE_LAYOUT") && line.contains("63 bits"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_keeps_the_layout_it_was_first_used_with() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let js53 = || Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "js53").data_dir(data_dir.path());
    let mut app = spawn_app(js53());
    let before = numeric(&app.ids("snowflake", 100, &[]).await);
    app.signal("TERM");
    assert_eq!(app.wait_exit(EXIT_DEADLINE).code(), Some(0));
    for other in ["twitter", "sonyflake", "custom:41/5/8"] {
        let options = Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", other).data_dir(data_dir.path());
        let line = refusal(options);
        assert!(line.contains("invalid IDGEN_SNOWFLAKE_LAYOUT"), "{line}");
        assert!(line.contains("time:41/worker:5/sequence:7/unit_ms:1"), "{line}");
    }
    // The same layout by another name is the same layout: it resumes above.
    let app = spawn_app(
        Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "custom:41/5/7").data_dir(data_dir.path()),
    );
    let after = numeric(&app.ids("snowflake", 10, &[]).await);
    assert!(after[0] > *before.last().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_store_keeps_its_layout_and_one_used_before_layouts_is_twitter() {
    let Some(redis) =
        RedisServer::start("a_redis_store_keeps_its_layout_and_one_used_before_layouts_is_twitter")
    else {
        return;
    };
    let first = node(&redis, Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "js53"));
    let ids = numeric(&first.ids("snowflake", 100, &[]).await);
    assert!(ids.iter().all(|&id| id <= JS_MAX));
    // A second node of another layout on the same store: refused, while the first runs on.
    let line = refusal(Options::new().flag("--redis-url", redis.url()));
    assert!(
        line.contains("invalid IDGEN_SNOWFLAKE_LAYOUT") && line.contains("this Redis store"),
        "{line}"
    );
    let second = node(&redis, Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "js53"));
    assert!(numeric(&second.ids("snowflake", 10, &[]).await).iter().all(|&id| id <= JS_MAX));
    drop((first, second));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A store with an identity but no recorded layout was used by a release before layouts:
    // its snowflakes are Twitter's.
    redis.cli(&["DEL", "idgen:{store}:snowflake-layout"]);
    let line = refusal(
        Options::new().env("IDGEN_SNOWFLAKE_LAYOUT", "js53").flag("--redis-url", redis.url()),
    );
    assert!(line.contains("time:41/worker:10/sequence:12/unit_ms:1"), "{line}");
    let twitter = node(&redis, Options::new());
    assert!(numeric(&twitter.ids("snowflake", 10, &[]).await).iter().any(|&id| id > JS_MAX));
}
