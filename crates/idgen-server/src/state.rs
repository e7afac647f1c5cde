//! `AppState`: what a request handler can reach, built once and shared by every worker: the
//! issuing layer, the request limits, and what decoding needs.

use idgen_core::DecodeContext;

use crate::backend::Opened;
use crate::config::Config;
use crate::issue::{Issuer, SharedClock};

/// Request limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: u32,
}

/// Everything a handler needs (`web::Data<AppState>`).
pub struct AppState {
    issuer: Issuer,
    limits: Limits,
    decode: DecodeContext,
}

impl AppState {
    /// The generators above the marks of the back end `opened`.
    pub fn new(config: &Config, opened: Opened, clock: SharedClock) -> anyhow::Result<Self> {
        Ok(Self {
            issuer: Issuer::new(config, opened.backend, opened.durable, clock)?,
            limits: Limits { max_batch: config.max_batch },
            decode: DecodeContext { snowflake_epoch_ms: config.snowflake_epoch_ms },
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
}
