//! [`RedisStore`]: every Redis command and script of the back end, and the key layout (keys
//! under `IDGEN_REDIS_PREFIX`).
//!
//! Keys (prefix `idgen:`):
//! - `idgen:counter:{NAME}` — the last counter value handed out (`INCRBY`).
//! - `idgen:{worker-N}:lease` — owner token of worker id N, with a TTL (`SET NX PX`).
//! - `idgen:{worker-N}:mark` — Unix ms no snowflake of worker N was or will be issued above
//!   without raising it first. No TTL: it outlives the lease, so the next holder starts above it.
//! - `idgen:timestamp-mark`, `idgen:uuid7-mark`, `idgen:ulid-mark`, `idgen:ksuid-mark` — the same for timestamp
//!   ids, uuid7s and ULIDs, shared by every node (each node resumes above them after a restart).
//! - `idgen:rate:{IP}` — the GCRA "theoretical arrival time" of a client, with a TTL.
//! - `idgen:{store}:id` — the store identity: a random token set once (`SET NX`) by the first
//!   node; every node remembers the one it works under. Missing or changed means the store
//!   lost data (restarted empty, flushed, failed over to a lagging replica).
//! - `idgen:{store}:recovered` — set by `idgen-server recover` to the identity it created, so
//!   that nodes which refused after a loss adopt it.
//! - `idgen:{store}:snowflake-layout` — the snowflake layout's fingerprint, set once (`SET NX`):
//!   a node of another layout refuses to start.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::{self, Script};
use idgen_core::counter::CounterName;
use parking_lot::RwLock;

use super::connection::{Conn, Connections, RedisError, call_script};
use super::scripts::{REGRESSED, Scripts};
use crate::config::RedisUrl;

/// The largest mark kept in Redis: Lua numbers are doubles, exact up to 2^53.
pub const MAX_MARK: u64 = (1 << 53) - 1;

/// How long `WAIT` waits for replicas: below [`OP_TIMEOUT`] and below redis-rs's own 500 ms
/// response timeout, or a missing replica reads as "timed out" instead of "not enough
/// replicas". A replica on the same network acknowledges in well under a millisecond.
const WAIT_TIMEOUT_MS: u64 = 300;

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

/// The time marks shared by every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMark {
    Timestamp,
    Uuid7,
    Ulid,
    Ksuid,
}

/// The commands of the Redis back end over its [`Connections`].
pub struct RedisStore {
    pub(super) connections: Connections,
    pub(super) prefix: String,
    pub(super) scripts: Scripts,
    /// `IDGEN_REDIS_WAIT_REPLICAS`: writes that guard uniqueness wait for this many replicas.
    wait_replicas: u32,
    /// Redis Cluster: scripts cannot reach the identity key (another slot), so they are not
    /// given it; the node checks it on its own.
    cluster: bool,
    /// The store identity this node works under, once known.
    identity: RwLock<Option<String>>,
    /// The last value handed to this node, per counter: a later answer at or below it means
    /// the store went back.
    counters_seen: RwLock<HashMap<CounterName, AtomicU64>>,
}

/// What the identity keys hold: the identity in force, and the one `recover` created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub current: Option<String>,
    pub recovered: Option<String>,
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
            cluster,
            identity: RwLock::new(None),
            counters_seen: RwLock::new(HashMap::new()),
        })
    }

    /// Works under `identity` from now on (and forgets what the old one handed out).
    pub fn adopt_identity(&self, identity: String) {
        *self.identity.write() = Some(identity);
    }

    /// The identity this node works under.
    pub fn identity(&self) -> Option<String> {
        self.identity.read().clone()
    }

    /// The last value of each counter handed to this node.
    pub fn counters_seen(&self) -> Vec<(CounterName, u64)> {
        let seen = self.counters_seen.read();
        seen.iter().map(|(name, last)| (name.clone(), last.load(Ordering::Relaxed))).collect()
    }

    /// On standalone Redis, the identity key and token a fencing script checks atomically.
    fn guard(&self, keys: &mut Vec<String>, args: &mut Vec<String>) {
        if self.cluster {
            return;
        }
        if let Some(identity) = self.identity.read().as_ref() {
            keys.push(self.identity_keys().0);
            args.push(identity.clone());
        }
    }

    fn identity_keys(&self) -> (String, String) {
        (format!("{}{{store}}:id", self.prefix), format!("{}{{store}}:recovered", self.prefix))
    }

    /// Creates the identity with `token` unless one exists; returns both identity keys.
    pub async fn ensure_identity(&self, token: &str) -> Result<Identity, RedisError> {
        let (id, recovered) = self.identity_keys();
        let reply: (Option<String>, Option<String>) = self
            .invoke_as(
                Write::Guarded,
                &self.scripts.identity,
                vec![id, recovered],
                vec![token.to_owned()],
            )
            .await?;
        Ok(Identity { current: reply.0, recovered: reply.1 })
    }

    /// The snowflake layout the store's snowflakes are issued with: `fingerprint` if none is
    /// recorded yet (then recorded), else the recorded one.
    pub async fn claim_layout(&self, fingerprint: &str) -> Result<String, RedisError> {
        let key = format!("{}{{store}}:snowflake-layout", self.prefix);
        self.connections
            .run(|mut connection| async move {
                let (recorded,): (String,) = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(fingerprint)
                    .arg("NX")
                    .ignore()
                    .get(&key)
                    .query_async(&mut connection)
                    .await?;
                self.replicated(&mut connection).await?;
                Ok(recorded)
            })
            .await
    }

    /// The identity keys as they are now.
    pub async fn read_identity(&self) -> Result<Identity, RedisError> {
        let (id, recovered) = self.identity_keys();
        let reply: (Option<String>, Option<String>) = self
            .connections
            .run(|mut connection| async move {
                Ok(redis::cmd("MGET").arg(&id).arg(&recovered).query_async(&mut connection).await?)
            })
            .await?;
        Ok(Identity { current: reply.0, recovered: reply.1 })
    }

    /// `recover`: a new identity that nodes which refused after a loss adopt.
    pub async fn set_recovered_identity(&self, token: &str) -> Result<(), RedisError> {
        let (id, recovered) = self.identity_keys();
        self.connections
            .run(|mut connection| async move {
                let (): () = redis::pipe()
                    .atomic()
                    .set(&id, token)
                    .ignore()
                    .set(&recovered, token)
                    .ignore()
                    .query_async(&mut connection)
                    .await?;
                self.replicated(&mut connection).await
            })
            .await
    }

    /// Every counter name with a key under the prefix (`SCAN`; for `recover`).
    pub async fn counter_names(&self) -> Result<Vec<CounterName>, RedisError> {
        let pattern = format!("{}counter:{{*}}", self.prefix);
        let prefix = format!("{}counter:{{", self.prefix);
        let keys: Vec<String> = self
            .connections
            .run(|mut connection| async move {
                let mut keys = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut connection)
                        .await?;
                    keys.extend(batch);
                    if next == 0 {
                        return Ok(keys);
                    }
                    cursor = next;
                }
            })
            .await?;
        Ok(keys
            .iter()
            .filter_map(|key| key.strip_prefix(&prefix)?.strip_suffix('}'))
            .filter_map(|name| CounterName::parse(name).ok())
            .collect())
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

    fn time_key(&self, mark: TimeMark) -> String {
        let name = match mark {
            TimeMark::Timestamp => "timestamp",
            TimeMark::Uuid7 => "uuid7",
            TimeMark::Ulid => "ulid",
            TimeMark::Ksuid => "ksuid",
        };
        format!("{}{name}-mark", self.prefix)
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

    /// One server setting (`CONFIG GET name`); `None` when `CONFIG` is not allowed (managed
    /// Redis services rename or forbid it).
    pub async fn server_setting(&self, name: &str) -> Result<Option<String>, RedisError> {
        let reply: Result<Vec<String>, RedisError> = self
            .connections
            .run(|mut connection| async move {
                Ok(redis::cmd("CONFIG").arg("GET").arg(name).query_async(&mut connection).await?)
            })
            .await;
        match reply {
            Ok(pairs) => Ok(pairs.into_iter().nth(1)),
            Err(RedisError::Redis(message)) if is_forbidden(&message) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// How many replicas are connected to the server (`INFO replication`); `None` on Redis
    /// Cluster, where every master has its own.
    pub async fn connected_replicas(&self) -> Result<Option<u64>, RedisError> {
        if self.cluster {
            return Ok(None);
        }
        let info: String = self
            .connections
            .run(|mut connection| async move {
                Ok(redis::cmd("INFO").arg("replication").query_async(&mut connection).await?)
            })
            .await?;
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix("connected_slaves:"))
            .and_then(|count| count.trim().parse().ok()))
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

    /// `INCRBY count` on a counter (checking the store identity): the `count` values now
    /// reserved for the caller, which must all be above what this node was handed before.
    pub async fn incr_counter(
        &self,
        name: &CounterName,
        count: u64,
    ) -> Result<RangeInclusive<u64>, RedisError> {
        // Read before asking: replies to concurrent requests may arrive in any order, but each
        // must be above everything this node had been handed when it asked.
        let floor = self.counter_seen(name);
        let mut keys = vec![self.counter_key(name)];
        let mut args = vec![count.to_string()];
        self.guard(&mut keys, &mut args);
        let (keys, args) = (&keys, &args);
        let script = &self.scripts.incr;
        let (ok, value): (i64, i64) = self
            .connections
            .run_hot(|mut connection| async move {
                let reply = call_script(&mut connection, script, keys, args).await?;
                self.replicated(&mut connection).await?;
                Ok(reply)
            })
            .await?;
        if ok == 0 {
            return Err(self.identity_lost());
        }
        // A key someone set below 0 would give values that are not ours to hand out.
        let range = u64::try_from(value)
            .ok()
            .and_then(|last| Some(last.checked_sub(count)? + 1..=last))
            .ok_or_else(|| RedisError::Reply(format!("counter {name} is at {value}")))?;
        if *range.start() <= floor {
            return Err(RedisError::Regressed(format!(
                "Redis handed out counter {name} from {} again, but this node already had {floor}",
                range.start()
            )));
        }
        self.saw_counter(name, *range.end());
        Ok(range)
    }

    /// The last value of `name` handed to this node (0 for none).
    fn counter_seen(&self, name: &CounterName) -> u64 {
        self.counters_seen.read().get(name).map_or(0, |last| last.load(Ordering::Relaxed))
    }

    /// Records that values of `name` up to `last` were handed to this node.
    fn saw_counter(&self, name: &CounterName, last: u64) {
        let known = self
            .counters_seen
            .read()
            .get(name)
            .map(|seen| seen.fetch_max(last, Ordering::Relaxed))
            .is_some();
        // The read lock is released above: taking the write lock under it would deadlock.
        if !known {
            let mut seen = self.counters_seen.write();
            seen.entry(name.clone()).or_default().fetch_max(last, Ordering::Relaxed);
        }
    }

    fn identity_lost(&self) -> RedisError {
        RedisError::Regressed(
            "the store identity in Redis is missing or changed (Redis restarted empty, was flushed or failed over to a replica that lagged)".to_owned(),
        )
    }

    /// `count` timestamp ids from the mark shared by every node (one round trip): the first is
    /// `max(now_ms, last + 1)`.
    pub async fn next_timestamps(&self, count: u64, now_ms: u64) -> Result<u64, RedisError> {
        let mut keys = vec![self.time_key(TimeMark::Timestamp)];
        let mut args = vec![count.to_string(), now_ms.to_string()];
        self.guard(&mut keys, &mut args);
        let (keys, args) = (&keys, &args);
        let script = &self.scripts.timestamps;
        let (ok, first): (i64, i64) = self
            .connections
            .run_hot(|mut connection| async move {
                let reply = call_script(&mut connection, script, keys, args).await?;
                self.replicated(&mut connection).await?;
                Ok(reply)
            })
            .await?;
        if ok == 0 {
            return Err(self.identity_lost());
        }
        u64::try_from(first).map_err(|_| RedisError::Reply(format!("timestamp {first}")))
    }

    /// Raises a counter to at least `value` (never lowers it); returns its value.
    pub async fn seed_counter(&self, name: &CounterName, value: u64) -> Result<u64, RedisError> {
        let key = self.counter_key(name);
        self.raise_key(key, value, value).await
    }

    async fn raise_key(&self, key: String, needed: u64, target: u64) -> Result<u64, RedisError> {
        // Lua numbers are doubles: above 2^53 a mark would lose precision and read back wrong.
        if needed > MAX_MARK {
            return Err(RedisError::Reply(format!(
                "mark {needed} for {key} is above 2^53, the largest Redis scripts keep exactly"
            )));
        }
        let (mut keys, mut args) =
            (vec![key], vec![needed.to_string(), target.min(MAX_MARK).to_string()]);
        self.guard(&mut keys, &mut args);
        let value: i64 =
            self.invoke_as(Write::Guarded, &self.scripts.raise_mark, keys, args).await?;
        if value == REGRESSED {
            return Err(self.identity_lost());
        }
        u64::try_from(value).map_err(|_| RedisError::Reply(format!("mark {value}")))
    }

    /// Raises a shared time mark; returns the durable value (>= `needed`).
    pub async fn raise_time_mark(
        &self,
        mark: TimeMark,
        needed: u64,
        target: u64,
    ) -> Result<u64, RedisError> {
        self.raise_key(self.time_key(mark), needed, target.max(needed)).await
    }

    /// Reads a shared time mark (0 if none).
    pub async fn load_time_mark(&self, mark: TimeMark) -> Result<u64, RedisError> {
        self.raise_key(self.time_key(mark), 0, 0).await
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
        let (mut keys, mut args) = (vec![lease, mark], vec![token.to_string(), ttl_ms.to_string()]);
        self.guard(&mut keys, &mut args);
        let reply: i64 = self.invoke_as(Write::Guarded, &self.scripts.acquire, keys, args).await?;
        if reply == REGRESSED {
            return Err(self.identity_lost());
        }
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
        let (mut keys, mut args) =
            (vec![lease, mark], vec![token.to_string(), needed.to_string(), target.to_string()]);
        self.guard(&mut keys, &mut args);
        let reply: i64 =
            self.invoke_as(Write::Guarded, &self.scripts.raise_worker_mark, keys, args).await?;
        if reply == REGRESSED {
            return Err(self.identity_lost());
        }
        Ok(u64::try_from(reply).ok())
    }

    /// `recover`: raises worker `worker_id`'s snowflake mark to at least `floor`, whoever holds
    /// its lease.
    pub async fn raise_worker_floor(&self, worker_id: u16, floor: u64) -> Result<u64, RedisError> {
        let (_, mark) = self.lease_keys(worker_id);
        self.raise_key(mark, floor, floor).await
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
}

/// Whether a Redis error says the command is not allowed (renamed, ACL, managed service).
fn is_forbidden(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["unknown command", "noperm", "not allowed", "no permissions", "unknown subcommand"]
        .iter()
        .any(|marker| message.contains(marker))
}
