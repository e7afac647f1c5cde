//! `DELETE /v1/counters/{name}`: an operator retires a counter name. It frees one of the
//! `IDGEN_MAX_COUNTERS` slots, is not loaded again after a restart, and a later use of the name
//! continues above everything it issued. Admin only; embedded and Redis mode.

use std::collections::HashSet;
use std::time::Duration;

use idgen_core::wire::{ErrorCode, RetiredCounter};
use reqwest::{Method, StatusCode};

use crate::auth::new_key;
use crate::helpers::{Options, TestApp, assert_error, numeric, spawn_app};
use crate::redis_harness::RedisServer;
use crate::redis_mode::node;

async fn retire(app: &TestApp, name: &str) -> reqwest::Response {
    app.request(Method::DELETE, &format!("/v1/counters/{name}")).await
}

async fn retired(app: &TestApp, name: &str) -> RetiredCounter {
    let response = retire(app, name).await;
    assert_eq!(response.status(), StatusCode::OK, "DELETE /v1/counters/{name}");
    response.json().await.expect("retired counter body")
}

async fn values(app: &TestApp, name: &str, count: usize) -> Vec<u64> {
    numeric(&app.ids("counter", count, &[("name", name)]).await)
}

/// The counter names `/v1/status` lists.
async fn listed(app: &TestApp) -> Vec<String> {
    let status: serde_json::Value = app.get("/v1/status").await.json().await.expect("status");
    let counters = status["counters"].as_array().expect("counters");
    counters.iter().map(|counter| counter["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_counter_frees_its_slot_stays_retired_across_a_restart_and_resumes_above() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::new().data_dir(dir.path()).flag("--max-counters", 2);
    let mut app = spawn_app(options());
    let first = values(&app, "orders", 5).await;
    values(&app, "invoices", 1).await;
    let full = app.get_ids("counter", &[("name", "users")]).await;
    assert_error(full, StatusCode::BAD_REQUEST, ErrorCode::TooManyCounters).await;

    let orders = retired(&app, "orders").await;
    assert_eq!(orders.name, "orders");
    let mark = orders.mark.expect("orders has a mark");
    assert!(mark >= *first.last().unwrap(), "mark {mark} below the last value {first:?}");
    assert!(!listed(&app).await.contains(&"orders".to_owned()));
    // Its slot is free: a new name fits.
    values(&app, "users", 1).await;
    // A name that is not kept here, and one that is not a name.
    assert_error(retire(&app, "orders").await, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    assert_error(
        retire(&app, "no%20such").await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidCounterName,
    )
    .await;

    // A clean restart: the retired name is not loaded (two slots: invoices and users).
    app.signal("TERM");
    assert!(app.wait_exit(Duration::from_secs(10)).success());
    drop(app);
    let app = spawn_app(options());
    let mut names = listed(&app).await;
    names.sort();
    assert_eq!(names, ["invoices", "users"]);
    retired(&app, "users").await;
    // Used again, the name continues above its mark: never a value it issued before.
    let again = values(&app, "orders", 3).await;
    assert!(again[0] > mark, "orders resumed at {again:?}, its mark was {mark}");
    assert!(again.iter().all(|value| !first.contains(value)));
}

#[tokio::test(flavor = "multi_thread")]
async fn retiring_needs_the_admin_scope_or_the_admin_listener() {
    let root = tempfile::tempdir().unwrap();
    let (user, user_entry) = new_key("svc", &["counter:*"]);
    let (ops, ops_entry) = new_key("ops", &["admin"]);
    let file = root.path().join("keys.toml");
    std::fs::write(&file, format!("{user_entry}\n\n{ops_entry}\n")).unwrap();
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    let bearer = |secret: &str| format!("Bearer {secret}");
    let taken = app
        .client
        .get(app.url("/v1/ids/counter?name=jobs"))
        .header("authorization", bearer(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::OK);
    let delete = |secret: Option<&str>| {
        let mut request = app.client.delete(app.url("/v1/counters/jobs"));
        if let Some(secret) = secret {
            request = request.header("authorization", bearer(secret));
        }
        request.send()
    };
    assert_error(delete(None).await.unwrap(), StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized)
        .await;
    let refused = delete(Some(&user)).await.unwrap();
    let message = assert_error(refused, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    assert!(message.contains("admin"), "{message}");
    assert_eq!(delete(Some(&ops)).await.unwrap().status(), StatusCode::OK);

    // With an admin listener, the main listener does not serve the route at all.
    let app = spawn_app(Options::new().flag("--admin-bind", "127.0.0.1:0"));
    app.id("counter", &[("name", "jobs")]).await;
    assert_error(retire(&app, "jobs").await, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_node_forgets_a_retired_counter_and_the_counter_goes_on_in_redis() {
    let Some(redis) = RedisServer::start(
        "a_redis_node_forgets_a_retired_counter_and_the_counter_goes_on_in_redis",
    ) else {
        return;
    };
    for block in [1, 100] {
        let name = format!("orders-{block}");
        let app =
            node(&redis, Options::new().flag("--counter-block", block).flag("--max-counters", 1));
        let mut seen: HashSet<u64> = values(&app, &name, 5).await.into_iter().collect();
        let other = app.get_ids("counter", &[("name", "other")]).await;
        assert_error(other, StatusCode::BAD_REQUEST, ErrorCode::TooManyCounters).await;
        let gone = retired(&app, &name).await;
        assert!(gone.mark.is_some_and(|mark| mark >= 5), "{gone:?}");
        // The slot is free on this node; the counter itself lives on in Redis.
        values(&app, "other", 1).await;
        retired(&app, "other").await;
        for value in values(&app, &name, 5).await {
            assert!(value > 5 && seen.insert(value), "block {block}: {value} again");
        }
    }
}
