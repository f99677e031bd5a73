//! Tests of gathering: the site and placements applied to a plan's input, the alarm limits of a
//! chart, bilingual errors, and the SQL of history, thinning, latest values and alarm periods over
//! the real schema; and the demo's config drawing every floor.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::NOW;
use crate::config::Config;
use crate::model::{AlarmState, Lang, Quality, Seq, Severity, Timestamp};
use crate::render::chart::Side;
use crate::render::gather::{self, OpenAlarm, PlanOptions, PlanSources};
use crate::render::palette::Measure;
use crate::render::plan::{AlarmMark, draw_plan};
use crate::render::{RenderError, query};
use crate::store::testing::BatchRow;
use crate::store::{LatestValue, ReadConnection, SensorRow};

fn config(toml: &str) -> Config {
    crate::config::parse_str(toml, std::path::Path::new("test.toml")).unwrap()
}

const SITE: &str = r#"
[gateway]
id = "gw"
name = "Lenina 17"

[site]
utc_offset = "+05:00"

[[site.floor]]
id = "B"
level = -1

[[site.floor]]
id = "1"
name = "Ground floor"
level = 0
width = 20.0
height = 10.0

[[site.room]]
id = "101"
floor = "1"
tenant = "acme"
polygon = [[0, 0], [10, 0], [10, 10], [0, 10]]

[[site.tenant]]
id = "acme"
name = "Acme Ltd"

[[site.sensor]]
id = "zigbee.climate.temperature"
room = "101"
at = [5, 5]

[[alarms.rule]]
alert = "Hot"
kind = "high"
match = { kind = "temperature" }
limit = 26.0
severity = "high"

[[alarms.rule]]
alert = "Leak"
kind = "state"
sensor = "*leak"
severity = "critical"
"#;

fn row(id: &str, kind: &str, floor: Option<&str>, room: Option<&str>) -> SensorRow {
    SensorRow {
        id: id.into(),
        name: String::new(),
        kind: kind.into(),
        unit: "°C".into(),
        floor: floor.map(Into::into),
        room: room.map(Into::into),
        source: "test".into(),
    }
}

#[test]
fn plan_input_applies_the_site_and_placements() {
    let cfg = config(SITE);
    let sensors = vec![
        row("f1.r101.temperature", "temperature", Some("1"), Some("101")),
        row("f1.r102.temperature", "temperature", Some("1"), Some("102")),
        row("zigbee.climate.temperature", "temperature", None, None),
        row("f2.r201.temperature", "temperature", Some("2"), Some("201")),
        row("basement.leak", "leak", Some("B"), Some("basement")),
    ];
    let latest: HashMap<String, LatestValue> = [(
        "f1.r101.temperature".to_owned(),
        LatestValue {
            seq: Seq(1),
            ts: NOW,
            value: Some(21.0),
            quality: Quality::Good,
        },
    )]
    .into();
    let alarms = vec![OpenAlarm {
        sensor: "basement.leak".into(),
        severity: Severity::Critical,
        state: AlarmState::ActiveUnacked,
    }];
    let src = PlanSources {
        config: &cfg,
        sensors: &sensors,
        latest: &latest,
        alarms: &alarms,
    };
    let opts = PlanOptions {
        measure: Measure::Temperature,
        lang: Lang::En,
        now: NOW,
        width_px: 800,
    };
    let ids: Vec<String> = gather::floors(&cfg.site, &sensors)
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["B", "1", "2"]);

    let p = gather::plan_input(src, "Ground floor", opts).unwrap();
    assert_eq!(p.building, "Lenina 17");
    assert_eq!(p.floor.size, Some((20.0, 10.0)));
    assert_eq!(p.utc_offset.seconds(), 5 * 3600);
    let rooms: Vec<(&str, Option<&str>)> = p
        .rooms
        .iter()
        .map(|r| (r.id.as_str(), r.tenant.as_deref()))
        .collect();
    assert_eq!(rooms, [("101", Some("Acme Ltd")), ("102", None)]);
    let placed = p
        .sensors
        .iter()
        .find(|s| s.id == "zigbee.climate.temperature")
        .unwrap();
    assert_eq!(
        (placed.room.as_deref(), placed.at),
        (Some("101"), Some((5.0, 5.0)))
    );
    let no_value = p
        .sensors
        .iter()
        .find(|s| s.id == "f1.r102.temperature")
        .unwrap();
    assert_eq!((no_value.value, no_value.ts), (None, None));
    assert_eq!(p.sensors.len(), 3);

    let b = gather::plan_input(src, "B", opts).unwrap();
    assert_eq!(
        b.sensors[0].alarm,
        Some(AlarmMark {
            severity: Severity::Critical,
            active: true
        })
    );
    assert_eq!(b.rooms[0].id, "basement");
    assert!(draw_plan(&b).is_ok());

    match gather::plan_input(src, "7", opts) {
        Err(RenderError::UnknownFloor { floor, known }) => {
            assert_eq!(floor, "7");
            assert_eq!(known, ["B", "1", "2"]);
        }
        other => panic!("{other:?}"),
    }
    let t = gather::thresholds(&cfg, &sensors[0]);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].side, t[0].limit, t[0].severity),
        (Side::Above, 26.0, Severity::High)
    );
    assert!(
        gather::thresholds(&cfg, &sensors[4]).is_empty(),
        "state rules have no limit line"
    );
}

#[test]
fn errors_speak_english_and_russian() {
    let e = RenderError::UnknownFloor {
        floor: "7".into(),
        known: vec!["1".into(), "B".into()],
    };
    assert_eq!(e.message(Lang::En), "unknown floor \"7\"; floors: 1, B");
    assert_eq!(e.message(Lang::Ru), "неизвестный этаж «7»; этажи: 1, B");
    let e = RenderError::NoData {
        sensor: "s".into(),
        since: Duration::from_secs(86_400),
    };
    assert_eq!(e.message(Lang::En), "no readings of \"s\" in the last 1 d");
    assert_eq!(
        e.message(Lang::Ru),
        "нет показаний датчика «s» за последние 1 сут"
    );
    assert!(
        RenderError::Font
            .message(Lang::Ru)
            .starts_with("не удалось")
    );
    assert!(!RenderError::Font.is_request_error());
}

/// A buffer with the real schema.
fn buffer() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    for sql in [
        include_str!("../../../../migrations/gateway/0001_buffer.sql"),
        include_str!("../../../../migrations/gateway/0002_attributes_state.sql"),
        include_str!("../../../../migrations/gateway/0003_alarms.sql"),
        include_str!("../../../../migrations/gateway/0006_columns.sql"),
    ] {
        c.execute_batch(sql).unwrap();
    }
    c.execute("INSERT INTO sensors (id, key, kind, unit, floor, room) VALUES (7, 's', 'temperature', '°C', '1', '101')", [])
        .unwrap();
    c
}

#[test]
fn history_is_raw_or_thinned_and_bad_readings_carry_no_value() {
    let c = buffer();
    let rows: Vec<BatchRow> = (0..30_000i64)
        .map(|i| {
            let bad = i % 1000 == 5;
            BatchRow {
                sensor: 7,
                ts: i * 1000,
                value: if bad { None } else { Some((i % 100) as f64) },
                quality: if bad { 3 } else { 0 },
            }
        })
        .collect();
    crate::store::testing::append(&c, 1, &rows);
    let c = ReadConnection::from(c);
    let raw = query::history(&c, "s", 0, 10_000_000).unwrap().unwrap();
    assert_eq!(raw.len(), 10_001);
    assert_eq!(raw[5].value, None);
    assert_eq!(raw[6].value, Some(6.0));
    let thinned = query::history(&c, "s", 0, 30_000_000).unwrap().unwrap();
    assert!(
        thinned.len() <= 2 * crate::store::BUCKETS as usize,
        "{}",
        thinned.len()
    );
    assert!(thinned.windows(2).all(|w| w[0].ts <= w[1].ts));
    let max = thinned
        .iter()
        .filter_map(|p| p.value)
        .fold(f64::MIN, f64::max);
    assert_eq!(max, 99.0);
    assert_eq!(query::history(&c, "nope", 0, 1).unwrap(), None);
    let latest = query::latest_values(&c).unwrap();
    assert_eq!(latest["s"].ts, Timestamp(29_999_000));
}

#[test]
fn alarm_periods_come_from_alarm_events() {
    let c = buffer();
    c.execute("INSERT INTO alarm_state (id, key, rule, sensor, state, severity, updated_ms) VALUES (1, 'Hot/s', 'Hot', 's', 'active_acked', 'high', 0)", []).unwrap();
    c.execute("INSERT INTO alarm_state (id, key, rule, sensor, state, severity, updated_ms) VALUES (2, 'Other/x', 'Other', 'x', 'active_unacked', 'low', 0)", []).unwrap();
    let event = |ts: i64, alarm: i64, state: &str| {
        c.execute(
            "INSERT INTO alarm_events (ts, alarm_id, alarm, rule, sensor, event, state, severity, message) VALUES (?1, ?2, 'a', 'Hot', 's', 'e', ?3, 'high', '')",
            params![ts, alarm, state],
        )
        .unwrap();
    };
    event(100, 1, "active_unacked"); // raised before the window, still active at its start
    event(1_500, 1, "active_acked");
    event(2_000, 1, "cleared_unacked");
    event(2_500, 1, "normal");
    event(3_000, 1, "active_unacked"); // raised again, still active
    event(1_200, 2, "active_unacked"); // another sensor's alarm
    let c = ReadConnection::from(c);
    let p = query::alarm_periods(&c, "s", 1_000, 5_000).unwrap();
    assert_eq!(
        p.iter().map(|p| (p.from, p.to)).collect::<Vec<_>>(),
        [(1_000, Some(2_000)), (3_000, None)]
    );
    assert!(
        p.iter()
            .all(|p| p.alert == "Hot" && p.severity == Severity::High)
    );
    let cfg = config(
        "[gateway]\nid = \"gw\"\n[[alarms.rule]]\nalert = \"Hot\"\nkind = \"high\"\nlimit = 1.0\nsensor = \"s\"\n",
    );
    let open = query::open_alarms(&c, &cfg).unwrap();
    assert_eq!(
        open,
        [OpenAlarm {
            sensor: "s".into(),
            severity: Severity::High,
            state: AlarmState::ActiveAcked
        }]
    );
}

#[test]
fn the_demo_config_draws_every_floor() {
    let cfg = crate::config::parse_str(
        crate::demo::DEMO_CONFIG,
        std::path::Path::new("config/demo.toml"),
    )
    .unwrap();
    let sim = crate::sources::simulator::Building::new(&cfg.sources.simulator.clone().unwrap());
    let sensors: Vec<SensorRow> = sim
        .sensors()
        .iter()
        .map(|m| SensorRow {
            id: m.id.to_string(),
            name: m.name.clone(),
            kind: m.kind.as_str().into(),
            unit: m.unit.clone(),
            floor: m.floor.clone(),
            room: m.room.clone(),
            source: m.source.clone(),
        })
        .collect();
    let latest: HashMap<String, LatestValue> = sensors
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                LatestValue {
                    seq: Seq(1),
                    ts: NOW,
                    value: Some(21.0),
                    quality: Quality::Good,
                },
            )
        })
        .collect();
    let src = PlanSources {
        config: &cfg,
        sensors: &sensors,
        latest: &latest,
        alarms: &[],
    };
    for floor in gather::floors(&cfg.site, &sensors) {
        let opts = PlanOptions {
            measure: Measure::Temperature,
            lang: Lang::En,
            now: NOW,
            width_px: 800,
        };
        let input = gather::plan_input(src, &floor.id, opts).unwrap();
        let pic = draw_plan(&input).unwrap();
        let drawn = input
            .sensors
            .iter()
            .filter(|s| s.kind == "temperature")
            .count();
        assert_eq!(pic.markers.len(), drawn, "floor {}", floor.id);
        if floor.id != "B" {
            assert!(
                input.rooms.iter().all(|r| r.polygon.is_some()),
                "floor {} has rooms without a polygon",
                floor.id
            );
        }
    }
}
