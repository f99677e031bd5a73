//! A sensor's readings over a time range, as the assistant, the charts and the alarm engine ask
//! for them: statistics per time bucket, a series to draw (thinned as it is read when long), and
//! every reading after a seq cursor.
//!
//! Owns: range queries over `readings`. Does not own: what the numbers mean for a person
//! (`crate::agent::tools`, `crate::render`).

use rusqlite::{OptionalExtension, params};

use super::reader::{Lane, ReadConnection};
use super::{Reader, StoreError};
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
        self.run(Lane::Heavy, move |c| {
            let c = &c.conn;
            let mut stmt = c.prepare_cached(
                "SELECT (r.ts - ?2) / ?3 AS b, avg(r.value), min(r.value), max(r.value), count(*) \
                 FROM readings r JOIN sensors s ON s.id = r.sensor \
                 WHERE s.key = ?1 AND r.ts >= ?2 AND r.ts <= ?4 AND r.quality = 0 AND r.value IS NOT NULL \
                 GROUP BY b ORDER BY b",
            )?;
            let mut rows = stmt
                .query_map(params![key, from, bucket_ms, to], |r| {
                    Ok(BucketStats {
                        index: r.get(0)?,
                        avg: r.get(1)?,
                        min: r.get(2)?,
                        max: r.get(3)?,
                        count: r.get(4)?,
                        last: 0.0,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            // With a single max() aggregate SQLite takes the bare column from the newest row.
            let mut newest = c.prepare_cached(
                "SELECT (r.ts - ?2) / ?3 AS b, r.value, max(r.ts) \
                 FROM readings r JOIN sensors s ON s.id = r.sensor \
                 WHERE s.key = ?1 AND r.ts >= ?2 AND r.ts <= ?4 AND r.quality = 0 AND r.value IS NOT NULL \
                 GROUP BY b ORDER BY b",
            )?;
            let newest = newest
                .query_map(params![key, from, bucket_ms, to], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?, r.get::<_, i64>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (row, n) in rows.iter_mut().zip(&newest) {
                row.last = n.1;
            }
            let last = newest.last().map(|n| (Timestamp(n.2), n.1));
            Ok::<_, rusqlite::Error>((rows, last))
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
        self.run(Lane::Heavy, move |c| {
            let mut stmt = c.conn.prepare_cached(
                "SELECT r.seq, s.key, r.ts, r.value, r.quality FROM readings r \
                 JOIN sensors s ON s.id = r.sensor WHERE r.seq > ?1 ORDER BY r.seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after.0, limit], |r| {
                Ok(StoredReading {
                    seq: Seq(r.get(0)?),
                    reading: Reading {
                        sensor: SensorId::new(r.get::<_, String>(1)?),
                        ts: Timestamp(r.get(2)?),
                        value: r.get(3)?,
                        quality: Quality::from_code(r.get(4)?),
                    },
                })
            })?;
            rows.collect()
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
        let Some(id): Option<i64> = c
            .query_row("SELECT id FROM sensors WHERE key = ?1", [sensor], |r| {
                r.get(0)
            })
            .optional()?
        else {
            return Ok(None);
        };
        let count: i64 = c.query_row(
            "SELECT count(*) FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3",
            params![id, from, to],
            |r| r.get(0),
        )?;
        let mut out = Vec::new();
        if count <= MAX_RAW_POINTS {
            let mut stmt = c.prepare_cached(
            "SELECT ts, value, quality FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, seq",
        )?;
            let rows = stmt.query_map(params![id, from, to], |r| {
                let quality = Quality::from_code(r.get(2)?);
                Ok(SeriesPoint {
                    ts: r.get(0)?,
                    value: r
                        .get::<_, Option<f64>>(1)?
                        .filter(|_| quality == Quality::Good),
                })
            })?;
            for row in rows {
                out.push(row?);
            }
            return Ok(Some(out));
        }
        // Thinned while streaming in index order (no GROUP BY: SQLite would sort every row):
        // per bucket, the lowest and the highest good value at their own times.
        let bucket = ((to - from) / BUCKETS).max(1);
        let mut stmt = c.prepare_cached(
        "SELECT ts, value, quality FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, seq",
    )?;
        let mut rows = stmt.query(params![id, from, to])?;
        let mut current: Option<Bucket> = None;
        while let Some(r) = rows.next()? {
            let ts: i64 = r.get(0)?;
            let value: Option<f64> = r.get(1)?;
            let quality = Quality::from_code(r.get(2)?);
            let good = value.filter(|_| quality == Quality::Good);
            let b = (ts - from) / bucket;
            if current.as_ref().is_some_and(|c| c.index != b)
                && let Some(done) = current.take()
            {
                done.emit(&mut out);
            }
            current
                .get_or_insert_with(|| Bucket::new(b, ts))
                .add(ts, good);
        }
        if let Some(done) = current {
            done.emit(&mut out);
        }
        Ok(Some(out))
    }
}

/// One time bucket of a thinned history.
#[derive(Debug)]
struct Bucket {
    index: i64,
    first_ts: i64,
    low: Option<(i64, f64)>,
    high: Option<(i64, f64)>,
}

impl Bucket {
    fn new(index: i64, first_ts: i64) -> Self {
        Self {
            index,
            first_ts,
            low: None,
            high: None,
        }
    }

    fn add(&mut self, ts: i64, value: Option<f64>) {
        let Some(v) = value else { return };
        if self.low.is_none_or(|(_, l)| v < l) {
            self.low = Some((ts, v));
        }
        if self.high.is_none_or(|(_, h)| v > h) {
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
