//! `GET /v1/decode/{kind}/{id}`: what an ID says about itself (time, worker, sequence, or a
//! UUID's version and variant), by the catalogue's decoder of the kind.

use actix_web::HttpResponse;
use idgen_core::Kind;
use idgen_core::wire::{DecodeResponse, ErrorBody};

use crate::auth::Key;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/decode/{kind}/{id}`
#[utoipa::path(
    get,
    path = "/v1/decode/{kind}/{id}",
    tag = "decode",
    summary = "Decode an ID",
    description = "snowflake: timestamp_ms, time, worker_id, sequence (with the server's epoch); \
                   uuid7, ulid, timestamp: timestamp_ms, time; uuid: version, variant. \
                   counter and random IDs carry nothing to decode.",
    params(
        ("kind" = String, Path, description = "uuid, uuid7, ulid, snowflake or timestamp"),
        ("id" = String, Path, description = "The ID to decode"),
    ),
    responses(
        (status = 200, description = "The decoded fields", body = DecodeResponse),
        (status = 400, description = "Malformed ID (invalid_id) or a kind that cannot be decoded (not_decodable)", body = ErrorBody),
        (status = 404, description = "Unknown kind", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub fn decode(
    state: &AppState,
    kind: &str,
    id: &str,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    let kind = Kind::from_name(kind).ok_or(ApiError::UnknownKind)?;
    crate::auth::permit_decode(caller, kind)?;
    Ok(HttpResponse::Ok().json(kind.decode(id, &state.decode_context())?))
}
