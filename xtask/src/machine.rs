//! What a benchmark ran on: the machine, the commit and the tools, as the report's first
//! table shows them.

use std::process::Command;

use crate::wrk;

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
            wrk: wrk::version().unwrap_or_else(|| "unknown".to_owned()),
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
