//! Requests actix's HTTP/1 codec refuses before any route sees them, sent over a raw socket:
//! each answer still carries `{"error":{"code","message"}}` as JSON, and none is logged as an
//! error.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{Options, TestApp, spawn_app};

/// Writes `request` on a new connection and reads the answer until the server closes it
/// (bounded by a read timeout).
fn raw(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The server may answer and close before it has read everything (a huge head): a write
    // error then is expected, and the answer is still there to read.
    let _ = stream.write_all(request);
    read_answer(&mut stream)
}

fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(error) if answer.is_empty() => panic!("no answer: {error}"),
            Err(_) => break,
        }
    }
    String::from_utf8(answer).expect("a text answer")
}

/// The status of `answer`, after checking that it is our JSON error with `code`.
fn check_json_error(what: &str, answer: &str, code: &str) -> u16 {
    let (head, body) =
        answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{what}: {answer:?}"));
    let status: u16 =
        head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{what}: {head}"));
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\ncontent-type: application/json"), "{what}: {head}");
    assert!(lower.contains(&format!("\r\ncontent-length: {}", body.len())), "{what}: {head}");
    let body: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: body {body:?} is not JSON"));
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.len() > 10), "{what}: {body}");
    status
}

#[test]
fn codec_refusals_are_json_too() {
    let app = spawn_app(Options::new());
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "bad bytes in the request line",
            b"GET /v1/ids/uuid\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        ("an HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), 400, "invalid_request"),
        (
            "a bad header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "a 70 KB URI",
            format!("GET /v1/ids/uuid?x={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000))
                .into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "100 headers",
            format!(
                "GET /healthz HTTP/1.1\r\n{}\r\n",
                (0..100).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
    ];
    for (what, request, status, code) in cases {
        let answer = raw(&app, &request);
        assert_eq!(check_json_error(what, &answer, code), status, "{what}: {answer}");
    }
    // A good request on the same server is untouched (and so is its keep-alive connection).
    let answer = raw(&app, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("{\"status\":\"ok\"}"),
        "{answer}"
    );
    let metrics = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { app.get("/metrics").await.text().await.unwrap() });
    for (status, count) in [(400, 4), (431, 1)] {
        let line =
            format!("idgen_http_requests_total{{route=\"unmatched\",status=\"{status}\"}} {count}");
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let stderr = app.stderr();
    assert!(
        !stderr.contains(" ERROR ") && !stderr.contains(" WARN "),
        "client noise logged:\n{stderr}"
    );
}

#[test]
fn a_head_that_does_not_arrive_in_time_is_a_json_408() {
    let app = spawn_app(Options::new());
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut stream);
    let waited = started.elapsed();
    assert_eq!(check_json_error("slow headers", &answer, "request_timeout"), 408, "{answer}");
    assert!(waited >= Duration::from_secs(4) && waited < Duration::from_secs(12), "{waited:?}");
}
