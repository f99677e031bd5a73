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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use crate::model::plane as geometry;

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

/// Collects errors with their dotted paths.
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: String, message: String) {
        self.push_hint(path, message, None);
    }

    fn push_hint(&mut self, path: String, message: String, hint: Option<&str>) {
        self.0.push(ConfigError {
            path,
            position: None,
            message,
            hint: hint.map(str::to_owned),
        });
    }

    /// Checks that the ids of one kind are present and unique; returns the set of ids.
    fn ids<'a>(&mut self, kind: &str, list: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for (i, id) in list.enumerate() {
            if id.trim().is_empty() {
                self.push(
                    format!("site.{kind}.{i}.id"),
                    "must not be empty".to_owned(),
                );
            } else if !seen.insert(id) {
                self.push(
                    format!("site.{kind}.{i}.id"),
                    format!("{kind} {id:?} is listed twice"),
                );
            }
        }
        seen.into_iter().map(str::to_owned).collect()
    }
}

/// Semantic checks: ids present and unique, references to listed floors, rooms and tenants,
/// and geometry that fits its floor.
pub(crate) fn validate(site: &SiteConfig) -> Vec<ConfigError> {
    let mut v = Errors(Vec::new());
    if site.stale_after.is_zero() {
        v.push_hint(
            "site.stale_after".to_owned(),
            "must be longer than zero".to_owned(),
            Some("durations are strings with a unit: \"15m\", \"1h\""),
        );
    }
    let floors = v.ids("floor", site.floor.iter().map(|f| f.id.as_str()));
    let tenants = v.ids("tenant", site.tenant.iter().map(|t| t.id.as_str()));
    v.ids("room", site.room.iter().map(|r| r.id.as_str()));
    v.ids("sensor", site.sensor.iter().map(|s| s.id.as_str()));
    // Sizes of the floors that have valid ones.
    let mut sizes: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (i, floor) in site.floor.iter().enumerate() {
        if let Some(size) = check_floor(&mut v, i, floor) {
            sizes.insert(floor.id.as_str(), size);
        }
    }
    for (i, room) in site.room.iter().enumerate() {
        if let Some(f) = room.floor.as_deref().filter(|f| !floors.contains(*f)) {
            v.push(
                format!("site.room.{i}.floor"),
                format!("floor {f:?} is not one of the [[site.floor]] ids"),
            );
        }
        if let Some(t) = room.tenant.as_deref().filter(|t| !tenants.contains(*t)) {
            v.push(
                format!("site.room.{i}.tenant"),
                format!("tenant {t:?} is not one of the [[site.tenant]] ids"),
            );
        }
        if let Some(polygon) = &room.polygon {
            check_polygon(&mut v, i, room, polygon, &sizes);
        }
    }
    for (i, sensor) in site.sensor.iter().enumerate() {
        check_placement(&mut v, i, sensor, site, &floors, &sizes);
    }
    v.0
}

/// Size and plan image of one floor; its size when valid.
fn check_floor(v: &mut Errors, i: usize, floor: &FloorConfig) -> Option<(f64, f64)> {
    let mut valid = true;
    for (key, value) in [("width", floor.width), ("height", floor.height)] {
        if value.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
            v.push(
                format!("site.floor.{i}.{key}"),
                "must be a positive number".to_owned(),
            );
            valid = false;
        }
    }
    match (floor.width, floor.height) {
        (Some(_), None) => {
            v.push(
                format!("site.floor.{i}.width"),
                "needs height too".to_owned(),
            );
            valid = false;
        }
        (None, Some(_)) => {
            v.push(
                format!("site.floor.{i}.height"),
                "needs width too".to_owned(),
            );
            valid = false;
        }
        _ => {}
    }
    if let Some(plan) = &floor.plan {
        if floor.size().is_none() {
            v.push_hint(
                format!("site.floor.{i}.plan"),
                "needs the floor's width and height".to_owned(),
                Some("the picture is stretched to width x height, the units of the room polygons"),
            );
        }
        if !plan.is_absolute() {
            v.push_hint(
                format!("site.floor.{i}.plan"),
                format!("{} is not an absolute path", plan.display()),
                Some("the daemon runs with / as its working directory: give the full path"),
            );
        }
        let ext = plan
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            v.push(
                format!("site.floor.{i}.plan"),
                "must be a PNG or JPEG file (.png, .jpg, .jpeg)".to_owned(),
            );
        }
    }
    if valid { floor.size() } else { None }
}

/// A room's polygon: enough corners, a floor with a size, inside it, with an area.
fn check_polygon(
    v: &mut Errors,
    i: usize,
    room: &RoomConfig,
    polygon: &[[f64; 2]],
    sizes: &BTreeMap<&str, (f64, f64)>,
) {
    let path = format!("site.room.{i}.polygon");
    if polygon.len() < 3 {
        v.push(
            path,
            format!(
                "has {} corner(s); a polygon needs at least 3",
                polygon.len()
            ),
        );
        return;
    }
    let Some(floor) = room.floor.as_deref() else {
        v.push_hint(
            path,
            "needs the room's floor".to_owned(),
            Some("the corners are in the units of that floor's width and height"),
        );
        return;
    };
    let Some(&(w, h)) = sizes.get(floor) else {
        v.push_hint(
            path,
            format!("floor {floor:?} has no width and height"),
            Some("give the floor a size in plan units: width = 40.0, height = 20.0"),
        );
        return;
    };
    for (k, [x, y]) in polygon.iter().enumerate() {
        if !(x.is_finite() && y.is_finite()) {
            v.push(format!("{path}.{k}"), "must be finite numbers".to_owned());
            return;
        }
        if !(0.0..=w).contains(x) || !(0.0..=h).contains(y) {
            v.push(
                format!("{path}.{k}"),
                format!("[{x}, {y}] is outside floor {floor:?} (0..{w} x 0..{h})"),
            );
            return;
        }
    }
    if geometry::area(&to_points(polygon)) < 1e-9 * w * h {
        v.push(
            path,
            "has no area: its corners lie on one line or repeat".to_owned(),
        );
    }
}

/// A sensor's placement: known floor and room, agreeing, and a position inside the floor (and
/// inside the room's polygon when it has one).
fn check_placement(
    v: &mut Errors,
    i: usize,
    sensor: &SensorPlacementConfig,
    site: &SiteConfig,
    floors: &BTreeSet<String>,
    sizes: &BTreeMap<&str, (f64, f64)>,
) {
    let base = format!("site.sensor.{i}");
    if let Some(f) = sensor.floor.as_deref().filter(|f| !floors.contains(*f)) {
        v.push(
            format!("{base}.floor"),
            format!("floor {f:?} is not one of the [[site.floor]] ids"),
        );
        return;
    }
    let room = match sensor.room.as_deref() {
        Some(r) => match site.room.iter().find(|room| room.id == r) {
            Some(room) => Some(room),
            None => {
                v.push(
                    format!("{base}.room"),
                    format!("room {r:?} is not one of the [[site.room]] ids"),
                );
                return;
            }
        },
        None => None,
    };
    if let (Some(f), Some(rf)) = (
        sensor.floor.as_deref(),
        room.and_then(|r| r.floor.as_deref()),
    ) && f != rf
    {
        v.push(
            format!("{base}.floor"),
            format!(
                "room {:?} is on floor {rf:?}, not {f:?}",
                room.map(|r| r.id.as_str()).unwrap_or_default()
            ),
        );
        return;
    }
    let Some([x, y]) = sensor.at else {
        return;
    };
    let path = format!("{base}.at");
    let Some(floor) = sensor
        .floor
        .as_deref()
        .or_else(|| room.and_then(|r| r.floor.as_deref()))
    else {
        v.push_hint(
            path,
            "needs the floor the position is on".to_owned(),
            Some("add floor = \"...\" (or a room that has a floor)"),
        );
        return;
    };
    let Some(&(w, h)) = sizes.get(floor) else {
        v.push_hint(
            path,
            format!("floor {floor:?} has no width and height"),
            Some("give the floor a size in plan units: width = 40.0, height = 20.0"),
        );
        return;
    };
    if !(x.is_finite() && y.is_finite() && (0.0..=w).contains(&x) && (0.0..=h).contains(&y)) {
        v.push(
            path,
            format!("[{x}, {y}] is outside floor {floor:?} (0..{w} x 0..{h})"),
        );
        return;
    }
    if let Some((room, polygon)) = room.and_then(|r| r.polygon.as_ref().map(|p| (r, p)))
        && polygon.len() >= 3
        && !geometry::contains(&to_points(polygon), (x, y))
    {
        v.push(
            path,
            format!("[{x}, {y}] is outside the polygon of room {:?}", room.id),
        );
    }
}

fn to_points(polygon: &[[f64; 2]]) -> Vec<(f64, f64)> {
    polygon.iter().map(|[x, y]| (*x, *y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str, floor: Option<&str>, tenant: Option<&str>) -> RoomConfig {
        RoomConfig {
            id: id.into(),
            floor: floor.map(Into::into),
            tenant: tenant.map(Into::into),
            ..RoomConfig::default()
        }
    }

    fn paths(site: &SiteConfig) -> Vec<String> {
        validate(site).into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn checks_ids_and_references() {
        let site = SiteConfig {
            floor: vec![FloorConfig {
                id: "1".into(),
                level: Some(1),
                ..FloorConfig::default()
            }],
            room: vec![
                room("101", Some("1"), None),
                room("101", Some("2"), Some("acme")),
            ],
            ..SiteConfig::default()
        };
        assert_eq!(
            paths(&site),
            ["site.room.1.id", "site.room.1.floor", "site.room.1.tenant"]
        );
        assert!(validate(&SiteConfig::default()).is_empty());
    }

    fn geometric_site() -> SiteConfig {
        SiteConfig {
            floor: vec![
                FloorConfig {
                    id: "1".into(),
                    width: Some(40.0),
                    height: Some(20.0),
                    ..FloorConfig::default()
                },
                FloorConfig {
                    id: "2".into(),
                    ..FloorConfig::default()
                },
            ],
            room: vec![RoomConfig {
                polygon: Some(vec![[0.0, 0.0], [10.0, 0.0], [10.0, 8.0], [0.0, 8.0]]),
                ..room("101", Some("1"), None)
            }],
            sensor: vec![SensorPlacementConfig {
                id: "f1.r101.temperature".into(),
                room: Some("101".into()),
                at: Some([5.0, 4.0]),
                ..SensorPlacementConfig::default()
            }],
            ..SiteConfig::default()
        }
    }

    #[test]
    fn accepts_valid_geometry() {
        assert!(
            validate(&geometric_site()).is_empty(),
            "{:?}",
            validate(&geometric_site())
        );
    }

    #[test]
    fn checks_floor_sizes_and_plan_images() {
        let mut site = geometric_site();
        site.floor[1].width = Some(-3.0);
        site.floor[1].plan = Some("plans/2.gif".into());
        assert_eq!(
            paths(&site),
            [
                "site.floor.1.width",
                "site.floor.1.width",
                "site.floor.1.plan",
                "site.floor.1.plan",
                "site.floor.1.plan"
            ]
        );
    }

    #[test]
    fn checks_polygons() {
        let mut site = geometric_site();
        site.room.push(RoomConfig {
            polygon: Some(vec![[0.0, 0.0], [1.0, 1.0]]),
            ..room("102", Some("1"), None)
        });
        site.room.push(RoomConfig {
            polygon: Some(vec![[0.0, 0.0], [50.0, 0.0], [50.0, 5.0]]),
            ..room("103", Some("1"), None)
        });
        site.room.push(RoomConfig {
            polygon: Some(vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),
            ..room("104", Some("1"), None)
        });
        site.room.push(RoomConfig {
            polygon: Some(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]),
            ..room("201", Some("2"), None)
        });
        site.room.push(RoomConfig {
            polygon: Some(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]),
            ..room("000", None, None)
        });
        let errors = validate(&site);
        let got: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            got,
            [
                "site.room.1.polygon",
                "site.room.2.polygon.1",
                "site.room.3.polygon",
                "site.room.4.polygon",
                "site.room.5.polygon"
            ]
        );
        assert!(
            errors[1].message.contains("outside floor \"1\""),
            "{errors:?}"
        );
        assert!(errors[3].message.contains("no width and height"));
    }

    #[test]
    fn checks_sensor_placements() {
        let mut site = geometric_site();
        let place =
            |floor: Option<&str>, room: Option<&str>, at: Option<[f64; 2]>| SensorPlacementConfig {
                id: format!("s{floor:?}{room:?}{at:?}"),
                floor: floor.map(Into::into),
                room: room.map(Into::into),
                at,
            };
        site.sensor.extend([
            place(Some("9"), None, None),
            place(None, Some("999"), None),
            place(Some("2"), Some("101"), None),
            place(None, None, Some([1.0, 1.0])),
            place(Some("2"), None, Some([1.0, 1.0])),
            place(Some("1"), None, Some([41.0, 1.0])),
            place(None, Some("101"), Some([20.0, 10.0])),
            place(Some("1"), None, Some([20.0, 10.0])),
        ]);
        assert_eq!(
            paths(&site),
            [
                "site.sensor.1.floor",
                "site.sensor.2.room",
                "site.sensor.3.floor",
                "site.sensor.4.at",
                "site.sensor.5.at",
                "site.sensor.6.at",
                "site.sensor.7.at"
            ]
        );
    }

    #[test]
    fn parses_utc_offsets() {
        let secs = |s: &str| UtcOffset::parse(s).map(UtcOffset::seconds);
        assert_eq!(secs("+05:00"), Some(18_000));
        assert_eq!(secs("-03:30"), Some(-12_600));
        assert_eq!(secs("+0530"), Some(19_800));
        assert_eq!(secs("+3"), Some(10_800));
        assert_eq!(secs("UTC+03:00"), Some(10_800));
        assert_eq!(secs("UTC"), Some(0));
        for bad in ["5", "+15:00", "+05:60", "+aa", "", "+05:00:00"] {
            assert_eq!(secs(bad), None, "{bad}");
        }
        assert_eq!(
            UtcOffset::parse("-03:30").map(|o| o.to_string()).as_deref(),
            Some("-03:30")
        );
        let cfg: SiteConfig =
            toml::from_str("utc_offset = \"+05:00\"\nstale_after = \"5m\"").unwrap();
        assert_eq!(cfg.utc_offset.seconds(), 18_000);
        assert!(toml::from_str::<SiteConfig>("utc_offset = \"moscow\"").is_err());
    }
}
