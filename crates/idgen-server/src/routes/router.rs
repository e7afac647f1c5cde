//! The router: the app's only service. It matches a request against the route table in one
//! step and calls its handler, answers 405 (with `Allow`) for a known path and 404 for the
//! rest; around every request it keeps the request id, the metrics and the access log
//! (`observe`). `HEAD` is served wherever `GET` is (actix sends no body for it).
//!
//! actix's own router tries its resources one after the other, and each miss costs about as
//! much as a small handler (it sets up 16 capture slots per attempt); with a dozen routes the
//! last paid for eleven misses. Here a miss is a comparison of a few bytes.
//!
//! Paths are matched as actix's router sees them (`match_info`): percent-decoded where that is
//! safe (`/generate_random_string/%32` is length 2; `%2F` stays encoded).
//!
//! Rate limiting applies to the requests of limited routes (any method, so a wrong method on a
//! limited route is limited like the route); probes, the document and unknown paths bypass it.
//! This node's own limiter is asked by [`RouterService::call`] itself (`RateLimit::check`),
//! and the answer gets the client's `RateLimit-*` on the way out; the limit shared through the
//! back end is a middleware wrapping [`Handlers`]. Either way the router observes the answer,
//! 429s included.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{Error, FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::{Either, LocalBoxFuture};
use tokio::task::futures::TaskLocalFuture;

use super::{
    Access, Entry, Found, Handler, Surface, TABLE, bounds, compat, decode, health, ids, kinds,
    openapi,
};
use crate::auth::{Caller, Key};
use crate::cors::Cors;
use crate::error::ApiError;
use crate::observe::request_id;
use crate::rate_limit::{RateLimit, pacing_headers};
use crate::routes::{counters, docs, status};
use crate::state::AppState;

type BoxedResponse = Pin<Box<dyn Future<Output = Result<ServiceResponse, Error>>>>;

/// Serves a matched request (or answers 404/405, 401/403) without observing it.
///
/// Not an `async fn`: what is settled before the first await (the surface, the key) is settled
/// here, so the request's future holds neither the `ServiceRequest` nor the refusal paths.
fn handle(
    state: Rc<web::Data<AppState>>,
    surface: Surface,
    request: ServiceRequest,
    found: Found<'static>,
    refused: Option<ApiError>,
) -> Either<
    Ready<Result<ServiceResponse, Error>>,
    impl Future<Output = Result<ServiceResponse, Error>>,
> {
    let (request, payload) = request.into_parts();
    // The local limiter's 429.
    if let Some(error) = refused {
        return Either::Left(ready(Ok(ServiceResponse::from_err(error, request))));
    }
    let found = match found {
        Found::Route(entry) | Found::MethodNotAllowed { entry, .. }
            if !surface.serves(entry.handler) =>
        {
            Found::NotFound
        }
        found => found,
    };
    if let Found::MethodNotAllowed { allow, .. } = &found
        && request.method() == Method::OPTIONS
        && let Some(cors) = state.cors()
        && Cors::is_preflight(request.headers())
    {
        let response = match cors.preflight(request.headers(), allow) {
            Ok(response) => ServiceResponse::new(request, response),
            Err(error) => ServiceResponse::from_err(error, request),
        };
        return Either::Left(ready(Ok(response)));
    }
    let caller = match &found {
        Found::Route(entry) => match authorize(&state, surface, entry, request.headers()) {
            Ok(caller) => caller,
            Err(error) => {
                return Either::Left(ready(Ok(ServiceResponse::from_err(error, request))));
            }
        },
        _ => None,
    };
    Either::Right(serve(state, request, payload, found, caller))
}

/// [`handle`]'s part after the checks.
async fn serve(
    state: Rc<web::Data<AppState>>,
    request: HttpRequest,
    mut payload: actix_web::dev::Payload,
    found: Found<'static>,
    caller: Option<Rc<Key>>,
) -> Result<ServiceResponse, Error> {
    let result = match found {
        Found::Route(entry) if entry.method == Method::POST => {
            match web::Bytes::from_request(&request, &mut payload).await {
                Ok(body) => dispatch(entry, &state, &request, Some(&body), caller.as_deref()).await,
                Err(error) => return Ok(ServiceResponse::from_err(error, request)),
            }
        }
        Found::Route(entry) => dispatch(entry, &state, &request, None, caller.as_deref()).await,
        Found::MethodNotAllowed { allow, .. } => Err(ApiError::MethodNotAllowed { allow }),
        Found::NotFound => Err(ApiError::NotFound),
    };
    let mut response = match result {
        Ok(response) => ServiceResponse::new(request, response),
        Err(error) => {
            state.observe_refusal(&error, entry_kind(&found, &request));
            ServiceResponse::from_err(error, request)
        }
    };
    // Only for an answer the access log will write: the insertion allocates.
    if let Some(caller) = caller
        && state.observer().logs(response.status().as_u16())
    {
        response.response_mut().extensions_mut().insert(Caller(caller));
    }
    Ok(response)
}

/// The key a request to `entry` presents, when the route needs one (`None`: no keys are
/// configured, or the route is open, or this is the admin listener); 401 or 403 otherwise.
fn authorize(
    state: &AppState,
    surface: Surface,
    entry: &Entry,
    headers: &actix_web::http::header::HeaderMap,
) -> Result<Option<Rc<Key>>, ApiError> {
    let Some(auth) = state.auth() else { return Ok(None) };
    match (entry.handler.access(), surface) {
        (Access::Open, _) | (_, Surface::Admin) => Ok(None),
        (Access::Key, _) => auth.authenticate(headers).map(Some),
        (Access::Admin, _) => {
            let key = auth.authenticate(headers)?;
            if !key.scopes.allows_admin() {
                return Err(ApiError::Forbidden {
                    what: "use the admin routes (scope admin)".into(),
                });
            }
            Ok(Some(key))
        }
    }
}

/// The kind a refused request was for, when its route names one.
fn entry_kind(found: &Found<'_>, request: &HttpRequest) -> Option<idgen_core::Kind> {
    let Found::Route(entry) = found else { return None };
    match entry.handler {
        Handler::IdsGet | Handler::IdsPost => {
            idgen_core::Kind::from_name(entry.segment(request.match_info().as_str(), "kind"))
        }
        handler => compat::kind_of(handler),
    }
}

/// Calls the handler of `entry`; `body` is a POST's.
async fn dispatch(
    entry: &Entry,
    state: &AppState,
    request: &HttpRequest,
    body: Option<&[u8]>,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    let segment = |name| entry.segment(request.match_info().as_str(), name);
    match entry.handler {
        Handler::Healthz => Ok(health::healthz()),
        Handler::IdsGet => ids::get_ids(state, request, segment("kind"), caller).await,
        Handler::IdsPost => {
            ids::post_ids(state, request, segment("kind"), body.unwrap_or(&[]), caller).await
        }
        Handler::GenerateUuid => compat::generate_uuid(state, caller).await,
        Handler::GenerateTimestampId => compat::generate_timestamp_id(state, caller).await,
        Handler::GenerateCounterId => compat::generate_counter_id(state, caller).await,
        Handler::GenerateSnowflakeId => compat::generate_snowflake_id(state, caller).await,
        Handler::GenerateRandomString => {
            compat::generate_random_string(state, segment("length"), caller).await
        }
        Handler::Decode => {
            decode::decode(state, segment("kind"), segment("id"), request.query_string(), caller)
        }
        Handler::Bounds => bounds::bounds(state, segment("kind"), request.query_string(), caller),
        Handler::Kinds => Ok(kinds::kinds(state)),
        Handler::Readyz => Ok(health::readyz(state).await),
        Handler::OpenApiJson => Ok(openapi::openapi_json(state)),
        Handler::DocsRedirect => Ok(docs::docs_redirect()),
        Handler::DocsIndex => docs::docs_index(),
        Handler::DocsFile => docs::docs_file(segment("file")),
        Handler::Metrics => Ok(status::metrics(state).await),
        Handler::Status => Ok(status::status_json(state).await),
        Handler::StatusPage => Ok(status::status_page(state).await),
        Handler::RetireCounter => counters::retire_counter(state, segment("name")).await,
    }
}

/// Makes [`HandlersService`]s: every route of the table, neither limited nor observed (the
/// limiter wraps it; the [`Router`] observes).
#[derive(Clone)]
pub struct Handlers {
    state: web::Data<AppState>,
    surface: Surface,
}

impl Handlers {
    /// Every route of `surface`.
    pub fn new(state: web::Data<AppState>, surface: Surface) -> Self {
        Self { state, surface }
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
        ready(Ok(HandlersService { state: Rc::new(self.state.clone()), surface: self.surface }))
    }
}

/// One per worker thread. The state comes in an `Rc` the worker's requests clone (a plain
/// increment) rather than from the app data (a lookup and an atomic increment, on a cache line
/// both workers write).
pub struct HandlersService {
    state: Rc<web::Data<AppState>>,
    surface: Surface,
}

impl Service<ServiceRequest> for HandlersService {
    type Response = ServiceResponse;
    type Error = Error;
    type Future = BoxedResponse;

    actix_web::dev::always_ready!();

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let found = super::find(&TABLE, request.method(), request.match_info().as_str());
        Box::pin(handle(Rc::clone(&self.state), self.surface, request, found, None))
    }
}

/// The app's service: every route, observed, with `limited` (the handlers behind the rate
/// limiter) in front of the limited ones when rate limiting is on.
#[derive(Clone)]
pub struct Router<L = Handlers> {
    handlers: Handlers,
    limited: Option<L>,
    /// This node's own limiter, which the router asks itself for the limited routes.
    local: Option<RateLimit>,
}

impl Router {
    /// No rate limiting.
    pub fn new(handlers: Handlers) -> Self {
        Self { handlers, limited: None, local: None }
    }

    /// The limited routes are checked against this node's limiter (`RateLimit::check`).
    pub fn locally_limited(handlers: Handlers, local: RateLimit) -> Self {
        Self { handlers, limited: None, local: Some(local) }
    }
}

impl<L> Router<L> {
    /// The limited routes go through `limited`.
    pub fn limited(handlers: Handlers, limited: L) -> Self {
        Self { handlers, limited: Some(limited), local: None }
    }
}

impl<L> ServiceFactory<ServiceRequest> for Router<L>
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
    type Service = RouterService<L::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let state = Rc::new(self.handlers.state.clone());
        let surface = self.handlers.surface;
        let limited = self.limited.as_ref().map(|limited| limited.new_service(()));
        let local = self.local.clone();
        Box::pin(async move {
            let limited = match limited {
                Some(future) => Some(future.await?),
                None => None,
            };
            Ok(RouterService { state, surface, limited, local })
        })
    }
}

/// See [`Router`].
pub struct RouterService<S> {
    state: Rc<web::Data<AppState>>,
    surface: Surface,
    limited: Option<S>,
    local: Option<RateLimit>,
}

impl<S> Service<ServiceRequest> for RouterService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error>,
    S::Future: 'static,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Future = BoxedResponse;

    actix_web::dev::always_ready!();

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let state = Rc::clone(&self.state);
        let request_id = state.observer().ids.of(request.headers().get(&request_id::HEADER));
        let found = super::find(&TABLE, request.method(), request.match_info().as_str());
        let route = found.route_index() as u32;
        let (mut remaining, mut refused) = (None, None);
        if let Some(local) = &self.local
            && found.limited()
        {
            match local.check(&request) {
                Ok(left) => remaining = Some(left),
                Err(error) => refused = Some(error),
            }
        }
        let inner = match &self.limited {
            Some(limited) if found.limited() => Either::Left(limited.call(request)),
            _ => Either::Right(handle(Rc::clone(&state), self.surface, request, found, refused)),
        };
        // A hand-written future rather than an `async` block: a block would hold `inner` twice
        // (once captured, once in the scope it is awaited in), doubling what every request
        // allocates and copies. The request id lives in the scope's slot only.
        Box::pin(ObservedRequest {
            inner: request_id::CURRENT.scope(request_id, inner),
            state,
            route: Slots::new(route, remaining),
            started,
        })
    }
}

pin_project_lite::pin_project! {
    /// A request's future, run with its id as the task-local, observed when it finishes.
    struct ObservedRequest<F> {
        #[pin]
        inner: TaskLocalFuture<actix_web::http::header::HeaderValue, F>,
        state: Rc<web::Data<AppState>>,
        route: Slots,
        started: Instant,
    }
}

/// The route's index and, for an answer the local limiter let through, what is left in the
/// client's bucket, in one word: every byte of the request's future is copied per request.
#[derive(Clone, Copy)]
struct Slots(u64);

impl Slots {
    fn new(route: u32, remaining: Option<u32>) -> Self {
        let remaining = remaining.map_or(0, |left| u64::from(left) + 1);
        Slots(u64::from(route) | remaining << 32)
    }

    fn route(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    fn remaining(self) -> Option<u32> {
        (self.0 >> 32).checked_sub(1).map(|left| left as u32)
    }
}

impl<F: Future<Output = Result<ServiceResponse, Error>>> Future for ObservedRequest<F> {
    type Output = Result<ServiceResponse, Error>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.as_mut().project().inner.poll(context))?;
        let this = self.project();
        if let Some(request_id) = this.inner.take_value() {
            let (route, started) = (this.route.route(), *this.started);
            if let Some(remaining) = this.route.remaining() {
                let limits = this.state.limits();
                let (burst, per_second) = (limits.rate_burst, limits.rate_per_second);
                pacing_headers(response.headers_mut(), burst, remaining, per_second);
            }
            if let Some(cors) = this.state.cors() {
                cors.decorate(&mut response);
            }
            this.state.observer().finished(route, &mut response, started, request_id);
        }
        Poll::Ready(Ok(response))
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
        let handlers = Handlers::new(web::Data::new(state), Surface::All);
        let service = Router::new(handlers).new_service(()).await.unwrap();
        let request = actix_web::test::TestRequest::get().uri("/v1/ids/uuid").to_srv_request();
        let future = service.call(request);
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 1024, "the request future is {size} bytes");
        let response = future.await.unwrap();
        assert_eq!(response.status(), actix_web::http::StatusCode::OK);
        assert_eq!(response.headers().get(&request_id::HEADER).unwrap().len(), 24);
    }
}
