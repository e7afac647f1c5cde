//! `AppState`: what a request handler can reach, built once and shared by every worker: the
//! issuing layer, the request limits, what decoding needs, and the [`Observer`] (metrics,
//! request ids, access log).

use std::sync::Arc;

use idgen_core::{DecodeContext, Kind};

use crate::auth::{Auth, SharedKeyLimits};
use crate::backend::Opened;
use crate::backend::observed::Observed;
use crate::config::{Config, ConfigError, Setting, Source};
use crate::error::ApiError;
use crate::issue::{Issuer, SharedClock};
use crate::observe::Observer;

/// Request limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: u32,
    /// 0: rate limiting is off.
    pub rate_per_second: u32,
    /// The bucket's size (the rate when `IDGEN_RATE_LIMIT_BURST` is 0).
    pub rate_burst: u32,
    /// `IDGEN_METRICS_COUNTER_LABELS`: a `counter` label per counter name on `/metrics`.
    pub counter_labels: bool,
}

/// Everything a handler needs (`web::Data<AppState>`).
pub struct AppState {
    issuer: Issuer,
    limits: Limits,
    decode: DecodeContext,
    observer: Observer,
    /// The OpenAPI document as served (it states this server's batch limit).
    openapi: actix_web::web::Bytes,
    /// The `/v1/kinds` body (it states this server's batch limit too).
    kinds: actix_web::web::Bytes,
    /// The API keys, when `IDGEN_API_KEYS_FILE` is set.
    auth: Option<Auth>,
    /// The web origins allowed, when `IDGEN_CORS_ORIGINS` is set.
    cors: Option<crate::cors::Cors>,
}

impl AppState {
    /// The generators above the marks of the back end `opened`, which is observed from here
    /// on (every store operation counted and timed).
    pub fn new(config: &Config, opened: Opened, clock: SharedClock) -> anyhow::Result<Self> {
        let observer = Observer::new(config);
        let backend = Arc::new(Observed::new(
            opened.backend,
            Arc::clone(&observer.metrics),
            Arc::clone(&observer.incidents),
        ));
        let auth = match &config.api_keys_file {
            Some(path) => {
                // In Redis mode the per-key rates and quotas are the store's, for every node.
                let store: Arc<dyn crate::backend::Backend> = backend.clone();
                let shared =
                    SharedKeyLimits::new(store, Arc::clone(&clock), config.rate_limit_fail);
                let auth = Auth::load(path.clone(), Arc::clone(&clock), shared);
                Some(auth.map_err(|problem| {
                    ConfigError::new(Setting::ApiKeysFile, Source::Env, problem)
                })?)
            }
            None => None,
        };
        Ok(Self {
            issuer: Issuer::new(config, backend, opened.durable, clock)?,
            limits: Limits {
                max_batch: config.max_batch,
                rate_per_second: config.rate_limit_per_second,
                rate_burst: config.effective_burst().max(1),
                counter_labels: config.metrics_counter_labels,
            },
            decode: DecodeContext {
                snowflake_epoch_ms: config.snowflake_epoch_ms,
                snowflake_layout: config.snowflake_layout,
                strict: false,
            },
            observer,
            openapi: crate::routes::openapi::served_bytes(
                config.max_batch,
                auth.is_some(),
                &DecodeContext {
                    snowflake_epoch_ms: config.snowflake_epoch_ms,
                    snowflake_layout: config.snowflake_layout,
                    strict: false,
                },
            ),
            kinds: crate::routes::kinds::served_bytes(config.max_batch),
            auth,
            cors: crate::cors::Cors::new(&config.cors_origins),
        })
    }

    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn decode_context(&self) -> DecodeContext {
        self.decode
    }

    /// The API keys, when configured.
    pub fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    /// The web origins allowed, when configured.
    pub fn cors(&self) -> Option<&crate::cors::Cors> {
        self.cors.as_ref()
    }

    pub fn openapi(&self) -> actix_web::web::Bytes {
        self.openapi.clone()
    }

    pub fn kinds(&self) -> actix_web::web::Bytes {
        self.kinds.clone()
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// Counts `error` when it is a 503 (`idgen_refused_total`, by kind and cause) and logs it
    /// once per incident.
    pub fn observe_refusal(&self, error: &ApiError, kind: Option<Kind>) {
        if let ApiError::Unavailable(refusal) = error {
            let reason = refusal.reason();
            self.observer.metrics.refused(kind, reason);
            self.observer.incidents.record(&format!("refused:{reason}"), || refusal.message());
        }
    }
}
