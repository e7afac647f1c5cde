//! Start-up and shutdown: [`Application`] binds the listener (so the real address is known
//! before anything runs), opens the back end the configuration asks for and builds the shared
//! state; [`app`] wires the router, the middleware and the rate limiter.
//!
//! Shutdown: actix installs SIGTERM/SIGINT handlers. On either it stops accepting, lets
//! in-flight requests finish (up to [`SHUTDOWN_TIMEOUT_SECS`]) and its server future returns;
//! only then are the background tasks stopped and the back end settled (marks down to the real
//! high water, a leased worker id released), so no request can issue an ID after the final
//! write.
//!
//! Middleware order (outermost first): error rewriting for the whole app; then, for the
//! limited routes only, the rate limiter (see `routes::router`). Probes and the document are
//! never limited.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_http::error::DispatchError;
use actix_service::{IntoServiceFactory, fn_service, map_config};
use actix_service::{ServiceFactoryExt, apply};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::AppConfig;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, web};
use anyhow::Context;
use idgen_core::{Clock as _, SystemClock};

use crate::backend;
use crate::codec_errors::JsonCodecErrors;
use crate::config::{Config, ConfigError, Setting, Source};
use crate::error;
use crate::issue::SharedClock;
use crate::rate_limit::RateLimit;
use crate::rate_limit::shared::shared_rate_limit;
use crate::routes::Surface;
use crate::routes::router::{Handlers, Router};
use crate::state::AppState;
use crate::tls::{Conn, Tls};

/// How long in-flight requests may run after a stop signal.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// Largest request body accepted (an `IdRequest` is a few dozen bytes).
pub(crate) const BODY_LIMIT_BYTES: usize = 16 * 1024;
/// How often the time marks are checked for renewal.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);
/// A wall-clock step back of more than this between two refreshes is counted.
const CLOCK_STEP_MS: u64 = 5;

/// A server that has bound its address but not started serving.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    /// `IDGEN_ADMIN_BIND`'s listener and address.
    admin: Option<(TcpListener, SocketAddr)>,
    state: web::Data<AppState>,
    rate_limit: RateLimit,
    /// `IDGEN_TLS_CERT`'s TLS, on every listener.
    tls: Option<Arc<Tls>>,
    /// The worker id is the default 0 because none was given (and the back end does not lease
    /// one): safe for one node only, so the start-up line says so.
    default_worker_id: bool,
}

impl Application {
    /// Binds `config.bind` (port 0 picks a free port), opens the back end (the data dir, or
    /// Redis with a leased worker id) and builds the generators. Setting problems (including an
    /// unreachable Redis or a worker id held by another node) come back as a [`ConfigError`]
    /// inside the `anyhow::Error`.
    pub fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Arc::new(SystemClock))
    }

    /// [`Application::build`] with an injected clock.
    pub fn build_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Application> {
        // Bind first: a leasing back end takes a worker id next, which a failed bind would
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
        let admin = match &config.admin_bind {
            Some(bind) => {
                let admin = TcpListener::bind(bind).map_err(|error| {
                    ConfigError::new(
                        Setting::AdminBind,
                        Source::Env,
                        format!("cannot listen on {bind}: {error}"),
                    )
                })?;
                admin.set_nonblocking(true).context("make the admin listener non-blocking")?;
                let address = admin.local_addr().context("read the admin address")?;
                Some((admin, address))
            }
            None => None,
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                Tls::load(cert, key)
                    .map_err(|problem| ConfigError::new(Setting::TlsCert, Source::Env, problem))?,
            )),
            _ => None,
        };
        let opened = backend::open(&config)?;
        let default_worker_id = !config.worker_id_fixed && opened.backend.worker_tick().is_none();
        let state = web::Data::new(AppState::new(&config, opened, clock)?);
        let rate_limit = RateLimit::new(&config, &state.issuer().backend_arc());
        Ok(Application { listener, address, admin, state, rate_limit, tls, default_worker_id })
    }

    /// The address really bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin listener's address, when `IDGEN_ADMIN_BIND` is set.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, address)| *address)
    }

    /// The one start-up line, e.g.
    /// `idgen-server listening on http://127.0.0.1:41234 (mode: embedded, worker 3, 2 API keys)`,
    /// with `, default` after a worker id nobody chose, what the back end describes of itself
    /// (Redis: `, persistence: aof appendfsync always, 1 replicas`), the keys (`open: no API
    /// keys` without them) and the admin listener.
    pub fn startup_line(&self) -> String {
        let issuer = self.state.issuer();
        let default = if self.default_worker_id { ", default" } else { "" };
        let store = issuer.backend().describe().map(|text| format!(", {text}")).unwrap_or_default();
        let keys = match self.state.auth() {
            Some(auth) if auth.len() == 1 => ", 1 API key".to_owned(),
            Some(auth) => format!(", {} API keys", auth.len()),
            None => ", open: no API keys".to_owned(),
        };
        let scheme = self.scheme();
        let admin = self
            .admin_address()
            .map(|address| format!(", admin on {scheme}://{address}"))
            .unwrap_or_default();
        format!(
            "idgen-server listening on {scheme}://{} (mode: {}, worker {}{default}{store}{keys}{admin})",
            self.address,
            issuer.backend().mode(),
            issuer.worker_id()
        )
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serves until SIGTERM or SIGINT, then settles the back end.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until a signal or until `shutdown` completes (tests), then drains in-flight
    /// requests and settles the back end.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Application { listener, admin, state, rate_limit, tls, .. } = self;
        let server = {
            let (state, rate_limit, tls) = (state.clone(), rate_limit.clone(), tls.clone());
            http_server(listener, admin.map(|(listener, _)| listener), state, rate_limit, tls)
                .context("start serving on the bound listener")?
        };
        let reloader = tokio::spawn(reload_on_sighup(state.clone(), tls));
        let handle = server.handle();
        let refresher = tokio::spawn(refresh_marks(state.clone()));
        let worker_keeper =
            state.issuer().worker_tick().map(|tick| tokio::spawn(keep_worker(state.clone(), tick)));
        let maintenance = rate_limit.spawn_maintenance();

        let outcome = tokio::select! {
            outcome = server => outcome.context("the HTTP server failed"),
            () = shutdown => {
                handle.stop(true).await;
                Ok(())
            }
        };

        refresher.abort();
        reloader.abort();
        if let Some(task) = worker_keeper {
            task.abort();
        }
        if let Some(task) = maintenance {
            task.abort();
        }
        drop(rate_limit);
        let settled = state.issuer().settle().await.context("save the final high-water marks");
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

/// On SIGHUP: re-reads the API keys file and the TLS certificate (a bad file keeps what is in
/// use, and says why).
async fn reload_on_sighup(state: web::Data<AppState>, tls: Option<Arc<Tls>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot listen for SIGHUP; the keys file and certificate are read at start only"
        );
        return;
    };
    while hangups.recv().await.is_some() {
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(problem) => tracing::error!(
                    problem = %problem,
                    "SIGHUP: the TLS certificate or key is not valid; the certificate in use stays"
                ),
            }
        }
        if let Some(auth) = state.auth() {
            match auth.reload() {
                Ok(count) => tracing::info!(keys = count, "SIGHUP: API keys reloaded"),
                Err(problem) => tracing::error!(
                    problem = %problem,
                    keys = auth.len(),
                    "SIGHUP: the API keys file is not valid; the keys in use stay"
                ),
            }
        }
    }
}

/// Renews (or re-takes) the worker id, when the back end leases it.
async fn keep_worker(state: web::Data<AppState>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        state.issuer().maintain_worker().await;
    }
}

/// Every [`REFRESH_INTERVAL`]: keeps the marks ahead, notices the wall clock stepping back
/// (`idgen_clock_backward_events_total`), and now and then folds the histogram samples in.
async fn refresh_marks(state: web::Data<AppState>) {
    let mut interval = tokio::time::interval(REFRESH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let metrics = std::sync::Arc::clone(&state.observer().metrics);
    let mut last_ms = state.issuer().clock().now_ms();
    for tick in 0u64.. {
        interval.tick().await;
        state.issuer().refresh_marks().await;
        let now_ms = state.issuer().clock().now_ms();
        // NTP slews by far less than this; a step back of more is an event worth an alert.
        if now_ms + CLOCK_STEP_MS < last_ms {
            metrics.clock_backward();
            tracing::warn!(behind_ms = last_ms - now_ms, "the wall clock stepped back");
        }
        last_ms = now_ms;
        if tick % 10 == 0 {
            metrics.upkeep();
            state.observer().incidents.sweep();
        }
    }
}

/// What `HttpServer::listen` builds, with one difference: each connection's socket is wrapped
/// in [`JsonCodecErrors`], so the answers actix's HTTP/1 codec writes itself carry the API's
/// JSON error body too. One worker per core (actix's default), plain HTTP/1.1. With an admin
/// listener, the main one serves no admin route and the admin one only those and the probes.
fn http_server(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: web::Data<AppState>,
    rate_limit: RateLimit,
    tls: Option<Arc<Tls>>,
) -> std::io::Result<actix_server::Server> {
    let builder = actix_server::Server::build().shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    // Fired when a stop begins: idle keep-alive connections close at once instead of holding
    // a worker (and the shutdown) until their keep-alive runs out.
    let stopping = builder.graceful_shutdown_signal();
    let main_surface = if admin.is_some() { Surface::Public } else { Surface::All };
    let mut builder =
        listen(builder, listener, main_surface, &state, rate_limit, tls.clone(), &stopping)?;
    if let Some(admin) = admin {
        let off = RateLimit::off();
        builder = listen(builder, admin, Surface::Admin, &state, off, tls, &stopping)?;
    }
    Ok(builder.run())
}

/// `builder` with `listener` serving `surface`.
fn listen(
    builder: actix_server::ServerBuilder,
    listener: TcpListener,
    surface: Surface,
    state: &web::Data<AppState>,
    rate_limit: RateLimit,
    tls: Option<Arc<Tls>>,
    stopping: &actix_server::GracefulShutdownSignal,
) -> std::io::Result<actix_server::ServerBuilder> {
    let address = listener.local_addr()?;
    let name = if surface == Surface::Admin { "idgen-admin" } else { "idgen" };
    let (state, stopping) = (state.clone(), stopping.clone());
    builder.listen(name, listener, move || {
        let app = app(state.clone(), rate_limit.clone(), surface)
            .into_factory()
            .map_err(|error: actix_web::Error| error.error_response());
        let stopping = stopping.clone();
        // The rest as actix-web's HttpServer sets it, which tests and clients rely on.
        // (`AppConfig` only feeds URL building and `connection_info`'s fallback host, which
        // nothing here uses; actix-web's own constructor for it is private.)
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let stopping = stopping.clone();
                async move { stopping.notified().await }
            })
            .client_request_timeout(Duration::from_secs(5))
            .client_disconnect_timeout(Duration::from_secs(1))
            .h1_allow_half_closed(true)
            .local_addr(address)
            .h1(map_config(app, |()| AppConfig::default()));
        let metrics = Arc::clone(&state.observer().metrics);
        let tls = tls.clone();
        fn_service(move |stream: actix_web::rt::net::TcpStream| {
            let (metrics, tls) = (Arc::clone(&metrics), tls.clone());
            async move {
                let peer = stream.peer_addr().ok();
                // What actix-web's own listener does (small answers must not wait for Nagle).
                let _ = stream.set_nodelay(true);
                let conn = match tls {
                    // A failed handshake just drops the connection: there is no HTTP to
                    // answer in yet.
                    Some(tls) => Conn::Tls(Box::new(tls.accept(stream).await?)),
                    None => Conn::Plain(stream),
                };
                Ok::<_, DispatchError>((JsonCodecErrors::new(conn, metrics), peer))
            }
        })
        .and_then(http)
    })
}

/// The actix `App`: the router (the app's only service), the error rewriting and the rate
/// limiter in front of the limited routes.
pub fn app(
    state: web::Data<AppState>,
    rate_limit: RateLimit,
    surface: Surface,
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
        .wrap(error::error_handlers());
    let handlers = Handlers::new(state, surface);
    // Each branch gets only the limiter that applies, unwrapped: a switched-off layer still
    // moves every request and its future through it (~1.7k instructions of memcpy per request,
    // measured with callgrind).
    if let Some(shared) = rate_limit.shared() {
        let shared = Arc::clone(shared);
        let limiter = from_fn(move |request: ServiceRequest, next: Next<BoxBody>| {
            shared_rate_limit(Arc::clone(&shared), request, next)
        });
        let limited = apply(limiter, handlers.clone()).map(ServiceResponse::map_into_boxed_body);
        app.default_service(Router::limited(handlers, limited))
    } else if rate_limit.enabled() {
        app.default_service(Router::locally_limited(handlers, rate_limit))
    } else {
        app.default_service(Router::new(handlers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::embedded::EmbeddedStore;

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
        assert!(
            first
                .startup_line()
                .ends_with("(mode: embedded, worker 0, default, open: no API keys)")
        );
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
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(store.snapshot().counters[0].1, 3);
    }
}
