//! MQTT acquisition with at-least-once delivery into the buffer.
//!
//! Owns: broker connections (rumqttc, MQTT 3.1.1 or 5, persistent session, failover servers,
//! TLS, last will),
//! subscriptions, payload decoding, and the rule that a message is acknowledged to the broker only
//! after the readings it produced are committed to SQLite. Does not own: storage.
//!
//! Layout: [`config`] (what users write), [`decode`] (pure payload decoding and the presets),
//! [`client`] (the connection task and the commit-then-ack processor), `session` (the MQTT
//! 3.1.1 and MQTT 5 clients behind one shape), [`limits`] (how many sensors topics may create).

pub mod client;
pub mod config;
pub mod decode;
pub mod limits;
mod session;

use std::path::PathBuf;
use std::time::Duration;

use config::MqttConnections;
pub use config::Protocol;
use decode::Rule;

use crate::config::secret::SecretRef;

use crate::config::error::ConfigError;

/// A broker address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS.
    pub tls: bool,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            if self.tls { "ssl" } else { "tcp" },
            self.host,
            self.port
        )
    }
}

impl Server {
    /// Parses `tcp://host:1883`, `mqtt://host`, `ssl://host:8883`, `tls://host`, `mqtts://host`.
    ///
    /// # Errors
    /// A message for the config report.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = url
            .strip_prefix("tcp://")
            .or_else(|| url.strip_prefix("mqtt://"))
        {
            (false, r)
        } else if let Some(r) = url
            .strip_prefix("ssl://")
            .or_else(|| url.strip_prefix("tls://"))
            .or_else(|| url.strip_prefix("mqtts://"))
        {
            (true, r)
        } else {
            return Err(format!(
                "{url:?} must start with tcp://, mqtt://, ssl://, tls:// or mqtts://"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port in {url:?}"))?,
            ),
            None => (rest.to_owned(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        Ok(Self { host, port, tls })
    }
}

/// A subscription ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// Compiled decoding rule (its `filter` is the topic filter).
    pub rule: Rule,
    /// QoS.
    pub qos: u8,
    /// Placement metadata for the sensors it creates.
    pub floor: Option<String>,
    /// Placement metadata.
    pub room: Option<String>,
    /// Most sensors it creates from topics.
    pub max_sensors: usize,
}

/// The largest remaining length of an MQTT packet (the protocol's limit, 256 MiB - 1): the
/// client reads every packet up to it, so that an oversized message is dropped by the gateway
/// (and acknowledged) instead of breaking the connection.
pub const MQTT_MAX_PACKET: usize = 268_435_455;

/// The smallest `max_message_size` of an MQTT 5 connection, where it is the Maximum Packet Size
/// of every packet the broker sends.
pub const MQTT5_MIN_PACKET: usize = 256;

/// Default of `[sources] mqtt_max_sensors`: sensors created from MQTT topics in the gateway.
pub const DEFAULT_GATEWAY_MAX_SENSORS: usize = 5000;

/// A resolved MQTT connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Mqtt {
    /// Name (config key).
    pub name: String,
    /// Brokers in failover order.
    pub servers: Vec<Server>,
    /// Client id.
    pub client_id: String,
    /// Keep the session.
    pub persistent_session: bool,
    /// User name.
    pub username: Option<String>,
    /// Where the password comes from (resolved when connecting).
    pub password: SecretRef,
    /// CA file for TLS.
    pub ca_file: Option<PathBuf>,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// Reconnect backoff cap.
    pub reconnect_max: Duration,
    /// Status topic for online/offline, if any.
    pub status_topic: Option<String>,
    /// In-flight limit.
    pub max_inflight: u16,
    /// Largest payload stored; larger messages are dropped, acknowledged and counted.
    pub max_message_size: usize,
    /// `[sources] mqtt_max_sensors`, for a connection run on its own (`client::run`); the
    /// daemon shares one cap between its connections (`client::run_with_cap`).
    pub gateway_max_sensors: usize,
    /// Protocol version.
    pub protocol: Protocol,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
}

/// Resolves and validates the MQTT connections.
///
/// # Errors
/// Every problem, with dotted key paths.
pub fn resolve(conns: &MqttConnections, gateway_id: &str) -> Result<Vec<Mqtt>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let err = |errors: &mut Vec<ConfigError>, path: String, message: String, hint: Option<&str>| {
        errors.push(ConfigError {
            path,
            position: None,
            message,
            hint: hint.map(str::to_owned),
        });
    };
    for (name, c) in conns {
        let base = format!("sources.mqtt.{name}");
        if !c.enabled {
            continue;
        }
        let before = errors.len();
        if c.servers.is_empty() {
            err(
                &mut errors,
                format!("{base}.servers"),
                "at least one broker is needed".into(),
                Some("servers = [\"tcp://127.0.0.1:1883\"]"),
            );
        }
        let mut servers = Vec::new();
        for (i, s) in c.servers.iter().enumerate() {
            match Server::parse(s) {
                Ok(s) => servers.push(s),
                Err(m) => err(&mut errors, format!("{base}.servers.{i}"), m, None),
            }
        }
        let password = SecretRef::from_keys(
            c.password_env.as_deref(),
            c.password_file.as_deref(),
            c.password_credential.as_deref(),
        );
        if let Some(e) = password.check(&base, "password", false) {
            errors.push(e);
        }
        if c.keep_alive < Duration::from_secs(5) {
            err(
                &mut errors,
                format!("{base}.keep_alive"),
                "must be at least 5s".into(),
                None,
            );
        }
        if c.max_inflight == 0 {
            err(
                &mut errors,
                format!("{base}.max_inflight"),
                "must be at least 1".into(),
                None,
            );
        }
        let max_message_size = usize::try_from(c.max_message_size.bytes()).unwrap_or(usize::MAX);
        if max_message_size == 0 || max_message_size > MQTT_MAX_PACKET {
            err(
                &mut errors,
                format!("{base}.max_message_size"),
                format!("must be between 1 byte and {MQTT_MAX_PACKET} bytes (the MQTT limit)"),
                Some("max_message_size = \"1MiB\""),
            );
        }
        if c.protocol == Protocol::V5 && max_message_size < MQTT5_MIN_PACKET && max_message_size > 0
        {
            err(
                &mut errors,
                format!("{base}.max_message_size"),
                format!(
                    "must be at least {MQTT5_MIN_PACKET} bytes with protocol = \"5\": it is the \
                     Maximum Packet Size announced to the broker, and the broker's own packets \
                     (CONNACK, SUBACK) must fit in it"
                ),
                Some("max_message_size = \"1KiB\""),
            );
        }
        if c.subscriptions.is_empty() {
            err(
                &mut errors,
                format!("{base}.subscriptions"),
                "no subscriptions".into(),
                Some("add [[sources.mqtt.<name>.subscriptions]] with a topic"),
            );
        }
        let mut subs = Vec::new();
        for (i, s) in c.subscriptions.iter().enumerate() {
            let path = format!("{base}.subscriptions.{i}");
            if s.qos > 2 {
                err(
                    &mut errors,
                    format!("{path}.qos"),
                    "must be 0, 1 or 2".into(),
                    None,
                );
            }
            if s.max_sensors == 0 {
                err(
                    &mut errors,
                    format!("{path}.max_sensors"),
                    "must be at least 1".into(),
                    None,
                );
            }
            let rule = decode::compile(s);
            if !valid_filter(&rule.filter) {
                err(
                    &mut errors,
                    format!("{path}.topic"),
                    format!("invalid topic filter {:?}", rule.filter),
                    Some("'+' matches one level, '#' the rest and only at the end"),
                );
            }
            let names = decode::template_names(&rule);
            for var in template_vars(&rule.template) {
                if !names.contains(&var) {
                    err(
                        &mut errors,
                        format!("{path}.sensor"),
                        format!("{{{var}}} is not a topic_parsing name, {{topic}} or {{field}}"),
                        None,
                    );
                }
            }
            subs.push(Subscription {
                rule,
                qos: s.qos,
                floor: s.floor.clone(),
                room: s.room.clone(),
                max_sensors: s.max_sensors,
            });
        }
        if errors.len() > before {
            continue;
        }
        let status_topic = match c.status_topic.as_deref() {
            Some("") => None,
            Some(t) => Some(t.to_owned()),
            None => Some(format!("markoff/{gateway_id}/status")),
        };
        out.push(Mqtt {
            name: name.clone(),
            servers,
            client_id: c
                .client_id
                .clone()
                .unwrap_or_else(|| format!("markoff-{gateway_id}-{name}")),
            persistent_session: c.persistent_session,
            username: c.username.clone(),
            password,
            ca_file: c.ca_file.clone(),
            keep_alive: c.keep_alive,
            reconnect_max: c.reconnect_max.max(Duration::from_secs(1)),
            status_topic,
            max_inflight: c.max_inflight,
            max_message_size,
            protocol: c.protocol,
            gateway_max_sensors: DEFAULT_GATEWAY_MAX_SENSORS,
            subscriptions: subs,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn valid_filter(f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    let levels: Vec<&str> = f.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == levels.len() - 1,
        "+" => true,
        other => !other.contains(['#', '+']),
    })
}

fn template_vars(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push(rest[start + 1..start + end].to_owned());
        rest = &rest[start + end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            Server::parse("tcp://127.0.0.1:1883").unwrap(),
            Server {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(Server::parse("mqtts://broker").unwrap().port, 8883);
        assert!(Server::parse("http://x").is_err());
    }

    #[test]
    fn size_and_sensor_limits_are_checked() {
        let text = r#"
[gateway]
id = "t"
[sources]
mqtt_max_sensors = 0
[sources.mqtt.bus]
servers = ["tcp://127.0.0.1:1883"]
max_message_size = "300MiB"
[[sources.mqtt.bus.subscriptions]]
topic = "a/+"
max_sensors = 0
"#;
        let errors = crate::config::parse_str(text, std::path::Path::new("t.toml"))
            .unwrap_err()
            .errors;
        let mut found: Vec<(&str, usize)> = errors
            .iter()
            .map(|e| (e.path.as_str(), e.position.map_or(0, |p| p.0)))
            .collect();
        found.sort_unstable();
        assert_eq!(
            found,
            [
                ("sources.mqtt.bus.max_message_size", 8),
                ("sources.mqtt.bus.subscriptions.0.max_sensors", 11),
                ("sources.mqtt_max_sensors", 5),
            ],
            "{errors:?}"
        );

        let ok = text
            .replace("mqtt_max_sensors = 0", "")
            .replace("\"300MiB\"", "\"2MiB\"")
            .replace("max_sensors = 0", "");
        let cfg = crate::config::parse_str(&ok, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(cfg.sources.mqtt_max_sensors, DEFAULT_GATEWAY_MAX_SENSORS);
        let m = resolve(&cfg.sources.mqtt, "t").unwrap().remove(0);
        assert_eq!(m.max_message_size, 2 << 20);
        assert_eq!(m.subscriptions[0].max_sensors, 2000);
    }

    #[test]
    fn protocol_is_checked() {
        let text = |protocol: &str, size: &str| {
            format!(
                "[gateway]\nid = \"t\"\n[sources.mqtt.bus]\nservers = [\"tcp://127.0.0.1:1883\"]\n\
                 protocol = {protocol}\nmax_message_size = \"{size}\"\n\
                 [[sources.mqtt.bus.subscriptions]]\ntopic = \"a/+\"\n"
            )
        };
        let parse = |t: String| crate::config::parse_str(&t, std::path::Path::new("t.toml"));
        let resolved = |t: String| resolve(&parse(t).unwrap().sources.mqtt, "t").unwrap();
        assert_eq!(
            resolved(text("\"3.1.1\"", "1MiB"))[0].protocol,
            Protocol::V311
        );
        assert_eq!(resolved(text("\"5\"", "1MiB"))[0].protocol, Protocol::V5);
        assert_eq!(resolved(text("5", "1MiB"))[0].protocol, Protocol::V5);
        let default = text("\"3.1.1\"", "1MiB").replace("protocol = \"3.1.1\"\n", "");
        assert_eq!(resolved(default)[0].protocol, Protocol::V311);
        // 3.1.1 takes any size; under 5 it is the Maximum Packet Size of every packet.
        assert_eq!(resolved(text("\"3.1.1\"", "16B"))[0].max_message_size, 16);
        for (protocol, size, line, message) in [
            (
                "\"4\"",
                "1MiB",
                5,
                "unsupported MQTT protocol version \"4\"",
            ),
            ("3", "1MiB", 5, "unsupported MQTT protocol version 3"),
            (
                "\"5\"",
                "255B",
                6,
                "must be at least 256 bytes with protocol = \"5\"",
            ),
        ] {
            let errors = parse(text(protocol, size)).unwrap_err().errors;
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].position.map(|p| p.0), Some(line), "{errors:?}");
            assert!(errors[0].message.contains(message), "{errors:?}");
        }
    }

    #[test]
    fn filters_and_templates() {
        assert!(valid_filter("a/+/b/#"));
        assert!(!valid_filter("a/#/b"));
        assert!(!valid_filter("a/b+"));
        assert_eq!(template_vars("{device}.{field}"), ["device", "field"]);
    }
}
