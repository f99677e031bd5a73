//! Configuration of MQTT connections and subscriptions, in Telegraf `mqtt_consumer` words.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ByteSize;
use crate::config::error::ConfigError;
use crate::model::SensorKind;

/// `[sources.mqtt.<name>]`: one broker connection (with failover servers) and its subscriptions.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Run it.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Brokers, tried in order on failure: `tcp://host:1883`, `mqtt://host`, `ssl://host:8883`,
    /// `tls://host:8883`.
    pub servers: Vec<String>,
    /// Client id; must be stable for the broker to keep the session. Default: `markoff-<gateway>-<name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Keep the session (subscriptions and unacknowledged QoS 1/2 messages) across reconnects.
    #[serde(default = "defaults::yes")]
    pub persistent_session: bool,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password from an environment variable (never in this file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Password from a file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Password from a systemd credential (`LoadCredential=`).
    #[serde(default)]
    pub password_credential: Option<String>,
    /// PEM file of the CA that signs the broker's certificate (TLS); default: the web PKI roots.
    /// Telegraf's `tls_ca` is accepted as a synonym.
    #[serde(default, alias = "tls_ca")]
    pub ca_file: Option<PathBuf>,
    /// Keep-alive interval.
    #[serde(default = "defaults::keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Longest wait between reconnect attempts (grows from 1s, jittered).
    #[serde(default = "defaults::reconnect_max", with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Retained status topic: `online` after connecting, `offline` as the last will.
    /// Default: `markoff/<gateway>/status`; empty string disables it.
    #[serde(default)]
    pub status_topic: Option<String>,
    /// Unacknowledged QoS 1/2 messages in flight from the broker.
    #[serde(default = "defaults::max_inflight")]
    pub max_inflight: u16,
    /// Largest payload read (default 1 MiB, at most 256 MiB): a larger message is dropped,
    /// acknowledged and counted, and the connection goes on.
    #[serde(default = "defaults::max_message_size")]
    pub max_message_size: ByteSize,
    /// MQTT protocol version: `"3.1.1"` (default) or `"5"`. With 5, `max_message_size` is
    /// announced to the broker as the Maximum Packet Size, and the broker drops larger messages
    /// for this client.
    #[serde(default)]
    pub protocol: Protocol,
    /// Subscriptions.
    pub subscriptions: Vec<SubscriptionConfig>,
}

/// The MQTT protocol version a connection speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1.1: the gateway reads every message and drops, acknowledges and counts those over
    /// `max_message_size` itself.
    #[default]
    V311,
    /// MQTT 5: `max_message_size` is the Maximum Packet Size announced in CONNECT; the broker
    /// drops larger messages for this client, unseen by the gateway.
    V5,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        })
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Version;
        impl serde::de::Visitor<'_> for Version {
            type Value = Protocol;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"3.1.1\" or \"5\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Protocol, E> {
                match v {
                    "3.1.1" => Ok(Protocol::V311),
                    "5" | "5.0" => Ok(Protocol::V5),
                    other => Err(E::custom(format!(
                        "unsupported MQTT protocol version {other:?}: \"3.1.1\" or \"5\""
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Protocol, E> {
                match v {
                    5 => Ok(Protocol::V5),
                    other => Err(E::custom(format!(
                        "unsupported MQTT protocol version {other}: \"3.1.1\" or \"5\""
                    ))),
                }
            }
        }
        d.deserialize_any(Version)
    }
}

/// How a payload is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A plain number or boolean word (`21.5`, `ON`, `true`, `open`).
    Value,
    /// JSON: `fields` by path, or every numeric/boolean leaf when no fields are given.
    Json,
    /// zigbee2mqtt device messages (`zigbee2mqtt/<device>`): every numeric/boolean field.
    Zigbee2mqtt,
    /// Tasmota `tele/<device>/SENSOR`: nested sensor objects, flattened.
    Tasmota,
    /// Shelly Gen2 `<device>/status/<component>` and `NotifyStatus` RPC events.
    ShellyGen2,
}

/// Timestamp encodings in payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Seconds since the epoch (may be fractional).
    Unix,
    /// Milliseconds since the epoch.
    UnixMs,
    /// RFC 3339 text.
    Rfc3339,
}

/// `[[sources.mqtt.<name>.subscriptions]]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Topic filter (`+` and `#` wildcards). Presets have a default.
    #[serde(default)]
    pub topic: Option<String>,
    /// QoS 0, 1 or 2.
    #[serde(default = "defaults::qos")]
    pub qos: u8,
    /// Payload format. Telegraf's `data_format` is accepted as a synonym (its values `json` and
    /// `value` mean what they mean here).
    #[serde(default = "defaults::format", alias = "data_format")]
    pub format: Format,
    /// Names for topic segments, `_` to skip: `"_/device/_"` names the second segment `device`.
    #[serde(default)]
    pub topic_parsing: Option<String>,
    /// Sensor id template: `{device}`-style topic names, `{topic}` (the topic, '/' as '.'),
    /// `{field}` (the field's name). Default: `{device}.{field}` when a `device` segment is
    /// named, else `{topic}.{field}` (`{topic}` alone for plain values).
    #[serde(default)]
    pub sensor: Option<String>,
    /// JSON fields to take (default: every numeric or boolean leaf).
    #[serde(default)]
    pub fields: Vec<FieldConfig>,
    /// JSON path of an array whose elements are separate readings (each with the fields).
    #[serde(default)]
    pub array_path: Option<String>,
    /// JSON path of the reading's time (inside each array element when `array_path` is set).
    #[serde(default)]
    pub timestamp_path: Option<String>,
    /// Encoding of that time; readings without one are stamped at receipt.
    #[serde(default)]
    pub timestamp_format: Option<TimestampFormat>,
    /// Unit of plain values.
    #[serde(default)]
    pub unit: Option<String>,
    /// Placement metadata.
    #[serde(default)]
    pub floor: Option<String>,
    /// Placement metadata.
    #[serde(default)]
    pub room: Option<String>,
    /// Most sensors this subscription creates from topics (default 2000). Readings of further
    /// new sensors are dropped and counted; sensors it already has keep working.
    #[serde(default = "defaults::max_sensors")]
    pub max_sensors: usize,
}

/// One JSON field.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// Dotted path (`a.b.0.c`) or JSON pointer (`/a/b/0/c`).
    pub path: String,
    /// Name used in the sensor id; default: the last path segment.
    #[serde(default)]
    pub name: Option<String>,
    /// Unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// What it measures.
    #[serde(default)]
    pub kind: Option<SensorKind>,
    /// value = raw * scale + offset.
    #[serde(default = "defaults::scale")]
    pub scale: f64,
    /// See scale.
    #[serde(default)]
    pub offset: f64,
}

/// MQTT connections by name.
pub type MqttConnections = BTreeMap<String, MqttConfig>;

/// Every problem in `[sources.mqtt.*]`, with dotted key paths.
pub fn validate(conns: &MqttConnections, gateway_id: &str) -> Vec<ConfigError> {
    super::resolve(conns, gateway_id).err().unwrap_or_default()
}

pub(crate) mod defaults {
    use std::time::Duration;

    pub(crate) fn yes() -> bool {
        true
    }
    pub(crate) fn keep_alive() -> Duration {
        Duration::from_secs(30)
    }
    pub(crate) fn reconnect_max() -> Duration {
        Duration::from_secs(30)
    }
    pub(crate) fn max_inflight() -> u16 {
        100
    }
    pub(crate) fn max_message_size() -> crate::config::ByteSize {
        crate::config::ByteSize(1 << 20)
    }
    pub(crate) fn max_sensors() -> usize {
        2000
    }
    pub(crate) fn qos() -> u8 {
        1
    }
    pub(crate) fn format() -> super::Format {
        super::Format::Json
    }
    pub(crate) fn scale() -> f64 {
        1.0
    }
}
