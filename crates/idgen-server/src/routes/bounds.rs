//! `GET /v1/bounds/{kind}?time=`: the smallest and largest ID a time-ordered kind can have for
//! one millisecond (one second for ksuid), for range scans: `WHERE id >= min AND id <= max`.
//!
//! `time` is declared as Unix ms, bounded by what the kind holds; an RFC 3339 date-time is
//! read too, and said so in the operation's text: a schema cannot bound a date-time with an
//! offset, and a document promising a 200 for one the kind cannot hold would be wrong.

use actix_web::HttpResponse;
use idgen_core::typeid::Prefix;
use idgen_core::wire::{BoundsResponse, ErrorBody};
use idgen_core::{Kind, ParamError};

use crate::auth::Key;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/bounds/{kind}`
#[utoipa::path(
    get,
    path = "/v1/bounds/{kind}",
    tag = "decode",
    summary = "The smallest and largest ID of one millisecond",
    description = "For the time-ordered kinds (uuid7, ulid, snowflake, timestamp, typeid, ksuid): \
                   the smallest and largest ID that kind can have for the millisecond `time` (for \
                   ksuid, the second it falls in), so that `WHERE id >= min AND id <= max` selects \
                   it. `time` is Unix ms or an RFC 3339 date-time such as 2026-12-06T21:00:00Z \
                   (finer than ms: the ms it falls in). A kind not ordered by time is 400 \
                   not_time_ordered; a time the kind cannot hold, or past the year 9999, 400 \
                   invalid_time. typeid takes `prefix`, put in front of both bounds.",
    params(
        ("kind" = String, Path, description = "uuid7, ulid, snowflake, timestamp, typeid or ksuid"),
        ("time" = String, Query, description = "Unix ms or an RFC 3339 date-time"),
    ),
    responses(
        (status = 200, description = "The bounds", body = BoundsResponse),
        (status = 400, description = "A kind not ordered by time (not_time_ordered), a time it cannot hold (invalid_time) or a bad prefix (invalid_prefix)", body = ErrorBody),
        (status = 404, description = "Unknown kind", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub fn bounds(
    state: &AppState,
    kind: &str,
    query: &str,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    let kind = Kind::from_name(kind).ok_or(ApiError::UnknownKind)?;
    crate::auth::permit_decode(caller, kind)?;
    let time = super::query_value(query, "time");
    let time = time.as_deref().and_then(idgen_core::wire::parse_time_ms).ok_or(ParamError::Time)?;
    let prefix = match (kind, super::query_value(query, "prefix")) {
        (Kind::TypeId, Some(prefix)) => Prefix::parse(&prefix)?,
        _ => Prefix::default(),
    };
    let bounds = kind.bounds(time, &state.decode_context())?;
    let with_prefix = |id: String| match prefix.as_str() {
        "" => id,
        prefix => format!("{prefix}_{id}"),
    };
    let (min, max) = (with_prefix(bounds.min), with_prefix(bounds.max));
    Ok(HttpResponse::Ok().json(BoundsResponse::new(kind.name(), bounds.timestamp_ms, min, max)))
}
