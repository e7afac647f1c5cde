//! The `idgen` process on long runs: the progress bar on a terminal (a real pty, through
//! `script`) and never on a pipe, chunks sized by what the server says, several in flight
//! with the output still in the kind's order, a node killed under the default settings, and
//! the shell completions.

// Each test binary uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, idgen_command as idgen};

/// `idgen --server URL ARGS` with stdout and stderr piped: (status, stdout, stderr).
fn piped(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = idgen().arg("--server").arg(url).args(args).output().expect("run idgen");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8");
    (output.status.code(), text(output.stdout), text(output.stderr))
}

/// `idgen ARGS > /dev/null` with stderr on a pseudo-terminal (util-linux `script`): what the
/// terminal showed, and the status.
fn on_a_terminal(url: &str, args: &str) -> (Option<i32>, String) {
    let line = format!("'{}' --server '{url}' {args} > /dev/null", env!("CARGO_BIN_EXE_idgen"));
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env_remove("IDGEN_URL")
        .env("TERM", "xterm")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .output()
        .expect("run script (util-linux)");
    (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn a_long_run_shows_a_progress_bar_on_a_terminal_and_none_on_a_pipe() {
    let server = TestServer::start();
    let args = "uuid7 -n 300000 --chunk-size 1000 --parallel 2";
    let (status, screen) = on_a_terminal(&server.url, args);
    assert_eq!(status, Some(0), "{screen}");
    assert!(screen.contains("/300,000 IDs"), "no progress bar on the terminal: {screen:?}");
    assert!(screen.contains("left"), "{screen:?}");

    // The same run piped: not one byte on stderr.
    let args: Vec<&str> = args.split(' ').collect();
    let (status, stdout, stderr) = piped(&server.url, &args);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 300_000);
    assert_eq!(stderr, "");

    // A short run on a terminal: done before a bar would help, so none.
    let (status, screen) = on_a_terminal(&server.url, "uuid7 -n 5");
    assert_eq!(status, Some(0), "{screen}");
    assert!(!screen.contains("IDs"), "{screen:?}");
}

/// The server's count of 200 answers on `/v1/ids/{kind}`, from `/metrics` (HTTP/1.0 by hand:
/// the test needs no HTTP client of its own).
fn id_requests_served(server: &TestServer) -> u64 {
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").expect("send");
    let mut metrics = String::new();
    stream.read_to_string(&mut metrics).expect("the answer");
    assert!(
        metrics.starts_with("HTTP/1.0 200") || metrics.starts_with("HTTP/1.1 200"),
        "{metrics}"
    );
    let series = "idgen_http_requests_total{route=\"/v1/ids/{kind}\",status=\"200\"} ";
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0, |value| value.trim().parse().expect("a count"))
}

#[test]
fn chunks_are_the_size_the_server_takes_and_stay_in_order_in_flight() {
    let server = TestServer::start_with_flags(&["--max-batch", "50"]);
    // 1,234 IDs from a server that takes 50 per request: 25 chunks, 4 at a time by default.
    let (status, stdout, stderr) = piped(&server.url, &["counter", "--name", "c", "-n", "1234"]);
    assert_eq!(status, Some(0), "{stderr}");
    let values: Vec<u64> = stdout.lines().map(|line| line.parse().expect("a number")).collect();
    assert_eq!(values, (1..=1234).collect::<Vec<u64>>(), "every value once, in order");
    let deadline = Instant::now() + Duration::from_secs(10);
    while id_requests_served(&server) < 25 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(id_requests_served(&server), 25, "ceil(1234 / 50) requests, no more");

    // Sixteen chunks in flight: each group comes back in any order, is printed sorted.
    let (status, stdout, stderr) =
        piped(&server.url, &["snowflake", "-n", "20000", "--chunk-size", "50", "--parallel", "16"]);
    assert_eq!(status, Some(0), "{stderr}");
    let ids: Vec<u64> = stdout.lines().map(|line| line.parse().expect("a number")).collect();
    assert_eq!(ids.len(), 20_000);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing");

    // An explicit chunk size above the server's limit is the server's 400, not a retry loop.
    let (status, _, stderr) = piped(&server.url, &["uuid", "-n", "100", "--chunk-size", "100"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("(400 invalid_count)"), "{stderr}");
}

#[test]
fn two_hundred_thousand_snowflakes_with_one_of_three_nodes_killed_mid_run() {
    let mut servers =
        [1, 2, 3].map(|worker| TestServer::start_with_flags(&["--worker-id", &worker.to_string()]));
    let list = servers.iter().map(|server| server.url.as_str()).collect::<Vec<_>>().join(",");
    let mut child = Command::new(env!("CARGO_BIN_EXE_idgen"))
        .args(["--server", &list, "snowflake", "-n", "200000"])
        .env_remove("IDGEN_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn idgen");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the first ID");
    // idgen now blocks on the full pipe inside its first group; the next group must find the
    // first node dead.
    servers[0].kill();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("the other IDs");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    let status = child.wait().expect("idgen exits");
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stderr, "", "no error reaches the user");
    let ids: Vec<&str> = std::iter::once(first.trim_end()).chain(rest.lines()).collect();
    assert_eq!(ids.len(), 200_000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 200_000, "no ID twice");
    let mut per_worker = [0usize; 4];
    for id in &ids {
        let parts = idgen_core::snowflake::decode(id, idgen_core::snowflake::DEFAULT_EPOCH_MS)
            .expect("a snowflake");
        per_worker[usize::from(parts.worker_id)] += 1;
    }
    assert!(per_worker[1] > 0 && per_worker[1] < 200_000, "{per_worker:?}");
    assert_eq!(per_worker[1] + per_worker[2], 200_000, "the second took over: {per_worker:?}");
}

#[test]
fn typeids_take_their_prefix_from_the_catalogue_option() {
    let server = TestServer::start();
    let (status, stdout, stderr) =
        piped(&server.url, &["typeid", "--prefix", "user", "-n", "25000"]);
    assert_eq!(status, Some(0), "{stderr}");
    let ids: Vec<&str> = stdout.lines().collect();
    assert_eq!(ids.len(), 25_000);
    assert!(ids.iter().all(|id| id.starts_with("user_") && id.len() == 31), "{:?}", &ids[..2]);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "sorted across parallel chunks");
    let (status, _, stderr) = piped(&server.url, &["typeid", "--prefix", "User"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("(400 invalid_prefix)"), "{stderr}");
}

#[test]
fn completions_for_every_shell_know_the_kinds() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = idgen().args(["completions", shell]).output().expect("run idgen");
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).expect("UTF-8");
        // Option names without dashes: fish writes `-l server`.
        for name in ["uuid7", "snowflake", "counter", "decode", "server", "parallel", "hex"] {
            assert!(script.contains(name), "{shell} completions lack {name}");
        }
    }
    // bash really loads it and registers the completion function.
    let line = format!(
        "source <('{}' completions bash) && complete -p idgen",
        env!("CARGO_BIN_EXE_idgen")
    );
    let output = Command::new("bash").args(["-c", &line]).output().expect("run bash");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && shown.contains("idgen"), "{shown} {output:?}");
    // A shell it does not know is a usage error listing those it does.
    let output = idgen().args(["completions", "tcsh"]).output().expect("run idgen");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bash"), "{output:?}");
}
