//! The fold: regroups the oldest unfolded commit batches by sensor into chunks, off the commit
//! path (the writer runs it between commits, in a transaction of its own).
//!
//! Owns: `folds`, `chunks`, `latest` and the `folded_upto` / `next_fold` facts in `meta`, and the
//! release of the batches it folded. Does not own: dropping readings (`trim`, `budget`).
//!
//! A fold takes whole batches in seq order, from the first seq after `folded_upto`, until about
//! `max_readings` readings. In one transaction it writes one chunk per sensor (keys
//! `fold * 2^32 + sensor`, ascending, so the chunks table only grows at its end), the `folds`
//! row, the newest reading of each sensor into `latest`, moves `folded_upto` and deletes the
//! batches it folded (their readings live on in the chunks, synced or not). A crash before the
//! commit leaves everything as it was, and the same batches are folded again.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::codec::{self, ChunkRow};
use super::log;

/// What one fold did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Folded {
    /// The fold's id.
    pub(crate) fold: i64,
    /// First seq folded.
    pub(crate) first_seq: i64,
    /// Last seq folded (the new `folded_upto`).
    pub(crate) last_seq: i64,
    /// Readings folded.
    pub(crate) readings: i64,
    /// Chunks written (sensors in the fold).
    pub(crate) chunks: i64,
}

/// Key of a chunk.
pub(crate) fn chunk_id(fold: i64, sensor: i64) -> Result<i64, rusqlite::Error> {
    if !(0..1 << 32).contains(&sensor) || !(0..1 << 31).contains(&fold) {
        return Err(rusqlite::Error::IntegralValueOutOfRange(0, sensor));
    }
    Ok((fold << 32) | sensor)
}

/// A fact of `meta`, 0 when absent.
pub(crate) fn meta(conn: &Connection, key: &str) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(0))
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// Highest seq already folded into chunks.
pub(crate) const FOLDED_UPTO: &str = "folded_upto";
const NEXT_FOLD: &str = "next_fold";

/// Readings one pass of a fold holds in memory (more only when one sensor alone has more). A
/// fold counts each sensor's readings from the batches' sensor columns first, then decodes the
/// batches once per group of sensors of at most this many readings: at 262,144 readings of
/// 10,000 sensors that holds about 2.6 MB at a time instead of 10.5 MB, for four decodes of the
/// batches instead of one.
const PASS_READINGS: usize = 65_536;

/// Sensors below this id are found by indexing a vector; others (never seen in practice: ids
/// are the `sensors` table's rowids) through a map.
const DENSE_SENSORS: i64 = 1 << 20;

/// The sensors of a fold in ascending order, each with its readings, and each sensor's place in
/// that order, found without a map lookup for ordinary ids.
#[derive(Debug, Default)]
struct FoldSensors {
    /// Readings per sensor id below [`DENSE_SENSORS`]; later its place + 1 (0: not in the fold).
    dense: Vec<u32>,
    sparse: BTreeMap<i64, usize>,
    /// `(sensor, readings)`, ascending.
    sorted: Vec<(i64, usize)>,
}

impl FoldSensors {
    fn count(&mut self, sensor: i64) {
        match usize::try_from(sensor) {
            Ok(i) if sensor < DENSE_SENSORS => {
                if i >= self.dense.len() {
                    self.dense.resize(i + 1, 0);
                }
                self.dense[i] += 1;
            }
            _ => *self.sparse.entry(sensor).or_default() += 1,
        }
    }

    /// Ends the counting: orders the sensors and gives each its place.
    fn seal(&mut self) {
        let mut sorted: Vec<(i64, usize)> = self
            .sparse
            .iter()
            .filter(|(s, _)| **s < 0)
            .map(|(s, n)| (*s, *n))
            .collect();
        sorted.extend(
            self.dense
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s as i64, *n as usize)),
        );
        sorted.extend(
            self.sparse
                .iter()
                .filter(|(s, _)| **s >= 0)
                .map(|(s, n)| (*s, *n)),
        );
        for (place, &(sensor, _)) in sorted.iter().enumerate() {
            match usize::try_from(sensor) {
                Ok(i) if sensor < DENSE_SENSORS => self.dense[i] = place as u32 + 1,
                _ => {
                    self.sparse.insert(sensor, place);
                }
            }
        }
        self.sorted = sorted;
    }

    /// The sensor's place in `sorted` (after [`Self::seal`]).
    #[inline]
    fn place(&self, sensor: i64) -> Option<usize> {
        match usize::try_from(sensor) {
            Ok(i) if sensor < DENSE_SENSORS => match self.dense.get(i) {
                Some(&p) if p > 0 => Some(p as usize - 1),
                _ => None,
            },
            _ => self.sparse.get(&sensor).copied(),
        }
    }
}

/// Consecutive sensors (ascending ids) whose readings in a fold add up to at most `limit`
/// (a sensor with more is a group of its own), as ranges of places in `sorted`.
fn sensor_groups(sorted: &[(i64, usize)], limit: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut held = 0;
    for (place, &(_, n)) in sorted.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if held + n <= limit => {
                g.end = place + 1;
                held += n;
            }
            _ => {
                groups.push(place..place + 1);
                held = n;
            }
        }
    }
    groups
}

/// Folds the oldest unfolded batches, about `max_readings` readings of them (whole batches).
/// `None` when there was nothing to fold.
pub(crate) fn fold(
    conn: &mut Connection,
    max_readings: usize,
) -> Result<Option<Folded>, rusqlite::Error> {
    fold_in_passes(conn, max_readings, PASS_READINGS)
}

/// [`fold`] holding at most about `pass_readings` readings in memory at a time.
fn fold_in_passes(
    conn: &mut Connection,
    max_readings: usize,
    pass_readings: usize,
) -> Result<Option<Folded>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let upto = meta(&tx, FOLDED_UPTO)?;
    // Which batches, and how many readings each sensor has in them: their sensor columns only.
    let mut sensors = FoldSensors::default();
    let (mut first_seq, mut last_seq, mut readings) = (i64::MAX, upto, 0usize);
    let mut column = Vec::new();
    log::for_each_blob_after(&tx, upto, |batch_first, blob| {
        column.clear();
        codec::decode_batch_sensors(blob, &mut column).map_err(log::corrupt)?;
        for (seq, &sensor) in (batch_first..).zip(&column) {
            if seq <= upto {
                continue;
            }
            first_seq = first_seq.min(seq);
            last_seq = seq;
            readings += 1;
            sensors.count(sensor);
        }
        Ok(readings < max_readings)
    })?;
    if readings == 0 {
        return Ok(None);
    }
    sensors.seal();
    let fold = meta(&tx, NEXT_FOLD)?.max(1);
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    let mut insert = tx.prepare_cached(
        "INSERT INTO chunks (id, readings, min_ts, max_ts, good, low, high, total, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut latest = tx.prepare_cached(
        "INSERT INTO latest (sensor, seq, ts, value_bits, quality) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (sensor) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, \
         value_bits = excluded.value_bits, quality = excluded.quality WHERE excluded.ts >= latest.ts",
    )?;
    // A pass per group of sensors, each sensor's readings in a vector of its exact size. Groups
    // ascend, so chunk keys do too.
    for group in sensor_groups(&sensors.sorted, pass_readings) {
        let mut per_sensor: Vec<Vec<ChunkRow>> = sensors.sorted[group.clone()]
            .iter()
            .map(|&(_, n)| Vec::with_capacity(n))
            .collect();
        let mut rows = Vec::new();
        log::for_each_blob_after(&tx, upto, |batch_first, blob| {
            rows.clear();
            codec::decode_batch(blob, &mut rows).map_err(log::corrupt)?;
            for (seq, r) in (batch_first..).zip(&rows) {
                if seq <= upto || seq > last_seq {
                    continue;
                }
                if let Some(place) = sensors.place(r.sensor)
                    && group.contains(&place)
                {
                    per_sensor[place - group.start].push(ChunkRow {
                        seq,
                        ts: r.ts,
                        value: r.value,
                        quality: r.quality,
                    });
                }
            }
            Ok(batch_first + rows.len() as i64 - 1 < last_seq)
        })?;
        for (&(sensor, _), rows) in sensors.sorted[group].iter().zip(&per_sensor) {
            let s = Summary::of(rows);
            min_ts = min_ts.min(s.min_ts);
            max_ts = max_ts.max(s.max_ts);
            insert.execute(params![
                chunk_id(fold, sensor)?,
                rows.len() as i64,
                s.min_ts,
                s.max_ts,
                s.good,
                s.low,
                s.high,
                s.total,
                codec::encode_chunk(rows),
            ])?;
            let newest = s.newest;
            latest.execute(params![
                sensor,
                newest.seq,
                newest.ts,
                newest.value.map(|v| v.to_bits() as i64),
                newest.quality
            ])?;
        }
    }
    drop((insert, latest));
    tx.prepare_cached(
        "INSERT INTO folds (id, first_seq, last_seq, readings, min_ts, max_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![fold, first_seq, last_seq, readings as i64, min_ts, max_ts])?;
    set_meta(&tx, FOLDED_UPTO, last_seq)?;
    set_meta(&tx, NEXT_FOLD, fold + 1)?;
    // The chunks now hold every reading of these batches: the batches go in the same
    // transaction, so each reading is stored once (sync and alarms read released seqs from the
    // chunks). Batches an earlier build kept folded for an unsynced uplink go too.
    log::delete_upto(&tx, last_seq)?;
    tx.commit()?;
    Ok(Some(Folded {
        fold,
        first_seq,
        last_seq,
        readings: readings as i64,
        chunks: sensors.sorted.len() as i64,
    }))
}

/// What a chunk row records beside its blob.
struct Summary {
    min_ts: i64,
    max_ts: i64,
    good: i64,
    low: Option<f64>,
    high: Option<f64>,
    total: Option<f64>,
    /// The newest reading by read time (the later seq on a tie).
    newest: ChunkRow,
}

impl Summary {
    fn of(rows: &[ChunkRow]) -> Self {
        let mut s = Self {
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            good: 0,
            low: None,
            high: None,
            total: None,
            newest: rows[0],
        };
        for r in rows {
            s.min_ts = s.min_ts.min(r.ts);
            s.max_ts = s.max_ts.max(r.ts);
            if r.ts >= s.newest.ts {
                s.newest = *r;
            }
            if let Some(v) = r.value.filter(|v| r.quality == 0 && v.is_finite()) {
                s.good += 1;
                s.low = Some(s.low.map_or(v, |l| l.min(v)));
                s.high = Some(s.high.map_or(v, |h| h.max(v)));
                s.total = Some(s.total.unwrap_or(0.0) + v);
            }
        }
        s
    }
}

/// Decodes the chunk of `sensor` in `fold`, appending its readings to `out`; false when the
/// sensor has no chunk there.
pub(crate) fn read_chunk(
    conn: &Connection,
    fold: i64,
    sensor: i64,
    out: &mut Vec<ChunkRow>,
) -> Result<bool, rusqlite::Error> {
    let mut stmt = conn.prepare_cached("SELECT data FROM chunks WHERE id = ?1")?;
    let mut rows = stmt.query([chunk_id(fold, sensor)?])?;
    match rows.next()? {
        Some(row) => {
            let blob = row.get_ref(0)?.as_blob()?;
            codec::decode_chunk(blob, out).map_err(log::corrupt)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::BatchRow;
    use crate::store::log::tests::{buffer, rows};

    #[test]
    fn folds_whole_batches_into_one_chunk_per_sensor() {
        let mut conn = buffer();
        log::append(&conn, 1, &rows(10, 1, 1_000)).unwrap();
        log::append(&conn, 11, &rows(10, 1, 2_000)).unwrap();
        log::append(&conn, 21, &rows(10, 1, 3_000)).unwrap();
        let first = fold(&mut conn, 15).unwrap().unwrap();
        // The folded batches are gone; the third is the whole log.
        assert_eq!(log::extent(&conn).unwrap(), Some((10, 21, 30)));
        assert_eq!(
            first,
            Folded {
                fold: 1,
                first_seq: 1,
                last_seq: 20,
                readings: 20,
                chunks: 3
            }
        );
        let second = fold(&mut conn, 15).unwrap().unwrap();
        assert_eq!(
            (second.fold, second.first_seq, second.last_seq),
            (2, 21, 30)
        );
        assert_eq!(fold(&mut conn, 15).unwrap(), None);
        assert_eq!(log::extent(&conn).unwrap(), None);
        assert_eq!(log::resume_seq(&conn).unwrap(), 31);
        // Sensor 2 got every third reading, starting with the second.
        let mut out = Vec::new();
        assert!(read_chunk(&conn, 1, 2, &mut out).unwrap());
        let seqs: Vec<i64> = out.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![2, 5, 8, 12, 15, 18]);
        assert!(!read_chunk(&conn, 1, 9, &mut out).unwrap());
        let latest: (i64, i64) = conn
            .query_row("SELECT seq, ts FROM latest WHERE sensor = 2", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(latest, (28, 3_007));
        assert_eq!(meta(&conn, FOLDED_UPTO).unwrap(), 30);
    }

    /// Everything a fold wrote: chunks, latest, folds and the folded-up-to mark.
    fn written(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for sql in [
            "SELECT id, readings, min_ts, max_ts, good, low, high, total, hex(data) FROM chunks ORDER BY id",
            "SELECT sensor, seq, ts, value_bits, quality FROM latest ORDER BY sensor",
            "SELECT id, first_seq, last_seq, readings, min_ts, max_ts FROM folds ORDER BY id",
            "SELECT key, value FROM meta WHERE key IN ('folded_upto', 'next_fold') ORDER BY key",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let cells: Vec<String> = (0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect();
                    Ok(cells.join("|"))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }

    #[test]
    fn a_fold_in_several_passes_writes_what_one_pass_writes() {
        let fill = |conn: &Connection| {
            // Seven sensors with uneven shares (sensor 1 in every other reading), four batches.
            for b in 0..4_i64 {
                let rows: Vec<_> = (0..30_i64)
                    .map(|i| BatchRow {
                        sensor: if i % 2 == 0 { 1 } else { 2 + (i / 2) % 6 },
                        ts: 10_000 * (b + 1) + i,
                        value: (i % 5 != 0).then_some((b * 30 + i) as f64 / 4.0),
                        quality: if i % 5 == 0 { 3 } else { 0 },
                    })
                    .collect();
                log::append(conn, 1 + b * 30, &rows).unwrap();
            }
        };
        let mut one = buffer();
        fill(&one);
        let mut many = buffer();
        fill(&many);
        // Two folds of two batches each: one pass, and passes of at most 7 readings (sensor 1,
        // with 30 readings in a fold, is a group of its own).
        for _ in 0..2 {
            let a = fold_in_passes(&mut one, 60, 1_000).unwrap().unwrap();
            let b = fold_in_passes(&mut many, 60, 7).unwrap().unwrap();
            assert_eq!(a, b);
            assert_eq!(a.readings, 60);
            assert_eq!(a.chunks, 7);
        }
        assert_eq!(fold_in_passes(&mut many, 60, 7).unwrap(), None);
        let (a, b) = (written(&one), written(&many));
        assert!(a.len() > 14, "{a:?}");
        assert_eq!(a, b);
    }

    #[test]
    fn sensor_groups_stay_within_the_limit_unless_one_sensor_is_over_it() {
        let sorted = [(1, 3), (2, 4), (3, 10), (4, 1), (5, 2), (9, 5)];
        assert_eq!(sensor_groups(&sorted, 7), vec![0..2, 2..3, 3..5, 5..6]);
        assert_eq!(sensor_groups(&sorted, 100).len(), 1);
        assert!(sensor_groups(&[], 7).is_empty());
    }

    #[test]
    fn fold_sensors_order_every_id_and_find_their_places() {
        let mut s = FoldSensors::default();
        for id in [7, 3, 7, DENSE_SENSORS + 5, -2, 0, 3, 7] {
            s.count(id);
        }
        s.seal();
        assert_eq!(
            s.sorted,
            vec![(-2, 1), (0, 1), (3, 2), (7, 3), (DENSE_SENSORS + 5, 1)]
        );
        for (place, &(id, _)) in s.sorted.iter().enumerate() {
            assert_eq!(s.place(id), Some(place));
        }
        assert_eq!(s.place(4), None);
        assert_eq!(s.place(DENSE_SENSORS + 6), None);
        assert_eq!(s.place(-1), None);
    }
}
