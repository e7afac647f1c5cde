//! Mark writes of the embedded store, on a real temporary directory: writes per second and the
//! latency of one durable write (p50, p99), with 10, 10,000 and 100,000 counters already in the
//! store, for the store (`EmbeddedStore`, redb) and for the previous release's writer (the whole
//! `state.json` rewritten per write, kept here only, as the baseline).
//!
//! `cargo bench -p idgen-server --bench embedded_store` (about a minute, and a fourth size: a
//! million counters, the most `IDGEN_MAX_COUNTERS` allows); `-- --quick` is a smoke run of a
//! few seconds. The last column is what a start pays to read the marks back. Each write raises a counter chosen at random
//! among those in the store, which is what a counter block reservation does.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use idgen_core::counter::CounterName;
use idgen_server::backend::embedded::{EmbeddedStore, Key};
use idgen_server::backend::{Mark, Snapshot};
use serde::{Deserialize, Serialize};

const SIZES: [usize; 3] = [10, 10_000, 100_000];
/// `IDGEN_MAX_COUNTERS` allows a million: measured in the full run only.
const FULL_ONLY_SIZE: usize = 1_000_000;

/// How much to measure per case: at most `writes`, stopping after `budget` once `min_writes`
/// are done (the old writer needs tens of ms per write at 100,000 counters).
struct Plan {
    writes: usize,
    min_writes: usize,
    budget: Duration,
}

/// One measured case.
struct Row {
    counters: usize,
    store: &'static str,
    latencies: Vec<Duration>,
    /// How long a start takes to read the marks back (open the store, or read and parse the
    /// file).
    open: Duration,
}

/// What one case measured: the write latencies and the time to read the marks back.
type Measured = (Vec<Duration>, Duration);

/// A small LCG: which counter each write raises; the same sequence for both stores.
struct Picker(u64);

impl Picker {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

fn name(index: usize) -> CounterName {
    CounterName::parse(&format!("counter-{index:06}")).expect("a valid name")
}

fn measure(plan: &Plan, counters: usize, mut write: impl FnMut(usize)) -> Vec<Duration> {
    let mut picker = Picker(counters as u64);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(plan.writes);
    while latencies.len() < plan.writes
        && (latencies.len() < plan.min_writes || started.elapsed() < plan.budget)
    {
        let index = picker.next(counters);
        let start = Instant::now();
        write(index);
        latencies.push(start.elapsed());
    }
    latencies
}

fn bench_store(plan: &Plan, counters: usize, dir: &Path) -> Measured {
    let store = EmbeddedStore::open(dir.to_owned()).expect("open the store");
    // Fill it in one commit (settle writes every mark it is given).
    let filled = Snapshot {
        counters: (0..counters).map(|index| (name(index), 1_000)).collect(),
        ..Snapshot::default()
    };
    store.settle(&filled).expect("fill the store");
    drop(store);
    let start = Instant::now();
    let store = EmbeddedStore::open(dir.to_owned()).expect("reopen the store");
    assert_eq!(store.snapshot().counters.len(), counters);
    let open = start.elapsed();
    let marks: Vec<Mark> = (0..counters).map(|index| Mark::Counter(name(index))).collect();
    let mut values = vec![1_000u64; counters];
    let latencies = measure(plan, counters, |index| {
        let needed = values[index] + 1;
        let target = needed + 1_000;
        let raised = store.reserve(Key::Mark(&marks[index]), needed, target).expect("write");
        assert_eq!(raised, target);
        values[index] = target;
    });
    (latencies, open)
}

/// The previous release's `state.json`.
#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    snowflake_mark_ms: u64,
    timestamp_mark_ms: u64,
    counters: BTreeMap<String, u64>,
}

/// The previous release's writer, unchanged: serialise everything, write a temp file, fsync
/// it, rename it over `state.json`, fsync the directory.
fn write_state(dir: &Path, state: &StateFile) {
    let temp = dir.join("state.json.tmp");
    let bytes = serde_json::to_vec_pretty(state).expect("plain data");
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).open(&temp).expect("temp");
    file.write_all(&bytes).expect("write");
    file.write_all(b"\n").expect("write");
    file.sync_all().expect("fsync");
    drop(file);
    fs::rename(&temp, dir.join("state.json")).expect("rename");
    File::open(dir).expect("open the dir").sync_all().expect("fsync the dir");
}

fn bench_old(plan: &Plan, counters: usize, dir: &Path) -> Measured {
    let names: Vec<String> = (0..counters).map(|index| name(index).as_str().to_owned()).collect();
    let mut state = StateFile {
        format: 1,
        snowflake_mark_ms: 0,
        timestamp_mark_ms: 0,
        counters: names.iter().map(|name| (name.clone(), 1_000)).collect(),
    };
    write_state(dir, &state);
    let start = Instant::now();
    let read: StateFile =
        serde_json::from_slice(&fs::read(dir.join("state.json")).expect("read")).expect("parse");
    assert_eq!(read.counters.len(), counters);
    let open = start.elapsed();
    let latencies = measure(plan, counters, |index| {
        *state.counters.get_mut(&names[index]).expect("a counter") += 1_001;
        write_state(dir, &state);
    });
    (latencies, open)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1e3)
}

fn print_table(rows: &[Row]) {
    println!(
        "| counters in the store | store | writes | writes/s | p50 ms | p99 ms | read at start ms |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let mut sorted = row.latencies.clone();
        sorted.sort();
        let total: Duration = sorted.iter().sum();
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            row.counters,
            row.store,
            sorted.len(),
            sorted.len() as f64 / total.as_secs_f64(),
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.99)),
            ms(row.open),
        );
    }
}

/// The facts a reader needs to compare a table with another machine's.
fn print_machine(dir: &Path) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("model name"))?.to_owned();
            Some(line.split_once(':')?.1.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("machine: {cores} cores, {cpu}, Linux {}", kernel.trim());
    println!("temp dir: {} on {}", dir.display(), file_system(dir));
}

/// The type and device of the mount that holds `dir`, from `/proc/mounts`.
fn file_system(dir: &Path) -> String {
    let Ok(mounts) = fs::read_to_string("/proc/mounts") else { return "unknown".to_owned() };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = PathBuf::from(fields.get(1)?);
            dir.starts_with(&point).then(|| (point, format!("{} ({})", fields[2], fields[0])))
        })
        .max_by_key(|(point, _)| point.as_os_str().len())
        .map_or_else(|| "unknown".to_owned(), |(_, fs)| fs)
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let plan = if quick {
        Plan { writes: 50, min_writes: 5, budget: Duration::from_millis(500) }
    } else {
        Plan { writes: 3_000, min_writes: 30, budget: Duration::from_secs(8) }
    };
    let root = tempfile::tempdir().expect("temp dir");
    print_machine(root.path());
    let mut rows = Vec::new();
    let sizes = SIZES.iter().copied().chain((!quick).then_some(FULL_ONLY_SIZE));
    for counters in sizes {
        for (store, bench) in [
            ("redb (EmbeddedStore)", bench_store as fn(&Plan, usize, &Path) -> Measured),
            ("state.json rewrite (old)", bench_old),
        ] {
            let dir = tempfile::tempdir_in(root.path()).expect("temp dir");
            let (latencies, open) = bench(&plan, counters, dir.path());
            eprintln!("{counters} counters, {store}: {} writes", latencies.len());
            rows.push(Row { counters, store, latencies, open });
        }
    }
    print_table(&rows);
}
