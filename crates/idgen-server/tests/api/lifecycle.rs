//! Start-up and shutdown: the start-up line, the data dir, SIGTERM/SIGINT, in-flight requests.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::helpers::{EXIT_DEADLINE, Options, numeric, parse_startup_line, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn prints_one_startup_line_with_the_real_address_and_creates_the_data_dir() {
    let root = tempfile::tempdir().expect("temp dir");
    let data_dir = root.path().join("nested").join("state");
    let app = spawn_app(Options::new().data_dir(&data_dir));
    let (address, worker_id) = parse_startup_line(&app.startup_line);
    assert_eq!(address, format!("http://127.0.0.1:{}", app.port));
    assert_eq!(worker_id, 0);
    assert!(data_dir.is_dir(), "the missing data dir {data_dir:?} was not created");
    // It really serves on that address.
    assert_eq!(app.get("/healthz").await.status(), reqwest::StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_0_and_prints_nothing_more_on_stdout() {
    let mut app = spawn_app(Options::new());
    // A client that has used the server holds keep-alive connections while it stops.
    app.ids("counter", 10, &[]).await;
    app.ids("snowflake", 10, &[]).await;
    let stopping = std::time::Instant::now();
    app.signal("TERM");
    let status = app.wait_exit(EXIT_DEADLINE);
    assert_eq!(status.code(), Some(0), "SIGTERM exit status; stderr:\n{}", app.stderr());
    // The idle keep-alive connections close at once: they do not hold the shutdown for their
    // keep-alive (5 s).
    let took = stopping.elapsed();
    assert!(
        took < std::time::Duration::from_secs(3),
        "SIGTERM took {took:?} with idle connections"
    );
    assert_eq!(app.stdout_lines(), [app.startup_line.clone()], "stdout holds one line only");
    assert!(!app.stderr().contains("panicked"), "stderr:\n{}", app.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_exits_0() {
    let mut app = spawn_app(Options::new());
    app.ids("uuid7", 10, &[]).await;
    app.signal("INT");
    let status = app.wait_exit(EXIT_DEADLINE);
    assert_eq!(status.code(), Some(0), "SIGINT exit status; stderr:\n{}", app.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_and_snowflakes_continue_above_after_sigterm_and_restart() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut last_counter = 0;
    let mut last_snowflake = 0;
    for round in 0..3 {
        let mut app = spawn_app(Options::new().data_dir(data_dir.path()));
        let counters = numeric(&app.ids("counter", 1_234, &[("name", "graceful")]).await);
        let snowflakes = numeric(&app.ids("snowflake", 1_000, &[]).await);
        assert!(counters[0] > last_counter, "round {round}: {} after {last_counter}", counters[0]);
        assert!(snowflakes[0] > last_snowflake, "round {round}: snowflake went back");
        if round == 0 {
            assert_eq!(counters[0], 1);
        }
        last_counter = *counters.last().expect("counters");
        last_snowflake = *snowflakes.last().expect("snowflakes");
        app.signal("TERM");
        assert_eq!(app.wait_exit(EXIT_DEADLINE).code(), Some(0), "round {round}");
    }
}

/// Reads one response head (status line and headers) from a raw connection.
fn read_head(stream: &mut TcpStream) -> (u16, Vec<(String, String)>) {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).expect("read a response head");
        assert!(read == 1, "connection closed inside a response head: {buffer:?}");
        buffer.push(byte[0]);
    }
    let head = String::from_utf8(buffer).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    (status, headers)
}

/// A minimal HTTP/1.1 response reader for one final response on a raw connection: status,
/// headers, body (Content-Length, chunked, or up to EOF).
fn read_response(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, String) {
    let mut byte = [0u8; 1];
    let (status, headers) = read_head(stream);
    let find = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, v)| v.clone());
    let body = if let Some(length) = find("content-length") {
        let mut body = vec![0u8; length.parse().expect("content-length")];
        stream.read_exact(&mut body).expect("read the body");
        body
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size_line = Vec::new();
            while !size_line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).expect("read a chunk size");
                size_line.push(byte[0]);
            }
            let size_text = String::from_utf8_lossy(&size_line);
            let size = usize::from_str_radix(size_text.trim().split(';').next().unwrap_or(""), 16)
                .expect("hex chunk size");
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).expect("read a chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        body
    } else {
        let mut body = Vec::new();
        stream.read_to_end(&mut body).expect("read the body to EOF");
        body
    };
    (status, headers, String::from_utf8(body).expect("UTF-8 body"))
}

/// Deterministic in-flight request: the request head carries `Expect: 100-continue`, so the
/// server's `100 Continue` proves it has read the head and is waiting for the body. Then the
/// server gets SIGTERM; once it has stopped accepting new connections the body is sent. The
/// request must still be answered in full, and then the server exits 0.
#[test]
fn sigterm_finishes_an_in_flight_request() {
    let mut app = spawn_app(Options::new());
    let address = format!("127.0.0.1:{}", app.port);
    let mut stream = TcpStream::connect(&address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    stream.set_write_timeout(Some(Duration::from_secs(20))).expect("write timeout");

    let body = br#"{"name":"inflight","count":1000}"#;
    let head = format!(
        "POST /v1/ids/counter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send the request head");
    let (status, _) = read_head(&mut stream);
    assert_eq!(status, 100, "the server should ask for the body with 100 Continue");

    app.signal("TERM");
    // Stopping to accept is part of the contract and tells us the signal has been handled.
    let deadline = Instant::now() + EXIT_DEADLINE;
    loop {
        match TcpStream::connect(&address) {
            Err(_) => break,
            Ok(probe) => {
                let _ = probe.shutdown(Shutdown::Both);
                assert!(
                    Instant::now() < deadline,
                    "the server still accepts connections {EXIT_DEADLINE:?} after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    if let Err(error) = stream.write_all(body) {
        panic!("send the body after SIGTERM: {error}\nserver stderr:\n{}", app.stderr());
    }
    let (status, headers, text) = read_response(&mut stream);
    assert_eq!(status, 200, "the in-flight request after SIGTERM: {text}");
    assert!(
        headers.iter().any(|(name, value)| name == "cache-control" && value == "no-store"),
        "{headers:?}"
    );
    let body: idgen_core::wire::IdsResponse = serde_json::from_str(&text).expect("ids body");
    let values = numeric(&body.ids);
    assert_eq!(values, (1..=1000).collect::<Vec<u64>>());
    drop(stream);

    let status = app.wait_exit(EXIT_DEADLINE);
    assert_eq!(status.code(), Some(0), "exit after finishing; stderr:\n{}", app.stderr());
}
