//! [`RedisStore`]: every Redis command and script of the back end, and the key layout (keys
//! under `IDGEN_REDIS_PREFIX`).
//!
//! Keys (prefix `idgen:`):
//! - `idgen:counter:{NAME}` — the last counter value handed out (`INCRBY`).
//! - `idgen:{worker-N}:lease` — owner token of worker id N, with a TTL (`SET NX PX`).
//! - `idgen:{worker-N}:mark` — Unix ms no snowflake of worker N was or will be issued above
//!   without raising it first. No TTL: it outlives the lease, so the next holder starts above it.
//! - `idgen:timestamp-mark` — the same for timestamp ids, shared by every node.
//! - `idgen:rate:{IP}` — the GCRA "theoretical arrival time" of a client, with a TTL.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use deadpool_redis::redis::{self, Script};
use idgen_core::counter::CounterName;

use super::connection::{Conn, Connections, RedisError, call_script};
use super::scripts::Scripts;
use crate::backend::RateDecision;
use crate::config::RedisUrl;

/// How long `WAIT` waits for replicas (below [`OP_TIMEOUT`]).
const WAIT_TIMEOUT_MS: u64 = 500;

/// Outcome of trying to lease a worker id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Leased; the worker's snowflake mark (0 if it never had one).
    Acquired { mark_ms: u64 },
    /// Another node holds it.
    Taken,
}

/// Whether a write must reach the replicas before its result is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Plain,
    Guarded,
}

/// The commands of the Redis back end over its [`Connections`].
pub struct RedisStore {
    connections: Connections,
    prefix: String,
    scripts: Scripts,
    /// `IDGEN_REDIS_WAIT_REPLICAS`: writes that guard uniqueness wait for this many replicas.
    wait_replicas: u32,
}

impl RedisStore {
    /// A store on `url` (with `cluster`, the URL lists cluster nodes). Connects lazily: call
    /// [`RedisStore::ping`] to check reachability.
    pub fn new(
        url: &RedisUrl,
        cluster: bool,
        prefix: &str,
        wait_replicas: u32,
    ) -> Result<Self, RedisError> {
        Ok(Self {
            connections: Connections::new(url, cluster)?,
            prefix: prefix.to_owned(),
            scripts: Scripts::new(),
            wait_replicas,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn counter_key(&self, name: &CounterName) -> String {
        format!("{}counter:{{{}}}", self.prefix, name.as_str())
    }

    fn lease_keys(&self, worker_id: u16) -> (String, String) {
        (
            format!("{}{{worker-{worker_id}}}:lease", self.prefix),
            format!("{}{{worker-{worker_id}}}:mark", self.prefix),
        )
    }

    fn timestamp_key(&self) -> String {
        format!("{}timestamp-mark", self.prefix)
    }

    fn rate_key(&self, client: IpAddr) -> String {
        format!("{}rate:{{{client}}}", self.prefix)
    }

    /// After a write that guards uniqueness: with `IDGEN_REDIS_WAIT_REPLICAS` = N > 0, `WAIT`
    /// on the same connection until N replicas have every write made on it so far. Fewer in
    /// time is an error: the caller drops what it got (a gap), so that nothing a failover
    /// could roll back is handed out.
    async fn replicated(&self, connection: &mut Conn) -> Result<(), RedisError> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let acked: i64 = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(WAIT_TIMEOUT_MS)
            .query_async(connection)
            .await?;
        if acked >= i64::from(self.wait_replicas) {
            Ok(())
        } else {
            Err(RedisError::NotReplicated { acked, wanted: self.wait_replicas })
        }
    }

    /// Runs a Lua script (EVALSHA, falling back to loading it on NOSCRIPT). `Write::Guarded`:
    /// the script's writes must reach the replicas (see [`RedisStore::replicated`]).
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, RedisError> {
        self.invoke_as(Write::Plain, script, keys, args).await
    }

    async fn invoke_as<T: redis::FromRedisValue>(
        &self,
        write: Write,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, RedisError> {
        self.connections
            .run(|mut connection| async move {
                let value = call_script(&mut connection, script, &keys, &args).await?;
                if write == Write::Guarded {
                    self.replicated(&mut connection).await?;
                }
                Ok(value)
            })
            .await
    }

    /// `PING`: is Redis reachable now?
    pub async fn ping(&self) -> Result<(), RedisError> {
        let reply: String = self
            .connections
            .run(|mut connection| async move {
                Ok(redis::cmd("PING").query_async(&mut connection).await?)
            })
            .await?;
        if reply == "PONG" { Ok(()) } else { Err(RedisError::Reply(reply)) }
    }

    /// `INCRBY count` on a counter: the `count` values now reserved for the caller.
    pub async fn incr_counter(
        &self,
        name: &CounterName,
        count: u64,
    ) -> Result<RangeInclusive<u64>, RedisError> {
        let key = &self.counter_key(name);
        let value: i64 = self
            .connections
            .run_hot(|mut connection| async move {
                let value: i64 =
                    redis::cmd("INCRBY").arg(key).arg(count).query_async(&mut connection).await?;
                self.replicated(&mut connection).await?;
                Ok(value)
            })
            .await?;
        // A key someone set below 0 would give values that are not ours to hand out.
        u64::try_from(value)
            .ok()
            .and_then(|last| Some(last.checked_sub(count)? + 1..=last))
            .ok_or_else(|| RedisError::Reply(format!("counter {name} is at {value}")))
    }

    /// Raises a counter to at least `value` (never lowers it); returns its value.
    pub async fn seed_counter(&self, name: &CounterName, value: u64) -> Result<u64, RedisError> {
        let key = self.counter_key(name);
        self.raise_key(key, value, value).await
    }

    async fn raise_key(&self, key: String, needed: u64, target: u64) -> Result<u64, RedisError> {
        let value: i64 = self
            .invoke_as(
                Write::Guarded,
                &self.scripts.raise_mark,
                vec![key],
                vec![needed.to_string(), target.to_string()],
            )
            .await?;
        u64::try_from(value).map_err(|_| RedisError::Reply(format!("mark {value}")))
    }

    /// Raises the shared timestamp mark; returns the durable value (>= `needed`).
    pub async fn raise_timestamp_mark(&self, needed: u64, target: u64) -> Result<u64, RedisError> {
        self.raise_key(self.timestamp_key(), needed, target.max(needed)).await
    }

    /// Reads the shared timestamp mark (0 if none).
    pub async fn load_timestamp_mark(&self) -> Result<u64, RedisError> {
        self.raise_key(self.timestamp_key(), 0, 0).await
    }

    /// Tries to lease `worker_id` for `ttl` under `token`.
    pub async fn acquire(
        &self,
        worker_id: u16,
        token: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, RedisError> {
        let (lease, mark) = self.lease_keys(worker_id);
        let ttl_ms = ttl.as_millis() as u64;
        let reply: i64 = self
            .invoke_as(
                Write::Guarded,
                &self.scripts.acquire,
                vec![lease, mark],
                vec![token.to_string(), ttl_ms.to_string()],
            )
            .await?;
        Ok(match u64::try_from(reply) {
            Ok(mark_ms) => LeaseOutcome::Acquired { mark_ms },
            Err(_) => LeaseOutcome::Taken,
        })
    }

    /// Extends our lease; `false` if it is no longer ours.
    pub async fn renew(
        &self,
        worker_id: u16,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let (lease, mark) = self.lease_keys(worker_id);
        let ttl_ms = ttl.as_millis() as u64;
        let reply: i64 = self
            .invoke(
                &self.scripts.renew,
                vec![lease, mark],
                vec![token.to_string(), ttl_ms.to_string()],
            )
            .await?;
        Ok(reply == 1)
    }

    /// Raises the snowflake mark of our worker id. `Ok(None)`: the lease is not ours.
    pub async fn raise_worker_mark(
        &self,
        worker_id: u16,
        token: &str,
        needed: u64,
        target: u64,
    ) -> Result<Option<u64>, RedisError> {
        let (lease, mark) = self.lease_keys(worker_id);
        let target = target.max(needed);
        let reply: i64 = self
            .invoke_as(
                Write::Guarded,
                &self.scripts.raise_worker_mark,
                vec![lease, mark],
                vec![token.to_string(), needed.to_string(), target.to_string()],
            )
            .await?;
        Ok(u64::try_from(reply).ok())
    }

    /// Sets our worker's mark to `high_water_ms` and deletes the lease (if still ours).
    pub async fn release(
        &self,
        worker_id: u16,
        token: &str,
        high_water_ms: u64,
    ) -> Result<bool, RedisError> {
        let (lease, mark) = self.lease_keys(worker_id);
        let reply: i64 = self
            .invoke_as(
                Write::Guarded,
                &self.scripts.release,
                vec![lease, mark],
                vec![token.to_string(), high_water_ms.to_string()],
            )
            .await?;
        Ok(reply == 1)
    }

    /// Up to `want` tokens for `client` from a GCRA bucket of `burst` refilling `per_second`:
    /// as many as fit (at least 1), or `Limited` with the wait until one fits.
    pub async fn rate_check(
        &self,
        client: IpAddr,
        per_second: u32,
        burst: u32,
        want: u32,
    ) -> Result<RateDecision, RedisError> {
        let key = &self.rate_key(client);
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
            (1, granted, _) => {
                let granted = u32::try_from(granted)
                    .ok()
                    .filter(|granted| (1..=want.max(1)).contains(granted))
                    .ok_or_else(|| {
                        RedisError::Reply(format!("the rate limit granted {granted} of {want}"))
                    })?;
                RateDecision::Allowed { granted }
            }
            (_, _, wait_us) => {
                RateDecision::Limited { wait: Duration::from_micros(wait_us.max(0) as u64) }
            }
        })
    }
}
