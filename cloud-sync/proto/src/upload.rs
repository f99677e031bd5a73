//! The upload protocol: how a gateway writes its readings and alarm events into the central
//! database exactly once.
//!
//! Owns: the row types a gateway uploads, the upload transaction (the gateway's proof when it has
//! a key, cursor row lock, `INSERT ... SELECT` from the batch sent as arrays, latest values, the
//! 10-minute rollup, cursor update), the cursor read, the contact stamp and the backlog report. Does not own: reading the gateway's
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
//! # Nothing in the server session
//! The batch goes as one array per column (`unnest`), not through a temporary staging table:
//! nothing is created in the server connection, so a transaction-pooling PgBouncer may run any
//! gateway's upload on any of a few long-lived server connections without catalog work.
//!
//! Layout: this file the row types and the upload transaction; `check` the checks and the COPY
//! encoding of the raw-COPY baseline.

mod check;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};

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

/// The batch's rows above the cursor (`$2`), from the arrays `$3`..`$7` (seq, sensor id, read
/// time in ms, value, quality): no staging table, so nothing is created in the server session.
macro_rules! readings_src {
    () => {
        concat!(
            "src AS MATERIALIZED ( \
             SELECT u.seq, u.sensor_id, ",
            ts_of_ms!("u.ts_ms"),
            " AS ts, u.value, u.quality \
             FROM unnest($3::int8[], $4::int4[], $5::int8[], $6::float8[], $7::int2[]) \
                  AS u(seq, sensor_id, ts_ms, value, quality) \
             WHERE u.seq > $2)"
        )
    };
}

/// Adds the rows of `$from` to `markoff.readings_10m`, per sensor and 10-minute bucket, in key
/// order (one order for every uploader, so concurrent upserts cannot deadlock).
macro_rules! rollup_from {
    ($from:literal) => {
        concat!(
            "INSERT INTO markoff.readings_10m AS t \
             (gateway_id, sensor_id, bucket, n, sum, min, max, bad) \
             SELECT $1, sensor_id, \
                    date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'), \
                    count(value), coalesce(sum(value), 0), min(value), max(value), \
                    count(*) - count(value) \
             FROM ",
            $from,
            " GROUP BY 2, 3 ORDER BY 2, 3 \
             ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE \
             SET n = t.n + excluded.n, sum = t.sum + excluded.sum, \
                 min = least(t.min, excluded.min), max = greatest(t.max, excluded.max), \
                 bad = t.bad + excluded.bad"
        )
    };
}

/// The plain insert (every row above the cursor is new) and the rollup of the same rows, in one
/// statement.
const READINGS_INSERT: &str = concat!(
    "WITH ",
    readings_src!(),
    ", ins AS ( \
         INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         SELECT $1, seq, sensor_id, ts, value, quality FROM src) ",
    rollup_from!("src")
);
/// The fallback insert also moves the rollup, from the rows it really inserted (some may have
/// been there already), and answers how many it inserted.
const READINGS_INSERT_IDEMPOTENT: &str = concat!(
    "WITH ",
    readings_src!(),
    ", ins AS ( \
         INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         SELECT $1, seq, sensor_id, ts, value, quality FROM src \
         ON CONFLICT (gateway_id, seq, ts) DO NOTHING \
         RETURNING sensor_id, ts, value), \
     roll AS (",
    rollup_from!("ins"),
    " RETURNING 1) \
     SELECT count(*) FROM ins"
);
const LATEST_UPSERT: &str = concat!(
    "INSERT INTO markoff.sensor_latest AS l \
     (gateway_id, sensor_id, seq, ts, value, quality) \
     SELECT $1, u.sensor_id, u.seq, ",
    ts_of_ms!("u.ts_ms"),
    ", u.value, u.quality \
     FROM unnest($2::int4[], $3::int8[], $4::int8[], $5::float8[], $6::int2[]) \
          AS u(sensor_id, seq, ts_ms, value, quality) \
     ON CONFLICT (gateway_id, sensor_id) DO UPDATE \
     SET seq = excluded.seq, ts = excluded.ts, value = excluded.value, quality = excluded.quality \
     WHERE (excluded.ts, excluded.seq) > (l.ts, l.seq)"
);
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

/// Uploads readings exactly once, in one transaction (see the module docs). `rows` must be in
/// strictly increasing seq order; rows at or below the central cursor are skipped without being
/// sent. An empty slice changes nothing and returns the cursor. Also keeps
/// `markoff.sensor_latest` (the newest reading per sensor) and the rollup up to date.
///
/// # Errors
/// [`SyncError::Unordered`] or [`SyncError::InvalidRow`] before anything is sent;
/// [`SyncError::Database`] when a statement fails (the transaction is rolled back).
pub async fn upload_readings<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[ReadingRow],
) -> Result<BatchOutcome, SyncError> {
    let gateway_id = gateway.gateway_id();
    check_order(Stream::Readings, gateway_id, rows.iter().map(|r| r.seq))?;
    let newest_ms = validate_readings(gateway_id, rows)?;
    upload(conn, gateway, rows, newest_ms).await
}

/// Uploads alarm events exactly once, like [`upload_readings`].
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
    upload(conn, gateway, rows, newest_ms).await
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

// === the upload transaction ===

/// A row type the upload transaction inserts.
trait Uploaded: Sized {
    const STREAM: Stream;
    /// Whether the insert has a faster form without `ON CONFLICT`, tried first.
    const HAS_PLAIN_INSERT: bool;

    fn seq(&self) -> i64;

    /// Inserts `fresh` (the rows above `cursor`) and what hangs off them (latest values,
    /// rollup); with `idempotent`, rows already there are skipped rather than failing the
    /// statement. Answers how many rows were inserted.
    async fn insert(
        conn: &mut PgConnection,
        gw: &str,
        cursor: i64,
        fresh: &[Self],
        idempotent: bool,
    ) -> Result<u64, SyncError>;
}

impl Uploaded for ReadingRow {
    const STREAM: Stream = Stream::Readings;
    const HAS_PLAIN_INSERT: bool = true;

    fn seq(&self) -> i64 {
        self.seq
    }

    async fn insert(
        conn: &mut PgConnection,
        gw: &str,
        cursor: i64,
        fresh: &[Self],
        idempotent: bool,
    ) -> Result<u64, SyncError> {
        let op = "inserting the readings";
        let seqs: Vec<i64> = fresh.iter().map(|r| r.seq).collect();
        // Validated: sensor ids fit in an i32.
        let sensors: Vec<i32> = fresh
            .iter()
            .map(|r| i32::try_from(r.sensor_id).unwrap_or(i32::MAX))
            .collect();
        let ts: Vec<i64> = fresh.iter().map(|r| r.ts_ms).collect();
        let values: Vec<Option<f64>> = fresh.iter().map(|r| r.value).collect();
        let qualities: Vec<i16> = fresh.iter().map(|r| r.quality).collect();
        let inserted = if idempotent {
            let n: i64 = crate::query_scalar(READINGS_INSERT_IDEMPOTENT)
                .bind(gw)
                .bind(cursor)
                .bind(&seqs)
                .bind(&sensors)
                .bind(&ts)
                .bind(&values)
                .bind(&qualities)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err(op, gw))?;
            u64::try_from(n).unwrap_or(0)
        } else {
            crate::query(READINGS_INSERT)
                .bind(gw)
                .bind(cursor)
                .bind(&seqs)
                .bind(&sensors)
                .bind(&ts)
                .bind(&values)
                .bind(&qualities)
                .execute(&mut *conn)
                .await
                .map_err(db_err(op, gw))?;
            // Every row above the cursor was inserted (or the statement failed).
            fresh.len() as u64
        };
        upsert_latest(conn, gw, fresh).await?;
        Ok(inserted)
    }
}

impl Uploaded for AlarmEventRow {
    const STREAM: Stream = Stream::AlarmEvents;
    // Alarm events are few: always the idempotent form.
    const HAS_PLAIN_INSERT: bool = false;

    fn seq(&self) -> i64 {
        self.seq
    }

    async fn insert(
        conn: &mut PgConnection,
        gw: &str,
        cursor: i64,
        fresh: &[Self],
        _idempotent: bool,
    ) -> Result<u64, SyncError> {
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
        let seqs: Vec<i64> = fresh.iter().map(|r| r.seq).collect();
        let ts: Vec<i64> = fresh.iter().map(|r| r.ts_ms).collect();
        let alarm_ids: Vec<i64> = fresh.iter().map(|r| r.alarm_id).collect();
        let values: Vec<Option<f64>> = fresh.iter().map(|r| r.value).collect();
        let n = crate::query(ALARMS_INSERT)
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
            .execute(&mut *conn)
            .await
            .map_err(db_err("inserting the alarm events", gw))?
            .rows_affected();
        Ok(n)
    }
}

/// One upload call: the transaction, retried once with the idempotent insert when the fast one
/// finds a row already there (a cursor behind the data, e.g. after a manual reset).
async fn upload<T: Uploaded, G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[T],
    newest_ms: Option<i64>,
) -> Result<BatchOutcome, SyncError> {
    if rows.is_empty() {
        let cursor = central_cursor(conn, gateway, T::STREAM).await?;
        return Ok(BatchOutcome {
            inserted: 0,
            skipped: 0,
            central_cursor: cursor,
        });
    }
    let idempotent = !T::HAS_PLAIN_INSERT;
    match transaction(conn, gateway, rows, newest_ms, idempotent).await {
        Err(e) if !idempotent && e.sqlstate().as_deref() == Some("23505") => {
            tracing::warn!(
                gateway = gateway.gateway_id(),
                stream = %T::STREAM,
                "Rows above the central cursor are already there; uploading with ON CONFLICT."
            );
            transaction(conn, gateway, rows, newest_ms, true).await
        }
        other => other,
    }
}

async fn transaction<T: Uploaded, G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    rows: &[T],
    newest_ms: Option<i64>,
    idempotent: bool,
) -> Result<BatchOutcome, SyncError> {
    let gw = gateway.gateway_id();
    let mut tx = identity::begin(
        conn,
        gateway,
        Some("BEGIN ISOLATION LEVEL READ COMMITTED"),
        "starting the upload transaction",
    )
    .await?;
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
    let inserted = T::insert(&mut tx, gw, cursor, fresh, idempotent).await?;
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
