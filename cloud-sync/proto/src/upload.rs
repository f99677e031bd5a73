//! The upload protocol: how a gateway writes its readings and alarm events into the central
//! database exactly once.
//!
//! Owns: the row types a gateway uploads, the upload transaction (cursor row lock, binary COPY into
//! a staging table, `INSERT ... SELECT`, latest values, the 10-minute rollup, cursor update), the
//! cursor read, the contact stamp and the backlog report. Does not own: reading the gateway's
//! buffer or the retry policy (the daemon's uploader), site metadata (`crate::metadata`), the
//! schema (`migrations/central/`). `docs/central-schema.md` describes the protocol.
//!
//! # Exactly once
//! Each call is one transaction that first locks the gateway's cursor row for the stream
//! (`SELECT ... FOR UPDATE`). Rows at or below the cursor are skipped before anything is sent;
//! the rest are inserted, and the cursor moves to the batch's highest seq in the same
//! transaction. A crash or a lost connection at any point rolls everything back, so the same batch
//! can be sent again; two connections sending the same batch at once are serialized by the row
//! lock, and the second inserts nothing. Readings are inserted without `ON CONFLICT` (1.8 times
//! faster); should a row above the cursor already be there (a cursor reset by hand), the
//! transaction is redone with `ON CONFLICT DO NOTHING` on the idempotency key. Alarm events always
//! use `ON CONFLICT DO NOTHING`. The rollup `readings_10m` counts each reading once for the same
//! reason: it moves in the transaction that inserts the reading, by the rows the plain insert
//! inserted (all those above the cursor) or, on the fallback, by the rows the insert returned.
//!
//! Layout: this file the row types and the upload transaction; `check` the checks and the COPY
//! encoding of the rows.

mod check;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, Row};

use crate::Stream;
use crate::copy::{self, CopyEncoder};
use crate::error::SyncError;

pub(crate) use self::check::db_err;
use self::check::{
    check_order, encode_reading_fields, encode_stage_alarm_event, invalid, validate_alarm_events,
    validate_readings,
};

/// One reading as the gateway stored it (`readings` in the gateway's SQLite buffer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadingRow {
    /// The gateway's reading seq: strictly increasing, never reused.
    pub seq: i64,
    /// The gateway-local sensor id (`sensors.id` on the gateway); must fit in an i32.
    pub sensor_id: i64,
    /// Read time, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// The value, `None` unless a trustworthy number exists.
    pub value: Option<f64>,
    /// 0 good, 1 bad, 2 stale, 3 comm_error.
    pub quality: i16,
}

/// One alarm lifecycle event as the gateway stored it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmEventRow {
    /// The gateway's alarm event seq: strictly increasing, never reused.
    pub seq: i64,
    /// When the transition happened, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// The gateway-local id of the alarm (one alarm = one rule on one sensor).
    pub alarm_id: i64,
    /// The alarm's name.
    pub alarm: String,
    /// The rule that raised it (e.g. `high`, `stale`).
    pub rule: String,
    /// The sensor key, when the alarm is about one sensor.
    pub sensor: Option<String>,
    /// What happened (e.g. `raised`, `acked`, `cleared`).
    pub event: String,
    /// The alarm's state after the event; `normal` means it is over.
    pub state: String,
    /// Severity name.
    pub severity: String,
    /// The value that caused the event, if any.
    pub value: Option<f64>,
    /// Human-readable text.
    pub message: String,
    /// Who acted (for acks and shelving), if anyone.
    pub actor: Option<String>,
    /// Through which channel they acted, if anyone did.
    pub channel: Option<String>,
}

/// What one upload call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Rows written to the central table by this call.
    pub inserted: u64,
    /// Rows of the batch that were already there (at or below the cursor, or a conflict).
    pub skipped: u64,
    /// The central cursor after the call: every row up to this seq has arrived. The gateway may
    /// advance its local cursor to it.
    pub central_cursor: i64,
}

const READINGS_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS markoff_stage_readings \
     (seq bigint, sensor_id integer, ts timestamptz, value double precision, quality smallint) \
     ON COMMIT DELETE ROWS";
const READINGS_STAGE_COPY: &str = "COPY pg_temp.markoff_stage_readings \
     (seq, sensor_id, ts, value, quality) FROM STDIN (FORMAT binary)";
const READINGS_INSERT: &str = "INSERT INTO markoff.readings \
     (gateway_id, seq, sensor_id, ts, value, quality) \
     SELECT $1, seq, sensor_id, ts, value, quality FROM pg_temp.markoff_stage_readings \
     WHERE seq > $2";
/// The fallback insert also moves the rollup, from the rows it really inserted (some may have
/// been there already), and answers how many it inserted.
const READINGS_INSERT_IDEMPOTENT: &str = "WITH ins AS ( \
         INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         SELECT $1, seq, sensor_id, ts, value, quality FROM pg_temp.markoff_stage_readings \
         WHERE seq > $2 \
         ON CONFLICT (gateway_id, seq, ts) DO NOTHING \
         RETURNING sensor_id, ts, value), \
     roll AS ( \
         INSERT INTO markoff.readings_10m AS t (gateway_id, sensor_id, bucket, n, sum, min, max, bad) \
         SELECT $1, sensor_id, \
                date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'), \
                count(value), coalesce(sum(value), 0), min(value), max(value), \
                count(*) - count(value) \
         FROM ins GROUP BY 2, 3 \
         ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE \
         SET n = t.n + excluded.n, sum = t.sum + excluded.sum, min = least(t.min, excluded.min), \
             max = greatest(t.max, excluded.max), bad = t.bad + excluded.bad \
         RETURNING 1) \
     SELECT count(*) FROM ins";
/// Adds the staged batch (every row of it newly inserted: the plain insert's path) to
/// `markoff.readings_10m`, per sensor and 10-minute bucket, in key order (one order for every
/// uploader, so concurrent upserts cannot deadlock).
const ROLLUP_UPSERT: &str = "INSERT INTO markoff.readings_10m AS t \
     (gateway_id, sensor_id, bucket, n, sum, min, max, bad) \
     SELECT $1, sensor_id, \
            date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'), \
            count(value), coalesce(sum(value), 0), min(value), max(value), \
            count(*) - count(value) \
     FROM pg_temp.markoff_stage_readings \
     GROUP BY 2, 3 ORDER BY 2, 3 \
     ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE \
     SET n = t.n + excluded.n, sum = t.sum + excluded.sum, min = least(t.min, excluded.min), \
         max = greatest(t.max, excluded.max), bad = t.bad + excluded.bad";
const LATEST_UPSERT: &str = "INSERT INTO markoff.sensor_latest AS l \
     (gateway_id, sensor_id, seq, ts, value, quality) \
     SELECT $1, u.sensor_id, u.seq, to_timestamp(0) + u.ts_ms * interval '1 millisecond', \
            u.value, u.quality \
     FROM unnest($2::int4[], $3::int8[], $4::int8[], $5::float8[], $6::int2[]) \
          AS u(sensor_id, seq, ts_ms, value, quality) \
     ON CONFLICT (gateway_id, sensor_id) DO UPDATE \
     SET seq = excluded.seq, ts = excluded.ts, value = excluded.value, quality = excluded.quality \
     WHERE (excluded.ts, excluded.seq) > (l.ts, l.seq)";
const READINGS_RAW_COPY: &str = "COPY markoff.readings \
     (gateway_id, seq, sensor_id, ts, value, quality) FROM STDIN (FORMAT binary)";

const ALARMS_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS markoff_stage_alarm_events \
     (seq bigint, ts timestamptz, alarm_id bigint, alarm text, rule text, sensor text, \
      event text, state text, severity text, value double precision, message text, actor text, \
      channel text) \
     ON COMMIT DELETE ROWS";
const ALARMS_STAGE_COPY: &str = "COPY pg_temp.markoff_stage_alarm_events \
     (seq, ts, alarm_id, alarm, rule, sensor, event, state, severity, value, message, actor, \
      channel) FROM STDIN (FORMAT binary)";
const ALARMS_INSERT: &str = "INSERT INTO markoff.alarm_events \
     (gateway_id, seq, ts, alarm_id, alarm, rule, sensor, event, state, severity, value, message, \
      actor, channel) \
     SELECT $1, seq, ts, alarm_id, alarm, rule, sensor, event, state, severity, value, message, \
      actor, channel FROM pg_temp.markoff_stage_alarm_events \
     WHERE seq > $2 \
     ON CONFLICT (gateway_id, seq) DO NOTHING";

/// The central cursor of `gateway_id`'s `stream`: the highest seq that has arrived (for
/// [`Stream::Metadata`], the version of the last snapshot), 0 when nothing has.
///
/// # Errors
/// [`SyncError::Database`] when the query fails (no connection, no privilege, no schema).
pub async fn central_cursor(
    conn: &mut PgConnection,
    gateway_id: &str,
    stream: Stream,
) -> Result<i64, SyncError> {
    let op = "reading the central cursor";
    // In a transaction of its own, like every call: see "Behind a transaction-pooling PgBouncer"
    // in the crate docs.
    let mut tx = conn.begin().await.map_err(db_err(op, gateway_id))?;
    let row = crate::query(
        "SELECT last_seq FROM markoff.sync_cursors WHERE gateway_id = $1 AND stream = $2",
    )
    .bind(gateway_id)
    .bind(stream.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err(op, gateway_id))?;
    tx.commit().await.map_err(db_err(op, gateway_id))?;
    match row {
        Some(row) => row.try_get::<i64, _>(0).map_err(db_err(op, gateway_id)),
        None => Ok(0),
    }
}

/// Uploads readings exactly once, in one transaction (see the module docs). `rows` must be in
/// strictly increasing seq order; rows at or below the central cursor are skipped without being
/// sent. An empty slice changes nothing and returns the cursor. Also keeps
/// `markoff.sensor_latest` (the newest reading per sensor) up to date.
///
/// # Errors
/// [`SyncError::Unordered`] or [`SyncError::InvalidRow`] before anything is sent;
/// [`SyncError::Database`] when a statement fails (the transaction is rolled back).
pub async fn upload_readings(
    conn: &mut PgConnection,
    gateway_id: &str,
    rows: &[ReadingRow],
) -> Result<BatchOutcome, SyncError> {
    check_order(Stream::Readings, gateway_id, rows.iter().map(|r| r.seq))?;
    let newest_ms = validate_readings(gateway_id, rows)?;
    upload(conn, gateway_id, rows, newest_ms).await
}

/// Uploads alarm events exactly once, like [`upload_readings`].
///
/// # Errors
/// As [`upload_readings`].
pub async fn upload_alarm_events(
    conn: &mut PgConnection,
    gateway_id: &str,
    rows: &[AlarmEventRow],
) -> Result<BatchOutcome, SyncError> {
    check_order(Stream::AlarmEvents, gateway_id, rows.iter().map(|r| r.seq))?;
    let newest_ms = validate_alarm_events(gateway_id, rows)?;
    upload(conn, gateway_id, rows, newest_ms).await
}

/// Copies readings straight into `markoff.readings` with binary COPY: no staging table, no
/// cursor, no conflict handling (a duplicate fails the whole copy). The baseline the upload
/// path is measured against; needs a role that bypasses row-level security (COPY FROM refuses
/// tables with row-level security otherwise), such as the schema owner when it is a superuser.
///
/// # Errors
/// As [`upload_readings`].
pub async fn raw_copy_readings(
    conn: &mut PgConnection,
    gateway_id: &str,
    rows: &[ReadingRow],
) -> Result<u64, SyncError> {
    validate_readings(gateway_id, rows)?;
    if !copy::text_fits(gateway_id) {
        return Err(invalid(
            Stream::Readings,
            gateway_id,
            0,
            "gateway id too long",
        ));
    }
    copy::copy_rows(conn, READINGS_RAW_COPY, rows, |e, r| {
        e.tuple(6);
        e.text(gateway_id);
        encode_reading_fields(e, r);
    })
    .await
    .map_err(db_err("copying readings", gateway_id))
}

/// Records that the gateway is in contact (`markoff.gateways.last_contact = now()`).
///
/// # Errors
/// [`SyncError::Database`]; SQLSTATE 42501 when the connected role is not `gateway_id`'s.
pub async fn touch_gateway(conn: &mut PgConnection, gateway_id: &str) -> Result<(), SyncError> {
    let op = "recording contact";
    let mut tx = conn.begin().await.map_err(db_err(op, gateway_id))?;
    crate::query("SELECT markoff.touch_gateway($1)")
        .bind(gateway_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err(op, gateway_id))?;
    tx.commit().await.map_err(db_err(op, gateway_id))
}

/// Reports the newest seq the gateway holds for `stream`, so the centre can show the backlog
/// (`lag_rows` in `markoff.gateway_health`). Optional; cheap; call it once per upload round.
///
/// # Errors
/// [`SyncError::Database`].
pub async fn report_head(
    conn: &mut PgConnection,
    gateway_id: &str,
    stream: Stream,
    head_seq: i64,
) -> Result<(), SyncError> {
    let op = "reporting the backlog";
    let mut tx = conn.begin().await.map_err(db_err(op, gateway_id))?;
    crate::query(
        "INSERT INTO markoff.sync_cursors (gateway_id, stream, head_seq) VALUES ($1, $2, $3) \
         ON CONFLICT (gateway_id, stream) DO UPDATE SET head_seq = excluded.head_seq",
    )
    .bind(gateway_id)
    .bind(stream.as_str())
    .bind(head_seq)
    .execute(&mut *tx)
    .await
    .map_err(db_err(op, gateway_id))?;
    tx.commit().await.map_err(db_err(op, gateway_id))
}

// === the upload transaction ===

/// A row type uploaded through a staging table.
trait Staged: Sized {
    const STREAM: Stream;
    /// Creates the session's staging table if absent (`ON COMMIT DELETE ROWS`).
    const STAGE: &'static str;
    /// `COPY ... FROM STDIN (FORMAT binary)` into the staging table.
    const COPY: &'static str;
    /// Staging table -> central table; `$1` gateway id, `$2` the cursor. May omit
    /// `ON CONFLICT` (faster) when [`Self::INSERT_IDEMPOTENT`] has it.
    const INSERT: &'static str;
    /// The same with `ON CONFLICT DO NOTHING`, used when `INSERT` hits a row already there.
    const INSERT_IDEMPOTENT: &'static str;
    /// Whether [`Self::INSERT_IDEMPOTENT`] answers the number of rows it inserted (a query), rather
    /// than being a plain statement.
    const INSERT_IDEMPOTENT_COUNTS: bool = false;

    fn seq(&self) -> i64;
    fn encode(&self, e: &mut CopyEncoder);

    /// Work in the same transaction after the insert, on the rows above the cursor; `all_new`
    /// when the insert was the plain one, so every one of them was inserted.
    async fn after_insert(
        _conn: &mut PgConnection,
        _gateway_id: &str,
        _fresh: &[Self],
        _all_new: bool,
    ) -> Result<(), SyncError> {
        Ok(())
    }
}

impl Staged for ReadingRow {
    const STREAM: Stream = Stream::Readings;
    const STAGE: &'static str = READINGS_STAGE;
    const COPY: &'static str = READINGS_STAGE_COPY;
    const INSERT: &'static str = READINGS_INSERT;
    const INSERT_IDEMPOTENT: &'static str = READINGS_INSERT_IDEMPOTENT;
    const INSERT_IDEMPOTENT_COUNTS: bool = true;

    fn seq(&self) -> i64 {
        self.seq
    }

    fn encode(&self, e: &mut CopyEncoder) {
        e.tuple(5);
        encode_reading_fields(e, self);
    }

    async fn after_insert(
        conn: &mut PgConnection,
        gateway_id: &str,
        fresh: &[Self],
        all_new: bool,
    ) -> Result<(), SyncError> {
        upsert_latest(conn, gateway_id, fresh).await?;
        // The fallback insert rolled up what it inserted itself.
        if all_new {
            upsert_rollup(conn, gateway_id).await?;
        }
        Ok(())
    }
}

impl Staged for AlarmEventRow {
    const STREAM: Stream = Stream::AlarmEvents;
    const STAGE: &'static str = ALARMS_STAGE;
    const COPY: &'static str = ALARMS_STAGE_COPY;
    // Alarm events are few: always the idempotent form.
    const INSERT: &'static str = ALARMS_INSERT;
    const INSERT_IDEMPOTENT: &'static str = ALARMS_INSERT;

    fn seq(&self) -> i64 {
        self.seq
    }

    fn encode(&self, e: &mut CopyEncoder) {
        encode_stage_alarm_event(e, self);
    }
}

/// One upload call: the transaction, retried once with the idempotent insert when the fast one
/// finds a row already there (a cursor behind the data, e.g. after a manual reset).
async fn upload<T: Staged>(
    conn: &mut PgConnection,
    gw: &str,
    rows: &[T],
    newest_ms: Option<i64>,
) -> Result<BatchOutcome, SyncError> {
    if rows.is_empty() {
        let cursor = central_cursor(conn, gw, T::STREAM).await?;
        return Ok(BatchOutcome {
            inserted: 0,
            skipped: 0,
            central_cursor: cursor,
        });
    }
    match transaction(conn, gw, rows, newest_ms, T::INSERT).await {
        Err(e) if T::INSERT != T::INSERT_IDEMPOTENT && e.sqlstate().as_deref() == Some("23505") => {
            tracing::warn!(
                gateway = gw,
                stream = %T::STREAM,
                "Rows above the central cursor are already there; uploading with ON CONFLICT."
            );
            transaction(conn, gw, rows, newest_ms, T::INSERT_IDEMPOTENT).await
        }
        other => other,
    }
}

async fn transaction<T: Staged>(
    conn: &mut PgConnection,
    gw: &str,
    rows: &[T],
    newest_ms: Option<i64>,
    insert: &'static str,
) -> Result<BatchOutcome, SyncError> {
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(db_err("starting the upload transaction", gw))?;
    let cursor = lock_cursor(&mut tx, gw, T::STREAM).await?;
    let fresh = &rows[rows.partition_point(|r| r.seq() <= cursor)..];
    let total = rows.len() as u64;
    let Some(last) = fresh.last() else {
        tx.commit()
            .await
            .map_err(db_err("committing the upload", gw))?;
        return Ok(BatchOutcome {
            inserted: 0,
            skipped: total,
            central_cursor: cursor,
        });
    };
    let new_cursor = last.seq().max(cursor);

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL client_min_messages TO warning; {}",
        T::STAGE
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err("creating the staging table", gw))?;
    copy::copy_rows(&mut tx, T::COPY, fresh, |e, r| r.encode(e))
        .await
        .map_err(db_err("copying into the staging table", gw))?;
    let all_new = insert == T::INSERT && T::INSERT != T::INSERT_IDEMPOTENT;
    let inserted = if !all_new && T::INSERT_IDEMPOTENT_COUNTS {
        let n: i64 = crate::query_scalar(insert)
            .bind(gw)
            .bind(cursor)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err("inserting from the staging table", gw))?;
        u64::try_from(n).unwrap_or(0)
    } else {
        crate::query(insert)
            .bind(gw)
            .bind(cursor)
            .execute(&mut *tx)
            .await
            .map_err(db_err("inserting from the staging table", gw))?
            .rows_affected()
    };
    T::after_insert(&mut tx, gw, fresh, all_new).await?;
    crate::query(
        "UPDATE markoff.sync_cursors \
         SET last_seq = greatest(last_seq, $3), \
             newest_ts = greatest(newest_ts, to_timestamp(0) + $4 * interval '1 millisecond'), \
             updated_at = now() \
         WHERE gateway_id = $1 AND stream = $2",
    )
    .bind(gw)
    .bind(T::STREAM.as_str())
    .bind(new_cursor)
    .bind(newest_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_err("advancing the central cursor", gw))?;
    tx.commit()
        .await
        .map_err(db_err("committing the upload", gw))?;
    tracing::debug!(
        gateway = gw,
        stream = %T::STREAM,
        batch_len = rows.len(),
        inserted,
        seq = new_cursor,
        "Batch uploaded."
    );
    Ok(BatchOutcome {
        inserted,
        skipped: total - inserted,
        central_cursor: new_cursor,
    })
}

/// Adds the staged batch to `markoff.readings_10m` (see [`ROLLUP_UPSERT`]).
async fn upsert_rollup(conn: &mut PgConnection, gw: &str) -> Result<(), SyncError> {
    crate::query(ROLLUP_UPSERT)
        .bind(gw)
        .execute(&mut *conn)
        .await
        .map_err(db_err("updating the readings rollup", gw))?;
    Ok(())
}

/// Moves `markoff.sensor_latest` forward to the newest of `fresh` per sensor.
async fn upsert_latest(
    conn: &mut PgConnection,
    gw: &str,
    fresh: &[ReadingRow],
) -> Result<(), SyncError> {
    let mut newest: HashMap<i64, &ReadingRow> = HashMap::new();
    for r in fresh {
        newest
            .entry(r.sensor_id)
            .and_modify(|n| {
                if (r.ts_ms, r.seq) > (n.ts_ms, n.seq) {
                    *n = r;
                }
            })
            .or_insert(r);
    }
    let mut latest: Vec<&ReadingRow> = newest.into_values().collect();
    latest.sort_unstable_by_key(|r| r.sensor_id);
    // Validated: sensor ids fit in an i32.
    let ids: Vec<i32> = latest
        .iter()
        .map(|r| i32::try_from(r.sensor_id).unwrap_or(i32::MAX))
        .collect();
    let seqs: Vec<i64> = latest.iter().map(|r| r.seq).collect();
    let ts: Vec<i64> = latest.iter().map(|r| r.ts_ms).collect();
    let values: Vec<Option<f64>> = latest.iter().map(|r| r.value).collect();
    let qualities: Vec<i16> = latest.iter().map(|r| r.quality).collect();
    crate::query(LATEST_UPSERT)
        .bind(gw)
        .bind(&ids)
        .bind(&seqs)
        .bind(&ts)
        .bind(&values)
        .bind(&qualities)
        .execute(&mut *conn)
        .await
        .map_err(db_err("updating the latest values", gw))?;
    Ok(())
}

/// Locks the cursor row of `gateway_id`'s `stream` for the rest of the transaction, creating it
/// at 0 if absent, and returns its `last_seq`.
pub(crate) async fn lock_cursor(
    conn: &mut PgConnection,
    gateway_id: &str,
    stream: Stream,
) -> Result<i64, SyncError> {
    const LOCK: &str = "SELECT last_seq FROM markoff.sync_cursors \
                        WHERE gateway_id = $1 AND stream = $2 FOR UPDATE";
    let op = "locking the central cursor";
    let found = crate::query(LOCK)
        .bind(gateway_id)
        .bind(stream.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err(op, gateway_id))?;
    let row = match found {
        Some(row) => row,
        None => {
            crate::query(
                "INSERT INTO markoff.sync_cursors (gateway_id, stream) VALUES ($1, $2) \
                 ON CONFLICT (gateway_id, stream) DO NOTHING",
            )
            .bind(gateway_id)
            .bind(stream.as_str())
            .execute(&mut *conn)
            .await
            .map_err(db_err("creating the central cursor", gateway_id))?;
            crate::query(LOCK)
                .bind(gateway_id)
                .bind(stream.as_str())
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err(op, gateway_id))?
        }
    };
    row.try_get::<i64, _>(0).map_err(db_err(op, gateway_id))
}

#[cfg(test)]
mod tests;
