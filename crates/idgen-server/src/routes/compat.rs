//! The original Flask tutorial's routes, with the same response shapes, for drop-in use:
//! `{"id": "..."}` for uuid, timestamp (a string of ms) and random strings, `{"id": <integer>}`
//! for the counter (named `default`, shared with `/v1/ids/counter`) and snowflakes. Unlike
//! the tutorial, these IDs are unique: they come from the same generators as `/v1`.

use actix_web::HttpResponse;
use idgen_core::counter::CounterName;
use idgen_core::random::{self, Alphabet, Length};
use idgen_core::wire::{ErrorBody, IdResponse};
use idgen_core::{Kind, ParamError, Uuid};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Handler, JSON, id_response};
use crate::auth::{self, Key};
use crate::error::ApiError;
use crate::issue::push_decimal;
use crate::state::AppState;

/// The tutorial's integer shape (counter and snowflake); `/v1` always sends strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegerIdResponse {
    pub id: u64,
}

/// The kind a tutorial route issues.
pub fn kind_of(handler: Handler) -> Option<Kind> {
    match handler {
        Handler::GenerateUuid => Some(Kind::Uuid),
        Handler::GenerateTimestampId => Some(Kind::Timestamp),
        Handler::GenerateCounterId => Some(Kind::Counter),
        Handler::GenerateSnowflakeId => Some(Kind::Snowflake),
        Handler::GenerateRandomString => Some(Kind::Random),
        _ => None,
    }
}

/// `{"id":"<id>"}`, the ID written by `write` straight into the body. IDs need no JSON
/// escaping (see `ids`).
fn string_id(write: impl FnOnce(&mut Vec<u8>)) -> HttpResponse {
    let mut body = Vec::with_capacity(48);
    body.extend_from_slice(b"{\"id\":\"");
    write(&mut body);
    body.extend_from_slice(b"\"}");
    id_response(JSON, body)
}

fn integer_id(id: u64) -> HttpResponse {
    let mut body = Vec::with_capacity(28);
    body.extend_from_slice(b"{\"id\":");
    push_decimal(&mut body, id);
    body.push(b'}');
    id_response(JSON, body)
}

/// `GET /generate_uuid`
#[utoipa::path(
    get,
    path = "/generate_uuid",
    tag = "compat",
    summary = "A UUID v4 (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": \"<uuid>\"}", body = IdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub async fn generate_uuid(
    state: &AppState,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    for_caller(state, caller, Kind::Uuid, async {
        state.observer().metrics.issued(Kind::Uuid, 1);
        // `encode_lower` rather than `Display`, which goes through `core::fmt` digit by digit.
        let mut text = Uuid::encode_buffer();
        let text = state.issuer().uuid(&mut rand::rng()).hyphenated().encode_lower(&mut text);
        Ok(string_id(|body| body.extend_from_slice(text.as_bytes())))
    })
    .await
}

/// `issue` (which issues one ID of `kind`) for `caller`: at once without API keys; with them,
/// once `caller` may have one ID of `kind` (the counter `default` for a counter), spent from
/// its limits, and counted in its usage once issued. Boxed: a keyed request's wait on the
/// store, and the key it holds across `issue`, stay out of every open request's future.
async fn for_caller(
    state: &AppState,
    caller: Option<&Key>,
    kind: Kind,
    issue: impl Future<Output = Result<HttpResponse, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = caller else { return issue.await };
    Box::pin(async move {
        auth::permit(state, key, kind, &CounterName::default(), 1).await?;
        let answer = issue.await?;
        key.usage.add(1);
        Ok(answer)
    })
    .await
}

/// `GET /generate_timestamp_id`
#[utoipa::path(
    get,
    path = "/generate_timestamp_id",
    tag = "compat",
    summary = "A timestamp ID, ms since the Unix epoch as a string (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": \"<ms>\"}", body = IdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue now; see Retry-After", body = ErrorBody),
    )
)]
pub async fn generate_timestamp_id(
    state: &AppState,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    for_caller(state, caller, Kind::Timestamp, async {
        let value = state.issuer().timestamps(1).await?.start;
        state.observer().metrics.issued(Kind::Timestamp, 1);
        Ok(string_id(|body| push_decimal(body, value)))
    })
    .await
}

/// `GET /generate_counter_id`
#[utoipa::path(
    get,
    path = "/generate_counter_id",
    tag = "compat",
    summary = "The next value of the counter `default`, as an integer (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": <integer>}", body = IntegerIdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue now; see Retry-After", body = ErrorBody),
    )
)]
pub async fn generate_counter_id(
    state: &AppState,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    for_caller(state, caller, Kind::Counter, async {
        let values = state.issuer().counter_values(&CounterName::default(), 1).await?;
        state.observer().metrics.issued(Kind::Counter, 1);
        Ok(integer_id(values.first().map_or(0, |range| *range.start())))
    })
    .await
}

/// `GET /generate_snowflake_id`
#[utoipa::path(
    get,
    path = "/generate_snowflake_id",
    tag = "compat",
    summary = "A snowflake, as an integer (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": <integer>}", body = IntegerIdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue now; see Retry-After", body = ErrorBody),
    )
)]
pub async fn generate_snowflake_id(
    state: &AppState,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    for_caller(state, caller, Kind::Snowflake, async {
        let id = state.issuer().snowflake().await?.get();
        state.observer().metrics.issued(Kind::Snowflake, 1);
        Ok(integer_id(id))
    })
    .await
}

/// `GET /generate_random_string/{length}`
#[utoipa::path(
    get,
    path = "/generate_random_string/{length}",
    tag = "compat",
    summary = "An alphanumeric random string (tutorial route)",
    params(("length" = u32, Path, description = "1 to 1024")),
    responses(
        (status = 200, description = "{\"id\": \"<string>\"}", body = IdResponse),
        (status = 400, description = "Length out of range or not a number (invalid_length)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
/// `length`: the path segment (as actix's router sees it: `%32` is `2`).
pub async fn generate_random_string(
    state: &AppState,
    length: &str,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    let length = length.parse::<usize>().map_err(|_| ParamError::Length { max: Length::MAX })?;
    let length = Length::new(length)?;
    for_caller(state, caller, Kind::Random, async {
        state.observer().metrics.issued(Kind::Random, 1);
        Ok(string_id(|body| {
            random::generate_into(&mut rand::rng(), length, Alphabet::Alphanumeric, body);
        }))
    })
    .await
}
