//! The server's performance targets as ratios of figures measured in the same run: every
//! single-ID route against the ceiling route (req/s and p99), rate limiting on against off,
//! the Redis modes against the ceiling or `redis-benchmark`, batches in IDs/s, and memory and
//! time to ready against fixed limits. Each target is shown with its measured ratio and met /
//! not met; nothing here fails the command: timing is reported, never enforced.
//!
//! A ratio is paired ([`paired_ratio`]): each sample of the case over the reference at that
//! moment (interpolated between the reference's runs just before and after it, or its nearest
//! run), then the median of those per-sample ratios, with its standard error. This machine's
//! speed drifts a lot within a minute; a ratio of runs made seconds apart cancels most of the
//! drift, where a ratio of two medians (measured at different moments) would mostly measure it.

use crate::model::{BATCH_SIZES, Outcome, Results, Summary, TUTORIAL_ROUTES, kinds, median_of};
use crate::wrk::Sample;

/// One row of the targets table.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    /// The figures the ratio is made of, for the reader.
    pub measured: String,
    pub ratio: Option<f64>,
    /// Of `ratio`, when it is a median of paired runs (see [`standard_error_of_median`]).
    pub standard_error: Option<f64>,
    pub required: String,
    /// `None`: not measured in this run (see `note`).
    pub met: Option<bool>,
    pub note: String,
}

const MIB: f64 = 1024.0;

/// Every target, in the order of the report's targets table.
pub fn evaluate(results: &Results) -> Vec<Target> {
    let mut targets = single_id_targets(results);
    targets.push(ratio_target(
        results,
        "rate limiting on vs off (`/v1/ids/uuid7`, embedded)",
        "rate-limit/on",
        "v1/uuid7",
        Bound::AtLeast(0.90),
        Metric::RequestsPerSecond,
    ));
    for kind in ["uuid7", "counter"] {
        targets.push(ratio_target(
            results,
            &format!("`/v1/ids/{kind}` with an API key req/s vs ceiling"),
            &format!("keyed/{kind}"),
            "ceiling",
            Bound::AtLeast(0.85),
            Metric::RequestsPerSecond,
        ));
    }
    targets.extend(redis_targets(results));
    targets.extend(batch_targets(results));
    targets.extend(memory_targets(results));
    targets.push(ready_target(results));
    if results.summary("ceiling").is_none() {
        for target in &mut targets {
            if target.met.is_none() && target.note.is_empty() {
                target.note = "the ceiling route was not measured".to_owned();
            }
        }
    }
    targets
}

/// req/s and p99 of every single-ID route, `/v1/ids/{kind}` of each kind and the tutorial
/// routes, against the ceiling.
fn single_id_targets(results: &Results) -> Vec<Target> {
    let singles = kinds().map(|kind| (format!("v1/{kind}"), format!("`/v1/ids/{kind}`"))).chain(
        TUTORIAL_ROUTES.iter().map(|route| (format!("tutorial{route}"), format!("`{route}`"))),
    );
    let mut targets = Vec::new();
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
    targets
}

/// The strict counter on one connection (nothing to coalesce) against `redis-benchmark -c 1`
/// before group commit: the median of 8 paired rounds of this bench at the last commit
/// without it. Group commit must keep at least 0.95 of it.
pub const STRICT_ALONE_BEFORE: f64 = 0.57;

/// The Redis-mode servers: the block-1000 and strict counters against the ceiling, the rows
/// that make one Redis round trip per request against `redis-benchmark`'s INCR, and the
/// strict counter on one connection against what it was before group commit.
fn redis_targets(results: &Results) -> Vec<Target> {
    use Metric::{P99, RequestsPerSecond};
    let redis_rows = [
        ("Redis counter, block 1000, vs ceiling", "redis/counter-block-1000", "ceiling", 0.85),
        ("Strict Redis counter (block 1) vs ceiling", "redis/counter-block-1", "ceiling", 0.85),
        (
            "Strict Redis counter vs `redis-benchmark -t incr -c 50`",
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
    let mut targets: Vec<Target> = redis_rows
        .into_iter()
        .map(|(name, id, reference, bound)| {
            ratio_target(results, name, id, reference, Bound::AtLeast(bound), RequestsPerSecond)
        })
        .collect();
    targets.push(ratio_target(
        results,
        "Strict Redis counter p99 vs ceiling",
        "redis/counter-block-1",
        "ceiling",
        Bound::AtMost(1.5),
        P99,
    ));
    targets.push(ratio_target(
        results,
        &format!(
            "Strict Redis counter, 1 connection, vs `redis-benchmark -t incr -c 1` (before group commit: {STRICT_ALONE_BEFORE:.2})"
        ),
        "redis/counter-block-1-c1",
        "redis-benchmark/incr-c1",
        Bound::AtLeast(0.95 * STRICT_ALONE_BEFORE),
        RequestsPerSecond,
    ));
    if let Some(reason) = &results.redis_skipped {
        for target in &mut targets {
            target.note = format!("Redis rows skipped: {reason}");
        }
    }
    targets
}

/// 10 M IDs/s in batches of 1,000 as JSON, and text/plain at least as fast as JSON at every
/// batch size.
fn batch_targets(results: &Results) -> Vec<Target> {
    let mut targets = vec![absolute_target(
        "batch of 1,000 uuid7 as JSON",
        results.summary("batch/json/1000").map(|summary| summary.ids_per_second),
        10e6,
        Bound::AtLeast(1.0),
        |ids| format!("{} IDs/s vs 10 M IDs/s", millions(ids)),
        "≥ 10 M IDs/s",
    )];
    for size in BATCH_SIZES {
        targets.push(ratio_target(
            results,
            &format!("`text/plain` vs JSON, batch of {size}"),
            &format!("batch/text/{size}"),
            &format!("batch/json/{size}"),
            Bound::AtLeast(1.0),
            Metric::IdsPerSecond,
        ));
    }
    targets
}

/// Peak RSS of the hungriest server under load, idle RSS of the embedded one.
fn memory_targets(results: &Results) -> [Target; 2] {
    let peak = results
        .servers
        .iter()
        .filter_map(|server| Some((server.peak_rss_kib?, server.key.variable())))
        .max();
    let peak_target = absolute_target(
        "server peak RSS under the heaviest load (VmHWM)",
        peak.map(|(kib, _)| kib as f64 / MIB),
        64.0,
        Bound::AtMost(1.0),
        |mib| format!("{mib:.1} MiB vs 64 MiB ({})", peak.map_or("", |(_, server)| server)),
        "≤ 64 MiB",
    );
    let idle = results.servers.first().map(|server| server.idle_rss_kib as f64 / MIB);
    let idle_target = absolute_target(
        "server idle RSS after start (embedded, VmRSS)",
        idle,
        20.0,
        Bound::AtMost(1.0),
        |mib| format!("{mib:.1} MiB vs 20 MiB"),
        "≤ 20 MiB",
    );
    [peak_target, idle_target]
}

/// The median time to ready over every embedded start.
fn ready_target(results: &Results) -> Target {
    let ready = (!results.ready_ms.is_empty()).then(|| median_of(&results.ready_ms));
    let ready_max = results.ready_ms.iter().copied().fold(0.0, f64::max);
    let starts = results.ready_ms.len();
    absolute_target(
        "ready to serve after start (embedded; spawn to first 200 on `/healthz`)",
        ready,
        200.0,
        Bound::Below(1.0),
        |ms| format!("median {ms:.1} ms of {starts} starts (max {ready_max:.1} ms) vs 200 ms"),
        "< 200 ms",
    )
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

/// The figure a ratio compares.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    RequestsPerSecond,
    /// req/s x the case's IDs per request.
    IdsPerSecond,
    P99,
}

impl Metric {
    /// The median over the rounds, as the "measured" column shows it.
    fn value(self, summary: &Summary) -> f64 {
        match self {
            Metric::RequestsPerSecond => summary.requests_per_second,
            Metric::IdsPerSecond => summary.ids_per_second,
            Metric::P99 => summary.p99_us,
        }
    }

    /// One sample's figure, for a case of `ids_per_request`.
    fn of_sample(self, sample: &Sample, ids_per_request: u64) -> f64 {
        match self {
            Metric::RequestsPerSecond => sample.requests_per_second(),
            Metric::IdsPerSecond => sample.requests_per_second() * ids_per_request as f64,
            Metric::P99 => sample.p99_us,
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

/// The sample of `samples` measured nearest to `sequence` (the earlier one on a tie), or
/// `None` when there is none.
fn nearest(samples: &[Sample], sequence: u64) -> Option<&Sample> {
    samples.iter().min_by_key(|sample| (sample.sequence.abs_diff(sequence), sample.sequence))
}

/// How far (in runs) a reference run may be from a case's run, on each side, for the two to
/// bracket it. The ceiling runs every five or so runs; a reference that shares a unit with its
/// case (JSON and text, rate limiting off and on, `redis-benchmark`) runs next to it and then
/// not again for a round, too far away to say anything about this moment.
pub const BRACKET_RUNS: u64 = 12;

/// The reference's `metric` at `sequence`: interpolated on the straight line between its
/// runs just before and just after, when both are within [`BRACKET_RUNS`]; otherwise its run
/// nearest to `sequence` (see [`nearest`]). Interpolating cancels a drift of the machine's
/// speed that is linear over those few seconds, and averages two runs' noise instead of taking
/// one's. `None` when the reference has no samples.
fn reference_at(samples: &[Sample], sequence: u64, metric: Metric, ids: u64) -> Option<f64> {
    let before =
        samples.iter().filter(|sample| sample.sequence < sequence).max_by_key(|s| s.sequence);
    let after =
        samples.iter().filter(|sample| sample.sequence > sequence).min_by_key(|s| s.sequence);
    if let (Some(before), Some(after)) = (before, after)
        && sequence - before.sequence <= BRACKET_RUNS
        && after.sequence - sequence <= BRACKET_RUNS
    {
        let weight =
            (sequence - before.sequence) as f64 / (after.sequence - before.sequence) as f64;
        let (low, high) = (metric.of_sample(before, ids), metric.of_sample(after, ids));
        return Some(low + (high - low) * weight);
    }
    nearest(samples, sequence).map(|sample| metric.of_sample(sample, ids))
}

/// Each of `case`'s samples over the reference at that moment (see [`reference_at`]).
fn per_sample_ratios(case: &Outcome, reference: &Outcome, metric: Metric) -> Vec<f64> {
    let case_ids = case.case.ids_per_request();
    let reference_ids = reference.case.ids_per_request();
    case.samples
        .iter()
        .filter_map(|sample| {
            let base = reference_at(&reference.samples, sample.sequence, metric, reference_ids)?;
            Some(metric.of_sample(sample, case_ids) / base)
        })
        .collect()
}

/// `case`'s `metric` over `reference`'s, paired: the median over the case's samples of each
/// one's ratio to the reference at that moment in the run (see [`reference_at`]). The two may
/// have different numbers of samples (a case failed part-way; the ceiling runs several times
/// per round). `None` when either has no samples.
pub fn paired_ratio(case: &Outcome, reference: &Outcome, metric: Metric) -> Option<f64> {
    let ratios = per_sample_ratios(case, reference, metric);
    (!ratios.is_empty()).then(|| median_of(&ratios))
}

/// The standard error of a median of `values`: 1.2533 standard deviations over the square
/// root of their count (exact for normally distributed values; the per-run ratios here are
/// close to that). `None` below three values.
pub fn standard_error_of_median(values: &[f64]) -> Option<f64> {
    if values.len() < 3 {
        return None;
    }
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / (count - 1.0);
    Some(1.2533 * variance.sqrt() / count.sqrt())
}

/// `id`'s metric over `reference`'s: the paired ratio, with both medians as the figures shown.
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
        standard_error: None,
        required: bound.describe(),
        met: None,
        note: String::new(),
    };
    let measured = results.outcome(id).zip(results.outcome(reference)).and_then(|(case, base)| {
        let ratios = per_sample_ratios(case, base, metric);
        let ratio = (!ratios.is_empty()).then(|| median_of(&ratios))?;
        Some((case.summary()?, base.summary()?, ratio, ratios))
    });
    match measured {
        Some((case, base, ratio, ratios)) => {
            let (value, base_value) = (metric.value(&case), metric.value(&base));
            target.measured = format!("{} vs {}", metric.show(value), metric.show(base_value));
            target.ratio = Some(ratio);
            target.standard_error = standard_error_of_median(&ratios);
            target.met = Some(bound.met(ratio));
            let errors = case.errors + base.errors;
            if errors > 0 {
                target.note = format!("{errors} failed requests (socket errors or non-2xx)");
            }
        }
        None => target.note = missing_reason(results, &[id, reference]),
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
        standard_error: None,
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

    /// A sample of `requests` in one second, p99 `p99_us`, measured `sequence`th.
    fn sample(sequence: u64, requests: u64, p99_us: f64) -> Sample {
        Sample {
            requests,
            seconds: 1.0,
            errors: 0,
            p50_us: p99_us / 2.0,
            p99_us,
            p999_us: None,
            server_cpu_seconds: None,
            sequence,
        }
    }

    /// A case of `ids` IDs per request with samples of (sequence, req/s).
    fn outcome(ids: u64, samples: &[(u64, u64)]) -> Outcome {
        use crate::model::{CONNECTIONS, Case, Group, Load, ServerKey};
        Outcome {
            case: Case {
                id: "case".to_owned(),
                group: Group::Batch,
                load: Load::Http {
                    server: ServerKey::Embedded,
                    path: "/".to_owned(),
                    accept: None,
                    connections: CONNECTIONS,
                    ids,
                },
            },
            command: String::new(),
            samples: samples
                .iter()
                .map(|&(sequence, requests)| sample(sequence, requests, 1000.0))
                .collect(),
            failure: None,
        }
    }

    #[test]
    fn nearest_in_sequence_the_earlier_on_a_tie() {
        let samples = [sample(2, 1, 1.0), sample(4, 2, 1.0), sample(9, 3, 1.0)];
        let check = |sequence: u64, expected: u64| {
            let found = nearest(&samples, sequence).expect("samples to pick from");
            assert_eq!(found.sequence, expected, "nearest to {sequence}");
        };
        check(0, 2);
        check(2, 2);
        check(3, 2); // 2 and 4 are as near: the earlier
        check(5, 4);
        check(6, 4); // tie again
        check(7, 9);
        check(100, 9);
        // Unequal counts: a reference that failed after one run still pairs with everything.
        assert_eq!(nearest(&samples[..1], 50).map(|sample| sample.sequence), Some(2));
        assert!(nearest(&[], 1).is_none());
    }

    #[test]
    fn the_reference_is_interpolated_between_the_runs_around_the_case() {
        let at = |samples: &[Sample], sequence: u64| {
            reference_at(samples, sequence, Metric::RequestsPerSecond, 1).expect("samples")
        };
        let near = [sample(0, 100, 1.0), sample(10, 200, 1.0)];
        assert!((at(&near, 5) - 150.0).abs() < 1e-9);
        assert!((at(&near, 2) - 120.0).abs() < 1e-9);
        // Only one side: the nearest run.
        assert!((at(&near, 11) - 200.0).abs() < 1e-9);
        // Runs too far apart to bracket (a reference in the same unit, a round away): the
        // nearest run, not a line through a whole round.
        let far = [sample(0, 100, 1.0), sample(BRACKET_RUNS + 2, 200, 1.0)];
        assert!((at(&far, 1) - 100.0).abs() < 1e-9);
        assert!((at(&far, BRACKET_RUNS + 1) - 200.0).abs() < 1e-9);
        assert!(reference_at(&[], 1, Metric::P99, 1).is_none());
    }

    #[test]
    fn paired_ratio_is_the_median_of_per_sample_ratios() {
        // The machine slows down steadily, 10 req/s per run; the case is 0.8 of the reference
        // throughout. Against the nearest reference run (the earlier on a tie) the ratios would
        // be 0.72 and 0.70; against the reference interpolated at the case's moment, 0.8.
        let reference = outcome(1, &[(0, 200), (4, 160), (8, 120)]);
        let case = outcome(1, &[(2, 144), (6, 112)]);
        let paired = paired_ratio(&case, &reference, Metric::RequestsPerSecond).expect("pairs");
        assert!((paired - 0.8).abs() < 1e-9, "{paired}");

        // An even count: the mean of the middle two of 0.5, 0.6, 0.9 and 1.0.
        let reference = outcome(1, &[(0, 100), (2, 100), (4, 100), (6, 100)]);
        let case = outcome(1, &[(1, 100), (3, 50), (5, 90), (7, 60)]);
        let paired = paired_ratio(&case, &reference, Metric::RequestsPerSecond).expect("pairs");
        assert!((paired - 0.75).abs() < 1e-9, "{paired}");

        // IDs/s: each side's req/s times its own IDs per request.
        let json = outcome(10, &[(0, 100), (2, 100)]);
        let text = outcome(100, &[(1, 11), (3, 12)]);
        let paired = paired_ratio(&text, &json, Metric::IdsPerSecond).expect("pairs");
        assert!((paired - 1.15).abs() < 1e-9, "{paired}"); // 1.1 and 1.2

        // p99: per sample, from the samples' own p99.
        let mut slow = outcome(1, &[(1, 100), (3, 100)]);
        slow.samples[1].p99_us = 3000.0;
        let paired = paired_ratio(&slow, &reference, Metric::P99).expect("pairs");
        assert!((paired - 2.0).abs() < 1e-9, "{paired}"); // 1.0 and 3.0

        assert!(paired_ratio(&outcome(1, &[]), &reference, Metric::P99).is_none());
        assert!(paired_ratio(&case, &outcome(1, &[]), Metric::P99).is_none());
    }

    #[test]
    fn standard_error_of_a_median() {
        // Standard deviation 1 over three values.
        let error = standard_error_of_median(&[1.0, 2.0, 3.0]).expect("three values");
        assert!((error - 1.2533 / 3.0_f64.sqrt()).abs() < 1e-9, "{error}");
        assert!(standard_error_of_median(&[1.0, 2.0]).is_none());
    }

    #[test]
    fn bounds() {
        assert!(Bound::AtLeast(0.9).met(0.9));
        assert!(!Bound::AtMost(1.5).met(1.51));
        assert!(!Bound::Below(1.0).met(1.0));
    }
}
