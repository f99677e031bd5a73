//! The durable buffer: every reading is committed to SQLite before anything downstream sees it.
//!
//! Owns: the database file (WAL), its schema, the single writer thread that commits batches,
//! the disk budget and retention, the latest-value cache, and **every SQL statement** of the
//! gateway: components read and write through named functions on [`Reader`] (a small pool of
//! read-only connections), [`IngestHandle`] (the writer) and [`ReadConnection`] (one connection,
//! for tools), whose signatures say what is read (a sensor, a time range, a seq cursor), not how.
//! Does not own: producing readings (`crate::sources`) or uploading them (`crate::sync`).
//!
//! Layout (docs/storage.md): `writer` (commits: one `log` batch per transaction; the `fold` of
//! the log into per-sensor chunks between commits), `budget` and `trim` (retention, disk
//! budget, releasing the log), `reader` (the read pool and the shared lookups), `series` (a
//! sensor's chunks and unfolded log in one snapshot), `cache` (latest values), `codec` (the
//! blobs), `migrations` and `upgrade` (from the row-per-reading layout), `inspect` (every stored
//! reading, for tools and tests); and per subject:
//! `history` (a sensor over a time range, readings after a seq), `alarms` (alarm state, events,
//! audit), `outbox` (notifications waiting for delivery), `chat` (the assistant's
//! conversations), `telegram` (the bot's offset and notices), `sync` (the uploaders' reads and
//! cursors).
//!
//! The durability boundary is the commit: a producer that needs to know (the MQTT source acks its
//! broker, the alarm engine) awaits a [`CommitReceipt`]; committed batches are also announced on a
//! broadcast channel, and any consumer that must not miss rows reads by `seq` cursor from SQLite.

mod alarms;
mod budget;
pub(crate) mod cache;
mod chat;
pub mod clock;
pub mod codec;
mod fold;
mod history;
pub mod inspect;
pub mod layout;
mod log;
pub mod metrics;
mod migrations;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
pub(crate) mod testing {
    //! Writing readings straight into a buffer's log, for tests of the readers.
    pub(crate) use super::codec::BatchRow;

    /// Appends `rows` as one batch of seqs `first_seq..`.
    pub(crate) fn append(conn: &rusqlite::Connection, first_seq: i64, rows: &[BatchRow]) {
        super::log::append(conn, first_seq, rows).expect("append a batch");
    }
}
mod outbox;
mod reader;
mod series;
// Partly used by the running store (the files, the reserve, the budget's plan).
#[allow(dead_code)]
mod space;
mod sync;
mod telegram;
mod trim;
mod upgrade;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::StoreConfig;
use crate::model::{Reading, SensorMeta, Seq};
use crate::service::metrics::Metrics;
use crate::service::supervisor::Heartbeat;

pub use alarms::{
    AlarmEventRecord, AlarmHistory, AlarmRecord, AlarmStep, AuditRecord, NotificationRecord,
    OpenAlarmRow,
};
pub use budget::DropReason;
pub use cache::{LatestCache, LatestValue};
pub use chat::ChatMessageRow;
pub use history::{BUCKETS, BucketStats, MAX_RAW_POINTS, SeriesPoint};
pub use metrics::StoreMetrics;
pub use migrations::MigrationError;
pub use outbox::{DueNotifications, OutboxRow, SummaryRow};
pub use reader::{HistoryRow, READERS, ReadConnection, Reader, SensorRow, open_read_only};
pub use sync::{Backlog, Chunk, SyncReader};
pub use telegram::TelegramNotice;
pub use writer::WriterHandle;

/// Stream name of readings in `sync_cursor` (and in the sync idempotency key).
pub const READINGS_STREAM: &str = markoff_proto::Stream::Readings.as_str();

/// Errors of the buffer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database directory could not be created.
    #[error("cannot create the buffer directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed to open or configure the file.
    #[error("cannot open the buffer database {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migration(#[from] MigrationError),
    /// A query failed.
    #[error("buffer query failed")]
    Query(#[from] rusqlite::Error),
    /// The writer has stopped (shutdown in progress); nothing was accepted.
    #[error("the buffer writer has stopped; the readings were not accepted")]
    Closed,
    /// A blocking query task failed to run.
    #[error("buffer query task failed: {0}")]
    Task(String),
}

/// Sequence numbers assigned to one accepted message, first..=last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitReceipt {
    /// First seq of the message's readings (equal to `last` + 1 when the message was empty).
    pub first: Seq,
    /// Last seq.
    pub last: Seq,
}

/// A batch of readings that has just been committed.
#[derive(Debug)]
pub struct CommittedBatch {
    /// Seq of the first reading.
    pub first_seq: Seq,
    /// The readings, in seq order.
    pub readings: Vec<Reading>,
}

/// Messages to the writer.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    Readings {
        readings: Vec<Reading>,
        reply: Option<oneshot::Sender<CommitReceipt>>,
    },
    Sensors {
        sensors: Vec<SensorMeta>,
        reply: Option<oneshot::Sender<()>>,
    },
    Attribute {
        sensor: String,
        value: String,
        ts: i64,
    },
    State {
        key: String,
        value: String,
        reply: Option<oneshot::Sender<()>>,
    },
    Job {
        job: Job,
        reply: oneshot::Sender<Result<(), rusqlite::Error>>,
    },
}

/// Work run by the writer inside its transaction, under a savepoint of its own. It may run more
/// than once (a failed commit is retried with the whole batch), so it must not have side effects
/// outside the transaction except recording its result.
pub(crate) struct Job(pub(crate) Box<JobFn>);

/// The work of a [`Job`].
pub(crate) type JobFn = dyn FnMut(&rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error> + Send;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl WriterMsg {
    fn rows(&self) -> usize {
        match self {
            Self::Readings { readings, .. } => readings.len(),
            Self::Sensors { sensors, .. } => sensors.len(),
            Self::Attribute { .. } | Self::State { .. } | Self::Job { .. } => 1,
        }
    }

    /// Whether a producer waits for this message's commit (jobs aside, which commit at once).
    fn waited(&self) -> bool {
        match self {
            Self::Readings { reply, .. } => reply.is_some(),
            Self::Sensors { reply, .. } | Self::State { reply, .. } => reply.is_some(),
            Self::Attribute { .. } => false,
            Self::Job { .. } => true,
        }
    }
}

/// State shared between the writer thread and everyone who looks at the buffer.
#[derive(Debug)]
pub struct StoreShared {
    /// Latest committed value per sensor.
    pub latest: LatestCache,
    /// The buffer's metrics.
    pub metrics: Arc<StoreMetrics>,
    /// The registry of the process, for the components built over this store.
    pub registry: Arc<Metrics>,
    /// Progress of the writer, for the watchdog.
    pub heartbeat: Heartbeat,
    last_seq: AtomicI64,
    first_seq: AtomicI64,
    bytes: AtomicU64,
    committed: broadcast::Sender<Arc<CommittedBatch>>,
}

impl StoreShared {
    /// Highest committed readings seq (0 when nothing was ever committed).
    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Readings the buffer holds (between the oldest and the newest seq it holds).
    pub fn rows(&self) -> i64 {
        let last = self.last_seq.load(Ordering::Acquire);
        let first = self.first_seq.load(Ordering::Acquire);
        if first == 0 || last < first {
            0
        } else {
            last - first + 1
        }
    }

    /// Bytes the buffer's files (database, WAL, shared-memory index, reserve) take on disk, as
    /// of the last maintenance.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Subscribes to committed batches. A slow subscriber that lags behind misses batches
    /// (it gets `RecvError::Lagged`) and must catch up from SQLite by seq.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBatch>> {
        self.committed.subscribe()
    }
}

/// Cheap handle for producers: sends readings to the writer.
#[derive(Clone, Debug)]
pub struct IngestHandle {
    tx: mpsc::Sender<WriterMsg>,
}

impl IngestHandle {
    /// Queues readings and waits until they are committed.
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the writer stopped before committing them.
    pub async fn write(&self, readings: Vec<Reading>) -> Result<CommitReceipt, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Readings {
                readings,
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    /// Queues readings without waiting for their commit (waits only while the queue is full).
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the writer has stopped.
    pub async fn submit(&self, readings: Vec<Reading>) -> Result<(), StoreError> {
        self.tx
            .send(WriterMsg::Readings {
                readings,
                reply: None,
            })
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Inserts or updates sensor metadata and waits for the commit.
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the writer stopped.
    pub async fn register_sensors(&self, sensors: Vec<SensorMeta>) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Sensors {
                sensors,
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }
}

impl IngestHandle {
    /// Records the latest text value of a sensor (serial number, firmware version).
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the writer has stopped.
    pub async fn set_attribute(
        &self,
        sensor: &str,
        value: &str,
        ts: crate::model::Timestamp,
    ) -> Result<(), StoreError> {
        self.tx
            .send(WriterMsg::Attribute {
                sensor: sensor.to_owned(),
                value: value.to_owned(),
                ts: ts.as_millis(),
            })
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Stores a component's durable state under `key` and waits for the commit.
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the writer has stopped.
    pub async fn set_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::State {
                key: key.to_owned(),
                value: value.to_owned(),
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }
}

impl IngestHandle {
    /// Runs `f` in the writer's next transaction (under a savepoint of its own) and returns its
    /// result once that transaction has committed. This is how the store's modules write for
    /// components other than the sources (alarm state and events, the outbox, sync cursors,
    /// conversations) without a second writer; components call those named writes, not this.
    /// An error from `f` rolls back only `f`'s own changes.
    ///
    /// `f` may run more than once: a failed commit is retried with the whole batch.
    ///
    /// # Errors
    /// [`StoreError::Query`] with `f`'s error; [`StoreError::Closed`] if the writer has stopped.
    pub async fn transact<T, F>(&self, mut f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&rusqlite::Transaction<'_>) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let out = slot.clone();
        let job = Job(Box::new(move |tx| {
            let value = f(tx)?;
            if let Ok(mut guard) = out.lock() {
                *guard = Some(value);
            }
            Ok(())
        }));
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Job { job, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)??;
        let value = slot.lock().ok().and_then(|mut g| g.take());
        value.ok_or(StoreError::Closed)
    }
}

/// Options of the buffer that do not come from `[store]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreOptions {
    /// Whether an uplink will ever sync readings. Without one, retention applies to every row
    /// (there is nothing to wait for); with one, only to synced rows.
    pub uplink: bool,
}

/// The open buffer: handles for producers and readers, and the running writer.
#[derive(Debug)]
pub struct Store {
    /// Shared state (cache, counters, heartbeat, commit notifications).
    pub shared: Arc<StoreShared>,
    /// For producers.
    pub ingest: IngestHandle,
    /// For queries.
    pub reader: Reader,
    /// The writer thread.
    pub writer: WriterHandle,
    path: PathBuf,
}

impl Store {
    /// Opens (creating and migrating as needed) the database and starts the writer thread.
    ///
    /// Must be called inside a tokio runtime: the writer thread uses its handle for timers.
    ///
    /// # Errors
    /// The database cannot be created, opened or migrated.
    pub fn open(
        cfg: &StoreConfig,
        path: &Path,
        options: StoreOptions,
        metrics: Arc<Metrics>,
        heartbeat: Heartbeat,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        // A restart on a full disk: SQLite needs a little room to open the WAL and its index,
        // which the reserve gives back (maintenance writes it again once there is room).
        let files = space::Files::new(path);
        if files.free_space().is_ok_and(|free| {
            free < space::reserve_size(cfg.max_size.bytes()) + space::wal_cap(cfg.max_size.bytes())
        }) && let Ok(bytes @ 1..) = files.release_reserve()
        {
            tracing::warn!(
                component = "store",
                bytes,
                "The disk of the buffer is nearly full; released the buffer's disk reserve."
            );
        }
        let mut conn = open_connection(path, cfg)?;
        migrations::open(&mut conn)?;
        let state = writer::WriterState::load(&conn)?;
        let (committed, _) = broadcast::channel(64);
        let shared = Arc::new(StoreShared {
            latest: LatestCache::default(),
            metrics: metrics.get::<StoreMetrics>(),
            registry: metrics,
            heartbeat,
            last_seq: AtomicI64::new(state.next_seq - 1),
            first_seq: AtomicI64::new(state.first_seq),
            bytes: AtomicU64::new(0),
            committed,
        });
        StoreMetrics::set_bytes(&shared.metrics.budget_bytes, cfg.max_size.bytes());
        cache::warm(&conn, &shared.latest)?;
        let reader = Reader::open(path)?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let writer = writer::spawn(conn, state, cfg.clone(), options, shared.clone(), rx)?;
        Ok(Self {
            shared,
            ingest: IngestHandle { tx },
            reader,
            writer,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens a read-write connection with the buffer's pragmas.
fn open_connection(path: &Path, cfg: &StoreConfig) -> Result<Connection, StoreError> {
    let fail = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    // auto_vacuum only takes effect before the first table exists, i.e. on a new file.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(fail)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(fail)?;
    conn.pragma_update(None, "synchronous", cfg.synchronous.pragma())
        .map_err(fail)?;
    conn.busy_timeout(cfg.busy_timeout).map_err(fail)?;
    // Negative cache_size is in KiB. The WAL is checkpointed once it holds a sixteenth of the
    // budget (32 MiB at most: a page dirtied by many commits is written back once) and truncated
    // back to that size after a checkpoint; maintenance adjusts both to the disk (`space::plan`).
    let cache_kib = i64::try_from(cfg.cache_size.bytes() / 1024)
        .unwrap_or(i64::MAX)
        .max(2048);
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(fail)?;
    let wal_cap = i64::try_from(space::wal_cap(cfg.max_size.bytes())).unwrap_or(32 << 20);
    conn.pragma_update(None, "wal_autocheckpoint", (wal_cap / 4096).max(16))
        .map_err(fail)?;
    conn.query_row(
        &format!("PRAGMA journal_size_limit = {wal_cap}"),
        [],
        |_| Ok(()),
    )
    .map_err(fail)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    crate::model::Timestamp::now().as_millis()
}
