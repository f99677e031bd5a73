//! The upload protocol: how a gateway writes its readings and alarm events into the central
//! database exactly once.
//!
//! Owns: the row types a gateway uploads, the readings upload (one call of the server-side
//! function `markoff.upload_readings`, central migration 11), the alarm events' upload
//! transaction, the cursor read, the contact stamp and the backlog report. Does not own: reading
//! the gateway's buffer or the retry policy (the daemon's uploader), site metadata
//! (`crate::metadata`), the schema (`migrations/central/`). `docs/central-schema.md` describes
//! the protocol.
//!
//! # Readings: one statement
//! A batch of readings goes as one array per column (`unnest`) to `markoff.upload_readings`,
//! which in one statement proves the gateway's key (an ingest login), locks the gateway's cursor
//! row, skips the rows at or below the cursor, inserts the rest into `markoff.readings` with the
//! 10-minute rollup `markoff.readings_10m` and the latest values `markoff.sensor_latest`, and
//! moves the cursor to the batch's highest seq. The client sends `BEGIN`, the statement and
//! `COMMIT`: behind a transaction-pooling PgBouncer a server connection is held for the server's
//! work and those few round trips, not for one round trip per step. Nothing is created in the
//! server session, so the pooler may run any gateway's upload on any server connection.
//!
//! # Exactly once
//! Everything of a call commits together or not at all. A crash or a lost connection at any point
//! rolls it back, so the same batch can be sent again; after a lost commit the rows sent again are
//! at or below the cursor and skipped. Two connections sending the same batch at once are
//! serialized by the cursor row lock, and the second inserts nothing. Readings are inserted
//! without `ON CONFLICT` (1.8 times faster); should a row above the cursor already be there (a
//! cursor moved back by hand), the call is made again with `ON CONFLICT DO NOTHING` on the
//! idempotency key. The rollup counts each reading once: it moves in the statement that inserts
//! the reading, by the rows inserted. A batch may also follow one still in flight on another
//! connection ([`upload_readings_after`]): it inserts first and commits only if the cursor is then
//! exactly where the batch before it ends. Alarm events (few) keep a transaction of statements:
//! the cursor row lock, `INSERT ... ON CONFLICT DO NOTHING`, the cursor update.
//!
//! Layout: this file the row types and the calls; `check` the checks and the COPY encoding of the
//! raw-COPY baseline.

mod check;

use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, PgConnection, Row};

use crate::Stream;
use crate::copy;
use crate::error::SyncError;
use crate::identity::{self, GatewayIdentity};

pub(crate) use self::check::db_err;
use self::check::{
    check_order, encode_reading_fields, invalid, validate_alarm_events, validate_readings,
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

/// The read time of a row, from its milliseconds since the epoch in `$col`: exact for every
/// validated time (whole seconds times one second is exact in PostgreSQL's interval arithmetic
/// for |s| < 2^39, and years 1..=9999 are within it).
macro_rules! ts_of_ms {
    ($col:literal) => {
        concat!(
            "(timestamptz '1970-01-01 00:00:00+00' + (",
            $col,
            " / 1000) * interval '1 second' + (",
            $col,
            " % 1000) * interval '1 millisecond')"
        )
    };
}

/// The whole readings upload, one statement: `markoff.upload_readings` (central migration 11)
/// proves the key, locks the cursor, inserts, rolls up, keeps the latest values and moves the
/// cursor.
const READINGS_UPLOAD: &str = "SELECT inserted, central_cursor FROM markoff.upload_readings(\
     $1, $2, $3, $4, $5::int8[], $6::int4[], $7::int8[], $8::float8[], $9::int2[])";
const READINGS_RAW_COPY: &str = "COPY markoff.readings \
     (gateway_id, seq, sensor_id, ts, value, quality) FROM STDIN (FORMAT binary)";

const ALARMS_INSERT: &str = concat!(
    "INSERT INTO markoff.alarm_events \
     (gateway_id, seq, ts, alarm_id, alarm, rule, sensor, event, state, severity, value, message, \
      actor, channel) \
     SELECT $1, u.seq, ",
    ts_of_ms!("u.ts_ms"),
    ", u.alarm_id, u.alarm, u.rule, u.sensor, u.event, u.state, u.severity, u.value, \
      u.message, u.actor, u.channel \
     FROM unnest($3::int8[], $4::int8[], $5::int8[], $6::text[], $7::text[], $8::text[], \
                 $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[], $14::text[], \
                 $15::text[]) \
          AS u(seq, ts_ms, alarm_id, alarm, rule, sensor, event, state, severity, value, \
               message, actor, channel) \
     WHERE u.seq > $2 \
     ON CONFLICT (gateway_id, seq) DO NOTHING"
);

/// The central cursor of `gateway`'s `stream`: the highest seq that has arrived (for
/// [`Stream::Metadata`], the version of the last snapshot), 0 when nothing has.
///
/// # Errors
/// [`SyncError::Database`] when the query fails (no connection, no privilege, no schema, a key
/// the centre does not accept).
pub async fn central_cursor<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    stream: Stream,
) -> Result<i64, SyncError> {
    let op = "reading the central cursor";
    let gateway_id = gateway.gateway_id();
    // In a transaction of its own, like every call: see "Behind a transaction-pooling PgBouncer"
    // in the crate docs.
    let mut tx = identity::begin(conn, gateway, None, op).await?;
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

/// Uploads readings exactly once, in one call of `markoff.upload_readings` (see the module
/// docs). `rows` must be in strictly increasing seq order; the centre skips the rows at or below
/// its cursor. An empty slice changes nothing and returns the cursor. Also keeps
/// `markoff.sensor_latest` (the newest reading per sensor) and the rollup up to date.
///
/// # Errors
/// [`SyncError::Unordered`] or [`SyncError::InvalidRow`] before anything is sent;
/// [`SyncError::Database`] when the call fails (nothing of it is kept).
pub async fn upload_readings<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[ReadingRow],
) -> Result<BatchOutcome, SyncError> {
    upload_readings_after(conn, gateway, rows, None).await
}

/// [`upload_readings`], or with `after`, the upload of a batch that follows another one still in
/// flight on another connection, which ends at seq `after`: its rows (all above `after`) are
/// inserted first, and the call commits only once the central cursor is exactly `after` (the
/// batch before it committed); otherwise nothing of it is kept and it fails with SQLSTATE 40001
/// (transient). The rollup and the latest values are written after that wait.
///
/// # Errors
/// As [`upload_readings`].
pub async fn upload_readings_after<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[ReadingRow],
    after: Option<i64>,
) -> Result<BatchOutcome, SyncError> {
    let gateway_id = gateway.gateway_id();
    check_order(Stream::Readings, gateway_id, rows.iter().map(|r| r.seq))?;
    validate_readings(gateway_id, rows)?;
    if let Some(after) = after
        && let Some(first) = rows.first()
        && first.seq <= after
    {
        return Err(invalid(
            Stream::Readings,
            gateway_id,
            first.seq,
            &format!("a batch after seq {after} starts at or below it"),
        ));
    }
    if rows.is_empty() {
        let cursor = central_cursor(conn, gateway, Stream::Readings).await?;
        return Ok(BatchOutcome {
            inserted: 0,
            skipped: 0,
            central_cursor: cursor,
        });
    }
    let columns = ReadingColumns::of(rows);
    let outcome = match call_upload(conn, gateway, &columns, after, false).await {
        Err(e) if e.sqlstate().as_deref() == Some("23505") => {
            tracing::warn!(
                gateway = gateway_id,
                stream = %Stream::Readings,
                "Rows above the central cursor are already there; uploading with ON CONFLICT."
            );
            call_upload(conn, gateway, &columns, after, true).await
        }
        other => other,
    }?;
    tracing::debug!(
        gateway = gateway_id,
        stream = %Stream::Readings,
        batch_len = rows.len(),
        inserted = outcome.inserted,
        seq = outcome.central_cursor,
        "Batch uploaded."
    );
    Ok(outcome)
}

/// Uploads alarm events exactly once, in one transaction: the cursor row lock, the insert of the
/// events above the cursor (`ON CONFLICT DO NOTHING`: they are few), the cursor update.
///
/// # Errors
/// As [`upload_readings`].
pub async fn upload_alarm_events<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[AlarmEventRow],
) -> Result<BatchOutcome, SyncError> {
    let gateway_id = gateway.gateway_id();
    check_order(Stream::AlarmEvents, gateway_id, rows.iter().map(|r| r.seq))?;
    let newest_ms = validate_alarm_events(gateway_id, rows)?;
    if rows.is_empty() {
        let cursor = central_cursor(conn, gateway, Stream::AlarmEvents).await?;
        return Ok(BatchOutcome {
            inserted: 0,
            skipped: 0,
            central_cursor: cursor,
        });
    }
    alarm_transaction(conn, gateway, rows, newest_ms).await
}

/// Copies readings straight into `markoff.readings` with binary COPY: no cursor, no conflict
/// handling (a duplicate fails the whole copy). The baseline the upload path is measured
/// against; needs a role that bypasses row-level security (COPY FROM refuses tables with
/// row-level security otherwise), such as the schema owner when it is a superuser.
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
/// [`SyncError::Database`]; SQLSTATE 42501 when the session is not `gateway`'s (another
/// gateway's role, or an ingest role without the gateway's key).
pub async fn touch_gateway<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
) -> Result<(), SyncError> {
    let op = "recording contact";
    let gateway_id = gateway.gateway_id();
    let mut tx = identity::begin(conn, gateway, None, op).await?;
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
pub async fn report_head<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    stream: Stream,
    head_seq: i64,
) -> Result<(), SyncError> {
    let op = "reporting the backlog";
    let gateway_id = gateway.gateway_id();
    let mut tx = identity::begin(conn, gateway, None, op).await?;
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

// === the readings call ===

/// A batch of readings as one array per column, the form `markoff.upload_readings` takes.
struct ReadingColumns {
    seqs: Vec<i64>,
    sensors: Vec<i32>,
    ts_ms: Vec<i64>,
    values: Vec<Option<f64>>,
    qualities: Vec<i16>,
}

impl ReadingColumns {
    fn of(rows: &[ReadingRow]) -> Self {
        Self {
            seqs: rows.iter().map(|r| r.seq).collect(),
            // Validated: sensor ids fit in an i32.
            sensors: rows
                .iter()
                .map(|r| i32::try_from(r.sensor_id).unwrap_or(i32::MAX))
                .collect(),
            ts_ms: rows.iter().map(|r| r.ts_ms).collect(),
            values: rows.iter().map(|r| r.value).collect(),
            qualities: rows.iter().map(|r| r.quality).collect(),
        }
    }

    fn len(&self) -> u64 {
        self.seqs.len() as u64
    }
}

/// One call of `markoff.upload_readings` in a transaction of its own: `BEGIN`, the statement
/// (parsed and executed as the unnamed statement, which needs the transaction behind a
/// transaction-pooling PgBouncer: see the crate docs), `COMMIT`. The key goes to the function,
/// which proves it itself.
async fn call_upload<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    columns: &ReadingColumns,
    after: Option<i64>,
    idempotent: bool,
) -> Result<BatchOutcome, SyncError> {
    let gw = gateway.gateway_id();
    let op = "uploading the readings";
    let mut tx = conn.begin().await.map_err(db_err(op, gw))?;
    let row = crate::query(READINGS_UPLOAD)
        .bind(gw)
        .bind(gateway.key())
        .bind(after)
        .bind(idempotent)
        .bind(&columns.seqs)
        .bind(&columns.sensors)
        .bind(&columns.ts_ms)
        .bind(&columns.values)
        .bind(&columns.qualities)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err(op, gw))?;
    tx.commit()
        .await
        .map_err(db_err("committing the upload", gw))?;
    let inserted: i64 = row.try_get(0).map_err(db_err(op, gw))?;
    let central_cursor: i64 = row.try_get(1).map_err(db_err(op, gw))?;
    let inserted = u64::try_from(inserted).unwrap_or(0);
    Ok(BatchOutcome {
        inserted,
        skipped: columns.len().saturating_sub(inserted),
        central_cursor,
    })
}

// === the alarm events transaction ===

async fn alarm_transaction<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[AlarmEventRow],
    newest_ms: Option<i64>,
) -> Result<BatchOutcome, SyncError> {
    fn texts<'a>(
        rows: &'a [AlarmEventRow],
        f: impl Fn(&'a AlarmEventRow) -> &'a str,
    ) -> Vec<&'a str> {
        rows.iter().map(f).collect()
    }
    fn opt_texts<'a>(
        rows: &'a [AlarmEventRow],
        f: impl Fn(&'a AlarmEventRow) -> Option<&'a str>,
    ) -> Vec<Option<&'a str>> {
        rows.iter().map(f).collect()
    }
    let gw = gateway.gateway_id();
    let stream = Stream::AlarmEvents;
    let mut tx = identity::begin(
        conn,
        gateway,
        Some("BEGIN ISOLATION LEVEL READ COMMITTED"),
        "starting the upload transaction",
    )
    .await?;
    let cursor = lock_cursor(&mut tx, gw, stream).await?;
    let fresh = &rows[rows.partition_point(|r| r.seq <= cursor)..];
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
    let new_cursor = last.seq.max(cursor);
    let seqs: Vec<i64> = fresh.iter().map(|r| r.seq).collect();
    let ts: Vec<i64> = fresh.iter().map(|r| r.ts_ms).collect();
    let alarm_ids: Vec<i64> = fresh.iter().map(|r| r.alarm_id).collect();
    let values: Vec<Option<f64>> = fresh.iter().map(|r| r.value).collect();
    let inserted = crate::query(ALARMS_INSERT)
        .bind(gw)
        .bind(cursor)
        .bind(&seqs)
        .bind(&ts)
        .bind(&alarm_ids)
        .bind(texts(fresh, |r| &r.alarm))
        .bind(texts(fresh, |r| &r.rule))
        .bind(opt_texts(fresh, |r| r.sensor.as_deref()))
        .bind(texts(fresh, |r| &r.event))
        .bind(texts(fresh, |r| &r.state))
        .bind(texts(fresh, |r| &r.severity))
        .bind(&values)
        .bind(texts(fresh, |r| &r.message))
        .bind(opt_texts(fresh, |r| r.actor.as_deref()))
        .bind(opt_texts(fresh, |r| r.channel.as_deref()))
        .execute(&mut *tx)
        .await
        .map_err(db_err("inserting the alarm events", gw))?
        .rows_affected();
    crate::query(
        "UPDATE markoff.sync_cursors \
         SET last_seq = greatest(last_seq, $3), \
             newest_ts = greatest(newest_ts, to_timestamp(0) + $4 * interval '1 millisecond'), \
             updated_at = now() \
         WHERE gateway_id = $1 AND stream = $2",
    )
    .bind(gw)
    .bind(stream.as_str())
    .bind(new_cursor)
    .bind(newest_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_err("advancing the central cursor", gw))?;
    tx.commit()
        .await
        .map_err(db_err("committing the upload", gw))?;
    Ok(BatchOutcome {
        inserted,
        skipped: total - inserted,
        central_cursor: new_cursor,
    })
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
