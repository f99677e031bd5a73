//! What the buffer's files take on disk, the free space around them, and the reserve file that
//! lets a full disk recover without a person.
//!
//! Owns: the list of files the buffer owns (the database, its WAL and shared-memory index, the
//! reserve), their allocated size, `statvfs` of their directory, and creating and releasing the
//! reserve. Does not own: deciding what to drop (`trim`) or when (`writer`).
//!
//! The reserve is a file of zeros beside the database (`markoff.db-reserve`). When a commit fails
//! because the disk is full, whoever filled it, the writer deletes the reserve: the space it frees
//! lets SQLite write the WAL frames of the deletions that bring the buffer back under what the
//! disk can hold. The reserve is written again once the disk has room for it, so a restart on a
//! full disk finds it and never loops on "disk is full".

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The files of one buffer.
#[derive(Clone, Debug)]
pub(crate) struct Files {
    pub(crate) db: PathBuf,
    pub(crate) wal: PathBuf,
    pub(crate) shm: PathBuf,
    pub(crate) reserve: PathBuf,
}

/// Allocated bytes of each file of the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) db: u64,
    pub(crate) wal: u64,
    pub(crate) shm: u64,
    pub(crate) reserve: u64,
}

impl Usage {
    /// Everything the buffer takes on disk.
    pub(crate) fn total(&self) -> u64 {
        self.db + self.wal + self.shm + self.reserve
    }
}

impl Files {
    pub(crate) fn new(db: &Path) -> Self {
        let with = |suffix: &str| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        Self {
            db: db.to_owned(),
            wal: with("-wal"),
            shm: with("-shm"),
            reserve: with("-reserve"),
        }
    }

    /// What each file takes on disk now (blocks allocated, so a sparse file counts what it
    /// really uses); a missing file takes nothing.
    pub(crate) fn usage(&self) -> Usage {
        Usage {
            db: allocated(&self.db),
            wal: allocated(&self.wal),
            shm: allocated(&self.shm),
            reserve: allocated(&self.reserve),
        }
    }

    /// Bytes free for an unprivileged writer on the file system of the buffer.
    pub(crate) fn free_space(&self) -> io::Result<u64> {
        let dir = self
            .db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
        Ok(st.blocks_available().saturating_mul(st.fragment_size()))
    }

    /// Makes the reserve hold `bytes` of allocated zeros. Returns whether it wrote anything.
    /// Fails (leaving a shorter reserve) when the disk has no room for it.
    pub(crate) fn ensure_reserve(&self, bytes: u64) -> io::Result<bool> {
        let have = allocated(&self.reserve);
        if have >= bytes {
            return Ok(false);
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.reserve)?;
        let mut len = f.metadata()?.len();
        let zeros = vec![0u8; 64 * 1024];
        while len < bytes {
            let n = zeros
                .len()
                .min(usize::try_from(bytes - len).unwrap_or(zeros.len()));
            f.write_all(&zeros[..n])?;
            len += n as u64;
        }
        f.sync_all()?;
        Ok(true)
    }

    /// Deletes the reserve; returns the bytes it took.
    pub(crate) fn release_reserve(&self) -> io::Result<u64> {
        let had = allocated(&self.reserve);
        match std::fs::remove_file(&self.reserve) {
            Ok(()) => Ok(had),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Syncs the directory, so a created or deleted reserve survives a power cut.
    pub(crate) fn sync_dir(&self) -> io::Result<()> {
        match self.db.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }
}

fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.blocks().saturating_mul(512))
}

/// Whether a SQLite error means the disk (or the file system quota) is full.
pub(crate) fn is_disk_full(err: &rusqlite::Error) -> bool {
    match err {
        // SQLite's unix VFS reports ENOSPC and EDQUOT on a write as SQLITE_FULL.
        rusqlite::Error::SqliteFailure(e, _) => e.code == rusqlite::ErrorCode::DiskFull,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_counts_and_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("markoff.db"));
        assert_eq!(files.usage(), Usage::default());
        assert!(files.ensure_reserve(300_000).unwrap());
        assert!(!files.ensure_reserve(300_000).unwrap());
        let usage = files.usage();
        assert!(usage.reserve >= 300_000, "{usage:?}");
        assert_eq!(usage.total(), usage.reserve);
        assert!(files.free_space().unwrap() > 0);
        assert_eq!(files.release_reserve().unwrap(), usage.reserve);
        assert_eq!(files.release_reserve().unwrap(), 0);
        assert_eq!(files.usage().total(), 0);
    }

    #[test]
    fn a_full_disk_is_recognised() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(is_disk_full(&full));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(!is_disk_full(&busy));
    }
}
