//! Alarm endpoints of the local HTTP API, used by `markoff alarms`, `markoff ack` and the LAN page.
//!
//! - `GET /api/v1/alarms[?all=true]`: open alarms (active or unacknowledged), or every alarm.
//! - `POST /api/v1/alarms/{id}/ack`, `.../shelve`, `.../unshelve`, `.../out-of-service`: the
//!   caller the transport established acts (see `super::api_auth`: the socket's peer uid, or a
//!   bearer token); only operators may. A `user` or `channel` in the body is ignored. Every
//!   attempt, allowed or refused, is in the audit log with that identity and transport.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::alarms::AlarmError;
use crate::alarms::engine::Refusal;
use crate::context::Core;
use crate::model::Actor;

/// Query of `GET /api/v1/alarms`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    all: Option<bool>,
}

/// Body of the action endpoints.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Shelve: how long ("30m", "2h").
    #[serde(default)]
    pub duration: Option<String>,
    /// Out-of-service: take out (`true`) or put back (`false`).
    #[serde(default)]
    pub enabled: Option<bool>,
}

pub(crate) async fn list(State(core): State<Core>, Query(q): Query<ListQuery>) -> Response {
    Json(core.alarms.list(!q.all.unwrap_or(false))).into_response()
}

pub(crate) async fn act(
    State(core): State<Core>,
    Path((id, action)): Path<(i64, String)>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<ActionRequest>,
) -> Response {
    let result = match action.as_str() {
        "ack" => core.alarms.ack(id, actor).await,
        "unshelve" => core.alarms.unshelve(id, actor).await,
        "shelve" => {
            let Some(d) = req.duration.as_deref().and_then(parse_duration) else {
                return (
                    StatusCode::BAD_REQUEST,
                    "shelve needs \"duration\", e.g. \"30m\" (at most 7 days)\n",
                )
                    .into_response();
            };
            core.alarms.shelve(id, d, actor).await
        }
        "out-of-service" => {
            core.alarms
                .set_out_of_service(id, req.enabled.unwrap_or(true), actor)
                .await
        }
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}; one of ack, shelve, unshelve, out-of-service\n"),
            )
                .into_response();
        }
    };
    match result {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => refusal(&e),
    }
}

/// The HTTP answer to a refused or failed alarm action.
pub(crate) fn refusal(e: &AlarmError) -> Response {
    let code = match e {
        AlarmError::Refused(Refusal::Unknown(_)) => StatusCode::NOT_FOUND,
        AlarmError::Refused(Refusal::Forbidden { .. }) => StatusCode::FORBIDDEN,
        AlarmError::Refused(Refusal::NotApplicable { .. }) => StatusCode::CONFLICT,
        AlarmError::NotRunning => StatusCode::SERVICE_UNAVAILABLE,
        AlarmError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, format!("{e}\n")).into_response()
}

/// A shelving duration: 1 minute to 7 days.
fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim())
        .ok()
        .filter(|d| *d >= Duration::from_secs(60) && *d <= Duration::from_secs(7 * 86_400))
}
