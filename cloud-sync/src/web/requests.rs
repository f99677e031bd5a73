//! Acknowledging and shelving alarms from the office. The web application only records the
//! request (`markoff.office_request`, as the session's user, on a building granted to them);
//! the alarm's gateway pulls it on its next sync, applies it through its own alarm engine and
//! answers it, and the acknowledgement comes back as the alarm's events. Until then the pages
//! show the request as waiting for the gateway.
//!
//! Owns: the request routes (form and JSON), their validation, and the statements on
//! `markoff.office_requests`. Does not own: the pages around them (`pages`).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgPool};

use super::AppState;
use super::api::{self, CSRF_HEADER};
use super::data::{DataError, Viewer, begin, db, possible_id};
use super::pages;
use super::session::{self, Session};
use super::time::Time;
use super::words::Ui;

/// Shortest and longest shelving the office may ask for.
const SHELVE_MIN: Duration = Duration::from_secs(60);
const SHELVE_MAX: Duration = Duration::from_secs(7 * 86_400);

/// One request from the office on an alarm.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct OfficeRequest {
    /// Its id.
    pub request_id: i64,
    /// `ack` or `shelve`.
    pub action: String,
    /// How long to shelve, seconds.
    pub shelve_seconds: Option<i32>,
    /// Who asked (login).
    pub login: String,
    /// Their name at the time.
    pub display_name: String,
    /// When.
    pub requested_at: Time,
    /// `pending` (the gateway has not answered yet), `done` or `refused`.
    pub state: String,
    /// The gateway user it was applied as.
    pub actor: Option<String>,
    /// Why the gateway refused it.
    pub detail: Option<String>,
    /// When the gateway's answer arrived.
    pub answered_at: Option<Time>,
}

/// The newest 50 requests on an alarm, newest first, in the request's transaction.
pub(crate) async fn of_alarm(
    conn: &mut PgConnection,
    gateway_id: &str,
    alarm_id: i64,
) -> Result<Vec<OfficeRequest>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, action, shelve_seconds, login, display_name, \
                (extract(epoch FROM requested_at) * 1000)::int8 AS requested_at, state, actor, \
                detail, (extract(epoch FROM answered_at) * 1000)::int8 AS answered_at \
         FROM markoff.office_requests WHERE gateway_id = $1 AND alarm_id = $2 \
         ORDER BY request_id DESC LIMIT 50",
    )
    .bind(gateway_id)
    .bind(alarm_id)
    .fetch_all(conn)
    .await
}

/// What is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Acknowledge.
    Ack,
    /// Shelve for this long.
    Shelve(Duration),
}

impl Action {
    /// From the form's or the JSON's `action` and `duration` (`"8h"`).
    pub(crate) fn parse(action: &str, duration: Option<&str>) -> Result<Self, String> {
        match action {
            "ack" => Ok(Self::Ack),
            "shelve" => {
                let text = duration.unwrap_or("").trim();
                let d = humantime::parse_duration(text)
                    .map_err(|e| format!("shelve duration {text:?}: {e} (e.g. \"8h\")"))?;
                if d < SHELVE_MIN || d > SHELVE_MAX {
                    return Err("a shelving lasts from 1 minute to 7 days".to_owned());
                }
                Ok(Self::Shelve(d))
            }
            other => Err(format!(
                "unknown action {other:?}: expected \"ack\" or \"shelve\""
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Shelve(_) => "shelve",
        }
    }

    fn seconds(self) -> Option<i32> {
        match self {
            Self::Ack => None,
            Self::Shelve(d) => i32::try_from(d.as_secs()).ok(),
        }
    }
}

/// Records a request as the viewer's user; the request (the pending one already there for the
/// same action, else a new one), or `None` when the viewer may not see such an alarm.
///
/// # Errors
/// [`DataError::Database`].
pub(crate) async fn ask(
    pool: &PgPool,
    viewer: Viewer<'_>,
    gateway_id: &str,
    alarm_id: i64,
    action: Action,
) -> Result<Option<OfficeRequest>, DataError> {
    let op = "recording the request";
    if !possible_id(gateway_id) {
        return Ok(None);
    }
    let mut tx = begin(pool, viewer).await?;
    let id: Option<i64> = sqlx::query_scalar("SELECT markoff.office_request($1, $2, $3, $4)")
        .bind(gateway_id)
        .bind(alarm_id)
        .bind(action.name())
        .bind(action.seconds())
        .fetch_one(&mut *tx)
        .await
        .map_err(db(op))?;
    let Some(id) = id else {
        return Ok(None);
    };
    let request = of_alarm(&mut tx, gateway_id, alarm_id)
        .await
        .map_err(db(op))?
        .into_iter()
        .find(|r| r.request_id == id);
    tx.commit().await.map_err(db(op))?;
    Ok(request)
}

/// The form on the alarm page.
#[derive(Debug, Deserialize)]
pub(crate) struct RequestForm {
    csrf: String,
    action: String,
    #[serde(default)]
    duration: Option<String>,
}

/// POST /alarms/{gateway}/{alarm}/requests (form): records the request, back to the alarm.
pub(crate) async fn form(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
    Path((gateway, alarm)): Path<(String, i64)>,
    Form(f): Form<RequestForm>,
) -> Response {
    if !session::same(&s.csrf, &f.csrf) {
        return pages::page_error(
            &ui,
            StatusCode::FORBIDDEN,
            ui.t(
                "The form is not valid for this session; reload the page.",
                "Форма недействительна для этого сеанса; обновите страницу.",
            ),
        );
    }
    let action = match Action::parse(&f.action, f.duration.as_deref()) {
        Ok(a) => a,
        Err(m) => return pages::page_error(&ui, StatusCode::UNPROCESSABLE_ENTITY, &m),
    };
    match ask(&st.pool, Viewer(&s.id_hash), &gateway, alarm, action).await {
        Ok(Some(r)) => {
            tracing::info!(login = %s.login, gateway = %gateway, alarm, action = %r.action, request = r.request_id, "Alarm action requested from the office.");
            Redirect::to(&format!("/alarms/{gateway}/{alarm}#requests")).into_response()
        }
        Ok(None) => pages::not_found(&ui, "No such alarm.", "Такой тревоги нет."),
        Err(e) => pages::failed(&ui, &e),
    }
}

/// The JSON body: `{"action": "ack"}` or `{"action": "shelve", "duration": "8h"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestBody {
    action: String,
    #[serde(default)]
    duration: Option<String>,
}

/// POST /api/alarms/{gateway}/{alarm}/requests with `X-CSRF-Token`: 202 and the request.
pub(crate) async fn json(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, alarm)): Path<(String, i64)>,
    headers: HeaderMap,
    Json(b): Json<RequestBody>,
) -> Response {
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !session::same(token, &s.csrf) {
        return api::error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
    }
    let action = match Action::parse(&b.action, b.duration.as_deref()) {
        Ok(a) => a,
        Err(m) => return api::error(StatusCode::UNPROCESSABLE_ENTITY, &m),
    };
    match ask(&st.pool, Viewer(&s.id_hash), &gateway, alarm, action).await {
        Ok(Some(r)) => {
            tracing::info!(login = %s.login, gateway = %gateway, alarm, action = %r.action, request = r.request_id, "Alarm action requested from the office.");
            (StatusCode::ACCEPTED, Json(r)).into_response()
        }
        Ok(None) => api::error(StatusCode::NOT_FOUND, "no such alarm"),
        Err(e) => api::failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse() {
        assert_eq!(Action::parse("ack", None), Ok(Action::Ack));
        assert_eq!(
            Action::parse("shelve", Some("8h")),
            Ok(Action::Shelve(Duration::from_secs(8 * 3600)))
        );
        assert!(Action::parse("shelve", None).is_err());
        assert!(Action::parse("shelve", Some("10s")).is_err());
        assert!(Action::parse("shelve", Some("30d")).is_err());
        assert!(Action::parse("delete", None).is_err());
    }
}
