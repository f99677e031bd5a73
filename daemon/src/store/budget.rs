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
    pub(crate) first_seq: i64,
}

/// Folds (or unfolded batches) dropped per maintenance pass at most, so that one pass never
/// holds the writer for long; the next pass goes on.
const MAX_DROPS: usize = 1_000;

/// What one maintenance pass works to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Bytes the buffer may use (`space::Plan::budget`).
    pub(crate) budget: u64,
    /// The WAL's bound: one step of the vacuum writes about half of it.
    pub(crate) wal_cap: u64,
    /// The disk, not `max_size`, sets the budget (another program, or the buffer's own files,
    /// filled it): the newest fold or batch is never dropped, whatever the budget says.
    pub(crate) keep_newest: bool,
}

/// Releases the log, applies retention, then brings the buffer under `limits.budget` bytes
/// (module comment above). Every step is a transaction of its own that writes a few pages
/// (the vacuum in steps of half the WAL's bound), so that each fits in the WAL as it is
/// allocated and a full disk does not stop it.
pub(crate) fn enforce(
    conn: &mut Connection,
    cfg: &StoreConfig,
    limits: Limits,
    options: super::StoreOptions,
    metrics: &StoreMetrics,
    now_ms: i64,
) -> Result<BudgetStatus, rusqlite::Error> {
    let budget = limits.budget;
    let synced = synced_upto(conn)?;
    let mut used = used_bytes(conn)?;
    if used > budget {
        // The WAL's pages go back into the database file first; the WAL keeps its size (its
        // frames are written over), so the deletions below need no new room on the disk.
        checkpoint(conn, false)?;
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

    used = used_bytes(conn)?;
    if used > budget {
        let pages = pages_in_use(conn)?;
        // Only the readings' pages shrink by dropping; the WAL, the shared memory and the
        // reserve do not. Down to 90 % of what the budget leaves for them.
        let files = used.saturating_sub(pages);
        let target = budget - budget.saturating_sub(files) / 10;
        let excess = used - target;
        let keep = if limits.keep_newest {
            log::held(conn)?.map_or(i64::MAX, |(_, last)| last)
        } else {
            i64::MAX
        };
        let mut drops = 0;
        while pages.saturating_sub(pages_in_use(conn)?) < excess && drops < MAX_DROPS {
            drops += 1;
            let dropped = match trim::drop_oldest_before(conn, synced, keep) {
                Err(err) if super::space::is_disk_full(&err) => {
                    // The deletion's WAL frames did not fit: empty the WAL, try once more.
                    checkpoint(conn, true)?;
                    trim::drop_oldest_before(conn, synced, keep)?
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
        }
        // The free pages go back to the file system in steps. A step that finds no room
        // leaves free pages behind, which the buffer reuses: they do not count as used.
        match vacuum(conn, limits.wal_cap / 2) {
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
    Ok(BudgetStatus { first_seq })
}

/// Copies the WAL into the database file. `truncate` also gives the WAL's own room back to the
/// file system; otherwise the WAL keeps its size and is written over from its start, so that
/// the next transactions need no new room on the disk. A full disk (the database file could not
/// grow by the pages the WAL holds beyond its end) is not an error here: the WAL stays as it was.
/// Returns whether the whole WAL was copied.
pub(crate) fn checkpoint(conn: &Connection, truncate: bool) -> Result<bool, rusqlite::Error> {
    let sql = if truncate {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    } else {
        "PRAGMA wal_checkpoint(RESTART)"
    };
    match conn.query_row(sql, [], |r| r.get::<_, i64>(0)) {
        // The first column is 1 when a reader or writer kept it from finishing.
        Ok(busy) => Ok(busy == 0),
        Err(err) if super::space::is_disk_full(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Gives the free pages back to the file system, at most `step_bytes` of pages moved per
/// transaction, with a checkpoint after each so that the database file shrinks and the WAL's
/// frames are written over: each step fits in the WAL's bound.
pub(crate) fn vacuum(conn: &Connection, step_bytes: u64) -> Result<(), rusqlite::Error> {
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    // A moved page costs about two frames (the page and its parent or pointer-map entry).
    let step = (i64::try_from(step_bytes).unwrap_or(i64::MAX) / (2 * page.max(512))).max(16);
    while vacuum_step(conn, step)? > 0 {}
    Ok(())
}

/// Moves at most `pages` pages from the end of the database file into its free pages, in one
/// transaction, then checkpoints, so that the file shrinks by as much. Returns the pages freed.
pub(crate) fn vacuum_step(conn: &Connection, pages: i64) -> Result<i64, rusqlite::Error> {
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    if free == 0 {
        return Ok(0);
    }
    {
        // The pragma frees one page per row it returns: step through them all.
        let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({})", pages.max(1)))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
    }
    let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    checkpoint(conn, false)?;
    Ok((free - after).max(0))
}

/// Highest synced readings seq (0 when nothing has been synced).
pub(crate) fn synced_upto(conn: &Connection) -> Result<i64, rusqlite::Error> {
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
pub(crate) fn pages_in_use(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(u64::try_from((pages - free).max(0) * page_size).unwrap_or(0))
}

pub(crate) fn report(metrics: &StoreMetrics, reason: DropReason, rows: i64) {
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
