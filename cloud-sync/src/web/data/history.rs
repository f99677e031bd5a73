//! A sensor's history for its page and chart: buckets of the raw readings, of the 10-minute
//! rollup or of the daily rollup, chosen by the range, with the alarms of the range.

use super::*;

/// One bucket of a sensor's history.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct HistoryPoint {
    /// Start of the bucket.
    pub ts: Time,
    /// Mean of the good values (`None`: no good value in the bucket, a gap).
    pub avg: Option<f64>,
    /// Smallest good value.
    pub min: Option<f64>,
    /// Largest good value.
    pub max: Option<f64>,
    /// Good values.
    pub count: i64,
    /// Readings without a trustworthy value (bad, stale, comm error).
    pub bad: i64,
}

/// A sensor's page: its latest value, its history in buckets and its alarms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorHistory {
    /// The building.
    pub building_id: String,
    /// Its name.
    pub building_name: Option<String>,
    /// The sensor and its newest reading.
    pub sensor: SensorValue,
    /// Start of the range (inclusive).
    pub from: Time,
    /// End of the range (exclusive).
    pub to: Time,
    /// Width of a bucket.
    pub bucket_seconds: i64,
    /// Where the buckets come from: `readings` (ranges up to 3 hours), `readings_10m` (up to
    /// 32 days) or `readings_1d` (longer ranges: the daily rollup, with the days it does not
    /// hold yet, such as today, from `readings_10m`).
    pub source: &'static str,
    /// Buckets that hold readings, oldest first (missing buckets are gaps).
    pub points: Vec<HistoryPoint>,
    /// Its alarms, newest first.
    pub alarms: Vec<AlarmView>,
}

/// Bucket widths a chart may use, seconds. From 600 on, multiples of the rollup's 10 minutes.
const BUCKETS: [i64; 15] = [
    1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];

/// Longest range read from `readings` itself (a scan of the gateway's readings in the range);
/// longer ones read the 10-minute rollup `readings_10m`.
pub const RAW_RANGE_MAX_MS: i64 = 3 * 3_600_000;

/// Longest range read from the 10-minute rollup (4,608 rows of one sensor); longer ones read
/// the daily rollup `readings_1d` in buckets of a day.
pub const TEN_MINUTE_RANGE_MAX_MS: i64 = 32 * 86_400_000;

/// The narrowest bucket that keeps `range_ms` within `max_points` buckets; at least the
/// rollup's 10 minutes for ranges longer than [`RAW_RANGE_MAX_MS`], and a day for ranges longer
/// than [`TEN_MINUTE_RANGE_MAX_MS`].
pub fn bucket_for(range_ms: i64, max_points: i64) -> i64 {
    let want = range_ms / 1000 / max_points.max(1);
    let want = if range_ms > TEN_MINUTE_RANGE_MAX_MS {
        want.max(86_400)
    } else if range_ms > RAW_RANGE_MAX_MS {
        want.max(600)
    } else {
        want
    };
    BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= want)
        .unwrap_or(86_400)
}

/// A sensor's readings in buckets of `$3` seconds from `$4` to `$5` (ms): `$1` gateway, `$2`
/// sensor; over the gateway's readings in the range (`readings_key`, partition pruning).
const HISTORY_RAW: &str = "SELECT (extract(epoch FROM date_bin($3 * interval '1 second', ts, \
             to_timestamp($4::float8 / 1000))) * 1000)::int8 AS ts, \
            avg(value) AS avg, min(value) AS min, max(value) AS max, count(value) AS count, \
            count(*) - count(value) AS bad \
     FROM markoff.readings \
     WHERE gateway_id = $1 AND sensor_id = $2 \
       AND ts >= to_timestamp($4::float8 / 1000) AND ts < to_timestamp($5::float8 / 1000) \
     GROUP BY 1 ORDER BY 1";

/// The same from the 10-minute rollup (its primary key), buckets aligned to the epoch: the first
/// and last may reach up to 10 minutes past the range.
const HISTORY_ROLLUP: &str = "SELECT (extract(epoch FROM date_bin($3 * interval '1 second', bucket, \
             timestamptz '2000-01-01 00:00:00+00')) * 1000)::int8 AS ts, \
            sum(sum) / nullif(sum(n), 0) AS avg, min(min) AS min, max(max) AS max, \
            sum(n)::int8 AS count, sum(bad)::int8 AS bad \
     FROM markoff.readings_10m \
     WHERE gateway_id = $1 AND sensor_id = $2 \
       AND bucket >= date_bin(interval '10 minutes', to_timestamp($4::float8 / 1000), \
                              timestamptz '2000-01-01 00:00:00+00') \
       AND bucket < to_timestamp($5::float8 / 1000) \
     GROUP BY 1 ORDER BY 1";

/// The same over whole UTC days (`$3` is a day): the days before `rollup_state.through` from
/// the daily rollup, except days with a pending mark of the gateway (rows written after the day
/// had ended, not rolled up yet); those and the days from `through` on (the current day among
/// them) from the 10-minute rollup, day by day through its primary key (the day bounds are
/// computed before the scan: under the web role's row-level security only leakproof operators
/// such as a plain `timestamptz` comparison may become index conditions). Whole days: the first
/// bucket may start up to a day before the range and the last end up to a day after it.
const HISTORY_DAILY: &str = "WITH lim AS ( \
         SELECT (date_bin($3 * interval '1 second', to_timestamp($4::float8 / 1000), \
                          timestamptz '2000-01-01 00:00:00+00') AT TIME ZONE 'UTC')::date AS lo, \
                (to_timestamp(($5::float8 - 1) / 1000) AT TIME ZONE 'UTC')::date AS hi, \
                coalesce((SELECT through FROM markoff.rollup_state \
                          WHERE rollup = 'readings_1d'), date '1970-01-01') AS through), \
     pend AS ( \
         SELECT DISTINCT p.day FROM markoff.readings_1d_pending p, lim \
         WHERE p.gateway_id = $1 AND p.day >= lim.lo AND p.day <= lim.hi \
           AND p.day < lim.through), \
     fine AS ( \
         SELECT greatest(lim.lo, lim.through)::timestamp AT TIME ZONE 'UTC' AS a, \
                (lim.hi + 1)::timestamp AT TIME ZONE 'UTC' AS b FROM lim \
         UNION ALL SELECT day::timestamp AT TIME ZONE 'UTC', \
                          (day + 1)::timestamp AT TIME ZONE 'UTC' FROM pend), \
     days AS ( \
         SELECT d.day, d.n, d.sum, d.min, d.max, d.bad FROM markoff.readings_1d d, lim \
         WHERE d.gateway_id = $1 AND d.sensor_id = $2 AND d.day >= lim.lo \
           AND d.day <= lim.hi AND d.day < lim.through \
           AND d.day NOT IN (SELECT day FROM pend) \
         UNION ALL \
         SELECT (r.bucket AT TIME ZONE 'UTC')::date, r.n, r.sum, r.min, r.max, r.bad \
         FROM fine f CROSS JOIN LATERAL ( \
             SELECT t.bucket, t.n, t.sum, t.min, t.max, t.bad FROM markoff.readings_10m t \
             WHERE t.gateway_id = $1 AND t.sensor_id = $2 \
               AND t.bucket >= f.a AND t.bucket < f.b) r \
         WHERE f.a < f.b) \
     SELECT (extract(epoch FROM date_bin($3 * interval '1 second', \
                 day::timestamp AT TIME ZONE 'UTC', timestamptz '2000-01-01 00:00:00+00')) \
             * 1000)::int8 AS ts, \
            sum(sum) / nullif(sum(n), 0) AS avg, min(min) AS min, max(max) AS max, \
            sum(n)::int8 AS count, sum(bad)::int8 AS bad \
     FROM days GROUP BY 1 ORDER BY 1";

/// A sensor's history between `from` and `to` (ms) in at most about `max_points` buckets,
/// aggregated by the server: from the readings for ranges up to [`RAW_RANGE_MAX_MS`], from the
/// 10-minute rollup for buckets shorter than a day, else from the daily rollup; `None` when the
/// sensor is unknown or the viewer may not see it.
///
/// # Errors
/// [`DataError::Database`].
#[allow(clippy::too_many_arguments)]
pub async fn sensor_history(
    pool: &PgPool,
    viewer: Viewer<'_>,
    gateway_id: &str,
    sensor_id: i32,
    from: i64,
    to: i64,
    max_points: i64,
    stale_after_ms: i64,
) -> Result<Option<SensorHistory>, DataError> {
    let op = "reading the sensor's history";
    if !possible_id(gateway_id) {
        return Ok(None);
    }
    let bucket = bucket_for(to - from, max_points);
    let mut tx = begin(pool, viewer).await?;
    let head: Option<SensorHead> = sqlx::query_as(concat!(
        "SELECT g.building_id, b.name AS building_name, g.gateway_id, $2::int4 AS sensor_id, \
                s.key, s.name, s.kind, s.unit, s.floor, s.room, ",
        ms!("l.ts"),
        " AS ts, l.value, l.quality \
         FROM markoff.gateways g JOIN markoff.buildings b USING (building_id) \
         LEFT JOIN markoff.sensors s ON s.gateway_id = g.gateway_id AND s.sensor_id = $2 \
         LEFT JOIN markoff.sensor_latest l ON l.gateway_id = g.gateway_id AND l.sensor_id = $2 \
         WHERE g.gateway_id = $1 AND (s.sensor_id IS NOT NULL OR l.sensor_id IS NOT NULL)"
    ))
    .bind(gateway_id)
    .bind(sensor_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db(op))?;
    let Some(head) = head else {
        return Ok(None);
    };
    let source = if to - from <= RAW_RANGE_MAX_MS {
        "readings"
    } else if bucket % 86_400 == 0 {
        "readings_1d"
    } else {
        "readings_10m"
    };
    let sql = match source {
        "readings" => HISTORY_RAW,
        "readings_1d" => HISTORY_DAILY,
        _ => HISTORY_ROLLUP,
    };
    let points: Vec<HistoryPoint> = sqlx::query_as(sql)
        .bind(gateway_id)
        .bind(sensor_id)
        .bind(bucket as f64)
        .bind(from as f64)
        .bind(to as f64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(op))?;
    let alarms_sql = format!(
        "SELECT {ALARM_COLUMNS} FROM markoff.alarm_latest a \
         JOIN markoff.sensors s ON s.gateway_id = a.gateway_id AND s.key = a.sensor \
         WHERE a.gateway_id = $1 AND s.sensor_id = $2 ORDER BY a.ts DESC LIMIT 50"
    );
    let alarms: Vec<AlarmView> = sqlx::query_as(sqlx::AssertSqlSafe(alarms_sql))
        .bind(gateway_id)
        .bind(sensor_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(op))?;
    Ok(Some(SensorHistory {
        building_id: head.building_id,
        building_name: head.building_name,
        sensor: head.sensor.value(stale_after_ms, now_ms()),
        from: Time(from),
        to: Time(to),
        bucket_seconds: bucket,
        source,
        points,
        alarms,
    }))
}

/// A sensor's page head as read: its building and the sensor.
#[derive(Debug, FromRow)]
struct SensorHead {
    building_id: String,
    building_name: Option<String>,
    #[sqlx(flatten)]
    sensor: SensorRow,
}
