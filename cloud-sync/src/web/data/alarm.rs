//! An alarm's page: its events and comments, and adding a comment.

use super::*;

/// One event of an alarm.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct AlarmEvent {
    /// The gateway's event seq.
    pub seq: i64,
    /// When.
    pub ts: Time,
    /// `raised`, `acked`, ...
    pub event: String,
    /// State after it.
    pub state: String,
    /// Value at the time.
    pub value: Option<f64>,
    /// Message.
    pub message: String,
    /// Who acted (acknowledgement, shelving).
    pub actor: Option<String>,
    /// Through which channel.
    pub channel: Option<String>,
}

/// A comment from the office on an alarm.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct Comment {
    /// Id.
    pub comment_id: i64,
    /// Who wrote it (name at the time).
    pub author: String,
    /// Text.
    pub body: String,
    /// When.
    pub created_at: Time,
}

/// An alarm's page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmDetail {
    /// The building.
    pub building_id: String,
    /// Its name.
    pub building_name: Option<String>,
    /// The alarm now.
    pub alarm: AlarmView,
    /// The sensor's id on its gateway, when known.
    pub sensor_id: Option<i32>,
    /// Its newest 200 events, newest first.
    pub events: Vec<AlarmEvent>,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
    /// Its gateway's last contact with the centre.
    pub gateway_last_contact: Option<Time>,
    /// Acknowledgements and shelvings asked for from the office, newest first (at most 50).
    pub requests: Vec<crate::web::requests::OfficeRequest>,
}

/// An alarm with its events and comments; `None` when unknown or the viewer may not see it.
///
/// # Errors
/// [`DataError::Database`].
pub async fn alarm(
    pool: &PgPool,
    viewer: Viewer<'_>,
    gateway_id: &str,
    alarm_id: i64,
) -> Result<Option<AlarmDetail>, DataError> {
    let op = "reading the alarm";
    if !possible_id(gateway_id) {
        return Ok(None);
    }
    let mut tx = begin(pool, viewer).await?;
    let head_sql = format!(
        "SELECT {ALARM_COLUMNS}, g.building_id, b.name AS building_name, \
                (extract(epoch FROM g.last_contact) * 1000)::int8 AS gateway_last_contact, \
                (SELECT s.sensor_id FROM markoff.sensors s \
                 WHERE s.gateway_id = a.gateway_id AND s.key = a.sensor LIMIT 1) AS sensor_id \
         FROM markoff.alarm_latest a JOIN markoff.gateways g USING (gateway_id) \
         JOIN markoff.buildings b ON b.building_id = g.building_id \
         WHERE a.gateway_id = $1 AND a.alarm_id = $2"
    );
    let head: Option<AlarmHead> = sqlx::query_as(sqlx::AssertSqlSafe(head_sql))
        .bind(gateway_id)
        .bind(alarm_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(op))?;
    let Some(head) = head else {
        return Ok(None);
    };
    let events: Vec<AlarmEvent> = sqlx::query_as(concat!(
        "SELECT seq, ",
        ms!("ts"),
        " AS ts, event, state, value, message, actor, channel FROM markoff.alarm_events \
         WHERE gateway_id = $1 AND alarm_id = $2 ORDER BY seq DESC LIMIT 200"
    ))
    .bind(gateway_id)
    .bind(alarm_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db(op))?;
    let comments: Vec<Comment> = sqlx::query_as(concat!(
        "SELECT comment_id, author, body, ",
        ms!("created_at"),
        " AS created_at FROM markoff.alarm_comments WHERE gateway_id = $1 AND alarm_id = $2 \
         ORDER BY created_at, comment_id"
    ))
    .bind(gateway_id)
    .bind(alarm_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db(op))?;
    let requests = crate::web::requests::of_alarm(&mut tx, gateway_id, alarm_id)
        .await
        .map_err(db(op))?;
    Ok(Some(AlarmDetail {
        building_id: head.building_id,
        building_name: head.building_name,
        alarm: head.alarm,
        sensor_id: head.sensor_id,
        events,
        comments,
        gateway_last_contact: head.gateway_last_contact,
        requests,
    }))
}

/// An alarm's page head as read.
#[derive(Debug, FromRow)]
struct AlarmHead {
    #[sqlx(flatten)]
    alarm: AlarmView,
    building_id: String,
    building_name: Option<String>,
    gateway_last_contact: Option<Time>,
    sensor_id: Option<i32>,
}

/// Adds a comment to an alarm the viewer may see; `None` when there is no such alarm for them
/// (the database refuses a comment on another building's alarm as well).
///
/// # Errors
/// [`DataError::Database`].
pub(crate) async fn add_comment(
    pool: &PgPool,
    viewer: Viewer<'_>,
    gateway_id: &str,
    alarm_id: i64,
    user_id: i64,
    author: &str,
    body: &str,
) -> Result<Option<Comment>, DataError> {
    let op = "adding the comment";
    if !possible_id(gateway_id) {
        return Ok(None);
    }
    let mut tx = begin(pool, viewer).await?;
    let comment: Option<Comment> = sqlx::query_as(concat!(
        "INSERT INTO markoff.alarm_comments (gateway_id, alarm_id, user_id, author, body) \
         SELECT gateway_id, alarm_id, $3, $4, $5 FROM markoff.alarm_latest \
         WHERE gateway_id = $1 AND alarm_id = $2 \
         RETURNING comment_id, author, body, ",
        ms!("created_at"),
        " AS created_at"
    ))
    .bind(gateway_id)
    .bind(alarm_id)
    .bind(user_id)
    .bind(author)
    .bind(body)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db(op))?;
    tx.commit().await.map_err(db(op))?;
    Ok(comment)
}
