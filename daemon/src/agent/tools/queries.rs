//! Alarms, the acknowledgement proposal, the building overview, floor summaries, sync and
//! tenants.
//!
//! Owns: those result shapes and the queries behind them (the alarm service, the store's
//! reader, the sync report, the site configuration). Does not own: sensors or readings
//! (`super::search`, `super::readings`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::readings::{ReadingItem, readings};
use super::search::{SensorQuery, all_sensors, eq_label, norm};
use super::{ToolContext, ToolError};
use crate::agent::Confirmation;
use crate::alarms::AlarmView;
use crate::model::{AlarmState, Quality, Role, Severity, Timestamp};

// ---------------------------------------------------------------------------------------------
// Alarms
// ---------------------------------------------------------------------------------------------

/// An alarm as the model and templates see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmItem {
    /// Number to acknowledge it by.
    pub id: i64,
    /// Rule name.
    pub alert: String,
    /// Severity.
    pub severity: Severity,
    /// State.
    pub state: AlarmState,
    /// Message.
    pub message: String,
    /// Sensor id.
    pub sensor: String,
    /// Where.
    pub location: String,
    /// Last value with unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Raised at, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Who acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    /// Shelved (no notifications) until, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelved_until: Option<String>,
}

impl From<&AlarmView> for AlarmItem {
    fn from(a: &AlarmView) -> Self {
        Self {
            id: a.id,
            alert: a.alert.clone(),
            severity: a.severity,
            state: a.state,
            message: a.message.clone(),
            sensor: a.sensor.clone(),
            location: a.location.clone(),
            value: a.value.map(|v| {
                let n = crate::alarms::text::number(v);
                if a.unit.is_empty() {
                    n
                } else {
                    format!("{n} {}", a.unit)
                }
            }),
            since: a.raised_ms.map(|t| Timestamp(t).to_rfc3339()),
            acked_by: a.acked_by.clone(),
            shelved_until: a.shelved_until.map(|t| Timestamp(t).to_rfc3339()),
        }
    }
}

fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 3,
        Severity::High => 2,
        Severity::Medium => 1,
        Severity::Low => 0,
    }
}

/// Alarms by state (`open`, `active`, `unacknowledged`, `all`), least severity and floor,
/// most severe and newest first (`alarms`).
pub fn alarms(
    ctx: &ToolContext<'_>,
    state: &str,
    severity: Option<&str>,
    floor: Option<&str>,
) -> Vec<AlarmItem> {
    let least = severity.and_then(Severity::parse).map_or(0, severity_rank);
    let mut list: Vec<AlarmView> = ctx
        .core
        .alarms
        .list(state != "all")
        .into_iter()
        .filter(|a| match state {
            "active" => a.state.is_active(),
            "unacknowledged" => a.state.is_unacked(),
            _ => true,
        })
        .filter(|a| severity_rank(a.severity) >= least)
        .filter(|a| {
            floor.is_none_or(|f| {
                a.location
                    .split(" / ")
                    .next()
                    .is_some_and(|lf| eq_label(lf, f))
            })
        })
        .collect();
    list.sort_by(|a, b| {
        severity_rank(b.severity)
            .cmp(&severity_rank(a.severity))
            .then(b.raised_ms.cmp(&a.raised_ms))
    });
    list.iter().map(AlarmItem::from).collect()
}

/// Checks that the person may acknowledge alarm `id` and that it awaits acknowledgement, then
/// registers the proposal.
///
/// # Errors
/// Not an operator, unknown alarm, nothing to acknowledge.
pub fn propose_ack(ctx: &ToolContext<'_>, id: i64) -> Result<Confirmation, ToolError> {
    if !ctx.actor.role.is_some_and(Role::may_act) {
        return Err(ToolError::Forbidden {
            user: ctx.actor.user.clone(),
            role: ctx
                .actor
                .role
                .map_or("unknown user", Role::as_str)
                .to_owned(),
        });
    }
    let Some(alarm) = ctx.core.alarms.get(id) else {
        let open: Vec<String> = ctx
            .core
            .alarms
            .list(true)
            .iter()
            .map(|a| format!("{} ({})", a.id, a.alert))
            .collect();
        return Err(ToolError::NoAlarm { id, open });
    };
    if !alarm.state.is_unacked() {
        return Err(ToolError::NotAwaiting {
            id,
            alert: alarm.alert.clone(),
            state: alarm.state,
        });
    }
    Ok(ctx.agent.propose_ack(id, ctx.actor, ctx.lang))
}

// ---------------------------------------------------------------------------------------------
// Overview, floor, sync, tenant
// ---------------------------------------------------------------------------------------------

/// The building at a glance (`site_overview`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    /// Building name.
    pub building: String,
    /// Address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Floors (ids).
    pub floors: Vec<String>,
    /// Sensors known.
    pub sensors: usize,
    /// Sensors with a fresh good reading.
    pub online: usize,
    /// Sensors whose latest reading is old or not good.
    pub stale: usize,
    /// Stale sensors (first few).
    pub stale_examples: Vec<String>,
    /// Open alarms by severity.
    pub open_alarms: BTreeMap<String, usize>,
    /// Open alarms awaiting acknowledgement.
    pub unacknowledged: usize,
    /// Sync to the centre: `off`, `ok`, `behind` or `failing`.
    pub sync: String,
    /// Readings waiting for the centre.
    pub sync_waiting_rows: i64,
    /// Now, RFC 3339 UTC.
    pub now: String,
}

/// The building at a glance.
///
/// # Errors
/// The database could not be read.
pub async fn overview(ctx: &ToolContext<'_>) -> Result<Overview, ToolError> {
    let cfg = ctx.core.config();
    let sensors = all_sensors(ctx.core).await?;
    let stale_after = i64::try_from(cfg.agent.stale_after.as_millis()).unwrap_or(i64::MAX);
    let mut online = 0;
    let mut stale = Vec::new();
    for s in &sensors {
        match ctx.core.store.latest.get(&s.id) {
            Some(l)
                if l.quality == Quality::Good
                    && ctx.now.as_millis() - l.ts.as_millis() <= stale_after =>
            {
                online += 1;
            }
            _ => stale.push(s.id.clone()),
        }
    }
    let mut floors: Vec<String> = cfg.site.floor.iter().map(|f| f.id.clone()).collect();
    for s in &sensors {
        if let Some(f) = &s.floor
            && !floors.contains(f)
        {
            floors.push(f.clone());
        }
    }
    let open = ctx.core.alarms.list(true);
    let mut by_sev = BTreeMap::new();
    for a in &open {
        *by_sev.entry(a.severity.as_str().to_owned()).or_insert(0) += 1;
    }
    let s = sync(ctx);
    Ok(Overview {
        building: cfg
            .site
            .name
            .clone()
            .or_else(|| cfg.gateway.name.clone())
            .unwrap_or_else(|| cfg.gateway.id.clone()),
        address: cfg.site.address.clone(),
        floors,
        sensors: sensors.len(),
        online,
        stale: stale.len(),
        stale_examples: stale.iter().take(5).cloned().collect(),
        open_alarms: by_sev,
        unacknowledged: open.iter().filter(|a| a.state.is_unacked()).count(),
        sync: s.state,
        sync_waiting_rows: s.waiting_rows,
        now: ctx.now.to_rfc3339(),
    })
}

/// What a floor plan shows, in numbers (`floor_plan`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorSummary {
    /// Floor id.
    pub floor: String,
    /// Measure.
    pub measure: String,
    /// Rooms with their latest value of the measure.
    pub rooms: Vec<ReadingItem>,
    /// Open alarms on the floor.
    pub alarms: Vec<AlarmItem>,
}

/// The floors there are: `[[site.floor]]` ids, then floors sensors name.
async fn floors(ctx: &ToolContext<'_>) -> Result<Vec<String>, ToolError> {
    let cfg = ctx.core.config();
    let mut floors: Vec<String> = cfg.site.floor.iter().map(|f| f.id.clone()).collect();
    for s in all_sensors(ctx.core).await? {
        if let Some(f) = s.floor
            && !floors.contains(&f)
        {
            floors.push(f);
        }
    }
    Ok(floors)
}

/// A floor's numbers for a floor plan.
///
/// # Errors
/// Unknown floor (with the list of floors), or the database could not be read.
pub async fn floor_summary(
    ctx: &ToolContext<'_>,
    floor: &str,
    measure: &str,
) -> Result<FloorSummary, ToolError> {
    let all = floors(ctx).await?;
    let Some(floor) = all.iter().find(|f| eq_label(f, floor)).cloned() else {
        return Err(ToolError::NoFloor {
            floor: floor.to_owned(),
            floors: all.clone(),
        });
    };
    let kind = if measure == "alarms" {
        None
    } else {
        Some(measure.to_owned())
    };
    let rooms = match kind {
        Some(kind) => {
            readings(
                ctx,
                &SensorQuery {
                    floor: Some(floor.clone()),
                    kind: Some(kind),
                    ..SensorQuery::default()
                },
            )
            .await?
        }
        None => Vec::new(),
    };
    let alarms = alarms(ctx, "open", None, Some(&floor));
    Ok(FloorSummary {
        floor,
        measure: measure.to_owned(),
        rooms,
        alarms,
    })
}

/// Upload to the centre in short (`sync_status`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncSummary {
    /// `off`, `ok`, `behind` or `failing`.
    pub state: String,
    /// Rows waiting, all streams.
    pub waiting_rows: i64,
    /// Age of the oldest waiting reading, seconds.
    pub oldest_waiting_s: f64,
    /// Last successful upload, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// Last error, until the next success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Upload to the centre in short.
pub fn sync(ctx: &ToolContext<'_>) -> SyncSummary {
    let report = ctx.core.sync.report();
    if !report.enabled {
        return SyncSummary {
            state: "off".into(),
            waiting_rows: 0,
            oldest_waiting_s: 0.0,
            last_success: None,
            last_error: None,
        };
    }
    let waiting: i64 = report.streams.iter().map(|s| s.lag_rows).sum();
    let oldest = report
        .streams
        .iter()
        .map(|s| s.lag_seconds)
        .fold(0.0, f64::max);
    let last_success = report
        .streams
        .iter()
        .filter_map(|s| s.last_success_ms)
        .max();
    let last_error = report.streams.iter().find_map(|s| s.last_error.clone());
    let state = if last_error.is_some() {
        "failing"
    } else if oldest > 300.0 {
        "behind"
    } else {
        "ok"
    };
    SyncSummary {
        state: state.into(),
        waiting_rows: waiting,
        oldest_waiting_s: oldest.round(),
        last_success: last_success.map(|t| Timestamp(t).to_rfc3339()),
        last_error,
    }
}

/// A tenant (`tenant_info`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantSummary {
    /// Tenant id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Rooms (ids).
    pub rooms: Vec<String>,
    /// Latest readings in those rooms.
    pub readings: Vec<ReadingItem>,
    /// Open alarms in those rooms.
    pub alarms: Vec<AlarmItem>,
}

/// A tenant by name or id, or the tenant of a room.
///
/// # Errors
/// No such tenant (with the list of tenants).
pub async fn tenant(
    ctx: &ToolContext<'_>,
    name: Option<&str>,
    room: Option<&str>,
) -> Result<TenantSummary, ToolError> {
    let cfg = ctx.core.config();
    let list: Vec<String> = cfg
        .site
        .tenant
        .iter()
        .map(|t| t.name.clone().unwrap_or_else(|| t.id.clone()))
        .collect();
    let by_room = room.and_then(|r| {
        cfg.site
            .room
            .iter()
            .find(|x| eq_label(&x.id, r))
            .and_then(|x| x.tenant.clone())
    });
    let wanted = by_room.or_else(|| {
        let n = norm(name?);
        cfg.site
            .tenant
            .iter()
            .map(|t| {
                let tn = norm(t.name.as_deref().unwrap_or(&t.id));
                let score = if norm(&t.id) == n || tn == n {
                    2.0
                } else if tn.contains(&n) {
                    1.5
                } else {
                    strsim::jaro_winkler(&tn, &n)
                };
                (score, t.id.clone())
            })
            .filter(|(s, _)| *s > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id)
    });
    let Some(t) = wanted.and_then(|id| cfg.site.tenant.iter().find(|t| t.id == id)) else {
        return Err(ToolError::NoTenant { tenants: list });
    };
    let rooms: Vec<String> = cfg
        .site
        .room
        .iter()
        .filter(|r| r.tenant.as_deref() == Some(t.id.as_str()))
        .map(|r| r.id.clone())
        .collect();
    let mut readings_out = Vec::new();
    for r in &rooms {
        readings_out.extend(
            readings(
                ctx,
                &SensorQuery {
                    room: Some(r.clone()),
                    ..SensorQuery::default()
                },
            )
            .await?,
        );
    }
    let alarms = alarms(ctx, "open", None, None)
        .into_iter()
        .filter(|a| rooms.iter().any(|r| a.location.ends_with(r.as_str())))
        .collect();
    Ok(TenantSummary {
        id: t.id.clone(),
        name: t.name.clone().unwrap_or_else(|| t.id.clone()),
        rooms,
        readings: readings_out,
        alarms,
    })
}
