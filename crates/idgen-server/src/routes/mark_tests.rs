//! Durable time marks through the whole app, in process, on the in-memory back end with a
//! manual clock: output never goes backwards across restarts with the clock set back, crash
//! after crash leaves the marks within their bound, and a mark at the end of a kind's range is
//! refused at once and reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use idgen_core::{Clock, ManualClock, SystemClock};

use crate::backend::Mark;
use crate::backend::memory::MemoryBackend;
use crate::config::Config;
use crate::issue::SharedClock;
use crate::issue::policy::MAX_TIME_RESERVATION_MS;
use crate::rate_limit::RateLimit;
use crate::routes::Surface;
use crate::startup::app;
use crate::state::AppState;

fn state_on(store: &MemoryBackend, clock: &Arc<ManualClock>) -> web::Data<AppState> {
    let config = Config::default();
    let clock: SharedClock = clock.clone();
    web::Data::new(AppState::new(&config, store.open(&config), clock).unwrap())
}

/// `GET path` through a fresh app on `state`: status and body.
async fn get(state: &web::Data<AppState>, path: &str) -> (StatusCode, serde_json::Value) {
    let service =
        test::init_service(app(state.clone(), RateLimit::local(&Config::default()), Surface::All))
            .await;
    let response = test::call_service(&service, TestRequest::get().uri(path).to_request()).await;
    let status = response.status();
    let body = test::read_body(response).await;
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

async fn id(state: &web::Data<AppState>, kind: &str) -> String {
    let (status, body) = get(state, &format!("/v1/ids/{kind}")).await;
    assert_eq!(status, StatusCode::OK, "{kind}: {body}");
    body["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn uuid7_and_ulid_never_go_backwards_across_a_restart_with_the_clock_set_back() {
    let store = MemoryBackend::new();
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let before = state_on(&store, &clock);
    let (uuid7, ulid) = (id(&before, "uuid7").await, id(&before, "ulid").await);
    // A crash (no settle), then the clock set back ten minutes before the restart.
    drop(before);
    clock.set(clock.now_ms() - 600_000);
    let after = state_on(&store, &clock);
    for _ in 0..3 {
        let (next7, next_ulid) = (id(&after, "uuid7").await, id(&after, "ulid").await);
        assert!(next7 > uuid7, "uuid7 {next7} after {uuid7}");
        assert!(next_ulid > ulid, "ulid {next_ulid} after {ulid}");
    }
}

#[actix_web::test]
async fn a_hundred_crashes_in_a_row_keep_every_mark_within_its_bound() {
    let store = MemoryBackend::new();
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let mut last_timestamp = 0u64;
    for life in 0..100 {
        let state = state_on(&store, &clock);
        let (status, body) = get(&state, "/v1/ids/timestamp?count=20").await;
        assert_eq!(status, StatusCode::OK, "life {life}: {body}");
        let first: u64 = body["ids"][0].as_str().unwrap().parse().unwrap();
        assert!(first > last_timestamp, "life {life}: {first} after {last_timestamp}");
        last_timestamp = body["ids"][19].as_str().unwrap().parse().unwrap();
        for kind in ["uuid7", "ulid", "snowflake", "counter"] {
            id(&state, kind).await;
        }
        // Each life lasts 50 ms of clock, then crashes: no settle.
        clock.advance(50);
    }
    // The lead is bounded: about 500 ms plus one batch per crash, not doubling.
    let lead = last_timestamp.saturating_sub(clock.now_ms());
    assert!(lead <= 100 * (500 + 20), "timestamp lead {lead} ms after 100 crashes");
    assert!(lead <= MAX_TIME_RESERVATION_MS, "{lead}");
    let state = state_on(&store, &clock);
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
}

#[actix_web::test]
async fn a_mark_at_the_end_of_the_range_is_refused_at_once_and_not_ready() {
    let store = MemoryBackend::new();
    store.set_mark(Mark::Timestamp, u64::MAX - 1);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let state = state_on(&store, &clock);
    let started = Instant::now();
    let (status, body) = get(&state, "/v1/ids/timestamp").await;
    assert!(started.elapsed() < Duration::from_millis(500), "refused without waiting");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("end of what timestamp ids can hold")
    );
    let (status, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["reasons"][0].as_str().unwrap().starts_with("timestamp: the durable mark"),
        "{body}"
    );
    // Other kinds are served.
    id(&state, "uuid7").await;
}
