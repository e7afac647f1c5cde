//! Settings: one [`Config`] read from `IDGEN_*` environment variables (envy), overridden by
//! command-line flags (clap) in [`Config::apply_flags`], then validated once.
//!
//! Every problem becomes a [`ConfigError`] that names the setting as the operator gave it
//! (`IDGEN_WORKER_ID` or `--worker-id`) and says what a valid value looks like; `main` prints it
//! on one line and exits with status 2.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use idgen_core::counter::CounterName;
use serde::{Deserialize, Deserializer};

/// Every environment variable idgen-server reads starts with this.
pub const ENV_PREFIX: &str = "IDGEN_";

/// Upper bounds of the numeric settings (generous; they exist to catch typos).
const MAX_BACKWARD_LIMIT_MS: u64 = 60_000;
const MAX_BATCH_LIMIT: u32 = 1_000_000;
const MAX_COUNTERS_LIMIT: usize = 1_000_000;
const RATE_LIMIT_MAX: u32 = 1_000_000;
const COUNTER_BLOCK_MAX: u64 = 1_000_000;
const LEASE_TTL_MIN_MS: u64 = 300;
const LEASE_TTL_MAX_MS: u64 = 3_600_000;
const REDIS_PREFIX_MAX_LEN: usize = 64;
const WAIT_REPLICAS_MAX: u32 = 16;

/// The server's settings. Tests build it in code (`Config { bind: ..., ..Config::default() }`);
/// the binary loads it with [`Config::load`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Config {
    /// Redis mode when set: counters, worker-id leases and the rate limit live in Redis.
    #[serde(default)]
    pub redis_url: Option<RedisUrl>,
    /// `IDGEN_REDIS_URL` names Redis Cluster nodes (a comma-separated list of seed nodes).
    #[serde(default)]
    pub redis_cluster: bool,
    /// Replicas every uniqueness-guarding write must reach (`WAIT`) before it is used; 0 = off.
    #[serde(default)]
    pub redis_wait_replicas: u32,
    /// Prefix of every Redis key idgen writes.
    #[serde(default = "default_redis_prefix")]
    pub redis_prefix: String,
    /// Counter values a node takes from Redis at once; 1 = every request goes to Redis.
    #[serde(default = "default_counter_block")]
    pub counter_block: u64,
    /// Lifetime of a snowflake worker-id lease in Redis.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// What the shared rate limit does when Redis cannot be asked.
    #[serde(default, deserialize_with = "deserialize_rate_limit_fail")]
    pub rate_limit_fail: RateLimitFail,
    /// Counters raised to at least these values at start-up (Redis mode), e.g. after a
    /// migration from an embedded data dir.
    #[serde(default, deserialize_with = "deserialize_seeds")]
    pub seed_counters: Vec<(CounterName, u64)>,
    /// Whether `worker_id` was given (env or flag). In Redis mode an unset worker id means
    /// "lease any free one"; a given one is leased as is or start-up fails.
    #[serde(skip)]
    pub worker_id_fixed: bool,
    /// `host:port` to listen on; port 0 picks a free port.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Where the embedded store keeps its state (created if missing).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Snowflake worker id, 0..=1023.
    #[serde(default = "default_worker_id")]
    pub worker_id: u16,
    /// Unix ms that snowflake timestamp 0 stands for.
    #[serde(default = "default_snowflake_epoch_ms")]
    pub snowflake_epoch_ms: u64,
    /// How far the clock may step back before snowflakes are refused.
    #[serde(default = "default_snowflake_max_backward_ms")]
    pub snowflake_max_backward_ms: u64,
    /// Largest `count` one request may ask for.
    #[serde(default = "default_max_batch")]
    pub max_batch: u32,
    /// Most distinct counter names the server keeps.
    #[serde(default = "default_max_counters")]
    pub max_counters: usize,
    /// Sustained requests per second per client IP on the ID routes; 0 disables rate limiting.
    #[serde(default = "default_rate_limit_per_second")]
    pub rate_limit_per_second: u32,
    /// Burst per client IP; 0 means "same as the per-second rate".
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Peers whose `X-Forwarded-For` is believed. Empty: the peer address is the client.
    #[serde(default, deserialize_with = "deserialize_ip_list")]
    pub trusted_proxies: Vec<IpAddr>,
    /// A `tracing` filter, e.g. `info` or `idgen_server=debug,warn`.
    #[serde(default = "default_log")]
    pub log: String,
}

fn default_bind() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./idgen-data")
}
fn default_worker_id() -> u16 {
    0
}
fn default_snowflake_epoch_ms() -> u64 {
    idgen_core::snowflake::DEFAULT_EPOCH_MS
}
fn default_snowflake_max_backward_ms() -> u64 {
    idgen_core::snowflake::DEFAULT_MAX_BACKWARD_MS
}
fn default_max_batch() -> u32 {
    10_000
}
fn default_max_counters() -> usize {
    10_000
}
fn default_rate_limit_per_second() -> u32 {
    0
}
fn default_rate_limit_burst() -> u32 {
    0
}
fn default_log() -> String {
    "info".to_owned()
}
fn default_redis_prefix() -> String {
    "idgen:".to_owned()
}
fn default_counter_block() -> u64 {
    1
}
fn default_lease_ttl_ms() -> u64 {
    10_000
}

/// A Redis URL. It may hold a password, so it never shows in `Debug` or in an error.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting only: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The comma-separated URLs (one, except for Redis Cluster seed nodes).
    pub fn urls(&self) -> Vec<String> {
        self.0.split(',').map(|url| url.trim().to_owned()).collect()
    }

    /// Every URL `redis://` or `rediss://` (TLS, through rustls) with a parsable address (the
    /// only fragment redis-rs takes is `#insecure`), all with the same scheme: Redis Cluster
    /// nodes are reached either all with TLS or all without.
    pub fn is_valid(&self) -> bool {
        use deadpool_redis::redis::IntoConnectionInfo;
        let urls = self.urls();
        let tls = urls.first().is_some_and(|url| url.starts_with("rediss://"));
        let scheme = if tls { "rediss://" } else { "redis://" };
        urls.iter()
            .all(|url| url.starts_with(scheme) && url.as_str().into_connection_info().is_ok())
    }

    /// Whether the URLs use TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.0.trim_start().starts_with("rediss://")
    }

    /// `text` with this URL and its passwords (if any) blanked out, for error messages.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.replace(&self.0, "<IDGEN_REDIS_URL>");
        for url in self.urls() {
            text = text.replace(&url, "<IDGEN_REDIS_URL>");
            if let Some(password) = password_of(&url)
                && !password.is_empty()
            {
                text = text.replace(password, "<password>");
            }
        }
        text
    }
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    Some(userinfo.split_once(':').map_or(userinfo, |(_, password)| password))
}

impl RedisUrl {
    #[cfg(test)]
    fn password(&self) -> Option<&str> {
        password_of(&self.0)
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(<redacted>)")
    }
}

/// `IDGEN_RATE_LIMIT_FAIL`: when Redis cannot be asked, let requests through or refuse them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateLimitFail {
    /// Let the request through (logged and counted).
    #[default]
    Open,
    /// Answer 503.
    Closed,
}

impl std::str::FromStr for RateLimitFail {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim() {
            "open" => Ok(RateLimitFail::Open),
            "closed" => Ok(RateLimitFail::Closed),
            _ => Err(()),
        }
    }
}

fn deserialize_rate_limit_fail<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<RateLimitFail, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|()| serde::de::Error::custom("expected open or closed"))
}

fn deserialize_seeds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(CounterName, u64)>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_seeds(&text).map_err(serde::de::Error::custom)
}

/// `name=value,name=value` (blanks around commas allowed).
fn parse_seeds(text: &str) -> Result<Vec<(CounterName, u64)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, value) = entry.split_once('=').ok_or("expected name=value")?;
            let name = CounterName::parse(name.trim()).map_err(|e| e.to_string())?;
            let value = value.trim().parse::<u64>().map_err(|e| e.to_string())?;
            Ok((name, value))
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            data_dir: default_data_dir(),
            worker_id: default_worker_id(),
            snowflake_epoch_ms: default_snowflake_epoch_ms(),
            snowflake_max_backward_ms: default_snowflake_max_backward_ms(),
            max_batch: default_max_batch(),
            max_counters: default_max_counters(),
            rate_limit_per_second: default_rate_limit_per_second(),
            rate_limit_burst: default_rate_limit_burst(),
            trusted_proxies: Vec::new(),
            log: default_log(),
            redis_url: None,
            redis_cluster: false,
            redis_wait_replicas: 0,
            redis_prefix: default_redis_prefix(),
            counter_block: default_counter_block(),
            lease_ttl_ms: default_lease_ttl_ms(),
            rate_limit_fail: RateLimitFail::default(),
            seed_counters: Vec::new(),
            worker_id_fixed: false,
        }
    }
}

/// A comma-separated list of IP addresses; blanks around commas are allowed.
fn deserialize_ip_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IpAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_ip_list(&text).map_err(serde::de::Error::custom)
}

fn parse_ip_list(text: &str) -> Result<Vec<IpAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| entry.parse::<IpAddr>().map_err(|_| format!("{entry:?} is not an IP address")))
        .collect()
}

/// The command-line flags. Each overrides the `IDGEN_*` variable of the same name. Values are
/// taken as text and parsed by [`Config::apply_flags`], so a bad flag gets the same one-line
/// message as a bad variable.
#[derive(Debug, Default, Clone, clap::Parser)]
#[command(
    name = "idgen-server",
    version,
    about = "idgen's HTTP server: unique IDs of every kind",
    // A flag given twice: the last one wins, as with most Unix tools.
    args_override_self = true
)]
pub struct Flags {
    /// host:port to listen on (port 0 picks a free one) [env: IDGEN_BIND, default 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub bind: Option<String>,
    /// Directory for durable state, created if missing [env: IDGEN_DATA_DIR, default ./idgen-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Snowflake worker id, 0..=1023 [env: IDGEN_WORKER_ID, default 0]
    #[arg(long, value_name = "N")]
    pub worker_id: Option<String>,
    /// Unix ms that snowflake time 0 stands for [env: IDGEN_SNOWFLAKE_EPOCH_MS, default 2020-01-01]
    #[arg(long, value_name = "MS")]
    pub snowflake_epoch_ms: Option<String>,
    /// How far the clock may step back before snowflakes are refused [env: IDGEN_SNOWFLAKE_MAX_BACKWARD_MS, default 1000]
    #[arg(long, value_name = "MS")]
    pub snowflake_max_backward_ms: Option<String>,
    /// Largest count per request [env: IDGEN_MAX_BATCH, default 10000]
    #[arg(long, value_name = "N")]
    pub max_batch: Option<String>,
    /// Most distinct counter names [env: IDGEN_MAX_COUNTERS, default 10000]
    #[arg(long, value_name = "N")]
    pub max_counters: Option<String>,
    /// Requests per second per client IP on the ID routes, 0 = off [env: IDGEN_RATE_LIMIT_PER_SECOND, default 0]
    #[arg(long, value_name = "N")]
    pub rate_limit_per_second: Option<String>,
    /// Burst per client IP, 0 = same as the rate [env: IDGEN_RATE_LIMIT_BURST, default 0]
    #[arg(long, value_name = "N")]
    pub rate_limit_burst: Option<String>,
    /// Comma-separated proxy IPs whose X-Forwarded-For is believed [env: IDGEN_TRUSTED_PROXIES]
    #[arg(long, value_name = "IP,IP")]
    pub trusted_proxies: Option<String>,
    /// Log filter, e.g. info or idgen_server=debug [env: IDGEN_LOG, default info]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Redis mode: redis://[user:password@]host:port[/db], rediss:// for TLS [env: IDGEN_REDIS_URL, default unset = embedded mode]
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// The Redis URL lists Redis Cluster nodes, comma-separated: true or false [env: IDGEN_REDIS_CLUSTER, default false]
    #[arg(long, value_name = "BOOL")]
    pub redis_cluster: Option<String>,
    /// Replicas each counter, lease and mark write must reach before use, 0 = off [env: IDGEN_REDIS_WAIT_REPLICAS, default 0]
    #[arg(long, value_name = "N")]
    pub redis_wait_replicas: Option<String>,
    /// Prefix of every Redis key [env: IDGEN_REDIS_PREFIX, default idgen:]
    #[arg(long, value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// Counter values taken from Redis at once, 1 = strict global order [env: IDGEN_COUNTER_BLOCK, default 1]
    #[arg(long, value_name = "N")]
    pub counter_block: Option<String>,
    /// Lifetime of the snowflake worker-id lease in Redis [env: IDGEN_LEASE_TTL_MS, default 10000]
    #[arg(long, value_name = "MS")]
    pub lease_ttl_ms: Option<String>,
    /// Shared rate limit when Redis is down: open or closed [env: IDGEN_RATE_LIMIT_FAIL, default open]
    #[arg(long, value_name = "open|closed")]
    pub rate_limit_fail: Option<String>,
    /// Raise counters to at least these values at start (Redis mode) [env: IDGEN_SEED_COUNTERS]
    #[arg(long, value_name = "NAME=N,NAME=N")]
    pub seed_counters: Option<String>,
}

/// One setting, for error messages: its variable, its flag and what a valid value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    Bind,
    DataDir,
    WorkerId,
    SnowflakeEpochMs,
    SnowflakeMaxBackwardMs,
    MaxBatch,
    MaxCounters,
    RateLimitPerSecond,
    RateLimitBurst,
    TrustedProxies,
    Log,
    RedisUrl,
    RedisCluster,
    RedisWaitReplicas,
    RedisPrefix,
    CounterBlock,
    LeaseTtlMs,
    RateLimitFail,
    SeedCounters,
}

impl Setting {
    pub const ALL: [Setting; 19] = [
        Setting::Bind,
        Setting::DataDir,
        Setting::WorkerId,
        Setting::SnowflakeEpochMs,
        Setting::SnowflakeMaxBackwardMs,
        Setting::MaxBatch,
        Setting::MaxCounters,
        Setting::RateLimitPerSecond,
        Setting::RateLimitBurst,
        Setting::TrustedProxies,
        Setting::Log,
        Setting::RedisUrl,
        Setting::RedisCluster,
        Setting::RedisWaitReplicas,
        Setting::RedisPrefix,
        Setting::CounterBlock,
        Setting::LeaseTtlMs,
        Setting::RateLimitFail,
        Setting::SeedCounters,
    ];

    pub fn env_var(self) -> &'static str {
        match self {
            Setting::Bind => "IDGEN_BIND",
            Setting::DataDir => "IDGEN_DATA_DIR",
            Setting::WorkerId => "IDGEN_WORKER_ID",
            Setting::SnowflakeEpochMs => "IDGEN_SNOWFLAKE_EPOCH_MS",
            Setting::SnowflakeMaxBackwardMs => "IDGEN_SNOWFLAKE_MAX_BACKWARD_MS",
            Setting::MaxBatch => "IDGEN_MAX_BATCH",
            Setting::MaxCounters => "IDGEN_MAX_COUNTERS",
            Setting::RateLimitPerSecond => "IDGEN_RATE_LIMIT_PER_SECOND",
            Setting::RateLimitBurst => "IDGEN_RATE_LIMIT_BURST",
            Setting::TrustedProxies => "IDGEN_TRUSTED_PROXIES",
            Setting::Log => "IDGEN_LOG",
            Setting::RedisUrl => "IDGEN_REDIS_URL",
            Setting::RedisCluster => "IDGEN_REDIS_CLUSTER",
            Setting::RedisWaitReplicas => "IDGEN_REDIS_WAIT_REPLICAS",
            Setting::RedisPrefix => "IDGEN_REDIS_PREFIX",
            Setting::CounterBlock => "IDGEN_COUNTER_BLOCK",
            Setting::LeaseTtlMs => "IDGEN_LEASE_TTL_MS",
            Setting::RateLimitFail => "IDGEN_RATE_LIMIT_FAIL",
            Setting::SeedCounters => "IDGEN_SEED_COUNTERS",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            Setting::Bind => "--bind",
            Setting::DataDir => "--data-dir",
            Setting::WorkerId => "--worker-id",
            Setting::SnowflakeEpochMs => "--snowflake-epoch-ms",
            Setting::SnowflakeMaxBackwardMs => "--snowflake-max-backward-ms",
            Setting::MaxBatch => "--max-batch",
            Setting::MaxCounters => "--max-counters",
            Setting::RateLimitPerSecond => "--rate-limit-per-second",
            Setting::RateLimitBurst => "--rate-limit-burst",
            Setting::TrustedProxies => "--trusted-proxies",
            Setting::Log => "--log",
            Setting::RedisUrl => "--redis-url",
            Setting::RedisCluster => "--redis-cluster",
            Setting::RedisWaitReplicas => "--redis-wait-replicas",
            Setting::RedisPrefix => "--redis-prefix",
            Setting::CounterBlock => "--counter-block",
            Setting::LeaseTtlMs => "--lease-ttl-ms",
            Setting::RateLimitFail => "--rate-limit-fail",
            Setting::SeedCounters => "--seed-counters",
        }
    }

    /// What a valid value looks like, as the message of an error about this setting.
    pub fn expectation(self) -> String {
        match self {
            Setting::Bind => {
                "must be host:port, e.g. 127.0.0.1:8080 (port 0 picks a free port)".to_owned()
            }
            Setting::DataDir => "must be a directory this process can create and write".to_owned(),
            Setting::WorkerId => "must be an integer from 0 to 1023".to_owned(),
            Setting::SnowflakeEpochMs => {
                "must be an integer number of ms since the Unix epoch, not in the future".to_owned()
            }
            Setting::SnowflakeMaxBackwardMs => {
                format!("must be an integer from 0 to {MAX_BACKWARD_LIMIT_MS}")
            }
            Setting::MaxBatch => format!("must be an integer from 1 to {MAX_BATCH_LIMIT}"),
            Setting::MaxCounters => format!("must be an integer from 1 to {MAX_COUNTERS_LIMIT}"),
            Setting::RateLimitPerSecond => {
                format!("must be an integer from 0 (off) to {RATE_LIMIT_MAX}")
            }
            Setting::RateLimitBurst => {
                format!("must be an integer from 0 (same as the rate) to {RATE_LIMIT_MAX}")
            }
            Setting::TrustedProxies => {
                "must be a comma-separated list of IP addresses, e.g. 10.0.0.1,10.0.0.2".to_owned()
            }
            Setting::Log => "must be a log filter, e.g. info or idgen_server=debug,warn".to_owned(),
            Setting::RedisUrl => {
                "must be redis://[user:password@]host:port[/db] or rediss://[user:password@]host:port[/db] (TLS), or with IDGEN_REDIS_CLUSTER=true a comma-separated list of such URLs, all redis:// or all rediss://".to_owned()
            }
            Setting::RedisCluster => "must be true or false".to_owned(),
            Setting::RedisWaitReplicas => format!(
                "must be an integer from 0 (off) to {WAIT_REPLICAS_MAX}, and 0 with IDGEN_REDIS_CLUSTER=true (not supported there yet)"
            ),
            Setting::RedisPrefix => format!(
                "must be 1 to {REDIS_PREFIX_MAX_LEN} characters without spaces, braces or control characters, e.g. idgen:"
            ),
            Setting::CounterBlock => format!("must be an integer from 1 to {COUNTER_BLOCK_MAX}"),
            Setting::LeaseTtlMs => {
                format!("must be an integer from {LEASE_TTL_MIN_MS} to {LEASE_TTL_MAX_MS}")
            }
            Setting::RateLimitFail => "must be open or closed".to_owned(),
            Setting::SeedCounters => {
                "must be a comma-separated list of name=value (e.g. orders=1500,default=42), and needs IDGEN_REDIS_URL".to_owned()
            }
        }
    }

    fn from_env_var(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|setting| setting.env_var() == name)
    }
}

/// Where a setting's value came from, so the error names what the operator typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env,
    Flag,
}

/// A bad setting. Displays as `invalid IDGEN_WORKER_ID: must be an integer from 0 to 1023`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
}

impl ConfigError {
    pub fn new(setting: Setting, source: Source, problem: impl Into<String>) -> Self {
        let name = match source {
            Source::Env => setting.env_var(),
            Source::Flag => setting.flag(),
        };
        Self { name, problem: problem.into() }
    }

    /// The variable or flag the error is about.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Config {
    /// The process's settings: `IDGEN_*` variables, then `flags`, validated.
    pub fn load(flags: Flags) -> Result<Config, ConfigError> {
        Self::from_sources(
            std::env::vars_os().filter_map(|(name, value)| {
                // A variable that is not UTF-8 cannot be one of ours unless its name is; keep the
                // name so a non-UTF-8 value of an IDGEN_ variable is still reported.
                let name = name.into_string().ok()?;
                let value = value.into_string().unwrap_or_else(|_| "\u{fffd}".to_owned());
                Some((name, value))
            }),
            flags,
        )
    }

    /// [`Config::load`] with the environment given explicitly (tests never touch the real one).
    pub fn from_sources(
        vars: impl IntoIterator<Item = (String, String)>,
        flags: Flags,
    ) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> =
            vars.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        let mut config = Self::from_env_vars(&vars)?;
        config.worker_id_fixed = vars.iter().any(|(name, _)| name == Setting::WorkerId.env_var());
        let from_flags = config.apply_flags(flags)?;
        config.finish(&from_flags)?;
        Ok(config)
    }

    /// Reads the `IDGEN_*` variables. envy stops at the first bad variable but its message names
    /// it only sometimes; to always name it, retry the variables one by one.
    fn from_env_vars(vars: &[(String, String)]) -> Result<Config, ConfigError> {
        let error = match envy::prefixed(ENV_PREFIX).from_iter::<_, Config>(vars.iter().cloned()) {
            Ok(config) => return Ok(config),
            Err(error) => error,
        };
        for (name, value) in vars {
            let single =
                envy::prefixed(ENV_PREFIX).from_iter::<_, Config>([(name.clone(), value.clone())]);
            if single.is_err()
                && let Some(setting) = Setting::from_env_var(name)
            {
                return Err(ConfigError::new(setting, Source::Env, setting.expectation()));
            }
        }
        // Not expected: every field has a default and unknown variables are ignored.
        Err(ConfigError { name: "IDGEN_* settings", problem: error.to_string() })
    }

    /// Applies the command-line flags over the environment: the one place where flags win.
    /// Returns the settings the flags gave, so validation can name the flag.
    pub fn apply_flags(&mut self, flags: Flags) -> Result<HashSet<Setting>, ConfigError> {
        fn number<T: std::str::FromStr>(setting: Setting, text: &str) -> Result<T, ConfigError> {
            text.trim()
                .parse()
                .map_err(|_| ConfigError::new(setting, Source::Flag, setting.expectation()))
        }
        let mut given = HashSet::new();
        let mut mark = |setting| {
            given.insert(setting);
        };
        if let Some(bind) = flags.bind {
            self.bind = bind;
            mark(Setting::Bind);
        }
        if let Some(dir) = flags.data_dir {
            self.data_dir = dir;
            mark(Setting::DataDir);
        }
        if let Some(text) = flags.worker_id {
            self.worker_id = number(Setting::WorkerId, &text)?;
            self.worker_id_fixed = true;
            mark(Setting::WorkerId);
        }
        if let Some(text) = flags.snowflake_epoch_ms {
            self.snowflake_epoch_ms = number(Setting::SnowflakeEpochMs, &text)?;
            mark(Setting::SnowflakeEpochMs);
        }
        if let Some(text) = flags.snowflake_max_backward_ms {
            self.snowflake_max_backward_ms = number(Setting::SnowflakeMaxBackwardMs, &text)?;
            mark(Setting::SnowflakeMaxBackwardMs);
        }
        if let Some(text) = flags.max_batch {
            self.max_batch = number(Setting::MaxBatch, &text)?;
            mark(Setting::MaxBatch);
        }
        if let Some(text) = flags.max_counters {
            self.max_counters = number(Setting::MaxCounters, &text)?;
            mark(Setting::MaxCounters);
        }
        if let Some(text) = flags.rate_limit_per_second {
            self.rate_limit_per_second = number(Setting::RateLimitPerSecond, &text)?;
            mark(Setting::RateLimitPerSecond);
        }
        if let Some(text) = flags.rate_limit_burst {
            self.rate_limit_burst = number(Setting::RateLimitBurst, &text)?;
            mark(Setting::RateLimitBurst);
        }
        if let Some(text) = flags.trusted_proxies {
            self.trusted_proxies = parse_ip_list(&text).map_err(|_| {
                ConfigError::new(
                    Setting::TrustedProxies,
                    Source::Flag,
                    Setting::TrustedProxies.expectation(),
                )
            })?;
            mark(Setting::TrustedProxies);
        }
        if let Some(log) = flags.log {
            self.log = log;
            mark(Setting::Log);
        }
        if let Some(url) = flags.redis_url {
            self.redis_url = Some(RedisUrl(url));
            mark(Setting::RedisUrl);
        }
        if let Some(text) = flags.redis_cluster {
            self.redis_cluster = number(Setting::RedisCluster, &text)?;
            mark(Setting::RedisCluster);
        }
        if let Some(text) = flags.redis_wait_replicas {
            self.redis_wait_replicas = number(Setting::RedisWaitReplicas, &text)?;
            mark(Setting::RedisWaitReplicas);
        }
        if let Some(prefix) = flags.redis_prefix {
            self.redis_prefix = prefix;
            mark(Setting::RedisPrefix);
        }
        if let Some(text) = flags.counter_block {
            self.counter_block = number(Setting::CounterBlock, &text)?;
            mark(Setting::CounterBlock);
        }
        if let Some(text) = flags.lease_ttl_ms {
            self.lease_ttl_ms = number(Setting::LeaseTtlMs, &text)?;
            mark(Setting::LeaseTtlMs);
        }
        if let Some(text) = flags.rate_limit_fail {
            self.rate_limit_fail = number(Setting::RateLimitFail, &text)?;
            mark(Setting::RateLimitFail);
        }
        if let Some(text) = flags.seed_counters {
            self.seed_counters = parse_seeds(&text).map_err(|_| {
                ConfigError::new(
                    Setting::SeedCounters,
                    Source::Flag,
                    Setting::SeedCounters.expectation(),
                )
            })?;
            mark(Setting::SeedCounters);
        }
        Ok(given)
    }

    /// Derived values and range checks, after the merge.
    fn finish(&mut self, from_flags: &HashSet<Setting>) -> Result<(), ConfigError> {
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            self.rate_limit_burst = self.rate_limit_per_second;
        }
        self.validate().map_err(|setting| {
            let source = if from_flags.contains(&setting) { Source::Flag } else { Source::Env };
            ConfigError::new(setting, source, setting.expectation())
        })
    }

    /// The first setting whose value is out of range. (The data dir is checked when the store
    /// opens it, the bind address when the listener binds.)
    pub fn validate(&self) -> Result<(), Setting> {
        let check = |ok: bool, setting| if ok { Ok(()) } else { Err(setting) };
        check(bind_address_is_valid(&self.bind), Setting::Bind)?;
        check(!self.data_dir.as_os_str().is_empty(), Setting::DataDir)?;
        check(self.worker_id <= idgen_core::snowflake::WorkerId::MAX, Setting::WorkerId)?;
        check(self.snowflake_epoch_ms <= now_ms(), Setting::SnowflakeEpochMs)?;
        check(
            self.snowflake_max_backward_ms <= MAX_BACKWARD_LIMIT_MS,
            Setting::SnowflakeMaxBackwardMs,
        )?;
        check((1..=MAX_BATCH_LIMIT).contains(&self.max_batch), Setting::MaxBatch)?;
        check((1..=MAX_COUNTERS_LIMIT).contains(&self.max_counters), Setting::MaxCounters)?;
        check(self.rate_limit_per_second <= RATE_LIMIT_MAX, Setting::RateLimitPerSecond)?;
        check(self.rate_limit_burst <= RATE_LIMIT_MAX, Setting::RateLimitBurst)?;
        check(tracing_subscriber::EnvFilter::try_new(&self.log).is_ok(), Setting::Log)?;
        check(
            self.redis_url
                .as_ref()
                .is_none_or(|url| url.is_valid() && (self.redis_cluster || url.urls().len() == 1)),
            Setting::RedisUrl,
        )?;
        check(
            (1..=REDIS_PREFIX_MAX_LEN).contains(&self.redis_prefix.len())
                && !self
                    .redis_prefix
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}'),
            Setting::RedisPrefix,
        )?;
        check(
            self.redis_wait_replicas <= WAIT_REPLICAS_MAX
                && (self.redis_wait_replicas == 0 || !self.redis_cluster),
            Setting::RedisWaitReplicas,
        )?;
        check((1..=COUNTER_BLOCK_MAX).contains(&self.counter_block), Setting::CounterBlock)?;
        check(
            (LEASE_TTL_MIN_MS..=LEASE_TTL_MAX_MS).contains(&self.lease_ttl_ms),
            Setting::LeaseTtlMs,
        )?;
        check(self.seed_counters.is_empty() || self.redis_url.is_some(), Setting::SeedCounters)?;
        Ok(())
    }
}

/// `host:port` with a numeric port. Name resolution happens when binding, not here, so a
/// hostname is accepted if it has the right shape.
fn bind_address_is_valid(bind: &str) -> bool {
    if bind.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match bind.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(|c: char| c.is_whitespace() || c == '/')
                && port.parse::<u16>().is_ok()
                && (host, 0u16).to_socket_addrs().is_ok()
        }
        None => false,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load(env: &[(&str, &str)], flags: Flags) -> Result<Config, ConfigError> {
        Config::from_sources(vars(env), flags)
    }

    fn check_error(env: &[(&str, &str)], flags: Flags, expected: &str) {
        let error = load(env, flags).expect_err("the settings should be refused");
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn defaults_without_any_setting() {
        let config = load(&[], Flags::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.bind, "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./idgen-data"));
        assert_eq!(config.worker_id, 0);
        assert_eq!(config.snowflake_epoch_ms, 1_577_836_800_000);
        assert_eq!(config.snowflake_max_backward_ms, 1000);
        assert_eq!(config.max_batch, 10_000);
        assert_eq!(config.max_counters, 10_000);
        assert_eq!((config.rate_limit_per_second, config.rate_limit_burst), (0, 0));
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(config.log, "info");
    }

    #[test]
    fn environment_is_read_and_flags_win() {
        let env = [
            ("IDGEN_BIND", "127.0.0.1:0"),
            ("IDGEN_WORKER_ID", "7"),
            ("IDGEN_MAX_BATCH", "50"),
            ("IDGEN_TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ("IDGEN_URL", "http://ignored.invalid"),
            ("PATH", "/bin"),
        ];
        let config = load(&env, Flags::default()).unwrap();
        assert_eq!(config.bind, "127.0.0.1:0");
        assert_eq!(config.worker_id, 7);
        assert_eq!(config.max_batch, 50);
        assert_eq!(
            config.trusted_proxies,
            vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]
        );

        let flags = Flags {
            worker_id: Some("9".into()),
            data_dir: Some("/tmp/x".into()),
            trusted_proxies: Some("192.168.0.1".into()),
            ..Flags::default()
        };
        let config = load(&env, flags).unwrap();
        assert_eq!(config.worker_id, 9);
        assert_eq!(config.max_batch, 50);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.trusted_proxies, vec!["192.168.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn burst_defaults_to_the_rate() {
        let config = load(&[("IDGEN_RATE_LIMIT_PER_SECOND", "5")], Flags::default()).unwrap();
        assert_eq!((config.rate_limit_per_second, config.rate_limit_burst), (5, 5));
        let config = load(
            &[("IDGEN_RATE_LIMIT_PER_SECOND", "5"), ("IDGEN_RATE_LIMIT_BURST", "2")],
            Flags::default(),
        )
        .unwrap();
        assert_eq!((config.rate_limit_per_second, config.rate_limit_burst), (5, 2));
    }

    #[test]
    fn bad_environment_names_the_variable() {
        let worker = "invalid IDGEN_WORKER_ID: must be an integer from 0 to 1023";
        check_error(&[("IDGEN_WORKER_ID", "abc")], Flags::default(), worker);
        check_error(&[("IDGEN_WORKER_ID", "1024")], Flags::default(), worker);
        check_error(&[("IDGEN_WORKER_ID", "70000")], Flags::default(), worker);
        check_error(&[("IDGEN_WORKER_ID", "-1")], Flags::default(), worker);
        check_error(
            &[("IDGEN_MAX_BATCH", "0")],
            Flags::default(),
            "invalid IDGEN_MAX_BATCH: must be an integer from 1 to 1000000",
        );
        check_error(
            &[("IDGEN_BIND", "nonsense")],
            Flags::default(),
            "invalid IDGEN_BIND: must be host:port, e.g. 127.0.0.1:8080 (port 0 picks a free port)",
        );
        check_error(
            &[("IDGEN_TRUSTED_PROXIES", "10.0.0.1,proxy")],
            Flags::default(),
            "invalid IDGEN_TRUSTED_PROXIES: must be a comma-separated list of IP addresses, e.g. 10.0.0.1,10.0.0.2",
        );
        check_error(
            &[("IDGEN_LOG", "[[[")],
            Flags::default(),
            "invalid IDGEN_LOG: must be a log filter, e.g. info or idgen_server=debug,warn",
        );
        check_error(
            &[("IDGEN_SNOWFLAKE_EPOCH_MS", "99999999999999")],
            Flags::default(),
            "invalid IDGEN_SNOWFLAKE_EPOCH_MS: must be an integer number of ms since the Unix epoch, not in the future",
        );
        // The first bad one of several good ones is found.
        check_error(
            &[("IDGEN_MAX_BATCH", "10"), ("IDGEN_RATE_LIMIT_BURST", "x"), ("IDGEN_LOG", "warn")],
            Flags::default(),
            "invalid IDGEN_RATE_LIMIT_BURST: must be an integer from 0 (same as the rate) to 1000000",
        );
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let flags = Flags { worker_id: Some("5000".into()), ..Flags::default() };
        check_error(&[], flags, "invalid --worker-id: must be an integer from 0 to 1023");
        let flags = Flags { max_counters: Some("many".into()), ..Flags::default() };
        check_error(&[], flags, "invalid --max-counters: must be an integer from 1 to 1000000");
        // A good flag rescues a bad variable.
        let flags = Flags { worker_id: Some("3".into()), ..Flags::default() };
        assert_eq!(load(&[("IDGEN_MAX_BATCH", "20")], flags).unwrap().worker_id, 3);
        let flags = Flags { bind: Some("127.0.0.1:99999".into()), ..Flags::default() };
        assert_eq!(load(&[], flags).unwrap_err().name(), "--bind");
    }

    #[test]
    fn a_repeated_flag_takes_the_last_value() {
        use clap::Parser;
        let flags = Flags::try_parse_from(["idgen-server", "--worker-id", "1", "--worker-id", "2"])
            .unwrap();
        assert_eq!(flags.worker_id.as_deref(), Some("2"));
    }

    #[test]
    fn redis_settings_from_env_and_flags() {
        let config = load(&[], Flags::default()).unwrap();
        assert_eq!(config.redis_url, None);
        assert_eq!(config.redis_prefix, "idgen:");
        assert_eq!((config.counter_block, config.lease_ttl_ms), (1, 10_000));
        assert_eq!(config.rate_limit_fail, RateLimitFail::Open);
        assert!(!config.worker_id_fixed);

        let env = [
            ("IDGEN_REDIS_URL", "redis://:pw@127.0.0.1:7000/2"),
            ("IDGEN_REDIS_PREFIX", "ids:"),
            ("IDGEN_COUNTER_BLOCK", "1000"),
            ("IDGEN_LEASE_TTL_MS", "3000"),
            ("IDGEN_RATE_LIMIT_FAIL", "closed"),
            ("IDGEN_SEED_COUNTERS", "orders=1500, default=42"),
            ("IDGEN_WORKER_ID", "4"),
        ];
        let config = load(&env, Flags::default()).unwrap();
        assert_eq!(config.redis_url, Some(RedisUrl::new("redis://:pw@127.0.0.1:7000/2")));
        assert_eq!(config.redis_prefix, "ids:");
        assert_eq!((config.counter_block, config.lease_ttl_ms), (1000, 3000));
        assert_eq!(config.rate_limit_fail, RateLimitFail::Closed);
        assert_eq!(
            config.seed_counters,
            vec![
                (CounterName::parse("orders").unwrap(), 1500),
                (CounterName::parse("default").unwrap(), 42)
            ]
        );
        assert!(config.worker_id_fixed);

        let flags = Flags {
            counter_block: Some("5".into()),
            rate_limit_fail: Some("open".into()),
            redis_url: Some("redis://localhost:6380".into()),
            ..Flags::default()
        };
        let config = load(&env, flags).unwrap();
        assert_eq!(config.counter_block, 5);
        assert_eq!(config.rate_limit_fail, RateLimitFail::Open);
        assert_eq!(config.redis_url, Some(RedisUrl::new("redis://localhost:6380")));
        let flags = Flags { worker_id: Some("8".into()), ..Flags::default() };
        assert!(load(&[], flags).unwrap().worker_id_fixed);
    }

    #[test]
    fn bad_redis_settings_name_the_setting_and_hide_the_url() {
        let url = "invalid IDGEN_REDIS_URL: must be redis://[user:password@]host:port[/db] or rediss://[user:password@]host:port[/db] (TLS), or with IDGEN_REDIS_CLUSTER=true a comma-separated list of such URLs, all redis:// or all rediss://";
        check_error(&[("IDGEN_REDIS_URL", "http://host")], Flags::default(), url);
        check_error(&[("IDGEN_REDIS_URL", "redisss://:pw@host:6380")], Flags::default(), url);
        // redis-rs takes no URL fragment but `#insecure`.
        check_error(
            &[("IDGEN_REDIS_URL", "rediss://:pw@host:6380/#nocheck")],
            Flags::default(),
            url,
        );
        check_error(&[("IDGEN_REDIS_URL", "redis://a:1,redis://b:2")], Flags::default(), url);
        let cluster =
            [("IDGEN_REDIS_URL", "redis://a:1, redis://b:2"), ("IDGEN_REDIS_CLUSTER", "true")];
        let config = load(&cluster, Flags::default()).unwrap();
        assert!(config.redis_cluster);
        assert_eq!(config.redis_url.unwrap().urls(), ["redis://a:1", "redis://b:2"]);
        check_error(
            &[("IDGEN_COUNTER_BLOCK", "0")],
            Flags::default(),
            "invalid IDGEN_COUNTER_BLOCK: must be an integer from 1 to 1000000",
        );
        check_error(
            &[("IDGEN_LEASE_TTL_MS", "100")],
            Flags::default(),
            "invalid IDGEN_LEASE_TTL_MS: must be an integer from 300 to 3600000",
        );
        check_error(
            &[("IDGEN_RATE_LIMIT_FAIL", "sometimes")],
            Flags::default(),
            "invalid IDGEN_RATE_LIMIT_FAIL: must be open or closed",
        );
        let env = [("IDGEN_REDIS_WAIT_REPLICAS", "1"), ("IDGEN_REDIS_CLUSTER", "true")];
        assert_eq!(load(&env, Flags::default()).unwrap_err().name(), "IDGEN_REDIS_WAIT_REPLICAS");
        let flags = Flags { redis_wait_replicas: Some("2".into()), ..Flags::default() };
        assert_eq!(load(&[], flags).unwrap().redis_wait_replicas, 2);
        let flags = Flags { redis_prefix: Some("a b".into()), ..Flags::default() };
        assert_eq!(load(&[], flags).unwrap_err().name(), "--redis-prefix");
        for seeds in ["orders", "orders=x", "bad name=1"] {
            let env = [("IDGEN_REDIS_URL", "redis://h:1"), ("IDGEN_SEED_COUNTERS", seeds)];
            assert_eq!(load(&env, Flags::default()).unwrap_err().name(), "IDGEN_SEED_COUNTERS");
        }
        // Seeds only mean something in Redis mode.
        let error = load(&[("IDGEN_SEED_COUNTERS", "a=1")], Flags::default()).unwrap_err();
        assert_eq!(error.name(), "IDGEN_SEED_COUNTERS");
    }

    #[test]
    fn rediss_urls_are_accepted() {
        for good in [
            "rediss://:pw@host:6380",
            "rediss://user:pw@10.0.0.1:6380/2",
            "rediss://127.0.0.1:7000/#insecure",
        ] {
            let config = load(&[("IDGEN_REDIS_URL", good)], Flags::default()).unwrap();
            let url = config.redis_url.unwrap();
            assert_eq!(url, RedisUrl::new(good));
            assert!(url.is_tls(), "{good}");
        }
        assert!(!RedisUrl::new("redis://h:1").is_tls());
        let flags = Flags { redis_url: Some("rediss://h:6380".into()), ..Flags::default() };
        assert!(load(&[], flags).unwrap().redis_url.unwrap().is_tls());
        let cluster = [
            ("IDGEN_REDIS_URL", "rediss://a:1/#insecure, rediss://b:2/#insecure"),
            ("IDGEN_REDIS_CLUSTER", "true"),
        ];
        let config = load(&cluster, Flags::default()).unwrap();
        assert_eq!(config.redis_url.unwrap().urls().len(), 2);
        // Still invalid: a TLS URL with a bad address, and cluster nodes of mixed schemes.
        for bad in [
            vec![("IDGEN_REDIS_URL", "rediss://")],
            vec![("IDGEN_REDIS_URL", "rediss://:pw@0.0.0.0:6380")],
            vec![("IDGEN_REDIS_URL", "rediss://a:1,redis://b:2"), ("IDGEN_REDIS_CLUSTER", "true")],
            vec![("IDGEN_REDIS_URL", "redis://a:1,rediss://b:2"), ("IDGEN_REDIS_CLUSTER", "true")],
        ] {
            let error = load(&bad, Flags::default()).unwrap_err();
            assert_eq!(error.name(), "IDGEN_REDIS_URL", "{bad:?}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
        // A rediss:// URL hides its password like a redis:// one.
        let url = RedisUrl::new("rediss://user:hunter2@db.internal:6380/#insecure");
        assert_eq!(
            url.redact("TLS to rediss://user:hunter2@db.internal:6380/#insecure failed: hunter2"),
            "TLS to <IDGEN_REDIS_URL> failed: <password>"
        );
        assert!(
            !format!("{:?}", Config { redis_url: Some(url), ..Config::default() })
                .contains("hunter2")
        );
    }

    #[test]
    fn the_redis_url_never_shows() {
        let url = RedisUrl::new("redis://user:hunter2@db.internal:6379/0");
        let config = Config { redis_url: Some(url.clone()), ..Config::default() };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("db.internal"), "{debug}");
        assert_eq!(
            url.redact("failed on redis://user:hunter2@db.internal:6379/0 with hunter2"),
            "failed on <IDGEN_REDIS_URL> with <password>"
        );
        assert_eq!(RedisUrl::new("redis://:pw@h:1").password(), Some("pw"));
        assert_eq!(RedisUrl::new("redis://h:1").password(), None);
    }

    #[test]
    fn bind_shapes() {
        for good in ["127.0.0.1:0", "[::1]:8080", "0.0.0.0:80", "localhost:8080"] {
            assert!(bind_address_is_valid(good), "{good}");
        }
        for bad in ["", "127.0.0.1", ":80", "127.0.0.1:http", "1.2.3.4:65536", "a b:80"] {
            assert!(!bind_address_is_valid(bad), "{bad}");
        }
    }
}
