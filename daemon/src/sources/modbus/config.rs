//! Configuration of Modbus connections, devices and points, in Telegraf's vocabulary, with the
//! ThingsBoard / Home Assistant synonyms accepted where the meaning is identical
//! (`unit_id`/`slave` for `slave_id`, `poll_period`/`scan_interval` for `interval`).
//!
//! Telegraf's values are accepted where they mean the same here: `transmission_mode = "auto"`,
//! the optimisation names `shrink`, `rearrange` and `aggressive`, the 8-bit and FLOAT16 types,
//! and its byte-order spellings. What differs (Telegraf's `optimization = "none"`, the register
//! style's `FLOAT32`, `FIXED`, `UFIXED`, `measurement`, `tags`, `omit`) is translated by
//! `markoff import telegraf` (see [`crate::import`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::address::AddressSpec;
use super::decode::{ByteOrder, DataType};
use crate::config::error::ConfigError;
use crate::model::SensorKind;

/// `[sources.modbus.<name>]`: one physical connection (a TCP socket or a serial port) and the
/// devices reached through it. One task owns it and serialises every request on it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Run it.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// `tcp://host:port` or `file:///dev/ttyUSB0`.
    pub controller: String,
    /// TCP, RTU (serial) or RTUoverTCP (RTU framing through a TCP serial server).
    /// Default: TCP for `tcp://`, RTU for `file://`.
    #[serde(default)]
    pub transmission_mode: Option<TransmissionMode>,
    /// Serial: baud rate.
    #[serde(default = "defaults::baud_rate")]
    pub baud_rate: u32,
    /// Serial: data bits (7 or 8).
    #[serde(default = "defaults::data_bits")]
    pub data_bits: u8,
    /// Serial: parity N, E or O.
    #[serde(default = "defaults::parity")]
    pub parity: Parity,
    /// Serial: stop bits (1 or 2).
    #[serde(default = "defaults::stop_bits")]
    pub stop_bits: u8,
    /// Time allowed for one request/response.
    #[serde(default = "defaults::timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Silence kept between two requests on this connection (serial lines and slow gateways).
    #[serde(default, with = "humantime_serde")]
    pub pause_between_requests: Duration,
    /// Wait after opening the connection before the first request (devices that need it).
    #[serde(default, with = "humantime_serde")]
    pub pause_after_connect: Duration,
    /// How often a request answered "server busy" (exception 06) is retried.
    #[serde(default = "defaults::busy_retries")]
    pub busy_retries: u32,
    /// Wait between those retries.
    #[serde(default = "defaults::busy_retries_wait", with = "humantime_serde")]
    pub busy_retries_wait: Duration,
    /// Longest wait between reconnect attempts (the wait grows from 1s with jitter).
    #[serde(default = "defaults::reconnect_max", with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Devices on this connection.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
}

/// How requests are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum TransmissionMode {
    /// Chosen by the controller: TCP for `tcp://`, RTU for `file://` (Telegraf's default).
    #[serde(rename = "auto", alias = "AUTO")]
    Auto,
    /// Modbus TCP (MBAP header).
    #[serde(rename = "TCP", alias = "tcp")]
    Tcp,
    /// Modbus RTU on a serial line.
    #[serde(rename = "RTU", alias = "rtu")]
    Rtu,
    /// RTU frames carried over TCP (serial device servers).
    #[serde(rename = "RTUoverTCP", alias = "rtuovertcp", alias = "RTU_OVER_TCP")]
    RtuOverTcp,
    /// Modbus ASCII on a serial line: named so that validation can say it is not supported.
    #[serde(rename = "ASCII", alias = "ascii")]
    Ascii,
    /// Modbus ASCII over TCP: not supported either.
    #[serde(rename = "ASCIIoverTCP", alias = "asciiovertcp")]
    AsciiOverTcp,
}

/// Serial parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Parity {
    /// None.
    #[serde(rename = "N", alias = "none", alias = "n")]
    None,
    /// Even.
    #[serde(rename = "E", alias = "even", alias = "e")]
    Even,
    /// Odd.
    #[serde(rename = "O", alias = "odd", alias = "o")]
    Odd,
}

/// How points are grouped into requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimization {
    /// One request per point (what ThingsBoard does; for devices that reject any merged read).
    /// Telegraf's `none` is `contiguous` here.
    None,
    /// Merge only points that touch (what Neuron does, and Telegraf's `none`, `shrink` and
    /// `rearrange`: none of them reads a register that no field names).
    #[serde(alias = "shrink", alias = "rearrange")]
    Contiguous,
    /// Merge points and fill gaps up to `max_gap` registers (Telegraf's `max_insert`); blocks a
    /// device rejects with exception 02 are split automatically and the hole is remembered.
    MaxInsert,
    /// Merge points across gaps of any size, up to the largest read (Telegraf's `aggressive`).
    Aggressive,
}

/// `[[sources.modbus.<name>.devices]]`: one slave on the connection.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Device name; sensor ids are `<name>.<point>`.
    pub name: String,
    /// Modbus unit id (1-247; 255 or 0 for some TCP devices).
    #[serde(alias = "unit_id", alias = "slave")]
    pub slave_id: u8,
    /// Poll interval.
    #[serde(
        default = "defaults::interval",
        alias = "poll_period",
        alias = "scan_interval",
        with = "humantime_serde"
    )]
    pub interval: Duration,
    /// Default byte order of multi-register values on this device.
    #[serde(default)]
    pub byte_order: Option<ByteOrder>,
    /// Whether configured addresses count from 0 (protocol addresses) or 1 (documentation
    /// "register numbers"). "40001"-style addresses are always 1-based.
    #[serde(default)]
    pub address_base: u8,
    /// Request grouping.
    #[serde(default = "defaults::optimization")]
    pub optimization: Optimization,
    /// Largest gap (in registers or bits) filled to merge two reads.
    #[serde(
        default = "defaults::max_gap",
        alias = "optimization_max_register_fill"
    )]
    pub max_gap: u16,
    /// Largest read in registers (the protocol allows 125).
    #[serde(
        default = "defaults::max_registers",
        alias = "max_word_registers_per_request"
    )]
    pub max_registers_per_request: u16,
    /// Largest read in bits (the protocol allows 2000).
    #[serde(
        default = "defaults::max_bits",
        alias = "max_bit_registers_per_request"
    )]
    pub max_bits_per_request: u16,
    /// Consecutive failed cycles before the device counts as down.
    #[serde(default = "defaults::down_after")]
    pub down_after: u32,
    /// How often a down device is probed again.
    #[serde(default = "defaults::reprobe_interval", with = "humantime_serde")]
    pub reprobe_interval: Duration,
    /// How often learned address holes are verified: one cycle reads without them and keeps
    /// only the holes still rejected.
    #[serde(default = "defaults::hole_recheck_interval", with = "humantime_serde")]
    pub hole_recheck_interval: Duration,
    /// A register map defined under `[sources.modbus_profiles]` or built in
    /// (`eastron_sdm120`, `eastron_sdm630`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Floor where the device is (site metadata).
    #[serde(default)]
    pub floor: Option<String>,
    /// Room or unit where the device is.
    #[serde(default)]
    pub room: Option<String>,
    /// Points in addition to (or overriding by name) those of the profile.
    #[serde(default, alias = "fields")]
    pub points: Vec<PointConfig>,
}

/// `[sources.modbus_profiles.<name>]`: a register map defined once and used by many devices.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// What device this describes.
    #[serde(default)]
    pub description: String,
    /// Byte order of the device family (a device's own `byte_order` wins).
    #[serde(default)]
    pub byte_order: Option<ByteOrder>,
    /// Address base of the profile's addresses.
    #[serde(default)]
    pub address_base: u8,
    /// The points.
    pub points: Vec<PointConfig>,
}

/// One value read from a device.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointConfig {
    /// Point name; the sensor id is `<device>.<name>`.
    pub name: String,
    /// Register table: holding, input, coil or discrete. Optional with "40001"-style addresses.
    #[serde(default)]
    pub register: Option<RegisterKind>,
    /// Address: a number (interpreted with the device's `address_base`) or a string in
    /// "40001" / "4x0001" / "0x10" notation.
    pub address: AddressSpec,
    /// Data type.
    #[serde(rename = "type", default = "defaults::data_type")]
    pub data_type: DataType,
    /// STRING: length in registers (2 characters each).
    #[serde(default)]
    pub length: Option<u16>,
    /// For register types: take this bit (0 = least significant) as a 0/1 value.
    #[serde(default)]
    pub bit: Option<u8>,
    /// Byte order of this point (overrides the device and profile).
    #[serde(default)]
    pub byte_order: Option<ByteOrder>,
    /// value = raw * scale + offset.
    #[serde(default = "defaults::scale")]
    pub scale: f64,
    /// See `scale`.
    #[serde(default)]
    pub offset: f64,
    /// Unit of the scaled value.
    #[serde(default)]
    pub unit: String,
    /// What it measures (temperature, energy, ...); guessed from the unit when absent.
    #[serde(default)]
    pub kind: Option<SensorKind>,
    /// Raw value the device uses for "no value" (e.g. 0x8000 or 65535): read as bad quality.
    #[serde(default)]
    pub nan_value: Option<i64>,
    /// Scaled values below this are implausible: bad quality, no value stored.
    #[serde(default)]
    pub min_value: Option<f64>,
    /// Scaled values above this are implausible.
    #[serde(default)]
    pub max_value: Option<f64>,
    /// Report by exception: a value within this distance of the last stored one is not stored
    /// again until `max_silence` has passed.
    #[serde(default)]
    pub deadband: Option<f64>,
    /// Longest time without storing a value that is unchanged within the deadband.
    #[serde(default = "defaults::max_silence", with = "humantime_serde")]
    pub max_silence: Duration,
    /// Human name ("Supply temperature").
    #[serde(default)]
    pub description: Option<String>,
}

/// Modbus register tables.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    /// Holding registers (function 3), 4xxxx.
    #[serde(alias = "holding_register", alias = "holding_registers")]
    Holding,
    /// Input registers (function 4), 3xxxx.
    #[serde(alias = "input_register", alias = "input_registers")]
    Input,
    /// Coils (function 1), 0xxxx.
    #[serde(alias = "coils")]
    Coil,
    /// Discrete inputs (function 2), 1xxxx.
    #[serde(alias = "discrete_input", alias = "discrete_inputs")]
    Discrete,
}

impl RegisterKind {
    /// Whether the table holds bits rather than 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, Self::Coil | Self::Discrete)
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Holding => "holding",
            Self::Input => "input",
            Self::Coil => "coil",
            Self::Discrete => "discrete",
        }
    }
}

/// All Modbus configuration: connections by name, and profiles by name.
pub type Connections = BTreeMap<String, ConnectionConfig>;
/// Profiles by name.
pub type Profiles = BTreeMap<String, ProfileConfig>;

/// Every problem in `[sources.modbus.*]` and `[sources.modbus_profiles.*]`, with dotted key
/// paths (the profiles applied to the devices, the register plans checked).
pub fn validate(conns: &Connections, profiles: &Profiles) -> Vec<ConfigError> {
    super::resolve(conns, profiles).err().unwrap_or_default()
}

pub(crate) mod defaults {
    use std::time::Duration;

    use super::Optimization;
    use crate::sources::modbus::decode::DataType;

    pub(crate) fn yes() -> bool {
        true
    }
    pub(crate) fn baud_rate() -> u32 {
        9_600
    }
    pub(crate) fn data_bits() -> u8 {
        8
    }
    pub(crate) fn parity() -> super::Parity {
        super::Parity::None
    }
    pub(crate) fn stop_bits() -> u8 {
        1
    }
    pub(crate) fn timeout() -> Duration {
        Duration::from_secs(1)
    }
    pub(crate) fn busy_retries() -> u32 {
        2
    }
    pub(crate) fn busy_retries_wait() -> Duration {
        Duration::from_millis(100)
    }
    pub(crate) fn reconnect_max() -> Duration {
        Duration::from_secs(30)
    }
    pub(crate) fn interval() -> Duration {
        Duration::from_secs(10)
    }
    pub(crate) fn optimization() -> Optimization {
        Optimization::MaxInsert
    }
    pub(crate) fn max_gap() -> u16 {
        10
    }
    pub(crate) fn max_registers() -> u16 {
        125
    }
    pub(crate) fn max_bits() -> u16 {
        2000
    }
    pub(crate) fn down_after() -> u32 {
        3
    }
    pub(crate) fn reprobe_interval() -> Duration {
        Duration::from_secs(60)
    }
    pub(crate) fn hole_recheck_interval() -> Duration {
        Duration::from_secs(3600)
    }
    pub(crate) fn data_type() -> DataType {
        DataType::Uint16
    }
    pub(crate) fn scale() -> f64 {
        1.0
    }
    pub(crate) fn max_silence() -> Duration {
        Duration::from_secs(300)
    }
}
