//! The uploader of the row streams (readings, alarm events).
//!
//! Owns: the loop of one stream: connect, reconcile the local and central cursors, then read a
//! batch after the local cursor, upload it in one central transaction (which also moves the
//! central cursor), and only after that commit move the local cursor. Does not own: the retry
//! policy (`super::retry`), the central SQL (`markoff_proto`) or the buffer
//! (`crate::store`).
//!
//! Throughput: the next batch is read from SQLite (and made durable) while the current one is
//! uploading, and the local cursor of a batch is written while the next one uploads
//! (`super::pipeline`), so a backlog drains at the speed of the central inserts with two batches
//! in memory at most.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use markoff_proto::{AlarmEventRow, BatchOutcome, GatewayKey, ReadingRow, Stream, SyncError};
use sqlx::PgConnection;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::SyncConfig;
use super::connect::{SyncFailure, Target};

use super::pipeline::DrainStats;
use super::retry::{Retry, Watch};
use super::status::{StreamState, SyncState};
use crate::model::Timestamp;
use crate::service::supervisor::TaskError;
use crate::store::{Chunk, IngestHandle, Store, StoreError, SyncReader};

/// What one stream's uploader works with.
#[derive(Debug)]
pub(crate) struct StreamCtx {
    /// The gateway id, with its upload key when `[sync]` names one.
    pub(crate) gateway_id: GatewayKey,
    pub(crate) db_path: PathBuf,
    pub(crate) ingest: IngestHandle,
    pub(crate) target: Target,
    pub(crate) batch_rows: usize,
    /// Most connections (so batches at the centre at once) while a backlog drains, for a
    /// pipelined stream: [`BACKLOG_CONNECTIONS`].
    pub(crate) backlog_connections: usize,
    pub(crate) interval: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) status: Arc<SyncState>,
}

/// Connections a pipelined stream uses while a backlog drains: two batches at the centre, one
/// committing while the next inserts (`super::pipeline`).
pub(crate) const BACKLOG_CONNECTIONS: usize = 2;

/// A stream of rows with a seq: how to read it locally and upload it centrally.
pub(crate) trait RowStream: Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    const STREAM: Stream;
    fn read(db: &SyncReader, after: i64, limit: usize) -> Result<Chunk<Self::Row>, StoreError>;
    /// Whether a backlog may have two batches at the centre at once (`super::pipeline`).
    const PIPELINED: bool;
    fn seq(row: &Self::Row) -> i64;
    fn ts_ms(row: &Self::Row) -> i64;
    /// Uploads `rows` in one central transaction; with `after`, one that commits only once the
    /// central cursor is at `after` or beyond (the batch before it, still in flight on another
    /// connection, has committed). `after` is only given when [`Self::PIPELINED`].
    fn upload<'a>(
        conn: &'a mut PgConnection,
        gateway: &'a GatewayKey,
        rows: &'a [Self::Row],
        after: Option<i64>,
    ) -> impl Future<Output = Result<BatchOutcome, SyncError>> + Send + 'a;
}

/// The `readings` stream.
#[derive(Debug)]
pub(crate) struct Readings;

impl RowStream for Readings {
    type Row = ReadingRow;
    const STREAM: Stream = Stream::Readings;
    // Off: a batch in flight may reach the central cursor before the batch ahead of it has (both
    // insert first), and then fails with 40001 and ends the round (`bench sync` hit it with
    // batches of 100,000). `markoff_proto::upload_readings_after` needs the batch ahead to hold
    // something from its start that the one behind it waits for before the cursor check.
    const PIPELINED: bool = false;
    fn read(db: &SyncReader, after: i64, limit: usize) -> Result<Chunk<ReadingRow>, StoreError> {
        let mut chunk = db.readings(after, limit)?;
        let spans = db.clock_epochs()?;
        let hold = crate::clock::global().upload_hold_after();
        super::clock::prepare(&mut chunk.rows, &spans, hold);
        super::clock::remember(spans);
        Ok(chunk)
    }
    fn seq(row: &ReadingRow) -> i64 {
        row.seq
    }
    fn ts_ms(row: &ReadingRow) -> i64 {
        row.ts_ms
    }
    async fn upload<'a>(
        conn: &'a mut PgConnection,
        gateway: &'a GatewayKey,
        rows: &'a [ReadingRow],
        after: Option<i64>,
    ) -> Result<BatchOutcome, SyncError> {
        super::clock::report(conn, gateway).await;
        markoff_proto::upload_readings_after(conn, gateway, rows, after).await
    }
}

/// The `alarm_events` stream.
#[derive(Debug)]
pub(crate) struct AlarmEvents;

impl RowStream for AlarmEvents {
    type Row = AlarmEventRow;
    const STREAM: Stream = Stream::AlarmEvents;
    const PIPELINED: bool = false;
    fn read(db: &SyncReader, after: i64, limit: usize) -> Result<Chunk<AlarmEventRow>, StoreError> {
        db.alarm_events(after, limit)
    }
    fn seq(row: &AlarmEventRow) -> i64 {
        row.seq
    }
    fn ts_ms(row: &AlarmEventRow) -> i64 {
        row.ts_ms
    }
    fn upload<'a>(
        conn: &'a mut PgConnection,
        gateway: &'a GatewayKey,
        rows: &'a [AlarmEventRow],
        _after: Option<i64>,
    ) -> impl Future<Output = Result<BatchOutcome, SyncError>> + Send + 'a {
        markoff_proto::upload_alarm_events(conn, gateway, rows)
    }
}

/// Runs one stream's uploader until `token` is cancelled or the buffer closes. Failures are
/// retried here with capped, jittered backoff; the task itself never fails.
pub(crate) async fn run<S: RowStream>(
    ctx: Arc<StreamCtx>,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let mut retry = Retry::new(S::STREAM, ctx.max_backoff);
    'outer: loop {
        let outcome = tokio::select! {
            () = token.cancelled() => break,
            r = session::<S>(&ctx, &mut retry) => r,
        };
        let failure = match outcome {
            Ok(()) => break,
            Err(SyncFailure::Local(StoreError::Closed)) => break,
            Err(f) => f,
        };
        let delay = retry.failed(&failure);
        let next = Timestamp::now().as_millis() + i64::try_from(delay.as_millis()).unwrap_or(0);
        ctx.status.failed(S::STREAM, &failure.chain(), next);
        if !back_off(&ctx, Some(S::STREAM), &failure, delay, &mut retry, &token).await {
            break 'outer;
        }
    }
    ctx.status.set_state(S::STREAM, StreamState::Stopped);
    Ok(())
}

/// Waits `delay` after `failure`, or less: a centre that did not answer is probed (see
/// [`Watch`]) and the wait ends as soon as it answers again. Meanwhile the lag of `lag` is kept
/// current from the buffer. Returns `false` when `token` was cancelled.
pub(crate) async fn back_off(
    ctx: &StreamCtx,
    lag: Option<Stream>,
    failure: &SyncFailure,
    delay: Duration,
    retry: &mut Retry,
    token: &CancellationToken,
) -> bool {
    let until = Instant::now() + delay;
    let mut watch = Watch::new(failure);
    let mut next_probe = watch.next_probe().map(|d| Instant::now() + d);
    let mut next_lag = Instant::now();
    loop {
        let now = Instant::now();
        if now >= until {
            return true;
        }
        if let Some(stream) = lag
            && now >= next_lag
        {
            refresh_lag(ctx, stream).await;
            next_lag = Instant::now() + ctx.interval.max(Duration::from_secs(1));
        }
        if next_probe.is_some_and(|at| now >= at) {
            let answered = tokio::select! {
                () = token.cancelled() => return false,
                a = ctx.target.probe() => a,
            };
            if watch.observe(answered) {
                // Spread the reconnections of a fleet that saw the same outage.
                let jitter = super::retry::reconnect_jitter();
                debug!(
                    target = ctx.target.display(),
                    ?jitter,
                    "The centre answers again; reconnecting after a random delay."
                );
                retry.centre_answers();
                tokio::select! {
                    () = token.cancelled() => return false,
                    () = tokio::time::sleep(jitter) => {}
                }
                return true;
            }
            next_probe = watch.next_probe().map(|d| Instant::now() + d);
        }
        let mut wake = next_probe.map_or(until, |at| at.min(until));
        if lag.is_some() {
            wake = wake.min(next_lag);
        }
        tokio::select! {
            () = token.cancelled() => return false,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// One connection's worth of work: connect, reconcile cursors, then upload for as long as the
/// connection works.
async fn session<S: RowStream>(ctx: &StreamCtx, retry: &mut Retry) -> Result<(), SyncFailure> {
    ctx.status.set_state(S::STREAM, StreamState::Connecting);
    let mut conn = ctx.target.connect().await?;
    let gw = &ctx.gateway_id;
    ctx.target
        .call(
            "recording contact",
            markoff_proto::touch_gateway(&mut conn, gw),
        )
        .await?;
    let central = ctx
        .target
        .call(
            "reading the central cursor",
            markoff_proto::central_cursor(&mut conn, gw, S::STREAM),
        )
        .await?;
    let (db, (local, local_max)) = blocking(&ctx.db_path, |db| {
        Ok((db.cursor(S::STREAM)?, db.max_seq(S::STREAM)?))
    })
    .await?;
    let cursor = reconcile(ctx, S::STREAM, central, local, local_max).await?;
    ctx.status.set_state(S::STREAM, StreamState::Connected);
    ctx.status.set_cursors(S::STREAM, cursor, Some(central));
    info!(
        stream = %S::STREAM,
        target = ctx.target.display(),
        local_cursor = cursor,
        central_cursor = central,
        backlog = (local_max - cursor).max(0),
        "Connected to the centre."
    );
    super::pipeline::pump::<S>(ctx, conn, db, cursor, true, retry)
        .await
        .map(|_| ())
}

/// Applies the rules for cursors that disagree; returns where to continue.
async fn reconcile(
    ctx: &StreamCtx,
    stream: Stream,
    central: i64,
    local: i64,
    local_max: i64,
) -> Result<i64, SyncFailure> {
    if central > local {
        if central > local_max {
            return Err(SyncFailure::BehindCentre {
                stream,
                central,
                local: local_max,
            });
        }
        info!(
            stream = %stream,
            local_cursor = local,
            central_cursor = central,
            "The centre already committed rows up to the central cursor (the gateway stopped \
             before recording it); moving the local cursor forward."
        );
        ctx.ingest.advance_sync_cursor(stream, central).await?;
        Ok(central)
    } else {
        if central < local {
            warn!(
                stream = %stream,
                local_cursor = local,
                central_cursor = central,
                "The centre's cursor is behind this gateway's (was the central database restored \
                 from a backup?). Rows up to the local cursor are not sent again; uploading \
                 continues after it."
            );
        }
        Ok(local)
    }
}

/// Seconds since `ts_ms` (0 for times in the future).
pub(super) fn age_seconds(ts_ms: i64) -> f64 {
    let ms = Timestamp::now().as_millis().saturating_sub(ts_ms).max(0);
    ms as f64 / 1000.0
}

/// Opens a read-only connection on the blocking pool and runs `f` on it.
async fn blocking<T: Send + 'static>(
    path: &std::path::Path,
    f: impl FnOnce(&SyncReader) -> Result<T, StoreError> + Send + 'static,
) -> Result<(SyncReader, T), SyncFailure> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let db = SyncReader::open(&path)?;
        let v = f(&db)?;
        Ok::<_, StoreError>((db, v))
    })
    .await
    .map_err(|e| SyncFailure::Local(StoreError::Task(e.to_string())))?
    .map_err(SyncFailure::Local)
}

/// Recomputes the lag of `stream` from the buffer (used while no upload runs).
pub(crate) async fn refresh_lag(ctx: &StreamCtx, stream: Stream) {
    let result = blocking(&ctx.db_path, move |db| {
        let cursor = db.cursor(stream)?;
        Ok((cursor, db.backlog(stream, cursor)?))
    })
    .await;
    if let Ok((_, (cursor, backlog))) = result {
        ctx.status.set_cursors(stream, cursor, None);
        ctx.status.set_lag(
            stream,
            backlog.rows,
            backlog.oldest_ts.map_or(0.0, age_seconds),
        );
    }
}

/// Uploads every reading after the local cursor of `store` to the centre over `conn` (and, with
/// `connections` 2 and a pipelined stream, a second connection it opens while a backlog drains),
/// in batches of `cfg.batch_rows`, exactly as the running uploader does, and returns when none is
/// left. For tools (the benchmark); the daemon runs the same code under its supervisor.
///
/// # Errors
/// The first failure; rows up to the returned local cursor are committed centrally.
pub async fn drain_readings(
    cfg: &SyncConfig,
    gateway_id: &str,
    store: &Store,
    conn: PgConnection,
    connections: usize,
) -> Result<DrainStats, SyncFailure> {
    let ctx = StreamCtx {
        gateway_id: super::identity(cfg, gateway_id),
        db_path: store.path().to_owned(),
        ingest: store.ingest.clone(),
        target: Target::new(cfg, gateway_id),
        batch_rows: cfg.batch_rows,
        backlog_connections: connections.clamp(1, BACKLOG_CONNECTIONS),
        interval: cfg.interval,
        max_backoff: cfg.max_backoff,
        status: SyncState::new(gateway_id, Some(cfg), store.shared.registry.clone()),
    };
    let (db, cursor) = blocking(&ctx.db_path, |db| db.cursor(Stream::Readings)).await?;
    let mut retry = Retry::new(Stream::Readings, ctx.max_backoff);
    super::pipeline::pump::<Readings>(&ctx, conn, db, cursor, false, &mut retry).await
}
