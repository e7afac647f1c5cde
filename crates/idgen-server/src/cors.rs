//! CORS (`IDGEN_CORS_ORIGINS`): which web origins may call the API from a browser. Preflights
//! (`OPTIONS` with `Access-Control-Request-Method`) are answered before any key check (a
//! browser never sends credentials on one); every other answer to an allowed origin carries
//! `Access-Control-Allow-Origin` and exposes the headers a client needs (`Retry-After`, the
//! `RateLimit-*` fields, `X-Request-Id`).
//!
//! Origins are compared exactly (scheme, host and port, as the browser sends them); `*` allows
//! any origin and is refused at start when API keys are configured (config checks it), because
//! it would let any page spend a key a user pasted into it.

use actix_web::HttpResponse;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::error::ApiError;

/// What a preflight may ask for, and how long a browser may cache the answer.
const ALLOW_HEADERS: &str = "authorization, x-api-key, content-type, accept, x-request-id";
const EXPOSE_HEADERS: &str =
    "retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-request-id";
const MAX_AGE_SECS: &str = "600";

/// The allowed origins.
#[derive(Debug, Clone)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

impl Cors {
    /// `None` when no origin is configured (no CORS header is ever sent).
    pub fn new(origins: &[String]) -> Option<Cors> {
        if origins.is_empty() {
            return None;
        }
        let any = origins.iter().any(|origin| origin == "*");
        Some(Cors { any, origins: origins.to_vec() })
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, when it is allowed.
    fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins.iter().any(|allowed| allowed == text).then(|| origin.clone())
    }

    /// Whether `headers` are a preflight's.
    pub fn is_preflight(headers: &HeaderMap) -> bool {
        headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight for a route whose methods are `allow` (`GET, HEAD`): 204 with
    /// the grant for an allowed origin, 403 without one (so the browser stops there).
    pub fn preflight(&self, headers: &HeaderMap, allow: &str) -> Result<HttpResponse, ApiError> {
        let Some(origin) = self.allowed(headers) else { return Err(ApiError::OriginNotAllowed) };
        let mut response = HttpResponse::NoContent();
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, allow))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECS));
        if !self.any {
            response.insert_header((header::VARY, "Origin"));
        }
        Ok(response.finish())
    }

    /// Adds the grant to an answer for an allowed origin.
    pub fn decorate(&self, response: &mut ServiceResponse) {
        let Some(origin) = self.allowed(response.request().headers()) else { return };
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        if !self.any {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(header::HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_listed_origins_are_granted_exactly() {
        let cors = Cors::new(&["https://app.example.com".to_owned()]).unwrap();
        let asked = headers(&[("origin", "https://app.example.com")]);
        assert_eq!(cors.allowed(&asked).unwrap(), "https://app.example.com");
        for other in ["https://app.example.com:8443", "http://app.example.com", "null"] {
            let mut map = HeaderMap::new();
            map.insert(header::ORIGIN, HeaderValue::from_str(other).unwrap());
            assert!(cors.allowed(&map).is_none(), "{other}");
        }
        assert!(cors.allowed(&HeaderMap::new()).is_none());
        assert!(Cors::new(&[]).is_none());
        let any = Cors::new(&["*".to_owned()]).unwrap();
        assert_eq!(any.allowed(&headers(&[("origin", "https://x.test")])).unwrap(), "*");
    }
}
