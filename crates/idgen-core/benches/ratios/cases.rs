//! The cases of the ratios bench, one function per generator: what ours runs, what it is
//! compared with, and the target it is held to.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use idgen_core::counter::Counter;
use idgen_core::random::{self, Alphabet, Length};
use idgen_core::timestamp::TimestampGenerator;
use idgen_core::ulid::UlidGenerator;
use idgen_core::uuid7::Uuid7Generator;
use idgen_core::{SystemClock, uuid};
use rand::distr::{Alphanumeric, SampleString};

use crate::Sizes;
use crate::common::{fresh_snowflake, saturated_snowflake};
use crate::snowflake::{sustained, sustained_batches};
use crate::timing::{one_thread, repeat, repeat_fallible, two_threads};

/// The snowflake layout's ceiling: 4096 sequence numbers per millisecond per worker.
pub const SNOWFLAKE_CAP_PER_SEC: f64 = 4_096_000.0;
/// A fresh snowflake generator may run this far ahead of the clock (`DEFAULT_MAX_BACKWARD_MS`
/// of 1 s is 4.1 million IDs); `burst` rows stay well inside it.
const BURST_IDS: u64 = 1_000_000;

pub const UUID_ONE_THREAD: &str = "uuid, 1 thread";
pub const UUID_TWO_THREADS: &str = "uuid, 2 threads";

/// What a case is held to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Listed for scale only.
    None,
    /// Our time per ID at most this many times the baseline's.
    TimeWithin(f64),
    /// IDs/s at least this fraction of the snowflake cap.
    CapFraction(f64),
}

/// Makes `ids` IDs (both threads together, for 2-thread cases) and returns the wall time.
pub type Measure = Box<dyn FnMut(u64) -> Result<std::time::Duration, String>>;

pub enum Baseline {
    Measured(&'static str, Measure),
    /// The snowflake cap: no code to run, a fixed time per ID.
    SnowflakeCap,
}

pub struct Case {
    pub name: &'static str,
    /// Use `snowflake_ids` instead of `ids` (and at most [`BURST_IDS`] for bursts).
    pub size: Size,
    pub target: Target,
    pub ours: Measure,
    pub baseline: Baseline,
}

#[derive(Debug, Clone, Copy)]
pub enum Size {
    Ids,
    SnowflakeSustained,
    SnowflakeBurst,
}

impl Size {
    pub fn ids(self, sizes: Sizes) -> u64 {
        match self {
            Size::Ids => sizes.ids,
            Size::SnowflakeSustained => sizes.snowflake_ids,
            Size::SnowflakeBurst => sizes.ids.min(BURST_IDS),
        }
    }
}

/// Every case, in the table's order.
pub fn cases() -> Vec<Case> {
    let mut cases = uuid_cases();
    cases.extend(uuid7_cases());
    cases.extend(ulid_cases());
    cases.extend(snowflake_cases());
    cases.extend(timestamp_cases());
    cases.extend(counter_cases());
    cases.extend(random_cases());
    cases
}

fn case(name: &'static str, size: Size, target: Target, ours: Measure, baseline: Baseline) -> Case {
    Case { name, size, target, ours, baseline }
}

fn uuid_cases() -> Vec<Case> {
    vec![
        case(
            UUID_ONE_THREAD,
            Size::Ids,
            Target::None,
            Box::new(|ids| {
                one_thread(ids, |count| repeat(count, || uuid::generate(&mut rand::rng())))
            }),
            Baseline::Measured(
                "`Uuid::new_v4()`",
                Box::new(|ids| one_thread(ids, |count| repeat(count, ::uuid::Uuid::new_v4))),
            ),
        ),
        case(
            UUID_TWO_THREADS,
            Size::Ids,
            Target::None,
            Box::new(|ids| {
                two_threads(ids, |count| repeat(count, || uuid::generate(&mut rand::rng())))
            }),
            Baseline::Measured(
                "`Uuid::new_v4()`",
                Box::new(|ids| two_threads(ids, |count| repeat(count, ::uuid::Uuid::new_v4))),
            ),
        ),
    ]
}

fn uuid7_cases() -> Vec<Case> {
    let uuid7 = Uuid7Generator::new(SystemClock);
    let one_thread_case = case(
        "uuid7, 1 thread",
        Size::Ids,
        Target::TimeWithin(1.25),
        Box::new(move |ids| {
            one_thread(ids, |count| repeat(count, || uuid7.generate(&mut rand::rng())))
        }),
        Baseline::Measured(
            "`Uuid::now_v7()`",
            Box::new(|ids| one_thread(ids, |count| repeat(count, ::uuid::Uuid::now_v7))),
        ),
    );
    let uuid7 = Uuid7Generator::new(SystemClock);
    let two_threads_case = case(
        "uuid7, 2 threads",
        Size::Ids,
        Target::TimeWithin(1.25),
        Box::new(move |ids| {
            two_threads(ids, |count| repeat(count, || uuid7.generate(&mut rand::rng())))
        }),
        Baseline::Measured(
            "`Uuid::now_v7()`",
            Box::new(|ids| two_threads(ids, |count| repeat(count, ::uuid::Uuid::now_v7))),
        ),
    );
    vec![one_thread_case, two_threads_case]
}

fn ulid_cases() -> Vec<Case> {
    let ulid = UlidGenerator::new(SystemClock);
    let mut raw_ulid = ::ulid::Generator::new();
    let one_thread_case = case(
        "ulid, 1 thread",
        Size::Ids,
        Target::TimeWithin(1.25),
        Box::new(move |ids| {
            one_thread(ids, |count| repeat(count, || ulid.generate(&mut rand::rng())))
        }),
        Baseline::Measured(
            "`ulid::Generator::generate()`",
            Box::new(move |ids| {
                one_thread(ids, |count| repeat(count, || raw_ulid_next(&mut raw_ulid)))
            }),
        ),
    );
    let ulid = UlidGenerator::new(SystemClock);
    let shared_ulid = Mutex::new(::ulid::Generator::new());
    let two_threads_case = case(
        "ulid, 2 threads",
        Size::Ids,
        Target::TimeWithin(1.25),
        Box::new(move |ids| {
            two_threads(ids, |count| repeat(count, || ulid.generate(&mut rand::rng())))
        }),
        Baseline::Measured(
            "`Mutex<ulid::Generator>`",
            Box::new(move |ids| {
                two_threads(ids, |count| {
                    repeat(count, || {
                        raw_ulid_next(&mut shared_ulid.lock().expect("no bench thread panics"))
                    })
                })
            }),
        ),
    );
    vec![one_thread_case, two_threads_case]
}

/// Sustained (against the cap) then burst (against `fetch_add`, the floor).
fn snowflake_cases() -> Vec<Case> {
    let sustained_case = |name, ours: Measure| {
        case(
            name,
            Size::SnowflakeSustained,
            Target::CapFraction(0.95),
            ours,
            Baseline::SnowflakeCap,
        )
    };
    let burst_case = |name, threads: Threads| {
        let ours: Measure = Box::new(move |ids| {
            let generator = fresh_snowflake();
            let count_ids = |count| {
                repeat_fallible(count, || generator.generate().map_err(|error| error.to_string()))
            };
            match threads {
                Threads::One => one_thread(ids, count_ids),
                Threads::Two => two_threads(ids, count_ids),
            }
        });
        let baseline = Baseline::Measured("`AtomicU64::fetch_add`", fetch_add(threads));
        case(name, Size::SnowflakeBurst, Target::None, ours, baseline)
    };
    vec![
        sustained_case(
            "snowflake `generate()` sustained, 1 thread",
            Box::new(|ids| {
                let generator = saturated_snowflake();
                one_thread(ids, |count| sustained(&generator, count))
            }),
        ),
        sustained_case(
            "snowflake `generate()` sustained, 2 threads",
            Box::new(|ids| {
                let generator = saturated_snowflake();
                two_threads(ids, |count| sustained(&generator, count))
            }),
        ),
        sustained_case(
            "snowflake `generate_batch(1000)` sustained, 1 thread",
            Box::new(|ids| {
                let generator = saturated_snowflake();
                one_thread(ids, |count| sustained_batches(&generator, count))
            }),
        ),
        burst_case("snowflake `generate()` burst, 1 thread", Threads::One),
        burst_case("snowflake `generate()` burst, 2 threads", Threads::Two),
    ]
}

fn timestamp_cases() -> Vec<Case> {
    [Threads::One, Threads::Two]
        .map(|threads| {
            // No ceiling: values run ahead of the clock by one ms per ID, which costs nothing
            // here.
            let generator = TimestampGenerator::new(SystemClock);
            case(
                threads.label("timestamp"),
                Size::Ids,
                Target::None,
                threads.run(move |count| {
                    repeat_fallible(count, || {
                        generator.generate().map_err(|error| error.to_string())
                    })
                }),
                Baseline::Measured("`AtomicU64::fetch_add`", fetch_add(threads)),
            )
        })
        .into()
}

fn counter_cases() -> Vec<Case> {
    [Threads::One, Threads::Two]
        .map(|threads| {
            let counter = Counter::starting_after(0);
            counter.set_ceiling(u64::MAX);
            case(
                threads.label("counter"),
                Size::Ids,
                Target::None,
                threads.run(move |count| {
                    repeat_fallible(count, || counter.take(1).map_err(|error| error.to_string()))
                }),
                Baseline::Measured("`AtomicU64::fetch_add`", fetch_add(threads)),
            )
        })
        .into()
}

fn random_cases() -> Vec<Case> {
    [Threads::One, Threads::Two]
        .map(|threads| {
            case(
                threads.label("random (21, alphanumeric)"),
                Size::Ids,
                Target::None,
                threads.run(|count| {
                    repeat(count, || {
                        random::generate(&mut rand::rng(), Length::DEFAULT, Alphabet::Alphanumeric)
                    })
                }),
                Baseline::Measured(
                    "`Alphanumeric.sample_string`",
                    threads.run(|count| {
                        repeat(count, || {
                            Alphanumeric.sample_string(&mut rand::rng(), Length::DEFAULT.get())
                        })
                    }),
                ),
            )
        })
        .into()
}

#[derive(Debug, Clone, Copy)]
enum Threads {
    One,
    Two,
}

impl Threads {
    fn label(self, kind: &str) -> &'static str {
        let label = match self {
            Threads::One => format!("{kind}, 1 thread"),
            Threads::Two => format!("{kind}, 2 threads"),
        };
        // A handful of labels for the life of the process.
        Box::leak(label.into_boxed_str())
    }

    /// A measurement running `run(count)` on one thread, or on two threads sharing the IDs.
    fn run(self, run: impl Fn(u64) -> Result<(), String> + Sync + 'static) -> Measure {
        match self {
            Threads::One => Box::new(move |ids| one_thread(ids, &run)),
            Threads::Two => Box::new(move |ids| two_threads(ids, &run)),
        }
    }
}

/// `AtomicU64::fetch_add(1)` on one shared atomic: the floor for a generator whose whole
/// state is one atomic.
fn fetch_add(threads: Threads) -> Measure {
    let atomic = AtomicU64::new(0);
    threads.run(move |count| repeat(count, || atomic.fetch_add(1, Ordering::Relaxed)))
}

fn raw_ulid_next(generator: &mut ::ulid::Generator) -> ::ulid::Ulid {
    generator.generate().expect("overflow needs 2^80 ULIDs in one millisecond")
}
