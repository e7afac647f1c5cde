//! Per-key limits, counted in IDs (a batch of 500 spends 500): a rate (GCRA, through
//! actix-governor's `governor`) and a daily quota per UTC day, on the server's clock (so tests
//! can move it across midnight). One state per key name, kept across a reload of the keys file
//! when the key's limits did not change, so a reload does not hand out a fresh quota.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_governor::governor::clock::{Clock as _, DefaultClock};
use actix_governor::governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use idgen_core::{Clock, ParamError};
use parking_lot::{Mutex, RwLock};

use super::keys::Key;
use crate::error::ApiError;
use crate::issue::SharedClock;

pub(super) const DAY_MS: u64 = 86_400_000;

/// A spent daily quota of `limit` IDs at `now_ms`: 429 until the next 00:00 UTC.
pub(super) fn quota_exhausted(limit: u64, now_ms: u64) -> ApiError {
    let next_day_ms = (now_ms / DAY_MS + 1) * DAY_MS;
    ApiError::QuotaExhausted { limit, reset_secs: (next_day_ms - now_ms).div_ceil(1000).max(1) }
}

/// One key's counters.
struct KeyState {
    /// The limits this state was built for (a reload with other limits starts afresh).
    limits: (Option<u32>, Option<u32>, Option<u64>),
    rate: Option<DefaultDirectRateLimiter>,
    burst: u32,
    /// (UTC day number, IDs spent that day).
    quota: Mutex<(u64, u64)>,
    new_counters: AtomicU32,
}

/// The state of every key seen so far.
pub struct KeyLimits {
    clock: SharedClock,
    states: RwLock<HashMap<Arc<str>, Arc<KeyState>>>,
}

impl KeyLimits {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, states: RwLock::new(HashMap::new()) }
    }

    fn state(&self, key: &Key) -> Arc<KeyState> {
        let limits = (key.rate_per_second, key.burst, key.daily_quota);
        if let Some(state) = self.states.read().get(&key.name)
            && state.limits == limits
        {
            return Arc::clone(state);
        }
        let mut states = self.states.write();
        if let Some(state) = states.get(&key.name)
            && state.limits == limits
        {
            return Arc::clone(state);
        }
        let burst = key.burst().unwrap_or(0);
        let rate = key.rate_per_second.and_then(|per_second| {
            let quota = Quota::per_second(NonZeroU32::new(per_second)?)
                .allow_burst(NonZeroU32::new(burst.max(1))?);
            Some(RateLimiter::direct(quota))
        });
        let day = self.clock.now_ms() / DAY_MS;
        let state = Arc::new(KeyState {
            limits,
            rate,
            burst,
            quota: Mutex::new((day, 0)),
            new_counters: AtomicU32::new(0),
        });
        states.insert(key.name.clone(), Arc::clone(&state));
        state
    }

    /// Spends `count` IDs of `key`'s rate and daily quota, or says when to come back.
    pub fn spend(&self, key: &Key, count: u64) -> Result<(), ApiError> {
        if key.rate_per_second.is_none() && key.daily_quota.is_none() {
            return Ok(());
        }
        let state = self.state(key);
        let now_ms = self.clock.now_ms();
        if let Some(quota) = key.daily_quota {
            let mut spent = state.quota.lock();
            let day = now_ms / DAY_MS;
            if spent.0 != day {
                *spent = (day, 0);
            }
            if spent.1.saturating_add(count) > quota {
                return Err(quota_exhausted(quota, now_ms));
            }
            spent.1 += count;
        }
        if let Some(rate) = &state.rate {
            let refund = |state: &KeyState| {
                let mut spent = state.quota.lock();
                spent.1 = spent.1.saturating_sub(count);
            };
            let n = NonZeroU32::new(u32::try_from(count).unwrap_or(u32::MAX))
                .unwrap_or(NonZeroU32::MIN);
            match rate.check_n(n) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    refund(&state);
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return Err(ApiError::rate_limited(wait, state.burst));
                }
                Err(_) => {
                    // More than the key's burst at once: never allowed, whatever the wait.
                    refund(&state);
                    return Err(ParamError::Count { max: state.burst }.into());
                }
            }
        }
        Ok(())
    }

    /// Takes one of `key`'s new counter names (`max_new_counters`), or refuses.
    pub fn new_counter(&self, key: &Key) -> Result<(), ApiError> {
        let Some(max) = key.max_new_counters else { return Ok(()) };
        let state = self.state(key);
        let taken = state
            .new_counters
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        taken.map(|_| ()).map_err(|_| ApiError::Forbidden {
            what: format!("create more counter names (key {} may create {max})", key.name),
        })
    }

    /// Gives back a counter name whose creation failed.
    pub fn counter_not_created(&self, key: &Key) {
        if key.max_new_counters.is_some() {
            let state = self.state(key);
            let _ = state
                .new_counters
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idgen_core::ManualClock;

    fn key(rate: Option<u32>, burst: Option<u32>, daily: Option<u64>) -> Key {
        Key::limited(rate, burst, daily, Some(2))
    }

    #[test]
    fn a_daily_quota_counts_ids_and_resets_at_utc_midnight() {
        let clock = Arc::new(ManualClock::new(3 * DAY_MS - 5_000));
        let limits = KeyLimits::new(clock.clone());
        let key = key(None, None, Some(1000));
        limits.spend(&key, 600).unwrap();
        limits.spend(&key, 400).unwrap();
        let Err(ApiError::QuotaExhausted { limit, reset_secs }) = limits.spend(&key, 1) else {
            panic!("the quota is spent")
        };
        assert_eq!((limit, reset_secs), (1000, 5));
        clock.set(3 * DAY_MS);
        limits.spend(&key, 1000).unwrap();
    }

    #[test]
    fn a_rate_counts_ids_and_refuses_a_batch_over_the_burst() {
        let limits = KeyLimits::new(Arc::new(ManualClock::new(DAY_MS)));
        let key = key(Some(1), Some(10), Some(100));
        limits.spend(&key, 10).unwrap();
        assert!(matches!(limits.spend(&key, 1), Err(ApiError::RateLimited { limit: 10, .. })));
        assert!(matches!(
            limits.spend(&key, 11),
            Err(ApiError::Param(ParamError::Count { max: 10 }))
        ));
        // Refused IDs were not counted against the quota: 10 spent of 100.
        assert_eq!(limits.state(&key).quota.lock().1, 10);
        limits.new_counter(&key).unwrap();
        limits.new_counter(&key).unwrap();
        assert!(matches!(limits.new_counter(&key), Err(ApiError::Forbidden { .. })));
        limits.counter_not_created(&key);
        limits.new_counter(&key).unwrap();
    }
}
