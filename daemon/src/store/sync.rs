//! What sync reads from the buffer and writes back: the rows of each stream after a cursor,
//! made durable before they leave, the sensors and the recorded metadata version, and the local
//! cursors.
//!
//! Owns: the read-only connection of one uploader ([`SyncReader`]) and the cursor writes (jobs
//! in the buffer writer's transaction; never a second writer). Does not own: the upload itself
//! or its retry policy (`crate::sync`).

use std::fs::File;
use std::path::{Path, PathBuf};

use markoff_proto::{AlarmEventRow, ReadingRow, SensorMetaRow, Stream};
use rusqlite::{Connection, OptionalExtension, params};

use super::{IngestHandle, StoreError};

/// A read-only connection on the buffer, owned by one uploader.
#[derive(Debug)]
pub struct SyncReader {
    pub(super) conn: Connection,
    db: PathBuf,
    wal: PathBuf,
    dir_synced: bool,
}

/// Rows read after a cursor, with what the buffer holds beyond them.
#[derive(Debug)]
pub struct Chunk<R> {
    /// Rows in seq order, at most the limit asked for.
    pub rows: Vec<R>,
    /// Highest seq of the stream in the buffer when the rows were read.
    pub local_max: i64,
}

/// Backlog of a stream after a cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Backlog {
    /// Rows after the cursor.
    pub rows: i64,
    /// Read time of the oldest of them, ms since the epoch.
    pub oldest_ts: Option<i64>,
}

impl SyncReader {
    /// Opens the buffer at `path` read-only.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = super::open_read_only(path)?.conn;
        conn.set_prepared_statement_cache_capacity(16);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self {
            conn,
            db: path.to_owned(),
            wal: PathBuf::from(wal),
            dir_synced: false,
        })
    }

    /// The stream's local cursor: the highest seq the gateway knows the centre has committed.
    pub fn cursor(&self, stream: Stream) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("SELECT last_seq FROM sync_cursor WHERE stream = ?1")?
            .query_row([stream.as_str()], |r| r.get(0))
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(StoreError::from)
    }

    /// The highest seq the stream has ever used in this buffer, including rows since dropped
    /// (readings) or deleted (alarm events): a seq at or below it is never used again.
    pub fn max_seq(&self, stream: Stream) -> Result<i64, StoreError> {
        let sql = match stream {
            Stream::Readings => {
                return Ok(super::series::snapshot(&self.conn, super::log::resume_seq)? - 1);
            }
            Stream::AlarmEvents => {
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'alarm_events'), 0), \
                            coalesce((SELECT max(seq) FROM alarm_events), 0))"
            }
            Stream::Metadata => return self.cursor(Stream::Metadata),
        };
        Ok(self.conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?)
    }

    /// How many rows wait after `cursor`, and how old the oldest is.
    pub fn backlog(&self, stream: Stream, cursor: i64) -> Result<Backlog, StoreError> {
        let sql = match stream {
            // Unsynced readings are dense between the oldest and the newest: the disk budget only
            // ever drops the oldest readings, so newest - oldest + 1 counts them without a scan.
            Stream::Readings => {
                return Ok(super::series::snapshot(&self.conn, |c| {
                    let newest = super::log::held(c)?.map_or(0, |(_, last)| last);
                    let first = super::series::first_after(c, cursor)?;
                    Ok::<_, rusqlite::Error>(first.map_or_else(Backlog::default, |(seq, ts)| {
                        Backlog {
                            rows: newest - seq + 1,
                            oldest_ts: Some(ts),
                        }
                    }))
                })?);
            }
            Stream::AlarmEvents => {
                "SELECT (SELECT count(*) FROM alarm_events WHERE seq > ?1), \
                        (SELECT ts FROM alarm_events WHERE seq > ?1 ORDER BY seq LIMIT 1)"
            }
            Stream::Metadata => return Ok(Backlog::default()),
        };
        let found = self
            .conn
            .prepare_cached(sql)?
            .query_row([cursor], |r| {
                Ok(Backlog {
                    rows: r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                    oldest_ts: r.get(1)?,
                })
            })
            .optional()?;
        Ok(found.unwrap_or_default())
    }

    /// Up to `limit` readings after `after`, in seq order.
    pub fn readings(&self, after: i64, limit: usize) -> Result<Chunk<ReadingRow>, StoreError> {
        // The rows and the newest seq from the same snapshot.
        let (found, local_max) = super::series::snapshot(&self.conn, |c| {
            let local_max = super::log::held(c)?.map_or(0, |(_, last)| last);
            Ok::<_, rusqlite::Error>((super::series::after_seq(c, after, limit)?, local_max))
        })?;
        let rows = found
            .into_iter()
            .map(|(seq, r)| ReadingRow {
                seq,
                sensor_id: r.sensor,
                ts_ms: r.ts,
                value: r.value,
                quality: i16::from(r.quality),
            })
            .collect();
        Ok(Chunk { rows, local_max })
    }

    /// Up to `limit` alarm events after `after`, in seq order.
    pub fn alarm_events(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Chunk<AlarmEventRow>, StoreError> {
        let local_max: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM alarm_events")?
            .query_row([], |r| r.get(0))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, ts, alarm_id, alarm, rule, sensor, event, state, severity, value, \
             message, actor, channel FROM alarm_events \
             WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(
                params![after, local_max, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(AlarmEventRow {
                        seq: r.get(0)?,
                        ts_ms: r.get(1)?,
                        alarm_id: r.get(2)?,
                        alarm: r.get(3)?,
                        rule: r.get(4)?,
                        sensor: r.get(5)?,
                        event: r.get(6)?,
                        state: r.get(7)?,
                        severity: r.get(8)?,
                        value: r.get(9)?,
                        message: r.get(10)?,
                        actor: r.get(11)?,
                        channel: r.get(12)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chunk { rows, local_max })
    }

    /// Every sensor of the buffer, by id.
    pub fn sensors(&self) -> Result<Vec<SensorMetaRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, key, name, kind, unit, floor, room, source FROM sensors ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            Ok(SensorMetaRow {
                sensor_id: r.get(0)?,
                key: r.get(1)?,
                name: r.get(2)?,
                kind: r.get(3)?,
                unit: r.get(4)?,
                floor: r.get(5)?,
                room: r.get(6)?,
                source: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
    }

    /// A cheap fingerprint of the sensors table: changes whenever a sensor is added or updated.
    pub fn sensors_fingerprint(&self) -> Result<(i64, i64, i64), StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*), coalesce(max(id), 0), coalesce(max(updated_ms), 0) FROM sensors",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(StoreError::from)
    }

    /// A component's durable state.
    pub fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM component_state WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()
            .map_err(StoreError::from)
    }

    /// Makes every commit visible to this connection durable on disk before its rows leave the
    /// gateway.
    ///
    /// With `synchronous = normal` SQLite syncs the write-ahead log only at checkpoints, so a
    /// power cut can take back the newest commits, and their seqs would then be used again for
    /// other rows. A row the centre already holds must never be taken back: syncing the log after
    /// reading a batch and before uploading it makes every row of the batch survive a power cut.
    /// Rows no longer in the log were moved to the database file by a checkpoint, which SQLite
    /// syncs before the log is reused. With `synchronous = full` each commit is already durable
    /// and this costs one cheap `fdatasync`.
    ///
    /// Only the log and the directory are opened here, never the database file itself: closing
    /// a second descriptor of the database file would drop the POSIX locks SQLite holds on it for
    /// this process. SQLite takes no such locks on the log (they live in the `-shm` file).
    pub fn make_durable(&mut self) -> std::io::Result<()> {
        sync_file(&self.wal)?;
        if !self.dir_synced {
            // The directory entries of the database and its log, once per connection.
            if let Some(dir) = self.db.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            self.dir_synced = true;
        }
        Ok(())
    }
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    match File::open(path) {
        Ok(f) => f.sync_data(),
        // No log right now: everything is in the database file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl IngestHandle {
    /// Moves the local cursor of `stream` forward to `seq` (never backward), in the buffer writer's
    /// next transaction, and returns once that has committed.
    ///
    /// # Errors
    /// [`StoreError::Closed`] when the writer has stopped (shutdown).
    pub async fn advance_sync_cursor(&self, stream: Stream, seq: i64) -> Result<(), StoreError> {
        self.transact(move |tx| {
            tx.prepare_cached(
                "INSERT INTO sync_cursor (stream, last_seq, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (stream) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), \
                 updated_ms = excluded.updated_ms",
            )?
            .execute(params![
                stream.as_str(),
                seq,
                crate::model::Timestamp::now().as_millis()
            ])?;
            Ok(())
        })
        .await
    }

    /// Records the metadata version the centre has committed, and under `key` what was sent
    /// (a hash of its content).
    pub async fn record_synced_metadata(
        &self,
        key: &'static str,
        value: String,
        version: i64,
    ) -> Result<(), StoreError> {
        let now = crate::model::Timestamp::now().as_millis();
        self.transact(move |tx| {
            tx.prepare_cached(
                "INSERT INTO component_state (key, value, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            )?
            .execute(params![key, value, now])?;
            tx.prepare_cached(
                "INSERT INTO sync_cursor (stream, last_seq, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq, updated_ms = excluded.updated_ms",
            )?
            .execute(params![Stream::Metadata.as_str(), version, now])?;
            Ok(())
        })
        .await
    }
}
