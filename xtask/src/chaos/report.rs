//! The chaos report (docs/reliability.md, or target/chaos-quick.md with `--quick`): what ran
//! where, the repeats per kind and scope, and per fault the IDs issued during it, the answers
//! by outcome, the seconds of refusal, what it costs in availability and how to recover from
//! it. Rendering is a pure function of [`Findings`].

use std::fmt::Write as _;

use super::answer::Outcome;
use super::faults::{Check, Fault};
use super::ledger::{Longest, Repeats, Tally};

/// Where and how the suite ran.
#[derive(Debug, Clone, Default)]
pub struct Setting {
    pub command: String,
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub os: String,
    pub redis: String,
    pub commit: String,
    pub date: String,
    pub duration_s: f64,
    pub clients: usize,
    pub lease_ttl_ms: u64,
    pub clock_step_s: u64,
    /// How long a fault is held before it is undone, and the steady load after a recovery.
    pub hold_s: f64,
    pub settle_s: f64,
    /// How long after every node refused `recover` ran, by cycle (in turn).
    pub recover_after_s: Vec<f64>,
    pub memory: String,
    /// Which server binary ran, and when it was built.
    pub server: String,
    /// The nodes' start-up lines.
    pub nodes: Vec<String>,
}

/// One run of one fault, as the report shows it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub fault: Fault,
    pub cycle: usize,
    pub tally: Tally,
    pub recovery_s: Option<f64>,
    pub skipped: Option<String>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
}

/// Everything the report says.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub setting: Setting,
    pub repeats: Vec<Repeats>,
    pub warmup: Tally,
    pub runs: Vec<RunRow>,
    pub total: Tally,
    /// Bad answers, word for word (the first few).
    pub bad: Vec<String>,
    /// Node names by index, for the outage columns.
    pub node_names: Vec<String>,
    /// Why the suite failed; empty: it passed.
    pub failures: Vec<String>,
}

/// The markdown document.
pub fn render(findings: &Findings) -> String {
    let mut out = String::new();
    header(&mut out, findings);
    repeats(&mut out, findings);
    faults_table(&mut out, findings);
    if findings.runs.iter().any(|run| run.cycle > 1) {
        runs_table(&mut out, findings);
    }
    costs(&mut out, findings);
    footer(&mut out, findings);
    out
}

fn header(out: &mut String, findings: &Findings) {
    let setting = &findings.setting;
    let _ = writeln!(out, "# Reliability under faults\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask chaos` (`xtask/src/chaos.rs`); do not edit by hand, run it again. \
         The suite runs a steady ID load against four idgen nodes while it injects real faults \
         (processes killed, paused, a store that forgets, clocks stepped back, a full disk) and \
         checks every ID it was given: **no ID may be issued twice**, and every answer must be \
         either IDs (200) or a JSON refusal (503/429 with `Retry-After`). A pass shows what this \
         run saw, not that no race exists; a timing-dependent race can pass one run and fail the \
         next, so run it again and again (`--quick` takes about a minute).\n"
    );
    let _ = writeln!(out, "{}\n", verdict(findings));
    let _ = writeln!(out, "## Run\n\n| | |\n|---|---|");
    let rows = [
        ("command", format!("`{}`", setting.command)),
        ("machine", format!("{} cores, {}, {} memory", setting.cores, setting.cpu, setting.memory)),
        ("kernel", format!("{} ({})", setting.kernel, setting.os)),
        ("Redis", setting.redis.clone()),
        ("commit", setting.commit.clone()),
        ("server", setting.server.clone()),
        ("date", setting.date.clone()),
        ("duration", format!("{:.0} s (start-up, load, faults, checks)", setting.duration_s)),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    let _ = writeln!(
        out,
        "\n**Set-up.** One redis-server (`--appendonly yes --appendfsync always --save \"\" \
         --maxmemory-policy noeviction`, its own temporary directory). Three Redis-mode nodes \
         on it (`--lease-ttl-ms {ttl}`, and the default `--counter-block 1`: strict counters, \
         one `INCRBY` per request), each with its own data dir; one embedded node \
         (`--worker-id 1 --max-counters 1000000`) whose data dir is on a 2 MiB tmpfs. \
         {clients} load threads cycle, without pause, through the nodes, the kinds counter \
         (one name, `chaos`), snowflake, timestamp, uuid7 and ULID, and the batch sizes 1 (no \
         `count`), 2, 10 and 50, over kept-alive HTTP/1.1 connections. A killed node stays in \
         the rotation (its connections are refused: no answer) until it listens again; a \
         paused node is left out and gets requests queued by the fault instead. IDs must be \
         unique per kind within their scope: counters, timestamps and snowflakes across the \
         Redis-mode nodes (the takeover node included) and, apart, on the embedded node; uuid7 \
         and ULID across all nodes. A fault is held {hold:.1} s before it is undone; after a \
         store loss `recover` runs {recover} s after every node refused (one value per cycle, \
         in turn); clock steps are {step} s (twice that for the restart). Start-up lines:\n",
        ttl = setting.lease_ttl_ms,
        clients = setting.clients,
        hold = setting.hold_s,
        recover = setting
            .recover_after_s
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(" / "),
        step = setting.clock_step_s,
    );
    for line in &setting.nodes {
        let _ = writeln!(out, "    {line}");
    }
    out.push('\n');
}

/// The first line that counts: passed (and what was skipped), or every reason it failed.
fn verdict(findings: &Findings) -> String {
    // Each fault once, in the order of the first run skipped (a fault runs once per cycle).
    let mut skipped: Vec<&str> = Vec::new();
    for run in findings.runs.iter().filter(|run| run.skipped.is_some()) {
        if !skipped.contains(&run.fault.name()) {
            skipped.push(run.fault.name());
        }
    }
    if findings.failures.is_empty() {
        let skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!(" Skipped (see below): {}.", skipped.join(", "))
        };
        format!(
            "**Passed**: {} IDs checked, 0 repeats, 0 bad answers, every fault that ran recovered.{skipped}",
            thousands(findings.total.ids)
        )
    } else {
        let list: Vec<String> = findings.failures.iter().map(|f| format!("- {f}")).collect();
        format!("**Failed**:\n\n{}", list.join("\n"))
    }
}

fn repeats(out: &mut String, findings: &Findings) {
    let _ = writeln!(
        out,
        "## Repeats\n\n| kind | unique within | IDs checked | repeats |\n|---|---|---:|---:|"
    );
    for found in &findings.repeats {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            found.kind.name(),
            found.scope.name(),
            thousands(found.ids),
            found.repeats
        );
    }
    let mut listed = false;
    for found in findings.repeats.iter().filter(|found| found.repeats > 0) {
        if !listed {
            let _ = writeln!(
                out,
                "\nRepeats seen (the first few of each kind; times are ms since the suite started):\n"
            );
            listed = true;
        }
        for example in &found.examples {
            let name =
                |node: u8| findings.node_names.get(usize::from(node)).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} {}: issued by {} (asked at {} ms, during {}) and again by {} (asked at {} ms, during {})",
                found.kind.name(),
                example.value,
                name(example.first.node),
                example.first.sent_ms,
                phase_name(findings, example.first.phase),
                name(example.again.node),
                example.again.sent_ms,
                phase_name(findings, example.again.phase),
            );
        }
    }
    let total = &findings.total;
    let _ = writeln!(
        out,
        "\nAnswers in all: {} with IDs, {} JSON 503 `unavailable`, {} JSON 503 `store_regressed`, \
         {} JSON 429, **{} bad** (neither IDs nor a JSON refusal), and {} requests without an \
         answer (connection refused or reset while a node or its port was down; not answers, \
         counted apart).\n",
        thousands(total.count(Outcome::Issued)),
        thousands(total.count(Outcome::Unavailable)),
        thousands(total.count(Outcome::Regressed)),
        thousands(total.count(Outcome::Limited)),
        total.count(Outcome::Bad),
        thousands(total.count(Outcome::NoAnswer)),
    );
    for bad in &findings.bad {
        let _ = writeln!(out, "- bad answer: {bad}");
    }
}

/// The runs of each fault, added up.
fn per_fault(findings: &Findings) -> Vec<(Fault, usize, Tally, Option<f64>, bool)> {
    let mut rows = Vec::new();
    for fault in Fault::ALL {
        let runs: Vec<&RunRow> = findings
            .runs
            .iter()
            .filter(|run| run.fault == fault && run.skipped.is_none())
            .collect();
        if runs.is_empty() {
            continue;
        }
        let mut tally = Tally::default();
        for run in &runs {
            tally.absorb(&run.tally);
        }
        let recovered = runs.iter().all(|run| run.recovery_s.is_some());
        let slowest = runs
            .iter()
            .filter_map(|run| run.recovery_s)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        rows.push((fault, runs.len(), tally, slowest, recovered));
    }
    rows
}

fn faults_table(out: &mut String, findings: &Findings) {
    let _ = writeln!(
        out,
        "## Faults\n\n\
         Per fault (all its runs added up; a run lasts from the injection to the next fault, so \
         it includes the recovery and {settle:.1} s of steady load): the IDs issued meanwhile, the \
         answers by outcome, the **seconds of refusal** (the longest stretch, for one node and \
         one kind, from a non-200 answer to the first 200 after it), the same with requests \
         that got no answer counted as refusals, the **availability cost** (all those stretches \
         of every node and kind added up, over the time of the runs times the node-kind pairs \
         asked) and how long after the fault was undone (or `recover` returned) every node \
         issued every kind again.\n",
        settle = findings.setting.settle_s
    );
    let _ = writeln!(
        out,
        "| fault | runs | IDs issued | 200 | 503 unavailable | 503 store_regressed | bad | no answer | refusal s (node, kind) | incl. no answer s | node-kind time without IDs | all kinds back after s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let warm = &findings.warmup;
    let _ = writeln!(
        out,
        "| (steady, before the first fault) | 1 | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} % | |",
        thousands(warm.ids),
        thousands(warm.count(Outcome::Issued)),
        warm.count(Outcome::Unavailable),
        warm.count(Outcome::Regressed),
        warm.count(Outcome::Bad),
        warm.count(Outcome::NoAnswer),
        longest(warm.refused, findings),
        longest(warm.unreachable, findings),
        100.0 * warm.unavailable_share()
    );
    for (fault, runs, tally, slowest, recovered) in per_fault(findings) {
        let back = match (slowest, recovered) {
            (Some(seconds), true) => format!("{seconds:.2}"),
            _ => "**not recovered**".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {runs} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} % | {back} |",
            fault.name(),
            thousands(tally.ids),
            thousands(tally.count(Outcome::Issued)),
            thousands(tally.count(Outcome::Unavailable)),
            thousands(tally.count(Outcome::Regressed)),
            tally.count(Outcome::Bad),
            thousands(tally.count(Outcome::NoAnswer)),
            longest(tally.refused, findings),
            longest(tally.unreachable, findings),
            100.0 * tally.unavailable_share(),
        );
    }
    let total = &findings.total;
    let _ = writeln!(
        out,
        "| **all** | {} | **{}** | {} | {} | {} | **{}** | {} | | | | |\n",
        findings.runs.iter().filter(|run| run.skipped.is_none()).count(),
        thousands(total.ids),
        thousands(total.count(Outcome::Issued)),
        thousands(total.count(Outcome::Unavailable)),
        thousands(total.count(Outcome::Regressed)),
        total.count(Outcome::Bad),
        thousands(total.count(Outcome::NoAnswer)),
    );
}

fn runs_table(out: &mut String, findings: &Findings) {
    let _ = writeln!(
        out,
        "### Every run\n\n| cycle | fault | IDs issued | refusal s | incl. no answer s | back after s |\n|---:|---|---:|---:|---:|---:|"
    );
    for run in findings.runs.iter().filter(|run| run.skipped.is_none()) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            run.cycle,
            run.fault.name(),
            thousands(run.tally.ids),
            longest(run.tally.refused, findings),
            longest(run.tally.unreachable, findings),
            run.recovery_s.map_or("**not recovered**".to_owned(), |s| format!("{s:.2}")),
        );
    }
    out.push('\n');
}

fn costs(out: &mut String, findings: &Findings) {
    let _ = writeln!(out, "## What each fault costs, and how to recover\n");
    let aggregated = per_fault(findings);
    for fault in Fault::ALL {
        let runs: Vec<&RunRow> = findings.runs.iter().filter(|run| run.fault == fault).collect();
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n\n**Fault**: {}.\n", fault.name(), fault.description());
        if let Some(reason) = runs.iter().find_map(|run| run.skipped.clone()) {
            let _ = writeln!(out, "**Skipped**: {reason}.\n");
            continue;
        }
        if let Some((_, _, tally, _, _)) = aggregated.iter().find(|row| row.0 == fault) {
            let _ = writeln!(out, "**Cost**: {}\n", cost(tally, findings));
        }
        let _ = writeln!(out, "**Recover**: {}\n", fault.remedy());
        let mut checks: Vec<String> = Vec::new();
        for check in runs.iter().flat_map(|run| &run.checks) {
            let line =
                format!("{} {}", if check.passed { "passed:" } else { "**FAILED**:" }, check.what);
            if !checks.contains(&line) {
                checks.push(line);
            }
        }
        for line in &checks {
            let _ = writeln!(out, "- {line}");
        }
        for run in &runs {
            for note in &run.notes {
                let _ = writeln!(out, "- seen in cycle {}: {note}", run.cycle);
            }
        }
        out.push('\n');
    }
}

/// The availability a fault cost, in words.
fn cost(tally: &Tally, findings: &Findings) -> String {
    let share = format!(
        "{:.1} % of node-kind time without IDs ({:.1} s of outages summed over {} node-kind \
         pairs, {:.0} s of runs)",
        100.0 * tally.unavailable_share(),
        tally.outage_seconds,
        tally.streams,
        tally.seconds
    );
    let worst = match tally.unreachable {
        Some(worst) => format!(
            "the longest stretch without IDs was {:.2} s ({})",
            worst.seconds,
            describe(worst, findings)
        ),
        None => "no node stopped issuing any kind".to_owned(),
    };
    format!(
        "{share}; {worst}; {} refused answers and {} unanswered requests.",
        thousands(
            tally.count(Outcome::Unavailable)
                + tally.count(Outcome::Regressed)
                + tally.count(Outcome::Limited)
        ),
        thousands(tally.count(Outcome::NoAnswer)),
    )
}

fn footer(out: &mut String, findings: &Findings) {
    let skipped: Vec<&RunRow> = findings.runs.iter().filter(|run| run.skipped.is_some()).collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "## Skipped\n");
        for run in skipped {
            let _ =
                writeln!(out, "- {}: {}", run.fault.name(), run.skipped.as_deref().unwrap_or(""));
        }
        out.push('\n');
    }
}

/// `redis-flushall (cycle 2)` for a fault's phase, `steady load` for phase 0.
fn phase_name(findings: &Findings, phase: u16) -> String {
    match usize::from(phase).checked_sub(1).and_then(|index| findings.runs.get(index)) {
        Some(run) => format!("{} (cycle {})", run.fault.name(), run.cycle),
        None => "the steady load before the first fault".to_owned(),
    }
}

fn longest(longest: Option<Longest>, findings: &Findings) -> String {
    longest.map_or("0".to_owned(), |worst| {
        format!("{:.2} ({})", worst.seconds, describe(worst, findings))
    })
}

fn describe(worst: Longest, findings: &Findings) -> String {
    let node = findings.node_names.get(usize::from(worst.node)).map_or("?", String::as_str);
    format!("{node}, {}", worst.kind.name())
}

/// 1234567 as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::answer::{Kind, Scope};
    use crate::chaos::ledger::{Event, Issued, Repeat, tally};

    fn findings() -> Findings {
        let events = [
            Event {
                sent_ms: 0,
                done_ms: 1,
                phase: 1,
                node: 0,
                kind: Kind::Counter,
                outcome: Outcome::Regressed,
                ids: 0,
            },
            Event {
                sent_ms: 1,
                done_ms: 2_501,
                phase: 1,
                node: 0,
                kind: Kind::Counter,
                outcome: Outcome::Issued,
                ids: 50,
            },
        ];
        let run = RunRow {
            fault: Fault::RedisFlush,
            cycle: 1,
            tally: {
                let mut tally = tally(&events, 3_000);
                tally.last(5.0);
                tally
            },
            recovery_s: Some(0.4),
            skipped: None,
            checks: vec![Check {
                what: "every Redis node answered store_regressed".into(),
                passed: true,
            }],
            notes: vec!["recover took 1.5 s".into()],
        };
        let skipped = RunRow {
            fault: Fault::DiskFull,
            cycle: 1,
            tally: Tally::default(),
            recovery_s: None,
            skipped: Some("no tmpfs".into()),
            checks: vec![],
            notes: vec![],
        };
        Findings {
            setting: Setting {
                command: "cargo xtask chaos --quick".into(),
                cores: 2,
                ..Setting::default()
            },
            repeats: vec![Repeats {
                kind: Kind::Counter,
                scope: Scope::Redis,
                ids: 1_234_567,
                repeats: 0,
                examples: vec![],
            }],
            total: run.tally.clone(),
            runs: vec![run, skipped],
            node_names: vec!["redis-1".into()],
            ..Findings::default()
        }
    }

    #[test]
    fn renders_the_verdict_the_tables_and_the_remedies() {
        let text = render(&findings());
        assert!(text.contains("**Passed**: 50 IDs checked"), "{text}");
        assert!(text.contains("recovered. Skipped (see below): embedded-disk-full."), "{text}");
        assert!(text.contains("| counter | Redis nodes | 1,234,567 | 0 |"), "{text}");
        assert!(text.contains("| redis-flushall | 1 | 50 | 1 | 0 | 1 | 0 | 0 | 2.50 (redis-1, counter) | 2.50 (redis-1, counter) | 50.0 % | 0.40 |"), "{text}");
        assert!(text.contains("recover --node-data-dir"), "the remedy names the command: {text}");
        assert!(
            text.contains("**Cost**: 50.0 % of node-kind time without IDs (2.5 s of outages summed over 1 node-kind pairs, 5 s of runs); the longest stretch without IDs was 2.50 s (redis-1, counter); 1 refused answers and 0 unanswered requests."),
            "{text}"
        );
        assert!(text.contains("- passed: every Redis node answered store_regressed"), "{text}");
        assert!(text.contains("**Skipped**: no tmpfs."), "{text}");
        assert!(text.contains("## Skipped\n\n- embedded-disk-full: no tmpfs"), "{text}");
        assert!(!text.contains("### Every run"), "one cycle: no per-run table");
    }

    #[test]
    fn a_failed_run_says_why_first() {
        let mut failed = findings();
        failed.failures = vec!["2 repeats of counter across the Redis nodes".into()];
        let first = Issued { value: 7, sent_ms: 10, phase: 1, node: 0 };
        let again = Issued { value: 7, sent_ms: 900, phase: 0, node: 0 };
        failed.repeats[0].repeats = 1;
        failed.repeats[0].examples = vec![Repeat { value: 7, first, again }];
        failed.runs[0].recovery_s = None;
        let text = render(&failed);
        assert!(text.contains("**Failed**:\n\n- 2 repeats of counter"), "{text}");
        assert!(text.contains("**not recovered**"), "{text}");
        assert!(
            text.contains("- counter 7: issued by redis-1 (asked at 10 ms, during redis-flushall (cycle 1)) and again by redis-1 (asked at 900 ms, during the steady load before the first fault)"),
            "{text}"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(999_999), "999,999");
    }
}
