//! What an operator sees of the server: [`metrics`] (`/metrics`), [`logging`] (the log
//! subscriber, text or JSON), [`request_id`] (kept, made and echoed), [`incidents`] (failures
//! logged once per incident), and the access log, one
//! line per request (`IDGEN_ACCESS_LOG`). [`Observer::finished`] is called by the router once
//! for every answer, 429s and 404s included.

pub mod incidents;
pub mod logging;
pub mod metrics;
pub mod request_id;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::HeaderValue;

use crate::auth::Caller;
use crate::config::{AccessLog, Config};
use crate::rate_limit::ClientIp;
use incidents::Incidents;
use metrics::{Metrics, route_labels};
use request_id::RequestIds;

/// The per-application observation state, shared by every worker.
pub struct Observer {
    pub metrics: Arc<Metrics>,
    pub incidents: Arc<Incidents>,
    pub ids: RequestIds,
    access_log: AccessLog,
    /// For the access log's client address (after `IDGEN_TRUSTED_PROXIES`).
    clients: ClientIp,
    /// The route labels, indexed like `Entry::route`.
    routes: Vec<String>,
    /// When the application was built, for `uptime_seconds`.
    pub started: Instant,
}

impl Observer {
    pub fn new(config: &Config) -> Self {
        Self {
            metrics: Arc::new(Metrics::new()),
            incidents: Arc::new(Incidents::new()),
            ids: RequestIds::new(),
            access_log: config.access_log,
            clients: ClientIp::new(config, 1),
            routes: route_labels(),
            started: Instant::now(),
        }
    }

    /// After a request to route number `route` (`routes.len() - 1`: none) was answered:
    /// echoes its id, counts it, and writes its access-log line when asked to.
    /// Whether the access log writes a line for an answer of `status`.
    pub fn logs(&self, status: u16) -> bool {
        match self.access_log {
            AccessLog::All => true,
            AccessLog::Errors => status >= 400,
            AccessLog::Off => false,
        }
    }

    pub fn finished(
        &self,
        route: usize,
        response: &mut ServiceResponse,
        started: Instant,
        request_id: HeaderValue,
    ) {
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        self.metrics.request(route, status, elapsed.as_secs_f64());
        if self.logs(status) {
            let request = response.request();
            let peer = request.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip());
            let client = self.clients.client_of(peer, request.headers());
            tracing::info!(
                target: "idgen_server::access",
                method = %request.method(),
                route = self.routes[route].as_str(),
                status,
                duration_us = elapsed.as_micros() as u64,
                client = %client,
                key = response.response().extensions().get::<Caller>().map_or("", |c| &c.0.name),
                request_id = %request_id.to_str().unwrap_or_default(),
                "request"
            );
        }
        response.headers_mut().insert(request_id::HEADER.clone(), request_id);
    }
}
