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
//!
//! Layout: `args` the typed argument structs; `site` the site's vocabulary and its bounds;
//! this file the derivation and shaping of the schemas; `validate` the check of what a model
//! sends, with its examples.

mod args;
mod site;
mod validate;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

pub(crate) use self::args::{
    AcknowledgeArgs, AlarmsArgs, CurrentReadingsArgs, FindSensorsArgs, FloorPlanArgs, HistoryArgs,
    LeastSeverity, NoArgs, TenantArgs,
};
pub use self::site::{Site, Vocab, enum_tokens};
pub use self::validate::{did_you_mean, example, example_with, validate};
use super::Tool;

/// Most values one site enumeration lists.
pub const ENUM_MAX_VALUES: usize = 100;
/// Most estimated tokens ([`estimate_tokens`](crate::agent::llm::estimate_tokens), an upper
/// bound) that the site enumerations of the whole tool list may take, each counted once per
/// property that lists it.
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

#[cfg(test)]
mod tests;
