//! `[site]`: the building this gateway serves: its name and address, floors, rooms (units) and
//! tenants, and the geometry floor plans are drawn from (floor sizes and background images, room
//! polygons, sensor positions). Together with the sensors in the buffer it is the site metadata
//! the centre receives.
//!
//! Owns: the shape and validation of `[site]`. Does not own: uploading it (`crate::sync`) or
//! drawing it (`crate::render`).
//!
//! Geometry is in *plan units* per floor (metres, say, or the pixels of a scanned plan): a floor
//! with a `width` and `height` is the rectangle `[0, width] x [0, height]`, x to the right and y
//! downwards, as on a picture. Everything geometric is optional: a floor without it is drawn as a
//! grid of its rooms.
//!
//! Layout: this file the shape of `[site]`; `validate` its checks.

mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use self::validate::validate;

/// `[site]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Name of the building; default: `[gateway] name`.
    #[serde(default)]
    pub name: Option<String>,
    /// Postal address.
    #[serde(default)]
    pub address: Option<String>,
    /// Offset of the building's local time from UTC, used for the times written on floor plans
    /// and charts (`"+05:00"`). Everything stored stays in UTC.
    #[serde(default)]
    pub utc_offset: UtcOffset,
    /// A value older than this is shown greyed (stale) on floor plans, like one whose quality is
    /// not good.
    #[serde(default = "defaults::stale_after", with = "humantime_serde")]
    pub stale_after: Duration,
    /// `[[site.floor]]`
    #[serde(default)]
    pub floor: Vec<FloorConfig>,
    /// `[[site.room]]`
    #[serde(default)]
    pub room: Vec<RoomConfig>,
    /// `[[site.tenant]]`
    #[serde(default)]
    pub tenant: Vec<TenantConfig>,
    /// `[[site.sensor]]`: where sensors are drawn on floor plans.
    #[serde(default)]
    pub sensor: Vec<SensorPlacementConfig>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: None,
            address: None,
            utc_offset: UtcOffset::default(),
            stale_after: defaults::stale_after(),
            floor: Vec::new(),
            room: Vec::new(),
            tenant: Vec::new(),
            sensor: Vec::new(),
        }
    }
}

/// `[[site.floor]]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorConfig {
    /// The label sensors use for the floor (their `floor`), e.g. "3" or "B".
    pub id: String,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Level, for ordering (0 ground floor, negative below ground).
    #[serde(default)]
    pub level: Option<i32>,
    /// Width of the floor in plan units: polygons and positions on this floor lie within
    /// `0..=width`. Needs `height`.
    #[serde(default)]
    pub width: Option<f64>,
    /// Height (depth) of the floor in plan units. Needs `width`.
    #[serde(default)]
    pub height: Option<f64>,
    /// A picture of the floor (PNG or JPEG, absolute path) drawn under the rooms, stretched to
    /// `width` x `height`. Needs both.
    #[serde(default)]
    pub plan: Option<PathBuf>,
}

impl FloorConfig {
    /// `(width, height)` when both are given.
    pub fn size(&self) -> Option<(f64, f64)> {
        self.width.zip(self.height)
    }
}

/// `[[site.room]]`: a room, flat or other unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// The label sensors use for the room (their `room`), e.g. "301".
    pub id: String,
    /// Floor id.
    #[serde(default)]
    pub floor: Option<String>,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Tenant id.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Outline on its floor's plan, `[[x, y], ...]` in the floor's units (at least 3 corners,
    /// not closed: the last corner joins the first). Needs `floor`, and that floor's size.
    #[serde(default)]
    pub polygon: Option<Vec<[f64; 2]>>,
}

/// `[[site.tenant]]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Short id rooms refer to.
    pub id: String,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<String>,
}

/// `[[site.sensor]]`: where one sensor is drawn on floor plans. Only plans use it: alarms, sync
/// and the API keep the floor and room the sensor's source gives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorPlacementConfig {
    /// Sensor id, e.g. `f3.r301.temperature`.
    pub id: String,
    /// The floor to draw it on; default: its room's floor, else the floor its source gives.
    #[serde(default)]
    pub floor: Option<String>,
    /// The room to draw it in; default: the room its source gives.
    #[serde(default)]
    pub room: Option<String>,
    /// Position `[x, y]` in the floor's units; default: placed automatically inside its room,
    /// apart from the room's other sensors.
    #[serde(default)]
    pub at: Option<[f64; 2]>,
}

/// A fixed offset from UTC, written `"+05:00"`, `"-03:30"` or `"UTC"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UtcOffset {
    seconds: i32,
}

impl UtcOffset {
    /// UTC itself.
    pub const UTC: Self = Self { seconds: 0 };

    /// An offset of `seconds` east of UTC, if within ±14 hours.
    pub const fn from_seconds(seconds: i32) -> Option<Self> {
        if seconds.abs() <= 14 * 3600 {
            Some(Self { seconds })
        } else {
            None
        }
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i32 {
        self.seconds
    }

    /// Milliseconds east of UTC.
    pub fn millis(self) -> i64 {
        i64::from(self.seconds) * 1000
    }

    /// Parses `"+05:00"`, `"-0330"`, `"+5"`, `"Z"` or `"UTC"`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("z") {
            return Some(Self::UTC);
        }
        let s = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("utc"))
            .unwrap_or(s);
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        let all_digits =
            |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(h) || !all_digits(m) {
            return None;
        }
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        if m >= 60 {
            return None;
        }
        Self::from_seconds(sign * (h * 3600 + m * 60))
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.seconds < 0 { '-' } else { '+' };
        let abs = self.seconds.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid UTC offset {s:?}: expected \"+05:00\", \"-03:30\" or \"UTC\" (at most 14 hours)"
            ))
        })
    }
}

pub(crate) mod defaults {
    use std::time::Duration;

    pub(crate) fn stale_after() -> Duration {
        Duration::from_secs(15 * 60)
    }
}

#[cfg(test)]
mod tests;
