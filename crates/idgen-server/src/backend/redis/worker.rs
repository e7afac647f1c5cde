//! The worker id's upkeep, at every maintenance tick: a look at the store identity (a store
//! that went back in time stops everything; a recovered one is adopted), then the lease:
//! renewed when due, or taken again when it was lost. Also saves the node file about once a
//! second.

use std::time::{Duration, Instant};

use super::RedisBackend;
use super::identity::{Look, look};
use super::lease::{self, Held};
use crate::backend::WorkerEvents;

/// How often the node file is saved while counters or marks move.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

impl RedisBackend {
    /// One maintenance tick (see the module doc).
    pub(super) async fn tick(&self, events: &dyn WorkerEvents) {
        self.look_at_identity().await;
        if self.regression.is_set() {
            // Fail closed: no snowflakes while the store may have forgotten worker ids.
            if self.lease.drop_lease().is_some() {
                events.lost();
            }
        } else {
            match self.lease.held() {
                Some(held) => self.renew(held, events).await,
                None => self.reacquire(events).await,
            }
        }
        let due = self.last_saved.lock().elapsed() >= SAVE_INTERVAL;
        if due {
            self.save_node_file(&[]);
        }
    }

    /// Compares the store identity with the one this node works under.
    async fn look_at_identity(&self) {
        let Some(mine) = self.store.identity() else { return };
        let Ok(found) = self.store.read_identity().await else { return };
        match look(&found, &mine) {
            Look::Unchanged => {}
            Look::Recovered(identity) => {
                tracing::info!(
                    "the Redis store was recovered; adopting its new identity and issuing again"
                );
                self.store.adopt_identity(identity.clone());
                self.node_file.lock().store_id = Some(identity);
                self.regression.clear();
                self.save_node_file(&[]);
            }
            Look::Lost(reason) => self.regress(&reason),
        }
    }

    /// Records what this node was handed (and `workers`' snowflake high water) in its data
    /// dir; a failure is logged, not fatal (the in-memory view still protects this process).
    pub(super) fn save_node_file(&self, workers: &[(u16, u64)]) {
        let counters: Vec<(String, u64)> = self
            .store
            .counters_seen()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_owned(), value))
            .collect();
        let mut marks: Vec<(u16, u64)> =
            self.worker_marks.lock().iter().map(|(id, mark)| (*id, *mark)).collect();
        marks.extend_from_slice(workers);
        let mut file = self.node_file.lock();
        file.merge_high_water(&counters, &marks);
        let timestamp = self.last_timestamp.load(std::sync::atomic::Ordering::Relaxed);
        file.timestamp_ms = file.timestamp_ms.max(timestamp);
        if let Err(error) = file.save(&self.node_dir) {
            tracing::warn!(error = %error, dir = %self.node_dir.display(), "cannot save this node's Redis state");
        }
        *self.last_saved.lock() = Instant::now();
    }

    /// Renews the held lease when due; drops it (and stops snowflakes) when Redis says it is
    /// not ours any more.
    async fn renew(&self, held: Held, events: &dyn WorkerEvents) {
        let lease = &self.lease;
        if !lease.renewal_due() && lease.is_valid() {
            return;
        }
        let sent = Instant::now();
        match self.store.renew(held.worker_id, &held.token, lease.ttl()).await {
            Ok(true) => lease.confirm(held, sent),
            Ok(false) => {
                tracing::warn!(
                    worker_id = held.worker_id,
                    "the worker-id lease expired or was taken; snowflakes stop until a new one is held"
                );
                lease.drop_lease();
                events.lost();
            }
            Err(error) => {
                if lease.is_valid() {
                    tracing::warn!(error = %error, "cannot renew the worker-id lease; retrying");
                } else {
                    tracing::debug!(error = %error, "cannot renew the worker-id lease");
                }
            }
        }
    }

    /// Leases a worker id again after the lease was lost: the one snowflakes were issued with
    /// if it is free, else another (unless `IDGEN_WORKER_ID` fixes it).
    async fn reacquire(&self, events: &dyn WorkerEvents) {
        let token = lease::new_token();
        let previous = events.current_worker_id();
        let acquired = lease::acquire(
            &self.store,
            self.fixed_worker_id,
            Some(previous),
            self.max_worker,
            &token,
            self.lease.ttl(),
        )
        .await;
        match acquired {
            Ok(Some((worker_id, mark_ms, sent))) => {
                events.leased(worker_id, mark_ms);
                let mut marks = self.worker_marks.lock();
                let recorded = marks.entry(worker_id).or_default();
                *recorded = (*recorded).max(mark_ms);
                drop(marks);
                self.lease.confirm(Held { worker_id, token }, sent);
                tracing::info!(worker_id, "leased a worker id; snowflakes resume");
            }
            Ok(None) => {
                tracing::warn!(
                    "no worker id can be leased now (all taken, or the fixed one is held)"
                );
            }
            Err(super::RedisError::Regressed(reason)) => self.regress(&reason),
            Err(error) => tracing::debug!(error = %error, "cannot lease a worker id yet"),
        }
    }
}
