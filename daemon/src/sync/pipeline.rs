//! The upload loop of one stream: batches read after the local cursor go to the centre in order,
//! and the local cursor follows each central commit.
//!
//! Owns: the order of reads, uploads and local cursor writes, and how many batches are at the
//! centre at once. Does not own: the upload transaction (`markoff_proto`), the buffer
//! (`crate::store`) or the retry policy (`super::retry`).
//!
//! # Pipeline
//! The next batch is read from SQLite (and made durable) while the current one uploads, and the
//! local cursor of a batch is written while the next one uploads. Each upload runs in a task of
//! its own on a connection it gives back, so the loop keeps reading while it waits.
//!
//! A stream whose upload can commit strictly after another one's (`RowStream::PIPELINED`: its
//! call inserts, then locks the central cursor and rolls back unless the cursor is exactly the
//! previous batch's last seq; `markoff_proto::upload_readings_after`) may have two batches at the
//! centre at once while a backlog drains (a batch came back full): a second connection is opened
//! for it, and closed again once the backlog is gone, so an uploader that keeps up holds one
//! connection. While batch N commits on one connection, batch N+1 inserts its rows on the other.
//! No stream is pipelined at present: with two pipelined batches in flight, the later one may
//! reach the cursor first and fail (see `Readings` in `super::uploader`). Whatever the depth,
//! batches commit in
//! seq order, each local cursor write follows its batch's central commit, and a failure anywhere
//! ends the round: the batches in flight are abandoned (their transactions roll back, or
//! committed, which the next session's reconciliation sees) and the uploader starts again from
//! the local cursor.

use std::collections::VecDeque;
use std::time::Duration;

use markoff_proto::{BatchOutcome, Stream};
use sqlx::PgConnection;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use super::connect::SyncFailure;
use super::retry::Retry;
use super::uploader::{RowStream, StreamCtx, age_seconds};
use crate::store::{Chunk, StoreError, SyncReader};

/// How often the newest local seq is reported to the centre (for its view of the backlog).
const HEAD_EVERY: Duration = Duration::from_secs(5);

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
    /// Most connections used at once.
    pub connections: usize,
    /// Where the time went, summed over the batches.
    pub time: DrainTime,
}

/// Time of a drain by stage. Reads, uploads and local cursor writes overlap (see the module
/// docs), so the parts do not add up to the wall time; the waits are what the loop spent with
/// nothing else to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainTime {
    /// Reading batches from the buffer (decoding included) and syncing the log, in total.
    pub read: Duration,
    /// Waiting for a batch read with no upload in flight.
    pub read_wait: Duration,
    /// Central transactions, from the first statement to the commit, summed (two may run at
    /// once).
    pub upload: Duration,
    /// Waiting for the oldest upload in flight to finish.
    pub upload_wait: Duration,
    /// Waiting for local cursor writes.
    pub cursor_wait: Duration,
}

type ReadJob<R> = JoinHandle<(SyncReader, Result<Chunk<R>, SyncFailure>, Duration)>;

/// Reads the batch after `after` on the blocking pool and syncs it to disk before returning it,
/// with the time that took.
fn spawn_read<S: RowStream>(mut db: SyncReader, after: i64, limit: usize) -> ReadJob<S::Row> {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let chunk = S::read(&db, after, limit)
            .map_err(SyncFailure::Local)
            .and_then(|chunk| {
                if !chunk.rows.is_empty() {
                    db.make_durable().map_err(SyncFailure::Durability)?;
                }
                Ok(chunk)
            });
        (db, chunk, started.elapsed())
    })
}

type UploadJob = JoinHandle<(PgConnection, Result<BatchOutcome, SyncFailure>, Duration)>;

/// A batch at the centre: the task uploading it (on a connection of its own, given back at the
/// end) and what the loop needs of its rows afterwards.
struct InFlight {
    task: UploadJob,
    rows: u64,
    last_seq: i64,
    last_ts: i64,
    local_max: i64,
}

/// A batch dropped before it landed is abandoned: its task is aborted, so its connection closes
/// and its transaction rolls back (unless its commit was already on its way, which the next
/// session's reconciliation sees).
impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The batches in flight, oldest first.
#[derive(Default)]
struct Flights(VecDeque<InFlight>);

/// The local cursor write of the last batch committed centrally, running in the buffer writer.
type Advance = (JoinHandle<Result<(), StoreError>>, i64);

/// Uploads batches after `cursor` until the backlog is gone (`follow = false`) or for as long as
/// the connection works (`follow = true`: then it only returns with an error).
pub(crate) async fn pump<S: RowStream>(
    ctx: &StreamCtx,
    conn: PgConnection,
    db: SyncReader,
    mut cursor: i64,
    follow: bool,
    retry: &mut Retry,
) -> Result<DrainStats, SyncFailure> {
    let limit = ctx.batch_rows;
    let mut stats = DrainStats {
        cursor,
        connections: 1,
        ..DrainStats::default()
    };
    let mut idle: Vec<PgConnection> = vec![conn];
    let mut open = 1usize;
    let mut flights = Flights::default();
    let mut advancing: Option<Advance> = None;
    let mut head: Option<(Instant, i64)> = None;
    let mut next = spawn_read::<S>(db, cursor, limit);
    loop {
        let waited = Instant::now();
        let (db, chunk, read) = next
            .await
            .map_err(|e| SyncFailure::Local(StoreError::Task(e.to_string())))?;
        if flights.0.is_empty() {
            stats.time.read_wait += waited.elapsed();
        }
        stats.time.read += read;
        let mut chunk = chunk?;
        let Some((first, last)) = chunk.rows.first().zip(chunk.rows.last()) else {
            // Caught up: finish what is in flight, then wait for new rows.
            while !flights.0.is_empty() {
                land::<S>(
                    ctx,
                    &mut flights,
                    &mut idle,
                    &mut advancing,
                    &mut head,
                    &mut stats,
                )
                .await?;
            }
            if let Some(seq) = finish_advance(ctx, S::STREAM, &mut advancing, &mut stats).await? {
                stats.cursor = seq;
            }
            // The spare connection is for backlogs only.
            idle.truncate(1);
            open = idle.len();
            ctx.status.set_lag(S::STREAM, 0, 0.0);
            let conn = idle
                .last_mut()
                .ok_or(SyncFailure::Local(StoreError::Closed))?;
            report_head(ctx, conn, S::STREAM, &mut head, chunk.local_max).await?;
            retry.recovered();
            if !follow {
                return Ok(stats);
            }
            tokio::time::sleep(ctx.interval).await;
            next = spawn_read::<S>(db, cursor, limit);
            continue;
        };
        let (first_seq, first_ts) = (S::seq(first), S::ts_ms(first));
        let (last_seq, last_ts) = (S::seq(last), S::ts_ms(last));
        if flights.0.is_empty() {
            ctx.status.set_lag(
                S::STREAM,
                (chunk.local_max - first_seq + 1).max(0),
                age_seconds(first_ts),
            );
        }
        let full = chunk.rows.len() >= limit;
        // Read the next batch while this one uploads.
        next = spawn_read::<S>(db, last_seq, limit);

        // A backlog: a second connection, so that two batches are at the centre at once.
        if full && S::PIPELINED && open < ctx.backlog_connections && idle.is_empty() {
            match ctx.target.connect().await {
                Ok(c) => {
                    idle.push(c);
                    open += 1;
                    stats.connections = stats.connections.max(open);
                }
                Err(e) => debug!(
                    stream = %S::STREAM,
                    error = %e,
                    "No second connection for the backlog; uploading on one."
                ),
            }
        }
        let conn = loop {
            if let Some(c) = idle.pop() {
                break c;
            }
            land::<S>(
                ctx,
                &mut flights,
                &mut idle,
                &mut advancing,
                &mut head,
                &mut stats,
            )
            .await?;
        };
        // Committed only after the batch before it, if that one is still in flight.
        let after = flights.0.back().map(|f| f.last_seq);
        let rows = std::mem::take(&mut chunk.rows);
        let n = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let target = ctx.target.clone();
        let gateway_id = ctx.gateway_id.clone();
        let task = tokio::spawn(async move {
            let mut conn = conn;
            let started = Instant::now();
            let outcome = target
                .call(
                    "uploading a batch",
                    S::upload(&mut conn, &gateway_id, &rows, after),
                )
                .await;
            (conn, outcome, started.elapsed())
        });
        flights.0.push_back(InFlight {
            task,
            rows: n,
            last_seq,
            last_ts,
            local_max: chunk.local_max,
        });
        cursor = last_seq;
    }
}

/// Waits for the oldest batch in flight, then starts its local cursor write (after the previous
/// one has finished: they land in order) and gives its connection back.
async fn land<S: RowStream>(
    ctx: &StreamCtx,
    flights: &mut Flights,
    idle: &mut Vec<PgConnection>,
    advancing: &mut Option<Advance>,
    head: &mut Option<(Instant, i64)>,
    stats: &mut DrainStats,
) -> Result<(), SyncFailure> {
    // Every connection is idle or in flight: with none idle, one is in flight.
    let Some(mut f) = flights.0.pop_front() else {
        return Err(SyncFailure::Local(StoreError::Task(
            "no connection to the centre is left".to_owned(),
        )));
    };
    let waited = Instant::now();
    let joined = (&mut f.task).await;
    stats.time.upload_wait += waited.elapsed();
    let (mut conn, outcome, took) =
        joined.map_err(|e| SyncFailure::Local(StoreError::Task(e.to_string())))?;
    let outcome = outcome?;
    stats.time.upload += took;
    ctx.status
        .batch_committed(S::STREAM, f.rows, took.as_secs_f64());
    stats.rows += f.rows;
    stats.inserted += outcome.inserted;
    stats.batches += 1;
    if let Some(seq) = finish_advance(ctx, S::STREAM, advancing, stats).await? {
        ctx.status
            .set_cursors(S::STREAM, seq, Some(outcome.central_cursor));
    }
    let ingest = ctx.ingest.clone();
    let seq = f.last_seq;
    *advancing = Some((
        tokio::spawn(async move { ingest.advance_sync_cursor(S::STREAM, seq).await }),
        seq,
    ));
    report_head(ctx, &mut conn, S::STREAM, head, f.local_max).await?;
    ctx.status.set_lag(
        S::STREAM,
        (f.local_max - f.last_seq).max(0),
        if f.local_max > f.last_seq {
            age_seconds(f.last_ts)
        } else {
            0.0
        },
    );
    idle.push(conn);
    Ok(())
}

/// Waits for the local cursor write in progress, if any; returns the seq it wrote.
async fn finish_advance(
    ctx: &StreamCtx,
    stream: Stream,
    advancing: &mut Option<Advance>,
    stats: &mut DrainStats,
) -> Result<Option<i64>, SyncFailure> {
    let Some((task, seq)) = advancing.take() else {
        return Ok(None);
    };
    let waited = Instant::now();
    task.await
        .map_err(|e| SyncFailure::Local(StoreError::Task(e.to_string())))??;
    stats.time.cursor_wait += waited.elapsed();
    ctx.status.set_cursors(stream, seq, None);
    stats.cursor = seq;
    Ok(Some(seq))
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
