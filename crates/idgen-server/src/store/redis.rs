//! The Redis back end: counters, snowflake worker-id leases with their high-water marks, the
//! timestamp mark and the shared rate limit, all in one Redis (keys under `IDGEN_REDIS_PREFIX`).
//!
//! Keys (prefix `idgen:`):
//! - `idgen:counter:{NAME}` — the last counter value handed out (`INCRBY`).
//! - `idgen:{worker-N}:lease` — owner token of worker id N, with a TTL (`SET NX PX`).
//! - `idgen:{worker-N}:mark` — Unix ms no snowflake of worker N was or will be issued above
//!   without raising it first. No TTL: it outlives the lease, so the next holder starts above it.
//! - `idgen:timestamp-mark` — the same for timestamp ids, shared by every node.
//! - `idgen:rate:{IP}` — the GCRA "theoretical arrival time" of a client, with a TTL.
//!
//! Every script that touches two keys touches keys with the same `{hash tag}`, so the scripts
//! also run on Redis Cluster. Every check-and-set is one Lua script (atomic on the server).
//!
//! Connections: deadpool-redis hands out multiplexed connections, but every `pool.get()` costs a
//! PING. The store keeps one checked-out multiplexed connection and clones it (clones share one
//! socket and pipeline concurrent commands); on an error it drops it and takes a fresh one from
//! the pool next time. Every call is bounded by [`OP_TIMEOUT`]; a multiplexed connection is safe
//! to abandon mid-command (replies are matched to requests inside the driver).
//!
//! A multiplexed connection's driver is a task on the runtime that opened it. actix runs each
//! HTTP worker on a runtime of its own, and those stop before the final shutdown writes (lease
//! release), so connections are opened on a small runtime owned by the store: the driver then
//! lives as long as the store, whichever worker asks.
//!
//! The per-request commands (strict-mode `INCRBY`, the rate-limit script) are the exception:
//! through the store's runtime each costs two wake-ups across threads, which cost the server
//! more CPU than the rest of the request. They go through [`RedisStore::run_hot`] instead: one
//! connection per thread (per actix worker), opened on that thread's runtime, so the command,
//! the driver and the reply stay on one thread. A worker's runtime and its thread end together,
//! so no thread keeps a connection whose driver is gone; should one fail anyway, the error drops
//! it and the next call opens a fresh one.

use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{self, Cmd, Pipeline, RedisFuture, Script, Value};
use deadpool_redis::{Connection, Pool, PoolConfig, Runtime, Timeouts};
use idgen_core::counter::CounterName;
use parking_lot::Mutex;

use crate::config::RedisUrl;

/// Longest one Redis call may take before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Connections in the pool (only used to replace a broken shared connection, and at start-up).
const POOL_SIZE: usize = 4;

/// Why Redis could not do what was asked. Messages never contain the URL or its password.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis did not answer within {} ms", OP_TIMEOUT.as_millis())]
    Timeout,
    #[error("Redis failed: {0}")]
    Redis(String),
    #[error("Redis returned an unexpected reply: {0}")]
    Reply(String),
    #[error("Redis failed a moment ago; not asked again yet")]
    Backoff,
    #[error(
        "the write reached {acked} of the {wanted} replicas IDGEN_REDIS_WAIT_REPLICAS asks for"
    )]
    NotReplicated { acked: i64, wanted: u32 },
}

impl From<redis::RedisError> for RedisError {
    fn from(error: redis::RedisError) -> Self {
        RedisError::Redis(error.to_string())
    }
}

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

/// Lease a worker id: `SET NX PX` (or refresh if we already hold it) and read its mark.
const ACQUIRE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return tonumber(redis.call('GET', KEYS[2]) or '0')
";

/// Renew a lease we hold; 1 renewed, 0 lost (expired or someone else's).
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Raise a worker's mark while holding its lease: -1 if the lease is not ours; otherwise the
/// mark, raised to `target` unless it is already at `needed` or above.
const RAISE_WORKER_MARK: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current >= tonumber(ARGV[2]) then return current end
redis.call('SET', KEYS[2], ARGV[3])
return tonumber(ARGV[3])
";

/// At a clean shutdown: set the mark to what was really issued and release the lease.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
";

/// A one-key high-water mark: the value, raised to `target` unless already at `needed`.
/// Used for the timestamp mark and to seed counters (INCR then continues above it).
const RAISE_MARK: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return current end
redis.call('SET', KEYS[1], ARGV[2])
return tonumber(ARGV[2])
";

/// GCRA on the Redis server's clock (so nodes with skewed clocks share one bucket), taking up
/// to `want` tokens at once: a node asks for a slice and serves it locally (see
/// `rate_limit.rs`). Tokens are charged when granted, so a slice counts against the bucket
/// at once, used or not. With `want` = 1 this is the classic one-request GCRA.
/// ARGV: emission interval (µs), burst, want (>= 1). Returns {allowed, granted, wait µs};
/// when not even one token fits, the wait is until one does.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local grant = math.min(want, math.floor((tolerance - (tat - now)) / interval))
if grant < 1 then
  return {0, 0, tat + interval - tolerance - now}
end
local new_tat = tat + grant * interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, grant, 0}
";

/// Whether a write must reach the replicas before its result is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Plain,
    Guarded,
}

/// Answer of the shared rate limiter: `granted` tokens (at least 1, at most the `want` asked
/// for) were charged to the bucket, or not even one fits for `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed { granted: u32 },
    Limited { wait: Duration },
}

struct Scripts {
    acquire: Script,
    renew: Script,
    raise_worker_mark: Script,
    release: Script,
    raise_mark: Script,
    gcra: Script,
}

/// The pool: one Redis endpoint, or Redis Cluster (`IDGEN_REDIS_CLUSTER`).
#[derive(Clone)]
enum Pools {
    Single(Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

/// A connection taken out of [`Pools`]; cheap to clone (both kinds multiplex).
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(connection) => connection.req_packed_command(cmd),
            Conn::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(connection) => connection.get_db(),
            Conn::Cluster(connection) => connection.get_db(),
        }
    }
}

impl Pools {
    async fn connect(&self) -> Result<Conn, RedisError> {
        let failed = |error: deadpool_redis::PoolError| RedisError::Redis(error.to_string());
        Ok(match self {
            Pools::Single(pool) => {
                Conn::Single(Connection::take(pool.get().await.map_err(failed)?))
            }
            Pools::Cluster(pool) => Conn::Cluster(deadpool_redis::cluster::Connection::take(
                pool.get().await.map_err(failed)?,
            )),
        })
    }
}

/// `attempt` bounded by [`OP_TIMEOUT`]. A timeout or a connection-level error calls `forget`,
/// which drops the connection used, so that the next call opens a fresh one.
async fn bounded<T>(
    attempt: impl Future<Output = Result<T, RedisError>>,
    forget: impl FnOnce(),
) -> Result<T, RedisError> {
    let result =
        tokio::time::timeout(OP_TIMEOUT, attempt).await.unwrap_or(Err(RedisError::Timeout));
    if let Err(RedisError::Redis(_) | RedisError::Timeout) = &result {
        forget();
    }
    result
}

/// Runs a Lua script on `connection` (EVALSHA, falling back to loading it on NOSCRIPT).
async fn call_script<T: redis::FromRedisValue>(
    connection: &mut Conn,
    script: &Script,
    keys: &[String],
    args: &[String],
) -> Result<T, RedisError> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg);
    }
    Ok(invocation.invoke_async(connection).await?)
}

/// Gives every store a process-unique id, the key of its per-thread connections.
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's hot-path connections, by store id (see [`RedisStore::run_hot`]). A `Vec`:
    /// a thread serves one store, bar tests.
    static HOT: RefCell<Vec<(u64, Conn)>> = const { RefCell::new(Vec::new()) };
}

/// A connection pool to one Redis (or one Redis Cluster) and the key layout.
pub struct RedisStore {
    /// From [`NEXT_STORE_ID`].
    id: u64,
    pool: Pools,
    /// Runs the connection drivers (see the module doc); shut down when the store drops.
    runtime: Option<tokio::runtime::Runtime>,
    shared: Mutex<Option<Conn>>,
    prefix: String,
    scripts: Scripts,
    /// The last durable snowflake mark of the held worker id (cache of `{worker-N}:mark`).
    snowflake_mark: AtomicU64,
    /// The last durable timestamp mark (cache of `timestamp-mark`).
    timestamp_mark: AtomicU64,
    /// `IDGEN_REDIS_WAIT_REPLICAS`: writes that guard uniqueness wait for this many replicas.
    wait_replicas: u32,
}

impl RedisStore {
    /// A pool for `url` (with `cluster`, the URL lists cluster nodes). Connects lazily: call
    /// [`RedisStore::ping`] to check reachability.
    pub fn new(
        url: &RedisUrl,
        cluster: bool,
        prefix: &str,
        wait_replicas: u32,
    ) -> Result<Self, RedisError> {
        let pool_config = PoolConfig {
            timeouts: Timeouts {
                wait: Some(OP_TIMEOUT),
                create: Some(OP_TIMEOUT),
                recycle: Some(OP_TIMEOUT),
            },
            ..PoolConfig::new(POOL_SIZE)
        };
        let failed = |error: deadpool_redis::CreatePoolError| {
            RedisError::Redis(url.redact(&error.to_string()))
        };
        let pool = if cluster {
            let mut config = deadpool_redis::cluster::Config::from_urls(url.urls());
            config.pool = Some(pool_config);
            Pools::Cluster(config.create_pool(Some(Runtime::Tokio1)).map_err(failed)?)
        } else {
            let mut config = deadpool_redis::Config::from_url(url.expose());
            config.pool = Some(pool_config);
            Pools::Single(config.create_pool(Some(Runtime::Tokio1)).map_err(failed)?)
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("idgen-redis")
            .enable_all()
            .build()
            .map_err(|error| {
                RedisError::Redis(format!("cannot start the Redis runtime: {error}"))
            })?;
        Ok(Self {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            pool,
            runtime: Some(runtime),
            shared: Mutex::new(None),
            prefix: prefix.to_owned(),
            scripts: Scripts {
                acquire: Script::new(ACQUIRE),
                renew: Script::new(RENEW),
                raise_worker_mark: Script::new(RAISE_WORKER_MARK),
                release: Script::new(RELEASE),
                raise_mark: Script::new(RAISE_MARK),
                gcra: Script::new(GCRA),
            },
            snowflake_mark: AtomicU64::new(0),
            timestamp_mark: AtomicU64::new(0),
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

    /// Runs `op` on the shared connection, bounded by [`OP_TIMEOUT`]. On failure the shared
    /// connection is dropped so that the next call takes a fresh one.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempt = async {
            let cached = self.shared.lock().clone();
            let connection = match cached {
                Some(connection) => connection,
                None => {
                    let pool = self.pool.clone();
                    let runtime =
                        self.runtime.as_ref().expect("the runtime lives as long as the store");
                    let connection = runtime
                        .spawn(async move { pool.connect().await })
                        .await
                        .map_err(|error| RedisError::Redis(error.to_string()))??;
                    *self.shared.lock() = Some(connection.clone());
                    connection
                }
            };
            op(connection).await
        };
        bounded(attempt, || *self.shared.lock() = None).await
    }

    /// [`RedisStore::run`] for the per-request commands, on this thread's own connection
    /// (see the module doc), opened on the caller's runtime when the thread has none.
    ///
    /// Nothing else uses a thread's connection, so one broken while idle (Redis restarted)
    /// is only found by the next command, which fails at once: then `op` runs once more on a
    /// fresh connection. Both callers are safe to repeat: a repeated `INCRBY` leaves a gap,
    /// a repeated rate-limit script charges a token twice; neither can issue an ID twice.
    async fn run_hot<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let id = self.id;
        let forget = || HOT.with_borrow_mut(|hot| hot.retain(|(store, _)| *store != id));
        let attempt = async {
            let cached = HOT.with_borrow(|hot| {
                hot.iter().find(|(store, _)| *store == id).map(|(_, connection)| connection.clone())
            });
            if let Some(connection) = cached {
                match op(connection).await {
                    Err(RedisError::Redis(error)) => {
                        tracing::debug!(%error, "a worker's Redis connection failed; reconnecting");
                        forget();
                    }
                    other => return other,
                }
            }
            let connection = Box::pin(self.pool.connect()).await?;
            HOT.with_borrow_mut(|hot| hot.push((id, connection.clone())));
            op(connection).await
        };
        bounded(attempt, forget).await
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
        self.run(|mut connection| async move {
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
        let value = self.raise_key(self.timestamp_key(), needed, target.max(needed)).await?;
        self.timestamp_mark.fetch_max(value, Ordering::Relaxed);
        Ok(value)
    }

    /// Reads the shared timestamp mark (0 if none).
    pub async fn load_timestamp_mark(&self) -> Result<u64, RedisError> {
        let value = self.raise_key(self.timestamp_key(), 0, 0).await?;
        self.timestamp_mark.fetch_max(value, Ordering::Relaxed);
        Ok(value)
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
            Ok(mark_ms) => {
                self.snowflake_mark.store(mark_ms, Ordering::Relaxed);
                LeaseOutcome::Acquired { mark_ms }
            }
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
        Ok(u64::try_from(reply).ok().inspect(|value| {
            self.snowflake_mark.fetch_max(*value, Ordering::Relaxed);
        }))
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

    /// The cached durable snowflake mark of the held worker id.
    pub fn snowflake_mark(&self) -> u64 {
        self.snowflake_mark.load(Ordering::Relaxed)
    }

    /// Forgets the cached snowflake mark (a new worker id was leased).
    pub fn set_snowflake_mark(&self, value: u64) {
        self.snowflake_mark.store(value, Ordering::Relaxed);
    }

    /// Records a timestamp mark read elsewhere (at start-up).
    pub fn set_timestamp_mark(&self, value: u64) {
        self.timestamp_mark.fetch_max(value, Ordering::Relaxed);
    }

    /// The cached durable timestamp mark.
    pub fn timestamp_mark(&self) -> u64 {
        self.timestamp_mark.load(Ordering::Relaxed)
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

impl Drop for RedisStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside async code (where the store
        // may be dropped); shutting it down in the background is.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
