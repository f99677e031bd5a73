//! A sensor's series: its chunks (folded) and the tail of the log that is not folded yet, read
//! in one snapshot so a fold committing meanwhile neither hides nor doubles a reading.
//!
//! Owns: the read side of `folds`, `chunks` and `latest`. Does not own: writing them (`fold`).

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{self, BatchRow, ChunkRow};
use super::fold::{self, FOLDED_UPTO};
use super::log;

/// Runs `f` inside a read transaction unless the connection is already in one.
pub(crate) fn snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    if !conn.is_autocommit() {
        return f(conn);
    }
    conn.execute_batch("BEGIN DEFERRED")?;
    let out = f(conn);
    // A read transaction has nothing to keep: ending it cannot lose anything.
    let ended = conn.execute_batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let value = out?;
    ended?;
    Ok(value)
}

/// Appends the readings of `sensor` (its `sensors.id`) with read times in `from..=to` to `out`,
/// sorted by read time, then seq.
pub(crate) fn range(
    conn: &Connection,
    sensor: i64,
    from: i64,
    to: i64,
    out: &mut Vec<ChunkRow>,
) -> Result<(), rusqlite::Error> {
    snapshot(conn, |c| {
        let start = out.len();
        let upto = fold::meta(c, FOLDED_UPTO)?;
        let mut chunk = Vec::new();
        for (_, data) in chunks_in(c, sensor, from, to, |_| true)? {
            chunk.clear();
            if let Some(data) = data {
                codec::decode_chunk(&data, &mut chunk).map_err(log::corrupt)?;
            }
            out.extend(chunk.iter().filter(|r| (from..=to).contains(&r.ts)));
        }
        tail_rows(c, upto, Some((from, to)), sensor, |r| {
            if (from..=to).contains(&r.ts) {
                out.push(r);
            }
        })?;
        out[start..].sort_by_key(|r| (r.ts, r.seq));
        Ok(())
    })
}

/// The `limit` newest readings of `sensor` by read time (then seq), newest first.
pub(crate) fn newest(
    conn: &Connection,
    sensor: i64,
    limit: usize,
) -> Result<Vec<ChunkRow>, rusqlite::Error> {
    snapshot(conn, |c| {
        let upto = fold::meta(c, FOLDED_UPTO)?;
        let mut found = Vec::new();
        tail_rows(c, upto, None, sensor, |r| found.push(r))?;
        let mut folds = c.prepare_cached("SELECT id, max_ts FROM folds ORDER BY id DESC")?;
        let mut rows = folds.query([])?;
        while let Some(row) = rows.next()? {
            let (id, max_ts): (i64, i64) = (row.get(0)?, row.get(1)?);
            if found.len() >= limit {
                // Nothing in this fold or older ones can be newer than the limit-th found.
                found.sort_by_key(|r| std::cmp::Reverse((r.ts, r.seq)));
                found.truncate(limit);
                if found.last().is_some_and(|r| r.ts > max_ts) {
                    break;
                }
            }
            fold::read_chunk(c, id, sensor, &mut found)?;
        }
        found.sort_by_key(|r| std::cmp::Reverse((r.ts, r.seq)));
        found.truncate(limit);
        Ok(found)
    })
}

/// The newest reading of every sensor, by read time (the later seq on a tie), as
/// `(sensors.id, reading)`.
pub(crate) fn latest(conn: &Connection) -> Result<Vec<(i64, ChunkRow)>, rusqlite::Error> {
    snapshot(conn, |c| {
        let mut by_sensor: std::collections::HashMap<i64, ChunkRow> = c
            .prepare_cached("SELECT sensor, seq, ts, value_bits, quality FROM latest")?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    ChunkRow {
                        seq: r.get(1)?,
                        ts: r.get(2)?,
                        value: r
                            .get::<_, Option<i64>>(3)?
                            .map(|b| f64::from_bits(b as u64)),
                        quality: r.get(4)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        let upto = fold::meta(c, FOLDED_UPTO)?;
        log::for_each_after(c, upto, |batch| {
            for (seq, r) in (batch.first_seq..).zip(&batch.rows) {
                if seq <= upto {
                    continue;
                }
                let row = ChunkRow {
                    seq,
                    ts: r.ts,
                    value: r.value,
                    quality: r.quality,
                };
                by_sensor
                    .entry(r.sensor)
                    .and_modify(|old| {
                        if row.ts >= old.ts {
                            *old = row;
                        }
                    })
                    .or_insert(row);
            }
            true
        })?;
        let mut all: Vec<(i64, ChunkRow)> = by_sensor.into_iter().collect();
        all.sort_by_key(|(s, _)| *s);
        Ok(all)
    })
}

/// Up to `limit` readings with seqs after `after`, in seq order, as `(seq, reading)`: from the
/// log, and from the chunks for the seqs the log no longer holds (a fold releases the batches it
/// folded, synced or not). One snapshot.
pub(crate) fn after_seq(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, BatchRow)>, rusqlite::Error> {
    snapshot(conn, |c| {
        let mut out: Vec<(i64, BatchRow)> = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // The first seq after `after` that the log holds.
        let in_log: Option<i64> = c
            .prepare_cached(
                "SELECT first_seq FROM batches WHERE first_seq + readings - 1 > ?1 \
                 ORDER BY first_seq LIMIT 1",
            )?
            .query_row([after], |r| r.get(0))
            .optional()?
            .map(|first: i64| first.max(after + 1));
        let below = in_log.unwrap_or(i64::MAX);
        let folds: Vec<i64> = c
            .prepare_cached(
                "SELECT id FROM folds WHERE last_seq > ?1 AND first_seq < ?2 ORDER BY id",
            )?
            .query_map(params![after, below], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut stmt =
            c.prepare_cached("SELECT id, data FROM chunks WHERE id >= ?1 AND id < ?2")?;
        let mut chunk = Vec::new();
        for f in folds {
            if out.len() >= limit {
                break;
            }
            let start = out.len();
            let mut rows = stmt.query(params![fold::chunk_id(f, 0)?, fold::chunk_id(f + 1, 0)?])?;
            while let Some(row) = rows.next()? {
                let sensor = row.get::<_, i64>(0)? & 0xffff_ffff;
                chunk.clear();
                codec::decode_chunk(row.get_ref(1)?.as_blob()?, &mut chunk)
                    .map_err(log::corrupt)?;
                out.extend(
                    chunk
                        .iter()
                        .filter(|r| r.seq > after && r.seq < below)
                        .map(|r| {
                            (
                                r.seq,
                                BatchRow {
                                    sensor,
                                    ts: r.ts,
                                    value: r.value,
                                    quality: r.quality,
                                },
                            )
                        }),
                );
            }
            out[start..].sort_by_key(|(seq, _)| *seq);
        }
        out.truncate(limit);
        if out.len() < limit && in_log.is_some() {
            log::for_each_after(c, after, |batch| {
                for (seq, r) in (batch.first_seq..).zip(&batch.rows) {
                    if seq > after && out.len() < limit {
                        out.push((seq, *r));
                    }
                }
                out.len() < limit
            })?;
        }
        Ok(out)
    })
}

/// The seq and read time of the first reading after seq `after` (`None` when there is none),
/// without decoding more than it needs: from the log, one batch; from a fold, the seqs of each
/// chunk and then the one chunk that holds it. One snapshot.
pub(crate) fn first_after(
    conn: &Connection,
    after: i64,
) -> Result<Option<(i64, i64)>, rusqlite::Error> {
    snapshot(conn, |c| {
        let in_log: Option<i64> = c
            .prepare_cached(
                "SELECT first_seq FROM batches WHERE first_seq + readings - 1 > ?1 \
                 ORDER BY first_seq LIMIT 1",
            )?
            .query_row([after], |r| r.get(0))
            .optional()?;
        let below = in_log.map_or(i64::MAX, |first| first.max(after + 1));
        let fold: Option<i64> = c
            .prepare_cached(
                "SELECT id FROM folds WHERE last_seq > ?1 AND first_seq < ?2 ORDER BY id LIMIT 1",
            )?
            .query_row(params![after, below], |r| r.get(0))
            .optional()?;
        if let Some(f) = fold {
            // Seqs ascend within a chunk: each chunk's first seq past `after` is a candidate.
            let mut best: Option<(i64, i64)> = None;
            let mut seqs = Vec::new();
            let mut stmt =
                c.prepare_cached("SELECT id, data FROM chunks WHERE id >= ?1 AND id < ?2")?;
            let mut rows = stmt.query(params![fold::chunk_id(f, 0)?, fold::chunk_id(f + 1, 0)?])?;
            while let Some(row) = rows.next()? {
                seqs.clear();
                codec::decode_chunk_seqs(row.get_ref(1)?.as_blob()?, &mut seqs)
                    .map_err(log::corrupt)?;
                let i = seqs.partition_point(|&s| s <= after);
                if let Some(&seq) = seqs.get(i)
                    && seq < below
                    && best.is_none_or(|(b, _)| seq < b)
                {
                    best = Some((seq, row.get(0)?));
                }
            }
            if let Some((seq, id)) = best {
                let mut chunk = Vec::new();
                fold::read_chunk(c, f, id & 0xffff_ffff, &mut chunk)?;
                if let Some(r) = chunk.iter().find(|r| r.seq == seq) {
                    return Ok(Some((seq, r.ts)));
                }
            }
        }
        let Some(first) = in_log else {
            return Ok(None);
        };
        let found = c
            .prepare_cached("SELECT first_seq, data FROM batches WHERE first_seq = ?1")?
            .query_row([first], |r| {
                let mut rows = Vec::new();
                codec::decode_batch(r.get_ref(1)?.as_blob()?, &mut rows).map_err(log::corrupt)?;
                let skip = usize::try_from((after + 1 - first).max(0)).unwrap_or(usize::MAX);
                Ok(rows.get(skip).map(|row| (first + skip as i64, row.ts)))
            })?;
        Ok(found)
    })
}

/// A chunk of one sensor, without its readings: its fold, extent and rollup of good values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ChunkInfo {
    pub(crate) fold: i64,
    pub(crate) readings: i64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    /// Good values (quality good, finite) and their least and greatest.
    pub(crate) good: i64,
    pub(crate) low: Option<f64>,
    pub(crate) high: Option<f64>,
}

/// A chunk's row, with its blob when it was kept.
pub(crate) type ChunkEntry = (ChunkInfo, Option<Vec<u8>>);

/// The chunks of `sensor` whose read times overlap `from..=to`, oldest fold first: each chunk's
/// row (extent and rollup) and, when `keep` says so, its blob, read in one lookup per chunk
/// (one statement for all of them); nothing decoded.
pub(crate) fn chunks_in(
    conn: &Connection,
    sensor: i64,
    from: i64,
    to: i64,
    mut keep: impl FnMut(&ChunkInfo) -> bool,
) -> Result<Vec<ChunkEntry>, rusqlite::Error> {
    // The key of a chunk is `fold * 2^32 + sensor` (`fold::chunk_id`).
    if !(0..1 << 32).contains(&sensor) {
        return Err(rusqlite::Error::IntegralValueOutOfRange(2, sensor));
    }
    snapshot(conn, |c| {
        let mut stmt = c.prepare_cached(
            "SELECT f.id, c.readings, c.min_ts, c.max_ts, c.good, c.low, c.high, c.data \
             FROM folds AS f JOIN chunks AS c ON c.id = (f.id << 32) + ?3 \
             WHERE f.max_ts >= ?1 AND f.min_ts <= ?2 AND c.max_ts >= ?1 AND c.min_ts <= ?2 \
             ORDER BY f.id",
        )?;
        let mut rows = stmt.query(params![from, to, sensor])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let info = ChunkInfo {
                fold: r.get(0)?,
                readings: r.get(1)?,
                min_ts: r.get(2)?,
                max_ts: r.get(3)?,
                good: r.get(4)?,
                low: r.get(5)?,
                high: r.get(6)?,
            };
            let data = if keep(&info) {
                Some(r.get_ref(7)?.as_blob()?.to_vec())
            } else {
                None
            };
            out.push((info, data));
        }
        Ok(out)
    })
}

/// Appends the unfolded readings of `sensor` with read times in `from..=to` to `out` (log
/// order, not sorted).
pub(crate) fn tail(
    conn: &Connection,
    sensor: i64,
    from: i64,
    to: i64,
    out: &mut Vec<ChunkRow>,
) -> Result<(), rusqlite::Error> {
    snapshot(conn, |c| {
        let upto = fold::meta(c, FOLDED_UPTO)?;
        tail_rows(c, upto, Some((from, to)), sensor, |r| {
            if (from..=to).contains(&r.ts) {
                out.push(r);
            }
        })
    })
}

/// The readings of `sensor` in the unfolded log (seqs after `upto`; those at or below it are
/// folded already and come from the chunks), in batches whose read times overlap `times`.
fn tail_rows(
    c: &Connection,
    upto: i64,
    times: Option<(i64, i64)>,
    sensor: i64,
    mut each: impl FnMut(ChunkRow),
) -> Result<(), rusqlite::Error> {
    log::for_each_of_sensor(c, upto, times, sensor, |seq, r| {
        each(ChunkRow {
            seq,
            ts: r.ts,
            value: r.value,
            quality: r.quality,
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::tests::{buffer, rows};

    #[test]
    fn history_joins_chunks_and_the_unfolded_tail() {
        let mut conn = buffer();
        log::append(&conn, 1, &rows(30, 1, 1_000)).unwrap();
        fold::fold(&mut conn, 1_000).unwrap();
        log::append(&conn, 31, &rows(30, 1, 1_030)).unwrap();
        let mut out = Vec::new();
        range(&conn, 2, 1_020, 1_040, &mut out).unwrap();
        let ts: Vec<i64> = out.iter().map(|r| r.ts).collect();
        assert_eq!(ts, vec![1_022, 1_025, 1_028, 1_031, 1_034, 1_037, 1_040]);
        let seqs: Vec<i64> = out.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![23, 26, 29, 32, 35, 38, 41]);
        let top = newest(&conn, 2, 3).unwrap();
        let ts: Vec<i64> = top.iter().map(|r| r.ts).collect();
        assert_eq!(ts, vec![1_058, 1_055, 1_052]);
        let top = newest(&conn, 2, 15).unwrap();
        assert_eq!(top.len(), 15);
        assert_eq!(top.last().map(|r| r.ts), Some(1_016));
        let latest = latest(&conn).unwrap();
        assert_eq!(latest.len(), 3);
        assert_eq!(latest[1].0, 2);
        assert_eq!(latest[1].1.seq, 59);
        let sums = chunks_in(&conn, 2, 0, 2_000, |_| true).unwrap();
        assert_eq!(sums.len(), 1);
        let (info, data) = &sums[0];
        assert_eq!((info.min_ts, info.max_ts), (1_001, 1_028));
        assert_eq!(info.readings, 10);
        let mut decoded = Vec::new();
        codec::decode_chunk(data.as_deref().unwrap(), &mut decoded).unwrap();
        assert_eq!(decoded.len(), 10);
        assert!(
            chunks_in(&conn, 2, 1_029, 2_000, |_| true)
                .unwrap()
                .is_empty()
        );
        assert!(chunks_in(&conn, 7, 0, 2_000, |_| true).unwrap().is_empty());
        assert_eq!(chunks_in(&conn, 2, 0, 2_000, |_| false).unwrap()[0].1, None);
        let mut rows = Vec::new();
        tail(&conn, 2, 0, 2_000, &mut rows).unwrap();
        assert_eq!(rows.len(), 10);
        let after = after_seq(&conn, 25, 10).unwrap();
        let seqs: Vec<i64> = after.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (26..=35).collect::<Vec<_>>());
        crate::store::trim::release_log(&mut conn, false, 0).unwrap();
        assert_eq!(first_after(&conn, 25).unwrap(), Some((26, after[0].1.ts)));
        assert_eq!(first_after(&conn, 0).unwrap().map(|f| f.0), Some(1));
        assert_eq!(first_after(&conn, 59).unwrap().map(|f| f.0), Some(60));
        assert_eq!(first_after(&conn, 60).unwrap(), None);
        let again = after_seq(&conn, 25, 10).unwrap();
        assert_eq!(again, after, "folded and released: read from the chunks");
        for cursor in [0, 3, 25, 29, 30, 31, 59] {
            let want = after_seq(&conn, cursor, 1)
                .unwrap()
                .first()
                .map(|(s, r)| (*s, r.ts));
            assert_eq!(first_after(&conn, cursor).unwrap(), want, "after {cursor}");
        }
        assert_eq!(after_seq(&conn, 0, 100).unwrap().len(), 60);
    }
}
