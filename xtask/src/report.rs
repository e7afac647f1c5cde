//! The bench report, `docs/benchmarks.md`: machine, targets, results, servers, the reading of
//! the numbers and how they were measured, in that order, with the chart of `chart.rs`. A
//! hand-written section between [`ANALYSIS_START`] and [`ANALYSIS_END`] in an existing report
//! is carried over, so a regenerated report keeps its reading of the numbers.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::chart::{CHART_FILE, batch_chart};
use crate::model::{CEILING_RUNS, DEFAULT_ROUNDS, Group, Load, Outcome, Profile, Results};
use crate::target::{self, BRACKET_RUNS, Metric, Target, millions, thousands};

pub const ANALYSIS_START: &str =
    "<!-- analysis: hand-written, kept when the report is regenerated -->";
pub const ANALYSIS_END: &str = "<!-- /analysis -->";

/// Writes the markdown report to `out` and the chart next to it.
pub fn write(results: &Results, out: &Path) -> anyhow::Result<()> {
    let directory = out.parent().filter(|parent| !parent.as_os_str().is_empty());
    if let Some(directory) = directory {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("create {}", directory.display()))?;
    }
    let chart_path = directory.map_or_else(|| CHART_FILE.into(), |dir| dir.join(CHART_FILE));
    let chart = batch_chart(results);
    if let Some(chart) = &chart {
        std::fs::write(&chart_path, chart)
            .with_context(|| format!("write {}", chart_path.display()))?;
    }
    let analysis = std::fs::read_to_string(out).ok().and_then(|old| kept_analysis(&old));
    let markdown = markdown(results, chart.is_some(), analysis.as_deref());
    std::fs::write(out, markdown).with_context(|| format!("write {}", out.display()))
}

/// The hand-written section of an earlier report, markers included.
fn kept_analysis(old: &str) -> Option<String> {
    let start = old.find(ANALYSIS_START)?;
    let end = old[start..].find(ANALYSIS_END)? + start + ANALYSIS_END.len();
    Some(old[start..end].to_owned())
}

/// The targets as a markdown table (also printed at the end of a run).
pub fn targets_table(results: &Results) -> String {
    let mut table = String::from(
        "| target | measured | ratio ± s.e. | required | met |\n|---|---|--:|---|---|\n",
    );
    for target in target::evaluate(results) {
        let Target { name, measured, ratio, standard_error, required, met, note } = target;
        let ratio = match (ratio, standard_error) {
            (Some(ratio), Some(error)) => format!("{ratio:.2} ± {error:.2}"),
            (Some(ratio), None) => format!("{ratio:.2}"),
            (None, _) => "–".to_owned(),
        };
        let met = match met {
            Some(true) => "met".to_owned(),
            Some(false) => "**not met**".to_owned(),
            None => "not measured".to_owned(),
        };
        let note = if note.is_empty() { String::new() } else { format!(" ({note})") };
        let _ = writeln!(table, "| {name} | {measured} | {ratio} | {required} | {met}{note} |");
    }
    table
}

fn markdown(results: &Results, has_chart: bool, analysis: Option<&str>) -> String {
    let run = run_command(results.profile);
    let mut md = String::new();
    introduction(&mut md, results, &run);
    machine_section(&mut md, results);
    targets_section(&mut md, results);
    results_section(&mut md, results, has_chart);
    servers_section(&mut md, results);
    analysis_section(&mut md, analysis);
    how_it_was_run_section(&mut md, results, &run);
    md
}

/// The command that wrote the report, as the reader would type it again.
fn run_command(profile: Profile) -> String {
    if profile.quick {
        "cargo xtask bench --quick".to_owned()
    } else if profile.rounds == DEFAULT_ROUNDS {
        "cargo xtask bench".to_owned()
    } else {
        format!("cargo xtask bench --rounds {}", profile.rounds)
    }
}

fn introduction(md: &mut String, results: &Results, run: &str) {
    let _ = writeln!(
        md,
        "# Benchmarks\n\n\
         Network benchmarks of `idgen-server`, written by `{run}` on {date} (about {wall:.0} s \
         including the release build). Do not edit the tables by hand: run the command again. \
         The in-process generator benchmarks are `cargo bench -p idgen-core`.\n",
        date = results.machine.date,
        wall = results.wall_seconds,
    );
}

fn machine_section(md: &mut String, results: &Results) {
    let machine = &results.machine;
    md.push_str("## Machine\n\n| | |\n|---|---|\n");
    let cores = machine.cores;
    for (name, value) in [
        ("CPU", machine.cpu.clone()),
        ("cores", format!("{cores} (wrk and the server share them)")),
        ("memory", machine.memory.clone()),
        ("OS", format!("{} (kernel {})", machine.os, machine.kernel)),
        ("commit", machine.commit.clone()),
        ("rustc", machine.rustc.clone()),
        ("wrk", machine.wrk.clone()),
        ("redis", machine.redis.clone()),
        ("date", machine.date.clone()),
        (
            "load average (1, 5, 15 min)",
            format!(
                "{} before the run, {} after it",
                results.load_average.0, results.load_average.1
            ),
        ),
    ] {
        let _ = writeln!(md, "| {name} | {value} |");
    }
}

/// How the ratios are paired, then [`targets_table`].
fn targets_section(md: &mut String, results: &Results) {
    let _ = writeln!(
        md,
        "\n## Targets\n\nThe performance targets, as ratios of figures from this run, `wrk -t2 -c50`. \
         Timing never fails the command; a missed target is explained under \
         [Reading the numbers](#reading-the-numbers).\n\n\
         A ratio of a case to its reference is paired: each run of the case is divided by the \
         same figure (req/s, IDs/s or p99) of the reference at that moment, and the ratio is \
         the median of these per-run ratios over the rounds. The reference at a moment is \
         interpolated on the straight line between its runs just before and just after, when \
         both are within {BRACKET_RUNS} runs (the ceiling always is), else it is the \
         reference's run nearest in the run's order (the earlier on a tie: a reference that \
         shares a unit with its case). ± is the median's standard error, 1.2533 x the per-run \
         ratios' standard deviation / √rounds: a target is met or not by the median itself, \
         and the ± says how far another run of the same length may land. \"Measured\" shows \
         the two medians over the rounds for the reader, so the ratio need not equal their \
         quotient: this machine's speed drifts by 20% \
         and more within a minute, and a ratio of two runs made seconds apart cancels most of \
         that drift, where a ratio of two medians mostly measures it. Absolute targets are the \
         median over the limit.\n\n{}",
        targets_table(results)
    );
}

/// What the result tables hold, then one section per group of cases.
fn results_section(md: &mut String, results: &Results, has_chart: bool) {
    let profile = results.profile;
    md.push_str("## Results\n\n");
    let _ = writeln!(
        md,
        "{rounds} round(s) of {seconds} s per case, cases interleaved: every round runs every \
         case once, in an order rotated from round to round, except the ceiling, the reference \
         of most targets, which runs {CEILING_RUNS} times per round, evenly spaced, so that \
         every case has a ceiling run a few runs before it and after it. A case compared with \
         another reference runs right next to it in every round (`/v1/ids/uuid7` and rate \
         limiting on; each JSON batch and text/plain of the same size; `redis-benchmark` \
         between the two Redis rows compared with it), after it in even rounds and before it in \
         odd ones, so that a drift within a pair cancels out. Each figure is the median over the \
         rounds (the ceiling's: over all its runs), and ± is half the range of req/s over the \
         rounds relative to it (the noise). x ceiling is paired, like the targets' ratios: \
         each run's req/s divided by the ceiling's at that moment (interpolated between the \
         ceiling runs around it), median over the rounds; it need not equal req/s over the \
         ceiling's req/s. Latencies are wrk's, from \
         request sent to response read, in ms. IDs/s = req/s x IDs per response. Server CPU µs/req: \
         the server process's user + system time (`/proc/PID/stat`) over the run divided by the \
         requests, median over the rounds.\n",
        rounds = profile.rounds,
        seconds = profile.seconds,
    );
    let sections = [
        (Group::Ceiling, "Ceiling: a constant route"),
        (Group::Single, "Single ID, `/v1/ids/{kind}`"),
        (Group::Tutorial, "Single ID, tutorial-compatible routes"),
        (Group::Batch, "Batches of uuid7"),
        (Group::Connections, "Connections (`/v1/ids/uuid7`)"),
        (Group::RateLimit, "Rate limiting (embedded)"),
        (Group::Keys, "API keys (embedded)"),
        (Group::Redis, "Redis mode"),
    ];
    let ceiling = results.outcome("ceiling");
    for (group, title) in sections {
        group_section(md, results, group, title, has_chart, ceiling);
    }
}

/// A group's heading, what is special about it, and its table; nothing for a group without
/// cases, and a reason instead of a table for skipped Redis rows.
fn group_section(
    md: &mut String,
    results: &Results,
    group: Group,
    title: &str,
    has_chart: bool,
    ceiling: Option<&Outcome>,
) {
    let in_group = |outcome: &&Outcome| outcome.case.group == group;
    let skipped = group == Group::Redis && results.redis_skipped.is_some();
    if !skipped && !results.outcomes.iter().any(|outcome| in_group(&outcome)) {
        return;
    }
    let _ = writeln!(md, "### {title}\n");
    match group {
        Group::Batch if has_chart => {
            let _ = writeln!(md, "![IDs/s against batch size]({CHART_FILE})\n");
        }
        Group::Connections => {
            md.push_str("The 50-connection row is the `v1/uuid7` case above.\n\n");
        }
        Group::RateLimit => {
            md.push_str(
                "On: a second server with `--rate-limit-per-second 1000000 \
                 --rate-limit-burst 1000000` (the server's maximum), a limit this machine \
                 cannot reach, so only the limiter's bookkeeping is measured. Off: the `v1/uuid7` case above.\n\n",
            );
        }
        Group::Keys => {
            md.push_str(
                "A third server with `IDGEN_API_KEYS_FILE` (one key, made by `idgen-server keys \
                 new`, no limits); wrk sends `Authorization: Bearer` on every request, so each \
                 one pays the key's lookup and its scope check. Without a key: the `v1/...` \
                 cases above.\n\n",
            );
        }
        Group::Redis => {
            if let Some(reason) = &results.redis_skipped {
                let _ = writeln!(md, "Skipped: {reason}.\n");
                return;
            }
            md.push_str(
                "Each Redis-mode server has its own `redis-server --save \"\" --appendonly no` \
                 on a free port; `redis-benchmark` runs against a fourth one. It has no \
                 p99.9.\n\n",
            );
        }
        _ => {}
    }
    md.push_str(
        "| case | server | conns | req/s | ± | x ceiling | IDs/s | p50 | p99 | p99.9 | server CPU µs/req | errors |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for outcome in results.outcomes.iter().filter(in_group) {
        md.push_str(&row(outcome, ceiling));
    }
    md.push('\n');
}

fn servers_section(md: &mut String, results: &Results) {
    md.push_str("### Servers\n\nRSS from `/proc/PID/status`: idle is `VmRSS` 200 ms after the first 200 on `/healthz`; peak is `VmHWM` at the end of the run (after every case above). Ready: from spawn to the first 200 on `/healthz`.\n\n| server | mode | ready | idle RSS | peak RSS |\n|---|---|--:|--:|--:|\n");
    for server in &results.servers {
        let peak = server
            .peak_rss_kib
            .map_or("–".to_owned(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0));
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.1} ms | {:.1} MiB | {peak} |",
            server.key.variable(),
            server.mode,
            server.ready_ms,
            server.idle_rss_kib as f64 / 1024.0,
        );
    }
    let ready: Vec<String> = results.ready_ms.iter().map(|ms| format!("{ms:.1}")).collect();
    let _ = writeln!(
        md,
        "\nTime to ready over every embedded start (fresh data dir each): {} ms.\n",
        ready.join(", ")
    );
}

fn analysis_section(md: &mut String, analysis: Option<&str>) {
    md.push_str("## Reading the numbers\n\n");
    md.push_str(analysis.unwrap_or(&format!(
        "{ANALYSIS_START}\n_No analysis yet: write it here; it is kept when the report is \
         regenerated._\n{ANALYSIS_END}"
    )));
    md.push_str("\n\n");
}

/// The commands, the server set-up and the wrk script, so that a reader can run it again.
fn how_it_was_run_section(md: &mut String, results: &Results, run: &str) {
    let profile = results.profile;
    md.push_str("## How it was run\n\n");
    let _ = writeln!(
        md,
        "```sh\n{run}{}\n```\n\n\
         It builds the server (`cargo build --release -p idgen-server`), installs `wrk` if it is \
         missing (`apt-get install -y wrk`), starts these servers, each on `127.0.0.1:0` with a \
         fresh temporary data dir, and stops them by pid (SIGTERM) at the end:\n",
        if profile.quick { " --out FILE" } else { "" }
    );
    md.push_str("| variable | command |\n|---|---|\n");
    for server in &results.servers {
        let _ = writeln!(md, "| `{}` | `{}` |", server.key.variable(), server.command);
    }
    let _ = writeln!(
        md,
        "\nEvery route is first requested once and must answer 200 with the right number of \
         IDs. Each server gets an unrecorded {} s warm-up on `/v1/ids/uuid7`. Then, per case \
         and round (`bench.lua` is the script below; `$EMBEDDED` etc. stand for the server's \
         `127.0.0.1:PORT`):\n\n```sh",
        profile.warmup_seconds
    );
    for outcome in &results.outcomes {
        let _ = writeln!(md, "{}", outcome.command);
    }
    let _ = writeln!(
        md,
        "```\n\n`redis-benchmark`'s `-n` is the request count that lasts about {} s at \
         the rate it measured in the round before.\n\n`bench.lua`:\n\n```lua\n{}```",
        profile.seconds,
        crate::wrk::LUA_SCRIPT
    );
}

/// One case's row; x ceiling is [`target::paired_ratio`] of req/s.
fn row(outcome: &Outcome, ceiling: Option<&Outcome>) -> String {
    let case = &outcome.case;
    let (name, server) = match &case.load {
        Load::Http { server, path, accept, .. } => {
            let format = if *accept == Some("text/plain") { " (text/plain)" } else { "" };
            (format!("`{path}`{format}"), format!("`{}`", server.variable()))
        }
        Load::RedisIncr { .. } => ("`redis-benchmark -t incr`".to_owned(), "redis".to_owned()),
    };
    let connections = case.connection_count();
    let Some(summary) = outcome.summary() else {
        let failure = outcome.failure.as_deref().unwrap_or("not run");
        return format!("| {name} | {server} | {connections} | failed: {failure} ||||||||\n");
    };
    let ms = |us: f64| format!("{:.2}", us / 1e3);
    let versus = ceiling
        .and_then(|ceiling| target::paired_ratio(outcome, ceiling, Metric::RequestsPerSecond))
        .map_or("–".to_owned(), |ratio| format!("{ratio:.2}"));
    let ids = if case.ids_per_request() > 1 {
        millions(summary.ids_per_second)
    } else {
        thousands(summary.ids_per_second)
    };
    format!(
        "| {name} | {server} | {connections} | {} | {:.0}% | {versus} | {ids} | {} | {} | {} | {} | {} |\n",
        thousands(summary.requests_per_second),
        summary.spread * 100.0,
        ms(summary.p50_us),
        ms(summary.p99_us),
        summary.p999_us.map_or("–".to_owned(), ms),
        summary.cpu_us_per_request.map_or("–".to_owned(), |us| format!("{us:.2}")),
        summary.errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_hand_written_analysis() {
        let old = format!("# Benchmarks\n\n{ANALYSIS_START}\nwhy\n{ANALYSIS_END}\n\nrest");
        assert_eq!(kept_analysis(&old), Some(format!("{ANALYSIS_START}\nwhy\n{ANALYSIS_END}")));
        assert_eq!(kept_analysis("no markers"), None);
    }
}
