//! The embedded back end's state file: every mark in one JSON file in the data directory.
//!
//! Crash safety: the file is replaced atomically (write `state.json.tmp`, fsync it, rename it
//! over `state.json`, fsync the directory), so after `kill -9` or a power cut the file holds
//! either the old marks or the new ones, never a torn mix. A mark is written *before* the
//! generators may issue up to it, so the file is always at or above everything issued.
//!
//! Exclusivity: an exclusive lock on `lock` (an OS file lock, released when the process dies)
//! keeps a second server off the same directory; two processes sharing marks would repeat IDs.
//!
//! Writes are rare (one per counter block or per half second of snowflake time) and serialised
//! by one mutex, which also guards the in-memory copy of the file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use idgen_core::counter::CounterName;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::backend::{Mark, Snapshot};

use super::StoreError;

const STATE_FILE: &str = "state.json";
const TEMP_FILE: &str = "state.json.tmp";
const LOCK_FILE: &str = "lock";
const PROBE_FILE: &str = ".write-probe";
const FORMAT: u32 = 1;

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: u32,
    /// Unix ms; every snowflake issued so far has a timestamp at or below it.
    snowflake_mark_ms: u64,
    /// Unix ms; every timestamp id issued so far is at or below it.
    timestamp_mark_ms: u64,
    /// Counter name -> every value issued so far is at or below it.
    #[serde(default)]
    counters: BTreeMap<String, u64>,
}

/// One mark of the file: the snowflake mark of the configured worker id, or another mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Snowflake,
    Mark(&'a Mark),
}

impl StateFile {
    fn get(&self, key: Key<'_>) -> u64 {
        match key {
            Key::Snowflake => self.snowflake_mark_ms,
            Key::Mark(Mark::Timestamp) => self.timestamp_mark_ms,
            Key::Mark(Mark::Counter(name)) => {
                self.counters.get(name.as_str()).copied().unwrap_or(0)
            }
        }
    }

    fn set(&mut self, key: Key<'_>, value: u64) {
        match key {
            Key::Snowflake => self.snowflake_mark_ms = value,
            Key::Mark(Mark::Timestamp) => self.timestamp_mark_ms = value,
            Key::Mark(Mark::Counter(name)) => {
                self.counters.insert(name.as_str().to_owned(), value);
            }
        }
    }
}

/// Marks in `<data dir>/state.json`, guarded by `<data dir>/lock`.
pub struct EmbeddedStore {
    dir: PathBuf,
    state: Mutex<StateFile>,
    /// Held for the life of the store; the OS releases the lock when the file closes.
    _lock: File,
}

impl EmbeddedStore {
    /// Creates the directory if needed, takes its lock, reads the marks and writes them back
    /// once, which proves the directory is writable before the server accepts a request.
    pub fn open(dir: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir_all(&dir)
            .map_err(|source| StoreError::Open { path: dir.clone(), source })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|source| StoreError::Open { path: lock_path.clone(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked { path: dir }),
            Err(TryLockError::Error(source)) => {
                return Err(StoreError::Open { path: lock_path, source });
            }
        }
        let state = read_state(&dir.join(STATE_FILE))?;
        let store = Self { dir, state: Mutex::new(state), _lock: lock };
        {
            let state = store.state.lock();
            store.write(&state)?;
        }
        Ok(store)
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.lock();
        Snapshot {
            worker_id: 0,
            snowflake_ms: state.snowflake_mark_ms,
            timestamp_ms: state.timestamp_mark_ms,
            counters: state
                .counters
                .iter()
                // A name that is not valid (a hand-edited file) can never be asked for; it
                // stays in the file untouched.
                .filter_map(|(name, value)| Some((CounterName::parse(name).ok()?, *value)))
                .collect(),
        }
    }

    pub fn mark(&self, key: Key<'_>) -> u64 {
        self.state.lock().get(key)
    }

    /// Makes `key` durable at `target` unless it already is at `needed` or above; returns the
    /// durable value. Blocks on disk I/O.
    pub fn reserve(&self, key: Key<'_>, needed: u64, target: u64) -> Result<u64, StoreError> {
        let mut state = self.state.lock();
        let current = state.get(key);
        if current >= needed {
            // Another request made it durable while this one waited for the lock.
            return Ok(current);
        }
        let mut next = state.clone();
        next.set(key, target);
        self.write(&next)?;
        *state = next;
        Ok(target)
    }

    pub fn settle(&self, high_water: &Snapshot) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        next.set(Key::Snowflake, high_water.snowflake_ms);
        next.set(Key::Mark(&Mark::Timestamp), high_water.timestamp_ms);
        for (name, value) in &high_water.counters {
            next.set(Key::Mark(&Mark::Counter(name.clone())), *value);
        }
        if next != *state {
            self.write(&next)?;
            *state = next;
        }
        Ok(())
    }

    pub fn check_writable(&self) -> Result<(), StoreError> {
        let path = self.dir.join(PROBE_FILE);
        let result = fs::write(&path, b"ok").and_then(|()| fs::remove_file(&path));
        result.map_err(|source| StoreError::Write { path, source })
    }

    /// Replaces `state.json` atomically and durably.
    fn write(&self, state: &StateFile) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP_FILE);
        let target = self.dir.join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(state).expect("the state file is plain data");
        let result = (|| -> io::Result<()> {
            let mut file =
                OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
            file.write_all(&bytes)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, &target)?;
            sync_dir(&self.dir)
        })();
        result.map_err(|source| StoreError::Write { path: target, source })
    }
}

fn read_state(path: &Path) -> Result<StateFile, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(StateFile { format: FORMAT, ..StateFile::default() });
        }
        Err(source) => return Err(StoreError::Open { path: path.to_owned(), source }),
    };
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_owned(), reason };
    // Never start from zero on a file we cannot read: that would repeat every id.
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.format != FORMAT {
        return Err(corrupt(format!("format {} is not {FORMAT}", state.format)));
    }
    Ok(state)
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows has no directory fsync; the rename is as durable as the OS makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(name: &str) -> Mark {
        Mark::Counter(CounterName::parse(name).unwrap())
    }

    const SNOWFLAKE: Key<'static> = Key::Snowflake;
    const TIMESTAMP: Key<'static> = Key::Mark(&Mark::Timestamp);

    #[test]
    fn marks_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/data");
        {
            let store = EmbeddedStore::open(path.clone()).unwrap();
            assert_eq!(store.snapshot(), Snapshot::default());
            assert_eq!(store.reserve(SNOWFLAKE, 100, 600).unwrap(), 600);
            // Already durable at or above `needed`: no new write, the current value comes back.
            assert_eq!(store.reserve(SNOWFLAKE, 500, 1100).unwrap(), 600);
            assert_eq!(store.reserve(TIMESTAMP, 7, 7).unwrap(), 7);
            assert_eq!(store.reserve(Key::Mark(&counter("orders")), 1, 1000).unwrap(), 1000);
        }
        let store = EmbeddedStore::open(path.clone()).unwrap();
        let snapshot = store.snapshot();
        assert_eq!(snapshot.snowflake_ms, 600);
        assert_eq!(snapshot.timestamp_ms, 7);
        assert_eq!(snapshot.counters, vec![(CounterName::parse("orders").unwrap(), 1000)]);
        assert!(!path.join(TEMP_FILE).exists());
    }

    #[test]
    fn settle_rewrites_marks_to_the_high_water() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        store.reserve(SNOWFLAKE, 1, 5000).unwrap();
        store.reserve(Key::Mark(&counter("a")), 1, 1000).unwrap();
        store.reserve(Key::Mark(&counter("b")), 1, 1000).unwrap();
        let high = Snapshot {
            worker_id: 0,
            snowflake_ms: 4600,
            timestamp_ms: 0,
            counters: vec![(CounterName::parse("a").unwrap(), 3)],
        };
        store.settle(&high).unwrap();
        drop(store);
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(store.mark(SNOWFLAKE), 4600);
        assert_eq!(store.mark(Key::Mark(&counter("a"))), 3);
        assert_eq!(store.mark(Key::Mark(&counter("b"))), 1000);
    }

    #[test]
    fn a_second_store_on_the_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        let second = EmbeddedStore::open(dir.path().to_owned());
        assert!(matches!(second, Err(StoreError::Locked { .. })));
    }

    #[test]
    fn a_corrupt_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"{\"format\": 1, \"snowflake_mark_ms\": ").unwrap();
        let result = EmbeddedStore::open(dir.path().to_owned());
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{:?}", result.err());
    }

    #[test]
    fn an_unusable_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let result = EmbeddedStore::open(file.join("data"));
        assert!(matches!(result, Err(StoreError::Open { .. })), "{:?}", result.err());
    }
}
