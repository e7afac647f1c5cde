//! The faults of one node: `kill -9` and restart, a pause past the worker-id lease with a
//! takeover of its worker id, a wall clock stepped back (while running and across a restart),
//! and a full disk under the embedded node.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use super::{Fenced, Profile, Run, heal_and_wait, wait_for, wait_issuing, wait_since};
use crate::chaos::answer::{self, Answer, Kind};
use crate::chaos::cluster::{Cluster, EMBEDDED, R1, R2, TAKEOVER};
use crate::chaos::http::{Connection, Failure, Response};
use crate::chaos::json;
use crate::chaos::load;
use crate::chaos::proc::Resp;

/// Snowflake requests queued at the paused node before it resumes.
const QUEUED_PROBES: usize = 4;
/// New counter names asked for on a full disk at most.
const NEW_NAMES: usize = 3000;

/// `kill -9` of redis-2, held down, restarted on its data dir.
pub fn node_kill(cluster: &mut Cluster, profile: &Profile, run: &mut Run) -> anyhow::Result<()> {
    cluster.kill_node(R2);
    std::thread::sleep(profile.hold);
    cluster.start_node_within(R2, profile.limit)?;
    heal_and_wait(cluster, run, profile.limit);
    Ok(())
}

/// redis-1 paused past its lease; a new node takes its worker id; redis-1 resumes with
/// snowflake requests queued and must not issue with that worker id any more.
pub fn node_pause(cluster: &mut Cluster, profile: &Profile, run: &mut Run) -> anyhow::Result<()> {
    let board = std::sync::Arc::clone(&cluster.board);
    let Some(worker) = board.slots[R1].last_worker() else {
        run.check("redis-1 issued a snowflake before the pause (to learn its worker id)", false);
        return Ok(());
    };
    let node = cluster.node(R1).ok_or_else(|| anyhow::anyhow!("redis-1 is not running"))?;
    let address = node.address;
    // No new load requests; the ones in flight finish before the stop.
    board.set_paused(R1, true);
    std::thread::sleep(Duration::from_millis(100));
    node.pause();
    let paused = board.now_ms();
    run.note(format!("redis-1 (worker {worker}) paused with SIGSTOP"));
    let lease = format!("idgen:{{worker-{worker}}}:lease");
    let ttl = cluster.lease_ttl();
    let expired = wait_for(ttl * 4, || {
        matches!(cluster.redis.call(&["EXISTS", &lease]), Ok(Resp::Integer(0)))
    });
    run.check(format!("redis-1's lease of worker {worker} expired while it was paused"), expired);
    cluster.prepare_takeover(worker)?;
    cluster.start_node_within(TAKEOVER, profile.limit)?;
    let took = cluster.node(TAKEOVER).and_then(|node| node.worker_id());
    run.check(
        format!(
            "the takeover node leased worker {worker} (its start-up line: worker {})",
            took.map_or("none".to_owned(), |took| took.to_string())
        ),
        took == Some(worker),
    );
    std::thread::sleep(profile.hold);
    let probes = load::probe_snowflakes(&board, R1, address, QUEUED_PROBES);
    std::thread::sleep(Duration::from_millis(200));
    cluster.node(R1).expect("still there").resume();
    let resumed = board.now_ms();
    run.note(format!(
        "redis-1 resumed after {:.2} s with {QUEUED_PROBES} snowflake requests queued",
        f64::from(resumed - paused) / 1000.0
    ));
    for probe in probes {
        run.probes.absorb(probe.join().map_err(|_| anyhow::anyhow!("a probe thread panicked"))?);
    }
    board.set_paused(R1, false);
    run.fenced = Some(Fenced { node: R1 as u8, worker, since_ms: paused });
    std::thread::sleep(profile.hold);
    cluster.stop_node(TAKEOVER);
    heal_and_wait(cluster, run, profile.limit);
    Ok(())
}

/// The wall clock of `slot` steps back while it runs; then `kill -9` and a restart with the
/// clock twice as far back (a Redis-mode node with `--worker-id` of the worker id it had, so
/// that it resumes under its own mark); then the clock is put right.
pub fn clock_back(
    cluster: &mut Cluster,
    profile: &Profile,
    run: &mut Run,
    slot: usize,
) -> anyhow::Result<()> {
    if !cluster.clock_movable(slot) {
        run.skipped = Some("libfaketime is not installed (apt-get install faketime)".to_owned());
        return Ok(());
    }
    let board = std::sync::Arc::clone(&cluster.board);
    let name = board.slots[slot].name;
    let step = profile.clock_step_s;
    let catch_up = profile.limit + Duration::from_secs(2 * step);
    let stepped = board.now_ms();
    cluster.set_clock(slot, &format!("-{step}"))?;
    let refused = wait_for(Duration::from_secs(2), || {
        board.slots[slot].kind_failed_since(Kind::Snowflake, stepped)
    });
    let running = wait_issuing(cluster, board.now_ms(), catch_up);
    run.note(format!(
        "{name}'s clock stepped back {step} s while running: it refused {}; every node issued every kind again {}",
        if refused { "snowflakes" } else { "no snowflake within 2 s" },
        running.map_or("not within the limit".to_owned(), |at| format!("{:.2} s after the step", f64::from(at - stepped) / 1000.0))
    ));
    let pinned = (slot != EMBEDDED).then(|| board.slots[slot].last_worker()).flatten();
    cluster.kill_node(slot);
    if let Some(worker) = pinned {
        cluster.pin_worker(slot, worker);
    }
    cluster.set_clock(slot, &format!("-{}", 2 * step))?;
    let killed = board.now_ms();
    cluster.start_node_within(slot, profile.limit)?;
    let restarted = board.now_ms();
    run.note(format!(
        "{name} killed and restarted with its clock {} s back{} ({:.2} s from the kill to listening)",
        2 * step,
        pinned.map_or(String::new(), |worker| format!(" and --worker-id {worker}")),
        f64::from(restarted - killed) / 1000.0
    ));
    wait_since(cluster, run, restarted, catch_up);
    cluster.set_clock(slot, "+0")?;
    run.note(format!("{name}'s clock put right (a step forward)"));
    Ok(())
}

/// Fills the embedded node's tmpfs to the last byte, asks for new counter names (a write that
/// needs new space) until one is refused, holds, frees the space.
pub fn disk_full(cluster: &mut Cluster, profile: &Profile, run: &mut Run) -> anyhow::Result<()> {
    let Some(fs) = cluster.tmpfs_path().map(|path| path.to_path_buf()) else {
        let why = cluster.tmpfs_problem.clone().unwrap_or_default();
        run.skipped = Some(format!("no tmpfs for the embedded node: {why}"));
        return Ok(());
    };
    let board = std::sync::Arc::clone(&cluster.board);
    let address = cluster.node(EMBEDDED).context("the embedded node is not running")?.address;
    let filler = fs.join("filler");
    let filled = board.now_ms();
    let written = fill(&filler)?;
    let load_refused =
        wait_for(Duration::from_secs(2), || board.slots[EMBEDDED].failed_since(filled));
    run.note(format!(
        "wrote {} KiB until ENOSPC; in the next 2 s the load's own requests were {}",
        written / 1024,
        if load_refused { "refused at least once" } else { "all issued" }
    ));
    let ready = wait_for(Duration::from_secs(5), || readyz(address, run) == Some(503));
    run.check("/readyz answered 503 while the disk was full", ready);
    let phase = run.phase;
    let names = (0..).map(move |n| format!("full-{phase}-{n}"));
    let refused_name = new_names_until_refused(address, run, names);
    run.check(
        "a new counter name (which needs new space) got a JSON 503 while the disk was full",
        refused_name.is_some(),
    );
    std::thread::sleep(profile.hold);
    std::fs::remove_file(&filler)?;
    let freed = board.now_ms();
    if let Some(name) = refused_name {
        let issued = wait_for(profile.limit, || {
            matches!(get(address, &format!("/v1/ids/counter?name={name}")), Ok((200, _)))
        });
        run.check(format!("after the space was freed, the refused name {name} was issued"), issued);
    }
    let ready = wait_for(profile.limit, || readyz(address, run) == Some(200));
    run.check("/readyz answered 200 again after the space was freed", ready);
    wait_since(cluster, run, freed, profile.limit);
    Ok(())
}

/// Asks the embedded node for counters under `names` new names until one is refused; that
/// name. Bad answers go to the run.
fn new_names_until_refused(
    address: SocketAddr,
    run: &mut Run,
    names: impl Iterator<Item = String>,
) -> Option<String> {
    let mut issued = 0;
    for name in names.take(NEW_NAMES) {
        let path = format!("/v1/ids/counter?name={name}");
        let answer = get(address, &path)
            .map(|(status, response)| (status, answer::classify(Kind::Counter, None, &response)));
        match answer {
            Ok((_, Answer::Issued(_))) => issued += 1,
            Ok((_, Answer::Refused(outcome))) => {
                run.note(format!("{issued} new counter names were issued on the full disk, then {name} got a JSON 503 ({outcome:?})"));
                return Some(name);
            }
            Ok((status, Answer::Bad(why))) => {
                run.bad.push(format!("embedded {path}: {status} {why}"))
            }
            Err(failure) => run.bad.push(format!("embedded {path}: no answer ({})", failure.0)),
        }
    }
    run.note(format!("{issued} new counter names were all issued on the full disk"));
    None
}

/// The status of `/readyz`; an answer that is not JSON goes to the run's bad answers.
fn readyz(address: SocketAddr, run: &mut Run) -> Option<u16> {
    let (status, response) = get(address, "/readyz").ok()?;
    let status_field = json::parse(&response.body)
        .ok()
        .and_then(|body| body.get("status").and_then(json::Value::as_str).map(str::to_owned));
    if status_field.is_none() {
        let body = String::from_utf8_lossy(&response.body).chars().take(160).collect::<String>();
        run.bad.push(format!("embedded /readyz: {status} without a JSON status: {body}"));
    }
    Some(status)
}

/// One `GET` on a new connection: the status and the response.
fn get(address: SocketAddr, path: &str) -> Result<(u16, Response), Failure> {
    let mut connection = Connection::open(address, Duration::from_secs(5))?;
    connection.get(path).map(|response| (response.status, response))
}

/// Writes `path` until the filesystem is full, to the last byte; the bytes written.
fn fill(path: &std::path::Path) -> anyhow::Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let mut written = 0;
    for size in [64 << 10, 4 << 10, 1] {
        let chunk = vec![0x5a_u8; size];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(error) if error.raw_os_error() == Some(28) => break,
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(written)
}
