//! 16 concurrent clients pulling batches of every sortable kind: no duplicates anywhere, every
//! batch strictly increasing.

use std::collections::HashSet;

use crate::helpers::{Options, TestApp, assert_strictly_increasing, http_client, spawn_app};

const CLIENTS: usize = 16;

/// `CLIENTS` tasks, each with its own connection pool, pull `batches` batches of `size` ids.
async fn pull_concurrently(app: &TestApp, kind: &'static str, batches: usize, size: usize) {
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = http_client();
        let url = app.ids_url(kind, &[("count", &size.to_string())]);
        tasks.push(tokio::spawn(async move {
            let mut pulled: Vec<Vec<String>> = Vec::with_capacity(batches);
            for _ in 0..batches {
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap_or_else(|error| panic!("GET {url}: {error}"));
                let status = response.status();
                let text = response.text().await.expect("read the body");
                assert_eq!(status, reqwest::StatusCode::OK, "{url}: {text}");
                let body: idgen_core::wire::IdsResponse =
                    serde_json::from_str(&text).expect("ids body");
                assert_eq!(body.ids.len(), size, "{url}");
                pulled.push(body.ids);
            }
            pulled
        }));
    }
    let mut seen = HashSet::with_capacity(CLIENTS * batches * size);
    for task in tasks {
        for batch in task.await.expect("client task") {
            assert_strictly_increasing(kind, &batch);
            for id in batch {
                assert!(seen.insert(id.clone()), "{kind}: {id} was issued twice");
            }
        }
    }
    assert_eq!(seen.len(), CLIENTS * batches * size, "{kind}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uuid7_batches_never_collide() {
    let app = spawn_app(Options::new());
    pull_concurrently(&app, "uuid7", 20, 500).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_ulid_batches_never_collide() {
    let app = spawn_app(Options::new());
    pull_concurrently(&app, "ulid", 20, 500).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_snowflake_batches_never_collide() {
    let app = spawn_app(Options::new());
    pull_concurrently(&app, "snowflake", 20, 500).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_counter_batches_never_collide() {
    let app = spawn_app(Options::new());
    pull_concurrently(&app, "counter", 20, 500).await;
}

/// Timestamps advance one ms per id once they outrun the clock, so a smaller volume keeps them
/// within a few seconds of now.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_timestamp_batches_never_collide() {
    let app = spawn_app(Options::new());
    pull_concurrently(&app, "timestamp", 10, 20).await;
}

/// All sortable kinds at once on one server: the generators do not share a lock that makes
/// them trip over each other.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_mixed_kinds_never_collide() {
    let app = spawn_app(Options::new());
    tokio::join!(
        pull_concurrently(&app, "uuid7", 5, 200),
        pull_concurrently(&app, "ulid", 5, 200),
        pull_concurrently(&app, "snowflake", 5, 200),
        pull_concurrently(&app, "counter", 5, 200),
        pull_concurrently(&app, "timestamp", 5, 10),
    );
}
