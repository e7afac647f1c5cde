//! HTTP routes, one file per resource. Handlers stay thin: parse, call `AppState`, serialise.
//!
//! Route registration lives in `startup::app`; this module owns what every route shares: the
//! table of known paths (to tell 405 from 404 for the fallback service) and the
//! `Cache-Control: no-store` header of responses that carry IDs.

pub mod compat;
pub mod decode;
pub mod fixed;
pub mod health;
pub mod ids;
pub mod kinds;
pub mod openapi;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

/// Every route the server answers: its pattern, the methods it allows, and whether it is rate
/// limited (every route that issues, decodes or lists IDs; not the probes nor the document).
/// The fallback uses it to answer 405 (with `Allow`) rather than 404 for a known path, and the
/// rate-limited scope uses it as its guard; `startup`'s tests check it against what is
/// registered and documented.
pub const ROUTES: &[(&str, &str, RateLimited)] = &[
    ("/v1/ids/{kind}", "GET, POST", RateLimited::Yes),
    ("/v1/decode/{kind}/{id}", "GET", RateLimited::Yes),
    ("/v1/kinds", "GET", RateLimited::Yes),
    ("/generate_uuid", "GET", RateLimited::Yes),
    ("/generate_timestamp_id", "GET", RateLimited::Yes),
    ("/generate_counter_id", "GET", RateLimited::Yes),
    ("/generate_snowflake_id", "GET", RateLimited::Yes),
    ("/generate_random_string/{length}", "GET", RateLimited::Yes),
    ("/healthz", "GET", RateLimited::No),
    ("/readyz", "GET", RateLimited::No),
    ("/openapi.json", "GET", RateLimited::No),
];

/// Whether a route counts against the client's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimited {
    Yes,
    No,
}

/// Whether `path` matches `pattern` the way actix-router matches it: the same number of
/// `/`-separated segments, literal segments equal, each `{name}` segment non-empty (actix's
/// default `[^/]+`). Hand-written because the rate-limited scope's guard runs it on every
/// request, and a regex per route (what `ResourceDef::is_match` does) cost more than the
/// handler of most routes.
fn matches(pattern: &str, path: &str) -> bool {
    let mut patterns = pattern.split('/');
    let mut segments = path.split('/');
    loop {
        match (patterns.next(), segments.next()) {
            (None, None) => return true,
            (Some(expected), Some(segment)) => {
                let dynamic = expected.starts_with('{') && expected.ends_with('}');
                if (dynamic && segment.is_empty()) || (!dynamic && expected != segment) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn route_of(path: &str) -> Option<&'static (&'static str, &'static str, RateLimited)> {
    ROUTES.iter().find(|(pattern, _, _)| matches(pattern, path))
}

/// The methods a known path allows, or `None` for an unknown path.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    route_of(path).map(|(_, allow, _)| *allow)
}

/// Whether requests to `path` (any method) go through the rate limiter. Unknown paths do
/// not: a 404 costs nothing to answer.
pub fn is_rate_limited(path: &str) -> bool {
    route_of(path).is_some_and(|(_, _, limited)| *limited == RateLimited::Yes)
}

/// The default service: no registered route matched the path and method.
pub async fn fallback(request: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(match allowed_methods(request.path()) {
        Some(allow) => ApiError::MethodNotAllowed { allow },
        None => ApiError::NotFound,
    })
}

/// The JSON content type, as a static header value for [`HeaderValue::from_static`].
pub const JSON: &str = "application/json";

/// A 200 carrying IDs: `content_type` and `Cache-Control: no-store` (a cached ID is a
/// duplicate). Both header values are static (`ContentType` and `CacheControl` allocate and
/// format on every response) and go straight into the response's map: `HttpResponseBuilder`
/// converts each pair and checks for a stored error first, about 250 instructions per response.
pub fn id_response(content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::with_body(StatusCode::OK, body).map_into_boxed_body();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Appends `value` in decimal: `itoa` writes it in a few dozen instructions where `Display`
/// goes through `core::fmt` (about 200 per ID).
pub fn push_decimal(buffer: &mut Vec<u8>, value: u64) {
    buffer.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A path segment the router matched (`{kind}`, `{id}`, ...).
fn segment<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    request.match_info().get(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use actix_web::dev::ResourceDef;

    use super::*;

    #[test]
    fn matches_agrees_with_actix_router() {
        let paths = [
            "/",
            "",
            "/v1/ids/uuid7",
            "/v1/ids/",
            "/v1/ids",
            "/v1/ids/uuid7/",
            "/v1/ids//x",
            "/v1/ids/a%2Fb",
            "/v1/decode/ulid/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "/v1/decode/ulid/",
            "/v1/decode//x",
            "/v1/kinds",
            "/v1/kinds/",
            "/generate_uuid",
            "/generate_uuidx",
            "/generate_random_string/21",
            "/generate_random_string/",
            "/generate_random_string",
            "/healthz",
            "/readyz/",
            "/openapi.json",
            "/nope",
            "//v1/ids/uuid",
        ];
        for (pattern, _, _) in ROUTES {
            let def = ResourceDef::new(*pattern);
            for path in paths {
                assert_eq!(matches(pattern, path), def.is_match(path), "{pattern} vs {path:?}");
            }
        }
    }
}
