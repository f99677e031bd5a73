//! A building laid out by floor and room: the site metadata's floors and rooms, joined with the
//! floors and rooms its sensors name (a gateway without `[site]` still gets its rooms), each
//! room with its sensors, its temperature and its open alarms.
//!
//! Owns: that layout (pure, unit-tested). Does not own: reading the rows (`data`) or drawing
//! them (`plan`, `pages`).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::data::{AlarmView, BuildingRows, GatewayHealth, SensorValue, worst};

/// A building's page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BuildingView {
    /// Id.
    pub building_id: String,
    /// Name, if known.
    pub name: Option<String>,
    /// Address, if known.
    pub address: Option<String>,
    /// Worst gateway status.
    pub status: &'static str,
    /// Its gateways.
    pub gateways: Vec<GatewayHealth>,
    /// Floors, lowest level first, each with its rooms.
    pub floors: Vec<FloorView>,
    /// Sensors placed on no floor.
    pub unplaced: Vec<SensorValue>,
    /// Tenants and the rooms they occupy.
    pub tenants: Vec<TenantView>,
    /// Alarms not back to normal, newest first.
    pub active_alarms: Vec<AlarmView>,
    /// Alarms back to normal within the last 7 days, newest first (at most 50).
    pub recent_alarms: Vec<AlarmView>,
}

/// A floor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorView {
    /// Id (what sensors name as their floor).
    pub floor_id: String,
    /// Display name.
    pub name: String,
    /// Level, when known.
    pub level: Option<i32>,
    /// Plan width in plan units, when the site gives geometry.
    pub width: Option<f64>,
    /// Plan height.
    pub height: Option<f64>,
    /// Rooms, by id.
    pub rooms: Vec<RoomView>,
    /// Sensors on this floor in no room.
    pub sensors: Vec<SensorValue>,
}

/// A room or unit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoomView {
    /// Id (what sensors name as their room).
    pub room_id: String,
    /// Display name.
    pub name: String,
    /// Tenant id.
    pub tenant_id: Option<String>,
    /// Tenant name.
    pub tenant: Option<String>,
    /// Outline on the floor's plan, when the site gives it.
    pub polygon: Option<Vec<[f64; 2]>>,
    /// What the room is for, which decides how it is coloured.
    pub kind: RoomKind,
    /// Mean of its fresh, good temperature values.
    pub temperature: Option<f64>,
    /// The reading that sums the room up on its plan: the mean temperature of a comfort room;
    /// in a plant room a leak detector's state, else its warmest temperature, else any fresh
    /// value. `None` only when no sensor of the room has a fresh, good value.
    pub reading: Option<RoomReading>,
    /// Open alarms of its sensors.
    pub open_alarms: usize,
    /// Whether any of them waits for acknowledgement.
    pub unacked: bool,
    /// Its sensors, by name.
    pub sensors: Vec<SensorValue>,
}

/// What a room is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// People work or live there: coloured by temperature on the comfort scale.
    Comfort,
    /// Equipment (a boiler room, a basement, a riser): 61 °C may be normal, so it is coloured by
    /// the state of its alarms and whether its sensors report, never by temperature.
    Plant,
}

/// A room's summary reading (see [`RoomView::reading`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoomReading {
    /// The value (a mean for a comfort room's temperature).
    pub value: f64,
    /// The sensor kind it comes from (`temperature`, `leak`, ...).
    pub kind: Option<String>,
    /// Its unit.
    pub unit: Option<String>,
}

/// Words in a room's id or name that mark equipment rooms (English and Russian stems).
const PLANT_WORDS: [&str; 14] = [
    "boiler",
    "plant",
    "basement",
    "cellar",
    "mechanical",
    "machine",
    "pump",
    "riser",
    "technical",
    "котел",
    "котёл",
    "котельн",
    "подвал",
    "технич",
];

/// Sensor kinds that people feel: a room with one of them is a comfort room.
const COMFORT_KINDS: [&str; 3] = ["humidity", "co2", "air_quality"];

/// Sensor kinds of equipment.
const PLANT_KINDS: [&str; 6] = ["pressure", "energy", "flow", "leak", "state", "power"];

/// Whether a room is a plant room: its id or name says so, or it has equipment sensors and none
/// that people feel (humidity, CO2).
pub(crate) fn room_kind(room_id: &str, name: &str, sensors: &[SensorValue]) -> RoomKind {
    let text = format!("{room_id} {name}").to_lowercase();
    let kind = |s: &SensorValue| s.kind.as_deref().unwrap_or("").to_ascii_lowercase();
    let named = PLANT_WORDS.iter().any(|w| text.contains(w));
    let comfort = sensors
        .iter()
        .any(|s| COMFORT_KINDS.contains(&kind(s).as_str()));
    let equipment = sensors
        .iter()
        .any(|s| PLANT_KINDS.contains(&kind(s).as_str()));
    if named || (equipment && !comfort) {
        RoomKind::Plant
    } else {
        RoomKind::Comfort
    }
}

/// The reading that sums a room up (see [`RoomView::reading`]); every sensor kind counts, so a
/// room whose only sensor is a fresh leak detector has one.
pub(crate) fn room_reading(kind: RoomKind, sensors: &[SensorValue]) -> Option<RoomReading> {
    let of = |k: &str| -> Vec<(&SensorValue, f64)> {
        sensors
            .iter()
            .filter(|s| s.kind.as_deref() == Some(k))
            .filter_map(|s| s.fresh_value().map(|v| (s, v)))
            .collect()
    };
    let reading = |s: &SensorValue, value: f64| RoomReading {
        value,
        kind: s.kind.clone(),
        unit: s.unit.clone(),
    };
    let temps = of("temperature");
    if kind == RoomKind::Comfort && !temps.is_empty() {
        let mean = temps.iter().map(|(_, v)| v).sum::<f64>() / temps.len() as f64;
        return Some(reading(temps[0].0, mean));
    }
    // A wet leak detector first, then any leak detector, then the warmest temperature.
    let leaks = of("leak");
    if let Some((s, v)) = leaks
        .iter()
        .find(|(_, v)| *v != 0.0)
        .or_else(|| leaks.first())
    {
        return Some(reading(s, *v));
    }
    if let Some((s, v)) = temps.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        return Some(reading(s, *v));
    }
    sensors
        .iter()
        .find_map(|s| s.fresh_value().map(|v| reading(s, v)))
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantView {
    /// Id.
    pub tenant_id: String,
    /// Name.
    pub name: String,
    /// Names of the rooms it occupies.
    pub rooms: Vec<String>,
}

/// How urgent an alarm state is (higher is more urgent).
fn state_rank(state: &str) -> u8 {
    match state {
        "active_unacked" => 3,
        "cleared_unacked" => 2,
        "active_acked" => 1,
        _ => 0,
    }
}

/// Lays out a building.
pub(crate) fn assemble(building_id: &str, rows: BuildingRows) -> BuildingView {
    let BuildingRows {
        name,
        address,
        gateways,
        floors,
        rooms,
        tenants,
        mut sensors,
        alarms,
    } = rows;
    let (active_alarms, recent_alarms): (Vec<AlarmView>, Vec<AlarmView>) =
        alarms.into_iter().partition(|a| a.state != "normal");

    // The most urgent open alarm of each sensor (by gateway and key).
    let mut by_sensor: HashMap<(&str, &str), &str> = HashMap::new();
    for a in &active_alarms {
        if let Some(key) = a.sensor.as_deref() {
            let e = by_sensor
                .entry((a.gateway_id.as_str(), key))
                .or_insert(a.state.as_str());
            if state_rank(&a.state) > state_rank(e) {
                *e = a.state.as_str();
            }
        }
    }
    for s in &mut sensors {
        if let Some(key) = s.key.as_deref() {
            s.alarm = by_sensor
                .get(&(s.gateway_id.as_str(), key))
                .map(|st| (*st).to_owned());
        }
    }

    let tenant_names: HashMap<&str, &str> = tenants
        .iter()
        .map(|(id, n)| (id.as_str(), n.as_str()))
        .collect();
    let mut floor_map: BTreeMap<String, FloorView> = floors
        .into_iter()
        .map(|(id, name, level, width, height)| {
            let f = FloorView {
                floor_id: id.clone(),
                name,
                level,
                width: width.filter(|w| *w > 0.0),
                height: height.filter(|h| *h > 0.0),
                rooms: Vec::new(),
                sensors: Vec::new(),
            };
            (id, f)
        })
        .collect();
    let mut room_floor: HashMap<String, Option<String>> = HashMap::new();
    let mut room_map: BTreeMap<(String, String), RoomView> = BTreeMap::new();
    let mut tenant_rooms: HashMap<String, Vec<String>> = HashMap::new();
    for (room_id, floor, rname, tenant, polygon) in rooms {
        room_floor.insert(room_id.clone(), floor.clone());
        if let Some(t) = &tenant {
            tenant_rooms
                .entry(t.clone())
                .or_default()
                .push(rname.clone());
        }
        let polygon = polygon
            .and_then(|p| serde_json::from_str::<Vec<[f64; 2]>>(&p).ok())
            .filter(|p| p.len() >= 3 && p.iter().flatten().all(|v| v.is_finite()));
        let floor = floor.unwrap_or_default();
        room_map.insert(
            (floor, room_id.clone()),
            RoomView {
                room_id,
                name: rname,
                tenant: tenant
                    .as_deref()
                    .and_then(|t| tenant_names.get(t))
                    .map(|n| (*n).to_owned()),
                tenant_id: tenant,
                polygon,
                kind: RoomKind::Comfort,
                temperature: None,
                reading: None,
                open_alarms: 0,
                unacked: false,
                sensors: Vec::new(),
            },
        );
    }

    let mut unplaced = Vec::new();
    let mut floor_sensors: BTreeMap<String, Vec<SensorValue>> = BTreeMap::new();
    for s in sensors {
        // A sensor's floor is its own, else its room's.
        let floor = s.floor.clone().or_else(|| {
            s.room
                .as_ref()
                .and_then(|r| room_floor.get(r).cloned().flatten())
        });
        let Some(floor) = floor else {
            unplaced.push(s);
            continue;
        };
        floor_map.entry(floor.clone()).or_insert_with(|| FloorView {
            floor_id: floor.clone(),
            name: floor.clone(),
            level: None,
            width: None,
            height: None,
            rooms: Vec::new(),
            sensors: Vec::new(),
        });
        match s.room.clone() {
            Some(room) => {
                // A room listed without a floor belongs to the floor its sensors name.
                let key = if room_map.contains_key(&(floor.clone(), room.clone())) {
                    (floor.clone(), room.clone())
                } else if let Some(mut r) = room_map.remove(&(String::new(), room.clone())) {
                    r.sensors.clear();
                    room_map.insert((floor.clone(), room.clone()), r);
                    (floor.clone(), room.clone())
                } else {
                    (floor.clone(), room.clone())
                };
                let r = room_map.entry(key).or_insert_with(|| RoomView {
                    room_id: room.clone(),
                    name: room.clone(),
                    tenant_id: None,
                    tenant: None,
                    polygon: None,
                    kind: RoomKind::Comfort,
                    temperature: None,
                    reading: None,
                    open_alarms: 0,
                    unacked: false,
                    sensors: Vec::new(),
                });
                r.sensors.push(s);
            }
            None => floor_sensors.entry(floor).or_default().push(s),
        }
    }
    for ((floor, _), mut room) in room_map {
        room.sensors.sort_by_key(SensorValue::label);
        let temps: Vec<f64> = room
            .sensors
            .iter()
            .filter(|s| s.kind.as_deref() == Some("temperature"))
            .filter_map(SensorValue::fresh_value)
            .collect();
        room.temperature =
            (!temps.is_empty()).then(|| temps.iter().sum::<f64>() / temps.len() as f64);
        room.kind = room_kind(&room.room_id, &room.name, &room.sensors);
        room.reading = room_reading(room.kind, &room.sensors);
        room.open_alarms = room.sensors.iter().filter(|s| s.alarm.is_some()).count();
        room.unacked = room
            .sensors
            .iter()
            .any(|s| s.alarm.as_deref().is_some_and(|a| a.ends_with("unacked")));
        match floor_map.get_mut(&floor) {
            Some(f) => f.rooms.push(room),
            // Rooms on no known floor (or none at all) show with the unplaced sensors.
            None => unplaced.extend(room.sensors),
        }
    }
    for (floor, list) in floor_sensors {
        if let Some(f) = floor_map.get_mut(&floor) {
            f.sensors = list;
        }
    }
    let mut floors: Vec<FloorView> = floor_map.into_values().collect();
    floors.sort_by(|a, b| {
        (a.level.is_none(), a.level, natural(&a.floor_id)).cmp(&(
            b.level.is_none(),
            b.level,
            natural(&b.floor_id),
        ))
    });
    for f in &mut floors {
        f.rooms.sort_by_key(|r| natural(&r.room_id));
    }
    let tenants = tenants
        .into_iter()
        .map(|(id, name)| TenantView {
            rooms: tenant_rooms.remove(&id).unwrap_or_default(),
            tenant_id: id,
            name,
        })
        .collect();
    BuildingView {
        building_id: building_id.to_owned(),
        name,
        address,
        status: worst(&gateways),
        gateways,
        floors,
        unplaced,
        tenants,
        active_alarms,
        recent_alarms,
    }
}

/// Sorts "2" before "10": (leading number, rest).
fn natural(s: &str) -> (u64, String) {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    (
        digits.parse().unwrap_or(u64::MAX),
        s[digits.len()..].to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::time::Time;

    fn sensor(
        id: i32,
        key: &str,
        kind: &str,
        floor: Option<&str>,
        room: Option<&str>,
        v: f64,
    ) -> SensorValue {
        SensorValue {
            gateway_id: "gw".into(),
            sensor_id: id,
            key: Some(key.into()),
            name: Some(key.into()),
            kind: Some(kind.into()),
            unit: Some("°C".into()),
            floor: floor.map(Into::into),
            room: room.map(Into::into),
            ts: Some(Time(1)),
            value: Some(v),
            quality: Some("good"),
            stale: false,
            alarm: None,
        }
    }

    fn alarm(key: &str, state: &str) -> AlarmView {
        AlarmView {
            gateway_id: "gw".into(),
            alarm_id: 1,
            alarm: format!("high/{key}"),
            rule: "high".into(),
            sensor: Some(key.into()),
            event: "raised".into(),
            state: state.into(),
            severity: "high".into(),
            value: None,
            message: String::new(),
            ts: Time(1),
            raised_at: None,
            acked_at: None,
            acked_by: None,
            comments: 0,
            pending: Vec::new(),
        }
    }

    #[test]
    fn floors_and_rooms_come_from_metadata_and_sensors() {
        let rows = BuildingRows {
            name: Some("Lenina 17".into()),
            address: None,
            gateways: Vec::new(),
            floors: vec![("1".into(), "First".into(), Some(1), Some(20.0), Some(10.0))],
            rooms: vec![(
                "101".into(),
                Some("1".into()),
                "Office".into(),
                Some("acme".into()),
                Some("[[0,0],[10,0],[10,10],[0,10]]".into()),
            )],
            tenants: vec![("acme".into(), "Acme".into())],
            sensors: vec![
                sensor(1, "f1.r101.t", "temperature", Some("1"), Some("101"), 20.0),
                sensor(2, "f1.r101.t2", "temperature", Some("1"), Some("101"), 22.0),
                sensor(3, "f2.r201.t", "temperature", Some("2"), Some("201"), 25.0),
                sensor(
                    4,
                    "f10.r1001.t",
                    "temperature",
                    Some("10"),
                    Some("1001"),
                    25.0,
                ),
                sensor(5, "plant.pressure", "pressure", None, None, 2.0),
            ],
            alarms: vec![alarm("f2.r201.t", "active_unacked"), alarm("x", "normal")],
        };
        let b = assemble("b", rows);
        let ids: Vec<&str> = b.floors.iter().map(|f| f.floor_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "10"], "levels first, then natural order");
        let r101 = &b.floors[0].rooms[0];
        assert_eq!(r101.name, "Office");
        assert_eq!(r101.tenant.as_deref(), Some("Acme"));
        assert_eq!(r101.temperature, Some(21.0));
        assert_eq!(r101.polygon.as_ref().map(Vec::len), Some(4));
        let r201 = &b.floors[1].rooms[0];
        assert_eq!(
            (r201.room_id.as_str(), r201.open_alarms, r201.unacked),
            ("201", 1, true)
        );
        assert_eq!(b.unplaced.len(), 1);
        assert_eq!(b.active_alarms.len(), 1);
        assert_eq!(b.recent_alarms.len(), 1);
        assert_eq!(b.tenants[0].rooms, ["Office"]);
    }

    /// A basement whose only sensor is a fresh leak detector has a reading ("dry"), not "no
    /// value"; a boiler room is a plant room whatever its temperature; offices are comfort rooms.
    #[test]
    fn every_kind_of_sensor_counts_for_a_room_and_plant_rooms_are_recognised() {
        let mut leak = sensor(1, "basement.leak", "leak", Some("B"), Some("basement"), 0.0);
        leak.unit = None;
        let mut supply = sensor(
            2,
            "boiler.supply",
            "temperature",
            Some("B"),
            Some("boiler room"),
            61.0,
        );
        supply.name = Some("Supply".into());
        let ret = sensor(
            3,
            "boiler.return",
            "temperature",
            Some("B"),
            Some("boiler room"),
            45.0,
        );
        let burner = sensor(
            4,
            "boiler.burner",
            "state",
            Some("B"),
            Some("boiler room"),
            1.0,
        );
        let office_t = sensor(5, "f1.r101.t", "temperature", Some("1"), Some("101"), 21.5);
        let office_h = sensor(6, "f1.r101.h", "humidity", Some("1"), Some("101"), 40.0);
        let mut stale_leak = sensor(7, "f1.r102.leak", "leak", Some("1"), Some("102"), 1.0);
        stale_leak.stale = true;
        let rows = BuildingRows {
            name: None,
            address: None,
            gateways: Vec::new(),
            floors: Vec::new(),
            rooms: Vec::new(),
            tenants: Vec::new(),
            sensors: vec![leak, supply, ret, burner, office_t, office_h, stale_leak],
            alarms: Vec::new(),
        };
        let b = assemble("b", rows);
        let room = |id: &str| {
            b.floors
                .iter()
                .flat_map(|f| &f.rooms)
                .find(|r| r.room_id == id)
                .unwrap()
        };
        let basement = room("basement");
        assert_eq!(basement.kind, RoomKind::Plant);
        assert_eq!(basement.temperature, None);
        let r = basement.reading.as_ref().expect("the fresh leak detector");
        assert_eq!((r.value, r.kind.as_deref()), (0.0, Some("leak")));
        let boiler = room("boiler room");
        assert_eq!(boiler.kind, RoomKind::Plant);
        assert_eq!(
            boiler.reading.as_ref().map(|r| r.value),
            Some(61.0),
            "the warmest"
        );
        let office = room("101");
        assert_eq!(office.kind, RoomKind::Comfort);
        assert_eq!(office.reading.as_ref().map(|r| r.value), Some(21.5));
        let r102 = room("102");
        assert_eq!(r102.kind, RoomKind::Plant, "equipment only");
        assert_eq!(r102.reading, None, "a stale value is no value");
        assert_eq!(
            room_kind("B1", "Котельная", &[]),
            RoomKind::Plant,
            "named in Russian"
        );
    }
}
