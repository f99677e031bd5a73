//! Finding sensors: every sensor with its place and tenant, the words staff use for kinds and
//! equipment in Russian and English, scoring by words and filtering by floor, room, tenant and
//! kind, and the plain-words hint with the site's own floors, rooms and kinds when nothing
//! matches.
//!
//! Owns: sensor search. Does not own: readings or history (`super::readings`).

use std::collections::HashMap;

use serde::Serialize;

use super::{ToolContext, ToolError};
use crate::context::Core;
use crate::store::SensorRow;

/// Most sensors one search returns.
pub(super) const FIND_LIMIT: usize = 10;

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
pub(super) async fn all_sensors(core: &Core) -> Result<Vec<SensorInfo>, ToolError> {
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
pub(super) fn norm(w: &str) -> String {
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

pub(super) fn eq_label(a: &str, b: &str) -> bool {
    norm(a) == norm(b)
}

/// Sensors matching a query, best first (at most [`FIND_LIMIT`] unless `all`).
pub(super) async fn search(
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
pub(super) async fn no_sensor_hint(ctx: &ToolContext<'_>, q: &SensorQuery) -> String {
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

/// One sensor by id or words: the best match.
pub(super) async fn resolve_sensor(
    ctx: &ToolContext<'_>,
    text: &str,
) -> Result<SensorInfo, ToolError> {
    let found = search(ctx, &SensorQuery::text(text), false).await?;
    match found.into_iter().next() {
        Some(s) => Ok(s),
        None => Err(ToolError::NoSensor(
            no_sensor_hint(ctx, &SensorQuery::text(text)).await,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
