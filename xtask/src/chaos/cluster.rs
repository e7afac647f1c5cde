//! The system under test: one redis-server, three Redis-mode nodes on it, one embedded node on
//! a tiny tmpfs and room for a fourth Redis-mode node (the one that takes over a paused node's
//! worker id). The [`Cluster`] owns their processes (stopped when it drops: nodes first, then
//! Redis, then the tmpfs is unmounted and the directory removed) and keeps the load's
//! [`Board`] in step with which node listens where.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::answer::Scope;
use super::load::{Board, Slot};
use super::proc::{self, Node, NodeSpec, RedisServer, Tmpfs, Workdir};

/// The node slots, in the board's order.
pub const R1: usize = 0;
pub const R2: usize = 1;
pub const R3: usize = 2;
pub const EMBEDDED: usize = 3;
pub const TAKEOVER: usize = 4;
const NAMES: [&str; 5] = ["redis-1", "redis-2", "redis-3", "embedded", "takeover"];

/// The embedded node's worker id (it has the embedded scope to itself).
pub const EMBEDDED_WORKER: u16 = 1;
/// The size of the embedded node's tmpfs.
pub const TMPFS_SIZE: &str = "2m";

/// Settings every Redis-mode node gets.
pub struct Settings {
    pub lease_ttl_ms: u64,
}

pub struct Cluster {
    // Field order is drop order: nodes stop before Redis, Redis before the unmount, all of
    // them before the directory is removed.
    nodes: Vec<Option<Node>>,
    pub redis: RedisServer,
    tmpfs: Option<Tmpfs>,
    workdir: Workdir,
    specs: Vec<Option<NodeSpec>>,
    pub board: Arc<Board>,
    binary: PathBuf,
    faketime: Option<PathBuf>,
    /// Why the embedded data dir is not on a tmpfs, if it is not.
    pub tmpfs_problem: Option<String>,
    settings: Settings,
    /// The data dir of every Redis-mode node that ever ran (`recover` reads them all).
    redis_data_dirs: Vec<PathBuf>,
    takeovers: usize,
}

impl Cluster {
    /// Starts Redis and the four nodes.
    pub fn start(binary: &Path, settings: Settings) -> anyhow::Result<Cluster> {
        let workdir = Workdir::new()?;
        let root = workdir.path().to_path_buf();
        let redis = RedisServer::start(root.join("redis"), root.join("redis.log"))?;
        let fs_dir = root.join("embedded-fs");
        let (tmpfs, tmpfs_problem) = match Tmpfs::mount(&fs_dir, TMPFS_SIZE) {
            Ok(tmpfs) => (Some(tmpfs), None),
            Err(error) => (None, Some(format!("{error:#}"))),
        };
        let slots = NAMES
            .iter()
            .enumerate()
            .map(|(index, name)| {
                Slot::new(name, if index == EMBEDDED { Scope::Embedded } else { Scope::Redis })
            })
            .collect();
        let mut cluster = Cluster {
            nodes: (0..NAMES.len()).map(|_| None).collect(),
            redis,
            tmpfs,
            workdir,
            specs: vec![None; NAMES.len()],
            board: Arc::new(Board::new(slots)),
            binary: binary.to_path_buf(),
            faketime: proc::faketime_library(),
            tmpfs_problem,
            settings,
            redis_data_dirs: Vec::new(),
            takeovers: 0,
        };
        for slot in [R1, R2, R3] {
            let spec = cluster.redis_spec(NAMES[slot], &[], slot == R3)?;
            cluster.specs[slot] = Some(spec);
        }
        let data_dir = fs_dir.join("data");
        let mut spec = cluster.spec(NAMES[EMBEDDED], data_dir, true)?;
        // New counter names are how the disk-full fault finds a write that needs new space.
        spec.args = vec!["--worker-id".into(), EMBEDDED_WORKER.to_string()];
        spec.args.extend(["--max-counters".into(), "1000000".into()]);
        cluster.specs[EMBEDDED] = Some(spec);
        for slot in [R1, R2, R3, EMBEDDED] {
            cluster.start_node(slot)?;
        }
        Ok(cluster)
    }

    fn spec(&self, name: &str, data_dir: PathBuf, movable_clock: bool) -> anyhow::Result<NodeSpec> {
        let root = self.workdir.path();
        let clock = match (&self.faketime, movable_clock) {
            (Some(library), true) => {
                let file = root.join(format!("{name}.clock"));
                std::fs::write(&file, "+0\n").context("write a clock offset file")?;
                Some((library.clone(), file))
            }
            _ => None,
        };
        let log = root.join(format!("{name}.log"));
        Ok(NodeSpec { binary: self.binary.clone(), data_dir, log, args: Vec::new(), clock })
    }

    fn redis_spec(
        &mut self,
        name: &str,
        extra: &[String],
        clock: bool,
    ) -> anyhow::Result<NodeSpec> {
        let data_dir = self.workdir.path().join(format!("{name}-data"));
        let mut spec = self.spec(name, data_dir.clone(), clock)?;
        spec.args = self.redis_settings();
        spec.args.extend_from_slice(extra);
        self.redis_data_dirs.push(data_dir);
        Ok(spec)
    }

    /// The settings flags of a Redis-mode node (and of `recover`).
    pub fn redis_settings(&self) -> Vec<String> {
        vec![
            "--redis-url".into(),
            self.redis.url(),
            "--lease-ttl-ms".into(),
            self.settings.lease_ttl_ms.to_string(),
        ]
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.settings.lease_ttl_ms)
    }

    /// Starts (or restarts) the node of `slot` from its spec; the load follows it.
    pub fn start_node(&mut self, slot: usize) -> anyhow::Result<()> {
        let spec = self.specs[slot].as_ref().context("no such node")?;
        let node = Node::start(spec).with_context(|| format!("start {}", NAMES[slot]))?;
        eprintln!("chaos: {} (pid {}): {}", NAMES[slot], node.pid(), node.line);
        self.board.set_address(slot, Some(node.address));
        self.nodes[slot] = Some(node);
        Ok(())
    }

    /// Restarts `slot`, retrying for up to `limit` (a node may refuse to start for a while,
    /// e.g. while its worker id is still leased); the last error if it never starts.
    pub fn start_node_within(&mut self, slot: usize, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            match self.start_node(slot) {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() < deadline => {
                    eprintln!("chaos: {error:#}; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub fn node(&self, slot: usize) -> Option<&Node> {
        self.nodes[slot].as_ref()
    }

    /// `kill -9` of a node. The load keeps asking at its address (connections are refused)
    /// until it is started again.
    pub fn kill_node(&mut self, slot: usize) {
        if let Some(node) = self.nodes[slot].take() {
            node.kill9();
        }
    }

    /// A clean stop (SIGTERM) of a node, which leaves the load.
    pub fn stop_node(&mut self, slot: usize) {
        self.board.set_address(slot, None);
        if let Some(node) = self.nodes[slot].take() {
            node.stop();
        }
    }

    /// A takeover node that asks for `worker_id`; its own new data dir.
    pub fn prepare_takeover(&mut self, worker_id: u16) -> anyhow::Result<()> {
        self.takeovers += 1;
        let name = format!("takeover-{}", self.takeovers);
        let extra = ["--worker-id".to_owned(), worker_id.to_string()];
        self.specs[TAKEOVER] = Some(self.redis_spec(&name, &extra, false)?);
        Ok(())
    }

    /// From now on `slot` (a Redis-mode node) starts with `--worker-id worker`.
    pub fn pin_worker(&mut self, slot: usize, worker: u16) {
        if let Some(spec) = self.specs[slot].as_mut() {
            if let Some(at) = spec.args.iter().position(|arg| arg == "--worker-id") {
                spec.args.drain(at..(at + 2).min(spec.args.len()));
            }
            spec.args.extend(["--worker-id".to_owned(), worker.to_string()]);
        }
    }

    pub fn redis_data_dirs(&self) -> &[PathBuf] {
        &self.redis_data_dirs
    }

    /// Moves the node's wall clock to `offset` (libfaketime syntax, e.g. `-5` seconds); `Err`
    /// when the node runs without libfaketime.
    pub fn set_clock(&self, slot: usize, offset: &str) -> anyhow::Result<()> {
        let spec = self.specs[slot].as_ref().context("no such node")?;
        let (_, file) = spec.clock.as_ref().context("this node's clock cannot be moved")?;
        std::fs::write(file, format!("{offset}\n")).context("write the clock offset")
    }

    pub fn clock_movable(&self, slot: usize) -> bool {
        self.specs[slot].as_ref().is_some_and(|spec| spec.clock.is_some())
    }

    /// The tmpfs of the embedded node, when there is one.
    pub fn tmpfs_path(&self) -> Option<&Path> {
        self.tmpfs.as_ref().map(Tmpfs::path)
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// Stops every node cleanly (while Redis still runs); the drop does the rest.
    pub fn shut_down(&mut self) {
        for slot in 0..self.nodes.len() {
            self.stop_node(slot);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Nodes first (a stopped node still holds the tmpfs); fields drop in order after this.
        for slot in 0..self.nodes.len() {
            if let Some(node) = self.nodes[slot].take() {
                node.stop();
            }
        }
    }
}
