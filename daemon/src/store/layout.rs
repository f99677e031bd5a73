//! The columnar layout driven directly, without the writer thread: for benchmarks and tools that
//! measure or inspect the storage engine itself (`bench layout`).
//!
//! Owns nothing of its own: each call is one of the store's steps (a commit's batch append, a
//! fold, the release of folded and synced batches, a history read) on a connection with the
//! buffer's pragmas.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::codec::{BatchRow, ChunkRow};
use super::{StoreError, fold, log, migrations, series, trim};

/// A buffer file in the columnar layout, opened for direct use.
#[derive(Debug)]
pub struct Layout {
    conn: Connection,
    next_seq: i64,
    unfolded: usize,
}

impl Layout {
    /// Opens (creating) `path` with the buffer's pragmas and schema, a page cache of
    /// `cache_kib` KiB and a WAL checkpoint every `checkpoint_pages` pages.
    ///
    /// # Errors
    /// The file cannot be opened or migrated.
    pub fn open(path: &Path, cache_kib: i64, checkpoint_pages: i64) -> Result<Self, StoreError> {
        let fail = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(fail)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        conn.pragma_update(None, "cache_size", -cache_kib)
            .map_err(fail)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)
            .map_err(fail)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(fail)?;
        migrations::open(&mut conn)?;
        let next_seq = log::resume_seq(&conn)?;
        Ok(Self {
            conn,
            next_seq,
            unfolded: 0,
        })
    }

    /// Commits `rows` as one batch (one transaction); returns the first seq they got.
    ///
    /// # Errors
    /// The commit failed.
    pub fn commit(&mut self, rows: &[BatchRow]) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        let first = self.next_seq;
        log::append(&tx, first, rows)?;
        tx.commit()?;
        self.next_seq += rows.len() as i64;
        self.unfolded += rows.len();
        Ok(first)
    }

    /// Readings committed since the last fold.
    pub fn unfolded(&self) -> usize {
        self.unfolded
    }

    /// Folds about `max_readings` of the oldest unfolded readings; returns how many it folded.
    ///
    /// # Errors
    /// The fold failed.
    pub fn fold(&mut self, max_readings: usize) -> Result<i64, StoreError> {
        let n = fold::fold(&mut self.conn, max_readings)?.map_or(0, |f| f.readings);
        self.unfolded = self
            .unfolded
            .saturating_sub(usize::try_from(n).unwrap_or(0));
        Ok(n)
    }

    /// Deletes the batches that are folded and synced up to `synced` (all folded ones without
    /// an uplink); returns the readings released.
    ///
    /// # Errors
    /// The deletion failed.
    pub fn release(&mut self, uplink: bool, synced: i64) -> Result<i64, StoreError> {
        Ok(trim::release_log(&mut self.conn, uplink, synced)?)
    }

    /// Sensor `sensor`'s readings with read times in `from..=to`, by time.
    ///
    /// # Errors
    /// The read failed.
    pub fn history(&self, sensor: i64, from: i64, to: i64) -> Result<Vec<ChunkRow>, StoreError> {
        let mut out = Vec::new();
        series::range(&self.conn, sensor, from, to, &mut out)?;
        Ok(out)
    }

    /// Folds into the database file whatever the WAL holds and empties it.
    ///
    /// # Errors
    /// The checkpoint failed.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }
}
