//! The generators' in-process performance targets as ratios: ours against the raw baseline,
//! in one process.
//!
//! Plain Rust (no criterion) so the numbers come from one run on one machine state: every
//! round measures each case's generator and its baseline back to back, alternating which goes
//! first, and the table reports the median of the rounds' ns per ID. Nothing here passes or
//! fails on speed: it prints a markdown table and exits 0, so CI can smoke-run it.
//!
//! Targets:
//! - uuid7 and ulid: time per ID within 1.25 x the raw crate's (`Uuid::now_v7()`,
//!   `ulid::Generator::generate()`, behind a `Mutex` when two threads share it);
//! - snowflake: sustained IDs/s at least 0.95 of the layout's cap, 4096 IDs per ms per worker
//!   (4,096,000/s, i.e. 244.14 ns per ID). "Sustained" means the generator has already used
//!   up the 1 s it may borrow ahead of the clock before timing starts; a fresh generator
//!   would first issue about 4.1 million IDs at call speed and look twice as fast as the cap
//!   over an 8 million ID run. Its call speed is reported separately as the `burst` row.
//!
//! The other kinds have no target and are listed for scale, against the cheapest raw
//! equivalent. Everything uses the real `SystemClock` and `rand::rng()` fetched per ID, as a
//! single-ID request does.
//!
//! Run: `cargo bench -p idgen-core --bench ratios` (about 45 s), or with `-- --quick` for a
//! few-second smoke run. Without `--bench` on the command line (`cargo test --benches`) it runs
//! once with tiny sizes, as criterion's test mode does.
//!
//! This file runs the rounds and prints the table; the cases are in `ratios/cases.rs`, the
//! timing loops in `ratios/timing.rs` and the sustained snowflake loops in
//! `ratios/snowflake.rs`. They are pulled in by `#[path]`: as `benches/*.rs` Cargo would
//! take each for a bench of its own.

#[path = "ratios/cases.rs"]
mod cases;
mod common;
#[path = "ratios/snowflake.rs"]
mod snowflake;
#[path = "ratios/timing.rs"]
mod timing;

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use cases::{Baseline, Case, SNOWFLAKE_CAP_PER_SEC, Target, UUID_ONE_THREAD, UUID_TWO_THREADS};
use common::fresh_snowflake;
use idgen_core::{Clock, SystemClock};
use snowflake::{STALE_REFUSAL_MAX_BEHIND_MS, STALE_REFUSALS};

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    name: &'static str,
    /// IDs per measurement of a cheap generator (both threads together for 2-thread cases).
    pub ids: u64,
    /// IDs per sustained snowflake measurement: at the cap, 8 million take about 2 s.
    pub snowflake_ids: u64,
    rounds: usize,
}

const FULL: Sizes = Sizes { name: "full", ids: 2_000_000, snowflake_ids: 8_000_000, rounds: 5 };
const QUICK: Sizes = Sizes { name: "quick", ids: 200_000, snowflake_ids: 400_000, rounds: 3 };
const SMOKE: Sizes = Sizes { name: "test", ids: 1_000, snowflake_ids: 10_000, rounds: 1 };

/// Per case, in the order of [`cases::cases`]: ns per ID of each round, ours and the
/// baseline's, and the error that ended a measurement, if one did.
struct Samples {
    ours: Vec<Vec<f64>>,
    baseline: Vec<Vec<f64>>,
    errors: Vec<Option<String>>,
}

fn main() {
    let sizes = sizes_from_arguments();
    let mut cases = cases::cases();
    warm_up(&mut cases, sizes);
    let started = Instant::now();
    let samples = measure_rounds(&mut cases, sizes);
    print_header(sizes, started.elapsed());
    print_table(&cases, &samples);
    print_notes(&cases, &samples);
}

fn sizes_from_arguments() -> Sizes {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then a full run
    // would be a waste (and in a debug build, meaningless).
    let sizes = if args.iter().any(|arg| arg == "--quick") {
        QUICK
    } else if args.iter().any(|arg| arg == "--bench") {
        FULL
    } else {
        SMOKE
    };
    for arg in args.iter().filter(|arg| !matches!(arg.as_str(), "--quick" | "--bench")) {
        eprintln!("ratios: ignoring argument {arg:?} (only --quick is understood)");
    }
    sizes
}

/// Caches, thread-local RNGs, page faults, CPU frequency; not recorded.
fn warm_up(cases: &mut [Case], sizes: Sizes) {
    for case in cases {
        let ids = (case.size.ids(sizes) / 10).max(1);
        let _ = (case.ours)(ids);
        if let Baseline::Measured(_, measure) = &mut case.baseline {
            let _ = measure(ids);
        }
    }
}

fn measure_rounds(cases: &mut [Case], sizes: Sizes) -> Samples {
    let mut samples = Samples {
        ours: vec![Vec::new(); cases.len()],
        baseline: vec![Vec::new(); cases.len()],
        errors: vec![None; cases.len()],
    };
    for round in 0..sizes.rounds {
        for (index, case) in cases.iter_mut().enumerate() {
            let ids = case.size.ids(sizes);
            let errors = &mut samples.errors;
            let mut record = |samples: &mut Vec<f64>, result: Result<Duration, String>| match result
            {
                Ok(elapsed) => samples.push(elapsed.as_nanos() as f64 / ids as f64),
                Err(error) => errors[index] = Some(error),
            };
            // Alternate the order so neither side always runs on a warmer (or hotter) CPU.
            let ours_first = round % 2 == 0;
            if ours_first {
                record(&mut samples.ours[index], (case.ours)(ids));
            }
            if let Baseline::Measured(_, measure) = &mut case.baseline {
                record(&mut samples.baseline[index], measure(ids));
            }
            if !ours_first {
                record(&mut samples.ours[index], (case.ours)(ids));
            }
        }
    }
    samples
}

fn print_header(sizes: Sizes, measured: Duration) {
    println!("## idgen-core in-process ratios ({} run)\n", sizes.name);
    println!("- machine: {}, {} logical cores", cpu_model(), cores());
    println!(
        "- {} rounds, interleaved; {} IDs per measurement ({} for sustained snowflake); \
         median of the rounds",
        sizes.rounds, sizes.ids, sizes.snowflake_ids
    );
    println!("- `SystemClock::now_ms()` costs {:.1} ns per call here", clock_cost());
    println!("- measured in {:.1} s\n", measured.as_secs_f64());
}

fn print_table(cases: &[Case], samples: &Samples) {
    println!("| generator | ours ns/ID | baseline | baseline ns/ID | ratio | target | met? |");
    println!("|---|---:|---|---:|---:|---|---|");
    for (index, case) in cases.iter().enumerate() {
        let baseline_name = match &case.baseline {
            Baseline::Measured(name, _) => *name,
            Baseline::SnowflakeCap => "cap: 4,096,000 IDs/s",
        };
        if let Some(error) = &samples.errors[index] {
            println!("| {} | error: {error} | {baseline_name} | | | | no |", case.name);
            continue;
        }
        let ours_ns = median(&samples.ours[index]);
        let baseline_ns = match case.baseline {
            Baseline::Measured(..) => median(&samples.baseline[index]),
            Baseline::SnowflakeCap => 1e9 / SNOWFLAKE_CAP_PER_SEC,
        };
        let ratio = ours_ns / baseline_ns;
        let (target, met) = target_and_verdict(case.target, ours_ns, ratio);
        let name = case.name;
        println!(
            "| {name} | {ours_ns:.1} | {baseline_name} | {baseline_ns:.1} | {ratio:.2} | {target} \
             | {met} |"
        );
    }
}

/// The target and met? columns of a row.
fn target_and_verdict(target: Target, ours_ns: f64, ratio: f64) -> (String, String) {
    match target {
        Target::None => ("—".to_owned(), "—".to_owned()),
        Target::TimeWithin(limit) => {
            (format!("≤ {limit:.2} x time"), yes_no(ratio <= limit).to_owned())
        }
        Target::CapFraction(fraction) => {
            let ids_per_sec = 1e9 / ours_ns;
            let of_cap = ids_per_sec / SNOWFLAKE_CAP_PER_SEC;
            (
                format!("≥ {fraction:.2} x cap IDs/s"),
                format!(
                    "{} ({:.3} x cap, {:.2} M IDs/s)",
                    yes_no(of_cap >= fraction),
                    of_cap,
                    ids_per_sec / 1e6
                ),
            )
        }
    }
}

/// How to read the table, whether both cores were free, and any stale-clock refusals.
fn print_notes(cases: &[Case], samples: &Samples) {
    println!(
        "\nratio = ours ns/ID ÷ baseline ns/ID (lower is faster). 2-thread rows: two threads \
         share one generator, ns/ID is wall time ÷ IDs of both. Sustained snowflake rows start \
         with the 1 s borrow allowance used up; the burst row is a fresh generator inside it."
    );
    // UUID v4 shares nothing between threads: with both cores free, two threads halve the
    // wall time per ID, ours and the baseline alike. If either doesn't, something else held a
    // core during the run.
    let uuid_v4 = |name| {
        let index = cases.iter().position(|case| case.name == name).expect("the uuid cases");
        [median(&samples.ours[index]), median(&samples.baseline[index])]
    };
    let [ours_two, baseline_two] = uuid_v4(UUID_TWO_THREADS);
    let [ours_one, baseline_one] = uuid_v4(UUID_ONE_THREAD);
    let scaling = (ours_two / ours_one).max(baseline_two / baseline_one);
    println!(
        "\nparallelism check: uuid v4 on 2 threads takes {scaling:.2} x the time per ID of \
         1 thread (about 0.5 when both cores are free{})",
        if scaling > 0.7 {
            "; here they were not, so the 2-thread rows understate what this machine can do"
        } else {
            ""
        }
    );
    let stale = STALE_REFUSALS.load(Ordering::Relaxed);
    if stale > 0 {
        println!(
            "\nsnowflake: {stale} `ClockMovedBackwards` refusals at the cap came from a stale \
             clock reading, not the clock (apparent step back up to {} ms against a {} ms \
             allowance); the sustained loops retried them. `SnowflakeGenerator::reserve` \
             re-reads the clock on every CAS attempt so that this cannot happen: any such \
             refusal is a regression.",
            STALE_REFUSAL_MAX_BEHIND_MS.load(Ordering::Relaxed),
            fresh_snowflake().config().max_backward_ms
        );
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => sorted[len / 2],
        len => (sorted[len / 2 - 1] + sorted[len / 2]) / 2.0,
    }
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "no" }
}

/// ns per `SystemClock::now_ms()`: every time-based generator reads it once per ID.
fn clock_cost() -> f64 {
    const CALLS: u32 = 1_000_000;
    let start = Instant::now();
    for _ in 0..CALLS {
        black_box(SystemClock.now_ms());
    }
    start.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn cores() -> usize {
    thread::available_parallelism().map(usize::from).unwrap_or(1)
}
