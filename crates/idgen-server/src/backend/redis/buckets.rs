//! The rate-limit buckets (per client address and per API key) and the per-key daily quotas
//! the Redis back end keeps for every node: their keys and the scripts' calls.

use std::time::Duration;

use super::connection::{RedisError, call_script};
use super::store::RedisStore;
use crate::backend::{RateBucket, RateDecision};

impl RedisStore {
    fn rate_key(&self, bucket: &RateBucket) -> String {
        // Key names are [A-Za-z0-9_.-], so `key:NAME` cannot collide with an address.
        match bucket {
            RateBucket::Client(client) => format!("{}rate:{{{client}}}", self.prefix),
            RateBucket::Key(name) => format!("{}rate:{{key:{name}}}", self.prefix),
        }
    }

    fn quota_key(&self, name: &str, day: u64) -> String {
        format!("{}quota:{{key:{name}}}:{day}", self.prefix)
    }

    /// Up to `want` tokens of `bucket`, a GCRA bucket of `burst` refilling `per_second`:
    /// as many as fit (at least 1), or `Limited` with the wait until one fits.
    pub async fn rate_check(
        &self,
        bucket: &RateBucket,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> Result<RateDecision, RedisError> {
        let key = &self.rate_key(bucket);
        let interval_us = 1_000_000 / u64::from(per_second.max(1));
        let args = &[interval_us.to_string(), burst.to_string(), want.max(1).to_string()];
        let script = &self.scripts.gcra;
        let reply: (i64, i64, i64) = self
            .connections
            .run_hot(|mut connection| async move {
                call_script(&mut connection, script, std::slice::from_ref(key), args).await
            })
            .await?;
        Ok(match reply {
            (1, granted, remaining) => {
                let granted = u32::try_from(granted)
                    .ok()
                    .filter(|granted| (1..=want.max(1)).contains(granted))
                    .ok_or_else(|| {
                        RedisError::Reply(format!("the rate limit granted {granted} of {want}"))
                    })?;
                RateDecision::Allowed {
                    granted,
                    remaining: remaining.clamp(0, i64::from(burst)) as u32,
                }
            }
            (_, _, wait_us) => {
                RateDecision::Limited { wait: Duration::from_micros(wait_us.max(0) as u64) }
            }
        })
    }

    /// Spends `want` of key `name`'s `quota` for `day`, all or nothing.
    pub async fn spend_quota(
        &self,
        name: &str,
        day: u64,
        want: u64,
        quota: u64,
    ) -> Result<bool, RedisError> {
        let key = &self.quota_key(name, day);
        let args = &[want.to_string(), quota.to_string()];
        let script = &self.scripts.quota;
        let spent: i64 = self
            .connections
            .run_hot(|mut connection| async move {
                call_script(&mut connection, script, std::slice::from_ref(key), args).await
            })
            .await?;
        Ok(spent == 1)
    }
}
