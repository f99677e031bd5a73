//! The data model shared by every component: readings, sensors, qualities, sequence numbers,
//! and the words people and alarms are described with (language, severity, alarm state, role,
//! actor).
//!
//! Owns: the vocabulary types; imports nothing else of the crate. Does not own: how they are
//! stored (see `crate::store`) or configured (see `crate::config`).

pub mod plane;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A sensor's stable identifier, e.g. `f3.r301.temperature`.
///
/// Cheap to clone: sources build their ids once and reuse them for every reading.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SensorId(Arc<str>);

impl SensorId {
    /// Wraps a sensor id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl From<&str> for SensorId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// Milliseconds since the Unix epoch, UTC: the read time of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Where [`Timestamp::now`] reads the time, once the gateway's clock is installed.
static NOW: std::sync::OnceLock<fn() -> i64> = std::sync::OnceLock::new();

/// Routes [`Timestamp::now`] through `now` (the gateway's clock, `crate::clock`) for the rest of
/// the process. The first call wins.
pub fn route_now(now: fn() -> i64) {
    if NOW.set(now).is_err() {
        // Already routed: one clock per process.
    }
}

impl Timestamp {
    /// Now: the gateway's clock once it is installed (the wall clock while it is trusted,
    /// stamps that follow the monotonic clock while it is not), else the wall clock.
    pub fn now() -> Self {
        match NOW.get() {
            Some(now) => Self(now()),
            None => Self::from_system(SystemTime::now()),
        }
    }

    /// Converts a `SystemTime`; times before the epoch clamp to 0.
    pub fn from_system(t: SystemTime) -> Self {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This time as a `SystemTime`.
    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }

    /// RFC 3339 with milliseconds, UTC (`2026-11-23T10:00:00.123Z`).
    pub fn to_rfc3339(self) -> String {
        humantime::format_rfc3339_millis(self.to_system()).to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// How much a reading can be trusted.
///
/// A reading that is not `Good` never carries a fabricated number: failed reads have no value,
/// and a stale value keeps the time it was read, never a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read successfully and within its plausible range.
    Good,
    /// The device answered, but the value is unusable (exception, sentinel, out of range).
    Bad,
    /// No fresh value arrived within the expected time.
    Stale,
    /// The device or the link did not answer.
    CommError,
}

impl Quality {
    /// The code stored in SQLite (`readings.quality`).
    pub fn code(self) -> u8 {
        match self {
            Self::Good => 0,
            Self::Bad => 1,
            Self::Stale => 2,
            Self::CommError => 3,
        }
    }

    /// Inverse of [`Quality::code`]; unknown codes read as `Bad`.
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::Good,
            2 => Self::Stale,
            3 => Self::CommError,
            _ => Self::Bad,
        }
    }

    /// The lower-case name used in APIs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Bad => "bad",
            Self::Stale => "stale",
            Self::CommError => "comm_error",
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of one sensor at one time, as produced by a source.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Which sensor.
    pub sensor: SensorId,
    /// When the value was read (not when it was converted or stored).
    pub ts: Timestamp,
    /// The value; `None` whenever `quality` is not `Good` and no trustworthy number exists.
    pub value: Option<f64>,
    /// How much the value can be trusted.
    pub quality: Quality,
}

impl Reading {
    /// A good reading.
    pub fn good(sensor: SensorId, ts: Timestamp, value: f64) -> Self {
        Self {
            sensor,
            ts,
            value: Some(value),
            quality: Quality::Good,
        }
    }

    /// A reading that failed with the given quality; it carries no value.
    pub fn failed(sensor: SensorId, ts: Timestamp, quality: Quality) -> Self {
        Self {
            sensor,
            ts,
            value: None,
            quality,
        }
    }
}

/// The gateway's monotonic sequence number of a committed row.
///
/// Sequence numbers are never reused, even after rows are dropped; the pair
/// `(gateway_id, stream, seq)` is the idempotency key of the sync to the centre.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub i64);

/// A reading after its commit to SQLite.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReading {
    /// The sequence number it was committed under.
    pub seq: Seq,
    /// The reading itself.
    pub reading: Reading,
}

/// What kind of quantity a sensor measures; used for search, icons and alarm selectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    /// Air or water temperature.
    Temperature,
    /// Relative humidity.
    Humidity,
    /// CO2 concentration.
    Co2,
    /// Pressure.
    Pressure,
    /// Energy, power, current or voltage.
    Energy,
    /// Flow.
    Flow,
    /// A leak detector (0 dry, 1 wet).
    Leak,
    /// An on/off state (pump running, burner on, door open).
    State,
    /// Anything else.
    Other,
}

impl SensorKind {
    /// Guesses what a value measures from its unit (`Other` when the unit says nothing).
    pub fn from_unit(unit: &str) -> Self {
        match unit.trim() {
            "°C" | "C" | "degC" | "°F" | "K" => Self::Temperature,
            "%RH" | "%rh" => Self::Humidity,
            "ppm" => Self::Co2,
            "bar" | "mbar" | "Pa" | "kPa" | "hPa" | "psi" => Self::Pressure,
            "W" | "kW" | "Wh" | "kWh" | "MWh" | "V" | "A" | "VA" | "var" | "kvar" | "Hz" => {
                Self::Energy
            }
            "m3/h" | "m³/h" | "l/s" | "l/min" | "l/h" => Self::Flow,
            _ => Self::Other,
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Temperature => "temperature",
            Self::Humidity => "humidity",
            Self::Co2 => "co2",
            Self::Pressure => "pressure",
            Self::Energy => "energy",
            Self::Flow => "flow",
            Self::Leak => "leak",
            Self::State => "state",
            Self::Other => "other",
        }
    }
}

/// What the gateway knows about a sensor besides its readings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorMeta {
    /// The sensor's id.
    pub id: SensorId,
    /// A human name ("Room 301 temperature").
    pub name: String,
    /// What it measures.
    pub kind: SensorKind,
    /// Unit of the value ("°C", "%", "ppm", "bar"); empty for states.
    pub unit: String,
    /// Floor label, if placed on a floor.
    pub floor: Option<String>,
    /// Room or unit label, if placed in one.
    pub room: Option<String>,
    /// Which source produces it (`simulator`, `modbus:boiler_room`, ...).
    pub source: String,
}

/// Language of user-facing text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
}

/// How urgent an alarm is. Ordered: `Low` < `Medium` < `High` < `Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Needs attention this shift.
    Medium,
    /// Needs attention now.
    High,
    /// Damage or danger: act immediately.
    Critical,
}

impl Severity {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What a person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May ask questions and look.
    Viewer,
    /// May also acknowledge, shelve and take alarms out of service.
    Operator,
    /// Everything an operator may, recorded as `admin` in the audit log: the person responsible
    /// for the gateway (who may use it at all is the config file itself).
    Admin,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// May this role act on alarms (acknowledge, shelve, out of service)?
    pub fn may_act(self) -> bool {
        self >= Self::Operator
    }
}

/// Who asks for an action, and through which channel. The channel has already established the
/// identity (a Telegram user id from the allow-list, a local login for the CLI); the lookups in
/// `[[users]]` are in `crate::config::users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Login from `[[users]]`, or the raw identity when unknown (`telegram:123`).
    pub user: String,
    /// `telegram`, `cli`, `lan`, ...
    pub channel: String,
    /// The user's role; `None` when the identity is not in `[[users]]`.
    pub role: Option<Role>,
}

/// ISA-18.2 state of one alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Condition absent, nothing to acknowledge.
    Normal,
    /// Condition present, not yet acknowledged.
    ActiveUnacked,
    /// Condition present, acknowledged.
    ActiveAcked,
    /// Condition gone, but nobody acknowledged the alarm yet.
    ClearedUnacked,
}

impl AlarmState {
    /// The snake_case name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::ActiveUnacked => "active_unacked",
            Self::ActiveAcked => "active_acked",
            Self::ClearedUnacked => "cleared_unacked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Normal,
            Self::ActiveUnacked,
            Self::ActiveAcked,
            Self::ClearedUnacked,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the condition is (still) considered present.
    pub fn is_active(self) -> bool {
        matches!(self, Self::ActiveUnacked | Self::ActiveAcked)
    }

    /// Whether an acknowledgement is outstanding.
    pub fn is_unacked(self) -> bool {
        matches!(self, Self::ActiveUnacked | Self::ClearedUnacked)
    }
}
