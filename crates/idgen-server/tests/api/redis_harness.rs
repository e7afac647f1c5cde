//! Redis for the Redis-mode tests: each test starts its own `redis-server` on a free loopback
//! port (never 6379) with its own temp dir, and stops it by pid when dropped. Nothing here ever
//! talks to a server it did not start.
//!
//! Without `redis-server` on PATH the tests print a notice and pass without running, unless
//! `IDGEN_REQUIRE_REDIS=1` (set by `.ci/run`), which turns a missing Redis into a failure.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::helpers::wait_with_deadline;

/// How long a redis-server may take to answer PING after start.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// Whether `redis-server` can be run; panics when it cannot but `IDGEN_REQUIRE_REDIS=1`.
pub fn redis_available(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("IDGEN_REQUIRE_REDIS").as_deref() != Ok("1"),
            "{test}: redis-server is not on PATH and IDGEN_REQUIRE_REDIS=1"
        );
        eprintln!("notice: {test} skipped: redis-server is not on PATH (install redis-server)");
    }
    found
}

/// A free loopback port (not 6379).
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        if port != 6379 {
            return port;
        }
    }
}

/// A free loopback port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
        // Ephemeral ports are usually above 32768; try a random one in a lower range.
        let candidate = 20_000 + (std::process::id() as u16 ^ port) % 20_000;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok()
            && TcpListener::bind(("127.0.0.1", candidate + 10_000)).is_ok()
        {
            return candidate;
        }
    }
}

/// A `redis-server` this test started.
pub struct RedisServer {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a standalone server with AOF (`appendfsync always`) and no RDB snapshots.
    /// `None` (after a notice) when redis-server is missing and not required.
    pub fn start(test: &str) -> Option<RedisServer> {
        Self::start_with(test, &[])
    }

    /// [`RedisServer::start`] with extra `--option value` arguments.
    pub fn start_with(test: &str, extra: &[&str]) -> Option<RedisServer> {
        if !redis_available(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir for redis");
        let cluster = extra.contains(&"--cluster-enabled");
        let mut server = RedisServer {
            port: if cluster { free_cluster_port() } else { free_port() },
            dir,
            child: None,
            extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.launch();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(command.spawn().expect("start redis-server"));
        let deadline = Instant::now() + START_DEADLINE;
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within {START_DEADLINE:?}; log: {}",
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli -p PORT args...` and returns its stdout ("" if it could not connect).
    pub fn cli(&self, args: &[&str]) -> String {
        if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return String::new();
        }
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} redis-server");
    }

    /// `kill -9`: gone at once, with whatever AOF it had written.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = wait_with_deadline(&mut child, Duration::from_secs(10));
        }
    }

    /// Starts it again on the same port and directory (so it reloads its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// SIGSTOP: the server stops answering but keeps its connections (a network cut).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // SIGKILL ends a stopped process too; SIGCONT first does no harm.
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
        }
        self.kill();
    }
}

/// A Redis Cluster of three masters (no replicas) on loopback, created with
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `None` (after a notice) when redis-server is missing and not required.
    pub fn start(test: &str) -> Option<RedisCluster> {
        let options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(RedisServer::start_with(test, &options)?);
        }
        let addresses: Vec<String> =
            nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let created = nodes[0].cli(&args);
        let deadline = Instant::now() + START_DEADLINE;
        for node in &nodes {
            while !node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not become ok within {START_DEADLINE:?}: {created}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(RedisCluster { nodes })
    }

    /// The seed-node list for `IDGEN_REDIS_URL` with `IDGEN_REDIS_CLUSTER=true`.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }
}
