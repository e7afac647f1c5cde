//! The real `idgen` binary against a real `idgen-server` process, or several.

mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{RUN_DEADLINE, TestServer, dead_url, idgen_command, is_recent};
use idgen_core::Kind;
use idgen_core::wire::{DecodeResponse, IdResponse, IdsResponse, KindsResponse};

/// What one run of `idgen` left behind.
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Exit 0, nothing on stderr; returns stdout.
    fn success(&self) -> &str {
        assert_eq!(self.status, Some(0), "idgen failed; stderr: {}", self.stderr);
        assert_eq!(self.stderr, "", "stderr of a successful run");
        &self.stdout
    }

    /// Exit `status`, empty stdout, exactly one line on stderr; returns that line.
    fn failure(&self, status: i32) -> &str {
        assert_eq!(self.status, Some(status), "exit status; stderr: {}", self.stderr);
        assert_eq!(self.stdout, "", "stdout of a failed run");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr must be one line: {:?}", self.stderr);
        assert!(lines[0].starts_with("idgen: "), "{:?}", lines[0]);
        lines[0]
    }
}

/// `idgen` with none of the developer's `IDGEN_*` settings (server, key, CA).
fn run_command(mut command: assert_cmd::Command) -> Run {
    let Output { status, stdout, stderr } = command.output().expect("run idgen");
    Run {
        status: status.code(),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    }
}

/// `idgen --server <url> <args>`.
fn idgen(url: &str, args: &[&str]) -> Run {
    let mut command = idgen_command();
    command.arg("--server").arg(url).args(args);
    run_command(command)
}

/// Asserts that `id` looks like an ID of `kind` with the server's defaults.
fn check_id(kind: Kind, id: &str) {
    match kind {
        Kind::Uuid => {
            let uuid =
                idgen_core::Uuid::parse_str(id).unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert_eq!(uuid.get_version_num(), 4, "{id}");
        }
        Kind::Uuid7 => {
            let uuid =
                idgen_core::Uuid::parse_str(id).unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert_eq!(uuid.get_version_num(), 7, "{id}");
        }
        Kind::Ulid => {
            assert_eq!(id.len(), 26, "{id}");
            let ulid: idgen_core::Ulid =
                id.parse().unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert!(is_recent(ulid.timestamp_ms()), "{id}");
        }
        Kind::Snowflake | Kind::Counter => {
            let value: i64 = id.parse().unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert!(value >= 0, "{id}");
        }
        Kind::Timestamp => {
            let ms: u64 = id.parse().unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert!(is_recent(ms), "{id}");
        }
        Kind::Random => {
            assert_eq!(id.len(), 21, "{id}");
            assert!(id.bytes().all(|byte| byte.is_ascii_alphanumeric()), "{id}");
        }
        Kind::TypeId => {
            // Without --prefix: the bare suffix, a recent UUIDv7.
            let typeid: idgen_client::TypeId =
                id.parse().unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert_eq!((id.len(), typeid.prefix().as_str()), (26, ""), "{id}");
            assert_eq!(typeid.uuid().get_version_num(), 7, "{id}");
        }
        Kind::Ksuid => {
            let ksuid: idgen_client::Ksuid =
                id.parse().unwrap_or_else(|error| panic!("{id:?}: {error}"));
            assert_eq!(id.len(), 27, "{id}");
            assert!(is_recent(ksuid.timestamp_ms() + 999), "{id}");
        }
        other => panic!("no check for the kind {other:?} yet: add one"),
    }
}

/// Strictly increasing in the kind's order: numeric for integers, bytewise for strings.
fn assert_increasing(kind: Kind, ids: &[&str]) {
    for pair in ids.windows(2) {
        let increasing = match kind {
            Kind::Snowflake | Kind::Timestamp | Kind::Counter => {
                pair[0].parse::<u64>().expect("integer") < pair[1].parse::<u64>().expect("integer")
            }
            _ => pair[0] < pair[1],
        };
        assert!(increasing, "{kind}: {} then {}", pair[0], pair[1]);
    }
}

fn assert_unique(ids: &[&str]) {
    let distinct: HashSet<&&str> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "duplicates among {} ids", ids.len());
}

#[test]
fn every_kind_prints_one_id_in_plain_format() {
    let server = TestServer::start();
    for kind in Kind::ALL {
        let run = idgen(&server.url, &[kind.name()]);
        run.success();
        let lines = run.lines();
        assert_eq!(lines.len(), 1, "{kind}: {:?}", run.stdout);
        check_id(kind, lines[0]);
    }
}

#[test]
fn every_kind_prints_the_server_json_shape() {
    let server = TestServer::start();
    for kind in Kind::ALL {
        let one = idgen(&server.url, &["--format", "json", kind.name()]);
        let IdResponse { id, .. } = serde_json::from_str(one.success())
            .unwrap_or_else(|error| panic!("{kind}: {error}: {:?}", one.stdout));
        check_id(kind, &id);

        // The format flag may also follow the command.
        let many = idgen(&server.url, &[kind.name(), "-n", "3", "--format", "json"]);
        let IdsResponse { ids, .. } = serde_json::from_str(many.success())
            .unwrap_or_else(|error| panic!("{kind}: {error}: {:?}", many.stdout));
        assert_eq!(ids.len(), 3, "{kind}");
        ids.iter().for_each(|id| check_id(kind, id));
    }
}

#[test]
fn batches_have_the_requested_count_without_duplicates() {
    let server = TestServer::start();
    for kind in Kind::ALL {
        let run = idgen(&server.url, &[kind.name(), "-n", "500"]);
        run.success();
        let ids = run.lines();
        assert_eq!(ids.len(), 500, "{kind}");
        assert_unique(&ids);
        ids.iter().for_each(|id| check_id(kind, id));
        if kind.sortable() {
            assert_increasing(kind, &ids);
        }
    }
}

#[test]
fn counts_above_the_chunk_size_arrive_complete() {
    let server = TestServer::start();
    // Default chunk of 10 000: three requests.
    let run = idgen(&server.url, &["uuid", "-n", "25000"]);
    run.success();
    let ids = run.lines();
    assert_eq!(ids.len(), 25_000);
    assert_unique(&ids);

    // Small chunks keep the order across requests.
    let run = idgen(&server.url, &["snowflake", "-n", "95", "--chunk-size", "10"]);
    run.success();
    let ids = run.lines();
    assert_eq!(ids.len(), 95);
    assert_unique(&ids);
    assert_increasing(Kind::Snowflake, &ids);

    // Streamed JSON is still one valid document.
    let run = idgen(&server.url, &["--format", "json", "ulid", "-n", "25", "--chunk-size", "10"]);
    let IdsResponse { ids, .. } = serde_json::from_str(run.success()).expect("one JSON document");
    assert_eq!(ids.len(), 25);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_unique(&ids);
    assert_increasing(Kind::Ulid, &ids);
}

#[test]
fn counter_name_selects_a_sequence() {
    let server = TestServer::start();
    let first = idgen(&server.url, &["counter", "--name", "orders", "-n", "3"]);
    first.success();
    let second = idgen(&server.url, &["counter", "--name", "orders"]);
    second.success();
    let other = idgen(&server.url, &["counter", "--name", "invoices", "-n", "2"]);
    other.success();

    let orders: Vec<&str> = first.lines().into_iter().chain(second.lines()).collect();
    assert_eq!(orders.len(), 4);
    assert_increasing(Kind::Counter, &orders);
    let invoices = other.lines();
    assert_eq!(invoices.len(), 2);
    assert_increasing(Kind::Counter, &invoices);
}

#[test]
fn random_takes_length_and_alphabet() {
    let server = TestServer::start();
    let run = idgen(&server.url, &["random", "--length", "32", "--alphabet", "hex", "-n", "20"]);
    run.success();
    let ids = run.lines();
    assert_eq!(ids.len(), 20);
    for id in ids {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')), "{id}");
    }
}

#[test]
fn random_takes_a_custom_alphabet_checked_before_any_request() {
    let server = TestServer::start();
    // Characters the query string must escape go through as themselves.
    let run = idgen(&server.url, &["random", "--length", "40", "--chars", "&+ %=#", "-n", "50"]);
    run.success();
    let ids = run.lines();
    assert_eq!(ids.len(), 50);
    for id in &ids {
        assert!(id.len() == 40 && id.chars().all(|c| "&+ %=#".contains(c)), "{id:?}");
    }
    assert!(ids.iter().any(|id| id.contains('+')) && ids.iter().any(|id| id.contains(' ')));
    // Refused by the CLI as the server would refuse it, without a request: the server here
    // is not even reachable.
    let run = idgen(&dead_url(), &["random", "--chars", "aa"]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("has a character twice"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[test]
fn bounds_bracket_an_id_it_printed_and_a_kind_without_time_order_is_refused() {
    let server = TestServer::start();
    let id: u64 = idgen(&server.url, &["snowflake"]).success().trim().parse().expect("a number");
    let decoded = idgen(&server.url, &["--format", "json", "decode", "snowflake", &id.to_string()]);
    let decoded: serde_json::Value = serde_json::from_str(decoded.success()).expect("json");
    let ms = decoded["timestamp_ms"].as_u64().expect("timestamp_ms");
    let run = idgen(&server.url, &["bounds", "snowflake", "--time", &ms.to_string()]);
    let text = run.success();
    let field = |key: &str| -> u64 {
        let prefix = format!("{key}: ");
        let line = text.lines().find_map(|line| line.strip_prefix(&prefix));
        line.unwrap_or_else(|| panic!("no {key} in {text:?}")).parse().expect("a number")
    };
    assert!(field("min") <= id && id <= field("max"), "{id} not in {text}");
    assert_eq!(field("timestamp_ms"), ms);
    // The same millisecond as RFC 3339, and as JSON.
    let time = decoded["time"].as_str().expect("time");
    let run = idgen(&server.url, &["--format", "json", "bounds", "snowflake", "--time", time]);
    let json: serde_json::Value = serde_json::from_str(run.success()).expect("json");
    assert_eq!(json["min"], field("min").to_string());
    let run = idgen(&server.url, &["bounds", "typeid", "--time", "0", "--prefix", "user"]);
    // Time 0: the ten characters of the time are zeros, the version 7 follows.
    assert!(run.success().contains("min: user_0000000000e"), "{}", run.stdout);
    let line = idgen(&server.url, &["bounds", "uuid", "--time", "0"]).failure(2).to_owned();
    assert!(line.contains("(400 not_time_ordered)"), "{line}");
}

#[test]
fn decodes_a_snowflake_it_printed() {
    let server = TestServer::start();
    let issued = idgen(&server.url, &["snowflake"]);
    let snowflake = issued.success().trim().to_owned();

    let plain = idgen(&server.url, &["decode", "snowflake", &snowflake]);
    let text = plain.success();
    let field = |key: &str| -> String {
        let prefix = format!("{key}: ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{key}:` line in {text:?}"))
            .to_owned()
    };
    assert_eq!(field("id"), snowflake);
    assert!(is_recent(field("timestamp_ms").parse().expect("integer ms")), "{text}");
    assert_eq!(field("worker_id"), "0", "embedded mode is worker 0");
    field("sequence").parse::<u16>().expect("integer sequence");
    assert!(field("time").ends_with('Z'), "{text}");

    let json = idgen(&server.url, &["decode", "snowflake", &snowflake, "--format", "json"]);
    let decoded: DecodeResponse = serde_json::from_str(json.success()).expect("decode JSON");
    assert_eq!(decoded.id, snowflake);
    assert_eq!(decoded.worker_id, Some(0));
    assert!(decoded.sequence.is_some());
    assert!(decoded.timestamp_ms.is_some_and(is_recent));
}

#[test]
fn kinds_lists_every_kind() {
    let server = TestServer::start();
    let plain = idgen(&server.url, &["kinds"]);
    let lines = {
        plain.success();
        plain.lines()
    };
    let names: Vec<&str> = Kind::ALL.iter().map(|kind| kind.name()).collect();
    assert_eq!(lines.len(), names.len(), "{:?}", plain.stdout);
    for (line, name) in lines.iter().zip(&names) {
        assert!(line.starts_with(&format!("{name}: ")), "{line:?}");
    }

    let json = idgen(&server.url, &["--format", "json", "kinds"]);
    let KindsResponse { kinds, .. } = serde_json::from_str(json.success()).expect("kinds JSON");
    let listed: Vec<&str> = kinds.iter().map(|kind| kind.name.as_str()).collect();
    assert_eq!(listed, names);
}

#[test]
fn a_refused_request_is_one_line_on_stderr_and_exit_2() {
    let server = TestServer::start();
    let line = idgen(&server.url, &["random", "--length", "5000"]).failure(2).to_owned();
    assert!(line.starts_with("idgen: server error (400 invalid_length): "), "{line}");

    let line =
        idgen(&server.url, &["counter", "--name", "no spaces allowed"]).failure(2).to_owned();
    assert!(line.contains("(400 invalid_counter_name)"), "{line}");

    let line = idgen(&server.url, &["decode", "snowflake", "not-a-number"]).failure(2).to_owned();
    assert!(line.contains("400 "), "{line}");

    // Too many per request: the server's limit, reported as the server words it.
    let line =
        idgen(&server.url, &["uuid", "-n", "20000", "--chunk-size", "20000"]).failure(2).to_owned();
    assert!(line.contains("(400 invalid_count)"), "{line}");
}

#[test]
fn an_unreachable_server_is_one_line_on_stderr_and_exit_1() {
    let url = dead_url();
    let run = idgen(&url, &["uuid", "-n", "5"]);
    assert_eq!(run.failure(1), format!("idgen: cannot reach {url}: connection refused"));
}

#[test]
fn bad_usage_exits_2_without_a_server() {
    let url = dead_url();
    for args in [&["uuid", "-n", "0"][..], &["decode", "nope", "1"], &["frobnicate"]] {
        let run = idgen(&url, args);
        assert_eq!(run.status, Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
    }
    let line = idgen("localhost:8080", &["uuid"]).failure(2).to_owned();
    assert!(line.contains("invalid server url"), "{line}");
}

#[test]
fn idgen_url_is_the_default_server_and_the_flag_wins() {
    let server = TestServer::start();
    let mut command = idgen_command();
    command.env("IDGEN_URL", &server.url).arg("uuid7");
    let run = run_command(command);
    run.success();
    check_id(Kind::Uuid7, run.lines()[0]);

    let mut command = idgen_command();
    command.env("IDGEN_URL", dead_url()).args(["--server", &server.url, "ulid"]);
    let run = run_command(command);
    run.success();
    check_id(Kind::Ulid, run.lines()[0]);

    let dead = dead_url();
    let mut command = idgen_command();
    command.env("IDGEN_URL", &dead).arg("uuid");
    let run = run_command(command);
    assert_eq!(run.failure(1), format!("idgen: cannot reach {dead}: connection refused"));
}

#[test]
fn a_server_list_goes_past_a_server_that_is_down() {
    let server = TestServer::start();
    let mut command = idgen_command();
    command.env("IDGEN_URL", format!("{}, {}", dead_url(), server.url)).args(["uuid7", "-n", "3"]);
    let run = run_command(command);
    run.success();
    run.lines().iter().for_each(|id| check_id(Kind::Uuid7, id));

    let (first, second) = (dead_url(), dead_url());
    let run = idgen(&format!("{first},{second}"), &["uuid"]);
    let line = run.failure(1);
    assert!(line.starts_with("idgen: cannot reach http://127.0.0.1:"), "{line}");
    assert!(line.ends_with(": connection refused"), "{line}");
}

/// Runs `idgen args` and calls `meanwhile` once it has printed its first line. The rest of its
/// output is not read until `meanwhile` returns, so idgen, once the pipe is full, is stopped in
/// the middle of its run meanwhile. Waits at most `deadline` for it to end.
fn run_pausing(args: &[&str], meanwhile: impl FnOnce(), deadline: Duration) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgen"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(key);
        }
    }
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start idgen");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (first_line, first_line_seen) = mpsc::channel();
    let (resume, resumed) = mpsc::channel::<()>();
    let out = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut text = String::new();
        reader.read_line(&mut text).expect("stdout is UTF-8");
        let _ = first_line.send(());
        let _ = resumed.recv();
        reader.read_to_string(&mut text).expect("stdout is UTF-8");
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).expect("stderr is UTF-8");
        text
    });
    // Without a first line (idgen failed), the run's own result says why.
    let _ = first_line_seen.recv_timeout(deadline);
    meanwhile();
    drop(resume);
    let until = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for idgen") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("idgen took more than {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

#[test]
fn a_server_killed_mid_run_costs_no_id_and_no_error() {
    let mut servers =
        [1, 2, 3].map(|worker| TestServer::start_with_flags(&["--worker-id", &worker.to_string()]));
    let list = servers.iter().map(|server| server.url.as_str()).collect::<Vec<_>>().join(",");
    let args = ["--server", &list, "snowflake", "-n", "20000", "--chunk-size", "1000"];
    // The first server serves the start of the run, then dies with idgen still running.
    let run = run_pausing(&args, || servers[0].kill(), Duration::from_secs(20));
    run.success();
    let ids = run.lines();
    assert_eq!(ids.len(), 20_000);
    assert_unique(&ids);
    let mut per_worker = [0usize; 4];
    for id in &ids {
        let parts = idgen_core::snowflake::decode(id, idgen_core::snowflake::DEFAULT_EPOCH_MS)
            .expect("a snowflake");
        per_worker[usize::from(parts.worker_id)] += 1;
    }
    // A full pipe holds a few chunks: the first server cannot have served them all.
    assert!(per_worker[1] >= 1000 && per_worker[1] < 10_000, "{per_worker:?}");
    assert_eq!(per_worker[1] + per_worker[2], 20_000, "the second took over: {per_worker:?}");
}

#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    let server = TestServer::start();
    let scratch = tempfile::tempdir().expect("temp dir");
    let status_file = scratch.path().join("status");
    let stderr_file = scratch.path().join("stderr");
    // sh reports the status of the last command of a pipeline (head); capture idgen's own
    // status and stderr in files.
    let script =
        r#"{ "$IDGEN" --server "$URL" uuid -n 100000 2>"$ERR"; echo $? >"$STATUS"; } | head -1"#;
    let mut command = assert_cmd::Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .env_remove("IDGEN_URL")
        .env("IDGEN", env!("CARGO_BIN_EXE_idgen"))
        .env("URL", &server.url)
        .env("ERR", &stderr_file)
        .env("STATUS", &status_file)
        .timeout(RUN_DEADLINE);
    let run = run_command(command);
    assert_eq!(run.status, Some(0), "sh: {}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), 1, "head -1 prints one line");
    check_id(Kind::Uuid, lines[0]);
    let status = std::fs::read_to_string(&status_file).expect("idgen's status was written");
    assert_eq!(status.trim(), "0", "idgen's exit status");
    let stderr = std::fs::read_to_string(&stderr_file).expect("idgen's stderr file");
    assert_eq!(stderr, "", "idgen's stderr");
}

/// The one key of [`keyed_server`], allowed uuid7 only; odd enough that finding it in any
/// output cannot be chance.
const SECRET: &str = "idg_cli-test-Zq7LwP3xV9sK2mN8bR4t";

const KEY_FLAG_WARNING: &str = "idgen: warning: --api-key shows the secret to every local user \
                                in the process list; use IDGEN_API_KEY or --api-key-file";

fn keyed_server() -> TestServer {
    TestServer::start_with_keys(&[(SECRET, &["uuid7"])])
}

/// Environment variables of one run.
type Vars<'a> = &'a [(&'a str, &'a OsStr)];

/// `idgen --server <url> <args>` with these environment variables.
fn idgen_with_env(url: &str, vars: Vars<'_>, args: &[&str]) -> Run {
    let mut command = idgen_command();
    command.envs(vars.iter().copied()).arg("--server").arg(url).args(args);
    let run = run_command(command);
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "the key was printed: stdout {:?}, stderr {:?}",
        run.stdout,
        run.stderr
    );
    run
}

/// A file holding `content`, kept as long as the returned directory.
fn file_with(content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("file");
    std::fs::write(&path, content).expect("write the file");
    (dir, path)
}

#[test]
fn a_keyed_server_refuses_a_run_without_its_key_with_the_401_message() {
    let server = keyed_server();
    let run = idgen_with_env(&server.url, &[], &["uuid7"]);
    let line = run.failure(2);
    assert!(line.starts_with("idgen: server error (401 unauthorized): "), "{line}");
    assert!(line.ends_with(" (give one with IDGEN_API_KEY or --api-key-file)"), "{line}");

    let wrong = OsStr::new("idg_not-a-known-key");
    let run = idgen_with_env(&server.url, &[("IDGEN_API_KEY", wrong)], &["uuid7"]);
    let line = run.failure(2);
    assert!(line.starts_with("idgen: server error (401 unauthorized): "), "{line}");
    assert!(!line.contains("give one with"), "a key was given: {line}");
}

#[test]
fn the_key_from_the_environment_or_a_file_opens_a_keyed_server_quietly() {
    let server = keyed_server();
    let secret = OsStr::new(SECRET);
    let run = idgen_with_env(&server.url, &[("IDGEN_API_KEY", secret)], &["uuid7", "-n", "2"]);
    run.success();
    assert_eq!(run.lines().len(), 2);
    run.lines().iter().for_each(|id| check_id(Kind::Uuid7, id));

    // As a secret manager mounts it: with a trailing newline.
    let (_dir, key_file) = file_with(&format!("{SECRET}\n"));
    let run = idgen_with_env(&server.url, &[], &["uuid7", "--api-key-file", path(&key_file)]);
    check_id(Kind::Uuid7, run.success().trim());
    let run =
        idgen_with_env(&server.url, &[("IDGEN_API_KEY_FILE", key_file.as_os_str())], &["uuid7"]);
    check_id(Kind::Uuid7, run.success().trim());
}

#[test]
fn a_key_given_as_the_flag_works_and_warns_once_on_stderr() {
    let server = keyed_server();
    for args in [&["--api-key", SECRET, "uuid7"][..], &["uuid7", "--api-key", SECRET][..]] {
        let run = idgen_with_env(&server.url, &[], args);
        assert_eq!(run.status, Some(0), "{args:?}: {}", run.stderr);
        check_id(Kind::Uuid7, run.stdout.trim());
        assert_eq!(run.stderr, format!("{KEY_FLAG_WARNING}\n"), "{args:?}");
    }
}

#[test]
fn a_kind_outside_the_key_scopes_is_refused_with_the_403_message() {
    let server = keyed_server();
    let secret = OsStr::new(SECRET);
    for args in [&["ulid"][..], &["decode", "snowflake", "1"][..]] {
        let run = idgen_with_env(&server.url, &[("IDGEN_API_KEY", secret)], args);
        let line = run.failure(2);
        assert!(line.starts_with("idgen: server error (403 forbidden): "), "{args:?}: {line}");
    }
}

#[test]
fn the_key_is_given_one_way_only() {
    let url = dead_url();
    let (_dir, key_file) = file_with(SECRET);
    let secret = OsStr::new(SECRET);
    let cases: [(Vars<'_>, &[&str], &str); 3] = [
        (
            &[],
            &["--api-key", SECRET, "--api-key-file", path(&key_file), "uuid7"],
            "by --api-key and by --api-key-file",
        ),
        (
            &[("IDGEN_API_KEY", secret)],
            &["--api-key-file", path(&key_file), "uuid7"],
            "by IDGEN_API_KEY and by --api-key-file",
        ),
        (
            &[("IDGEN_API_KEY", secret), ("IDGEN_API_KEY_FILE", key_file.as_os_str())],
            &["uuid7"],
            "by IDGEN_API_KEY and by IDGEN_API_KEY_FILE",
        ),
    ];
    for (vars, args, sources) in cases {
        let run = idgen_with_env(&url, vars, args);
        assert_eq!(run.status, Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.starts_with("error: the API key is given twice, "), "{}", run.stderr);
        assert!(run.stderr.contains(sources), "{sources}: {}", run.stderr);
    }
}

#[test]
fn an_unusable_key_file_or_ca_file_is_one_line_and_exit_2() {
    let url = dead_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing");
    let (_blank_dir, blank) = file_with(" \n");
    let (_text_dir, text) = file_with("not a certificate\n");
    for (args, expected) in [
        (
            ["--api-key-file", path(&missing)],
            format!("idgen: cannot read the API key file `{}`: ", missing.display()),
        ),
        (
            ["--api-key-file", path(&blank)],
            format!("idgen: the API key file `{}` is empty", blank.display()),
        ),
        (
            ["--ca-file", path(&missing)],
            format!(
                "idgen: cannot use CA certificates from `{}`: cannot read it: no such file or \
                 directory",
                missing.display()
            ),
        ),
        (
            ["--ca-file", path(&text)],
            format!(
                "idgen: cannot use CA certificates from `{}`: no PEM certificate in it",
                text.display()
            ),
        ),
    ] {
        let run = idgen_with_env(&url, &[], &[&args[..], &["uuid7"][..]].concat());
        let line = run.failure(2);
        assert!(line.starts_with(&expected), "{args:?}: {line}");
    }
    let run = idgen_with_env(&url, &[("IDGEN_API_KEY", OsStr::new(""))], &["uuid7"]);
    assert_eq!(run.failure(2), "idgen: invalid API key: it is empty");
}

#[test]
fn help_never_shows_the_key() {
    let secret = OsStr::new(SECRET);
    for args in [&["--help"][..], &["uuid7", "--help"][..]] {
        let run = idgen_with_env(&dead_url(), &[("IDGEN_API_KEY", secret)], args);
        // `idgen_with_env` checked that the key is not in it; the variable's name is.
        let help = run.success();
        assert!(help.contains("IDGEN_API_KEY") && !help.contains("IDGEN_API_KEY="), "{help}");
        assert!(help.contains("--api-key-file <PATH>") && help.contains("--ca-file <PATH>"));
    }
}

/// A path as an argument (the temp dirs' paths are UTF-8).
fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

#[test]
fn the_cli_reaches_an_https_server_through_its_ca_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_tls(&[(SECRET, &["uuid7"])], dir.path());
    let ca = dir.path().join("ca.pem");
    let secret = OsStr::new(SECRET);
    let run = idgen_with_env(
        &server.url,
        &[("IDGEN_API_KEY", secret)],
        &["uuid7", "-n", "2", "--ca-file", path(&ca)],
    );
    run.lines().iter().for_each(|id| check_id(Kind::Uuid7, id));
    assert_eq!(run.success().lines().count(), 2);
    let run = idgen_with_env(
        &server.url,
        &[("IDGEN_API_KEY", secret), ("IDGEN_CA_FILE", ca.as_os_str())],
        &["uuid7"],
    );
    check_id(Kind::Uuid7, run.success().trim());
    let run = idgen_with_env(&server.url, &[("IDGEN_API_KEY", secret)], &["uuid7"]);
    assert_ne!(run.status, Some(0), "without the CA the server is not trusted");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// `idgen <args>` started now; `meanwhile` runs after `after`, then the run is awaited.
fn run_then(args: &[&str], after: Duration, meanwhile: impl FnOnce()) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgen"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(key);
        }
    }
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("start idgen");
    std::thread::sleep(after);
    meanwhile();
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait for idgen");
    Run {
        status: status.code(),
        stdout: String::from_utf8(stdout).expect("UTF-8"),
        stderr: String::from_utf8(stderr).expect("UTF-8"),
    }
}

#[test]
fn json_output_is_a_whole_document_or_nothing() {
    let mut server = TestServer::start();
    let url = server.url.clone();
    let args = ["--server", &url, "--format", "json", "uuid7", "-n", "2000000"];
    let args = [&args[..], &["--chunk-size", "1000"]].concat();
    // The server dies while the run is still fetching: nothing reaches stdout.
    let started = Instant::now();
    let run = run_then(&args, Duration::from_millis(300), || server.kill());
    assert!(started.elapsed() < RUN_DEADLINE, "the run took {:?}", started.elapsed());
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    assert_eq!(run.stdout, "", "a failed JSON run prints nothing on stdout");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", run.stderr);
    let error: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON error");
    assert_eq!(error["error"]["code"], "unreachable", "{error}");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("cannot reach")));

    // And a run that succeeds prints one complete document.
    let server = TestServer::start();
    let run =
        idgen(&server.url, &["--format", "json", "ulid", "-n", "2500", "--chunk-size", "1000"]);
    let document: IdsResponse = serde_json::from_str(run.success()).expect("one JSON document");
    assert_eq!(document.ids.len(), 2500);
}

#[test]
fn plain_output_says_how_many_ids_were_printed_when_the_server_dies() {
    let mut server = TestServer::start();
    let url = server.url.clone();
    let args = ["--server", &url, "uuid7", "-n", "2000000", "--chunk-size", "1000"];
    let run = run_pausing(&args, || server.kill(), Duration::from_secs(20));
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    let printed = run.lines().len();
    assert!(printed >= 1000, "the first chunk was printed before the kill: {printed}");
    run.lines().iter().for_each(|id| check_id(Kind::Uuid7, id));
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", run.stderr);
    assert!(lines[0].starts_with("idgen: cannot reach"), "{}", lines[0]);
    assert!(
        lines[0].ends_with(&format!(" ({printed} IDs were printed before it)")),
        "{}",
        lines[0]
    );
}

/// A keys file with one key allowed `daily_quota` IDs a day.
fn quota_keys(dir: &std::path::Path, secret: &str, daily_quota: u64) -> std::path::PathBuf {
    let sha256 = common::sha256_hex(secret);
    let path = dir.join("keys.toml");
    let entry =
        format!("[[key]]\nname = \"q\"\nsha256 = \"{sha256}\"\ndaily_quota = {daily_quota}\n");
    std::fs::write(&path, entry).expect("write the keys file");
    path
}

#[test]
fn still_refused_after_the_retries_exits_75() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = quota_keys(dir.path(), SECRET, 2);
    let server = TestServer::start_with(&[], &[("IDGEN_API_KEYS_FILE", &keys)]);
    let secret = OsStr::new(SECRET);
    let run = idgen_with_env(&server.url, &[("IDGEN_API_KEY", secret)], &["uuid7", "-n", "2"]);
    assert_eq!(run.success().lines().count(), 2);
    // The quota is spent until midnight UTC: its Retry-After lies past the retry deadline, so
    // the run gives up at once instead of waiting.
    let started = Instant::now();
    let run = idgen_with_env(&server.url, &[("IDGEN_API_KEY", secret)], &["uuid7"]);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let line = run.failure(75);
    assert!(line.contains("daily quota of 2"), "{line}");
    let run =
        idgen_with_env(&server.url, &[("IDGEN_API_KEY", secret)], &["--format", "json", "uuid7"]);
    assert_eq!(run.status, Some(75), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let error: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("a JSON error");
    assert_eq!(error["error"]["code"], "rate_limited", "{error}");
}
