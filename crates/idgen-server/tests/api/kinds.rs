//! `GET /v1/kinds`: the catalogue of every kind.

use idgen_core::wire::{KindDescription, KindsResponse};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, header, object_keys, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn lists_every_kind_with_its_properties() {
    let app = spawn_app(Options::new());
    let response = app.get("/v1/kinds").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = header(&response, "content-type");
    assert!(
        content_type.as_deref().is_some_and(|value| value.starts_with("application/json")),
        "content-type {content_type:?}"
    );
    let raw: Value = response.json().await.expect("JSON body");
    assert_eq!(object_keys(&raw), ["kinds", "max_batch"], "{raw}");
    assert_eq!(raw["max_batch"], 10_000, "the default IDGEN_MAX_BATCH");
    for entry in raw["kinds"].as_array().expect("kinds is an array") {
        assert_eq!(object_keys(entry), ["bits", "description", "name", "sortable"], "{entry}");
    }
    let body: KindsResponse = serde_json::from_value(raw).expect("kinds shape");

    let summary: Vec<(&str, bool, u32)> =
        body.kinds.iter().map(|kind| (kind.name.as_str(), kind.sortable, kind.bits)).collect();
    assert_eq!(
        summary,
        [
            ("uuid", false, 128),
            ("uuid7", true, 128),
            ("ulid", true, 128),
            ("snowflake", true, 64),
            ("timestamp", true, 64),
            ("counter", true, 64),
            ("random", false, 125),
            ("typeid", true, 128),
            ("ksuid", true, 160),
        ]
    );
    for kind in &body.kinds {
        assert!(!kind.description.trim().is_empty(), "{}: empty description", kind.name);
    }
    // The server serves core's catalogue, not a copy of it.
    let catalogue: Vec<KindDescription> =
        idgen_core::KINDS.iter().map(KindDescription::from).collect();
    assert_eq!(body.kinds, catalogue);
}
