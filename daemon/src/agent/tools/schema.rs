//! The tools' arguments: typed structs whose JSON Schemas are derived with `schemars`, shaped
//! for what Koboldcpp and llama.cpp's server turn into a grammar, and filled with the site's own
//! vocabulary; and the validation that checks and coerces what a model sends against that
//! schema, answering in plain words with examples from the site.
//!
//! Shaping (what the derived schema has and the servers do not take well): `$schema`, `title`,
//! the struct's own description, `format`, `default` and `minimum` are dropped; `Option<T>`'s
//! `"type": ["string", "null"]` becomes `"string"` (a grammar that allows `null` lets a small
//! model write it); `properties` is always there (`{}` for no arguments), every property has a
//! `type`, and `required` is left out when empty.
//!
//! Site vocabulary: a property marked `x-site` (floor, room, tenant, kind, measure, sensor) gets
//! an `enum` of the values the site has, from `[site]` in the configuration and the sensors
//! table, so a grammar-constrained model cannot write a room that does not exist. Enumerations
//! are bounded: one with more than [`ENUM_MAX_VALUES`] values, or one that would take the
//! enumerations of the whole tool list past [`ENUM_TOKEN_BUDGET`] estimated tokens, stays free
//! text, and its description sends the model to `find_sensors`, which searches by words. The
//! small vocabularies are listed first (kinds, measures, floors, tenants, rooms, then sensor
//! ids), so a large site loses the sensor id list first. docs/agent.md has the figures.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::search::{SensorInfo, all_sensors};
use super::{Tool, ToolError};
use crate::agent::llm::estimate_tokens;
use crate::config::Config;

/// Most values one site enumeration lists.
pub const ENUM_MAX_VALUES: usize = 100;
/// Most estimated tokens ([`estimate_tokens`], an upper bound) that the site enumerations of
/// the whole tool list may take, each counted once per property that lists it.
pub const ENUM_TOKEN_BUDGET: u32 = 1500;

/// Sensor kinds (`crate::model::SensorKind` names): the `kind` enumeration without a site.
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
/// Floor plan measures: the kinds a plan can colour rooms by, and alarms.
pub const MEASURES: [&str; 4] = ["temperature", "humidity", "co2", "alarms"];

// ---------------------------------------------------------------------------------------------
// Typed arguments
// ---------------------------------------------------------------------------------------------

/// Arguments of a tool without any.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct NoArgs {}

/// Arguments of `find_sensors`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct FindSensorsArgs {
    /// words to match: name, room, equipment, in any language (e.g. 'boiler', 'котёл', '301')
    pub(crate) query: Option<String>,
    /// floor id
    #[schemars(extend("x-site" = "floor"))]
    pub(crate) floor: Option<String>,
    /// room or unit id
    #[schemars(extend("x-site" = "room"))]
    pub(crate) room: Option<String>,
    /// tenant name
    #[schemars(extend("x-site" = "tenant"))]
    pub(crate) tenant: Option<String>,
    /// sensor kind
    #[schemars(extend("x-site" = "kind"))]
    pub(crate) kind: Option<String>,
}

/// Arguments of `current_readings`: at least one of them (checked by [`validate`]).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct CurrentReadingsArgs {
    /// sensor id
    #[schemars(extend("x-site" = "sensor"))]
    pub(crate) sensor: Option<String>,
    /// room or unit id
    #[schemars(extend("x-site" = "room"))]
    pub(crate) room: Option<String>,
    /// floor id
    #[schemars(extend("x-site" = "floor"))]
    pub(crate) floor: Option<String>,
    /// sensor kind
    #[schemars(extend("x-site" = "kind"))]
    pub(crate) kind: Option<String>,
}

/// How far back a history goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub(crate) enum Range {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "6h")]
    SixHours,
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::SixHours => "6h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }
}

/// The value per interval of a history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Aggregation {
    #[default]
    Avg,
    Min,
    Max,
    Last,
}

impl Aggregation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Last => "last",
        }
    }
}

/// Arguments of `history`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub(crate) struct HistoryArgs {
    /// sensor id
    #[schemars(extend("x-site" = "sensor"))]
    pub(crate) sensor: String,
    /// how far back
    pub(crate) range: Option<Range>,
    /// value per interval
    pub(crate) aggregation: Option<Aggregation>,
    /// attach a chart picture
    pub(crate) chart: Option<bool>,
}

/// Which alarms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AlarmState {
    #[default]
    Open,
    Active,
    Unacknowledged,
    All,
}

impl AlarmState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Active => "active",
            Self::Unacknowledged => "unacknowledged",
            Self::All => "all",
        }
    }
}

/// Least severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LeastSeverity {
    Low,
    Medium,
    High,
    Critical,
}

impl LeastSeverity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// Arguments of `alarms`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct AlarmsArgs {
    /// open: active or awaiting acknowledgement
    pub(crate) state: Option<AlarmState>,
    /// least severity
    pub(crate) severity: Option<LeastSeverity>,
    /// floor id
    #[schemars(extend("x-site" = "floor"))]
    pub(crate) floor: Option<String>,
}

/// Arguments of `acknowledge_alarm`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub(crate) struct AcknowledgeArgs {
    /// alarm number from the alarms tool
    pub(crate) alarm_id: i64,
}

/// Arguments of `floor_plan`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub(crate) struct FloorPlanArgs {
    /// floor id
    #[schemars(extend("x-site" = "floor"))]
    pub(crate) floor: String,
    /// what colours the rooms
    #[schemars(extend("x-site" = "measure"))]
    pub(crate) measure: Option<String>,
}

/// Arguments of `tenant_info`: the tenant, or a room to find its tenant by (at least one,
/// checked by [`validate`]).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct TenantArgs {
    /// tenant name
    #[schemars(extend("x-site" = "tenant"))]
    pub(crate) tenant: Option<String>,
    /// a room, to find who rents it
    #[schemars(extend("x-site" = "room"))]
    pub(crate) room: Option<String>,
}

/// The schema `schemars` derives for `tool`'s argument struct, before shaping.
fn derived(tool: Tool) -> Value {
    fn of<T: JsonSchema>() -> Value {
        schemars::generate::SchemaSettings::draft07()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value()
    }
    match tool {
        Tool::SiteOverview | Tool::SyncStatus => of::<NoArgs>(),
        Tool::FindSensors => of::<FindSensorsArgs>(),
        Tool::CurrentReadings => of::<CurrentReadingsArgs>(),
        Tool::History => of::<HistoryArgs>(),
        Tool::Alarms => of::<AlarmsArgs>(),
        Tool::AcknowledgeAlarm => of::<AcknowledgeArgs>(),
        Tool::FloorPlan => of::<FloorPlanArgs>(),
        Tool::TenantInfo => of::<TenantArgs>(),
    }
}

/// Tools where at least one of these arguments must be given, though none alone is required:
/// an argument-less call would list every sensor.
pub(crate) fn one_of_required(tool: Tool) -> &'static [&'static str] {
    match tool {
        Tool::FindSensors => &["query", "floor", "room", "tenant", "kind"],
        Tool::CurrentReadings => &["sensor", "room", "floor", "kind"],
        Tool::TenantInfo => &["tenant", "room"],
        _ => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// The site's vocabulary
// ---------------------------------------------------------------------------------------------

/// One vocabulary of the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vocab {
    /// Sensor kinds present.
    Kind,
    /// Floor plan measures.
    Measure,
    /// Floor ids.
    Floor,
    /// Tenant names.
    Tenant,
    /// Room ids.
    Room,
    /// Sensor ids.
    Sensor,
}

impl Vocab {
    /// In the order enumerations are granted: small, much-used vocabularies first.
    pub const ALL: [Self; 6] = [
        Self::Kind,
        Self::Measure,
        Self::Floor,
        Self::Tenant,
        Self::Room,
        Self::Sensor,
    ];

    fn from_mark(mark: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.noun() == mark)
    }

    /// The word for one value, as the schema marks it and errors say it.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Kind => "kind",
            Self::Measure => "measure",
            Self::Floor => "floor",
            Self::Tenant => "tenant",
            Self::Room => "room",
            Self::Sensor => "sensor",
        }
    }
}

/// What the site has, for the tools' enumerations and the examples of their errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Site {
    /// Values per vocabulary, in [`Vocab::ALL`] order, each sorted and without duplicates.
    values: [Vec<String>; 6],
    /// Which vocabularies are listed as enumerations (the rest stay free text).
    listed: [bool; 6],
}

impl Site {
    /// The site of the configuration and the sensors table.
    ///
    /// # Errors
    /// The sensors table could not be read.
    pub async fn load(core: &crate::context::Core) -> Result<Self, ToolError> {
        let sensors = all_sensors(core).await?;
        Ok(Self::new(&core.config(), &sensors))
    }

    /// The site of `cfg` and `sensors`, with its enumerations bounded.
    pub fn new(cfg: &Config, sensors: &[SensorInfo]) -> Self {
        let set = |it: &mut dyn Iterator<Item = String>| -> Vec<String> {
            let s: BTreeSet<String> = it.filter(|v| !v.trim().is_empty()).collect();
            s.into_iter().collect()
        };
        let present: BTreeSet<&str> = sensors.iter().map(|s| s.kind.as_str()).collect();
        // Kinds in their usual order; kinds the sensors table has that are not known, after.
        let mut kinds: Vec<String> = KINDS
            .iter()
            .filter(|k| present.contains(*k))
            .map(|k| (*k).to_owned())
            .collect();
        kinds.extend(
            present
                .iter()
                .filter(|k| !KINDS.contains(*k) && !k.is_empty())
                .map(|k| (*k).to_owned()),
        );
        let measures: Vec<String> = MEASURES
            .iter()
            .filter(|m| **m == "alarms" || present.contains(*m))
            .map(|m| (*m).to_owned())
            .collect();
        let floors = set(&mut cfg
            .site
            .floor
            .iter()
            .map(|f| f.id.clone())
            .chain(sensors.iter().filter_map(|s| s.floor.clone())));
        let rooms = set(&mut cfg
            .site
            .room
            .iter()
            .map(|r| r.id.clone())
            .chain(sensors.iter().filter_map(|s| s.room.clone())));
        let tenants = set(&mut cfg
            .site
            .tenant
            .iter()
            .map(|t| t.name.clone().unwrap_or_else(|| t.id.clone())));
        let ids = set(&mut sensors.iter().map(|s| s.id.clone()));
        Self::from_values([kinds, measures, floors, tenants, rooms, ids])
    }

    /// A site from its vocabularies in [`Vocab::ALL`] order, with its enumerations bounded.
    pub fn from_values(values: [Vec<String>; 6]) -> Self {
        let mut site = Self {
            values,
            listed: [false; 6],
        };
        let mut left = ENUM_TOKEN_BUDGET;
        for v in Vocab::ALL {
            let list = site.values(v);
            if list.is_empty() || list.len() > ENUM_MAX_VALUES {
                continue;
            }
            let cost = enum_tokens(list).saturating_mul(uses(v));
            if cost <= left {
                left -= cost;
                site.listed[v as usize] = true;
            }
        }
        site
    }

    /// The values of a vocabulary.
    pub fn values(&self, v: Vocab) -> &[String] {
        &self.values[v as usize]
    }

    /// Whether a vocabulary is listed as an enumeration.
    pub fn listed(&self, v: Vocab) -> bool {
        self.listed[v as usize]
    }

    /// A few values for an example: `101, 102, 103 (and 27 more)`.
    pub fn examples(&self, v: Vocab) -> String {
        let all = self.values(v);
        let shown: Vec<&str> = all.iter().take(8).map(String::as_str).collect();
        if shown.is_empty() {
            return "none".to_owned();
        }
        let more = all.len() - shown.len();
        if more > 0 {
            format!("{} (and {more} more)", shown.join(", "))
        } else {
            shown.join(", ")
        }
    }
}

/// Estimated tokens of a list of values as JSON.
pub fn enum_tokens(values: &[String]) -> u32 {
    estimate_tokens(&serde_json::to_string(values).unwrap_or_default())
}

/// How many properties of the tool list name a vocabulary.
fn uses(v: Vocab) -> u32 {
    let mark = v.noun();
    let n = Tool::ALL
        .iter()
        .map(|t| {
            derived(*t)
                .get("properties")
                .and_then(Value::as_object)
                .map_or(0, |p| {
                    p.values()
                        .filter(|p| p.get("x-site").and_then(Value::as_str) == Some(mark))
                        .count()
                })
        })
        .sum::<usize>();
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Shaping
// ---------------------------------------------------------------------------------------------

/// `tool`'s parameters as sent to the server: shaped, with the site's enumerations when
/// `site` is given (without one, `kind` and `measure` list every kind and measure, and the
/// other site properties are free text).
pub(super) fn parameters(tool: Tool, site: Option<&Site>) -> Value {
    let mut root = derived(tool);
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    let mut props = Map::new();
    if let Some(p) = root.get_mut("properties").and_then(Value::as_object_mut) {
        for (k, v) in std::mem::take(p) {
            props.insert(k, shape_property(v, site));
        }
    }
    out.insert("properties".into(), Value::Object(props));
    if let Some(req) = root.get("required").and_then(Value::as_array)
        && !req.is_empty()
    {
        let mut req = req.clone();
        req.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        out.insert("required".into(), Value::Array(req));
    }
    Value::Object(out)
}

fn shape_property(v: Value, site: Option<&Site>) -> Value {
    let Value::Object(mut p) = v else {
        return json!({"type": "string"});
    };
    // `anyOf: [T, {"type": "null"}]` (an optional enum): T with the description kept.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = p.remove(key) {
            let mut kept = alts
                .into_iter()
                .filter(|a| a.get("type") != Some(&json!("null")));
            if let Some(Value::Object(inner)) = kept.next() {
                for (k, v) in inner {
                    p.entry(k).or_insert(v);
                }
            }
        }
    }
    if let Some(Value::Array(types)) = p.get("type").cloned() {
        let kept: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
        let t = if kept.len() == 1 {
            kept[0].clone()
        } else {
            Value::Array(kept)
        };
        p.insert("type".into(), t);
    }
    if let Some(Value::Array(e)) = p.get_mut("enum") {
        e.retain(|x| !x.is_null());
    }
    for k in [
        "format", "default", "minimum", "maximum", "title", "$schema",
    ] {
        p.remove(k);
    }
    if let Some(mark) = p.remove("x-site") {
        let vocab = mark.as_str().and_then(Vocab::from_mark);
        p.insert("type".into(), json!("string"));
        match (vocab, site) {
            (Some(v), Some(site)) if site.listed(v) => {
                p.insert("enum".into(), json!(site.values(v)));
            }
            (Some(v), Some(site)) if !site.values(v).is_empty() => {
                let d = p
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let hint = if v == Vocab::Sensor {
                    " as find_sensors gives it".to_owned()
                } else {
                    format!(", e.g. {}", site.values(v)[0])
                };
                p.insert("description".into(), json!(format!("{d}{hint}")));
            }
            (Some(Vocab::Kind), None) => {
                p.insert("enum".into(), json!(KINDS));
            }
            (Some(Vocab::Measure), None) => {
                p.insert("enum".into(), json!(MEASURES));
            }
            _ => {}
        }
    }
    if !p.contains_key("type") {
        p.insert("type".into(), json!("string"));
    }
    Value::Object(p)
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Checks and coerces arguments against a tool's schema for `site`: numbers given as text
/// become numbers, enumerated values match case-insensitively, unknown keys are dropped, empty
/// strings count as absent. The error is plain words for the model, with real examples.
///
/// # Errors
/// A missing required argument, a value of the wrong type, a value that is not one of the
/// site's, a value with no letter or digit, none of the arguments a search needs.
pub fn validate(
    tool: Tool,
    args: Map<String, Value>,
    site: &Site,
) -> Result<Map<String, Value>, String> {
    let schema = parameters(tool, Some(site));
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let generic = parameters(tool, None);
    let mut out = Map::new();
    for (key, value) in args {
        let Some(prop) = props.get(&key) else {
            continue;
        };
        if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let vocab = derived(tool)
            .pointer(&format!("/properties/{key}/x-site"))
            .and_then(Value::as_str)
            .and_then(Vocab::from_mark);
        let noun = vocab.map_or_else(|| key.clone(), |v| v.noun().to_owned());
        let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
        let Some(coerced) = coerce(ty, value.clone()) else {
            return Err(format!(
                "{key} must be {}, not {value}; for example {}",
                type_words(ty),
                example_with(tool, site, &key)
            ));
        };
        if let Some(text) = coerced.as_str() {
            let described = generic
                .pointer(&format!("/properties/{key}/description"))
                .and_then(Value::as_str)
                .is_some_and(|d| d.eq_ignore_ascii_case(text));
            if !text.chars().any(char::is_alphanumeric) || described {
                return Err(format!(
                    "{text:?} is not a {noun}; {}",
                    what_exists(tool, site, &key, vocab)
                ));
            }
        }
        let coerced = match prop.get("enum").and_then(Value::as_array) {
            Some(allowed) => {
                let text = coerced.as_str().unwrap_or_default().trim().to_lowercase();
                let found = allowed
                    .iter()
                    .find(|a| a.as_str().is_some_and(|a| a.to_lowercase() == text));
                // A server that does not hold the model to the grammar may send part of a
                // value ("supply" for "boiler.supply_temp"): taken when one value has it.
                let containing: Vec<&str> = allowed
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|a| text.chars().count() >= 2 && a.to_lowercase().contains(&text))
                    .collect();
                match found {
                    Some(a) => a.clone(),
                    None if containing.len() == 1 => Value::String(containing[0].to_owned()),
                    None if containing.len() > 1 => {
                        let mut ex = Map::new();
                        ex.insert(key.clone(), Value::String(containing[0].to_owned()));
                        return Err(format!(
                            "{noun} {text:?} could be any of {}; give one, for example {}",
                            containing
                                .iter()
                                .take(8)
                                .copied()
                                .collect::<Vec<_>>()
                                .join(", "),
                            Value::Object(ex)
                        ));
                    }
                    None => {
                        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                        return Err(format!(
                            "there is no {noun} {text:?}{}; {}",
                            did_you_mean(&text, &names),
                            what_exists(tool, site, &key, vocab)
                        ));
                    }
                }
            }
            None => coerced,
        };
        out.insert(key, coerced);
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for r in required {
        if !out.contains_key(r) {
            return Err(format!(
                "{r} is required; for example {}",
                example_with(tool, site, r)
            ));
        }
    }
    let any = one_of_required(tool);
    if !any.is_empty() && !any.iter().any(|k| out.contains_key(*k)) {
        return Err(format!(
            "say which: give {}; for example {}",
            any.join(" or "),
            example_with(tool, site, any[1.min(any.len() - 1)])
        ));
    }
    Ok(out)
}

fn type_words(ty: &str) -> &'static str {
    match ty {
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        _ => "text",
    }
}

/// "rooms here are 101, 102 (and 3 more); for example {"room":"101"}".
fn what_exists(tool: Tool, site: &Site, key: &str, vocab: Option<Vocab>) -> String {
    let example = example_with(tool, site, key);
    match vocab {
        Some(v) if !site.values(v).is_empty() => {
            let search = if site.listed(v) {
                ""
            } else {
                "; find_sensors searches by words"
            };
            format!(
                "{}s here: {}; for example {example}{search}",
                v.noun(),
                site.examples(v)
            )
        }
        _ => format!("for example {example}"),
    }
}

/// An argument object for `tool` with `key` set to a real value of the site.
pub fn example_with(tool: Tool, site: &Site, key: &str) -> String {
    let schema = parameters(tool, Some(site));
    let prop = schema.pointer(&format!("/properties/{key}"));
    let vocab = derived(tool)
        .pointer(&format!("/properties/{key}/x-site"))
        .and_then(Value::as_str)
        .and_then(Vocab::from_mark);
    let value = example_value(prop, vocab.and_then(|v| site.values(v).first()));
    let mut ex = Map::new();
    ex.insert(key.to_owned(), value);
    Value::Object(ex).to_string()
}

/// An example argument object for `tool` on `site`: every property with a real value.
pub fn example(tool: Tool, site: &Site) -> String {
    let schema = parameters(tool, Some(site));
    let mut ex = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let vocab = derived(tool)
                .pointer(&format!("/properties/{k}/x-site"))
                .and_then(Value::as_str)
                .and_then(Vocab::from_mark);
            ex.insert(
                k.clone(),
                example_value(Some(p), vocab.and_then(|v| site.values(v).first())),
            );
        }
    }
    Value::Object(ex).to_string()
}

fn example_value(prop: Option<&Value>, real: Option<&String>) -> Value {
    let ty = prop.and_then(|p| p.get("type")).and_then(Value::as_str);
    let first = prop
        .and_then(|p| p.get("enum"))
        .and_then(Value::as_array)
        .and_then(|e| e.first());
    match (ty, first, real) {
        (_, Some(first), _) => first.clone(),
        (_, None, Some(real)) => Value::String(real.clone()),
        (Some("integer"), _, _) => Value::from(1),
        (Some("number"), _, _) => Value::from(1.0),
        (Some("boolean"), _, _) => Value::Bool(false),
        _ => Value::String("boiler".into()),
    }
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
        .map(|n| (strsim::jaro_winkler(given, &n.to_lowercase()), *n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!(" (did you mean {n}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
