//! The site's vocabulary: the floors, rooms, tenants, kinds, measures and sensor ids a tool's
//! enumerations list, bounded by [`ENUM_MAX_VALUES`] and [`ENUM_TOKEN_BUDGET`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::{ENUM_MAX_VALUES, ENUM_TOKEN_BUDGET, KINDS, MEASURES, Tool, derived};
use crate::agent::llm::estimate_tokens;
use crate::agent::tools::ToolError;
use crate::agent::tools::search::{SensorInfo, all_sensors};
use crate::config::Config;

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

    pub(super) fn from_mark(mark: &str) -> Option<Self> {
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
