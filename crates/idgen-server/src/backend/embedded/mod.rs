//! The embedded back end: one node, its marks in a data directory (a redb store, see
//! [`store`]; a previous release's `state.json` is migrated into it, see `state.rs`), the
//! directory locked against a second server (`lock.rs`), its worker id fixed by
//! `IDGEN_WORKER_ID` and recorded in the store. Writes fsync, so they run on actix's blocking
//! pool; they are rare (one per counter block or per half second of snowflake time). A failing
//! write is logged when writes start failing and when they work again, not per request.

mod lock;
mod state;
pub mod store;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::web;
use idgen_core::counter::CounterName;

use super::{Backend, BackendError, BackendFuture, Mark, Opened, Readiness, Snapshot};
use crate::config::{Config, ConfigError, Setting, Source};
pub use store::{EmbeddedStore, Key, key_name};

/// Why the data directory cannot do its job. Messages are for the operator's log and the
/// start-up line (they name paths); they are never sent to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create or open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is in use by another idgen-server (the directory is locked)", path.display())]
    Locked { path: PathBuf },
    #[error("{} is not valid idgen state ({reason}); restore it or move it away", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "this data dir ({}) was used with worker id {recorded}; start it with IDGEN_WORKER_ID={recorded}, or give worker id {configured} a fresh data dir",
        path.display()
    )]
    WorkerId { path: PathBuf, recorded: u64, configured: u16 },
    #[error(
        "this data dir ({}) holds snowflakes of the layout {recorded}, not {} ({configured}): changing it in place would break their order and uniqueness; keep the old IDGEN_SNOWFLAKE_LAYOUT, or give the new one a fresh data dir",
        path.display(), configured.fingerprint()
    )]
    Layout { path: PathBuf, recorded: String, configured: idgen_core::snowflake::Layout },
}

/// Opens (creating if needed) and locks `IDGEN_DATA_DIR` and checks it was used with
/// `IDGEN_WORKER_ID`; a problem with either is that setting's error.
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    let setting_error = |error: StoreError| {
        let setting = match error {
            StoreError::WorkerId { .. } => Setting::WorkerId,
            StoreError::Layout { .. } => Setting::SnowflakeLayout,
            _ => Setting::DataDir,
        };
        ConfigError::new(setting, Source::Env, error.to_string())
    };
    let store = EmbeddedStore::open(config.data_dir.clone()).map_err(setting_error)?;
    // The layout first: it tells a store used before layouts by its recorded worker id.
    store.bind_layout(config.snowflake_layout).map_err(setting_error)?;
    store.bind_worker(config.worker_id).map_err(setting_error)?;
    let durable = Snapshot { worker_id: config.worker_id, ..store.snapshot() };
    let backend = EmbeddedBackend {
        store: Arc::new(store),
        worker_id: config.worker_id,
        writes: Arc::new(Incident::new(Watched::Marks)),
        probe: Arc::new(Incident::new(Watched::Probe)),
    };
    Ok(Opened { backend: Arc::new(backend), durable })
}

/// The data directory as a [`Backend`].
pub struct EmbeddedBackend {
    store: Arc<EmbeddedStore>,
    worker_id: u16,
    /// Mark writes: logged when they start failing and when they work again.
    writes: Arc<Incident>,
    /// The readiness probe, likewise.
    probe: Arc<Incident>,
}

impl EmbeddedBackend {
    /// Runs a blocking store call on the blocking pool, reporting its outcome to `incident`.
    fn blocking<T: Send + 'static>(
        &self,
        incident: &Arc<Incident>,
        call: impl FnOnce(&EmbeddedStore) -> Result<T, StoreError> + Send + 'static,
    ) -> BackendFuture<'static, Result<T, BackendError>> {
        let store = Arc::clone(&self.store);
        let incident = Arc::clone(incident);
        Box::pin(async move {
            match web::block(move || incident.observe(call(&store))).await {
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
        self.blocking(&self.writes, move |store| {
            store.reserve(Key::Mark(&mark), needed, target.max(needed))
        })
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
        let raise = self.blocking(&self.writes, move |store| {
            store.reserve(Key::Snowflake, needed, target.max(needed))
        });
        Box::pin(async move { raise.await.map(Some) })
    }

    fn readiness(&self) -> BackendFuture<'_, Readiness> {
        let check = self.blocking(&self.probe, |store| store.check_writable());
        Box::pin(async move {
            let mut readiness =
                Readiness { reasons: Vec::new(), retry_after_secs: 1, store_up: true };
            match check.await {
                Ok(()) => {}
                // Logged once per incident by `Incident`.
                Err(BackendError::NotDurable { .. }) => {
                    readiness.reasons.push("store: the data directory is not writable".to_owned());
                    readiness.store_up = false;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "readiness: store check failed");
                    readiness.reasons.push("store: the writability check failed".to_owned());
                    readiness.store_up = false;
                }
            }
            readiness
        })
    }

    fn retire_counter<'a>(
        &'a self,
        name: &'a CounterName,
    ) -> BackendFuture<'a, Result<Option<u64>, BackendError>> {
        let name = name.clone();
        self.blocking(&self.writes, move |store| store.retire_counter(&name))
    }

    fn settle<'a>(
        &'a self,
        high_water: &'a Snapshot,
    ) -> BackendFuture<'a, Result<(), BackendError>> {
        // Synchronous on purpose: at shutdown nothing else runs, and the runtime's blocking
        // pool may already be winding down.
        let result = self
            .writes
            .observe(self.store.settle(high_water))
            .map_err(|error| BackendError::NotDurable { detail: error.to_string() });
        Box::pin(async move { result })
    }
}

/// Which writes an [`Incident`] watches.
#[derive(Debug, Clone, Copy)]
enum Watched {
    /// Mark writes: while they fail, ids that need a new mark are refused.
    Marks,
    /// The readiness probe: `/readyz` answers 503 while it fails.
    Probe,
}

/// Logs one line when writes start failing (with the OS error, e.g. "No space left on device
/// (os error 28)") and one when they work again, rather than one per request: a full disk
/// once wrote about 14 ERROR lines per refused request.
struct Incident {
    watched: Watched,
    failing: AtomicBool,
}

impl Incident {
    fn new(watched: Watched) -> Self {
        Self { watched, failing: AtomicBool::new(false) }
    }

    /// Passes `result` through, logging a change between working and failing.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let was_failing = self.failing.swap(result.is_err(), Ordering::AcqRel);
        match (&result, was_failing, self.watched) {
            (Ok(_), true, Watched::Marks) => {
                tracing::info!("data directory: mark writes work again");
            }
            (Ok(_), true, Watched::Probe) => {
                tracing::info!("data directory: writable again (readiness)");
            }
            (Err(error), false, Watched::Marks) => tracing::error!(
                error = %error,
                "data directory: mark writes fail; ids that need a new mark get 503 until a \
                 write works again (not logged again until then)"
            ),
            (Err(error), false, Watched::Probe) => tracing::warn!(
                error = %error,
                "data directory: not writable; /readyz answers 503 until it is (not logged \
                 again until then)"
            ),
            _ => {}
        }
        result
    }
}
