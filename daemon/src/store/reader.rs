//! Read queries over the buffer (history, sensors, counters), on a read-only connection.
//!
//! Queries run on the blocking pool so they never stall the async runtime; WAL lets them run
//! while the writer commits.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{READINGS_STREAM, StoreError, open_read_only};
use crate::model::{Quality, Timestamp};

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

/// Query side of the buffer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reader {
    conn: Arc<Mutex<Connection>>,
}

impl Reader {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Arc::new(Mutex::new(open_read_only(path)?)),
        })
    }

    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = match conn.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&guard).map_err(StoreError::from)
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
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.seq, r.ts, r.value, r.quality FROM readings r JOIN sensors s ON s.id = r.sensor \
                 WHERE s.key = ?1 ORDER BY r.ts DESC, r.seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![sensor, limit], |r| {
                Ok(HistoryRow {
                    seq: r.get(0)?,
                    ts: Timestamp(r.get(1)?),
                    value: r.get(2)?,
                    quality: Quality::from_code(r.get(3)?),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Every known sensor, sorted by id.
    ///
    /// # Errors
    /// The query failed.
    pub async fn sensors(&self) -> Result<Vec<SensorRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT key, name, kind, unit, floor, room, source FROM sensors ORDER BY key",
            )?;
            let rows = stmt.query_map([], sensor_row)?;
            rows.collect()
        })
        .await
    }

    /// One sensor's metadata.
    ///
    /// # Errors
    /// The query failed.
    pub async fn sensor(&self, id: &str) -> Result<Option<SensorRow>, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
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
        self.with(|c| {
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
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT 1 FROM readings r JOIN sensors s ON s.id = r.sensor WHERE s.key = ?1 AND r.ts = ?2 LIMIT 1",
            )?;
            let mut found = std::collections::HashSet::new();
            for (sensor, ts) in pairs {
                if stmt.exists(params![sensor, ts])? {
                    found.insert((sensor, ts));
                }
            }
            Ok(found)
        })
        .await
    }

    /// A component's durable state stored under `key`.
    ///
    /// # Errors
    /// The query failed.
    pub async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT value FROM component_state WHERE key = ?1",
                [key],
                |r| r.get(0),
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
        self.with(|c| {
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
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT reason, rows FROM dropped_rows ORDER BY reason")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}
