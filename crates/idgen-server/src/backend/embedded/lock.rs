//! One server per data directory: an exclusive OS lock on the directory itself, and a check
//! that the store file a server writes is still the one at the store's path.
//!
//! Why the directory and not a file in it: a lock lives on an inode. A `lock` file can be
//! deleted while its holder runs; the next server then creates a new `lock` file, locks that
//! one, and both servers issue from the same marks (1, 2, 3 ... twice). The directory is the
//! one thing a second server must share to share marks, and `rmdir` refuses it while it holds
//! the store; so the lock is `flock` on the directory's own descriptor (Linux allows it on a
//! read-only one), held for as long as the server lives and released by the kernel when the
//! process dies, even by `kill -9`.
//!
//! The old `lock` file is still created and locked as well, so a server of the previous
//! release (which only knows that file) is kept off a directory a new one is using, and the
//! other way round.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock file of the previous release; locked too, see the module comment.
pub(super) const LEGACY_LOCK_FILE: &str = "lock";

/// Both locks; the kernel releases them when this is dropped or the process ends.
#[derive(Debug)]
pub(super) struct DirLock {
    _dir: File,
    _legacy: File,
}

impl DirLock {
    /// Locks `dir` (which must exist) or says which server holds it.
    pub(super) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let handle =
            File::open(dir).map_err(|source| StoreError::Open { path: dir.to_owned(), source })?;
        try_lock(&handle, dir, dir)?;
        let legacy_path = dir.join(LEGACY_LOCK_FILE);
        let legacy = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&legacy_path)
            .map_err(|source| StoreError::Open { path: legacy_path.clone(), source })?;
        try_lock(&legacy, &legacy_path, dir)?;
        Ok(Self { _dir: handle, _legacy: legacy })
    }
}

fn try_lock(file: &File, path: &Path, dir: &Path) -> Result<(), StoreError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked { path: dir.to_owned() }),
        Err(TryLockError::Error(source)) => Err(StoreError::Open { path: path.to_owned(), source }),
    }
}

/// Which file a path named when the store opened it, so that a deleted or replaced store file
/// is noticed: writes into an unlinked file would look durable but be lost at the next start.
#[derive(Debug, Clone)]
pub(super) struct FileIdentity {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl FileIdentity {
    pub(super) fn of(path: &Path) -> io::Result<Self> {
        Ok(Self { path: path.to_owned(), id: file_id(path)? })
    }

    /// `Err` when the path is gone or names another file now.
    pub(super) fn check(&self) -> io::Result<()> {
        let now = file_id(&self.path).map_err(|error| {
            io::Error::new(error.kind(), format!("the store file was deleted ({error})"))
        })?;
        if now == self.id {
            Ok(())
        } else {
            Err(io::Error::other("the store file was replaced by another file"))
        }
    }
}

/// (device, inode); `None` where the platform has no such thing (then nothing is checked).
#[cfg(unix)]
fn file_id(path: &Path) -> io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    Ok(Some((metadata.dev(), metadata.ino())))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> io::Result<Option<(u64, u64)>> {
    std::fs::metadata(path).map(|_| None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_stays_locked_after_its_lock_file_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let _first = DirLock::acquire(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(LEGACY_LOCK_FILE)).unwrap();
        let second = DirLock::acquire(dir.path());
        assert!(matches!(second, Err(StoreError::Locked { .. })), "{second:?}");
    }

    #[test]
    fn a_released_lock_can_be_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        drop(DirLock::acquire(dir.path()).unwrap());
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        std::fs::write(&path, b"a").unwrap();
        // Held open, as the store holds its file: the inode cannot be reused meanwhile.
        let _open = File::open(&path).unwrap();
        let identity = FileIdentity::of(&path).unwrap();
        identity.check().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(identity.check().is_err());
        std::fs::write(dir.path().join("other"), b"b").unwrap();
        std::fs::rename(dir.path().join("other"), &path).unwrap();
        assert!(identity.check().is_err());
    }
}
