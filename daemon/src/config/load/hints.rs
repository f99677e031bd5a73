//! The wording of load errors: how a table is named to people, the tidying of serde's messages
//! and the hint that goes with them.

/// How people name a table: `[alarms]`, or `the [[alarms.rule]] entry #2` inside an array.
fn table_name(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.iter().rposition(|p| p.parse::<usize>().is_ok()) {
        Some(i) => {
            let n = parts[i].parse::<usize>().unwrap_or(0) + 1;
            let mut name = format!("the [[{}]] entry #{n}", parts[..i].join("."));
            if i + 1 < parts.len() {
                name.push_str(&format!(", table {}", parts[i + 1..].join(".")));
            }
            name
        }
        None => format!("[{path}]"),
    }
}

pub(super) fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or(msg).trim()
}

pub(super) fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

pub(super) fn join(path: &[String], last: Option<&str>) -> String {
    let mut parts: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Some(l) = last {
        parts.push(l);
    }
    parts.join(".")
}

pub(super) fn tidy(message: &str) -> String {
    message.replace('`', "'")
}

/// Keys of Telegraf's modbus and mqtt_consumer plugins that Markoff's sources do not take as they
/// are (their meaning differs, or Markoff has another shape for them).
const TELEGRAF_ONLY: &[&str] = &[
    "measurement",
    "tags",
    "omit",
    "output",
    "configuration_type",
    "holding_registers",
    "input_registers",
    "coils",
    "discrete_inputs",
    "request",
    "metric",
    "workarounds",
    "topics",
    "data_type",
    "json_v2",
    "topic_tag",
];

pub(super) fn hint_for(message: &str, path: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or_default();
        let lower = unknown.to_ascii_lowercase();
        if ["password", "token", "secret", "api_key", "key"]
            .iter()
            .any(|w| lower.ends_with(w))
        {
            return Some(format!(
                "secrets never live in the config file: use {unknown}_env (environment variable), \
                 {unknown}_file (a file) or {unknown}_credential (systemd LoadCredential=)"
            ));
        }
        if TELEGRAF_ONLY.contains(&unknown) && path.starts_with("sources.") {
            return Some(format!(
                "'{unknown}' is Telegraf's and has no counterpart here: `markoff import telegraf \
                 FILE` translates a whole Telegraf config and reports what it cannot carry over"
            ));
        }
        let expected: Vec<&str> = rest
            .split("expected ")
            .nth(1)
            .map(|e| e.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let best = expected
            .iter()
            .map(|cand| (strsim::levenshtein(unknown, cand), *cand))
            .min();
        return match best {
            Some((d, cand)) if d <= 3 => Some(format!("did you mean '{cand}'?")),
            _ if !expected.is_empty() => Some(format!("valid keys here: {}", expected.join(", "))),
            _ => None,
        };
    }
    if let Some(field) = missing_field(message) {
        let table = path
            .rsplit_once('.')
            .map_or_else(|| "the top level".to_owned(), |(t, _)| table_name(t));
        return Some(format!(
            "add '{field} = ...' to {table}; see config/markoff.toml for its meaning"
        ));
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("duration")
        || lower.contains("time unit")
        || lower.contains("unknown unit") && !lower.contains("size")
    {
        return Some(
            "durations are strings with a unit: \"250ms\", \"5s\", \"2m\", \"1h\", \"30d\""
                .to_owned(),
        );
    }
    if lower.contains("size") {
        return Some("sizes are strings with a unit: \"512MiB\", \"2GiB\", \"100MB\"".to_owned());
    }
    if lower.contains("invalid socket address") {
        return Some("write an address with a port, e.g. \"127.0.0.1:9780\"".to_owned());
    }
    if lower.contains("unknown variant") {
        return Some("use one of the values listed in the message".to_owned());
    }
    None
}
