//! `GET /openapi.json`: an OpenAPI 3 document of every route.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, header, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn openapi_3_document_lists_every_route() {
    let app = spawn_app(Options::new());
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = header(&response, "content-type");
    assert!(
        content_type.as_deref().is_some_and(|value| value.starts_with("application/json")),
        "content-type {content_type:?}"
    );
    let spec: Value = response.json().await.expect("JSON body");
    let version = spec["openapi"].as_str().unwrap_or_else(|| panic!("no openapi field"));
    assert!(version.starts_with("3."), "openapi {version}");
    let title = spec["info"]["title"].as_str().unwrap_or_default();
    assert_ne!(title, "utoipa-actix-web", "the spec should describe idgen, not the generator");
    let paths = spec["paths"].as_object().unwrap_or_else(|| panic!("no paths object"));
    let expected = [
        ("/v1/ids/{kind}", &["get", "post"][..]),
        ("/v1/ids/uuid", &["get", "post"][..]),
        ("/v1/ids/random", &["get", "post"][..]),
        ("/v1/decode/ulid/{id}", &["get"]),
        ("/v1/kinds", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/generate_uuid", &["get"]),
        ("/generate_timestamp_id", &["get"]),
        ("/generate_counter_id", &["get"]),
        ("/generate_snowflake_id", &["get"]),
        ("/generate_random_string/{length}", &["get"]),
    ];
    let listed: Vec<&String> = paths.keys().collect();
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing from {listed:?}"));
        for method in methods {
            assert!(item.get(*method).is_some(), "{path} has no {method} operation");
        }
    }
}
