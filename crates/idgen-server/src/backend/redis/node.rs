//! What a Redis-mode node remembers in its own data dir (`redis-node.json`): the store identity
//! it works under and the high water of what Redis handed it, so that after a restart it still
//! notices a store that lost data, and so that `idgen-server recover` can raise every counter
//! above what this node handed out.
//!
//! Written atomically (temporary file, fsync, rename, fsync of the directory) when the identity
//! is adopted, about once a second while counters move, and at shutdown.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "redis-node.json";
const TEMP: &str = "redis-node.json.tmp";

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFile {
    /// The store identity this node worked under.
    #[serde(default)]
    pub store_id: Option<String>,
    /// Counter name -> the last value Redis handed this node.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Worker id -> the highest snowflake time (Unix ms) this node issued with it.
    #[serde(default)]
    pub workers: BTreeMap<u16, u64>,
    /// The last shared timestamp id handed to this node.
    #[serde(default)]
    pub timestamp_ms: u64,
}

impl NodeFile {
    /// The file in `dir`, or an empty one when there is none yet.
    pub fn load(dir: &Path) -> io::Result<NodeFile> {
        match fs::read(dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: {error}", FILE))
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(NodeFile::default()),
            Err(error) => Err(error),
        }
    }

    /// Replaces the file in `dir` atomically and durably (creating `dir` if needed).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let temp: PathBuf = dir.join(TEMP);
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
        let bytes = serde_json::to_vec_pretty(self).expect("the node file is plain data");
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, dir.join(FILE))?;
        File::open(dir)?.sync_all()
    }

    /// Raises what is recorded to what `other` says (never lowers a value).
    pub fn merge_high_water(&mut self, counters: &[(String, u64)], workers: &[(u16, u64)]) {
        for (name, value) in counters {
            let entry = self.counters.entry(name.clone()).or_default();
            *entry = (*entry).max(*value);
        }
        for (worker, value) in workers {
            let entry = self.workers.entry(*worker).or_default();
            *entry = (*entry).max(*value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_only_raises() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(NodeFile::load(dir.path()).unwrap(), NodeFile::default());
        let mut file = NodeFile { store_id: Some("t".into()), ..NodeFile::default() };
        file.merge_high_water(&[("orders".into(), 5)], &[(3, 100)]);
        file.merge_high_water(&[("orders".into(), 2)], &[(3, 50), (4, 1)]);
        file.save(&dir.path().join("nested")).unwrap();
        let read = NodeFile::load(&dir.path().join("nested")).unwrap();
        assert_eq!(read, file);
        assert_eq!(read.counters["orders"], 5);
        assert_eq!((read.workers[&3], read.workers[&4]), (100, 1));
        fs::write(dir.path().join(FILE), b"{").unwrap();
        assert!(NodeFile::load(dir.path()).is_err());
    }
}
