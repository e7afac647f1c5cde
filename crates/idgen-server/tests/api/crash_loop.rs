//! A hundred `kill -9` restarts in a row of the real binary on one data dir: every kind keeps
//! issuing above everything it issued before, and the timestamp mark stays within its bound of
//! the clock instead of doubling its lead with every crash.

use crate::helpers::{Options, now_ms, spawn_app};

/// How many crashes; `IDGEN_TEST_CRASHES` makes a longer run.
fn crashes() -> usize {
    std::env::var("IDGEN_TEST_CRASHES").ok().and_then(|n| n.parse().ok()).unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_kill_9_restarts_keep_the_marks_bounded_and_every_kind_issuing() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut last: std::collections::HashMap<&str, String> = Default::default();
    let mut last_timestamp = 0u64;
    for life in 0..crashes() {
        let app = spawn_app(Options::new().data_dir(data_dir.path()).flag("--worker-id", 9));
        let batch = app.ids("timestamp", 20, &[]).await;
        let first: u64 = batch[0].parse().expect("a number");
        assert!(first > last_timestamp, "life {life}: timestamp {first} after {last_timestamp}");
        last_timestamp = batch[19].parse().expect("a number");
        for kind in ["uuid7", "ulid", "snowflake", "counter", "ksuid", "typeid"] {
            let id = app.id(kind, &[]).await;
            if let Some(previous) = last.get(kind) {
                let increasing = match kind {
                    "snowflake" | "counter" => {
                        id.parse::<u64>().unwrap() > previous.parse::<u64>().unwrap()
                    }
                    _ => id > *previous,
                };
                assert!(increasing, "life {life}: {kind} {id} after {previous}");
            }
            last.insert(kind, id);
        }
        app.kill();
    }
    // About half a second and one batch per crash at most, never doubling: a minute bounds
    // it (100 crashes of a few ms each would have pushed a doubling mark past the year 3000).
    let lead = last_timestamp.saturating_sub(now_ms());
    assert!(lead <= 60_000, "timestamp lead after {} crashes: {lead} ms", crashes());
}
