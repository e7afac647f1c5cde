//! `GET /v1/decode/{kind}/{id}`: what an ID says about itself (time, worker, sequence, or a
//! UUID's version and variant).

use actix_web::{HttpRequest, HttpResponse, get, web};
use idgen_core::wire::{DecodeResponse, ErrorBody, rfc3339_ms};
use idgen_core::{DecodeError, Kind};

use super::segment;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/decode/{kind}/{id}`
#[utoipa::path(
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
#[get("/v1/decode/{kind}/{id}")]
pub async fn decode(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let kind = Kind::from_name(segment(&request, "kind")).ok_or(ApiError::UnknownKind)?;
    let id = segment(&request, "id");
    Ok(HttpResponse::Ok().json(decode_id(kind, id, state.snowflake_config().epoch_ms)?))
}

fn decode_id(kind: Kind, id: &str, epoch_ms: u64) -> Result<DecodeResponse, DecodeError> {
    let with_time = |timestamp_ms: u64| DecodeResponse {
        id: id.to_owned(),
        timestamp_ms: Some(timestamp_ms),
        time: Some(rfc3339_ms(timestamp_ms)),
        ..DecodeResponse::default()
    };
    Ok(match kind {
        Kind::Snowflake => {
            let parts = idgen_core::snowflake::decode(id, epoch_ms)?;
            DecodeResponse {
                worker_id: Some(parts.worker_id),
                sequence: Some(parts.sequence),
                ..with_time(parts.timestamp_ms)
            }
        }
        Kind::Uuid7 => with_time(idgen_core::uuid7::decode(id)?),
        Kind::Ulid => with_time(idgen_core::ulid::decode(id)?),
        Kind::Timestamp => with_time(idgen_core::timestamp::decode(id)?),
        Kind::Uuid => {
            let fields = idgen_core::uuid::decode(id)?;
            DecodeResponse {
                id: id.to_owned(),
                version: Some(fields.version),
                variant: Some(fields.variant.to_owned()),
                ..DecodeResponse::default()
            }
        }
        Kind::Counter | Kind::Random => {
            return Err(DecodeError::NotDecodable { kind: kind.name() });
        }
    })
}
