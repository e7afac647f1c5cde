//! Connections of the Redis back end: a deadpool pool (one Redis or a Redis Cluster), a
//! shared multiplexed connection for most calls, and one connection per thread for the
//! per-request commands. Every call is bounded by [`OP_TIMEOUT`].
//!
//! deadpool-redis hands out multiplexed connections, but every `pool.get()` costs a PING. So
//! one checked-out multiplexed connection is kept and cloned (clones share one socket and
//! pipeline concurrent commands); on an error it is dropped and a fresh one taken from the pool
//! next time. A multiplexed connection is safe to abandon mid-command (replies are matched to
//! requests inside the driver).
//!
//! A multiplexed connection's driver is a task on the runtime that opened it. actix runs each
//! HTTP worker on a runtime of its own, and those stop before the final shutdown writes (lease
//! release), so the shared connection is opened on a small runtime owned by [`Connections`]:
//! the driver then lives as long as the connections, whichever worker asks.
//!
//! The per-request commands (strict-mode `INCRBY`, the rate-limit script) are the exception:
//! through that runtime each costs two wake-ups across threads, which cost the server more CPU
//! than the rest of the request. They go through [`Connections::run_hot`] instead: one
//! connection per thread (per actix worker), opened on that thread's runtime, so the command,
//! the driver and the reply stay on one thread. A worker's runtime and its thread end together,
//! so no thread keeps a connection whose driver is gone; should one fail anyway, the error drops
//! it and the next call opens a fresh one.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{self, Cmd, Pipeline, RedisFuture, Script, Value};
use deadpool_redis::{Connection, Pool, PoolConfig, Runtime, Timeouts};
use parking_lot::Mutex;

use crate::config::RedisUrl;

/// Longest one Redis call may take before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Connections in the pool (only used to replace a broken shared connection, and at start-up).
const POOL_SIZE: usize = 4;

/// Why Redis could not do what was asked. Messages never contain the URL or its password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    #[error("Redis did not answer within {} ms", OP_TIMEOUT.as_millis())]
    Timeout,
    #[error("Redis failed: {0}")]
    Redis(String),
    #[error("Redis returned an unexpected reply: {0}")]
    Reply(String),
    #[error("Redis failed a moment ago; not asked again yet")]
    Backoff,
    /// The task sending a grouped round trip stopped before Redis answered (the node is
    /// shutting down).
    #[error("the node stopped before Redis answered")]
    Abandoned,
    #[error(
        "the write reached {acked} of the {wanted} replicas IDGEN_REDIS_WAIT_REPLICAS asks for"
    )]
    NotReplicated { acked: i64, wanted: u32 },
    /// The store went back in time: its identity is missing or changed, or it answered a
    /// value at or below one this node already handed out.
    #[error("{0}")]
    Regressed(String),
}

impl From<redis::RedisError> for RedisError {
    fn from(error: redis::RedisError) -> Self {
        RedisError::Redis(error.to_string())
    }
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
pub async fn bounded<T>(
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
pub async fn call_script<T: redis::FromRedisValue>(
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
    /// This thread's hot-path connections, by [`Connections`] id (see [`Connections::run_hot`]).
    /// A `Vec`: a thread serves one store, bar tests.
    static HOT: RefCell<Vec<(u64, Conn)>> = const { RefCell::new(Vec::new()) };
}

/// The connections to one Redis (or one Redis Cluster).
pub struct Connections {
    /// From [`NEXT_STORE_ID`].
    id: u64,
    pool: Pools,
    /// Runs the shared connection's driver (see the module doc); shut down on drop.
    runtime: Option<tokio::runtime::Runtime>,
    shared: Mutex<Option<Conn>>,
}

impl Connections {
    /// A pool for `url` (with `cluster`, the URL lists cluster nodes). Connects lazily.
    pub fn new(url: &RedisUrl, cluster: bool) -> Result<Self, RedisError> {
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
        })
    }

    /// Runs `op` on the shared connection, bounded by [`OP_TIMEOUT`]. On failure the shared
    /// connection is dropped so that the next call takes a fresh one.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
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
                    let runtime = self
                        .runtime
                        .as_ref()
                        .expect("the runtime lives as long as the connections");
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

    /// [`Connections::run`] for the per-request commands, on this thread's own connection
    /// (see the module doc), opened on the caller's runtime when the thread has none.
    ///
    /// Nothing else uses a thread's connection, so one broken while idle (Redis restarted)
    /// is only found by the next command, which fails at once: then `op` runs once more on a
    /// fresh connection. Both callers are safe to repeat: a repeated `INCRBY` leaves a gap,
    /// a repeated rate-limit script charges a token twice; neither can issue an ID twice.
    pub async fn run_hot<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
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
}

impl Drop for Connections {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside async code (where the store
        // may be dropped); shutting it down in the background is.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
