//! Disk budget and retention of the buffer.
//!
//! The budget covers every file the buffer owns: the database's pages in use, its WAL, its
//! shared-memory index and the reserve file (`space`). It is `max_size`, or less when the disk
//! cannot hold that much (whoever filled it): what the buffer's files take plus the free space,
//! less the room the WAL and the reserve need. When the buffer uses more, rows are dropped down to
//! 90 % of the budget, in this order (`trim`): the oldest fold of **synced** readings, then the
//! oldest readings whatever their sync state (a fold, or the oldest batch of the log when nothing
//! is folded), counted as synced or **unsynced**. Alarm events are never dropped. Batches whose
//! readings are folded (and synced, with an uplink) are released first: the chunks keep them, so
//! nothing is dropped. Folds of synced readings older than `retention` are removed as routine
//! housekeeping (without an uplink, every reading counts for retention). Every drop is counted in
//! `dropped_rows` (metrics and table) and logged; overflow drops at WARN.

use rusqlite::{Connection, OptionalExtension};
use tracing::{info, warn};

use super::READINGS_STREAM;
use super::StoreMetrics;
use super::{log, trim};
use crate::config::StoreConfig;

/// Why rows were dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Over budget; these rows were already synced.
    SyncedOverflow,
    /// Over budget with nothing synced left to drop: data that never reached the centre.
    UnsyncedOverflow,
    /// Older than `retention` (and synced, when there is an uplink).
    Retention,
}

impl DropReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncedOverflow => "synced_overflow",
            Self::UnsyncedOverflow => "unsynced_overflow",
            Self::Retention => "retention",
        }
    }
}

/// Size and extent of the buffer after maintenance.
#[derive(Debug)]
pub(crate) struct BudgetStatus {
    /// What the budget counts (pages in use, WAL, shm, reserve).
    pub(crate) used_bytes: u64,
    pub(crate) first_seq: i64,
}

/// Folds (or unfolded batches) dropped per maintenance pass at most, so that one pass never
/// holds the writer for long; the next pass goes on.
const MAX_DROPS: usize = 1_000;

/// Releases the log, applies retention, then brings the buffer under `budget` bytes (module
/// comment above).
pub(crate) fn enforce(
    conn: &mut Connection,
    cfg: &StoreConfig,
    budget: u64,
    options: super::StoreOptions,
    metrics: &StoreMetrics,
    now_ms: i64,
) -> Result<BudgetStatus, rusqlite::Error> {
    let synced = synced_upto(conn)?;
    let mut used = used_bytes(conn)?;
    if used > budget {
        // A long write-ahead log counts against the budget too; fold it back first.
        // On a full disk the database file may not grow by what the WAL holds: the deletions
        // below may still find room in the WAL.
        match conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            Err(err) if super::space::is_disk_full(&err) => {}
            other => other?,
        }
    }
    // Batches whose readings are all folded (and synced, with an uplink) live on in the chunks.
    // On a full disk these wait for the next pass: making room comes first.
    match trim::release_log(conn, options.uplink, synced) {
        Err(err) if super::space::is_disk_full(&err) => {}
        other => {
            other?;
        }
    }
    let retention_ms = i64::try_from(cfg.retention.as_millis()).unwrap_or(i64::MAX);
    let horizon = if options.uplink { synced } else { i64::MAX };
    let cutoff = now_ms.saturating_sub(retention_ms);
    // Readings stamped while the clock was not trusted are judged by their corrected time.
    let horizon = horizon.min(super::clock::retention_horizon(conn, cutoff)?);
    match trim::expire(conn, cutoff, horizon) {
        Err(err) if super::space::is_disk_full(&err) => {}
        other => report(metrics, DropReason::Retention, other?.retention),
    }

    let target = budget / 10 * 9;
    used = used_bytes(conn)?;
    if used > budget {
        // The deletions' own WAL frames are not counted while dropping: the pages they free are
        // what brings the buffer down, and the WAL is emptied after.
        let files = used.saturating_sub(pages_in_use(conn)?);
        let mut drops = 0;
        while used > target && drops < MAX_DROPS {
            drops += 1;
            let dropped = match trim::drop_oldest(conn, synced) {
                Err(err) if super::space::is_disk_full(&err) => {
                    // The deletion's WAL frames did not fit: empty the WAL, try once more.
                    let _wal_may_still_be_in_use =
                        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
                    trim::drop_oldest(conn, synced)?
                }
                other => other?,
            };
            let Some(dropped) = dropped else { break };
            tracing::debug!(
                component = "store",
                used,
                target,
                files,
                synced = dropped.synced,
                unsynced = dropped.unsynced,
                "Dropped the oldest readings."
            );
            report(metrics, DropReason::SyncedOverflow, dropped.synced);
            report(metrics, DropReason::UnsyncedOverflow, dropped.unsynced);
            used = pages_in_use(conn)? + files;
        }
        // The deletions' WAL frames go back into the database file first, so that the vacuum
        // (which writes frames of its own) finds the WAL empty. A vacuum that finds no room
        // leaves free pages behind, which the buffer reuses: they do not count as used.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        match vacuum(conn).and_then(|()| conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")) {
            Err(err) if super::space::is_disk_full(&err) => {}
            other => other?,
        }
        used = used_bytes(conn)?;
    }
    if used > budget {
        warn!(
            component = "store",
            used, budget, "Buffer still over its disk budget after dropping rows."
        );
    }
    let first_seq = log::held(conn)?.map_or(0, |(first, _)| first);
    Ok(BudgetStatus {
        used_bytes: used,
        first_seq,
    })
}

/// Gives the free pages back to the file system. The pragma frees one page per step, so every
/// row it returns is stepped through.
fn vacuum(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Highest synced readings seq (0 when nothing has been synced).
fn synced_upto(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row(
        "SELECT last_seq FROM sync_cursor WHERE stream = ?1",
        [READINGS_STREAM],
        |r| r.get(0),
    )
    .optional()
    .map(|v| v.unwrap_or(0))
}

/// Bytes in pages that hold data (free pages are reusable and excluded), plus what the
/// write-ahead log, the shared-memory index and the reserve take on disk.
pub(crate) fn used_bytes(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let others = conn.path().filter(|p| !p.is_empty()).map_or(0, |p| {
        let usage = super::space::Files::new(std::path::Path::new(p)).usage();
        usage.wal + usage.shm + usage.reserve
    });
    Ok(pages_in_use(conn)? + others)
}

/// Bytes in the database's pages that hold data.
fn pages_in_use(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(u64::try_from((pages - free).max(0) * page_size).unwrap_or(0))
}

fn report(metrics: &StoreMetrics, reason: DropReason, rows: i64) {
    if rows <= 0 {
        return;
    }
    metrics.count_dropped(reason.as_str(), u64::try_from(rows).unwrap_or(0));
    match reason {
        DropReason::Retention => info!(
            component = "store",
            rows,
            reason = reason.as_str(),
            "Removed readings past retention."
        ),
        DropReason::SyncedOverflow => warn!(
            component = "store",
            rows,
            reason = reason.as_str(),
            "Buffer over its disk budget; dropped the oldest synced readings."
        ),
        DropReason::UnsyncedOverflow => warn!(
            component = "store",
            rows,
            reason = reason.as_str(),
            "Buffer over its disk budget with nothing synced left; dropped the oldest UNSYNCED readings."
        ),
    }
}
