//! The original Flask tutorial's routes, with the same response shapes, for drop-in use:
//! `{"id": "..."}` for uuid, timestamp (a string of ms) and random strings, `{"id": <integer>}`
//! for the counter (named `default`, shared with `/v1/ids/counter`) and snowflakes. Unlike
//! the tutorial, these IDs are unique: they come from the same generators as `/v1`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use idgen_core::counter::CounterName;
use idgen_core::random::{self, Alphabet, Length};
use idgen_core::wire::{ErrorBody, IdResponse};
use idgen_core::{ParamError, Uuid};
use serde::Serialize;
use utoipa::ToSchema;

use super::{JSON, id_response, push_decimal, segment};
use crate::error::ApiError;
use crate::state::AppState;

/// The tutorial's integer shape (counter and snowflake); `/v1` always sends strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegerIdResponse {
    pub id: u64,
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
    tag = "compat",
    summary = "A UUID v4 (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": \"<uuid>\"}", body = IdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
#[get("/generate_uuid")]
pub async fn generate_uuid(state: web::Data<AppState>) -> HttpResponse {
    uuid(&state)
}

pub(super) fn uuid(state: &AppState) -> HttpResponse {
    // `encode_lower` rather than `Display`, which goes through `core::fmt` digit by digit.
    let mut text = Uuid::encode_buffer();
    let text = state.uuid(&mut rand::rng()).hyphenated().encode_lower(&mut text);
    string_id(|body| body.extend_from_slice(text.as_bytes()))
}

/// `GET /generate_timestamp_id`
#[utoipa::path(
    tag = "compat",
    summary = "A timestamp ID, ms since the Unix epoch as a string (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": \"<ms>\"}", body = IdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue now; see Retry-After", body = ErrorBody),
    )
)]
#[get("/generate_timestamp_id")]
pub async fn generate_timestamp_id(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    timestamp(&state).await
}

pub(super) async fn timestamp(state: &AppState) -> Result<HttpResponse, ApiError> {
    let value = state.timestamps(1).await?.start;
    Ok(string_id(|body| push_decimal(body, value)))
}

/// `GET /generate_counter_id`
#[utoipa::path(
    tag = "compat",
    summary = "The next value of the counter `default`, as an integer (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": <integer>}", body = IntegerIdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue now; see Retry-After", body = ErrorBody),
    )
)]
#[get("/generate_counter_id")]
pub async fn generate_counter_id(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    counter(&state).await
}

pub(super) async fn counter(state: &AppState) -> Result<HttpResponse, ApiError> {
    let values = state.counter_values(&CounterName::default(), 1).await?;
    Ok(integer_id(values.first().map_or(0, |range| *range.start())))
}

/// `GET /generate_snowflake_id`
#[utoipa::path(
    tag = "compat",
    summary = "A snowflake, as an integer (tutorial route)",
    responses(
        (status = 200, description = "{\"id\": <integer>}", body = IntegerIdResponse),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue now; see Retry-After", body = ErrorBody),
    )
)]
#[get("/generate_snowflake_id")]
pub async fn generate_snowflake_id(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    snowflake(&state).await
}

pub(super) async fn snowflake(state: &AppState) -> Result<HttpResponse, ApiError> {
    Ok(integer_id(state.snowflake().await?.get()))
}

/// `GET /generate_random_string/{length}`
#[utoipa::path(
    tag = "compat",
    summary = "An alphanumeric random string (tutorial route)",
    params(("length" = u32, Path, description = "1 to 1024")),
    responses(
        (status = 200, description = "{\"id\": \"<string>\"}", body = IdResponse),
        (status = 400, description = "Length out of range or not a number (invalid_length)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
#[get("/generate_random_string/{length}")]
pub async fn generate_random_string(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    random_string(segment(&request, "length"))
}

/// `length`: the path segment as sent.
pub(super) fn random_string(length: &str) -> Result<HttpResponse, ApiError> {
    let length = length.parse::<usize>().map_err(|_| ParamError::Length { max: Length::MAX })?;
    let length = Length::new(length)?;
    Ok(string_id(|body| {
        random::generate_into(&mut rand::rng(), length, Alphabet::Alphanumeric, body);
    }))
}
