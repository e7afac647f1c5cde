//! The SDK against a real `idgen-server` process (rate limited, refusing, killed mid-stream,
//! one of several), and against canned HTTP answers for the shapes a real server should never
//! send.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{TestServer, dead_url, is_recent};
use idgen_client::{
    Alphabet, Client, Error, ErrorCode, IdRequest, Kind, KindsResponse, Length, RandomOptions,
    RetryPolicy,
};
use idgen_core::snowflake;

fn client(server: &TestServer) -> Client {
    Client::builder(&server.url).timeout(Duration::from_secs(30)).build().expect("valid URL")
}

fn assert_strictly_increasing<T: PartialOrd + std::fmt::Debug>(values: &[T]) {
    for pair in values.windows(2) {
        assert!(pair[0] < pair[1], "{:?} then {:?}", pair[0], pair[1]);
    }
}

fn assert_unique<T: std::hash::Hash + Eq>(values: &[T]) {
    let distinct: HashSet<&T> = values.iter().collect();
    assert_eq!(distinct.len(), values.len(), "duplicates");
}

#[tokio::test]
async fn typed_methods_return_parsed_ids() {
    let server = TestServer::start();
    let client = client(&server);

    assert_eq!(client.uuid().await.expect("uuid").get_version_num(), 4);
    assert_eq!(client.uuid7().await.expect("uuid7").get_version_num(), 7);
    assert!(is_recent(client.ulid().await.expect("ulid").timestamp_ms()));
    assert!(client.snowflake().await.expect("snowflake") > 0);
    assert!(is_recent(client.timestamp().await.expect("timestamp")));

    let first = client.counter("sdk").await.expect("counter");
    let second = client.counter("sdk").await.expect("counter");
    assert!(first < second, "{first} then {second}");

    let token = client.random(RandomOptions::default()).await.expect("random");
    assert_eq!(token.len(), 21);
    assert!(token.bytes().all(|byte| byte.is_ascii_alphanumeric()), "{token}");
    let options = RandomOptions::new(Length::new(40).expect("in range"), Alphabet::Nanoid);
    let token = client.random(options).await.expect("random nanoid");
    assert_eq!(token.len(), 40);
    assert!(token.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'));
    let digits = Alphabet::custom("0123456789").expect("a valid alphabet");
    let options = RandomOptions::new(Length::new(12).expect("in range"), digits);
    let tokens = client.randoms(options, 50).await.expect("random digits");
    assert_eq!(tokens.len(), 50);
    assert!(
        tokens.iter().all(|token| token.len() == 12 && token.bytes().all(|b| b.is_ascii_digit()))
    );
}

#[tokio::test]
async fn bounds_bracket_an_issued_id_and_exclude_the_next_millisecond() {
    let server = TestServer::start();
    let client = client(&server);
    let id = client.uuid7().await.expect("uuid7");
    let ms = client.decode(Kind::Uuid7, &id.to_string()).await.expect("decode").timestamp_ms;
    let ms = ms.expect("a uuid7 has a time");
    let here = client.bounds(Kind::Uuid7, &ms.to_string(), "").await.expect("bounds");
    let text = id.to_string();
    assert!(here.min <= text && text <= here.max, "{text} not in {here:?}");
    let next = client.bounds(Kind::Uuid7, &(ms + 1).to_string(), "").await.expect("bounds");
    assert!(text < next.min, "{text} is in the next ms: {next:?}");
    match client.bounds(Kind::Counter, "0", "").await {
        Err(Error::Api { status: 400, code: ErrorCode::NotTimeOrdered, .. }) => {}
        other => panic!("counter bounds: {other:?}"),
    }
}

#[tokio::test]
async fn batch_methods_return_count_ids_in_order() {
    let server = TestServer::start();
    let client = client(&server);

    let uuids = client.uuids(200).await.expect("uuids");
    assert_eq!(uuids.len(), 200);
    assert_unique(&uuids);
    assert!(uuids.iter().all(|uuid| uuid.get_version_num() == 4));

    let uuid7s = client.uuid7s(200).await.expect("uuid7s");
    assert_eq!(uuid7s.len(), 200);
    assert_strictly_increasing(&uuid7s);

    let ulids = client.ulids(200).await.expect("ulids");
    assert_eq!(ulids.len(), 200);
    assert_strictly_increasing(&ulids);

    let snowflakes = client.snowflakes(5000).await.expect("snowflakes");
    assert_eq!(snowflakes.len(), 5000);
    assert_strictly_increasing(&snowflakes);

    let timestamps = client.timestamps(50).await.expect("timestamps");
    assert_eq!(timestamps.len(), 50);
    assert_strictly_increasing(&timestamps);

    let single = client.counter("batch").await.expect("counter");
    let mut values = vec![single];
    values.extend(client.counters("batch", 100).await.expect("counters"));
    assert_eq!(values.len(), 101);
    assert_strictly_increasing(&values);

    let options = RandomOptions::new(Length::new(16).expect("in range"), Alphabet::Hex);
    let tokens = client.randoms(options, 30).await.expect("randoms");
    assert_eq!(tokens.len(), 30);
    assert_unique(&tokens);
    assert!(tokens.iter().all(|token| token.len() == 16
        && token.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))));
}

#[tokio::test]
async fn generic_ids_and_chunked_batches() {
    let server = TestServer::start();
    let client = client(&server);

    let request = IdRequest {
        count: Some(5),
        length: Some(8),
        alphabet: Some("base58".to_owned()),
        ..IdRequest::default()
    };
    let ids = client.ids(Kind::Random, &request).await.expect("random ids");
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|id| id.len() == 8 && !id.contains(['0', 'O', 'I', 'l'])), "{ids:?}");

    let one = client.ids(Kind::Uuid7, &IdRequest::default()).await.expect("one id");
    assert_eq!(one.len(), 1);

    let mut batches = client.batches(Kind::Ulid, IdRequest::default(), 25, 10);
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    while let Some(batch) = batches.next_batch().await {
        let batch = batch.expect("batch");
        sizes.push(batch.len());
        all.extend(batch);
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(batches.remaining(), 0);
    assert_strictly_increasing(&all);
}

#[tokio::test]
async fn decode_takes_ids_apart() {
    let server = TestServer::start();
    let client = client(&server);

    let snowflake = client.snowflake().await.expect("snowflake");
    let decoded = client.decode(Kind::Snowflake, &snowflake.to_string()).await.expect("decode");
    assert_eq!(decoded.id, snowflake.to_string());
    assert_eq!(decoded.worker_id, Some(0));
    assert!(decoded.sequence.is_some());
    assert!(decoded.timestamp_ms.is_some_and(is_recent), "{decoded:?}");
    assert!(decoded.time.is_some());

    let uuid7 = client.uuid7().await.expect("uuid7");
    let decoded = client.decode(Kind::Uuid7, &uuid7.to_string()).await.expect("decode uuid7");
    assert!(decoded.timestamp_ms.is_some_and(is_recent), "{decoded:?}");

    let ulid = client.ulid().await.expect("ulid");
    let decoded = client.decode(Kind::Ulid, &ulid.to_string()).await.expect("decode ulid");
    assert_eq!(decoded.timestamp_ms, Some(ulid.timestamp_ms()));

    let uuid = client.uuid().await.expect("uuid");
    let decoded = client.decode(Kind::Uuid, &uuid.to_string()).await.expect("decode uuid");
    assert_eq!(decoded.version, Some(4));
    assert_eq!(decoded.variant.as_deref(), Some("rfc9562"));
}

#[tokio::test]
async fn kinds_health_and_readiness() {
    let server = TestServer::start();
    let client = client(&server);

    let KindsResponse { kinds, max_batch, .. } = client.kinds().await.expect("kinds");
    assert_eq!(max_batch, Some(10_000), "the default IDGEN_MAX_BATCH");
    let names: Vec<&str> = kinds.iter().map(|kind| kind.name.as_str()).collect();
    let expected: Vec<&str> = Kind::ALL.iter().map(|kind| kind.name()).collect();
    assert_eq!(names, expected);

    assert_eq!(client.health().await.expect("healthz").status, "ok");
    let ready = client.ready().await.expect("readyz");
    assert_eq!(ready.status, "ok");
    assert!(ready.reasons.is_empty());
}

/// Asserts an `Error::Api` with this status and code and a non-empty message.
fn assert_api_error(result: Result<impl std::fmt::Debug, Error>, status: u16, code: ErrorCode) {
    match result {
        Err(Error::Api { status: got_status, code: got_code, message, .. }) => {
            assert_eq!((got_status, got_code), (status, code), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected a {status} {code} error, got {other:?}"),
    }
}

#[tokio::test]
async fn api_errors_carry_the_server_code_and_message() {
    let server = TestServer::start();
    let client = client(&server);

    let too_long = IdRequest { length: Some(5000), ..IdRequest::default() };
    let error = client.ids(Kind::Random, &too_long).await.expect_err("length 5000");
    assert_eq!(error.code(), Some(ErrorCode::InvalidLength));
    assert_eq!(error.status(), Some(400));
    assert!(error.is_client_error());
    assert!(error.to_string().starts_with("server error (400 invalid_length): "), "{error}");

    let bad_alphabet = IdRequest { alphabet: Some("emoji".to_owned()), ..IdRequest::default() };
    assert_api_error(
        client.ids(Kind::Random, &bad_alphabet).await,
        400,
        ErrorCode::InvalidAlphabet,
    );
    assert_api_error(client.uuids(0).await, 400, ErrorCode::InvalidCount);
    assert_api_error(client.uuids(1_000_000).await, 400, ErrorCode::InvalidCount);
    assert_api_error(client.counter("has spaces").await, 400, ErrorCode::InvalidCounterName);
    assert_api_error(
        client.decode(Kind::Snowflake, "not-a-number").await,
        400,
        ErrorCode::InvalidId,
    );
}

#[tokio::test]
async fn transport_errors_name_the_server_and_the_cause() {
    let url = dead_url();
    let client = Client::new(&url).expect("valid URL");
    match client.uuid().await {
        Err(error @ Error::Transport { .. }) => {
            assert_eq!(error.to_string(), format!("cannot reach {url}: connection refused"));
            assert!(!error.is_client_error());
        }
        other => panic!("expected a transport error, got {other:?}"),
    }

    // Accepted by the kernel's backlog, never answered.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("bound"));
    let client = Client::builder(&url)
        .timeout(Duration::from_millis(300))
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("valid");
    match client.snowflake().await {
        Err(error @ Error::Transport { .. }) => {
            assert_eq!(error.to_string(), format!("cannot reach {url}: timed out after 300 ms"));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// Answers one HTTP request on a fresh port with `response`; the thread returns the request.
fn canned_server(response: &'static str) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = stream.read(&mut buffer).expect("read request");
            if read == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        stream.write_all(response.as_bytes()).expect("write response");
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, handle)
}

#[tokio::test]
async fn builder_settings_reach_the_server() {
    let (url, request) = canned_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 14\r\nconnection: close\r\n\r\n{\"id\":\"12345\"}",
    );
    let client = Client::builder(format!("{url}/prefix/"))
        .user_agent("orders/1.0")
        .api_key("idg_Canned-Key_1")
        .build()
        .expect("valid");
    assert_eq!(client.snowflake().await.expect("canned id"), 12345);
    let request = request.join().expect("server thread");
    assert!(request.contains("\r\nauthorization: Bearer idg_Canned-Key_1\r\n"), "{request}");
    let request = request.to_ascii_lowercase();
    assert!(request.starts_with("get /prefix/v1/ids/snowflake http/1.1\r\n"), "{request}");
    assert!(request.contains("\r\nuser-agent: orders/1.0\r\n"), "{request}");
    assert!(request.contains("\r\naccept: application/json\r\n"), "{request}");
}

#[tokio::test]
async fn typeids_come_back_typed_in_order_and_bad_prefixes_are_refused() {
    let server = TestServer::start();
    let client = client(&server);
    let one = client.typeid("user").await.expect("a typeid");
    assert_eq!(one.prefix().as_str(), "user");
    assert!(one.to_string().starts_with("user_"), "{one}");
    let many = client.typeids("user", 100).await.expect("typeids");
    assert_eq!(many.len(), 100);
    assert!(many[0] > one && many.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(many.iter().all(|id| id.uuid().get_version_num() == 7));
    let bare = client.typeid("").await.expect("no prefix");
    assert_eq!(bare.to_string().len(), 26, "{bare}");
    match client.typeid("Not_Valid").await {
        Err(Error::Api { status: 400, code: ErrorCode::InvalidPrefix, .. }) => {}
        other => panic!("expected 400 invalid_prefix, got {other:?}"),
    }
}

#[tokio::test]
async fn ids_as_text_are_the_server_lines_checked_for_count_and_content() {
    let server = TestServer::start();
    let client = client(&server);
    let request = IdRequest { count: Some(5), ..IdRequest::default() };
    let text = client.ids_text(Kind::Counter, &request).await.expect("five lines");
    assert_eq!(text, "1\n2\n3\n4\n5\n");
    let one = client.ids_text(Kind::Ulid, &IdRequest::default()).await.expect("one line");
    assert_eq!((one.len(), one.ends_with('\n')), (27, true), "{one:?}");

    let request = IdRequest { count: Some(3), ..IdRequest::default() };
    for (body, what) in [
        ("1\n2\n", "a line short"),
        ("1\n2\n3", "no final newline"),
        ("1\n2 \n3\n", "a space"),
        ("1\n\u{e9}\n3\n", "not ASCII"),
    ] {
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let (url, request_seen) = canned_server(Box::leak(answer.into_boxed_str()));
        let once = Client::builder(url).retry_policy(RetryPolicy::none()).build().expect("valid");
        let error = once.ids_text(Kind::Counter, &request).await.expect_err(what);
        assert!(matches!(error, Error::InvalidResponse { .. }), "{what}: {error:?}");
        let seen = request_seen.join().expect("server thread").to_ascii_lowercase();
        assert!(seen.contains("\r\naccept: text/plain\r\n"), "{seen}");
    }
}

/// A key the keyed test servers know, allowed uuid7 only; odd enough that finding it in any
/// output cannot be chance.
const SECRET: &str = "idg_sdk-test-Hq3VnL8wXe2RtY6uPz9K";

#[tokio::test]
async fn an_api_key_opens_a_keyed_server_within_its_scopes() {
    let server = TestServer::start_with_keys(&[(SECRET, &["uuid7"])]);
    let keyed = Client::builder(&server.url).api_key(SECRET).build().expect("valid");
    assert_eq!(keyed.uuid7().await.expect("uuid7 with the key").get_version_num(), 7);
    assert_eq!(keyed.uuid7s(3).await.expect("a batch with the key").len(), 3);

    for client in [
        Client::new(&server.url).expect("valid"),
        Client::builder(&server.url).api_key("idg_not-a-known-key").build().expect("valid"),
    ] {
        let error = client.uuid7().await.expect_err("no key the server knows");
        assert_api_error(Err::<(), _>(error), 401, ErrorCode::Unauthorized);
    }
    let error = Client::new(&server.url).expect("valid").uuid7().await.expect_err("no key");
    assert!(error.is_client_error());
    assert!(error.to_string().starts_with("server error (401 unauthorized): "), "{error}");

    let error = keyed.ulid().await.expect_err("ulid is outside the key's scopes");
    assert!(!format!("{error} {error:?}").contains(SECRET), "{error:?}");
    assert_api_error(Err::<(), _>(error), 403, ErrorCode::Forbidden);
}

#[test]
fn debug_never_shows_the_api_key() {
    let builder = Client::builder("https://ids.internal").api_key(SECRET);
    let shown = format!("{builder:?}");
    assert!(!shown.contains(SECRET) && shown.contains("<redacted>"), "{shown}");
    let client = builder.build().expect("valid");
    let shown = format!("{client:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[test]
fn an_api_key_a_header_cannot_carry_is_refused_before_any_request() {
    for secret in ["", "two words", "naïve"] {
        let error =
            Client::builder("http://127.0.0.1:1").api_key(secret).build().expect_err(secret);
        assert!(matches!(error, Error::InvalidApiKey { .. }), "{error:?}");
        assert!(error.is_client_error());
    }
}

/// A CA certificate (P-256, valid until 2126) whose private key was thrown away: it parses,
/// and trusts nothing real.
const TEST_CA: &str = "\
-----BEGIN CERTIFICATE-----
MIIBpDCCAUugAwIBAgIUREG2vpw9YaZva/JR77exNRugWUYwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUaWRnZW4tY2xpZW50IHRlc3QgQ0EwIBcNMjYxMjAyMTM0NjUz
WhgPMjEyNjExMDgxMzQ2NTNaMB8xHTAbBgNVBAMMFGlkZ2VuLWNsaWVudCB0ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtnBCYFNHMcwTKfMiUhb0yepC
jX7i+dUK5iZpCMQ3+yj8xZVwqVZSatnFJ5x9zDVk9f+amsFAIDqT4+TEI1K7RaNj
MGEwHQYDVR0OBBYEFF3pIhmpnbMTETMu4I7+AzYsqpspMB8GA1UdIwQYMBaAFF3p
IhmpnbMTETMu4I7+AzYsqpspMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD
AgEGMAoGCCqGSM49BAMCA0cAMEQCIHs0sqogLTaX9NRWQnl5pvN/PoMAVJhfCHEZ
s9tcNLUjAiBT2xhDyt/w4kaLkQXU56D5RfPN5HNTtZQ4wiBVV98F0g==
-----END CERTIFICATE-----
";

#[tokio::test]
async fn ca_files_that_cannot_be_used_are_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let refusal = |builder: idgen_client::ClientBuilder| match builder.build() {
        Err(error @ Error::InvalidCertificate { .. }) => {
            assert!(error.is_client_error());
            error.to_string()
        }
        other => panic!("expected InvalidCertificate, got {other:?}"),
    };
    let missing = dir.path().join("missing.pem");
    assert_eq!(
        refusal(Client::builder("https://ids.internal").ca_file(&missing)),
        format!(
            "cannot use CA certificates from `{}`: cannot read it: no such file or directory",
            missing.display()
        )
    );
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "just some text\n").expect("write");
    assert_eq!(
        refusal(Client::builder("https://ids.internal").ca_file(&not_pem)),
        format!(
            "cannot use CA certificates from `{}`: no PEM certificate in it (a \
             `-----BEGIN CERTIFICATE-----` block)",
            not_pem.display()
        )
    );
    let message =
        refusal(Client::builder("https://ids.internal").ca_pem(TEST_CA.replace("MII", "#")));
    assert!(message.contains(": not valid PEM: "), "{message}");

    // A good CA builds, and then the client goes on to connect, here to nothing.
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, TEST_CA).expect("write");
    let url = dead_url().replace("http://", "https://");
    let client = Client::builder(&url).ca_file(&good).ca_pem(TEST_CA).build().expect("a valid CA");
    match client.uuid7().await {
        Err(error @ Error::Transport { .. }) => {
            assert_eq!(error.to_string(), format!("cannot reach {url}: connection refused"));
        }
        other => panic!("expected connection refused, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_of_the_wrong_shape_become_typed_errors() {
    let (url, _request) = canned_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"id\":\"x-y-z\"}\n",
    );
    let error = Client::new(url).expect("valid").uuid().await.expect_err("not a uuid");
    assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");

    let (url, _request) = canned_server(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    );
    let error = Client::new(url).expect("valid").ulid().await.expect_err("not JSON");
    assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");

    let (url, _request) = canned_server(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 25\r\nconnection: close\r\n\r\n<h1>upstream is down</h1>",
    );
    let error = Client::new(url).expect("valid").kinds().await.expect_err("502");
    assert_eq!(error.code(), Some(ErrorCode::Internal));
    assert_eq!(error.to_string(), "server error (502 internal): <h1>upstream is down</h1>");

    let (url, _request) = canned_server(
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-type: application/json\r\ncontent-length: 63\r\nconnection: close\r\n\r\n{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many requests\"}}",
    );
    // The canned server answers once: a retry would find nobody there.
    let once = Client::builder(url).retry_policy(RetryPolicy::none()).build().expect("valid");
    match once.uuid7().await {
        Err(Error::Api { status: 429, code: ErrorCode::RateLimited, retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)));
        }
        other => panic!("expected 429 rate_limited, got {other:?}"),
    }
}

/// HTTPS with a private CA: the SDK trusts the server only through `ca_file`, and the key goes
/// over the encrypted connection.
#[tokio::test]
async fn https_with_a_private_ca_and_a_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_tls(&[(SECRET, &["uuid7"])], dir.path());
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let client = Client::builder(&server.url)
        .ca_file(dir.path().join("ca.pem"))
        .api_key(SECRET)
        .build()
        .expect("valid");
    let id = client.uuid7().await.expect("a uuid7 over https");
    assert_eq!(id.to_string().len(), 36);
    let untrusting = Client::builder(&server.url).api_key(SECRET).build().expect("valid");
    let error = untrusting.uuid7().await.expect_err("the test CA is not trusted by default");
    assert!(matches!(error, idgen_client::Error::Transport { .. }), "{error:?}");
}

/// The server's count of answers with `status` on `/v1/ids/{kind}`, once it has reached
/// `at_least`: a server counts an answer as it leaves, so just after the client has it the
/// count may lag.
async fn id_answers(server: &TestServer, status: u16, at_least: u64) -> u64 {
    // reqwest is built without a default crypto provider (a `Client` brings its own), and a
    // plain `reqwest::get` takes the process-wide one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let series =
        format!("idgen_http_requests_total{{route=\"/v1/ids/{{kind}}\",status=\"{status}\"}} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(format!("{}/metrics", server.url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text");
        let count = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |value| value.trim().parse().expect("a count"));
        if count >= at_least || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const RATE_LIMITED: [&str; 4] = ["--rate-limit-per-second", "2", "--rate-limit-burst", "2"];

#[tokio::test]
async fn a_rate_limited_server_makes_callers_wait_instead_of_failing() {
    let server = TestServer::start_with_flags(&RATE_LIMITED);
    let client = client(&server);
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(client.uuid7().await.expect("no error: each 429 is waited out"));
    }
    let elapsed = started.elapsed();
    assert_unique(&ids);
    // 2 at once, then 2 a second: no client can have 20 in under 9 s, and one that waits
    // exactly as long as `Retry-After` says needs little more.
    assert!(elapsed >= Duration::from_millis(8500), "too fast for the limit: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "waited too long: {elapsed:?}");
    assert_eq!(id_answers(&server, 200, 20).await, 20);
    // Waiting for `Retry-After` costs one 429 per wait; backoff alone (50 ms, 100 ms, ...)
    // would have hit the limit several times per call.
    let limited = id_answers(&server, 429, 1).await;
    assert!((1..=12).contains(&limited), "{limited} answers were 429");
}

#[tokio::test]
async fn without_retries_the_first_429_comes_back_at_once() {
    let server = TestServer::start_with_flags(&RATE_LIMITED);
    let client =
        Client::builder(&server.url).retry_policy(RetryPolicy::none()).build().expect("valid");
    let mut served = 0;
    let (error, elapsed) = loop {
        let started = Instant::now();
        match client.uuid7().await {
            Ok(_) => served += 1,
            Err(error) => break (error, started.elapsed()),
        }
        assert!(served <= 10, "a burst of 2 never refused anything");
    };
    assert_api_error(Err::<(), _>(error), 429, ErrorCode::RateLimited);
    assert!(elapsed < Duration::from_millis(900), "it waited: {elapsed:?}");
    assert_eq!(id_answers(&server, 429, 1).await, 1, "sent once");
}

#[tokio::test]
async fn a_refused_request_is_sent_once() {
    let server = TestServer::start();
    let client = client(&server);
    let started = Instant::now();
    assert_api_error(client.uuids(0).await, 400, ErrorCode::InvalidCount);
    let too_long = IdRequest { length: Some(5000), ..IdRequest::default() };
    assert_api_error(client.ids(Kind::Random, &too_long).await, 400, ErrorCode::InvalidLength);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(id_answers(&server, 400, 2).await, 2, "one request each");
}

fn worker_of(id: u64) -> u16 {
    snowflake::decode(&id.to_string(), snowflake::DEFAULT_EPOCH_MS).expect("a snowflake").worker_id
}

fn worker(id: u16) -> TestServer {
    TestServer::start_with_flags(&["--worker-id", &id.to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_move_to_the_next_server_when_one_is_killed_mid_stream() {
    const REQUESTS: usize = 300;
    const KILL_AFTER: usize = 100;
    let mut servers = [worker(1), worker(2), worker(3)];
    let client = Client::builder(&servers[0].url)
        .endpoints(servers.iter().map(|server| server.url.clone()))
        .build()
        .expect("valid URLs");
    let started = Arc::new(AtomicUsize::new(0));
    let kill_now = Arc::new(tokio::sync::Notify::new());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (client, started, kill_now) = (client.clone(), started.clone(), kill_now.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let number = started.fetch_add(1, Ordering::Relaxed);
                    if number >= REQUESTS {
                        return ids;
                    }
                    if number == KILL_AFTER {
                        kill_now.notify_one();
                    }
                    ids.extend(client.snowflakes(20).await.expect("no error reaches the caller"));
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(15), kill_now.notified())
        .await
        .expect("a hundred requests were sent");
    // With requests in flight on it: the first server, the one in use.
    servers[0].kill();
    let mut ids = Vec::new();
    for task in tasks {
        let batch = tokio::time::timeout(Duration::from_secs(15), task).await;
        ids.extend(batch.expect("the requests finish").expect("task did not panic"));
    }
    assert_eq!(ids.len(), REQUESTS * 20);
    assert_unique(&ids);
    let workers: HashSet<u16> = ids.iter().map(|&id| worker_of(id)).collect();
    assert!(workers.contains(&1) && workers.contains(&2), "{workers:?}");
}

#[tokio::test]
async fn a_server_back_on_its_address_gets_the_requests_again_after_a_cool_down() {
    let address = dead_url();
    let second = worker(2);
    let client = Client::builder(&address)
        .endpoints([address.clone(), second.url.clone()])
        .endpoint_cool_down(Duration::from_millis(200))
        .build()
        .expect("valid URLs");
    assert_eq!(worker_of(client.snowflake().await.expect("from the second")), 2);
    let bind = address.strip_prefix("http://").expect("an http URL");
    let _first = TestServer::start_with_flags(&["--bind", bind, "--worker-id", "1"]);
    // A probe before the server was up only doubles the cool-down; within 10 s it is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker_of(client.snowflake().await.expect("from either")) != 1 {
        assert!(Instant::now() < deadline, "the first server never got requests again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..5 {
        assert_eq!(worker_of(client.snowflake().await.expect("from the first")), 1);
    }
}
