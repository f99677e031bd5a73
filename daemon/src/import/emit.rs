//! What an import produces, and how it is written as a Markoff config file.
//!
//! Owns: the output model (connections, devices, points, MQTT subscriptions), unique names, and
//! the TOML text. Does not own: reading the other tool's format (see `telegraf`, `thingsboard`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::sources::modbus::config::RegisterKind;
use crate::sources::modbus::decode::{ByteOrder, DataType};

/// A Markoff config being built.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    /// `[gateway] id`.
    pub(crate) gateway_id: String,
    /// Modbus connections by name.
    pub(crate) modbus: BTreeMap<String, Connection>,
    /// MQTT connections by name.
    pub(crate) mqtt: BTreeMap<String, Mqtt>,
}

/// `[sources.modbus.<name>]`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Connection {
    /// False when the connection cannot work as imported (ASCII framing, a Windows port).
    pub(crate) enabled: bool,
    /// `tcp://...` or `file://...`.
    pub(crate) controller: String,
    /// `"TCP"`, `"RTU"`, `"RTUoverTCP"` when it must be said.
    pub(crate) transmission_mode: Option<&'static str>,
    /// Baud rate, data bits, parity letter, stop bits (serial only).
    pub(crate) serial: Option<(u32, u8, char, u8)>,
    /// Per request.
    pub(crate) timeout: Option<Duration>,
    /// Between requests.
    pub(crate) pause_between_requests: Option<Duration>,
    /// After connecting.
    pub(crate) pause_after_connect: Option<Duration>,
    /// Exception 06 retries.
    pub(crate) busy_retries: Option<u32>,
    /// Wait between them.
    pub(crate) busy_retries_wait: Option<Duration>,
    /// Devices.
    pub(crate) devices: Vec<Device>,
}

/// `[[sources.modbus.<name>.devices]]`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Device {
    /// Name (sensor id prefix).
    pub(crate) name: String,
    /// Unit id.
    pub(crate) slave_id: u8,
    /// Poll interval.
    pub(crate) interval: Option<Duration>,
    /// `"none"`, `"contiguous"`, `"max_insert"`, `"aggressive"`.
    pub(crate) optimization: Option<&'static str>,
    /// For max_insert.
    pub(crate) max_gap: Option<u16>,
    /// Read limits.
    pub(crate) max_registers_per_request: Option<u16>,
    /// Read limits.
    pub(crate) max_bits_per_request: Option<u16>,
    /// Placement.
    pub(crate) floor: Option<String>,
    /// Placement.
    pub(crate) room: Option<String>,
    /// Points.
    pub(crate) points: Vec<Point>,
}

/// One point, written as an inline table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// Name (unique in its device).
    pub(crate) name: String,
    /// Table.
    pub(crate) register: RegisterKind,
    /// Protocol address (from 0).
    pub(crate) address: u16,
    /// Type.
    pub(crate) data_type: DataType,
    /// STRING length.
    pub(crate) length: Option<u16>,
    /// Bit of a register.
    pub(crate) bit: Option<u8>,
    /// Byte order.
    pub(crate) byte_order: Option<ByteOrder>,
    /// value = raw * scale + offset.
    pub(crate) scale: f64,
    /// See scale.
    pub(crate) offset: f64,
    /// Report by exception.
    pub(crate) deadband: Option<f64>,
    /// Longest silence with a deadband.
    pub(crate) max_silence: Option<Duration>,
    /// Human name (the original name, when it had to change).
    pub(crate) description: Option<String>,
}

impl Point {
    /// A point with the defaults: UINT16, no scale.
    pub(crate) fn new(name: String, register: RegisterKind, address: u16) -> Self {
        Self {
            name,
            register,
            address,
            data_type: if register.is_bits() {
                DataType::Bit
            } else {
                DataType::Uint16
            },
            length: None,
            bit: None,
            byte_order: None,
            scale: 1.0,
            offset: 0.0,
            deadband: None,
            max_silence: None,
            description: None,
        }
    }
}

/// `[sources.mqtt.<name>]`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Mqtt {
    /// Broker URLs.
    pub(crate) servers: Vec<String>,
    /// Client id.
    pub(crate) client_id: Option<String>,
    /// Persistent session.
    pub(crate) persistent_session: Option<bool>,
    /// User name.
    pub(crate) username: Option<String>,
    /// Environment variable of the password.
    pub(crate) password_env: Option<String>,
    /// CA file.
    pub(crate) ca_file: Option<String>,
    /// Keep-alive.
    pub(crate) keep_alive: Option<Duration>,
    /// Subscriptions.
    pub(crate) subscriptions: Vec<Subscription>,
}

/// `[[sources.mqtt.<name>.subscriptions]]`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Subscription {
    /// Topic filter.
    pub(crate) topic: String,
    /// QoS.
    pub(crate) qos: u8,
    /// `"json"` or `"value"`.
    pub(crate) format: &'static str,
    /// Level names.
    pub(crate) topic_parsing: Option<String>,
    /// Sensor id template.
    pub(crate) sensor: Option<String>,
    /// Array of readings.
    pub(crate) array_path: Option<String>,
    /// Timestamp.
    pub(crate) timestamp_path: Option<String>,
    /// `"unix"`, `"unix_ms"`, `"rfc3339"`.
    pub(crate) timestamp_format: Option<&'static str>,
    /// Fields: (path, name).
    pub(crate) fields: Vec<(String, Option<String>)>,
}

impl Connection {
    /// Adds `device`; one with the unit id of a device already on the line joins that device
    /// (one device per unit id on a line here), its points prefixed with its name (reported).
    pub(crate) fn add_device(&mut self, device: Device, place: &str, notes: &mut super::Notes) {
        let Some(existing) = self
            .devices
            .iter_mut()
            .find(|d| d.slave_id == device.slave_id)
        else {
            self.devices.push(device);
            return;
        };
        notes.changed(
            place.to_owned(),
            "slave_id",
            &serde_json::Value::from(device.slave_id),
            &format!(
                "the same unit on the same line as device {:?}: its points join that device as \
                 {}_<point>, read at that device's interval",
                existing.name, device.name
            ),
        );
        let mut taken: Vec<String> = existing.points.iter().map(|p| p.name.clone()).collect();
        for mut p in device.points {
            p.description.get_or_insert_with(|| p.name.clone());
            p.name = unique(format!("{}_{}", device.name, p.name), &mut taken);
            existing.points.push(p);
        }
    }
}

/// Makes `raw` a Markoff name (ASCII letters, digits, `_`, `-`): other characters become `_`,
/// runs of them one, and an empty result `fallback`.
pub(crate) fn clean_name(raw: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in raw.trim().chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// `name`, or `name_2`, `name_3`, ... so that it is not in `taken`; the result is added to it.
pub(crate) fn unique(name: String, taken: &mut Vec<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    taken.push(candidate.clone());
    candidate
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML float that reads back as the same f64.
fn float(v: f64) -> String {
    toml::Value::Float(v).to_string()
}

fn dur(d: Duration) -> String {
    q(&humantime::format_duration(d).to_string())
}

impl Doc {
    /// The config text: `header` as comments, then the tables.
    pub(crate) fn to_toml(&self, header: &[String]) -> String {
        let mut t = String::new();
        for line in header {
            if line.is_empty() {
                t.push_str("#\n");
            } else {
                writeln!(t, "# {line}").ok();
            }
        }
        writeln!(t, "\n[gateway]\nid = {}", q(&self.gateway_id)).ok();
        for (name, c) in &self.modbus {
            write_connection(&mut t, name, c);
        }
        for (name, m) in &self.mqtt {
            write_mqtt(&mut t, name, m);
        }
        t
    }
}

fn write_connection(t: &mut String, name: &str, c: &Connection) {
    writeln!(t, "\n[sources.modbus.{name}]").ok();
    if !c.enabled {
        t.push_str("enabled = false\n");
    }
    writeln!(t, "controller = {}", q(&c.controller)).ok();
    if let Some(m) = c.transmission_mode {
        writeln!(t, "transmission_mode = {}", q(m)).ok();
    }
    if let Some((baud, bits, parity, stop)) = c.serial {
        writeln!(
            t,
            "baud_rate = {baud}\ndata_bits = {bits}\nparity = {}\nstop_bits = {stop}",
            q(&parity.to_string())
        )
        .ok();
    }
    for (key, d) in [
        ("timeout", c.timeout),
        ("pause_between_requests", c.pause_between_requests),
        ("pause_after_connect", c.pause_after_connect),
    ] {
        if let Some(d) = d {
            writeln!(t, "{key} = {}", dur(d)).ok();
        }
    }
    if let Some(n) = c.busy_retries {
        writeln!(t, "busy_retries = {n}").ok();
    }
    if let Some(d) = c.busy_retries_wait {
        writeln!(t, "busy_retries_wait = {}", dur(d)).ok();
    }
    for d in &c.devices {
        writeln!(t, "\n[[sources.modbus.{name}.devices]]").ok();
        writeln!(t, "name = {}\nslave_id = {}", q(&d.name), d.slave_id).ok();
        if let Some(i) = d.interval {
            writeln!(t, "interval = {}", dur(i)).ok();
        }
        if let Some(o) = d.optimization {
            writeln!(t, "optimization = {}", q(o)).ok();
        }
        for (key, v) in [
            ("max_gap", d.max_gap),
            ("max_registers_per_request", d.max_registers_per_request),
            ("max_bits_per_request", d.max_bits_per_request),
        ] {
            if let Some(v) = v {
                writeln!(t, "{key} = {v}").ok();
            }
        }
        for (key, v) in [("floor", &d.floor), ("room", &d.room)] {
            if let Some(v) = v {
                writeln!(t, "{key} = {}", q(v)).ok();
            }
        }
        t.push_str("points = [\n");
        for p in &d.points {
            writeln!(t, "  {},", point(p)).ok();
        }
        t.push_str("]\n");
    }
}

fn point(p: &Point) -> String {
    let mut parts = vec![
        format!("name = {}", q(&p.name)),
        format!("register = {}", q(p.register.as_str())),
        format!("address = {}", p.address),
        format!("type = {}", q(p.data_type.as_str())),
    ];
    if let Some(l) = p.length {
        parts.push(format!("length = {l}"));
    }
    if let Some(b) = p.bit {
        parts.push(format!("bit = {b}"));
    }
    if let Some(o) = p.byte_order {
        parts.push(format!("byte_order = {}", q(o.as_str())));
    }
    if p.scale != 1.0 {
        parts.push(format!("scale = {}", float(p.scale)));
    }
    if p.offset != 0.0 {
        parts.push(format!("offset = {}", float(p.offset)));
    }
    if let Some(d) = p.deadband {
        parts.push(format!("deadband = {}", float(d)));
    }
    if let Some(d) = p.max_silence {
        parts.push(format!("max_silence = {}", dur(d)));
    }
    if let Some(d) = &p.description {
        parts.push(format!("description = {}", q(d)));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn write_mqtt(t: &mut String, name: &str, m: &Mqtt) {
    writeln!(t, "\n[sources.mqtt.{name}]").ok();
    let servers: Vec<String> = m.servers.iter().map(|s| q(s)).collect();
    writeln!(t, "servers = [{}]", servers.join(", ")).ok();
    for (key, v) in [
        ("client_id", &m.client_id),
        ("username", &m.username),
        ("password_env", &m.password_env),
        ("ca_file", &m.ca_file),
    ] {
        if let Some(v) = v {
            writeln!(t, "{key} = {}", q(v)).ok();
        }
    }
    if let Some(p) = m.persistent_session {
        writeln!(t, "persistent_session = {p}").ok();
    }
    if let Some(k) = m.keep_alive {
        writeln!(t, "keep_alive = {}", dur(k)).ok();
    }
    for s in &m.subscriptions {
        writeln!(t, "\n[[sources.mqtt.{name}.subscriptions]]").ok();
        writeln!(
            t,
            "topic = {}\nqos = {}\nformat = {}",
            q(&s.topic),
            s.qos,
            q(s.format)
        )
        .ok();
        for (key, v) in [
            ("topic_parsing", &s.topic_parsing),
            ("sensor", &s.sensor),
            ("array_path", &s.array_path),
            ("timestamp_path", &s.timestamp_path),
        ] {
            if let Some(v) = v {
                writeln!(t, "{key} = {}", q(v)).ok();
            }
        }
        if let Some(f) = s.timestamp_format {
            writeln!(t, "timestamp_format = {}", q(f)).ok();
        }
        if !s.fields.is_empty() {
            t.push_str("fields = [\n");
            for (path, name) in &s.fields {
                match name {
                    Some(n) => writeln!(t, "  {{ path = {}, name = {} }},", q(path), q(n)),
                    None => writeln!(t, "  {{ path = {} }},", q(path)),
                }
                .ok();
            }
            t.push_str("]\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_made_unique() {
        assert_eq!(clean_name("Temp Sensor #1", "d"), "Temp_Sensor_1");
        assert_eq!(clean_name("  ", "device"), "device");
        assert_eq!(clean_name("8int_read", "x"), "8int_read");
        let mut taken = vec!["a".to_owned()];
        assert_eq!(unique("a".to_owned(), &mut taken), "a_2");
        assert_eq!(unique("a".to_owned(), &mut taken), "a_3");
        assert_eq!(unique("b".to_owned(), &mut taken), "b");
    }

    #[test]
    fn floats_and_strings_read_back_exactly() {
        for v in [0.1, 0.001, 1.0 / 3.0, 1e-7, 12345.678] {
            let text = format!("x = {}", float(v));
            let back: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(back["x"].as_float(), Some(v), "{text}");
        }
        let text = format!("x = {}", q("a \"b\" \\ c"));
        let back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(back["x"].as_str(), Some("a \"b\" \\ c"));
    }
}
