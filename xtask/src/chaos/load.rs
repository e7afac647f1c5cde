//! The chaos load: client threads that issue IDs in a steady loop against every node that is
//! up, over kept-alive connections, and keep the books of what they got. The [`Board`] is
//! what the clients and the fault runner share: where each node listens now (or that it is
//! down or paused), the phase, the stop flag, and per node and kind when it last issued and
//! last refused (the fault runner waits on these).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::answer::{self, Answer, Kind, Outcome, Scope};
use super::http::{Connection, Failure};
use super::ledger::{Event, Issued};

/// How long a client waits for one answer (a paused node is skipped, not waited for).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a request got no answer (a node that is down refuses connections at once).
const NO_ANSWER_PAUSE: Duration = Duration::from_millis(5);
/// Batch sizes the clients cycle through (`None`: the single-ID form).
pub const BATCHES: [Option<u32>; 4] = [None, Some(2), Some(10), Some(50)];
/// The one counter name every node is asked for.
pub const COUNTER: &str = "chaos";
/// Bad answers kept word for word per client.
const BAD_KEPT: usize = 20;

/// One node's place on the board.
pub struct Slot {
    pub name: &'static str,
    pub scope: Scope,
    address: Mutex<Option<SocketAddr>>,
    /// Bumped whenever the address changes, so that clients drop their old connection.
    generation: AtomicU64,
    paused: AtomicBool,
    /// Per kind: when the last 200 and the last other outcome arrived (ms + 1; 0 never).
    last_issued: [AtomicU32; 5],
    last_failed: [AtomicU32; 5],
    /// When the last `store_regressed` arrived (ms + 1; 0 never).
    last_regressed: AtomicU32,
    /// The worker id of the last snowflake it issued, + 1 (0: none yet).
    last_worker: AtomicU32,
}

impl Slot {
    pub fn new(name: &'static str, scope: Scope) -> Slot {
        Slot {
            name,
            scope,
            address: Mutex::new(None),
            generation: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            last_issued: Default::default(),
            last_failed: Default::default(),
            last_regressed: AtomicU32::new(0),
            last_worker: AtomicU32::new(0),
        }
    }

    /// Where it listens, unless it is down or paused.
    fn target(&self) -> Option<(SocketAddr, u64)> {
        if self.paused.load(Ordering::Acquire) {
            return None;
        }
        let address = *self.address.lock().expect("no panics under the lock");
        address.map(|address| (address, self.generation.load(Ordering::Acquire)))
    }

    pub fn is_up(&self) -> bool {
        self.target().is_some()
    }

    pub fn last_worker(&self) -> Option<u16> {
        self.last_worker.load(Ordering::Acquire).checked_sub(1).map(|worker| worker as u16)
    }

    /// Whether it answered `store_regressed` at or after `since_ms`.
    pub fn regressed_since(&self, since_ms: u32) -> bool {
        self.last_regressed.load(Ordering::Acquire) > since_ms
    }

    /// Whether any kind was refused (or unanswered) at or after `since_ms`.
    pub fn failed_since(&self, since_ms: u32) -> bool {
        self.last_failed.iter().any(|last| last.load(Ordering::Acquire) > since_ms)
    }

    /// Whether `kind` was refused (or unanswered) at or after `since_ms`.
    pub fn kind_failed_since(&self, kind: Kind, since_ms: u32) -> bool {
        self.last_failed[kind.index()].load(Ordering::Acquire) > since_ms
    }

    /// Whether every kind was issued at or after `since_ms`, and after its last failure.
    pub fn issuing_since(&self, since_ms: u32) -> bool {
        Kind::ALL.iter().all(|kind| {
            let issued = self.last_issued[kind.index()].load(Ordering::Acquire);
            issued > since_ms && issued > self.last_failed[kind.index()].load(Ordering::Acquire)
        })
    }

    fn record(&self, kind: Kind, outcome: Outcome, done_ms: u32) {
        let stamp = done_ms + 1;
        let slot = match outcome {
            Outcome::Issued => &self.last_issued[kind.index()],
            _ => &self.last_failed[kind.index()],
        };
        slot.fetch_max(stamp, Ordering::AcqRel);
        if outcome == Outcome::Regressed {
            self.last_regressed.fetch_max(stamp, Ordering::AcqRel);
        }
    }
}

/// What the clients and the fault runner share.
pub struct Board {
    start: Instant,
    pub slots: Vec<Slot>,
    phase: AtomicUsize,
    stop: AtomicBool,
    issued: AtomicU64,
}

impl Board {
    pub fn new(slots: Vec<Slot>) -> Board {
        Board {
            start: Instant::now(),
            slots,
            phase: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            issued: AtomicU64::new(0),
        }
    }

    /// Milliseconds since the board was made.
    pub fn now_ms(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_millis()).unwrap_or(u32::MAX)
    }

    pub fn set_address(&self, slot: usize, address: Option<SocketAddr>) {
        let slot = &self.slots[slot];
        *slot.address.lock().expect("no panics under the lock") = address;
        slot.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Paused nodes get no new requests from the load.
    pub fn set_paused(&self, slot: usize, paused: bool) {
        self.slots[slot].paused.store(paused, Ordering::Release);
    }

    pub fn phase(&self) -> u16 {
        self.phase.load(Ordering::Acquire) as u16
    }

    pub fn set_phase(&self, phase: usize) {
        self.phase.store(phase, Ordering::Release);
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Acquire)
    }

    /// Whether every node that is up issued every kind at or after `since_ms`.
    pub fn all_issuing_since(&self, since_ms: u32) -> bool {
        self.slots.iter().filter(|slot| slot.is_up()).all(|slot| slot.issuing_since(since_ms))
    }
}

/// What one client (or prober) collected.
#[derive(Debug, Default)]
pub struct Harvest {
    pub events: Vec<Event>,
    pub ids: BTreeMap<(Kind, Scope), Vec<Issued>>,
    /// Bad answers word for word (the first few).
    pub bad: Vec<String>,
}

impl Harvest {
    pub fn absorb(&mut self, other: Harvest) {
        append(&mut self.events, other.events);
        for (key, ids) in other.ids {
            append(self.ids.entry(key).or_default(), ids);
        }
        self.bad.extend(other.bad);
    }

    /// Books a request for `kind` to node `slot` that could not even connect.
    fn no_answer(&mut self, board: &Board, slot: usize, kind: Kind) {
        let at = board.now_ms();
        let outcome = Outcome::NoAnswer;
        board.slots[slot].record(kind, outcome, at);
        let (phase, node) = (board.phase(), slot as u8);
        self.events.push(Event { sent_ms: at, done_ms: at, phase, node, kind, outcome, ids: 0 });
    }

    /// Sends one request for `count` IDs of `kind` to node `slot` on `connection`, and books
    /// the answer. `Err`: no answer (the connection is then unusable).
    pub fn request(
        &mut self,
        board: &Board,
        slot: usize,
        connection: &mut Connection,
        kind: Kind,
        count: Option<u32>,
    ) -> Result<(), Failure> {
        let sent_ms = board.now_ms();
        let result = connection.get(&kind.path(count, COUNTER));
        let done_ms = board.now_ms();
        // A request belongs to the phase in which it was answered: one sent just before a
        // fault and refused because of it counts for the fault.
        let phase = board.phase();
        let node = slot as u8;
        let (outcome, ids) = match &result {
            Err(_) => (Outcome::NoAnswer, Vec::new()),
            Ok(response) => match answer::classify(kind, count, response) {
                Answer::Issued(ids) => (Outcome::Issued, ids),
                Answer::Refused(outcome) => (outcome, Vec::new()),
                Answer::Bad(why) => {
                    if self.bad.len() < BAD_KEPT {
                        let name = board.slots[slot].name;
                        self.bad.push(format!("{name} {} at {sent_ms} ms: {why}", kind.name()));
                    }
                    (Outcome::Bad, Vec::new())
                }
            },
        };
        let target = &board.slots[slot];
        target.record(kind, outcome, done_ms);
        if kind == Kind::Snowflake
            && let Some(last) = ids.last()
        {
            let worker = u32::from(answer::snowflake_worker(*last)) + 1;
            target.last_worker.store(worker, Ordering::Release);
        }
        board.issued.fetch_add(ids.len() as u64, Ordering::AcqRel);
        let count = ids.len() as u32;
        let scope = Scope::of(kind, target.scope);
        let book = self.ids.entry((kind, scope)).or_default();
        book.extend(ids.into_iter().map(|value| Issued { value, sent_ms, phase, node }));
        self.events.push(Event { sent_ms, done_ms, phase, node, kind, outcome, ids: count });
        result.map(|_| ())
    }
}

/// Appends `more` to `all`, reusing the larger of the two buffers (the books of a long run
/// are hundreds of megabytes).
fn append<T>(all: &mut Vec<T>, mut more: Vec<T>) {
    if more.capacity() > all.capacity() {
        std::mem::swap(all, &mut more);
    }
    all.append(&mut more);
}

/// One load client: loops over nodes, kinds and batch sizes until the board says stop.
/// `seed` staggers the clients so that they do not ask the same thing at once.
pub fn client(board: Arc<Board>, seed: usize) -> Harvest {
    let mut harvest = Harvest::default();
    let slots = board.slots.len();
    let mut connections: Vec<Option<(u64, Connection)>> = (0..slots).map(|_| None).collect();
    let mut step = seed * 7;
    while !board.stop.load(Ordering::Acquire) {
        step += 1;
        let slot = step % slots;
        let Some((address, generation)) = board.slots[slot].target() else {
            if (0..slots).all(|other| board.slots[other].target().is_none()) {
                std::thread::sleep(Duration::from_millis(5));
            }
            continue;
        };
        let kind = Kind::ALL[(step / slots) % Kind::ALL.len()];
        let count = BATCHES[(step / (slots * Kind::ALL.len())) % BATCHES.len()];
        let reusable = matches!(&connections[slot], Some((open, _)) if *open == generation);
        if !reusable {
            connections[slot] = None;
            match Connection::open(address, ANSWER_TIMEOUT) {
                Ok(connection) => connections[slot] = Some((generation, connection)),
                Err(_) => {
                    // Nothing was sent: the node is down (or not up yet).
                    harvest.no_answer(&board, slot, kind);
                    std::thread::sleep(NO_ANSWER_PAUSE);
                    continue;
                }
            }
        }
        let (_, connection) = connections[slot].as_mut().expect("opened above");
        if harvest.request(&board, slot, connection, kind, count).is_err() {
            connections[slot] = None;
            std::thread::sleep(NO_ANSWER_PAUSE);
        }
    }
    harvest
}

/// Sends `count` snowflake requests to node `slot` at `address` at once, each on its own
/// connection, and waits for their answers: what a paused node finds queued when it resumes.
pub fn probe_snowflakes(
    board: &Arc<Board>,
    slot: usize,
    address: SocketAddr,
    count: usize,
) -> Vec<std::thread::JoinHandle<Harvest>> {
    (0..count)
        .map(|_| {
            let board = Arc::clone(board);
            std::thread::spawn(move || {
                let mut harvest = Harvest::default();
                match Connection::open(address, ANSWER_TIMEOUT * 3) {
                    Ok(mut connection) => {
                        let _ = harvest.request(
                            &board,
                            slot,
                            &mut connection,
                            Kind::Snowflake,
                            Some(50),
                        );
                    }
                    Err(_) => harvest.no_answer(&board, slot, Kind::Snowflake),
                }
                harvest
            })
        })
        .collect()
}
