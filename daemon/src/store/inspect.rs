//! Read-only inspection of what a buffer file holds, whatever its layout: for tests, tools and
//! diagnostics that need every stored reading, not a sensor's history.
//!
//! Owns nothing: it only reads. Works on a buffer of the row-per-reading layout (schema 5 and
//! earlier, or one whose upgrade has not finished: the table `readings` is then still whole) and
//! on the columnar layout (readings at or below `folded_upto` from `chunks`, the others from
//! `batches`, so a batch that is folded but not yet released is not counted twice).

use rusqlite::Connection;

use super::codec::{self, ChunkRow};
use super::fold::{self, FOLDED_UPTO};
use super::{log, series};

/// One stored reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredReading {
    /// The reading's seq.
    pub seq: i64,
    /// `sensors.id`.
    pub sensor: i64,
    /// Read time, ms since the epoch.
    pub ts: i64,
    /// The value, when there is one.
    pub value: Option<f64>,
    /// Quality code (0 good, 1 bad, 2 stale, 3 comm_error).
    pub quality: u8,
}

/// Every reading the buffer holds, in seq order, read in one snapshot.
///
/// # Errors
/// A query failed, or a stored blob does not decode (`FromSqlConversionFailure` with the codec's
/// error).
pub fn readings(conn: &Connection) -> Result<Vec<StoredReading>, rusqlite::Error> {
    series::snapshot(conn, |c| {
        if has_table(c, "readings")? {
            return row_per_reading(c);
        }
        if !has_table(c, "batches")? {
            return Ok(Vec::new());
        }
        columnar(c)
    })
}

/// Whether the database itself (not the connection's temporary schema) has table `name`.
fn has_table(conn: &Connection, name: &str) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT count(*) > 0 FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
    )?
    .query_row([name], |r| r.get(0))
}

fn row_per_reading(conn: &Connection) -> Result<Vec<StoredReading>, rusqlite::Error> {
    conn.prepare("SELECT seq, sensor, ts, value, quality FROM main.readings ORDER BY seq")?
        .query_map([], |r| {
            Ok(StoredReading {
                seq: r.get(0)?,
                sensor: r.get(1)?,
                ts: r.get(2)?,
                value: r.get(3)?,
                quality: u8::try_from(r.get::<_, i64>(4)?).unwrap_or(u8::MAX),
            })
        })?
        .collect()
}

fn columnar(conn: &Connection) -> Result<Vec<StoredReading>, rusqlite::Error> {
    let upto = fold::meta(conn, FOLDED_UPTO)?;
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT id, data FROM main.chunks ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut chunk: Vec<ChunkRow> = Vec::new();
    while let Some(row) = rows.next()? {
        let sensor = row.get::<_, i64>(0)? & 0xffff_ffff;
        chunk.clear();
        codec::decode_chunk(row.get_ref(1)?.as_blob()?, &mut chunk).map_err(log::corrupt)?;
        out.extend(chunk.iter().map(|r| StoredReading {
            seq: r.seq,
            sensor,
            ts: r.ts,
            value: r.value,
            quality: r.quality,
        }));
    }
    log::for_each_after(conn, upto, |batch| {
        for (seq, r) in (batch.first_seq..).zip(&batch.rows) {
            if seq > upto {
                out.push(StoredReading {
                    seq,
                    sensor: r.sensor,
                    ts: r.ts,
                    value: r.value,
                    quality: r.quality,
                });
            }
        }
        true
    })?;
    out.sort_by_key(|r| r.seq);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::tests::{buffer, rows};

    fn seqs(all: &[StoredReading]) -> Vec<i64> {
        all.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn reads_chunks_and_the_unfolded_log_once_each() {
        let mut conn = buffer();
        // `buffer()` has both tables until the upgrade drops `readings`.
        let version = crate::store::migrations::latest_version() as i64;
        crate::store::upgrade::run(&mut conn, version).unwrap();
        log::append(&conn, 1, &rows(10, 1, 1_000)).unwrap();
        log::append(&conn, 11, &rows(10, 1, 2_000)).unwrap();
        fold::fold(&mut conn, 5).unwrap();
        log::append(&conn, 21, &rows(4, 7, 3_000)).unwrap();
        // Seqs 1..=10 are folded and still in the log: counted once.
        let all = readings(&conn).unwrap();
        assert_eq!(seqs(&all), (1..=24).collect::<Vec<_>>());
        let want = rows(10, 1, 2_000)[3];
        assert_eq!(
            all[13],
            StoredReading {
                seq: 14,
                sensor: want.sensor,
                ts: want.ts,
                value: want.value,
                quality: want.quality,
            }
        );
        assert_eq!(all[20].sensor, 7);
        crate::store::trim::release_log(&mut conn, false, 0).unwrap();
        assert_eq!(readings(&conn).unwrap(), all);
        // A temporary table named `readings` on the connection does not hide the layout.
        conn.execute_batch("CREATE TEMP TABLE readings (seq INTEGER)")
            .unwrap();
        assert_eq!(readings(&conn).unwrap(), all);
    }

    #[test]
    fn reads_the_row_per_reading_table() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../../migrations/gateway/0001_buffer.sql"))
            .unwrap();
        conn.execute_batch("INSERT INTO readings VALUES (3, 1, 100, 1.5, 0), (2, 2, 90, NULL, 3);")
            .unwrap();
        let all = readings(&conn).unwrap();
        assert_eq!(seqs(&all), vec![2, 3]);
        assert_eq!(all[0].value, None);
        assert_eq!(all[0].quality, 3);
        assert_eq!(all[1].value, Some(1.5));
    }
}
