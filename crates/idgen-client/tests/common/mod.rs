//! A real `idgen-server` process per test: started on `127.0.0.1:0` with a fresh data dir (and,
//! when asked, an API keys file), its URL read from the one line it prints, killed by pid when
//! the handle drops.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to print its listening line.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

const LISTENING_PREFIX: &str = "idgen-server listening on ";

/// A running `idgen-server`; killed when dropped.
pub struct TestServer {
    /// e.g. `http://127.0.0.1:41234`
    pub url: String,
    child: Child,
    _data_dir: tempfile::TempDir,
    _keys_dir: Option<tempfile::TempDir>,
}

/// Where `cargo test --workspace` puts the server binary: next to ours.
fn server_binary() -> PathBuf {
    let name = format!("idgen-server{}", std::env::consts::EXE_SUFFIX);
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_idgen")).with_file_name(name);
    assert!(
        path.is_file(),
        "the idgen-server binary is missing at {}: these tests run the real server; build it \
         with `cargo test --workspace` (or `cargo build -p idgen-server`) first",
        path.display()
    );
    path
}

/// The SHA-256 of `secret` in lowercase hex, as a keys file holds it.
pub fn sha256_hex(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The `[[key]]` entries of an API keys file: one per `(secret, scopes)`, named `key-N`.
fn keys_file(keys: &[(&str, &[&str])]) -> String {
    keys.iter()
        .enumerate()
        .map(|(index, (secret, scopes))| {
            let sha256 = sha256_hex(secret);
            let scopes: Vec<String> = scopes.iter().map(|scope| format!("{scope:?}")).collect();
            format!(
                "[[key]]\nname = \"key-{index}\"\nsha256 = \"{sha256}\"\nscopes = [{}]\n",
                scopes.join(", ")
            )
        })
        .collect()
}

impl TestServer {
    /// A server open to anyone.
    pub fn start() -> TestServer {
        Self::start_with_keys(&[])
    }

    /// A server that needs an API key on its ID, decode and kinds routes: one key per
    /// `(secret, scopes)` (an empty list starts an open server).
    pub fn start_with_keys(keys: &[(&str, &[&str])]) -> TestServer {
        Self::start_with(keys, &[])
    }

    /// [`TestServer::start_with_keys`] with extra `IDGEN_*` settings (e.g. TLS).
    pub fn start_with(keys: &[(&str, &[&str])], env: &[(&str, &std::path::Path)]) -> TestServer {
        Self::spawn(keys, env, &[])
    }

    /// An open server with extra flags, e.g. `--worker-id 2`, or `--bind 127.0.0.1:PORT` (the
    /// last `--bind` wins over the harness's own).
    // Each test binary compiles this module on its own; not every one starts such a server.
    #[allow(dead_code)]
    pub fn start_with_flags(flags: &[&str]) -> TestServer {
        Self::spawn(&[], &[], flags)
    }

    fn spawn(
        keys: &[(&str, &[&str])],
        env: &[(&str, &std::path::Path)],
        flags: &[&str],
    ) -> TestServer {
        let data_dir = tempfile::tempdir().expect("create a temp data dir");
        let mut command = Command::new(server_binary());
        command
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The developer's own IDGEN_* settings must not change what these tests see.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("IDGEN_") {
                command.env_remove(key);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let keys_dir = (!keys.is_empty()).then(|| {
            let keys_dir = tempfile::tempdir().expect("create a temp dir for the keys file");
            let path = keys_dir.path().join("keys.toml");
            std::fs::write(&path, keys_file(keys)).expect("write the API keys file");
            command.env("IDGEN_API_KEYS_FILE", path);
            keys_dir
        });
        let mut child = command.spawn().expect("spawn idgen-server");

        // Drain stderr (for the failure message) and stdout to the end, so the server never
        // blocks or fails on a full or closed pipe; stdout lines are handed to us.
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr_thread = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The receiver is gone once the URL is known; keep draining anyway.
                let _ = lines_tx.send(line);
            }
        });

        let deadline = Instant::now() + STARTUP_DEADLINE;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(LISTENING_PREFIX) {
                        break rest
                            .split_whitespace()
                            .next()
                            .expect("a URL after the prefix")
                            .to_owned();
                    }
                }
                Err(error) => {
                    let _ = child.kill();
                    let status = child.wait().map(|status| status.to_string());
                    // The pipe closed when the process ended, so this returns.
                    let stderr = stderr_thread.join().unwrap_or_default();
                    panic!(
                        "idgen-server did not print `{LISTENING_PREFIX}URL` ({error:?}); \
                         exit: {status:?}; stderr:\n{stderr}"
                    );
                }
            }
        };
        TestServer { url, child, _data_dir: data_dir, _keys_dir: keys_dir }
    }

    /// SIGKILL, as a crash would: no shutdown, connections dropped mid-request. Waits for the
    /// process to be gone.
    #[allow(dead_code)]
    pub fn kill(&mut self) {
        self.child.kill().expect("kill idgen-server");
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The longest an `idgen` process may run in a test before it is killed. Generous: a debug
/// build fetching 100 000 IDs on a loaded two-core CI machine.
#[allow(dead_code)]
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The `idgen` binary with no `IDGEN_*` variable of the test's environment and a deadline.
// Only the CLI test binaries run it.
#[allow(dead_code)]
pub fn idgen_command() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_idgen"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(key);
        }
    }
    command.timeout(RUN_DEADLINE);
    command
}

/// A URL on which nothing listens: a port the kernel just handed out and got back.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Milliseconds since the Unix epoch, for "is this time plausible" checks.
pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since_epoch.as_millis()).expect("fits in u64")
}

/// Whether `ms` is within an hour of now (the server and the test share a clock).
pub fn is_recent(ms: u64) -> bool {
    now_ms().abs_diff(ms) < 3_600_000
}

/// In `dir`: `ca.pem`, a test CA, and `cert.pem` + `key.pem`, a server certificate for
/// 127.0.0.1 it signed, all made by the `openssl` CLI (the tests need it).
fn make_test_ca(dir: &std::path::Path) {
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .expect("write server.ext");
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
    for args in steps {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the openssl CLI is needed for the TLS tests (apt-get install openssl)");
        assert!(status.success(), "openssl {args:?} failed");
    }
}

impl TestServer {
    /// A server with these keys serving HTTPS, its certificate from a test CA made in `dir`
    /// (its `ca.pem` is what a client must trust).
    // Each test binary compiles this module on its own; the buffered tests need no TLS.
    #[allow(dead_code)]
    pub fn start_tls(keys: &[(&str, &[&str])], dir: &std::path::Path) -> TestServer {
        make_test_ca(dir);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        Self::start_with(keys, &[("IDGEN_TLS_CERT", &cert), ("IDGEN_TLS_KEY", &key)])
    }
}
