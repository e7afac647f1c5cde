//! Start-up and shutdown: [`Application`] opens the store, builds the shared state and binds
//! the listener (so the real address is known before anything runs); [`app`] wires routes,
//! middleware and the OpenAPI document.
//!
//! Shutdown: actix installs SIGTERM/SIGINT handlers. On either it stops accepting, lets
//! in-flight requests finish (up to [`SHUTDOWN_TIMEOUT_SECS`]) and its server future returns;
//! only then are the background tasks stopped and the marks settled to the real high water,
//! so no request can issue an ID after the final write. In Redis mode the worker-id lease is
//! then released (its mark set to the real high water), so another node can take it at once.
//!
//! Middleware order (outermost first): error rewriting for the whole app; then, for the ID
//! routes only, the rate limiter. `/healthz`, `/readyz` and `/openapi.json` are registered
//! before the rate-limited scope and outside it, so probes are never limited.

use std::future::Future;
use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_service::apply;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::Condition;
use actix_web::{App, HttpServer, guard, web};
use anyhow::Context;
use idgen_core::SystemClock;
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, UtoipaApp, scope};

use crate::config::{Config, ConfigError, RedisUrl, Setting, Source};
use crate::error;
use crate::lease;
use crate::rate_limit::{self, RateLimit};
use crate::routes::fixed::FixedRoutes;
use crate::routes::{self, compat, decode, health, ids, kinds, openapi};
use crate::state::{AppState, InitialLease, SharedClock};
use crate::store::redis::RedisError;
use crate::store::{RedisStore, Store, StoreError};

/// How long in-flight requests may run after a stop signal.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// Largest request body accepted (an `IdRequest` is a few dozen bytes).
const BODY_LIMIT_BYTES: usize = 16 * 1024;
/// How often the time marks are checked for renewal.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// A server that has bound its address but not started serving.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: web::Data<AppState>,
    rate_limit: RateLimit,
}

impl Application {
    /// Opens the data dir (embedded mode) or checks Redis and leases a worker id (Redis mode),
    /// builds the generators and binds `config.bind` (port 0 picks a free port). Setting
    /// problems (including an unreachable Redis or a worker id held by another node) come back
    /// as a [`ConfigError`] inside the `anyhow::Error`.
    pub fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Arc::new(SystemClock))
    }

    /// [`Application::build`] with an injected clock.
    pub fn build_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Application> {
        // Bind first: in Redis mode the next step leases a worker id, which a failed bind would
        // otherwise leave held (and a fixed id refused) until the lease expires.
        let listener = TcpListener::bind(&config.bind).map_err(|error| {
            ConfigError::new(
                Setting::Bind,
                Source::Env,
                format!("cannot listen on {}: {error}", config.bind),
            )
        })?;
        listener.set_nonblocking(true).context("make the listener non-blocking")?;
        let address = listener.local_addr().context("read the bound address")?;
        let (state, redis) = match &config.redis_url {
            Some(url) => {
                let (state, store) = build_redis_state(&config, url, clock)?;
                (state, Some(store))
            }
            None => {
                let store = Store::open_embedded(&config.data_dir)
                    .map_err(|error| data_dir_error(&error))?;
                (AppState::new(&config, store, clock)?, None)
            }
        };
        let state = web::Data::new(state);
        let rate_limit = match redis {
            Some(store) => RateLimit::new_shared(&config, store),
            None => RateLimit::new(&config),
        };
        Ok(Application { listener, address, state, rate_limit })
    }

    /// The address really bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The one start-up line, e.g.
    /// `idgen-server listening on http://127.0.0.1:41234 (mode: embedded, worker 0)`.
    pub fn startup_line(&self) -> String {
        format!(
            "idgen-server listening on http://{} (mode: {}, worker {})",
            self.address,
            self.state.mode(),
            self.state.worker_id()
        )
    }

    /// Serves until SIGTERM or SIGINT, then settles the store.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until a signal or until `shutdown` completes (tests, leases), then drains
    /// in-flight requests and settles the store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Application { listener, state, rate_limit, .. } = self;
        let server = {
            let state = state.clone();
            let rate_limit = rate_limit.clone();
            HttpServer::new(move || app(state.clone(), rate_limit.clone()))
                .listen(listener)
                .context("start serving on the bound listener")?
                .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
                .run()
        };
        let handle = server.handle();
        let refresher = tokio::spawn(refresh_marks(state.clone()));
        let lease_keeper =
            state.lease_tick().map(|tick| tokio::spawn(keep_lease(state.clone(), tick)));
        let maintenance = rate_limit.spawn_maintenance();

        let outcome = tokio::select! {
            outcome = server => outcome.context("the HTTP server failed"),
            () = shutdown => {
                handle.stop(true).await;
                Ok(())
            }
        };

        refresher.abort();
        if let Some(task) = lease_keeper {
            task.abort();
        }
        if let Some(task) = maintenance {
            task.abort();
        }
        let settled = state.settle().context("save the final high-water marks");
        if let Err(error) = state.release_lease().await {
            // Not fatal: the lease expires by itself after IDGEN_LEASE_TTL_MS, and the mark
            // in Redis is already above everything issued.
            tracing::warn!(error = %error, "shutdown: the worker-id lease was not released");
        }
        if let Err(error) = &settled {
            tracing::error!(error = format!("{error:#}"), "shutdown: marks not settled");
        } else {
            tracing::info!("stopped; high-water marks saved");
        }
        release_state(state.into_inner()).await;
        outcome.and(settled)
    }
}

/// Waits (a bounded while) until `state` is its last reference and drops it, so that the data
/// dir's lock is free when [`Application::run_until`] returns: actix reports its workers
/// stopped a moment before their threads drop the app and its references to the state, and
/// the aborted background tasks drop theirs when the runtime next gets to them.
async fn release_state(state: Arc<AppState>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&state) > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if Arc::strong_count(&state) > 1 {
        tracing::warn!("shutdown: the state is still referenced; the data dir stays locked");
    }
}

/// Makes ring the process-wide rustls crypto provider, for `rediss://` (redis-rs builds its
/// rustls client config from the process default; the `#insecure` form fails without one). The
/// build has ring only (no aws-lc-sys). Idempotent: an error means a provider is installed
/// already (by an embedding program or an earlier call), which is fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Redis mode start-up: checks that Redis answers, seeds counters, reads the timestamp mark and
/// leases a worker id. This runs before the server's runtime exists, so it uses a runtime and a
/// connection of its own (on a helper thread, so that it also works when called from async
/// code); the returned store connects lazily on the server's runtime.
fn build_redis_state(
    config: &Config,
    url: &RedisUrl,
    clock: SharedClock,
) -> anyhow::Result<(AppState, Arc<RedisStore>)> {
    let unreachable = |error: RedisError| -> anyhow::Error {
        ConfigError::new(
            Setting::RedisUrl,
            Source::Env,
            url.redact(&format!(
                "cannot reach Redis ({error}); check that it runs and that the URL is right"
            )),
        )
        .into()
    };
    install_crypto_provider();
    let store = Arc::new(
        RedisStore::new(
            url,
            config.redis_cluster,
            &config.redis_prefix,
            config.redis_wait_replicas,
        )
        .map_err(unreachable)?,
    );
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    let fixed = config.worker_id_fixed.then_some(config.worker_id);
    let token = lease::new_token();
    let startup = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<(u16, u64, std::time::Instant, u64)> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("start a runtime for the Redis start-up checks")?;
                runtime.block_on(async {
                    let probe = RedisStore::new(url, config.redis_cluster, &config.redis_prefix, config.redis_wait_replicas).map_err(unreachable)?;
                    probe.ping().await.map_err(unreachable)?;
                    for (name, value) in &config.seed_counters {
                        let now = probe.seed_counter(name, *value).await.map_err(unreachable)?;
                        tracing::info!(counter = %name, seed = value, now, "counter seeded");
                    }
                    let timestamp_mark = probe.load_timestamp_mark().await.map_err(unreachable)?;
                    match lease::acquire(&probe, fixed, None, &token, ttl)
                        .await
                        .map_err(unreachable)?
                    {
                        Some((worker_id, mark_ms, sent)) => {
                            Ok((worker_id, mark_ms, sent, timestamp_mark))
                        }
                        None => Err(match fixed {
                            Some(worker_id) => ConfigError::new(
                                Setting::WorkerId,
                                Source::Env,
                                format!(
                                    "worker id {worker_id} is leased by another idgen node; pick another or leave IDGEN_WORKER_ID unset to lease a free one"
                                ),
                            ),
                            None => ConfigError::new(
                                Setting::WorkerId,
                                Source::Env,
                                "all 1024 worker ids are leased by other idgen nodes",
                            ),
                        }
                        .into()),
                    }
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the Redis start-up checks panicked"))?
    });
    let (worker_id, mark_ms, sent, timestamp_mark) = startup?;
    store.set_snowflake_mark(mark_ms);
    store.set_timestamp_mark(timestamp_mark);
    let initial = InitialLease { worker_id, token, mark_ms, sent };
    let state = AppState::new_redis(config, Arc::clone(&store), clock, initial, timestamp_mark)?;
    Ok((state, store))
}

/// Redis mode: renews (or re-takes) the worker-id lease.
async fn keep_lease(state: web::Data<AppState>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        state.maintain_lease().await;
    }
}

fn data_dir_error(error: &StoreError) -> ConfigError {
    ConfigError::new(Setting::DataDir, Source::Env, error.to_string())
}

async fn refresh_marks(state: web::Data<AppState>) {
    let mut interval = tokio::time::interval(REFRESH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        state.refresh_marks().await;
    }
}

/// The actix `App`: every route, the fallback, the error rewriting and the rate limiter.
pub fn app(
    state: web::Data<AppState>,
    rate_limit: RateLimit,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let app = App::new()
        .app_data(state.clone())
        .app_data(web::PayloadConfig::new(BODY_LIMIT_BYTES))
        .app_data(error::json_config())
        .app_data(error::query_config())
        .app_data(error::path_config())
        .app_data(rate_limit.shared_data())
        .wrap(error::error_handlers())
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        // Not rate limited: the probes and the document. actix tries its entries in order and
        // each miss costs about as much as a small handler, so the fixed ID routes (nearly every
        // request) come right after the liveness probe, and the rarely asked `/readyz` and
        // document after them.
        .service(health::healthz);
    let cold = |app: UtoipaApp<_>| app.service(health::readyz).service(openapi::openapi_json);
    let app = if !rate_limit.enabled() {
        let app = cold(app.map(|app| app.service(FixedRoutes::new(state))));
        // Registered on the app itself: the nested scope below costs a guard, a second router
        // and two boxed services per request, as much as most handlers.
        app.configure(id_routes)
    } else {
        // An empty prefix: the scope exists to put the rate limiter around these routes
        // only. Its guard keeps every other path (and so the 404/405 fallback for them)
        // out of it.
        let shared = || {
            Condition::new(
                rate_limit.is_shared(),
                actix_web::middleware::from_fn(rate_limit::shared_rate_limit),
            )
        };
        // The fixed routes get the one limiter that applies, unwrapped: a `Condition` that is
        // off still moves the request and its future through two more layers (~1.7k
        // instructions of memcpy per request, measured with callgrind).
        let fixed = FixedRoutes::new(state);
        let app = if rate_limit.is_shared() {
            let fixed = fixed.wrapped(|routes| {
                apply(actix_web::middleware::from_fn(rate_limit::shared_rate_limit), routes)
            });
            app.map(|app| app.service(fixed))
        } else {
            let fixed = fixed.wrapped(|routes| apply(rate_limit.governor(), routes));
            app.map(|app| app.service(fixed))
        };
        cold(app).service(
            scope::scope("")
                .guard(guard::fn_guard(|context| {
                    routes::is_rate_limited(context.head().uri.path())
                }))
                .wrap(rate_limit.middleware())
                // Off unless Redis mode shares the limit: saves a boxed future per request.
                .wrap(shared())
                .configure(id_routes),
        )
    };
    let (app, document) = app.default_service(web::to(routes::fallback)).split_for_parts();
    app.app_data(web::Data::new(openapi::OpenApiJson::new(&document)))
}

/// The routes that issue, decode or list IDs (the rate-limited ones). The fixed ID paths among
/// them are answered by `routes::fixed` first; they are registered here for the OpenAPI document
/// and for what `routes::fixed` leaves them (unknown kinds, percent-encoded lengths).
fn id_routes(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(compat::generate_uuid)
        .service(compat::generate_timestamp_id)
        .service(compat::generate_counter_id)
        .service(compat::generate_snowflake_id)
        .service(kinds::kinds)
        .service(compat::generate_random_string)
        .service(ids::get_ids)
        .service(ids::post_ids)
        .service(decode::decode);
}

/// Logs to stderr, filtered by `filter` (`IDGEN_LOG`). Safe to call twice (the second call
/// does nothing).
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use actix_web::http::{Method, StatusCode, header};
    use actix_web::test::{self, TestRequest};
    use idgen_core::ManualClock;
    use serde_json::Value;

    use super::*;

    /// A state on a fresh data dir (kept alive by the returned guard).
    fn state_with(config: Config, clock: SharedClock) -> (web::Data<AppState>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(dir.path(), config, clock);
        (state, dir)
    }

    fn state_in(dir: &std::path::Path, config: Config, clock: SharedClock) -> web::Data<AppState> {
        let store = Store::open_embedded(dir).unwrap();
        web::Data::new(AppState::new(&config, store, clock).unwrap())
    }

    macro_rules! service {
        ($state:expr, $config:expr) => {
            test::init_service(app($state.clone(), RateLimit::new(&$config))).await
        };
    }

    struct Reply {
        status: StatusCode,
        headers: header::HeaderMap,
        text: String,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|value| value.to_str().unwrap())
        }
        fn error_code(&self) -> String {
            let body = self.json();
            assert_eq!(body.as_object().unwrap().len(), 1, "{}", self.text);
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text);
            body["error"]["code"].as_str().unwrap().to_owned()
        }
        fn ids(&self) -> Vec<String> {
            let body = self.json();
            body["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect()
        }
    }

    async fn reply(response: ServiceResponse<impl MessageBody>) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = test::read_body(response).await;
        Reply { status, headers, text: String::from_utf8(bytes.to_vec()).unwrap() }
    }

    /// Sends a `TestRequest` to the service and reads the whole reply.
    macro_rules! call {
        ($service:expr, $request:expr) => {
            reply(test::call_service($service, $request.to_request()).await)
        };
    }

    fn get(path: &str) -> TestRequest {
        TestRequest::get().uri(path)
    }

    fn system_clock() -> SharedClock {
        Arc::new(SystemClock)
    }

    #[actix_web::test]
    async fn every_kind_issues_one_and_a_batch() {
        let config = Config::default();
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        for kind in idgen_core::Kind::ALL {
            let reply = call!(&service, get(&format!("/v1/ids/{kind}"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            assert_eq!(reply.header("content-type"), Some("application/json"));
            let body = reply.json();
            assert!(body["id"].is_string(), "{kind}: {}", reply.text);

            let reply = call!(&service, get(&format!("/v1/ids/{kind}?count=500"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
            let ids = reply.ids();
            assert_eq!(ids.len(), 500);
            let unique: std::collections::HashSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), 500, "{kind}: duplicates");
            if kind.sortable() {
                let numeric = matches!(kind, Kind::Snowflake | Kind::Timestamp | Kind::Counter);
                for pair in ids.windows(2) {
                    let increasing = if numeric {
                        pair[0].parse::<u64>().unwrap() < pair[1].parse::<u64>().unwrap()
                    } else {
                        pair[0] < pair[1]
                    };
                    assert!(increasing, "{kind}: {} then {}", pair[0], pair[1]);
                }
            }
        }
    }

    use idgen_core::Kind;

    #[actix_web::test]
    async fn plain_text_and_post_bodies() {
        let config = Config::default();
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);

        let reply =
            call!(&service, get("/v1/ids/ulid?count=3").insert_header(("accept", "text/plain")))
                .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let lines: Vec<&str> = reply.text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|line| line.len() == 26));
        assert!(reply.text.ends_with('\n'));

        let reply =
            call!(&service, get("/v1/ids/image?count=3").insert_header(("accept", "image/png")))
                .await;
        assert_eq!(reply.error_code(), "unknown_kind");
        let reply =
            call!(&service, get("/v1/ids/uuid").insert_header(("accept", "image/png"))).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::NOT_ACCEPTABLE, "not_acceptable")
        );

        let post = TestRequest::post()
            .uri("/v1/ids/random?alphabet=hex")
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"count": 4, "length": 10, "alphabet": "base58"}"#);
        let reply = call!(&service, post).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let ids = reply.ids();
        assert_eq!(ids.len(), 4);
        assert!(ids.iter().all(|id| id.len() == 10 && id.bytes().all(|b| b.is_ascii_hexdigit())));

        let reply = call!(&service, TestRequest::post().uri("/v1/ids/uuid")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.json()["id"].is_string());

        let post = TestRequest::post().uri("/v1/ids/uuid").set_payload("{not json");
        let reply = call!(&service, post).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_body")
        );

        let post = TestRequest::post().uri("/v1/ids/uuid").set_payload(vec![b' '; 64 * 1024]);
        let reply = call!(&service, post).await;
        assert_eq!(reply.error_code(), "invalid_body");
    }

    #[actix_web::test]
    async fn validation_errors() {
        let config = Config { max_batch: 10, max_counters: 2, ..Config::default() };
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        for (path, status, code) in [
            ("/v1/ids/uuid?count=0", 400, "invalid_count"),
            ("/v1/ids/uuid?count=11", 400, "invalid_count"),
            ("/v1/ids/uuid?count=ten", 400, "invalid_count"),
            ("/v1/ids/random?length=0", 400, "invalid_length"),
            ("/v1/ids/random?length=1025", 400, "invalid_length"),
            ("/v1/ids/random?alphabet=emoji", 400, "invalid_alphabet"),
            ("/v1/ids/counter?name=no%20spaces", 400, "invalid_counter_name"),
            ("/v1/ids/nope", 404, "unknown_kind"),
            ("/v1/decode/nope/1", 404, "unknown_kind"),
            ("/v1/decode/uuid/not-a-uuid", 400, "invalid_id"),
            ("/v1/decode/snowflake/-5", 400, "invalid_id"),
            ("/v1/decode/counter/5", 400, "not_decodable"),
            ("/v1/decode/random/abc", 400, "not_decodable"),
            ("/generate_random_string/0", 400, "invalid_length"),
            ("/generate_random_string/abc", 400, "invalid_length"),
            ("/nowhere", 404, "not_found"),
            ("/v1/ids", 404, "not_found"),
            ("/v1/decode/uuid", 404, "not_found"),
        ] {
            let reply = call!(&service, get(path)).await;
            assert_eq!(reply.status.as_u16(), status, "{path}: {}", reply.text);
            assert_eq!(reply.error_code(), code, "{path}");
            for leak in ["::", "/src/", ".rs", "127.0.0.1"] {
                assert!(!reply.text.contains(leak), "{path}: {}", reply.text);
            }
        }
        // Unknown parameters are ignored; parameters of other kinds too.
        let reply = call!(&service, get("/v1/ids/uuid?foo=1&length=abc")).await;
        assert_eq!(reply.status, StatusCode::OK);

        // At most two counter names.
        for name in ["a", "b", "a"] {
            let reply = call!(&service, get(&format!("/v1/ids/counter?name={name}"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
        let reply = call!(&service, get("/v1/ids/counter?name=c")).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "too_many_counters")
        );
    }

    #[actix_web::test]
    async fn wrong_method_is_405_with_allow() {
        let config = Config::default();
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        for (method, path, allow) in [
            (Method::PUT, "/v1/ids/uuid", "GET, POST"),
            (Method::DELETE, "/v1/ids/nope", "GET, POST"),
            (Method::POST, "/v1/kinds", "GET"),
            (Method::POST, "/healthz", "GET"),
            (Method::POST, "/readyz", "GET"),
            (Method::POST, "/openapi.json", "GET"),
            (Method::POST, "/generate_uuid", "GET"),
            (Method::POST, "/generate_random_string/5", "GET"),
            (Method::PATCH, "/v1/decode/uuid/x", "GET"),
        ] {
            let reply =
                call!(&service, TestRequest::default().method(method.clone()).uri(path)).await;
            assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(reply.error_code(), "method_not_allowed");
            assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        }
    }

    /// `routes::fixed` takes the fixed ID paths in one step and leaves the rest to the actix
    /// routes behind it: a path each of them answers must get the same answer, with the rate
    /// limiter off and on.
    #[actix_web::test]
    async fn the_fixed_router_and_the_routes_behind_it_answer_alike() {
        for per_second in [0, 1_000_000] {
            let config = Config {
                rate_limit_per_second: per_second,
                rate_limit_burst: per_second,
                ..Config::default()
            };
            let (state, _dir) = state_with(config.clone(), system_clock());
            let service = service!(state, config);
            // (fixed, left to actix): percent-encoded digits are decoded by actix only.
            for (fixed, behind) in [
                ("/generate_random_string/21", "/generate_random_string/%32%31"),
                ("/generate_random_string/0", "/generate_random_string/%30"),
                ("/generate_random_string/1025", "/generate_random_string/%31025"),
            ] {
                let a = call!(&service, get(fixed)).await;
                let b = call!(&service, get(behind)).await;
                assert_eq!(a.status, b.status, "{fixed} vs {behind}: {} / {}", a.text, b.text);
                if a.status == StatusCode::OK {
                    let length = |reply: &Reply| reply.json()["id"].as_str().unwrap().len();
                    assert_eq!((length(&a), length(&b)), (21, 21));
                } else {
                    assert_eq!(a.error_code(), "invalid_length");
                    assert_eq!(a.text, b.text);
                }
            }
            // A known kind (fixed) and an unknown one (the `{kind}` pattern), wrong method.
            for path in ["/v1/ids/uuid", "/v1/ids/nope"] {
                let reply =
                    call!(&service, TestRequest::default().method(Method::HEAD).uri(path)).await;
                assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "HEAD {path}");
                assert_eq!(reply.header("allow"), Some("GET, POST"), "HEAD {path}");
            }
            // POST bodies through the fixed router: read, limited and checked as before.
            let post = |body: Vec<u8>| {
                TestRequest::post()
                    .uri("/v1/ids/uuid7")
                    .insert_header((header::CONTENT_TYPE, "application/json"))
                    .set_payload(body)
            };
            let reply = call!(&service, post(br#"{"count": 2}"#.to_vec())).await;
            assert_eq!(reply.ids().len(), 2, "{}", reply.text);
            let reply = call!(&service, post(b"[]".to_vec())).await;
            assert_eq!(reply.error_code(), "invalid_body");
            let reply = call!(&service, post(vec![b' '; BODY_LIMIT_BYTES + 1])).await;
            assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
            assert!(reply.json()["error"]["code"].is_string(), "{}", reply.text);
        }
    }

    #[actix_web::test]
    async fn every_listed_route_is_registered() {
        let config = Config::default();
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        for (pattern, _, _) in routes::ROUTES {
            let path = pattern
                .replace("{kind}", "uuid")
                .replace("{id}", "0192f1d6-54e1-4b2a-8a1c-3c5e2f8d9a70")
                .replace("{length}", "8");
            let reply = call!(&service, get(&path)).await;
            assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.text);
        }
    }

    #[actix_web::test]
    async fn decode_round_trips() {
        let config = Config { worker_id: 42, ..Config::default() };
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        for kind in ["snowflake", "uuid7", "ulid", "timestamp", "uuid"] {
            let id = call!(&service, get(&format!("/v1/ids/{kind}"))).await.json()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let reply = call!(&service, get(&format!("/v1/decode/{kind}/{id}"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{kind} {id}: {}", reply.text);
            let body = reply.json();
            assert_eq!(body["id"], id.as_str());
            if kind == "uuid" {
                assert_eq!(
                    (body["version"].as_u64(), body["variant"].as_str()),
                    (Some(4), Some("rfc9562"))
                );
            } else {
                let ms = body["timestamp_ms"].as_u64().unwrap();
                assert_eq!(body["time"].as_str().unwrap(), idgen_core::wire::rfc3339_ms(ms));
                let now = SystemClock.now_ms();
                assert!(ms.abs_diff(now) < 60_000, "{kind}: {ms} vs {now}");
            }
            if kind == "snowflake" {
                assert_eq!(body["worker_id"], 42);
                assert!(body["sequence"].is_u64());
            }
        }
    }

    use idgen_core::Clock;

    #[actix_web::test]
    async fn kinds_health_and_openapi() {
        let config = Config::default();
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        let kinds = call!(&service, get("/v1/kinds")).await.json();
        let names: Vec<&str> = kinds["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["uuid", "uuid7", "ulid", "snowflake", "timestamp", "counter", "random"]);
        assert_eq!(
            call!(&service, get("/healthz")).await.json(),
            serde_json::json!({"status": "ok"})
        );
        assert_eq!(
            call!(&service, get("/readyz")).await.json(),
            serde_json::json!({"status": "ok"})
        );

        let document = call!(&service, get("/openapi.json")).await.json();
        assert_eq!(document["info"]["title"], "idgen");
        assert!(document["openapi"].as_str().unwrap().starts_with('3'));
        for (pattern, allow, _) in routes::ROUTES {
            let item = &document["paths"][*pattern];
            assert!(item.is_object(), "{pattern} missing from the OpenAPI document");
            for method in allow.split(", ") {
                assert!(item[method.to_lowercase()].is_object(), "{method} {pattern} undocumented");
            }
        }
        assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    }

    #[actix_web::test]
    async fn tutorial_routes_keep_their_shapes() {
        let config = Config::default();
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        let uuid = call!(&service, get("/generate_uuid")).await;
        assert_eq!(uuid.header("cache-control"), Some("no-store"));
        assert_eq!(uuid.json()["id"].as_str().unwrap().len(), 36);
        let timestamp = call!(&service, get("/generate_timestamp_id")).await.json();
        assert!(timestamp["id"].as_str().unwrap().parse::<u64>().is_ok());
        let first =
            call!(&service, get("/generate_counter_id")).await.json()["id"].as_u64().unwrap();
        let second =
            call!(&service, get("/generate_counter_id")).await.json()["id"].as_u64().unwrap();
        assert_eq!((first, second), (1, 2));
        // The same counter as /v1/ids/counter (named `default`).
        let third = call!(&service, get("/v1/ids/counter")).await.json();
        assert_eq!(third["id"], "3");
        let snowflake = call!(&service, get("/generate_snowflake_id")).await.json();
        assert!(snowflake["id"].as_u64().unwrap() > 0);
        let random = call!(&service, get("/generate_random_string/12")).await.json();
        let text = random["id"].as_str().unwrap();
        assert!(text.len() == 12 && text.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[actix_web::test]
    async fn rate_limit_answers_429_with_headers_and_spares_probes() {
        let config = Config { rate_limit_per_second: 1, rate_limit_burst: 2, ..Config::default() };
        let (state, _dir) = state_with(config.clone(), system_clock());
        let service = service!(state, config);
        for _ in 0..2 {
            assert_eq!(call!(&service, get("/v1/ids/uuid")).await.status, StatusCode::OK);
        }
        let reply = call!(&service, get("/generate_uuid")).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
        let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        assert_eq!(reply.header("ratelimit-limit"), Some("2"));
        assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
        assert!(reply.header("ratelimit-reset").unwrap().parse::<u64>().unwrap() >= 1);
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            assert_eq!(call!(&service, get(path)).await.status, StatusCode::OK, "{path}");
        }
        let reply = call!(&service, TestRequest::post().uri("/readyz")).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(call!(&service, get("/nowhere")).await.status, StatusCode::NOT_FOUND);
        // A wrong method on a limited route is limited like the route.
        let reply = call!(&service, TestRequest::put().uri("/v1/ids/uuid")).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        // Another client (by peer address) has its own budget.
        let other = get("/v1/ids/uuid").peer_addr("192.0.2.7:5000".parse().unwrap());
        assert_eq!(call!(&service, other).await.status, StatusCode::OK);
    }

    #[actix_web::test]
    async fn clock_behind_the_mark_is_503_and_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemClock.now_ms();
        let clock = Arc::new(ManualClock::new(now));
        let config = Config::default();
        {
            let state = state_in(dir.path(), config.clone(), clock.clone());
            let service = service!(state, config);
            assert_eq!(call!(&service, get("/v1/ids/snowflake")).await.status, StatusCode::OK);
        }
        // Restarted with the clock set back by a minute: no snowflake, 503 with Retry-After.
        clock.set(now - 60_000);
        let state = state_in(dir.path(), config.clone(), clock.clone());
        let service = service!(state, config);
        let reply = call!(&service, get("/v1/ids/snowflake")).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((58..=61).contains(&retry_after), "{retry_after}");
        let ready = call!(&service, get("/readyz")).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.json()["status"], "unavailable");
        assert!(ready.json()["reasons"][0].as_str().unwrap().starts_with("snowflake"));
        assert!(ready.header("retry-after").is_some());
        // Other kinds are still served.
        assert_eq!(call!(&service, get("/v1/ids/uuid7")).await.status, StatusCode::OK);
    }

    #[actix_web::test]
    async fn quick_crash_restarts_do_not_push_the_floor_past_the_allowance() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
        let config = Config::default();
        let mut last = 0u64;
        for _ in 0..8 {
            // Each run issues, refreshes its marks and "crashes" (no settle) 10 ms later.
            let state = state_in(dir.path(), config.clone(), clock.clone());
            let service = service!(state, config);
            state.refresh_marks().await;
            for kind in ["snowflake", "timestamp"] {
                let reply = call!(&service, get(&format!("/v1/ids/{kind}?count=3"))).await;
                assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
                if kind == "snowflake" {
                    let first: u64 = reply.ids()[0].parse().unwrap();
                    assert!(first > last);
                    last = reply.ids()[2].parse().unwrap();
                }
            }
            state.refresh_marks().await;
            clock.advance(10);
        }
    }

    #[actix_web::test]
    async fn restarts_never_repeat_counters_or_snowflakes() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let mut last_counter = 0;
        let mut last_snowflake = 0;
        let mut last_timestamp = 0;
        for settle in [false, true, false] {
            let state = state_in(dir.path(), config.clone(), system_clock());
            {
                let service = service!(state, config);
                let counters = call!(&service, get("/v1/ids/counter?count=5")).await.ids();
                let counters: Vec<u64> = counters.iter().map(|v| v.parse().unwrap()).collect();
                assert!(counters[0] > last_counter, "{counters:?} after {last_counter}");
                last_counter = counters[4];
                let snowflakes = call!(&service, get("/v1/ids/snowflake?count=5")).await.ids();
                let first: u64 = snowflakes[0].parse().unwrap();
                assert!(first > last_snowflake);
                last_snowflake = snowflakes[4].parse().unwrap();
                let timestamps = call!(&service, get("/v1/ids/timestamp?count=5")).await.ids();
                let first: u64 = timestamps[0].parse().unwrap();
                assert!(first > last_timestamp);
                last_timestamp = timestamps[4].parse().unwrap();
            }
            // A clean stop settles the marks down; a crash (no settle) leaves them ahead.
            if settle {
                state.settle().unwrap();
            }
        }
        // The first run reserved a block; after the settled second run the third continued
        // right after the second.
        assert!(last_counter < 3 * 1000 + 20, "{last_counter}");
    }

    #[test]
    fn bad_data_dir_is_a_setting_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let config =
            Config { data_dir: file.join("sub"), bind: "127.0.0.1:0".into(), ..Config::default() };
        let error = Application::build(config).err().expect("should fail");
        let error = error.downcast_ref::<ConfigError>().expect("a ConfigError");
        assert_eq!(error.name(), "IDGEN_DATA_DIR");

        let config = Config {
            data_dir: dir.path().join("ok"),
            bind: "127.0.0.1:0".into(),
            ..Config::default()
        };
        let first = Application::build(config.clone()).unwrap();
        assert_ne!(first.address().port(), 0);
        assert!(first.startup_line().starts_with("idgen-server listening on http://127.0.0.1:"));
        assert!(first.startup_line().ends_with("(mode: embedded, worker 0)"));
        let locked = Application::build(config).err().expect("the dir is locked");
        assert!(locked.to_string().contains("IDGEN_DATA_DIR"), "{locked}");
    }

    #[actix_web::test]
    async fn run_until_serves_and_settles() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            bind: "127.0.0.1:0".into(),
            ..Config::default()
        };
        let application = Application::build(config.clone()).unwrap();
        let address = application.address();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        // A raw HTTP/1.1 request, so the test needs no client crate.
        let response = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            stream
                .write_all(
                    b"GET /v1/ids/counter?count=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            text
        })
        .await
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(r#"{"ids":["1","2","3"]}"#), "{response}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        // Settled: the counter's mark is what was issued, not the reserved block.
        let store = Store::open_embedded(dir.path()).unwrap();
        assert_eq!(store.snapshot().counters[0].1, 3);
    }
}
