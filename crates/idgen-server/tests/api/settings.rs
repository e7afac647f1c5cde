//! Settings: env vars and flags (the flag wins); a bad setting stops the server at once with
//! one stderr line naming it, never a panic.

use std::time::Duration;

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{Options, assert_error, run_to_exit, spawn_app};

/// A bad setting must be reported well before a server would have started.
const QUICK: Duration = Duration::from_secs(10);

/// Starts the server with `options`, which hold one bad setting, and checks it exits non-zero
/// quickly with exactly one stderr line that contains one of `names`.
fn check_refused(options: Options, names: &[&str]) {
    let what = format!("{options:?}");
    let exited = run_to_exit(options);
    assert!(!exited.status.success(), "{what}: exited with {}", exited.status);
    assert!(exited.elapsed < QUICK, "{what}: took {:?} to give up", exited.elapsed);
    assert!(
        !exited.stdout.contains("listening"),
        "{what}: it must not report listening: {:?}",
        exited.stdout
    );
    for needle in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !exited.stderr.contains(needle),
            "{what}: stderr has {needle:?}: {}",
            exited.stderr
        );
    }
    let lines: Vec<&str> = exited.stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: expected one stderr line, got {:?}", exited.stderr);
    assert!(
        names.iter().any(|name| lines[0].contains(name)),
        "{what}: the line should name {names:?}: {:?}",
        lines[0]
    );
}

#[test]
fn worker_id_out_of_range_in_env_is_refused() {
    check_refused(Options::new().env("IDGEN_WORKER_ID", 5000), &["IDGEN_WORKER_ID"]);
}

#[test]
fn worker_id_not_a_number_in_env_is_refused() {
    check_refused(Options::new().env("IDGEN_WORKER_ID", "five"), &["IDGEN_WORKER_ID"]);
}

#[test]
fn max_batch_not_a_number_in_env_is_refused() {
    check_refused(Options::new().env("IDGEN_MAX_BATCH", "abc"), &["IDGEN_MAX_BATCH"]);
}

#[test]
fn rate_limit_not_a_number_in_env_is_refused() {
    check_refused(
        Options::new().env("IDGEN_RATE_LIMIT_PER_SECOND", "-1"),
        &["IDGEN_RATE_LIMIT_PER_SECOND"],
    );
}

#[test]
fn worker_id_out_of_range_as_a_flag_is_refused() {
    check_refused(Options::new().flag("--worker-id", 2000), &["IDGEN_WORKER_ID", "--worker-id"]);
}

#[test]
fn worker_id_not_a_number_as_a_flag_is_refused() {
    check_refused(Options::new().flag("--worker-id", "abc"), &["IDGEN_WORKER_ID", "--worker-id"]);
}

#[test]
fn unparsable_bind_in_env_is_refused() {
    check_refused(
        Options::new().without_bind_flag().env("IDGEN_BIND", "nonsense"),
        &["IDGEN_BIND"],
    );
}

#[test]
fn data_dir_below_a_regular_file_is_refused() {
    let root = tempfile::tempdir().expect("temp dir");
    let file = root.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write a file");
    check_refused(
        Options::new().without_data_dir_flag().env("IDGEN_DATA_DIR", file.join("data").display()),
        &["IDGEN_DATA_DIR"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn env_vars_are_read() {
    let app = spawn_app(Options::new().env("IDGEN_WORKER_ID", 5).env("IDGEN_MAX_BATCH", 5));
    assert_eq!(app.worker_id, 5, "start-up line: {}", app.startup_line);
    let id = app.id("snowflake", &[]).await;
    let (decoded, _) = app.decoded("snowflake", &id).await;
    assert_eq!(decoded.worker_id, Some(5));
    assert_eq!(app.ids("uuid", 5, &[]).await.len(), 5);
    let response = app.get_ids("uuid", &[("count", "6")]).await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidCount).await;
    // Clients size their chunks from what /v1/kinds says.
    let kinds: serde_json::Value = app.get("/v1/kinds").await.json().await.expect("JSON");
    assert_eq!(kinds["max_batch"], 5, "{kinds}");
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_win_over_env_vars() {
    let app = spawn_app(
        Options::new()
            .env("IDGEN_WORKER_ID", 5)
            .flag("--worker-id", 7)
            .env("IDGEN_MAX_BATCH", 5)
            .flag("--max-batch", 8),
    );
    assert_eq!(app.worker_id, 7, "start-up line: {}", app.startup_line);
    let id = app.id("snowflake", &[]).await;
    let (decoded, _) = app.decoded("snowflake", &id).await;
    assert_eq!(decoded.worker_id, Some(7));
    assert_eq!(app.ids("uuid", 8, &[]).await.len(), 8);
    let response = app.get_ids("uuid", &[("count", "9")]).await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidCount).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_dir_and_bind_come_from_env_vars() {
    let root = tempfile::tempdir().expect("temp dir");
    let data_dir = root.path().join("from-env");
    let app = spawn_app(
        Options::new()
            .without_bind_flag()
            .without_data_dir_flag()
            .env("IDGEN_BIND", "127.0.0.1:0")
            .env("IDGEN_DATA_DIR", data_dir.display()),
    );
    assert!(data_dir.is_dir(), "IDGEN_DATA_DIR {data_dir:?} was not created");
    assert_eq!(app.id("counter", &[]).await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_epoch_is_configurable() {
    // An epoch one day before the default one: timestamps decode relative to it.
    let epoch = crate::helpers::DEFAULT_EPOCH_MS - 86_400_000;
    let app = spawn_app(Options::new().flag("--snowflake-epoch-ms", epoch));
    let id: u64 = app.id("snowflake", &[]).await.parse().expect("u64");
    let (decoded, _) = app.decoded("snowflake", &id.to_string()).await;
    let timestamp_ms = decoded.timestamp_ms.expect("timestamp_ms");
    assert_eq!((id >> 22) + epoch, timestamp_ms, "the epoch is added when decoding");
    crate::helpers::assert_close_to_now("snowflake", timestamp_ms, 10_000);
}

#[tokio::test]
async fn an_unknown_variable_stops_the_server_with_the_closest_setting() {
    check_refused(Options::new().env("IDGEN_WORKERID", 3), &["did you mean IDGEN_WORKER_ID?"]);
    let exited = run_to_exit(Options::new().env("IDGEN_WORKERID", 3));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
}

#[tokio::test]
async fn stateful_set_pods_get_their_worker_id_from_the_host_name() {
    let first =
        spawn_app(Options::new().env("HOSTNAME", "idgen-0").env("IDGEN_WORKER_ID", "ordinal"));
    let second =
        spawn_app(Options::new().env("HOSTNAME", "idgen-1").env("IDGEN_WORKER_ID", "ordinal"));
    assert_eq!((first.worker_id, second.worker_id), (0, 1));
    assert!(!first.startup_line.contains("default"), "{}", first.startup_line);
    let offset = spawn_app(
        Options::new().env("HOSTNAME", "idgen-orders-7").flag("--worker-id", "ordinal+100"),
    );
    assert_eq!(offset.worker_id, 107);
    // The same snowflake millisecond from the two pods still gives two different ids.
    let a: u64 = first.id("snowflake", &[]).await.parse().unwrap();
    let b: u64 = second.id("snowflake", &[]).await.parse().unwrap();
    assert_ne!((a >> 12) & 0x3ff, (b >> 12) & 0x3ff);
    // A host name without a number is a setting error, not worker 0.
    check_refused(
        Options::new().env("HOSTNAME", "idgen").env("IDGEN_WORKER_ID", "ordinal"),
        &["IDGEN_WORKER_ID"],
    );
    // Nobody chose worker 0: the start-up line says so.
    let defaulted = spawn_app(Options::new());
    assert!(
        defaulted.startup_line.ends_with("(mode: embedded, worker 0, default, open: no API keys)")
    );
}
