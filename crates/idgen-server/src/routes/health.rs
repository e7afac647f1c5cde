//! `GET /healthz` (the process is up) and `GET /readyz` (it can issue every kind now).
//! Neither is rate limited.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, get, web};
use idgen_core::wire::HealthResponse;

use crate::error;
use crate::state::AppState;

const OK: &str = r#"{"status":"ok"}"#;

/// `GET /healthz`
#[utoipa::path(
    tag = "health",
    summary = "Liveness",
    responses((status = 200, description = "The process is up", body = HealthResponse))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(OK)
}

/// `GET /readyz`
#[utoipa::path(
    tag = "health",
    summary = "Readiness",
    responses(
        (status = 200, description = "Every kind can be issued", body = HealthResponse),
        (status = 503, description = "Some kind cannot be issued now; `reasons` says why, Retry-After when to ask again", body = HealthResponse),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (reasons, retry_after_secs) = state.readiness().await;
    if reasons.is_empty() {
        HttpResponse::Ok().content_type(ContentType::json()).body(OK)
    } else {
        error::not_ready(reasons, retry_after_secs)
    }
}
