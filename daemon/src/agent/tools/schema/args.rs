//! The tools' typed arguments: the structs `schemars` derives the schemas from, with the
//! `x-site` marks that ask for the site's vocabulary.

use schemars::JsonSchema;
use serde::Deserialize;

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
