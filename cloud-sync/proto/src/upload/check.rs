//! The checks every uploaded row passes before it reaches PostgreSQL (order, timestamps, text),
//! the binary COPY encoding of the rows, and the errors they become.

use crate::Stream;
use crate::copy::{self, CopyEncoder};
use crate::error::SyncError;

use super::{AlarmEventRow, ReadingRow};

pub(super) fn check_order(
    stream: Stream,
    gateway_id: &str,
    seqs: impl Iterator<Item = i64>,
) -> Result<(), SyncError> {
    let mut previous: Option<i64> = None;
    for (index, seq) in seqs.enumerate() {
        if let Some(p) = previous
            && seq <= p
        {
            return Err(SyncError::Unordered {
                stream,
                gateway_id: gateway_id.to_owned(),
                index,
                previous: p,
                seq,
            });
        }
        previous = Some(seq);
    }
    Ok(())
}

/// Checks every reading can be stored; returns the newest ts.
pub(super) fn validate_readings(
    gateway_id: &str,
    rows: &[ReadingRow],
) -> Result<Option<i64>, SyncError> {
    let mut newest = None;
    for r in rows {
        if i32::try_from(r.sensor_id).is_err() {
            return Err(invalid(
                Stream::Readings,
                gateway_id,
                r.seq,
                &format!("sensor id {} does not fit in an int4", r.sensor_id),
            ));
        }
        if !(0..=3).contains(&r.quality) {
            return Err(invalid(
                Stream::Readings,
                gateway_id,
                r.seq,
                &format!("quality {} is not 0..=3", r.quality),
            ));
        }
        check_ts(Stream::Readings, gateway_id, r.seq, r.ts_ms)?;
        newest = newest.max(Some(r.ts_ms));
    }
    Ok(newest)
}

pub(super) fn validate_alarm_events(
    gateway_id: &str,
    rows: &[AlarmEventRow],
) -> Result<Option<i64>, SyncError> {
    let mut newest = None;
    for r in rows {
        check_ts(Stream::AlarmEvents, gateway_id, r.seq, r.ts_ms)?;
        let texts = [
            Some(r.alarm.as_str()),
            Some(r.rule.as_str()),
            r.sensor.as_deref(),
            Some(r.event.as_str()),
            Some(r.state.as_str()),
            Some(r.severity.as_str()),
            Some(r.message.as_str()),
            r.actor.as_deref(),
            r.channel.as_deref(),
        ];
        if texts.into_iter().flatten().any(|t| !copy::text_fits(t)) {
            return Err(invalid(
                Stream::AlarmEvents,
                gateway_id,
                r.seq,
                "a text field is 2 GiB or longer",
            ));
        }
        newest = newest.max(Some(r.ts_ms));
    }
    Ok(newest)
}

/// PostgreSQL's timestamptz range is 4713 BC to 294276 AD; this accepts years 1..=9999 of the
/// proleptic Gregorian calendar, which every real read time is in.
pub(super) fn check_ts(
    stream: Stream,
    gateway_id: &str,
    seq: i64,
    ts_ms: i64,
) -> Result<(), SyncError> {
    const MIN_MS: i64 = -62_135_596_800_000; // 0001-01-01T00:00:00Z
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if (MIN_MS..=MAX_MS).contains(&ts_ms) && copy::pg_micros(ts_ms).is_some() {
        Ok(())
    } else {
        Err(invalid(
            stream,
            gateway_id,
            seq,
            &format!("timestamp {ts_ms} ms is outside years 1..=9999"),
        ))
    }
}

pub(super) fn encode_reading_fields(e: &mut CopyEncoder, r: &ReadingRow) {
    e.i64(r.seq);
    // Validated: fits in an i32.
    e.i32(i32::try_from(r.sensor_id).unwrap_or(i32::MAX));
    e.timestamptz(copy::pg_micros(r.ts_ms).unwrap_or(0));
    e.opt_f64(r.value);
    e.i16(r.quality);
}

pub(super) fn invalid(stream: Stream, gateway_id: &str, seq: i64, reason: &str) -> SyncError {
    SyncError::InvalidRow {
        stream,
        gateway_id: gateway_id.to_owned(),
        seq,
        reason: reason.to_owned(),
    }
}

/// Wraps a driver error with what was being done and for which gateway.
pub(crate) fn db_err(op: &'static str, gateway_id: &str) -> impl FnOnce(sqlx::Error) -> SyncError {
    let gateway_id = gateway_id.to_owned();
    move |source| SyncError::Database {
        op,
        gateway_id,
        source,
    }
}
