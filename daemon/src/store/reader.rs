//! Reading the buffer: a small pool of read-only connections, and the queries every component
//! shares (sensors, a sensor's newest readings, counters, component state).
//!
//! Queries run on tokio's blocking pool so they never stall the async runtime; WAL lets them run
//! while the writer commits. The pool has [`READERS`] connections; queries that scan a range of
//! readings or alarm events (history, charts, the alarm engine's catch-up) are *heavy* and may
//! hold at most `READERS - 1` of them at once, so one connection is always left for the quick
//! lookups of the HTTP API, the LAN page and the bot: a slow assistant question never makes them
//! wait behind it. Other store modules add their queries to [`ReadConnection`] (blocking) and
//! [`Reader`] (async).
//!
//! Owns: the read connections. Does not own: writing (`super::writer`, `super::IngestHandle`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{LatestValue, READINGS_STREAM, StoreError};
use crate::model::{Quality, Timestamp};

/// Read-only connections in a [`Reader`]'s pool.
pub const READERS: usize = 3;

/// Page cache of each read-only connection, KiB (SQLite's default is 2,000 KiB). A reader in WAL
/// mode empties its cache whenever the database changed since its previous read transaction,
/// which with a writer committing several times a second is before nearly every query; so the
/// cache only serves pages within one query (the B-tree's inner pages above all), and 512 KiB
/// (128 pages) holds those. The writer's connection keeps `[store] cache_size`.
pub(super) const READ_CACHE_KIB: i64 = 512;

/// One row of a sensor's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Seq.
    pub seq: i64,
    /// Read time.
    pub ts: Timestamp,
    /// Value.
    pub value: Option<f64>,
    /// Quality.
    pub quality: Quality,
}

/// A sensor as recorded in the buffer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorRow {
    /// Sensor id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Unit.
    pub unit: String,
    /// Floor.
    pub floor: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Source.
    pub source: String,
}

/// Maps a row of `SELECT key, name, kind, unit, floor, room, source FROM sensors`.
fn sensor_row(r: &rusqlite::Row<'_>) -> Result<SensorRow, rusqlite::Error> {
    Ok(SensorRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        unit: r.get(3)?,
        floor: r.get(4)?,
        room: r.get(5)?,
        source: r.get(6)?,
    })
}

/// The `sensors.id` of the sensor `key`.
fn sensor_id(c: &Connection, key: &str) -> Result<Option<i64>, rusqlite::Error> {
    c.prepare_cached("SELECT id FROM sensors WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// A read-only connection to the buffer. The store's modules add their blocking queries to it;
/// [`open_read_only`] gives one to tools that read a buffer without a daemon (`markoff render
/// --db`, benchmarks).
#[derive(Debug)]
pub struct ReadConnection {
    pub(super) conn: Connection,
}

impl From<Connection> for ReadConnection {
    /// Wraps a connection opened elsewhere (an in-memory buffer in tests).
    fn from(conn: Connection) -> Self {
        Self { conn }
    }
}

/// Opens a read-only connection (used by the pool and by tools that inspect a buffer).
///
/// # Errors
/// [`StoreError::Open`] when the file cannot be opened.
pub fn open_read_only(path: &Path) -> Result<ReadConnection, StoreError> {
    let fail = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(fail)?;
    conn.pragma_update(None, "cache_size", -READ_CACHE_KIB)
        .map_err(fail)?;
    Ok(ReadConnection { conn })
}

/// Which share of the pool a query may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    /// A lookup by key or a small table: any free connection.
    Quick,
    /// A scan over a range of readings or events: at most `READERS - 1` at once.
    Heavy,
}

#[derive(Debug)]
struct Pool {
    conns: Vec<Mutex<ReadConnection>>,
    /// Indexes of the connections nobody holds.
    free: Mutex<Vec<usize>>,
    /// One permit per connection.
    slots: Arc<Semaphore>,
    /// `READERS - 1` permits, taken by heavy queries before a slot.
    heavy: Arc<Semaphore>,
}

/// A connection taken from the pool; goes back when dropped.
struct Lease {
    pool: Arc<Pool>,
    index: usize,
    _slot: OwnedSemaphorePermit,
    _heavy: Option<OwnedSemaphorePermit>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.free.lock().push(self.index);
    }
}

/// Query side of the buffer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reader {
    pool: Arc<Pool>,
}

impl Reader {
    /// A pool of [`READERS`] read-only connections to the buffer at `path`.
    ///
    /// # Errors
    /// A connection cannot be opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conns = (0..READERS)
            .map(|_| open_read_only(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pool: Arc::new(Pool {
                free: Mutex::new((0..conns.len()).collect()),
                slots: Arc::new(Semaphore::new(conns.len())),
                heavy: Arc::new(Semaphore::new(conns.len().saturating_sub(1).max(1))),
                conns,
            }),
        })
    }

    /// Runs `f` on a pooled connection, on the blocking pool, waiting for one of `lane`'s share.
    pub(super) async fn run<T: Send + 'static, E: Into<StoreError>>(
        &self,
        lane: Lane,
        f: impl FnOnce(&ReadConnection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, StoreError> {
        let closed = |_| StoreError::Task("the read pool is closed".to_owned());
        let heavy = match lane {
            Lane::Heavy => Some(
                self.pool
                    .heavy
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(closed)?,
            ),
            Lane::Quick => None,
        };
        let slot = self
            .pool
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(closed)?;
        let index = self
            .pool
            .free
            .lock()
            .pop()
            .ok_or_else(|| StoreError::Task("no free read connection".to_owned()))?;
        let lease = Lease {
            pool: self.pool.clone(),
            index,
            _slot: slot,
            _heavy: heavy,
        };
        tokio::task::spawn_blocking(move || {
            let conn = lease.pool.conns[lease.index].lock();
            let out = f(&conn).map_err(Into::into);
            drop(conn);
            drop(lease);
            out
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The newest `limit` readings of a sensor, newest first.
    ///
    /// # Errors
    /// The query failed.
    pub async fn history(&self, sensor: &str, limit: u32) -> Result<Vec<HistoryRow>, StoreError> {
        let sensor = sensor.to_owned();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.run(Lane::Heavy, move |c| {
            let c = &c.conn;
            let Some(id) = sensor_id(c, &sensor)? else {
                return Ok(Vec::new());
            };
            let rows = super::series::newest(c, id, limit)?;
            Ok::<_, rusqlite::Error>(
                rows.into_iter()
                    .map(|r| HistoryRow {
                        seq: r.seq,
                        ts: Timestamp(r.ts),
                        value: r.value,
                        quality: Quality::from_code(i64::from(r.quality)),
                    })
                    .collect(),
            )
        })
        .await
    }

    /// Every known sensor, sorted by id.
    ///
    /// # Errors
    /// The query failed.
    pub async fn sensors(&self) -> Result<Vec<SensorRow>, StoreError> {
        self.run(Lane::Quick, ReadConnection::sensors).await
    }

    /// One sensor's metadata.
    ///
    /// # Errors
    /// The query failed.
    pub async fn sensor(&self, id: &str) -> Result<Option<SensorRow>, StoreError> {
        let id = id.to_owned();
        self.run(Lane::Quick, move |c| {
            let c = &c.conn;
            c.query_row(
                "SELECT key, name, kind, unit, floor, room, source FROM sensors WHERE key = ?1",
                [id],
                sensor_row,
            )
            .optional()
        })
        .await
    }

    /// Highest synced readings seq (0 when nothing was synced yet).
    ///
    /// # Errors
    /// The query failed.
    pub async fn synced_upto(&self) -> Result<i64, StoreError> {
        self.run(Lane::Quick, |c| {
            let c = &c.conn;
            c.query_row(
                "SELECT last_seq FROM sync_cursor WHERE stream = ?1",
                [READINGS_STREAM],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
        })
        .await
    }

    /// Which of these (sensor, ts) pairs already have a stored reading. Used to store readings
    /// that carry their own timestamp at most once, when a message is delivered again.
    ///
    /// # Errors
    /// The query failed.
    pub async fn existing(
        &self,
        pairs: Vec<(String, i64)>,
    ) -> Result<std::collections::HashSet<(String, i64)>, StoreError> {
        self.run(Lane::Quick, move |c| {
            let c = &c.conn;
            // Per sensor, one read of its series over the span of the times asked about.
            let mut by_sensor: HashMap<String, (i64, i64)> = HashMap::new();
            for (sensor, ts) in &pairs {
                let span = by_sensor.entry(sensor.clone()).or_insert((*ts, *ts));
                span.0 = span.0.min(*ts);
                span.1 = span.1.max(*ts);
            }
            let mut stored: std::collections::HashSet<(String, i64)> =
                std::collections::HashSet::new();
            let mut rows = Vec::new();
            for (sensor, (from, to)) in by_sensor {
                let Some(id) = sensor_id(c, &sensor)? else {
                    continue;
                };
                rows.clear();
                super::series::range(c, id, from, to, &mut rows)?;
                stored.extend(rows.iter().map(|r| (sensor.clone(), r.ts)));
            }
            let found = pairs.into_iter().filter(|p| stored.contains(p)).collect();
            Ok::<_, rusqlite::Error>(found)
        })
        .await
    }

    /// A component's durable state stored under `key`.
    ///
    /// # Errors
    /// The query failed.
    pub async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.run(Lane::Quick, move |c| {
            let c = &c.conn;
            c.query_row(
                "SELECT value FROM component_state WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    /// The newest audit row recorded through `channel`: (actor, outcome, detail). Channels that
    /// carry a request's id (`office:42`) use it to apply that request at most once: the audit
    /// row is committed with the action it records.
    ///
    /// # Errors
    /// The query failed.
    pub async fn audit_by_channel(
        &self,
        channel: &str,
    ) -> Result<Option<(String, String, Option<String>)>, StoreError> {
        let channel = channel.to_owned();
        self.run(Lane::Quick, move |c| {
            let c = &c.conn;
            c.query_row(
                "SELECT actor, outcome, detail FROM audit_log WHERE channel = ?1 \
                 ORDER BY id DESC LIMIT 1",
                [channel],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .await
    }

    /// Latest text attributes, as (sensor, value, ts), sorted by sensor.
    ///
    /// # Errors
    /// The query failed.
    pub async fn attributes(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.run(Lane::Quick, |c| {
            let c = &c.conn;
            let mut stmt =
                c.prepare_cached("SELECT sensor, value, ts FROM attributes ORDER BY sensor")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
        .await
    }

    /// Rows dropped over the life of the database, by reason.
    ///
    /// # Errors
    /// The query failed.
    pub async fn dropped(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.run(Lane::Quick, |c| {
            let c = &c.conn;
            let mut stmt =
                c.prepare_cached("SELECT reason, rows FROM dropped_rows ORDER BY reason")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}

impl ReadConnection {
    /// Every known sensor, sorted by id.
    ///
    /// # Errors
    /// The query failed.
    pub fn sensors(&self) -> Result<Vec<SensorRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, name, kind, unit, floor, room, source FROM sensors ORDER BY key",
        )?;
        let rows = stmt.query_map([], sensor_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest reading of every sensor (what the daemon's latest-value cache holds).
    ///
    /// # Errors
    /// The query failed.
    pub fn latest_values(&self) -> Result<HashMap<String, LatestValue>, StoreError> {
        Ok(super::cache::read_latest(&self.conn)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn buffer(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join("b.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        path
    }

    #[tokio::test]
    async fn read_connections_keep_a_small_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = buffer(&dir);
        let cache =
            |c: &Connection| c.pragma_query_value(None, "cache_size", |r| r.get::<_, i64>(0));
        assert_eq!(
            cache(&open_read_only(&path).unwrap().conn).unwrap(),
            -READ_CACHE_KIB
        );
        let reader = Reader::open(&path).unwrap();
        let size = reader
            .run(Lane::Quick, move |c| cache(&c.conn))
            .await
            .unwrap();
        assert_eq!(size, -READ_CACHE_KIB);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heavy_queries_always_leave_a_connection_for_quick_ones() {
        let dir = tempfile::tempdir().unwrap();
        let reader = Reader::open(&buffer(&dir)).unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let running = Arc::new(AtomicUsize::new(0));
        let heavy = |reader: &Reader| {
            let (reader, gate, running) = (reader.clone(), gate.clone(), running.clone());
            tokio::spawn(async move {
                reader
                    .run(Lane::Heavy, move |_| {
                        running.fetch_add(1, Ordering::SeqCst);
                        let _released = gate.lock().recv();
                        Ok::<_, rusqlite::Error>(())
                    })
                    .await
            })
        };
        let first: Vec<_> = (0..READERS - 1).map(|_| heavy(&reader)).collect();
        for _ in 0..500 {
            if running.load(Ordering::SeqCst) == READERS - 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(running.load(Ordering::SeqCst), READERS - 1);
        // One more heavy query waits for a heavy one to end ...
        let waiting = heavy(&reader);
        // ... while quick lookups still get the connection left for them.
        let sensors = tokio::time::timeout(Duration::from_secs(10), reader.sensors()).await;
        assert!(
            matches!(sensors, Ok(Ok(ref s)) if s.is_empty()),
            "{sensors:?}"
        );
        assert_eq!(
            running.load(Ordering::SeqCst),
            READERS - 1,
            "a third heavy query ran"
        );
        for _ in 0..READERS {
            release.send(()).unwrap();
        }
        for h in first.into_iter().chain([waiting]) {
            h.await.unwrap().unwrap();
        }
        assert_eq!(running.load(Ordering::SeqCst), READERS);
    }
}
