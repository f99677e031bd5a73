//! Tests of the pictures: golden images compared with a per-pixel tolerance, and pixels sampled
//! where the alarm markers, stale rooms, chart gaps and alarm periods must be.
//!
//! Golden files live in `daemon/src/render/golden/`. After an intended change of the drawing,
//! look at the new pictures and bless them: `MARKOFF_BLESS=1 cargo test -p markoff --lib render`.
//! A failed comparison writes the picture it got to `target/render-diff/`. The gathering and SQL
//! tests are in `data`.

mod data;

use std::path::PathBuf;
use std::time::Duration;

use image::{Rgb, RgbImage};

use super::chart::{AlarmPeriod, ChartInput, ChartPoint, Side, Threshold, draw_chart};
use super::encode_png;
use super::palette::{self, Measure, severity_colour};
use super::plan::{AlarmMark, FloorInput, PlanInput, RoomFill, RoomInput, SensorInput, draw_plan};
use crate::config::UtcOffset;
use crate::model::{Lang, Quality, Severity, Timestamp};

/// A channel may differ by this much (font antialiasing, rounding) ...
const TOLERANCE: u8 = 24;
/// ... and this many pixels may differ by more (a marker is hundreds of pixels).
const MAX_OUTLIERS: usize = 40;

/// 2026-11-23 09:05:00 UTC.
const NOW: Timestamp = Timestamp(1_795_424_700_000);
const MIN: i64 = 60_000;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/render/golden")
}

/// Pixels whose channels differ by more than [`TOLERANCE`] (every pixel when sizes differ).
fn outliers(a: &RgbImage, b: &RgbImage) -> usize {
    if a.dimensions() != b.dimensions() {
        return (a.width() * a.height()).max(b.width() * b.height()) as usize;
    }
    a.pixels()
        .zip(b.pixels())
        .filter(|(p, q)| (0..3).any(|c| p.0[c].abs_diff(q.0[c]) > TOLERANCE))
        .count()
}

fn assert_golden(name: &str, img: &RgbImage) {
    let path = golden_dir().join(format!("{name}.png"));
    if std::env::var_os("MARKOFF_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        img.save(&path).unwrap();
        return;
    }
    let golden = image::open(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; bless it with MARKOFF_BLESS=1 cargo test -p markoff --lib render",
                path.display()
            )
        })
        .to_rgb8();
    let bad = outliers(img, &golden);
    if bad > MAX_OUTLIERS {
        let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/render-diff");
        std::fs::create_dir_all(&out).unwrap();
        let got = out.join(format!("{name}.actual.png"));
        img.save(&got).unwrap();
        panic!(
            "{name}: {bad} pixels differ from {} by more than {TOLERANCE} levels (at most \
             {MAX_OUTLIERS} may); the picture drawn is {}",
            path.display(),
            got.display()
        );
    }
}

fn sensor(id: &str, room: Option<&str>, value: Option<f64>) -> SensorInput {
    SensorInput {
        id: id.into(),
        name: id.into(),
        kind: "temperature".into(),
        unit: "°C".into(),
        room: room.map(Into::into),
        at: None,
        value,
        quality: Quality::Good,
        ts: Some(Timestamp(NOW.0 - MIN)),
        alarm: None,
    }
}

fn rect(x: f64, y: f64, w: f64, h: f64) -> Option<Vec<(f64, f64)>> {
    Some(vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
}

fn room(id: &str, name: &str, tenant: Option<&str>, polygon: Option<Vec<(f64, f64)>>) -> RoomInput {
    RoomInput {
        id: id.into(),
        name: name.into(),
        tenant: tenant.map(Into::into),
        polygon,
    }
}

/// Floor 3 of a small office building: four offices, a corridor, a washroom with a leak, one
/// stale room, one sensor placed by hand and one with no room.
fn office_floor() -> PlanInput {
    let mut sensors = vec![
        sensor("f3.r301.temperature", Some("301"), Some(19.4)),
        sensor("f3.r302.temperature", Some("302"), Some(21.6)),
        sensor("f3.r303.temperature", Some("303"), Some(23.9)),
        sensor("f3.r303.temperature_2", Some("303"), Some(24.3)),
        // 304: stale (an hour old) and a comm error: greyed.
        SensorInput {
            ts: Some(Timestamp(NOW.0 - 60 * MIN)),
            ..sensor("f3.r304.temperature", Some("304"), Some(22.0))
        },
        SensorInput {
            quality: Quality::CommError,
            value: None,
            ..sensor("f3.r304.temperature_2", Some("304"), None)
        },
        // The corridor is too hot: a high alarm, acknowledged but still active.
        SensorInput {
            alarm: Some(AlarmMark {
                severity: Severity::High,
                active: true,
            }),
            ..sensor("f3.corridor.temperature", Some("corridor"), Some(27.5))
        },
        // Placed by hand.
        SensorInput {
            at: Some((31.0, 16.0)),
            ..sensor("f3.stair.temperature", Some("stair"), Some(18.2))
        },
        // No room: goes to its own cell.
        sensor("zigbee.office_climate.temperature", None, Some(22.4)),
        // Not of the measure and no alarm: not drawn.
        SensorInput {
            kind: "humidity".into(),
            unit: "%".into(),
            ..sensor("f3.r301.humidity", Some("301"), Some(44.0))
        },
    ];
    sensors.push(SensorInput {
        kind: "leak".into(),
        unit: String::new(),
        name: "Washroom leak".into(),
        alarm: Some(AlarmMark {
            severity: Severity::Critical,
            active: true,
        }),
        ..sensor("f3.wc.leak", Some("wc"), Some(1.0))
    });
    PlanInput {
        building: "Lenina 17".into(),
        floor: FloorInput {
            id: "3".into(),
            name: None,
            size: Some((40.0, 20.0)),
        },
        rooms: vec![
            room(
                "301",
                "Office 301",
                Some("Acme Ltd"),
                rect(0.0, 0.0, 12.0, 9.0),
            ),
            room("302", "Office 302", None, rect(12.0, 0.0, 10.0, 9.0)),
            room(
                "303",
                "Office 303",
                Some("Romashka"),
                Some(vec![
                    (22.0, 0.0),
                    (40.0, 0.0),
                    (40.0, 14.0),
                    (34.0, 14.0),
                    (34.0, 9.0),
                    (22.0, 9.0),
                ]),
            ),
            room("corridor", "Corridor", None, rect(0.0, 9.0, 34.0, 3.0)),
            room("304", "Office 304", None, rect(0.0, 12.0, 20.0, 8.0)),
            room("wc", "WC", None, rect(20.0, 12.0, 8.0, 8.0)),
            room("stair", "Stairs", None, rect(28.0, 12.0, 6.0, 8.0)),
            // No polygon: a grid cell under the floor.
            room("server", "Server room", None, None),
        ],
        sensors,
        measure: Measure::Temperature,
        now: NOW,
        stale_after: Duration::from_secs(15 * 60),
        utc_offset: UtcOffset::from_seconds(5 * 3600).unwrap(),
        lang: Lang::En,
        width_px: 640,
        background: None,
    }
}

/// A floor with no geometry, as the simulator's building has: rooms laid out as a grid, words
/// in Russian.
fn grid_floor() -> PlanInput {
    let mut sensors = Vec::new();
    for (i, r) in ["101", "102", "103", "104", "105"].into_iter().enumerate() {
        sensors.push(sensor(
            &format!("f1.r{r}.temperature"),
            Some(r),
            Some(18.0 + 2.0 * i as f64),
        ));
        sensors.push(SensorInput {
            kind: "co2".into(),
            unit: "ppm".into(),
            ..sensor(
                &format!("f1.r{r}.co2"),
                Some(r),
                Some(500.0 + 250.0 * i as f64),
            )
        });
    }
    PlanInput {
        building: "Ленина 17".into(),
        floor: FloorInput {
            id: "1".into(),
            name: None,
            size: None,
        },
        rooms: ["101", "102", "103", "104", "105"]
            .into_iter()
            .map(|r| {
                room(
                    r,
                    &format!("Кабинет {r}"),
                    (r == "102").then_some("ООО «Ромашка»"),
                    None,
                )
            })
            .collect(),
        sensors,
        measure: Measure::Co2,
        lang: Lang::Ru,
        ..office_floor()
    }
}

/// 24 hours of a room temperature every minute, with a two-hour hole, twenty minutes of
/// communication errors, an alarm limit and an alarm period.
fn day_chart() -> ChartInput {
    let from = NOW.0 - 24 * 60 * MIN;
    let mut points = Vec::new();
    for i in 0..=24 * 60 {
        let ts = from + i * MIN;
        let minute = i as f64;
        if (600..720).contains(&i) {
            continue; // the hole: 10:00 to 12:00 after the start
        }
        let value = if (1000..1020).contains(&i) {
            None
        } else {
            Some(
                21.0 + 3.0 * (minute / 1440.0 * std::f64::consts::TAU).sin()
                    + if (1200..1260).contains(&i) { 3.0 } else { 0.0 },
            )
        };
        points.push(ChartPoint { ts, value });
    }
    ChartInput {
        sensor: "f3.r301.temperature".into(),
        name: "Room 301 temperature".into(),
        unit: "°C".into(),
        location: Some("3 / 301".into()),
        from: Timestamp(from),
        to: NOW,
        points,
        thresholds: vec![Threshold {
            alert: "RoomHot".into(),
            side: Side::Above,
            limit: 24.5,
            severity: Severity::High,
        }],
        alarms: vec![AlarmPeriod {
            alert: "RoomHot".into(),
            severity: Severity::High,
            from: from + 1210 * MIN,
            to: Some(from + 1265 * MIN),
        }],
        utc_offset: UtcOffset::from_seconds(5 * 3600).unwrap(),
        lang: Lang::En,
        size: (640, 320),
    }
}

fn marker<'a>(pic: &'a super::PlanPicture, id: &str) -> &'a super::MarkerSpot {
    pic.markers
        .iter()
        .find(|m| m.sensor == id)
        .unwrap_or_else(|| panic!("no marker of {id}"))
}

fn room_spot<'a>(pic: &'a super::PlanPicture, id: &str) -> &'a super::RoomSpot {
    pic.rooms
        .iter()
        .find(|r| r.room == id)
        .unwrap_or_else(|| panic!("no room {id}"))
}

fn px(img: &RgbImage, (x, y): (u32, u32)) -> Rgb<u8> {
    *img.get_pixel(x, y)
}

fn near(a: Rgb<u8>, b: Rgb<u8>) -> bool {
    (0..3).all(|c| a.0[c].abs_diff(b.0[c]) <= 8)
}

#[test]
fn golden_office_floor_plan() {
    let pic = draw_plan(&office_floor()).unwrap();
    assert_golden("plan_office_floor", &pic.image);
}

#[test]
fn golden_grid_floor_plan_in_russian() {
    let pic = draw_plan(&grid_floor()).unwrap();
    assert_golden("plan_grid_ru", &pic.image);
}

#[test]
fn golden_day_chart() {
    let pic = draw_chart(&day_chart()).unwrap();
    assert_golden("chart_day", &pic.image);
}

#[test]
fn the_golden_comparison_catches_a_missing_marker() {
    let golden = draw_plan(&office_floor()).unwrap().image;
    let mut input = office_floor();
    input.sensors.retain(|s| s.id != "f3.r302.temperature");
    let without = draw_plan(&input).unwrap().image;
    assert!(
        outliers(&without, &golden) > 4 * MAX_OUTLIERS,
        "{}",
        outliers(&without, &golden)
    );
    // A shade of antialiasing is tolerated.
    let mut shaded = golden.clone();
    for p in shaded.pixels_mut() {
        p.0[0] = p.0[0].saturating_sub(3);
    }
    assert_eq!(outliers(&shaded, &golden), 0);
}

#[test]
fn alarm_markers_and_room_outlines_take_the_severity_colour() {
    let pic = draw_plan(&office_floor()).unwrap();
    let leak = marker(&pic, "f3.wc.leak");
    let at = leak.alarm_pixel.expect("the leak has an alarm ring");
    assert!(
        near(px(&pic.image, at), severity_colour(Severity::Critical)),
        "{:?}",
        px(&pic.image, at)
    );
    let hot = marker(&pic, "f3.corridor.temperature");
    let at = hot.alarm_pixel.unwrap();
    assert!(near(px(&pic.image, at), severity_colour(Severity::High)));
    assert_eq!(marker(&pic, "f3.r301.temperature").alarm_pixel, None);
    // The leaking room is outlined in red: the middle of its bottom wall.
    let wc = room_spot(&pic, "wc");
    let (x0, _, x1, y1) = super::geometry::bounds(&wc.outline);
    let wall = (((x0 + x1) / 2.0) as u32, y1 as u32);
    assert!(
        near(px(&pic.image, wall), severity_colour(Severity::Critical)),
        "{:?}",
        px(&pic.image, wall)
    );
    // Other walls are grey.
    let r302 = room_spot(&pic, "302");
    let (x0, y0, x1, _) = super::geometry::bounds(&r302.outline);
    assert!(near(
        px(&pic.image, (((x0 + x1) / 2.0) as u32, y0 as u32)),
        palette::WALL
    ));
    // Without the alarm, no red ring where it was.
    let mut calm = office_floor();
    for s in &mut calm.sensors {
        s.alarm = None;
    }
    let calm_pic = draw_plan(&calm).unwrap();
    assert!(!near(
        px(&calm_pic.image, leak.alarm_pixel.unwrap()),
        severity_colour(Severity::Critical)
    ));
    assert!(
        calm_pic.markers.iter().all(|m| m.sensor != "f3.wc.leak"),
        "a leak sensor without alarm is not drawn on a temperature plan"
    );
}

#[test]
fn stale_data_is_greyed() {
    let input = office_floor();
    let pic = draw_plan(&input).unwrap();
    let stale = room_spot(&pic, "304");
    assert_eq!(stale.fill, RoomFill::Stale);
    assert_eq!(px(&pic.image, stale.fill_pixel), palette::STALE);
    for id in ["f3.r304.temperature", "f3.r304.temperature_2"] {
        let m = marker(&pic, id);
        assert!(m.stale, "{id}");
        assert_eq!(px(&pic.image, m.centre), palette::STALE, "{id}");
    }
    let fresh = room_spot(&pic, "301");
    assert_eq!(fresh.fill, RoomFill::Value(19.4));
    assert_eq!(
        px(&pic.image, fresh.fill_pixel),
        Measure::Temperature.colour(19.4)
    );
    let m = marker(&pic, "f3.r301.temperature");
    assert!(!m.stale);
    assert_eq!(px(&pic.image, m.centre), Measure::Temperature.colour(19.4));
    // Two fresh values average.
    assert_eq!(
        room_spot(&pic, "303").fill,
        RoomFill::Value((23.9 + 24.3) / 2.0)
    );
    assert_eq!(room_spot(&pic, "server").fill, RoomFill::NoSensor);
    // The same value turns stale with age alone.
    let mut later = input.clone();
    later.now = Timestamp(NOW.0 + 20 * MIN);
    let later_pic = draw_plan(&later).unwrap();
    assert_eq!(room_spot(&later_pic, "301").fill, RoomFill::Stale);
}

#[test]
fn sensors_are_placed_by_hand_spread_in_rooms_or_in_a_cell() {
    let input = office_floor();
    let pic = draw_plan(&input).unwrap();
    // Every drawn sensor once: the measure's ten and the leak with its alarm, not the humidity.
    assert_eq!(pic.markers.len(), 10);
    let stair = marker(&pic, "f3.stair.temperature");
    // at = (31, 16) on a 40 x 20 floor drawn 640 - 2 * 8.53 px wide from x = 8.53.
    let (margin, scale) = (
        16.0 * 640.0 / 1200.0,
        (640.0 - 2.0 * 16.0 * 640.0 / 1200.0) / 40.0,
    );
    let expected = (margin + 31.0 * scale, 70.0 * 640.0 / 1200.0 + 16.0 * scale);
    assert!(
        (f64::from(stair.centre.0) - expected.0).abs() <= 1.0,
        "{:?} {expected:?}",
        stair.centre
    );
    assert!(
        (f64::from(stair.centre.1) - expected.1.round()).abs() <= 1.0,
        "{:?} {expected:?}",
        stair.centre
    );
    assert!(super::geometry::contains(
        &room_spot(&pic, "stair").outline,
        (f64::from(stair.centre.0), f64::from(stair.centre.1))
    ));
    // Two sensors of room 303 are apart, and inside its polygon.
    let (a, b) = (
        marker(&pic, "f3.r303.temperature"),
        marker(&pic, "f3.r303.temperature_2"),
    );
    let d = f64::from(a.centre.0.abs_diff(b.centre.0))
        .hypot(f64::from(a.centre.1.abs_diff(b.centre.1)));
    assert!(d > 30.0, "stacked: {a:?} {b:?}");
    let r303 = room_spot(&pic, "303");
    for m in [a, b] {
        assert!(super::geometry::contains(
            &r303.outline,
            (f64::from(m.centre.0), f64::from(m.centre.1))
        ));
    }
    // The sensor without a room is in the "no room" cell, below the floor.
    let homeless = marker(&pic, "zigbee.office_climate.temperature");
    let cell = room_spot(&pic, "");
    assert!(super::geometry::contains(
        &cell.outline,
        (f64::from(homeless.centre.0), f64::from(homeless.centre.1))
    ));
    assert!(room_spot(&pic, "server").outline[0].1 > expected.1 + 4.0 * scale);
}

#[test]
fn a_floor_without_geometry_is_a_grid_of_its_rooms() {
    let input = grid_floor();
    let pic = draw_plan(&input).unwrap();
    assert_eq!(pic.rooms.len(), 5);
    assert_eq!(pic.markers.len(), 5, "one CO2 marker per room");
    for (i, r) in pic.rooms.iter().enumerate() {
        let (x0, y0, x1, y1) = super::geometry::bounds(&r.outline);
        for other in &pic.rooms[i + 1..] {
            let (a0, b0, a1, b1) = super::geometry::bounds(&other.outline);
            assert!(
                x1 <= a0 || a1 <= x0 || y1 <= b0 || b1 <= y0,
                "cells overlap"
            );
        }
        let m = pic
            .markers
            .iter()
            .find(|m| m.sensor.contains(&r.room))
            .unwrap();
        assert!(super::geometry::contains(
            &r.outline,
            (f64::from(m.centre.0), f64::from(m.centre.1))
        ));
        let RoomFill::Value(v) = r.fill else {
            panic!("{r:?}")
        };
        assert_eq!(px(&pic.image, r.fill_pixel), Measure::Co2.colour(v));
    }
}

#[test]
fn chart_lines_break_at_gaps_and_gaps_are_shaded() {
    let input = day_chart();
    let pic = draw_chart(&input).unwrap();
    let from = input.from.as_millis();
    // Lines: before the hole, between the hole and the errors, after the errors.
    assert_eq!(pic.lines, 3);
    let line_in_column = |ts: i64| {
        let (x, _) = pic.frame.pixel(ts, 0.0);
        let (top, bottom) = (
            pic.frame.px_y.1.min(pic.frame.px_y.0),
            pic.frame.px_y.1.max(pic.frame.px_y.0),
        );
        (top..=bottom)
            .filter(|y| near(*pic.image.get_pixel(x as u32, *y as u32), palette::LINE))
            .count()
    };
    assert!(
        line_in_column(from + 300 * MIN) > 0,
        "no line where there is data"
    );
    assert!(
        line_in_column(from + 900 * MIN) > 0,
        "no line where there is data"
    );
    assert_eq!(
        line_in_column(from + 660 * MIN),
        0,
        "a line across the two-hour hole"
    );
    assert_eq!(
        line_in_column(from + 1010 * MIN),
        0,
        "a line across the communication errors"
    );
    // The hole is shaded grey (away from the line and grid).
    let (x, y) = pic.frame.pixel(from + 650 * MIN, 17.5);
    assert_eq!(*pic.image.get_pixel(x as u32, y as u32), palette::GAP);
}

#[test]
fn chart_shades_alarm_periods_and_the_limit_band() {
    let input = day_chart();
    let pic = draw_chart(&input).unwrap();
    let from = input.from.as_millis();
    let alarm = palette::tint(severity_colour(Severity::High), 0.22);
    // Inside the alarm period, below the limit and away from the line.
    let (x, y) = pic.frame.pixel(from + 1240 * MIN, 17.6);
    assert!(
        near(*pic.image.get_pixel(x as u32, y as u32), alarm),
        "{:?}",
        pic.image.get_pixel(x as u32, y as u32)
    );
    // Above the limit outside the alarm: white tinted by the band, not white.
    let (x, y) = pic.frame.pixel(from + 300 * MIN, 24.75);
    let band = *pic.image.get_pixel(x as u32, y as u32);
    assert!(
        band != palette::BACKGROUND && band.0[0] > 240 && band.0[2] < 245,
        "{band:?}"
    );
    // Below the limit outside the alarm, between grid lines: white.
    let (x, y) = pic.frame.pixel(from + 300 * MIN, 20.5);
    assert_eq!(
        *pic.image.get_pixel(x as u32, y as u32),
        palette::BACKGROUND
    );
    // The limit is within the value axis.
    assert!(pic.frame.y.0 < 24.5 && pic.frame.y.1 > 24.5);
}

#[test]
fn a_chart_without_good_values_is_all_gap() {
    let mut input = day_chart();
    for p in &mut input.points {
        p.value = None;
    }
    let pic = draw_chart(&input).unwrap();
    assert_eq!(pic.lines, 0);
    let (x, y) = pic
        .frame
        .pixel(input.from.as_millis() + 100 * MIN, pic.frame.y.0 + 0.1);
    assert_eq!(*pic.image.get_pixel(x as u32, y as u32), palette::GAP);
    // Odd inputs still draw.
    input.points.clear();
    input.to = input.from;
    input.size = (1, 1);
    assert!(draw_chart(&input).is_ok());
}

#[test]
fn odd_plans_still_draw() {
    let mut input = office_floor();
    input.rooms.push(room(
        "bad",
        "Degenerate",
        None,
        Some(vec![(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)]),
    ));
    input
        .rooms
        .push(room("far", "Outside", None, rect(100.0, 100.0, 5.0, 5.0)));
    input.sensors.push(SensorInput {
        at: Some((f64::NAN, 3.0)),
        ..sensor("nan", None, Some(f64::INFINITY))
    });
    input.width_px = 10;
    assert!(draw_plan(&input).is_ok());
    input.floor.size = Some((0.0, 0.0));
    input.rooms.clear();
    input.sensors.clear();
    assert!(draw_plan(&input).is_ok());
    assert!(
        encode_png(&draw_plan(&input).unwrap().image)
            .unwrap()
            .starts_with(b"\x89PNG")
    );
}
