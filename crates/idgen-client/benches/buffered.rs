//! IDs/s of `BufferedClient::snowflake()` against unbuffered `Client::snowflake()`, with the
//! same number of tasks in the same process and the two modes interleaved. The target is a
//! ratio of at least 20.
//!
//! `cargo build --release -p idgen-server && cargo bench -p idgen-client --bench buffered`
//! (add `-- --quick` for a short smoke run). It starts its own `idgen-server` from the target
//! directory on `127.0.0.1:0` and prints a markdown table. Timing never fails the run. It exits
//! non-zero only when the server is missing or a call fails.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use idgen_client::{BufferConfig, BufferedClient, Client, Error};

const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const LISTENING_PREFIX: &str = "idgen-server listening on ";

/// How much to measure.
struct Plan {
    task_counts: &'static [usize],
    rounds: usize,
    window: Duration,
}

const FULL: Plan =
    Plan { task_counts: &[1, 4, 16, 64], rounds: 3, window: Duration::from_millis(1500) };
const QUICK: Plan = Plan { task_counts: &[16], rounds: 1, window: Duration::from_millis(300) };

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; anything but `--quick` is ignored.
    let quick = std::env::args().any(|arg| arg == "--quick");
    let plan = if quick { QUICK } else { FULL };
    let server_path = match server_binary() {
        Ok(path) => path,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::start(&server_path) {
        Ok(server) => server,
        Err(message) => {
            eprintln!("cannot start {}: {message}", server_path.display());
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(&server.url, &plan)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `target/<profile>/idgen-server`, next to the directory of this executable
/// (`target/<profile>/deps/buffered-<hash>`).
fn server_binary() -> Result<PathBuf, String> {
    let name = format!("idgen-server{}", std::env::consts::EXE_SUFFIX);
    let exe =
        std::env::current_exe().map_err(|error| format!("cannot find this bench: {error}"))?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| format!("{} has no target directory", exe.display()))?;
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the idgen-server binary is missing at {}; build it first:\n  \
             cargo build --release -p idgen-server",
            path.display()
        ))
    }
}

/// A running `idgen-server` with its own data dir; killed when dropped.
struct Server {
    url: String,
    child: Child,
    _data_dir: tempfile::TempDir,
}

impl Server {
    fn start(path: &Path) -> Result<Server, String> {
        let data_dir = tempfile::tempdir().map_err(|error| format!("no temp dir: {error}"))?;
        let mut command = Command::new(path);
        command
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The server's defaults, whatever IDGEN_* the shell has set.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("IDGEN_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().map_err(|error| error.to_string())?;
        // Its log goes to stderr: drained here, shown only if it fails to start.
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr_thread = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        // Keep draining stdout after the first line so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let url = lines_rx.recv_timeout(STARTUP_DEADLINE).ok().and_then(|line| {
            Some(line.strip_prefix(LISTENING_PREFIX)?.split_whitespace().next()?.to_owned())
        });
        match url {
            Some(url) => Ok(Server { url, child, _data_dir: data_dir }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                // The process is gone, so its stderr is closed and this returns.
                let stderr = stderr_thread.join().unwrap_or_default();
                Err(format!("it did not print `{LISTENING_PREFIX}URL`; its stderr:\n{stderr}"))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every cell of the table, measured `plan.rounds` times with unbuffered and buffered windows
/// alternating, so drift in the machine's load hits both alike.
async fn run(url: &str, plan: &Plan) -> Result<String, Error> {
    let client = Client::new(url)?;
    let config = BufferConfig::default();
    let buffered = BufferedClient::new(client.clone(), config);
    // Connections and the first batch, outside the measurement.
    for _ in 0..100 {
        client.snowflake().await?;
        buffered.snowflake().await?;
    }

    let cells = plan.task_counts.len();
    let mut unbuffered_rates = vec![Vec::new(); cells];
    let mut buffered_rates = vec![Vec::new(); cells];
    for _ in 0..plan.rounds {
        for (cell, &tasks) in plan.task_counts.iter().enumerate() {
            let plain = client.clone();
            unbuffered_rates[cell].push(
                measure(tasks, plan.window, move || {
                    let plain = plain.clone();
                    async move { plain.snowflake().await }
                })
                .await?,
            );
            let pooled = buffered.clone();
            buffered_rates[cell].push(
                measure(tasks, plan.window, move || {
                    let pooled = pooled.clone();
                    async move { pooled.snowflake().await }
                })
                .await?,
            );
        }
    }

    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let max_age =
        config.max_age().map_or("none".to_owned(), |age| format!("{} ms", age.as_millis()));
    let mut report = String::new();
    report.push_str("## BufferedClient vs unbuffered single calls (snowflake)\n\n");
    report.push_str(&format!(
        "{cores} cores; release idgen-server (embedded mode, defaults) on 127.0.0.1, same \
         machine; client: tokio multi-thread runtime, one shared `Client`; buffer: batch {}, \
         low water {}, max_age {max_age}. {} round(s) of {} ms per cell, modes interleaved; \
         median shown. Target: ratio >= 20.\n\n",
        config.batch_size(),
        config.low_water(),
        plan.rounds,
        plan.window.as_millis(),
    ));
    report.push_str("| tasks | unbuffered IDs/s | buffered IDs/s | ratio |\n");
    report.push_str("|---:|---:|---:|---:|\n");
    for (cell, &tasks) in plan.task_counts.iter().enumerate() {
        let unbuffered = median(&mut unbuffered_rates[cell]);
        let buffered = median(&mut buffered_rates[cell]);
        report.push_str(&format!(
            "| {tasks} | {} | {} | {:.0}x |\n",
            thousands(unbuffered),
            thousands(buffered),
            buffered / unbuffered
        ));
    }
    Ok(report)
}

/// IDs/s of `tasks` tasks each calling `call` in a loop for about `window`.
async fn measure<F, Fut>(tasks: usize, window: Duration, call: F) -> Result<f64, Error>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<u64, Error>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let call = call.clone();
            tokio::spawn(async move {
                let mut count: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    call().await?;
                    count += 1;
                }
                Ok::<u64, Error>(count)
            })
        })
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for handle in handles {
        total += handle.await.expect("a bench task does not panic")?;
    }
    // Calls in flight when the window closed finish and count; so does their time.
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
