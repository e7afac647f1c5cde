//! A one-step router for the fixed-path ID routes (`/v1/ids/<kind>`, the tutorial routes):
//! one router entry whose guard and dispatch are a `match` on the path.
//!
//! actix tries its resources one after the other, and each miss costs about as much as a
//! small handler (it sets up 16 capture slots per attempt); with a dozen ID routes the last
//! one paid for eleven misses. This entry sits right after `/healthz` and takes every fixed
//! ID path in one step. The routes are still registered the usual way behind it (they carry
//! the OpenAPI document, and answer what this one leaves to them: unknown kinds, `/v1/kinds`,
//! decoding, and random-string lengths that are not plain digits, which actix percent-decodes
//! first). The answers are the same either way: `startup`'s tests compare the two.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::dev::{
    AppService, HttpServiceFactory, ResourceDef, Service, ServiceFactory, ServiceRequest,
    ServiceResponse,
};
use actix_web::http::Method;
use actix_web::{Error, FromRequest, guard, web};
use idgen_core::Kind;

use super::{compat, ids};
use crate::error::ApiError;
use crate::state::AppState;

/// A fixed ID path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixed {
    Ids(Kind),
    Uuid,
    Timestamp,
    Counter,
    Snowflake,
    /// `/generate_random_string/<digits>`
    RandomString,
}

const RANDOM_STRING: &str = "/generate_random_string/";

impl Fixed {
    fn of(path: &str) -> Option<Fixed> {
        if let Some(kind) = path.strip_prefix("/v1/ids/") {
            return Kind::from_name(kind).map(Fixed::Ids);
        }
        Some(match path {
            "/generate_uuid" => Fixed::Uuid,
            "/generate_timestamp_id" => Fixed::Timestamp,
            "/generate_counter_id" => Fixed::Counter,
            "/generate_snowflake_id" => Fixed::Snowflake,
            _ => {
                let length = path.strip_prefix(RANDOM_STRING)?;
                let digits = !length.is_empty() && length.bytes().all(|byte| byte.is_ascii_digit());
                return digits.then_some(Fixed::RandomString);
            }
        })
    }
}

/// The router entry; register it with `App::service`, optionally wrapped in middleware with
/// [`FixedRoutes::wrapped`].
pub struct FixedRoutes<F = FixedFactory>(F);

impl FixedRoutes {
    pub fn new(state: web::Data<AppState>) -> Self {
        FixedRoutes(FixedFactory { state })
    }

    /// The same routes behind `middleware` (the rate limiter).
    pub fn wrapped<F>(self, wrap: impl FnOnce(FixedFactory) -> F) -> FixedRoutes<F> {
        FixedRoutes(wrap(self.0))
    }
}

impl<F, B> HttpServiceFactory for FixedRoutes<F>
where
    F: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    fn register(self, config: &mut AppService) {
        use actix_service::ServiceFactoryExt as _;
        let guard = guard::fn_guard(|context| Fixed::of(context.head().uri.path()).is_some());
        let factory = self.0.map(ServiceResponse::map_into_boxed_body);
        config.register_service(
            ResourceDef::root_prefix(""),
            Some(vec![Box::new(guard)]),
            factory,
            None,
        );
    }
}

/// Makes [`FixedService`]s.
#[derive(Clone)]
pub struct FixedFactory {
    state: web::Data<AppState>,
}

impl ServiceFactory<ServiceRequest> for FixedFactory {
    type Response = ServiceResponse;
    type Error = Error;
    type Config = ();
    type Service = FixedService;
    type InitError = ();
    type Future = Ready<Result<FixedService, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        ready(Ok(FixedService { state: Rc::new(self.state.clone()) }))
    }
}

/// One per worker thread. The state comes in an `Rc` the worker's requests clone (a plain
/// increment) rather than from the app data (a lookup and an atomic increment, on a cache line
/// both workers write).
pub struct FixedService {
    state: Rc<web::Data<AppState>>,
}

impl Service<ServiceRequest> for FixedService {
    type Response = ServiceResponse;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<ServiceResponse, Error>>>>;

    actix_web::dev::always_ready!();

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let state = Rc::clone(&self.state);
        Box::pin(async move {
            let (request, mut payload) = request.into_parts();
            // The guard let only fixed paths in.
            let route = Fixed::of(request.path()).expect("checked by the guard");
            let method = request.method();
            let result = match route {
                Fixed::Ids(kind) if method == Method::GET => {
                    ids::issue(kind, &state, &request, None).await
                }
                Fixed::Ids(kind) if method == Method::POST => {
                    match web::Bytes::from_request(&request, &mut payload).await {
                        Ok(body) => ids::issue(kind, &state, &request, Some(&body)).await,
                        Err(error) => {
                            return Ok(ServiceResponse::from_err(error, request));
                        }
                    }
                }
                _ if method != Method::GET => Err(ApiError::MethodNotAllowed {
                    allow: super::allowed_methods(request.path()).expect("a known route"),
                }),
                Fixed::Uuid => Ok(compat::uuid(&state)),
                Fixed::Timestamp => compat::timestamp(&state).await,
                Fixed::Counter => compat::counter(&state).await,
                Fixed::Snowflake => compat::snowflake(&state).await,
                Fixed::RandomString => {
                    let length = &request.path()[RANDOM_STRING.len()..];
                    compat::random_string(length)
                }
                Fixed::Ids(_) => unreachable!("GET and POST are handled above"),
            };
            Ok(match result {
                Ok(response) => ServiceResponse::new(request, response),
                Err(error) => ServiceResponse::from_err(error, request),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::routes::ROUTES;
    use crate::store::Store;

    /// Every request's future is allocated and moved as a whole, and an `async fn` is as large
    /// as the largest future it awaits: one inlined Redis connect or mark write made it 14.8 KB,
    /// copied on every request (callgrind: +15k instructions of memcpy per request). The cold
    /// paths are boxed; this keeps them so.
    #[actix_web::test]
    async fn the_request_future_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_embedded(dir.path()).unwrap();
        let clock: crate::state::SharedClock = Arc::new(idgen_core::SystemClock);
        let state = web::Data::new(AppState::new(&Config::default(), store, clock).unwrap());
        let service = FixedFactory { state }.new_service(()).await.unwrap();
        let request = actix_web::test::TestRequest::get().uri("/v1/ids/uuid").to_srv_request();
        let future = service.call(request);
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 1024, "the request future is {size} bytes");
        assert_eq!(future.await.unwrap().status(), actix_web::http::StatusCode::OK);
    }

    #[test]
    fn every_fixed_path_is_a_known_route() {
        let paths = [
            "/v1/ids/uuid",
            "/v1/ids/uuid7",
            "/v1/ids/ulid",
            "/v1/ids/snowflake",
            "/v1/ids/timestamp",
            "/v1/ids/counter",
            "/v1/ids/random",
            "/generate_uuid",
            "/generate_timestamp_id",
            "/generate_counter_id",
            "/generate_snowflake_id",
            "/generate_random_string/21",
        ];
        for path in paths {
            assert!(Fixed::of(path).is_some(), "{path} is not fixed");
            assert!(crate::routes::allowed_methods(path).is_some(), "{path}");
            assert!(crate::routes::is_rate_limited(path), "{path}");
        }
        for kind in Kind::ALL {
            assert_eq!(Fixed::of(&format!("/v1/ids/{kind}")), Some(Fixed::Ids(kind)));
        }
        assert_eq!(ROUTES.len(), 11);
    }

    #[test]
    fn everything_else_is_left_to_the_actix_routes() {
        for path in [
            "/healthz",
            "/v1/ids/nope",
            "/v1/ids/",
            "/v1/ids/uuid/",
            "/v1/ids/UUID",
            "/v1/kinds",
            "/v1/decode/uuid/x",
            "/generate_random_string/",
            "/generate_random_string/%32",
            "/generate_random_string/-1",
            "/generate_random_string/21/",
            "/generate_uuid/",
            "",
        ] {
            assert_eq!(Fixed::of(path), None, "{path}");
        }
    }
}
