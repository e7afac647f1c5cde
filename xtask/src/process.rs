//! The processes `cargo xtask bench` owns: idgen servers, redis-servers and their temporary
//! directories. Each is stopped by its pid when its guard drops, so an error (or a panic) half
//! way through a bench never leaves a server running.
//!
//! Also the two tiny clients the bench needs without pulling in crates: an HTTP/1.1 GET over a
//! `TcpStream` (readiness and the pre-flight check of every route) and a Redis `PING`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a server may take to print its listening line and answer `/healthz`.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long a stopped process gets to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("idgen-bench-{}-{label}", std::process::id()));
        // A leftover from an earlier run with the same pid: start clean.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("create the temporary directory {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process stopped by pid (SIGTERM, then SIGKILL after [`STOP_DEADLINE`]) on drop.
struct Guarded {
    child: Child,
}

impl Guarded {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM so the server drains and settles its marks like in production; SIGKILL if it
    /// does not exit in time. Idempotent.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `idgen-server`.
pub struct Server {
    // Field order is drop order: the process stops before its directory is removed.
    process: Guarded,
    address: SocketAddr,
    mode: String,
    ready: Duration,
    idle_rss_kib: u64,
    _dir: TempDir,
}

impl Server {
    /// Starts `binary --bind 127.0.0.1:0 --data-dir <temp> <args>` with `env` (and no other
    /// `IDGEN_*` variable), reads the listening line and waits for the first 200 on `/healthz`.
    pub fn start(
        binary: &Path,
        label: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> anyhow::Result<Server> {
        let dir = TempDir::new(label)?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).context("create the server log")?;
        let mut command = Command::new(binary);
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("IDGEN_") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().map(|(name, value)| (name, value)));

        let spawned = Instant::now();
        let mut child =
            command.spawn().with_context(|| format!("could not start {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let process = Guarded { child };

        // The line is read on a thread so that a server that hangs before printing it cannot
        // hang the bench; a server that exits closes the pipe and the thread sends `None`.
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).ok().filter(|&n| n > 0);
            let _ = sender.send(read.map(|_| line));
        });
        let line = match receiver.recv_timeout(START_DEADLINE) {
            Ok(Some(line)) => line,
            Ok(None) => {
                drop(process);
                bail!("idgen-server exited before listening: {}", last_line(&log_path));
            }
            Err(_) => bail!("idgen-server printed no listening line within {START_DEADLINE:?}"),
        };
        let (address, mode) = parse_listening_line(&line)?;

        let deadline = spawned + START_DEADLINE;
        loop {
            if let Ok((200, _)) = http_get(address, "/healthz", None, &[]) {
                break;
            }
            if Instant::now() > deadline {
                bail!("idgen-server did not answer /healthz within {START_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let ready = spawned.elapsed();

        // Idle: after start-up work (first marks written, workers spawned) has settled.
        std::thread::sleep(Duration::from_millis(200));
        let idle_rss_kib = proc_status_kib(process.pid(), "VmRSS")?;
        Ok(Server { process, address, mode, ready, idle_rss_kib, _dir: dir })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `embedded` or `redis`, from the start-up line.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// From spawn to the first 200 on `/healthz`.
    pub fn ready(&self) -> Duration {
        self.ready
    }

    pub fn idle_rss_kib(&self) -> u64 {
        self.idle_rss_kib
    }

    /// CPU time the process has used so far, user + system, all threads.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid = self.process.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("read /proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces, hence the last ')'): state is
        // field 3, utime 14 and stime 15, in clock ticks.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
        let (user, system) = ticks(11)
            .zip(ticks(12))
            .with_context(|| format!("unexpected /proc/{pid}/stat: {stat}"))?;
        Ok((user + system) as f64 / clock_ticks_per_second())
    }

    /// The process's peak resident set so far (`VmHWM`).
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.process.pid(), "VmHWM")
    }
}

/// `CLK_TCK` (from `getconf`: std has no sysconf), 100 when that fails, as it is on Linux.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `idgen-server listening on http://127.0.0.1:41234 (mode: embedded, worker 0, default)`.
fn parse_listening_line(line: &str) -> anyhow::Result<(SocketAddr, String)> {
    let parsed = line.split_once("http://").and_then(|(_, rest)| {
        let (address, rest) = rest.split_once(' ')?;
        let address = address.parse().ok()?;
        let mode = rest.strip_prefix("(mode: ")?.split([',', ')']).next()?;
        Some((address, mode.to_owned()))
    });
    parsed.with_context(|| format!("unexpected start-up line from idgen-server: {line:?}"))
}

fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("(no output)").to_owned()
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmHWM`.
fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// A `redis-server` on a free port, no persistence, in its own temp dir.
pub struct Redis {
    _process: Guarded,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    pub fn start(label: &str) -> anyhow::Result<Redis> {
        let dir = TempDir::new(label)?;
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start redis-server (is it installed and on PATH?)")?;
        let mut process = Guarded { child };
        let deadline = Instant::now() + START_DEADLINE;
        while !redis_ping(port) {
            if Instant::now() > deadline || matches!(process.child.try_wait(), Ok(Some(_))) {
                process.stop();
                bail!("redis-server on port {port} did not answer PING");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Redis { _process: process, port, _dir: dir })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A port nobody listens on right now (the OS picks it; it could be taken again before use,
/// which on a bench machine does not happen in practice).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr().context("read the free port")?.port())
}

fn redis_ping(port: u16) -> bool {
    let ping = || -> std::io::Result<bool> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    ping().unwrap_or(false)
}

/// One `GET` with `Connection: close`: the status code and the body (headers dropped; the
/// server answers these with `Content-Length`, so reading to the end is the body).
pub fn http_get(
    address: SocketAddr,
    path: &str,
    accept: Option<&str>,
    headers: &[String],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut extra = accept.map(|value| format!("Accept: {value}\r\n")).unwrap_or_default();
    for header in headers {
        extra.push_str(&format!("{header}\r\n"));
    }
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of headers in the response")?;
    let status = std::str::from_utf8(&response[..head_end])
        .ok()
        .and_then(|head| head.split(' ').nth(1)?.parse().ok())
        .context("no status line in the response")?;
    Ok((status, response[head_end + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        let (address, mode) = parse_listening_line(
            "idgen-server listening on http://127.0.0.1:41234 (mode: embedded, worker 0)\n",
        )
        .expect("a valid line");
        assert_eq!(address, SocketAddr::from(([127, 0, 0, 1], 41234)));
        assert_eq!(mode, "embedded");
        assert!(parse_listening_line("something else").is_err());
    }
}
