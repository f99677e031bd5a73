//! The append-only log of commit batches (`batches`): one row per writer commit that held
//! readings, the readings encoded as columns (`codec::encode_batch`).
//!
//! Owns: appending a batch, reading by seq (sync, alarms), reading a time range (the tail of a
//! sensor's history that is not folded yet). Does not own: when batches are deleted (`fold`,
//! `budget`) or the seq counter (`writer`).

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{self, BatchRow, CodecError};

/// A decoded batch.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Seq of the first reading; the others follow without gaps.
    pub(crate) first_seq: i64,
    /// The readings in seq order.
    pub(crate) rows: Vec<BatchRow>,
}

impl Batch {
    /// Seq of the last reading.
    pub(crate) fn last_seq(&self) -> i64 {
        self.first_seq + self.rows.len() as i64 - 1
    }
}

/// A blob that does not decode, as the error type of queries (the row and column are known to
/// the caller; the cause is the codec's).
pub(crate) fn corrupt(err: CodecError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(err))
}

/// Appends the readings of seqs `first_seq..` as one batch row.
pub(crate) fn append(
    conn: &Connection,
    first_seq: i64,
    rows: &[BatchRow],
) -> Result<(), rusqlite::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let (min_ts, max_ts) = rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.ts), hi.max(r.ts))
    });
    conn.prepare_cached(
        "INSERT INTO batches (first_seq, readings, min_ts, max_ts, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        first_seq,
        rows.len() as i64,
        min_ts,
        max_ts,
        codec::encode_batch(rows)
    ])?;
    Ok(())
}

/// Decodes one row of `SELECT first_seq, data ...`.
fn batch_row(r: &rusqlite::Row<'_>) -> Result<Batch, rusqlite::Error> {
    let first_seq: i64 = r.get(0)?;
    let blob = r.get_ref(1)?.as_blob()?;
    let mut rows = Vec::new();
    codec::decode_batch(blob, &mut rows).map_err(corrupt)?;
    Ok(Batch { first_seq, rows })
}

/// Calls `each` with the batches that hold seqs after `after`, in seq order, until it returns
/// `false`. The first batch may start at or before `after`: callers skip those readings.
pub(crate) fn for_each_after(
    conn: &Connection,
    after: i64,
    mut each: impl FnMut(Batch) -> bool,
) -> Result<(), rusqlite::Error> {
    let start: i64 = conn
        .prepare_cached("SELECT max(first_seq) FROM batches WHERE first_seq <= ?1")?
        .query_row([after], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, data FROM batches WHERE first_seq >= ?1 ORDER BY first_seq",
    )?;
    let mut rows = stmt.query([start])?;
    while let Some(row) = rows.next()? {
        let batch = batch_row(row)?;
        if batch.last_seq() <= after {
            continue;
        }
        if !each(batch) {
            break;
        }
    }
    Ok(())
}

/// Calls `each` with the first seq and the encoded blob of the batches that hold seqs after
/// `after`, in seq order, until it returns `false` (nothing decoded here). The first batch may
/// start at or before `after`.
pub(crate) fn for_each_blob_after(
    conn: &Connection,
    after: i64,
    mut each: impl FnMut(i64, &[u8]) -> Result<bool, rusqlite::Error>,
) -> Result<(), rusqlite::Error> {
    let start: i64 = conn
        .prepare_cached("SELECT max(first_seq) FROM batches WHERE first_seq <= ?1")?
        .query_row([after], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, data FROM batches WHERE first_seq >= ?1 AND first_seq + readings - 1 > ?2 \
         ORDER BY first_seq",
    )?;
    let mut rows = stmt.query(params![start, after])?;
    while let Some(row) = rows.next()? {
        if !each(row.get(0)?, row.get_ref(1)?.as_blob()?)? {
            break;
        }
    }
    Ok(())
}

/// Calls `each` with the readings of `sensor`, as `(seq, reading)` in seq order, in the batches
/// after seq `after` (whole batches: callers skip the seqs at or below it) whose read times
/// overlap `from..=to` (`None`: every batch after `after`). Only that sensor's readings are
/// decoded (`codec::decode_batch_sensor`).
pub(crate) fn for_each_of_sensor(
    conn: &Connection,
    after: i64,
    times: Option<(i64, i64)>,
    sensor: i64,
    mut each: impl FnMut(i64, BatchRow),
) -> Result<(), rusqlite::Error> {
    let (from, to) = times.unwrap_or((i64::MIN, i64::MAX));
    // The batch holding `after` may start at or before it.
    let start: i64 = conn
        .prepare_cached("SELECT max(first_seq) FROM batches WHERE first_seq <= ?1")?
        .query_row([after], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, data FROM batches WHERE first_seq >= ?1 AND max_ts >= ?2 AND min_ts <= ?3 \
         ORDER BY first_seq",
    )?;
    let mut rows = stmt.query(params![start, from, to])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let first_seq: i64 = row.get(0)?;
        found.clear();
        codec::decode_batch_sensor(row.get_ref(1)?.as_blob()?, sensor, &mut found)
            .map_err(corrupt)?;
        for &(i, r) in &found {
            let seq = first_seq + i as i64;
            if seq > after {
                each(seq, r);
            }
        }
    }
    Ok(())
}

/// `(readings, first seq, last seq)` of the log, `None` when it is empty.
#[cfg(test)]
pub(crate) fn extent(conn: &Connection) -> Result<Option<(i64, i64, i64)>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT sum(readings), min(first_seq), \
         (SELECT first_seq + readings - 1 FROM batches ORDER BY first_seq DESC LIMIT 1) FROM batches",
    )?
    .query_row([], |r| {
        Ok(match (r.get::<_, Option<i64>>(0)?, r.get(1)?, r.get(2)?) {
            (Some(n), Some(first), Some(last)) => Some((n, first, last)),
            _ => None,
        })
    })
}

/// The first seq after the newest batch (1 for an empty log).
pub(crate) fn next_seq(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("SELECT first_seq + readings FROM batches ORDER BY first_seq DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(1))
}

/// The oldest and the newest seq the buffer holds, in the log or in the folds (`None` when it
/// holds no reading).
pub(crate) fn held(conn: &Connection) -> Result<Option<(i64, i64)>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT min(lo), max(hi) FROM ( \
           SELECT min(first_seq) AS lo, \
             (SELECT first_seq + readings - 1 FROM batches ORDER BY first_seq DESC LIMIT 1) AS hi \
             FROM batches \
           UNION ALL SELECT min(first_seq), max(last_seq) FROM folds)",
    )?
    .query_row([], |r| {
        Ok(
            match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            },
        )
    })
}

/// Readings in the batches after seq `upto` (whole batches: a fold never splits one).
pub(crate) fn readings_after(conn: &Connection, upto: i64) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("SELECT coalesce(sum(readings), 0) FROM batches WHERE first_seq > ?1")?
        .query_row([upto], |r| r.get(0))
}

/// The seq the next committed reading gets: past every seq ever committed, whether its reading
/// is still in a batch, only in a fold, or was deleted (then `meta.readings_next_seq`, written
/// by every deletion, remembers it).
pub(crate) fn resume_seq(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let recorded = super::fold::meta(conn, "readings_next_seq")?;
    let folded = super::fold::meta(conn, super::fold::FOLDED_UPTO)?;
    let folds: i64 = conn
        .prepare_cached("SELECT coalesce(max(last_seq), 0) FROM folds")?
        .query_row([], |r| r.get(0))?;
    Ok(recorded.max(next_seq(conn)?).max(folded + 1).max(folds + 1))
}

/// Deletes the batches whose readings all have seqs at or below `upto`; returns how many
/// readings they held.
pub(crate) fn delete_upto(conn: &Connection, upto: i64) -> Result<i64, rusqlite::Error> {
    // Batches do not overlap, so they end in key order: the ones to delete are a key prefix
    // ending at the batch holding `upto` (when it ends there) or the one before it.
    let holding: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT first_seq, first_seq + readings - 1 FROM batches WHERE first_seq <= ?1 \
             ORDER BY first_seq DESC LIMIT 1",
        )?
        .query_row([upto], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let boundary = match holding {
        None => return Ok(0),
        Some((first, last)) if last <= upto => first,
        Some((first, _)) => first - 1,
    };
    let readings: i64 = conn
        .prepare_cached("SELECT coalesce(sum(readings), 0) FROM batches WHERE first_seq <= ?1")?
        .query_row([boundary], |r| r.get(0))?;
    if readings > 0 {
        conn.prepare_cached("DELETE FROM batches WHERE first_seq <= ?1")?
            .execute([boundary])?;
    }
    Ok(readings)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An in-memory buffer with the current schema.
    pub(crate) fn buffer() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::migrate(&mut conn).unwrap();
        conn.execute_batch(include_str!("../../../migrations/gateway/0006_columns.sql"))
            .unwrap();
        conn
    }

    pub(crate) fn rows(n: usize, sensor0: i64, ts0: i64) -> Vec<BatchRow> {
        (0..n)
            .map(|i| BatchRow {
                sensor: sensor0 + (i % 3) as i64,
                ts: ts0 + i as i64,
                value: (i % 5 != 0).then_some(i as f64 / 4.0),
                quality: u8::from(i % 5 == 0) * 3,
            })
            .collect()
    }

    #[test]
    fn batches_are_read_back_by_seq_and_time() {
        let conn = buffer();
        append(&conn, 1, &rows(10, 1, 1_000)).unwrap();
        append(&conn, 11, &rows(5, 1, 2_000)).unwrap();
        append(&conn, 20, &rows(5, 1, 3_000)).unwrap();
        assert_eq!(extent(&conn).unwrap(), Some((20, 1, 24)));
        assert_eq!(next_seq(&conn).unwrap(), 25);
        let mut seen = Vec::new();
        for_each_after(&conn, 12, |b| {
            seen.push((b.first_seq, b.rows.len()));
            true
        })
        .unwrap();
        assert_eq!(seen, vec![(11, 5), (20, 5)]);
        // Sensor 2 in the batches after seq 10 whose times overlap 2,003..=2,100: the second
        // batch (seqs 11..15, times 2,000..2,004, sensors 1, 2, 3, 1, 2).
        let mut seen = Vec::new();
        for_each_of_sensor(&conn, 10, Some((2_003, 2_100)), 2, |seq, r| {
            seen.push((seq, r.ts))
        })
        .unwrap();
        assert_eq!(seen, vec![(12, 2_001), (15, 2_004)]);
        let mut seen = Vec::new();
        for_each_of_sensor(&conn, 12, None, 2, |seq, _| seen.push(seq)).unwrap();
        assert_eq!(seen, vec![15, 21, 24]);
        assert_eq!(delete_upto(&conn, 15).unwrap(), 15);
        assert_eq!(extent(&conn).unwrap(), Some((5, 20, 24)));
        assert_eq!(next_seq(&conn).unwrap(), 25);
    }
}
