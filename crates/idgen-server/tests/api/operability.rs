//! What an operator sees, on the real binary: `/metrics` counting exactly what was asked,
//! request ids from request to log line, JSON logs, `/v1/status` and `/status`, `HEAD`, gzip
//! for batches and the `RateLimit-*` headers on answers that passed the limiter.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::helpers::{Options, TestApp, header, spawn_app};

/// `/metrics` as `name{label="value",...}` (labels sorted) -> value.
async fn metrics(app: &TestApp) -> BTreeMap<String, f64> {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = header(&response, "content-type").unwrap();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    parse_metrics(&response.text().await.unwrap())
}

fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> =
                    labels.trim_end_matches('}').split(',').filter(|l| !l.is_empty()).collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        assert!(samples.insert(key, value).is_none(), "{series} twice");
    }
    samples
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        let name = key.split('{').next().unwrap();
        let near: Vec<&String> = samples.keys().filter(|k| k.starts_with(name)).collect();
        panic!("no sample {key}; {name} has {near:?}")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_exactly_what_was_handed_out() {
    let app = spawn_app(Options::new());
    // A known sequence: 3 + 500 + 7 + 1 + 1 IDs in 6 successful requests, and 3 errors.
    for _ in 0..3 {
        assert_eq!(app.get_ids("uuid", &[]).await.status(), StatusCode::OK);
    }
    assert_eq!(app.ids("uuid7", 500, &[]).await.len(), 500);
    let response = app.post_ids("counter", &[("count", "7")], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("/generate_snowflake_id").await.status(), StatusCode::OK);
    assert_eq!(app.get("/generate_random_string/9").await.status(), StatusCode::OK);
    assert_eq!(app.get_ids("nope", &[]).await.status(), StatusCode::NOT_FOUND);
    let put = app.request(Method::PUT, "/v1/ids/uuid").await;
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.get_ids("uuid", &[("count", "0")]).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/no/such/path").await.status(), StatusCode::NOT_FOUND);

    let samples = metrics(&app).await;
    for (kind, issued) in [
        ("uuid", 3.0),
        ("uuid7", 500.0),
        ("ulid", 0.0),
        ("snowflake", 1.0),
        ("timestamp", 0.0),
        ("counter", 7.0),
        ("random", 1.0),
    ] {
        let key = format!("idgen_ids_issued_total{{kind=\"{kind}\"}}");
        assert_eq!(sample(&samples, &key), issued, "{key}");
    }
    let requests = |route: &str, status: u16| {
        sample(
            &samples,
            &format!("idgen_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("/v1/ids/{kind}", 200), 5.0);
    assert_eq!(requests("/v1/ids/{kind}", 404), 1.0);
    assert_eq!(requests("/v1/ids/{kind}", 405), 1.0);
    assert_eq!(requests("/v1/ids/{kind}", 400), 1.0);
    assert_eq!(requests("/generate_snowflake_id", 200), 1.0);
    assert_eq!(requests("/generate_random_string/{length}", 200), 1.0);
    assert_eq!(requests("unmatched", 404), 1.0);
    // The scrape itself is counted once it is answered: not in its own answer.
    assert_eq!(requests("/metrics", 200), 0.0);
    let count = "idgen_http_request_duration_seconds_count{route=\"/v1/ids/{kind}\"}";
    assert_eq!(sample(&samples, count), 8.0);
    assert_eq!(sample(&samples, "idgen_rate_limited_total"), 0.0);
    assert_eq!(sample(&samples, "idgen_store_up"), 1.0);
    assert_eq!(sample(&samples, "idgen_worker_id"), 0.0);
    let years = sample(&samples, "idgen_snowflake_years_left");
    assert!((60.0..70.0).contains(&years), "the default epoch (2020) leaves ~63 years: {years}");
    // The counter and snowflake requests raised their marks through the store, durably.
    assert!(
        sample(&samples, "idgen_store_operations_total{op=\"raise_mark\",outcome=\"ok\"}") >= 1.0
    );
    let lead = sample(&samples, "idgen_mark_lead_seconds{kind=\"snowflake\"}");
    assert!(lead > 0.0 && lead <= 60.0, "snowflake mark lead {lead} s");
    assert!(sample(&samples, "process_resident_memory_bytes") > 1e6);
    assert!(sample(&samples, "process_open_fds") >= 3.0);
    let version = format!("idgen_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&samples, &version), 1.0);
    let refused: f64 =
        samples.iter().filter(|(k, _)| k.starts_with("idgen_refused_total")).map(|(_, v)| v).sum();
    assert_eq!(refused, 0.0);

    // The next scrape sees the first one.
    assert_eq!(
        sample(
            &metrics(&app).await,
            "idgen_http_requests_total{route=\"/metrics\",status=\"200\"}"
        ),
        1.0
    );
}

/// Waits (bounded) until the server's stderr has a JSON line for which `find` holds.
async fn log_line(app: &TestApp, find: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stderr = app.stderr();
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line:?}")))
            .collect();
        if let Some(line) = lines.into_iter().find(&find) {
            return line;
        }
        assert!(Instant::now() < deadline, "no such log line in:\n{stderr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_go_from_request_to_response_to_json_log_line() {
    let app =
        spawn_app(Options::new().env("IDGEN_LOG_FORMAT", "json").env("IDGEN_ACCESS_LOG", "all"));
    // Kept as sent.
    let response = app
        .client
        .get(app.url("/v1/ids/uuid7"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("trace-me-42"));
    let line = log_line(&app, |line| line["request_id"] == "trace-me-42").await;
    assert_eq!(line["target"], "idgen_server::access");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/v1/ids/{kind}", "the pattern, never the raw path");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client"], "127.0.0.1");
    assert!(line["duration_us"].is_u64(), "{line}");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");

    // Replaced when not visible ASCII or too long; made when absent; on errors too.
    let long = "x".repeat(129);
    for sent in [Some("has space"), Some(long.as_str()), None] {
        let mut request = app.client.get(app.url("/v1/ids/nope"));
        if let Some(sent) = sent {
            request = request.header("x-request-id", sent);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let id = header(&response, "x-request-id").expect("an id on every answer");
        assert_eq!(id.len(), 24, "{sent:?} -> {id}");
        assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{id}");
        let line = log_line(&app, |line| line["request_id"] == id.as_str()).await;
        assert_eq!(
            (line["status"].as_u64(), line["route"].as_str()),
            (Some(404), Some("/v1/ids/{kind}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_errors_by_default_and_text_lines_carry_the_request_id() {
    let app = spawn_app(Options::new());
    assert_eq!(app.get_ids("uuid", &[]).await.status(), StatusCode::OK);
    let response = app
        .client
        .get(app.url("/v1/ids/nope"))
        .header("x-request-id", "bad-kind-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app.stderr().contains("bad-kind-1") {
        assert!(Instant::now() < deadline, "no access line for the 404:\n{}", app.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stderr = app.stderr();
    let access: Vec<&str> =
        stderr.lines().filter(|line| line.contains("idgen_server::access")).collect();
    assert_eq!(access.len(), 1, "only the error is logged by default: {access:?}");
    assert!(
        access[0].contains("status=404") && access[0].contains("request_id=bad-kind-1"),
        "{}",
        access[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_json_and_page_show_the_node() {
    let app = spawn_app(Options::new().env("IDGEN_WORKER_ID", 17));
    let response = app.get_ids("counter", &[("name", "orders"), ("count", "5")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let status: serde_json::Value = app.get("/v1/status").await.json().await.unwrap();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["mode"], "embedded");
    assert_eq!(status["worker_id"], 17);
    assert!(status["uptime_seconds"].is_u64());
    assert_eq!(status["ready"], true);
    assert_eq!(status["lease"]["leased"], false);
    let kinds: Vec<&str> =
        status["marks"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["snowflake", "timestamp", "uuid7", "ulid", "ksuid"]);
    let orders =
        status["counters"].as_array().unwrap().iter().find(|c| c["name"] == "orders").unwrap();
    assert_eq!(orders["last_issued"], 5);
    assert!(orders["ceiling"].as_u64().unwrap() >= 5, "{orders}");
    assert_eq!(status["store"]["up"], true);
    assert_eq!(status["rate_limit"]["enabled"], false);
    assert!(status["requests_total"].as_u64().unwrap() >= 1);

    let page = app.get("/status").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<td id=\"worker-id\">17</td>"), "{html}");
    assert!(html.contains("orders"));
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}

#[tokio::test(flavor = "multi_thread")]
async fn head_gzip_for_batches_and_pacing_headers() {
    let app = spawn_app(
        Options::new().env("IDGEN_RATE_LIMIT_PER_SECOND", 1).env("IDGEN_RATE_LIMIT_BURST", 50),
    );
    for path in ["/healthz", "/v1/ids/uuid", "/v1/kinds", "/metrics", "/docs/"] {
        let response = app.request(Method::HEAD, path).await;
        assert_eq!(response.status(), StatusCode::OK, "HEAD {path}");
        assert!(response.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
    }

    // A batch, gzipped when asked for; the same batch is not when the client does not ask.
    let batch = |encoding: Option<&'static str>| {
        let mut request = app.client.get(app.ids_url("uuid", &[("count", "10000")]));
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        request.send()
    };
    let response = batch(Some("br, gzip;q=0.8")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&response, "vary").as_deref(), Some("accept-encoding"));
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut text).unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["ids"].as_array().unwrap().len(), 10_000);
    // Hex and hyphens: level 1 takes 10,000 UUIDs from 390 KB to about 220 KB.
    assert!(compressed.len() * 10 < text.len() * 6, "{} -> {} bytes", text.len(), compressed.len());
    let plain = batch(None).await.unwrap();
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "vary").as_deref(), Some("accept-encoding"));
    assert!(plain.bytes().await.unwrap().len() > 360_000);
    // A single ID never is.
    let single = app
        .client
        .get(app.ids_url("uuid", &[]))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&single, "content-encoding"), None);

    // Answers that passed the limiter say what is left, so a client can pace itself.
    let first = app.get_ids("ulid", &[]).await;
    let second = app.get_ids("ulid", &[]).await;
    let number = |response: &reqwest::Response, name: &str| -> u64 {
        header(response, name).unwrap_or_else(|| panic!("no {name}")).parse().unwrap()
    };
    assert_eq!(number(&first, "ratelimit-limit"), 50);
    let (a, b) = (number(&first, "ratelimit-remaining"), number(&second, "ratelimit-remaining"));
    assert!(a < 50 && b <= a, "remaining {a} then {b}");
    // At 1 token a second, the bucket is full again after one second per missing token.
    let reset = number(&second, "ratelimit-reset");
    assert!(reset == 50 - b || reset + 1 == 50 - b, "reset {reset} s for {b} of 50 left");
    // The probes are not limited and say nothing about it.
    assert_eq!(header(&app.get("/healthz").await, "ratelimit-limit"), None);
}
