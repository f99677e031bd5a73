//! The floor plan picture, from plain data ([`PlanInput`]): rooms filled by the chosen measure,
//! sensor markers with value and unit, alarm rings by severity with the alarmed room outlined in
//! the severity's colour, stale data greyed, a title with the time, and a legend.
//!
//! Owns: the layout (plan units to pixels, the automatic grid of rooms without a polygon, marker
//! placement) and the drawing. Does not own: where the data comes from (`super::gather`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use image::{Rgb, RgbImage, imageops};
use imageproc::drawing::{draw_filled_circle_mut, draw_line_segment_mut};

use super::RenderError;
use super::font::{Pen, fit, font};
use super::geometry::{self, Pt, Rect, fill_polygon};
use super::palette::{self, Measure, severity_colour};
use super::time::stamp;
use super::words::{self, words};
use crate::alarms::{Lang, Severity};
use crate::config::UtcOffset;
use crate::model::{Quality, Timestamp};

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

/// A room (or the no-room cell) laid out in pixels.
#[derive(Debug)]
struct Area {
    room: String,
    name: String,
    tenant: Option<String>,
    outline: Vec<Pt>,
    /// Cell of the automatic grid (labels at the top, markers below).
    cell: bool,
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

/// Where everything goes, in pixels.
#[derive(Debug)]
struct Layout {
    width: f64,
    floor: Option<Rect>,
    scale: f64,
    areas: Vec<Area>,
    /// Per drawn sensor: drawn at its own position (`None`) or in `areas[i]`.
    homes: Vec<Option<usize>>,
    legend_top: f64,
    height: f64,
}

impl Layout {
    fn to_px(&self, p: (f64, f64)) -> Pt {
        let r = self.floor.unwrap_or(Rect {
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0,
        });
        (r.x + p.0 * self.scale, r.y + p.1 * self.scale)
    }
}

/// The sensor's room, when it is one of the plan's rooms.
fn room_of<'a>(input: &PlanInput, s: &'a SensorInput) -> Option<&'a str> {
    s.room
        .as_deref()
        .filter(|r| input.rooms.iter().any(|x| x.id == *r))
}

/// Lays the floor out: the floor's geometry scaled to the width, then a grid of cells for the
/// rooms without a polygon (and one for sensors without a room), then the legend.
fn layout(input: &PlanInput, drawn: &[&SensorInput], m: Metrics) -> Layout {
    let width = f64::from(input.width_px.clamp(320, 4000));
    let geometric = input.floor.size.filter(|&(w, h)| {
        w > 0.0
            && h > 0.0
            && (input.rooms.iter().any(|r| r.polygon.is_some())
                || input.sensors.iter().any(|s| s.at.is_some())
                || input.background.is_some())
    });
    let header_h = m.px(70.0);
    let inner_w = width - 2.0 * m.margin;
    let (scale, floor) = match geometric {
        Some((fw, fh)) => {
            let s = (inner_w / fw).min(1.4 * width / fh);
            let (w, h) = (fw * s, fh * s);
            let x = m.margin + (inner_w - w) / 2.0;
            (
                s,
                Some(Rect {
                    x,
                    y: header_h,
                    w,
                    h,
                }),
            )
        }
        None => (1.0, None),
    };
    let mut lay = Layout {
        width,
        floor,
        scale,
        areas: Vec::new(),
        homes: Vec::new(),
        legend_top: 0.0,
        height: 0.0,
    };
    let mut cells: Vec<(String, String, Option<String>)> = Vec::new();
    for r in &input.rooms {
        match (&r.polygon, floor) {
            (Some(poly), Some(_)) if poly.len() >= 3 => {
                let outline = poly.iter().map(|p| lay.to_px(*p)).collect();
                lay.areas.push(Area {
                    room: r.id.clone(),
                    name: r.name.clone(),
                    tenant: r.tenant.clone(),
                    outline,
                    cell: false,
                });
            }
            _ => cells.push((r.id.clone(), r.name.clone(), r.tenant.clone())),
        }
    }
    let room_of = |s: &SensorInput| room_of(input, s).map(str::to_owned);
    let placed = |s: &SensorInput| floor.is_some() && s.at.is_some();
    if drawn.iter().any(|s| !placed(s) && room_of(s).is_none()) {
        cells.push((String::new(), words(input.lang).no_room.to_owned(), None));
    }
    let in_cell =
        |id: &str, s: &SensorInput| !placed(s) && room_of(s).as_deref().unwrap_or("") == id;
    let per_cell = cells
        .iter()
        .map(|(id, _, _)| drawn.iter().filter(|s| in_cell(id, s)).count())
        .max()
        .unwrap_or(0);
    let (min_w, gap) = (m.px(230.0), m.px(10.0));
    let per_row = (((min_w - 16.0) / m.px(112.0)).floor() as usize).max(1);
    let cell_h = (m.px(48.0) + per_cell.div_ceil(per_row) as f64 * m.px(34.0)).max(m.px(96.0));
    let grid_top = floor.map_or(header_h, |r| r.y + r.h + m.px(14.0));
    let grid_h = geometry::grid_height(cells.len(), inner_w, min_w, cell_h, gap);
    let grid_area = Rect {
        x: m.margin,
        y: grid_top,
        w: inner_w,
        h: grid_h,
    };
    let rects = geometry::grid(cells.len(), grid_area, min_w, cell_h, gap);
    for (rect, (id, name, tenant)) in rects.into_iter().zip(cells) {
        lay.areas.push(Area {
            room: id,
            name,
            tenant,
            outline: rect.corners(),
            cell: true,
        });
    }
    lay.homes = drawn
        .iter()
        .map(|s| {
            if placed(s) {
                return None;
            }
            let room = room_of(s).unwrap_or_default();
            lay.areas.iter().position(|a| a.room == room)
        })
        .collect();
    lay.legend_top = grid_top + grid_h + m.px(16.0);
    lay.height = (lay.legend_top + m.px(60.0)).min(8000.0);
    lay
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

/// Where a room's markers go: spread over it (a cell: below its label), away from the label.
fn place_markers(area: &Area, label: Rect, members: &[&SensorInput], m: Metrics) -> Vec<Pt> {
    let label_centre = (label.x + label.w / 2.0, label.y + label.h / 2.0);
    let (x0, _, x1, y1) = geometry::bounds(&area.outline);
    let region: Vec<Pt> = if area.cell {
        Rect {
            x: x0,
            y: label.y + label.h,
            w: x1 - x0,
            h: (y1 - label.y - label.h).max(4.0),
        }
        .corners()
    } else {
        area.outline.clone()
    };
    let (rw, rh) = (x1 - x0, y1 - geometry::bounds(&region).1);
    let margin = m.px(14.0).max(0.12 * rw.min(rh));
    geometry::spread(&region, &[label_centre], members.len(), margin)
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

fn draw_header(img: &mut RgbImage, input: &PlanInput, pens: &Pens, m: Metrics, width: f64) {
    let w = words(input.lang);
    let floor = match &input.floor.name {
        Some(n) => n.clone(),
        None => format!("{} {}", w.floor, input.floor.id),
    };
    let title = if input.building.is_empty() {
        floor
    } else {
        format!("{} — {floor}", input.building)
    };
    let when = format!("{} {}", w.as_of, stamp(input.now, input.utc_offset));
    let when_w = pens.sub.width(&when);
    pens.title.draw(
        img,
        palette::INK,
        m.margin,
        m.px(10.0),
        &fit(pens.title, &title, width - 2.0 * m.margin),
    );
    let unit = input
        .sensors
        .iter()
        .find(|s| s.kind == input.measure.kind() && !s.unit.is_empty())
        .map(|s| format!(", {}", s.unit))
        .unwrap_or_default();
    let sub = format!("{}{unit}", words::measure(input.lang, input.measure));
    pens.sub
        .draw(img, palette::MUTED, m.margin, m.px(42.0), &sub);
    pens.sub.draw(
        img,
        palette::MUTED,
        width - m.margin - when_w,
        m.px(42.0),
        &when,
    );
}

fn draw_backdrop(img: &mut RgbImage, bg: &RgbImage, r: Rect) {
    let (w, h) = (r.w.round().max(1.0) as u32, r.h.round().max(1.0) as u32);
    let scaled = if bg.width() >= w && bg.height() >= h {
        imageops::thumbnail(bg, w, h)
    } else {
        imageops::resize(bg, w, h, imageops::FilterType::Triangle)
    };
    imageops::overlay(img, &scaled, r.x.round() as i64, r.y.round() as i64);
}

/// Room name (and tenant) at the top left inside the room; returns the box they take.
fn draw_room_label(img: &mut RgbImage, area: &Area, pens: &Pens, m: Metrics) -> Rect {
    let (x0, y0, x1, _) = geometry::bounds(&area.outline);
    let pad = m.px(5.0);
    let max_w = (x1 - x0 - 2.0 * pad).max(10.0);
    let mut at = (x0 + pad, y0 + pad);
    if !area.cell && !geometry::contains(&area.outline, at) {
        // An L-shaped room: start from its grid point nearest the top left.
        if let Some(p) = geometry::clearest(&area.outline, &[(x0, y0)], pad) {
            at = (p.0 - max_w.min(60.0) / 2.0, p.1);
        }
    }
    // On a light box, so the text reads on any fill.
    let name = fit(pens.room, &area.name, max_w);
    let mut h = pens.room.height();
    let mut w = pens.room.width(&name);
    let boxed = |colour| (colour, palette::BACKGROUND, 0.7);
    pens.room
        .draw_boxed(img, boxed(palette::INK), at.0, at.1, &name);
    if let Some(t) = &area.tenant {
        let t = fit(pens.small, t, max_w);
        let y = at.1 + h + 2.0;
        pens.small
            .draw_boxed(img, boxed(palette::MUTED), at.0, y, &t);
        w = w.max(pens.small.width(&t));
        h += pens.small.height() + 2.0;
    }
    Rect {
        x: at.0,
        y: at.1,
        w,
        h,
    }
}

fn value_text(input: &PlanInput, s: &SensorInput) -> String {
    let Some(v) = s.value else {
        return words(input.lang).no_data.to_owned();
    };
    if s.kind != input.measure.kind() {
        return s.name.clone();
    }
    let d = input.measure.decimals();
    if s.unit.is_empty() {
        format!("{v:.d$}")
    } else {
        format!("{v:.d$} {}", s.unit)
    }
}

fn draw_marker(
    img: &mut RgbImage,
    input: &PlanInput,
    s: &SensorInput,
    p: Pt,
    pens: &Pens,
    m: Metrics,
) -> MarkerSpot {
    let stale = is_stale(s, input.now, input.stale_after);
    let (cx, cy) = (p.0.round() as i32, p.1.round() as i32);
    let r = m.px(6.0).max(4.0) as i32;
    let mut alarm_pixel = None;
    if let Some(a) = s.alarm {
        // A ring in the severity's colour: thick while active, thin once cleared.
        let ring = r + 2 + m.px(7.0).max(4.0) as i32;
        let colour = severity_colour(a.severity);
        draw_filled_circle_mut(img, (cx, cy), ring + 1, palette::WALL);
        draw_filled_circle_mut(img, (cx, cy), ring, colour);
        let hole = if a.active {
            r + 2
        } else {
            ring - m.px(2.0).max(2.0) as i32
        };
        draw_filled_circle_mut(img, (cx, cy), hole, palette::BACKGROUND);
        let x = (cx - ring + 1).max(0);
        alarm_pixel = Some((x as u32, cy.max(0) as u32));
    }
    let dot = if stale {
        palette::STALE
    } else if s.kind == input.measure.kind() {
        s.value
            .map_or(palette::NO_SENSOR, |v| input.measure.colour(v))
    } else {
        palette::INK
    };
    draw_filled_circle_mut(img, (cx, cy), r + 1, palette::WALL);
    draw_filled_circle_mut(img, (cx, cy), r, dot);
    let text = fit(pens.value, &value_text(input, s), m.px(150.0));
    let tw = pens.value.width(&text);
    let gap = m.px(15.0);
    let tx = if p.0 + gap + tw + 4.0 < f64::from(img.width()) {
        p.0 + gap
    } else {
        p.0 - gap - tw
    };
    let ink = if stale {
        palette::STALE_INK
    } else {
        palette::INK
    };
    pens.value.draw_boxed(
        img,
        (ink, palette::BACKGROUND, 0.8),
        tx,
        p.1 - pens.value.height() / 2.0,
        &text,
    );
    MarkerSpot {
        sensor: s.id.clone(),
        centre: (cx.max(0) as u32, cy.max(0) as u32),
        alarm_pixel,
        stale,
    }
}

/// Draws a polygon's outline `thickness` pixels wide.
fn outline(img: &mut RgbImage, poly: &[Pt], colour: Rgb<u8>, thickness: f64) {
    let n = poly.len();
    let t = thickness.round().max(1.0) as i32;
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        for o in 0..t {
            let d = f64::from(o - t / 2);
            for (dx, dy) in [(d, 0.0), (0.0, d)] {
                draw_line_segment_mut(
                    img,
                    ((a.0 + dx) as f32, (a.1 + dy) as f32),
                    ((b.0 + dx) as f32, (b.1 + dy) as f32),
                    colour,
                );
            }
        }
    }
}

fn draw_legend(
    img: &mut RgbImage,
    input: &PlanInput,
    drawn: &[&SensorInput],
    pens: &Pens,
    m: Metrics,
    top: f64,
) {
    let w = words(input.lang);
    let (lo, hi) = input.measure.range();
    let (x0, bar_w, bar_h) = (m.margin, m.px(320.0), m.px(14.0));
    for i in 0..bar_w as u32 {
        let v = lo + (hi - lo) * f64::from(i) / (bar_w - 1.0).max(1.0);
        let c = input.measure.colour(v);
        for y in 0..bar_h as u32 {
            geometry::blend(img, x0 as u32 + i, top as u32 + y, c, 1.0);
        }
    }
    outline(
        img,
        &Rect {
            x: x0,
            y: top,
            w: bar_w,
            h: bar_h,
        }
        .corners(),
        palette::MUTED,
        1.0,
    );
    for t in input.measure.legend_ticks() {
        let x = x0 + (t - lo) / (hi - lo) * (bar_w - 1.0);
        draw_line_segment_mut(
            img,
            (x as f32, (top + bar_h) as f32),
            (x as f32, (top + bar_h + m.px(4.0)) as f32),
            palette::MUTED,
        );
        let label = format!("{t}");
        let lw = pens.small.width(&label);
        pens.small.draw(
            img,
            palette::MUTED,
            x - lw / 2.0,
            top + bar_h + m.px(5.0),
            &label,
        );
    }
    // Swatches: stale, no sensor, and the severities on the picture.
    let mut x = x0 + bar_w + m.px(30.0);
    let sw = m.px(14.0);
    let swatch = |img: &mut RgbImage, x: f64, colour: Rgb<u8>, text: &str| -> f64 {
        let r = Rect {
            x,
            y: top,
            w: sw,
            h: sw,
        };
        fill_polygon(img, &r.corners(), colour, 1.0);
        outline(img, &r.corners(), palette::MUTED, 1.0);
        pens.small
            .draw(img, palette::MUTED, x + sw + m.px(5.0), top, text);
        x + sw + m.px(5.0) + pens.small.width(text) + m.px(18.0)
    };
    x = swatch(img, x, palette::STALE, w.stale);
    x = swatch(img, x, palette::NO_SENSOR, w.no_sensor);
    let mut severities: Vec<Severity> = drawn
        .iter()
        .filter_map(|s| s.alarm.map(|a| a.severity))
        .collect();
    severities.sort_unstable_by(|a, b| b.cmp(a));
    severities.dedup();
    for sev in severities {
        let r = m.px(7.0) as i32;
        let c = (x + f64::from(r)) as i32;
        draw_filled_circle_mut(img, (c, (top + sw / 2.0) as i32), r, severity_colour(sev));
        let text = format!("{}: {}", w.alarm, words::severity(input.lang, sev));
        pens.small.draw(
            img,
            palette::MUTED,
            x + 2.0 * f64::from(r) + m.px(5.0),
            top,
            &text,
        );
        x += 2.0 * f64::from(r) + m.px(5.0) + pens.small.width(&text) + m.px(18.0);
    }
}
