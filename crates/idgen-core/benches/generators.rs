//! Criterion micro-benchmarks: each generator beside its raw baseline, on one thread and on two.
//!
//! Each kind has one group, so criterion prints ours and the baseline side by side:
//!
//! | group       | ours                                  | raw baseline                          |
//! |-------------|---------------------------------------|---------------------------------------|
//! | `uuid`      | `uuid::generate(rng)`                 | `Uuid::new_v4()`                      |
//! | `uuid7`     | `Uuid7Generator::generate`            | `Uuid::now_v7()`                      |
//! | `ulid`      | `UlidGenerator::generate`             | `ulid::Generator::generate()`         |
//! | `snowflake` | `generate()`, `generate_batch(1000)`  | `AtomicU64::fetch_add` (the floor)    |
//! | `timestamp` | `TimestampGenerator::generate`        | `AtomicU64::fetch_add`                |
//! | `counter`   | `Counter::take(1)`                    | `AtomicU64::fetch_add`                |
//! | `random`    | `random::generate` (21, alphanumeric) | `Alphanumeric.sample_string(rng, 21)` |
//!
//! Everything runs on the real [`SystemClock`] and `rand::rng()`, fetched per ID as a single-ID
//! request does (the raw crates also fetch their RNG per call).
//!
//! `2 threads` benchmarks share one generator (or one `Mutex<ulid::Generator>`, one
//! `AtomicU64`) between two threads that each make `iters` IDs at once; the reported time is
//! the wall time divided by the number of IDs, so the throughput is both threads together.
//!
//! Snowflake is capped by its layout at 4096 IDs per ms per worker (244.14 ns per ID). With the
//! real clock a generator first runs ahead of it by borrowing up to `max_backward_ms` (1 s) of
//! future sequence numbers, then settles at the cap. `burst` measures the cost of a call inside
//! that allowance (a fresh generator every [`BURST_IDS`] IDs); `sustained` measures a generator
//! whose allowance is used up before timing starts, i.e. the rate it can keep up for good.
//! `benches/ratios.rs` turns the same comparisons into the performance targets' ratios.
//!
//! Run: `cargo bench -p idgen-core --bench generators` (about 1.5 minutes); a filter such as
//! `-- ulid` runs one group.

mod common;

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{fresh_snowflake, saturated_snowflake};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use idgen_core::counter::Counter;
use idgen_core::random::{self, Alphabet, Length};
use idgen_core::snowflake::{SnowflakeGenerator, SnowflakeId};
use idgen_core::timestamp::TimestampGenerator;
use idgen_core::ulid::UlidGenerator;
use idgen_core::uuid7::Uuid7Generator;
use idgen_core::{Clock, IssueError, SystemClock, uuid};
use rand::distr::{Alphanumeric, SampleString};

/// IDs per snowflake batch, the server's typical large request.
const BATCH: usize = 1_000;
/// IDs a fresh snowflake generator issues in a `burst` benchmark before it is replaced: well
/// inside the 1 s borrow allowance (4.1 million IDs), so no call ever meets the cap.
const BURST_IDS: u64 = 1_000_000;

fn uuid_v4(c: &mut Criterion) {
    let mut group = group(c, "uuid");
    group.bench_function("ours/1 thread", |b| b.iter(|| uuid::generate(&mut rand::rng())));
    group.bench_function("Uuid::new_v4/1 thread", |b| b.iter(::uuid::Uuid::new_v4));
    group.bench_function("ours/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || uuid::generate(&mut rand::rng())))
    });
    group.bench_function("Uuid::new_v4/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, ::uuid::Uuid::new_v4))
    });
    group.finish();
}

fn uuid7(c: &mut Criterion) {
    let mut group = group(c, "uuid7");
    let generator = Uuid7Generator::new(SystemClock);
    group.bench_function("ours/1 thread", |b| b.iter(|| generator.generate(&mut rand::rng())));
    group.bench_function("Uuid::now_v7/1 thread", |b| b.iter(::uuid::Uuid::now_v7));
    group.bench_function("ours/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || generator.generate(&mut rand::rng())))
    });
    // `now_v7` already shares one process-wide context (behind a mutex) between threads.
    group.bench_function("Uuid::now_v7/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, ::uuid::Uuid::now_v7))
    });
    group.finish();
}

fn ulid(c: &mut Criterion) {
    let mut group = group(c, "ulid");
    let generator = UlidGenerator::new(SystemClock);
    group.bench_function("ours/1 thread", |b| b.iter(|| generator.generate(&mut rand::rng())));
    let mut raw = ::ulid::Generator::new();
    group.bench_function("ulid::Generator/1 thread", |b| b.iter(|| raw_ulid(&mut raw)));
    group.bench_function("ours/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || generator.generate(&mut rand::rng())))
    });
    // `ulid::Generator` needs `&mut self`: sharing it takes a lock, as ours does inside.
    let shared = Mutex::new(::ulid::Generator::new());
    group.bench_function("Mutex<ulid::Generator>/2 threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || raw_ulid(&mut shared.lock().expect("no bench thread panics")))
        })
    });
    group.finish();
}

fn raw_ulid(generator: &mut ::ulid::Generator) -> ::ulid::Ulid {
    generator.generate().expect("overflow needs 2^80 ULIDs in one millisecond")
}

fn snowflake(c: &mut Criterion) {
    let mut group = group(c, "snowflake");
    group.bench_function("generate burst/1 thread", |b| {
        b.iter_custom(|iters| {
            in_bursts(iters, |count| {
                let generator = fresh_snowflake();
                let start = Instant::now();
                for _ in 0..count {
                    black_box(generator.generate().expect("a burst fits the borrow allowance"));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("generate burst/2 threads", |b| {
        b.iter_custom(|iters| {
            in_bursts(iters, |count| {
                let generator = fresh_snowflake();
                // Two threads share the burst's IDs: each makes half.
                two_threads(count / 2, || {
                    generator.generate().expect("a burst fits the borrow allowance")
                }) * 2
            })
        })
    });
    let generator = saturated_snowflake();
    group.bench_function("generate sustained/1 thread", |b| b.iter(|| next_snowflake(&generator)));
    group.bench_function("generate sustained/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || next_snowflake(&generator)))
    });

    // One `Vec` per batch, as the server allocates one per request.
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("generate_batch(1000) burst/1 thread", |b| {
        b.iter_custom(|iters| {
            in_bursts(iters * BATCH as u64, |count| {
                let generator = fresh_snowflake();
                let start = Instant::now();
                for _ in 0..count / BATCH as u64 {
                    let mut out = Vec::with_capacity(BATCH);
                    generator.generate_batch(BATCH, &mut out).expect("fits the allowance");
                    black_box(out);
                }
                start.elapsed()
            })
        })
    });
    let generator = saturated_snowflake();
    group.bench_function("generate_batch(1000) sustained/1 thread", |b| {
        b.iter(|| batch_of_snowflakes(&generator))
    });
    group.bench_function("generate_batch(1000) sustained/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || batch_of_snowflakes(&generator)))
    });

    group.throughput(Throughput::Elements(1));
    atomic_baseline(&mut group);
    group.finish();
}

/// The next snowflake, waiting (spinning) while the millisecond's sequence is used up.
fn next_snowflake(generator: &SnowflakeGenerator) -> SnowflakeId {
    loop {
        match generator.generate() {
            Ok(id) => return id,
            Err(error) => wait_or_panic(generator, error),
        }
    }
}

/// `BATCH` snowflakes, waiting (spinning) while the millisecond's sequence is used up.
fn batch_of_snowflakes(generator: &SnowflakeGenerator) -> Vec<SnowflakeId> {
    let mut out = Vec::with_capacity(BATCH);
    while out.len() < BATCH {
        if let Err(error) = generator.generate_batch(BATCH - out.len(), &mut out) {
            wait_or_panic(generator, error);
        }
    }
    out
}

/// `Exhausted` is the cap: retry. A `ClockMovedBackwards` that a fresh clock reading
/// contradicts came from a stale reading racing another thread at the cap, not from the clock
/// (see `benches/ratios.rs`, which counts them): retry. Anything else is a broken host.
fn wait_or_panic(generator: &SnowflakeGenerator, error: IssueError) {
    match error {
        IssueError::Exhausted { .. } => std::hint::spin_loop(),
        IssueError::ClockMovedBackwards { last_ms, .. }
            if last_ms <= SystemClock.now_ms() + generator.config().max_backward_ms => {}
        other => panic!("snowflake refused: {other}"),
    }
}

/// Splits `total` IDs into bursts of at most [`BURST_IDS`] and adds up their times.
fn in_bursts(total: u64, mut run: impl FnMut(u64) -> Duration) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = total;
    while left > 0 {
        let count = left.min(BURST_IDS);
        elapsed += run(count);
        left -= count;
    }
    elapsed
}

fn timestamp(c: &mut Criterion) {
    let mut group = group(c, "timestamp");
    // No ceiling is set, as in a unit test: the values run ahead of the clock by one ms per ID
    // issued in the same ms, which costs nothing here.
    let generator = TimestampGenerator::new(SystemClock);
    group.bench_function("ours/1 thread", |b| {
        b.iter(|| generator.generate().expect("no ceiling is set"))
    });
    group.bench_function("ours/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || generator.generate().expect("no ceiling")))
    });
    atomic_baseline(&mut group);
    group.finish();
}

fn counter(c: &mut Criterion) {
    let mut group = group(c, "counter");
    let counter = Counter::starting_after(0);
    counter.set_ceiling(u64::MAX);
    group.bench_function("ours/1 thread", |b| {
        b.iter(|| counter.take(1).expect("the ceiling is u64::MAX"))
    });
    group.bench_function("ours/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || counter.take(1).expect("ceiling u64::MAX")))
    });
    atomic_baseline(&mut group);
    group.finish();
}

fn random_string(c: &mut Criterion) {
    let mut group = group(c, "random");
    let ours = || random::generate(&mut rand::rng(), Length::DEFAULT, Alphabet::Alphanumeric);
    let raw = || Alphanumeric.sample_string(&mut rand::rng(), Length::DEFAULT.get());
    group.bench_function("ours/1 thread", |b| b.iter(ours));
    group.bench_function("Alphanumeric.sample_string/1 thread", |b| b.iter(raw));
    group.bench_function("ours/2 threads", |b| b.iter_custom(|iters| two_threads(iters, ours)));
    group.bench_function("Alphanumeric.sample_string/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, raw))
    });
    group.finish();
}

/// `AtomicU64::fetch_add(1)`: the least any generator whose state is one shared atomic can
/// cost per ID, alone and with two threads bouncing its cache line.
fn atomic_baseline(group: &mut BenchmarkGroup<'_, WallTime>) {
    let atomic = AtomicU64::new(0);
    group.bench_function("AtomicU64::fetch_add/1 thread", |b| {
        b.iter(|| atomic.fetch_add(1, Ordering::Relaxed))
    });
    group.bench_function("AtomicU64::fetch_add/2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || atomic.fetch_add(1, Ordering::Relaxed)))
    });
}

/// A group reporting IDs per second.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group
}

/// Two threads each call `generate` `iters` times, starting together; returns the wall time
/// from the first start to the last finish divided by two, i.e. the time per ID of the pair.
/// Spawning is outside the timed span.
fn two_threads<T>(iters: u64, generate: impl Fn() -> T + Sync) -> Duration {
    let arrived = AtomicUsize::new(0);
    let spans: Vec<(Instant, Instant)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    start_together(&arrived);
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(generate());
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("bench thread panicked")).collect()
    });
    let start = spans.iter().map(|span| span.0).min().expect("two spans");
    let end = spans.iter().map(|span| span.1).max().expect("two spans");
    (end - start) / 2
}

criterion_group! {
    name = benches;
    // Short windows keep the whole run near 1.5 minutes on 2 cores; these loops are steady,
    // so more time barely narrows the intervals. Override with `--measurement-time`.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = uuid_v4, uuid7, ulid, snowflake, timestamp, counter, random_string
}
criterion_main!(benches);

/// Blocks until both threads have called it, by spinning rather than sleeping: a thread woken
/// from a futex wait on this VM starts running about 1 ms late, longer than a whole short
/// sample, so with `std::sync::Barrier` the two threads would barely overlap.
fn start_together(arrived: &AtomicUsize) {
    arrived.fetch_add(1, Ordering::AcqRel);
    while arrived.load(Ordering::Acquire) < 2 {
        std::hint::spin_loop();
    }
}
