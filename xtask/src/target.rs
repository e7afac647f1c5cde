//! The performance targets (issue 4, item 3) as ratios of figures measured in the same
//! run. Each target is shown with its measured ratio and met / not met; nothing here fails the
//! command: timing is reported, never enforced.

use crate::bench::{KINDS, Results, Summary, TUTORIAL_ROUTES};

/// One row of the targets table.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    /// The figures the ratio is made of, for the reader.
    pub measured: String,
    pub ratio: Option<f64>,
    pub required: String,
    /// `None`: not measured in this run (see `note`).
    pub met: Option<bool>,
    pub note: String,
}

const MIB: f64 = 1024.0;

/// Every target, in the order.
pub fn evaluate(results: &Results) -> Vec<Target> {
    let mut targets = Vec::new();
    let ceiling = results.summary("ceiling");

    let singles =
        KINDS.iter().map(|kind| (format!("v1/{kind}"), format!("`/v1/ids/{kind}`"))).chain(
            TUTORIAL_ROUTES.iter().map(|route| (format!("tutorial{route}"), format!("`{route}`"))),
        );
    for (id, route) in singles {
        targets.push(ratio_target(
            results,
            &format!("{route} req/s vs ceiling"),
            &id,
            "ceiling",
            Bound::AtLeast(0.90),
            Metric::RequestsPerSecond,
        ));
        targets.push(ratio_target(
            results,
            &format!("{route} p99 vs ceiling"),
            &id,
            "ceiling",
            Bound::AtMost(1.5),
            Metric::P99,
        ));
    }

    targets.push(ratio_target(
        results,
        "rate limiting on vs off (`/v1/ids/uuid7`, embedded)",
        "rate-limit/on",
        "v1/uuid7",
        Bound::AtLeast(0.90),
        Metric::RequestsPerSecond,
    ));

    let redis_rows = [
        ("Redis counter, block 1000, vs ceiling", "redis/counter-block-1000", "ceiling", 0.85),
        (
            "Redis counter, block 1, vs `redis-benchmark -t incr -c 50`",
            "redis/counter-block-1",
            "redis-benchmark/incr",
            0.80,
        ),
        (
            "Redis uuid with shared rate limit vs `redis-benchmark -t incr -c 50`",
            "redis/uuid-rate-limited",
            "redis-benchmark/incr",
            0.80,
        ),
    ];
    for (name, id, reference, bound) in redis_rows {
        let mut target = ratio_target(
            results,
            name,
            id,
            reference,
            Bound::AtLeast(bound),
            Metric::RequestsPerSecond,
        );
        if let Some(reason) = &results.redis_skipped {
            target.note = format!("Redis rows skipped: {reason}");
        }
        targets.push(target);
    }

    targets.push(absolute_target(
        "batch of 1,000 uuid7 as JSON",
        results.summary("batch/json/1000").map(|summary| summary.ids_per_second),
        10e6,
        Bound::AtLeast(1.0),
        |ids| format!("{} IDs/s vs 10 M IDs/s", millions(ids)),
        "≥ 10 M IDs/s",
    ));
    for size in crate::bench::BATCH_SIZES {
        targets.push(ratio_target(
            results,
            &format!("`text/plain` vs JSON, batch of {size}"),
            &format!("batch/text/{size}"),
            &format!("batch/json/{size}"),
            Bound::AtLeast(1.0),
            Metric::IdsPerSecond,
        ));
    }

    let peak = results
        .servers
        .iter()
        .filter_map(|server| Some((server.peak_rss_kib?, server.key.variable())))
        .max();
    targets.push(absolute_target(
        "server peak RSS under the heaviest load (VmHWM)",
        peak.map(|(kib, _)| kib as f64 / MIB),
        64.0,
        Bound::AtMost(1.0),
        |mib| format!("{mib:.1} MiB vs 64 MiB ({})", peak.map_or("", |(_, server)| server)),
        "≤ 64 MiB",
    ));
    let idle = results.servers.first().map(|server| server.idle_rss_kib as f64 / MIB);
    targets.push(absolute_target(
        "server idle RSS after start (embedded, VmRSS)",
        idle,
        20.0,
        Bound::AtMost(1.0),
        |mib| format!("{mib:.1} MiB vs 20 MiB"),
        "≤ 20 MiB",
    ));
    let ready = (!results.ready_ms.is_empty()).then(|| crate::bench::median_of(&results.ready_ms));
    let ready_max = results.ready_ms.iter().copied().fold(0.0, f64::max);
    let starts = results.ready_ms.len();
    targets.push(absolute_target(
        "ready to serve after start (embedded; spawn to first 200 on `/healthz`)",
        ready,
        200.0,
        Bound::Below(1.0),
        |ms| format!("median {ms:.1} ms of {starts} starts (max {ready_max:.1} ms) vs 200 ms"),
        "< 200 ms",
    ));

    if ceiling.is_none() {
        for target in &mut targets {
            if target.met.is_none() && target.note.is_empty() {
                target.note = "the ceiling route was not measured".to_owned();
            }
        }
    }
    targets
}

#[derive(Debug, Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

impl Bound {
    fn met(self, ratio: f64) -> bool {
        match self {
            Bound::AtLeast(bound) => ratio >= bound,
            Bound::AtMost(bound) => ratio <= bound,
            Bound::Below(bound) => ratio < bound,
        }
    }

    fn describe(self) -> String {
        match self {
            Bound::AtLeast(bound) => format!("≥ {bound:.2}"),
            Bound::AtMost(bound) => format!("≤ {bound:.2}"),
            Bound::Below(bound) => format!("< {bound:.2}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Metric {
    RequestsPerSecond,
    IdsPerSecond,
    P99,
}

impl Metric {
    fn value(self, summary: &Summary) -> f64 {
        match self {
            Metric::RequestsPerSecond => summary.requests_per_second,
            Metric::IdsPerSecond => summary.ids_per_second,
            Metric::P99 => summary.p99_us,
        }
    }

    fn show(self, value: f64) -> String {
        match self {
            Metric::RequestsPerSecond => format!("{} req/s", thousands(value)),
            Metric::IdsPerSecond => format!("{} IDs/s", millions(value)),
            Metric::P99 => format!("{:.2} ms", value / 1e3),
        }
    }
}

/// `id`'s metric over `reference`'s.
fn ratio_target(
    results: &Results,
    name: &str,
    id: &str,
    reference: &str,
    bound: Bound,
    metric: Metric,
) -> Target {
    let mut target = Target {
        name: name.to_owned(),
        measured: String::new(),
        ratio: None,
        required: bound.describe(),
        met: None,
        note: String::new(),
    };
    match (results.summary(id), results.summary(reference)) {
        (Some(case), Some(base)) => {
            let (value, base_value) = (metric.value(&case), metric.value(&base));
            let ratio = value / base_value;
            target.measured = format!("{} vs {}", metric.show(value), metric.show(base_value));
            target.ratio = Some(ratio);
            target.met = Some(bound.met(ratio));
            let errors = case.errors + base.errors;
            if errors > 0 {
                target.note = format!("{errors} failed requests (socket errors or non-2xx)");
            }
        }
        _ => target.note = missing_reason(results, &[id, reference]),
    }
    target
}

fn absolute_target(
    name: &str,
    value: Option<f64>,
    limit: f64,
    bound: Bound,
    show: impl Fn(f64) -> String,
    required: &str,
) -> Target {
    let ratio = value.map(|value| value / limit);
    Target {
        name: name.to_owned(),
        measured: value.map(show).unwrap_or_default(),
        ratio,
        required: format!("{required} (ratio {})", bound.describe()),
        met: ratio.map(|ratio| bound.met(ratio)),
        note: if value.is_some() { String::new() } else { "not measured".to_owned() },
    }
}

fn missing_reason(results: &Results, ids: &[&str]) -> String {
    for id in ids {
        match results.outcome(id) {
            None if results.profile.quick => return "not measured in a --quick run".to_owned(),
            None => return format!("`{id}` was not measured"),
            Some(outcome) => {
                if let Some(failure) = &outcome.failure {
                    return format!("`{id}` failed: {failure}");
                }
            }
        }
    }
    "not measured".to_owned()
}

/// `61,234`
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `12.34 M`
pub fn millions(value: f64) -> String {
    format!("{:.2} M", value / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(millions(12_345_678.0), "12.35 M");
    }

    #[test]
    fn bounds() {
        assert!(Bound::AtLeast(0.9).met(0.9));
        assert!(!Bound::AtMost(1.5).met(1.51));
        assert!(!Bound::Below(1.0).met(1.0));
    }
}
