//! The embedded back end's marks: one redb database, `store.redb`, in the data directory.
//!
//! Why redb: a mark write must cost the same with one counter or a million. The previous
//! `state.json` was rewritten whole on every write (1.9 ms per new counter name at 1,000 names,
//! 6.8 ms at 6,000). redb is a copy-on-write B-tree: a commit writes the few pages on the path
//! to the changed key plus a header, and makes them durable with one `fdatasync`
//! (`Durability::Immediate`, its default). It is pure Rust, checksums every page and recovers
//! to the last commit after `kill -9` or a power cut, so a mark is either the old value or the
//! new one, never torn.
//!
//! Layout: table `marks` maps a key (see [`key_name`]) to its value; table `meta` holds the
//! store's `format`, the `worker_id` the directory issues snowflakes with, and how many times
//! it was `opens`ed. A mark is written *before* the generators may issue up to it, so the store
//! is always at or above everything issued.
//!
//! Creation and migration are crash-safe by ordering, not by luck: a new store is built as
//! `store.redb.new` and renamed into place once committed, so a `store.redb` that does not open
//! is corrupt (the server refuses to start) rather than new; a previous release's `state.json`
//! is imported into the store (each mark raised to the file's value, never lowered) and only
//! then renamed to `state.json.migrated`, so a crash in between imports it again next time.
//!
//! Writes are serialised by one mutex, which also guards an in-memory copy of the marks
//! (`snapshot` and `mark` never touch the disk). After any failed write the database is closed
//! and reopened on the next call: redb refuses further writes on a handle that saw an I/O
//! error, and a full disk must work again once space is freed, without a restart.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use idgen_core::counter::CounterName;
use idgen_core::snowflake::Layout;
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::StoreError;
use super::lock::{DirLock, FileIdentity};
use super::state::{self, MIGRATED_FILE, sync_dir};
use crate::backend::{Mark, Snapshot};

const STORE_FILE: &str = "store.redb";
/// A store being created; renamed to [`STORE_FILE`] once it is whole.
const NEW_STORE_FILE: &str = "store.redb.new";
const PROBE_FILE: &str = ".write-probe";
/// The store's own format (format 1 was `state.json`).
const FORMAT: u64 = 2;

const MARKS: TableDefinition<&str, u64> = TableDefinition::new("marks");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_FORMAT: &str = "format";
const META_WORKER_ID: &str = "worker_id";
/// The snowflake layout's [`Layout::code`]; absent in a store of a release before layouts,
/// whose snowflakes were all Twitter's.
const META_SNOWFLAKE_LAYOUT: &str = "snowflake_layout";
const META_OPENS: &str = "opens";
const COUNTER_PREFIX: &str = "counter:";
/// `retired:<name>`: the mark of a counter an operator retired; it is not loaded as a counter
/// at start, and a later use of the name continues above it.
const RETIRED_PREFIX: &str = "retired:";

/// One mark of the store: the snowflake mark of the configured worker id, or another mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Snowflake,
    Mark(&'a Mark),
}

/// The one place a mark gets its name in the store. A new [`Mark`] variant does not compile
/// until it has an arm here, and its key is then that one line.
pub fn key_name(key: Key<'_>) -> Cow<'static, str> {
    match key {
        Key::Snowflake => Cow::Borrowed("snowflake"),
        Key::Mark(Mark::Timestamp) => Cow::Borrowed("timestamp"),
        Key::Mark(Mark::Uuid7) => Cow::Borrowed("uuid7"),
        Key::Mark(Mark::Ulid) => Cow::Borrowed("ulid"),
        Key::Mark(Mark::Ksuid) => Cow::Borrowed("ksuid"),
        Key::Mark(Mark::Counter(name)) => Cow::Owned(counter_key(name.as_str())),
    }
}

/// `counter:<name>`; also used for names read from an old `state.json` that may not be valid.
pub(super) fn counter_key(name: &str) -> String {
    format!("{COUNTER_PREFIX}{name}")
}

/// Marks in `<data dir>/store.redb`, guarded by a lock on the data directory.
pub struct EmbeddedStore {
    dir: PathBuf,
    path: PathBuf,
    /// The file `path` named when it was opened; a write into any other is refused.
    identity: FileIdentity,
    inner: Mutex<Inner>,
    _lock: DirLock,
}

struct Inner {
    /// `None` after a failed write: reopened (and `marks` reloaded) by the next call.
    database: Option<Database>,
    /// Every mark as committed (never above what is durable).
    marks: BTreeMap<String, u64>,
}

/// What a write transaction did: `None` changed nothing (aborted, no fsync); `Some` marks to
/// copy into memory once the commit is durable.
type Changed = Option<Vec<(String, u64)>>;

impl EmbeddedStore {
    /// Creates the directory if needed, locks it, opens (or creates) the store, imports an old
    /// `state.json` and writes once, which proves the store is writable before the server
    /// accepts a request.
    pub fn open(dir: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir_all(&dir)
            .map_err(|source| StoreError::Open { path: dir.clone(), source })?;
        let lock = DirLock::acquire(&dir)?;
        let legacy = state::read(&dir)?;
        let path = dir.join(STORE_FILE);
        if !exists(&path)? {
            if legacy.is_none() && exists(&dir.join(MIGRATED_FILE))? {
                // Starting empty here would repeat every id the old marks covered.
                return Err(StoreError::Corrupt {
                    path,
                    reason: format!(
                        "it is missing, but {MIGRATED_FILE} shows its marks were moved into it"
                    ),
                });
            }
            create(&dir)?;
        }
        let database = open_database(&path)?;
        let marks = read_marks(&database).map_err(|error| open_error(&path, error))?;
        let identity = FileIdentity::of(&path)
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        let inner = Mutex::new(Inner { database: Some(database), marks });
        let store = Self { dir, path, identity, inner, _lock: lock };
        store.write(|tx| {
            let mut meta = tx.open_table(META)?;
            let opens = meta.get(META_OPENS)?.map_or(0, |value| value.value());
            meta.insert(META_OPENS, opens.saturating_add(1))?;
            Ok(((), Some(Vec::new())))
        })?;
        if let Some(legacy) = legacy {
            store.import(&legacy.marks())?;
            state::retire(&store.dir)?;
        }
        Ok(store)
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock();
        let get = |key| inner.marks.get(&*key_name(key)).copied().unwrap_or(0);
        Snapshot {
            worker_id: 0,
            snowflake_ms: get(Key::Snowflake),
            timestamp_ms: get(Key::Mark(&Mark::Timestamp)),
            uuid7_ms: get(Key::Mark(&Mark::Uuid7)),
            ulid_ms: get(Key::Mark(&Mark::Ulid)),
            ksuid_ms: get(Key::Mark(&Mark::Ksuid)),
            counters: inner
                .marks
                .range::<str, _>((Bound::Included(COUNTER_PREFIX), Bound::Unbounded))
                .map_while(|(key, value)| Some((key.strip_prefix(COUNTER_PREFIX)?, *value)))
                // A name that is not valid (from a hand-edited `state.json`) can never be asked
                // for; it stays in the store untouched.
                .filter_map(|(name, value)| Some((CounterName::parse(name).ok()?, value)))
                .collect(),
            retired_counters: inner
                .marks
                .range::<str, _>((Bound::Included(RETIRED_PREFIX), Bound::Unbounded))
                .map_while(|(key, value)| Some((key.strip_prefix(RETIRED_PREFIX)?, *value)))
                // Used again since it was retired: a counter like any other.
                .filter(|(name, _)| !inner.marks.contains_key(&counter_key(name)))
                .filter_map(|(name, value)| Some((CounterName::parse(name).ok()?, value)))
                .collect(),
        }
    }

    /// Retires counter `name` in one commit: its `counter:` key goes, its value is kept as
    /// `retired:<name>` (never lowered). `None` when it has no mark.
    pub fn retire_counter(&self, name: &CounterName) -> Result<Option<u64>, StoreError> {
        let live = counter_key(name.as_str());
        let retired = format!("{RETIRED_PREFIX}{}", name.as_str());
        let mark = self.write(|tx| {
            let mut marks = tx.open_table(MARKS)?;
            let Some(mark) = marks.remove(live.as_str())?.map(|value| value.value()) else {
                return Ok((None, None));
            };
            let before = marks.get(retired.as_str())?.map_or(0, |value| value.value());
            let kept = mark.max(before);
            marks.insert(retired.as_str(), kept)?;
            Ok((Some(kept), Some(vec![(retired.clone(), kept)])))
        })?;
        if mark.is_some() {
            // Committed: the key is gone on disk, so it goes from the copy too.
            self.inner.lock().marks.remove(&live);
        }
        Ok(mark)
    }

    /// Every counter as `name=value,name=value`, the form `IDGEN_SEED_COUNTERS` reads: what an
    /// operator moving this data dir to Redis seeds with (the store is opaque, unlike the old
    /// `state.json`). Opening the store locks the directory, so its server must be stopped,
    /// and the values are final.
    pub fn counter_seeds(&self) -> String {
        let seeds: Vec<String> = self
            .snapshot()
            .counters
            .iter()
            .map(|(name, value)| format!("{}={value}", name.as_str()))
            .collect();
        seeds.join(",")
    }

    pub fn mark(&self, key: Key<'_>) -> u64 {
        self.inner.lock().marks.get(&*key_name(key)).copied().unwrap_or(0)
    }

    /// Makes `key` durable at `target` unless it already is at `needed` or above; returns the
    /// durable value. Blocks on disk I/O.
    pub fn reserve(&self, key: Key<'_>, needed: u64, target: u64) -> Result<u64, StoreError> {
        let name = key_name(key);
        if let Some(&current) = self.inner.lock().marks.get(&*name)
            && current >= needed
        {
            // Another request made it durable while this one waited.
            return Ok(current);
        }
        self.write(|tx| {
            let mut marks = tx.open_table(MARKS)?;
            let current = marks.get(&*name)?.map_or(0, |value| value.value());
            if current >= needed {
                // Committed by another call between the check above and this transaction,
                // which copied it into memory already: nothing to write.
                return Ok((current, None));
            }
            marks.insert(&*name, target)?;
            Ok((target, Some(vec![(name.into_owned(), target)])))
        })
    }

    /// Sets every mark of `high_water` (lowering the reserved ones to what was issued), in one
    /// commit; marks it does not name are kept.
    pub fn settle(&self, high_water: &Snapshot) -> Result<(), StoreError> {
        let mut wanted: Vec<(String, u64)> = [
            (Key::Snowflake, high_water.snowflake_ms),
            (Key::Mark(&Mark::Timestamp), high_water.timestamp_ms),
            (Key::Mark(&Mark::Uuid7), high_water.uuid7_ms),
            (Key::Mark(&Mark::Ulid), high_water.ulid_ms),
            (Key::Mark(&Mark::Ksuid), high_water.ksuid_ms),
        ]
        .into_iter()
        .map(|(key, value)| (key_name(key).into_owned(), value))
        .collect();
        wanted.extend(
            high_water.counters.iter().map(|(name, value)| (counter_key(name.as_str()), *value)),
        );
        self.set_marks(wanted, |current, value| current != Some(value))
    }

    /// The worker id this directory issues snowflakes with: recorded by the first server, and
    /// a refusal for any other, since two ids on one mark history would let the old one be
    /// leased or configured elsewhere while its snowflakes continue here.
    pub fn bind_worker(&self, worker_id: u16) -> Result<(), StoreError> {
        let recorded = self.write(|tx| {
            let mut meta = tx.open_table(META)?;
            let recorded = meta.get(META_WORKER_ID)?.map(|value| value.value());
            if recorded.is_some() {
                return Ok((recorded, None));
            }
            meta.insert(META_WORKER_ID, u64::from(worker_id))?;
            Ok((None, Some(Vec::new())))
        })?;
        match recorded {
            Some(recorded) if recorded != u64::from(worker_id) => Err(StoreError::WorkerId {
                path: self.dir.clone(),
                recorded,
                configured: worker_id,
            }),
            _ => Ok(()),
        }
    }

    /// Records `layout` in a store that has none, and refuses a store whose snowflakes were
    /// issued with another: changing it in place would break their order and uniqueness. A
    /// store that was used before layouts existed (a worker id or a snowflake mark recorded)
    /// counts as Twitter's.
    pub fn bind_layout(&self, layout: Layout) -> Result<(), StoreError> {
        let recorded = self.write(|tx| {
            let mut meta = tx.open_table(META)?;
            if let Some(code) = meta.get(META_SNOWFLAKE_LAYOUT)?.map(|value| value.value()) {
                return Ok((code, None));
            }
            let used = meta.get(META_WORKER_ID)?.is_some()
                || tx.open_table(MARKS)?.get(&*key_name(Key::Snowflake))?.is_some();
            let code = if used { Layout::TWITTER.code() } else { layout.code() };
            meta.insert(META_SNOWFLAKE_LAYOUT, code)?;
            Ok((code, Some(Vec::new())))
        })?;
        if recorded == layout.code() {
            return Ok(());
        }
        let recorded = Layout::from_code(recorded)
            .map_or_else(|| format!("layout code {recorded}"), |layout| layout.fingerprint());
        Err(StoreError::Layout { path: self.dir.clone(), recorded, configured: layout })
    }

    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.identity
            .check()
            .map_err(|source| StoreError::Write { path: self.path.clone(), source })?;
        let path = self.dir.join(PROBE_FILE);
        let result = fs::write(&path, b"ok").and_then(|()| fs::remove_file(&path));
        result.map_err(|source| StoreError::Write { path, source })
    }

    /// Raises each mark to the given value where it is lower, in one commit (an old
    /// `state.json`'s marks: importing them twice changes nothing).
    fn import(&self, marks: &[(String, u64)]) -> Result<(), StoreError> {
        self.set_marks(marks.to_vec(), |current, value| {
            current.is_none_or(|current| current < value)
        })
    }

    /// Writes each `(key, value)` for which `replace(current, value)`, in one commit.
    fn set_marks(
        &self,
        wanted: Vec<(String, u64)>,
        replace: impl Fn(Option<u64>, u64) -> bool,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut marks = tx.open_table(MARKS)?;
            let mut written = Vec::new();
            for (key, value) in wanted {
                let current = marks.get(key.as_str())?.map(|current| current.value());
                if replace(current, value) {
                    marks.insert(key.as_str(), value)?;
                    written.push((key, value));
                }
            }
            Ok(((), (!written.is_empty()).then_some(written)))
        })
    }

    /// Runs `change` in one write transaction and commits it durably when it changed anything,
    /// then copies the marks it wrote into memory. Any failure closes the database: the next
    /// call reopens it from disk.
    fn write<T>(
        &self,
        change: impl FnOnce(&WriteTransaction) -> Result<(T, Changed), redb::Error>,
    ) -> Result<T, StoreError> {
        let mut inner = self.inner.lock();
        let database = self.usable(&mut inner)?;
        let result = (|| {
            let tx = database.begin_write()?;
            let (value, changed) = change(&tx)?;
            match &changed {
                Some(_) => tx.commit()?,
                None => tx.abort()?,
            }
            Ok::<_, redb::Error>((value, changed))
        })();
        match result {
            Ok((value, changed)) => {
                inner.marks.extend(changed.into_iter().flatten());
                Ok(value)
            }
            Err(error) => {
                inner.database = None;
                Err(store_error(&self.path, error))
            }
        }
    }

    /// The open database, reopened (and the in-memory marks reloaded) after a failed write;
    /// an error if the store file was deleted or replaced since the store opened.
    fn usable<'a>(&self, inner: &'a mut Inner) -> Result<&'a Database, StoreError> {
        self.identity
            .check()
            .map_err(|source| StoreError::Write { path: self.path.clone(), source })?;
        if inner.database.is_none() {
            let database = open_database(&self.path)?;
            inner.marks = read_marks(&database).map_err(|error| store_error(&self.path, error))?;
            inner.database = Some(database);
        }
        Ok(inner.database.as_ref().expect("opened above"))
    }
}

/// Builds an empty store as `store.redb.new` and renames it into place, durably.
fn create(dir: &Path) -> Result<(), StoreError> {
    let new = dir.join(NEW_STORE_FILE);
    let write_error = |source| StoreError::Write { path: new.clone(), source };
    match fs::remove_file(&new) {
        // A leftover of a start that crashed while creating: nothing was ever issued from it.
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(write_error(source)),
    }
    let result = (|| {
        let database = Database::builder().create(&new)?;
        let tx = database.begin_write()?;
        tx.open_table(META)?.insert(META_FORMAT, FORMAT)?;
        tx.open_table(MARKS)?;
        tx.commit()?;
        Ok::<_, redb::Error>(())
    })();
    result.map_err(|error| store_error(&new, error))?;
    fs::rename(&new, dir.join(STORE_FILE)).map_err(write_error)?;
    sync_dir(dir).map_err(write_error)
}

/// Opens an existing store and checks that it is one of ours, in our format.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    let database = Database::builder().open(path).map_err(|error| open_error(path, error))?;
    let format = (|| {
        let tx = database.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok::<_, redb::Error>(meta.get(META_FORMAT)?.map(|value| value.value()))
    })()
    .map_err(|error| open_error(path, error))?;
    match format {
        Some(FORMAT) => Ok(database),
        Some(other) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("store format {other} is not {FORMAT}"),
        }),
        None => Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: "it has no idgen store format".to_owned(),
        }),
    }
}

fn read_marks(database: &Database) -> Result<BTreeMap<String, u64>, redb::Error> {
    let tx = database.begin_read()?;
    let table = tx.open_table(MARKS)?;
    let mut marks = BTreeMap::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        marks.insert(key.value().to_owned(), value.value());
    }
    Ok(marks)
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists().map_err(|source| StoreError::Open { path: path.to_owned(), source })
}

/// A failure to open an existing store: permissions and the like are [`StoreError::Open`];
/// anything that says the file is not a whole store is [`StoreError::Corrupt`], so the server
/// refuses to start instead of starting from zero.
fn open_error(path: &Path, error: impl Into<redb::Error>) -> StoreError {
    let path = path.to_owned();
    match error.into() {
        redb::Error::Io(source)
            if !matches!(
                source.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            StoreError::Open { path, source }
        }
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked { path },
        other => StoreError::Corrupt { path, reason: other.to_string() },
    }
}

/// A failure while the store is in use; the OS error is kept for the log.
fn store_error(path: &Path, error: redb::Error) -> StoreError {
    let path = path.to_owned();
    match error {
        redb::Error::Io(source) => StoreError::Write { path, source },
        redb::Error::Corrupted(reason) => StoreError::Corrupt { path, reason },
        other => StoreError::Write { path, source: io::Error::other(other.to_string()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::embedded::state::STATE_FILE;

    fn counter(name: &str) -> Mark {
        Mark::Counter(CounterName::parse(name).unwrap())
    }

    const SNOWFLAKE: Key<'static> = Key::Snowflake;
    const TIMESTAMP: Key<'static> = Key::Mark(&Mark::Timestamp);

    #[test]
    fn a_retired_counter_keeps_its_mark_but_is_not_loaded_until_used_again() {
        let dir = tempfile::tempdir().unwrap();
        let name = CounterName::parse("orders").unwrap();
        let orders = counter("orders");
        {
            let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
            store.reserve(Key::Mark(&orders), 10, 1000).unwrap();
            store.reserve(Key::Mark(&counter("other")), 1, 5).unwrap();
            assert_eq!(store.retire_counter(&name).unwrap(), Some(1000));
            // Already retired: nothing left to retire.
            assert_eq!(store.retire_counter(&name).unwrap(), None);
            assert_eq!(store.mark(Key::Mark(&orders)), 0);
        }
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        let snapshot = store.snapshot();
        assert_eq!(snapshot.counters, vec![(CounterName::parse("other").unwrap(), 5)]);
        assert_eq!(snapshot.retired_counters, vec![(name.clone(), 1000)]);
        // Used again (above its mark, as the issuing layer starts it): a counter like any
        // other; retired again later, the kept mark never goes down.
        store.reserve(Key::Mark(&orders), 1001, 2000).unwrap();
        let snapshot = store.snapshot();
        assert!(snapshot.retired_counters.is_empty());
        assert_eq!(snapshot.counters.len(), 2);
        assert_eq!(store.retire_counter(&name).unwrap(), Some(2000));
        assert_eq!(store.snapshot().retired_counters, vec![(name, 2000)]);
    }

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
        assert!(!path.join(NEW_STORE_FILE).exists());
    }

    #[test]
    fn settle_rewrites_marks_to_the_high_water() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        store.reserve(SNOWFLAKE, 1, 5000).unwrap();
        store.reserve(Key::Mark(&counter("a")), 1, 1000).unwrap();
        store.reserve(Key::Mark(&counter("b")), 1, 1000).unwrap();
        let high = Snapshot {
            snowflake_ms: 4600,
            counters: vec![(CounterName::parse("a").unwrap(), 3)],
            ..Snapshot::default()
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
        assert!(matches!(second, Err(StoreError::Locked { .. })), "{:?}", second.err());
    }

    #[test]
    fn a_corrupt_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"{\"format\": 1, \"snowflake_mark_ms\": ").unwrap();
        let result = EmbeddedStore::open(dir.path().to_owned());
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{:?}", result.err());
    }

    #[test]
    fn a_store_file_that_is_not_a_whole_store_is_refused() {
        let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for (what, bytes) in
            [("empty", Vec::new()), ("garbage", garbage), ("short", b"redb".to_vec())]
        {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(STORE_FILE), &bytes).unwrap();
            let result = EmbeddedStore::open(dir.path().to_owned());
            assert!(
                matches!(result, Err(StoreError::Corrupt { .. })),
                "{what}: {:?}",
                result.err()
            );
        }
    }

    #[test]
    fn a_damaged_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
            for i in 0..500 {
                store.reserve(Key::Mark(&counter(&format!("c{i}"))), 1, 1000 + i).unwrap();
            }
        }
        let path = dir.path().join(STORE_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len();
        for byte in &mut bytes[..len.min(1 << 20)] {
            *byte = !*byte;
        }
        fs::write(&path, &bytes).unwrap();
        let result = EmbeddedStore::open(dir.path().to_owned());
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{:?}", result.err());
        // A truncated one as well.
        fs::write(&path, &bytes[..len / 3]).unwrap();
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

    #[test]
    fn the_worker_id_is_recorded_by_the_first_server() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
            store.bind_worker(3).unwrap();
            store.bind_worker(3).unwrap();
        }
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        store.bind_worker(3).unwrap();
        let refused = store.bind_worker(4);
        assert!(
            matches!(refused, Err(StoreError::WorkerId { recorded: 3, configured: 4, .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn the_layout_is_recorded_once_and_a_store_from_before_layouts_is_twitter() {
        let fresh = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(fresh.path().to_owned()).unwrap();
            store.bind_layout(Layout::JS53).unwrap();
            store.bind_worker(3).unwrap();
        }
        let store = EmbeddedStore::open(fresh.path().to_owned()).unwrap();
        store.bind_layout(Layout::JS53).unwrap();
        for other in [Layout::TWITTER, Layout::SONYFLAKE] {
            let refused = store.bind_layout(other);
            assert!(
                matches!(&refused, Err(StoreError::Layout { recorded, .. }) if *recorded == Layout::JS53.fingerprint()),
                "{refused:?}"
            );
        }
        // A store a release before layouts used (its worker id recorded, no layout): Twitter's.
        let old = tempfile::tempdir().unwrap();
        EmbeddedStore::open(old.path().to_owned()).unwrap().bind_worker(0).unwrap();
        let store = EmbeddedStore::open(old.path().to_owned()).unwrap();
        assert!(matches!(store.bind_layout(Layout::JS53), Err(StoreError::Layout { .. })));
        store.bind_layout(Layout::TWITTER).unwrap();
    }

    const OLD_STATE: &str = r#"{"format": 1, "snowflake_mark_ms": 5000, "timestamp_mark_ms": 4000,
        "counters": {"orders": 300, "invoices": 20}}"#;

    fn assert_old_marks(store: &EmbeddedStore) {
        assert_eq!(store.mark(SNOWFLAKE), 5000);
        assert_eq!(store.mark(TIMESTAMP), 4000);
        assert_eq!(store.mark(Key::Mark(&counter("orders"))), 300);
        assert_eq!(store.mark(Key::Mark(&counter("invoices"))), 20);
    }

    #[test]
    fn an_old_state_file_is_migrated_once_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), OLD_STATE).unwrap();
        {
            let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
            assert_old_marks(&store);
            store.reserve(Key::Mark(&counter("orders")), 301, 1300).unwrap();
        }
        assert!(!dir.path().join(STATE_FILE).exists());
        assert_eq!(fs::read_to_string(dir.path().join(MIGRATED_FILE)).unwrap(), OLD_STATE);
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(store.mark(Key::Mark(&counter("orders"))), 1300, "not imported again");
        assert_eq!(store.mark(SNOWFLAKE), 5000);
    }

    #[test]
    fn a_migration_interrupted_after_the_import_imports_again_without_lowering() {
        // The crash point: marks committed into the store, `state.json` not yet renamed.
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
            store.reserve(SNOWFLAKE, 1, 9000).unwrap();
            store.reserve(Key::Mark(&counter("invoices")), 1, 10).unwrap();
        }
        fs::write(dir.path().join(STATE_FILE), OLD_STATE).unwrap();
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(store.mark(SNOWFLAKE), 9000, "the higher mark wins");
        assert_eq!(store.mark(TIMESTAMP), 4000);
        assert_eq!(store.mark(Key::Mark(&counter("invoices"))), 20);
        assert_eq!(store.mark(Key::Mark(&counter("orders"))), 300);
    }

    #[test]
    fn a_migration_interrupted_while_creating_the_store_starts_it_again() {
        // The crash point: `store.redb.new` half made, `state.json` untouched.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), OLD_STATE).unwrap();
        fs::write(dir.path().join(NEW_STORE_FILE), b"half a store").unwrap();
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        assert_old_marks(&store);
        assert!(!dir.path().join(NEW_STORE_FILE).exists());
    }

    #[test]
    fn a_migrated_dir_without_its_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), OLD_STATE).unwrap();
        drop(EmbeddedStore::open(dir.path().to_owned()).unwrap());
        fs::remove_file(dir.path().join(STORE_FILE)).unwrap();
        let result = EmbeddedStore::open(dir.path().to_owned());
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{:?}", result.err());
    }

    #[test]
    fn a_deleted_store_file_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        store.reserve(SNOWFLAKE, 1, 10).unwrap();
        fs::remove_file(dir.path().join(STORE_FILE)).unwrap();
        assert!(matches!(store.reserve(SNOWFLAKE, 11, 20), Err(StoreError::Write { .. })));
        assert!(store.check_writable().is_err());
        // Already durable at `needed`: still answered from memory.
        assert_eq!(store.reserve(SNOWFLAKE, 10, 20).unwrap(), 10);
    }

    #[test]
    fn counter_seeds_are_every_counter_as_idgen_seed_counters_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(store.counter_seeds(), "");
        store.reserve(Key::Mark(&counter("orders")), 1, 1000).unwrap();
        store.reserve(Key::Mark(&counter("a")), 1, 7).unwrap();
        store.reserve(SNOWFLAKE, 1, 99).unwrap();
        assert_eq!(store.counter_seeds(), "a=7,orders=1000");
    }

    #[test]
    fn keys_have_stable_names() {
        assert_eq!(key_name(SNOWFLAKE), "snowflake");
        assert_eq!(key_name(TIMESTAMP), "timestamp");
        assert_eq!(key_name(Key::Mark(&Mark::Uuid7)), "uuid7");
        assert_eq!(key_name(Key::Mark(&Mark::Ulid)), "ulid");
        assert_eq!(key_name(Key::Mark(&Mark::Ksuid)), "ksuid");
        assert_eq!(key_name(Key::Mark(&counter("a.b-c_d"))), "counter:a.b-c_d");
    }
}
