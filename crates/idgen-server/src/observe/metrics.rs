//! `/metrics`: the `metrics` facade's Prometheus recorder, one per application (no global
//! recorder, so in-process tests do not share counts), with every hot-path handle registered
//! up front: recording is an atomic add, never a lookup or an allocation. Gauges that describe
//! state (worker id, lease, marks, ID space, process) are computed when `/metrics` is read.
//!
//! Names follow the Prometheus conventions: base units, `_total` for counters, `_seconds` for
//! durations, labels with bounded values only (kind names, route patterns, status codes, store
//! operations; counter names only with `IDGEN_METRICS_COUNTER_LABELS=true`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use idgen_core::Kind;
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::routes::TABLE;

const METADATA: Metadata<'static> = Metadata::new("idgen_server", Level::INFO, None);

/// Statuses the server answers; any other is counted under `other`.
const STATUSES: [u16; 14] = [200, 400, 401, 403, 404, 405, 406, 408, 413, 414, 429, 431, 500, 503];

/// Request durations: from 50 µs (a cached answer) to 5 s (a request that waited for the store).
const DURATION_BUCKETS: [f64; 12] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0, 5.0];

/// The reasons a 503 is counted under (`Refusal::reason`).
pub const REFUSAL_REASONS: [&str; 12] = [
    "clock_behind",
    "time_out_of_range",
    "exhausted",
    "sequence_exhausted",
    "ceiling_unavailable",
    "not_durable",
    "store_unreachable",
    "no_worker_id",
    "rate_limiter_unreachable",
    "store_regressed",
    "mark_at_range_end",
    "counter_retiring",
];

/// Back-end operations, as `op` labels.
pub const STORE_OPS: [&str; 9] = [
    "raise_mark",
    "raise_worker_mark",
    "take_counter",
    "take_timestamps",
    "take_tokens",
    "readiness",
    "maintain_worker",
    "settle",
    "retire_counter",
];

/// How a back-end operation ended, as `outcome` labels.
pub const STORE_OUTCOMES: [&str; 6] =
    ["ok", "unreachable", "not_durable", "regressed", "refused", "internal"];

/// The registered handles and the renderer.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Per kind in catalogue order.
    issued: Vec<Counter>,
    /// Per route pattern (the table's, then "unmatched") and status (STATUSES, then "other").
    requests: Vec<Vec<Counter>>,
    durations: Vec<Histogram>,
    rate_limited: Counter,
    /// Per kind (catalogue order, then "none") and reason.
    refused: Vec<Vec<Counter>>,
    store_operations: Vec<Vec<Counter>>,
    store_durations: Vec<Histogram>,
    clock_backward: Counter,
    /// Plain totals for `/v1/status` (the recorder's values cannot be read back one by one).
    requests_total: AtomicU64,
    rate_limited_total: AtomicU64,
    refused_total: AtomicU64,
}

/// What `/v1/status` shows of the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub rate_limited: u64,
    pub refused: u64,
}

/// The route patterns, in the table's order, without repeats, then `unmatched`.
pub fn route_labels() -> Vec<String> {
    let mut routes: Vec<String> = Vec::new();
    for entry in TABLE.iter() {
        if !routes.contains(&entry.pattern) {
            routes.push(entry.pattern.clone());
        }
    }
    routes.push("unmatched".to_owned());
    routes
}

/// One counter per pair of a row and a column (a route and a status, ...), by index.
fn grid<R: AsRef<str>, C: AsRef<str>>(
    rows: &[R],
    columns: &[C],
    make: impl Fn(&str, &str) -> Counter,
) -> Vec<Vec<Counter>> {
    rows.iter()
        .map(|row| columns.iter().map(|column| make(row.as_ref(), column.as_ref())).collect())
        .collect()
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &DURATION_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        let histogram = |name: &'static str, labels: Vec<Label>| {
            recorder.register_histogram(&Key::from_parts(name, labels), &METADATA)
        };
        let kinds: Vec<&'static str> = Kind::ALL.iter().map(|kind| kind.name()).collect();
        let routes = route_labels();
        let statuses: Vec<String> = STATUSES
            .iter()
            .map(u16::to_string)
            .chain(std::iter::once("other".to_owned()))
            .collect();
        let issued = kinds
            .iter()
            .map(|kind| counter("idgen_ids_issued_total", vec![Label::new("kind", *kind)]))
            .collect();
        let requests = grid(&routes, &statuses, |route, status| {
            let labels = vec![
                Label::new("route", route.to_owned()),
                Label::new("status", status.to_owned()),
            ];
            counter("idgen_http_requests_total", labels)
        });
        let durations = routes
            .iter()
            .map(|route| {
                let labels = vec![Label::new("route", route.clone())];
                histogram("idgen_http_request_duration_seconds", labels)
            })
            .collect();
        let refusing: Vec<&str> = kinds.iter().copied().chain(std::iter::once("none")).collect();
        let refused = grid(&refusing, &REFUSAL_REASONS, |kind, reason| {
            let labels =
                vec![Label::new("kind", kind.to_owned()), Label::new("reason", reason.to_owned())];
            counter("idgen_refused_total", labels)
        });
        let store_operations = grid(&STORE_OPS, &STORE_OUTCOMES, |op, outcome| {
            let labels =
                vec![Label::new("op", op.to_owned()), Label::new("outcome", outcome.to_owned())];
            counter("idgen_store_operations_total", labels)
        });
        let store_durations = STORE_OPS
            .iter()
            .map(|op| {
                let labels = vec![Label::new("op", *op)];
                histogram("idgen_store_operation_duration_seconds", labels)
            })
            .collect();
        let metrics = Self {
            issued,
            requests,
            durations,
            rate_limited: counter("idgen_rate_limited_total", Vec::new()),
            refused,
            store_operations,
            store_durations,
            clock_backward: counter("idgen_clock_backward_events_total", Vec::new()),
            requests_total: AtomicU64::new(0),
            rate_limited_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            handle,
            recorder,
        };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            self.recorder.describe_counter(name.into(), unit, SharedString::const_str(help));
        };
        describe("idgen_ids_issued_total", None, "IDs handed out, by kind (a batch of N adds N)");
        describe(
            "idgen_http_requests_total",
            None,
            "HTTP requests answered, by route pattern and status",
        );
        describe("idgen_rate_limited_total", None, "Requests refused with 429");
        describe("idgen_refused_total", None, "Requests refused with 503, by kind and cause");
        describe(
            "idgen_store_operations_total",
            None,
            "Back-end operations, by operation and outcome",
        );
        describe(
            "idgen_clock_backward_events_total",
            None,
            "Times the wall clock was seen stepping back",
        );
        self.recorder.describe_histogram(
            "idgen_http_request_duration_seconds".into(),
            Some(Unit::Seconds),
            SharedString::const_str(
                "Time from receiving a request to its response, by route pattern",
            ),
        );
        self.recorder.describe_histogram(
            "idgen_store_operation_duration_seconds".into(),
            Some(Unit::Seconds),
            SharedString::const_str(
                "Time a back-end operation took (a mark's fsync, a Redis script, ...)",
            ),
        );
    }

    /// `count` IDs of `kind` were handed out.
    pub fn issued(&self, kind: Kind, count: u64) {
        let index = Kind::ALL.iter().position(|k| *k == kind).expect("every kind is in ALL");
        self.issued[index].increment(count);
    }

    /// A request to route number `route` (see [`route_labels`]) was answered with `status`
    /// after `seconds`.
    pub fn request(&self, route: usize, status: u16, seconds: f64) {
        let status_index = STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len());
        self.requests[route][status_index].increment(1);
        self.durations[route].record(seconds);
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        if status == 429 {
            self.rate_limited.increment(1);
            self.rate_limited_total.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request the HTTP/1 codec could not read was answered with `status` (400, 408, 431):
    /// counted under route `unmatched`, without a duration (there was no request to time).
    pub fn unreadable(&self, status: u16) {
        let status_index = STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len());
        if let Some(unmatched) = self.requests.last() {
            unmatched[status_index].increment(1);
        }
        self.requests_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A 503 for `kind` (or none) because of `reason` (one of [`REFUSAL_REASONS`]).
    pub fn refused(&self, kind: Option<Kind>, reason: &str) {
        let kind_index = kind
            .and_then(|kind| Kind::ALL.iter().position(|k| *k == kind))
            .unwrap_or(Kind::ALL.len());
        if let Some(reason_index) = REFUSAL_REASONS.iter().position(|r| *r == reason) {
            self.refused[kind_index][reason_index].increment(1);
        }
        self.refused_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A back-end operation (one of [`STORE_OPS`]) ended with `outcome` after `seconds`.
    pub fn store_operation(&self, op: usize, outcome: usize, seconds: f64) {
        self.store_operations[op][outcome].increment(1);
        self.store_durations[op].record(seconds);
    }

    pub fn totals(&self) -> Totals {
        Totals {
            requests: self.requests_total.load(Ordering::Relaxed),
            rate_limited: self.rate_limited_total.load(Ordering::Relaxed),
            refused: self.refused_total.load(Ordering::Relaxed),
        }
    }

    pub fn clock_backward(&self) {
        self.clock_backward.increment(1);
    }

    /// The exposition text: the recorded metrics, then `gauges` (already in text format).
    pub fn render(&self, gauges: &str) -> String {
        let mut text = self.handle.render();
        text.push_str(gauges);
        text
    }

    /// Drains histogram samples into their buckets; call now and then.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Gauges (and counters kept outside the recorder) in the exposition format, written when
/// `/metrics` is read.
#[derive(Default)]
pub struct Gauges(String);

impl Gauges {
    /// One gauge with its help line; `labels` like `kind="uuid7"` (empty for none).
    pub fn gauge(&mut self, name: &str, help: &str, samples: &[(String, f64)]) {
        self.family(name, help, "gauge", samples);
    }

    /// One counter whose values are kept elsewhere (read at scrape time).
    pub fn counter(&mut self, name: &str, help: &str, samples: &[(String, f64)]) {
        self.family(name, help, "counter", samples);
    }

    fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(String, f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(self.0, "{name} {value}");
            } else {
                let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
            }
        }
    }

    pub fn into_text(self) -> String {
        self.0
    }
}
