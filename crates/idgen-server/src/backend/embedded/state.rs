//! The previous release's `state.json` (format 1): read once, when a data directory that still
//! has one is opened, so that its marks can be carried into the store (see `store.rs`), then
//! renamed to `state.json.migrated` (kept for the operator, never read again).
//!
//! The old writer replaced the file atomically (temp file, fsync, rename, fsync the directory),
//! so a `state.json` is always whole; a file that does not parse is corrupt and the server
//! refuses to start rather than start from zero. `state.json.tmp` is the old writer's temp file
//! and means nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::StoreError;
use super::store::{Key, counter_key, key_name};
use crate::backend::Mark;

pub(super) const STATE_FILE: &str = "state.json";
/// What `state.json` becomes once its marks are durable in the store.
pub(super) const MIGRATED_FILE: &str = "state.json.migrated";
const FORMAT: u32 = 1;

/// The file's contents, exactly as the previous release wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateFile {
    format: u32,
    /// Unix ms; every snowflake issued so far has a timestamp at or below it.
    snowflake_mark_ms: u64,
    /// Unix ms; every timestamp id issued so far is at or below it.
    timestamp_mark_ms: u64,
    /// Counter name -> every value issued so far is at or below it.
    #[serde(default)]
    counters: BTreeMap<String, u64>,
}

impl StateFile {
    /// Every mark as the store names it. A counter name that is not valid (a hand-edited file)
    /// is carried over as well: it can never be asked for, but nothing is dropped.
    pub(super) fn marks(&self) -> Vec<(String, u64)> {
        let mut marks = vec![
            (key_name(Key::Snowflake).into_owned(), self.snowflake_mark_ms),
            (key_name(Key::Mark(&Mark::Timestamp)).into_owned(), self.timestamp_mark_ms),
        ];
        marks.extend(self.counters.iter().map(|(name, value)| (counter_key(name), *value)));
        marks
    }
}

/// `<dir>/state.json`, if there is one.
pub(super) fn read(dir: &Path) -> Result<Option<StateFile>, StoreError> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Open { path, source }),
    };
    let corrupt = |reason: String| StoreError::Corrupt { path: path.clone(), reason };
    // Never start from zero on a file we cannot read: that would repeat every id.
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.format != FORMAT {
        return Err(corrupt(format!("format {} is not {FORMAT}", state.format)));
    }
    Ok(Some(state))
}

/// Renames `state.json` to `state.json.migrated`, durably. Only called once every mark of the
/// file is durable in the store: until then a crash leaves `state.json` in place and the next
/// start imports it again (taking the higher of each mark, so importing twice changes nothing).
pub(super) fn retire(dir: &Path) -> Result<(), StoreError> {
    let from = dir.join(STATE_FILE);
    let result = fs::rename(&from, dir.join(MIGRATED_FILE)).and_then(|()| sync_dir(dir));
    result.map_err(|source| StoreError::Write { path: from, source })
}

/// Makes a rename or a new file in `dir` durable.
#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Windows has no directory fsync; a rename is as durable as the OS makes it.
#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_file_gives_every_mark() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"format": 1, "snowflake_mark_ms": 9, "timestamp_mark_ms": 8,
            "counters": {"orders": 7, "not a name!": 6}}"#;
        fs::write(dir.path().join(STATE_FILE), text).unwrap();
        let state = read(dir.path()).unwrap().expect("a state file");
        let mut marks = state.marks();
        marks.sort();
        let expected =
            [("counter:not a name!", 6), ("counter:orders", 7), ("snowflake", 9), ("timestamp", 8)];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(key, value)| ((*key).to_owned(), *value)).collect();
        assert_eq!(marks, expected);
    }

    #[test]
    fn no_file_is_none_and_a_bad_one_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        for text in [&b"{\"format\": 1, \"snowflake_mark_ms\": "[..], br#"{"format": 2}"#] {
            fs::write(dir.path().join(STATE_FILE), text).unwrap();
            let result = read(dir.path());
            assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{result:?}");
        }
    }

    #[test]
    fn retire_keeps_the_file_under_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"{}").unwrap();
        retire(dir.path()).unwrap();
        assert!(!dir.path().join(STATE_FILE).exists());
        assert_eq!(fs::read(dir.path().join(MIGRATED_FILE)).unwrap(), b"{}");
    }
}
