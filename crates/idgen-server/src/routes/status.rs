//! What an operator reads: `GET /metrics` (Prometheus text), `GET /v1/status` (JSON) and
//! `GET /status` (the same facts as a page: server-rendered HTML, no script, no external
//! asset, readable on a phone). None of them is rate limited.

use std::fmt::Write as _;
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use idgen_core::Clock as _;
use idgen_core::wire::{CounterStatus, LeaseStatus, RateLimitStatus, StatusResponse, StoreStatus};

use crate::observe::metrics::Gauges;
use crate::state::AppState;

/// Most counters listed.
const MAX_COUNTERS: usize = 100;
/// A Julian year, for ID space left.
const YEAR_MS: f64 = 365.25 * 24.0 * 3_600_000.0;

/// Everything `/v1/status` and `/status` show.
pub async fn gather(state: &AppState) -> StatusResponse {
    let issuer = state.issuer();
    let backend = issuer.backend();
    let started = Instant::now();
    let readiness = issuer.readiness().await;
    let check_ms = started.elapsed().as_secs_f64() * 1000.0;
    let lease = LeaseStatus::new(
        backend.worker_tick().is_some(),
        backend.worker_valid(),
        backend.lease_remaining().map(|left| left.as_millis() as u64),
    );
    let mut counters = issuer.local_counters(MAX_COUNTERS);
    counters.extend(
        backend
            .counter_status(MAX_COUNTERS)
            .into_iter()
            .map(|counter| CounterStatus::new(counter.name, counter.last, None, counter.buffered)),
    );
    counters.truncate(MAX_COUNTERS);
    let limits = state.limits();
    let totals = state.observer().metrics.totals();
    // Field by field: the type is non-exhaustive (it may grow without breaking clients).
    let mut status = StatusResponse::default();
    status.version = env!("CARGO_PKG_VERSION").to_owned();
    status.mode = backend.mode().to_owned();
    status.worker_id = backend.worker_valid().then(|| issuer.worker_id());
    status.uptime_seconds = state.observer().started.elapsed().as_secs();
    status.ready = readiness.reasons.is_empty();
    status.reasons = readiness.reasons;
    status.lease = lease;
    status.marks = issuer.marks();
    status.counters = counters;
    status.snowflake_years_left = snowflake_years_left(state);
    status.snowflake_layout = issuer.snowflake_config().layout.to_string();
    let shared = limits.rate_per_second > 0 && backend.rate_tokens().is_some();
    status.rate_limit = RateLimitStatus::new(limits.rate_per_second, limits.rate_burst, shared);
    status.store = StoreStatus::new(readiness.store_up, check_ms, backend.describe());
    status.requests_total = totals.requests;
    status.rate_limited_total = totals.rate_limited;
    status.refused_total = totals.refused;
    status
}

fn snowflake_years_left(state: &AppState) -> f64 {
    let config = state.issuer().snowflake_config();
    let end = config.layout.end_ms(config.epoch_ms);
    let now = state.issuer().clock().now_ms();
    end.saturating_sub(now) as f64 / YEAR_MS
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Text exposition format 0.0.4: IDs issued by kind, requests by route and status, durations, refusals by cause, back-end operations, worker id and lease, marks, ID space, process. Never rate limited.",
    responses((status = 200, description = "The metrics", content_type = "text/plain"))
)]
pub async fn metrics(state: &AppState) -> HttpResponse {
    let status = gather(state).await;
    let mut gauges = Gauges::default();
    let one = |value: f64| vec![(String::new(), value)];
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    gauges.gauge(
        "idgen_build_info",
        "The server's version",
        &[(format!("version=\"{}\"", status.version), 1.0)],
    );
    gauges.gauge(
        "idgen_store_up",
        "Whether the back end answered its last check",
        &one(flag(status.store.up)),
    );
    if let Some(worker_id) = status.worker_id {
        gauges.gauge(
            "idgen_worker_id",
            "The worker id snowflakes are issued with",
            &one(f64::from(worker_id)),
        );
    }
    if status.lease.leased {
        gauges.gauge(
            "idgen_lease_valid",
            "Whether the worker-id lease is valid",
            &one(flag(status.lease.valid)),
        );
        let left = status.lease.remaining_ms.unwrap_or(0) as f64 / 1000.0;
        gauges.gauge(
            "idgen_lease_remaining_seconds",
            "How long the lease stays valid without a renewal",
            &one(left),
        );
    }
    // A kind with no mark yet (nothing issued since the data dir was made) has no lead.
    let leads: Vec<(String, f64)> = status
        .marks
        .iter()
        .filter(|mark| mark.mark_ms > 0)
        .map(|mark| (format!("kind=\"{}\"", mark.kind), mark.lead_ms as f64 / 1000.0))
        .collect();
    gauges.gauge(
        "idgen_mark_lead_seconds",
        "How far each durable mark runs ahead of the clock",
        &leads,
    );
    gauges.gauge(
        "idgen_snowflake_years_left",
        "Snowflake ID space left for the configured epoch",
        &one(status.snowflake_years_left),
    );
    let buffered: Vec<u64> =
        status.counters.iter().filter_map(|counter| counter.buffered).collect();
    if !buffered.is_empty() {
        let samples = if state.limits().counter_labels {
            status
                .counters
                .iter()
                .filter_map(|c| Some((format!("counter=\"{}\"", c.name), c.buffered? as f64)))
                .collect()
        } else {
            one(buffered.iter().sum::<u64>() as f64)
        };
        gauges.gauge(
            "idgen_counter_segment_remaining",
            "Counter values buffered on this node (segment mode)",
            &samples,
        );
    }
    key_usage(state, &mut gauges);
    process_gauges(&mut gauges);
    let body = state.observer().metrics.render(&gauges.into_text());
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(body)
}

/// IDs issued with each API key, when keys are configured.
fn key_usage(state: &AppState, gauges: &mut Gauges) {
    let Some(auth) = state.auth() else { return };
    // Key names come from the operator's keys file: a bounded set, never user input.
    let samples: Vec<(String, f64)> = auth
        .usage()
        .into_iter()
        .map(|(name, ids)| (format!("key=\"{name}\""), ids as f64))
        .collect();
    gauges.counter(
        "idgen_key_ids_issued_total",
        "IDs issued with each API key since the server started",
        &samples,
    );
}

/// Resident memory and open file descriptors, from `/proc` (Linux).
fn process_gauges(gauges: &mut Gauges) {
    let rss = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    });
    if let Some(kib) = rss {
        gauges.gauge(
            "process_resident_memory_bytes",
            "Resident memory",
            &[(String::new(), kib * 1024.0)],
        );
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let open = entries.count() as f64;
        gauges.gauge("process_open_fds", "Open file descriptors", &[(String::new(), open)]);
    }
}

/// `GET /v1/status`
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "operations",
    summary = "The node's state as JSON",
    responses((status = 200, description = "Version, mode, worker id and lease, marks, counters, ID space, rate limit, store", body = StatusResponse))
)]
pub async fn status_json(state: &AppState) -> HttpResponse {
    HttpResponse::Ok().json(gather(state).await)
}

/// `GET /status`
#[utoipa::path(
    get,
    path = "/status",
    tag = "operations",
    summary = "The node's state as a page",
    responses((status = 200, description = "Server-rendered HTML, no script or external asset", content_type = "text/html"))
)]
pub async fn status_page(state: &AppState) -> HttpResponse {
    let status = gather(state).await;
    HttpResponse::Ok().content_type(ContentType::html()).body(page(&status))
}

/// `&`, `<`, `>` and `"` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The status page.
fn page(status: &StatusResponse) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>idgen status</title><style>\
         body{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem;color:#222}\
         table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}\
         th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd;overflow-wrap:break-word}\
         td.n{white-space:nowrap;font-variant-numeric:tabular-nums}\
         .ok{color:#176d2e}.bad{color:#b00020}h1{font-size:1.4rem}h2{font-size:1.1rem}\
         </style></head><body>",
    );
    let (class, word) = if status.ready { ("ok", "ready") } else { ("bad", "not ready") };
    let worker = status.worker_id.map_or("none".to_owned(), |id| id.to_string());
    let _ = write!(
        html,
        "<h1>idgen {} <span class=\"{class}\" id=\"ready\">{word}</span></h1>\
         <table><tr><th>mode</th><td>{}</td></tr>\
         <tr><th>worker id</th><td id=\"worker-id\">{worker}</td></tr>\
         <tr><th>uptime</th><td>{} s</td></tr>\
         <tr><th>lease</th><td>{}</td></tr>\
         <tr><th>store</th><td>{} ({:.1} ms){}</td></tr>\
         <tr><th>snowflake ID space left</th><td>{:.1} years ({})</td></tr>\
         <tr><th>rate limit</th><td>{}</td></tr>\
         <tr><th>requests / rate limited / refused</th><td>{} / {} / {}</td></tr></table>",
        escape(&status.version),
        escape(&status.mode),
        status.uptime_seconds,
        lease_text(&status.lease),
        if status.store.up { "up" } else { "down" },
        status.store.check_ms,
        status.store.detail.as_deref().map(|d| format!(", {}", escape(d))).unwrap_or_default(),
        status.snowflake_years_left,
        escape(&status.snowflake_layout),
        rate_text(&status.rate_limit),
        status.requests_total,
        status.rate_limited_total,
        status.refused_total,
    );
    if !status.reasons.is_empty() {
        html.push_str("<h2>Why not ready</h2><ul>");
        for reason in &status.reasons {
            let _ = write!(html, "<li class=\"bad\">{}</li>", escape(reason));
        }
        html.push_str("</ul>");
    }
    html.push_str(
        "<h2>Marks</h2><table><tr><th>kind</th><th>mark (ms)</th><th>lead over the clock</th></tr>",
    );
    for mark in &status.marks {
        let kind = escape(&mark.kind);
        let _ = if mark.mark_ms == 0 {
            write!(html, "<tr><td>{kind}</td><td colspan=\"2\">none yet (nothing issued)</td></tr>")
        } else {
            write!(
                html,
                "<tr><td>{kind}</td><td class=\"n\">{}</td><td class=\"n\">{} ms</td></tr>",
                mark.mark_ms, mark.lead_ms
            )
        };
    }
    html.push_str("</table><h2>Counters</h2><table><tr><th>name</th><th>last issued</th><th>ceiling / buffered</th></tr>");
    for counter in &status.counters {
        let room = counter.ceiling.or(counter.buffered).map_or("-".to_owned(), |v| v.to_string());
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{room}</td></tr>",
            escape(&counter.name),
            counter.last_issued
        );
    }
    if status.counters.is_empty() {
        html.push_str("<tr><td colspan=\"3\">no counters yet</td></tr>");
    }
    html.push_str("</table><p>JSON: <a href=\"/v1/status\">/v1/status</a> · metrics: <a href=\"/metrics\">/metrics</a> · API: <a href=\"/docs/\">/docs</a></p></body></html>");
    html
}

fn lease_text(lease: &LeaseStatus) -> String {
    match (lease.leased, lease.valid, lease.remaining_ms) {
        (false, _, _) => "fixed worker id (no lease)".to_owned(),
        (true, true, Some(ms)) => format!("valid for {ms} ms without a renewal"),
        (true, _, _) => "<span class=\"bad\">not held</span>".to_owned(),
    }
}

fn rate_text(rate: &RateLimitStatus) -> String {
    if !rate.enabled {
        return "off".to_owned();
    }
    let shared = if rate.shared { ", shared by every node" } else { "" };
    format!("{}/s per client, burst {}{shared}", rate.per_second, rate.burst)
}
