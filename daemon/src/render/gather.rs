//! Turning the gateway's data into plain picture inputs: which floors exist, which rooms and
//! sensors are on a floor (with `[[site.sensor]]` placements applied), their latest values and
//! open alarms, and the limits of a sensor's alarm rules.
//!
//! Owns: the pure assembly of [`PlanInput`] and [`ChartInput`]. Does not own: reading the buffer
//! (`super::query`) or drawing (`super::plan`, `super::chart`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::RenderError;
use super::chart::{AlarmPeriod, ChartInput, ChartPoint, Side, Threshold};
use super::palette::Measure;
use super::plan::{AlarmMark, Backdrop, FloorInput, PlanInput, RoomInput, SensorInput};
use crate::alarms::rules::SensorInfo;
use crate::alarms::{AlarmView, RuleKind};
use crate::config::{Config, FloorConfig, SiteConfig};
use crate::model::{AlarmState, Lang, Quality, Severity, Timestamp};
use crate::store::{LatestValue, SensorRow};

/// An open alarm, as a plan shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAlarm {
    /// Sensor id.
    pub sensor: String,
    /// Severity.
    pub severity: Severity,
    /// State (active, or cleared and waiting for acknowledgement).
    pub state: AlarmState,
}

impl From<&AlarmView> for OpenAlarm {
    fn from(a: &AlarmView) -> Self {
        Self {
            sensor: a.sensor.clone(),
            severity: a.severity,
            state: a.state,
        }
    }
}

/// What a plan is built from.
#[derive(Clone, Copy, Debug)]
pub struct PlanSources<'a> {
    /// The config in force (`[gateway] name`, `[site]`).
    pub config: &'a Config,
    /// Every sensor of the buffer.
    pub sensors: &'a [SensorRow],
    /// Latest value per sensor id.
    pub latest: &'a HashMap<String, LatestValue>,
    /// Open alarms (active or unacknowledged), out-of-service ones left out.
    pub alarms: &'a [OpenAlarm],
}

/// Options of one plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions {
    /// What rooms are coloured by.
    pub measure: Measure,
    /// Language.
    pub lang: Lang,
    /// "As of" time.
    pub now: Timestamp,
    /// Width in pixels.
    pub width_px: u32,
}

/// Options of one chart.
#[derive(Clone, Copy, Debug)]
pub struct ChartOptions {
    /// How far back from `now` (1 minute to 31 days).
    pub since: Duration,
    /// "As of" time: the end of the time axis.
    pub now: Timestamp,
    /// Language.
    pub lang: Lang,
    /// `(width, height)` in pixels.
    pub size: (u32, u32),
}

/// A sensor's floor and room on plans: its `[[site.sensor]]` placement, else its source's labels.
fn placed(
    site: &SiteConfig,
    s: &SensorRow,
) -> (Option<String>, Option<String>, Option<(f64, f64)>) {
    let Some(p) = site.sensor.iter().find(|p| p.id == s.id) else {
        return (s.floor.clone(), s.room.clone(), None);
    };
    let room = p.room.clone().or_else(|| s.room.clone());
    let room_floor = p
        .room
        .as_deref()
        .and_then(|r| site.room.iter().find(|x| x.id == r))
        .and_then(|r| r.floor.clone());
    let floor = p.floor.clone().or(room_floor).or_else(|| s.floor.clone());
    (floor, room, p.at.map(|[x, y]| (x, y)))
}

/// Every floor: the configured ones by level, then those only sensors name, in natural order.
/// Each with its configuration (a bare one for floors not in `[site]`).
pub fn floors(site: &SiteConfig, sensors: &[SensorRow]) -> Vec<FloorConfig> {
    let mut out: Vec<FloorConfig> = site.floor.clone();
    out.sort_by_key(|f| f.level.unwrap_or(i32::MAX));
    let mut seen: BTreeSet<String> = out.iter().map(|f| f.id.clone()).collect();
    let mut extra: Vec<String> = sensors
        .iter()
        .filter_map(|s| placed(site, s).0)
        .filter(|f| seen.insert(f.clone()))
        .collect();
    extra.sort_by_key(|a| natural(a));
    out.extend(extra.into_iter().map(|id| FloorConfig {
        id,
        ..FloorConfig::default()
    }));
    out
}

/// Sort key putting "B" before "1", "2" before "10".
fn natural(s: &str) -> (bool, u64, String) {
    match s.parse::<u64>() {
        Ok(n) => (true, n, String::new()),
        Err(_) => (false, 0, s.to_owned()),
    }
}

/// Finds a floor by id, else by name (case-insensitive).
///
/// # Errors
/// [`RenderError::UnknownFloor`] with the known ids.
pub fn find_floor(
    site: &SiteConfig,
    sensors: &[SensorRow],
    floor: &str,
) -> Result<FloorConfig, RenderError> {
    let all = floors(site, sensors);
    let wanted = floor.trim();
    all.iter()
        .find(|f| f.id == wanted)
        .or_else(|| {
            all.iter().find(|f| {
                f.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
            })
        })
        .cloned()
        .ok_or_else(|| RenderError::UnknownFloor {
            floor: wanted.to_owned(),
            known: all.into_iter().map(|f| f.id).collect(),
        })
}

/// The plan input of `floor`. The background image (if any) is loaded by [`load_backdrop`].
///
/// # Errors
/// [`RenderError::UnknownFloor`].
pub fn plan_input(
    src: PlanSources<'_>,
    floor: &str,
    opts: PlanOptions,
) -> Result<PlanInput, RenderError> {
    let site = &src.config.site;
    let f = find_floor(site, src.sensors, floor)?;
    let tenant_name = |id: &str| {
        site.tenant.iter().find(|t| t.id == id).map_or_else(
            || id.to_owned(),
            |t| t.name.clone().unwrap_or_else(|| t.id.clone()),
        )
    };
    let mut rooms: Vec<RoomInput> = site
        .room
        .iter()
        .filter(|r| r.floor.as_deref() == Some(f.id.as_str()))
        .map(|r| RoomInput {
            id: r.id.clone(),
            name: r.name.clone().unwrap_or_else(|| r.id.clone()),
            tenant: r.tenant.as_deref().map(tenant_name),
            polygon: r
                .polygon
                .as_ref()
                .map(|p| p.iter().map(|[x, y]| (*x, *y)).collect()),
        })
        .collect();
    let mut alarms: HashMap<&str, AlarmMark> = HashMap::new();
    for a in src.alarms.iter().filter(|a| a.state != AlarmState::Normal) {
        let mark = AlarmMark {
            severity: a.severity,
            active: a.state.is_active(),
        };
        let slot = alarms.entry(a.sensor.as_str()).or_insert(mark);
        if (mark.active, mark.severity) > (slot.active, slot.severity) {
            *slot = mark;
        }
    }
    let mut sensors = Vec::new();
    let mut extra_rooms: Vec<String> = Vec::new();
    for s in src.sensors {
        let (floor_id, room, at) = placed(site, s);
        if floor_id.as_deref() != Some(f.id.as_str()) {
            continue;
        }
        if let Some(r) = &room
            && !rooms.iter().any(|x| &x.id == r)
            && !extra_rooms.contains(r)
        {
            extra_rooms.push(r.clone());
        }
        let latest = src.latest.get(&s.id);
        sensors.push(SensorInput {
            id: s.id.clone(),
            name: if s.name.is_empty() {
                s.id.clone()
            } else {
                s.name.clone()
            },
            kind: s.kind.clone(),
            unit: s.unit.clone(),
            room,
            at: at.filter(|_| f.size().is_some()),
            value: latest.and_then(|l| l.value),
            quality: latest.map_or(Quality::Stale, |l| l.quality),
            ts: latest.map(|l| l.ts),
            alarm: alarms.get(s.id.as_str()).copied(),
        });
    }
    // Rooms only sensors name get a cell of the grid, in natural order.
    extra_rooms.sort_by_key(|a| natural(a));
    rooms.extend(extra_rooms.into_iter().map(|id| RoomInput {
        name: id.clone(),
        id,
        tenant: None,
        polygon: None,
    }));
    let building = site
        .name
        .clone()
        .or_else(|| src.config.gateway.name.clone())
        .unwrap_or_else(|| src.config.gateway.id.clone());
    Ok(PlanInput {
        building,
        floor: FloorInput {
            id: f.id.clone(),
            name: f.name.clone(),
            size: f.size(),
        },
        rooms,
        sensors,
        measure: opts.measure,
        now: opts.now,
        stale_after: site.stale_after,
        utc_offset: site.utc_offset,
        lang: opts.lang,
        width_px: opts.width_px,
        background: f.plan.as_deref().and_then(load_backdrop),
    })
}

/// Decodes a floor's plan image, cached by path and modification time (a few plans at most).
/// A missing or broken file is logged and the plan is drawn without it.
pub fn load_backdrop(path: &Path) -> Option<Backdrop> {
    type Cache = Mutex<Vec<(PathBuf, SystemTime, Arc<image::RgbImage>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let modified = match std::fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "Floor plan image unreadable; drawing the plan without it.");
            return None;
        }
    };
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(c) = cache.lock()
        && let Some((_, _, img)) = c.iter().find(|(p, t, _)| p == path && *t == modified)
    {
        return Some(Backdrop(img.clone()));
    }
    let img = match image::ImageReader::open(path)
        .map_err(image::ImageError::IoError)
        .and_then(|r| r.with_guessed_format().map_err(image::ImageError::IoError))
        .and_then(image::ImageReader::decode)
    {
        Ok(i) => Arc::new(i.to_rgb8()),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "Floor plan image cannot be decoded; drawing the plan without it.");
            return None;
        }
    };
    if let Ok(mut c) = cache.lock() {
        c.retain(|(p, _, _)| p != path);
        c.push((path.to_owned(), modified, img.clone()));
        if c.len() > 8 {
            c.remove(0);
        }
    }
    Some(Backdrop(img))
}

/// The limits of the enabled high/low rules that apply to `sensor`.
pub fn thresholds(config: &Config, sensor: &SensorRow) -> Vec<Threshold> {
    let Ok(set) = crate::alarms::rules::compile(&config.alarms, &config.users) else {
        return Vec::new();
    };
    let info = SensorInfo {
        id: sensor.id.clone(),
        name: sensor.name.clone(),
        kind: sensor.kind.clone(),
        unit: sensor.unit.clone(),
        floor: sensor.floor.clone(),
        room: sensor.room.clone(),
    };
    set.matching(&info)
        .into_iter()
        .filter_map(|i| set.rules.get(i))
        .filter_map(|r| {
            let side = match r.kind {
                RuleKind::High | RuleKind::HighHigh => Side::Above,
                RuleKind::Low | RuleKind::LowLow => Side::Below,
                _ => return None,
            };
            Some(Threshold {
                alert: r.alert.clone(),
                side,
                limit: r.limit,
                severity: r.severity,
            })
        })
        .collect()
}

/// The chart input of one sensor over `from..=to`.
pub fn chart_input(
    config: &Config,
    sensor: &SensorRow,
    (from, to): (Timestamp, Timestamp),
    points: Vec<ChartPoint>,
    alarms: Vec<AlarmPeriod>,
    lang: Lang,
    size: (u32, u32),
) -> ChartInput {
    let location = match (&sensor.floor, &sensor.room) {
        (Some(f), Some(r)) => Some(format!("{f} / {r}")),
        (Some(f), None) => Some(f.clone()),
        (None, Some(r)) => Some(r.clone()),
        (None, None) => None,
    };
    ChartInput {
        sensor: sensor.id.clone(),
        name: sensor.name.clone(),
        unit: sensor.unit.clone(),
        location,
        from,
        to,
        points,
        thresholds: thresholds(config, sensor),
        alarms,
        utc_offset: config.site.utc_offset,
        lang,
        size,
    }
}

/// The window of a chart ending `now`: `since` long.
pub(crate) fn window(now: Timestamp, since: Duration) -> (Timestamp, Timestamp) {
    let from = now.as_millis().saturating_sub(super::time::millis(since));
    (Timestamp(from), now)
}
