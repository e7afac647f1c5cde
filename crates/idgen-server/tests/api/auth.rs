//! API keys, as a client and an operator meet them: `keys new`, the keys file, 401/403, scopes,
//! per-key limits, SIGHUP reload, the admin scope and the admin listener.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, assert_error, header, run_to_exit, spawn_app};

/// A new key from `idgen-server keys new`: (secret, file entry).
pub fn new_key(name: &str, scopes: &[&str]) -> (String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgen-server"));
    command.args(["keys", "new", "--name", name]);
    for scope in scopes {
        command.args(["--scope", scope]);
    }
    let output = command.output().expect("run keys new");
    assert!(output.status.success(), "keys new: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let (secret, entry) = stdout.split_once('\n').expect("a secret line, then the entry");
    assert!(secret.starts_with("idg_") && secret.len() >= 4 + 22, "{secret:?}");
    assert!(entry.contains("[[key]]") && !entry.contains(secret), "{entry}");
    (secret.to_owned(), entry.trim().to_owned())
}

fn write_keys(path: &Path, entries: &[&str]) {
    std::fs::write(path, entries.join("\n\n") + "\n").expect("write the keys file");
}

async fn get_with(app: &TestApp, path: &str, key: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some((name, value)) = key {
        request = request.header(name, value);
    }
    request.send().await.expect("send")
}

async fn get_keyed(app: &TestApp, path: &str, secret: &str) -> reqwest::Response {
    get_with(app, path, Some(("authorization", &format!("Bearer {secret}")))).await
}

async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(header(&response, "www-authenticate").as_deref(), Some("Bearer"));
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_keys_file_everything_stays_open_and_the_start_up_line_says_so() {
    let app = spawn_app(Options::new());
    assert!(app.startup_line.ends_with(", open: no API keys)"), "{}", app.startup_line);
    for path in ["/v1/ids/uuid", "/v1/kinds", "/generate_uuid", "/metrics", "/v1/status"] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_needed_for_every_id_route_and_the_probes_stay_open() {
    let root = tempfile::tempdir().unwrap();
    let (secret, entry) = new_key("svc-all", &[]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&entry]);
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    assert!(app.startup_line.ends_with(", 1 API key)"), "{}", app.startup_line);

    let issued: serde_json::Value =
        get_keyed(&app, "/v1/ids/uuid", &secret).await.json().await.unwrap();
    let uuid = issued["id"].as_str().expect("an id").to_owned();
    let paths = [
        "/v1/ids/uuid".to_owned(),
        "/v1/ids/counter?name=orders".to_owned(),
        format!("/v1/decode/uuid/{uuid}"),
        "/v1/kinds".to_owned(),
        "/generate_uuid".to_owned(),
        "/generate_counter_id".to_owned(),
        "/generate_random_string/8".to_owned(),
    ];
    for path in &paths {
        assert_unauthorized(get_with(&app, path, None).await).await;
        assert_unauthorized(get_keyed(&app, path, "idg_not-a-key").await).await;
        assert_unauthorized(get_with(&app, path, Some(("x-api-key", "wrong"))).await).await;
        assert_eq!(get_keyed(&app, path, &secret).await.status(), StatusCode::OK, "{path}");
        let response = get_with(&app, path, Some(("x-api-key", &secret))).await;
        assert_eq!(response.status(), StatusCode::OK, "{path} with X-API-Key");
    }
    let response = app.client.post(app.url("/v1/ids/uuid")).send().await.unwrap();
    assert_unauthorized(response).await;
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs/"] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path} stays open");
    }
    // A key without the admin scope does not reach the admin routes.
    for path in ["/metrics", "/status", "/v1/status"] {
        assert_unauthorized(get_with(&app, path, None).await).await;
        let response = get_keyed(&app, path, &secret).await;
        let message = assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
        assert!(message.contains("admin"), "{message}");
    }
    let output = app.stderr() + &app.stdout_lines().join("\n");
    assert!(!output.contains(&secret), "the secret is in the server's output");
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_allow_kinds_and_counter_patterns_and_refuse_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let (orders, orders_entry) = new_key("svc-orders", &["uuid7", "counter:orders.*"]);
    let (ops, ops_entry) = new_key("ops", &["admin"]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&orders_entry, &ops_entry]);
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    assert!(app.startup_line.ends_with(", 2 API keys)"), "{}", app.startup_line);

    let ok = get_keyed(&app, "/v1/ids/uuid7", &orders).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let uuid7: serde_json::Value = ok.json().await.unwrap();
    let decode = format!("/v1/decode/uuid7/{}", uuid7["id"].as_str().unwrap());
    assert_eq!(get_keyed(&app, &decode, &orders).await.status(), StatusCode::OK);
    for (path, what) in [
        ("/v1/ids/uuid", "uuid"),
        ("/generate_uuid", "uuid"),
        ("/v1/ids/snowflake?count=3", "snowflake"),
        ("/v1/ids/counter?name=billing", "billing"),
        ("/v1/ids/counter", "default"),
        ("/metrics", "admin"),
    ] {
        let response = get_keyed(&app, path, &orders).await;
        let message = assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
        assert!(message.contains(what), "{path}: {message}");
    }
    let response = get_keyed(&app, "/v1/decode/snowflake/123456789", &orders).await;
    let message = assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    assert!(message.contains("decode snowflake"), "{message}");
    let counter = get_keyed(&app, "/v1/ids/counter?name=orders.eu&count=3", &orders).await;
    assert_eq!(counter.status(), StatusCode::OK);
    // The admin key reaches the admin routes only.
    for path in ["/metrics", "/status", "/v1/status"] {
        assert_eq!(get_keyed(&app, path, &ops).await.status(), StatusCode::OK, "{path}");
    }
    let response = get_keyed(&app, "/v1/ids/uuid7", &ops).await;
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_key_rates_and_daily_quotas_count_ids_and_answer_429_with_headers() {
    let root = tempfile::tempdir().unwrap();
    let (rated, rated_entry) = new_key("rated", &[]);
    let (quota, quota_entry) = new_key("quota", &[]);
    let (other, other_entry) = new_key("other", &[]);
    let file = root.path().join("keys.toml");
    write_keys(
        &file,
        &[
            &format!("{rated_entry}\nrate_per_second = 1\nburst = 20"),
            &format!("{quota_entry}\ndaily_quota = 30"),
            &other_entry,
        ],
    );
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));

    // A batch of 20 spends the whole burst: the next ID is refused.
    let batch = get_keyed(&app, "/v1/ids/uuid7?count=20", &rated).await;
    assert_eq!(batch.status(), StatusCode::OK);
    let refused = get_keyed(&app, "/v1/ids/uuid7", &rated).await;
    assert!(header(&refused, "retry-after").is_some(), "{:?}", refused.headers());
    assert_eq!(header(&refused, "ratelimit-limit").as_deref(), Some("20"));
    assert_eq!(header(&refused, "ratelimit-remaining").as_deref(), Some("0"));
    assert!(header(&refused, "ratelimit-reset").is_some());
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;
    // Another key is not limited by it.
    let response = get_keyed(&app, "/v1/ids/uuid7?count=50", &other).await;
    assert_eq!(response.status(), StatusCode::OK);

    let spent = get_keyed(&app, "/v1/ids/snowflake?count=25", &quota).await;
    assert_eq!(spent.status(), StatusCode::OK);
    let over = get_keyed(&app, "/v1/ids/snowflake?count=6", &quota).await;
    assert_eq!(header(&over, "ratelimit-limit").as_deref(), Some("30"));
    assert_eq!(header(&over, "ratelimit-remaining").as_deref(), Some("0"));
    let reset: u64 = header(&over, "ratelimit-reset").unwrap().parse().unwrap();
    let retry: u64 = header(&over, "retry-after").unwrap().parse().unwrap();
    assert!(reset <= 86_400 && retry == reset.max(1), "reset {reset}, retry {retry}");
    let message = assert_error(over, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;
    assert!(message.contains("daily quota of 30"), "{message}");
    // What is left of the quota can still be spent.
    let rest = get_keyed(&app, "/v1/ids/snowflake?count=5", &quota).await;
    assert_eq!(rest.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_creates_counter_names_up_to_its_cap() {
    let root = tempfile::tempdir().unwrap();
    let (secret, entry) = new_key("capped", &["counter:*"]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&format!("{entry}\nmax_new_counters = 2")]);
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    for name in ["a", "b", "a", "b"] {
        let path = format!("/v1/ids/counter?name={name}");
        assert_eq!(get_keyed(&app, &path, &secret).await.status(), StatusCode::OK, "{name}");
    }
    let response = get_keyed(&app, "/v1/ids/counter?name=c", &secret).await;
    let message = assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    assert!(message.contains("counter"), "{message}");
}

/// Polls `check` until it holds, for at most 5 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_rereads_the_keys_file_and_a_bad_file_keeps_the_old_keys() {
    let root = tempfile::tempdir().unwrap();
    let (first, first_entry) = new_key("first", &[]);
    let (second, second_entry) = new_key("second", &[]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&first_entry]);
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    assert_eq!(get_keyed(&app, "/v1/ids/uuid", &first).await.status(), StatusCode::OK);
    assert_unauthorized(get_keyed(&app, "/v1/ids/uuid", &second).await).await;

    write_keys(&file, &[&second_entry]);
    app.signal("HUP");
    eventually("the new key works", async || {
        get_keyed(&app, "/v1/ids/uuid", &second).await.status() == StatusCode::OK
    })
    .await;
    assert_unauthorized(get_keyed(&app, "/v1/ids/uuid", &first).await).await;

    std::fs::write(&file, format!("{second_entry}\nscopes = [\"nope\"]\n")).unwrap();
    app.signal("HUP");
    eventually("the bad file is reported", async || app.stderr().contains("unknown scope")).await;
    let stderr = app.stderr();
    assert!(stderr.contains("line "), "the report names the line: {stderr}");
    assert_eq!(get_keyed(&app, "/v1/ids/uuid", &second).await.status(), StatusCode::OK);
    assert_unauthorized(get_keyed(&app, "/v1/ids/uuid", &first).await).await;
    assert!(!stderr.contains(&first) && !stderr.contains(&second), "a secret is in stderr");
}

#[test]
fn a_bad_keys_file_at_start_exits_2_naming_the_line() {
    let root = tempfile::tempdir().unwrap();
    let (_, entry) = new_key("k", &[]);
    let file = root.path().join("keys.toml");
    std::fs::write(&file, format!("{entry}\nburst = 5\n")).unwrap();
    let exited = run_to_exit(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    let lines: Vec<&str> = exited.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("IDGEN_API_KEYS_FILE"), "{}", lines[0]);
    assert!(lines[0].contains("line 1") || lines[0].contains("line "), "{}", lines[0]);
    assert!(lines[0].contains("burst needs rate_per_second"), "{}", lines[0]);

    let missing = root.path().join("missing.toml");
    let exited = run_to_exit(Options::new().env("IDGEN_API_KEYS_FILE", missing.display()));
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("IDGEN_API_KEYS_FILE"), "{}", exited.stderr);
}

#[test]
fn keys_new_refuses_a_bad_name_or_scope() {
    for args in [&["--name", "a b"][..], &["--name", "ok", "--scope", "nope"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_idgen-server"))
            .args(["keys", "new"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: no secret is printed");
        assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    }
    let (first, _) = new_key("x", &["*"]);
    let (second, _) = new_key("x", &["*"]);
    assert_ne!(first, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_serves_only_the_admin_routes_without_a_key() {
    let root = tempfile::tempdir().unwrap();
    let (secret, entry) = new_key("svc", &[]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&entry]);
    let app = spawn_app(
        Options::new()
            .env("IDGEN_API_KEYS_FILE", file.display())
            .env("IDGEN_ADMIN_BIND", "127.0.0.1:0"),
    );
    let admin = app
        .startup_line
        .split(", admin on ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .unwrap_or_else(|| panic!("no admin address in {}", app.startup_line))
        .to_owned();
    assert!(admin.starts_with("http://127.0.0.1:"), "{admin}");
    for path in ["/metrics", "/status", "/v1/status", "/healthz", "/readyz"] {
        let response = app.client.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "admin {path}");
    }
    for path in ["/v1/ids/uuid", "/generate_uuid", "/v1/kinds"] {
        let response = app.client.get(format!("{admin}{path}")).send().await.unwrap();
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    }
    // The public listener no longer serves the admin routes, even to a key.
    for path in ["/metrics", "/status", "/v1/status"] {
        let response = get_keyed(&app, path, &secret).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    }
    assert_eq!(get_keyed(&app, "/v1/ids/uuid", &secret).await.status(), StatusCode::OK);
}

/// Secrets hygiene: with every log on at debug level (JSON and the access log), a server that
/// answers 200, 401, 403, 429, reloads its keys and serves its status and metrics writes the
/// secrets nowhere: not in its output, nor in any answer's headers or body.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_any_log_line_or_answer() {
    let root = tempfile::tempdir().unwrap();
    let (admin, admin_entry) = new_key("ops", &["admin"]);
    let (limited, limited_entry) = new_key("svc", &["uuid7"]);
    let file = root.path().join("keys.toml");
    let limited_entry = format!("{limited_entry}\nrate_per_second = 1\nburst = 2");
    write_keys(&file, &[&admin_entry, &limited_entry]);
    let app = spawn_app(
        Options::new()
            .env("IDGEN_API_KEYS_FILE", file.display())
            .env("IDGEN_LOG", "debug")
            .env("IDGEN_LOG_FORMAT", "json")
            .env("IDGEN_ACCESS_LOG", "all"),
    );
    let mut seen = String::new();
    let attempts: Vec<(&str, &str, Option<&str>)> = vec![
        ("/v1/ids/uuid7?count=2", "authorization", Some(&limited)),
        ("/v1/ids/uuid7", "authorization", Some(&limited)),
        ("/v1/ids/uuid", "x-api-key", Some(&limited)),
        ("/v1/ids/uuid", "authorization", None),
        ("/metrics", "authorization", Some(&admin)),
        ("/v1/status", "authorization", Some(&admin)),
        ("/status", "x-api-key", Some(&admin)),
        ("/v1/ids/uuid7", "authorization", Some(&admin)),
    ];
    for (path, name, secret) in attempts {
        let mut request = app.client.get(app.url(path));
        if let Some(secret) = secret {
            let value = if name == "authorization" {
                format!("Bearer {secret}")
            } else {
                secret.to_owned()
            };
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        seen.push_str(&format!("{:?}\n", response.headers()));
        seen.push_str(&response.text().await.unwrap());
    }
    // A wrong secret that shares a prefix with a real one is not echoed either.
    let wrong = format!("{}x", &limited[..20]);
    let response = app.client.get(app.url("/v1/ids/uuid7")).bearer_auth(&wrong).send();
    seen.push_str(&response.await.unwrap().text().await.unwrap());
    app.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app.stderr().contains("API keys reloaded") {
        assert!(Instant::now() < deadline, "no reload line: {}", app.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = format!("{}\n{}", app.stderr(), app.stdout_lines().join("\n"));
    assert!(output.contains("\"status\":401"), "the access log is on: {output}");
    assert!(output.contains("\"key\":\"svc\""), "the access log names the key: {output}");
    for secret in [&admin, &limited, &wrong] {
        assert!(!output.contains(secret.as_str()), "a secret in the server's output");
        assert!(!seen.contains(secret.as_str()), "a secret in an answer: {seen}");
        // Not even the part after the prefix, which alone is the secret's entropy.
        assert!(!output.contains(&secret[4..]) && !seen.contains(&secret[4..]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_names_the_keys_where_they_are_needed() {
    let root = tempfile::tempdir().unwrap();
    let (_, entry) = new_key("svc", &[]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&entry]);
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    let document: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key", "{schemes}");
    for (path, method) in [
        ("/v1/ids/uuid7", "get"),
        ("/v1/ids/uuid7", "post"),
        ("/v1/ids/{kind}", "get"),
        ("/v1/decode/ulid/{id}", "get"),
        ("/v1/kinds", "get"),
        ("/generate_uuid", "get"),
        ("/metrics", "get"),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation["security"].is_array(), "{path} {method}: {operation}");
        let responses = &operation["responses"];
        assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object(), "{path} {method}");
        assert!(responses["403"].is_object(), "{path} {method}");
    }
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let operation = &document["paths"][path]["get"];
        assert!(operation.is_object(), "{path}");
        assert!(operation.get("security").is_none() && operation["responses"].get("401").is_none());
    }
    // Without keys the document has neither.
    let open = spawn_app(Options::new());
    let document: serde_json::Value = open.get("/openapi.json").await.json().await.unwrap();
    assert!(document["components"].get("securitySchemes").is_none());
    assert!(document["paths"]["/v1/ids/uuid7"]["get"]["responses"].get("401").is_none());
}

/// `name`'s sample of `idgen_key_ids_issued_total` in `/metrics` (read with the admin key).
async fn key_ids_issued(app: &TestApp, admin: &str, name: &str) -> Option<u64> {
    let text = get_keyed(app, "/metrics", admin).await.text().await.unwrap();
    let prefix = format!("idgen_key_ids_issued_total{{key=\"{name}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_ids_issued_with_each_key_across_a_reload() {
    let root = tempfile::tempdir().unwrap();
    let (svc, svc_entry) = new_key("svc", &[]);
    let (ops, ops_entry) = new_key("ops", &["admin"]);
    let file = root.path().join("keys.toml");
    write_keys(&file, &[&svc_entry, &ops_entry]);
    let app = spawn_app(Options::new().env("IDGEN_API_KEYS_FILE", file.display()));
    assert_eq!(key_ids_issued(&app, &ops, "svc").await, Some(0));
    for path in ["/v1/ids/uuid7?count=250", "/v1/ids/counter?name=a&count=7", "/generate_uuid"] {
        assert_eq!(get_keyed(&app, path, &svc).await.status(), StatusCode::OK, "{path}");
    }
    // A refused request issues nothing.
    assert_eq!(
        get_keyed(&app, "/v1/ids/uuid7?count=0", &svc).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(key_ids_issued(&app, &ops, "svc").await, Some(258));
    assert_eq!(key_ids_issued(&app, &ops, "ops").await, Some(0));
    // The same key after a reload keeps its count; a removed one leaves the metric.
    write_keys(&file, &[&svc_entry, &ops_entry.replace("\"ops\"", "\"ops2\"")]);
    app.signal("HUP");
    eventually("the reload", async || key_ids_issued(&app, &ops, "ops2").await.is_some()).await;
    assert_eq!(key_ids_issued(&app, &ops, "svc").await, Some(258));
    assert_eq!(key_ids_issued(&app, &ops, "ops").await, None);
}
