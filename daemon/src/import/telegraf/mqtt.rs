//! `[[inputs.mqtt_consumer]]`: brokers, credentials, one subscription per topic, and the
//! `value`, `json` and `json_v2` data formats with `topic_parsing`.

use std::time::Duration;

use serde_json::Value;

use super::super::Notes;
use super::super::emit::{Doc, Mqtt, Subscription, clean_name, unique};
use super::super::node::Node;
use super::{Names, env_reference, string};

/// Translates one `[[inputs.mqtt_consumer]]`.
pub(super) fn translate(p: &Node<'_>, doc: &mut Doc, names: &mut Names, notes: &mut Notes) {
    let mut m = Mqtt::default();
    for server in strings(p, "servers", notes) {
        let scheme = server.split("://").next().unwrap_or_default();
        if matches!(scheme, "tcp" | "mqtt" | "ssl" | "tls" | "mqtts") {
            m.servers.push(server);
        } else {
            notes.dropped(
                p.at("servers"),
                "servers",
                &string(&server),
                "only tcp://, mqtt://, ssl://, tls:// and mqtts:// brokers (no WebSocket)",
            );
        }
    }
    let topics = strings(p, "topics", notes);
    if m.servers.is_empty() || topics.is_empty() {
        notes.dropped(
            p.place.clone(),
            "[[inputs.mqtt_consumer]]",
            &Value::Null,
            "no usable server or no topic",
        );
        p.finish(notes, "part of a plugin that could not be carried over");
        return;
    }
    let qos: u8 = p.uint("qos", notes).unwrap_or(0);
    if qos == 0 {
        notes.changed(
            p.at("qos"),
            "qos",
            &Value::from(0),
            "QoS 0 carried over (Telegraf's default): messages sent while the gateway is away \
             are lost; qos = 1 with a persistent session loses nothing",
        );
    }
    m.persistent_session = Some(p.bool("persistent_session", notes).unwrap_or(false));
    m.client_id = p
        .str("client_id", notes)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    m.username = p
        .str("username", notes)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    if let Some(pw) = p.str("password", notes) {
        match env_reference(pw) {
            Some(var) => m.password_env = Some(var.to_owned()),
            None => notes.dropped(
                p.at("password"),
                "password",
                &string("(hidden)"),
                "a password never goes in Markoff's config file: put it in a file and set \
                 password_file, or password_credential with the packaged unit",
            ),
        }
    }
    m.ca_file = p.str("tls_ca", notes).map(str::to_owned);
    if let Some(k) = p.uint::<u64>("keep_alive", notes).filter(|k| *k >= 5) {
        m.keep_alive = Some(Duration::from_secs(k));
    }
    for key in [
        "tls_cert",
        "tls_key",
        "insecure_skip_verify",
        "tls_server_name",
    ] {
        if let Some(v) = p.get(key) {
            notes.dropped(
                p.at(key),
                key,
                v,
                "not supported: TLS here verifies the broker against ca_file (or the public \
                 roots) and sends no client certificate",
            );
        }
    }
    let format = p.str("data_format", notes).unwrap_or("influx");
    let parsings = p.tables("topic_parsing", notes);
    let mut base = Subscription {
        qos,
        ..Subscription::default()
    };
    match format {
        "value" => {
            base.format = "value";
            if let Some(t) = p.str("data_type", notes)
                && t == "string"
            {
                notes.dropped(
                    p.at("data_type"),
                    "data_type",
                    &string(t),
                    "readings here are numbers (or boolean words read as 0/1)",
                );
            }
        }
        "json" => {
            base.format = "json";
            json_v1(p, &mut base, notes);
        }
        "json_v2" => {
            base.format = "json";
            for j in p.tables("json_v2", notes) {
                json_v2(&j, &mut base, notes);
            }
        }
        other => {
            notes.dropped(
                p.at("data_format"),
                "data_format",
                &string(other),
                "only the json, json_v2 and value formats are carried over",
            );
            p.finish(notes, "part of a plugin that could not be carried over");
            return;
        }
    }
    for topic in topics {
        let mut s = base.clone();
        s.topic.clone_from(&topic);
        if let Some(entry) = parsings
            .iter()
            .find(|e| e.get("topic").and_then(Value::as_str) == Some(&topic))
        {
            topic_parsing(entry, &mut s, notes);
        }
        m.subscriptions.push(s);
    }
    for entry in &parsings {
        entry.finish(
            notes,
            "a topic_parsing entry whose topic is none of the topics",
        );
    }
    p.finish(
        notes,
        "a Telegraf setting with no counterpart here (delivery is acknowledged after the \
         commit; readings carry no tags)",
    );
    let host = m.servers[0]
        .split("://")
        .nth(1)
        .and_then(|h| h.split(':').next())
        .unwrap_or("broker");
    let name = unique(
        clean_name(&format!("mqtt_{host}"), "mqtt"),
        &mut names.connections,
    );
    doc.mqtt.insert(name, m);
}

fn strings(p: &Node<'_>, key: &str, notes: &mut Notes) -> Vec<String> {
    match p.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| {
                let s = v.as_str().map(str::to_owned);
                if s.is_none() {
                    notes.dropped(p.at(key), key, v, "expected a string");
                }
                s
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => {
            notes.dropped(p.at(key), key, other, "expected a list of strings");
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// A GJSON path that is a plain dotted path here (`a.b.0.c`); `None` for queries.
fn plain_path(path: &str) -> Option<String> {
    let ok = !path.is_empty()
        && path.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        });
    ok.then(|| path.to_owned())
}

fn timestamp(
    node: &Node<'_>,
    path_key: &str,
    format_key: &str,
    s: &mut Subscription,
    notes: &mut Notes,
) {
    let Some(path) = node.str(path_key, notes) else {
        node.consume(format_key);
        return;
    };
    let Some(path) = plain_path(path) else {
        notes.dropped(
            node.at(path_key),
            path_key,
            &string(path),
            "a GJSON query, not a plain path: readings are stamped when they arrive",
        );
        return;
    };
    let fmt = node.str(format_key, notes).unwrap_or("");
    let format = match fmt {
        "unix" => "unix",
        "unix_ms" => "unix_ms",
        "2006-01-02T15:04:05Z07:00" | "2006-01-02T15:04:05.999999999Z07:00" | "rfc3339" => {
            "rfc3339"
        }
        other => {
            notes.dropped(
                node.at(format_key),
                format_key,
                &string(other),
                "only unix, unix_ms and RFC 3339 times are read: readings are stamped when they \
                 arrive",
            );
            return;
        }
    };
    s.timestamp_path = Some(path);
    s.timestamp_format = Some(format);
}

/// The `json` data format: every numeric field, an optional query and time key.
fn json_v1(p: &Node<'_>, s: &mut Subscription, notes: &mut Notes) {
    notes.changed(
        p.at("data_format"),
        "data_format",
        &string("json"),
        "every numeric or boolean leaf becomes a sensor; nested keys are joined with '.' where \
         Telegraf joins them with '_'",
    );
    if let Some(q) = p.str("json_query", notes).filter(|q| !q.is_empty()) {
        match plain_path(q) {
            Some(path) => {
                notes.changed(
                    p.at("json_query"),
                    "json_query",
                    &string(q),
                    "read as array_path: each element of that array is one reading (a single \
                     object there is not selected: its leaves are read from the whole payload)",
                );
                s.array_path = Some(path);
            }
            None => notes.dropped(
                p.at("json_query"),
                "json_query",
                &string(q),
                "a GJSON query, not a plain path",
            ),
        }
    }
    timestamp(p, "json_time_key", "json_time_format", s, notes);
    if let Some(tz) = p
        .str("json_timezone", notes)
        .filter(|t| !matches!(*t, "" | "UTC"))
    {
        notes.dropped(
            p.at("json_timezone"),
            "json_timezone",
            &string(tz),
            "times without a zone are read as UTC",
        );
    }
    for key in [
        "tag_keys",
        "json_string_fields",
        "json_name_key",
        "json_strict",
    ] {
        if let Some(v) = p.get(key) {
            notes.dropped(p.at(key), key, v, "readings are numbers without tags here");
        }
    }
}

/// One `[[json_v2]]` entry: fields, objects and the time.
fn json_v2(j: &Node<'_>, s: &mut Subscription, notes: &mut Notes) {
    if s.timestamp_path.is_none() {
        timestamp(j, "timestamp_path", "timestamp_format", s, notes);
    }
    for f in j.tables("field", notes) {
        let Some(path) = f.str("path", notes) else {
            continue;
        };
        let Some(plain) = plain_path(path) else {
            notes.dropped(
                f.at("path"),
                "path",
                &string(path),
                "a GJSON query, not a plain path",
            );
            continue;
        };
        let name = f
            .str("rename", notes)
            .or_else(|| f.str("name", notes))
            .map(|n| clean_name(n, "field"));
        if let Some(t) = f.str("type", notes).filter(|t| *t == "string") {
            notes.dropped(
                f.at("type"),
                "type",
                &string(t),
                "readings here are numbers",
            );
            continue;
        }
        if f.bool("optional", notes) == Some(true) {
            notes.changed(
                f.at("optional"),
                "optional",
                &Value::Bool(true),
                "a message without this field is dropped whole here (counted as malformed)",
            );
        }
        f.finish(notes, "not a key of a json_v2 field");
        s.fields.push((plain, name));
    }
    for o in j.tables("object", notes) {
        let Some(path) = o.str("path", notes) else {
            continue;
        };
        let Some(plain) = plain_path(path.trim_end_matches(".#").trim_end_matches("|@this")) else {
            notes.dropped(
                o.at("path"),
                "path",
                &string(path),
                "a GJSON query, not a plain path",
            );
            continue;
        };
        notes.changed(
            o.at("path"),
            "path",
            &string(path),
            "read as array_path: each element of that array is one reading",
        );
        s.array_path = Some(plain);
        if let Some(Value::Array(keys)) = o.get("included_keys") {
            let renames = o.table("renames");
            for k in keys.iter().filter_map(Value::as_str) {
                let name = renames
                    .as_ref()
                    .and_then(|r| r.str(k, notes))
                    .map(|n| clean_name(n, "field"));
                s.fields.push((k.to_owned(), name));
            }
            if let Some(r) = renames {
                r.finish(notes, "a rename of a key that is not included");
            }
        }
        o.finish(
            notes,
            "not carried: readings are numbers without tags, named by their key",
        );
    }
    for t in j.tables("tag", notes) {
        t.finish(notes, "readings here carry no tags");
    }
    j.finish(
        notes,
        "not carried: a json_v2 setting with no counterpart (no measurements here)",
    );
}

/// A `[[topic_parsing]]` entry: the topic's levels named, and the sensor id made of them.
fn topic_parsing(entry: &Node<'_>, s: &mut Subscription, notes: &mut Notes) {
    let levels = s.topic.split('/').count();
    let split = |key: &str, notes: &mut Notes| -> Vec<String> {
        entry
            .str(key, notes)
            .map(|p| p.split('/').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let measurement = split("measurement", notes);
    let tags = split("tags", notes);
    let fields = split("fields", notes);
    let mut parts = Vec::new();
    for i in 0..levels {
        let tag = tags.get(i).filter(|t| *t != "_" && !t.is_empty());
        let named = match tag {
            Some(t) => Some(clean_name(t, "level")),
            None if measurement
                .get(i)
                .is_some_and(|m| m != "_" && !m.is_empty()) =>
            {
                Some("measurement".to_owned())
            }
            None => None,
        };
        if fields.get(i).is_some_and(|f| f != "_" && !f.is_empty()) {
            notes.dropped(
                entry.at("fields"),
                "fields",
                &string(&fields.join("/")),
                "a topic level as a field value is not read: sensor ids name the topic levels",
            );
        }
        parts.push(named);
    }
    entry.consume("topic");
    if let Some(t) = entry.get("types") {
        notes.dropped(
            entry.at("types"),
            "types",
            t,
            "topic levels name sensors here; they are not values",
        );
    }
    entry.finish(notes, "not a key of a topic_parsing entry");
    let names: Vec<&String> = parts.iter().flatten().collect();
    if names.is_empty() {
        return;
    }
    s.topic_parsing = Some(
        parts
            .iter()
            .map(|p| p.as_deref().unwrap_or("_"))
            .collect::<Vec<_>>()
            .join("/"),
    );
    let mut template: Vec<String> = names.iter().map(|n| format!("{{{n}}}")).collect();
    if s.format == "json" {
        template.push("{field}".to_owned());
    }
    s.sensor = Some(template.join("."));
}
