//! Times on the pictures: the building's local time (a fixed offset from UTC, `[site]
//! utc_offset`), and the ticks of a chart's time axis at round local times (every 15 minutes, at
//! 06:00 and 12:00, at midnight, on Mondays), labelled `HH:MM` or `dd.mm` at midnight.
//!
//! Owns: time arithmetic and formatting for `crate::render`. Everything stored stays in UTC.

use std::time::Duration;

use crate::config::UtcOffset;
use crate::model::Timestamp;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Tick steps of the time axis, smallest first.
const STEPS: [i64; 18] = [
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
];

/// `YYYY-MM-DDTHH:MM:SS` of `ts` in local time.
fn local_iso(ts: i64, offset: UtcOffset) -> String {
    let local = Timestamp(ts.saturating_add(offset.millis())).to_system();
    let s = humantime::format_rfc3339_seconds(local).to_string();
    s.trim_end_matches('Z').to_owned()
}

/// The zone as people read it: `UTC` or `UTC+05:00`.
pub(crate) fn zone(offset: UtcOffset) -> String {
    if offset.seconds() == 0 {
        "UTC".to_owned()
    } else {
        format!("UTC{offset}")
    }
}

/// `2026-11-23 14:05 UTC+05:00`.
pub(crate) fn stamp(ts: Timestamp, offset: UtcOffset) -> String {
    let iso = local_iso(ts.as_millis(), offset);
    let minutes = iso.get(..16).unwrap_or(&iso).replacen('T', " ", 1);
    format!("{minutes} {}", zone(offset))
}

/// The ticks of a time axis over `from..=to` (ms): at most `max` of them, at round local times,
/// and the step between them.
pub(crate) fn ticks(from: i64, to: i64, offset: UtcOffset, max: usize) -> (Vec<i64>, i64) {
    let span = (to - from).max(1);
    let max = max.max(2) as i64;
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s < max)
        .unwrap_or_else(|| (span / max / DAY + 1) * 7 * DAY);
    let off = offset.millis();
    let origin = if step == 7 * DAY || step == 14 * DAY {
        // Weeks start on Monday; 1970-01-01 was a Thursday.
        -3 * DAY
    } else {
        0
    };
    let local_from = from + off - origin;
    let first = local_from.div_euclid(step) * step
        + if local_from.rem_euclid(step) == 0 {
            0
        } else {
            step
        };
    let mut out = Vec::new();
    let mut t = first + origin - off;
    while t <= to && out.len() < 64 {
        out.push(t);
        t += step;
    }
    (out, step)
}

/// The label of a tick at `ts` on an axis ticking every `step` ms: `dd.mm` at local midnight,
/// else `HH:MM` (`HH:MM:SS` under a minute).
pub(crate) fn tick_label(ts: i64, step: i64, offset: UtcOffset) -> String {
    let iso = local_iso(ts, offset);
    let midnight = (ts + offset.millis()).rem_euclid(DAY) == 0;
    if midnight || step >= DAY {
        // YYYY-MM-DD -> DD.MM
        let (m, d) = (iso.get(5..7).unwrap_or(""), iso.get(8..10).unwrap_or(""));
        format!("{d}.{m}")
    } else if step < MINUTE {
        iso.get(11..19).unwrap_or("").to_owned()
    } else {
        iso.get(11..16).unwrap_or("").to_owned()
    }
}

/// `d` in milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        let t = humantime::parse_rfc3339(s).unwrap();
        Timestamp::from_system(t).as_millis()
    }

    const YEKATERINBURG: UtcOffset = match UtcOffset::from_seconds(5 * 3600) {
        Some(o) => o,
        None => UtcOffset::UTC,
    };

    #[test]
    fn stamps_in_local_time() {
        let t = Timestamp(ts("2026-11-23T09:05:30Z"));
        assert_eq!(stamp(t, UtcOffset::UTC), "2026-11-23 09:05 UTC");
        assert_eq!(stamp(t, YEKATERINBURG), "2026-11-23 14:05 UTC+05:00");
    }

    #[test]
    fn a_day_ticks_every_few_hours_at_round_local_times() {
        let to = ts("2026-11-23T09:05:00Z");
        let from = to - DAY;
        let (t, step) = ticks(from, to, YEKATERINBURG, 10);
        assert_eq!(step, 3 * HOUR);
        assert_eq!(t.len(), 8);
        let labels: Vec<String> = t
            .iter()
            .map(|x| tick_label(*x, step, YEKATERINBURG))
            .collect();
        assert_eq!(
            labels,
            [
                "15:00", "18:00", "21:00", "23.11", "03:00", "06:00", "09:00", "12:00"
            ]
        );
        assert!(t.iter().all(|x| (from..=to).contains(x)));
    }

    #[test]
    fn a_week_ticks_at_local_midnights() {
        let to = ts("2026-11-23T09:05:00Z");
        let (t, step) = ticks(to - 7 * DAY, to, YEKATERINBURG, 10);
        assert_eq!(step, DAY);
        assert_eq!(tick_label(t[0], step, YEKATERINBURG), "17.11");
        assert!(t.iter().all(|x| (x + 5 * HOUR) % DAY == 0));
        // A month: weekly ticks on Mondays (2026-11-23 is a Monday).
        let (t, step) = ticks(to - 30 * DAY, to, UtcOffset::UTC, 8);
        assert_eq!(step, 7 * DAY);
        assert_eq!(
            tick_label(*t.last().unwrap(), step, UtcOffset::UTC),
            "23.11"
        );
    }

    #[test]
    fn short_spans_tick_in_minutes_and_seconds() {
        let to = ts("2026-11-23T09:05:00Z");
        let (t, step) = ticks(to - 10 * MINUTE, to, UtcOffset::UTC, 10);
        assert_eq!(step, 2 * MINUTE);
        assert_eq!(tick_label(t[0], step, UtcOffset::UTC), "08:56");
        let (_, step) = ticks(to - MINUTE, to, UtcOffset::UTC, 10);
        assert_eq!(step, 10 * SECOND);
        assert_eq!(tick_label(to, step, UtcOffset::UTC), "09:05:00");
    }
}
