//! Turning the gateway's data into plain picture inputs: which floors exist, which rooms and
//! sensors are on a floor (with `[[site.sensor]]` placements applied), their latest values and
//! open alarms, a sensor's history (thinned as it is read for long windows), its alarm periods from
//! `alarm_events` and the limits of its alarm rules.
//!
//! Owns: the read-only SQL of rendering (run by the daemon through `Reader::with`, or by the CLI
//! on a buffer it opened itself) and the pure assembly of [`PlanInput`] and [`ChartInput`].
//! Does not own: drawing (`super::plan`, `super::chart`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, params};

use super::RenderError;
use super::chart::{AlarmPeriod, ChartInput, ChartPoint, Side, Threshold};
use super::palette::Measure;
use super::plan::{AlarmMark, Backdrop, FloorInput, PlanInput, RoomInput, SensorInput};
use crate::alarms::rules::SensorInfo;
use crate::alarms::{AlarmState, AlarmView, Lang, RuleKind, Severity};
use crate::config::{Config, FloorConfig, SiteConfig};
use crate::model::{Quality, Timestamp};
use crate::store::{LatestValue, SensorRow};

/// Readings returned one by one up to this many in a chart's window; above it, only the lowest
/// and highest good value of each of [`BUCKETS`] time buckets (same picture, bounded memory).
pub const MAX_RAW_POINTS: i64 = 20_000;
/// Time buckets of a thinned history.
pub const BUCKETS: i64 = 4_000;

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

// === SQL (read-only) ===

/// Every sensor in the buffer, sorted by id.
pub(crate) fn sensor_rows(c: &Connection) -> Result<Vec<SensorRow>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT key, name, kind, unit, floor, room, source FROM sensors ORDER BY key",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SensorRow {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            unit: r.get(3)?,
            floor: r.get(4)?,
            room: r.get(5)?,
            source: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The newest reading of every sensor (what the daemon's latest-value cache holds).
pub(crate) fn latest_values(
    c: &Connection,
) -> Result<HashMap<String, LatestValue>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT s.key, r.seq, r.ts, r.value, r.quality FROM sensors s \
         JOIN readings r ON r.seq = (SELECT seq FROM readings WHERE sensor = s.id ORDER BY ts DESC, seq DESC LIMIT 1)",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            LatestValue {
                seq: crate::model::Seq(r.get(1)?),
                ts: Timestamp(r.get(2)?),
                value: r.get(3)?,
                quality: Quality::from_code(r.get(4)?),
            },
        ))
    })?;
    rows.collect()
}

/// Open alarms recorded in the buffer (not normal, not out of service), of the rules in `config`.
pub(crate) fn open_alarms(
    c: &Connection,
    config: &Config,
) -> Result<Vec<OpenAlarm>, rusqlite::Error> {
    let rules: BTreeSet<&str> = config
        .alarms
        .rule
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.alert.as_str())
        .collect();
    let mut stmt = c.prepare_cached(
        "SELECT rule, sensor, severity, state FROM alarm_state WHERE state != 'normal' AND out_of_service = 0",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rule, sensor, severity, state) = row?;
        if let (true, Some(severity), Some(state)) = (
            rules.contains(rule.as_str()),
            Severity::parse(&severity),
            AlarmState::parse(&state),
        ) {
            out.push(OpenAlarm {
                sensor,
                severity,
                state,
            });
        }
    }
    Ok(out)
}

/// A sensor's readings in `from..=to` (ms), in time order: every reading, or the minimum and
/// maximum good value of each of [`BUCKETS`] buckets when there are more than
/// [`MAX_RAW_POINTS`]. `None` when the buffer does not know the sensor.
pub(crate) fn history(
    c: &Connection,
    sensor: &str,
    from: i64,
    to: i64,
) -> Result<Option<Vec<ChartPoint>>, rusqlite::Error> {
    let Some(id): Option<i64> = c
        .query_row("SELECT id FROM sensors WHERE key = ?1", [sensor], |r| {
            r.get(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let count: i64 = c.query_row(
        "SELECT count(*) FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3",
        params![id, from, to],
        |r| r.get(0),
    )?;
    let mut out = Vec::new();
    if count <= MAX_RAW_POINTS {
        let mut stmt = c.prepare_cached(
            "SELECT ts, value, quality FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, seq",
        )?;
        let rows = stmt.query_map(params![id, from, to], |r| {
            let quality = Quality::from_code(r.get(2)?);
            Ok(ChartPoint {
                ts: r.get(0)?,
                value: r
                    .get::<_, Option<f64>>(1)?
                    .filter(|_| quality == Quality::Good),
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        return Ok(Some(out));
    }
    // Thinned while streaming in index order (no GROUP BY: SQLite would sort every row):
    // per bucket, the lowest and the highest good value at their own times.
    let bucket = ((to - from) / BUCKETS).max(1);
    let mut stmt = c.prepare_cached(
        "SELECT ts, value, quality FROM readings WHERE sensor = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, seq",
    )?;
    let mut rows = stmt.query(params![id, from, to])?;
    let mut current: Option<Bucket> = None;
    while let Some(r) = rows.next()? {
        let ts: i64 = r.get(0)?;
        let value: Option<f64> = r.get(1)?;
        let quality = Quality::from_code(r.get(2)?);
        let good = value.filter(|_| quality == Quality::Good);
        let b = (ts - from) / bucket;
        if current.as_ref().is_some_and(|c| c.index != b)
            && let Some(done) = current.take()
        {
            done.emit(&mut out);
        }
        current
            .get_or_insert_with(|| Bucket::new(b, ts))
            .add(ts, good);
    }
    if let Some(done) = current {
        done.emit(&mut out);
    }
    Ok(Some(out))
}

/// One time bucket of a thinned history.
#[derive(Debug)]
struct Bucket {
    index: i64,
    first_ts: i64,
    low: Option<(i64, f64)>,
    high: Option<(i64, f64)>,
}

impl Bucket {
    fn new(index: i64, first_ts: i64) -> Self {
        Self {
            index,
            first_ts,
            low: None,
            high: None,
        }
    }

    fn add(&mut self, ts: i64, value: Option<f64>) {
        let Some(v) = value else { return };
        if self.low.is_none_or(|(_, l)| v < l) {
            self.low = Some((ts, v));
        }
        if self.high.is_none_or(|(_, h)| v > h) {
            self.high = Some((ts, v));
        }
    }

    /// The bucket's lowest and highest good values in time order, or a point without a value
    /// when it has none.
    fn emit(self, out: &mut Vec<ChartPoint>) {
        match (self.low, self.high) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
                out.push(ChartPoint {
                    ts: first.0,
                    value: Some(first.1),
                });
                if second.0 != first.0 {
                    out.push(ChartPoint {
                        ts: second.0,
                        value: Some(second.1),
                    });
                }
            }
            _ => out.push(ChartPoint {
                ts: self.first_ts,
                value: None,
            }),
        }
    }
}

/// When the sensor's alarms were active within `from..=to` (ms), from `alarm_events`: the state
/// before `from` (the alarm's last event before it) and every event after.
pub(crate) fn alarm_periods(
    c: &Connection,
    sensor: &str,
    from: i64,
    to: i64,
) -> Result<Vec<AlarmPeriod>, rusqlite::Error> {
    let mut ids = c.prepare_cached(
        "SELECT id, rule, severity FROM alarm_state WHERE sensor = ?1 ORDER BY id",
    )?;
    let alarms: Vec<(i64, String, String)> = ids
        .query_map([sensor], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut before = c.prepare_cached(
        "SELECT state, severity FROM alarm_events WHERE alarm_id = ?1 AND ts < ?2 ORDER BY seq DESC LIMIT 1",
    )?;
    let mut during = c.prepare_cached(
        "SELECT ts, state, severity FROM alarm_events WHERE alarm_id = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY seq",
    )?;
    let mut out = Vec::new();
    for (id, rule, severity) in alarms {
        let fallback = Severity::parse(&severity).unwrap_or(Severity::High);
        let start: Option<(String, String)> = before
            .query_row(params![id, from], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let active = |state: &str| AlarmState::parse(state).is_some_and(AlarmState::is_active);
        let mut open: Option<(i64, Severity)> = start
            .filter(|(state, _)| active(state))
            .map(|(_, sev)| (from, Severity::parse(&sev).unwrap_or(fallback)));
        let events = during.query_map(params![id, from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for e in events {
            let (ts, state, sev) = e?;
            let sev = Severity::parse(&sev).unwrap_or(fallback);
            match (open, active(&state)) {
                (None, true) => open = Some((ts, sev)),
                (Some((since, s)), false) => {
                    out.push(AlarmPeriod {
                        alert: rule.clone(),
                        severity: s,
                        from: since,
                        to: Some(ts),
                    });
                    open = None;
                }
                (Some((since, s)), true) if sev > s => open = Some((since, sev)),
                _ => {}
            }
        }
        if let Some((since, s)) = open {
            out.push(AlarmPeriod {
                alert: rule,
                severity: s,
                from: since,
                to: None,
            });
        }
    }
    out.sort_by_key(|p| p.from);
    Ok(out)
}

/// The window of a chart ending `now`: `since` long.
pub(crate) fn window(now: Timestamp, since: Duration) -> (Timestamp, Timestamp) {
    let from = now.as_millis().saturating_sub(super::time::millis(since));
    (Timestamp(from), now)
}
