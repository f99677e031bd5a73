//! A sensor's readings over a time range, as the assistant, the charts and the alarm engine ask
//! for them: statistics per time bucket, a series to draw (thinned as it is read when long), and
//! every reading after a seq cursor.
//!
//! Owns: range queries over a sensor's series (`series`: its chunks and the unfolded log) and
//! reads by seq cursor. Does not own: what the numbers mean for a person
//! (`crate::agent::tools`, `crate::render`).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension};

use super::codec::{self, ChunkRow};
use super::reader::{Lane, ReadConnection};
use super::{Reader, StoreError, fold, series};
use crate::model::{Quality, Reading, SensorId, Seq, StoredReading, Timestamp};

/// Readings returned one by one up to this many in a series' window; above it, only the lowest
/// and highest good value of each of [`BUCKETS`] time buckets (same picture, bounded memory).
pub const MAX_RAW_POINTS: i64 = 20_000;
/// Time buckets of a thinned series.
pub const BUCKETS: i64 = 4_000;

/// One point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesPoint {
    /// Read time, ms since the epoch.
    pub ts: i64,
    /// The value; `None` when there is no good value (bad, stale, communication error), which
    /// breaks the line like missing data.
    pub value: Option<f64>,
}

/// Good values of one time bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketStats {
    /// Index of the bucket, counted from the start of the range.
    pub index: i64,
    /// Mean.
    pub avg: f64,
    /// Least.
    pub min: f64,
    /// Greatest.
    pub max: f64,
    /// How many good values.
    pub count: i64,
    /// The newest of them.
    pub last: f64,
}

impl Reader {
    /// The good values of `sensor` in `from..=to` in buckets of `bucket_ms` counted from `from`
    /// (buckets without a value left out), and the newest good value with its time.
    ///
    /// # Errors
    /// The query failed.
    pub async fn history_buckets(
        &self,
        sensor: &str,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<(Vec<BucketStats>, Option<(Timestamp, f64)>), StoreError> {
        let key = sensor.to_owned();
        let (from, to) = (from.as_millis(), to.as_millis());
        let bucket_ms = bucket_ms.max(1);
        self.run(Lane::Heavy, move |c| {
            let Some(id) = sensor_id(&c.conn, &key)? else {
                return Ok((Vec::new(), None));
            };
            let mut rows = Vec::new();
            series::range(&c.conn, id, from, to, &mut rows)?;
            // In time order: the newest good value of a bucket is the last one added.
            let mut buckets: Vec<BucketStats> = Vec::new();
            let mut last = None;
            for r in rows {
                let Some(v) = good(&r) else { continue };
                let index = (r.ts - from) / bucket_ms;
                match buckets.last_mut() {
                    Some(b) if b.index == index => {
                        b.avg += v;
                        b.min = b.min.min(v);
                        b.max = b.max.max(v);
                        b.count += 1;
                        b.last = v;
                    }
                    _ => buckets.push(BucketStats {
                        index,
                        avg: v,
                        min: v,
                        max: v,
                        count: 1,
                        last: v,
                    }),
                }
                last = Some((Timestamp(r.ts), v));
            }
            for b in &mut buckets {
                // `avg` held the sum.
                b.avg /= b.count as f64;
            }
            Ok::<_, rusqlite::Error>((buckets, last))
        })
        .await
    }

    /// See [`ReadConnection::series`].
    ///
    /// # Errors
    /// The query failed.
    pub async fn series(
        &self,
        sensor: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<SeriesPoint>>, StoreError> {
        let key = sensor.to_owned();
        self.run(Lane::Heavy, move |c| c.series(&key, from, to))
            .await
    }

    /// Up to `limit` readings committed after seq `after`, in seq order.
    ///
    /// # Errors
    /// The query failed.
    pub async fn readings_after(
        &self,
        after: Seq,
        limit: i64,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let limit = usize::try_from(limit.max(0)).unwrap_or(usize::MAX);
        self.run(Lane::Heavy, move |c| {
            let rows = series::after_seq(&c.conn, after.0, limit)?;
            let mut keys: HashMap<i64, SensorId> = HashMap::new();
            let mut stmt = c
                .conn
                .prepare_cached("SELECT key FROM sensors WHERE id = ?1")?;
            let mut out = Vec::with_capacity(rows.len());
            for (seq, r) in rows {
                let sensor = match keys.get(&r.sensor) {
                    Some(k) => k.clone(),
                    None => {
                        let key: String = stmt
                            .query_row([r.sensor], |row| row.get(0))
                            .optional()?
                            .unwrap_or_default();
                        let key = SensorId::new(key);
                        keys.insert(r.sensor, key.clone());
                        key
                    }
                };
                out.push(StoredReading {
                    seq: Seq(seq),
                    reading: Reading {
                        sensor,
                        ts: Timestamp(r.ts),
                        value: r.value,
                        quality: Quality::from_code(i64::from(r.quality)),
                    },
                });
            }
            Ok::<_, rusqlite::Error>(out)
        })
        .await
    }
}

impl ReadConnection {
    /// A sensor's readings in `from..=to`, in time order: every reading, or the minimum and
    /// maximum good value of each of [`BUCKETS`] buckets when there are more than
    /// [`MAX_RAW_POINTS`]. `None` when the buffer does not know the sensor.
    pub fn series(
        &self,
        sensor: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<SeriesPoint>>, StoreError> {
        let c = &self.conn;
        let (from, to) = (from.as_millis(), to.as_millis());
        let Some(id) = sensor_id(c, sensor)? else {
            return Ok(None);
        };
        Ok(Some(series::snapshot(c, |c| {
            series_points(c, id, from, to)
        })?))
    }
}

/// The sensor's `sensors.id`.
fn sensor_id(c: &Connection, key: &str) -> Result<Option<i64>, rusqlite::Error> {
    c.prepare_cached("SELECT id FROM sensors WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// The value of a reading that has a good one.
fn good(r: &ChunkRow) -> Option<f64> {
    r.value
        .filter(|_| Quality::from_code(i64::from(r.quality)) == Quality::Good)
}

/// See [`ReadConnection::series`]. Chunks that lie inside the range are counted by their row
/// alone; when the range is long enough to be thinned, a chunk that falls within one time bucket
/// gives that bucket its rollup (least and greatest good value) without being decoded.
fn series_points(
    c: &Connection,
    sensor: i64,
    from: i64,
    to: i64,
) -> Result<Vec<SeriesPoint>, rusqlite::Error> {
    let width = ((to - from) / BUCKETS).max(1);
    let one_bucket = |i: &series::ChunkInfo| (i.min_ts - from) / width == (i.max_ts - from) / width;
    // Each chunk's row and blob come in one lookup. A chunk inside the range that falls within
    // one bucket is only decoded when the series is not thinned, which needs at most
    // MAX_RAW_POINTS readings: once the chunks hold more, their blobs are not kept.
    let mut held = 0;
    let chunks = series::chunks_in(c, sensor, from, to, |info| {
        held += info.readings;
        let inside = info.min_ts >= from && info.max_ts <= to;
        !inside || !one_bucket(info) || held <= MAX_RAW_POINTS
    })?;
    // Readings of chunks that cross an end of the range, and of the unfolded tail, in range.
    let mut loose: Vec<ChunkRow> = Vec::new();
    let mut inside: Vec<series::ChunkEntry> = Vec::new();
    let mut decoded = Vec::new();
    for (info, data) in chunks {
        if info.min_ts >= from && info.max_ts <= to {
            inside.push((info, data));
        } else {
            decoded.clear();
            decode(c, sensor, &info, data.as_deref(), &mut decoded)?;
            loose.extend(decoded.iter().filter(|r| (from..=to).contains(&r.ts)));
        }
    }
    series::tail(c, sensor, from, to, &mut loose)?;
    let count = inside.iter().map(|(i, _)| i.readings).sum::<i64>() + loose.len() as i64;
    let mut out = Vec::new();
    if count <= MAX_RAW_POINTS {
        for (info, data) in &inside {
            decode(c, sensor, info, data.as_deref(), &mut loose)?;
        }
        loose.sort_by_key(|r| (r.ts, r.seq));
        out.extend(loose.iter().map(|r| SeriesPoint {
            ts: r.ts,
            value: good(r),
        }));
        return Ok(out);
    }
    // Thinned: per bucket, the lowest and the highest good value at their own times.
    let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
    let mut add = |ts: i64, value: Option<f64>| {
        let b = (ts - from) / width;
        buckets
            .entry(b)
            .or_insert_with(|| Bucket::new(ts))
            .add(ts, value);
    };
    for (info, data) in &inside {
        if one_bucket(info) {
            // The chunk's rollup: its least and greatest good values, placed at its first and
            // last read time (inside the same bucket).
            add(info.min_ts, info.low.filter(|_| info.good > 0));
            add(info.max_ts, info.high.filter(|_| info.good > 0));
        } else {
            decoded.clear();
            decode(c, sensor, info, data.as_deref(), &mut decoded)?;
            for r in &decoded {
                add(r.ts, good(r));
            }
        }
    }
    for r in &loose {
        add(r.ts, good(r));
    }
    for (_, b) in buckets {
        b.emit(&mut out);
    }
    Ok(out)
}

/// Decodes a chunk from its blob, or reads it when its blob was not kept.
fn decode(
    c: &Connection,
    sensor: i64,
    info: &series::ChunkInfo,
    data: Option<&[u8]>,
    out: &mut Vec<ChunkRow>,
) -> Result<(), rusqlite::Error> {
    match data {
        Some(blob) => codec::decode_chunk(blob, out).map_err(super::log::corrupt),
        None => fold::read_chunk(c, info.fold, sensor, out).map(|_| ()),
    }
}

/// One time bucket of a thinned history.
#[derive(Debug)]
struct Bucket {
    first_ts: i64,
    low: Option<(i64, f64)>,
    high: Option<(i64, f64)>,
}

impl Bucket {
    fn new(first_ts: i64) -> Self {
        Self {
            first_ts,
            low: None,
            high: None,
        }
    }

    fn add(&mut self, ts: i64, value: Option<f64>) {
        self.first_ts = self.first_ts.min(ts);
        let Some(v) = value else { return };
        // On equal values the earlier one stands, whatever order they come in.
        if self.low.is_none_or(|(t, l)| v < l || (v == l && ts < t)) {
            self.low = Some((ts, v));
        }
        if self.high.is_none_or(|(t, h)| v > h || (v == h && ts < t)) {
            self.high = Some((ts, v));
        }
    }

    /// The bucket's lowest and highest good values in time order, or a point without a value
    /// when it has none.
    fn emit(self, out: &mut Vec<SeriesPoint>) {
        match (self.low, self.high) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
                out.push(SeriesPoint {
                    ts: first.0,
                    value: Some(first.1),
                });
                if second.0 != first.0 {
                    out.push(SeriesPoint {
                        ts: second.0,
                        value: Some(second.1),
                    });
                }
            }
            _ => out.push(SeriesPoint {
                ts: self.first_ts,
                value: None,
            }),
        }
    }
}
