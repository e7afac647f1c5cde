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
    /// Serves TLS only (`--port 0 --tls-port PORT`) with a certificate from a test CA.
    tls: bool,
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
            tls: false,
        };
        server.launch();
        Some(server)
    }

    /// A server that speaks TLS only, on `port` (`--port 0 --tls-port PORT`, clients need no
    /// certificate), with a certificate for 127.0.0.1 from a test CA ([`RedisServer::ca_file`]),
    /// both made by the `openssl` CLI in its temp dir. `None` after a notice when redis-server is missing (and not required), or
    /// when `openssl` is missing or this redis-server was built without TLS: those two are
    /// skipped with a notice even under `IDGEN_REQUIRE_REDIS=1` (Debian's redis-server has TLS).
    pub fn start_tls(test: &str) -> Option<RedisServer> {
        if !redis_available(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir for redis");
        if !make_certificates(dir.path()) {
            eprintln!(
                "notice: {test} skipped: the openssl CLI is missing or failed, so no test \
                 certificate for the TLS Redis could be made (install openssl)"
            );
            return None;
        }
        let mut server =
            RedisServer { port: free_port(), dir, child: None, extra: Vec::new(), tls: true };
        if !server.try_launch() {
            let log =
                std::fs::read_to_string(server.dir.path().join("redis.log")).unwrap_or_default();
            eprintln!(
                "notice: {test} skipped: this redis-server does not start with --tls-port (built \
                 without TLS?); its log: {}",
                log.trim()
            );
            return None;
        }
        Some(server)
    }

    /// The PEM file of the test CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `redis://127.0.0.1:PORT`, or for a TLS server `rediss://127.0.0.1:PORT/#insecure` (its
    /// CA is not in the system's store).
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    fn launch(&mut self) {
        assert!(
            self.try_launch(),
            "redis-server on port {} exited at start; log: {}",
            self.port,
            std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
        );
    }

    /// Starts redis-server and waits for PING; false if it exited instead (e.g. no TLS support).
    fn try_launch(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        if self.tls {
            let file = |name: &str| self.dir.path().join(name);
            command
                .args(["--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(file("cert.pem"))
                .arg("--tls-key-file")
                .arg(file("key.pem"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.pem"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            command.args(["--port", &port]);
        }
        command
            .args(["--bind", "127.0.0.1", "--save", ""])
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
            if let Some(child) = self.child.as_mut()
                && child.try_wait().is_ok_and(|status| status.is_some())
            {
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within {START_DEADLINE:?}; log: {}",
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Runs `redis-cli -p PORT args...` (with `--tls --insecure` for a TLS server) and returns
    /// its stdout ("" if it could not connect).
    pub fn cli(&self, args: &[&str]) -> String {
        if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return String::new();
        }
        let tls: &[&str] = if self.tls { &["--tls", "--insecure"] } else { &[] };
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(tls)
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

    /// Starts it again on the same port with nothing: a restart without persistence.
    pub fn restart_empty(&mut self) {
        self.kill();
        for name in ["appendonlydir", "dump.rdb", "appendonly.aof"] {
            let path = self.dir.path().join(name);
            let _ = std::fs::remove_dir_all(&path);
            let _ = std::fs::remove_file(&path);
        }
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

/// In `dir`: `ca.pem` (a test CA, valid one day) and `cert.pem` + `key.pem`, a server
/// certificate for 127.0.0.1 signed by it. False when the `openssl` CLI is missing or fails.
pub fn make_certificates(dir: &std::path::Path) -> bool {
    let server_ext = dir.join("server.ext");
    if std::fs::write(
        &server_ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .is_err()
    {
        return false;
    }
    let ca: &[&str] = &[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=idgen test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ];
    let request: &[&str] = &[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ];
    let sign: &[&str] = &[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ];
    let steps = [ca, request, sign];
    steps.iter().all(|args| {
        Command::new("openssl")
            .args(*args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
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
