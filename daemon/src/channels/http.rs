//! The local HTTP API (axum), loopback by default.
//!
//! - `GET /health`: 200 while the process serves requests.
//! - `GET /ready`: 200 once the store is open and the sources are built, 503 before.
//! - `GET /metrics`: OpenMetrics for clients that ask for it (the Prometheus server), else the
//!   Prometheus text format 0.0.4.
//! - `GET /api/v1/status`: the structured status (`markoff status`).
//! - `GET /api/v1/readings`: latest value of every sensor (`markoff readings`).
//! - `GET /api/v1/readings/{sensor}?limit=N`: one sensor's metadata, latest value and recent history.
//! - `GET /api/v1/sync`: per-stream sync to the centre (`markoff sync status`).
//! - `GET /api/v1/modbus/holes`, `POST /api/v1/modbus/holes/forget`: learned Modbus address
//!   holes (`markoff modbus holes`, see `crate::sources::modbus::holes`); a forget needs an
//!   operator or an administrator.
//! - `/api/v1/alarms...`: alarms and operator actions (see `super::alarms_api`).
//! - `GET /api/v1/render/plan`, `GET /api/v1/render/chart`: PNG pictures (see `crate::render::api`).
//! - `POST /api/v1/ask`, `/api/v1/ask/confirm`: the assistant (see `super::agent_api`).
//!
//! Served on loopback TCP (`[http] listen`) and on a Unix socket (`[http] socket`). Reads need
//! nothing; every `POST` needs a caller established by the transport (see `super::api_auth`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::api_auth::{ApiTokens, Gate, require_caller};
use super::conn::{self, Acceptor, Limits};
use crate::agent::Agent;
use crate::context::Core;
use crate::model::{Quality, Timestamp};
use crate::service::supervisor::TaskError;
use crate::store::HistoryRow;

/// One sensor's latest value, as listed by `/api/v1/readings`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatestRow {
    /// Sensor id.
    pub sensor: String,
    /// Human name, if known.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Floor.
    pub floor: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Seq of the reading.
    pub seq: i64,
    /// Read time, ms since the epoch.
    pub ts: i64,
    /// Value.
    pub value: Option<f64>,
    /// Quality.
    pub quality: Quality,
}

/// `/api/v1/readings/{sensor}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SensorDetail {
    /// Latest value and metadata.
    pub latest: Option<LatestRow>,
    /// Newest first.
    pub history: Vec<HistoryRow>,
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    limit: Option<u32>,
}

/// Builds the router (exposed for tests). The state-changing routes need a caller established
/// by the transport (see `super::api_auth`); reads need nothing.
pub fn router(core: Core, agent: Agent) -> Router {
    let gate = Gate {
        core: core.clone(),
        tokens: Arc::new(ApiTokens::default()),
    };
    let caller = axum::middleware::from_fn_with_state(gate, require_caller);
    // A question may take the assistant's whole turn (at most 10 minutes by config); the
    // assistant bounds it itself.
    let agent = Router::new()
        .route("/api/v1/ask", axum::routing::post(super::agent_api::ask))
        .route(
            "/api/v1/ask/confirm",
            axum::routing::post(super::agent_api::confirm),
        )
        .route_layer(caller.clone())
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(660),
        ))
        .with_state(super::agent_api::AskState {
            core: core.clone(),
            agent,
        });
    let acts = Router::new()
        .route(
            "/api/v1/alarms/{id}/{action}",
            axum::routing::post(super::alarms_api::act),
        )
        .route(
            "/api/v1/modbus/holes/forget",
            axum::routing::post(crate::sources::modbus::holes::forget),
        )
        .route_layer(caller);
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/readings", get(readings))
        .route("/api/v1/readings/{sensor}", get(sensor))
        .route("/api/v1/sync", get(sync_status))
        .route(
            "/api/v1/modbus/holes",
            get(crate::sources::modbus::holes::list),
        )
        .route("/api/v1/alarms", get(super::alarms_api::list))
        .route("/api/v1/render/plan", get(crate::render::api::plan))
        .route("/api/v1/render/chart", get(crate::render::api::chart))
        .merge(acts)
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .with_state(core)
        .merge(agent)
}

/// Serves the API on `listener` (the TCP listener or the Unix socket, named `name` in metrics
/// and logs) until `token` is cancelled, with the connection limits of `super::conn`.
///
/// # Errors
/// The server failed.
pub async fn serve<A: Acceptor>(
    listener: A,
    name: &'static str,
    core: Core,
    agent: Agent,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let shed = core
        .metrics
        .get::<super::api_auth::ApiMetrics>()
        .shed
        .clone();
    conn::serve(
        listener,
        name,
        router(core, agent),
        Limits::default(),
        shed,
        token,
    )
    .await
}

/// Binds the API's Unix socket at `path`: makes its directory if missing, replaces a stale
/// socket file (refusing when another daemon still answers on it) and sets mode 0660, so that
/// the socket's group (`markoff-operators` under the packaged unit, whose runtime directory is
/// set-group-id) decides who may connect.
///
/// # Errors
/// The directory cannot be made, another daemon serves the socket, or binding fails.
pub fn bind_socket(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another markoff daemon answers on this socket",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// The group that may connect to the socket at `path` (its name, else its gid), for the log:
/// `markoff-operators` under the packaged unit; the daemon's own group means only root can act.
#[must_use]
pub fn socket_group(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(meta) => {
            let gid = nix::unistd::Gid::from_raw(meta.gid());
            match nix::unistd::Group::from_gid(gid) {
                Ok(Some(group)) => group.name,
                _ => gid.to_string(),
            }
        }
        Err(e) => format!("unknown ({e})"),
    }
}

async fn ready(State(core): State<Core>) -> Response {
    if core.tracker.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(State(core): State<Core>, headers: axum::http::HeaderMap) -> Response {
    use crate::service::exposition;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let text = core.metrics.render();
    if exposition::wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, exposition::OPENMETRICS)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, exposition::TEXT_0_0_4)],
            exposition::to_text_0_0_4(&text),
        )
            .into_response()
    }
}

async fn status(State(core): State<Core>) -> Response {
    axum::Json(core.status().await).into_response()
}

async fn sync_status(State(core): State<Core>) -> Response {
    axum::Json(core.sync.report()).into_response()
}

async fn readings(State(core): State<Core>) -> Response {
    let sensors = match core.reader.sensors().await {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    let meta: std::collections::HashMap<String, _> =
        sensors.into_iter().map(|s| (s.id.clone(), s)).collect();
    let rows: Vec<LatestRow> = core
        .store
        .latest
        .snapshot()
        .into_iter()
        .map(|(id, v)| {
            let m = meta.get(id.as_str());
            LatestRow {
                sensor: id.to_string(),
                name: m.map(|m| m.name.clone()).unwrap_or_default(),
                unit: m.map(|m| m.unit.clone()).unwrap_or_default(),
                floor: m.and_then(|m| m.floor.clone()),
                room: m.and_then(|m| m.room.clone()),
                seq: v.seq.0,
                ts: v.ts.as_millis(),
                value: v.value,
                quality: v.quality,
            }
        })
        .collect();
    axum::Json(rows).into_response()
}

async fn sensor(
    State(core): State<Core>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let meta = match core.reader.sensor(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, format!("unknown sensor {id:?}\n")).into_response();
        }
        Err(e) => return internal(&e),
    };
    let limit = q.limit.unwrap_or(20).min(10_000);
    let history = match core.reader.history(&id, limit).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    let latest = core.store.latest.get(&id).map(|v| LatestRow {
        sensor: meta.id.clone(),
        name: meta.name.clone(),
        unit: meta.unit.clone(),
        floor: meta.floor.clone(),
        room: meta.room.clone(),
        seq: v.seq.0,
        ts: v.ts.as_millis(),
        value: v.value,
        quality: v.quality,
    });
    axum::Json(SensorDetail { latest, history }).into_response()
}

fn internal(e: &dyn std::error::Error) -> Response {
    tracing::warn!(error = %e, "API query failed.");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("query failed: {e}\n"),
    )
        .into_response()
}

/// Formats a value with its unit for people ("21.4 °C", "no value (comm_error)").
pub fn format_value(value: Option<f64>, unit: &str, quality: Quality) -> String {
    match (value, quality) {
        (Some(v), Quality::Good) if unit.is_empty() => format!("{v}"),
        (Some(v), Quality::Good) => format!("{v} {unit}"),
        (Some(v), q) => format!("{v} {unit} ({q})").replace("  ", " "),
        (None, q) => format!("no value ({q})"),
    }
}

/// Formats a read time for people, with its age.
pub fn format_ts(ts: Timestamp, now: Timestamp) -> String {
    let age = Duration::from_millis(u64::try_from(now.as_millis() - ts.as_millis()).unwrap_or(0));
    let age = humantime::format_duration(Duration::from_secs(age.as_secs()));
    format!("{} ({age} ago)", ts.to_rfc3339())
}
