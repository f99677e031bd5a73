//! The drawn parts of a floor plan: the title, the plan picture under the rooms, room labels,
//! sensor markers with their alarm rings, walls and the legend.

use image::{Rgb, RgbImage, imageops};
use imageproc::drawing::{draw_filled_circle_mut, draw_line_segment_mut};

use super::layout::Area;
use super::{MarkerSpot, Metrics, Pens, PlanInput, SensorInput, is_stale};
use crate::model::Severity;
use crate::render::font::fit;
use crate::render::geometry::{self, Pt, Rect, fill_polygon};
use crate::render::palette::{self, severity_colour};
use crate::render::time::stamp;
use crate::render::words::{self, words};

pub(super) fn draw_header(
    img: &mut RgbImage,
    input: &PlanInput,
    pens: &Pens,
    m: Metrics,
    width: f64,
) {
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

pub(super) fn draw_backdrop(img: &mut RgbImage, bg: &RgbImage, r: Rect) {
    let (w, h) = (r.w.round().max(1.0) as u32, r.h.round().max(1.0) as u32);
    let scaled = if bg.width() >= w && bg.height() >= h {
        imageops::thumbnail(bg, w, h)
    } else {
        imageops::resize(bg, w, h, imageops::FilterType::Triangle)
    };
    imageops::overlay(img, &scaled, r.x.round() as i64, r.y.round() as i64);
}

/// Room name (and tenant) at the top left inside the room; returns the box they take.
pub(super) fn draw_room_label(img: &mut RgbImage, area: &Area, pens: &Pens, m: Metrics) -> Rect {
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

pub(super) fn value_text(input: &PlanInput, s: &SensorInput) -> String {
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

pub(super) fn draw_marker(
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
pub(super) fn outline(img: &mut RgbImage, poly: &[Pt], colour: Rgb<u8>, thickness: f64) {
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

pub(super) fn draw_legend(
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
