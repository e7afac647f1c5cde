//! Opening the Redis back end: Redis answers, the store identity is one this node may work
//! under, counters are seeded, the time marks are read and a worker id is leased. Problems are
//! setting errors (`IDGEN_REDIS_URL`, `IDGEN_WORKER_ID`, `IDGEN_DATA_DIR`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::{Mutex, RwLock};

use super::identity::{Handshake, Regression, handshake};
use super::lease::{self, Held, Lease};
use super::node::NodeFile;
use super::{RedisBackend, RedisError, RedisStore, TimeMark};
use crate::backend::{Opened, Snapshot};
use crate::config::{Config, ConfigError, RedisUrl, Setting, Source};

/// What start-up found in Redis.
struct Found {
    identity: String,
    /// How Redis keeps what it acknowledges, for the start-up line.
    persistence: String,
    worker_id: u16,
    mark_ms: u64,
    sent: Instant,
    timestamp_ms: u64,
    uuid7_ms: u64,
    ulid_ms: u64,
    ksuid_ms: u64,
}

/// Opens the back end for `config` on `url`.
pub fn open(config: &Config, url: &RedisUrl) -> anyhow::Result<Opened> {
    // rediss:// runs on rustls, which needs a process-wide crypto provider (ring: the build
    // has no aws-lc-sys). An error means one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = RedisStore::new(
        url,
        config.redis_cluster,
        &config.redis_prefix,
        config.redis_wait_replicas,
    )
    .map_err(|error| unreachable_setting(url, &error))?;
    let store = Arc::new(store);
    let data_dir = |error: std::io::Error| {
        ConfigError::new(
            Setting::DataDir,
            Source::Env,
            format!(
                "cannot keep this node's Redis state in {}: {error}",
                config.data_dir.display()
            ),
        )
    };
    let mut node = NodeFile::load(&config.data_dir).map_err(data_dir)?;
    let token = lease::new_token();
    // Start-up runs before the server's runtime exists (and may be called from async code), so
    // it drives the store on a runtime of its own, on a helper thread. The store's shared
    // connection lives on the store's own runtime, so it outlives this one.
    let found = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("start a runtime for the Redis start-up checks")?;
                runtime.block_on(start(config, url, &store, node.store_id.as_deref(), &token))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the Redis start-up checks panicked"))?
    })?;
    if node.store_id.as_deref() != Some(found.identity.as_str()) {
        node.store_id = Some(found.identity.clone());
        node.save(&config.data_dir).map_err(data_dir)?;
    }
    let lease = Lease::new(Duration::from_millis(config.lease_ttl_ms));
    lease.confirm(Held { worker_id: found.worker_id, token }, found.sent);
    let durable = Snapshot {
        worker_id: found.worker_id,
        snowflake_ms: found.mark_ms,
        timestamp_ms: found.timestamp_ms,
        uuid7_ms: found.uuid7_ms,
        ulid_ms: found.ulid_ms,
        ksuid_ms: found.ksuid_ms,
        counters: Vec::new(),
        retired_counters: Vec::new(),
    };
    let backend = RedisBackend {
        store,
        lease,
        fixed_worker_id: config.worker_id_fixed.then_some(config.worker_id),
        max_worker: config.snowflake_layout.max_worker(),
        counter_block: config.counter_block,
        max_counters: config.max_counters,
        segments: RwLock::new(HashMap::new()),
        groups: RwLock::new(HashMap::new()),
        regression: Regression::default(),
        node_dir: config.data_dir.clone(),
        node_file: Mutex::new(node),
        worker_marks: Mutex::new(HashMap::from([(found.worker_id, found.mark_ms)])),
        last_timestamp: std::sync::atomic::AtomicU64::new(found.timestamp_ms),
        timestamps: Arc::default(),
        last_saved: Mutex::new(Instant::now()),
        persistence: found.persistence,
    };
    Ok(Opened { backend: Arc::new(backend), durable })
}

/// Records this node's snowflake layout in a store that has none, and refuses one whose
/// snowflakes were issued with another (`Err(Ok(refusal))`; `Err(Err(_))`: Redis failed).
async fn check_layout(
    config: &Config,
    store: &RedisStore,
    used: bool,
) -> Result<(), Result<anyhow::Error, RedisError>> {
    let layout = config.snowflake_layout;
    let assumed = if used { idgen_core::snowflake::Layout::TWITTER } else { layout };
    let recorded = store.claim_layout(&assumed.fingerprint()).await.map_err(Err)?;
    if recorded == layout.fingerprint() {
        return Ok(());
    }
    Err(Ok(ConfigError::new(
        Setting::SnowflakeLayout,
        Source::Env,
        format!(
            "this Redis store holds snowflakes of the layout {recorded}, not {} ({layout}): changing it in place would break their order and uniqueness; keep the old IDGEN_SNOWFLAKE_LAYOUT, or give the new one its own store or IDGEN_REDIS_PREFIX",
            layout.fingerprint()
        ),
    )
    .into()))
}

/// A start-up failure, named by its real cause: wrong credentials, too few replicas, or Redis
/// not answering.
pub(super) fn unreachable_setting(url: &RedisUrl, error: &RedisError) -> anyhow::Error {
    let (setting, problem) = match error {
        RedisError::Redis(message) if is_authentication(message) => (
            Setting::RedisUrl,
            format!(
                "Redis refused the credentials of the URL (authentication failed: {message}); check the user and password"
            ),
        ),
        RedisError::NotReplicated { acked, wanted } => (
            Setting::RedisWaitReplicas,
            format!(
                "Redis answers, but a write reached only {acked} of the {wanted} replicas this setting asks for; start the replicas or lower IDGEN_REDIS_WAIT_REPLICAS"
            ),
        ),
        error => (
            Setting::RedisUrl,
            format!("cannot reach Redis ({error}); check that it runs and that the URL is right"),
        ),
    };
    ConfigError::new(setting, Source::Env, url.redact(&problem)).into()
}

fn is_authentication(message: &str) -> bool {
    ["WRONGPASS", "NOAUTH", "invalid password", "invalid username-password", "AuthenticationFailed"]
        .iter()
        .any(|marker| message.contains(marker))
}

/// Refuses a Redis that evicts keys (an evicted counter starts again at 1), and describes how
/// it keeps what it acknowledges, warning when a crash can lose acknowledged writes.
async fn guard_configuration(
    config: &Config,
    url: &RedisUrl,
    store: &RedisStore,
) -> anyhow::Result<String> {
    let unreachable = |error: RedisError| unreachable_setting(url, &error);
    match store.server_setting("maxmemory-policy").await.map_err(unreachable)? {
        Some(policy) if policy != "noeviction" => {
            return Err(ConfigError::new(
                Setting::RedisUrl,
                Source::Env,
                format!(
                    "this Redis evicts keys under memory pressure (maxmemory-policy {policy}): an evicted counter or mark would start again and repeat ids; set maxmemory-policy noeviction"
                ),
            )
            .into());
        }
        Some(_) => {}
        None => tracing::warn!(
            "cannot read Redis's maxmemory-policy (CONFIG is not allowed here): make sure it is noeviction, or an evicted key repeats ids"
        ),
    }
    let appendonly = store.server_setting("appendonly").await.map_err(unreachable)?;
    let appendfsync = store.server_setting("appendfsync").await.map_err(unreachable)?;
    let replicas = store.connected_replicas().await.map_err(unreachable)?;
    let aof = match (appendonly.as_deref(), appendfsync.as_deref()) {
        (Some("yes"), Some(fsync)) => format!("aof appendfsync {fsync}"),
        (Some(_), _) => "no aof".to_owned(),
        (None, _) => "aof unknown (CONFIG not allowed)".to_owned(),
    };
    let replicas = match replicas {
        Some(count) => format!(", {count} replicas"),
        None => String::new(),
    };
    let waits = config.redis_wait_replicas;
    let waited = if waits > 0 { format!(", waits for {waits}") } else { String::new() };
    let always = appendfsync.as_deref() == Some("always") && appendonly.as_deref() == Some("yes");
    if !always && waits == 0 {
        tracing::warn!(
            "Redis keeps acknowledged writes neither on disk at once (appendfsync always) nor on replicas this node waits for (IDGEN_REDIS_WAIT_REPLICAS): a Redis crash can lose counter values and marks, which idgen then refuses to reuse (503 store_regressed) until recovered; see docs/operations.md"
        );
    }
    Ok(format!("persistence: {aof}{replicas}{waited}"))
}

async fn start(
    config: &Config,
    url: &RedisUrl,
    store: &RedisStore,
    remembered: Option<&str>,
    token: &str,
) -> anyhow::Result<Found> {
    let unreachable = |error: RedisError| unreachable_setting(url, &error);
    store.ping().await.map_err(unreachable)?;
    let persistence = guard_configuration(config, url, store).await?;
    // A store with an identity but no layout was used before layouts: Twitter's.
    let used = store.read_identity().await.map_err(unreachable)?.current.is_some();
    let identity = match handshake(store, remembered, &lease::new_token())
        .await
        .map_err(unreachable)?
    {
        Handshake::Adopt(identity) => identity,
        Handshake::Regressed(reason) => {
            return Err(ConfigError::new(
                Setting::RedisUrl,
                Source::Env,
                format!(
                    "{reason}; starting could hand out ids that were already issued: run `idgen-server recover` first (docs/operations.md#store-regressed)"
                ),
            )
            .into());
        }
    };
    store.adopt_identity(identity.clone());
    check_layout(config, store, used).await.map_err(|error| match error {
        Err(error) => unreachable(error),
        Ok(refusal) => refusal,
    })?;
    for (name, value) in &config.seed_counters {
        let now = store.seed_counter(name, *value).await.map_err(unreachable)?;
        tracing::info!(counter = %name, seed = value, now, "counter seeded");
    }
    let timestamp_ms = store.load_time_mark(TimeMark::Timestamp).await.map_err(unreachable)?;
    let uuid7_ms = store.load_time_mark(TimeMark::Uuid7).await.map_err(unreachable)?;
    let ulid_ms = store.load_time_mark(TimeMark::Ulid).await.map_err(unreachable)?;
    let ksuid_ms = store.load_time_mark(TimeMark::Ksuid).await.map_err(unreachable)?;
    let fixed = config.worker_id_fixed.then_some(config.worker_id);
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    let workers = config.snowflake_layout.max_worker();
    match lease::acquire(store, fixed, None, workers, token, ttl).await.map_err(unreachable)? {
        Some((worker_id, mark_ms, sent)) => {
            Ok(Found {
                identity,
                persistence,
                worker_id,
                mark_ms,
                sent,
                timestamp_ms,
                uuid7_ms,
                ulid_ms,
                ksuid_ms,
            })
        }
        None => Err(match fixed {
            Some(worker_id) => ConfigError::new(
                Setting::WorkerId,
                Source::Env,
                format!(
                    "worker id {worker_id} is leased by another idgen node; pick another or leave IDGEN_WORKER_ID unset to lease a free one"
                ),
            ),
            None => ConfigError::new(
                Setting::WorkerId,
                Source::Env,
                format!(
                    "all {} worker ids are leased by other idgen nodes",
                    u32::from(config.snowflake_layout.max_worker()) + 1
                ),
            ),
        }
        .into()),
    }
}
