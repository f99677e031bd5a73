//! Render endpoints of the local HTTP API (routes in `crate::channels::http`), used by
//! `markoff render` and the LAN page:
//!
//! - `GET /api/v1/render/plan?floor=3[&measure=temperature|humidity|co2][&lang=en|ru][&width=1200]`
//! - `GET /api/v1/render/chart?sensor=S[&since=24h][&lang=en|ru][&width=1200][&height=600]`
//!
//! Both answer `image/png`, or a one-line text error in the asked language: 404 for an unknown
//! floor or sensor or no data, 400 for a bad parameter, 500/503 when the gateway failed.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{CHART_SIZE, Measure, PLAN_WIDTH, RenderError};
use crate::context::Core;
use crate::model::Lang;

/// Query of `GET /api/v1/render/plan`.
#[derive(Debug, Deserialize)]
pub(crate) struct PlanQuery {
    floor: String,
    #[serde(default)]
    measure: Measure,
    #[serde(default)]
    lang: Lang,
    width: Option<u32>,
}

/// Query of `GET /api/v1/render/chart`.
#[derive(Debug, Deserialize)]
pub(crate) struct ChartQuery {
    sensor: String,
    since: Option<String>,
    #[serde(default)]
    lang: Lang,
    width: Option<u32>,
    height: Option<u32>,
}

/// Default period of a chart.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);

pub(crate) async fn plan(State(core): State<Core>, Query(q): Query<PlanQuery>) -> Response {
    let width = q.width.unwrap_or(PLAN_WIDTH);
    if !(320..=4000).contains(&width) {
        return text(
            StatusCode::BAD_REQUEST,
            "width must be between 320 and 4000".to_owned(),
        );
    }
    respond(
        super::plan_png_sized(&core, &q.floor, q.measure, q.lang, width).await,
        q.lang,
    )
}

pub(crate) async fn chart(State(core): State<Core>, Query(q): Query<ChartQuery>) -> Response {
    let since = match q
        .since
        .as_deref()
        .map(|s| humantime::parse_duration(s.trim()))
    {
        None => DEFAULT_SINCE,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("since: {e} (write a period such as \"24h\" or \"7d\")"),
            );
        }
    };
    let size = (
        q.width.unwrap_or(CHART_SIZE.0),
        q.height.unwrap_or(CHART_SIZE.1),
    );
    if !(320..=4000).contains(&size.0) || !(200..=3000).contains(&size.1) {
        return text(
            StatusCode::BAD_REQUEST,
            "width must be between 320 and 4000, height between 200 and 3000".to_owned(),
        );
    }
    respond(
        super::chart_png_sized(&core, &q.sensor, since, q.lang, size).await,
        q.lang,
    )
}

fn respond(result: Result<Vec<u8>, RenderError>, lang: Lang) -> Response {
    match result {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            png,
        )
            .into_response(),
        Err(e) => {
            let status = match &e {
                RenderError::UnknownFloor { .. }
                | RenderError::UnknownSensor { .. }
                | RenderError::NoData { .. } => StatusCode::NOT_FOUND,
                RenderError::BadPeriod { .. } => StatusCode::BAD_REQUEST,
                RenderError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                RenderError::Font
                | RenderError::Chart(_)
                | RenderError::Encode(_)
                | RenderError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if !e.is_request_error() {
                tracing::warn!(error = %super::chain(&e), "Rendering failed.");
            }
            text(status, e.message(lang))
        }
    }
}

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}
