//! `GET /healthz` and `GET /readyz`.

use idgen_core::wire::HealthResponse;
use reqwest::StatusCode;

use crate::helpers::{Options, header, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_readyz_answer_200_ok() {
    let app = spawn_app(Options::new());
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = header(&response, "content-type");
        assert!(
            content_type.as_deref().is_some_and(|value| value.starts_with("application/json")),
            "{path}: content-type {content_type:?}"
        );
        let body: HealthResponse = response.json().await.expect("health body");
        assert_eq!(body.status, "ok", "{path}");
        assert!(body.reasons.is_empty(), "{path}: {:?}", body.reasons);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_stays_ready_after_issuing_every_kind() {
    let app = spawn_app(Options::new());
    for kind in crate::helpers::all_kinds() {
        app.ids(kind, 100, &[]).await;
    }
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
}
