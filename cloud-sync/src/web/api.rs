//! The JSON API: the same data as every page, for scripts and other tools. Every route needs a
//! session (the cookie from the login form); the one write, adding a comment, also needs the
//! session's CSRF token in `X-CSRF-Token` (from `GET /api/me`).
//!
//! Owns: the routes' shapes and status codes. Does not own: the data (`data`, `building`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::AppState;
use super::building::assemble;
use super::data::{self, DataError, Viewer};
use super::session::{self, Session};
use super::time::{Time, now_ms};

/// The header a JSON write carries its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Longest history range, days.
const MAX_RANGE_DAYS: u64 = 400;
/// Latest `to` of a history range, ms since the epoch (9999-12-31T23:59:59.999Z): the end of
/// the years PostgreSQL and the pages write with four digits.
const MAX_TO_MS: i64 = 253_402_300_799_999;

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) fn failed(e: &DataError) -> Response {
    if e.is_bad_input() {
        tracing::warn!(error = %e, "A request's data was refused by the database.");
        return error(
            StatusCode::BAD_REQUEST,
            "the request's values are out of range",
        );
    }
    tracing::error!(error = %e, "A query failed.");
    error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
}

/// `?range=7d&to=<ms>&points=400` of a history.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeQuery {
    /// Length of the range (`1h`, `24h`, `7d`; default 24h).
    pub(crate) range: Option<String>,
    /// End of the range, ms since the epoch (default now).
    pub(crate) to: Option<i64>,
    /// Most buckets (default 400, at most 2000).
    pub(crate) points: Option<i64>,
}

impl RangeQuery {
    /// `(from, to, points)`, or why the query is wrong.
    pub(crate) fn resolve(&self) -> Result<(i64, i64, i64), String> {
        let text = self.range.as_deref().unwrap_or("24h");
        let len = humantime::parse_duration(text)
            .map_err(|e| format!("range {text:?}: {e} (e.g. \"24h\" or \"7d\")"))?;
        if len.is_zero() || len.as_secs() > MAX_RANGE_DAYS * 86_400 {
            return Err(format!(
                "range must be between 1s and {MAX_RANGE_DAYS} days"
            ));
        }
        let to = self.to.unwrap_or_else(now_ms);
        if !(0..=MAX_TO_MS).contains(&to) {
            return Err(format!(
                "to must be between 0 and {MAX_TO_MS} (ms since 1970-01-01 UTC)"
            ));
        }
        let len_ms = i64::try_from(len.as_millis()).unwrap_or(i64::MAX);
        let points = self.points.unwrap_or(400).clamp(10, 2000);
        Ok((to.saturating_sub(len_ms), to, points))
    }
}

/// GET /api/me: the signed-in user and the session's CSRF token.
pub(crate) async fn me(Extension(s): Extension<Session>) -> Response {
    Json(json!({
        "login": s.login,
        "name": s.name,
        "csrf_token": s.csrf,
        "expires_at": Time(s.expires_at),
    }))
    .into_response()
}

/// GET /api/status: the server's version and its login counters.
pub(crate) async fn status(State(st): State<AppState>) -> Response {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "login": st.limiter.stats(Instant::now()),
        "pool": { "size": st.pool.size(), "idle": st.pool.num_idle() },
    }))
    .into_response()
}

/// GET /api/buildings: every building with its gateways' health and alarm counts.
pub(crate) async fn buildings(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    match data::buildings(&st.pool, Viewer(&s.id_hash)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => failed(&e),
    }
}

/// GET /api/buildings/{building}: floors, rooms, latest values, alarms, tenants.
pub(crate) async fn building(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    match data::building_rows(&st.pool, Viewer(&s.id_hash), &id, stale_ms(&st)).await {
        Ok(Some(rows)) => Json(assemble(&id, rows)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such building"),
        Err(e) => failed(&e),
    }
}

pub(crate) fn stale_ms(st: &AppState) -> i64 {
    i64::try_from(st.cfg.stale_after.as_millis()).unwrap_or(i64::MAX)
}

/// GET /api/sensors/{gateway}/{sensor}: the sensor, its history in buckets, its alarms.
pub(crate) async fn sensor(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, sensor)): Path<(String, i32)>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (from, to, points) = match q.resolve() {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    match data::sensor_history(
        &st.pool,
        Viewer(&s.id_hash),
        &gateway,
        sensor,
        from,
        to,
        points,
        stale_ms(&st),
    )
    .await
    {
        Ok(Some(h)) => Json(h).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such sensor"),
        Err(e) => failed(&e),
    }
}

/// GET /api/alarms/{gateway}/{alarm}: the alarm, its events and comments.
pub(crate) async fn alarm(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, alarm)): Path<(String, i64)>,
) -> Response {
    match data::alarm(&st.pool, Viewer(&s.id_hash), &gateway, alarm).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such alarm"),
        Err(e) => failed(&e),
    }
}

/// The body of a new comment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewComment {
    body: String,
}

/// A comment's text, trimmed, if acceptable.
pub(crate) fn comment_text(body: &str) -> Result<&str, &'static str> {
    let b = body.trim();
    if b.is_empty() {
        Err("the comment is empty")
    } else if b.contains('\0') {
        Err("the comment contains a NUL character")
    } else if b.chars().count() > 4000 {
        Err("the comment is longer than 4000 characters")
    } else {
        Ok(b)
    }
}

/// POST /api/alarms/{gateway}/{alarm}/comments `{"body": "..."}` with `X-CSRF-Token`: 201 and
/// the comment.
pub(crate) async fn add_comment(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, alarm)): Path<(String, i64)>,
    headers: HeaderMap,
    Json(c): Json<NewComment>,
) -> Response {
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !session::same(token, &s.csrf) {
        return error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
    }
    let body = match comment_text(&c.body) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    match data::add_comment(
        &st.pool,
        Viewer(&s.id_hash),
        &gateway,
        alarm,
        s.user_id,
        &s.name,
        body,
    )
    .await
    {
        Ok(Some(c)) => {
            tracing::info!(login = %s.login, gateway = %gateway, alarm, "Alarm comment added.");
            (StatusCode::CREATED, Json(c)).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such alarm"),
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve() {
        let q = RangeQuery {
            range: Some("7d".into()),
            to: Some(1_000_000_000_000),
            points: None,
        };
        assert_eq!(
            q.resolve(),
            Ok((1_000_000_000_000 - 7 * 86_400_000, 1_000_000_000_000, 400))
        );
        let bad = RangeQuery {
            range: Some("forever".into()),
            ..RangeQuery::default()
        };
        assert!(bad.resolve().is_err());
        let long = RangeQuery {
            range: Some("1000d".into()),
            ..RangeQuery::default()
        };
        assert!(long.resolve().is_err());
        for to in [-99_999_999_999_999_999, -1, MAX_TO_MS + 1, i64::MAX] {
            let q = RangeQuery {
                to: Some(to),
                ..RangeQuery::default()
            };
            assert!(q.resolve().is_err(), "to={to}");
        }
        assert!(comment_text("a\0b").is_err());
        assert_eq!(comment_text("  hi "), Ok("hi"));
        assert!(comment_text("   ").is_err());
    }
}
