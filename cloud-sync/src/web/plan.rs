//! Floor plans as SVG, drawn on the server from the synced site metadata: room polygons when
//! the site gives them, else an automatic grid of rooms; comfort rooms coloured by temperature,
//! plant rooms by the state of their alarms (see [`room_fill`]), a marker on rooms with open
//! alarms. Every label is drawn at least [`MIN_LABEL_PX`] high: the picture has a minimum width
//! and scrolls inside its own box on a narrow screen.
//!
//! Owns: the drawing (pure: a floor in, SVG text out). Does not own: the layout by floor and
//! room (`building`). Independent of the gateway's PNG renderer on purpose: the centre does not
//! depend on the daemon.

use std::fmt::Write as _;

use super::building::{FloorView, RoomKind, RoomView};
use super::words::{Lang, reading_text};

/// The smallest a plan's label may be drawn on screen, in CSS pixels.
pub const MIN_LABEL_PX: f64 = 11.5;

/// Plant room colours: an alarm waiting for acknowledgement, an acknowledged open alarm, all
/// normal with fresh values. None of them is on the temperature scale.
pub const PLANT_UNACKED: &str = "#b00020";
/// See [`PLANT_UNACKED`].
pub const PLANT_ACKED: &str = "#f9a825";
/// See [`PLANT_UNACKED`].
pub const PLANT_NORMAL: &str = "#d7d2e8";
/// A room with no fresh value (either kind).
pub const NO_VALUE: &str = "#e0e0e0";

/// Width of the grid cell of a room without geometry, in SVG units.
const CELL_W: f64 = 180.0;
/// Height of a grid cell.
const CELL_H: f64 = 110.0;
/// Gap between grid cells.
const GAP: f64 = 10.0;

/// Temperature colour stops (°C, RGB): cold blue through green to hot red.
const STOPS: [(f64, [u8; 3]); 6] = [
    (14.0, [0x31, 0x36, 0x95]),
    (18.0, [0x74, 0xad, 0xd1]),
    (21.0, [0xa6, 0xd9, 0x6a]),
    (24.0, [0xfe, 0xe0, 0x8b]),
    (27.0, [0xf4, 0x6d, 0x43]),
    (30.0, [0xa5, 0x00, 0x26]),
];

/// The fill of a room at temperature `t` (grey without one).
pub fn temperature_colour(t: Option<f64>) -> String {
    let Some(t) = t.filter(|t| t.is_finite()) else {
        return "#e0e0e0".to_owned();
    };
    let (first, last) = (STOPS[0], STOPS[STOPS.len() - 1]);
    let rgb = if t <= first.0 {
        first.1
    } else if t >= last.0 {
        last.1
    } else {
        let i = STOPS.iter().position(|s| s.0 > t).unwrap_or(1).max(1);
        let (lo, hi) = (STOPS[i - 1], STOPS[i]);
        let f = (t - lo.0) / (hi.0 - lo.0);
        let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
        [
            mix(lo.1[0], hi.1[0]),
            mix(lo.1[1], hi.1[1]),
            mix(lo.1[2], hi.1[2]),
        ]
    };
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// The fill of a room: a comfort room by its temperature; a plant room by its alarms (an
/// unacknowledged one red, an acknowledged one amber), else pale violet when its sensors report
/// and grey when none does.
pub fn room_fill(room: &RoomView) -> String {
    match room.kind {
        RoomKind::Comfort => temperature_colour(room.temperature),
        RoomKind::Plant if room.unacked => PLANT_UNACKED.to_owned(),
        RoomKind::Plant if room.open_alarms > 0 => PLANT_ACKED.to_owned(),
        RoomKind::Plant if room.reading.is_some() => PLANT_NORMAL.to_owned(),
        RoomKind::Plant => NO_VALUE.to_owned(),
    }
}

/// A room's summary as the plan writes it: its reading in words ("21.3 °C", "dry"), or "no
/// value".
pub fn room_text(lang: Lang, room: &RoomView) -> String {
    match &room.reading {
        Some(r) => reading_text(lang, Some(r.value), r.kind.as_deref(), r.unit.as_deref()),
        None => lang.t("no value", "нет данных").to_owned(),
    }
}

/// WCAG relative luminance of `#rrggbb` (`None` for anything else).
fn luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#').filter(|h| h.len() == 6)?;
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(h.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.040_45 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

/// WCAG contrast ratio of two `#rrggbb` colours (1 when either is not one).
pub fn contrast(a: &str, b: &str) -> f64 {
    match (luminance(a), luminance(b)) {
        (Some(x), Some(y)) => (x.max(y) + 0.05) / (x.min(y) + 0.05),
        _ => 1.0,
    }
}

/// The text colour legible on background `bg`: black or white, whichever contrasts more. The
/// two contrasts multiply to 21, so the better one is at least 4.58:1 on any colour.
pub fn text_on(bg: &str) -> &'static str {
    if contrast(bg, "#000000") >= contrast(bg, "#ffffff") {
        "#000000"
    } else {
        "#ffffff"
    }
}

/// Escapes text for SVG/XML.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where a room is drawn: its outline and the point its label goes.
struct Placed<'a> {
    room: &'a RoomView,
    points: Vec<[f64; 2]>,
    label: [f64; 2],
    /// Top-right corner, for the alarm marker.
    corner: [f64; 2],
}

/// The SVG of one floor. `link` makes each room a link (e.g. to its part of the page).
pub fn floor_svg(lang: Lang, floor: &FloorView, link: &dyn Fn(&RoomView) -> String) -> String {
    let geometry = floor.width.zip(floor.height);
    // Plan units to SVG units: plans are drawn 800 wide.
    let (scale, plan_h) = match geometry {
        Some((w, h)) => (800.0 / w, h * 800.0 / w),
        None => (1.0, 0.0),
    };
    let mut placed = Vec::new();
    let mut gridded = Vec::new();
    for room in &floor.rooms {
        match (&room.polygon, geometry) {
            (Some(p), Some(_)) => {
                let points: Vec<[f64; 2]> = p.iter().map(|[x, y]| [x * scale, y * scale]).collect();
                let n = points.len() as f64;
                let label = [
                    points.iter().map(|p| p[0]).sum::<f64>() / n,
                    points.iter().map(|p| p[1]).sum::<f64>() / n,
                ];
                let corner = [
                    points.iter().map(|p| p[0]).fold(f64::MIN, f64::max),
                    points.iter().map(|p| p[1]).fold(f64::MAX, f64::min),
                ];
                placed.push(Placed {
                    room,
                    points,
                    label,
                    corner,
                });
            }
            _ => gridded.push(room),
        }
    }
    // Rooms without an outline: a grid, below the plan when there is one.
    let width: f64 = if geometry.is_some() { 800.0 } else { 0.0 };
    let cols = grid_columns(gridded.len());
    let top = if geometry.is_some() {
        plan_h + GAP * 2.0
    } else {
        0.0
    };
    for (i, room) in gridded.iter().enumerate() {
        let (c, r) = ((i % cols) as f64, (i / cols) as f64);
        let (x, y) = (c * (CELL_W + GAP), top + r * (CELL_H + GAP));
        placed.push(Placed {
            room,
            points: vec![
                [x, y],
                [x + CELL_W, y],
                [x + CELL_W, y + CELL_H],
                [x, y + CELL_H],
            ],
            label: [x + CELL_W / 2.0, y + CELL_H / 2.0],
            corner: [x + CELL_W, y],
        });
    }
    let rows = gridded.len().div_ceil(cols.max(1));
    let grid_w = cols as f64 * (CELL_W + GAP) - GAP;
    let total_w = width
        .max(if gridded.is_empty() { 0.0 } else { grid_w })
        .max(CELL_W);
    let total_h = if gridded.is_empty() {
        plan_h.max(CELL_H)
    } else {
        top + rows as f64 * (CELL_H + GAP) - GAP
    };
    let font = if geometry.is_some() { 14.0 } else { 15.0 };

    let mut svg = String::new();
    let pad = 12.0;
    let view_w = total_w + 2.0 * pad;
    // Never so small that a label is under MIN_LABEL_PX on screen.
    let min_w = (view_w * MIN_LABEL_PX / font).ceil();
    write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plan\" role=\"img\" \
         viewBox=\"{:.1} {:.1} {:.1} {:.1}\" width=\"{:.0}\" style=\"min-width:{min_w:.0}px\" \
         data-floor=\"{}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"{font}\">",
        -pad,
        -pad,
        view_w,
        total_h + 2.0 * pad,
        view_w.min(900.0).max(min_w),
        esc(&floor.floor_id)
    )
    .ok();
    write!(
        svg,
        "<title>{} {}</title>",
        lang.t("Floor", "Этаж"),
        esc(&floor.name)
    )
    .ok();
    if let Some((_, _)) = geometry {
        write!(
            svg,
            "<rect x=\"0\" y=\"0\" width=\"800\" height=\"{plan_h:.1}\" fill=\"#fafafa\" \
             stroke=\"#888\" stroke-width=\"2\"/>"
        )
        .ok();
    }
    for p in &placed {
        draw_room(&mut svg, lang, p, font, link);
    }
    svg.push_str("</svg>");
    svg
}

fn grid_columns(n: usize) -> usize {
    // About as wide as 4 rooms on a screen, more for big floors.
    let mut cols = 1;
    while cols * cols < n * 2 / 3 + 1 && cols < 8 {
        cols += 1;
    }
    cols.max(n.min(4))
}

fn draw_room(
    svg: &mut String,
    lang: Lang,
    p: &Placed<'_>,
    font: f64,
    link: &dyn Fn(&RoomView) -> String,
) {
    let room = p.room;
    let points: Vec<String> = p
        .points
        .iter()
        .map(|[x, y]| format!("{x:.1},{y:.1}"))
        .collect();
    let temp = room_text(lang, room);
    let fill = room_fill(room);
    write!(
        svg,
        "<a href=\"{}\"><g class=\"room\" data-room=\"{}\" data-kind=\"{}\">\
         <title>{} — {}</title>\
         <polygon points=\"{}\" fill=\"{}\" stroke=\"#333\" stroke-width=\"1.5\"/>",
        esc(&link(room)),
        esc(&room.room_id),
        match room.kind {
            RoomKind::Comfort => "comfort",
            RoomKind::Plant => "plant",
        },
        esc(&room.name),
        esc(&temp),
        points.join(" "),
        fill
    )
    .ok();
    let [x, y] = p.label;
    let ink = text_on(&fill);
    write!(
        svg,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" \
         fill=\"{ink}\">{}</text>\
         <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"temp\" fill=\"{ink}\">{}</text>",
        y - font * 0.3,
        esc(&truncate(&room.name, 22)),
        y + font * 1.0,
        esc(&temp)
    )
    .ok();
    if room.open_alarms > 0 {
        let [cx, cy] = p.corner;
        let colour = if room.unacked { "#d7191c" } else { "#fdae61" };
        let r = font * 0.9;
        write!(
            svg,
            "<g class=\"alarm-marker\"><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{colour}\" \
             stroke=\"#fff\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             fill=\"{}\" font-weight=\"bold\">!</text></g>",
            cx - r - 2.0,
            cy + r + 2.0,
            cx - r - 2.0,
            cy + r + 2.0 + font * 0.35,
            text_on(colour)
        ).ok();
    }
    svg.push_str("</g></a>");
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::building::RoomReading;

    fn room(id: &str, t: Option<f64>, polygon: Option<Vec<[f64; 2]>>, alarms: usize) -> RoomView {
        RoomView {
            room_id: id.into(),
            name: format!("Room <{id}>"),
            tenant_id: None,
            tenant: None,
            polygon,
            kind: RoomKind::Comfort,
            temperature: t,
            reading: t.map(|value| RoomReading {
                value,
                kind: Some("temperature".into()),
                unit: Some("°C".into()),
            }),
            open_alarms: alarms,
            unacked: alarms > 0,
            sensors: Vec::new(),
        }
    }

    fn floor(width: Option<f64>, rooms: Vec<RoomView>) -> FloorView {
        FloorView {
            floor_id: "1".into(),
            name: "First".into(),
            level: Some(1),
            width,
            height: width.map(|w| w / 2.0),
            rooms,
            sensors: Vec::new(),
        }
    }

    #[test]
    fn colours_follow_temperature() {
        assert_eq!(temperature_colour(None), "#e0e0e0");
        // Every colour of the scale carries legible text.
        for t in (0..=45).map(f64::from).map(Some).chain([None]) {
            let bg = temperature_colour(t);
            assert!(contrast(&bg, text_on(&bg)) >= 4.5, "{t:?}: {bg}");
        }
        assert_eq!(text_on("#a50026"), "#ffffff");
        assert_eq!(text_on("#a6d96a"), "#000000");
        assert_eq!(temperature_colour(Some(10.0)), "#313695");
        assert_eq!(temperature_colour(Some(21.0)), "#a6d96a");
        assert_eq!(temperature_colour(Some(35.0)), "#a50026");
        assert_ne!(
            temperature_colour(Some(22.5)),
            temperature_colour(Some(21.0))
        );
    }

    #[test]
    fn plant_rooms_are_coloured_by_their_alarms_with_legible_text() {
        let mut boiler = room("boiler", None, None, 0);
        boiler.kind = RoomKind::Plant;
        boiler.reading = Some(RoomReading {
            value: 61.0,
            kind: Some("temperature".into()),
            unit: Some("°C".into()),
        });
        assert_eq!(room_fill(&boiler), PLANT_NORMAL, "61 °C is normal there");
        assert_eq!(room_text(Lang::En, &boiler), "61.0 °C");
        boiler.open_alarms = 1;
        boiler.unacked = false;
        assert_eq!(room_fill(&boiler), PLANT_ACKED);
        boiler.unacked = true;
        assert_eq!(room_fill(&boiler), PLANT_UNACKED);
        boiler.reading = None;
        boiler.open_alarms = 0;
        boiler.unacked = false;
        assert_eq!(room_fill(&boiler), NO_VALUE);
        assert_eq!(room_text(Lang::Ru, &boiler), "нет данных");
        for bg in [PLANT_UNACKED, PLANT_ACKED, PLANT_NORMAL, NO_VALUE] {
            assert!(contrast(bg, text_on(bg)) >= 4.5, "{bg}");
        }
        let mut basement = room("basement", None, None, 0);
        basement.kind = RoomKind::Plant;
        basement.reading = Some(RoomReading {
            value: 0.0,
            kind: Some("leak".into()),
            unit: None,
        });
        assert_eq!(room_text(Lang::En, &basement), "dry");
        assert_eq!(room_text(Lang::Ru, &basement), "сухо");
    }

    #[test]
    fn labels_keep_their_size_on_a_narrow_screen() {
        let rooms = (1..=16)
            .map(|i| room(&format!("{i}"), Some(20.0), None, 0))
            .collect();
        let svg = floor_svg(Lang::En, &floor(None, rooms), &|_| "#".into());
        let attr = |name: &str| -> f64 {
            let start = svg.find(name).unwrap() + name.len();
            let rest = &svg[start..];
            rest[..rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap()]
                .parse()
                .unwrap()
        };
        let view_w: f64 = svg
            .split("viewBox=\"")
            .nth(1)
            .unwrap()
            .split(' ')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        let min = attr("min-width:");
        assert!(min / view_w * 15.0 >= MIN_LABEL_PX, "{min} for {view_w}");
        assert!(attr(" width=\"") >= min);
    }

    #[test]
    fn polygons_are_scaled_and_other_rooms_gridded() {
        let square = vec![[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]];
        let f = floor(
            Some(20.0),
            vec![
                room("101", Some(21.0), Some(square), 1),
                room("102", None, None, 0),
            ],
        );
        let svg = floor_svg(Lang::En, &f, &|r| format!("#room-{}", r.room_id));
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(
            svg.contains("points=\"0.0,0.0 400.0,0.0 400.0,200.0 0.0,200.0\""),
            "{svg}"
        );
        assert!(svg.contains("data-room=\"102\""));
        assert!(svg.contains("Room &lt;101&gt;"), "escaped: {svg}");
        assert!(svg.contains("21.0 °C"));
        assert_eq!(svg.matches("class=\"alarm-marker\"").count(), 1);
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn a_floor_without_geometry_is_a_grid() {
        let rooms = (1..=7)
            .map(|i| room(&format!("{i}"), Some(20.0), None, 0))
            .collect();
        let svg = floor_svg(Lang::En, &floor(None, rooms), &|_| "#".into());
        assert_eq!(svg.matches("<polygon").count(), 7);
        assert!(!svg.contains("alarm-marker"));
    }
}
