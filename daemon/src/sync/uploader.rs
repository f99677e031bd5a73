//! The uploader of the row streams (readings, alarm events).
//!
//! Owns: the loop of one stream: connect, reconcile the local and central cursors, then read a
//! batch after the local cursor, upload it in one central transaction (which also moves the
//! central cursor), and only after that commit move the local cursor. Does not own: the retry
//! policy (`super::retry`), the central SQL (`markoff_proto`) or the buffer
//! (`crate::store`).
//!
//! Throughput: the next batch is read from SQLite (and made durable) while the current one is
//! uploading, and the local cursor of a batch is written while the next one uploads, so a backlog
//! drains at the speed of the central inserts with two batches in memory at most.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use markoff_proto::{AlarmEventRow, BatchOutcome, ReadingRow, Stream, SyncError};
use sqlx::PgConnection;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::SyncConfig;
use super::connect::{SyncFailure, Target};

use super::retry::{Retry, Watch};
use super::status::{StreamState, SyncState};
use crate::model::Timestamp;
use crate::service::supervisor::TaskError;
use crate::store::{Chunk, IngestHandle, Store, StoreError, SyncReader};

/// How often the newest local seq is reported to the centre (for its view of the backlog).
const HEAD_EVERY: Duration = Duration::from_secs(5);

/// What one stream's uploader works with.
#[derive(Debug)]
pub(crate) struct StreamCtx {
    pub(crate) gateway_id: String,
    pub(crate) db_path: PathBuf,
    pub(crate) ingest: IngestHandle,
    pub(crate) target: Target,
    pub(crate) batch_rows: usize,
    pub(crate) interval: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) status: Arc<SyncState>,
}

/// A stream of rows with a seq: how to read it locally and upload it centrally.
pub(crate) trait RowStream: Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    const STREAM: Stream;
    fn read(db: &SyncReader, after: i64, limit: usize) -> Result<Chunk<Self::Row>, StoreError>;
    fn seq(row: &Self::Row) -> i64;
    fn ts_ms(row: &Self::Row) -> i64;
    fn upload<'a>(
        conn: &'a mut PgConnection,
        gateway_id: &'a str,
        rows: &'a [Self::Row],
    ) -> impl Future<Output = Result<BatchOutcome, SyncError>> + Send + 'a;
}

/// The `readings` stream.
#[derive(Debug)]
pub(crate) struct Readings;

impl RowStream for Readings {
    type Row = ReadingRow;
    const STREAM: Stream = Stream::Readings;
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
        gateway_id: &'a str,
        rows: &'a [ReadingRow],
    ) -> Result<BatchOutcome, SyncError> {
        super::clock::report(conn, gateway_id).await;
        markoff_proto::upload_readings(conn, gateway_id, rows).await
    }
}

/// The `alarm_events` stream.
#[derive(Debug)]
pub(crate) struct AlarmEvents;

impl RowStream for AlarmEvents {
    type Row = AlarmEventRow;
    const STREAM: Stream = Stream::AlarmEvents;
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
        gateway_id: &'a str,
        rows: &'a [AlarmEventRow],
    ) -> impl Future<Output = Result<BatchOutcome, SyncError>> + Send + 'a {
        markoff_proto::upload_alarm_events(conn, gateway_id, rows)
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
    let gw = ctx.gateway_id.as_str();
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
    pump::<S>(ctx, &mut conn, db, cursor, true, retry)
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

/// Figures of a [`pump`] that ran until the backlog was gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Rows sent.
    pub rows: u64,
    /// Rows the centre inserted (the rest it already had).
    pub inserted: u64,
    /// Batches (central transactions).
    pub batches: u64,
    /// The local cursor at the end.
    pub cursor: i64,
}

type ReadJob<R> = JoinHandle<(SyncReader, Result<Chunk<R>, SyncFailure>)>;

/// Reads the batch after `after` on the blocking pool and syncs it to disk before returning it.
fn spawn_read<S: RowStream>(mut db: SyncReader, after: i64, limit: usize) -> ReadJob<S::Row> {
    tokio::task::spawn_blocking(move || {
        let chunk = S::read(&db, after, limit)
            .map_err(SyncFailure::Local)
            .and_then(|chunk| {
                if !chunk.rows.is_empty() {
                    db.make_durable().map_err(SyncFailure::Durability)?;
                }
                Ok(chunk)
            });
        (db, chunk)
    })
}

/// Uploads batches after `cursor` until the backlog is gone (`follow = false`) or for as long as
/// the connection works (`follow = true`: then it only returns with an error).
async fn pump<S: RowStream>(
    ctx: &StreamCtx,
    conn: &mut PgConnection,
    db: SyncReader,
    mut cursor: i64,
    follow: bool,
    retry: &mut Retry,
) -> Result<DrainStats, SyncFailure> {
    let limit = ctx.batch_rows;
    let mut stats = DrainStats {
        cursor,
        ..DrainStats::default()
    };
    let mut next = spawn_read::<S>(db, cursor, limit);
    // The last batch committed centrally whose local cursor is not written yet.
    let mut unadvanced: Option<i64> = None;
    let mut head: Option<(Instant, i64)> = None;
    loop {
        let (db, chunk) = next
            .await
            .map_err(|e| SyncFailure::Local(StoreError::Task(e.to_string())))?;
        let chunk = chunk?;
        let Some((first, last)) = chunk.rows.first().zip(chunk.rows.last()) else {
            if let Some(seq) = unadvanced.take() {
                ctx.ingest.advance_sync_cursor(S::STREAM, seq).await?;
                ctx.status.set_cursors(S::STREAM, seq, None);
                stats.cursor = seq;
            }
            ctx.status.set_lag(S::STREAM, 0, 0.0);
            report_head(ctx, conn, S::STREAM, &mut head, chunk.local_max).await?;
            retry.recovered();
            if !follow {
                return Ok(stats);
            }
            tokio::time::sleep(ctx.interval).await;
            next = spawn_read::<S>(db, cursor, limit);
            continue;
        };
        let (first_seq, last_seq) = (S::seq(first), S::seq(last));
        ctx.status.set_lag(
            S::STREAM,
            (chunk.local_max - first_seq + 1).max(0),
            age_seconds(S::ts_ms(first)),
        );
        // Read the next batch while this one uploads.
        next = spawn_read::<S>(db, last_seq, limit);

        let started = Instant::now();
        let upload = ctx.target.call(
            "uploading a batch",
            S::upload(conn, &ctx.gateway_id, &chunk.rows),
        );
        let pending = unadvanced.take();
        let advance = async {
            match pending {
                Some(seq) => ctx
                    .ingest
                    .advance_sync_cursor(S::STREAM, seq)
                    .await
                    .map(|()| Some(seq)),
                None => Ok(None),
            }
        };
        let (uploaded, advanced) = tokio::join!(upload, advance);
        if let Some(seq) = advanced? {
            ctx.status.set_cursors(S::STREAM, seq, None);
        }
        let outcome = uploaded?;
        let rows = u64::try_from(chunk.rows.len()).unwrap_or(u64::MAX);
        ctx.status
            .batch_committed(S::STREAM, rows, started.elapsed().as_secs_f64());
        ctx.status
            .set_cursors(S::STREAM, cursor, Some(outcome.central_cursor));
        stats.rows += rows;
        stats.inserted += outcome.inserted;
        stats.batches += 1;
        unadvanced = Some(last_seq);
        cursor = last_seq;
        report_head(ctx, conn, S::STREAM, &mut head, chunk.local_max).await?;
        ctx.status.set_lag(
            S::STREAM,
            (chunk.local_max - last_seq).max(0),
            if chunk.local_max > last_seq {
                age_seconds(S::ts_ms(last))
            } else {
                0.0
            },
        );
        retry.recovered();
    }
}

/// Tells the centre the newest seq of the stream here (what `markoff-central gateways` shows as
/// the backlog), when it changed, at most every [`HEAD_EVERY`].
async fn report_head(
    ctx: &StreamCtx,
    conn: &mut PgConnection,
    stream: Stream,
    last: &mut Option<(Instant, i64)>,
    head: i64,
) -> Result<(), SyncFailure> {
    let due = last.is_none_or(|(at, seq)| seq != head && at.elapsed() >= HEAD_EVERY);
    if due {
        ctx.target
            .call(
                "reporting the backlog",
                markoff_proto::report_head(conn, &ctx.gateway_id, stream, head),
            )
            .await?;
        *last = Some((Instant::now(), head));
    }
    Ok(())
}

/// Seconds since `ts_ms` (0 for times in the future).
fn age_seconds(ts_ms: i64) -> f64 {
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

/// Uploads every reading after the local cursor of `store` to the centre over `conn`, in
/// batches of `cfg.batch_rows`, exactly as the running uploader does, and returns when none is
/// left. For tools (the benchmark); the daemon runs the same code under its supervisor.
///
/// # Errors
/// The first failure; rows up to the returned local cursor are committed centrally.
pub async fn drain_readings(
    cfg: &SyncConfig,
    gateway_id: &str,
    store: &Store,
    conn: &mut PgConnection,
) -> Result<DrainStats, SyncFailure> {
    let ctx = StreamCtx {
        gateway_id: gateway_id.to_owned(),
        db_path: store.path().to_owned(),
        ingest: store.ingest.clone(),
        target: Target::new(cfg, gateway_id),
        batch_rows: cfg.batch_rows,
        interval: cfg.interval,
        max_backoff: cfg.max_backoff,
        status: SyncState::new(gateway_id, Some(cfg), store.shared.registry.clone()),
    };
    let (db, cursor) = blocking(&ctx.db_path, |db| db.cursor(Stream::Readings)).await?;
    let mut retry = Retry::new(Stream::Readings, ctx.max_backoff);
    pump::<Readings>(&ctx, conn, db, cursor, false, &mut retry).await
}
