//! CORS (`IDGEN_CORS_ORIGINS`): preflights answered (before any key check), answers to an
//! allowed origin granted, other origins and servers without the setting unchanged.

use idgen_core::wire::ErrorCode;
use reqwest::{Method, StatusCode};

use crate::helpers::{Options, TestApp, assert_error, header, run_to_exit, spawn_app};

const ALLOWED: &str = "https://app.example.com";

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("send a preflight")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preflight_from_an_allowed_origin_is_granted_even_with_keys() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("keys.toml");
    std::fs::write(&file, format!("[[key]]\nname = \"web\"\nsha256 = \"{}\"\n", "a".repeat(64)))
        .unwrap();
    let app = spawn_app(
        Options::new()
            .env("IDGEN_CORS_ORIGINS", format!("{ALLOWED}, http://localhost:3000"))
            .env("IDGEN_API_KEYS_FILE", file.display()),
    );
    for path in ["/v1/ids/uuid7", "/v1/ids/counter"] {
        let response = preflight(&app, path, ALLOWED).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some(ALLOWED));
        let methods = header(&response, "access-control-allow-methods").unwrap();
        assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
        let headers = header(&response, "access-control-allow-headers").unwrap();
        assert!(headers.contains("authorization") && headers.contains("x-api-key"), "{headers}");
        assert!(header(&response, "access-control-max-age").is_some());
        assert!(header(&response, "vary").is_some_and(|vary| vary.contains("Origin")));
    }
    // The real request still needs its key, and the refusal carries the grant so the page
    // can read it.
    let response = app.client.get(app.url("/v1/ids/uuid7")).header("origin", ALLOWED).send();
    let response = response.await.unwrap();
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some(ALLOWED));
    let exposed = header(&response, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("retry-after") && exposed.contains("x-request-id"), "{exposed}");
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_origins_get_no_grant() {
    let app = spawn_app(Options::new().env("IDGEN_CORS_ORIGINS", ALLOWED));
    let response = preflight(&app, "/v1/ids/uuid", "https://evil.example.com").await;
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    let response =
        app.client.get(app.url("/v1/ids/uuid")).header("origin", "https://evil.example.com");
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "access-control-allow-origin").is_none());
    let granted = app.client.get(app.url("/v1/ids/uuid")).header("origin", ALLOWED).send();
    let granted = granted.await.unwrap();
    assert_eq!(header(&granted, "access-control-allow-origin").as_deref(), Some(ALLOWED));
    // An unknown path is still a 404, preflight or not.
    let response = preflight(&app, "/nope", ALLOWED).await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_setting_there_is_no_cors_at_all() {
    let app = spawn_app(Options::new());
    let response = preflight(&app, "/v1/ids/uuid", ALLOWED).await;
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed).await;
    let response = app.client.get(app.url("/v1/ids/uuid")).header("origin", ALLOWED).send();
    assert!(header(&response.await.unwrap(), "access-control-allow-origin").is_none());
}

#[test]
fn any_origin_with_keys_is_refused_at_start() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("keys.toml");
    std::fs::write(&file, "").unwrap();
    let exited = run_to_exit(
        Options::new().env("IDGEN_CORS_ORIGINS", "*").env("IDGEN_API_KEYS_FILE", file.display()),
    );
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("IDGEN_CORS_ORIGINS"), "{}", exited.stderr);
}
