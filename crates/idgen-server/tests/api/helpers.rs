//! The harness: starts the real `idgen-server` binary on `127.0.0.1:0` with its own data
//! directory and gives tests a handle with one helper per endpoint.
//!
//! Why a process and not `Application` in-process: the things these tests check (the start-up
//! line, exit codes, `kill -9`, SIGTERM, the data-dir lock, bad settings) only exist for a process.
//! Every wait is a condition with a deadline; no sleep stands in for synchronisation.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use idgen_core::wire::{DecodeResponse, ErrorBody, ErrorCode, IdResponse, IdsResponse};
use reqwest::{Method, Response, StatusCode};
use tempfile::TempDir;

/// How long a server may take to print its start-up line.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a server that should stop (bad setting, SIGTERM) may take to exit.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(15);
/// Every HTTP request is bounded by this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every kind the server serves, in catalogue order.
pub fn all_kinds() -> impl Iterator<Item = &'static str> {
    idgen_core::KINDS.iter().map(|kind| kind.name)
}

/// Whether batches of `kind` come out strictly increasing.
pub fn is_sortable(kind: &str) -> bool {
    idgen_core::Kind::from_name(kind).is_some_and(idgen_core::Kind::sortable)
}

/// 2020-01-01T00:00:00Z, the default snowflake epoch.
pub const DEFAULT_EPOCH_MS: u64 = 1_577_836_800_000;

/// Where the server keeps its state.
#[derive(Debug, Clone)]
enum DataDir {
    /// A directory that does not exist yet, inside the app's own temp dir (the server must
    /// create it).
    Fresh,
    /// A directory the test owns (restarts on the same data dir).
    At(PathBuf),
    /// No `--data-dir` flag at all (tests of `IDGEN_DATA_DIR`).
    Unset,
}

/// How to start a server. Defaults: `--bind 127.0.0.1:0 --data-dir <fresh>`, no other flags,
/// and no `IDGEN_*` variable from the test process's environment.
#[derive(Debug, Clone)]
pub struct Options {
    bind: Option<String>,
    data_dir: DataDir,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bind: Some("127.0.0.1:0".to_owned()),
            data_dir: DataDir::Fresh,
            args: Vec::new(),
            envs: Vec::new(),
        }
    }
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `--name value`.
    pub fn flag(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push(name.to_owned());
        self.args.push(value.to_string());
        self
    }

    /// Sets an environment variable on the child only (never on the test process).
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.envs.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn data_dir(mut self, path: &Path) -> Self {
        self.data_dir = DataDir::At(path.to_owned());
        self
    }

    /// Passes no `--data-dir` flag.
    pub fn without_data_dir_flag(mut self) -> Self {
        self.data_dir = DataDir::Unset;
        self
    }

    /// Passes no `--bind` flag.
    pub fn without_bind_flag(mut self) -> Self {
        self.bind = None;
        self
    }
}

/// A server process that has not (yet) printed its start-up line, with its output drained by
/// background threads so a chatty logger can never block on a full pipe.
struct Process {
    child: Child,
    stdout_lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    /// The threads copying stdout and stderr; they end at EOF, once the process has exited.
    readers: Vec<std::thread::JoinHandle<()>>,
    /// The server's working directory; removed on drop.
    _work_dir: TempDir,
    data_dir: Option<PathBuf>,
}

fn launch(options: &Options) -> Process {
    let work_dir = tempfile::tempdir().expect("create a temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgen-server"));
    // Hermetic: whatever IDGEN_* the developer or CI exported must not reach the server.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(&name);
        }
    }
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    // The default data dir is relative; keep it out of the source tree.
    command.current_dir(work_dir.path());
    if let Some(bind) = &options.bind {
        command.args(["--bind", bind]);
    }
    let data_dir = match &options.data_dir {
        DataDir::Fresh => Some(work_dir.path().join("data")),
        DataDir::At(path) => Some(path.clone()),
        DataDir::Unset => None,
    };
    if let Some(dir) = &data_dir {
        command.arg("--data-dir").arg(dir);
    }
    command.args(&options.args);
    command.envs(options.envs.iter().map(|(k, v)| (k, v)));
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start the idgen-server binary");

    let (line_tx, stdout_lines) = mpsc::channel();
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let child_stdout = child.stdout.take().expect("stdout is piped");
    let stdout_store = Arc::clone(&stdout);
    let stdout_reader = std::thread::spawn(move || {
        for line in BufReader::new(child_stdout).lines() {
            let Ok(line) = line else { break };
            stdout_store.lock().unwrap().push(line.clone());
            // The receiver may be gone; the line is kept in `stdout` anyway.
            let _ = line_tx.send(line);
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut child_stderr = child.stderr.take().expect("stderr is piped");
    let stderr_store = Arc::clone(&stderr);
    let stderr_reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        loop {
            match child_stderr.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    stderr_store.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]))
                }
            }
        }
    });
    Process {
        child,
        stdout_lines,
        stdout,
        stderr,
        readers: vec![stdout_reader, stderr_reader],
        _work_dir: work_dir,
        data_dir,
    }
}

impl Process {
    /// After the process has exited: waits (bounded) until the reader threads have copied
    /// everything it wrote.
    fn drain_output(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.readers.iter().all(|reader| reader.is_finished()) {
            assert!(Instant::now() < deadline, "the server's output pipes stay open after exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Waits for `child` to exit, polling until `timeout`. `None` if it is still running.
pub fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("query the child's status") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client for 127.0.0.1: no proxy, every request bounded by [`REQUEST_TIMEOUT`].
pub fn http_client() -> reqwest::Client {
    static PROVIDER: Once = Once::new();
    // reqwest is built with `rustls-no-provider`: building a client without an installed
    // provider panics, even for plain http.
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build a reqwest client")
}

/// What a server that was expected to refuse to start left behind.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Starts a server that must exit on its own (a bad setting, a locked data dir) and returns its
/// status and output. Panics (after killing it) if it is still running after [`EXIT_DEADLINE`].
pub fn run_to_exit(options: Options) -> Exited {
    let started = Instant::now();
    let mut process = launch(&options);
    let Some(status) = wait_with_deadline(&mut process.child, EXIT_DEADLINE) else {
        let _ = process.child.kill();
        let _ = process.child.wait();
        panic!(
            "the server was expected to exit but still runs after {EXIT_DEADLINE:?}\n\
             stdout: {:?}\nstderr: {}",
            process.stdout.lock().unwrap(),
            process.stderr.lock().unwrap()
        );
    };
    let elapsed = started.elapsed();
    process.drain_output();
    let stdout = process.stdout.lock().unwrap().join("\n");
    let stderr = process.stderr.lock().unwrap().clone();
    Exited { status, stdout, stderr, elapsed }
}

/// A running server. Dropping it kills the process (SIGKILL) and removes its temp dirs.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    /// The worker id the start-up line reports.
    pub worker_id: u16,
    /// The start-up line, verbatim.
    pub startup_line: String,
    pub client: reqwest::Client,
    /// The data dir the server was given (`None` when it got no `--data-dir` flag).
    pub data_dir: Option<PathBuf>,
    process: Process,
}

/// Starts a server and waits (with a deadline) for its one start-up line.
pub fn spawn_app(options: Options) -> TestApp {
    let mut process = launch(&options);
    let line = match process.stdout_lines.recv_timeout(START_DEADLINE) {
        Ok(line) => line,
        Err(error) => {
            let status = match error {
                RecvTimeoutError::Timeout => {
                    let _ = process.child.kill();
                    process.child.wait().ok()
                }
                RecvTimeoutError::Disconnected => {
                    wait_with_deadline(&mut process.child, EXIT_DEADLINE)
                }
            };
            let _ = process.child.kill();
            let _ = process.child.wait();
            process.drain_output();
            panic!(
                "the server printed no start-up line ({error:?}); exit status {status:?}\n\
                 options: {options:?}\nstderr:\n{}",
                process.stderr.lock().unwrap()
            );
        }
    };
    let mode =
        if options.args.iter().any(|arg| arg == "--redis-url") { "redis" } else { "embedded" };
    let (address, worker_id) = parse_startup_line_of_mode(&line, mode);
    let port = address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    TestApp {
        address,
        port,
        worker_id,
        startup_line: line,
        client: http_client(),
        data_dir: process.data_dir.clone(),
        process,
    }
}

/// `idgen-server listening on http://127.0.0.1:PORT (mode: embedded, worker N)` (or
/// `worker N, default` for an unchosen worker id, `worker N, persistence: ...` in Redis mode)
/// -> (`http://127.0.0.1:PORT`, N). Panics on any other shape.
pub fn parse_startup_line(line: &str) -> (String, u16) {
    parse_startup_line_of_mode(line, "embedded")
}

/// [`parse_startup_line`] for a server in `mode` (`embedded` or `redis`).
pub fn parse_startup_line_of_mode(line: &str, mode: &str) -> (String, u16) {
    let shape = format!("idgen-server listening on http://127.0.0.1:PORT (mode: {mode}, worker N)");
    let separator = format!(" (mode: {mode}, worker ");
    let parsed = line
        .strip_prefix("idgen-server listening on ")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|rest| rest.split_once(separator.as_str()))
        .and_then(|(address, worker)| {
            // `N`, `N, default` or `N, persistence: ...`.
            let worker = worker.split(',').next().unwrap_or(worker);
            Some((address, worker.parse::<u16>().ok()?))
        });
    let Some((address, worker_id)) = parsed else {
        panic!("start-up line {line:?} does not have the shape {shape:?}");
    };
    let port = address
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| address.strip_prefix("https://127.0.0.1:"))
        .and_then(|p| p.parse::<u16>().ok());
    assert!(
        matches!(port, Some(port) if port != 0),
        "start-up line {line:?} must name the real bound port on 127.0.0.1"
    );
    (address.to_owned(), worker_id)
}

/// `text` with every byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`) percent-encoded: a
/// query value, or an ID in a path segment.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `path?k=v&...` with keys and values percent-encoded (reqwest here is built without its
/// `query` feature).
pub fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    let encode = percent_encode;
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> =
        query.iter().map(|(key, value)| format!("{}={}", encode(key), encode(value))).collect();
    format!("{path}?{}", pairs.join("&"))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The URL of `/v1/ids/{kind}` with a query string.
    pub fn ids_url(&self, kind: &str, query: &[(&str, &str)]) -> String {
        self.url(&with_query(&format!("/v1/ids/{kind}"), query))
    }

    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr.lock().unwrap().clone()
    }

    /// Every line the server wrote to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.process.stdout.lock().unwrap().clone()
    }

    /// `kill -9` and reap it. The data dir stays (it belongs to the test when given).
    pub fn kill(mut self) {
        self.process.child.kill().expect("SIGKILL the server");
        self.process.child.wait().expect("reap the server");
    }

    /// Sends a signal (`TERM`, `INT`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for the process to exit on its own; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match wait_with_deadline(&mut self.process.child, timeout) {
            Some(status) => {
                self.process.drain_output();
                status
            }
            None => {
                panic!("the server did not exit within {timeout:?}\nstderr:\n{}", self.stderr())
            }
        }
    }

    pub async fn request(&self, method: Method, path: &str) -> Response {
        self.client
            .request(method.clone(), self.url(path))
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).await
    }

    /// `GET /v1/ids/{kind}` with a query string.
    pub async fn get_ids(&self, kind: &str, query: &[(&str, &str)]) -> Response {
        self.client
            .get(self.ids_url(kind, query))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET /v1/ids/{kind}: {error}"))
    }

    /// `GET /v1/ids/{kind}` with `Accept: text/plain`.
    pub async fn get_ids_text(&self, kind: &str, query: &[(&str, &str)]) -> Response {
        self.client
            .get(self.ids_url(kind, query))
            .header("accept", "text/plain")
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET /v1/ids/{kind} as text: {error}"))
    }

    /// `POST /v1/ids/{kind}` with a query string and an optional JSON body.
    pub async fn post_ids(
        &self,
        kind: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Response {
        let mut request = self.client.post(self.ids_url(kind, query));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap_or_else(|error| panic!("POST /v1/ids/{kind}: {error}"))
    }

    /// `GET /v1/decode/{kind}/{id}` (the id is sent as given, not escaped).
    pub async fn decode(&self, kind: &str, id: &str) -> Response {
        self.get(&format!("/v1/decode/{kind}/{id}")).await
    }

    /// One ID; asserts the 200 JSON shape.
    pub async fn id(&self, kind: &str, query: &[(&str, &str)]) -> String {
        let response = self.get_ids(kind, query).await;
        let body: IdResponse = json_ok(response).await;
        body.id
    }

    /// `count` IDs in one batch; asserts the 200 JSON shape and the length.
    pub async fn ids(&self, kind: &str, count: usize, query: &[(&str, &str)]) -> Vec<String> {
        let count_text = count.to_string();
        let mut full_query = vec![("count", count_text.as_str())];
        full_query.extend_from_slice(query);
        let response = self.get_ids(kind, &full_query).await;
        let body: IdsResponse = json_ok(response).await;
        assert_eq!(
            body.ids.len(),
            count,
            "GET /v1/ids/{kind}?count={count} returned another length"
        );
        body.ids
    }

    /// Decodes an id; asserts 200 and the JSON shape.
    pub async fn decoded(&self, kind: &str, id: &str) -> (DecodeResponse, serde_json::Value) {
        let response = self.decode(kind, id).await;
        let status = response.status();
        let text = response.text().await.expect("read the body");
        assert_eq!(status, StatusCode::OK, "decode {kind} {id}: {text}");
        let raw: serde_json::Value = serde_json::from_str(&text).expect("decode body is JSON");
        let typed: DecodeResponse = serde_json::from_str(&text).expect("decode body shape");
        (typed, raw)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Already exited (signal tests) or still running: either way, make sure it is gone.
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
    }
}

/// Asserts 200, `Cache-Control: no-store`, a JSON content type, and decodes the body.
pub async fn json_ok<T: serde::de::DeserializeOwned>(response: Response) -> T {
    let status = response.status();
    let url = response.url().clone();
    let cache_control = header(&response, "cache-control");
    let content_type = header(&response, "content-type");
    let text = response.text().await.expect("read the body");
    assert_eq!(status, StatusCode::OK, "{url}: {text}");
    assert_eq!(cache_control.as_deref(), Some("no-store"), "{url}: Cache-Control");
    assert!(
        content_type.as_deref().is_some_and(|value| value.starts_with("application/json")),
        "{url}: content-type {content_type:?}"
    );
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{url}: {error} in {text}"))
}

/// A header's value as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|value| value.to_str().expect("ASCII header").to_owned())
}

/// Asserts an error response: the status, a JSON content type, the body shape
/// `{"error": {"code", "message"}}` with nothing else, the code, a non-empty message, and that
/// nothing internal leaks. Returns the message.
pub async fn assert_error(response: Response, status: StatusCode, code: ErrorCode) -> String {
    let url = response.url().clone();
    let actual_status = response.status();
    let content_type = header(&response, "content-type");
    let text = response.text().await.expect("read the body");
    assert_eq!(actual_status, status, "{url}: body {text}");
    assert!(
        content_type.as_deref().is_some_and(|value| value.starts_with("application/json")),
        "{url}: error content-type {content_type:?}, body {text}"
    );
    assert_no_internal_detail(url.as_ref(), &text);
    let raw: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{url}: {error} in {text}"));
    let keys = object_keys(&raw);
    assert_eq!(keys, ["error"], "{url}: top-level keys of {text}");
    assert_eq!(object_keys(&raw["error"]), ["code", "message"], "{url}: {text}");
    assert_eq!(raw["error"]["code"], code.as_str(), "{url}: {text}");
    let body: ErrorBody = serde_json::from_value(raw).expect("error body shape");
    assert!(!body.error.message.trim().is_empty(), "{url}: empty message in {text}");
    body.error.message
}

/// Panics if an error body looks like it carries a Rust type, a path, an address or a panic.
pub fn assert_no_internal_detail(context: &str, text: &str) {
    for needle in ["::", "/src/", "panicked", "127.0.0.1", "Error {", "RUST_BACKTRACE", ".rs:"] {
        assert!(!text.contains(needle), "{context}: error body leaks {needle:?}: {text}");
    }
}

/// The keys of a JSON object, sorted.
pub fn object_keys(value: &serde_json::Value) -> Vec<String> {
    let object = value.as_object().unwrap_or_else(|| panic!("not a JSON object: {value}"));
    let mut keys: Vec<String> = object.keys().cloned().collect();
    keys.sort();
    keys
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as u64
}

/// Asserts `ms` is within `slack_ms` of the wall clock.
pub fn assert_close_to_now(what: &str, ms: u64, slack_ms: u64) {
    let now = now_ms();
    assert!(
        ms.abs_diff(now) <= slack_ms,
        "{what}: {ms} is {} ms away from now ({now})",
        ms as i128 - now as i128
    );
}

/// Parses decimal integer IDs (snowflake, timestamp, counter).
pub fn numeric(ids: &[String]) -> Vec<u64> {
    ids.iter()
        .map(|id| id.parse::<u64>().unwrap_or_else(|_| panic!("{id:?} is not a decimal u64")))
        .collect()
}

/// Asserts a batch of a sortable kind is strictly increasing (numerically for the integer
/// kinds, as strings for uuid7, ulid and typeid).
pub fn assert_strictly_increasing(kind: &str, ids: &[String]) {
    match kind {
        "snowflake" | "timestamp" | "counter" => {
            let values = numeric(ids);
            for pair in values.windows(2) {
                assert!(
                    pair[0] < pair[1],
                    "{kind}: {} then {} is not increasing",
                    pair[0],
                    pair[1]
                );
            }
        }
        "uuid7" | "ulid" | "typeid" | "ksuid" => {
            for pair in ids.windows(2) {
                assert!(
                    pair[0] < pair[1],
                    "{kind}: {} then {} is not increasing",
                    pair[0],
                    pair[1]
                );
            }
        }
        other => panic!("{other} is not a sortable kind"),
    }
}

/// The JSON string IDs of a batch response, asserting each element is a string.
pub fn string_ids(raw: &serde_json::Value) -> Vec<String> {
    raw["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"ids\" array in {raw}"))
        .iter()
        .map(|id| id.as_str().unwrap_or_else(|| panic!("id {id} is not a JSON string")).to_owned())
        .collect()
}
