//! Disk budget and retention of the buffer.
//!
//! The budget covers every file the buffer owns: the database's pages in use, its WAL, its
//! shared-memory index and the reserve file (`space`). It is `max_size`, or less when the disk
//! cannot hold that much (whoever filled it): what the buffer's files take plus the free space,
//! less the room the WAL and the reserve need. When the buffer uses more, rows are dropped down to
//! 90 % of the budget, in this order:
//! the oldest **synced** readings, then the oldest **unsynced** readings. Alarm events are never
//! dropped. Synced readings older than `retention` are removed as routine housekeeping (without an
//! uplink, every reading counts for retention). Every drop is counted in `dropped_rows` (metrics
//! and table) and logged; overflow drops at WARN.

use rusqlite::{Connection, OptionalExtension, params};
use tracing::{info, warn};

use super::READINGS_STREAM;
use super::StoreMetrics;
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

/// Rows deleted per statement, so that one maintenance pass never holds the lock for long.
const CHUNK: i64 = 50_000;
/// Passes over budget before giving up for this round (index pages free slower than table pages).
const MAX_PASSES: usize = 20;

/// Applies retention, then brings the buffer under `budget` bytes (section comment above).
pub(crate) fn enforce(
    conn: &mut Connection,
    cfg: &StoreConfig,
    budget: u64,
    options: super::StoreOptions,
    metrics: &StoreMetrics,
    now_ms: i64,
) -> Result<BudgetStatus, rusqlite::Error> {
    let synced = synced_upto(conn)?;
    let retention_ms = i64::try_from(cfg.retention.as_millis()).unwrap_or(i64::MAX);
    let horizon = if options.uplink { synced } else { i64::MAX };
    let cutoff = now_ms.saturating_sub(retention_ms);
    // Readings stamped while the clock was not trusted are judged by their corrected time.
    let horizon = horizon.min(super::clock::retention_horizon(conn, cutoff)?);
    while drop_rows(conn, metrics, DropReason::Retention, |c| {
        delete_expired_chunk(c, horizon, cutoff)
    })? > 0
    {}

    let target = budget / 10 * 9;
    let mut used = used_bytes(conn)?;
    if used > budget {
        // A long write-ahead log counts against the budget too; fold it back first.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        used = used_bytes(conn)?;
    }
    let mut passes = 0;
    while used > budget && passes < MAX_PASSES {
        passes += 1;
        let rows = row_count_estimate(conn)?;
        if rows == 0 {
            break;
        }
        let per_row = (used / u64::try_from(rows).unwrap_or(1)).max(1);
        let want = i64::try_from((used.saturating_sub(target)).div_ceil(per_row))
            .unwrap_or(i64::MAX)
            .clamp(1, CHUNK);
        let from_synced =
            drop_on_full_disk(conn, metrics, DropReason::SyncedOverflow, synced, want)?;
        let rest = want - from_synced;
        // A deletion cut short by a full disk leaves synced rows behind: they go first.
        let synced_left = conn
            .query_row(
                "SELECT 1 FROM readings WHERE seq <= ?1 LIMIT 1",
                [synced],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if rest > 0 && !synced_left {
            drop_on_full_disk(conn, metrics, DropReason::UnsyncedOverflow, i64::MAX, rest)?;
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
    let first_seq: Option<i64> = conn
        .query_row("SELECT seq FROM readings ORDER BY seq LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(BudgetStatus {
        used_bytes: used,
        first_seq: first_seq.unwrap_or(0),
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

/// Drops up to `want` of the oldest rows with seq <= `upto`. On a full disk the deletion's own
/// WAL frames may not fit: it is retried with half as many rows, down to one, with the WAL
/// emptied in between.
fn drop_on_full_disk(
    conn: &mut Connection,
    metrics: &StoreMetrics,
    reason: DropReason,
    upto: i64,
    want: i64,
) -> Result<i64, rusqlite::Error> {
    let mut limit = want;
    loop {
        match drop_rows(conn, metrics, reason, |c| delete_oldest(c, upto, limit)) {
            Err(err) if super::space::is_disk_full(&err) && limit > 1 => {
                limit /= 2;
                let _wal_may_still_be_in_use =
                    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            }
            other => return other,
        }
    }
}

/// Deletes rows with `delete` and records the drop in the same transaction, so a crash never
/// loses a count; metrics and the log follow the commit.
fn drop_rows(
    conn: &mut Connection,
    metrics: &StoreMetrics,
    reason: DropReason,
    delete: impl FnOnce(&Connection) -> Result<i64, rusqlite::Error>,
) -> Result<i64, rusqlite::Error> {
    let tx = conn.transaction()?;
    let rows = delete(&tx)?;
    if rows > 0 {
        tx.execute(
            "INSERT INTO dropped_rows (reason, rows) VALUES (?1, ?2) \
             ON CONFLICT (reason) DO UPDATE SET rows = rows + excluded.rows",
            params![reason.as_str(), rows],
        )?;
    }
    tx.commit()?;
    if rows > 0 {
        report(metrics, reason, rows);
    }
    Ok(rows)
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
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let others = conn.path().filter(|p| !p.is_empty()).map_or(0, |p| {
        let usage = super::space::Files::new(std::path::Path::new(p)).usage();
        usage.wal + usage.shm + usage.reserve
    });
    Ok(u64::try_from((pages - free).max(0) * page_size).unwrap_or(0) + others)
}

fn row_count_estimate(conn: &Connection) -> Result<i64, rusqlite::Error> {
    // seq is dense apart from dropped prefixes, so max - min + 1 is exact without a scan.
    conn.query_row(
        "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM readings",
        [],
        |r| r.get(0),
    )
}

/// Deletes up to `limit` of the oldest rows with seq <= `upto`; returns how many.
fn delete_oldest(conn: &Connection, upto: i64, limit: i64) -> Result<i64, rusqlite::Error> {
    let n = conn.execute(
        "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
        params![upto, limit],
    )?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Deletes one chunk of rows with seq <= `upto` and ts < `cutoff`, oldest first, stopping at
/// the first row that is recent enough (rows are appended in time order, so this never scans the
/// whole table). Returns how many were deleted; 0 when nothing has expired.
fn delete_expired_chunk(conn: &Connection, upto: i64, cutoff: i64) -> Result<i64, rusqlite::Error> {
    let oldest: Option<(i64, i64)> = conn
        .query_row(
            "SELECT seq, ts FROM readings ORDER BY seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((seq, ts)) = oldest else {
        return Ok(0);
    };
    if ts >= cutoff || seq > upto {
        return Ok(0);
    }
    let n = conn.execute(
        "DELETE FROM readings WHERE seq >= ?1 AND seq < ?1 + ?2 AND seq <= ?3 AND ts < ?4",
        params![seq, CHUNK, upto, cutoff],
    )?;
    Ok(i64::try_from(n).unwrap_or(0))
}

fn report(metrics: &StoreMetrics, reason: DropReason, rows: i64) {
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
