//! The floor plan picture, from plain data ([`PlanInput`]): rooms filled by the chosen measure,
//! sensor markers with value and unit, alarm rings by severity with the alarmed room outlined in
//! the severity's colour, stale data greyed, a title with the time, and a legend.
//!
//! Owns: the plan's types and the order of drawing; the layout is in `layout` (plan units to
//! pixels, the automatic grid of rooms without a polygon, marker placement), the drawing of each
//! part in `draw`. Does not own: where the data comes from (`super::gather`).

mod draw;
mod layout;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;

use super::RenderError;
use super::font::{Pen, font};
use super::geometry::{self, Pt, fill_polygon};
use super::palette::{self, Measure, severity_colour};
use crate::config::UtcOffset;
use crate::model::{Lang, Quality, Severity, Timestamp};

use self::draw::{draw_backdrop, draw_header, draw_legend, draw_marker, draw_room_label, outline};
use self::layout::{Area, layout, place_markers};

/// Default width of a floor plan in pixels.
pub const DEFAULT_WIDTH: u32 = 1200;

/// Everything a floor plan shows. Plain data: tests and the bench build it by hand.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// Building name, for the title.
    pub building: String,
    /// The floor.
    pub floor: FloorInput,
    /// Rooms on the floor, in drawing order.
    pub rooms: Vec<RoomInput>,
    /// Sensors on the floor. Those of the measure's kind are drawn with their value; others
    /// only when they have an alarm.
    pub sensors: Vec<SensorInput>,
    /// What rooms are coloured by.
    pub measure: Measure,
    /// The time the picture is for (values older than `stale_after` before it are stale).
    pub now: Timestamp,
    /// Age from which a value is stale.
    pub stale_after: Duration,
    /// Local time of the building, for the title.
    pub utc_offset: UtcOffset,
    /// Language of the words on the picture.
    pub lang: Lang,
    /// Width of the picture in pixels (320 to 4000); the height follows from the floor.
    pub width_px: u32,
    /// A picture of the floor to draw under the rooms (stretched to the floor's size).
    pub background: Option<Backdrop>,
}

/// A decoded plan image (its `Debug` does not print the pixels).
#[derive(Clone)]
pub struct Backdrop(pub Arc<RgbImage>);

impl fmt::Debug for Backdrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Backdrop({}x{})", self.0.width(), self.0.height())
    }
}

/// The floor of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct FloorInput {
    /// Floor id ("3", "B").
    pub id: String,
    /// Configured name, if any (the title says "Floor 3" without one).
    pub name: Option<String>,
    /// `(width, height)` in plan units, when the floor has geometry.
    pub size: Option<(f64, f64)>,
}

/// One room of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomInput {
    /// Room id: the label sensors use.
    pub id: String,
    /// Name shown.
    pub name: String,
    /// Tenant name shown under it.
    pub tenant: Option<String>,
    /// Outline in plan units; without one (or on a floor without a size) the room gets a cell
    /// of the automatic grid.
    pub polygon: Option<Vec<(f64, f64)>>,
}

/// One sensor of a plan with its latest value.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorInput {
    /// Sensor id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Kind (`temperature`, `leak`, ...).
    pub kind: String,
    /// Unit.
    pub unit: String,
    /// Room id, if in one.
    pub room: Option<String>,
    /// Position in plan units, when placed by hand.
    pub at: Option<(f64, f64)>,
    /// Latest value, if any.
    pub value: Option<f64>,
    /// Its quality.
    pub quality: Quality,
    /// Its read time (`None`: no reading yet).
    pub ts: Option<Timestamp>,
    /// The most urgent open alarm on the sensor.
    pub alarm: Option<AlarmMark>,
}

/// An open alarm shown on a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmMark {
    /// Severity (colour).
    pub severity: Severity,
    /// Condition present (filled ring) or cleared but unacknowledged (thin ring).
    pub active: bool,
}

/// A drawn plan and where its parts are, for tests and tools that annotate it.
#[derive(Clone, Debug)]
pub struct PlanPicture {
    /// The picture.
    pub image: RgbImage,
    /// Each drawn sensor marker.
    pub markers: Vec<MarkerSpot>,
    /// Each drawn room.
    pub rooms: Vec<RoomSpot>,
}

/// Where a sensor marker was drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkerSpot {
    /// Sensor id.
    pub sensor: String,
    /// Centre of the marker dot, in pixels.
    pub centre: (u32, u32),
    /// A pixel of the alarm ring, when the sensor has an alarm.
    pub alarm_pixel: Option<(u32, u32)>,
    /// Whether the value was drawn as stale.
    pub stale: bool,
}

/// How a room was filled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RoomFill {
    /// The mean of its fresh values of the measure.
    Value(f64),
    /// It has sensors of the measure, but none with a fresh good value.
    Stale,
    /// No sensor of the measure.
    NoSensor,
}

/// Where a room was drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomSpot {
    /// Room id (empty for the cell of sensors without a room).
    pub room: String,
    /// Its fill.
    pub fill: RoomFill,
    /// A pixel of the fill away from labels and markers.
    pub fill_pixel: (u32, u32),
    /// Its outline in pixels.
    pub outline: Vec<(f64, f64)>,
}

/// Sizes that scale with the picture's width.
#[derive(Clone, Copy, Debug)]
struct Metrics {
    k: f64,
    margin: f64,
}

impl Metrics {
    fn px(self, v: f64) -> f64 {
        (v * self.k).round()
    }
}

/// The pens of one picture.
#[derive(Clone, Copy, Debug)]
struct Pens {
    title: Pen,
    sub: Pen,
    room: Pen,
    small: Pen,
    value: Pen,
}

/// Whether a sensor's value counts as stale at `now`.
pub(crate) fn is_stale(s: &SensorInput, now: Timestamp, stale_after: Duration) -> bool {
    let limit = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
    match (s.value, s.ts) {
        (Some(_), Some(ts)) => {
            s.quality != Quality::Good || now.as_millis().saturating_sub(ts.as_millis()) > limit
        }
        _ => true,
    }
}

/// Draws the plan.
///
/// # Errors
/// [`RenderError::Font`] only (a broken build); any data gives a picture.
pub fn draw_plan(input: &PlanInput) -> Result<PlanPicture, RenderError> {
    let font = font()?;
    let width = f64::from(input.width_px.clamp(320, 4000));
    let m = Metrics {
        k: (width / 1200.0).clamp(0.5, 2.0),
        margin: (16.0 * width / 1200.0).clamp(8.0, 32.0),
    };
    let pens = Pens {
        title: Pen::new(font, m.px(24.0) as f32),
        sub: Pen::new(font, m.px(15.0) as f32),
        room: Pen::new(font, m.px(14.0) as f32),
        small: Pen::new(font, m.px(12.0) as f32),
        value: Pen::new(font, m.px(13.0) as f32),
    };
    let drawn: Vec<&SensorInput> = input
        .sensors
        .iter()
        .filter(|s| s.kind == input.measure.kind() || s.alarm.is_some())
        .collect();
    let lay = layout(input, &drawn, m);
    let mut img = RgbImage::from_pixel(lay.width as u32, lay.height as u32, palette::BACKGROUND);
    draw_header(&mut img, input, &pens, m, lay.width);
    if let (Some(r), Some(bg)) = (lay.floor, &input.background) {
        draw_backdrop(&mut img, &bg.0, r);
    }
    if let Some(r) = lay.floor {
        outline(&mut img, &r.corners(), palette::MUTED, 1.0);
    }
    // Layers: fills, walls (alarmed ones last, so no neighbour's wall covers them), labels,
    // markers, so that no room paints over another's text.
    let members: Vec<Vec<&SensorInput>> = (0..lay.areas.len())
        .map(|i| {
            drawn
                .iter()
                .zip(&lay.homes)
                .filter(|(_, home)| **home == Some(i))
                .map(|(s, _)| *s)
                .collect()
        })
        .collect();
    let states: Vec<(RoomFill, Option<AlarmMark>)> = lay
        .areas
        .iter()
        .zip(&members)
        .map(|(area, members)| room_state(input, area, members, &drawn))
        .collect();
    let alpha = if input.background.is_some() { 0.6 } else { 1.0 };
    for (area, (fill, _)) in lay.areas.iter().zip(&states) {
        let colour = match fill {
            RoomFill::Value(v) => input.measure.colour(*v),
            RoomFill::Stale => palette::STALE,
            RoomFill::NoSensor => palette::NO_SENSOR,
        };
        fill_polygon(&mut img, &area.outline, colour, alpha);
    }
    let mut walls: Vec<(&Area, Option<AlarmMark>)> = lay
        .areas
        .iter()
        .zip(&states)
        .map(|(a, (_, alarm))| (a, *alarm))
        .collect();
    walls.sort_by_key(|(_, alarm)| alarm.map(|a| (a.active, a.severity)));
    for (area, alarm) in walls {
        let (wall, thickness) = match alarm {
            Some(a) => (
                severity_colour(a.severity),
                if a.active { 3.0 } else { 2.0 },
            ),
            None => (palette::WALL, 1.0),
        };
        outline(&mut img, &area.outline, wall, m.px(thickness).max(1.0));
    }
    let mut rooms = Vec::new();
    let mut spots: Vec<(&SensorInput, Pt)> = Vec::new();
    for ((area, members), (fill, _)) in lay.areas.iter().zip(&members).zip(&states) {
        let label = draw_room_label(&mut img, area, &pens, m);
        let placed = place_markers(area, label, members, m);
        let mut taken: Vec<Pt> = vec![(label.x + label.w / 2.0, label.y + label.h / 2.0)];
        for p in &placed {
            taken.extend([*p, (p.0 + m.px(45.0), p.1)]);
        }
        let (x0, _, _, y1) = geometry::bounds(&area.outline);
        let sample = geometry::clearest(&area.outline, &taken, m.px(6.0)).unwrap_or((x0, y1));
        rooms.push(RoomSpot {
            room: area.room.clone(),
            fill: *fill,
            fill_pixel: (sample.0.max(0.0) as u32, sample.1.max(0.0) as u32),
            outline: area.outline.clone(),
        });
        spots.extend(members.iter().copied().zip(placed));
    }
    for (s, _) in drawn.iter().zip(&lay.homes).filter(|(_, h)| h.is_none()) {
        if let Some(at) = s.at {
            spots.push((s, lay.to_px(at)));
        }
    }
    let markers = spots
        .into_iter()
        .map(|(s, p)| draw_marker(&mut img, input, s, p, &pens, m))
        .collect();
    draw_legend(&mut img, input, &drawn, &pens, m, lay.legend_top);
    Ok(PlanPicture {
        image: img,
        markers,
        rooms,
    })
}

/// A room's fill, and its most urgent alarm (counting sensors placed by hand in it, which also
/// colour it).
fn room_state(
    input: &PlanInput,
    area: &Area,
    members: &[&SensorInput],
    drawn: &[&SensorInput],
) -> (RoomFill, Option<AlarmMark>) {
    let in_room: Vec<&SensorInput> = if area.room.is_empty() || area.cell {
        members.to_vec()
    } else {
        drawn
            .iter()
            .copied()
            .filter(|s| s.room.as_deref() == Some(area.room.as_str()))
            .collect()
    };
    let alarm = in_room
        .iter()
        .filter_map(|s| s.alarm)
        .max_by_key(|a| (a.active, a.severity));
    (room_fill(input, &in_room), alarm)
}

fn room_fill(input: &PlanInput, members: &[&SensorInput]) -> RoomFill {
    let of_measure: Vec<&&SensorInput> = members
        .iter()
        .filter(|s| s.kind == input.measure.kind())
        .collect();
    if of_measure.is_empty() {
        return RoomFill::NoSensor;
    }
    let fresh: Vec<f64> = of_measure
        .iter()
        .filter(|s| !is_stale(s, input.now, input.stale_after))
        .filter_map(|s| s.value)
        .collect();
    if fresh.is_empty() {
        RoomFill::Stale
    } else {
        RoomFill::Value(fresh.iter().sum::<f64>() / fresh.len() as f64)
    }
}
