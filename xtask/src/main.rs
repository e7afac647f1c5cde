//! Project automation: `cargo xtask ci` (runs `.ci/run`, so CI and a developer run the same
//! steps), `cargo xtask bench` (network benchmarks of the release server, written to
//! `docs/benchmarks.md`) and `cargo xtask tidy` (the source-shape rules, no compilation).
//!
//! The modules form a chain of use without cycles: each uses only modules listed after it.
//! `bench` (a benchmark run, step by step), `driver` (wrk and redis-benchmark), `fleet` (the
//! servers), `report` (the markdown), `chart` (its SVG), `plan` (which cases, in what order),
//! `target` (the ratios), `model` (the data all of these share), `machine`, `process` and
//! `wrk` (the outside world), `workspace` (paths). `tidy` stands alone.

mod bench;
mod chaos;
mod chart;
mod driver;
mod fleet;
mod machine;
mod model;
mod plan;
mod process;
mod report;
mod target;
mod tidy;
mod workspace;
mod wrk;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci      runs .ci/run (fmt check, clippy -D warnings, cargo test --workspace, benchmark smoke
          runs), exactly as CI does
  bench   network benchmarks with wrk; writes docs/benchmarks.md
  chaos   faults under load (Redis and nodes killed, paused, clocks stepped back, a full
          disk); fails on any repeated ID; writes docs/reliability.md
  tidy    file and function sizes, module docs, comments that point outside the source";

fn main() -> anyhow::Result<ExitCode> {
    let mut arguments = std::env::args().skip(1);
    let task = arguments.next();
    match task.as_deref() {
        Some("ci") => ci(),
        Some("bench") => bench::run(bench::Options::parse(arguments)?).map(|()| ExitCode::SUCCESS),
        Some("chaos") => chaos::run(chaos::Options::parse(arguments)?),
        Some("tidy") => tidy::run(&workspace::root()),
        _ => {
            eprintln!("{USAGE}\n\n{}\n\n{}", bench::USAGE, chaos::USAGE);
            bail!("no task given")
        }
    }
}

/// `bash .ci/run` from the workspace root, in this environment, with its exit status: one
/// definition of CI, so that this task cannot drift from what CI runs.
fn ci() -> anyhow::Result<ExitCode> {
    let root = workspace::root();
    eprintln!("xtask: bash .ci/run");
    let status = Command::new("bash")
        .arg(".ci/run")
        .current_dir(&root)
        .status()
        .with_context(|| format!("could not run bash .ci/run in {}", root.display()))?;
    Ok(ExitCode::from(shell_status(status)))
}

/// The status as a shell reports it: the exit code, or 128 + the signal that ended the process.
fn shell_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(1);
    u8::try_from(code).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_on_the_status_as_a_shell_would() {
        let status =
            |script: &str| Command::new("sh").args(["-c", script]).status().expect("sh runs");
        assert_eq!(shell_status(status("exit 0")), 0);
        assert_eq!(shell_status(status("exit 3")), 3);
        assert_eq!(shell_status(status("kill -TERM $$")), 128 + 15);
    }
}
