//! The assistant's tools: what the model may look at, as JSON Schemas Koboldcpp accepts, with
//! argument validation and coercion, and the typed queries behind them that the slash commands
//! and the offline router use too.
//!
//! Every tool is read-only except `acknowledge_alarm`, which only proposes the acknowledgement:
//! the person confirms it outside the LLM (a button or a second command) and the alarm service
//! checks their role. There is no shell, file, SQL or Modbus-write tool.
//!
//! Owns: tool names, schemas, validation, execution and result shapes. Does not own: the loop
//! (`super::turn`) or wording (`super::text`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::llm::ToolSpec;
use super::{Agent, Attachment, Confirmation};
use crate::alarms::AlarmView;
use crate::context::Core;
use crate::model::{Actor, AlarmState, Lang, Quality, Role, Severity, Timestamp};
use crate::store::SensorRow;

/// Most sensors one search returns.
const FIND_LIMIT: usize = 10;
/// Most readings one `current_readings` call returns.
const READINGS_LIMIT: usize = 30;
/// Most alarms one `alarms` call returns.
const ALARMS_LIMIT: usize = 20;
/// Points of a history summary.
const HISTORY_BUCKETS: i64 = 24;

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

    /// The JSON Schema of the arguments (every property typed; `properties` always present).
    pub fn parameters(self) -> Value {
        let kind = json!({"type": "string", "enum": KINDS, "description": "sensor kind"});
        match self {
            Self::SiteOverview | Self::SyncStatus => {
                json!({"type": "object", "properties": {}})
            }
            Self::FindSensors => json!({"type": "object", "properties": {
                "query": {"type": "string", "description": "words to match: name, room, equipment, in any language (e.g. 'boiler', 'котёл', '301')"},
                "floor": {"type": "string", "description": "floor id, e.g. '3' or 'B'"},
                "room": {"type": "string", "description": "room or unit id, e.g. '301'"},
                "tenant": {"type": "string", "description": "tenant name or id"},
                "kind": kind,
            }}),
            Self::CurrentReadings => json!({"type": "object", "properties": {
                "sensor": {"type": "string", "description": "sensor id from find_sensors, or words naming it"},
                "room": {"type": "string", "description": "room or unit id"},
                "floor": {"type": "string", "description": "floor id"},
                "kind": kind,
            }}),
            Self::History => json!({"type": "object", "properties": {
                "sensor": {"type": "string", "description": "sensor id from find_sensors, or words naming it"},
                "range": {"type": "string", "enum": RANGES, "description": "how far back"},
                "aggregation": {"type": "string", "enum": ["avg", "min", "max", "last"], "description": "value per interval"},
                "chart": {"type": "boolean", "description": "attach a chart picture"},
            }, "required": ["sensor"]}),
            Self::Alarms => json!({"type": "object", "properties": {
                "state": {"type": "string", "enum": ["open", "active", "unacknowledged", "all"], "description": "open: active or awaiting acknowledgement"},
                "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"], "description": "least severity"},
                "floor": {"type": "string", "description": "floor id"},
            }}),
            Self::AcknowledgeAlarm => json!({"type": "object", "properties": {
                "alarm_id": {"type": "integer", "description": "alarm number from the alarms tool"},
            }, "required": ["alarm_id"]}),
            Self::FloorPlan => json!({"type": "object", "properties": {
                "floor": {"type": "string", "description": "floor id, e.g. '3' or 'B'"},
                "measure": {"type": "string", "enum": MEASURES, "description": "what colours the rooms"},
            }, "required": ["floor"]}),
            Self::TenantInfo => json!({"type": "object", "properties": {
                "tenant": {"type": "string", "description": "tenant name or id"},
                "room": {"type": "string", "description": "a room of the tenant"},
            }}),
        }
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

    /// The spec sent to the LLM server.
    pub fn spec(self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_owned(),
            description: self.description().to_owned(),
            parameters: self.parameters(),
        }
    }
}

/// Sensor kinds (`crate::model::SensorKind` names).
pub const KINDS: [&str; 9] = [
    "temperature",
    "humidity",
    "co2",
    "pressure",
    "energy",
    "flow",
    "leak",
    "state",
    "other",
];
/// History ranges.
pub const RANGES: [&str; 5] = ["1h", "6h", "24h", "7d", "30d"];
/// Floor plan measures.
pub const MEASURES: [&str; 4] = ["temperature", "humidity", "co2", "alarms"];

/// Every tool spec.
pub fn specs() -> Vec<ToolSpec> {
    Tool::ALL.into_iter().map(Tool::spec).collect()
}

/// Checks and coerces arguments against a tool's schema: numbers given as text become numbers,
/// enum values match case-insensitively, unknown keys are dropped, empty strings count as
/// absent. The error is text for the model, naming what is allowed.
///
/// # Errors
/// A missing required argument, a value of the wrong type, a value outside the enum.
pub fn validate(tool: Tool, args: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let schema = tool.parameters();
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (key, value) in args {
        let Some(prop) = props.get(&key) else {
            continue;
        };
        if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
        let coerced =
            coerce(ty, value).ok_or_else(|| format!("argument {key:?} must be a {ty}"))?;
        let coerced = match prop.get("enum").and_then(Value::as_array) {
            Some(allowed) => {
                let text = coerced.as_str().unwrap_or_default().trim().to_lowercase();
                match allowed.iter().find(|a| a.as_str() == Some(text.as_str())) {
                    Some(a) => a.clone(),
                    None => {
                        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                        return Err(format!(
                            "argument {key:?} must be one of {}{}",
                            names.join(", "),
                            did_you_mean(&text, &names)
                        ));
                    }
                }
            }
            None => coerced,
        };
        out.insert(key, coerced);
    }
    for r in required {
        if !out.contains_key(r) {
            return Err(format!("argument {r:?} is required"));
        }
    }
    Ok(out)
}

fn coerce(ty: &str, value: Value) -> Option<Value> {
    match (ty, value) {
        ("string", Value::String(s)) => Some(Value::String(s.trim().to_owned())),
        ("string", Value::Number(n)) => Some(Value::String(n.to_string())),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Value::from),
        ("integer", Value::String(s)) => s
            .trim()
            .trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .map(Value::from),
        ("number", Value::Number(n)) => Some(Value::Number(n)),
        ("number", Value::String(s)) => s.trim().parse::<f64>().ok().map(Value::from),
        ("boolean", Value::Bool(b)) => Some(Value::Bool(b)),
        ("boolean", Value::String(s)) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" | "да" => Some(Value::Bool(true)),
            "false" | "no" | "0" | "нет" => Some(Value::Bool(false)),
            _ => None,
        },
        ("boolean", Value::Number(n)) => Some(Value::Bool(n.as_f64() != Some(0.0))),
        _ => None,
    }
}

/// " (did you mean X?)" when one of `names` is close to `given`.
pub fn did_you_mean(given: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| (strsim::jaro_winkler(given, n), *n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!(" (did you mean {n}?)"))
        .unwrap_or_default()
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

/// Runs a tool with validated arguments.
///
/// # Errors
/// Text for the model: what went wrong and what to try instead.
pub async fn call(
    tool: Tool,
    args: &Map<String, Value>,
    ctx: &ToolContext<'_>,
) -> Result<ToolOutput, ToolError> {
    let s = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_owned);
    match tool {
        Tool::SiteOverview => {
            let o = overview(ctx).await?;
            Ok(output(&o, Vec::new()))
        }
        Tool::FindSensors => {
            let q = SensorQuery {
                text: s("query"),
                floor: s("floor"),
                room: s("room"),
                tenant: s("tenant"),
                kind: s("kind"),
            };
            let found = find(ctx, &q).await?;
            if found.is_empty() {
                return Err(ToolError::NoSensor(no_sensor_hint(ctx, &q).await));
            }
            Ok(output(&json!({"sensors": found}), Vec::new()))
        }
        Tool::CurrentReadings => {
            let q = SensorQuery {
                text: s("sensor"),
                floor: s("floor"),
                room: s("room"),
                tenant: None,
                kind: s("kind"),
            };
            let rows = readings(ctx, &q).await?;
            if rows.is_empty() {
                return Err(ToolError::NoSensor(no_sensor_hint(ctx, &q).await));
            }
            let stale = rows
                .iter()
                .filter(|r| r.stale)
                .map(|r| r.sensor.clone())
                .collect();
            let mut out = output(&json!({"readings": rows}), stale);
            out.data["now"] = Value::String(ctx.now.to_rfc3339());
            Ok(out)
        }
        Tool::History => {
            let sensor = s("sensor").unwrap_or_default();
            let range = s("range").unwrap_or_else(|| "24h".into());
            let agg = s("aggregation").unwrap_or_else(|| "avg".into());
            let h = history(ctx, &sensor, &range, &agg).await?;
            let mut out = output(&h, Vec::new());
            if args.get("chart").and_then(Value::as_bool).unwrap_or(false) {
                out.attachments.push(Attachment::Chart {
                    sensor: h.sensor.clone(),
                    since_secs: range_secs(&range),
                });
                out.data["chart"] = Value::String("attached".into());
            }
            Ok(out)
        }
        Tool::Alarms => {
            let state = s("state").unwrap_or_else(|| "open".into());
            let list = alarms(ctx, &state, s("severity").as_deref(), s("floor").as_deref());
            let total = list.len();
            let shown: Vec<AlarmItem> = list.into_iter().take(ALARMS_LIMIT).collect();
            Ok(output(
                &json!({"state": state, "count": total, "alarms": shown}),
                Vec::new(),
            ))
        }
        Tool::AcknowledgeAlarm => {
            let id = args.get("alarm_id").and_then(Value::as_i64).unwrap_or(0);
            let c = propose_ack(ctx, id)?;
            let data = json!({
                "status": "confirmation_required",
                "alarm_id": id,
                "note": "Tell the person to confirm with the button or the command shown; it is not acknowledged yet.",
            });
            Ok(ToolOutput {
                data,
                confirmations: vec![c],
                ..ToolOutput::default()
            })
        }
        Tool::FloorPlan => {
            let floor = s("floor").unwrap_or_default();
            let measure = s("measure").unwrap_or_else(|| "temperature".into());
            let p = floor_summary(ctx, &floor, &measure).await?;
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
            let t = tenant(ctx, s("tenant").as_deref(), s("room").as_deref()).await?;
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

fn output<T: Serialize>(value: &T, stale: Vec<String>) -> ToolOutput {
    ToolOutput {
        data: serde_json::to_value(value).unwrap_or(Value::Null),
        stale,
        ..ToolOutput::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Sensors and the site
// ---------------------------------------------------------------------------------------------

/// A sensor with its place in the building.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorInfo {
    /// Sensor id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Unit.
    pub unit: String,
    /// Floor id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// Room id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Tenant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Filters of a sensor search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorQuery {
    /// Free words (any language) or a sensor id.
    pub text: Option<String>,
    /// Floor id.
    pub floor: Option<String>,
    /// Room id.
    pub room: Option<String>,
    /// Tenant name or id.
    pub tenant: Option<String>,
    /// Kind.
    pub kind: Option<String>,
}

impl SensorQuery {
    /// A query by free words.
    pub fn text(t: &str) -> Self {
        Self {
            text: Some(t.to_owned()),
            ..Self::default()
        }
    }
}

/// Every sensor with its tenant.
async fn all_sensors(core: &Core) -> Result<Vec<SensorInfo>, ToolError> {
    let rows = core
        .reader
        .sensors()
        .await
        .map_err(|e| ToolError::Database(e.to_string()))?;
    let cfg = core.config();
    let tenants: HashMap<&str, &str> = cfg
        .site
        .tenant
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_deref().unwrap_or(&t.id)))
        .collect();
    let room_tenant: HashMap<&str, &str> = cfg
        .site
        .room
        .iter()
        .filter_map(|r| {
            let t = r.tenant.as_deref()?;
            Some((r.id.as_str(), tenants.get(t).copied().unwrap_or(t)))
        })
        .collect();
    Ok(rows
        .into_iter()
        .map(|r: SensorRow| {
            let tenant = r
                .room
                .as_deref()
                .and_then(|room| room_tenant.get(room))
                .map(|t| (*t).to_owned());
            SensorInfo {
                id: r.id,
                name: r.name,
                kind: r.kind,
                unit: r.unit,
                floor: r.floor,
                room: r.room,
                tenant,
            }
        })
        .collect())
}

/// Words staff use for kinds and equipment, in Russian and English, mapped to the English
/// words sensor ids, names and kinds use. Matched as prefixes of words normalised by `norm`
/// (lower case, `ё` as `е`), so one stem covers every ending.
const GLOSSARY: &[(&str, &str)] = &[
    ("температур", "temperature"),
    ("темп", "temperature"),
    ("градус", "temperature"),
    ("тепло", "temperature"),
    ("холод", "temperature"),
    ("жарк", "temperature"),
    ("temp", "temperature"),
    ("warm", "temperature"),
    ("cold", "temperature"),
    ("hot", "temperature"),
    ("влажн", "humidity"),
    ("humid", "humidity"),
    ("углекисл", "co2"),
    ("со2", "co2"),
    ("воздух", "co2"),
    ("air", "co2"),
    ("давлен", "pressure"),
    ("протеч", "leak"),
    ("потоп", "leak"),
    ("затоп", "leak"),
    ("течь", "leak"),
    ("вода", "leak"),
    ("воды", "leak"),
    ("water", "leak"),
    ("flood", "leak"),
    ("котел", "boiler"),
    ("котл", "boiler"),
    ("горелк", "burner"),
    ("насос", "pump"),
    ("ток", "current"),
    ("подвал", "basement"),
    ("подач", "supply"),
    ("обратк", "return"),
    ("обратн", "return"),
    ("энерги", "energy"),
    ("электр", "energy"),
    ("мощност", "energy"),
    ("счетчик", "energy"),
    ("расход", "flow"),
    ("комнат", "room"),
    ("квартир", "room"),
    ("офис", "room"),
];

/// Normalises a word: lower case, `ё` as `е`, punctuation trimmed.
fn norm(w: &str) -> String {
    w.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
        .replace('ё', "е")
}

/// Words of a text with their glossary translations.
fn expand(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in text.split(|c: char| c.is_whitespace() || c == ',' || c == '?' || c == '!') {
        let w = norm(w);
        if w.is_empty() || STOP_WORDS.contains(&w.as_str()) {
            continue;
        }
        for (stem, en) in GLOSSARY {
            if w.starts_with(&norm(stem)) {
                out.push((*en).to_owned());
            }
        }
        out.push(w);
    }
    out.sort();
    out.dedup();
    out
}

/// Words that say nothing about which sensor is meant.
const STOP_WORDS: &[&str] = &[
    "the",
    "a",
    "an",
    "in",
    "on",
    "of",
    "at",
    "is",
    "are",
    "what",
    "whats",
    "how",
    "show",
    "me",
    "please",
    "any",
    "there",
    "now",
    "current",
    "currently",
    "value",
    "values",
    "reading",
    "readings",
    "sensor",
    "sensors",
    "room",
    "floor",
    "level",
    "and",
    "for",
    "with",
    "to",
    "it",
    "в",
    "на",
    "по",
    "что",
    "как",
    "какая",
    "какой",
    "какие",
    "сейчас",
    "с",
    "со",
    "у",
    "и",
    "покажи",
    "пожалуйста",
    "есть",
    "ли",
    "там",
    "этаж",
    "этаже",
    "комната",
    "комнате",
    "датчик",
    "датчики",
    "значение",
    "это",
];

/// How well a sensor matches the words (0: not at all).
fn score(sensor: &SensorInfo, words: &[String]) -> f64 {
    let hay: Vec<String> = [
        sensor.id.as_str(),
        sensor.name.as_str(),
        sensor.kind.as_str(),
        sensor.room.as_deref().unwrap_or(""),
        sensor.tenant.as_deref().unwrap_or(""),
    ]
    .iter()
    .flat_map(|f| {
        f.split(|c: char| !c.is_alphanumeric())
            .map(norm)
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
    })
    .collect();
    let mut total = 0.0;
    for w in words {
        let best = hay
            .iter()
            .map(|h| {
                if h == w {
                    3.0
                } else if w.chars().count() >= 3
                    && (h.starts_with(w.as_str())
                        || w.starts_with(h.as_str()) && h.chars().count() >= 3)
                {
                    2.0
                } else if w.chars().count() >= 4 && strsim::jaro_winkler(h, w) > 0.88 {
                    1.0
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max);
        total += best;
    }
    total
}

fn eq_label(a: &str, b: &str) -> bool {
    norm(a) == norm(b)
}

/// Sensors matching a query, best first (at most [`FIND_LIMIT`] unless `all`).
async fn search(
    ctx: &ToolContext<'_>,
    q: &SensorQuery,
    all: bool,
) -> Result<Vec<SensorInfo>, ToolError> {
    let sensors = all_sensors(ctx.core).await?;
    let mut candidates: Vec<SensorInfo> = sensors
        .into_iter()
        .filter(|s| {
            q.floor
                .as_deref()
                .is_none_or(|f| s.floor.as_deref().is_some_and(|sf| eq_label(sf, f)))
        })
        .filter(|s| {
            q.room
                .as_deref()
                .is_none_or(|r| s.room.as_deref().is_some_and(|sr| eq_label(sr, r)))
        })
        .filter(|s| q.kind.as_deref().is_none_or(|k| eq_label(&s.kind, k)))
        .filter(|s| {
            q.tenant.as_deref().is_none_or(|t| {
                s.tenant.as_deref().is_some_and(|st| {
                    let (st, t) = (norm(st), norm(t));
                    st.contains(&t) || strsim::jaro_winkler(&st, &t) > 0.88
                })
            })
        })
        .collect();
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // An exact id wins outright.
        if let Some(exact) = candidates.iter().find(|s| s.id == text) {
            return Ok(vec![exact.clone()]);
        }
        let words = expand(text);
        if !words.is_empty() {
            let mut scored: Vec<(f64, SensorInfo)> = candidates
                .into_iter()
                .map(|s| (score(&s, &words), s))
                .filter(|(sc, _)| *sc > 0.0)
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
            let best = scored.first().map_or(0.0, |s| s.0);
            // Keep the matches about as good as the best one.
            candidates = scored
                .into_iter()
                .filter(|(sc, _)| *sc >= best * 0.75)
                .map(|(_, s)| s)
                .collect();
        }
    }
    if !all {
        candidates.truncate(FIND_LIMIT);
    }
    Ok(candidates)
}

/// Sensors matching a query (`find_sensors`).
///
/// # Errors
/// The database could not be read.
pub async fn find(ctx: &ToolContext<'_>, q: &SensorQuery) -> Result<Vec<SensorInfo>, ToolError> {
    search(ctx, q, false).await
}

/// Text for the model when nothing matched: the floors, rooms and kinds that exist.
async fn no_sensor_hint(ctx: &ToolContext<'_>, q: &SensorQuery) -> String {
    let sensors = all_sensors(ctx.core).await.unwrap_or_default();
    let mut floors: Vec<&str> = sensors.iter().filter_map(|s| s.floor.as_deref()).collect();
    floors.sort_unstable();
    floors.dedup();
    let mut kinds: Vec<&str> = sensors.iter().map(|s| s.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut rooms: Vec<&str> = sensors.iter().filter_map(|s| s.room.as_deref()).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let rooms_shown: Vec<&str> = rooms.iter().take(20).copied().collect();
    let asked: Vec<String> = [
        ("words", &q.text),
        ("floor", &q.floor),
        ("room", &q.room),
        ("tenant", &q.tenant),
        ("kind", &q.kind),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| format!("{k} \"{v}\"")))
    .collect();
    let asked = if asked.is_empty() {
        "nothing".to_owned()
    } else {
        asked.join(", ")
    };
    format!(
        "no sensor matches {asked}. Floors: {}. Kinds: {}. Rooms include: {}{}. Try find_sensors with fewer words, or site_overview.",
        floors.join(", "),
        kinds.join(", "),
        rooms_shown.join(", "),
        if rooms.len() > rooms_shown.len() {
            ", ..."
        } else {
            ""
        },
    )
}

/// The latest value of a sensor, for people and the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadingItem {
    /// Sensor id.
    pub sensor: String,
    /// Name.
    pub name: String,
    /// Value (absent when the reading failed).
    pub value: Option<f64>,
    /// Unit.
    pub unit: String,
    /// Quality (`good`, `bad`, `stale`, `comm_error`).
    pub quality: Quality,
    /// Read time, RFC 3339 UTC.
    pub time: String,
    /// Age in seconds.
    pub age_s: i64,
    /// Older than `[agent] stale_after`, or not a good reading.
    pub stale: bool,
    /// Floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// Room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// Latest readings of the sensors a query selects (`current_readings`). With a free-text
/// query the best matches only; with only filters, every sensor they select (capped).
///
/// # Errors
/// The database could not be read.
pub async fn readings(
    ctx: &ToolContext<'_>,
    q: &SensorQuery,
) -> Result<Vec<ReadingItem>, ToolError> {
    let sensors = search(ctx, q, true).await?;
    let stale_after =
        i64::try_from(ctx.core.config().agent.stale_after.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for s in sensors.into_iter().take(READINGS_LIMIT) {
        let Some(latest) = ctx.core.store.latest.get(&s.id) else {
            continue;
        };
        let age_ms = ctx.now.as_millis() - latest.ts.as_millis();
        out.push(ReadingItem {
            name: if s.name.is_empty() {
                s.id.clone()
            } else {
                s.name.clone()
            },
            sensor: s.id,
            value: latest.value,
            unit: s.unit,
            quality: latest.quality,
            time: latest.ts.to_rfc3339(),
            age_s: age_ms / 1000,
            stale: latest.quality != Quality::Good || age_ms > stale_after,
            floor: s.floor,
            room: s.room,
        });
    }
    Ok(out)
}

/// One sensor by id or words: the best match.
async fn resolve_sensor(ctx: &ToolContext<'_>, text: &str) -> Result<SensorInfo, ToolError> {
    let found = search(ctx, &SensorQuery::text(text), false).await?;
    match found.into_iter().next() {
        Some(s) => Ok(s),
        None => Err(ToolError::NoSensor(
            no_sensor_hint(ctx, &SensorQuery::text(text)).await,
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------

/// Seconds of a history range (`1h` ... `30d`; anything humantime parses; default 24 h).
pub fn range_secs(range: &str) -> u64 {
    humantime::parse_duration(range.trim())
        .map(|d| d.as_secs())
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(86_400)
        .min(366 * 86_400)
}

/// One interval of a history summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Interval start, RFC 3339 UTC.
    pub from: String,
    /// The aggregated value.
    pub value: f64,
}

/// A sensor's history over a range (`history`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistorySummary {
    /// Sensor id.
    pub sensor: String,
    /// Name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Range asked for.
    pub range: String,
    /// Aggregation per interval.
    pub aggregation: String,
    /// Good readings in the range.
    pub count: i64,
    /// Lowest value.
    pub min: Option<f64>,
    /// Highest value.
    pub max: Option<f64>,
    /// Average.
    pub avg: Option<f64>,
    /// Newest value and its time.
    pub last: Option<f64>,
    /// Time of the newest value.
    pub last_time: Option<String>,
    /// Values per interval (empty intervals omitted: no data then).
    pub points: Vec<HistoryPoint>,
}

/// A sensor's history (`history`).
///
/// # Errors
/// Unknown sensor, or the database could not be read.
pub async fn history(
    ctx: &ToolContext<'_>,
    sensor: &str,
    range: &str,
    aggregation: &str,
) -> Result<HistorySummary, ToolError> {
    let s = resolve_sensor(ctx, sensor).await?;
    let secs = range_secs(range);
    let span_ms = i64::try_from(secs).unwrap_or(i64::MAX / 2_000) * 1000;
    let from = ctx.now.as_millis() - span_ms;
    let bucket = (span_ms / HISTORY_BUCKETS).max(1);
    let (rows, last) = ctx
        .core
        .reader
        .history_buckets(&s.id, Timestamp(from), ctx.now, bucket)
        .await
        .map_err(|e| ToolError::Database(e.to_string()))?;
    let count: i64 = rows.iter().map(|r| r.count).sum();
    let min = rows.iter().map(|r| r.min).reduce(f64::min);
    let max = rows.iter().map(|r| r.max).reduce(f64::max);
    let avg = (count > 0)
        .then(|| rows.iter().map(|r| r.avg * r.count as f64).sum::<f64>() / count as f64);
    let points = rows
        .iter()
        .map(|r| HistoryPoint {
            from: Timestamp(from + r.index * bucket).to_rfc3339(),
            value: round3(match aggregation {
                "min" => r.min,
                "max" => r.max,
                "last" => r.last,
                _ => r.avg,
            }),
        })
        .collect();
    Ok(HistorySummary {
        name: s.name,
        sensor: s.id,
        unit: s.unit,
        range: range.to_owned(),
        aggregation: aggregation.to_owned(),
        count,
        min: min.map(round3),
        max: max.map(round3),
        avg: avg.map(round3),
        last: last.map(|l| round3(l.1)),
        last_time: last.map(|l| l.0.to_rfc3339()),
        points,
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

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

/// Waiting time before a tool's result is considered for an answer; keeps a slow database from
/// holding a turn.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_meets_koboldcpp_constraints() {
        for spec in specs() {
            let problems = super::super::llm::check_tool_spec(&spec);
            assert!(problems.is_empty(), "{}: {problems:?}", spec.name);
        }
        assert_eq!(specs().len(), Tool::ALL.len());
        for t in Tool::ALL {
            assert_eq!(Tool::from_name(t.name()), Some(t));
        }
        assert_eq!(Tool::from_name("shell"), None);
    }

    #[test]
    fn validation_coerces_and_explains() {
        let args = |v: Value| v.as_object().cloned().unwrap_or_default();
        let ok = validate(
            Tool::History,
            args(json!({"sensor": "f3.r301.temperature", "range": "7D", "chart": "true", "extra": 1})),
        )
        .expect("valid");
        assert_eq!(ok.get("range"), Some(&json!("7d")));
        assert_eq!(ok.get("chart"), Some(&json!(true)));
        assert!(!ok.contains_key("extra"));

        let ack =
            validate(Tool::AcknowledgeAlarm, args(json!({"alarm_id": "#12"}))).expect("valid");
        assert_eq!(ack.get("alarm_id"), Some(&json!(12)));
        let ack = validate(Tool::AcknowledgeAlarm, args(json!({"alarm_id": 12.0}))).expect("valid");
        assert_eq!(ack.get("alarm_id"), Some(&json!(12)));

        let missing = validate(Tool::History, args(json!({"range": "1h"}))).expect_err("missing");
        assert!(missing.contains("\"sensor\" is required"), "{missing}");
        let bad_enum =
            validate(Tool::Alarms, args(json!({"state": "activ"}))).expect_err("bad enum");
        assert!(bad_enum.contains("one of open, active"), "{bad_enum}");
        assert!(bad_enum.contains("did you mean active?"), "{bad_enum}");
        let bad_type = validate(Tool::AcknowledgeAlarm, args(json!({"alarm_id": "twelve"})))
            .expect_err("type");
        assert!(bad_type.contains("must be a integer"), "{bad_type}");
        // Empty strings are absent, not errors.
        let empty = validate(
            Tool::CurrentReadings,
            args(json!({"room": "", "sensor": null})),
        )
        .expect("valid");
        assert!(empty.is_empty());
    }

    #[test]
    fn russian_words_reach_english_sensor_names() {
        let words = expand("Что с котлом? Какая температура подачи");
        for w in ["boiler", "temperature", "supply"] {
            assert!(words.contains(&w.to_owned()), "{w} missing from {words:?}");
        }
        let boiler = SensorInfo {
            id: "boiler.supply_temp".into(),
            name: "Boiler supply temperature".into(),
            kind: "temperature".into(),
            unit: "°C".into(),
            floor: Some("B".into()),
            room: Some("boiler room".into()),
            tenant: None,
        };
        let room = SensorInfo {
            id: "f3.r301.temperature".into(),
            name: "Room 301 temperature".into(),
            kind: "temperature".into(),
            unit: "°C".into(),
            floor: Some("3".into()),
            room: Some("301".into()),
            tenant: None,
        };
        assert!(score(&boiler, &words) > score(&room, &words));
        let in_301 = expand("temperature in 301");
        assert!(score(&room, &in_301) > score(&boiler, &in_301));
        assert!(expand("протечка в подвале").contains(&"leak".to_owned()));
    }

    #[test]
    fn ranges_parse_with_a_default() {
        assert_eq!(range_secs("1h"), 3600);
        assert_eq!(range_secs("7d"), 7 * 86_400);
        assert_eq!(range_secs("nonsense"), 86_400);
        assert_eq!(range_secs("100y"), 366 * 86_400);
    }
}
