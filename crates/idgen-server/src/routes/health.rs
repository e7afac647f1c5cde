//! `GET /healthz` (the process is up) and `GET /readyz` (it can issue every kind now).
//! Neither is rate limited.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use idgen_core::wire::HealthResponse;

use crate::error;
use crate::state::AppState;

const OK: &str = r#"{"status":"ok"}"#;

/// `GET /healthz`
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness",
    responses((status = 200, description = "The process is up", body = HealthResponse))
)]
pub fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(OK)
}

/// `GET /readyz`
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness",
    responses(
        (status = 200, description = "Every kind can be issued", body = HealthResponse),
        (status = 503, description = "Some kind cannot be issued now; `reasons` says why, Retry-After when to ask again", body = HealthResponse),
    )
)]
pub async fn readyz(state: &AppState) -> HttpResponse {
    let readiness = state.issuer().readiness().await;
    if readiness.reasons.is_empty() {
        HttpResponse::Ok().content_type(ContentType::json()).body(OK)
    } else {
        error::not_ready(readiness.reasons, readiness.retry_after_secs)
    }
}
