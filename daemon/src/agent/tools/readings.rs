//! Latest readings and history of sensors, for the model, the slash commands and the offline
//! router.
//!
//! Owns: reading and history result shapes and the queries behind them (through the store's
//! reader and latest-value cache). Does not own: which sensors (`super::search`).

use serde::Serialize;

use super::search::{SensorQuery, resolve_sensor, search};
use super::{ToolContext, ToolError};
use crate::model::{Quality, Timestamp};

/// Most readings a slash command or the offline router shows.
const READINGS_LIMIT: usize = 30;
/// Most readings one `current_readings` call gives the model (about 60 tokens each).
pub(super) const TOOL_READINGS_LIMIT: usize = 12;
/// Points of a history summary.
const HISTORY_BUCKETS: i64 = 24;

/// The latest value of a sensor, for people and the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadingItem {
    /// Sensor id.
    pub sensor: String,
    /// Name.
    pub name: String,
    /// Value (absent when the reading failed).
    pub value: Option<f64>,
    /// Unit.
    pub unit: String,
    /// Quality (`good`, `bad`, `stale`, `comm_error`).
    pub quality: Quality,
    /// Read time, RFC 3339 UTC.
    pub time: String,
    /// Age in seconds.
    pub age_s: i64,
    /// Older than `[agent] stale_after`, or not a good reading.
    pub stale: bool,
    /// Floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// Room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// Latest readings of the sensors a query selects (`current_readings`). With a free-text
/// query the best matches only; with only filters, every sensor they select (capped).
///
/// # Errors
/// The database could not be read.
pub async fn readings(
    ctx: &ToolContext<'_>,
    q: &SensorQuery,
) -> Result<Vec<ReadingItem>, ToolError> {
    Ok(readings_capped(ctx, q, READINGS_LIMIT).await?.0)
}

/// Latest readings of at most `limit` of the sensors a query selects, and how many more it
/// selects.
///
/// # Errors
/// The database could not be read.
pub(super) async fn readings_capped(
    ctx: &ToolContext<'_>,
    q: &SensorQuery,
    limit: usize,
) -> Result<(Vec<ReadingItem>, usize), ToolError> {
    let sensors = search(ctx, q, true).await?;
    let more = sensors.len().saturating_sub(limit);
    let stale_after =
        i64::try_from(ctx.core.config().agent.stale_after.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for s in sensors.into_iter().take(limit) {
        let Some(latest) = ctx.core.store.latest.get(&s.id) else {
            continue;
        };
        let age_ms = ctx.now.as_millis() - latest.ts.as_millis();
        out.push(ReadingItem {
            name: if s.name.is_empty() {
                s.id.clone()
            } else {
                s.name.clone()
            },
            sensor: s.id,
            value: latest.value,
            unit: s.unit,
            quality: latest.quality,
            time: latest.ts.to_rfc3339(),
            age_s: age_ms / 1000,
            stale: latest.quality != Quality::Good || age_ms > stale_after,
            floor: s.floor,
            room: s.room,
        });
    }
    Ok((out, more))
}

// ---------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------

/// Seconds of a history range (`1h` ... `30d`; anything humantime parses; default 24 h).
pub fn range_secs(range: &str) -> u64 {
    humantime::parse_duration(range.trim())
        .map(|d| d.as_secs())
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(86_400)
        .min(366 * 86_400)
}

/// One interval of a history summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Interval start, RFC 3339 UTC.
    pub from: String,
    /// The aggregated value.
    pub value: f64,
}

/// A sensor's history over a range (`history`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistorySummary {
    /// Sensor id.
    pub sensor: String,
    /// Name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Range asked for.
    pub range: String,
    /// Aggregation per interval.
    pub aggregation: String,
    /// Good readings in the range.
    pub count: i64,
    /// Lowest value.
    pub min: Option<f64>,
    /// Highest value.
    pub max: Option<f64>,
    /// Average.
    pub avg: Option<f64>,
    /// Newest value and its time.
    pub last: Option<f64>,
    /// Time of the newest value.
    pub last_time: Option<String>,
    /// Values per interval (empty intervals omitted: no data then).
    pub points: Vec<HistoryPoint>,
}

/// A sensor's history (`history`).
///
/// # Errors
/// Unknown sensor, or the database could not be read.
pub async fn history(
    ctx: &ToolContext<'_>,
    sensor: &str,
    range: &str,
    aggregation: &str,
) -> Result<HistorySummary, ToolError> {
    let s = resolve_sensor(ctx, sensor).await?;
    let secs = range_secs(range);
    let span_ms = i64::try_from(secs).unwrap_or(i64::MAX / 2_000) * 1000;
    let from = ctx.now.as_millis() - span_ms;
    let bucket = (span_ms / HISTORY_BUCKETS).max(1);
    let (rows, last) = ctx
        .core
        .reader
        .history_buckets(&s.id, Timestamp(from), ctx.now, bucket)
        .await
        .map_err(|e| ToolError::Database(e.to_string()))?;
    let count: i64 = rows.iter().map(|r| r.count).sum();
    let min = rows.iter().map(|r| r.min).reduce(f64::min);
    let max = rows.iter().map(|r| r.max).reduce(f64::max);
    let avg = (count > 0)
        .then(|| rows.iter().map(|r| r.avg * r.count as f64).sum::<f64>() / count as f64);
    let points = rows
        .iter()
        .map(|r| HistoryPoint {
            from: Timestamp(from + r.index * bucket).to_rfc3339(),
            value: round3(match aggregation {
                "min" => r.min,
                "max" => r.max,
                "last" => r.last,
                _ => r.avg,
            }),
        })
        .collect();
    Ok(HistorySummary {
        name: s.name,
        sensor: s.id,
        unit: s.unit,
        range: range.to_owned(),
        aggregation: aggregation.to_owned(),
        count,
        min: min.map(round3),
        max: max.map(round3),
        avg: avg.map(round3),
        last: last.map(|l| round3(l.1)),
        last_time: last.map(|l| l.0.to_rfc3339()),
        points,
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_a_default() {
        assert_eq!(range_secs("1h"), 3600);
        assert_eq!(range_secs("7d"), 7 * 86_400);
        assert_eq!(range_secs("nonsense"), 86_400);
        assert_eq!(range_secs("100y"), 366 * 86_400);
    }
}
