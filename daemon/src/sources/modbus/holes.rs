//! Learned address holes through the running gateway: `GET /api/v1/modbus/holes` lists them,
//! `POST /api/v1/modbus/holes/forget` clears them (both take `?device=NAME`), and
//! `markoff modbus holes [--device D] [--forget]` prints what either answered.
//!
//! The holes live in the buffer (`component_state`, one key per device); a forget writes an
//! empty list through the buffer's writer and the device's poller drops the holes within a
//! second (see [`super::poller`]). Readings, alarms and every other key are left alone.
//!
//! A forget is a state-changing request: it goes through the local API's caller gate
//! (`crate::channels::api_auth`: the socket's peer account or a bearer token), only an operator
//! or an administrator may, and every attempt, done or refused, is in the audit log
//! (`forget_holes`, target `modbus:<device>` or `modbus:*`) under the authenticated identity.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::planner::Hole;
use super::poller::holes_key;
use crate::context::Core;
use crate::model::{Actor, Role, Timestamp};
use crate::store::AuditRecord;

/// The holes of one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceHoles {
    /// Connection name.
    pub connection: String,
    /// Device name.
    pub device: String,
    /// Unit id.
    pub unit: u8,
    /// The holes learned (before a forget: those cleared).
    pub holes: Vec<Hole>,
}

/// `?device=NAME`.
#[derive(Debug, Deserialize)]
pub struct HolesQuery {
    /// Only this device.
    pub device: Option<String>,
}

/// Every configured device (or only `device`) with its stored holes; `None` for an unknown
/// device.
async fn collect(core: &Core, device: Option<&str>) -> Result<Option<Vec<DeviceHoles>>, Response> {
    let cfg = core.config();
    let conns =
        super::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles).unwrap_or_default();
    let mut out = Vec::new();
    for c in &conns {
        for d in c
            .devices
            .iter()
            .filter(|d| device.is_none_or(|n| n == d.name))
        {
            let holes = match core.reader.state(&holes_key(c, d)).await {
                Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_default(),
                Ok(None) => Vec::new(),
                Err(e) => {
                    return Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("cannot read the buffer: {e}\n"),
                    )
                        .into_response());
                }
            };
            out.push(DeviceHoles {
                connection: c.name.clone(),
                device: d.name.clone(),
                unit: d.slave,
                holes,
            });
        }
    }
    Ok((device.is_none() || !out.is_empty()).then_some(out))
}

fn unknown(device: Option<&str>) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "no Modbus device {:?} in the configuration\n",
            device.unwrap_or_default()
        ),
    )
        .into_response()
}

/// `GET /api/v1/modbus/holes[?device=NAME]`.
pub async fn list(State(core): State<Core>, Query(q): Query<HolesQuery>) -> Response {
    match collect(&core, q.device.as_deref()).await {
        Ok(Some(list)) => axum::Json(list).into_response(),
        Ok(None) => unknown(q.device.as_deref()),
        Err(r) => r,
    }
}

/// Writes the audit entry of a forget; `None` once committed, else the answer to give.
async fn audit(
    core: &Core,
    actor: &Actor,
    device: Option<&str>,
    outcome: &str,
    detail: String,
) -> Option<Response> {
    let record = AuditRecord {
        ts: Timestamp::now().as_millis(),
        actor: actor.user.clone(),
        role: actor.role.map(|r| r.as_str().to_owned()),
        channel: actor.channel.clone(),
        action: "forget_holes".to_owned(),
        target: Some(format!("modbus:{}", device.unwrap_or("*"))),
        outcome: outcome.to_owned(),
        detail: Some(detail),
    };
    match core.ingest.audit(record).await {
        Ok(()) => None,
        Err(e) => Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot write the audit log: {e}\n"),
            )
                .into_response(),
        ),
    }
}

/// `POST /api/v1/modbus/holes/forget[?device=NAME]`: clears the holes and answers with those
/// cleared. Only an operator or an administrator may (403 otherwise); audited either way.
pub async fn forget(
    State(core): State<Core>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HolesQuery>,
) -> Response {
    let device = q.device.as_deref();
    if !actor.role.is_some_and(Role::may_act) {
        tracing::warn!(user = %actor.user, channel = %actor.channel, device = device.unwrap_or("*"), "Forgetting Modbus address holes refused: the operator role is needed.");
        let detail = "the operator role is needed".to_owned();
        if let Some(r) = audit(&core, &actor, device, "refused", detail).await {
            return r;
        }
        return (
            StatusCode::FORBIDDEN,
            format!(
                "{} may not forget Modbus address holes: the operator role is needed; \
                 {} не может сбросить дыры адресов Modbus: нужна роль оператора\n",
                actor.user, actor.user
            ),
        )
            .into_response();
    }
    let list = match collect(&core, device).await {
        Ok(Some(list)) => list,
        Ok(None) => return unknown(device),
        Err(r) => return r,
    };
    let cfg = core.config();
    let conns =
        super::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles).unwrap_or_default();
    for c in &conns {
        for d in &c.devices {
            let cleared = list
                .iter()
                .any(|h| h.device == d.name && !h.holes.is_empty());
            if cleared && let Err(e) = core.ingest.set_state(&holes_key(c, d), "[]").await {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot write the buffer: {e}\n"),
                )
                    .into_response();
            }
        }
    }
    let devices = list.iter().filter(|h| !h.holes.is_empty()).count();
    let holes: usize = list.iter().map(|h| h.holes.len()).sum();
    tracing::info!(
        user = %actor.user,
        channel = %actor.channel,
        devices,
        holes,
        "Learned Modbus address holes forgotten on request."
    );
    let detail = format!("{holes} holes of {devices} devices");
    if let Some(r) = audit(&core, &actor, device, "done", detail).await {
        return r;
    }
    axum::Json(list).into_response()
}

/// Text for people: one line per device, then one per hole.
pub fn render(list: &[DeviceHoles], forgotten: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for d in list {
        let n = d.holes.len();
        writeln!(
            out,
            "{} (connection {}, unit {}): {n} hole{}{}",
            d.device,
            d.connection,
            d.unit,
            if n == 1 { "" } else { "s" },
            if forgotten && n > 0 { " forgotten" } else { "" }
        )
        .ok();
        for h in &d.holes {
            if u32::from(h.start) == h.end {
                writeln!(out, "  {:<9} no read across {}", h.kind.as_str(), h.start).ok();
            } else {
                writeln!(
                    out,
                    "  {:<9} {}..{} rejected (exception 02)",
                    h.kind.as_str(),
                    h.start,
                    h.end - 1
                )
                .ok();
            }
        }
    }
    if list.is_empty() {
        out.push_str("no Modbus devices configured\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::config::RegisterKind;

    #[test]
    fn renders_ranges_and_boundaries() {
        let list = vec![DeviceHoles {
            connection: "plant".into(),
            device: "boiler".into(),
            unit: 1,
            holes: vec![
                Hole {
                    kind: RegisterKind::Holding,
                    start: 5,
                    end: 10,
                },
                Hole {
                    kind: RegisterKind::Input,
                    start: 8,
                    end: 8,
                },
            ],
        }];
        let text = render(&list, true);
        assert_eq!(
            text,
            "boiler (connection plant, unit 1): 2 holes forgotten\n  holding   5..9 rejected (exception 02)\n  input     no read across 8\n"
        );
    }
}
