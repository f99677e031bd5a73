//! Where the parts of a floor plan go: the floor's geometry scaled to the picture's width, a grid
//! of cells for rooms without a polygon (and one for sensors without a room), each drawn sensor's
//! home, and the spread of markers inside a room.

use super::{Metrics, PlanInput, SensorInput};
use crate::render::geometry::{self, Pt, Rect};
use crate::render::words::words;

/// A room (or the no-room cell) laid out in pixels.
#[derive(Debug)]
pub(super) struct Area {
    pub(super) room: String,
    pub(super) name: String,
    pub(super) tenant: Option<String>,
    pub(super) outline: Vec<Pt>,
    /// Cell of the automatic grid (labels at the top, markers below).
    pub(super) cell: bool,
}

/// Where everything goes, in pixels.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) width: f64,
    pub(super) floor: Option<Rect>,
    pub(super) scale: f64,
    pub(super) areas: Vec<Area>,
    /// Per drawn sensor: drawn at its own position (`None`) or in `areas[i]`.
    pub(super) homes: Vec<Option<usize>>,
    pub(super) legend_top: f64,
    pub(super) height: f64,
}

impl Layout {
    pub(super) fn to_px(&self, p: (f64, f64)) -> Pt {
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
pub(super) fn room_of<'a>(input: &PlanInput, s: &'a SensorInput) -> Option<&'a str> {
    s.room
        .as_deref()
        .filter(|r| input.rooms.iter().any(|x| x.id == *r))
}

/// Lays the floor out: the floor's geometry scaled to the width, then a grid of cells for the
/// rooms without a polygon (and one for sensors without a room), then the legend.
pub(super) fn layout(input: &PlanInput, drawn: &[&SensorInput], m: Metrics) -> Layout {
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

/// Where a room's markers go: spread over it (a cell: below its label), away from the label.
pub(super) fn place_markers(
    area: &Area,
    label: Rect,
    members: &[&SensorInput],
    m: Metrics,
) -> Vec<Pt> {
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
