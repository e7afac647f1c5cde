//! `cargo xtask bench`: builds the release server, starts it (embedded; rate limited; Redis
//! mode when the build has it), drives every route with wrk in interleaved rounds and writes
//! the report (see `report.rs`) with the targets (see `target.rs`).
//!
//! Interleaving: each round runs every case once, in a rotated order, and a case's figures are
//! the median over rounds. On a shared 2-core machine noise comes in bursts (another build, a
//! cron job); interleaving spreads a burst over many cases instead of ruining the few that
//! happened to run during it.
//!
//! Pairing: the machine's speed also drifts by 20% or more over a minute, so a ratio of two
//! medians taken at different moments mostly measures the drift. Every sample carries its
//! place in the run (`Sample::sequence`), the ceiling runs six times per round, and a case
//! compared with another reference runs right next to it; a target's ratio is then the median
//! of per-sample ratios, each against the reference at that moment: interpolated between the
//! ceiling runs around it, or the nearest run of a reference in the same unit (see
//! `target.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::process::{Redis, Server, TempDir, http_get};
use crate::report;
use crate::wrk::{self, Sample};

/// What `cargo xtask bench` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub out: Option<PathBuf>,
    pub build: bool,
    /// `--rounds N`: more rounds than the default, for a tighter median.
    pub rounds: Option<usize>,
}

pub const USAGE: &str = "cargo xtask bench [--quick] [--rounds N] [--out FILE] [--no-build]
  --quick      1 round of 1 s per case and fewer cases (CI smoke run, well under a minute);
               writes target/bench-quick.md unless --out is given
  --rounds N   N rounds instead of 8 (each about 36 s): a paired ratio's spread shrinks with
               the square root of N; the report names the command it ran
  --out FILE   where the markdown report goes (default docs/benchmarks.md); the SVG chart is
               written next to it as benchmark-batches.svg
  --no-build   use the existing target/release/idgen-server instead of building it";

impl Options {
    pub fn parse(arguments: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut options = Options { quick: false, out: None, build: true, rounds: None };
        let mut arguments = arguments;
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--quick" => options.quick = true,
                "--no-build" => options.build = false,
                "--out" => {
                    let path = arguments.next().context("--out needs a file name")?;
                    options.out = Some(PathBuf::from(path));
                }
                "--rounds" => {
                    let rounds = arguments.next().context("--rounds needs a number")?;
                    options.rounds = Some(parse_rounds(&rounds)?);
                }
                "-h" | "--help" => {
                    println!("usage: {USAGE}");
                    std::process::exit(0);
                }
                other => {
                    if let Some(path) = other.strip_prefix("--out=") {
                        options.out = Some(PathBuf::from(path));
                    } else if let Some(rounds) = other.strip_prefix("--rounds=") {
                        options.rounds = Some(parse_rounds(rounds)?);
                    } else {
                        bail!("unknown argument {other:?}\nusage: {USAGE}");
                    }
                }
            }
        }
        if options.quick && options.rounds.is_some() {
            bail!("--quick runs one round; leave out --rounds\nusage: {USAGE}");
        }
        Ok(options)
    }
}

fn parse_rounds(text: &str) -> anyhow::Result<usize> {
    match text.parse::<usize>() {
        Ok(rounds @ 1..=100) => Ok(rounds),
        _ => bail!("--rounds takes a whole number from 1 to 100, not {text:?}"),
    }
}

/// How long and how often each case runs.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub quick: bool,
    pub rounds: usize,
    pub seconds: u32,
    /// Unrecorded wrk run per server before the first round.
    pub warmup_seconds: u32,
    /// Extra start/stop cycles of the embedded server for time-to-ready.
    pub extra_starts: usize,
}

impl Profile {
    fn new(quick: bool, rounds: Option<usize>) -> Profile {
        if quick {
            Profile { quick, rounds: 1, seconds: 1, warmup_seconds: 0, extra_starts: 0 }
        } else {
            // Eight short rounds rather than four long ones, the same time: a ratio is a
            // median of paired runs, and the closer in time a pair, the less drift between.
            let rounds = rounds.unwrap_or(DEFAULT_ROUNDS);
            Profile { quick, rounds, seconds: 1, warmup_seconds: 1, extra_starts: 4 }
        }
    }
}

/// Rounds of a default run: about five minutes in all on this machine.
pub const DEFAULT_ROUNDS: usize = 8;

/// The connection count of the targets (`wrk -t2 -c50`).
pub const CONNECTIONS: u32 = 50;
/// Rate limit (and burst) for the "on" servers: the server's maximum, 1,000,000 per second,
/// far above what wrk sends on this machine, so it never rejects and only its bookkeeping
/// is measured.
const HIGH_LIMIT: &str = "1000000";

/// The servers a run starts. Each is one process, shown in the report under its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKey {
    Embedded,
    RateLimited,
    RedisBlock1,
    RedisBlock1000,
    RedisRateLimited,
}

impl ServerKey {
    /// Stands for `127.0.0.1:PORT` of this server in the report's command lines.
    pub fn variable(self) -> &'static str {
        match self {
            ServerKey::Embedded => "$EMBEDDED",
            ServerKey::RateLimited => "$RATE_LIMITED",
            ServerKey::RedisBlock1 => "$REDIS_BLOCK_1",
            ServerKey::RedisBlock1000 => "$REDIS_BLOCK_1000",
            ServerKey::RedisRateLimited => "$REDIS_RATE_LIMITED",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ServerKey::Embedded => "embedded",
            ServerKey::RateLimited => "rate-limited",
            ServerKey::RedisBlock1 => "redis-block-1",
            ServerKey::RedisBlock1000 => "redis-block-1000",
            ServerKey::RedisRateLimited => "redis-rate-limited",
        }
    }

    fn flags(self) -> Vec<String> {
        match self {
            ServerKey::RateLimited | ServerKey::RedisRateLimited => {
                ["--rate-limit-per-second", HIGH_LIMIT, "--rate-limit-burst", HIGH_LIMIT]
                    .map(str::to_owned)
                    .to_vec()
            }
            _ => Vec::new(),
        }
    }

    /// `IDGEN_COUNTER_BLOCK` for the Redis servers (`None`: the server's default).
    fn counter_block(self) -> Option<&'static str> {
        match self {
            ServerKey::RedisBlock1 => Some("1"),
            ServerKey::RedisBlock1000 => Some("1000"),
            _ => None,
        }
    }
}

/// Report sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Ceiling,
    Single,
    Tutorial,
    Batch,
    Connections,
    RateLimit,
    Redis,
}

/// One thing measured: a route on a server at a concurrency, or redis-benchmark.
#[derive(Debug, Clone)]
pub struct Case {
    /// Stable key the targets look cases up by, e.g. `v1/uuid7`, `batch/text/1000`.
    pub id: String,
    pub group: Group,
    pub load: Load,
}

/// The `Accept` value of the text/plain batches.
const TEXT: &str = "text/plain";

#[derive(Debug, Clone)]
pub enum Load {
    Http {
        server: ServerKey,
        path: String,
        /// The `Accept` header sent, if any.
        accept: Option<&'static str>,
        connections: u32,
        ids: u64,
    },
    RedisIncr {
        connections: u32,
    },
}

impl Case {
    fn http(id: &str, group: Group, server: ServerKey, path: &str) -> Case {
        Case {
            id: id.to_owned(),
            group,
            load: Load::Http {
                server,
                path: path.to_owned(),
                accept: None,
                connections: CONNECTIONS,
                ids: 1,
            },
        }
    }

    /// Both formats send an `Accept` header, so that the pair differs in its value only (a
    /// header costs the server some work of its own, the same for both).
    fn batch(size: u64, accept_text: bool) -> Case {
        let (format, accept) =
            if accept_text { ("text", TEXT) } else { ("json", "application/json") };
        Case {
            id: format!("batch/{format}/{size}"),
            group: Group::Batch,
            load: Load::Http {
                server: ServerKey::Embedded,
                path: format!("/v1/ids/uuid7?count={size}"),
                accept: Some(accept),
                connections: CONNECTIONS,
                ids: size,
            },
        }
    }

    fn connections(connections: u32) -> Case {
        Case {
            id: format!("connections/{connections}"),
            group: Group::Connections,
            load: Load::Http {
                server: ServerKey::Embedded,
                path: "/v1/ids/uuid7".to_owned(),
                accept: None,
                connections,
                ids: 1,
            },
        }
    }

    /// IDs per request.
    pub fn ids_per_request(&self) -> u64 {
        match self.load {
            Load::Http { ids, .. } => ids,
            Load::RedisIncr { .. } => 1,
        }
    }

    pub fn connection_count(&self) -> u32 {
        match self.load {
            Load::Http { connections, .. } | Load::RedisIncr { connections } => connections,
        }
    }
}

/// Single-ID v1 routes, in report order.
pub const KINDS: [&str; 7] =
    ["uuid", "uuid7", "ulid", "snowflake", "timestamp", "counter", "random"];
/// The tutorial-compatible routes.
pub const TUTORIAL_ROUTES: [&str; 5] = [
    "/generate_uuid",
    "/generate_timestamp_id",
    "/generate_counter_id",
    "/generate_snowflake_id",
    "/generate_random_string/21",
];
pub const BATCH_SIZES: [u64; 4] = [10, 100, 1_000, 10_000];
/// Besides [`CONNECTIONS`], which the single-ID `v1/uuid7` case already covers.
const OTHER_CONNECTIONS: [u32; 3] = [1, 10, 200];

/// The constant route most targets compare with: case 0 of every run.
fn ceiling() -> Case {
    Case::http("ceiling", Group::Ceiling, ServerKey::Embedded, "/healthz")
}

/// How often the ceiling runs per round, evenly spaced (see [`round_order`]).
pub const CEILING_RUNS: usize = 6;

/// Every case of a run but the ceiling, in units that always run back to back: a case whose
/// target compares it with a reference other than the ceiling shares a unit with that
/// reference, right next to it, so that each pair is measured seconds apart in every round.
fn plan(quick: bool, redis: bool) -> Vec<Vec<Case>> {
    use ServerKey::*;
    let mut units = Vec::new();
    let kinds: &[&str] = if quick { &["uuid7", "counter"] } else { &KINDS };
    for kind in kinds {
        let mut unit = vec![Case::http(
            &format!("v1/{kind}"),
            Group::Single,
            Embedded,
            &format!("/v1/ids/{kind}"),
        )];
        if *kind == "uuid7" {
            // Rate limiting on vs off: off is `v1/uuid7`.
            unit.push(Case::http("rate-limit/on", Group::RateLimit, RateLimited, "/v1/ids/uuid7"));
        }
        units.push(unit);
    }
    let tutorial: &[&str] = if quick { &TUTORIAL_ROUTES[..1] } else { &TUTORIAL_ROUTES };
    for route in tutorial {
        units.push(vec![Case::http(&format!("tutorial{route}"), Group::Tutorial, Embedded, route)]);
    }
    let sizes: &[u64] = if quick { &[1_000] } else { &BATCH_SIZES };
    for &size in sizes {
        units.push(vec![Case::batch(size, false), Case::batch(size, true)]);
    }
    if !quick {
        units.extend(OTHER_CONNECTIONS.map(|connections| vec![Case::connections(connections)]));
    }
    if redis {
        units.push(vec![Case::http(
            "redis/counter-block-1000",
            Group::Redis,
            RedisBlock1000,
            "/v1/ids/counter",
        )]);
        units.push(vec![Case::http("redis/uuid", Group::Redis, RedisBlock1000, "/v1/ids/uuid")]);
        // redis-benchmark is the reference of the two rows around it.
        units.push(vec![
            Case::http("redis/counter-block-1", Group::Redis, RedisBlock1, "/v1/ids/counter"),
            Case {
                id: "redis-benchmark/incr".to_owned(),
                group: Group::Redis,
                load: Load::RedisIncr { connections: CONNECTIONS },
            },
            Case::http("redis/uuid-rate-limited", Group::Redis, RedisRateLimited, "/v1/ids/uuid"),
        ]);
    }
    units
}

/// The case indices one round runs, where case 0 is the ceiling and the units of
/// `unit_sizes` (see [`plan`]) hold cases 1, 2, ... in order.
///
/// The units run once each, rotated by whole units (`round * units / rounds`) so that no case
/// always follows the same neighbour and no unit is split. The ceiling runs
/// [`CEILING_RUNS`] times, at the unit boundaries nearest to evenly spaced points of the round
/// (the first at its start), so every case has a ceiling run a few runs before and after it
/// (see `target::BRACKET_RUNS`), and the spacing holds across rounds too. Odd rounds reverse
/// each unit.
fn round_order(unit_sizes: &[usize], round: usize, rounds: usize) -> Vec<usize> {
    let mut units = Vec::new();
    let mut first = 1;
    for &size in unit_sizes {
        units.push(first..first + size);
        first += size;
    }
    let offset = round * units.len() / rounds;
    units.rotate_left(offset);
    // boundaries[i]: how many cases run before unit i; the last one is the round's length.
    let mut boundaries = vec![0];
    for unit in &units {
        boundaries.push(boundaries.last().expect("starts with 0") + unit.len());
    }
    let total = first - 1;
    let ceilings: Vec<usize> = (0..CEILING_RUNS)
        .map(|run| {
            // The boundary nearest `run * total / CEILING_RUNS` (the earlier on a tie).
            (0..boundaries.len())
                .min_by_key(|&i| (boundaries[i] * CEILING_RUNS).abs_diff(run * total))
                .expect("there is always boundary 0")
        })
        .collect();
    let mut order = Vec::with_capacity(total + CEILING_RUNS);
    for index in 0..boundaries.len() {
        order.extend(ceilings.iter().filter(|&&ceiling| ceiling == index).map(|_| 0));
        if let Some(unit) = units.get(index) {
            // Odd rounds run a unit back to front, so that a case is not always measured
            // right after its reference (or before it): a drift within the pair cancels.
            if round % 2 == 1 {
                order.extend(unit.clone().rev());
            } else {
                order.extend(unit.clone());
            }
        }
    }
    order
}

/// A case's samples, or why it could not run.
#[derive(Debug)]
pub struct Outcome {
    pub case: Case,
    /// The command line, with the server's address as its variable.
    pub command: String,
    pub samples: Vec<Sample>,
    pub failure: Option<String>,
}

/// Medians over the rounds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub requests_per_second: f64,
    pub ids_per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: Option<f64>,
    /// The server's CPU time per request (user + system), median over the rounds.
    pub cpu_us_per_request: Option<f64>,
    /// Half the range of req/s over the rounds, relative to the median: the noise.
    pub spread: f64,
    /// Summed over the rounds: socket errors and non-2xx answers.
    pub errors: u64,
}

impl Outcome {
    pub fn summary(&self) -> Option<Summary> {
        if self.samples.is_empty() {
            return None;
        }
        let rates = self.samples.iter().map(Sample::requests_per_second);
        let rps = median(rates.clone());
        let (low, high) = rates
            .fold((f64::INFINITY, 0.0_f64), |(low, high), rate| (low.min(rate), high.max(rate)));
        let p999: Vec<f64> = self.samples.iter().filter_map(|sample| sample.p999_us).collect();
        Some(Summary {
            requests_per_second: rps,
            ids_per_second: rps * self.case.ids_per_request() as f64,
            p50_us: median(self.samples.iter().map(|sample| sample.p50_us)),
            p99_us: median(self.samples.iter().map(|sample| sample.p99_us)),
            p999_us: (!p999.is_empty()).then(|| median(p999.into_iter())),
            cpu_us_per_request: {
                let per_request: Vec<f64> = self
                    .samples
                    .iter()
                    .filter_map(|sample| {
                        Some(sample.server_cpu_seconds? * 1e6 / sample.requests as f64)
                    })
                    .collect();
                (!per_request.is_empty()).then(|| median_of(&per_request))
            },
            spread: (high - low) / 2.0 / rps,
            errors: self.samples.iter().map(|sample| sample.errors).sum(),
        })
    }
}

pub fn median_of(values: &[f64]) -> f64 {
    median(values.iter().copied())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One server process as the report shows it.
#[derive(Debug)]
pub struct ServerReport {
    pub key: ServerKey,
    pub mode: String,
    pub command: String,
    pub ready_ms: f64,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: Option<u64>,
}

/// Everything the report needs.
#[derive(Debug)]
pub struct Results {
    pub profile: Profile,
    pub machine: report::Machine,
    pub outcomes: Vec<Outcome>,
    pub servers: Vec<ServerReport>,
    /// Time-to-ready of every embedded start (the extra cycles and the two kept servers).
    pub ready_ms: Vec<f64>,
    /// Why there are no Redis rows, when there are none.
    pub redis_skipped: Option<String>,
    pub wall_seconds: f64,
    /// `/proc/loadavg` before the first server started and after the last case: other work on
    /// the machine shows up here, and in the noise of every figure.
    pub load_average: (String, String),
}

impl Results {
    pub fn outcome(&self, id: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|outcome| outcome.case.id == id)
    }

    pub fn summary(&self, id: &str) -> Option<Summary> {
        self.outcome(id)?.summary()
    }
}

/// A started server and, in Redis mode, the redis-server behind it (dropped after it).
struct Running {
    key: ServerKey,
    server: Server,
    command: String,
    _redis: Option<Redis>,
}

/// Every server of a run; dropping it stops them all.
struct Fleet {
    running: Vec<Running>,
    /// The redis-server `redis-benchmark` runs against; `None` without Redis rows.
    redis_baseline: Option<Redis>,
    redis_skipped: Option<String>,
}

impl Fleet {
    /// The embedded servers, then the Redis-mode ones when this build and machine have them.
    /// Each embedded start's time-to-ready is added to `ready_ms`.
    fn start(binary: &Path, ready_ms: &mut Vec<f64>) -> anyhow::Result<Fleet> {
        let mut running = Vec::new();
        for key in [ServerKey::Embedded, ServerKey::RateLimited] {
            let server = start_server(binary, key, None)?;
            ready_ms.push(server.server.ready().as_secs_f64() * 1e3);
            running.push(server);
        }
        let (redis_baseline, redis_skipped) = match start_redis_servers(binary) {
            Ok((servers, baseline)) => {
                running.extend(servers);
                (Some(baseline), None)
            }
            Err(reason) => {
                eprintln!("xtask: Redis rows skipped: {reason:#}");
                (None, Some(format!("{reason:#}")))
            }
        };
        Ok(Fleet { running, redis_baseline, redis_skipped })
    }

    fn server(&self, key: ServerKey) -> &Server {
        self.running
            .iter()
            .find(|running| running.key == key)
            .map(|running| &running.server)
            .expect("cases are only planned for servers that run")
    }

    fn address(&self, key: ServerKey) -> std::net::SocketAddr {
        self.server(key).address()
    }

    /// Idle and peak RSS as of now: call after the last case.
    fn reports(&self) -> Vec<ServerReport> {
        self.running
            .iter()
            .map(|running| ServerReport {
                key: running.key,
                mode: running.server.mode().to_owned(),
                command: running.command.clone(),
                ready_ms: running.server.ready().as_secs_f64() * 1e3,
                idle_rss_kib: running.server.idle_rss_kib(),
                peak_rss_kib: running.server.peak_rss_kib().ok(),
            })
            .collect()
    }
}

/// Runs the load generators.
struct Driver {
    profile: Profile,
    /// Holds `bench.lua`; wrk runs in it.
    scratch: TempDir,
    /// redis-benchmark runs a request count, not a duration: aim at `profile.seconds` from
    /// the last measured rate.
    redis_requests: u64,
    /// The next [`Sample::sequence`]: counts every measurement of the run, failed ones too.
    sequence: u64,
}

/// wrk's `-s` argument, relative to [`Driver::scratch`].
const SCRIPT: &str = "bench.lua";

impl Driver {
    fn new(profile: Profile) -> anyhow::Result<Driver> {
        let scratch = TempDir::new("wrk")?;
        std::fs::write(scratch.path().join(SCRIPT), wrk::LUA_SCRIPT)
            .context("write the wrk script")?;
        Ok(Driver {
            profile,
            scratch,
            redis_requests: 80_000 * u64::from(profile.seconds),
            sequence: 0,
        })
    }

    /// The command line as the report shows it (servers as their variables).
    fn command(&self, load: &Load) -> String {
        match load {
            Load::Http { server, path, accept, connections, .. } => {
                let url = format!("http://{}{path}", server.variable());
                let arguments =
                    wrk::arguments(*connections, self.profile.seconds, SCRIPT, *accept, &url);
                wrk::display_command("wrk", &arguments)
            }
            Load::RedisIncr { connections } => {
                let arguments = wrk::redis_benchmark_arguments(0, *connections, 0);
                wrk::display_command("redis-benchmark", &arguments)
                    .replace("-p 0", "-p $REDIS_BASELINE_PORT")
                    .replace("-n 0", "-n N")
            }
        }
    }

    /// One run of `load`, numbered in the order of the run.
    fn measure(&mut self, fleet: &Fleet, load: &Load) -> anyhow::Result<Sample> {
        let sequence = self.sequence;
        self.sequence += 1;
        let mut sample = self.run_load(fleet, load)?;
        sample.sequence = sequence;
        Ok(sample)
    }

    fn run_load(&mut self, fleet: &Fleet, load: &Load) -> anyhow::Result<Sample> {
        match load {
            Load::Http { server, path, accept, connections, .. } => {
                let server = fleet.server(*server);
                let url = format!("http://{}{path}", server.address());
                let arguments =
                    wrk::arguments(*connections, self.profile.seconds, SCRIPT, *accept, &url);
                // The server's CPU time per request: far less sensitive than req/s to other
                // work on the machine, which takes cores away but does not add server work.
                let cpu_before = server.cpu_seconds().ok();
                let mut sample = wrk::run(self.scratch.path(), &arguments)?;
                sample.server_cpu_seconds =
                    cpu_before.zip(server.cpu_seconds().ok()).map(|(before, after)| after - before);
                Ok(sample)
            }
            Load::RedisIncr { connections } => {
                let redis = fleet.redis_baseline.as_ref().expect("planned only with Redis");
                let arguments =
                    wrk::redis_benchmark_arguments(redis.port(), *connections, self.redis_requests);
                let sample = wrk::run_redis_benchmark(&arguments, self.redis_requests)?;
                let aim = sample.requests_per_second() * f64::from(self.profile.seconds);
                self.redis_requests = (aim as u64).max(10_000);
                Ok(sample)
            }
        }
    }

    /// An unrecorded run per server, so that the first round does not pay for cold caches
    /// and first allocations.
    fn warm_up(&self, fleet: &Fleet) -> anyhow::Result<()> {
        if self.profile.warmup_seconds == 0 {
            return Ok(());
        }
        for running in &fleet.running {
            let url = format!("http://{}/v1/ids/uuid7", running.server.address());
            let seconds = self.profile.warmup_seconds;
            let arguments = wrk::arguments(CONNECTIONS, seconds, SCRIPT, None, &url);
            wrk::run(self.scratch.path(), &arguments).context("warm-up run")?;
        }
        Ok(())
    }

    /// Every round runs every case once, in a rotated order so that no case always follows
    /// the same neighbour, and the ceiling (case 0 of `outcomes`), the reference of most
    /// targets, [`CEILING_RUNS`] times; `unit_sizes` are those of [`plan`] (see
    /// [`round_order`]).
    fn run_rounds(&mut self, fleet: &Fleet, outcomes: &mut [Outcome], unit_sizes: &[usize]) {
        let rounds = self.profile.rounds;
        for round in 0..rounds {
            for index in round_order(unit_sizes, round, rounds) {
                let outcome = &mut outcomes[index];
                if outcome.failure.is_some() {
                    continue;
                }
                match self.measure(fleet, &outcome.case.load) {
                    Ok(sample) => {
                        let errors = match sample.errors {
                            0 => String::new(),
                            errors => format!("  {errors} errors"),
                        };
                        eprintln!(
                            "xtask: round {}/{rounds} {:<28} {:>10.0} req/s  p50 {:>7.0} us  p99 {:>7.0} us{errors}",
                            round + 1,
                            outcome.case.id,
                            sample.requests_per_second(),
                            sample.p50_us,
                            sample.p99_us,
                        );
                        outcome.samples.push(sample);
                    }
                    Err(error) => {
                        eprintln!("xtask: {} failed: {error:#}", outcome.case.id);
                        outcome.failure = Some(format!("{error:#}"));
                    }
                }
            }
        }
    }
}

/// Builds, starts, measures, reports. Every server and redis-server is stopped by its guard
/// on the way out, error or not (on Ctrl-C the terminal's SIGINT reaches them too: they are
/// in the same process group).
pub fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = load_average();
    let root = workspace_root();
    let profile = Profile::new(options.quick, options.rounds);
    let out = match (&options.out, options.quick) {
        (Some(path), _) => path.clone(),
        (None, false) => root.join("docs/benchmarks.md"),
        (None, true) => target_dir(&root).join("bench-quick.md"),
    };

    if options.build {
        crate::cargo(&["build", "--release", "--package", "idgen-server"])?;
    }
    let binary = target_dir(&root).join("release/idgen-server");
    if !binary.exists() {
        bail!("{} does not exist; run without --no-build", binary.display());
    }
    wrk::ensure_installed()?;
    let machine = report::Machine::detect();
    let mut driver = Driver::new(profile)?;

    // Time to ready, cold-ish: a fresh data dir each time, nothing else running on it.
    let mut ready_ms = Vec::new();
    for cycle in 0..profile.extra_starts {
        let server = Server::start(&binary, &format!("ready-{cycle}"), &[], &[])?;
        ready_ms.push(server.ready().as_secs_f64() * 1e3);
    }
    let fleet = Fleet::start(&binary, &mut ready_ms)?;

    let units = plan(profile.quick, fleet.redis_baseline.is_some());
    let unit_sizes: Vec<usize> = units.iter().map(Vec::len).collect();
    let mut outcomes: Vec<Outcome> = std::iter::once(ceiling())
        .chain(units.into_iter().flatten())
        .map(|case| {
            let failure = match &case.load {
                Load::Http { server, path, accept, ids, .. } => {
                    preflight(fleet.address(*server), path, *accept, *ids).err()
                }
                Load::RedisIncr { .. } => None,
            };
            Outcome {
                command: driver.command(&case.load),
                case,
                samples: Vec::new(),
                failure: failure.map(|error| format!("{error:#}")),
            }
        })
        .collect();
    for outcome in &outcomes {
        if let Some(failure) = &outcome.failure {
            eprintln!("xtask: {} left out: {failure}", outcome.case.id);
        }
    }
    let runnable = outcomes.iter().filter(|outcome| outcome.failure.is_none()).count();
    let ceiling_runs = if outcomes[0].failure.is_none() { CEILING_RUNS - 1 } else { 0 };
    eprintln!(
        "xtask: {} runs per round ({runnable} cases, the ceiling {CEILING_RUNS} times) x {} \
         round(s) x {} s",
        runnable + ceiling_runs,
        profile.rounds,
        profile.seconds
    );

    driver.warm_up(&fleet)?;
    driver.run_rounds(&fleet, &mut outcomes, &unit_sizes);
    let servers = fleet.reports();
    let redis_skipped = fleet.redis_skipped.clone();
    drop(fleet);

    let results = Results {
        profile,
        machine,
        outcomes,
        servers,
        ready_ms,
        redis_skipped,
        wall_seconds: started.elapsed().as_secs_f64(),
        load_average: (load_before, load_average()),
    };
    report::write(&results, &out)?;
    println!("{}", report::targets_table(&results));
    eprintln!("xtask: report written to {}", out.display());
    Ok(())
}

fn start_server(binary: &Path, key: ServerKey, redis: Option<Redis>) -> anyhow::Result<Running> {
    let flags = key.flags();
    let mut env = Vec::new();
    if let Some(redis) = &redis {
        env.push(("IDGEN_REDIS_URL".to_owned(), redis.url()));
    }
    if let Some(block) = key.counter_block() {
        env.push(("IDGEN_COUNTER_BLOCK".to_owned(), block.to_owned()));
    }
    let server = Server::start(binary, key.label(), &flags, &env)
        .with_context(|| format!("start the {} server", key.label()))?;
    let mut command = String::new();
    for (name, value) in &env {
        let value = if name == "IDGEN_REDIS_URL" {
            "redis://127.0.0.1:$REDIS_PORT".to_owned()
        } else {
            value.clone()
        };
        command.push_str(&format!("{name}={value} "));
    }
    command.push_str("target/release/idgen-server --bind 127.0.0.1:0 --data-dir $TMPDIR/...");
    for flag in &flags {
        command.push(' ');
        command.push_str(flag);
    }
    Ok(Running { key, server, command, _redis: redis })
}

/// The three Redis-mode servers (each on its own redis-server, so their keys cannot mix) and
/// a fourth redis-server for redis-benchmark. Fails, with the reason the report gives, when
/// redis-server is missing or the server build has no Redis mode.
fn start_redis_servers(binary: &Path) -> anyhow::Result<(Vec<Running>, Redis)> {
    if Command::new("redis-server").arg("--version").output().is_err() {
        bail!("redis-server is not installed (`apt-get install redis-server`)");
    }
    let mut servers = Vec::new();
    for key in [ServerKey::RedisBlock1, ServerKey::RedisBlock1000, ServerKey::RedisRateLimited] {
        let redis = Redis::start(&format!("redis-{}", key.label()))?;
        let running = start_server(binary, key, Some(redis)).context(
            "idgen-server did not start with IDGEN_REDIS_URL and IDGEN_COUNTER_BLOCK set",
        )?;
        if running.server.mode() != "redis" {
            bail!(
                "this idgen-server build has no Redis mode (with IDGEN_REDIS_URL set it started \
                 in mode {:?})",
                running.server.mode()
            );
        }
        servers.push(running);
    }
    let baseline = Redis::start("redis-baseline")?;
    Ok((servers, baseline))
}

/// One request before the load: the route must answer 200, and a batch must hold its IDs
/// (so a wrong path or a rejected setting never turns into a fast table row of 404s).
fn preflight(
    address: std::net::SocketAddr,
    path: &str,
    accept: Option<&str>,
    ids: u64,
) -> anyhow::Result<()> {
    let (status, body) = http_get(address, path, accept)?;
    let body = String::from_utf8_lossy(&body);
    if status != 200 {
        bail!("GET {path} answered {status}: {}", body.chars().take(200).collect::<String>());
    }
    let found = if accept == Some(TEXT) {
        body.lines().filter(|line| !line.is_empty()).count() as u64
    } else if ids > 1 {
        // IDs are plain ASCII strings in a JSON array: count the quoted values after "ids".
        body.split_once('[').map_or(0, |(_, array)| array.matches('"').count() as u64 / 2)
    } else {
        ids
    };
    if found != ids {
        bail!("GET {path} returned {found} IDs, expected {ids}");
    }
    Ok(())
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_options() {
        let parse = |line: &str| Options::parse(line.split_whitespace().map(str::to_owned));
        let options = parse("--quick --out /tmp/bench.md").expect("valid");
        assert!(options.quick && options.build);
        assert_eq!(options.out, Some(PathBuf::from("/tmp/bench.md")));
        let options = parse("--no-build --out=x.md").expect("valid");
        assert!(!options.quick && !options.build);
        assert_eq!(options.out, Some(PathBuf::from("x.md")));
        assert!(parse("--out").is_err());
        assert!(parse("--fast").is_err());
        assert_eq!(parse("--rounds 24").expect("valid").rounds, Some(24));
        assert_eq!(parse("--rounds=3 --no-build").expect("valid").rounds, Some(3));
        assert_eq!(parse("").expect("valid").rounds, None);
        for bad in ["--rounds", "--rounds 0", "--rounds x", "--rounds=101", "--quick --rounds 2"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
    }

    #[test]
    fn quick_plan_is_small_and_full_plan_has_every_row() {
        let quick: Vec<Case> = plan(true, false).into_iter().flatten().collect();
        assert!(quick.len() < 10);
        let full: Vec<Case> = plan(false, true).into_iter().flatten().collect();
        assert_eq!(full.len(), 29, "the ceiling aside");
        for id in ["v1/random", "tutorial/generate_uuid", "batch/text/10000", "rate-limit/on"] {
            assert!(full.iter().any(|case| case.id == id), "{id} missing");
        }
        assert!(full.iter().all(|case| case.id != "ceiling"), "the ceiling is case 0, apart");
        assert!(full.iter().any(|case| matches!(case.load, Load::RedisIncr { .. })));
    }

    #[test]
    fn each_case_runs_next_to_its_reference() {
        // (reference, case) of every target whose reference is not the ceiling.
        let mut pairs = vec![
            ("v1/uuid7".to_owned(), "rate-limit/on".to_owned()),
            ("redis-benchmark/incr".to_owned(), "redis/counter-block-1".to_owned()),
            ("redis-benchmark/incr".to_owned(), "redis/uuid-rate-limited".to_owned()),
        ];
        pairs.extend(
            BATCH_SIZES.map(|size| (format!("batch/json/{size}"), format!("batch/text/{size}"))),
        );
        for (quick, redis) in [(true, false), (true, true), (false, true)] {
            let units = plan(quick, redis);
            for (reference, case) in &pairs {
                let Some(unit) = units.iter().find(|unit| unit.iter().any(|c| &c.id == case))
                else {
                    assert!(quick || !case.starts_with("batch"), "{case} missing");
                    continue;
                };
                let position = |id: &str| unit.iter().position(|c| c.id == id);
                let (Some(reference), Some(case)) = (position(reference), position(case)) else {
                    panic!("{case} is not in its reference {reference}'s unit");
                };
                assert_eq!(reference.abs_diff(case), 1, "{case} is not next to {reference}");
            }
        }
    }

    /// The runs between consecutive ceiling runs of `order`, the last gap wrapping round to
    /// the next round's first ceiling run.
    fn ceiling_gaps(order: &[usize]) -> Vec<usize> {
        let ceilings: Vec<usize> = (0..order.len()).filter(|&i| order[i] == 0).collect();
        let mut gaps: Vec<usize> = ceilings.windows(2).map(|pair| pair[1] - pair[0] - 1).collect();
        gaps.push(order.len() - ceilings.last().expect("a ceiling run") - 1 + ceilings[0]);
        gaps
    }

    #[test]
    fn a_round_runs_every_unit_once_and_the_ceiling_evenly() {
        let unit_sizes: Vec<usize> = plan(false, true).iter().map(Vec::len).collect();
        let total: usize = unit_sizes.iter().sum();
        let rounds = 4;
        let mut firsts = Vec::new();
        for round in 0..rounds {
            let order = round_order(&unit_sizes, round, rounds);
            assert_eq!(order.len(), total + CEILING_RUNS);
            assert_eq!(order[0], 0, "each round starts with the ceiling");
            let mut cases: Vec<usize> = order.iter().copied().filter(|&i| i != 0).collect();
            firsts.push(cases[0]);
            cases.sort_unstable();
            assert_eq!(cases, (1..=total).collect::<Vec<_>>(), "every case once");
            // Units are never split, by the rotation or by a ceiling run; odd rounds run them
            // back to front.
            let mut first = 1;
            for &size in &unit_sizes {
                let mut unit: Vec<usize> = (first..first + size).collect();
                if round % 2 == 1 {
                    unit.reverse();
                }
                let at = order.iter().position(|&i| i == unit[0]).expect("planned");
                assert_eq!(order[at..at + size], unit);
                first += size;
            }
            // 29 cases: 4 to 6 between ceiling runs, so the ceiling runs on both sides of a
            // case are well within `target::BRACKET_RUNS` of it.
            for gap in ceiling_gaps(&order) {
                assert!((4..=6).contains(&gap), "gap of {gap} in round {round}: {order:?}");
                assert!((gap as u64) < crate::target::BRACKET_RUNS);
            }
        }
        firsts.dedup();
        assert_eq!(firsts.len(), rounds, "the order rotates: {firsts:?}");
    }

    #[test]
    fn round_order_of_tiny_plans() {
        assert_eq!(round_order(&[], 0, 1), vec![0; CEILING_RUNS]);
        // One unit of two: the ceiling still runs six times, at the nearest boundary (the
        // earlier on a tie: the middle one).
        assert_eq!(round_order(&[2], 0, 1), vec![0, 0, 0, 0, 1, 2, 0, 0]);
        // The quick plan: uuid7 + rate limit on, counter, a tutorial route, a batch pair.
        assert_eq!(round_order(&[2, 1, 1, 2], 0, 1), vec![0, 0, 1, 2, 0, 3, 0, 4, 0, 0, 5, 6]);
        // Odd rounds reverse each unit.
        assert_eq!(round_order(&[2, 1, 1, 2], 1, 2), vec![0, 4, 0, 0, 6, 5, 0, 0, 2, 1, 0, 3]);
    }
}
