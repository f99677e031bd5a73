//! Unit tests of the offline understanding on a small building: floors B and 1 to 3, rooms
//! x01 to x05, a boiler plant, two tenants, one synonym.

use super::*;
use crate::store::SensorRow;

fn building() -> Vocabulary {
    let cfg = crate::config::parse_str(
        r#"
[gateway]
id = "gw"

[site]
floor = [
  { id = "B", name = "Basement", level = -1 },
  { id = "1" }, { id = "2" }, { id = "3" },
]
tenant = [
  { id = "acme", name = "Acme Ltd" },
  { id = "romashka", name = "ООО «Ромашка»" },
  { id = "vector", name = "Vector Engineering" },
]
room = [
  { id = "101", floor = "1", tenant = "acme" },
  { id = "201", floor = "2", tenant = "romashka" },
  { id = "204", floor = "2", tenant = "vector" },
  { id = "301", floor = "3", tenant = "vector" },
]

[agent.synonyms]
"бухгалтерия" = "204"
"#,
        std::path::Path::new("test.toml"),
    )
    .expect("the test configuration is valid");
    let sensor = |id: &str, name: &str, kind: &str, floor: &str, room: &str| SensorRow {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
        unit: String::new(),
        floor: Some(floor.into()),
        room: Some(room.into()),
        source: "test".into(),
    };
    let mut sensors = Vec::new();
    for room in ["101", "201", "204", "301"] {
        let floor = &room[..1];
        for kind in ["temperature", "humidity", "co2"] {
            sensors.push(sensor(
                &format!("f{floor}.r{room}.{kind}"),
                &format!("Room {room} {kind}"),
                kind,
                floor,
                room,
            ));
        }
    }
    sensors.push(sensor(
        "boiler.supply_temp",
        "Boiler supply temperature",
        "temperature",
        "B",
        "boiler room",
    ));
    sensors.push(sensor(
        "boiler.pump_current",
        "Circulation pump current",
        "energy",
        "B",
        "boiler room",
    ));
    Vocabulary::new(&cfg, &sensors)
}

fn ask(q: &str) -> Ask {
    understand(&building(), q)
}

fn readings(room: Option<&str>, floor: Option<&str>, kind: Option<&'static str>) -> Ask {
    Ask::Readings(Target {
        room: room.map(str::to_owned),
        floor: floor.map(str::to_owned),
        kind,
        ..Target::default()
    })
}

#[test]
fn stems_fold_case_endings_in_both_languages() {
    assert_eq!(stem("тревоги"), stem("тревогу"));
    assert_eq!(stem("температуры"), stem("температура"));
    assert_eq!(stem("temperatures"), stem("temperature"));
}

#[test]
fn rooms_floors_and_kinds_are_found_with_typos_and_numerals_in_words() {
    assert_eq!(
        ask("сколько градусов в двести первой"),
        readings(Some("201"), None, Some("temperature"))
    );
    assert_eq!(
        ask("влажнсть в 101?"),
        readings(Some("101"), None, Some("humidity"))
    );
    assert_eq!(
        ask("CO2 на третьем этаже"),
        readings(None, Some("3"), Some("co2"))
    );
    assert_eq!(
        ask("temp on flor 2"),
        readings(None, Some("2"), Some("temperature"))
    );
}

#[test]
fn equipment_words_come_from_sensor_names_and_russian_equivalents() {
    let Ask::Readings(t) = ask("что с насосом циркуляции?") else {
        panic!("not readings");
    };
    assert_eq!(t.words, ["pump", "circulation"]);
    let Ask::Readings(t) = ask("boiler supply temperature") else {
        panic!("not readings");
    };
    assert_eq!(
        t.sensor_text().as_deref(),
        Some("boiler supply temperature")
    );
}

#[test]
fn tools_are_chosen_by_what_is_asked() {
    assert_eq!(ask("квитируй тревогу 4"), Ask::Ack(Some(4)));
    assert_eq!(ask("please ack #7"), Ask::Ack(Some(7)));
    assert_eq!(
        ask("which alarms are not acknowledged"),
        Ask::Alarms {
            state: "unacknowledged",
            severity: None,
            floor: None,
            leaks: false
        }
    );
    assert_eq!(
        ask("критические аварии на 2 этаже"),
        Ask::Alarms {
            state: "open",
            severity: Some("critical"),
            floor: Some("2".into()),
            leaks: false
        }
    );
    assert_eq!(
        ask("схема подвала по влажности"),
        Ask::Plan {
            floor: Some("B".into()),
            measure: "humidity"
        }
    );
    assert_eq!(
        ask("у Вектора всё хорошо?"),
        Ask::Tenant {
            tenant: Some("vector".into()),
            room: None
        }
    );
    assert_eq!(
        ask("кто снимает 301"),
        Ask::Tenant {
            tenant: None,
            room: Some("301".into())
        }
    );
    assert_eq!(ask("как там синхронизация"), Ask::Sync);
    assert_eq!(ask("сводка"), Ask::Overview);
    assert_eq!(ask("help"), Ask::Help);
    assert_eq!(ask("абракадабра"), Ask::NotUnderstood);
    let Ask::History {
        target,
        range,
        aggregation,
    } = ask("максимальная температура в 301 за 3 дня")
    else {
        panic!("not history");
    };
    assert_eq!(target.room.as_deref(), Some("301"));
    assert_eq!((range, aggregation), ("7d", "max"));
}

#[test]
fn synonyms_from_the_configuration_stand_for_site_words() {
    assert_eq!(
        ask("температура в бухгалтерии"),
        readings(Some("204"), None, Some("temperature"))
    );
}
