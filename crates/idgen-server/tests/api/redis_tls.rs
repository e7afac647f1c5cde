//! Redis mode over TLS (`rediss://`): a `redis-server` that speaks TLS only, with a certificate
//! from a test CA, both made at test time (see `RedisServer::start_tls`). Skipped with a notice when
//! redis-server (unless `IDGEN_REQUIRE_REDIS=1`), the openssl CLI or redis-server's TLS support
//! is missing.

use std::collections::HashSet;

use crate::helpers::{Options, assert_strictly_increasing, numeric, run_to_exit, spawn_app};
use crate::redis_harness::RedisServer;
use crate::redis_mode::{node, status, try_ids, worker_of};

#[tokio::test(flavor = "multi_thread")]
async fn a_node_runs_on_a_tls_only_redis() {
    let Some(redis) = RedisServer::start_tls("a_node_runs_on_a_tls_only_redis") else {
        return;
    };
    let url = redis.url();
    assert!(url.starts_with("rediss://") && url.ends_with("/#insecure"), "{url}");

    let app = node(&redis, Options::new());
    assert!(
        app.stdout_lines().iter().any(|line| line.contains("mode: redis")),
        "{:?}",
        app.stdout_lines()
    );
    assert_eq!(status(&app, "/readyz").await, reqwest::StatusCode::OK);

    let mut counters = Vec::new();
    let mut snowflakes = HashSet::new();
    for _ in 0..5 {
        let batch = try_ids(&app, "counter", 50).await.expect("counters over TLS");
        assert_strictly_increasing("counter", &batch);
        counters.extend(numeric(&batch));
        let batch = try_ids(&app, "snowflake", 200).await.expect("snowflakes over TLS");
        assert_strictly_increasing("snowflake", &batch);
        for id in numeric(&batch) {
            assert_eq!(worker_of(id), app.worker_id);
            assert!(snowflakes.insert(id), "snowflake {id} issued twice");
        }
    }
    assert_eq!(counters, (1..=250).collect::<Vec<u64>>(), "counters come from the TLS Redis");
    // The state really is in that Redis (read back over TLS with redis-cli).
    assert_eq!(redis.cli(&["GET", "idgen:counter:{default}"]).trim(), "250");
    let lease = format!("idgen:{{worker-{}}}:lease", app.worker_id);
    assert_eq!(redis.cli(&["EXISTS", &lease]).trim(), "1");

    // The URL never shows, not even its host:port with the fragment.
    let output = format!("{}\n{}", app.stdout_lines().join("\n"), app.stderr());
    assert!(!output.contains("rediss://") && !output.contains("#insecure"), "{output}");
}

#[test]
fn an_unknown_ca_is_refused_without_insecure() {
    let Some(redis) = RedisServer::start_tls("an_unknown_ca_is_refused_without_insecure") else {
        return;
    };
    // Certificates are checked against the system's roots, which do not hold the test CA.
    let exited = run_to_exit(
        Options::new()
            .env("IDGEN_REDIS_URL", format!("rediss://:s3cret-pw@127.0.0.1:{}", redis.port)),
    );
    assert!(!exited.status.success());
    let lines: Vec<&str> = exited.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", exited.stderr);
    assert!(lines[0].contains("IDGEN_REDIS_URL") && lines[0].contains("cannot reach Redis"));
    assert!(lines[0].contains("invalid peer certificate"), "{}", lines[0]);
    assert!(!exited.stderr.contains("s3cret-pw"), "{}", exited.stderr);
    assert!(!exited.stdout.contains("listening"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_in_ssl_cert_file_is_trusted() {
    let Some(redis) = RedisServer::start_tls("a_private_ca_in_ssl_cert_file_is_trusted") else {
        return;
    };
    // The certificate check is on (no #insecure): the server's certificate chains to the test CA,
    // which SSL_CERT_FILE makes the node's root store, and names 127.0.0.1.
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let app = spawn_app(
        Options::new().flag("--redis-url", &url).env("SSL_CERT_FILE", redis.ca_file().display()),
    );
    let counters = numeric(&try_ids(&app, "counter", 10).await.expect("counters over TLS"));
    assert_eq!(counters, (1..=10).collect::<Vec<u64>>());
    let snowflakes = try_ids(&app, "snowflake", 10).await.expect("snowflakes over TLS");
    assert_strictly_increasing("snowflake", &snowflakes);
    assert_eq!(status(&app, "/readyz").await, reqwest::StatusCode::OK);

    // The same URL to a server whose name is not in the certificate is refused: a certificate
    // for 127.0.0.1 does not do for "localhost".
    let exited = run_to_exit(
        Options::new()
            .flag("--redis-url", format!("rediss://localhost:{}", redis.port))
            .env("SSL_CERT_FILE", redis.ca_file().display()),
    );
    assert!(!exited.status.success());
    assert!(exited.stderr.contains("cannot reach Redis"), "{}", exited.stderr);
    assert!(exited.stderr.contains("invalid peer certificate"), "{}", exited.stderr);
}
