//! What the pages and the JSON API show, read from the central database: the buildings with
//! their gateways' health, one building's latest values, alarms and tenants, a sensor's history
//! in buckets, an alarm with its events and comments.
//!
//! Owns: every SQL statement of the web application and the types its answers are (the JSON API
//! serialises them as they are). Each view is a fixed number of statements whatever the number
//! of sensors, each served by an index (docs/central-web.md, "Queries"), run in one transaction
//! that names the request's session, so that the database shows only the buildings granted to
//! its user (row-level security, migration 5). Does not own: how they are shown (`pages`,
//! `plan`, `chart`) or assembling a building (`building`).

use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Transaction};

use super::time::{Time, now_ms};

/// Why a view could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A statement failed.
    #[error("{op} failed: {source}")]
    Database {
        /// What was being read.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl DataError {
    /// Whether PostgreSQL refused the request's data (SQLSTATE class 22, "data exception":
    /// a timestamp out of range, a NUL character), which is the client's mistake, not an
    /// outage.
    pub fn is_bad_input(&self) -> bool {
        let Self::Database { source, .. } = self;
        source
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|c| c.starts_with("22"))
    }
}

pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> DataError {
    move |source| DataError::Database { op, source }
}

/// Whose request a statement serves: the session, by the SHA-256 of its cookie's id. The
/// database limits every statement of the transaction to the buildings its user may see.
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a>(pub &'a [u8]);

/// Begins the request's transaction and names its session to the database
/// (`markoff.web_session`, local to the transaction, read by `markoff.web_buildings()`).
///
/// # Errors
/// [`DataError::Database`].
pub(crate) async fn begin(
    pool: &PgPool,
    viewer: Viewer<'_>,
) -> Result<Transaction<'static, Postgres>, DataError> {
    let op = "opening the request's transaction";
    let mut tx = pool.begin().await.map_err(db(op))?;
    sqlx::query("SELECT set_config('markoff.web_session', $1, true)")
        .bind(hex(viewer.0))
        .execute(&mut *tx)
        .await
        .map_err(db(op))?;
    Ok(tx)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Whether `id` can name a row at all: PostgreSQL text never holds a NUL character, so an id
/// with one names nothing (and sending it would be refused as a data exception).
pub(crate) fn possible_id(id: &str) -> bool {
    !id.contains('\0')
}

/// `ts` as ms since the epoch, in SQL.
macro_rules! ms {
    ($col:literal) => {
        concat!("(extract(epoch FROM ", $col, ") * 1000)::int8")
    };
}

mod alarm;
mod history;

pub(crate) use self::alarm::add_comment;
pub use self::alarm::{AlarmDetail, AlarmEvent, Comment, alarm};
pub use self::history::{
    HistoryPoint, RAW_RANGE_MAX_MS, SensorHistory, TEN_MINUTE_RANGE_MAX_MS, bucket_for,
    sensor_history,
};

/// Contact older than this means a gateway is offline (its metadata uploader records contact
/// every minute).
pub const OFFLINE_AFTER_SECONDS: f64 = 180.0;
/// Newest reading older than this, or this many rows not yet uploaded, means "lagging".
pub const LAGGING_SECONDS: f64 = 300.0;
/// See [`LAGGING_SECONDS`].
pub const LAGGING_ROWS: i64 = 100_000;

/// A gateway's health.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct GatewayHealth {
    /// The gateway.
    pub gateway_id: String,
    /// Its building.
    pub building_id: String,
    /// `ok`, `lagging`, `offline`, `never` (no contact yet) or `removed`.
    #[sqlx(skip)]
    pub status: &'static str,
    /// Whether it is still provisioned.
    pub active: bool,
    /// Last contact.
    pub last_contact: Option<Time>,
    /// Seconds since the last contact.
    #[sqlx(rename = "contact_age")]
    pub contact_age_seconds: Option<f64>,
    /// Highest reading seq that arrived.
    pub readings_seq: Option<i64>,
    /// Readings the gateway reported having and has not uploaded.
    pub lag_rows: Option<i64>,
    /// Age of the newest reading that arrived, seconds.
    pub lag_seconds: Option<f64>,
    /// Alarm events not uploaded yet.
    pub alarm_events_lag_rows: Option<i64>,
    /// Time of the newest reading that arrived.
    pub newest_reading: Option<Time>,
}

impl GatewayHealth {
    fn classified(mut self) -> Self {
        self.status = self.classify();
        self
    }

    fn classify(&self) -> &'static str {
        if !self.active {
            "removed"
        } else if self.contact_age_seconds.is_none() {
            "never"
        } else if self
            .contact_age_seconds
            .is_some_and(|a| a > OFFLINE_AFTER_SECONDS)
        {
            "offline"
        } else if self.lag_seconds.is_some_and(|s| s > LAGGING_SECONDS)
            || self.lag_rows.is_some_and(|n| n > LAGGING_ROWS)
        {
            "lagging"
        } else {
            "ok"
        }
    }
}

/// How bad a status is, for the worst of several.
pub(crate) fn status_rank(status: &str) -> u8 {
    match status {
        "ok" => 0,
        "lagging" => 1,
        "never" => 2,
        "offline" => 3,
        _ => 4,
    }
}

const HEALTH: &str = concat!(
    "SELECT gateway_id, building_id, active, ",
    ms!("last_contact"),
    " AS last_contact, extract(epoch FROM now() - last_contact)::float8 AS contact_age, \
     readings_seq, lag_rows, lag_seconds, alarm_events_lag_rows, ",
    ms!("newest_reading"),
    " AS newest_reading FROM markoff.gateway_health"
);

/// A building in the list.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct BuildingSummary {
    /// Id.
    pub building_id: String,
    /// Name from the site metadata, if any.
    pub name: Option<String>,
    /// Address, if any.
    pub address: Option<String>,
    /// The worst status of its active gateways (`removed` when none is active).
    #[sqlx(skip)]
    pub status: &'static str,
    /// Alarms not back to normal.
    pub active_alarms: i64,
    /// Of those, alarms waiting for acknowledgement.
    pub unacked_alarms: i64,
    /// Its gateways.
    #[sqlx(skip)]
    pub gateways: Vec<GatewayHealth>,
}

/// Every building the viewer may see with its gateways' health and alarm counts: two
/// statements.
///
/// # Errors
/// [`DataError::Database`].
pub async fn buildings(
    pool: &PgPool,
    viewer: Viewer<'_>,
) -> Result<Vec<BuildingSummary>, DataError> {
    let op = "listing buildings";
    let mut tx = begin(pool, viewer).await?;
    let list: Vec<BuildingSummary> = sqlx::query_as(
        "SELECT b.building_id, b.name, b.address, coalesce(a.active, 0) AS active_alarms, \
                coalesce(a.unacked, 0) AS unacked_alarms \
         FROM markoff.buildings b \
         LEFT JOIN (SELECT g.building_id, count(*) AS active, \
                           count(*) FILTER (WHERE l.state LIKE '%unacked') AS unacked \
                    FROM markoff.alarm_latest l JOIN markoff.gateways g USING (gateway_id) \
                    WHERE l.state <> 'normal' GROUP BY g.building_id) a USING (building_id) \
         ORDER BY lower(coalesce(b.name, b.building_id)), b.building_id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db(op))?;
    let mut gateways = health(&mut tx, None).await.map_err(db(op))?;
    Ok(list
        .into_iter()
        .map(|mut b| {
            b.gateways = gateways
                .extract_if(.., |g| g.building_id == b.building_id)
                .collect();
            b.status = worst(&b.gateways);
            b
        })
        .collect())
}

/// The health of the gateways of `building` (of every building the viewer may see when
/// `None`).
async fn health(
    conn: &mut PgConnection,
    building: Option<&str>,
) -> Result<Vec<GatewayHealth>, sqlx::Error> {
    let rows: Vec<GatewayHealth> = match building {
        Some(b) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{HEALTH} WHERE building_id = $1 ORDER BY gateway_id"
            )))
            .bind(b)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{HEALTH} ORDER BY building_id, gateway_id"
            )))
            .fetch_all(conn)
            .await?
        }
    };
    Ok(rows.into_iter().map(GatewayHealth::classified).collect())
}

/// The worst status of the active gateways.
pub(crate) fn worst(gateways: &[GatewayHealth]) -> &'static str {
    gateways
        .iter()
        .filter(|g| g.active)
        .map(|g| g.status)
        .max_by_key(|s| status_rank(s))
        .unwrap_or("removed")
}

/// A sensor with its newest reading.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorValue {
    /// The gateway that reads it.
    pub gateway_id: String,
    /// Its id on that gateway.
    pub sensor_id: i32,
    /// Its key (`f1.r101.temperature`); `None` when its metadata has not arrived.
    pub key: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Kind (`temperature`, ...).
    pub kind: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Floor id.
    pub floor: Option<String>,
    /// Room id.
    pub room: Option<String>,
    /// Time of the newest reading.
    pub ts: Option<Time>,
    /// Its value (`None` unless trustworthy).
    pub value: Option<f64>,
    /// `good`, `bad`, `stale` or `comm_error`.
    pub quality: Option<&'static str>,
    /// Older than the configured `stale_after`, or never reported.
    pub stale: bool,
    /// The state of its most urgent open alarm, if any.
    pub alarm: Option<String>,
}

impl SensorValue {
    /// What the pages call it.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| self.key.clone())
            .unwrap_or_else(|| format!("sensor {}", self.sensor_id))
    }

    /// A value fit for colouring: present, good and fresh.
    pub fn fresh_value(&self) -> Option<f64> {
        (!self.stale && self.quality == Some("good"))
            .then_some(self.value)
            .flatten()
    }
}

pub(crate) fn quality_name(q: Option<i16>) -> Option<&'static str> {
    q.map(|q| match q {
        0 => "good",
        1 => "bad",
        2 => "stale",
        _ => "comm_error",
    })
}

/// A sensor and its newest reading as read.
#[derive(Debug, FromRow)]
struct SensorRow {
    gateway_id: String,
    sensor_id: i32,
    key: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    unit: Option<String>,
    floor: Option<String>,
    room: Option<String>,
    ts: Option<Time>,
    value: Option<f64>,
    quality: Option<i16>,
}

impl SensorRow {
    fn value(self, stale_after_ms: i64, now: i64) -> SensorValue {
        SensorValue {
            stale: self.ts.is_none_or(|t| now - t.0 > stale_after_ms),
            gateway_id: self.gateway_id,
            sensor_id: self.sensor_id,
            key: self.key,
            name: self.name,
            kind: self.kind,
            unit: self.unit,
            floor: self.floor,
            room: self.room,
            ts: self.ts,
            value: self.value,
            quality: quality_name(self.quality),
            alarm: None,
        }
    }
}

/// The sensors of a building's gateways with their newest readings, plus readings of sensors
/// whose metadata has not arrived: one statement over the primary keys of `sensors` and
/// `sensor_latest` (by gateway).
const LATEST: &str = concat!(
    "SELECT s.gateway_id, s.sensor_id, s.key, s.name, s.kind, s.unit, s.floor, s.room, ",
    ms!("l.ts"),
    " AS ts, l.value, l.quality \
     FROM markoff.gateways g \
     JOIN markoff.sensors s ON s.gateway_id = g.gateway_id \
     LEFT JOIN markoff.sensor_latest l ON l.gateway_id = s.gateway_id AND l.sensor_id = s.sensor_id \
     WHERE g.building_id = $1 \
     UNION ALL \
     SELECT l.gateway_id, l.sensor_id, NULL, NULL, NULL, NULL, NULL, NULL, ",
    ms!("l.ts"),
    ", l.value, l.quality \
     FROM markoff.gateways g JOIN markoff.sensor_latest l ON l.gateway_id = g.gateway_id \
     WHERE g.building_id = $1 AND NOT EXISTS (SELECT 1 FROM markoff.sensors s \
         WHERE s.gateway_id = l.gateway_id AND s.sensor_id = l.sensor_id)"
);

/// An alarm: its newest event and its acknowledgement.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct AlarmView {
    /// The gateway that raised it.
    pub gateway_id: String,
    /// Its id on that gateway.
    pub alarm_id: i64,
    /// Its name (`high/f1.r101.temperature`).
    pub alarm: String,
    /// Its rule kind.
    pub rule: String,
    /// The sensor key, if any.
    pub sensor: Option<String>,
    /// The newest event (`raised`, `acked`, `cleared`, ...).
    pub event: String,
    /// ISA-18.2 state: `active_unacked`, `active_acked`, `cleared_unacked` or `normal`.
    pub state: String,
    /// Severity.
    pub severity: String,
    /// The value at the newest event.
    pub value: Option<f64>,
    /// The newest event's message.
    pub message: String,
    /// Time of the newest event.
    pub ts: Time,
    /// When it was last raised.
    pub raised_at: Option<Time>,
    /// When it was acknowledged since it was last raised.
    pub acked_at: Option<Time>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// Comments from the office.
    pub comments: i64,
    /// Actions asked for from the office that its gateway has not answered yet (`ack`,
    /// `shelve`), oldest first.
    pub pending: Vec<String>,
}

const ALARM_COLUMNS: &str = concat!(
    "a.gateway_id, a.alarm_id, a.alarm, a.rule, a.sensor, a.event, a.state, a.severity, a.value, \
     a.message, ",
    ms!("a.ts"),
    " AS ts, ",
    ms!("a.raised_at"),
    " AS raised_at, ",
    ms!("a.acked_at"),
    " AS acked_at, a.acked_by, \
     (SELECT count(*) FROM markoff.alarm_comments c \
      WHERE c.gateway_id = a.gateway_id AND c.alarm_id = a.alarm_id) AS comments, \
     ARRAY(SELECT r.action FROM markoff.office_requests r \
      WHERE r.gateway_id = a.gateway_id AND r.alarm_id = a.alarm_id AND r.state = 'pending' \
      ORDER BY r.request_id) AS pending"
);

/// A floor row: (floor_id, name, level, width, height).
pub(crate) type FloorRowTuple = (String, String, Option<i32>, Option<f64>, Option<f64>);
/// A room row: (room_id, floor_id, name, tenant_id, polygon as JSON text).
pub(crate) type RoomRowTuple = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// Everything read for one building, before it is laid out by floor and room.
#[derive(Debug)]
pub(crate) struct BuildingRows {
    pub(crate) name: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) gateways: Vec<GatewayHealth>,
    pub(crate) floors: Vec<FloorRowTuple>,
    pub(crate) rooms: Vec<RoomRowTuple>,
    /// (tenant_id, name)
    pub(crate) tenants: Vec<(String, String)>,
    pub(crate) sensors: Vec<SensorValue>,
    /// Open alarms, then alarms back to normal within the last 7 days (at most 50).
    pub(crate) alarms: Vec<AlarmView>,
}

/// Reads one building: seven statements in the viewer's transaction, none per sensor; `None`
/// when no such building exists or the viewer may not see it.
///
/// # Errors
/// [`DataError::Database`].
pub(crate) async fn building_rows(
    pool: &PgPool,
    viewer: Viewer<'_>,
    building_id: &str,
    stale_after_ms: i64,
) -> Result<Option<BuildingRows>, DataError> {
    let op = "reading the building";
    if !possible_id(building_id) {
        return Ok(None);
    }
    let mut tx = begin(pool, viewer).await?;
    let head: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT name, address FROM markoff.buildings WHERE building_id = $1")
            .bind(building_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(op))?;
    let Some((name, address)) = head else {
        return Ok(None);
    };
    let gateways = health(&mut tx, Some(building_id)).await.map_err(db(op))?;
    let floors: Vec<FloorRowTuple> = sqlx::query_as(
        "SELECT floor_id, name, level, width, height FROM markoff.floors WHERE building_id = $1",
    )
    .bind(building_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db(op))?;
    let rooms: Vec<RoomRowTuple> = sqlx::query_as(
        "SELECT room_id, floor_id, name, tenant_id, polygon::text FROM markoff.rooms \
         WHERE building_id = $1 ORDER BY room_id",
    )
    .bind(building_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db(op))?;
    let tenants: Vec<(String, String)> = sqlx::query_as(
        "SELECT tenant_id, name FROM markoff.tenants WHERE building_id = $1 ORDER BY name",
    )
    .bind(building_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db(op))?;
    let sensors: Vec<SensorRow> = sqlx::query_as(LATEST)
        .bind(building_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(op))?;
    let alarms_sql = format!(
        "SELECT {ALARM_COLUMNS} FROM markoff.gateways g \
         JOIN markoff.alarm_latest a ON a.gateway_id = g.gateway_id \
         WHERE g.building_id = $1 AND (a.state <> 'normal' OR a.ts > now() - interval '7 days') \
         ORDER BY a.state = 'normal', a.ts DESC LIMIT 500"
    );
    let mut alarms: Vec<AlarmView> = sqlx::query_as(sqlx::AssertSqlSafe(alarms_sql))
        .bind(building_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(op))?;
    let recent = alarms.iter().filter(|a| a.state == "normal").count();
    if recent > 50 {
        let open = alarms.len() - recent;
        alarms.truncate(open + 50);
    }
    let now = now_ms();
    Ok(Some(BuildingRows {
        name,
        address,
        gateways,
        floors,
        rooms,
        tenants,
        sensors: sensors
            .into_iter()
            .map(|r| r.value(stale_after_ms, now))
            .collect(),
        alarms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_named_in_lower_case_hex() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn buckets_keep_charts_small() {
        let day = 86_400_000;
        assert_eq!(bucket_for(3_600_000, 400), 10);
        assert_eq!(bucket_for(3 * 3_600_000, 400), 30);
        assert_eq!(
            bucket_for(day, 400),
            600,
            "the rollup's 10 minutes past 3 hours"
        );
        assert_eq!(bucket_for(7 * day, 400), 1800);
        assert_eq!(
            bucket_for(30 * day, 400),
            7200,
            "a month still from the 10 minutes"
        );
        assert_eq!(bucket_for(33 * day, 400), 86_400, "past 32 days whole days");
        assert_eq!(bucket_for(365 * day, 400), 86_400);
        assert_eq!(bucket_for(0, 400), 1);
    }
}
