//! `cargo xtask bench`: builds the release server, starts it (embedded; rate limited; Redis
//! mode when the build has it), drives every route with wrk in interleaved rounds and writes
//! the report (see `report.rs`) with the performance targets (see `target.rs`).
//!
//! Interleaving: each round runs every case once, in a rotated order, and a case's figures are
//! the median over rounds. On a shared 2-core machine noise comes in bursts (another build, a
//! cron job); interleaving spreads a burst over many cases instead of ruining the few that
//! happened to run during it.
//!
//! Pairing: the machine's speed also drifts by 20% or more over a minute, so a ratio of two
//! medians taken at different moments mostly measures the drift. Every sample carries its
//! place in the run (`Sample::sequence`), the ceiling runs seven times per round, and a case
//! compared with another reference runs right next to it; a target's ratio is then the median
//! of per-sample ratios, each against the reference at that moment: interpolated between the
//! ceiling runs around it, or the nearest run of a reference in the same unit (see
//! `target.rs`).
//!
//! This file runs the steps in order; the cases and their order are `plan.rs`'s, the servers
//! `fleet.rs`'s, the load generators `driver.rs`'s, and what the report gets `model.rs`'s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::driver::Driver;
use crate::fleet::{self, Fleet};
use crate::machine::Machine;
use crate::model::{CEILING_RUNS, Case, Load, Outcome, Profile, Results, TEXT};
use crate::plan::{ceiling, plan};
use crate::process::http_get;
use crate::{report, workspace, wrk};

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

/// Builds, starts, measures, reports. Every server and redis-server is stopped by its guard
/// on the way out, error or not (on Ctrl-C the terminal's SIGINT reaches them too: they are
/// in the same process group).
pub fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = load_average();
    let root = workspace::root();
    let profile = Profile::new(options.quick, options.rounds);
    let out = match (&options.out, options.quick) {
        (Some(path), _) => path.clone(),
        (None, false) => root.join("docs/benchmarks.md"),
        (None, true) => workspace::target_dir(&root).join("bench-quick.md"),
    };
    let binary = server_binary(&root, options.build)?;
    wrk::ensure_installed()?;
    let machine = Machine::detect();
    let mut driver = Driver::new(profile)?;

    let mut ready_ms = fleet::time_to_ready(&binary, profile.extra_starts)?;
    let fleet = Fleet::start(&binary, &mut ready_ms)?;
    let units = plan(profile.quick, fleet.redis_baseline.is_some());
    let unit_sizes: Vec<usize> = units.iter().map(Vec::len).collect();
    let mut outcomes = checked_outcomes(&fleet, &driver, units);
    announce(&outcomes, profile);

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

/// `target/release/idgen-server`, built first unless `--no-build` said not to.
fn server_binary(root: &Path, build: bool) -> anyhow::Result<PathBuf> {
    if build {
        cargo(&["build", "--release", "--package", "idgen-server"])?;
    }
    let binary = workspace::target_dir(root).join("release/idgen-server");
    if !binary.exists() {
        bail!("{} does not exist; run without --no-build", binary.display());
    }
    Ok(binary)
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("could not run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// The ceiling and the planned cases, each with its command line, and left out (with the
/// reason) when its route fails the [`preflight`] check.
fn checked_outcomes(fleet: &Fleet, driver: &Driver, units: Vec<Vec<Case>>) -> Vec<Outcome> {
    let outcomes: Vec<Outcome> = std::iter::once(ceiling())
        .chain(units.into_iter().flatten())
        .map(|case| {
            let failure = match &case.load {
                Load::Http { server, path, accept, ids, .. } => {
                    preflight(fleet.address(*server), path, *accept, fleet.headers(*server), *ids)
                        .err()
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
    outcomes
}

/// How much a round runs, before the first one starts.
fn announce(outcomes: &[Outcome], profile: Profile) {
    let runnable = outcomes.iter().filter(|outcome| outcome.failure.is_none()).count();
    let ceiling_runs = if outcomes[0].failure.is_none() { CEILING_RUNS - 1 } else { 0 };
    eprintln!(
        "xtask: {} runs per round ({runnable} cases, the ceiling {CEILING_RUNS} times) x {} \
         round(s) x {} s",
        runnable + ceiling_runs,
        profile.rounds,
        profile.seconds
    );
}

/// One request before the load: the route must answer 200, and a batch must hold its IDs
/// (so a wrong path or a rejected setting never turns into a fast table row of 404s).
fn preflight(
    address: std::net::SocketAddr,
    path: &str,
    accept: Option<&str>,
    headers: &[String],
    ids: u64,
) -> anyhow::Result<()> {
    let (status, body) = http_get(address, path, accept, headers)?;
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
}
