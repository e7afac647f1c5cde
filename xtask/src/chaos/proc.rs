//! The processes and mounts `cargo xtask chaos` owns, each behind a guard that undoes it on
//! drop (error or panic included): idgen-server nodes (started, killed with `kill -9`,
//! paused, restarted on the same data dir, optionally on a movable libfaketime clock), the
//! redis-server (AOF `always`, killed and restarted on the same or an emptied directory), the
//! tiny tmpfs of the embedded node and the suite's temporary directory. Also a RESP client
//! just big enough for `FLUSHALL`, `GET`, `PTTL` and `INFO`.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a process may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a process gets after SIGTERM before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The suite's directory under the system temp dir, removed on drop.
pub struct Workdir {
    path: PathBuf,
}

impl Workdir {
    pub fn new() -> anyhow::Result<Workdir> {
        let path = std::env::temp_dir().join(format!("idgen-chaos-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Workdir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child stopped by pid on drop: SIGCONT (it may be paused), SIGTERM, SIGKILL after
/// [`STOP_DEADLINE`].
pub struct Guarded {
    child: Child,
}

impl Guarded {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// SIGTERM (a clean stop), SIGKILL if it does not exit in time. Idempotent.
    pub fn terminate(&mut self) {
        if self.exited() {
            return;
        }
        self.resume();
        self.signal("TERM");
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill9();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A port nobody listens on now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn append_log(path: &Path) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open the log {}", path.display()))
}

/// The last non-empty line of a log, for error messages.
pub fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("(no output)").to_owned()
}

/// The suite's redis-server: AOF with `appendfsync always`, no RDB, `noeviction`.
pub struct RedisServer {
    process: Option<Guarded>,
    dir: PathBuf,
    log: PathBuf,
    port: u16,
}

impl RedisServer {
    pub fn start(dir: PathBuf, log: PathBuf) -> anyhow::Result<RedisServer> {
        std::fs::create_dir_all(&dir)?;
        let mut redis = RedisServer { process: None, dir, log, port: free_port()? };
        redis.spawn()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and directory; waits for `PING`.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(["--maxmemory-policy", "noeviction", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(append_log(&self.log)?)
            .stderr(Stdio::null())
            .spawn()
            .context("could not start redis-server (is it installed and on PATH?)")?;
        let mut process = Guarded { child };
        let deadline = Instant::now() + START_DEADLINE;
        while !matches!(self.call(&["PING"]), Ok(Resp::Simple(pong)) if pong == "PONG") {
            if Instant::now() > deadline || process.exited() {
                bail!("redis-server did not answer PING: {}", last_line(&self.log));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.process = Some(process);
        Ok(())
    }

    /// `kill -9`: what it acknowledged is in the AOF (`appendfsync always`).
    pub fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
        }
    }

    /// Deletes what it persisted (only while it is down): the next start is empty.
    pub fn wipe(&self) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// One command over a fresh connection.
    pub fn call(&self, args: &[&str]) -> anyhow::Result<Resp> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(300))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        read_resp(&mut BufReader::new(stream))
    }

    /// `redis_version` from `INFO server`.
    pub fn version(&self) -> String {
        match self.call(&["INFO", "server"]) {
            Ok(Resp::Bulk(Some(info))) => String::from_utf8_lossy(&info)
                .lines()
                .find_map(|line| line.strip_prefix("redis_version:"))
                .map_or("unknown".to_owned(), |version| version.trim().to_owned()),
            _ => "unknown".to_owned(),
        }
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

pub fn read_resp(reader: &mut impl BufRead) -> anyhow::Result<Resp> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (tag, rest) = line.split_at_checked(1).context("empty RESP reply")?;
    let number = || rest.parse::<i64>().with_context(|| format!("bad RESP length {rest:?}"));
    Ok(match tag {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Integer(number()?),
        "$" => match number()? {
            length if length < 0 => Resp::Bulk(None),
            length => {
                let mut bytes = vec![0; length as usize + 2];
                reader.read_exact(&mut bytes)?;
                bytes.truncate(length as usize);
                Resp::Bulk(Some(bytes))
            }
        },
        "*" => match number()? {
            length if length < 0 => Resp::Array(None),
            length => Resp::Array(Some(
                (0..length).map(|_| read_resp(reader)).collect::<anyhow::Result<_>>()?,
            )),
        },
        _ => bail!("unexpected RESP reply {line:?}"),
    })
}

/// A tmpfs mounted on a directory, unmounted on drop.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `mount -t tmpfs -o size=SIZE tmpfs PATH`; `Err` says why not (not root, no mount).
    pub fn mount(path: &Path, size: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .context("could not run mount")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!("mount -t tmpfs failed: {}", stderr.lines().next().unwrap_or("").trim());
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for attempt in 0..20 {
            let status = Command::new("umount").arg(&self.path).stderr(Stdio::null()).status();
            if status.is_ok_and(|status| status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50 * (attempt + 1)));
        }
        // Still busy: detach it so that nothing stays mounted once its users are gone.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// How to start one idgen-server node; the same spec restarts it on the same data dir.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub args: Vec<String>,
    /// libfaketime and the file holding the node's clock offset, when the clock can move.
    pub clock: Option<(PathBuf, PathBuf)>,
}

/// A running idgen-server node.
pub struct Node {
    process: Guarded,
    pub address: SocketAddr,
    /// Its start-up line.
    pub line: String,
}

impl Node {
    /// Starts `spec` on `127.0.0.1:0` with no `IDGEN_*` variable of ours, reads its listening
    /// line; fails with the last line of its log if it exits first.
    pub fn start(spec: &NodeSpec) -> anyhow::Result<Node> {
        let mut command = Command::new(&spec.binary);
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&spec.data_dir)
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append_log(&spec.log)?);
        clean_environment(&mut command);
        if let Some((library, offset_file)) = &spec.clock {
            command
                .env("LD_PRELOAD", library)
                .env("FAKETIME_TIMESTAMP_FILE", offset_file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let mut child =
            command.spawn().with_context(|| format!("start {}", spec.binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let process = Guarded { child };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).ok().filter(|&n| n > 0);
            let _ = sender.send(read.map(|_| line));
        });
        let line = match receiver.recv_timeout(START_DEADLINE) {
            Ok(Some(line)) => line.trim().to_owned(),
            Ok(None) => {
                drop(process);
                bail!("idgen-server exited before listening: {}", last_line(&spec.log));
            }
            Err(_) => bail!("idgen-server printed no listening line within {START_DEADLINE:?}"),
        };
        let address = line
            .split_once("http://")
            .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
            .with_context(|| format!("unexpected start-up line {line:?}"))?;
        Ok(Node { process, address, line })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn kill9(mut self) {
        self.process.kill9();
    }

    /// A clean stop (SIGTERM).
    pub fn stop(mut self) {
        self.process.terminate();
    }

    pub fn pause(&self) {
        self.process.pause();
    }

    pub fn resume(&self) {
        self.process.resume();
    }

    /// The worker id its start-up line names (`worker N`).
    pub fn worker_id(&self) -> Option<u16> {
        worker_of_line(&self.line)
    }
}

fn worker_of_line(line: &str) -> Option<u16> {
    line.split("worker ").nth(1)?.split([',', ')']).next()?.trim().parse().ok()
}

fn clean_environment(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(name);
        }
    }
}

/// `idgen-server --redis-url URL <settings> recover --node-data-dir DIR...`: the summary line
/// and how long it took.
pub fn recover(
    binary: &Path,
    settings: &[String],
    dirs: &[PathBuf],
) -> anyhow::Result<(String, Duration)> {
    let started = Instant::now();
    let mut command = Command::new(binary);
    command.args(settings).arg("recover");
    for dir in dirs {
        command.arg("--node-data-dir").arg(dir);
    }
    clean_environment(&mut command);
    let output = command.output().context("run idgen-server recover")?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        bail!(
            "idgen-server recover failed ({}): {} {}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((text, started.elapsed()))
}

/// libfaketime's library, if installed.
pub fn faketime_library() -> Option<PathBuf> {
    let known = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    if let Some(path) = known.iter().map(PathBuf::from).find(|path| path.exists()) {
        return Some(path);
    }
    let listing = Command::new("dpkg").args(["-L", "libfaketime"]).output().ok()?;
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|line| line.ends_with("/libfaketime.so.1"))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resp_replies() {
        let wire = b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$0\r\n\r\n";
        let mut reader = BufReader::new(&wire[..]);
        let replies: Vec<Resp> = (0..6).map(|_| read_resp(&mut reader).unwrap()).collect();
        assert_eq!(
            replies,
            [
                Resp::Simple("OK".into()),
                Resp::Error("ERR no".into()),
                Resp::Integer(42),
                Resp::Bulk(Some(b"abc".to_vec())),
                Resp::Bulk(None),
                Resp::Array(Some(vec![Resp::Integer(1), Resp::Bulk(Some(Vec::new()))])),
            ]
        );
    }

    #[test]
    fn reads_the_worker_id_of_a_start_up_line() {
        let line = "idgen-server listening on http://127.0.0.1:1 (mode: redis, worker 934, persistence: aof)";
        assert_eq!(worker_of_line(line), Some(934));
        assert_eq!(worker_of_line("... (mode: embedded, worker 7)"), Some(7));
        assert_eq!(worker_of_line("no worker here"), None);
    }
}
