//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes as `startup::app` registers them, and serialised once per app.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, get, web};
use utoipa::OpenApi;

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
        (name = "decode", description = "Decode IDs"),
        (name = "kinds", description = "The catalogue of kinds"),
        (name = "compat", description = "The original tutorial's routes, same shapes"),
        (name = "health", description = "Liveness and readiness (not rate limited)"),
    )
)]
pub struct ApiDoc;

/// The serialised document, shared as app data.
pub struct OpenApiJson(pub web::Bytes);

impl OpenApiJson {
    pub fn new(document: &utoipa::openapi::OpenApi) -> Self {
        Self(web::Bytes::from(document.to_json().expect("an OpenAPI document serialises")))
    }
}

/// `GET /openapi.json`
#[utoipa::path(
    tag = "health",
    summary = "This document",
    responses((status = 200, description = "OpenAPI document of every route", content_type = "application/json"))
)]
#[get("/openapi.json")]
pub async fn openapi_json(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(document.0.clone())
}
