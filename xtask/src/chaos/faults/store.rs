//! The faults of the Redis store: `kill -9` with the AOF kept (an outage, nothing lost), and
//! the two ways it loses what it acknowledged (restarted empty, `FLUSHALL`), after which the
//! nodes must refuse with `store_regressed` until `idgen-server recover` has run.

use super::{Profile, Run, heal_and_wait, wait_for};
use crate::chaos::cluster::{Cluster, R1, R2, R3, TAKEOVER};
use crate::chaos::proc::{self, Resp};

/// The Redis-mode nodes that are up.
fn redis_nodes_up(cluster: &Cluster) -> Vec<usize> {
    [R1, R2, R3, TAKEOVER].into_iter().filter(|&slot| cluster.board.slots[slot].is_up()).collect()
}

/// `kill -9` of redis-server, held down, restarted on its AOF: an outage, no regression.
pub fn redis_kill(cluster: &mut Cluster, profile: &Profile, run: &mut Run) -> anyhow::Result<()> {
    let injected = cluster.board.now_ms();
    cluster.redis.kill9();
    std::thread::sleep(profile.hold);
    cluster.redis.spawn()?;
    heal_and_wait(cluster, run, profile.limit);
    let regressed: Vec<&str> = redis_nodes_up(cluster)
        .into_iter()
        .filter(|&slot| cluster.board.slots[slot].regressed_since(injected))
        .map(|slot| cluster.board.slots[slot].name)
        .collect();
    run.check(
        format!(
            "no node answered store_regressed after a restart on the AOF{}",
            if regressed.is_empty() {
                String::new()
            } else {
                format!(" (did: {})", regressed.join(", "))
            }
        ),
        regressed.is_empty(),
    );
    Ok(())
}

/// How the store loses its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    RestartEmpty,
    FlushAll,
}

/// The store loses everything; every Redis-mode node must refuse with `store_regressed`,
/// then `recover` runs with every node's data dir and the nodes must resume.
pub fn redis_loss(
    cluster: &mut Cluster,
    profile: &Profile,
    run: &mut Run,
    (loss, cycle): (Loss, usize),
) -> anyhow::Result<()> {
    let board = std::sync::Arc::clone(&cluster.board);
    let injected = board.now_ms();
    match loss {
        Loss::RestartEmpty => {
            cluster.redis.kill9();
            cluster.redis.wipe()?;
            cluster.redis.spawn()?;
        }
        Loss::FlushAll => match cluster.redis.call(&["FLUSHALL"])? {
            Resp::Simple(ok) if ok == "OK" => {}
            other => anyhow::bail!("FLUSHALL answered {other:?}"),
        },
    }
    let nodes = redis_nodes_up(cluster);
    let all_refuse = wait_for(profile.limit, || {
        nodes.iter().all(|&slot| board.slots[slot].regressed_since(injected))
    });
    let refusing = board.now_ms();
    let names: Vec<&str> = nodes.iter().map(|&slot| board.slots[slot].name).collect();
    run.check(
        format!("every Redis node ({}) answered store_regressed", names.join(", ")),
        all_refuse,
    );
    if all_refuse {
        run.note(format!(
            "every Redis node refused with store_regressed {:.2} s after the loss",
            f64::from(refusing - injected) / 1000.0
        ));
    }
    let delay = profile.recover_after(cycle);
    std::thread::sleep(delay);
    let settings = cluster.redis_settings();
    let dirs = cluster.redis_data_dirs().to_vec();
    let (summary, took) = proc::recover(cluster.binary(), &settings, &dirs)?;
    run.note(format!(
        "`idgen-server recover` ({} data dirs), run {:.1} s after every node refused, took {:.2} s: {summary}",
        dirs.len(),
        delay.as_secs_f64(),
        took.as_secs_f64()
    ));
    heal_and_wait(cluster, run, profile.limit);
    if run.recovered_ms.is_none() {
        // What an operator does next; the failure stays on the record.
        let (summary, _) = proc::recover(cluster.binary(), &settings, &dirs)?;
        let again = cluster.board.now_ms();
        run.rescued_ms = super::wait_issuing(cluster, again, profile.limit);
        run.note(format!(
            "the nodes did not all issue again within {:?}; `recover` run a second time: {summary}; every node issued every kind again: {}",
            profile.limit,
            run.rescued_ms.map_or("no".to_owned(), |at| format!("{:.2} s later", f64::from(at - again) / 1000.0))
        ));
    }
    Ok(())
}
