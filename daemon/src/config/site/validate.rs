//! The validation of `[site]`: unique ids, references between floors, rooms, tenants and sensor
//! positions, and geometry that fits its floor. Every mistake is collected with its dotted path.

use std::collections::{BTreeMap, BTreeSet};

use super::{FloorConfig, RoomConfig, SensorPlacementConfig, SiteConfig};
use crate::config::error::ConfigError;
use crate::model::plane as geometry;

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
