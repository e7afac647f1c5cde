//! The load generators: `wrk` (installed from the Debian package when missing) with a Lua
//! `done` hook that prints the percentiles wrk's text output rounds away, and
//! `redis-benchmark -t incr`, the ceiling for one Redis round trip per request.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Prints one machine-readable line at the end of a run. `latency:percentile` is in
/// microseconds; `summary.errors.status` counts non-2xx/3xx answers.
pub const LUA_SCRIPT: &str = r#"-- written by `cargo xtask bench`: one summary line for the bench to parse
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "xtask-bench requests=%d duration_us=%d errors=%d status_errors=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"#;

/// One load run: what wrk or redis-benchmark measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub requests: u64,
    pub seconds: f64,
    /// Socket errors and non-2xx/3xx answers.
    pub errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// redis-benchmark does not report it.
    pub p999_us: Option<f64>,
    /// CPU time the idgen server used during the run (set by the bench, not by wrk).
    pub server_cpu_seconds: Option<f64>,
    /// The order in which the run measured this sample, over every case (set by the bench,
    /// not by wrk): ratios pair a case's sample with the reference at that point of the run.
    pub sequence: u64,
}

impl Sample {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Makes sure `wrk` runs, installing the Debian package when it is missing.
pub fn ensure_installed() -> anyhow::Result<()> {
    if version().is_some() {
        return Ok(());
    }
    eprintln!("xtask: wrk not found; installing it with apt-get (Debian package `wrk`)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
    };
    // A fresh machine may have no package lists yet: update once and retry.
    let installed = install().is_ok_and(|status| status.success())
        || (Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|status| status.success())
            && install().is_ok_and(|status| status.success()));
    if !installed || version().is_none() {
        bail!(
            "wrk is not installed and `apt-get install -y wrk` did not work (it needs root and a \
             Debian/Ubuntu package source); install wrk yourself (`sudo apt-get install wrk`, \
             `brew install wrk`, or build https://github.com/wg/wrk) and run the bench again"
        );
    }
    Ok(())
}

/// `wrk 4.1.0 [epoll] ...`, or `None` when wrk cannot run.
pub fn version() -> Option<String> {
    // `wrk -v` prints its version and then the usage, and exits non-zero: only the first line
    // is wanted.
    let output = Command::new("wrk").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines().find(|line| line.starts_with("wrk ")).map(|line| line.trim().to_owned())
}

/// The arguments for one run, without the program name. `threads = min(2, connections)`:
/// wrk needs at least one connection per thread.
pub fn arguments(
    connections: u32,
    seconds: u32,
    script: &str,
    accept: Option<&str>,
    headers: &[String],
    url: &str,
) -> Vec<String> {
    let threads = connections.min(2);
    let mut arguments = vec![
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        "-s".to_owned(),
        script.to_owned(),
    ];
    if let Some(accept) = accept {
        arguments.extend(["-H".to_owned(), format!("Accept: {accept}")]);
    }
    for header in headers {
        arguments.extend(["-H".to_owned(), header.clone()]);
    }
    arguments.push(url.to_owned());
    arguments
}

/// How a command line is shown in the report: double quotes where the shell needs them, so
/// that `$EMBEDDED` and friends still expand when the line is pasted.
pub fn display_command(program: &str, arguments: &[String]) -> String {
    let mut line = program.to_owned();
    for argument in arguments {
        line.push(' ');
        if argument.contains([' ', '?', '&']) || argument.is_empty() {
            line.push_str(&format!("\"{argument}\""));
        } else {
            line.push_str(argument);
        }
    }
    line
}

/// Runs wrk and parses the line the Lua script prints.
pub fn run(script_dir: &Path, arguments: &[String]) -> anyhow::Result<Sample> {
    let output = Command::new("wrk")
        .args(arguments)
        .current_dir(script_dir)
        .output()
        .context("could not run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_summary(&stdout).with_context(|| format!("no summary line in wrk's output: {stdout}"))
}

fn parse_summary(output: &str) -> Option<Sample> {
    let line = output.lines().find_map(|line| line.strip_prefix("xtask-bench "))?;
    let field = |name: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    let duration_us = field("duration_us")?;
    Some(Sample {
        requests: field("requests")? as u64,
        seconds: duration_us / 1e6,
        errors: (field("errors")? + field("status_errors")?) as u64,
        p50_us: field("p50_us")?,
        p99_us: field("p99_us")?,
        p999_us: Some(field("p999_us")?),
        server_cpu_seconds: None,
        sequence: 0,
    })
}

/// `redis-benchmark -h 127.0.0.1 -p PORT -t incr -c C -n N --csv`.
pub fn redis_benchmark_arguments(port: u16, connections: u32, requests: u64) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        "incr",
        "-c",
        &connections.to_string(),
        "-n",
        &requests.to_string(),
        "--csv",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs redis-benchmark; its CSV gives the rate and latencies in ms, but no p99.9.
pub fn run_redis_benchmark(arguments: &[String], requests: u64) -> anyhow::Result<Sample> {
    let output = Command::new("redis-benchmark")
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .context("could not run redis-benchmark")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("redis-benchmark failed ({}): {}", output.status, stdout.trim());
    }
    let csv = parse_redis_csv(&stdout)
        .with_context(|| format!("unexpected redis-benchmark output: {stdout}"))?;
    Ok(Sample {
        requests,
        seconds: requests as f64 / csv.rps,
        errors: 0,
        p50_us: csv.p50_ms * 1e3,
        p99_us: csv.p99_ms * 1e3,
        p999_us: None,
        server_cpu_seconds: None,
        sequence: 0,
    })
}

struct RedisCsv {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `"test","rps","avg_latency_ms",...,"p50_latency_ms",...,"p99_latency_ms",...` then one row.
fn parse_redis_csv(output: &str) -> Option<RedisCsv> {
    let mut lines = output.lines().filter(|line| line.starts_with('"'));
    let split = |line: &str| -> Vec<String> {
        line.split(',').map(|cell| cell.trim().trim_matches('"').to_owned()).collect()
    };
    let header = split(lines.next()?);
    let row = split(lines.next()?);
    let column = |name: &str| -> Option<f64> {
        let index = header.iter().position(|cell| cell == name)?;
        row.get(index)?.parse().ok()
    };
    Some(RedisCsv {
        rps: column("rps")?,
        p50_ms: column("p50_latency_ms")?,
        p99_ms: column("p99_latency_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lua_summary() {
        let output = "Running 1s test @ http://127.0.0.1:1/healthz\n  2 threads\n\
            xtask-bench requests=5000 duration_us=1000000 errors=1 status_errors=2 p50_us=150.0 p99_us=900.5 p999_us=2000.0\n";
        let sample = parse_summary(output).expect("a summary");
        assert_eq!(sample.requests, 5000);
        assert_eq!(sample.errors, 3);
        assert_eq!(sample.p999_us, Some(2000.0));
        assert!((sample.requests_per_second() - 5000.0).abs() < 1e-9);
    }

    #[test]
    fn parses_redis_benchmark_csv() {
        let output = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
            \"INCR\",\"86318.52\",\"0.340\",\"0.064\",\"0.271\",\"0.647\",\"1.015\",\"4.479\"\n";
        let csv = parse_redis_csv(output).expect("a row");
        assert_eq!(csv.rps, 86318.52);
        assert_eq!(csv.p99_ms, 1.015);
    }

    #[test]
    fn quotes_what_the_shell_needs() {
        let arguments = arguments(
            50,
            3,
            "bench.lua",
            Some("text/plain"),
            &["Authorization: Bearer $KEY".to_owned()],
            "http://127.0.0.1:1/v1/ids/uuid7?count=10",
        );
        assert_eq!(
            display_command("wrk", &arguments),
            r#"wrk -t2 -c50 -d3s -s bench.lua -H "Accept: text/plain" -H "Authorization: Bearer $KEY" "http://127.0.0.1:1/v1/ids/uuid7?count=10""#
        );
    }
}
