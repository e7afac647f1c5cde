//! `GET /v1/kinds`: the catalogue of ID kinds, serialised once.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use idgen_core::KINDS;
use idgen_core::wire::{ErrorBody, KindDescription, KindsResponse};

static KINDS_JSON: LazyLock<String> = LazyLock::new(|| {
    let catalogue = KindsResponse { kinds: KINDS.iter().map(KindDescription::from).collect() };
    serde_json::to_string(&catalogue).expect("the catalogue is plain data")
});

/// `GET /v1/kinds`
#[utoipa::path(
    get,
    path = "/v1/kinds",
    tag = "kinds",
    summary = "List the ID kinds",
    responses(
        (status = 200, description = "Every kind with its description, whether it sorts, and its size in bits", body = KindsResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub fn kinds() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(KINDS_JSON.as_str())
}
