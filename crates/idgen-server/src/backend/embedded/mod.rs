//! The embedded back end: one node, its marks in a data directory (`state.json`, see
//! [`state`]), its worker id fixed by `IDGEN_WORKER_ID`. Writes fsync, so they run on actix's
//! blocking pool; they are rare (one per counter block or per half second of snowflake time).

pub mod state;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;

use super::{Backend, BackendError, BackendFuture, Mark, Opened, Readiness, Snapshot};
use crate::config::{Config, ConfigError, Setting, Source};
pub use state::{EmbeddedStore, Key};

/// Why the data directory cannot do its job. Messages are for the operator's log and the
/// start-up line (they name paths); they are never sent to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create or open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is in use by another idgen-server (its lock file is held)", path.display())]
    Locked { path: PathBuf },
    #[error("{} is not valid idgen state ({reason}); restore it or move it away", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Opens (creating if needed) and locks `IDGEN_DATA_DIR`; a problem with it is a setting error.
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    let store = EmbeddedStore::open(config.data_dir.clone())
        .map_err(|error| ConfigError::new(Setting::DataDir, Source::Env, error.to_string()))?;
    let durable = Snapshot { worker_id: config.worker_id, ..store.snapshot() };
    let backend = EmbeddedBackend { store: Arc::new(store), worker_id: config.worker_id };
    Ok(Opened { backend: Arc::new(backend), durable })
}

/// The data directory as a [`Backend`].
pub struct EmbeddedBackend {
    store: Arc<EmbeddedStore>,
    worker_id: u16,
}

impl EmbeddedBackend {
    /// Runs a blocking store call on the blocking pool.
    fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&EmbeddedStore) -> Result<T, StoreError> + Send + 'static,
    ) -> BackendFuture<'static, Result<T, BackendError>> {
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            match web::block(move || call(&store)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(BackendError::NotDurable { detail: error.to_string() }),
                Err(error) => {
                    Err(BackendError::Internal { detail: format!("store task failed: {error}") })
                }
            }
        })
    }
}

impl Backend for EmbeddedBackend {
    fn mode(&self) -> &'static str {
        "embedded"
    }

    fn store_name(&self) -> &'static str {
        "data directory"
    }

    fn raise_mark<'a>(
        &'a self,
        mark: &'a Mark,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'a, Result<u64, BackendError>> {
        let mark = mark.clone();
        self.blocking(move |store| store.reserve(Key::Mark(&mark), needed, target.max(needed)))
    }

    fn worker_valid(&self) -> bool {
        true
    }

    fn worker_retry_after_secs(&self) -> u64 {
        1
    }

    fn raise_worker_mark(
        &self,
        worker_id: u16,
        needed: u64,
        target: u64,
    ) -> BackendFuture<'_, Result<Option<u64>, BackendError>> {
        if worker_id != self.worker_id {
            return Box::pin(async { Ok(None) });
        }
        let raise =
            self.blocking(move |store| store.reserve(Key::Snowflake, needed, target.max(needed)));
        Box::pin(async move { raise.await.map(Some) })
    }

    fn readiness(&self) -> BackendFuture<'_, Readiness> {
        let check = self.blocking(|store| store.check_writable());
        Box::pin(async move {
            let mut readiness = Readiness { reasons: Vec::new(), retry_after_secs: 1 };
            match check.await {
                Ok(()) => {}
                Err(BackendError::NotDurable { detail }) => {
                    tracing::warn!(error = %detail, "readiness: data directory not writable");
                    readiness.reasons.push("store: the data directory is not writable".to_owned());
                }
                Err(error) => {
                    tracing::warn!(error = %error, "readiness: store check failed");
                    readiness.reasons.push("store: the writability check failed".to_owned());
                }
            }
            readiness
        })
    }

    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>> {
        // Synchronous on purpose: at shutdown nothing else runs, and the runtime's blocking
        // pool may already be winding down.
        let result = self
            .store
            .settle(high_water)
            .map_err(|error| BackendError::NotDurable { detail: error.to_string() });
        Box::pin(async move { result })
    }
}
