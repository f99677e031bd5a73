//! Upgrade in place from the row-per-reading layout (schema version 5: `readings` with its
//! `(sensor, ts)` index) to the log of commit batches.
//!
//! Owns: moving the rows of `readings` into `batches` and dropping `readings`. Does not own: the
//! new tables (created by `migrations/gateway/0006_columns.sql` before this runs).
//!
//! The rows are read in seq order, `STEP` at a time; each step appends their batches (runs of
//! consecutive seqs, at most `BATCH` readings each) and records the last seq it moved
//! (`meta.upgrade_readings_upto`) in one transaction. A crash between steps resumes after that
//! seq, so no reading is moved twice or lost. The last transaction drops `readings`, its index
//! and the marker and sets the schema version: before it commits the old table is still whole,
//! after it the batches hold every row. Seqs, `meta.readings_next_seq` and the sync cursors are
//! not touched, so sync carries on where it was.

use rusqlite::{Connection, TransactionBehavior, params};
use tracing::info;

use super::codec::BatchRow;
use super::fold::{meta, set_meta};
use super::log;

/// Rows moved per transaction.
const STEP: i64 = 200_000;
/// Readings per batch written by the upgrade.
const BATCH: usize = 10_000;
const MARKER: &str = "upgrade_readings_upto";

/// What the upgrade did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Upgraded {
    /// Readings moved into batches.
    pub(crate) readings: i64,
    /// Batches written.
    pub(crate) batches: i64,
}

/// Moves every row of `readings` into `batches`, drops `readings` and sets `user_version` to
/// `version`. Does nothing when `readings` does not exist.
pub(crate) fn run(conn: &mut Connection, version: i64) -> Result<Upgraded, rusqlite::Error> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'readings'",
        [],
        |r| r.get(0),
    )?;
    let mut done = Upgraded::default();
    if exists {
        let total: i64 = conn.query_row("SELECT count(*) FROM readings", [], |r| r.get(0))?;
        if total > 0 {
            info!(
                component = "store",
                readings = total,
                "Moving the buffer's readings into the columnar log."
            );
        }
        while let Some(step) = move_step(conn)? {
            done.readings += step.readings;
            done.batches += step.batches;
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "DROP INDEX IF EXISTS readings_sensor_ts; DROP TABLE IF EXISTS readings; \
         DELETE FROM meta WHERE key = 'upgrade_readings_upto';",
    )?;
    tx.pragma_update(None, "user_version", version)?;
    tx.commit()?;
    if done.readings > 0 {
        info!(
            component = "store",
            readings = done.readings,
            batches = done.batches,
            "Buffer upgraded: every reading moved."
        );
    }
    Ok(done)
}

/// Moves the next `STEP` rows; `None` when none are left.
fn move_step(conn: &mut Connection) -> Result<Option<Upgraded>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let after = meta(&tx, MARKER)?;
    let mut stmt = tx.prepare_cached(
        "SELECT seq, sensor, ts, value, quality FROM readings WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows: Vec<(i64, BatchRow)> = stmt
        .query_map(params![after, STEP], |r| {
            Ok((
                r.get(0)?,
                BatchRow {
                    sensor: r.get(1)?,
                    ts: r.get(2)?,
                    value: r.get(3)?,
                    quality: u8::try_from(r.get::<_, i64>(4)?).unwrap_or(u8::MAX),
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    drop(stmt);
    let Some(&(last, _)) = rows.last() else {
        return Ok(None);
    };
    let mut batches = 0;
    let mut start = 0;
    for i in 1..=rows.len() {
        let cut = i == rows.len() || rows[i].0 != rows[i - 1].0 + 1 || i - start == BATCH;
        if cut {
            let batch: Vec<BatchRow> = rows[start..i].iter().map(|(_, r)| *r).collect();
            log::append(&tx, rows[start].0, &batch)?;
            batches += 1;
            start = i;
        }
    }
    set_meta(&tx, MARKER, last)?;
    tx.commit()?;
    Ok(Some(Upgraded {
        readings: rows.len() as i64,
        batches,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_runs_of_consecutive_seqs_and_resumes_after_a_crash() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::migrate(&mut conn).unwrap();
        conn.execute_batch(include_str!("../../../migrations/gateway/0006_columns.sql"))
            .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO readings (seq, sensor, ts, value, quality) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        for seq in (5..100).chain(200..230) {
            let value = (seq % 7 != 0).then_some(seq as f64 / 100.0);
            insert
                .execute(params![
                    seq,
                    seq % 4 + 1,
                    1_000 + seq,
                    value,
                    if value.is_some() { 0 } else { 3 }
                ])
                .unwrap();
        }
        drop(insert);
        // An earlier run moved seqs up to 50 and crashed: its batches and marker are there.
        let moved: Vec<BatchRow> = (5..=50)
            .map(|seq: i64| {
                let value = (seq % 7 != 0).then_some(seq as f64 / 100.0);
                BatchRow {
                    sensor: seq % 4 + 1,
                    ts: 1_000 + seq,
                    value,
                    quality: if value.is_some() { 0 } else { 3 },
                }
            })
            .collect();
        log::append(&conn, 5, &moved).unwrap();
        set_meta(&conn, MARKER, 50).unwrap();
        let done = run(&mut conn, 6).unwrap();
        assert_eq!(
            done,
            Upgraded {
                readings: 79,
                batches: 2
            }
        );
        let mut seen = Vec::new();
        log::for_each_after(&conn, 0, |b| {
            for (seq, r) in (b.first_seq..).zip(&b.rows) {
                seen.push((seq, r.sensor, r.ts, r.value, r.quality));
            }
            true
        })
        .unwrap();
        let want: Vec<_> = (5..100)
            .chain(200..230)
            .map(|seq: i64| {
                let value = (seq % 7 != 0).then_some(seq as f64 / 100.0);
                (
                    seq,
                    seq % 4 + 1,
                    1_000 + seq,
                    value,
                    if value.is_some() { 0 } else { 3 },
                )
            })
            .collect();
        assert_eq!(seen, want);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'readings%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        assert_eq!(run(&mut conn, 6).unwrap(), Upgraded::default());
    }
}
