//! Pure decoding of MQTT messages into readings: topic matching and parsing, plain values,
//! JSON fields by path, arrays of readings, payload timestamps, and the presets for
//! zigbee2mqtt, Tasmota and Shelly Gen2. Any input gives readings or an error, never a panic.

use serde_json::Value;

use super::config::{Format, SubscriptionConfig, TimestampFormat};
use crate::model::{SensorKind, Timestamp};

/// Most leaves taken from one message (a bound against hostile payloads).
const MAX_LEAVES: usize = 256;
/// Deepest JSON nesting walked.
const MAX_DEPTH: usize = 8;

/// A compiled subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Topic filter.
    pub filter: String,
    /// Payload format.
    pub format: Format,
    /// Segment names (`None` = ignored).
    pub parsing: Vec<Option<String>>,
    /// Sensor id template.
    pub template: String,
    /// Explicit fields.
    pub fields: Vec<Field>,
    /// Array of readings.
    pub array_path: Option<Vec<String>>,
    /// Timestamp path.
    pub ts_path: Option<Vec<String>>,
    /// Timestamp format.
    pub ts_format: Option<TimestampFormat>,
    /// Unit of plain values.
    pub unit: Option<String>,
}

/// A compiled field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Path segments.
    pub path: Vec<String>,
    /// Name in the sensor id.
    pub name: String,
    /// Unit.
    pub unit: Option<String>,
    /// Kind.
    pub kind: Option<SensorKind>,
    /// Scale.
    pub scale: f64,
    /// Offset.
    pub offset: f64,
}

/// One value decoded from a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// Sensor id.
    pub sensor: String,
    /// Time from the payload, if it had one.
    pub ts: Option<Timestamp>,
    /// Value.
    pub value: f64,
    /// Unit, if known.
    pub unit: Option<String>,
    /// Kind, if known.
    pub kind: Option<SensorKind>,
}

/// Why a message gave no readings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not UTF-8 text.
    #[error("payload is not UTF-8 text")]
    NotText,
    /// A plain value that is neither a number nor a boolean word.
    #[error("payload {0:?} is not a number or a boolean word")]
    NotValue(String),
    /// Not valid JSON.
    #[error("payload is not valid JSON: {0}")]
    Json(String),
    /// JSON without any usable value.
    #[error("no numeric or boolean value in the payload")]
    Empty,
    /// A configured field is missing or not a number.
    #[error("field {0:?} is missing or not a number")]
    Field(String),
    /// `array_path` does not lead to an array.
    #[error("{0:?} is not an array")]
    NotArray(String),
}

/// Compiles a subscription (presets fill in their defaults).
pub fn compile(s: &SubscriptionConfig) -> Rule {
    let (preset_topic, preset_parsing, preset_template) = match s.format {
        Format::Zigbee2mqtt => (Some("zigbee2mqtt/+"), Some("_/device"), None),
        Format::Tasmota => (Some("tele/+/SENSOR"), Some("_/device/_"), None),
        Format::ShellyGen2 => (
            Some("+/status/+"),
            Some("device/_/component"),
            Some("{device}.{component}.{field}"),
        ),
        Format::Value | Format::Json => (None, None, None),
    };
    let filter = s
        .topic
        .clone()
        .or(preset_topic.map(str::to_owned))
        .unwrap_or_else(|| "#".to_owned());
    let parsing: Vec<Option<String>> = s
        .topic_parsing
        .as_deref()
        .or(preset_parsing)
        .map(|p| {
            p.split('/')
                .map(|seg| (seg != "_" && !seg.is_empty()).then(|| seg.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let has_device = parsing.iter().flatten().any(|n| n == "device");
    let template = s
        .sensor
        .clone()
        .or(preset_template.map(str::to_owned))
        .unwrap_or_else(|| match (s.format, has_device) {
            (Format::Value, true) => "{device}".to_owned(),
            (Format::Value, false) => "{topic}".to_owned(),
            (_, true) => "{device}.{field}".to_owned(),
            (_, false) => "{topic}.{field}".to_owned(),
        });
    let fields = s
        .fields
        .iter()
        .map(|f| {
            let path = split_path(&f.path);
            let name = f
                .name
                .clone()
                .unwrap_or_else(|| path.last().cloned().unwrap_or_default());
            Field {
                path,
                name,
                unit: f.unit.clone(),
                kind: f.kind,
                scale: f.scale,
                offset: f.offset,
            }
        })
        .collect();
    Rule {
        filter,
        format: s.format,
        parsing,
        template,
        fields,
        array_path: s.array_path.as_deref().map(split_path),
        ts_path: s.timestamp_path.as_deref().map(split_path),
        ts_format: s.timestamp_format,
        unit: s.unit.clone(),
    }
}

/// Template variables a rule can fill: its topic segment names, `topic` and `field`.
pub fn template_names(rule: &Rule) -> Vec<String> {
    let mut names: Vec<String> = rule.parsing.iter().flatten().cloned().collect();
    names.extend(["topic".to_owned(), "field".to_owned()]);
    names
}

/// `a.b.0.c` or `/a/b/0/c` into segments.
pub fn split_path(p: &str) -> Vec<String> {
    let p = p.trim();
    let parts: Vec<&str> = if let Some(rest) = p.strip_prefix('/') {
        rest.split('/').collect()
    } else {
        p.split('.').collect()
    };
    parts
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Whether an MQTT topic filter matches a topic.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Decodes one message.
///
/// # Errors
/// See [`PayloadError`].
pub fn decode(rule: &Rule, topic: &str, payload: &[u8]) -> Result<Vec<Decoded>, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotText)?;
    let vars = topic_vars(rule, topic);
    if rule.format == Format::Value {
        let value =
            word_value(text.trim()).ok_or_else(|| PayloadError::NotValue(truncate(text)))?;
        return Ok(vec![Decoded {
            sensor: expand(&rule.template, &vars, topic, "value"),
            ts: None,
            value,
            unit: rule.unit.clone(),
            kind: None,
        }]);
    }
    let json: Value = serde_json::from_str(text).map_err(|e| PayloadError::Json(e.to_string()))?;
    let mut out = Vec::new();
    match &rule.array_path {
        Some(path) => {
            let arr = lookup(&json, path)
                .and_then(Value::as_array)
                .ok_or_else(|| PayloadError::NotArray(path.join(".")))?;
            for item in arr.iter().take(MAX_LEAVES) {
                decode_object(rule, item, &vars, topic, &mut out)?;
            }
        }
        None => decode_object(rule, &json, &vars, topic, &mut out)?,
    }
    out.truncate(MAX_LEAVES);
    if out.is_empty() {
        return Err(PayloadError::Empty);
    }
    Ok(out)
}

fn decode_object(
    rule: &Rule,
    json: &Value,
    vars: &[(String, String)],
    topic: &str,
    out: &mut Vec<Decoded>,
) -> Result<(), PayloadError> {
    // Shelly Gen2 RPC events carry several components under params.
    if rule.format == Format::ShellyGen2
        && json.get("method").and_then(Value::as_str) == Some("NotifyStatus")
    {
        let Some(params) = json.get("params").and_then(Value::as_object) else {
            return Err(PayloadError::Empty);
        };
        let ts = params
            .get("ts")
            .and_then(|v| timestamp(v, Some(TimestampFormat::Unix)));
        for (component, body) in params {
            if body.is_object() {
                let mut vars = vars.to_vec();
                vars.retain(|(k, _)| k != "component");
                vars.push(("component".to_owned(), component.clone()));
                let before = out.len();
                flatten(rule, body, &vars, topic, out);
                for d in &mut out[before..] {
                    d.ts = ts;
                }
            }
        }
        return Ok(());
    }
    let ts = rule
        .ts_path
        .as_ref()
        .and_then(|p| lookup(json, p))
        .and_then(|v| timestamp(v, rule.ts_format));
    let before = out.len();
    if rule.fields.is_empty() {
        flatten(rule, json, vars, topic, out);
    } else {
        for f in &rule.fields {
            let raw = lookup(json, &f.path)
                .and_then(json_value)
                .ok_or_else(|| PayloadError::Field(f.path.join(".")))?;
            out.push(Decoded {
                sensor: expand(&rule.template, vars, topic, &f.name),
                ts: None,
                value: raw * f.scale + f.offset,
                unit: f.unit.clone(),
                kind: f.kind,
            });
        }
    }
    for d in &mut out[before..] {
        d.ts = ts;
    }
    Ok(())
}

/// Every numeric or boolean leaf, named by its path.
fn flatten(
    rule: &Rule,
    json: &Value,
    vars: &[(String, String)],
    topic: &str,
    out: &mut Vec<Decoded>,
) {
    let mut stack: Vec<(Vec<String>, &Value)> = vec![(Vec::new(), json)];
    while let Some((path, v)) = stack.pop() {
        if out.len() >= MAX_LEAVES {
            return;
        }
        match v {
            Value::Object(map) if path.len() < MAX_DEPTH => {
                for (k, child) in map.iter().rev() {
                    if skip_key(rule, &path, k) {
                        continue;
                    }
                    let mut p = path.clone();
                    p.push(k.clone());
                    stack.push((p, child));
                }
            }
            Value::Array(items) if path.len() < MAX_DEPTH => {
                for (i, child) in items.iter().enumerate().rev().take(MAX_LEAVES) {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    stack.push((p, child));
                }
            }
            leaf => {
                if path.is_empty() {
                    continue;
                }
                if let Some(value) = json_value(leaf) {
                    let name = field_name(rule, &path);
                    let leaf_name = path.last().map(String::as_str).unwrap_or_default();
                    out.push(Decoded {
                        sensor: expand(&rule.template, vars, topic, &name),
                        ts: None,
                        value,
                        unit: unit_of(rule.format, leaf_name, &path),
                        kind: None,
                    });
                }
            }
        }
    }
}

fn skip_key(rule: &Rule, path: &[String], key: &str) -> bool {
    if rule.ts_path.as_ref().is_some_and(|p| {
        p.len() == path.len() + 1 && p.starts_with(path) && p.last().is_some_and(|l| l == key)
    }) {
        return true;
    }
    match rule.format {
        Format::Zigbee2mqtt => path.is_empty() && matches!(key, "last_seen" | "update" | "elapsed"),
        Format::Tasmota => {
            path.is_empty() && matches!(key, "Time" | "TempUnit" | "PressureUnit" | "SpeedUnit")
        }
        Format::ShellyGen2 => path.is_empty() && key == "id",
        _ => false,
    }
}

fn field_name(rule: &Rule, path: &[String]) -> String {
    let joined = path.join(".");
    if rule.format == Format::Tasmota {
        joined.to_ascii_lowercase()
    } else {
        joined
    }
}

/// Units the presets know by field name.
fn unit_of(format: Format, leaf: &str, path: &[String]) -> Option<String> {
    let l = leaf.to_ascii_lowercase();
    let u = match format {
        Format::Zigbee2mqtt => match l.as_str() {
            "temperature" | "local_temperature" | "current_heating_setpoint" => "°C",
            "humidity" | "battery" => "%",
            "pressure" => "hPa",
            "voltage" => "mV",
            "illuminance" | "illuminance_lux" => "lx",
            "co2" => "ppm",
            "power" => "W",
            "energy" => "kWh",
            "current" => "A",
            _ => return None,
        },
        Format::Tasmota => match l.as_str() {
            "temperature" | "dewpoint" => "°C",
            "humidity" => "%",
            "pressure" => "hPa",
            "power" => "W",
            "voltage" => "V",
            "current" => "A",
            "total" | "today" | "yesterday" => "kWh",
            _ => return None,
        },
        Format::ShellyGen2 => match l.as_str() {
            "apower" => "W",
            "voltage" => "V",
            "current" => "A",
            "tc" => "°C",
            "rh" => "%",
            "total" if path.iter().any(|p| p == "aenergy") => "Wh",
            _ => return None,
        },
        _ => return None,
    };
    Some(u.to_owned())
}

fn topic_vars(rule: &Rule, topic: &str) -> Vec<(String, String)> {
    rule.parsing
        .iter()
        .zip(topic.split('/'))
        .filter_map(|(name, seg)| name.as_ref().map(|n| (n.clone(), seg.to_owned())))
        .collect()
}

/// Fills a sensor-id template and keeps the result to safe characters.
fn expand(template: &str, vars: &[(String, String)], topic: &str, field: &str) -> String {
    let mut s = template
        .replace("{topic}", &topic.replace('/', "."))
        .replace("{field}", field);
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('.')
        .to_owned()
}

fn lookup<'a>(json: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = json;
    for seg in path {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn json_value(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => word_value(s.trim()),
        _ => None,
    }
}

/// A number, or a boolean word as 1/0.
pub fn word_value(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "open" | "yes" | "wet" | "detected" | "active" | "occupied" => Some(1.0),
        "off" | "false" | "closed" | "no" | "dry" | "clear" | "inactive" | "unoccupied" => {
            Some(0.0)
        }
        _ => None,
    }
}

/// A payload timestamp; `None` when absent, unparsable or implausible (the reading then gets
/// the time of receipt).
fn timestamp(v: &Value, format: Option<TimestampFormat>) -> Option<Timestamp> {
    let ms = match (v, format) {
        (Value::Number(n), Some(TimestampFormat::UnixMs)) => n.as_f64()?,
        (Value::Number(n), Some(TimestampFormat::Unix)) => n.as_f64()? * 1000.0,
        (Value::Number(n), _) => {
            let x = n.as_f64()?;
            if x > 1e11 { x } else { x * 1000.0 }
        }
        (Value::String(s), Some(TimestampFormat::Unix)) => s.trim().parse::<f64>().ok()? * 1000.0,
        (Value::String(s), Some(TimestampFormat::UnixMs)) => s.trim().parse::<f64>().ok()?,
        (Value::String(s), _) => parse_rfc3339(s.trim())? as f64,
        _ => return None,
    };
    let ms = ms.round();
    // 2000-01-01 .. now + 1 day: anything else is a device clock that cannot be trusted.
    let now = Timestamp::now().as_millis() as f64;
    (ms.is_finite() && ms > 946_684_800_000.0 && ms < now + 86_400_000.0)
        .then_some(Timestamp(ms as i64))
}

/// RFC 3339 with `Z` or a numeric offset, to ms since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(t) = humantime::parse_rfc3339(s) {
        return Some(Timestamp::from_system(t).as_millis());
    }
    let cut = s.len().checked_sub(6)?;
    let (naive, offset) = (s.get(..cut)?, s.get(cut..)?);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i64 = offset.get(1..3)?.parse().ok()?;
    let m: i64 = offset.get(4..6)?.parse().ok()?;
    let t = humantime::parse_rfc3339_weak(naive).ok()?;
    Some(Timestamp::from_system(t).as_millis() - sign * (h * 3_600_000 + m * 60_000))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(toml: &str) -> Rule {
        compile(&toml::from_str::<SubscriptionConfig>(toml).unwrap())
    }

    fn pairs(d: &[Decoded]) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = d.iter().map(|d| (d.sensor.clone(), d.value)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn topic_filters() {
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("#", "x"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(!topic_matches("a/b", "a/c"));
    }

    #[test]
    fn plain_values_and_boolean_words() {
        let r = sub(
            "topic = \"home/+/temp\"\nformat = \"value\"\ntopic_parsing = \"_/device/_\"\nunit = \"°C\"",
        );
        let d = decode(&r, "home/kitchen/temp", b" 21.5\n").unwrap();
        assert_eq!(pairs(&d), [("kitchen".to_owned(), 21.5)]);
        assert_eq!(d[0].unit.as_deref(), Some("°C"));
        assert_eq!(decode(&r, "home/door/temp", b"OPEN").unwrap()[0].value, 1.0);
        assert!(matches!(
            decode(&r, "home/x/temp", b"warm"),
            Err(PayloadError::NotValue(_))
        ));
        assert!(matches!(
            decode(&r, "home/x/temp", b"NaN"),
            Err(PayloadError::NotValue(_))
        ));
        assert!(matches!(
            decode(&r, "home/x/temp", &[0xff, 0xfe]),
            Err(PayloadError::NotText)
        ));
    }

    #[test]
    fn json_fields_by_path_with_timestamp() {
        let r = sub(r#"
topic = "site/+/data"
topic_parsing = "_/device/_"
timestamp_path = "meta.ts"
timestamp_format = "unix_ms"
fields = [ { path = "env.t", name = "temperature", unit = "°C" }, { path = "/env/rh", name = "humidity" } ]
"#);
        let now = Timestamp::now().as_millis();
        let payload = format!(r#"{{"env":{{"t":21.5,"rh":40}},"meta":{{"ts":{now}}}}}"#);
        let d = decode(&r, "site/n7/data", payload.as_bytes()).unwrap();
        assert_eq!(
            pairs(&d),
            [
                ("n7.humidity".to_owned(), 40.0),
                ("n7.temperature".to_owned(), 21.5)
            ]
        );
        assert!(d.iter().all(|x| x.ts == Some(Timestamp(now))));
        assert!(matches!(
            decode(&r, "site/n7/data", br#"{"env":{"t":"hot"}}"#),
            Err(PayloadError::Field(_))
        ));
    }

    #[test]
    fn arrays_of_readings_and_implausible_times() {
        let r = sub(
            "topic = \"b/+\"\ntopic_parsing = \"_/device\"\narray_path = \"readings\"\ntimestamp_path = \"t\"\ntimestamp_format = \"unix\"\nfields = [{ path = \"v\", name = \"flow\" }]",
        );
        let now = Timestamp::now().as_millis() / 1000;
        let payload = format!(
            r#"{{"readings":[{{"t":{},"v":1}},{{"t":{},"v":2}},{{"t":5,"v":3}}]}}"#,
            now - 10,
            now
        );
        let d = decode(&r, "b/m1", payload.as_bytes()).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].ts, Some(Timestamp((now - 10) * 1000)));
        assert_eq!(d[2].ts, None, "1970 is not trusted: receipt time is used");
        assert!(matches!(
            decode(&r, "b/m1", br#"{"readings":5}"#),
            Err(PayloadError::NotArray(_))
        ));
    }

    #[test]
    fn rfc3339_offsets() {
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T03:00:00+03:00"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.5-01:00"),
            Some(1_767_229_200_500)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn zigbee2mqtt_preset() {
        let r = sub("format = \"zigbee2mqtt\"");
        assert_eq!(r.filter, "zigbee2mqtt/+");
        let d = decode(&r, "zigbee2mqtt/bathroom leak", br#"{"battery":97,"water_leak":true,"linkquality":120,"last_seen":"2026-01-01T00:00:00Z","state":"OFF","update":{"state":"idle"}}"#).unwrap();
        assert_eq!(
            pairs(&d),
            [
                ("bathroom_leak.battery".to_owned(), 97.0),
                ("bathroom_leak.linkquality".to_owned(), 120.0),
                ("bathroom_leak.state".to_owned(), 0.0),
                ("bathroom_leak.water_leak".to_owned(), 1.0)
            ]
        );
        assert_eq!(
            d.iter()
                .find(|x| x.sensor.ends_with("battery"))
                .unwrap()
                .unit
                .as_deref(),
            Some("%")
        );
    }

    #[test]
    fn tasmota_preset() {
        let r = sub("format = \"tasmota\"");
        let d = decode(&r, "tele/kitchen/SENSOR", br#"{"Time":"2026-01-01T10:00:00","ENERGY":{"Total":12.5,"Power":230,"TotalStartTime":"2025-01-01"},"AM2301":{"Temperature":21.3,"Humidity":45},"TempUnit":"C"}"#).unwrap();
        assert_eq!(
            pairs(&d),
            [
                ("kitchen.am2301.humidity".to_owned(), 45.0),
                ("kitchen.am2301.temperature".to_owned(), 21.3),
                ("kitchen.energy.power".to_owned(), 230.0),
                ("kitchen.energy.total".to_owned(), 12.5)
            ]
        );
    }

    #[test]
    fn shelly_gen2_status_and_events() {
        let r = sub("format = \"shelly_gen2\"");
        let d = decode(&r, "plug1/status/switch:0", br#"{"id":0,"output":true,"apower":12.5,"voltage":231,"aenergy":{"total":1000.5},"temperature":{"tC":40.1}}"#).unwrap();
        assert_eq!(
            pairs(&d),
            [
                ("plug1.switch_0.aenergy.total".to_owned(), 1000.5),
                ("plug1.switch_0.apower".to_owned(), 12.5),
                ("plug1.switch_0.output".to_owned(), 1.0),
                ("plug1.switch_0.temperature.tC".to_owned(), 40.1),
                ("plug1.switch_0.voltage".to_owned(), 231.0),
            ]
        );
        let ts = Timestamp::now().as_millis() / 1000;
        let ev = format!(
            r#"{{"method":"NotifyStatus","params":{{"ts":{ts},"switch:0":{{"apower":3}}}}}}"#
        );
        let r2 =
            sub("format = \"shelly_gen2\"\ntopic = \"+/events/rpc\"\ntopic_parsing = \"device\"");
        let d = decode(&r2, "plug1/events/rpc", ev.as_bytes()).unwrap();
        assert_eq!(pairs(&d), [("plug1.switch_0.apower".to_owned(), 3.0)]);
        assert_eq!(d[0].ts, Some(Timestamp(ts * 1000)));
    }

    #[test]
    fn hostile_json_is_bounded() {
        let r = sub("format = \"json\"\ntopic = \"x\"");
        let big: String = format!("[{}]", vec!["1"; 10_000].join(","));
        assert_eq!(decode(&r, "x", big.as_bytes()).unwrap().len(), MAX_LEAVES);
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(decode(&r, "x", deep.as_bytes()).is_err());
        assert!(matches!(decode(&r, "x", b"{}"), Err(PayloadError::Empty)));
        assert!(matches!(decode(&r, "x", b"{"), Err(PayloadError::Json(_))));
    }
}
