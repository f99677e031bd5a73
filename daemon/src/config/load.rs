//! Loading a config file and reporting **every** mistake in it with file:line:col and a hint.
//!
//! serde stops at the first error, so the loader works on the spanned TOML tree: it deserializes,
//! records the error with its position, prunes the offending entry from the tree and tries again,
//! until the tree deserializes. Errors that only exist because of an earlier pruning (a required key
//! that was removed for being invalid) are not reported twice. Semantic validation then runs on the
//! typed config and its errors (dotted key paths) are placed on lines through the same tree.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Config;
use super::error::ConfigError;

/// Upper bound on errors collected from one file (and on deserialization passes).
const MAX_ERRORS: usize = 64;

/// Every problem found in one config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file, as named on the command line.
    pub file: PathBuf,
    /// The problems, in file order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some((line, col)) = e.position {
                write!(f, ":{line}:{col}")?;
            }
            write!(f, ": ")?;
            if !e.path.is_empty() {
                write!(f, "{}: ", e.path)?;
            }
            write!(f, "{}", e.message)?;
            if let Some(h) = &e.hint {
                write!(f, "\n    hint: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file has mistakes.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Longest duration any setting takes: longer ones are mistakes, and overflow timers.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 86_400);

/// Reads, parses and validates a config file.
///
/// # Errors
/// [`LoadError::Read`] when the file cannot be read, [`LoadError::Invalid`] with every mistake
/// (a file that is not UTF-8 too, with the position of the first byte that is not).
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(LoadError::Invalid(not_utf8(
                path,
                e.as_bytes(),
                &e.utf8_error(),
            )));
        }
    };
    parse_str(&text, path).map_err(LoadError::Invalid)
}

/// The error for a file that is not UTF-8, placed on its first invalid byte.
fn not_utf8(file: &Path, bytes: &[u8], e: &std::str::Utf8Error) -> ConfigErrors {
    let valid = e.valid_up_to();
    let head = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let line = head.matches('\n').count() + 1;
    let col = head.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfigErrors {
        file: file.to_owned(),
        errors: vec![ConfigError {
            path: String::new(),
            position: Some((line, col)),
            message: format!(
                "the file is not UTF-8: byte 0x{:02X} at offset {valid} is not valid UTF-8",
                bytes.get(valid).copied().unwrap_or(0)
            ),
            hint: Some(
                "save the file as UTF-8 (e.g. `iconv -f CP1251 -t UTF-8`); \
                 Cyrillic names in Windows-1251 are the usual cause"
                    .to_owned(),
            ),
        }],
    }
}

/// Every string of the tree that reads as a duration longer than [`MAX_DURATION`].
fn long_durations(
    table: &DeTable<'_>,
    prefix: &mut Vec<String>,
    lines: &LineIndex<'_>,
    out: &mut Vec<ConfigError>,
) {
    for (key, value) in table.iter() {
        prefix.push(key.get_ref().to_string());
        long_duration_value(value, prefix, lines, out);
        prefix.pop();
    }
}

fn long_duration_value(
    value: &Spanned<DeValue<'_>>,
    prefix: &mut Vec<String>,
    lines: &LineIndex<'_>,
    out: &mut Vec<ConfigError>,
) {
    match value.get_ref() {
        DeValue::Table(t) => long_durations(t, prefix, lines, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(i.to_string());
                long_duration_value(item, prefix, lines, out);
                prefix.pop();
            }
        }
        DeValue::String(s) if humantime::parse_duration(s).is_ok_and(|d| d > MAX_DURATION) => {
            out.push(ConfigError {
                path: prefix.join("."),
                position: Some(lines.position(value.span().start)),
                message: format!("{s:?} is longer than any setting takes (10 years)"),
                hint: None,
            });
        }
        _ => {}
    }
}

/// Parses and validates config text; `file` is only used in messages.
///
/// # Errors
/// Every mistake found, with positions.
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let lines = LineIndex::new(text);
    let fail = |errors: Vec<ConfigError>| ConfigErrors {
        file: file.to_owned(),
        errors,
    };

    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let errors = syntax
            .iter()
            .take(MAX_ERRORS)
            .map(|e| ConfigError {
                path: String::new(),
                position: e.span().map(|s| lines.position(s.start)),
                message: format!("TOML syntax: {}", first_line(e.message())),
                hint: None,
            })
            .collect();
        return Err(fail(errors));
    }

    let original = root.clone();
    let mut errors = Vec::new();
    long_durations(original.get_ref(), &mut Vec::new(), &lines, &mut errors);
    let mut tree = root;
    let mut pruned: Vec<Vec<String>> = Vec::new();
    // Each known section is checked on its own, so that a section that cannot be repaired
    // (a required key is missing) does not hide the mistakes in the others.
    for (name, probe) in SECTIONS {
        let Some(value) = original.get_ref().get(*name) else {
            continue;
        };
        let DeValue::Table(table) = value.get_ref() else {
            continue;
        };
        let section = Spanned::new(value.span(), table.clone());
        let before = errors.len();
        probe(section, vec![(*name).to_owned()], &lines, &mut errors);
        if errors.len() > before {
            remove_path(&mut tree, &[(*name).to_owned()]);
            pruned.push(vec![(*name).to_owned()]);
        }
    }
    let config = collect::<Config>(tree, Vec::new(), pruned, &lines, &mut errors);

    match config {
        Some(config) if errors.is_empty() => {
            let semantic = super::validate::validate(&config);
            if semantic.is_empty() {
                return Ok(config);
            }
            let errors = semantic
                .into_iter()
                .map(|mut e| {
                    e.position = span_of_path(&original, &e.path).map(|s| lines.position(s.start));
                    e
                })
                .collect();
            Err(fail(errors))
        }
        _ => {
            errors.sort_by_key(|e| e.position);
            errors.dedup();
            Err(fail(errors))
        }
    }
}

/// Checks one section; returns whether it deserialized.
type Probe = fn(Spanned<DeTable<'_>>, Vec<String>, &LineIndex<'_>, &mut Vec<ConfigError>) -> bool;

/// The top-level sections, each with the type it deserializes into.
const SECTIONS: &[(&str, Probe)] = &[
    ("gateway", |t, p, l, e| {
        collect::<super::GatewayConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("log", |t, p, l, e| {
        collect::<super::LogConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("store", |t, p, l, e| {
        collect::<super::StoreConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("service", |t, p, l, e| {
        collect::<super::ServiceConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("http", |t, p, l, e| {
        collect::<super::HttpConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("sources", |t, p, l, e| {
        collect::<super::SourcesConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("site", |t, p, l, e| {
        collect::<super::SiteConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("sync", |t, p, l, e| {
        collect::<crate::sync::config::SyncConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("alarms", |t, p, l, e| {
        collect::<crate::alarms::config::AlarmsConfig>(t, p, Vec::new(), l, e).is_some()
    }),
    ("clock", |t, p, l, e| {
        collect::<crate::clock::config::ClockConfig>(t, p, Vec::new(), l, e).is_some()
    }),
];

/// Deserializes `tree` as `T`, recording each error and pruning the offending entry until it
/// deserializes or cannot be repaired. `prefix` is the tree's key path in the document;
/// `pruned` lists paths (relative to `tree`) already removed, whose absence is not reported.
fn collect<T: serde::de::DeserializeOwned>(
    mut tree: Spanned<DeTable<'_>>,
    prefix: Vec<String>,
    mut pruned: Vec<Vec<String>>,
    lines: &LineIndex<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    for _ in 0..MAX_ERRORS {
        let err = match T::deserialize(toml::de::Deserializer::from(tree.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let span = err.span().unwrap_or(0..0);
        let message = first_line(err.message()).to_owned();
        let missing = missing_field(&message);
        let mut path = path_at(&tree, span.start);
        if missing.is_some() {
            // A missing key is reported on its table; the span may also point at a child.
            path = table_missing(&tree, &path, missing.unwrap_or_default());
        }
        let caused_by_pruning = missing.is_some_and(|field| {
            let mut p = path.clone();
            p.push(field.to_owned());
            pruned.contains(&p)
        });
        if !caused_by_pruning {
            let mut full: Vec<String> = prefix.clone();
            full.extend(path.iter().cloned());
            let full_path = join(&full, missing);
            errors.push(ConfigError {
                hint: hint_for(&message, &full_path),
                path: full_path,
                position: Some(lines.position(span.start)),
                message: tidy(&message),
            });
        }
        if path.is_empty() || !remove_path(&mut tree, &path) {
            return None;
        }
        pruned.push(path);
    }
    None
}

/// For "missing field" errors: the deepest table on `path` that lacks `field`. Tables inside
/// arrays of tables (`[[alarms.rule]]`) are entered by their index on `path`.
fn table_missing(tree: &Spanned<DeTable<'_>>, path: &[String], field: &str) -> Vec<String> {
    let mut best = Vec::new();
    let mut table = tree.get_ref();
    let mut cur = Vec::new();
    let mut parts = path.iter();
    while let Some(part) = parts.next() {
        let inner = match table.get(part.as_str()).map(Spanned::get_ref) {
            Some(DeValue::Table(t)) => {
                cur.push(part.clone());
                t
            }
            Some(DeValue::Array(items)) => {
                let Some(index) = parts.next() else { break };
                match index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(Spanned::get_ref)
                {
                    Some(DeValue::Table(t)) => {
                        cur.push(part.clone());
                        cur.push(index.clone());
                        t
                    }
                    _ => break,
                }
            }
            _ => break,
        };
        table = inner;
        if !inner.contains_key(field) {
            best = cur.clone();
        }
    }
    best
}

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

fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or(msg).trim()
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn join(path: &[String], last: Option<&str>) -> String {
    let mut parts: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Some(l) = last {
        parts.push(l);
    }
    parts.join(".")
}

fn tidy(message: &str) -> String {
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

fn hint_for(message: &str, path: &str) -> Option<String> {
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

/// The deepest key path whose key or value span contains `pos`. Tables defined by a header do
/// not span their keys, so every branch is searched.
fn path_at(root: &Spanned<DeTable<'_>>, pos: usize) -> Vec<String> {
    let mut path = Vec::new();
    search_table(root.get_ref(), pos, &mut path);
    path
}

fn search_table(table: &DeTable<'_>, pos: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if search_value(value, pos, path)
            || contains(&key.span(), pos)
            || contains(&value.span(), pos)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn search_value(value: &Spanned<DeValue<'_>>, pos: usize, path: &mut Vec<String>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => search_table(t, pos, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                if search_value(item, pos, path) || contains(&item.span(), pos) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && (pos < span.end || span.is_empty() && pos == span.start)
}

/// Removes the entry at `path`; returns whether anything was removed.
fn remove_path(root: &mut Spanned<DeTable<'_>>, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut value: &mut DeValue<'_> = match parents.first() {
        None => return root.get_mut().remove(last.as_str()).is_some(),
        Some(first) => match root.get_mut().get_mut(first.as_str()) {
            Some(v) => v.get_mut(),
            None => return false,
        },
    };
    for part in &parents[1..] {
        value = match value {
            DeValue::Table(t) => match t.get_mut(part.as_str()) {
                Some(v) => v.get_mut(),
                None => return false,
            },
            DeValue::Array(items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(v) => v.get_mut(),
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match value {
        DeValue::Table(t) => t.remove(last.as_str()).is_some(),
        DeValue::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                let kept: Vec<_> = items
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, v)| v.clone())
                    .collect();
                *items = toml::de::DeArray::new();
                for v in kept {
                    items.push(v);
                }
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The span of the key at a dotted path, or of its nearest existing ancestor.
fn span_of_path(root: &Spanned<DeTable<'_>>, path: &str) -> Option<Range<usize>> {
    let mut table = root.get_ref();
    let mut found = None;
    let mut parts = path.split('.').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let Some((key, value)) = table.get_key_value(part) else {
            break;
        };
        found = Some(key.span());
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            DeValue::Array(items) => {
                let Some(idx) = parts.next().and_then(|i| i.parse::<usize>().ok()) else {
                    break;
                };
                match items.get(idx).map(Spanned::get_ref) {
                    Some(DeValue::Table(t)) => {
                        found = items.get(idx).map(Spanned::span).or(found);
                        table = t;
                    }
                    _ => break,
                }
            }
            _ => break,
        }
    }
    found
}

/// Byte offset -> 1-based (line, column in characters).
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> ConfigErrors {
        parse_str(text, Path::new("test.toml")).unwrap_err()
    }

    #[test]
    fn minimal_config_is_valid() {
        let c = parse_str("[gateway]\nid = \"gw-1\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(c.gateway.id, "gw-1");
        assert_eq!(c.store.flush_rows, super::super::defaults::flush_rows());
    }

    #[test]
    fn reports_three_different_mistakes_with_lines() {
        let text = "\
[gateway]
name = \"Lenina 17\"

[store]
flush_interval = \"fast\"
retension = \"30d\"
";
        let e = errors(text);
        let shown = e.to_string();
        assert_eq!(e.errors.len(), 3, "{shown}");
        let by_path = |p: &str| {
            e.errors
                .iter()
                .find(|x| x.path == p)
                .unwrap_or_else(|| panic!("{p} in {shown}"))
        };
        assert_eq!(by_path("gateway.id").position.unwrap().0, 1);
        assert!(by_path("gateway.id").message.contains("missing field"));
        assert_eq!(by_path("store.flush_interval").position.unwrap().0, 5);
        assert_eq!(by_path("store.retension").position.unwrap().0, 6);
        assert!(
            by_path("store.retension")
                .hint
                .as_deref()
                .unwrap()
                .contains("retention")
        );
        assert!(shown.contains("test.toml:5:"), "{shown}");
    }

    #[test]
    fn invalid_required_value_is_reported_once() {
        let text = "[gateway]\nid = 17\n";
        let e = errors(text);
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].path, "gateway.id");
        assert_eq!(e.errors[0].position.unwrap().0, 2);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = errors("[gateway]\nid = \"x\n");
        assert!(e.errors[0].message.starts_with("TOML syntax"));
        assert_eq!(e.errors[0].position.unwrap().0, 2);
    }

    #[test]
    fn semantic_errors_are_placed_on_lines() {
        let text = "[gateway]\nid = \"gw\"\n\n[store]\nflush_rows = 0\n";
        let e = errors(text);
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].path, "store.flush_rows");
        assert_eq!(e.errors[0].position, Some((5, 1)));
    }

    #[test]
    fn errors_in_nested_tables_and_siblings_are_all_found() {
        let text = "\
[gateway]
id = \"gw\"
[sources.simulator]
floors = \"three\"
intervall = \"1s\"
[http]
listen = \"nowhere\"
";
        let e = errors(text);
        let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sources.simulator.floors",
                "sources.simulator.intervall",
                "http.listen"
            ],
            "{e}"
        );
    }

    #[test]
    fn an_inline_secret_is_rejected_with_a_hint() {
        let e = errors("[gateway]\nid = \"gw\"\npassword = \"hunter2\"\n");
        assert_eq!(e.errors.len(), 1, "{e}");
        assert!(
            e.errors[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("password_env"),
            "{e}"
        );
        assert!(
            !e.to_string().contains("hunter2"),
            "the value is never echoed: {e}"
        );
    }

    #[test]
    fn a_key_missing_in_an_array_of_tables_is_reported_on_its_entry() {
        let e = errors(
            "[gateway]\nid = \"gw\"\n\n[[alarms.rule]]\nalert = \"A\"\nkind = \"state\"\nsensor = \"x\"\n\n[[alarms.rule]]\nkind = \"state\"\nsensor = \"y\"\n",
        );
        assert_eq!(e.errors.len(), 1, "{e}");
        let err = &e.errors[0];
        assert_eq!(err.path, "alarms.rule.1.alert", "{e}");
        assert_eq!(err.position.map(|p| p.0), Some(9), "{e}");
        assert!(
            err.hint
                .as_deref()
                .unwrap()
                .contains("the [[alarms.rule]] entry #2"),
            "{e}"
        );
    }

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\nпривет = 1\n");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(3 + "привет".len()), (2, 7));
    }
}
