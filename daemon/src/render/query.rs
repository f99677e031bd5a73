//! What rendering reads from the buffer, turned into plan and chart inputs: sensors, latest
//! values and open alarms (for a plan drawn from a buffer without a daemon), a sensor's series
//! and its alarm periods (from its alarms' events). Used by the daemon through `Reader` and by
//! `markoff render` on a buffer it opened itself.
//!
//! Owns: turning stored alarm events into periods, and choosing the alarms a plan shows. Does
//! not own: the queries (`crate::store`).

use std::collections::{BTreeSet, HashMap};

use super::chart::{AlarmPeriod, ChartPoint};
use super::gather::OpenAlarm;
use crate::config::Config;
use crate::model::{AlarmState, Severity, Timestamp};
use crate::store::{AlarmHistory, LatestValue, ReadConnection, SensorRow, StoreError};

/// Every sensor in the buffer, sorted by id.
pub(crate) fn sensor_rows(c: &ReadConnection) -> Result<Vec<SensorRow>, StoreError> {
    c.sensors()
}

/// The newest reading of every sensor (what the daemon's latest-value cache holds).
pub(crate) fn latest_values(
    c: &ReadConnection,
) -> Result<HashMap<String, LatestValue>, StoreError> {
    c.latest_values()
}

/// Open alarms recorded in the buffer (not normal, not out of service), of the rules in `config`.
pub(crate) fn open_alarms(
    c: &ReadConnection,
    config: &Config,
) -> Result<Vec<OpenAlarm>, StoreError> {
    let rules: BTreeSet<&str> = config
        .alarms
        .rule
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.alert.as_str())
        .collect();
    Ok(c.open_alarm_states()?
        .into_iter()
        .filter(|a| rules.contains(a.rule.as_str()))
        .map(|a| OpenAlarm {
            sensor: a.sensor,
            severity: a.severity,
            state: a.state,
        })
        .collect())
}

/// A sensor's readings in `from..=to` (ms), in time order: every reading, or the minimum and
/// maximum good value of each of `crate::store::BUCKETS` buckets when there are more than
/// `crate::store::MAX_RAW_POINTS`. `None` when the buffer does not know the sensor.
pub(crate) fn history(
    c: &ReadConnection,
    sensor: &str,
    from: i64,
    to: i64,
) -> Result<Option<Vec<ChartPoint>>, StoreError> {
    c.series(sensor, Timestamp(from), Timestamp(to))
}

/// When the sensor's alarms were active within `from..=to` (ms), from `alarm_events`: the state
/// before `from` (the alarm's last event before it) and every event after.
pub(crate) fn alarm_periods(
    c: &ReadConnection,
    sensor: &str,
    from: i64,
    to: i64,
) -> Result<Vec<AlarmPeriod>, StoreError> {
    Ok(periods(
        c.alarm_history(sensor, Timestamp(from), Timestamp(to))?,
        from,
    ))
}

/// The periods during which each alarm was active, from its events; those still active at the
/// end of the range have no end.
pub(crate) fn periods(alarms: Vec<AlarmHistory>, from: i64) -> Vec<AlarmPeriod> {
    let mut out = Vec::new();
    for a in alarms {
        let fallback = a.severity.unwrap_or(Severity::High);
        let active = |state: Option<AlarmState>| state.is_some_and(AlarmState::is_active);
        let mut open: Option<(i64, Severity)> = a
            .before
            .filter(|(state, _)| active(*state))
            .map(|(_, sev)| (from, sev.unwrap_or(fallback)));
        for (ts, state, sev) in a.events {
            let sev = sev.unwrap_or(fallback);
            match (open, active(state)) {
                (None, true) => open = Some((ts, sev)),
                (Some((since, s)), false) => {
                    out.push(AlarmPeriod {
                        alert: a.rule.clone(),
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
                alert: a.rule,
                severity: s,
                from: since,
                to: None,
            });
        }
    }
    out.sort_by_key(|p| p.from);
    out
}
