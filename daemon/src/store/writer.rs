//! The single writer: one thread owns the read-write connection and commits batches.
//!
//! A batch closes when it holds `flush_rows` rows, when its first message has waited
//! `flush_interval`, when a message whose producer waits for the commit (MQTT acknowledges after
//! it) has waited `flush_interval_waited`, or at once for a job ([`CommitPolicy`]). Readings
//! nobody waits for (polled sources) thus go in batches of up to a second: a commit writes at
//! least a page of WAL whatever it holds, so larger batches write fewer bytes per reading
//! (docs/performance.md, section 2.2). Each batch is one IMMEDIATE transaction with prepared
//! statements. A failed commit is rolled back
//! and retried with backoff; the batch stays in memory meanwhile and producers wait (the queue is
//! bounded), so nothing accepted is dropped by a transient error. Only after COMMIT are receipts
//! sent, the latest-value cache updated and the batch announced.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::codec::BatchRow;
use super::{
    CommitReceipt, CommittedBatch, StoreError, StoreOptions, StoreShared, WriterMsg, fold, log,
    now_ms, space,
};
use crate::config::StoreConfig;
use crate::model::{Quality, Reading, SensorId, SensorMeta, Seq};

mod maintain;

/// How often an idle writer wakes up to run maintenance.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// Longest pause between two commit attempts after failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Readings one fold takes (whole batches, so a little more): the log is folded once it holds
/// this many unfolded readings.
pub(crate) const FOLD_READINGS: i64 = 262_144;
/// The log is also folded once its oldest unfolded reading was committed this long ago, so a
/// small site's history does not wait days in the log.
const FOLD_AGE: Duration = Duration::from_secs(15 * 60);
/// Pause before folding again after a fold failed.
const FOLD_RETRY: Duration = Duration::from_secs(30);

/// What the writer needs to resume where the database left off.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub(crate) next_seq: i64,
    pub(crate) first_seq: i64,
    /// Readings in the log that are not folded yet.
    unfolded: i64,
    sensor_ids: HashMap<SensorId, i64>,
}

impl WriterState {
    /// Reads the next seq (never reusing one, even if the newest readings were dropped), the
    /// oldest reading held, the readings not folded yet, and the sensor id map.
    pub(crate) fn load(conn: &Connection) -> Result<Self, StoreError> {
        let next_seq = log::resume_seq(conn)?;
        let first_seq = log::held(conn)?.map_or(0, |(first, _)| first);
        let unfolded = log::readings_after(conn, fold::meta(conn, fold::FOLDED_UPTO)?)?;
        let mut sensor_ids = HashMap::new();
        let mut stmt = conn.prepare("SELECT key, id FROM sensors")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (key, id) = row?;
            sensor_ids.insert(SensorId::new(key), id);
        }
        Ok(Self {
            next_seq,
            first_seq,
            unfolded,
            sensor_ids,
        })
    }
}

/// The running writer thread.
#[derive(Debug)]
pub struct WriterHandle {
    stop: CancellationToken,
    done: watch::Receiver<Option<bool>>,
}

impl WriterHandle {
    /// Asks the writer to stop accepting messages, commit everything queued, and exit.
    pub fn drain(&self) {
        self.stop.cancel();
    }

    /// Completes when the writer thread has exited: `true` after a clean drain, `false` if it
    /// died (a panic), which the supervisor treats as fatal. Can be awaited by several parties.
    pub fn finished(&self) -> impl Future<Output = bool> + Send + 'static {
        let mut rx = self.done.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or(false),
                Err(_) => false,
            }
        }
    }
}

pub(crate) fn spawn(
    conn: Connection,
    state: WriterState,
    cfg: StoreConfig,
    options: StoreOptions,
    shared: Arc<StoreShared>,
    rx: mpsc::Receiver<WriterMsg>,
) -> Result<WriterHandle, StoreError> {
    let stop = CancellationToken::new();
    let (done_tx, done_rx) = watch::channel(None);
    let runtime = tokio::runtime::Handle::current();
    let files = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(|p| space::Files::new(Path::new(p)));
    let writer = Writer {
        files,
        wal_cap: 0,
        shrink: false,
        conn,
        state,
        cfg,
        options,
        shared,
        rx,
        stop: stop.clone(),
        runtime,
        last_maintenance: None,
        unfolded_since: None,
        fold_retry_at: None,
    };
    std::thread::Builder::new()
        .name("markoff-writer".into())
        .spawn(move || {
            writer.run();
            // A panic drops `done_tx` unsent, which waiters see as a failure.
            let _sent = done_tx.send(Some(true));
        })
        .map_err(|e| StoreError::Task(format!("cannot start the writer thread: {e}")))?;
    Ok(WriterHandle {
        stop,
        done: done_rx,
    })
}

struct Writer {
    /// The buffer's files (none for an in-memory database).
    files: Option<space::Files>,
    /// The WAL bound the connection was last given.
    wal_cap: u64,
    /// A write was refused for a full disk: the next maintenance makes room first
    /// (`maintain::make_room`).
    shrink: bool,
    conn: Connection,
    state: WriterState,
    cfg: StoreConfig,
    options: StoreOptions,
    shared: Arc<StoreShared>,
    rx: mpsc::Receiver<WriterMsg>,
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
    last_maintenance: Option<Instant>,
    /// When the oldest reading not folded yet was committed (as far as this run knows).
    unfolded_since: Option<Instant>,
    /// No fold before this (the last one failed).
    fold_retry_at: Option<Instant>,
}

enum Next {
    Msg(WriterMsg),
    Closed,
    Stop,
    Idle,
}

impl Writer {
    fn run(mut self) {
        info!(
            component = "store",
            seq = self.state.next_seq,
            "Buffer writer started."
        );
        if self.state.unfolded > 0 {
            self.unfolded_since = Some(Instant::now());
        }
        self.maintain();
        let mut closing = false;
        loop {
            let next = self.next_message(closing);
            let first = match next {
                Next::Msg(m) => m,
                Next::Closed => break,
                Next::Stop => {
                    closing = true;
                    self.rx.close();
                    continue;
                }
                Next::Idle => {
                    self.maybe_fold();
                    self.maybe_maintain();
                    continue;
                }
            };
            let batch = self.collect(first, closing);
            self.commit_with_retry(batch);
            self.maybe_fold();
            self.maybe_maintain();
        }
        self.maintain();
        info!(
            component = "store",
            seq = self.state.next_seq - 1,
            "Buffer writer drained and stopped."
        );
    }

    fn next_message(&mut self, closing: bool) -> Next {
        let Self {
            rx, stop, runtime, ..
        } = self;
        runtime.block_on(async {
            tokio::select! {
                biased;
                m = rx.recv() => m.map_or(Next::Closed, Next::Msg),
                () = stop.cancelled(), if !closing => Next::Stop,
                () = tokio::time::sleep(IDLE_TICK) => Next::Idle,
            }
        })
    }

    /// Gathers messages until [`CommitPolicy`] closes the batch.
    fn collect(&mut self, first: WriterMsg, closing: bool) -> Vec<WriterMsg> {
        let mut policy = CommitPolicy::new(&self.cfg, &first, Instant::now());
        let mut batch = vec![first];
        while !policy.closed() && Instant::now() < policy.deadline {
            let deadline = policy.deadline;
            let msg = match self.rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if closing || self.stop.is_cancelled() => {
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    let Self {
                        rx, stop, runtime, ..
                    } = self;
                    runtime.block_on(async {
                        tokio::select! {
                            m = tokio::time::timeout_at(deadline, rx.recv()) => m.ok().flatten(),
                            () = stop.cancelled() => None,
                        }
                    })
                }
            };
            match msg {
                Some(m) => {
                    policy.add(&m, Instant::now());
                    batch.push(m);
                }
                None => break,
            }
        }
        batch
    }

    fn commit_with_retry(&mut self, mut batch: Vec<WriterMsg>) {
        let mut attempt: u32 = 0;
        self.shared.heartbeat.busy();
        loop {
            match self.commit(&mut batch) {
                Ok((first_seq, outcomes)) => {
                    self.shared.heartbeat.idle();
                    self.publish(batch, first_seq, outcomes);
                    return;
                }
                Err(err) => {
                    attempt += 1;
                    self.shared.metrics.commit_failures.inc();
                    if space::is_disk_full(&err) {
                        // Whoever filled the disk: give back the reserve, so that the deletions
                        // of maintenance have room for their WAL frames, and make room now.
                        warn!(
                            component = "store",
                            "The disk of the buffer is full; releasing the reserve and dropping the oldest readings to make room."
                        );
                        self.release_reserve();
                        self.shrink = true;
                        self.maintain();
                    }
                    let delay = retry_delay(attempt);
                    if attempt == 1 {
                        warn!(component = "store", error = %err, ?delay, "Buffer commit failed; the batch is kept and retried.");
                    } else {
                        error!(component = "store", error = %err, attempt, ?delay, "Buffer commit still failing; producers are waiting.");
                    }
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// Writes the batch in one transaction; returns the first seq it used and the outcome of
    /// each job, in batch order.
    fn commit(
        &mut self,
        batch: &mut [WriterMsg],
    ) -> Result<(i64, Vec<Result<(), rusqlite::Error>>), rusqlite::Error> {
        let mut outcomes = Vec::new();
        let started = Instant::now();
        let first_seq = self.state.next_seq;
        let mut seq = first_seq;
        // Sensors first seen in this batch; merged into the map only once the batch commits.
        let mut new_sensors: HashMap<SensorId, i64> = HashMap::new();
        let mut rows: Vec<BatchRow> = Vec::new();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            for msg in batch {
                match msg {
                    WriterMsg::Readings { readings, .. } => {
                        for r in readings {
                            let sensor = match self.state.sensor_ids.get(&r.sensor) {
                                Some(id) => *id,
                                None => match new_sensors.get(&r.sensor) {
                                    Some(id) => *id,
                                    None => {
                                        let id = ensure_sensor(&tx, &r.sensor)?;
                                        new_sensors.insert(r.sensor.clone(), id);
                                        id
                                    }
                                },
                            };
                            let (value, quality) = sanitize(r);
                            rows.push(BatchRow {
                                sensor,
                                ts: r.ts.as_millis(),
                                value,
                                quality: quality.code(),
                            });
                            seq += 1;
                        }
                    }
                    WriterMsg::Sensors { sensors, .. } => {
                        for meta in sensors {
                            let id = upsert_sensor(&tx, meta)?;
                            new_sensors.insert(meta.id.clone(), id);
                        }
                    }
                    WriterMsg::Attribute { sensor, value, ts } => {
                        tx.prepare_cached(
                            "INSERT INTO attributes (sensor, value, ts) VALUES (?1, ?2, ?3) \
                             ON CONFLICT (sensor) DO UPDATE SET value = excluded.value, ts = excluded.ts",
                        )?
                        .execute(params![&*sensor, &*value, *ts])?;
                    }
                    WriterMsg::State { key, value, .. } => {
                        tx.prepare_cached(
                            "INSERT INTO component_state (key, value, updated_ms) VALUES (?1, ?2, ?3) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                        )?
                        .execute(params![&*key, &*value, now_ms()])?;
                    }
                    WriterMsg::Job { job, .. } => outcomes.push(run_job(&tx, job)?),
                }
            }
            // One row for every reading of the transaction; their seqs are implied.
            log::append(&tx, first_seq, &rows)?;
        }
        tx.commit()?;
        self.shared
            .metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.state.sensor_ids.extend(new_sensors);
        self.state.next_seq = seq;
        if !rows.is_empty() {
            self.state.unfolded += seq - first_seq;
            self.unfolded_since.get_or_insert_with(Instant::now);
        }
        Ok((first_seq, outcomes))
    }

    /// After COMMIT: counters, cache, receipts, announcement.
    fn publish(
        &mut self,
        batch: Vec<WriterMsg>,
        first_seq: i64,
        outcomes: Vec<Result<(), rusqlite::Error>>,
    ) {
        let mut outcomes = outcomes.into_iter();
        let shared = &self.shared;
        let committed = self.state.next_seq - first_seq;
        shared.metrics.commits.inc();
        shared
            .metrics
            .readings_ingested
            .inc_by(u64::try_from(committed).unwrap_or(0));
        shared
            .last_seq
            .store(self.state.next_seq - 1, Ordering::Release);
        if committed > 0 && self.state.first_seq == 0 {
            self.state.first_seq = first_seq;
            shared.first_seq.store(first_seq, Ordering::Release);
        }
        shared.metrics.last_seq.set(self.state.next_seq - 1);
        shared.metrics.buffer_rows.set(shared.rows());
        let announce = shared.committed.receiver_count() > 0;
        let mut announced = Vec::new();
        let mut seq = first_seq;
        for msg in batch {
            match msg {
                WriterMsg::Readings { readings, reply } => {
                    let n = i64::try_from(readings.len()).unwrap_or(i64::MAX);
                    shared.latest.update(seq, &readings);
                    if let Some(reply) = reply {
                        let _receiver_may_be_gone = reply.send(CommitReceipt {
                            first: Seq(seq),
                            last: Seq(seq + n - 1),
                        });
                    }
                    seq += n;
                    if announce {
                        announced.extend(readings);
                    }
                }
                WriterMsg::Sensors { reply, .. } | WriterMsg::State { reply, .. } => {
                    if let Some(reply) = reply {
                        let _receiver_may_be_gone = reply.send(());
                    }
                }
                WriterMsg::Job { reply, .. } => {
                    let outcome = outcomes.next().unwrap_or(Ok(()));
                    let _receiver_may_be_gone = reply.send(outcome);
                }
                WriterMsg::Attribute { .. } => {}
            }
        }
        if announce && !announced.is_empty() {
            let _no_subscriber_is_fine = shared.committed.send(Arc::new(CommittedBatch {
                first_seq: Seq(first_seq),
                readings: announced,
            }));
        }
        debug!(
            component = "store",
            batch_len = committed,
            seq = self.state.next_seq - 1,
            "Batch committed."
        );
    }

    /// Folds the oldest unfolded batches into per-sensor chunks when the log holds
    /// [`FOLD_READINGS`] unfolded readings or its oldest waited [`FOLD_AGE`]: one fold per call
    /// (bounded work between two commits), in a transaction of its own.
    fn maybe_fold(&mut self) {
        if self.state.unfolded <= 0 || self.fold_retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        let old = self.unfolded_since.is_none_or(|t| t.elapsed() >= FOLD_AGE);
        if self.state.unfolded < FOLD_READINGS && !old {
            return;
        }
        let max = self.fold_limit();
        if max == 0 {
            return;
        }
        self.shared.heartbeat.busy();
        let started = Instant::now();
        match fold::fold(&mut self.conn, max) {
            Ok(Some(done)) => {
                self.fold_retry_at = None;
                self.state.unfolded = (self.state.unfolded - done.readings).max(0);
                self.unfolded_since = (self.state.unfolded > 0).then(Instant::now);
                debug!(
                    component = "store",
                    fold = done.fold,
                    readings = done.readings,
                    chunks = done.chunks,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Folded the log into chunks."
                );
            }
            Ok(None) => {
                self.state.unfolded = 0;
                self.unfolded_since = None;
            }
            Err(err) => {
                self.fold_retry_at = Some(Instant::now() + FOLD_RETRY);
                if space::is_disk_full(&err) {
                    self.shrink = true;
                }
                warn!(component = "store", error = %err, "Folding the buffer's log failed; will retry.");
            }
        }
        self.shared.heartbeat.idle();
    }
}

/// When the batch being collected commits: once it holds `flush_rows` rows; when its first
/// message has waited `flush_interval` (the most any reading waits before it is durable); when a
/// message whose producer waits for the commit has waited `flush_interval_waited` (capped by
/// `flush_interval`); at once when it holds a job (alarm state, sync cursors: the sender waits,
/// and an alarm event should not wait for readings to accumulate). The times run from when the
/// writer takes the message from its queue. A drain commits whatever is collected at once.
#[derive(Debug)]
struct CommitPolicy {
    rows: usize,
    max_rows: usize,
    urgent: bool,
    waited: Duration,
    /// The batch commits at this instant at the latest.
    deadline: Instant,
}

impl CommitPolicy {
    fn new(cfg: &StoreConfig, first: &WriterMsg, now: Instant) -> Self {
        let mut policy = Self {
            rows: 0,
            max_rows: cfg.flush_rows,
            urgent: false,
            waited: cfg.flush_interval_waited.min(cfg.flush_interval),
            deadline: now + cfg.flush_interval,
        };
        policy.add(first, now);
        policy
    }

    /// Counts a message taken from the queue at `now`.
    fn add(&mut self, msg: &WriterMsg, now: Instant) {
        self.rows += msg.rows();
        self.urgent |= matches!(msg, WriterMsg::Job { .. });
        if msg.waited() {
            self.deadline = self.deadline.min(now + self.waited);
        }
    }

    /// The batch commits now, whatever the time: it is full or holds a job.
    fn closed(&self) -> bool {
        self.urgent || self.rows >= self.max_rows
    }
}

/// Runs one job under a savepoint. The outer error aborts the batch (the savepoint machinery
/// itself failed); the inner one is the job's own failure, rolled back and reported to its sender.
fn run_job(
    tx: &rusqlite::Transaction<'_>,
    job: &mut super::Job,
) -> Result<Result<(), rusqlite::Error>, rusqlite::Error> {
    tx.execute_batch("SAVEPOINT job")?;
    match (job.0)(tx) {
        Ok(()) => {
            tx.execute_batch("RELEASE job")?;
            Ok(Ok(()))
        }
        Err(err) => {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Ok(Err(err))
        }
    }
}

/// A non-finite number is never stored as a value: it becomes a `bad` reading without one.
fn sanitize(r: &Reading) -> (Option<f64>, Quality) {
    match r.value {
        Some(v) if !v.is_finite() => (None, Quality::Bad),
        v => (v, r.quality),
    }
}

fn ensure_sensor(
    tx: &rusqlite::Transaction<'_>,
    sensor: &SensorId,
) -> Result<i64, rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO sensors (key, updated_ms) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
    )?
    .execute(params![sensor.as_str(), now_ms()])?;
    tx.prepare_cached("SELECT id FROM sensors WHERE key = ?1")?
        .query_row([sensor.as_str()], |r| r.get(0))
}

fn upsert_sensor(tx: &rusqlite::Transaction<'_>, m: &SensorMeta) -> Result<i64, rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO sensors (key, name, kind, unit, floor, room, source, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (key) DO UPDATE SET name = excluded.name, kind = excluded.kind, unit = excluded.unit, \
         floor = excluded.floor, room = excluded.room, source = excluded.source, updated_ms = excluded.updated_ms",
    )?
    .execute(params![m.id.as_str(), m.name, m.kind.as_str(), m.unit, m.floor, m.room, m.source, now_ms()])?;
    tx.prepare_cached("SELECT id FROM sensors WHERE key = ?1")?
        .query_row([m.id.as_str()], |r| r.get(0))
}

fn retry_delay(attempt: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << attempt.min(6));
    base.min(MAX_RETRY_DELAY)
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::model::Timestamp;

    fn cfg() -> StoreConfig {
        StoreConfig {
            flush_rows: 100,
            flush_interval: Duration::from_secs(1),
            flush_interval_waited: Duration::from_millis(50),
            ..StoreConfig::default()
        }
    }

    fn readings(n: usize, waited: bool) -> WriterMsg {
        let readings = (0..n)
            .map(|i| Reading {
                sensor: SensorId::new(format!("s{i}")),
                ts: Timestamp(1_000),
                value: Some(1.0),
                quality: Quality::Good,
            })
            .collect();
        WriterMsg::Readings {
            readings,
            reply: waited.then(|| oneshot::channel().0),
        }
    }

    #[test]
    fn polled_readings_wait_for_the_interval_or_the_rows() {
        let t0 = Instant::now();
        let mut p = CommitPolicy::new(&cfg(), &readings(30, false), t0);
        assert_eq!(p.deadline, t0 + Duration::from_secs(1));
        assert!(!p.closed());
        p.add(&readings(30, false), t0 + Duration::from_millis(600));
        p.add(
            &WriterMsg::Attribute {
                sensor: "s".into(),
                value: "v".into(),
                ts: 1,
            },
            t0 + Duration::from_millis(700),
        );
        // Later messages do not push the deadline back.
        assert_eq!(p.deadline, t0 + Duration::from_secs(1));
        assert!(!p.closed());
        p.add(&readings(40, false), t0 + Duration::from_millis(800));
        assert!(p.closed(), "100 rows of 100");
    }

    #[test]
    fn a_waiting_producer_brings_the_commit_forward() {
        let t0 = Instant::now();
        let mut p = CommitPolicy::new(&cfg(), &readings(10, false), t0);
        p.add(&readings(1, true), t0 + Duration::from_millis(300));
        assert_eq!(p.deadline, t0 + Duration::from_millis(350));
        // A second waited message does not delay the first one's commit.
        p.add(&readings(1, true), t0 + Duration::from_millis(320));
        assert_eq!(p.deadline, t0 + Duration::from_millis(350));
        // Near the end of the interval the interval still bounds the wait.
        let mut p = CommitPolicy::new(&cfg(), &readings(10, false), t0);
        p.add(&readings(1, true), t0 + Duration::from_millis(990));
        assert_eq!(p.deadline, t0 + Duration::from_secs(1));
        assert!(!p.closed());
        let (state, _rx) = oneshot::channel();
        let p = CommitPolicy::new(
            &cfg(),
            &WriterMsg::State {
                key: "k".into(),
                value: "v".into(),
                reply: Some(state),
            },
            t0,
        );
        assert_eq!(p.deadline, t0 + Duration::from_millis(50));
    }

    #[test]
    fn a_job_commits_at_once() {
        let t0 = Instant::now();
        let mut p = CommitPolicy::new(&cfg(), &readings(10, false), t0);
        assert!(!p.closed());
        p.add(
            &WriterMsg::Job {
                job: super::super::Job(Box::new(|_| Ok(()))),
                reply: oneshot::channel().0,
            },
            t0,
        );
        assert!(p.closed());
    }

    #[test]
    fn a_short_interval_caps_the_waited_one() {
        let t0 = Instant::now();
        let short = StoreConfig {
            flush_interval: Duration::from_millis(5),
            ..cfg()
        };
        let p = CommitPolicy::new(&short, &readings(1, true), t0);
        assert_eq!(p.deadline, t0 + Duration::from_millis(5));
        let p = CommitPolicy::new(&short, &readings(1, false), t0);
        assert_eq!(p.deadline, t0 + Duration::from_millis(5));
    }
}
