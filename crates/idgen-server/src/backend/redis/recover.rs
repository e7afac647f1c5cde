//! `idgen-server recover`: the operator's way out after the Redis store lost data. It raises
//! every counter to a floor above anything issued (the highest value recorded in the nodes'
//! data dirs, the operator's `--counter-floor NAME=N`, and `--min-counter-floor N` for every
//! counter), raises the recorded snowflake and timestamp marks, waits one lease TTL (so every
//! node still issuing under a pre-loss lease has stopped), and sets a new store identity marked
//! as recovered, which every node adopts at its next tick. It never lowers anything.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use idgen_core::counter::CounterName;

use super::lease;
use super::node::NodeFile;
use super::store::{RedisStore, TimeMark};
use crate::config::{Config, ConfigError, RecoverArgs, Setting, Source};

/// The floors `recover` applies.
#[derive(Debug, Default, PartialEq, Eq)]
struct Floors {
    counters: BTreeMap<CounterName, u64>,
    workers: BTreeMap<u16, u64>,
    timestamp_ms: u64,
}

/// Runs the recovery; returns the summary line it prints.
pub fn run(config: &Config, args: &RecoverArgs) -> anyhow::Result<String> {
    let Some(url) = &config.redis_url else {
        return Err(ConfigError::new(
            Setting::RedisUrl,
            Source::Env,
            "recover works on a Redis store: set IDGEN_REDIS_URL (an embedded data dir never loses acknowledged marks)",
        )
        .into());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = RedisStore::new(
        url,
        config.redis_cluster,
        &config.redis_prefix,
        config.redis_wait_replicas,
    )
    .map_err(|error| super::open::unreachable_setting(url, &error))?;
    let mut floors = Floors::default();
    for text in &args.counter_floors {
        let (name, value) = parse_floor(text)?;
        raise(floors.counters.entry(name).or_default(), value);
    }
    // The node files are checked now (a wrong path fails at once) and read again after the
    // wait: a node still running writes what it was handed into its file when it finds the
    // loss, and at least every second after that.
    for dir in &args.node_data_dirs {
        NodeFile::load(dir).with_context(|| format!("read {}", dir.display()))?;
    }
    let wait = (!args.no_wait).then(|| Duration::from_millis(config.lease_ttl_ms));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start a runtime for recover")?;
    let layout = config.snowflake_layout;
    runtime.block_on(apply(
        &store,
        floors,
        &args.node_data_dirs,
        args.min_counter_floor,
        wait,
        layout,
    ))
}

fn raise(value: &mut u64, floor: u64) {
    *value = (*value).max(floor);
}

fn add_node_file(floors: &mut Floors, file: &NodeFile) {
    for (name, value) in &file.counters {
        if let Ok(name) = CounterName::parse(name) {
            raise(floors.counters.entry(name).or_default(), *value);
        }
    }
    for (worker, mark) in &file.workers {
        raise(floors.workers.entry(*worker).or_default(), *mark);
    }
    raise(&mut floors.timestamp_ms, file.timestamp_ms);
}

fn parse_floor(text: &str) -> anyhow::Result<(CounterName, u64)> {
    let Some((name, value)) = text.split_once('=') else {
        bail!("--counter-floor {text:?}: expected NAME=N");
    };
    let name = CounterName::parse(name.trim())
        .map_err(|error| anyhow::anyhow!("--counter-floor {text:?}: {error}"))?;
    let value = value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--counter-floor {text:?}: N must be an integer"))?;
    Ok((name, value))
}

async fn apply(
    store: &RedisStore,
    mut floors: Floors,
    node_data_dirs: &[std::path::PathBuf],
    min_counter_floor: u64,
    wait: Option<Duration>,
    layout: idgen_core::snowflake::Layout,
) -> anyhow::Result<String> {
    store.ping().await.context("reach Redis")?;
    if let Some(wait) = wait {
        eprintln!(
            "recover: waiting {} ms (one lease TTL) so that every pre-loss lease has expired",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
    }
    // After the wait: every running node has found the loss and recorded what it handed out.
    for dir in node_data_dirs {
        let file = NodeFile::load(dir).with_context(|| format!("read {}", dir.display()))?;
        add_node_file(&mut floors, &file);
    }
    for name in store.counter_names().await.context("list the counters in Redis")? {
        floors.counters.entry(name).or_default();
    }
    for value in floors.counters.values_mut() {
        raise(value, min_counter_floor);
    }
    for (name, floor) in &floors.counters {
        store.seed_counter(name, *floor).await.with_context(|| format!("raise counter {name}"))?;
    }
    for (worker, mark) in &floors.workers {
        store
            .raise_worker_floor(*worker, *mark)
            .await
            .with_context(|| format!("raise worker {worker}'s mark"))?;
    }
    let now_ms =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    store
        .raise_time_mark(TimeMark::Timestamp, floors.timestamp_ms, floors.timestamp_ms.max(now_ms))
        .await
        .context("raise the timestamp mark")?;
    // The layout the nodes issue with, which a store that lost its keys no longer records
    // (nodes would then take it for one used before layouts: Twitter's).
    let recorded = store.claim_layout(&layout.fingerprint()).await.context("record the layout")?;
    anyhow::ensure!(
        recorded == layout.fingerprint(),
        "recover: the store records the snowflake layout {recorded}, not this configuration's {} ({layout}); run recover with the nodes' IDGEN_SNOWFLAKE_LAYOUT",
        layout.fingerprint()
    );
    let identity = lease::new_token();
    store.set_recovered_identity(&identity).await.context("set the new store identity")?;
    Ok(format!(
        "recover: {} counters raised (at least to their floors), {} worker marks, timestamp ids from {}; new store identity {identity}: nodes resume at their next tick",
        floors.counters.len(),
        floors.workers.len(),
        floors.timestamp_ms.max(now_ms),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_take_the_highest_of_every_source() {
        let mut floors = Floors::default();
        let mut file = NodeFile::default();
        file.merge_high_water(&[("orders".into(), 2_500), ("bad name".into(), 1)], &[(3, 100)]);
        file.timestamp_ms = 7;
        add_node_file(&mut floors, &file);
        file.merge_high_water(&[("orders".into(), 2_600)], &[(3, 90)]);
        add_node_file(&mut floors, &file);
        assert_eq!(floors.counters.len(), 1, "an invalid name is skipped");
        assert_eq!(floors.counters[&CounterName::parse("orders").unwrap()], 2_600);
        assert_eq!((floors.workers[&3], floors.timestamp_ms), (100, 7));
        assert_eq!(parse_floor(" orders = 9 ").unwrap().1, 9);
        assert!(parse_floor("orders").is_err() && parse_floor("a b=1").is_err());
        assert!(parse_floor("orders=x").is_err());
    }
}
