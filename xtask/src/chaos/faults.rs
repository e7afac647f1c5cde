//! The faults of `cargo xtask chaos` and how each is run while the load goes on: inject it,
//! keep it for a while, undo it (or run the operator's remedy), then wait until every node
//! issues every kind again (or the fault's time limit passes). Each run is a [`Run`]: when
//! it started, was healed and recovered, what was checked on the way and what was noted.
//! The store faults are in `faults/store.rs`, the node faults in `faults/node.rs`.

mod node;
mod store;

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::load::Harvest;

/// How long things take in this run (`--quick` or the long form).
#[derive(Debug, Clone)]
pub struct Profile {
    /// Steady load before the first fault.
    pub warmup: Duration,
    /// How long a fault stays before it is undone.
    pub hold: Duration,
    /// After a store loss, how long after every node refused `recover` is run: one per
    /// cycle, in turn (an operator's script is quick, a person is not).
    pub recover_after: Vec<Duration>,
    /// Steady load after a recovery, before the next fault.
    pub settle: Duration,
    /// How long the nodes get to issue again after a fault is undone.
    pub limit: Duration,
    /// How far a node's clock steps back, in seconds (twice that for the restart).
    pub clock_step_s: u64,
}

impl Profile {
    /// How long after every node refused `recover` runs in cycle `cycle` (from 0).
    pub fn recover_after(&self, cycle: usize) -> Duration {
        self.recover_after[cycle % self.recover_after.len()]
    }

    pub fn new(quick: bool) -> Profile {
        if quick {
            Profile {
                warmup: Duration::from_secs(2),
                hold: Duration::from_secs(1),
                recover_after: vec![Duration::ZERO],
                settle: Duration::from_millis(1500),
                limit: Duration::from_secs(20),
                clock_step_s: 3,
            }
        } else {
            Profile {
                warmup: Duration::from_secs(5),
                hold: Duration::from_secs(3),
                recover_after: vec![Duration::ZERO, Duration::from_secs(1), Duration::from_secs(3)],
                settle: Duration::from_secs(4),
                limit: Duration::from_secs(60),
                clock_step_s: 5,
            }
        }
    }
}

/// The faults, in the order a cycle runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    RedisKill,
    RedisEmpty,
    RedisFlush,
    NodeKill,
    NodePause,
    ClockRedisNode,
    ClockEmbedded,
    DiskFull,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::RedisKill,
        Fault::RedisEmpty,
        Fault::RedisFlush,
        Fault::NodeKill,
        Fault::NodePause,
        Fault::ClockRedisNode,
        Fault::ClockEmbedded,
        Fault::DiskFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::RedisKill => "redis-kill9-aof",
            Fault::RedisEmpty => "redis-restart-empty",
            Fault::RedisFlush => "redis-flushall",
            Fault::NodeKill => "node-kill9",
            Fault::NodePause => "node-pause-takeover",
            Fault::ClockRedisNode => "clock-back-redis-node",
            Fault::ClockEmbedded => "clock-back-embedded",
            Fault::DiskFull => "embedded-disk-full",
        }
    }

    /// What is done, in a sentence.
    pub fn description(self) -> &'static str {
        match self {
            Fault::RedisKill => "redis-server `kill -9`, held down, restarted on the same AOF",
            Fault::RedisEmpty => {
                "redis-server `kill -9`, its AOF deleted, restarted empty; then `idgen-server recover` with every node's data dir"
            }
            Fault::RedisFlush => "`FLUSHALL` on the running Redis; then `idgen-server recover`",
            Fault::NodeKill => "node redis-2 `kill -9`, held down, restarted on its data dir",
            Fault::NodePause => {
                "node redis-1 `SIGSTOP`ped past its lease TTL; a new node starts with `--worker-id` of redis-1's worker id; redis-1 `SIGCONT`ed with snowflake requests queued; the new node stopped"
            }
            Fault::ClockRedisNode => {
                "node redis-3's wall clock stepped back (libfaketime) while it runs; then `kill -9` and a restart with the clock twice as far back; then the clock put right"
            }
            Fault::ClockEmbedded => {
                "the embedded node's wall clock stepped back while it runs; then `kill -9` and a restart with the clock twice as far back; then the clock put right"
            }
            Fault::DiskFull => {
                "the embedded node's 2 MiB tmpfs filled with a file until ENOSPC, held, the file deleted"
            }
        }
    }

    /// What an operator does about it.
    pub fn remedy(self) -> &'static str {
        match self {
            Fault::RedisKill => {
                "Nothing: restart Redis (with `appendonly yes`, `appendfsync always`); the nodes reconnect by themselves and nothing acknowledged is lost."
            }
            Fault::RedisEmpty | Fault::RedisFlush => {
                "Run `idgen-server --redis-url URL --lease-ttl-ms TTL recover --node-data-dir DIR ...` with the data dir of every node that ran (the settings go before `recover`); it raises every counter and mark above what the nodes recorded, waits one lease TTL and sets a new store identity that the nodes adopt within a maintenance tick. Until then counters, timestamps and snowflakes answer 503 `store_regressed` (uuid7, ULID keep working)."
            }
            Fault::NodeKill => {
                "Restart the node on its data dir; the other nodes keep serving meanwhile. Its old worker-id lease expires after the TTL; it leases a new one."
            }
            Fault::NodePause => {
                "Nothing: the paused node's lease lapses, its worker id can be taken over, and on waking it stops snowflakes (503) until it leases another id; fix whatever paused it (VM freeze, swap, debugger)."
            }
            Fault::ClockRedisNode | Fault::ClockEmbedded => {
                "Wait, or fix NTP: snowflakes answer 503 while the clock is behind the last one issued by more than `IDGEN_SNOWFLAKE_MAX_BACKWARD_MS`, and resume by themselves when it catches up; the other kinds keep issuing (timestamps, uuid7 and ULID run ahead of the clock)."
            }
            Fault::DiskFull => {
                "Free space on the data dir's filesystem; issuing resumes by itself at the next mark write."
            }
        }
    }
}

/// An expectation checked during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub passed: bool,
}

/// Snowflakes a node must not issue any more: those with `worker` sent at or after `since_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenced {
    pub node: u8,
    pub worker: u16,
    pub since_ms: u32,
}

/// One run of one fault.
#[derive(Debug)]
pub struct Run {
    pub fault: Fault,
    pub phase: u16,
    pub start_ms: u32,
    pub end_ms: u32,
    /// When the fault was undone (or the remedy finished).
    pub healed_ms: Option<u32>,
    /// When every node issued every kind again after that.
    pub recovered_ms: Option<u32>,
    pub skipped: Option<String>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
    pub fenced: Option<Fenced>,
    /// When the nodes did not recover in time but an operator's second remedy brought every
    /// node back (so the suite can go on): when they issued every kind again.
    pub rescued_ms: Option<u32>,
    /// What requests made by the fault itself got (the queued snowflake requests).
    pub probes: Harvest,
    /// Answers to the fault's own other requests (new counter names on a full disk) that
    /// were neither IDs nor a JSON refusal.
    pub bad: Vec<String>,
}

impl Run {
    fn new(fault: Fault, phase: u16, start_ms: u32) -> Run {
        Run {
            fault,
            phase,
            start_ms,
            end_ms: start_ms,
            healed_ms: None,
            recovered_ms: None,
            skipped: None,
            checks: Vec::new(),
            notes: Vec::new(),
            fenced: None,
            rescued_ms: None,
            probes: Harvest::default(),
            bad: Vec::new(),
        }
    }

    fn check(&mut self, what: impl Into<String>, passed: bool) {
        let what = what.into();
        eprintln!("chaos:   check {}: {what}", if passed { "ok" } else { "FAILED" });
        self.checks.push(Check { what, passed });
    }

    fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("chaos:   {text}");
        self.notes.push(text);
    }

    /// Whether every node issues every kind again (after the remedy, or a second one).
    pub fn back(&self) -> bool {
        self.skipped.is_some() || self.recovered_ms.is_some() || self.rescued_ms.is_some()
    }

    /// Seconds from the heal to the recovery.
    pub fn recovery_seconds(&self) -> Option<f64> {
        Some(f64::from(self.recovered_ms?.saturating_sub(self.healed_ms?)) / 1000.0)
    }
}

/// Runs `fault` as phase `phase`, then lets the load settle.
pub fn run(
    cluster: &mut Cluster,
    profile: &Profile,
    fault: Fault,
    (cycle, phase): (usize, usize),
) -> anyhow::Result<Run> {
    cluster.board.set_phase(phase);
    let board = std::sync::Arc::clone(&cluster.board);
    let mut run = Run::new(fault, phase as u16, board.now_ms());
    eprintln!("chaos: phase {phase}: {} ({})", fault.name(), fault.description());
    match fault {
        Fault::RedisKill => store::redis_kill(cluster, profile, &mut run)?,
        Fault::RedisEmpty => {
            store::redis_loss(cluster, profile, &mut run, (store::Loss::RestartEmpty, cycle))?
        }
        Fault::RedisFlush => {
            store::redis_loss(cluster, profile, &mut run, (store::Loss::FlushAll, cycle))?
        }
        Fault::NodeKill => node::node_kill(cluster, profile, &mut run)?,
        Fault::NodePause => node::node_pause(cluster, profile, &mut run)?,
        Fault::ClockRedisNode => node::clock_back(cluster, profile, &mut run, super::cluster::R3)?,
        Fault::ClockEmbedded => {
            node::clock_back(cluster, profile, &mut run, super::cluster::EMBEDDED)?
        }
        Fault::DiskFull => node::disk_full(cluster, profile, &mut run)?,
    }
    if let Some(reason) = &run.skipped {
        eprintln!("chaos:   skipped: {reason}");
    } else {
        match run.recovery_seconds() {
            Some(seconds) => eprintln!(
                "chaos:   every node issues every kind again {seconds:.2} s after the heal"
            ),
            None => eprintln!("chaos:   NOT RECOVERED within {:?}", profile.limit),
        }
        std::thread::sleep(profile.settle);
    }
    run.end_ms = board.now_ms();
    Ok(run)
}

/// Heals the run now and waits until every node that is up issues every kind again.
fn heal_and_wait(cluster: &Cluster, run: &mut Run, limit: Duration) {
    wait_since(cluster, run, cluster.board.now_ms(), limit);
}

/// The run was healed at `healed_ms`: waits until every node that is up issued every kind
/// after that.
fn wait_since(cluster: &Cluster, run: &mut Run, healed_ms: u32, limit: Duration) {
    run.healed_ms = Some(healed_ms);
    run.recovered_ms = wait_issuing(cluster, healed_ms, limit);
}

/// When every node that is up issued every kind at or after `since_ms`, within `limit`.
fn wait_issuing(cluster: &Cluster, since_ms: u32, limit: Duration) -> Option<u32> {
    let board = &cluster.board;
    wait_for(limit, || board.all_issuing_since(since_ms)).then(|| board.now_ms())
}

/// Polls `condition` every 10 ms for up to `limit`; whether it came true.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
