//! The API's errors, and the only place that knows their HTTP status codes.
//!
//! Every failure a handler can meet is an [`ApiError`]; one `match` turns it into a status, the
//! headers that go with it (`Allow`, `Retry-After`, `RateLimit-*`) and the one body shape
//! `{"error": {"code", "message"}}`. Messages are written for the API's users; internal causes
//! (I/O errors, panics in a blocking task) are logged with their chain and never sent.
//!
//! Errors that actix produces itself (a body it cannot read, a payload that is too large) are
//! rewritten into the same shape by [`error_handlers`], so no response ever shows a Rust type,
//! a path or an address.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use idgen_core::wire::{ErrorBody, ErrorCode, HealthResponse};
use idgen_core::{BoundsError, DecodeError, KINDS, ParamError};

use crate::backend::BackendError;

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query or body parameter is invalid.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The request body (or another part of the request) cannot be read; the message is for the
    /// user.
    #[error("{0}")]
    InvalidBody(String),
    #[error("unknown kind")]
    UnknownKind,
    #[error("too many counters (limit {max})")]
    TooManyCounters { max: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    #[error("no such route")]
    NotFound,
    /// The admin route named a counter this node does not keep.
    #[error("no such counter")]
    UnknownCounter,
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed { allow: &'static str },
    #[error("no acceptable media type")]
    NotAcceptable,
    /// Over the per-client rate limit. `limit` is the burst; both times are whole seconds,
    /// rounded up.
    #[error("rate limited for {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64, limit: u32, reset_secs: u64 },
    /// No API key, or an unknown one.
    #[error("unauthorized")]
    Unauthorized,
    /// The API key may not `what` (a sentence fragment: "issue snowflake ids").
    #[error("forbidden: {what}")]
    Forbidden { what: String },
    /// A browser preflight from a web origin not in `IDGEN_CORS_ORIGINS`.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// The API key's daily quota (`limit` IDs) is spent until UTC midnight, `reset_secs` away.
    #[error("daily quota of {limit} ids spent")]
    QuotaExhausted { limit: u64, reset_secs: u64 },
    /// IDs cannot be issued right now; [`Refusal`] says why, and when to ask again.
    #[error("{}", .0.message())]
    Unavailable(Refusal),
    /// A bug or an environment failure; logged, never described to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// An error response actix built itself, rewritten into our shape with its status kept.
    #[error("request failed with status {0}")]
    Foreign(StatusCode),
}

/// Why IDs cannot be issued right now: every 503 the server sends, with its text and its
/// `Retry-After`. `store` names the back end as its refusals do ("cannot reach its Redis").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The clock is `behind_ms` behind the last `kind` id issued, more than the allowance.
    ClockBehind { kind: &'static str, behind_ms: u64, allowance_ms: u64 },
    /// The clock reads a time `kind` ids cannot represent (before the epoch, past its end).
    TimeOutOfRange { kind: &'static str },
    /// No `kind` ids are left for this moment.
    Exhausted { kind: &'static str },
    /// Every snowflake sequence number the clock allows is taken, for longer than a request
    /// waits.
    SequenceExhausted,
    /// Concurrent requests used up every raised ceiling within the request's deadline.
    CeilingUnavailable,
    /// A mark could not be made durable (the data directory cannot be written).
    NotDurable,
    /// The back end did not answer.
    StoreUnreachable { store: &'static str },
    /// This node holds no worker id now (its lease could not be renewed).
    NoWorkerId { store: &'static str, retry_after_secs: u64 },
    /// The shared rate limiter could not ask its back end (and `IDGEN_RATE_LIMIT_FAIL=closed`).
    RateLimiterUnreachable { store: &'static str },
    /// The back end lost what it had acknowledged; only an operator can resume issuing.
    StoreRegressed { store: &'static str },
    /// The kind's durable mark is at the end of what its IDs can hold.
    MarkAtRangeEnd { kind: &'static str },
    /// The counter is being retired (an operator's `DELETE /v1/counters/{name}`).
    CounterRetiring,
}

impl Refusal {
    /// The sentence the client reads.
    pub fn message(&self) -> String {
        match self {
            Refusal::ClockBehind { kind, behind_ms, .. } => format!(
                "the server's clock is {behind_ms} ms behind the last {kind} id it issued; \
                 {kind} ids resume when the clock catches up"
            ),
            Refusal::TimeOutOfRange { kind } => format!(
                "the server's clock reads a time that {kind} ids cannot represent; the operator must check the clock and the epoch"
            ),
            Refusal::Exhausted { kind } => {
                format!("no {kind} ids are left for this moment; retry in a moment")
            }
            Refusal::SequenceExhausted => {
                "every snowflake sequence number the clock allows is in use; retry in a moment"
                    .to_owned()
            }
            Refusal::CeilingUnavailable => {
                "the server could not reserve ids durably; retry in a moment".to_owned()
            }
            Refusal::NotDurable => {
                "the server cannot save its state right now, so it issues no more ids of this kind; retry later".to_owned()
            }
            Refusal::StoreUnreachable { store } => {
                format!("the server cannot reach its {store} right now; retry in a moment")
            }
            Refusal::NoWorkerId { store, .. } => format!(
                "this node holds no snowflake worker id right now (its {store} lease could not be renewed); retry in a moment or use another node"
            ),
            Refusal::RateLimiterUnreachable { store } => {
                format!("the rate limiter cannot reach its {store} right now; retry in a moment")
            }
            Refusal::CounterRetiring => {
                "this counter is being retired by the operator; retry in a moment".to_owned()
            }
            Refusal::MarkAtRangeEnd { kind } => format!(
                "the server's durable {kind} mark is at the end of what {kind} ids can hold, so it issues no more of them; the operator must act (docs/operations.md#runaway-marks); use another kind"
            ),
            Refusal::StoreRegressed { store } => format!(
                "the server's {store} lost data it had acknowledged (it restarted empty, was flushed, evicted keys or failed over to a replica that lagged), so it could hand out ids that were already issued; it refuses until an operator runs `idgen-server recover`; use another kind or retry later"
            ),
        }
    }

    /// The cause as a metrics label (one of `observe::metrics::REFUSAL_REASONS`).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::ClockBehind { .. } => "clock_behind",
            Refusal::TimeOutOfRange { .. } => "time_out_of_range",
            Refusal::Exhausted { .. } => "exhausted",
            Refusal::SequenceExhausted => "sequence_exhausted",
            Refusal::CeilingUnavailable => "ceiling_unavailable",
            Refusal::NotDurable => "not_durable",
            Refusal::StoreUnreachable { .. } => "store_unreachable",
            Refusal::NoWorkerId { .. } => "no_worker_id",
            Refusal::RateLimiterUnreachable { .. } => "rate_limiter_unreachable",
            Refusal::StoreRegressed { .. } => "store_regressed",
            Refusal::MarkAtRangeEnd { .. } => "mark_at_range_end",
            Refusal::CounterRetiring => "counter_retiring",
        }
    }

    /// The stable code of this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::StoreRegressed { .. } => ErrorCode::StoreRegressed,
            _ => ErrorCode::Unavailable,
        }
    }

    /// Seconds the client should wait before asking again (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = match self {
            Refusal::ClockBehind { behind_ms, allowance_ms, .. } => {
                behind_ms.saturating_sub(*allowance_ms).div_ceil(1000)
            }
            Refusal::TimeOutOfRange { .. }
            | Refusal::StoreRegressed { .. }
            | Refusal::MarkAtRangeEnd { .. } => 60,
            Refusal::NoWorkerId { retry_after_secs, .. } => *retry_after_secs,
            Refusal::Exhausted { .. }
            | Refusal::SequenceExhausted
            | Refusal::CeilingUnavailable
            | Refusal::CounterRetiring
            | Refusal::NotDurable
            | Refusal::StoreUnreachable { .. }
            | Refusal::RateLimiterUnreachable { .. } => 1,
        };
        secs.max(1)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::Unavailable(refusal)
    }
}

/// A back end's failure as the client's answer; the cause goes to the log.
impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Unreachable { store, detail } => {
                // Logged once per incident by the observed back end.
                tracing::debug!(error = %detail, store, "store call failed");
                Refusal::StoreUnreachable { store }.into()
            }
            BackendError::NotDurable { detail } => {
                tracing::debug!(error = %detail, "cannot make a high-water mark durable");
                Refusal::NotDurable.into()
            }
            BackendError::Regressed { store, .. } => Refusal::StoreRegressed { store }.into(),
            BackendError::TooManyCounters { max } => ApiError::TooManyCounters { max },
            BackendError::NewCounterRefused { what } => ApiError::Forbidden { what },
            BackendError::Internal { detail } => ApiError::Internal(anyhow::anyhow!(detail)),
        }
    }
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Param(error) => match error {
                ParamError::Count { .. } => ErrorCode::InvalidCount,
                ParamError::Length { .. } => ErrorCode::InvalidLength,
                ParamError::Alphabet | ParamError::Chars { .. } => ErrorCode::InvalidAlphabet,
                ParamError::CounterName => ErrorCode::InvalidCounterName,
                ParamError::Prefix => ErrorCode::InvalidPrefix,
                ParamError::Strict => ErrorCode::InvalidStrict,
                ParamError::Time => ErrorCode::InvalidTime,
                // Worker ids come from configuration, never from a request.
                ParamError::WorkerId { .. } => ErrorCode::Internal,
            },
            ApiError::InvalidBody(_) => ErrorCode::InvalidBody,
            ApiError::UnknownKind => ErrorCode::UnknownKind,
            ApiError::TooManyCounters { .. } => ErrorCode::TooManyCounters,
            ApiError::Decode(
                DecodeError::Malformed { .. } | DecodeError::TimeOutOfRange { .. },
            ) => ErrorCode::InvalidId,
            ApiError::Decode(DecodeError::NotDecodable { .. }) => ErrorCode::NotDecodable,
            ApiError::Bounds(BoundsError::NotTimeOrdered { .. }) => ErrorCode::NotTimeOrdered,
            ApiError::Bounds(BoundsError::OutOfRange { .. }) => ErrorCode::InvalidTime,
            ApiError::NotFound | ApiError::UnknownCounter => ErrorCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::NotAcceptable => ErrorCode::NotAcceptable,
            ApiError::RateLimited { .. } | ApiError::QuotaExhausted { .. } => {
                ErrorCode::RateLimited
            }
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::OriginNotAllowed => ErrorCode::Forbidden,
            ApiError::Forbidden { .. } => ErrorCode::Forbidden,
            ApiError::Unavailable(refusal) => refusal.code(),
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::Foreign(status) => match status.as_u16() {
                404 => ErrorCode::NotFound,
                405 => ErrorCode::MethodNotAllowed,
                406 => ErrorCode::NotAcceptable,
                408 => ErrorCode::RequestTimeout,
                431 => ErrorCode::HeadersTooLarge,
                429 => ErrorCode::RateLimited,
                503 => ErrorCode::Unavailable,
                400..=499 => ErrorCode::InvalidBody,
                _ => ErrorCode::Internal,
            },
        }
    }

    /// The sentence the user reads.
    pub fn message(&self) -> String {
        match self {
            ApiError::Param(ParamError::WorkerId { .. }) | ApiError::Internal(_) => {
                "internal error; the server logged the details".to_owned()
            }
            ApiError::Param(error) => error.to_string(),
            ApiError::InvalidBody(message) => message.clone(),
            ApiError::UnknownKind => {
                let names: Vec<&str> = KINDS.iter().map(|kind| kind.name).collect();
                format!(
                    "unknown kind; use one of: {} (GET /v1/kinds describes them)",
                    names.join(", ")
                )
            }
            ApiError::TooManyCounters { max } => format!(
                "this server already keeps the maximum of {max} counters; use an existing counter name"
            ),
            ApiError::Decode(error) => error.to_string(),
            ApiError::Bounds(error) => error.to_string(),
            ApiError::NotFound => "no such route; GET /openapi.json lists every route".to_owned(),
            ApiError::UnknownCounter => {
                "this node keeps no counter of that name (GET /v1/status lists them)".to_owned()
            }
            ApiError::MethodNotAllowed { allow } => {
                format!("method not allowed on this route; use {allow}")
            }
            ApiError::NotAcceptable => {
                "cannot answer in the requested media type; accept application/json or text/plain"
                    .to_owned()
            }
            ApiError::RateLimited { retry_after_secs, .. } => {
                format!("too many requests from this client; retry in {retry_after_secs} s")
            }
            ApiError::Unauthorized => "an API key is required: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`; this one is missing or unknown".to_owned(),
            ApiError::Forbidden { what } => format!("this API key may not {what}"),
            ApiError::OriginNotAllowed => {
                "this web origin may not call the API (it is not in IDGEN_CORS_ORIGINS)".to_owned()
            }
            ApiError::QuotaExhausted { limit, reset_secs } => format!(
                "this API key's daily quota of {limit} ids is spent; it resets at 00:00 UTC, in {reset_secs} s"
            ),
            ApiError::Unavailable(refusal) => refusal.message(),
            ApiError::Foreign(status) => match status.as_u16() {
                404 => ApiError::NotFound.message(),
                405 => "method not allowed on this route".to_owned(),
                408 => "the request took too long to arrive; send it again".to_owned(),
                413 => "the request body is too large".to_owned(),
                414 => "the request URI is too long".to_owned(),
                415 => "unsupported content type; send JSON".to_owned(),
                431 => "the request headers are too large".to_owned(),
                429 => "too many requests from this client; retry later".to_owned(),
                503 => "the server cannot answer right now; retry later".to_owned(),
                400..=499 => "the request could not be read; check its syntax".to_owned(),
                _ => "internal error; the server logged the details".to_owned(),
            },
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs, .. } => Some((*retry_after_secs).max(1)),
            ApiError::QuotaExhausted { reset_secs, .. } => Some((*reset_secs).max(1)),
            ApiError::Unavailable(refusal) => Some(refusal.retry_after_secs()),
            ApiError::Foreign(status) if *status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Param(ParamError::WorkerId { .. }) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Param(_)
            | ApiError::InvalidBody(_)
            | ApiError::TooManyCounters { .. }
            | ApiError::Decode(_)
            | ApiError::Bounds(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownKind | ApiError::NotFound | ApiError::UnknownCounter => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::RateLimited { .. } | ApiError::QuotaExhausted { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Foreign(status) => *status,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            ApiError::Param(ParamError::WorkerId { .. }) => {
                tracing::error!("a request reached a worker id check; this is a bug")
            }
            // Logged once per incident by the router (`AppState::observe_refusal`).
            ApiError::Unavailable(refusal) => {
                tracing::debug!(message = %refusal.message(), "cannot issue ids")
            }
            _ => {}
        }
        let mut response = HttpResponseBuilder::new(self.status_code());
        if let ApiError::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, *allow));
        }
        if let Some(secs) = self.retry_after_secs() {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        if let ApiError::RateLimited { limit, reset_secs, .. } = self {
            response.insert_header(("ratelimit-limit", *limit));
            response.insert_header(("ratelimit-remaining", 0));
            response.insert_header(("ratelimit-reset", (*reset_secs).max(1)));
        }
        if let ApiError::QuotaExhausted { limit, reset_secs } = self {
            response.insert_header(("ratelimit-limit", *limit));
            response.insert_header(("ratelimit-remaining", 0));
            response.insert_header(("ratelimit-reset", *reset_secs));
        }
        if let ApiError::Unauthorized = self {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        json_response(response, &ErrorBody::new(self.code(), self.message()))
    }
}

fn json_response(mut builder: HttpResponseBuilder, body: &impl serde::Serialize) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => builder.content_type(mime_json()).body(bytes),
        // Serialising our own plain structs cannot fail; answer something valid regardless.
        Err(_) => builder
            .content_type(mime_json())
            .body(r#"{"error":{"code":"internal","message":"internal error"}}"#),
    }
}

fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

impl ApiError {
    /// Over a rate limit whose bucket holds `limit` and has a token again after `wait`: both
    /// times in whole seconds, rounded up (a 1/s limit must not say "retry after 0").
    pub fn rate_limited(wait: std::time::Duration, limit: u32) -> ApiError {
        let retry_after_secs = crate::rate_limit::ceil_secs(wait).max(1);
        ApiError::RateLimited { retry_after_secs, limit, reset_secs: retry_after_secs }
    }
}

/// `/readyz` when the server cannot issue every kind: 503 with the reasons and `Retry-After`.
pub fn not_ready(reasons: Vec<String>, retry_after_secs: u64) -> HttpResponse {
    let mut response = HttpResponseBuilder::new(StatusCode::SERVICE_UNAVAILABLE);
    response.insert_header((header::RETRY_AFTER, retry_after_secs.max(1)));
    json_response(response, &HealthResponse::new("unavailable", reasons))
}

/// Middleware that rewrites every error response not already in our JSON shape (actix's own
/// extractor, payload and routing errors) into it, keeping the status.
pub fn error_handlers<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(rewrite_foreign_error)
}

fn rewrite_foreign_error<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    let (request, _) = response.into_parts();
    let mut rewritten = ApiError::Foreign(status).error_response();
    if let Some(allow) = allow {
        rewritten.headers_mut().insert(header::ALLOW, allow);
    }
    let rewritten: HttpResponse<EitherBody<B, BoxBody>> = rewritten.map_into_right_body();
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(request, rewritten)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn render(
        error: ApiError,
    ) -> (StatusCode, actix_web::http::header::HeaderMap, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    async fn check(error: ApiError, status: u16, code: &str) -> serde_json::Value {
        let (actual, _, body) = render(error).await;
        assert_eq!(actual.as_u16(), status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        body
    }

    #[actix_web::test]
    async fn every_error_maps_to_status_and_code() {
        check(ParamError::Count { max: 10 }.into(), 400, "invalid_count").await;
        check(ParamError::Length { max: 1024 }.into(), 400, "invalid_length").await;
        check(ParamError::Alphabet.into(), 400, "invalid_alphabet").await;
        check(ParamError::CounterName.into(), 400, "invalid_counter_name").await;
        check(ApiError::InvalidBody("bad".into()), 400, "invalid_body").await;
        check(ApiError::UnknownKind, 404, "unknown_kind").await;
        check(ApiError::TooManyCounters { max: 3 }, 400, "too_many_counters").await;
        check(
            DecodeError::Malformed { kind: "uuid", reason: "wrong length" }.into(),
            400,
            "invalid_id",
        )
        .await;
        check(DecodeError::NotDecodable { kind: "random" }.into(), 400, "not_decodable").await;
        check(ApiError::NotFound, 404, "not_found").await;
        check(ApiError::NotAcceptable, 406, "not_acceptable").await;
        check(ApiError::Foreign(StatusCode::PAYLOAD_TOO_LARGE), 413, "invalid_body").await;
        check(ApiError::Foreign(StatusCode::BAD_GATEWAY), 502, "internal").await;
    }

    #[actix_web::test]
    async fn internal_causes_are_not_sent() {
        let cause = anyhow::anyhow!("open /var/lib/idgen/state.json: Permission denied")
            .context("std::io::Error at src/store/embedded.rs:12");
        let body = check(ApiError::Internal(cause), 500, "internal").await;
        let text = body.to_string();
        assert!(
            !text.contains("/var/lib") && !text.contains("::") && !text.contains(".rs"),
            "{text}"
        );
    }

    #[actix_web::test]
    async fn headers_of_405_429_503() {
        let (_, headers, _) = render(ApiError::MethodNotAllowed { allow: "GET, POST" }).await;
        assert_eq!(headers.get(header::ALLOW).unwrap(), "GET, POST");

        let (status, headers, body) =
            render(ApiError::RateLimited { retry_after_secs: 2, limit: 5, reset_secs: 2 }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], "rate_limited");
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "2");
        assert_eq!(headers.get("ratelimit-limit").unwrap(), "5");
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), "0");
        assert_eq!(headers.get("ratelimit-reset").unwrap(), "2");

        let behind = Refusal::ClockBehind { kind: "snowflake", behind_ms: 900, allowance_ms: 1000 };
        let (status, headers, _) = render(behind.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/json");
    }
}
