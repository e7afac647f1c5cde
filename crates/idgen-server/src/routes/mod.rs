//! HTTP routes, one file per resource. Handlers stay thin: parse, call `AppState`, serialise.
//!
//! Route registration lives in `startup::app`; this module owns what every route shares: the
//! table of known paths (to tell 405 from 404 for the fallback service) and the
//! `Cache-Control: no-store` header of responses that carry IDs.

pub mod compat;
pub mod decode;
pub mod health;
pub mod ids;
pub mod kinds;
pub mod openapi;

use std::sync::LazyLock;

use actix_web::HttpRequest;
use actix_web::dev::ResourceDef;
use actix_web::http::header::{CacheControl, CacheDirective};

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

static ROUTE_PATTERNS: LazyLock<Vec<(ResourceDef, &'static str, RateLimited)>> =
    LazyLock::new(|| {
        ROUTES
            .iter()
            .map(|(pattern, allow, limited)| (ResourceDef::new(*pattern), *allow, *limited))
            .collect()
    });

fn route_of(path: &str) -> Option<&'static (ResourceDef, &'static str, RateLimited)> {
    ROUTE_PATTERNS.iter().find(|(pattern, _, _)| pattern.is_match(path))
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

/// IDs must never be served from a cache: a cached ID is a duplicate.
pub fn no_store() -> CacheControl {
    CacheControl(vec![CacheDirective::NoStore])
}

/// A path segment the router matched (`{kind}`, `{id}`, ...).
fn segment<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    request.match_info().get(name).unwrap_or_default()
}
