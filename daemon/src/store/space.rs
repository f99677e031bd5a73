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

/// Room for the shared-memory index and SQLite's temporary files, kept free beside the budget.
pub(crate) const MARGIN: u64 = 64 * 1024;

/// Most bytes the WAL may take between two checkpoints for a buffer of `room` bytes: a
/// sixteenth, within 256 KiB and 32 MiB.
pub(crate) fn wal_cap(room: u64) -> u64 {
    (room / 16).clamp(256 * 1024, 32 << 20)
}

/// Size of the reserve file for a buffer of `room` bytes: a sixty-fourth, within 64 KiB and
/// 4 MiB, and at least the WAL's bound and a margin: on a full disk, the checkpoint that moves
/// the WAL into the database file (which grows as the log is appended to) must fit in it before
/// anything can be deleted.
pub(crate) fn reserve_size(room: u64) -> u64 {
    (room / 64)
        .clamp(64 * 1024, 4 << 20)
        .max(wal_cap(room) + MARGIN)
}

/// What the buffer may take and keep aside, given its configured budget and its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Bytes the buffer may use (pages in use, WAL, shm, reserve).
    pub(crate) budget: u64,
    /// The WAL's bound.
    pub(crate) wal_cap: u64,
    /// The reserve's size.
    pub(crate) reserve: u64,
    /// The disk, not `max_size`, sets the budget.
    pub(crate) disk_limited: bool,
}

/// The budget is `max_size`, or what the disk can hold for the buffer when that is less: its files
/// plus the free space, minus what its files may still grow by (the WAL up to its bound, the part
/// of the reserve that is missing) and a margin. Less the missing part of the reserve in any case,
/// so that writing it back keeps the buffer within `max_size`.
///
/// The WAL counts once: what it takes now is in `usage` (and so in what the buffer uses), and only
/// its growth up to the bound is set aside. A checkpoint copies the WAL's pages into the database
/// file, which may grow by the pages the WAL holds beyond its end; those pages are already counted
/// as pages in use (`PRAGMA page_count` sees them), so they need no room of their own here.
pub(crate) fn plan(max_size: u64, usage: Usage, free: Option<u64>) -> Plan {
    let Some(free) = free else {
        return Plan {
            budget: max_size,
            wal_cap: wal_cap(max_size),
            reserve: 0,
            disk_limited: false,
        };
    };
    let room = usage.total().saturating_add(free);
    let base = max_size.min(room);
    let wal = wal_cap(base);
    let reserve = reserve_size(base);
    let missing = reserve.saturating_sub(usage.reserve);
    let aside = wal.saturating_sub(usage.wal) + missing + MARGIN;
    let configured = max_size.saturating_sub(missing);
    let on_disk = room.saturating_sub(aside);
    Plan {
        budget: configured.min(on_disk),
        wal_cap: wal,
        reserve,
        disk_limited: on_disk < configured,
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
    fn the_budget_shrinks_to_what_the_disk_holds() {
        let usage = Usage {
            db: 6 << 20,
            wal: 256 * 1024,
            shm: 32 * 1024,
            reserve: 0,
        };
        let roomy = plan(1 << 30, usage, Some(100 << 30));
        assert_eq!(roomy.budget, (1 << 30) - reserve_size(1 << 30));
        assert_eq!(roomy.wal_cap, 32 << 20);
        let full = plan(1 << 30, usage, Some(0));
        assert!(full.budget < usage.total(), "{full:?}");
        assert_eq!(full.reserve, reserve_size(usage.total()));
        let unknown = plan(8 << 20, usage, None);
        assert_eq!(unknown.budget, 8 << 20);
    }

    #[test]
    fn the_wal_counts_once_and_the_disk_limit_is_told() {
        // A WAL at its bound needs no further room: the budget does not set its size aside
        // again, so a disk that another program filled does not shrink the budget by it.
        let cap = wal_cap(4 << 20);
        let at_bound = Usage {
            db: 3 << 20,
            wal: cap,
            shm: 32 * 1024,
            reserve: reserve_size(4 << 20),
        };
        let empty_wal = Usage { wal: 0, ..at_bound };
        let full = plan(64 << 20, at_bound, Some(0));
        let truncated = plan(64 << 20, empty_wal, Some(cap));
        assert!(full.disk_limited && truncated.disk_limited);
        assert_eq!(full.budget, at_bound.total() - MARGIN);
        // The same disk with the WAL's room free instead of allocated: the pages may take the
        // same (what counts as used is less by the WAL, and so is the budget).
        assert_eq!(truncated.budget + cap, full.budget);
        // Within `max_size` the configured budget rules.
        let roomy = plan(8 << 20, at_bound, Some(100 << 20));
        assert!(!roomy.disk_limited);
        assert_eq!(
            roomy.budget,
            (8 << 20) - (reserve_size(8 << 20) - at_bound.reserve)
        );
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
