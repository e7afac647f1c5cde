//! HTTPS on the listener (`IDGEN_TLS_CERT` / `IDGEN_TLS_KEY`), with certificates from a test CA
//! the `openssl` CLI makes: served, trusted only through that CA, re-read on SIGHUP, and a bad
//! pair refused at start.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, http_client, run_to_exit, spawn_app};
use crate::redis_harness::make_certificates;

/// `dir` with `ca.pem`, `cert.pem` and `key.pem`; panics when openssl cannot make them.
fn certificates(dir: &Path) {
    assert!(
        make_certificates(dir),
        "the openssl CLI is missing or failed: the TLS tests need it (apt-get install openssl)"
    );
}

/// A fresh client (no pooled connection) that trusts `ca` only.
fn client_trusting(ca: &Path) -> reqwest::Client {
    let _ = http_client(); // installs the ring provider
    let pem = std::fs::read(ca).expect("read the CA");
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("a PEM CA")])
        .build()
        .expect("build a client")
}

async fn status_with(client: &reqwest::Client, app: &TestApp) -> Option<StatusCode> {
    client.get(app.url("/v1/ids/uuid7")).send().await.ok().map(|response| response.status())
}

fn spawn_tls(dir: &Path) -> TestApp {
    spawn_app(
        Options::new()
            .env("IDGEN_TLS_CERT", dir.join("cert.pem").display())
            .env("IDGEN_TLS_KEY", dir.join("key.pem").display()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_served_with_the_configured_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let app = spawn_tls(dir.path());
    assert!(app.address.starts_with("https://127.0.0.1:"), "{}", app.startup_line);
    let trusting = client_trusting(&dir.path().join("ca.pem"));
    let response = trusting.get(app.url("/v1/ids/uuid7")).send().await.expect("an https answer");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"].as_str().map(str::len), Some(36), "{body}");
    // A client that does not trust the test CA never gets an answer.
    let other = tempfile::tempdir().unwrap();
    certificates(other.path());
    assert_eq!(status_with(&client_trusting(&other.path().join("ca.pem")), &app).await, None);
    // Plain HTTP to the TLS port gets no HTTP answer either.
    let plain = http_client().get(app.url("/healthz").replacen("https", "http", 1)).send().await;
    assert!(plain.map(|response| response.status() != StatusCode::OK).unwrap_or(true));
    // The server still answers after the failed handshakes.
    assert_eq!(status_with(&trusting, &app).await, Some(StatusCode::OK));
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_rereads_the_certificate_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let app = spawn_tls(dir.path());
    let first_ca = dir.path().join("first-ca.pem");
    std::fs::copy(dir.path().join("ca.pem"), &first_ca).unwrap();
    assert_eq!(status_with(&client_trusting(&first_ca), &app).await, Some(StatusCode::OK));

    let renewed = tempfile::tempdir().unwrap();
    certificates(renewed.path());
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(renewed.path().join(file), dir.path().join(file)).unwrap();
    }
    app.signal("HUP");
    let second_ca = renewed.path().join("ca.pem");
    let deadline = Instant::now() + Duration::from_secs(5);
    while status_with(&client_trusting(&second_ca), &app).await != Some(StatusCode::OK) {
        assert!(Instant::now() < deadline, "the renewed certificate is not served after 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_with(&client_trusting(&first_ca), &app).await, None);

    std::fs::write(dir.path().join("cert.pem"), "not a certificate\n").unwrap();
    app.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app.stderr().contains("the certificate in use stays") {
        assert!(Instant::now() < deadline, "the bad certificate is not reported: {}", app.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_with(&client_trusting(&second_ca), &app).await, Some(StatusCode::OK));
    let key = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    let body = key.lines().nth(1).expect("a PEM body line");
    assert!(!app.stderr().contains(body), "key material in stderr");
}

#[test]
fn a_bad_certificate_or_a_mismatched_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    certificates(other.path());
    let cert = dir.path().join("cert.pem");
    let cases = [
        (cert.clone(), other.path().join("key.pem"), "do not belong together"),
        (dir.path().join("ca-key.pem"), dir.path().join("key.pem"), "no PEM certificate"),
        (cert.clone(), dir.path().join("missing.pem"), "missing.pem"),
    ];
    for (cert, key, expected) in cases {
        let exited = run_to_exit(
            Options::new()
                .env("IDGEN_TLS_CERT", cert.display())
                .env("IDGEN_TLS_KEY", key.display()),
        );
        assert_eq!(exited.status.code(), Some(2), "{expected}: {}", exited.stderr);
        let lines: Vec<&str> = exited.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("IDGEN_TLS_CERT") && lines[0].contains(expected), "{}", lines[0]);
    }
    let exited = run_to_exit(Options::new().env("IDGEN_TLS_CERT", cert.display()));
    assert_eq!(exited.status.code(), Some(2), "a certificate without a key: {}", exited.stderr);
}
