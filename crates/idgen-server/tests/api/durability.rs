//! Embedded mode's durable state: `kill -9` and a restart on the same data dir never repeat a
//! counter value or a snowflake; one server per data dir, even with its `lock` file deleted;
//! one worker id per data dir; an old data dir (`state.json`) keeps every mark when migrated.

use std::collections::HashMap;

use std::path::Path;

use idgen_core::wire::{ErrorCode, HealthResponse};
use reqwest::StatusCode;

use crate::helpers::{
    DEFAULT_EPOCH_MS, EXIT_DEADLINE, Options, TestApp, assert_error, header, now_ms, numeric,
    run_to_exit, spawn_app,
};

const COUNTER_NAMES: [&str; 3] = ["default", "orders", "invoices"];

/// What one run issued: per counter name and for snowflakes, the lowest and highest value.
#[derive(Debug, Default)]
struct Issued {
    counters: HashMap<&'static str, (u64, u64)>,
    snowflakes: (u64, u64),
}

/// Issues a mix of single ids and batches, so the server has to reserve more than one block.
async fn issue_some(app: &TestApp, round: usize) -> Issued {
    let mut issued = Issued::default();
    for (index, name) in COUNTER_NAMES.into_iter().enumerate() {
        let mut values = Vec::new();
        for _ in 0..3 {
            values.push(app.id("counter", &[("name", name)]).await.parse::<u64>().expect("u64"));
        }
        // Batches of different sizes per name and round, crossing any block size.
        let size = 500 + 1500 * index + 700 * round;
        values.extend(numeric(&app.ids("counter", size, &[("name", name)]).await));
        values.push(app.id("counter", &[("name", name)]).await.parse().expect("u64"));
        for pair in values.windows(2) {
            assert!(pair[0] < pair[1], "{name}: {} then {}", pair[0], pair[1]);
        }
        issued.counters.insert(name, (values[0], *values.last().expect("values")));
    }
    let mut snowflakes = numeric(&app.ids("snowflake", 10_000, &[]).await);
    snowflakes.push(app.id("snowflake", &[]).await.parse().expect("u64"));
    snowflakes.extend(numeric(&app.ids("snowflake", 5_000, &[]).await));
    for pair in snowflakes.windows(2) {
        assert!(pair[0] < pair[1], "snowflake {} then {}", pair[0], pair[1]);
    }
    issued.snowflakes = (snowflakes[0], *snowflakes.last().expect("snowflakes"));
    issued
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_restart_never_repeats_a_counter_or_a_snowflake() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut highest_counters: HashMap<&str, u64> = HashMap::new();
    let mut highest_snowflake = 0;
    for round in 0..4 {
        let app = spawn_app(Options::new().data_dir(data_dir.path()).flag("--worker-id", 3));
        let issued = issue_some(&app, round).await;
        for (name, (first, last)) in &issued.counters {
            let previous = highest_counters.get(name).copied().unwrap_or(0);
            assert!(
                *first > previous,
                "round {round}: counter {name} issued {first} after a restart, but {previous} \
                 was issued before the kill"
            );
            if round == 0 {
                assert_eq!(*first, 1, "a fresh data dir starts counter {name} at 1");
            }
            highest_counters.insert(name, *last);
        }
        let (first, last) = issued.snowflakes;
        assert!(
            first > highest_snowflake,
            "round {round}: snowflake {first} after a restart is not above {highest_snowflake}"
        );
        highest_snowflake = last;
        app.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_right_after_single_ids_never_repeats_them() {
    // Single requests only: the smallest possible use of each reserved block.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut last_counter = 0;
    let mut last_snowflake = 0;
    for round in 0..5 {
        let app = spawn_app(Options::new().data_dir(data_dir.path()));
        let counter: u64 = app.id("counter", &[("name", "single")]).await.parse().expect("u64");
        let snowflake: u64 = app.id("snowflake", &[]).await.parse().expect("u64");
        assert!(counter > last_counter, "round {round}: counter {counter} after {last_counter}");
        assert!(
            snowflake > last_snowflake,
            "round {round}: snowflake {snowflake} after {last_snowflake}"
        );
        last_counter = counter;
        last_snowflake = snowflake;
        app.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let first = spawn_app(Options::new());
    let data_dir = first.data_dir.clone().expect("the first server has a data dir");
    assert_eq!(first.id("counter", &[]).await, "1");

    let second = run_to_exit(Options::new().data_dir(&data_dir));
    assert!(!second.status.success(), "the second server exited with {}", second.status);
    assert!(
        second.stderr.contains("IDGEN_DATA_DIR"),
        "stderr should name IDGEN_DATA_DIR: {:?}",
        second.stderr
    );
    assert!(!second.stdout.contains("listening"), "it must not claim to listen: {second:?}");
    for needle in ["panicked", "RUST_BACKTRACE"] {
        assert!(!second.stderr.contains(needle), "stderr has {needle:?}: {}", second.stderr);
    }

    // The first one is untouched.
    assert_eq!(first.id("counter", &[]).await, "2");
}

/// Simulates a wall clock set back while the server was down: the server is stopped, and the
/// snowflake high-water mark in its data dir is moved `ahead_ms` past the current time. The
/// data dir is opaque (a redb store), so the mark goes in the way an old data dir brings it: a
/// previous release's `state.json` (format 1, documented in docs/configuration.md), which the
/// server migrates at its next start, raising each mark to the file's value.
async fn restart_with_snowflake_mark_ahead(ahead_ms: u64) -> (TestApp, tempfile::TempDir, u64) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_app(Options::new().data_dir(data_dir.path()));
    app.id("snowflake", &[]).await;
    app.signal("TERM");
    assert_eq!(app.wait_exit(EXIT_DEADLINE).code(), Some(0));
    let mark = now_ms() + ahead_ms;
    set_snowflake_mark(data_dir.path(), mark);
    let app = spawn_app(Options::new().data_dir(data_dir.path()));
    (app, data_dir, mark)
}

fn set_snowflake_mark(data_dir: &Path, mark_ms: u64) {
    write_old_state(data_dir, mark_ms, 0, &serde_json::json!({}));
}

/// Writes `state.json` as the previous release did (format 1).
fn write_old_state(
    data_dir: &Path,
    snowflake_mark_ms: u64,
    timestamp_mark_ms: u64,
    counters: &serde_json::Value,
) {
    let state = serde_json::json!({
        "format": 1,
        "snowflake_mark_ms": snowflake_mark_ms,
        "timestamp_mark_ms": timestamp_mark_ms,
        "counters": counters,
    });
    let path = data_dir.join("state.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&state).expect("JSON"))
        .expect("write state.json");
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_set_back_a_little_while_down_still_issues_above_the_mark() {
    // Within the allowance (1000 ms by default): ids continue above the mark.
    let (app, _data_dir, mark) = restart_with_snowflake_mark_ahead(600).await;
    let ids = numeric(&app.ids("snowflake", 100, &[]).await);
    for id in ids {
        let timestamp_ms = (id >> 22) + DEFAULT_EPOCH_MS;
        assert!(timestamp_ms > mark, "snowflake at {timestamp_ms} is not above the mark {mark}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_set_back_far_while_down_refuses_snowflakes_with_503() {
    let (app, _data_dir, _) = restart_with_snowflake_mark_ahead(3_600_000).await;
    let response = app.get_ids("snowflake", &[]).await;
    let retry_after = header(&response, "retry-after").expect("503 carries Retry-After");
    let retry_after: u64 = retry_after.parse().expect("Retry-After in seconds");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).await;

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "/readyz");
    let body: HealthResponse = response.json().await.expect("readyz body");
    assert_eq!(body.status, "unavailable");
    assert!(!body.reasons.is_empty(), "/readyz should say why");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "/healthz is only liveness");

    // Other kinds are unaffected.
    assert_eq!(app.ids("uuid7", 3, &[]).await.len(), 3);
    assert_eq!(app.id("counter", &[]).await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_lock_file_does_not_let_a_second_server_in() {
    let first = spawn_app(Options::new());
    let data_dir = first.data_dir.clone().expect("the first server has a data dir");
    assert_eq!(first.id("counter", &[]).await, "1");
    // Everything in the dir that can go without stopping the first server: the `lock` file.
    // (The store itself cannot: a server whose store file is deleted stops issuing ids that
    // need a new mark, see the store's unit tests.)
    let mut names: Vec<String> = std::fs::read_dir(&data_dir)
        .expect("list the data dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "store.redb"], "what the data dir holds");
    std::fs::remove_file(data_dir.join("lock")).expect("delete the lock file");

    let second = run_to_exit(Options::new().data_dir(&data_dir));
    assert_eq!(second.status.code(), Some(2), "the second server: {second:?}");
    let lines: Vec<&str> = second.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", second.stderr);
    assert!(lines[0].contains("IDGEN_DATA_DIR"), "names the setting: {}", lines[0]);
    assert!(lines[0].contains(&data_dir.display().to_string()), "names the dir: {}", lines[0]);
    assert!(!second.stdout.contains("listening"), "it must not claim to listen: {second:?}");

    // The first one is untouched and still writes marks: the batch needs a new block.
    assert_eq!(first.id("counter", &[]).await, "2");
    let batch = numeric(&first.ids("counter", 5_000, &[]).await);
    assert_eq!(batch[0], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_refuses_another_worker_id() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_app(Options::new().data_dir(data_dir.path()).flag("--worker-id", 3));
    let before: u64 = app.id("counter", &[]).await.parse().expect("u64");
    app.signal("TERM");
    assert_eq!(app.wait_exit(EXIT_DEADLINE).code(), Some(0));

    for other in [Options::new().flag("--worker-id", 4), Options::new()] {
        let refused = run_to_exit(other.data_dir(data_dir.path()));
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        let lines: Vec<&str> = refused.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", refused.stderr);
        for needle in ["invalid IDGEN_WORKER_ID", "worker id 3", "fresh data dir"] {
            assert!(lines[0].contains(needle), "{needle:?} missing in {}", lines[0]);
        }
    }

    // The id it was used with still works, and continues.
    let app = spawn_app(Options::new().data_dir(data_dir.path()).flag("--worker-id", 3));
    assert_eq!(app.worker_id, 3);
    let after: u64 = app.id("counter", &[]).await.parse().expect("u64");
    assert!(after > before, "{after} after {before}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migrated_data_dir_keeps_every_counter_and_both_time_marks() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    // Marks ahead of what a fresh start would issue: within the snowflake allowance (1000 ms),
    // and a timestamp mark the generator must run ahead of the clock to stay above.
    let snowflake_mark = now_ms() + 600;
    let timestamp_mark = now_ms() + 30_000;
    let counters = serde_json::json!({"default": 12, "orders": 5_000, "invoices": 77});
    write_old_state(data_dir.path(), snowflake_mark, timestamp_mark, &counters);

    let mut floors: HashMap<&str, u64> =
        [("default", 12), ("orders", 5_000), ("invoices", 77)].into_iter().collect();
    let mut timestamp_floor = timestamp_mark;
    for round in 0..2 {
        let app = spawn_app(Options::new().data_dir(data_dir.path()));
        for (name, floor) in floors.iter_mut() {
            let values = numeric(&app.ids("counter", 10, &[("name", name)]).await);
            assert!(
                values[0] > *floor,
                "round {round}: counter {name}: {} after {floor}",
                values[0]
            );
            *floor = *values.last().expect("values");
        }
        let snowflake: u64 = app.id("snowflake", &[]).await.parse().expect("u64");
        let snowflake_ms = (snowflake >> 22) + DEFAULT_EPOCH_MS;
        assert!(snowflake_ms > snowflake_mark, "round {round}: snowflake at {snowflake_ms}");
        let timestamps = numeric(&app.ids("timestamp", 10, &[]).await);
        assert!(timestamps[0] > timestamp_floor, "round {round}: timestamp {}", timestamps[0]);
        timestamp_floor = *timestamps.last().expect("timestamps");
        assert!(!data_dir.path().join("state.json").exists(), "state.json is renamed");
        assert!(data_dir.path().join("state.json.migrated").exists(), "and kept");
        app.kill();
    }
}
