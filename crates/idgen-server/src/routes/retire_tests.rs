//! Retiring a counter while requests use it, in process on the in-memory back end: the
//! retirement waits for them and, if one never finishes, refuses (503) and leaves the counter
//! as it was; a name being retired answers 503, never a value.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use idgen_core::SystemClock;

use crate::backend::memory::MemoryBackend;
use crate::config::Config;
use crate::issue::SharedClock;
use crate::issue::policy::CEILING_DEADLINE;
use crate::rate_limit::RateLimit;
use crate::routes::Surface;
use crate::startup::app;
use crate::state::AppState;

fn state_on(store: &MemoryBackend) -> web::Data<AppState> {
    let config = Config::default();
    let clock: SharedClock = Arc::new(SystemClock);
    web::Data::new(AppState::new(&config, store.open(&config), clock).unwrap())
}

/// `request` through a fresh app on `state`: status and body.
async fn call(
    state: &web::Data<AppState>,
    request: TestRequest,
) -> (StatusCode, serde_json::Value) {
    let service =
        test::init_service(app(state.clone(), RateLimit::local(&Config::default()), Surface::All))
            .await;
    let response = test::call_service(&service, request.to_request()).await;
    let status = response.status();
    let body = test::read_body(response).await;
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[actix_web::test]
async fn a_counter_a_stalled_request_holds_is_not_retired_and_goes_on() {
    let store = MemoryBackend::new();
    let state = state_on(&store);
    // The first request for `fresh` waits for its first mark, which never comes.
    store.stall(true);
    let stalled = actix_web::rt::spawn({
        let state = state.clone();
        async move { call(&state, TestRequest::get().uri("/v1/ids/counter?name=fresh")).await }
    });
    for _ in 0..20 {
        actix_web::rt::task::yield_now().await;
    }
    let started = Instant::now();
    let (status, body) = call(&state, TestRequest::delete().uri("/v1/counters/fresh")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("retired"), "{body}");
    assert!(started.elapsed() >= CEILING_DEADLINE, "it waited for the request first");

    // The counter was left as it was: once the store answers again, it issues.
    store.stall(false);
    stalled.abort();
    let (status, body) = call(&state, TestRequest::get().uri("/v1/ids/counter?name=fresh")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first: u64 = body["id"].as_str().unwrap().parse().unwrap();
    // Idle now: it retires, and a new use starts above every value it issued.
    let (status, body) = call(&state, TestRequest::delete().uri("/v1/counters/fresh")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["mark"].as_u64().unwrap() >= first, "{body}");
    let (status, body) = call(&state, TestRequest::get().uri("/v1/ids/counter?name=fresh")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again: u64 = body["id"].as_str().unwrap().parse().unwrap();
    assert!(again > first, "{again} after {first}");
}
