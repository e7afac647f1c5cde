//! `GET /v1/kinds`: the catalogue of ID kinds and this server's batch limit, serialised once
//! when the server starts.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use idgen_core::KINDS;
use idgen_core::wire::{ErrorBody, KindDescription, KindsResponse};

use crate::state::AppState;

/// The body of every answer of a server that takes batches of up to `max_batch`.
pub fn served_bytes(max_batch: u32) -> Bytes {
    let catalogue =
        KindsResponse::new(KINDS.iter().map(KindDescription::from).collect(), Some(max_batch));
    Bytes::from(serde_json::to_vec(&catalogue).expect("the catalogue is plain data"))
}

/// `GET /v1/kinds`
#[utoipa::path(
    get,
    path = "/v1/kinds",
    tag = "kinds",
    summary = "List the ID kinds",
    responses(
        (status = 200, description = "Every kind with its description, whether it sorts, and its size in bits; and the largest count one request may ask for", body = KindsResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub fn kinds(state: &AppState) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(state.kinds())
}
