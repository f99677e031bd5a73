//! Telegraf configs: the `[agent]` poll interval and host name, `[[inputs.modbus]]` (see
//! [`modbus`]) and `[[inputs.mqtt_consumer]]` (see [`mqtt`]). Every other plugin and setting is
//! reported as not carried over.

mod fields;
mod modbus;
mod mqtt;

use std::time::Duration;

use serde_json::Value;

use super::emit::Doc;
use super::node::Node;
use super::{ImportError, Notes};

/// Telegraf's default `[agent] interval`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Names already given, so that every connection and device name is unique.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// Connection names (Modbus and MQTT).
    pub(super) connections: Vec<String>,
    /// Device names, across all connections (sensor ids start with them).
    pub(super) devices: Vec<String>,
}

/// Translates a Telegraf config.
pub(super) fn translate(text: &str, what: &str, notes: &mut Notes) -> Result<Doc, ImportError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ImportError::Syntax {
        what: what.to_owned(),
        format: "TOML",
        message: e.to_string(),
    })?;
    let root = serde_json::to_value(table).map_err(|e| ImportError::Syntax {
        what: what.to_owned(),
        format: "TOML",
        message: e.to_string(),
    })?;
    let Some(root) = Node::new("", &root) else {
        return Err(ImportError::Syntax {
            what: what.to_owned(),
            format: "TOML",
            message: "not a table".to_owned(),
        });
    };
    let mut doc = Doc::default();
    let mut interval = DEFAULT_INTERVAL;
    if let Some(agent) = root.table("agent") {
        if let Some(i) = agent.go_duration("interval", notes) {
            interval = i;
        }
        if let Some(host) = agent.str("hostname", notes).filter(|h| !h.is_empty()) {
            doc.gateway_id = gateway_id(host);
        }
        agent.finish(
            notes,
            "Telegraf's own agent setting (batching, flushing, logging): Markoff commits every \
             reading to its buffer and has no counterpart",
        );
    }
    let mut names = Names::default();
    if let Some(inputs) = root.table("inputs") {
        for plugin in inputs.keys() {
            match plugin.as_str() {
                "modbus" => {
                    for (i, p) in inputs.tables("modbus", notes).iter().enumerate() {
                        modbus::translate(p, i, interval, &mut doc, &mut names, notes);
                    }
                }
                "mqtt_consumer" => {
                    for p in inputs.tables("mqtt_consumer", notes) {
                        mqtt::translate(&p, &mut doc, &mut names, notes);
                    }
                }
                _ => {}
            }
        }
        inputs.finish(
            notes,
            "an input plugin Markoff has no counterpart for (it reads Modbus and MQTT)",
        );
    }
    for section in ["outputs", "processors", "aggregators"] {
        if root.has(section) {
            let why = format!(
                "Telegraf {section}: Markoff commits every reading to its own buffer and syncs \
                 it to the central PostgreSQL ([sync]); nothing is forwarded elsewhere"
            );
            if let Some(t) = root.table(section) {
                t.finish(notes, &why);
            }
        }
    }
    root.finish(
        notes,
        "not a Telegraf section Markoff has a counterpart for",
    );
    Ok(doc)
}

/// A Markoff gateway id from a host name: ASCII letters, digits, `-`, `_` and `.`.
fn gateway_id(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `${VAR}` or `$VAR`: the name of the environment variable Telegraf substitutes.
fn env_reference(value: &str) -> Option<&str> {
    let name = value
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// Notes a Telegraf `tags` table: `floor` and `room` become the device's placement; the rest is
/// reported.
fn placement(
    node: &Node<'_>,
    floor: &mut Option<String>,
    room: &mut Option<String>,
    notes: &mut Notes,
) {
    let Some(tags) = node.table("tags") else {
        return;
    };
    for key in ["floor", "room"] {
        if let Some(v) = tags.str(key, notes) {
            let slot = if key == "floor" {
                &mut *floor
            } else {
                &mut *room
            };
            *slot = Some(v.to_owned());
        }
    }
    tags.finish(
        notes,
        "a tag: readings here carry no tags (sensor ids are <device>.<point>; the tags floor and \
         room become the device's placement)",
    );
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_references() {
        assert_eq!(env_reference("${MQTT_PASSWORD}"), Some("MQTT_PASSWORD"));
        assert_eq!(env_reference("$PASS"), Some("PASS"));
        assert_eq!(env_reference("secret"), None);
        assert_eq!(env_reference("${A B}"), None);
        assert_eq!(gateway_id("plant 7.local"), "plant-7.local");
    }
}
