//! The read-only SQL of rendering: sensors, latest values and open alarms (for a plan drawn from
//! a buffer without a daemon), a sensor's history (thinned as it is read when long) and its alarm
//! periods from `alarm_events`. Run by the daemon through `Reader::with`, or by `markoff render`
//! on a buffer it opened itself.
//!
//! Owns: queries over the schema of `migrations/gateway/`. Does not own: the schema (`crate::store`).

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, OptionalExtension, params};

use super::chart::{AlarmPeriod, ChartPoint};
use super::gather::OpenAlarm;
use crate::alarms::AlarmState;
use crate::config::Config;
use crate::model::{Quality, Severity};
use crate::store::{LatestValue, SensorRow};

/// Readings returned one by one up to this many in a chart's window; above it, only the lowest
/// and highest good value of each of [`BUCKETS`] time buckets (same picture, bounded memory).
pub(crate) const MAX_RAW_POINTS: i64 = 20_000;
/// Time buckets of a thinned history.
pub(crate) const BUCKETS: i64 = 4_000;

/// Every sensor in the buffer, sorted by id.
pub(crate) fn sensor_rows(c: &Connection) -> Result<Vec<SensorRow>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT key, name, kind, unit, floor, room, source FROM sensors ORDER BY key",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SensorRow {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            unit: r.get(3)?,
            floor: r.get(4)?,
            room: r.get(5)?,
            source: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The newest reading of every sensor (what the daemon's latest-value cache holds).
pub(crate) fn latest_values(
    c: &Connection,
) -> Result<HashMap<String, LatestValue>, rusqlite::Error> {
    Ok(crate::store::cache::read_latest(c)?.into_iter().collect())
}

/// Open alarms recorded in the buffer (not normal, not out of service), of the rules in `config`.
pub(crate) fn open_alarms(
    c: &Connection,
    config: &Config,
) -> Result<Vec<OpenAlarm>, rusqlite::Error> {
    let rules: BTreeSet<&str> = config
        .alarms
        .rule
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.alert.as_str())
        .collect();
    let mut stmt = c.prepare_cached(
        "SELECT rule, sensor, severity, state FROM alarm_state WHERE state != 'normal' AND out_of_service = 0",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rule, sensor, severity, state) = row?;
        if let (true, Some(severity), Some(state)) = (
            rules.contains(rule.as_str()),
            Severity::parse(&severity),
            AlarmState::parse(&state),
        ) {
            out.push(OpenAlarm {
                sensor,
                severity,
                state,
            });
        }
    }
    Ok(out)
}

/// A sensor's readings in `from..=to` (ms), in time order: every reading, or the minimum and
/// maximum good value of each of [`BUCKETS`] buckets when there are more than
/// [`MAX_RAW_POINTS`]. `None` when the buffer does not know the sensor.
pub(crate) fn history(
    c: &Connection,
    sensor: &str,
    from: i64,
    to: i64,
) -> Result<Option<Vec<ChartPoint>>, rusqlite::Error> {
    let Some(id): Option<i64> = c
        .query_row("SELECT id FROM sensors WHERE key = ?1", [sensor], |r| {
            r.get(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let count: i64 = c.query_row(
        "SELECT count(*) FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3",
        params![id, from, to],
        |r| r.get(0),
    )?;
    let mut out = Vec::new();
    if count <= MAX_RAW_POINTS {
        let mut stmt = c.prepare_cached(
            "SELECT ts, value, quality FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, seq",
        )?;
        let rows = stmt.query_map(params![id, from, to], |r| {
            let quality = Quality::from_code(r.get(2)?);
            Ok(ChartPoint {
                ts: r.get(0)?,
                value: r
                    .get::<_, Option<f64>>(1)?
                    .filter(|_| quality == Quality::Good),
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        return Ok(Some(out));
    }
    // Thinned while streaming in index order (no GROUP BY: SQLite would sort every row):
    // per bucket, the lowest and the highest good value at their own times.
    let bucket = ((to - from) / BUCKETS).max(1);
    let mut stmt = c.prepare_cached(
        "SELECT ts, value, quality FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, seq",
    )?;
    let mut rows = stmt.query(params![id, from, to])?;
    let mut current: Option<Bucket> = None;
    while let Some(r) = rows.next()? {
        let ts: i64 = r.get(0)?;
        let value: Option<f64> = r.get(1)?;
        let quality = Quality::from_code(r.get(2)?);
        let good = value.filter(|_| quality == Quality::Good);
        let b = (ts - from) / bucket;
        if current.as_ref().is_some_and(|c| c.index != b)
            && let Some(done) = current.take()
        {
            done.emit(&mut out);
        }
        current
            .get_or_insert_with(|| Bucket::new(b, ts))
            .add(ts, good);
    }
    if let Some(done) = current {
        done.emit(&mut out);
    }
    Ok(Some(out))
}

/// One time bucket of a thinned history.
#[derive(Debug)]
struct Bucket {
    index: i64,
    first_ts: i64,
    low: Option<(i64, f64)>,
    high: Option<(i64, f64)>,
}

impl Bucket {
    fn new(index: i64, first_ts: i64) -> Self {
        Self {
            index,
            first_ts,
            low: None,
            high: None,
        }
    }

    fn add(&mut self, ts: i64, value: Option<f64>) {
        let Some(v) = value else { return };
        if self.low.is_none_or(|(_, l)| v < l) {
            self.low = Some((ts, v));
        }
        if self.high.is_none_or(|(_, h)| v > h) {
            self.high = Some((ts, v));
        }
    }

    /// The bucket's lowest and highest good values in time order, or a point without a value
    /// when it has none.
    fn emit(self, out: &mut Vec<ChartPoint>) {
        match (self.low, self.high) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
                out.push(ChartPoint {
                    ts: first.0,
                    value: Some(first.1),
                });
                if second.0 != first.0 {
                    out.push(ChartPoint {
                        ts: second.0,
                        value: Some(second.1),
                    });
                }
            }
            _ => out.push(ChartPoint {
                ts: self.first_ts,
                value: None,
            }),
        }
    }
}

/// When the sensor's alarms were active within `from..=to` (ms), from `alarm_events`: the state
/// before `from` (the alarm's last event before it) and every event after.
pub(crate) fn alarm_periods(
    c: &Connection,
    sensor: &str,
    from: i64,
    to: i64,
) -> Result<Vec<AlarmPeriod>, rusqlite::Error> {
    let mut ids = c.prepare_cached(
        "SELECT id, rule, severity FROM alarm_state WHERE sensor = ?1 ORDER BY id",
    )?;
    let alarms: Vec<(i64, String, String)> = ids
        .query_map([sensor], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut before = c.prepare_cached(
        "SELECT state, severity FROM alarm_events WHERE alarm_id = ?1 AND ts < ?2 ORDER BY seq DESC LIMIT 1",
    )?;
    let mut during = c.prepare_cached(
        "SELECT ts, state, severity FROM alarm_events WHERE alarm_id = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY seq",
    )?;
    let mut out = Vec::new();
    for (id, rule, severity) in alarms {
        let fallback = Severity::parse(&severity).unwrap_or(Severity::High);
        let start: Option<(String, String)> = before
            .query_row(params![id, from], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let active = |state: &str| AlarmState::parse(state).is_some_and(AlarmState::is_active);
        let mut open: Option<(i64, Severity)> = start
            .filter(|(state, _)| active(state))
            .map(|(_, sev)| (from, Severity::parse(&sev).unwrap_or(fallback)));
        let events = during.query_map(params![id, from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for e in events {
            let (ts, state, sev) = e?;
            let sev = Severity::parse(&sev).unwrap_or(fallback);
            match (open, active(&state)) {
                (None, true) => open = Some((ts, sev)),
                (Some((since, s)), false) => {
                    out.push(AlarmPeriod {
                        alert: rule.clone(),
                        severity: s,
                        from: since,
                        to: Some(ts),
                    });
                    open = None;
                }
                (Some((since, s)), true) if sev > s => open = Some((since, sev)),
                _ => {}
            }
        }
        if let Some((since, s)) = open {
            out.push(AlarmPeriod {
                alert: rule,
                severity: s,
                from: since,
                to: None,
            });
        }
    }
    out.sort_by_key(|p| p.from);
    Ok(out)
}
