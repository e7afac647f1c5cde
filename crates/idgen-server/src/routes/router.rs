//! The router: the app's only service, which matches a request against the route table in one
//! step and calls its handler, answers 405 (with `Allow`) for a known path and 404 for the rest.
//!
//! actix's own router tries its resources one after the other, and each miss costs about as
//! much as a small handler (it sets up 16 capture slots per attempt); with a dozen routes the
//! last paid for eleven misses. Here a miss is a comparison of a few path segments.
//!
//! Paths are matched as actix's router sees them (`match_info`): percent-decoded where that is
//! safe (`/generate_random_string/%32` is length 2; `%2F` stays encoded).
//!
//! Rate limiting wraps [`Handlers`] in the limiter, and [`Limited`] sends only the requests
//! of limited routes through it (any method, so a wrong method on a limited route is limited
//! like the route); probes, the document and unknown paths bypass it.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{Error, FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::{Either, LocalBoxFuture};

use super::{Entry, Found, Handler, TABLE, compat, decode, health, ids, kinds, openapi};
use crate::error::ApiError;
use crate::state::AppState;

/// Makes [`HandlersService`]s: every route of the table, unlimited.
#[derive(Clone)]
pub struct Handlers {
    state: web::Data<AppState>,
}

impl Handlers {
    pub fn new(state: web::Data<AppState>) -> Self {
        Self { state }
    }
}

impl ServiceFactory<ServiceRequest> for Handlers {
    type Response = ServiceResponse;
    type Error = Error;
    type Config = ();
    type Service = HandlersService;
    type InitError = ();
    type Future = Ready<Result<HandlersService, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        ready(Ok(HandlersService { state: Rc::new(self.state.clone()) }))
    }
}

/// One per worker thread. The state comes in an `Rc` the worker's requests clone (a plain
/// increment) rather than from the app data (a lookup and an atomic increment, on a cache line
/// both workers write).
pub struct HandlersService {
    state: Rc<web::Data<AppState>>,
}

impl Service<ServiceRequest> for HandlersService {
    type Response = ServiceResponse;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<ServiceResponse, Error>>>>;

    actix_web::dev::always_ready!();

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let state = Rc::clone(&self.state);
        Box::pin(async move {
            let (request, mut payload) = request.into_parts();
            let path = request.match_info().as_str();
            let result = match super::find(&TABLE, request.method(), path) {
                Found::Route(entry) if entry.method == Method::POST => {
                    match web::Bytes::from_request(&request, &mut payload).await {
                        Ok(body) => dispatch(entry, &state, &request, Some(&body)).await,
                        Err(error) => return Ok(ServiceResponse::from_err(error, request)),
                    }
                }
                Found::Route(entry) => dispatch(entry, &state, &request, None).await,
                Found::MethodNotAllowed { allow } => Err(ApiError::MethodNotAllowed { allow }),
                Found::NotFound => Err(ApiError::NotFound),
            };
            Ok(match result {
                Ok(response) => ServiceResponse::new(request, response),
                Err(error) => ServiceResponse::from_err(error, request),
            })
        })
    }
}

/// Calls the handler of `entry`; `body` is a POST's.
async fn dispatch(
    entry: &Entry,
    state: &AppState,
    request: &HttpRequest,
    body: Option<&[u8]>,
) -> Result<HttpResponse, ApiError> {
    let segment = |name| entry.segment(request.match_info().as_str(), name);
    match entry.handler {
        Handler::Healthz => Ok(health::healthz()),
        Handler::IdsGet | Handler::IdsPost => {
            ids::issue(segment("kind"), state, request, body).await
        }
        Handler::GenerateUuid => Ok(compat::generate_uuid(state)),
        Handler::GenerateTimestampId => compat::generate_timestamp_id(state).await,
        Handler::GenerateCounterId => compat::generate_counter_id(state).await,
        Handler::GenerateSnowflakeId => compat::generate_snowflake_id(state).await,
        Handler::GenerateRandomString => compat::generate_random_string(segment("length")),
        Handler::Decode => decode::decode(state, segment("kind"), segment("id")),
        Handler::Kinds => Ok(kinds::kinds()),
        Handler::Readyz => Ok(health::readyz(state).await),
        Handler::OpenApiJson => Ok(openapi::openapi_json()),
    }
}

/// The routes with the rate limiter `limited` (the handlers wrapped in it) in front of the
/// limited ones.
#[derive(Clone)]
pub struct Limited<L> {
    handlers: Handlers,
    limited: L,
}

impl<L> Limited<L> {
    pub fn new(handlers: Handlers, limited: L) -> Self {
        Self { handlers, limited }
    }
}

impl<L> ServiceFactory<ServiceRequest> for Limited<L>
where
    L: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse,
            Error = Error,
            InitError = (),
        > + 'static,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Config = ();
    type Service = LimitedService<L::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let handlers = self.handlers.new_service(());
        let limited = self.limited.new_service(());
        Box::pin(async move {
            Ok(LimitedService { handlers: handlers.await?, limited: limited.await? })
        })
    }
}

/// Sends each request through the limiter or past it.
pub struct LimitedService<S> {
    handlers: HandlersService,
    limited: S,
}

impl<S> Service<ServiceRequest> for LimitedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error>,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Future = Either<S::Future, <HandlersService as Service<ServiceRequest>>::Future>;

    actix_web::dev::always_ready!();

    fn call(&self, request: ServiceRequest) -> Self::Future {
        if super::is_limited(&TABLE, request.match_info().as_str()) {
            Either::Left(self.limited.call(request))
        } else {
            Either::Right(self.handlers.call(request))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::config::Config;

    /// Every request's future is allocated and moved as a whole, and an `async fn` is as large
    /// as the largest future it awaits: one inlined Redis connect or mark write made it 14.8 KB,
    /// copied on every request (callgrind: +15k instructions of memcpy per request). The cold
    /// paths are boxed (every back-end call returns a boxed future); this keeps them so.
    #[actix_web::test]
    async fn the_request_future_stays_small() {
        let config = Config::default();
        let clock: crate::issue::SharedClock = Arc::new(idgen_core::SystemClock);
        let state = AppState::new(&config, MemoryBackend::new().open(&config), clock).unwrap();
        let service = Handlers::new(web::Data::new(state)).new_service(()).await.unwrap();
        let request = actix_web::test::TestRequest::get().uri("/v1/ids/uuid").to_srv_request();
        let future = service.call(request);
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 1024, "the request future is {size} bytes");
        assert_eq!(future.await.unwrap().status(), actix_web::http::StatusCode::OK);
    }
}
