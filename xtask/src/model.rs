//! The bench's data model, shared by the code that runs a benchmark and the code that reports
//! it: what is measured (servers, cases, the route lists and sizes), how long, and what came of
//! it (samples, medians, the whole run's results).

use crate::machine::Machine;
use crate::wrk::Sample;

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
    pub fn new(quick: bool, rounds: Option<usize>) -> Profile {
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

/// The connection count of the performance targets (`wrk -t2 -c50`).
pub const CONNECTIONS: u32 = 50;

/// How often the ceiling runs per round, evenly spaced (see `plan::round_order`).
pub const CEILING_RUNS: usize = 7;

/// The single-ID `/v1/ids/{kind}` routes, in report order: every kind of the catalogue, in
/// its order, so that a kind added there is benchmarked and held to the targets like the
/// others.
pub fn kinds() -> impl Iterator<Item = &'static str> + Clone {
    idgen_core::KINDS.iter().map(|kind| kind.name)
}

/// The tutorial-compatible routes.
pub const TUTORIAL_ROUTES: [&str; 5] = [
    "/generate_uuid",
    "/generate_timestamp_id",
    "/generate_counter_id",
    "/generate_snowflake_id",
    "/generate_random_string/21",
];
pub const BATCH_SIZES: [u64; 4] = [10, 100, 1_000, 10_000];

/// The `Accept` value of the text/plain batches.
pub const TEXT: &str = "text/plain";

/// The servers a run starts. Each is one process, shown in the report under its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKey {
    Embedded,
    RateLimited,
    /// Embedded with an API keys file: every request presents a key.
    Keyed,
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
            ServerKey::Keyed => "$KEYED",
            ServerKey::RedisBlock1 => "$REDIS_BLOCK_1",
            ServerKey::RedisBlock1000 => "$REDIS_BLOCK_1000",
            ServerKey::RedisRateLimited => "$REDIS_RATE_LIMITED",
        }
    }

    /// The headers its requests carry, as the report shows them.
    pub fn shown_headers(self) -> Vec<String> {
        match self {
            ServerKey::Keyed => vec!["Authorization: Bearer $KEY".to_owned()],
            _ => Vec::new(),
        }
    }

    /// Names the server's process and data directory.
    pub fn label(self) -> &'static str {
        match self {
            ServerKey::Embedded => "embedded",
            ServerKey::RateLimited => "rate-limited",
            ServerKey::Keyed => "keyed",
            ServerKey::RedisBlock1 => "redis-block-1",
            ServerKey::RedisBlock1000 => "redis-block-1000",
            ServerKey::RedisRateLimited => "redis-rate-limited",
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
    Keys,
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
    pub fn http(id: &str, group: Group, server: ServerKey, path: &str) -> Case {
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
    pub fn batch(size: u64, accept_text: bool) -> Case {
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

    pub fn connections(connections: u32) -> Case {
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
    pub machine: Machine,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
    }

    #[test]
    fn the_kinds_hold_the_ones_the_plan_names() {
        // The quick plan, the rate-limit pair and the batches are built on these two.
        let kinds: Vec<&str> = kinds().collect();
        assert!(kinds.contains(&"uuid7") && kinds.contains(&"counter"), "{kinds:?}");
        let mut unique = kinds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), kinds.len(), "a kind twice: {kinds:?}");
    }
}
