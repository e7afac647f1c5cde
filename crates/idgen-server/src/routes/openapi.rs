//! `GET /openapi.json`: the OpenAPI document, built from the route table (each route's
//! `#[utoipa::path]` declaration) and serialised once.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use idgen_core::DecodeContext;
use utoipa::OpenApi;

use super::ROUTES;
use crate::state::AppState;

/// The document's fixed parts; utoipa-actix-web adds every registered path and schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "idgen",
        description = "Unique IDs of every kind: UUID v4 and v7, ULID, snowflake, timestamp, named counters and random strings. Every error is {\"error\": {\"code\", \"message\"}}.",
        license(name = "GPL-3.0-or-later", identifier = "GPL-3.0-or-later"),
    ),
    tags(
        (name = "ids", description = "Issue IDs"),
        (name = "decode", description = "Decode IDs, and the bounds of a time"),
        (name = "kinds", description = "The catalogue of kinds"),
        (name = "compat", description = "The original tutorial's routes, same shapes"),
        (name = "health", description = "Liveness and readiness (not rate limited)"),
        (name = "operations", description = "Metrics and the node's status (not rate limited)"),
    )
)]
pub struct ApiDoc;

/// The whole document: the fixed parts, every route of the table and the schemas they use.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    let mut schemas = Vec::new();
    for route in ROUTES {
        route.doc.schemas(&mut schemas);
        document.paths.merge(route.doc.paths());
    }
    document
        .components
        .get_or_insert_with(utoipa::openapi::Components::new)
        .schemas
        .extend(schemas);
    document
}

/// The document as this server serves it (see `contract`), serialised once.
pub fn served_bytes(max_batch: u32, keyed: bool, decode: &DecodeContext) -> web::Bytes {
    let document = serde_json::to_value(document()).expect("an OpenAPI document serialises");
    let served = super::contract::served(document, max_batch, keyed, decode);
    web::Bytes::from(serde_json::to_vec(&served).expect("a JSON value serialises"))
}

/// `GET /openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    summary = "This document",
    responses((status = 200, description = "OpenAPI document of every route", content_type = "application/json"))
)]
pub fn openapi_json(state: &AppState) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(state.openapi())
}
