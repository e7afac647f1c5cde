//! Project automation: `cargo xtask ci` (the same steps `.ci/run` runs, from Rust) and
//! `cargo xtask bench` (network benchmarks of the release server, written to
//! `docs/benchmarks.md`).

mod bench;
mod process;
mod report;
mod target;
mod wrk;

use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci      fmt check, clippy -D warnings, cargo test --workspace, benchmark smoke runs
  bench   network benchmarks with wrk; writes docs/benchmarks.md";

fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let task = arguments.next();
    match task.as_deref() {
        Some("ci") => ci(),
        Some("bench") => bench::run(bench::Options::parse(arguments)?),
        _ => {
            eprintln!("{USAGE}\n\n{}", bench::USAGE);
            bail!("no task given")
        }
    }
}

/// Mirrors `.ci/run` (minus installing redis-server, which needs root). The benchmark steps
/// are smoke runs: they keep the harnesses from rotting and never fail on timing.
fn ci() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&["test", "--workspace"])?;
    cargo(&["bench", "-p", "idgen-core", "--bench", "ratios", "--", "--quick"])?;
    bench::run(bench::Options::parse(
        ["--quick", "--out", "target/bench-quick.md"].map(String::from).into_iter(),
    )?)?;
    // Needs target/release/idgen-server, which the network bench above has just built.
    cargo(&["bench", "-p", "idgen-client", "--bench", "buffered", "--", "--quick"])
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
