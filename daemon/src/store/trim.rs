//! Deleting readings from the columnar layout: batches once they are folded and synced, folds
//! past retention, and the oldest readings when the buffer is over its disk budget.
//!
//! Owns: the order readings are dropped in and their counting. Does not own: when to run
//! (`writer`) or how much room is needed (`space`, the writer's budget check).
//!
//! Drop order over budget: the oldest **fold whose readings are all synced**; then the oldest
//! readings whatever their sync state: the oldest fold with the batches it shares seqs with, or
//! the oldest unfolded batch when nothing is folded. Every deletion runs in one transaction with
//! its count in `dropped_rows` and `meta.readings_next_seq` (so a seq is never reused, whatever was
//! deleted).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::budget::DropReason;
use super::fold::{self, FOLDED_UPTO};
use super::log;

/// Readings dropped by one call, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) synced: i64,
    pub(crate) unsynced: i64,
    pub(crate) retention: i64,
}

/// Deletes the batches every reading of which is folded and, with an uplink, synced: their
/// readings stay in the chunks, so nothing is dropped. Returns the readings released.
pub(crate) fn release_log(
    conn: &mut Connection,
    uplink: bool,
    synced: i64,
) -> Result<i64, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let folded = fold::meta(&tx, FOLDED_UPTO)?;
    let upto = if uplink { folded.min(synced) } else { folded };
    let next = log::resume_seq(&tx)?;
    let n = log::delete_upto(&tx, upto)?;
    if n > 0 {
        // Nothing written when there is nothing to release (a full disk has no room for it).
        fold::set_meta(&tx, "readings_next_seq", next)?;
        tx.commit()?;
    }
    Ok(n)
}

/// Deletes folds whose newest reading is older than `cutoff` and whose readings are all at or
/// below `horizon` (the sync cursor, or everything without an uplink), oldest first, with their
/// chunks and any batches they still share seqs with; then, once no fold is left, the oldest
/// batches of the log that meet the same test.
pub(crate) fn expire(
    conn: &mut Connection,
    cutoff: i64,
    horizon: i64,
) -> Result<Dropped, rusqlite::Error> {
    let mut dropped = Dropped::default();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let oldest = oldest_fold(&tx)?;
        match oldest {
            Some(f) if f.max_ts < cutoff && f.last_seq <= horizon => {
                remember_next_seq(&tx)?;
                delete_fold(&tx, &f)?;
                count(&tx, DropReason::Retention, f.readings)?;
                tx.commit()?;
                dropped.retention += f.readings;
            }
            _ => break,
        }
    }
    // With no fold left, the oldest batches of the log expire the same way.
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let folds: i64 = tx.query_row("SELECT count(*) FROM folds", [], |r| r.get(0))?;
        let oldest: Option<(i64, i64, i64)> = tx
            .query_row(
                "SELECT first_seq, readings, max_ts FROM batches ORDER BY first_seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match oldest {
            Some((first, readings, max_ts))
                if folds == 0 && max_ts < cutoff && first + readings - 1 <= horizon =>
            {
                remember_next_seq(&tx)?;
                let n = log::delete_upto(&tx, first + readings - 1)?;
                count(&tx, DropReason::Retention, n)?;
                tx.commit()?;
                dropped.retention += n;
            }
            _ => return Ok(dropped),
        }
    }
}

/// Drops the oldest readings once: a fold (or, with nothing folded, a batch). `None` when the
/// buffer holds no readings.
#[cfg(test)]
pub(crate) fn drop_oldest(
    conn: &mut Connection,
    synced: i64,
) -> Result<Option<Dropped>, rusqlite::Error> {
    drop_oldest_before(conn, synced, i64::MAX)
}

/// Drops the oldest readings once, as [`drop_oldest`], but only a fold or batch that ends before
/// seq `keep`: the readings from `keep` on stay. `None` when nothing ends before it.
pub(crate) fn drop_oldest_before(
    conn: &mut Connection,
    synced: i64,
    keep: i64,
) -> Result<Option<Dropped>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Synced folds first, oldest first.
    let synced_fold: Option<Fold> = tx
        .query_row(
            "SELECT id, first_seq, last_seq, readings, max_ts FROM folds WHERE last_seq <= ?1 \
             ORDER BY id LIMIT 1",
            [synced],
            Fold::from_row,
        )
        .optional()?;
    let mut dropped = Dropped::default();
    if let Some(f) = synced_fold.filter(|f| f.last_seq < keep) {
        remember_next_seq(&tx)?;
        delete_fold(&tx, &f)?;
        dropped.synced = f.readings;
    } else if let Some(f) = oldest_fold(&tx)? {
        if f.last_seq >= keep {
            return Ok(None);
        }
        remember_next_seq(&tx)?;
        delete_fold(&tx, &f)?;
        let synced_part = (synced - f.first_seq + 1).clamp(0, f.readings);
        dropped.synced = synced_part;
        dropped.unsynced = f.readings - synced_part;
    } else {
        let batch: Option<(i64, i64)> = tx
            .query_row(
                "SELECT first_seq, readings FROM batches ORDER BY first_seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((first, readings)) = batch.filter(|(first, n)| first + n - 1 < keep) else {
            return Ok(None);
        };
        remember_next_seq(&tx)?;
        log::delete_upto(&tx, first + readings - 1)?;
        let synced_part = (synced - first + 1).clamp(0, readings);
        dropped.synced = synced_part;
        dropped.unsynced = readings - synced_part;
    }
    count(&tx, DropReason::SyncedOverflow, dropped.synced)?;
    count(&tx, DropReason::UnsyncedOverflow, dropped.unsynced)?;
    tx.commit()?;
    Ok(Some(dropped))
}

/// A row of `folds`.
#[derive(Debug)]
struct Fold {
    id: i64,
    first_seq: i64,
    last_seq: i64,
    readings: i64,
    max_ts: i64,
}

impl Fold {
    fn from_row(r: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            id: r.get(0)?,
            first_seq: r.get(1)?,
            last_seq: r.get(2)?,
            readings: r.get(3)?,
            max_ts: r.get(4)?,
        })
    }
}

fn oldest_fold(conn: &Connection) -> Result<Option<Fold>, rusqlite::Error> {
    conn.query_row(
        "SELECT id, first_seq, last_seq, readings, max_ts FROM folds ORDER BY id LIMIT 1",
        [],
        Fold::from_row,
    )
    .optional()
}

/// Deletes a fold, its chunks (one key range) and the batches holding its seqs.
fn delete_fold(conn: &Connection, f: &Fold) -> Result<(), rusqlite::Error> {
    conn.execute(
        "DELETE FROM chunks WHERE id >= ?1 AND id < ?2",
        params![fold::chunk_id(f.id, 0)?, fold::chunk_id(f.id + 1, 0)?],
    )?;
    conn.execute("DELETE FROM folds WHERE id = ?1", [f.id])?;
    log::delete_upto(conn, f.last_seq)?;
    Ok(())
}

fn remember_next_seq(conn: &Connection) -> Result<(), rusqlite::Error> {
    let next = log::resume_seq(conn)?;
    fold::set_meta(conn, "readings_next_seq", next)
}

fn count(conn: &Connection, reason: DropReason, rows: i64) -> Result<(), rusqlite::Error> {
    if rows > 0 {
        conn.execute(
            "INSERT INTO dropped_rows (reason, rows) VALUES (?1, ?2) \
             ON CONFLICT (reason) DO UPDATE SET rows = rows + excluded.rows",
            params![reason.as_str(), rows],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::tests::{buffer, rows};

    fn counted(conn: &Connection, reason: &str) -> i64 {
        conn.query_row(
            "SELECT coalesce(sum(rows), 0) FROM dropped_rows WHERE reason = ?1",
            [reason],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn drops_synced_folds_first_then_the_oldest_and_never_reuses_a_seq() {
        let mut conn = buffer();
        for b in 0..4 {
            log::append(&conn, 1 + b * 10, &rows(10, 1, 1_000 + b * 100)).unwrap();
            fold::fold(&mut conn, 10).unwrap();
        }
        log::append(&conn, 41, &rows(10, 1, 2_000)).unwrap();
        // Synced up to 25: fold 1 (1..10) and 2 (11..20) are synced. Each fold deleted the
        // batches it folded, so the log holds only the unfolded batch and nothing is released.
        assert_eq!(release_log(&mut conn, true, 25).unwrap(), 0);
        assert_eq!(
            drop_oldest(&mut conn, 25).unwrap(),
            Some(Dropped {
                synced: 10,
                unsynced: 0,
                retention: 0
            })
        );
        assert_eq!(
            drop_oldest(&mut conn, 25).unwrap(),
            Some(Dropped {
                synced: 10,
                unsynced: 0,
                retention: 0
            })
        );
        // Fold 3 (21..30) is partly synced.
        assert_eq!(
            drop_oldest(&mut conn, 25).unwrap(),
            Some(Dropped {
                synced: 5,
                unsynced: 5,
                retention: 0
            })
        );
        assert_eq!(
            drop_oldest(&mut conn, 25).unwrap(),
            Some(Dropped {
                synced: 0,
                unsynced: 10,
                retention: 0
            })
        );
        // Nothing folded is left: the unfolded batch goes.
        assert_eq!(
            drop_oldest(&mut conn, 25).unwrap(),
            Some(Dropped {
                synced: 0,
                unsynced: 10,
                retention: 0
            })
        );
        assert_eq!(drop_oldest(&mut conn, 25).unwrap(), None);
        assert_eq!(counted(&conn, "synced_overflow"), 25);
        assert_eq!(counted(&conn, "unsynced_overflow"), 25);
        assert_eq!(log::resume_seq(&conn).unwrap(), 51);
    }

    #[test]
    fn dropping_before_a_seq_keeps_the_fold_or_batch_that_holds_it() {
        let mut conn = buffer();
        for b in 0..2 {
            log::append(&conn, 1 + b * 10, &rows(10, 1, 1_000 + b * 100)).unwrap();
            fold::fold(&mut conn, 10).unwrap();
        }
        log::append(&conn, 21, &rows(10, 1, 2_000)).unwrap();
        log::append(&conn, 31, &rows(10, 1, 3_000)).unwrap();
        // Keep seq 31 on: both folds and the batch 21..30 may go, the batch 31..40 stays.
        for _ in 0..3 {
            assert!(drop_oldest_before(&mut conn, 0, 31).unwrap().is_some());
        }
        assert_eq!(drop_oldest_before(&mut conn, 0, 31).unwrap(), None);
        assert_eq!(log::held(&conn).unwrap(), Some((31, 40)));
        assert_eq!(counted(&conn, "unsynced_overflow"), 30);
        // Everything folded and the newest fold holds the seq to keep: it stays.
        fold::fold(&mut conn, 10).unwrap();
        release_log(&mut conn, false, 0).unwrap();
        assert_eq!(drop_oldest_before(&mut conn, 40, 40).unwrap(), None);
        assert_eq!(log::held(&conn).unwrap(), Some((31, 40)));
        assert_eq!(log::resume_seq(&conn).unwrap(), 41);
    }

    #[test]
    fn retention_takes_old_synced_folds_only() {
        let mut conn = buffer();
        for b in 0..3 {
            log::append(&conn, 1 + b * 10, &rows(10, 1, 1_000 + b * 100)).unwrap();
            fold::fold(&mut conn, 10).unwrap();
        }
        // Folds end at ts 1009, 1109, 1209; cutoff 1150 expires the first two, but only the
        // first is synced.
        assert_eq!(
            expire(&mut conn, 1_150, 15).unwrap(),
            Dropped {
                retention: 10,
                ..Dropped::default()
            }
        );
        assert_eq!(
            expire(&mut conn, 1_150, 30).unwrap(),
            Dropped {
                retention: 10,
                ..Dropped::default()
            }
        );
        assert_eq!(counted(&conn, "retention"), 20);
        assert_eq!(log::resume_seq(&conn).unwrap(), 31);
    }
}
