//! The bench report: `docs/benchmarks.md` (machine, commands, tables, targets) and the SVG
//! chart of IDs/s against batch size, drawn by hand (log x axis) so no plotting crate is
//! needed. A hand-written section between [`ANALYSIS_START`] and [`ANALYSIS_END`] in an
//! existing report is carried over, so a regenerated report keeps its reading of the numbers.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::bench::{CEILING_RUNS, Group, Load, Outcome, Results};
use crate::target::{self, BRACKET_RUNS, Metric, Target, millions, thousands};

pub const ANALYSIS_START: &str =
    "<!-- analysis: hand-written, kept when the report is regenerated -->";
pub const ANALYSIS_END: &str = "<!-- /analysis -->";
/// The chart's file name, next to the markdown file.
pub const CHART_FILE: &str = "benchmark-batches.svg";

/// What the numbers were measured on.
#[derive(Debug)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub os: String,
    pub kernel: String,
    pub date: String,
    pub commit: String,
    pub rustc: String,
    pub wrk: String,
    pub redis: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
            .map_or("unknown".to_owned(), |(_, model)| model.trim().to_owned());
        let cores = cpuinfo.lines().filter(|line| line.starts_with("processor")).count();
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|meminfo| {
                let kib: f64 = meminfo
                    .lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|release| {
                let name = release.lines().find_map(|line| line.strip_prefix("PRETTY_NAME="))?;
                Some(name.trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("unknown".to_owned(), |kernel| kernel.trim().to_owned());
        let dirty = output("git", &["status", "--porcelain"]).is_some_and(|out| !out.is_empty());
        let commit = output("git", &["rev-parse", "--short", "HEAD"]).map_or(
            "unknown".to_owned(),
            |commit| {
                if dirty { format!("{commit} (with uncommitted changes)") } else { commit }
            },
        );
        Machine {
            cpu,
            cores: if cores > 0 {
                cores
            } else {
                std::thread::available_parallelism().map_or(0, usize::from)
            },
            memory,
            os,
            kernel,
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".to_owned()),
            commit,
            rustc: output("rustc", &["-V"]).unwrap_or_else(|| "unknown".to_owned()),
            wrk: crate::wrk::version().unwrap_or_else(|| "unknown".to_owned()),
            redis: output("redis-server", &["--version"])
                .unwrap_or_else(|| "not installed".to_owned()),
        }
    }
}

/// Trimmed stdout of a command that succeeded.
fn output(program: &str, arguments: &[&str]) -> Option<String> {
    let output = Command::new(program).args(arguments).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

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
    let machine = &results.machine;
    let profile = results.profile;
    let mut md = String::new();
    let run = if profile.quick {
        "cargo xtask bench --quick".to_owned()
    } else if profile.rounds == crate::bench::DEFAULT_ROUNDS {
        "cargo xtask bench".to_owned()
    } else {
        format!("cargo xtask bench --rounds {}", profile.rounds)
    };
    let _ = writeln!(
        md,
        "# Benchmarks\n\n\
         Network benchmarks of `idgen-server`, written by `{run}` on {date} (about {wall:.0} s \
         including the release build). Do not edit the tables by hand: run the command again. \
         The in-process generator benchmarks are `cargo bench -p idgen-core`.\n",
        date = machine.date,
        wall = results.wall_seconds,
    );

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

    let _ = writeln!(
        md,
        "\n## Targets\n\nIssue 4, item 3: ratios of figures from this run, `wrk -t2 -c50`. \
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
        (Group::Redis, "Redis mode"),
    ];
    let ceiling = results.outcome("ceiling");
    for (group, title) in sections {
        let in_group = |outcome: &&Outcome| outcome.case.group == group;
        let skipped = group == Group::Redis && results.redis_skipped.is_some();
        if !skipped && !results.outcomes.iter().any(|outcome| in_group(&outcome)) {
            continue;
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
            Group::Redis => {
                if let Some(reason) = &results.redis_skipped {
                    let _ = writeln!(md, "Skipped: {reason}.\n");
                    continue;
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

    md.push_str("## Reading the numbers\n\n");
    md.push_str(analysis.unwrap_or(&format!(
        "{ANALYSIS_START}\n_No analysis yet: write it here; it is kept when the report is \
         regenerated._\n{ANALYSIS_END}"
    )));
    md.push_str("\n\n");

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
    md
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

/// IDs/s against batch size (log x axis, linear y from 0), JSON and text/plain, with the
/// 10 M IDs/s target as a dashed line. `None` when no batch case was measured.
fn batch_chart(results: &Results) -> Option<String> {
    let series: Vec<Series> = [("JSON", "#1f77b4", "json"), ("text/plain", "#ff7f0e", "text")]
        .into_iter()
        .map(|(name, colour, format)| Series {
            name,
            colour,
            points: crate::bench::BATCH_SIZES
                .iter()
                .filter_map(|&size| {
                    let summary = results.summary(&format!("batch/{format}/{size}"))?;
                    Some((size, summary.ids_per_second))
                })
                .collect(),
        })
        .collect();
    let highest = series
        .iter()
        .flat_map(|series| series.points.iter().map(|point| point.1))
        .fold(0.0, f64::max);
    if highest <= 0.0 {
        return None;
    }
    let target = 10e6;
    let y_step = nice_step(highest.max(target) * 1.1 / 5.0);
    let y_max = (highest.max(target) * 1.1 / y_step).ceil() * y_step;

    let (width, height) = (720.0, 420.0);
    let (left, right, top, bottom) = (80.0, 30.0, 40.0, 60.0);
    let plot_width = width - left - right;
    let plot_height = height - top - bottom;
    // x: log10 of the batch size, from 10 to 10,000.
    let x_of = |size: f64| left + (size.log10() - 1.0) / 3.0 * plot_width;
    let y_of = |ids: f64| top + plot_height - ids / y_max * plot_height;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">idgen-server: uuid7 IDs/s against batch size (wrk -t2 -c50, {})</text>"##,
        width / 2.0,
        results.machine.date
    );
    // Grid and y labels.
    let mut tick = 0.0;
    while tick <= y_max + y_step / 2.0 {
        let y = y_of(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_width,
            left - 8.0,
            y + 4.0,
            format_millions(tick)
        );
        tick += y_step;
    }
    for size in crate::bench::BATCH_SIZES {
        let x = x_of(size as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            top + plot_height,
            top + plot_height + 18.0,
            thousands(size as f64)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">IDs per request (log scale)</text>
<text transform="translate(20 {}) rotate(-90)" text-anchor="middle">IDs/s (millions)</text>"##,
        left + plot_width / 2.0,
        height - 15.0,
        top + plot_height / 2.0
    );
    let target_y = y_of(target);
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{target_y:.1}" x2="{}" y2="{target_y:.1}" stroke="#2ca02c" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" fill="#2ca02c">target: 10 M IDs/s at 1,000</text>"##,
        left + plot_width,
        left + 6.0,
        target_y - 6.0
    );
    for (index, Series { name, colour, points }) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|&(size, ids)| format!("{:.1},{:.1}", x_of(size as f64), y_of(ids)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"##,
            path.join(" ")
        );
        for &(size, ids) in points {
            let (x, y) = (x_of(size as f64), y_of(ids));
            let _ = writeln!(
                svg,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}"><title>{name}, batch {size}: {} IDs/s</title></circle>"##,
                millions(ids)
            );
        }
        let legend_y = top + 16.0 + index as f64 * 18.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"##,
            left + 12.0,
            left + 36.0,
            left + 42.0,
            legend_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

/// One line of the chart: (batch size, IDs/s) points.
struct Series {
    name: &'static str,
    colour: &'static str,
    points: Vec<(u64, f64)>,
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn format_millions(value: f64) -> String {
    let millions = value / 1e6;
    if millions.fract().abs() < 1e-9 { format!("{millions:.0}") } else { format!("{millions:.1}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.3e6), 2e6);
        assert_eq!(nice_step(4.0e6), 5e6);
        assert_eq!(nice_step(7.0e6), 1e7);
    }

    #[test]
    fn keeps_the_hand_written_analysis() {
        let old = format!("# Benchmarks\n\n{ANALYSIS_START}\nwhy\n{ANALYSIS_END}\n\nrest");
        assert_eq!(kept_analysis(&old), Some(format!("{ANALYSIS_START}\nwhy\n{ANALYSIS_END}")));
        assert_eq!(kept_analysis("no markers"), None);
    }
}
