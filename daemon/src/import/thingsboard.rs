//! ThingsBoard IoT Gateway Modbus connectors (`modbus.json`): `master.slaves[]`, each a device
//! with its connection, `timeseries` and `attributes`.
//!
//! ThingsBoard decodes with pymodbus: `byteOrder` LITTLE swaps the two bytes of each register and
//! `wordOrder` LITTLE reverses the registers, so BIG/BIG is ABCD, BIG/LITTLE CDAB, LITTLE/BIG BADC
//! and LITTLE/LITTLE DCBA (LITTLE when not given). Its 8-bit types take the first byte on the
//! wire whatever the order; its bits are those of the register as read. Addresses are protocol
//! addresses (from 0); `divider` and `multiplier` become the scale, `offset` the offset.

use std::time::Duration;

use serde_json::Value;

use super::emit::{Connection, Device, Doc, Point, clean_name, unique};
use super::node::Node;
use super::{ImportError, Notes};
use crate::sources::modbus::config::RegisterKind;
use crate::sources::modbus::decode::{ByteOrder, DataType};

/// Translates a connector file.
pub(super) fn translate(text: &str, what: &str, notes: &mut Notes) -> Result<Doc, ImportError> {
    let root: Value = serde_json::from_str(text).map_err(|e| ImportError::Syntax {
        what: what.to_owned(),
        format: "JSON",
        message: e.to_string(),
    })?;
    let Some(root) = Node::new("", &root) else {
        return Err(ImportError::Syntax {
            what: what.to_owned(),
            format: "JSON",
            message: "not an object".to_owned(),
        });
    };
    let mut doc = Doc::default();
    let mut devices: Vec<String> = Vec::new();
    let mut connections: Vec<String> = Vec::new();
    if let Some(master) = root.table("master") {
        for slave in master.tables("slaves", notes) {
            if let Some((conn, device)) = slave_device(&slave, &mut devices, notes) {
                // One task owns a line: slaves on the same port or endpoint share it.
                let existing = doc
                    .modbus
                    .iter_mut()
                    .find(|(_, c)| c.controller == conn.controller);
                match existing {
                    Some((name, c)) => {
                        if c.transmission_mode != conn.transmission_mode || c.serial != conn.serial
                        {
                            notes.changed(
                                slave.place.clone(),
                                "method",
                                &Value::String(conn.controller.clone()),
                                &format!(
                                    "the same line as connection {name:?}, whose framing and \
                                     serial settings apply"
                                ),
                            );
                        }
                        c.add_device(device, &slave.place, notes);
                    }
                    None => {
                        let name = connection_name(&conn);
                        let name = unique(name, &mut connections);
                        let mut conn = conn;
                        conn.devices.push(device);
                        doc.modbus.insert(name, conn);
                    }
                }
            }
            slave.finish(
                notes,
                "a ThingsBoard setting with no counterpart here (writes, RPC and reporting to \
                 ThingsBoard are not part of a gateway that only reads)",
            );
        }
        master.finish(notes, "not a key of the master section");
    }
    if let Some(v) = root.get("slave") {
        notes.dropped(
            "slave".to_owned(),
            "slave",
            v,
            "the gateway as a Modbus server is not supported: Markoff only reads devices",
        );
    }
    root.finish(
        notes,
        "not a key of a Modbus connector Markoff has a counterpart for",
    );
    Ok(doc)
}

fn connection_name(conn: &Connection) -> String {
    let target = conn
        .controller
        .split("://")
        .nth(1)
        .unwrap_or("line")
        .trim_start_matches("/dev/");
    clean_name(&format!("tb_{target}"), "tb_line")
}

/// The connection and the device of one slave.
fn slave_device(
    slave: &Node<'_>,
    taken: &mut Vec<String>,
    notes: &mut Notes,
) -> Option<(Connection, Device)> {
    let conn = connection(slave, notes)?;
    let unit: u8 = slave
        .uint("unitId", notes)
        .or_else(|| slave.uint("unit_id", notes))
        .unwrap_or(0);
    let raw_name = slave
        .str("deviceName", notes)
        .or_else(|| slave.str("name", notes))
        .unwrap_or("modbus");
    let name = unique(clean_name(raw_name, "device"), taken);
    if name != raw_name {
        notes.changed(
            slave.at("deviceName"),
            "deviceName",
            &Value::String(raw_name.to_owned()),
            &format!("device {name:?} (ASCII letters, digits, _ and -; unique)"),
        );
    }
    let mut device = Device {
        name,
        slave_id: unit,
        optimization: Some("none"),
        ..Device::default()
    };
    match slave.uint::<u64>("pollPeriod", notes) {
        Some(ms) if ms > 0 => device.interval = Some(Duration::from_millis(ms)),
        _ => notes.changed(
            slave.at("pollPeriod"),
            "pollPeriod",
            slave.get("pollPeriod").unwrap_or(&Value::Null),
            "not given: Markoff's 10s",
        ),
    }
    let order = orders(slave, ByteOrder::Dcba, notes);
    let report = report_strategy(slave, notes);
    let mut point_names = Vec::new();
    for section in ["timeseries", "attributes"] {
        for dp in slave.tables(section, notes) {
            device
                .points
                .extend(points(&dp, order, report, &mut point_names, notes));
        }
    }
    for key in ["attributeUpdates", "rpc", "serverSideRpc"] {
        if let Some(v) = slave.get(key) {
            notes.dropped(
                slave.at(key),
                key,
                v,
                "Markoff only reads devices: no writes, no RPC",
            );
        }
    }
    if device.points.is_empty() {
        notes.dropped(
            slave.place.clone(),
            "timeseries",
            &Value::Null,
            "no datapoint could be carried over: the slave is left out",
        );
        return None;
    }
    notes.changed(
        slave.place.clone(),
        "optimization",
        &Value::String("none".to_owned()),
        "one read per datapoint, as ThingsBoard does; \"max_insert\" merges reads",
    );
    Some((conn, device))
}

/// The connection settings of a slave.
fn connection(slave: &Node<'_>, notes: &mut Notes) -> Option<Connection> {
    let kind = slave
        .str("type", notes)
        .unwrap_or("tcp")
        .to_ascii_lowercase();
    let method = slave.str("method", notes).map(str::to_ascii_lowercase);
    let mut conn = Connection {
        enabled: true,
        ..Connection::default()
    };
    match kind.as_str() {
        "tcp" => {
            let host = slave.str("host", notes).unwrap_or("127.0.0.1");
            let port: u16 = slave.uint("port", notes).unwrap_or(502);
            conn.controller = format!("tcp://{host}:{port}");
            match method.as_deref() {
                None | Some("socket" | "tcp") => {}
                Some("rtu") => conn.transmission_mode = Some("RTUoverTCP"),
                Some(m) => {
                    notes.dropped(
                        slave.at("method"),
                        "method",
                        &Value::String(m.to_owned()),
                        "only socket (Modbus TCP) and rtu (RTU over TCP) framing",
                    );
                    return None;
                }
            }
        }
        "serial" => {
            let port = slave.str("port", notes).unwrap_or("/dev/ttyUSB0");
            conn.controller = format!("file://{port}");
            if let Some(m) = method.as_deref().filter(|m| *m != "rtu") {
                notes.dropped(
                    slave.at("method"),
                    "method",
                    &Value::String(m.to_owned()),
                    "Modbus ASCII framing is not supported",
                );
                return None;
            }
            let parity = match slave.str("parity", notes).unwrap_or("N") {
                "E" | "e" => 'E',
                "O" | "o" => 'O',
                _ => 'N',
            };
            let baud: u32 = match slave.uint("baudrate", notes) {
                Some(b) => b,
                None => {
                    notes.changed(
                        slave.at("baudrate"),
                        "baudrate",
                        &Value::Null,
                        "not given: 9600",
                    );
                    9600
                }
            };
            conn.serial = Some((
                baud,
                slave.uint("bytesize", notes).unwrap_or(8),
                parity,
                slave.uint("stopbits", notes).unwrap_or(1),
            ));
        }
        other => {
            notes.dropped(
                slave.at("type"),
                "type",
                &Value::String(other.to_owned()),
                "only tcp and serial connections (no UDP)",
            );
            return None;
        }
    }
    if let Some(t) = slave.f64("timeout", notes).filter(|t| *t > 0.0) {
        conn.timeout = Duration::try_from_secs_f64(t).ok();
    }
    conn.busy_retries = Some(0);
    Some(conn)
}

/// The byte order from `byteOrder` and `wordOrder` (each BIG or LITTLE), or `default`.
fn orders(node: &Node<'_>, default: ByteOrder, notes: &mut Notes) -> ByteOrder {
    let (default_bytes, default_words) = match default {
        ByteOrder::Abcd => (true, true),
        ByteOrder::Cdab => (true, false),
        ByteOrder::Badc => (false, true),
        ByteOrder::Dcba => (false, false),
    };
    let big = |key: &str, fallback: bool, notes: &mut Notes| -> bool {
        match node.str(key, notes).map(str::to_ascii_uppercase).as_deref() {
            None => fallback,
            Some("BIG") => true,
            Some("LITTLE") => false,
            Some(other) => {
                notes.dropped(
                    node.at(key),
                    key,
                    &Value::String(other.to_owned()),
                    "expected BIG or LITTLE",
                );
                fallback
            }
        }
    };
    match (
        big("byteOrder", default_bytes, notes),
        big("wordOrder", default_words, notes),
    ) {
        (true, true) => ByteOrder::Abcd,
        (true, false) => ByteOrder::Cdab,
        (false, true) => ByteOrder::Badc,
        (false, false) => ByteOrder::Dcba,
    }
}

/// `sendDataOnlyOnChange` or `reportStrategy` as a deadband and a longest silence.
fn report_strategy(node: &Node<'_>, notes: &mut Notes) -> (Option<f64>, Option<Duration>) {
    if node.bool("sendDataOnlyOnChange", notes) == Some(true) {
        notes.changed(
            node.at("sendDataOnlyOnChange"),
            "sendDataOnlyOnChange",
            &Value::Bool(true),
            "deadband = 0.0: a value is stored when it changes, and again after max_silence (5m) \
             while it does not",
        );
        return (Some(0.0), None);
    }
    let Some(rs) = node.table("reportStrategy") else {
        return (None, None);
    };
    let kind = rs
        .str("type", notes)
        .unwrap_or("ON_REPORT_PERIOD")
        .to_ascii_uppercase();
    let period = rs
        .uint::<u64>("reportPeriod", notes)
        .map(Duration::from_millis);
    let out = match kind.as_str() {
        "ON_CHANGE" => (Some(0.0), None),
        "ON_CHANGE_OR_REPORT_PERIOD" => (Some(0.0), period),
        "ON_RECEIVED" => (None, None),
        other => {
            notes.dropped(
                rs.at("type"),
                "type",
                &Value::String(other.to_owned()),
                "every poll is stored here; a change-only report needs ON_CHANGE",
            );
            (None, None)
        }
    };
    rs.finish(notes, "not a key of a report strategy");
    out
}

/// The points of one datapoint (several for a multi-bit coil read).
fn points(
    dp: &Node<'_>,
    device_order: ByteOrder,
    device_report: (Option<f64>, Option<Duration>),
    taken: &mut Vec<String>,
    notes: &mut Notes,
) -> Vec<Point> {
    let Some(tag) = dp.str("tag", notes) else {
        notes.dropped(
            dp.place.clone(),
            "tag",
            &Value::Null,
            "a datapoint without a tag",
        );
        return Vec::new();
    };
    let Some(function) = dp.uint::<u8>("functionCode", notes) else {
        notes.dropped(
            dp.place.clone(),
            "functionCode",
            &Value::Null,
            "a datapoint without a function code",
        );
        return Vec::new();
    };
    let register = match function {
        1 => RegisterKind::Coil,
        2 => RegisterKind::Discrete,
        3 => RegisterKind::Holding,
        4 => RegisterKind::Input,
        other => {
            notes.dropped(
                dp.at("functionCode"),
                "functionCode",
                &Value::from(other),
                "only the read functions 1-4",
            );
            return Vec::new();
        }
    };
    let address: u16 = match dp.get("address") {
        Some(Value::String(s)) if s.contains('-') => {
            notes.dropped(
                dp.at("address"),
                "address",
                &Value::String(s.clone()),
                "an address range is not supported: list the datapoints one by one",
            );
            return Vec::new();
        }
        _ => match dp.uint("address", notes) {
            Some(a) => a,
            None => return Vec::new(),
        },
    };
    let count: u16 = dp
        .uint("objectsCount", notes)
        .or_else(|| dp.uint("registersCount", notes))
        .or_else(|| dp.uint("registerCount", notes))
        .unwrap_or(1)
        .max(1);
    let ty = dp
        .str("type", notes)
        .unwrap_or("16int")
        .to_ascii_lowercase();
    let base = clean_name(tag, "point");
    dp.consume("bitTargetType");
    let own_report = report_strategy(dp, notes);
    let (deadband, max_silence) = (
        own_report.0.or(device_report.0),
        own_report.1.or(device_report.1),
    );
    if register.is_bits() {
        for key in [
            "byteOrder",
            "wordOrder",
            "divider",
            "multiplier",
            "offset",
            "bit",
        ] {
            dp.consume(key);
        }
        dp.finish(notes, "not a key of a ThingsBoard datapoint");
        let bit_point = |name: String, address: u16| Point {
            deadband,
            max_silence,
            ..Point::new(name, register, address)
        };
        if count == 1 {
            return vec![named(
                bit_point(unique(base, taken), address),
                tag,
                notes,
                dp,
            )];
        }
        notes.changed(
            dp.at("objectsCount"),
            "objectsCount",
            &Value::from(count),
            &format!(
                "{count} bits become {count} points, {base}_0 to {base}_{}",
                count - 1
            ),
        );
        return (0..count)
            .map(|i| {
                bit_point(
                    unique(format!("{base}_{i}"), taken),
                    address.saturating_add(i),
                )
            })
            .collect();
    }
    let order = orders(dp, device_order, notes);
    let mut point = Point::new(unique(base, taken), register, address);
    let sized = |bits: u16| -> Option<usize> {
        Some(usize::from(count) * 16).filter(|b| *b == usize::from(bits))
    };
    let data_type = match ty.as_str() {
        "8int" | "8uint" => {
            point.byte_order = Some(ByteOrder::Abcd);
            Some(if ty == "8int" {
                DataType::Int8H
            } else {
                DataType::Uint8H
            })
        }
        "16int" => Some(DataType::Int16),
        "16uint" => Some(DataType::Uint16),
        "16float" => Some(DataType::Float16),
        "32int" => Some(DataType::Int32),
        "32uint" => Some(DataType::Uint32),
        "32float" => Some(DataType::Float32),
        "64int" => Some(DataType::Int64),
        "64uint" => Some(DataType::Uint64),
        "64float" => Some(DataType::Float64),
        "int" | "long" | "integer" => [DataType::Int16, DataType::Int32, DataType::Int64]
            .into_iter()
            .find(|t| sized(t.words(None) * 16).is_some()),
        "uint" => [DataType::Uint16, DataType::Uint32, DataType::Uint64]
            .into_iter()
            .find(|t| sized(t.words(None) * 16).is_some()),
        "float" | "double" => [DataType::Float16, DataType::Float32, DataType::Float64]
            .into_iter()
            .find(|t| sized(t.words(None) * 16).is_some()),
        "string" => {
            point.length = Some(count);
            Some(DataType::String)
        }
        "bits" | "bit" => match dp.uint::<u8>("bit", notes).filter(|b| *b < 16) {
            Some(bit) => {
                point.bit = Some(bit);
                Some(DataType::Bit)
            }
            None => {
                notes.dropped(
                    dp.at("type"),
                    "type",
                    &Value::String(ty.clone()),
                    "a register's bits without \"bit\": name the bit (0-15) to read",
                );
                None
            }
        },
        _ => None,
    };
    let Some(data_type) = data_type else {
        if !matches!(ty.as_str(), "bits" | "bit") {
            notes.dropped(
                dp.at("type"),
                "type",
                &Value::String(ty),
                &format!("not a type Markoff reads with objectsCount {count} (bytes are not read)"),
            );
        }
        dp.finish(notes, "part of a datapoint that could not be carried over");
        return Vec::new();
    };
    point.data_type = data_type;
    if !matches!(data_type, DataType::String | DataType::Bit)
        && data_type.words(None) != count
        && !matches!(ty.as_str(), "8int" | "8uint")
    {
        notes.changed(
            dp.at("objectsCount"),
            "objectsCount",
            &Value::from(count),
            &format!(
                "{} reads {} register(s)",
                data_type.as_str(),
                data_type.words(None)
            ),
        );
    }
    // Text and bits are taken from the registers as read, whatever the order.
    if point.byte_order.is_none()
        && !matches!(data_type, DataType::Bit | DataType::String)
        && order != ByteOrder::Abcd
    {
        point.byte_order = Some(order);
    }
    if let Some(d) = dp.f64("divider", notes).filter(|d| *d != 0.0) {
        point.scale = 1.0 / d;
        if let Some(m) = dp.get("multiplier") {
            notes.dropped(
                dp.at("multiplier"),
                "multiplier",
                m,
                "ThingsBoard ignores it too when a divider is given",
            );
        }
    } else if let Some(m) = dp.f64("multiplier", notes).filter(|m| *m != 0.0) {
        point.scale = m;
    }
    if let Some(o) = dp.f64("offset", notes) {
        point.offset = o;
    }
    if data_type == DataType::String {
        notes.changed(
            dp.place.clone(),
            "type",
            &Value::String(ty),
            "a STRING point is kept as the sensor's text attribute, not as readings",
        );
    } else {
        point.deadband = deadband;
        point.max_silence = max_silence;
    }
    dp.finish(
        notes,
        "not a key of a ThingsBoard datapoint Markoff carries over",
    );
    vec![named(point, tag, notes, dp)]
}

/// Keeps the ThingsBoard tag as the description when the point's name had to change.
fn named(mut p: Point, tag: &str, notes: &mut Notes, dp: &Node<'_>) -> Point {
    if p.name != tag {
        notes.changed(
            dp.at("tag"),
            "tag",
            &Value::String(tag.to_owned()),
            &format!("point {:?}", p.name),
        );
        p.description = Some(tag.to_owned());
    }
    p
}
