//! Every setting of the server, declared once: its field, variable, flag value name, default,
//! parser, range, the expectation an error quotes, and its documentation. `Config`, `Flags`,
//! `Setting`, `--help` and the tables in docs/configuration.md are all generated from here.
//!
//! Adding a setting is one entry here (plus, if its values are a new type, a parser in
//! `values.rs`), then `UPDATE_DOCS=1 cargo test -p idgen-server --lib config` to regenerate the
//! docs table.

use std::net::IpAddr;
use std::path::PathBuf;

use idgen_core::counter::CounterName;
use idgen_core::snowflake::Layout;

use super::declare::settings;
use super::values::{
    AccessLog, LogFormat, RateLimitFail, RedisUrl, bind_address_is_valid, hostname, is_origin,
    now_ms, number, parse_ip_list, parse_seeds, worker_id,
};

/// Upper bounds of the numeric settings (generous; they exist to catch typos).
pub const MAX_BACKWARD_LIMIT_MS: u64 = 60_000;
pub const MAX_BATCH_LIMIT: u32 = 1_000_000;
pub const MAX_COUNTERS_LIMIT: usize = 1_000_000;
pub const RATE_LIMIT_MAX: u32 = 1_000_000;
pub const COUNTER_BLOCK_MAX: u64 = 1_000_000;
pub const LEASE_TTL_MIN_MS: u64 = 300;
pub const LEASE_TTL_MAX_MS: u64 = 3_600_000;
pub const REDIS_PREFIX_MAX_LEN: usize = 64;
pub const WAIT_REPLICAS_MAX: u32 = 16;

/// The sections of docs/configuration.md that list settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Server,
    Security,
    Redis,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Server, Group::Security, Group::Redis];

    /// The marker name of the group's table in docs/configuration.md.
    pub fn marker(self) -> &'static str {
        match self {
            Group::Server => "server",
            Group::Security => "security",
            Group::Redis => "redis",
        }
    }
}

settings! {
    Bind => bind: String {
        env: "IDGEN_BIND", group: Server, value: "HOST:PORT",
        default: "127.0.0.1:8080".to_owned(), shown: "`127.0.0.1:8080`",
        help: "host:port to listen on (port 0 picks a free one)",
        parse: |text| Some(text.to_owned()),
        valid: |bind| bind_address_is_valid(bind),
        expect: "must be host:port, e.g. 127.0.0.1:8080 (port 0 picks a free port)",
        doc: "`host:port` to listen on. Port `0` picks a free port; the start-up line prints the real one. Use `0.0.0.0:8080` to accept connections from other hosts.",
    }
    DataDir => data_dir: PathBuf {
        env: "IDGEN_DATA_DIR", group: Server, value: "DIR",
        default: PathBuf::from("./idgen-data"), shown: "`./idgen-data`",
        help: "Directory for durable state, created if missing",
        parse: |text| Some(PathBuf::from(text)),
        valid: |dir| !dir.as_os_str().is_empty(),
        expect: "must be a directory this process can create and write",
        doc: "Directory for durable state in embedded mode (created if missing). It holds `state.json` (high-water marks) and a `lock` file: one server per directory; a second one refuses to start.",
    }
    WorkerId => worker_id: u16 {
        env: "IDGEN_WORKER_ID", group: Server, value: "N",
        default: 0, shown: "`0`",
        help: "Snowflake worker id, 0..=1023 (the layout's range), or ordinal[+N] (the host name's last number)",
        parse: |text| worker_id(text, hostname().as_deref()),
        // Its range depends on IDGEN_SNOWFLAKE_LAYOUT: checked with it (`Config::finish`).
        valid: |_| true,
        expect: "must be an integer from 0 to 1023, or ordinal or ordinal+N (the number after the last - of the host name, plus N)",
        doc: "Snowflake worker id, `0..=1023` (the layout's range: `0..=31` under `js53`, `0..=65535` under `sonyflake`). Every server that issues snowflakes with the same epoch must have its own. `ordinal` takes the number after the last `-` of the host name (`$HOSTNAME`, else the kernel's): a Kubernetes StatefulSet names its pods `idgen-0`, `idgen-1`, ...; `ordinal+N` adds N (two StatefulSets sharing an epoch). The default 0 is safe only for a single embedded node; the start-up line says `default` while it is in use.",
    }
    SnowflakeEpochMs => snowflake_epoch_ms: u64 {
        env: "IDGEN_SNOWFLAKE_EPOCH_MS", group: Server, value: "MS",
        default: idgen_core::snowflake::DEFAULT_EPOCH_MS,
        shown: "`1577836800000` (2020-01-01T00:00:00Z)",
        help: "Unix ms that snowflake time 0 stands for",
        parse: number,
        valid: |epoch| *epoch <= now_ms(),
        expect: "must be an integer number of ms since the Unix epoch, not in the future",
        doc: "Unix ms that snowflake timestamp 0 stands for. 41 bits of ms cover about 69 years from it. Never change it for a running deployment: IDs would no longer sort or be unique against older ones.",
    }
    SnowflakeLayout => snowflake_layout: Layout {
        env: "IDGEN_SNOWFLAKE_LAYOUT", group: Server, value: "LAYOUT",
        default: Layout::TWITTER, shown: "`twitter`",
        help: "Snowflake bits: twitter, sonyflake, js53 or custom:T/W/S[/unit ms]",
        parse: |text| Layout::parse(text.trim()).ok(),
        valid: |_| true,
        expect: "must be twitter, sonyflake, js53 or custom:<time bits>/<worker bits>/<sequence bits>[/<unit ms>] (at least 1 time bit, at most 16 worker bits, 1 to 16 sequence bits, at most 63 bits in all, a unit of 1 to 1000 ms)",
        doc: "How a snowflake's bits are laid out. `twitter` (the default): 41 bits of ms (69.7 years from the epoch), 10 of worker id (1024), 12 of sequence (4096 per ms). `sonyflake`: 39 bits of 10 ms (174 years), 8 of sequence (256 per 10 ms), 16 of machine id (65,536), in Sonyflake's order (the machine id in the low bits). `js53`: every ID at most 2^53 - 1, which a JavaScript `Number` holds exactly: 41 bits of ms (69.7 years), 5 of worker id (32), 7 of sequence (128 per ms, 128,000 a second per node). `custom:T/W/S[/U]`: T time bits of U ms (default 1), W worker bits, S sequence bits, in Twitter's order. The epoch plus the time bits must reach at least 10 years past now, or the server exits 2 saying how many are left. The layout is recorded in the data dir and in Redis: starting with another one on the same state is refused, as changing it in place would break ordering and uniqueness.",
    }
    SnowflakeMaxBackwardMs => snowflake_max_backward_ms: u64 {
        env: "IDGEN_SNOWFLAKE_MAX_BACKWARD_MS", group: Server, value: "MS",
        default: idgen_core::snowflake::DEFAULT_MAX_BACKWARD_MS, shown: "`1000`",
        help: "How far the clock may step back before snowflakes are refused",
        parse: number,
        valid: |ms| *ms <= MAX_BACKWARD_LIMIT_MS,
        expect: format!("must be an integer from 0 to {MAX_BACKWARD_LIMIT_MS}"),
        doc: "How far the wall clock may step back before snowflakes are refused (503, `/readyz` 503) until it catches up; also how far ahead of the clock the generator may borrow when a millisecond's 4096 sequence numbers are used up.",
    }
    MaxBatch => max_batch: u32 {
        env: "IDGEN_MAX_BATCH", group: Server, value: "N",
        default: 10_000, shown: "`10000`",
        help: "Largest count per request",
        parse: number,
        valid: |max| (1..=MAX_BATCH_LIMIT).contains(max),
        expect: format!("must be an integer from 1 to {MAX_BATCH_LIMIT}"),
        doc: "Largest `count` accepted by `/v1/ids/{kind}`.",
    }
    MaxCounters => max_counters: usize {
        env: "IDGEN_MAX_COUNTERS", group: Server, value: "N",
        default: 10_000, shown: "`10000`",
        help: "Most distinct counter names",
        parse: number,
        valid: |max| (1..=MAX_COUNTERS_LIMIT).contains(max),
        expect: format!("must be an integer from 1 to {MAX_COUNTERS_LIMIT}"),
        doc: "Most distinct counter names; a request for a new name beyond it gets 400 `too_many_counters`. Bounds memory and the state file. `DELETE /v1/counters/{name}` (admin) frees a name's slot.",
    }
    RateLimitPerSecond => rate_limit_per_second: u32 {
        env: "IDGEN_RATE_LIMIT_PER_SECOND", group: Server, value: "N",
        default: 0, shown: "`0` (off)",
        help: "Requests per second per client IP on the ID routes, 0 = off",
        parse: number,
        valid: |rate| *rate <= RATE_LIMIT_MAX,
        expect: format!("must be an integer from 0 (off) to {RATE_LIMIT_MAX}"),
        doc: "Requests per second per client IP on the ID routes (GCRA token bucket). `0` disables rate limiting. In Redis mode the limit is shared by all nodes, within the bound given in [Shared rate limit](#shared-rate-limit).",
    }
    RateLimitBurst => rate_limit_burst: u32 {
        env: "IDGEN_RATE_LIMIT_BURST", group: Server, value: "N",
        default: 0, shown: "`0` (= the per-second rate)",
        help: "Burst per client IP, 0 = same as the rate",
        parse: number,
        valid: |burst| *burst <= RATE_LIMIT_MAX,
        expect: format!("must be an integer from 0 (same as the rate) to {RATE_LIMIT_MAX}"),
        doc: "Bucket size: how many requests a client may send at once.",
    }
    TrustedProxies => trusted_proxies: Vec<IpAddr> {
        env: "IDGEN_TRUSTED_PROXIES", group: Server, value: "IP,IP",
        default: Vec::new(), shown: "empty",
        help: "Comma-separated proxy IPs whose X-Forwarded-For is believed",
        parse: |text| parse_ip_list(text).ok(),
        valid: |_| true,
        expect: "must be a comma-separated list of IP addresses, e.g. 10.0.0.1,10.0.0.2",
        doc: "Comma-separated IP addresses of reverse proxies whose `X-Forwarded-For` is believed. By default none is, and the TCP peer address is the client. For a trusted peer, the header is walked from the right, skipping trusted proxies, and the first other address is the client (the leftmost entry is whatever the client typed, so it is never trusted blindly).",
    }
    Log => log: String {
        env: "IDGEN_LOG", group: Server, value: "FILTER",
        default: "info".to_owned(), shown: "`info`",
        help: "Log filter, e.g. info or idgen_server=debug",
        parse: |text| Some(text.to_owned()),
        valid: |filter| tracing_subscriber::EnvFilter::try_new(filter).is_ok(),
        expect: "must be a log filter, e.g. info or idgen_server=debug,warn",
        doc: "Log filter in `tracing` `EnvFilter` syntax, e.g. `warn,idgen_server=debug`. Logs go to stderr; the one start-up line goes to stdout.",
    }
    LogFormat => log_format: LogFormat {
        env: "IDGEN_LOG_FORMAT", group: Server, value: "text|json",
        default: LogFormat::Text, shown: "`text`",
        help: "Log line format: text or json (one object per line)",
        parse: |text| text.parse().ok(),
        valid: |_| true,
        expect: "must be text or json",
        doc: "`text`: human-readable lines; `json`: one JSON object per line (`timestamp`, `level`, `target`, the event's fields, `request_id` for lines written while a request runs), for a log pipeline. When `IDGEN_LOG` is unset, `RUST_LOG` is honoured as the filter.",
    }
    AccessLog => access_log: AccessLog {
        env: "IDGEN_ACCESS_LOG", group: Server, value: "all|errors|off",
        default: AccessLog::Errors, shown: "`errors`",
        help: "Access-log lines: all requests, errors (4xx and 5xx) or off",
        parse: |text| text.parse().ok(),
        valid: |_| true,
        expect: "must be all, errors or off",
        doc: "One `info` line per request (target `idgen_server::access`: method, route pattern, status, duration, client address after `IDGEN_TRUSTED_PROXIES`, the API key's name, request id): `all`, only those answered with 4xx or 5xx (`errors`), or `off`. `all` writes a line per ID request: at full load on 2 cores it about halves the throughput ([operations.md](operations.md#access-log)).",
    }
    MetricsCounterLabels => metrics_counter_labels: bool {
        env: "IDGEN_METRICS_COUNTER_LABELS", group: Server, value: "BOOL",
        default: false, shown: "`false`",
        help: "Label counter metrics with counter names: true or false",
        parse: number,
        valid: |_| true,
        expect: "must be true or false",
        doc: "`true`: `/metrics` and `/v1/status` give per-counter-name figures (`counter` label). Off by default: counter names are chosen by clients, and a label per name is unbounded.",
    }
    ApiKeysFile => api_keys_file: Option<PathBuf> {
        env: "IDGEN_API_KEYS_FILE", group: Security, value: "PATH",
        default: None, shown: "unset (open: no key needed)",
        help: "TOML file of API keys (SHA-256 of each secret); set: every ID route needs a key",
        parse: |text| Some(Some(PathBuf::from(text))),
        valid: |_| true,
        expect: "must be the path of a readable API keys file",
        doc: "A TOML file of `[[key]]` entries (name, `sha256` of the secret, optional scopes, rate, burst, daily quota, new-counter cap; see [security.md](security.md#api-keys)). When set, every ID, decode and kinds route needs a key (`Authorization: Bearer <key>` or `X-API-Key: <key>`), and `/metrics`, `/status`, `/v1/status` need one with the `admin` scope. Re-read on SIGHUP (a bad file keeps the keys in use and logs why); a bad file at start exits 2 naming the line. `idgen-server keys new` makes a key.",
    }
    AdminBind => admin_bind: Option<String> {
        env: "IDGEN_ADMIN_BIND", group: Security, value: "HOST:PORT",
        default: None, shown: "unset (admin routes on the main listener)",
        help: "A second listener for /metrics, /status and /v1/status only (e.g. 127.0.0.1:9090)",
        parse: |text| Some(Some(text.to_owned())),
        valid: |bind| bind.as_deref().is_none_or(bind_address_is_valid),
        expect: "must be host:port, e.g. 127.0.0.1:9090",
        doc: "`host:port` of a second listener that serves only the admin routes (`/metrics`, `/status`, `/v1/status`) and the probes, without a key: protect it by where it listens (e.g. `127.0.0.1:9090`, or a port only the monitoring network reaches). The main listener then answers 404 for the admin routes.",
    }
    CorsOrigins => cors_origins: Vec<String> {
        env: "IDGEN_CORS_ORIGINS", group: Security, value: "ORIGIN,ORIGIN",
        default: Vec::new(), shown: "empty (no CORS headers)",
        help: "Browser origins allowed to call the API, e.g. https://app.example.com; * for any",
        parse: |text| Some(text.split(',').map(|origin| origin.trim().to_owned()).collect()),
        valid: |origins| origins.iter().all(|origin| is_origin(origin)),
        expect: "must be a comma-separated list of origins (scheme://host[:port], no path), or *; * only without IDGEN_API_KEYS_FILE",
        doc: "Exact origins (`https://app.example.com`, comma-separated) whose browser pages may call the API: their preflight `OPTIONS` is answered and answers carry `Access-Control-Allow-Origin`. `*` allows any origin, only without API keys (a page anyone can open would otherwise spend a key it holds).",
    }
    TlsCert => tls_cert: Option<PathBuf> {
        env: "IDGEN_TLS_CERT", group: Security, value: "PATH",
        default: None, shown: "unset (plain HTTP)",
        help: "PEM certificate chain: serve HTTPS (with IDGEN_TLS_KEY)",
        parse: |text| Some(Some(PathBuf::from(text))),
        valid: |_| true,
        expect: "must be the path of a PEM certificate chain, set together with IDGEN_TLS_KEY",
        doc: "PEM certificate chain (leaf first). With `IDGEN_TLS_KEY` the listener (and the admin listener) serves HTTPS only (rustls, TLS 1.2 and 1.3). Both files are re-read on SIGHUP: a renewed certificate needs no restart; a bad pair keeps the one in use and logs why.",
    }
    TlsKey => tls_key: Option<PathBuf> {
        env: "IDGEN_TLS_KEY", group: Security, value: "PATH",
        default: None, shown: "unset",
        help: "PEM private key of IDGEN_TLS_CERT",
        parse: |text| Some(Some(PathBuf::from(text))),
        valid: |_| true,
        expect: "must be the path of a PEM private key (PKCS#8, PKCS#1 or SEC1), set together with IDGEN_TLS_CERT",
        doc: "The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1). Never logged.",
    }
    RedisUrl => redis_url: Option<RedisUrl> {
        env: "IDGEN_REDIS_URL", group: Redis, value: "URL",
        default: None, shown: "unset (embedded mode)",
        help: "Redis mode: redis://[user:password@]host:port[/db], rediss:// for TLS",
        parse: |text| Some(Some(RedisUrl::new(text))),
        valid: |url| url.as_ref().is_none_or(RedisUrl::is_valid),
        expect: "must be redis://[user:password@]host:port[/db] or rediss://[user:password@]host:port[/db] (TLS), or with IDGEN_REDIS_CLUSTER=true a comma-separated list of such URLs, all redis:// or all rediss://",
        doc: "`redis://[user:password@]host:port[/db]`, or `rediss://[user:password@]host:port[/db]` for **TLS** (see [Redis over TLS](#redis-over-tls-rediss) below). The URL may hold a password: it is never printed or logged (error lines say `IDGEN_REDIS_URL` instead). `IDGEN_REDIS_URL_FILE=path` reads it from a file (a mounted secret); as a flag (`--redis-url`) it is visible to every local user in the process list, and the server warns.",
    }
    RedisCluster => redis_cluster: bool {
        env: "IDGEN_REDIS_CLUSTER", group: Redis, value: "BOOL",
        default: false, shown: "`false`",
        help: "The Redis URL lists Redis Cluster nodes, comma-separated: true or false",
        parse: number,
        valid: |_| true,
        expect: "must be true or false",
        doc: "`true`: connect to **Redis Cluster**. `IDGEN_REDIS_URL` is then a comma-separated list of seed nodes, e.g. `redis://10.0.0.1:7000,redis://10.0.0.2:7000`; the cluster's topology is discovered from them. Every key a script touches shares one hash slot (`{hash tags}`), so everything works on a cluster.",
    }
    RedisWaitReplicas => redis_wait_replicas: u32 {
        env: "IDGEN_REDIS_WAIT_REPLICAS", group: Redis, value: "N",
        default: 0, shown: "`0` (off)",
        help: "Replicas each counter, lease and mark write must reach before use, 0 = off",
        parse: number,
        valid: |replicas| *replicas <= WAIT_REPLICAS_MAX,
        expect: format!(
            "must be an integer from 0 (off) to {WAIT_REPLICAS_MAX}, and 0 with IDGEN_REDIS_CLUSTER=true (not supported there yet)"
        ),
        doc: "N > 0: every write that guards uniqueness (counter `INCRBY`, seeds, worker-id lease and mark, timestamp mark) is followed by `WAIT N 300` on the same connection, and its result is used only if N replicas acknowledged it; otherwise the request gets 503 (the values are skipped: a gap). This closes the failover hole described in [operations.md](operations.md#replication-and-failover-the-caveat) at the cost of a replica round trip per write, and of counters stopping while fewer than N replicas are connected. Pair it with segment mode. 0 to 16; not supported with `IDGEN_REDIS_CLUSTER=true` yet (refused at start-up).",
    }
    RedisPrefix => redis_prefix: String {
        env: "IDGEN_REDIS_PREFIX", group: Redis, value: "PREFIX",
        default: "idgen:".to_owned(), shown: "`idgen:`",
        help: "Prefix of every Redis key",
        parse: |text| Some(text.to_owned()),
        valid: |prefix| {
            (1..=REDIS_PREFIX_MAX_LEN).contains(&prefix.len())
                && !prefix.chars().any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}')
        },
        expect: format!(
            "must be 1 to {REDIS_PREFIX_MAX_LEN} characters without spaces, braces or control characters, e.g. idgen:"
        ),
        doc: "Prefix of every key idgen writes (1 to 64 characters, no spaces or braces). Give two deployments sharing one Redis different prefixes.",
    }
    CounterBlock => counter_block: u64 {
        env: "IDGEN_COUNTER_BLOCK", group: Redis, value: "N",
        default: 1, shown: "`1`",
        help: "Counter values taken from Redis at once, 1 = strict global order",
        parse: number,
        valid: |block| (1..=COUNTER_BLOCK_MAX).contains(block),
        expect: format!("must be an integer from 1 to {COUNTER_BLOCK_MAX}"),
        doc: "Counter values a node takes from Redis at once. `1` (*strict*): every request's values come from an `INCRBY` sent after it arrived (requests that arrive together share one, see below), so counter values are **strictly increasing across all nodes**, and a request fails (503) while Redis is down. `> 1`: *segment mode*, see below. 1 to 1000000.",
    }
    LeaseTtlMs => lease_ttl_ms: u64 {
        env: "IDGEN_LEASE_TTL_MS", group: Redis, value: "MS",
        default: 10_000, shown: "`10000`",
        help: "Lifetime of the snowflake worker-id lease in Redis",
        parse: number,
        valid: |ttl| (LEASE_TTL_MIN_MS..=LEASE_TTL_MAX_MS).contains(ttl),
        expect: format!("must be an integer from {LEASE_TTL_MIN_MS} to {LEASE_TTL_MAX_MS}"),
        doc: "Lifetime of a node's snowflake worker-id lease. It is renewed every third of it; a node that could not renew stops issuing snowflakes a fifth of it (at least 50 ms) before the lease would expire. A crashed node's worker id becomes free after this long. 300 to 3600000.",
    }
    RateLimitFail => rate_limit_fail: RateLimitFail {
        env: "IDGEN_RATE_LIMIT_FAIL", group: Redis, value: "open|closed",
        default: RateLimitFail::Open, shown: "`open`",
        help: "Shared rate limit when Redis is down: open or closed",
        parse: |text| text.parse().ok(),
        valid: |_| true,
        expect: "must be open or closed",
        doc: "What the shared rate limit does when Redis cannot be asked: `open` lets the request through (a warning is logged with the running count of such requests), `closed` answers 503 with `Retry-After`.",
    }
    SeedCounters => seed_counters: Vec<(CounterName, u64)> {
        env: "IDGEN_SEED_COUNTERS", group: Redis, value: "NAME=N,NAME=N",
        default: Vec::new(), shown: "empty",
        help: "Raise counters to at least these values at start (Redis mode)",
        parse: |text| parse_seeds(text).ok(),
        valid: |_| true,
        expect: "must be a comma-separated list of name=value (e.g. orders=1500,default=42), and needs IDGEN_REDIS_URL",
        doc: "`name=value,name=value`: at start-up, raise each counter to at least `value` (never lowers one). Use it when moving from an embedded data dir: seed each counter with the value in `state.json` (`counters`), and the next value is above everything the embedded server issued. Values up to 2^53. Refused without `IDGEN_REDIS_URL`.",
    }
}
