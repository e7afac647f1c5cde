//! Runs the load generators against a [`Fleet`]: one wrk or redis-benchmark run per sample,
//! numbered in the order of the run, the warm-up, and the interleaved rounds.

use std::collections::HashMap;

use anyhow::Context;

use crate::fleet::Fleet;
use crate::model::{CONNECTIONS, Load, Outcome, Profile};
use crate::plan::round_order;
use crate::process::TempDir;
use crate::wrk::{self, Sample};

/// wrk's `-s` argument, relative to [`Driver::scratch`].
const SCRIPT: &str = "bench.lua";

/// Runs the load generators.
pub struct Driver {
    profile: Profile,
    /// Holds `bench.lua`; wrk runs in it.
    scratch: TempDir,
    /// redis-benchmark runs a request count, not a duration: aim at `profile.seconds` from
    /// the last measured rate, per number of connections (1 and 50 differ tenfold).
    redis_requests: HashMap<u32, u64>,
    /// The next [`Sample::sequence`]: counts every measurement of the run, failed ones too.
    sequence: u64,
}

impl Driver {
    pub fn new(profile: Profile) -> anyhow::Result<Driver> {
        let scratch = TempDir::new("wrk")?;
        std::fs::write(scratch.path().join(SCRIPT), wrk::LUA_SCRIPT)
            .context("write the wrk script")?;
        Ok(Driver { profile, scratch, redis_requests: HashMap::new(), sequence: 0 })
    }

    /// The command line as the report shows it (servers as their variables).
    pub fn command(&self, load: &Load) -> String {
        match load {
            Load::Http { server, path, accept, connections, .. } => {
                let url = format!("http://{}{path}", server.variable());
                let headers = server.shown_headers();
                let seconds = self.profile.seconds;
                let arguments =
                    wrk::arguments(*connections, seconds, SCRIPT, *accept, &headers, &url);
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
                let headers = fleet.headers(*server);
                let server = fleet.server(*server);
                let url = format!("http://{}{path}", server.address());
                let seconds = self.profile.seconds;
                let arguments =
                    wrk::arguments(*connections, seconds, SCRIPT, *accept, headers, &url);
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
                let seconds = u64::from(self.profile.seconds);
                let requests = *self
                    .redis_requests
                    .entry(*connections)
                    .or_insert((u64::from(*connections) * 2_000).clamp(20_000, 80_000) * seconds);
                let arguments =
                    wrk::redis_benchmark_arguments(redis.port(), *connections, requests);
                let sample = wrk::run_redis_benchmark(&arguments, requests)?;
                let aim = sample.requests_per_second() * seconds as f64;
                self.redis_requests.insert(*connections, (aim as u64).max(10_000));
                Ok(sample)
            }
        }
    }

    /// An unrecorded run per server, so that the first round does not pay for cold caches
    /// and first allocations.
    pub fn warm_up(&self, fleet: &Fleet) -> anyhow::Result<()> {
        if self.profile.warmup_seconds == 0 {
            return Ok(());
        }
        for running in &fleet.running {
            let url = format!("http://{}/v1/ids/uuid7", running.server.address());
            let seconds = self.profile.warmup_seconds;
            let arguments = wrk::arguments(CONNECTIONS, seconds, SCRIPT, None, &[], &url);
            wrk::run(self.scratch.path(), &arguments).context("warm-up run")?;
        }
        Ok(())
    }

    /// Every round runs every case once, in a rotated order so that no case always follows
    /// the same neighbour, and the ceiling (case 0 of `outcomes`), the reference of most
    /// targets, [`CEILING_RUNS`](crate::model::CEILING_RUNS) times; `unit_sizes` are those
    /// of `plan::plan` (see [`round_order`]).
    pub fn run_rounds(&mut self, fleet: &Fleet, outcomes: &mut [Outcome], unit_sizes: &[usize]) {
        let rounds = self.profile.rounds;
        for round in 0..rounds {
            for index in round_order(unit_sizes, round, rounds) {
                let outcome = &mut outcomes[index];
                if outcome.failure.is_some() {
                    continue;
                }
                match self.measure(fleet, &outcome.case.load) {
                    Ok(sample) => {
                        log_sample(round, rounds, &outcome.case.id, &sample);
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

/// One line of progress per sample, so that a long run shows where it is and how it goes.
fn log_sample(round: usize, rounds: usize, id: &str, sample: &Sample) {
    let errors = match sample.errors {
        0 => String::new(),
        errors => format!("  {errors} errors"),
    };
    eprintln!(
        "xtask: round {}/{rounds} {:<28} {:>10.0} req/s  p50 {:>7.0} us  p99 {:>7.0} us{errors}",
        round + 1,
        id,
        sample.requests_per_second(),
        sample.p50_us,
        sample.p99_us,
    );
}
