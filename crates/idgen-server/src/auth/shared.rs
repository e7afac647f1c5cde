//! Per-key limits shared by every node (Redis mode): the key's rate is a GCRA bucket in the
//! store (the one the per-IP shared limit uses, under the key's name) and its daily quota a
//! count per key and UTC day in the store. Like the per-IP limit, a node takes both in *slices*
//! and serves a key's next requests from what it holds, so a busy key pays one store round
//! trip per slice, not per request:
//! - rate: at most 10 ms of the rate and a tenth of the burst per slice (`slice_size`), used
//!   within [`SLICE_TTL`] of being granted, so over any T the cluster lets through at most
//!   `burst + rate * (T + 10 ms)` IDs plus one slice per node;
//! - quota: a hundredth of the day's quota per slice (at least what the request needs), all or
//!   nothing; near the end of the quota a request reserves exactly what it needs, so the quota
//!   is never exceeded, and at most one slice per node is left unused when the day ends.
//!
//! A refused rate leaves what the quota slice reserved in this node's pool for the next
//! request of the key; nothing charged is handed back to the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen_core::{Clock, ParamError};
use parking_lot::Mutex;

use super::keys::Key;
use super::limits::{DAY_MS, quota_exhausted};
use crate::backend::{Backend, BackendError, RateBucket, RateDecision};
use crate::config::RateLimitFail;
use crate::error::{ApiError, Refusal};
use crate::issue::SharedClock;
use crate::rate_limit::shared::{SLICE_TTL, slice_size};

/// What a node holds of one key's rate and quota.
#[derive(Default)]
struct Pool {
    tokens: u64,
    tokens_expire: Option<Instant>,
    /// (UTC day, IDs of that day's quota reserved here and not yet spent).
    quota: (u64, u64),
}

/// The per-key limits of a node whose back end keeps them for every node.
pub struct SharedKeyLimits {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
    fail: RateLimitFail,
    pools: Mutex<HashMap<Arc<str>, Pool>>,
}

impl SharedKeyLimits {
    /// `None` when `backend` keeps no rate buckets (embedded mode: the limits are local).
    pub fn new(backend: Arc<dyn Backend>, clock: SharedClock, fail: RateLimitFail) -> Option<Self> {
        backend.rate_tokens()?;
        Some(Self { backend, clock, fail, pools: Mutex::new(HashMap::new()) })
    }

    /// Spends `count` IDs of `key`'s quota and rate, or says when to come back.
    pub async fn spend(&self, key: &Key, count: u64) -> Result<(), ApiError> {
        let burst = key.burst().map(u64::from);
        if let Some(burst) = burst
            && count > burst
        {
            // More than the key's burst at once: never allowed, whatever the wait.
            return Err(ParamError::Count { max: burst as u32 }.into());
        }
        let name = &key.name;
        if let Some(quota) = key.daily_quota {
            self.spend_quota(name, count, quota).await?;
        }
        if let (Some(per_second), Some(burst)) = (key.rate_per_second, burst)
            && let Err(error) = self.spend_rate(name, count, per_second, burst as u32).await
        {
            if key.daily_quota.is_some() {
                self.keep_for_later(name, count);
            }
            return Err(error);
        }
        Ok(())
    }

    async fn spend_quota(&self, name: &Arc<str>, count: u64, quota: u64) -> Result<(), ApiError> {
        let now_ms = self.clock.now_ms();
        let day = now_ms / DAY_MS;
        let exhausted = || quota_exhausted(quota, now_ms);
        if count > quota {
            return Err(exhausted());
        }
        let held = {
            let mut pools = self.pools.lock();
            let pool = pools.entry(Arc::clone(name)).or_default();
            if pool.quota.0 != day {
                pool.quota = (day, 0);
            }
            if pool.quota.1 >= count {
                pool.quota.1 -= count;
                return Ok(());
            }
            // What this node holds goes into this request; the store gives the rest.
            std::mem::take(&mut pool.quota.1)
        };
        let need = count - held;
        let slice = (quota / 100).clamp(1, 100_000).max(need);
        let tokens = self.backend.rate_tokens().expect("checked by SharedKeyLimits::new");
        let mut granted = None;
        for want in [slice, need] {
            match tokens.spend_quota(Arc::clone(name), day, want, quota).await {
                Ok(true) => {
                    granted = Some(want);
                    break;
                }
                Ok(false) if want > need => continue,
                Ok(false) => break,
                Err(error) => {
                    self.give_back_quota(name, day, held);
                    return self.unreachable(error);
                }
            }
        }
        match granted {
            Some(want) => {
                self.give_back_quota(name, day, want - need);
                Ok(())
            }
            None => {
                self.give_back_quota(name, day, held);
                Err(exhausted())
            }
        }
    }

    /// Puts `ids` of day `day`'s quota back into this node's pool.
    fn give_back_quota(&self, name: &Arc<str>, day: u64, ids: u64) {
        if ids == 0 {
            return;
        }
        let mut pools = self.pools.lock();
        let pool = pools.entry(Arc::clone(name)).or_default();
        if pool.quota.0 == day {
            pool.quota.1 += ids;
        }
    }

    /// After a refused rate: the quota this request spent stays with this node, for the key's
    /// next request today.
    fn keep_for_later(&self, name: &Arc<str>, count: u64) {
        let day = self.clock.now_ms() / DAY_MS;
        self.give_back_quota(name, day, count);
    }

    async fn spend_rate(
        &self,
        name: &Arc<str>,
        count: u64,
        per_second: u32,
        burst: u32,
    ) -> Result<(), ApiError> {
        let asked_at = Instant::now();
        let held = {
            let mut pools = self.pools.lock();
            let pool = pools.entry(Arc::clone(name)).or_default();
            if pool.tokens_expire.is_none_or(|expires| asked_at >= expires) {
                pool.tokens = 0;
            }
            if pool.tokens >= count {
                pool.tokens -= count;
                return Ok(());
            }
            std::mem::take(&mut pool.tokens)
        };
        let need = count - held;
        let want = need.max(u64::from(slice_size(per_second, burst))).min(u64::from(burst)) as u32;
        let tokens = self.backend.rate_tokens().expect("checked by SharedKeyLimits::new");
        let decision =
            tokens.take(RateBucket::Key(Arc::clone(name)), per_second, burst, want).await;
        let granted = match decision {
            Ok(RateDecision::Allowed { granted, .. }) => u64::from(granted),
            Ok(RateDecision::Limited { wait }) => {
                self.keep_tokens(name, held, asked_at);
                return Err(ApiError::rate_limited(wait, burst));
            }
            Err(error) => {
                self.keep_tokens(name, held, asked_at);
                return self.unreachable(error);
            }
        };
        if held + granted >= count {
            self.keep_tokens(name, held + granted - count, asked_at);
            return Ok(());
        }
        // Charged but too few for this batch: they serve the key's next requests (for a while).
        self.keep_tokens(name, held + granted, asked_at);
        let missing = count - held - granted;
        let wait = Duration::from_secs_f64(missing as f64 / f64::from(per_second.max(1)));
        Err(ApiError::rate_limited(wait, burst))
    }

    /// Keeps `tokens` granted at `asked_at` for this key's next requests, within the TTL.
    fn keep_tokens(&self, name: &Arc<str>, tokens: u64, asked_at: Instant) {
        if tokens == 0 {
            return;
        }
        let mut pools = self.pools.lock();
        let pool = pools.entry(Arc::clone(name)).or_default();
        let expires = asked_at + SLICE_TTL;
        if pool.tokens_expire.is_none_or(|old| old <= Instant::now()) {
            pool.tokens = 0;
        }
        pool.tokens += tokens;
        // Older tokens get the newer slice's deadline: at most one TTL more for them.
        pool.tokens_expire = Some(pool.tokens_expire.map_or(expires, |old| old.max(expires)));
    }

    /// The answer when the store cannot be asked: `IDGEN_RATE_LIMIT_FAIL` decides.
    fn unreachable(&self, error: BackendError) -> Result<(), ApiError> {
        tracing::debug!(error = %error, mode = ?self.fail, "per-key limit: the store could not be asked");
        match self.fail {
            RateLimitFail::Open => Ok(()),
            RateLimitFail::Closed => {
                Err(Refusal::RateLimiterUnreachable { store: self.backend.store_name() }.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::config::Config;
    use idgen_core::ManualClock;

    fn key(rate: Option<u32>, burst: Option<u32>, daily: Option<u64>) -> Key {
        Key::limited(rate, burst, daily, None)
    }

    /// Two nodes on one shared store (as two Redis-mode nodes on one Redis).
    fn two_nodes(clock: Arc<ManualClock>) -> [SharedKeyLimits; 2] {
        let store = MemoryBackend::new().sharing_rate_limits();
        let config = Config::default();
        let node = || {
            let backend: Arc<dyn Backend> = store.clone().open(&config).backend;
            SharedKeyLimits::new(backend, clock.clone(), RateLimitFail::Closed).unwrap()
        };
        [node(), node()]
    }

    #[actix_web::test]
    async fn a_quota_is_shared_and_never_exceeded() {
        let clock = Arc::new(ManualClock::new(5 * DAY_MS + 1000));
        let [a, b] = two_nodes(clock.clone());
        let key = key(None, None, Some(1000));
        // Slices of 10: a holds 9 after its first ID, b too; 1000 in all, never more.
        // (Near the end a node reserves exactly what a request needs.)
        let mut spent = 0;
        for round in 0..2000 {
            let node = if round % 3 == 0 { &a } else { &b };
            match node.spend(&key, 1).await {
                Ok(()) => spent += 1,
                Err(ApiError::QuotaExhausted { limit: 1000, .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        // Both nodes keep being asked, so what their pools hold is spent too: exactly the quota.
        assert_eq!(spent, 1000);
        // A batch larger than what is left is refused whole.
        assert!(matches!(a.spend(&key, 50).await, Err(ApiError::QuotaExhausted { .. })));
        // The next UTC day starts again.
        clock.set(6 * DAY_MS);
        a.spend(&key, 1000).await.unwrap();
    }

    #[actix_web::test]
    async fn a_rate_is_shared_counts_ids_and_refuses_a_batch_over_the_burst() {
        let [a, b] = two_nodes(Arc::new(ManualClock::new(DAY_MS)));
        let key = key(Some(1), Some(10), None);
        a.spend(&key, 6).await.unwrap();
        b.spend(&key, 4).await.unwrap();
        assert!(matches!(b.spend(&key, 1).await, Err(ApiError::RateLimited { limit: 10, .. })));
        assert!(matches!(a.spend(&key, 1).await, Err(ApiError::RateLimited { .. })));
        assert!(matches!(
            a.spend(&key, 11).await,
            Err(ApiError::Param(ParamError::Count { max: 10 }))
        ));
    }
}
