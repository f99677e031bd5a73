//! Modbus acquisition: TCP, RTU on serial lines, and RTU over TCP.
//!
//! Owns: resolving the configuration (profiles, addresses, byte orders) into devices and points,
//! the request planner, decoding, and one poller task per connection that serialises every
//! request on its socket or serial port. Does not own: storage (readings go to the buffer).
//!
//! Layout: [`config`] (what users write), `resolve` (config into connections, devices and
//! points, with every check), [`address`] ("40001" notation), [`decode`] (pure
//! value decoding), [`planner`] (fewest reads, learned holes), [`link`] (transport and
//! timeouts), [`poller`] (the connection task), [`device`] (a simulated device for the demo and
//! tests), [`commission`] (the `markoff modbus` CLI), [`holes`] (learned holes through the API),
//! [`checks`] (bounds that validation enforces).

pub mod address;
pub mod checks;
pub mod commission;
pub mod config;
pub mod decode;
pub mod device;
pub mod holes;
pub mod link;
pub mod planner;
pub mod poller;
mod resolve;

use resolve::err;
pub use resolve::resolve;
#[cfg(test)]
use resolve::resolve_point;

use std::path::PathBuf;
use std::time::Duration;

use config::{Parity, ProfileConfig, Profiles, RegisterKind, TransmissionMode};
use decode::{ByteOrder, DataType};
use planner::{Limits, PlanPoint};

use crate::model::{SensorId, SensorKind, SensorMeta};

/// Built-in device profiles (name, TOML).
const BUILTIN_PROFILES: &[(&str, &str)] = &[
    (
        "eastron_sdm120",
        include_str!("profiles/eastron_sdm120.toml"),
    ),
    (
        "eastron_sdm630",
        include_str!("profiles/eastron_sdm630.toml"),
    ),
];

/// The built-in profiles, parsed.
pub fn builtin_profiles() -> Profiles {
    BUILTIN_PROFILES
        .iter()
        .filter_map(|(name, text)| {
            toml::from_str::<ProfileConfig>(text)
                .ok()
                .map(|p| ((*name).to_owned(), p))
        })
        .collect()
}

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP endpoint.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A serial port.
    Serial {
        /// Device path.
        path: PathBuf,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Self::Serial { path } => write!(f, "file://{}", path.display()),
        }
    }
}

impl Target {
    /// Parses `tcp://host[:port]` or `file:///dev/ttyX`.
    ///
    /// # Errors
    /// A message for the config report.
    pub fn parse(controller: &str) -> Result<Self, String> {
        if let Some(rest) = controller.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                    h.trim_matches(['[', ']']).to_owned(),
                    p.parse::<u16>()
                        .map_err(|_| format!("invalid port in {controller:?}"))?,
                ),
                _ => (rest.to_owned(), 502),
            };
            if host.is_empty() {
                return Err(format!("no host in {controller:?}"));
            }
            return Ok(Self::Tcp { host, port });
        }
        if let Some(path) = controller.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "serial controller needs an absolute path: \"file:///dev/ttyUSB0\", got {controller:?}"
                ));
            }
            return Ok(Self::Serial {
                path: PathBuf::from(path),
            });
        }
        Err(format!(
            "controller {controller:?} must start with tcp:// or file://"
        ))
    }
}

/// Serial line settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SerialParams {
    /// Baud rate.
    pub baud_rate: u32,
    /// Data bits.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: u8,
}

/// A resolved connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// Name (the config key).
    pub name: String,
    /// Where.
    pub target: Target,
    /// Framing.
    pub mode: TransmissionMode,
    /// Serial settings (RTU).
    pub serial: SerialParams,
    /// Per request.
    pub timeout: Duration,
    /// Between requests.
    pub pause_between_requests: Duration,
    /// After connecting.
    pub pause_after_connect: Duration,
    /// Exception 06 retries.
    pub busy_retries: u32,
    /// Wait between them.
    pub busy_retries_wait: Duration,
    /// Reconnect backoff cap.
    pub reconnect_max: Duration,
    /// Devices.
    pub devices: Vec<Device>,
}

/// A resolved device.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// Name (sensor id prefix).
    pub name: String,
    /// Unit id.
    pub slave: u8,
    /// Poll interval.
    pub interval: Duration,
    /// Planner limits.
    pub limits: Limits,
    /// Failed cycles before down.
    pub down_after: u32,
    /// Probe interval while down.
    pub reprobe_interval: Duration,
    /// How often learned holes are verified.
    pub hole_recheck_interval: Duration,
    /// Placement.
    pub floor: Option<String>,
    /// Placement.
    pub room: Option<String>,
    /// Points.
    pub points: Vec<Point>,
}

impl Device {
    /// The planner's view of the points.
    pub fn plan_points(&self) -> Vec<PlanPoint> {
        self.points
            .iter()
            .enumerate()
            .map(|(index, p)| PlanPoint {
                index,
                kind: p.kind,
                address: p.address,
                words: p.words(),
            })
            .collect()
    }

    /// Sensor id of the device's online state (1 answering, 0 down): what comm-loss alarms watch.
    pub fn online_sensor(&self) -> SensorId {
        SensorId::new(format!("{}.online", self.name))
    }
}

/// A resolved point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Name.
    pub name: String,
    /// `<device>.<name>`.
    pub sensor: SensorId,
    /// Table.
    pub kind: RegisterKind,
    /// Protocol address.
    pub address: u16,
    /// Type.
    pub data_type: DataType,
    /// Byte order.
    pub byte_order: ByteOrder,
    /// Bit of a register.
    pub bit: Option<u8>,
    /// STRING length.
    pub length: Option<u16>,
    /// Scale.
    pub scale: f64,
    /// Offset.
    pub offset: f64,
    /// Unit.
    pub unit: String,
    /// Kind.
    pub sensor_kind: SensorKind,
    /// Sentinel.
    pub nan_value: Option<i64>,
    /// Plausible range.
    pub min_value: Option<f64>,
    /// Plausible range.
    pub max_value: Option<f64>,
    /// Report-by-exception deadband.
    pub deadband: Option<f64>,
    /// Longest silence.
    pub max_silence: Duration,
    /// Human name.
    pub description: String,
}

impl Point {
    /// Registers or bits it spans.
    pub fn words(&self) -> u16 {
        if self.kind.is_bits() {
            1
        } else {
            self.data_type.words(self.length)
        }
    }
}

/// Sensor metadata of every point and every device's online state.
pub fn sensor_metas(conn: &Connection) -> Vec<SensorMeta> {
    let source = format!("modbus:{}", conn.name);
    let mut out = Vec::new();
    for d in &conn.devices {
        out.push(SensorMeta {
            id: d.online_sensor(),
            name: format!("{} online", d.name),
            kind: SensorKind::State,
            unit: String::new(),
            floor: d.floor.clone(),
            room: d.room.clone(),
            source: source.clone(),
        });
        for p in d.points.iter().filter(|p| p.data_type != DataType::String) {
            out.push(SensorMeta {
                id: p.sensor.clone(),
                name: p.description.clone(),
                kind: p.sensor_kind,
                unit: p.unit.clone(),
                floor: d.floor.clone(),
                room: d.room.clone(),
                source: source.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_resolve() {
        let profiles = builtin_profiles();
        assert_eq!(profiles.len(), BUILTIN_PROFILES.len());
        for (name, p) in &profiles {
            let mut errors = Vec::new();
            for (j, pt) in p.points.iter().enumerate() {
                assert!(
                    resolve_point(
                        pt,
                        "m",
                        p.address_base,
                        p.byte_order,
                        &format!("{name}.{j}"),
                        &mut errors
                    )
                    .is_some(),
                    "{name}: {errors:?}"
                );
            }
        }
    }

    #[test]
    fn controllers_parse() {
        assert_eq!(
            Target::parse("tcp://10.0.0.5").unwrap(),
            Target::Tcp {
                host: "10.0.0.5".into(),
                port: 502
            }
        );
        assert_eq!(
            Target::parse("tcp://plc.local:1502").unwrap(),
            Target::Tcp {
                host: "plc.local".into(),
                port: 1502
            }
        );
        assert_eq!(
            Target::parse("file:///dev/ttyUSB0").unwrap(),
            Target::Serial {
                path: "/dev/ttyUSB0".into()
            }
        );
        assert!(Target::parse("udp://x").is_err());
        assert!(Target::parse("file://dev/ttyUSB0").is_err());
    }

    fn parse(sources: &str) -> Result<crate::config::Config, crate::config::ConfigErrors> {
        crate::config::parse_str(
            &format!("[gateway]\nid = \"t\"\n{sources}"),
            std::path::Path::new("t.toml"),
        )
    }

    #[test]
    fn telegraf_values_are_taken_where_they_mean_the_same() {
        let cfg = parse(
            r#"
[sources.modbus.a]
controller = "tcp://127.0.0.1:502"
transmission_mode = "auto"
[[sources.modbus.a.devices]]
name = "m"
slave_id = 1
optimization = "rearrange"
fields = [
  { name = "lo", register = "holding", address = 0, type = "INT8L", byte_order = "MSW-BE" },
  { name = "half", register = "holding", address = 1, type = "FLOAT16-IEEE" },
  { name = "e", register = "input", address = 2, type = "UINT32", byte_order = "LSW-BE" },
]
[sources.modbus.b]
controller = "file:///dev/ttyUSB0"
transmission_mode = "auto"
[[sources.modbus.b.devices]]
name = "n"
slave_id = 2
optimization = "aggressive"
points = [{ name = "x", register = "coil", address = 0, type = "BIT" }]
"#,
        )
        .unwrap();
        let conns = resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles).unwrap();
        assert_eq!(conns[0].mode, TransmissionMode::Tcp);
        assert_eq!(conns[1].mode, TransmissionMode::Rtu);
        let m = &conns[0].devices[0];
        assert_eq!(m.limits.optimization, config::Optimization::Contiguous);
        assert_eq!(m.points[0].data_type, DataType::Int8L);
        assert_eq!(m.points[0].byte_order, ByteOrder::Abcd);
        assert_eq!(m.points[1].data_type, DataType::Float16);
        assert_eq!(m.points[2].byte_order, ByteOrder::Cdab);
        assert_eq!(
            conns[1].devices[0].limits.optimization,
            config::Optimization::Aggressive
        );
    }

    #[test]
    fn what_differs_from_telegraf_is_an_error_that_names_the_importer() {
        let ascii = parse(
            r#"
[sources.modbus.a]
controller = "file:///dev/ttyUSB0"
transmission_mode = "ASCII"
[[sources.modbus.a.devices]]
name = "m"
slave_id = 1
points = [{ name = "x", register = "coil", address = 0, type = "BIT" }]
"#,
        )
        .unwrap_err();
        assert!(
            ascii.errors[0]
                .message
                .contains("ASCII: Modbus ASCII framing is not supported"),
            "{ascii}"
        );
        let measurement = parse(
            r#"
[sources.modbus.a]
controller = "tcp://127.0.0.1:502"
[[sources.modbus.a.devices]]
name = "m"
slave_id = 1
points = [{ name = "x", register = "coil", address = 0, type = "BIT", measurement = "motor" }]
"#,
        )
        .unwrap_err();
        let hint = measurement.errors[0].hint.clone().unwrap_or_default();
        assert!(hint.contains("markoff import telegraf"), "{measurement}");
    }
}
