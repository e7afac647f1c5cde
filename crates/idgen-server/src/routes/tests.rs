//! The routes through the whole app, in process (`actix_web::test`), on the in-memory back end:
//! every kind, formats and bodies, validation, 405s, the tutorial shapes, the rate limiter, and
//! restarts on the same store.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{Method, StatusCode, header};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use idgen_core::{Clock, ManualClock, SystemClock};
use serde_json::Value;

use crate::backend::memory::MemoryBackend;
use crate::config::Config;
use crate::issue::SharedClock;
use crate::rate_limit::RateLimit;
use crate::routes::{self, Surface};
use crate::startup::{BODY_LIMIT_BYTES, app};
use crate::state::AppState;

/// A state on a fresh store (the second value keeps the old call shape of these tests).
fn state_with(config: Config, clock: SharedClock) -> (web::Data<AppState>, MemoryBackend) {
    let store = MemoryBackend::new();
    let state = state_in(&store, config, clock);
    (state, store)
}

/// A state on `store`: a restart when `store` was used before.
fn state_in(store: &MemoryBackend, config: Config, clock: SharedClock) -> web::Data<AppState> {
    web::Data::new(AppState::new(&config, store.open(&config), clock).unwrap())
}

macro_rules! service {
    ($state:expr, $config:expr) => {
        test::init_service(app($state.clone(), RateLimit::local(&$config), Surface::All)).await
    };
}

struct Reply {
    status: StatusCode,
    headers: header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
    fn error_code(&self) -> String {
        let body = self.json();
        assert_eq!(body.as_object().unwrap().len(), 1, "{}", self.text);
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text);
        body["error"]["code"].as_str().unwrap().to_owned()
    }
    fn ids(&self) -> Vec<String> {
        let body = self.json();
        body["ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect()
    }
}

async fn reply(response: ServiceResponse<impl MessageBody>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = test::read_body(response).await;
    Reply { status, headers, text: String::from_utf8(bytes.to_vec()).unwrap() }
}

/// Sends a `TestRequest` to the service and reads the whole reply.
macro_rules! call {
    ($service:expr, $request:expr) => {
        reply(test::call_service($service, $request.to_request()).await)
    };
}

fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(path)
}

fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

#[actix_web::test]
async fn every_kind_issues_one_and_a_batch() {
    let config = Config::default();
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    for kind in idgen_core::Kind::ALL {
        let reply = call!(&service, get(&format!("/v1/ids/{kind}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert!(body["id"].is_string(), "{kind}: {}", reply.text);

        let reply = call!(&service, get(&format!("/v1/ids/{kind}?count=500"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
        let ids = reply.ids();
        assert_eq!(ids.len(), 500);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 500, "{kind}: duplicates");
        if kind.sortable() {
            let numeric = matches!(
                kind,
                idgen_core::Kind::Snowflake
                    | idgen_core::Kind::Timestamp
                    | idgen_core::Kind::Counter
            );
            for pair in ids.windows(2) {
                let increasing = if numeric {
                    pair[0].parse::<u64>().unwrap() < pair[1].parse::<u64>().unwrap()
                } else {
                    pair[0] < pair[1]
                };
                assert!(increasing, "{kind}: {} then {}", pair[0], pair[1]);
            }
        }
    }
}

#[actix_web::test]
async fn plain_text_and_post_bodies() {
    let config = Config::default();
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);

    let reply =
        call!(&service, get("/v1/ids/ulid?count=3").insert_header(("accept", "text/plain"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let lines: Vec<&str> = reply.text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|line| line.len() == 26));
    assert!(reply.text.ends_with('\n'));

    let reply =
        call!(&service, get("/v1/ids/image?count=3").insert_header(("accept", "image/png"))).await;
    assert_eq!(reply.error_code(), "unknown_kind");
    let reply = call!(&service, get("/v1/ids/uuid").insert_header(("accept", "image/png"))).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::NOT_ACCEPTABLE, "not_acceptable")
    );

    let post = TestRequest::post()
        .uri("/v1/ids/random?alphabet=hex")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"count": 4, "length": 10, "alphabet": "base58"}"#);
    let reply = call!(&service, post).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let ids = reply.ids();
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|id| id.len() == 10 && id.bytes().all(|b| b.is_ascii_hexdigit())));

    let reply = call!(&service, TestRequest::post().uri("/v1/ids/uuid")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["id"].is_string());

    let post = TestRequest::post().uri("/v1/ids/uuid").set_payload("{not json");
    let reply = call!(&service, post).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );

    let post = TestRequest::post().uri("/v1/ids/uuid").set_payload(vec![b' '; 64 * 1024]);
    let reply = call!(&service, post).await;
    assert_eq!(reply.error_code(), "invalid_body");
}

#[actix_web::test]
async fn validation_errors() {
    let config = Config { max_batch: 10, max_counters: 2, ..Config::default() };
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    for (path, status, code) in [
        ("/v1/ids/uuid?count=0", 400, "invalid_count"),
        ("/v1/ids/uuid?count=11", 400, "invalid_count"),
        ("/v1/ids/uuid?count=ten", 400, "invalid_count"),
        ("/v1/ids/random?length=0", 400, "invalid_length"),
        ("/v1/ids/random?length=1025", 400, "invalid_length"),
        ("/v1/ids/random?alphabet=emoji", 400, "invalid_alphabet"),
        ("/v1/ids/counter?name=no%20spaces", 400, "invalid_counter_name"),
        ("/v1/ids/nope", 404, "unknown_kind"),
        ("/v1/decode/nope/1", 404, "unknown_kind"),
        ("/v1/decode/uuid/not-a-uuid", 400, "invalid_id"),
        ("/v1/decode/snowflake/-5", 400, "invalid_id"),
        ("/v1/decode/counter/5", 400, "not_decodable"),
        ("/v1/decode/random/abc", 400, "not_decodable"),
        ("/generate_random_string/0", 400, "invalid_length"),
        ("/generate_random_string/abc", 400, "invalid_length"),
        ("/nowhere", 404, "not_found"),
        ("/v1/ids", 404, "not_found"),
        ("/v1/decode/uuid", 404, "not_found"),
    ] {
        let reply = call!(&service, get(path)).await;
        assert_eq!(reply.status.as_u16(), status, "{path}: {}", reply.text);
        assert_eq!(reply.error_code(), code, "{path}");
        for leak in ["::", "/src/", ".rs", "127.0.0.1"] {
            assert!(!reply.text.contains(leak), "{path}: {}", reply.text);
        }
    }
    // Unknown parameters are ignored; parameters of other kinds too.
    let reply = call!(&service, get("/v1/ids/uuid?foo=1&length=abc")).await;
    assert_eq!(reply.status, StatusCode::OK);

    // At most two counter names.
    for name in ["a", "b", "a"] {
        let reply = call!(&service, get(&format!("/v1/ids/counter?name={name}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let reply = call!(&service, get("/v1/ids/counter?name=c")).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "too_many_counters")
    );
}

#[actix_web::test]
async fn wrong_method_is_405_with_allow() {
    let config = Config::default();
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    for (method, path, allow) in [
        (Method::PUT, "/v1/ids/uuid", "GET, HEAD, POST"),
        (Method::DELETE, "/v1/ids/nope", "GET, HEAD, POST"),
        (Method::POST, "/v1/kinds", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::POST, "/readyz", "GET, HEAD"),
        (Method::POST, "/openapi.json", "GET, HEAD"),
        (Method::POST, "/generate_uuid", "GET, HEAD"),
        (Method::POST, "/generate_random_string/5", "GET, HEAD"),
        (Method::PATCH, "/v1/decode/uuid/x", "GET, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
        (Method::DELETE, "/v1/status", "GET, HEAD"),
        (Method::POST, "/docs/", "GET, HEAD"),
    ] {
        let reply = call!(&service, TestRequest::default().method(method.clone()).uri(path)).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(reply.error_code(), "method_not_allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
}

/// The router matches paths as actix's router sees them (percent-decoded where safe), so a
/// path and its percent-encoded form get the same answer, with the rate limiter off and on;
/// HEAD is answered like GET (no body); POST bodies are read, limited and checked.
#[actix_web::test]
async fn percent_encoded_paths_wrong_methods_and_bodies_answer_alike() {
    for per_second in [0, 1_000_000] {
        let config = Config {
            rate_limit_per_second: per_second,
            rate_limit_burst: per_second,
            ..Config::default()
        };
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        // (fixed, left to actix): percent-encoded digits are decoded by actix only.
        for (fixed, behind) in [
            ("/generate_random_string/21", "/generate_random_string/%32%31"),
            ("/generate_random_string/0", "/generate_random_string/%30"),
            ("/generate_random_string/1025", "/generate_random_string/%31025"),
        ] {
            let a = call!(&service, get(fixed)).await;
            let b = call!(&service, get(behind)).await;
            assert_eq!(a.status, b.status, "{fixed} vs {behind}: {} / {}", a.text, b.text);
            if a.status == StatusCode::OK {
                let length = |reply: &Reply| reply.json()["id"].as_str().unwrap().len();
                assert_eq!((length(&a), length(&b)), (21, 21));
            } else {
                assert_eq!(a.error_code(), "invalid_length");
                assert_eq!(a.text, b.text);
            }
        }
        // HEAD goes where GET goes: a known kind (200) and an unknown one (404).
        for (path, status) in
            [("/v1/ids/uuid", StatusCode::OK), ("/v1/ids/nope", StatusCode::NOT_FOUND)]
        {
            let reply =
                call!(&service, TestRequest::default().method(Method::HEAD).uri(path)).await;
            assert_eq!(reply.status, status, "HEAD {path}");
        }
        // POST bodies through the fixed router: read, limited and checked as before.
        let post = |body: Vec<u8>| {
            TestRequest::post()
                .uri("/v1/ids/uuid7")
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(body)
        };
        let reply = call!(&service, post(br#"{"count": 2}"#.to_vec())).await;
        assert_eq!(reply.ids().len(), 2, "{}", reply.text);
        let reply = call!(&service, post(b"[]".to_vec())).await;
        assert_eq!(reply.error_code(), "invalid_body");
        let reply = call!(&service, post(vec![b' '; BODY_LIMIT_BYTES + 1])).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
        assert!(reply.json()["error"]["code"].is_string(), "{}", reply.text);
    }
}

#[actix_web::test]
async fn every_listed_route_is_registered() {
    let config = Config::default();
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    // The counter the DELETE route retires.
    let reply = call!(&service, get("/v1/ids/counter?name=registered")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    for entry in routes::TABLE.iter() {
        // Bounds are of a time-ordered kind, at a time.
        let pattern = entry.pattern.replace("/v1/bounds/{kind}", "/v1/bounds/uuid7?time=0");
        let path = pattern
            .replace("{kind}", "uuid")
            .replace("{id}", "0192f1d6-54e1-4b2a-8a1c-3c5e2f8d9a70")
            .replace("{length}", "8")
            .replace("{file}", "swagger-initializer.js")
            .replace("{name}", "registered");
        let request = TestRequest::default().method(entry.method.clone()).uri(&path);
        let reply = call!(&service, request).await;
        let expected = if path == "/docs" { StatusCode::FOUND } else { StatusCode::OK };
        assert_eq!(reply.status, expected, "GET {path}: {}", reply.text);
    }
}

#[actix_web::test]
async fn decode_round_trips() {
    let config = Config { worker_id: 42, ..Config::default() };
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    for kind in ["snowflake", "uuid7", "ulid", "timestamp", "uuid"] {
        let id = call!(&service, get(&format!("/v1/ids/{kind}"))).await.json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = call!(&service, get(&format!("/v1/decode/{kind}/{id}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{kind} {id}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["id"], id.as_str());
        if kind == "uuid" {
            assert_eq!(
                (body["version"].as_u64(), body["variant"].as_str()),
                (Some(4), Some("rfc9562"))
            );
        } else {
            let ms = body["timestamp_ms"].as_u64().unwrap();
            assert_eq!(body["time"].as_str().unwrap(), idgen_core::wire::rfc3339_ms(ms));
            let now = SystemClock.now_ms();
            assert!(ms.abs_diff(now) < 60_000, "{kind}: {ms} vs {now}");
        }
        if kind == "snowflake" {
            assert_eq!(body["worker_id"], 42);
            assert!(body["sequence"].is_u64());
        }
    }
}

#[actix_web::test]
async fn kinds_health_and_openapi() {
    let config = Config::default();
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    let kinds = call!(&service, get("/v1/kinds")).await.json();
    let names: Vec<&str> =
        kinds["kinds"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["uuid", "uuid7", "ulid", "snowflake", "timestamp", "counter", "random", "typeid", "ksuid"]
    );
    assert_eq!(call!(&service, get("/healthz")).await.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(call!(&service, get("/readyz")).await.json(), serde_json::json!({"status": "ok"}));

    let document = call!(&service, get("/openapi.json")).await.json();
    assert_eq!(document["info"]["title"], "idgen");
    assert!(document["openapi"].as_str().unwrap().starts_with('3'));
    // Every route of the table is documented, `{kind}` as one path per kind (decoding: per
    // kind with a decoder); the Swagger UI's own files are not part of the API.
    for (pattern, allow) in routes::TABLE.iter().map(|entry| (&entry.pattern, &entry.allow)) {
        if pattern.starts_with("/docs") {
            assert!(document["paths"][pattern.as_str()].is_null(), "{pattern} documented");
            continue;
        }
        let kinds = idgen_core::Kind::ALL
            .iter()
            .filter(|kind| !pattern.starts_with("/v1/decode/") || kind.info().decode.is_some())
            .filter(|kind| !pattern.starts_with("/v1/bounds/") || kind.info().bounds.is_some());
        let paths: Vec<String> = if pattern.contains("{kind}") {
            let mut paths: Vec<String> =
                kinds.map(|kind| pattern.replace("{kind}", kind.name())).collect();
            if pattern.starts_with("/v1/ids/") {
                paths.push(pattern.clone());
            }
            paths
        } else {
            vec![pattern.clone()]
        };
        for path in paths {
            let item = &document["paths"][path.as_str()];
            assert!(item.is_object(), "{path} missing from the OpenAPI document");
            // HEAD is served wherever GET is; the document lists the GETs.
            for method in allow.split(", ").filter(|method| *method != "HEAD") {
                assert!(item[method.to_lowercase()].is_object(), "{method} {path} undocumented");
            }
        }
    }
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
}

#[actix_web::test]
async fn tutorial_routes_keep_their_shapes() {
    let config = Config::default();
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    let uuid = call!(&service, get("/generate_uuid")).await;
    assert_eq!(uuid.header("cache-control"), Some("no-store"));
    assert_eq!(uuid.json()["id"].as_str().unwrap().len(), 36);
    let timestamp = call!(&service, get("/generate_timestamp_id")).await.json();
    assert!(timestamp["id"].as_str().unwrap().parse::<u64>().is_ok());
    let first = call!(&service, get("/generate_counter_id")).await.json()["id"].as_u64().unwrap();
    let second = call!(&service, get("/generate_counter_id")).await.json()["id"].as_u64().unwrap();
    assert_eq!((first, second), (1, 2));
    // The same counter as /v1/ids/counter (named `default`).
    let third = call!(&service, get("/v1/ids/counter")).await.json();
    assert_eq!(third["id"], "3");
    let snowflake = call!(&service, get("/generate_snowflake_id")).await.json();
    assert!(snowflake["id"].as_u64().unwrap() > 0);
    let random = call!(&service, get("/generate_random_string/12")).await.json();
    let text = random["id"].as_str().unwrap();
    assert!(text.len() == 12 && text.bytes().all(|b| b.is_ascii_alphanumeric()));
}

#[actix_web::test]
async fn rate_limit_answers_429_with_headers_and_spares_probes() {
    let config = Config { rate_limit_per_second: 1, rate_limit_burst: 2, ..Config::default() };
    let (state, _dir) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    for _ in 0..2 {
        assert_eq!(call!(&service, get("/v1/ids/uuid")).await.status, StatusCode::OK);
    }
    let reply = call!(&service, get("/generate_uuid")).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(reply.header("ratelimit-limit"), Some("2"));
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    assert!(reply.header("ratelimit-reset").unwrap().parse::<u64>().unwrap() >= 1);
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(call!(&service, get(path)).await.status, StatusCode::OK, "{path}");
    }
    let reply = call!(&service, TestRequest::post().uri("/readyz")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call!(&service, get("/nowhere")).await.status, StatusCode::NOT_FOUND);
    // A wrong method on a limited route is limited like the route.
    let reply = call!(&service, TestRequest::put().uri("/v1/ids/uuid")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // Another client (by peer address) has its own budget.
    let other = get("/v1/ids/uuid").peer_addr("192.0.2.7:5000".parse().unwrap());
    assert_eq!(call!(&service, other).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn clock_behind_the_mark_is_503_and_not_ready() {
    let store = MemoryBackend::new();
    let now = SystemClock.now_ms();
    let clock = Arc::new(ManualClock::new(now));
    let config = Config::default();
    {
        let state = state_in(&store, config.clone(), clock.clone());
        let service = service!(state, config);
        assert_eq!(call!(&service, get("/v1/ids/snowflake")).await.status, StatusCode::OK);
    }
    // Restarted with the clock set back by a minute: no snowflake, 503 with Retry-After.
    clock.set(now - 60_000);
    let state = state_in(&store, config.clone(), clock.clone());
    let service = service!(state, config);
    let reply = call!(&service, get("/v1/ids/snowflake")).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((58..=61).contains(&retry_after), "{retry_after}");
    let ready = call!(&service, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "unavailable");
    assert!(ready.json()["reasons"][0].as_str().unwrap().starts_with("snowflake"));
    assert!(ready.header("retry-after").is_some());
    // Other kinds are still served.
    assert_eq!(call!(&service, get("/v1/ids/uuid7")).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn quick_crash_restarts_do_not_push_the_floor_past_the_allowance() {
    let store = MemoryBackend::new();
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let config = Config::default();
    let mut last = 0u64;
    for _ in 0..8 {
        // Each run issues, refreshes its marks and "crashes" (no settle) 10 ms later.
        let state = state_in(&store, config.clone(), clock.clone());
        let service = service!(state, config);
        state.issuer().refresh_marks().await;
        for kind in ["snowflake", "timestamp"] {
            let reply = call!(&service, get(&format!("/v1/ids/{kind}?count=3"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
            if kind == "snowflake" {
                let first: u64 = reply.ids()[0].parse().unwrap();
                assert!(first > last);
                last = reply.ids()[2].parse().unwrap();
            }
        }
        state.issuer().refresh_marks().await;
        clock.advance(10);
    }
}

#[actix_web::test]
async fn restarts_never_repeat_counters_or_snowflakes() {
    let store = MemoryBackend::new();
    let config = Config::default();
    let mut last_counter = 0;
    let mut last_snowflake = 0;
    let mut last_timestamp = 0;
    for settle in [false, true, false] {
        let state = state_in(&store, config.clone(), system_clock());
        {
            let service = service!(state, config);
            let counters = call!(&service, get("/v1/ids/counter?count=5")).await.ids();
            let counters: Vec<u64> = counters.iter().map(|v| v.parse().unwrap()).collect();
            assert!(counters[0] > last_counter, "{counters:?} after {last_counter}");
            last_counter = counters[4];
            let snowflakes = call!(&service, get("/v1/ids/snowflake?count=5")).await.ids();
            let first: u64 = snowflakes[0].parse().unwrap();
            assert!(first > last_snowflake);
            last_snowflake = snowflakes[4].parse().unwrap();
            let timestamps = call!(&service, get("/v1/ids/timestamp?count=5")).await.ids();
            let first: u64 = timestamps[0].parse().unwrap();
            assert!(first > last_timestamp);
            last_timestamp = timestamps[4].parse().unwrap();
        }
        // A clean stop settles the marks down; a crash (no settle) leaves them ahead.
        if settle {
            state.issuer().settle().await.unwrap();
        }
    }
    // The first run reserved a block; after the settled second run the third continued
    // right after the second.
    assert!(last_counter < 3 * 1000 + 20, "{last_counter}");
}

/// The seam makes store faults cheap to inject: a store whose writes fail refuses what needs a
/// new mark with a JSON 503 (and `/readyz` says why), serves what needs none, and issues again,
/// above everything it handed out, once writes work.
#[actix_web::test]
async fn a_store_that_cannot_write_refuses_without_repeating() {
    let config = Config::default();
    let (state, store) = state_with(config.clone(), system_clock());
    let service = service!(state, config);
    let first = call!(&service, get("/v1/ids/counter?name=faulty&count=3")).await.ids();
    store.fail_writes(true);
    // A counter never used needs a mark first; one with room left does not.
    let reply = call!(&service, get("/v1/ids/counter?name=fresh")).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("cannot save its state"));
    assert_eq!(reply.header("retry-after"), Some("1"));
    let more = call!(&service, get("/v1/ids/counter?name=faulty")).await.json();
    assert_eq!(more["id"], "4");
    // Random kinds need no mark; uuid7 keeps one (its first use needs a write).
    assert_eq!(call!(&service, get("/v1/ids/uuid")).await.status, StatusCode::OK);
    let uuid7 = call!(&service, get("/v1/ids/uuid7")).await;
    assert_eq!(uuid7.status, StatusCode::SERVICE_UNAVAILABLE, "{}", uuid7.text);
    let ready = call!(&service, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["reasons"][0], "store: writes fail");

    store.fail_writes(false);
    let reply = call!(&service, get("/v1/ids/counter?name=fresh")).await;
    assert_eq!(reply.json()["id"], "1");
    assert_eq!(call!(&service, get("/readyz")).await.status, StatusCode::OK);
    // A restart on the same store continues above everything issued.
    let restarted = state_in(&store, config.clone(), system_clock());
    let service = service!(restarted, config);
    let next: u64 = call!(&service, get("/v1/ids/counter?name=faulty")).await.json()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > 4, "{next} after {first:?} and 4");
}
