//! The servers of a bench run: the embedded and rate-limited ones, the Redis-mode ones (each
//! on its own redis-server) when this machine and build have them, and the redis-server that
//! `redis-benchmark` runs against. Dropping the [`Fleet`] stops them all.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::model::{ServerKey, ServerReport};
use crate::process::{Redis, Server, TempDir};

/// Rate limit (and burst) for the "on" servers: the server's maximum, 1,000,000 per second,
/// far above what wrk sends on this machine, so it never rejects and only its bookkeeping
/// is measured.
const HIGH_LIMIT: &str = "1000000";

/// A started server and, in Redis mode, the redis-server behind it (dropped after it).
pub struct Running {
    pub key: ServerKey,
    pub server: Server,
    command: String,
    /// What its requests must carry (the keyed server's `Authorization`).
    headers: Vec<String>,
    _redis: Option<Redis>,
    /// The keyed server's keys file.
    _keys: Option<TempDir>,
}

/// Every server of a run; dropping it stops them all.
pub struct Fleet {
    pub running: Vec<Running>,
    /// The redis-server `redis-benchmark` runs against; `None` without Redis rows.
    pub redis_baseline: Option<Redis>,
    pub redis_skipped: Option<String>,
}

impl Fleet {
    /// The embedded servers, then the Redis-mode ones when this build and machine have them.
    /// Each embedded start's time-to-ready is added to `ready_ms`.
    pub fn start(binary: &Path, ready_ms: &mut Vec<f64>) -> anyhow::Result<Fleet> {
        let mut running = Vec::new();
        for key in [ServerKey::Embedded, ServerKey::RateLimited, ServerKey::Keyed] {
            let server = start_server(binary, key, None)?;
            ready_ms.push(server.server.ready().as_secs_f64() * 1e3);
            running.push(server);
        }
        let (redis_baseline, redis_skipped) = match start_redis_servers(binary) {
            Ok((servers, baseline)) => {
                running.extend(servers);
                (Some(baseline), None)
            }
            Err(reason) => {
                eprintln!("xtask: Redis rows skipped: {reason:#}");
                (None, Some(format!("{reason:#}")))
            }
        };
        Ok(Fleet { running, redis_baseline, redis_skipped })
    }

    pub fn server(&self, key: ServerKey) -> &Server {
        self.running
            .iter()
            .find(|running| running.key == key)
            .map(|running| &running.server)
            .expect("cases are only planned for servers that run")
    }

    /// The headers every request to `key` carries.
    pub fn headers(&self, key: ServerKey) -> &[String] {
        self.running
            .iter()
            .find(|running| running.key == key)
            .map_or(&[], |running| running.headers.as_slice())
    }

    pub fn address(&self, key: ServerKey) -> SocketAddr {
        self.server(key).address()
    }

    /// Idle and peak RSS as of now: call after the last case.
    pub fn reports(&self) -> Vec<ServerReport> {
        self.running
            .iter()
            .map(|running| ServerReport {
                key: running.key,
                mode: running.server.mode().to_owned(),
                command: running.command.clone(),
                ready_ms: running.server.ready().as_secs_f64() * 1e3,
                idle_rss_kib: running.server.idle_rss_kib(),
                peak_rss_kib: running.server.peak_rss_kib().ok(),
            })
            .collect()
    }
}

/// Time to ready (ms) of `cycles` starts of the embedded server, cold-ish: a fresh data dir
/// each time, nothing else running on it; each is stopped before the next starts.
pub fn time_to_ready(binary: &Path, cycles: usize) -> anyhow::Result<Vec<f64>> {
    let mut ready_ms = Vec::new();
    for cycle in 0..cycles {
        let server = Server::start(binary, &format!("ready-{cycle}"), &[], &[])?;
        ready_ms.push(server.ready().as_secs_f64() * 1e3);
    }
    Ok(ready_ms)
}

fn flags(key: ServerKey) -> Vec<String> {
    match key {
        ServerKey::RateLimited | ServerKey::RedisRateLimited => {
            ["--rate-limit-per-second", HIGH_LIMIT, "--rate-limit-burst", HIGH_LIMIT]
                .map(str::to_owned)
                .to_vec()
        }
        _ => Vec::new(),
    }
}

/// `IDGEN_COUNTER_BLOCK` for the Redis servers (`None`: the server's default).
fn counter_block(key: ServerKey) -> Option<&'static str> {
    match key {
        ServerKey::RedisBlock1 => Some("1"),
        ServerKey::RedisBlock1000 => Some("1000"),
        _ => None,
    }
}

fn start_server(binary: &Path, key: ServerKey, redis: Option<Redis>) -> anyhow::Result<Running> {
    let flags = flags(key);
    let mut env = Vec::new();
    let (keys, headers) = match key {
        ServerKey::Keyed => {
            let (dir, file, secret) = keys_file(binary)?;
            env.push(("IDGEN_API_KEYS_FILE".to_owned(), file));
            (Some(dir), vec![format!("Authorization: Bearer {secret}")])
        }
        _ => (None, Vec::new()),
    };
    if let Some(redis) = &redis {
        env.push(("IDGEN_REDIS_URL".to_owned(), redis.url()));
    }
    if let Some(block) = counter_block(key) {
        env.push(("IDGEN_COUNTER_BLOCK".to_owned(), block.to_owned()));
    }
    let server = Server::start(binary, key.label(), &flags, &env)
        .with_context(|| format!("start the {} server", key.label()))?;
    let mut command = String::new();
    for (name, value) in &env {
        let value = match name.as_str() {
            "IDGEN_REDIS_URL" => "redis://127.0.0.1:$REDIS_PORT".to_owned(),
            "IDGEN_API_KEYS_FILE" => "$TMPDIR/keys.toml".to_owned(),
            _ => value.clone(),
        };
        command.push_str(&format!("{name}={value} "));
    }
    command.push_str("target/release/idgen-server --bind 127.0.0.1:0 --data-dir $TMPDIR/...");
    for flag in &flags {
        command.push(' ');
        command.push_str(flag);
    }
    Ok(Running { key, server, command, headers, _redis: redis, _keys: keys })
}

/// A keys file with one key from `idgen-server keys new`: its directory, its path and the
/// key's secret.
fn keys_file(binary: &Path) -> anyhow::Result<(TempDir, String, String)> {
    let output = Command::new(binary)
        .args(["keys", "new", "--name", "bench"])
        .output()
        .context("run idgen-server keys new")?;
    if !output.status.success() {
        bail!("idgen-server keys new failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8(output.stdout).context("keys new printed UTF-8")?;
    let (secret, entry) = text.split_once('\n').context("keys new printed a secret line")?;
    let dir = TempDir::new("keys")?;
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, entry).context("write the keys file")?;
    Ok((dir, file.display().to_string(), secret.trim().to_owned()))
}

/// The three Redis-mode servers (each on its own redis-server, so their keys cannot mix) and
/// a fourth redis-server for redis-benchmark. Fails, with the reason the report gives, when
/// redis-server is missing or the server build has no Redis mode.
fn start_redis_servers(binary: &Path) -> anyhow::Result<(Vec<Running>, Redis)> {
    if Command::new("redis-server").arg("--version").output().is_err() {
        bail!("redis-server is not installed (`apt-get install redis-server`)");
    }
    let mut servers = Vec::new();
    for key in [ServerKey::RedisBlock1, ServerKey::RedisBlock1000, ServerKey::RedisRateLimited] {
        let redis = Redis::start(&format!("redis-{}", key.label()))?;
        let running = start_server(binary, key, Some(redis)).context(
            "idgen-server did not start with IDGEN_REDIS_URL and IDGEN_COUNTER_BLOCK set",
        )?;
        if running.server.mode() != "redis" {
            bail!(
                "this idgen-server build has no Redis mode (with IDGEN_REDIS_URL set it started \
                 in mode {:?})",
                running.server.mode()
            );
        }
        servers.push(running);
    }
    let baseline = Redis::start("redis-baseline")?;
    Ok((servers, baseline))
}
