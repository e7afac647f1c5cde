//! `cargo xtask chaos`: proves "no ID is ever issued twice" under real faults. It starts a
//! redis-server (AOF `always`), three Redis-mode nodes and one embedded node on a tiny tmpfs
//! (`cluster`), runs a steady load of ID requests against them (`load`), cycles through the
//! faults (`faults`) while the load goes on, then checks every ID it got for repeats and
//! every answer for its shape (`ledger`), and writes the report (`report`). It fails on any
//! repeat, any answer that is neither IDs nor a JSON refusal, a fault the nodes did not
//! recover from, or a broken expectation (e.g. a paused node issuing with a worker id it
//! lost).
//!
//! `answer` (kinds, scopes, reading a response), `http` and `json` (the wire, std only) and
//! `proc` (processes, mounts, a RESP client) are the outside world.
//!
//! Everything it starts is stopped by pid when the suite ends, on errors too (guards). Ctrl-C
//! reaches the servers as well (one process group), but then nothing unmounts the tmpfs:
//! `umount /tmp/idgen-chaos-*/embedded-fs`.

mod answer;
mod cluster;
mod faults;
mod http;
mod json;
mod ledger;
mod load;
mod proc;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::machine::Machine;
use crate::workspace;
use answer::{Kind, Scope};
use cluster::{Cluster, Settings};
use faults::{Fault, Profile, Run};
use ledger::Issued;
use load::Harvest;
use report::{Findings, RunRow, Setting};

pub const USAGE: &str = "cargo xtask chaos [--quick] [--ids N] [--out FILE] [--no-build]
  --quick      every fault once with short windows (CI; about 2-3 minutes); writes
               target/chaos-quick.md unless --out is given
  --ids N      keep cycling through the faults until at least N IDs were issued (default
               1000000, and at least 3 cycles; --quick: one cycle unless N asks for more)
  --out FILE   where the markdown report goes (default docs/reliability.md)
  --no-build   use the existing target/release/idgen-server instead of building it";

/// Load threads.
const CLIENTS: usize = 6;
/// `--lease-ttl-ms` of every Redis-mode node: short, so that a paused node loses its lease.
const LEASE_TTL_MS: u64 = 1500;
/// IDs the long form issues at least.
const LONG_IDS: u64 = 1_000_000;
/// Cycles through every fault the long form runs at least (the quick form: one).
const LONG_CYCLES: usize = 3;

/// What `cargo xtask chaos` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub quick: bool,
    pub ids: Option<u64>,
    pub out: Option<PathBuf>,
    pub build: bool,
    /// The arguments as given, for the report.
    pub arguments: Vec<String>,
}

impl Options {
    pub fn parse(arguments: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let arguments: Vec<String> = arguments.collect();
        let mut options = Options {
            quick: false,
            ids: None,
            out: None,
            build: true,
            arguments: arguments.clone(),
        };
        let mut arguments = arguments.into_iter();
        while let Some(argument) = arguments.next() {
            let (flag, inline) = match argument.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (argument.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| arguments.next())
                    .with_context(|| format!("{name} needs a value\nusage: {USAGE}"))
            };
            match flag.as_str() {
                "--quick" => options.quick = true,
                "--no-build" => options.build = false,
                "--out" => options.out = Some(PathBuf::from(value("--out")?)),
                "--ids" => {
                    let text = value("--ids")?.replace('_', "");
                    options.ids =
                        Some(text.parse().ok().filter(|&n: &u64| n > 0).with_context(|| {
                            format!("--ids takes a positive whole number, not {text:?}")
                        })?);
                }
                "-h" | "--help" => {
                    println!("usage: {USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\nusage: {USAGE}"),
            }
        }
        Ok(options)
    }

    fn target_ids(&self) -> u64 {
        self.ids.unwrap_or(if self.quick { 0 } else { LONG_IDS })
    }

    fn out(&self, root: &Path) -> PathBuf {
        match (&self.out, self.quick) {
            (Some(path), _) => path.clone(),
            (None, false) => root.join("docs/reliability.md"),
            (None, true) => workspace::target_dir(root).join("chaos-quick.md"),
        }
    }
}

/// Runs the suite; `FAILURE` when the report found a problem.
pub fn run(options: Options) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = workspace::root();
    let profile = Profile::new(options.quick);
    let out = options.out(&root);
    let binary = server_binary(&root, options.build)?;
    require_tools()?;
    let machine = Machine::detect();
    let mut cluster = Cluster::start(&binary, Settings { lease_ttl_ms: LEASE_TTL_MS })?;
    let mut setting = describe(&options, &profile, machine, &cluster);
    setting.server = built(&binary);
    let board = Arc::clone(&cluster.board);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| {
            let board = Arc::clone(&board);
            std::thread::spawn(move || load::client(board, seed))
        })
        .collect();
    let mut runs = Vec::new();
    let cycles = if options.quick { 1 } else { LONG_CYCLES };
    let driven = drive(&mut cluster, &profile, (options.target_ids(), cycles), &mut runs);
    let end_ms = board.now_ms();
    board.stop();
    let mut harvest = Harvest::default();
    for client in clients {
        harvest.absorb(client.join().map_err(|_| anyhow::anyhow!("a load client panicked"))?);
    }
    let node_names: Vec<String> = board.slots.iter().map(|slot| slot.name.to_owned()).collect();
    cluster.shut_down();
    let logs = workspace::target_dir(&root).join("chaos-logs");
    keep_logs(cluster.workdir(), &logs);
    drop(cluster);
    setting.duration_s = started.elapsed().as_secs_f64();
    let mut findings = analyse(setting, &profile, harvest, &mut runs, end_ms, node_names);
    if let Err(error) = &driven {
        findings.failures.push(format!("the suite stopped early: {error:#}"));
    }
    publish(&findings, &out, &logs)
}

/// The tools the suite cannot do without (libfaketime and a tmpfs mount are optional: their
/// faults are skipped, with the reason, without them).
fn require_tools() -> anyhow::Result<()> {
    for tool in ["redis-server", "kill"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
        if !found.is_ok_and(|output| output.status.success()) {
            bail!("{tool} is not installed; the chaos suite needs it");
        }
    }
    Ok(())
}

/// The report's description of this run (its duration is filled in at the end).
fn describe(options: &Options, profile: &Profile, machine: Machine, cluster: &Cluster) -> Setting {
    let command = std::iter::once("cargo xtask chaos".to_owned())
        .chain(options.arguments.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    Setting {
        command,
        cpu: machine.cpu,
        cores: machine.cores,
        kernel: machine.kernel,
        os: machine.os,
        redis: cluster.redis.version(),
        commit: machine.commit,
        date: machine.date,
        clients: CLIENTS,
        lease_ttl_ms: LEASE_TTL_MS,
        clock_step_s: profile.clock_step_s,
        hold_s: profile.hold.as_secs_f64(),
        settle_s: profile.settle.as_secs_f64(),
        recover_after_s: profile.recover_after.iter().map(Duration::as_secs_f64).collect(),
        memory: machine.memory,
        server: String::new(),
        nodes: (0..4).filter_map(|slot| cluster.node(slot).map(|node| node.line.clone())).collect(),
        duration_s: 0.0,
    }
}

/// `target/release/idgen-server, built 2026-12-02 03:03 UTC`.
fn built(binary: &Path) -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(binary)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    let name = binary.strip_prefix(workspace::root()).unwrap_or(binary).display().to_string();
    match date {
        Some(date) => format!("`{name}`, built {date}"),
        None => format!("`{name}`"),
    }
}

/// Writes the report to `out` and says how it went.
fn publish(findings: &Findings, out: &Path, logs: &Path) -> anyhow::Result<ExitCode> {
    let text = report::render(findings);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, &text).with_context(|| format!("write {}", out.display()))?;
    eprintln!(
        "chaos: {} IDs checked in {:.0} s; report in {}",
        findings.total.ids,
        findings.setting.duration_s,
        out.display()
    );
    if findings.failures.is_empty() {
        eprintln!("chaos: passed");
        Ok(ExitCode::SUCCESS)
    } else {
        for failure in &findings.failures {
            eprintln!("chaos: FAILED: {failure}");
        }
        eprintln!("chaos: the node and Redis logs are in {}", logs.display());
        Ok(ExitCode::FAILURE)
    }
}

/// The warm-up, then cycles of every fault until `target_ids` IDs were issued and at least
/// `min_cycles` cycles ran; stops early when a fault was not recovered from.
fn drive(
    cluster: &mut Cluster,
    profile: &Profile,
    (target_ids, min_cycles): (u64, usize),
    runs: &mut Vec<Run>,
) -> anyhow::Result<()> {
    eprintln!("chaos: phase 0: steady load for {:?}", profile.warmup);
    std::thread::sleep(profile.warmup);
    let mut phase = 1;
    for cycle in 1.. {
        for fault in Fault::ALL {
            let run = faults::run(cluster, profile, fault, (cycle - 1, phase))?;
            phase += 1;
            let lost = !run.back();
            runs.push(run);
            if lost {
                bail!("the nodes did not recover from {} within {:?}", fault.name(), profile.limit);
            }
        }
        let issued = cluster.board.issued();
        eprintln!("chaos: cycle {cycle} done, {issued} IDs issued so far (target {target_ids})");
        if issued >= target_ids && cycle >= min_cycles {
            break;
        }
    }
    Ok(())
}

/// Checks the harvest and turns it into the report's findings.
fn analyse(
    setting: Setting,
    profile: &Profile,
    mut harvest: Harvest,
    runs: &mut [Run],
    end_ms: u32,
    node_names: Vec<String>,
) -> Findings {
    for run in runs.iter_mut() {
        harvest.absorb(std::mem::take(&mut run.probes));
    }
    let mut failures = Vec::new();
    let repeats = check_ids(&mut harvest, runs, &node_names, &mut failures);
    let phases = runs.len() + 1;
    let split = ledger::by_phase(&harvest.events, phases);
    let warmup_end = runs.first().map_or(end_ms, |run| run.start_ms);
    let mut warmup = ledger::tally(&split[0], warmup_end);
    warmup.last(f64::from(warmup_end) / 1000.0);
    let mut rows = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let mut tally = ledger::tally(&split[index + 1], run.end_ms);
        tally.last(f64::from(run.end_ms.saturating_sub(run.start_ms)) / 1000.0);
        for check in run.checks.iter().filter(|check| !check.passed) {
            failures.push(format!(
                "{} (phase {}): expected that {}",
                run.fault.name(),
                run.phase,
                check.what
            ));
        }
        if run.skipped.is_none() && run.recovered_ms.is_none() {
            failures.push(format!(
                "{} (phase {}): not every node issued every kind again within {:?}",
                run.fault.name(),
                run.phase,
                profile.limit
            ));
        }
        rows.push(RunRow {
            fault: run.fault,
            cycle: index / Fault::ALL.len() + 1,
            tally,
            recovery_s: run.recovery_seconds(),
            skipped: run.skipped.clone(),
            checks: run.checks.clone(),
            notes: run.notes.clone(),
        });
    }
    let mut total = ledger::tally(&harvest.events, end_ms);
    total.refused = None;
    total.unreachable = None;
    total.unended.clear();
    let mut bad = harvest.bad;
    for run in runs.iter() {
        total.answers[answer::Outcome::Bad.index()] += run.bad.len() as u64;
        bad.extend(run.bad.iter().cloned());
    }
    if total.count(answer::Outcome::Bad) > 0 {
        failures.push(format!(
            "{} answers were neither IDs nor a JSON refusal",
            total.count(answer::Outcome::Bad)
        ));
    }
    Findings { setting, repeats, warmup, runs: rows, total, bad, node_names, failures }
}

/// Counts the repeats per kind and scope, and the snowflakes a paused node issued with a
/// worker id it had lost; each problem goes to `failures`.
fn check_ids(
    harvest: &mut Harvest,
    runs: &[Run],
    node_names: &[String],
    failures: &mut Vec<String>,
) -> Vec<ledger::Repeats> {
    for run in runs {
        let Some(fenced) = run.fenced else { continue };
        let stale = stale_snowflakes(&harvest.ids, run.phase, fenced);
        let name = node_names.get(usize::from(fenced.node)).cloned().unwrap_or_default();
        if stale > 0 {
            failures.push(format!(
                "{name} issued {stale} snowflakes with worker id {} after it was paused and the id was taken over (phase {})",
                fenced.worker, run.phase
            ));
        }
    }
    let mut repeats = Vec::new();
    for ((kind, scope), ids) in harvest.ids.iter_mut() {
        let found = ledger::count_repeats(*kind, *scope, ids);
        if found.repeats > 0 {
            failures.push(format!(
                "{} repeats of {} IDs ({})",
                found.repeats,
                kind.name(),
                scope.name()
            ));
        }
        repeats.push(found);
    }
    repeats
}

/// Snowflakes of `fenced.node` with `fenced.worker`, asked for in `phase` after `since_ms`.
fn stale_snowflakes(
    ids: &BTreeMap<(Kind, Scope), Vec<Issued>>,
    phase: u16,
    fenced: faults::Fenced,
) -> usize {
    ids.get(&(Kind::Snowflake, Scope::Redis)).map_or(0, |ids| {
        ids.iter()
            .filter(|id| {
                id.node == fenced.node && id.phase == phase && id.sent_ms >= fenced.since_ms
            })
            .filter(|id| answer::snowflake_worker(id.value) == fenced.worker)
            .count()
    })
}

/// Copies the nodes' and Redis's logs out of the suite's directory (which is removed) into
/// `to`, replacing an earlier run's.
fn keep_logs(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let _ = std::fs::create_dir_all(to);
    let Ok(entries) = std::fs::read_dir(from) else { return };
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.extension().is_some_and(|extension| extension == "log") {
            let _ = std::fs::copy(&path, to.join(path.file_name().expect("a file name")));
        }
    }
}

fn server_binary(root: &Path, build: bool) -> anyhow::Result<PathBuf> {
    if build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        eprintln!("xtask: cargo build --release --package idgen-server");
        let status = Command::new(&cargo)
            .args(["build", "--release", "--package", "idgen-server"])
            .status()
            .with_context(|| format!("could not run {cargo}"))?;
        if !status.success() {
            bail!("cargo build --release --package idgen-server failed with {status}");
        }
    }
    let binary = workspace::target_dir(root).join("release/idgen-server");
    if !binary.exists() {
        bail!("{} does not exist; run without --no-build", binary.display());
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> anyhow::Result<Options> {
        Options::parse(arguments.iter().map(|argument| (*argument).to_owned()))
    }

    #[test]
    fn reads_its_arguments() {
        let long = parse(&["--ids", "1_000_000", "--out=x.md"]).unwrap();
        assert_eq!(
            (long.quick, long.ids, long.out.as_deref()),
            (false, Some(1_000_000), Some(Path::new("x.md")))
        );
        assert_eq!(long.target_ids(), 1_000_000);
        let quick = parse(&["--quick", "--no-build"]).unwrap();
        assert_eq!((quick.quick, quick.build, quick.target_ids()), (true, false, 0));
        assert!(quick.out(Path::new("/r")).ends_with("chaos-quick.md"));
        assert_eq!(parse(&[]).unwrap().out(Path::new("/r")), Path::new("/r/docs/reliability.md"));
        assert!(
            parse(&["--ids", "0"]).is_err()
                && parse(&["--ids"]).is_err()
                && parse(&["--fast"]).is_err()
        );
    }

    #[test]
    fn a_fenced_worker_id_counts_only_after_the_pause() {
        let snowflake = |worker: u128, sequence: u128| (1 << 40) << 22 | worker << 12 | sequence;
        let id = |value, sent_ms, node| Issued { value, sent_ms, phase: 5, node };
        let ids = BTreeMap::from([(
            (Kind::Snowflake, Scope::Redis),
            vec![
                id(snowflake(7, 0), 100, 0),
                id(snowflake(7, 1), 900, 0),
                id(snowflake(8, 0), 950, 0),
                id(snowflake(7, 2), 990, 4),
            ],
        )]);
        let fenced = faults::Fenced { node: 0, worker: 7, since_ms: 500 };
        assert_eq!(
            stale_snowflakes(&ids, 5, fenced),
            1,
            "only node 0's worker-7 snowflake after 500 ms"
        );
        assert_eq!(stale_snowflakes(&ids, 6, fenced), 0, "another phase");
    }
}
