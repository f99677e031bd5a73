//! The assistant's tools: what the model may look at, as JSON Schemas Koboldcpp and llama.cpp's
//! server accept, with argument validation and coercion, and the typed queries behind them that
//! the slash commands and the offline router use too.
//!
//! Every tool is read-only except `acknowledge_alarm`, which only proposes the acknowledgement:
//! the person confirms it outside the LLM (a button or a second command) and the alarm service
//! checks their role. There is no shell, file, SQL or Modbus-write tool.
//!
//! Layout: this file is the tool table (names, descriptions, specs) and the dispatch of a call;
//! `schema` the typed arguments, their schemas with the site's vocabulary and the validation;
//! `search` finding sensors; `readings` latest values and history; `queries` alarms, the
//! overview, floors, sync and tenants.
//!
//! Owns: tool names, schemas, validation, execution and result shapes. Does not own: the loop
//! (`super::turn`) or wording (`super::text`).

mod queries;
mod readings;
mod schema;
mod search;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::llm::ToolSpec;
use super::{Agent, Attachment, Confirmation};
use crate::context::Core;
use crate::model::{Actor, AlarmState, Lang, Timestamp};

pub use self::queries::{
    AlarmItem, FloorSummary, Overview, SyncSummary, TenantSummary, alarms, floor_summary, overview,
    propose_ack, sync, tenant,
};
pub use self::readings::{
    HistoryPoint, HistorySummary, ReadingItem, history, range_secs, readings,
};
use self::schema::{
    AcknowledgeArgs, AlarmsArgs, CurrentReadingsArgs, FindSensorsArgs, FloorPlanArgs, HistoryArgs,
    TenantArgs,
};
pub use self::schema::{
    ENUM_MAX_VALUES, ENUM_TOKEN_BUDGET, KINDS, MEASURES, RANGES, Site, Vocab, did_you_mean,
    enum_tokens, example, example_with, validate,
};
pub use self::search::{SensorInfo, SensorQuery, find};

/// Most alarms one `alarms` call returns.
const ALARMS_LIMIT: usize = 20;

/// The tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    /// Building, sensors online/stale, open alarms, sync.
    SiteOverview,
    /// Sensors by free text, room, floor, tenant, kind.
    FindSensors,
    /// Latest values.
    CurrentReadings,
    /// Aggregated history, optionally with a chart.
    History,
    /// Alarms by state and severity.
    Alarms,
    /// Proposes an acknowledgement for the person to confirm.
    AcknowledgeAlarm,
    /// A floor plan picture.
    FloorPlan,
    /// Upload to the central database.
    SyncStatus,
    /// A tenant's rooms, sensors and alarms.
    TenantInfo,
}

impl Tool {
    /// Every tool, in the order the model sees them.
    pub const ALL: [Self; 9] = [
        Self::SiteOverview,
        Self::FindSensors,
        Self::CurrentReadings,
        Self::History,
        Self::Alarms,
        Self::AcknowledgeAlarm,
        Self::FloorPlan,
        Self::SyncStatus,
        Self::TenantInfo,
    ];

    /// The name the model calls.
    pub fn name(self) -> &'static str {
        match self {
            Self::SiteOverview => "site_overview",
            Self::FindSensors => "find_sensors",
            Self::CurrentReadings => "current_readings",
            Self::History => "history",
            Self::Alarms => "alarms",
            Self::AcknowledgeAlarm => "acknowledge_alarm",
            Self::FloorPlan => "floor_plan",
            Self::SyncStatus => "sync_status",
            Self::TenantInfo => "tenant_info",
        }
    }

    /// The tool called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The JSON Schema of the arguments without a site: `kind` and `measure` list every kind
    /// and measure; floors, rooms, tenants and sensors are free text.
    pub fn parameters(self) -> Value {
        schema::parameters(self, None)
    }

    /// The JSON Schema of the arguments with the site's enumerations (see `schema`).
    pub fn parameters_for(self, site: &Site) -> Value {
        schema::parameters(self, Some(site))
    }

    /// One line saying what the tool is for.
    pub fn description(self) -> &'static str {
        match self {
            Self::SiteOverview => {
                "Building summary: sensors online and stale, open alarms by severity, sync to the central office."
            }
            Self::FindSensors => {
                "Find sensors by words, room, floor, tenant or kind. Use it to get sensor ids; never invent ids."
            }
            Self::CurrentReadings => {
                "Latest values with units and read times of one sensor, or of a room, floor or kind."
            }
            Self::History => {
                "History of one sensor over a range: min, max, average and values per interval; can attach a chart."
            }
            Self::Alarms => "List alarms: open (default), active, unacknowledged or all.",
            Self::AcknowledgeAlarm => {
                "Ask to acknowledge an alarm. The person confirms it with a button; operators only."
            }
            Self::FloorPlan => {
                "Attach a floor plan picture coloured by temperature, humidity, CO2 or alarms."
            }
            Self::SyncStatus => {
                "Upload to the central office: what waits and when it last succeeded."
            }
            Self::TenantInfo => "A tenant's rooms, their latest readings and open alarms.",
        }
    }

    /// The spec sent to the LLM server for `site`.
    pub fn spec(self, site: &Site) -> ToolSpec {
        ToolSpec {
            name: self.name().to_owned(),
            description: self.description().to_owned(),
            parameters: self.parameters_for(site),
        }
    }
}

/// Every tool spec for `site`, byte-stable while the site does not change.
pub fn specs(site: &Site) -> Vec<ToolSpec> {
    Tool::ALL.into_iter().map(|t| t.spec(site)).collect()
}

/// What a tool call produced.
#[derive(Clone, Debug, Default)]
pub struct ToolOutput {
    /// The result the model reads (compact JSON).
    pub data: Value,
    /// Pictures for the channel.
    pub attachments: Vec<Attachment>,
    /// Actions waiting for the person's confirmation.
    pub confirmations: Vec<Confirmation>,
    /// Sensors whose data in the result is stale.
    pub stale: Vec<String>,
}

/// Why a tool gave no result. The English text (`Display`) goes back to the model; people get
/// it in their language from `super::text::tool_error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// Arguments that passed validation but not the typed struct (a schema and struct out of
    /// step).
    #[error("the arguments do not fit: {0}")]
    Arguments(String),
    /// No sensor matches; the text says what exists instead.
    #[error("{0}")]
    NoSensor(String),
    /// The local database could not be read.
    #[error("the local database could not be read: {0}")]
    Database(String),
    /// The person may not acknowledge alarms.
    #[error("{user} may not acknowledge alarms (role: {role}); an operator must do it")]
    Forbidden {
        /// Login.
        user: String,
        /// Their role, or `unknown user`.
        role: String,
    },
    /// No such alarm.
    #[error("there is no alarm {id}; open alarms: {}", if open.is_empty() { "none".to_owned() } else { open.join(", ") })]
    NoAlarm {
        /// The number asked for.
        id: i64,
        /// Open alarms as `id (alert)`.
        open: Vec<String>,
    },
    /// The alarm does not await acknowledgement.
    #[error("alarm {id} ({alert}) does not await acknowledgement (state: {})", state.as_str())]
    NotAwaiting {
        /// Alarm number.
        id: i64,
        /// Rule name.
        alert: String,
        /// Its state.
        state: AlarmState,
    },
    /// No such floor.
    #[error("there is no floor {floor:?}; floors: {}", floors.join(", "))]
    NoFloor {
        /// The floor asked for.
        floor: String,
        /// The floors there are.
        floors: Vec<String>,
    },
    /// No such tenant.
    #[error("no such tenant; tenants: {}", if tenants.is_empty() { "none configured".to_owned() } else { tenants.join(", ") })]
    NoTenant {
        /// The tenants there are.
        tenants: Vec<String>,
    },
}

/// What a tool may use.
#[derive(Debug)]
pub struct ToolContext<'a> {
    /// The gateway.
    pub core: &'a Core,
    /// The assistant (pending confirmations).
    pub agent: &'a Agent,
    /// Who asks.
    pub actor: &'a Actor,
    /// Language of the person.
    pub lang: Lang,
    /// Now.
    pub now: Timestamp,
}

/// Runs a tool with validated arguments (see [`validate`]).
///
/// # Errors
/// Text for the model: what went wrong and what to try instead.
pub async fn call(
    tool: Tool,
    args: &Map<String, Value>,
    ctx: &ToolContext<'_>,
) -> Result<ToolOutput, ToolError> {
    match tool {
        Tool::SiteOverview => {
            let o = overview(ctx).await?;
            Ok(output(&o, Vec::new()))
        }
        Tool::FindSensors => {
            let a: FindSensorsArgs = typed(args)?;
            let q = SensorQuery {
                text: a.query,
                floor: a.floor,
                room: a.room,
                tenant: a.tenant,
                kind: a.kind,
            };
            let found = find(ctx, &q).await?;
            if found.is_empty() {
                return Err(ToolError::NoSensor(search::no_sensor_hint(ctx, &q).await));
            }
            Ok(output(&json!({"sensors": found}), Vec::new()))
        }
        Tool::CurrentReadings => {
            let a: CurrentReadingsArgs = typed(args)?;
            let q = SensorQuery {
                text: a.sensor,
                floor: a.floor,
                room: a.room,
                tenant: None,
                kind: a.kind,
            };
            let (rows, more) =
                readings::readings_capped(ctx, &q, readings::TOOL_READINGS_LIMIT).await?;
            if rows.is_empty() {
                return Err(ToolError::NoSensor(search::no_sensor_hint(ctx, &q).await));
            }
            let stale = rows
                .iter()
                .filter(|r| r.stale)
                .map(|r| r.sensor.clone())
                .collect();
            let mut out = output(&json!({"readings": rows}), stale);
            if more > 0 {
                out.data["more"] = Value::String(format!(
                    "{more} more sensors match; ask for one room, floor or kind"
                ));
            }
            out.data["now"] = Value::String(ctx.now.to_rfc3339());
            Ok(out)
        }
        Tool::History => {
            let a: HistoryArgs = typed(args)?;
            let range = a.range.unwrap_or_default().as_str();
            let agg = a.aggregation.unwrap_or_default().as_str();
            let h = history(ctx, &a.sensor, range, agg).await?;
            let mut out = output(&h, Vec::new());
            if a.chart.unwrap_or(false) {
                out.attachments.push(Attachment::Chart {
                    sensor: h.sensor.clone(),
                    since_secs: range_secs(range),
                });
                out.data["chart"] = Value::String("attached".into());
            }
            Ok(out)
        }
        Tool::Alarms => {
            let a: AlarmsArgs = typed(args)?;
            let state = a.state.unwrap_or_default().as_str();
            let list = alarms(
                ctx,
                state,
                a.severity.map(schema::LeastSeverity::as_str),
                a.floor.as_deref(),
            );
            let total = list.len();
            let shown: Vec<AlarmItem> = list.into_iter().take(ALARMS_LIMIT).collect();
            Ok(output(
                &json!({"state": state, "count": total, "alarms": shown}),
                Vec::new(),
            ))
        }
        Tool::AcknowledgeAlarm => {
            let a: AcknowledgeArgs = typed(args)?;
            let c = propose_ack(ctx, a.alarm_id)?;
            let data = json!({
                "status": "confirmation_required",
                "alarm_id": a.alarm_id,
                "note": "Tell the person to confirm with the button or the command shown; it is not acknowledged yet.",
            });
            Ok(ToolOutput {
                data,
                confirmations: vec![c],
                ..ToolOutput::default()
            })
        }
        Tool::FloorPlan => {
            let a: FloorPlanArgs = typed(args)?;
            let measure = a.measure.unwrap_or_else(|| "temperature".into());
            let p = floor_summary(ctx, &a.floor, &measure).await?;
            let mut out = output(&p, Vec::new());
            out.attachments.push(Attachment::FloorPlan {
                floor: p.floor.clone(),
                measure,
            });
            out.data["picture"] = Value::String("attached".into());
            Ok(out)
        }
        Tool::SyncStatus => Ok(output(&sync(ctx), Vec::new())),
        Tool::TenantInfo => {
            let a: TenantArgs = typed(args)?;
            let t = tenant(ctx, a.tenant.as_deref(), a.room.as_deref()).await?;
            let stale = t
                .readings
                .iter()
                .filter(|r| r.stale)
                .map(|r| r.sensor.clone())
                .collect();
            Ok(output(&t, stale))
        }
    }
}

/// Validated arguments as the tool's typed struct.
fn typed<T: DeserializeOwned>(args: &Map<String, Value>) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args.clone()))
        .map_err(|e| ToolError::Arguments(e.to_string()))
}

fn output<T: Serialize>(value: &T, stale: Vec<String>) -> ToolOutput {
    ToolOutput {
        data: serde_json::to_value(value).unwrap_or(Value::Null),
        stale,
        ..ToolOutput::default()
    }
}

/// Waiting time before a tool's result is considered for an answer; keeps a slow database from
/// holding a turn.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
