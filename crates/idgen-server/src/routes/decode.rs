//! `GET /v1/decode/{kind}/{id}`: what an ID says about itself (time, worker, sequence, or a
//! UUID's version and variant), by the catalogue's decoder of the kind; `?strict=true` takes
//! only the canonical text.
//!
//! `strict` is described in the operation's text rather than declared as a parameter: the
//! texts an `id` may be would then depend on another parameter, which OpenAPI cannot say,
//! and a document that declared both would promise a 200 that strict mode refuses.

use actix_web::HttpResponse;
use idgen_core::wire::{DecodeResponse, ErrorBody};
use idgen_core::{Kind, ParamError};

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
                   counter and random IDs carry nothing to decode. A time past \
                   9999-12-31T23:59:59.999Z is refused (400 invalid_id): RFC 3339 cannot write it. \
                   With the query `strict=true`, only the canonical text is read (UUIDs lowercase \
                   and hyphenated with a version RFC 9562 defines, or nil or max; ULIDs upper \
                   case; numbers without leading zeros), anything else being 400 invalid_id; \
                   `strict=false`, the default, reads what the parser reads.",
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
    query: &str,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    let kind = Kind::from_name(kind).ok_or(ApiError::UnknownKind)?;
    crate::auth::permit_decode(caller, kind)?;
    let context = state.decode_context().strict(strict(query)?);
    Ok(HttpResponse::Ok().json(kind.decode(id, &context)?))
}

/// The query's `strict` (its first occurrence, as for the ID routes): absent is `false`.
fn strict(query: &str) -> Result<bool, ParamError> {
    match super::query_value(query, "strict").as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ParamError::Strict),
    }
}
