//! Loading a config file and reporting **every** mistake in it with file:line:col and a hint.
//!
//! serde stops at the first error, so the loader works on the spanned TOML tree: it deserializes,
//! records the error with its position, prunes the offending entry from the tree and tries again,
//! until the tree deserializes. Errors that only exist because of an earlier pruning (a required key
//! that was removed for being invalid) are not reported twice. Semantic validation then runs on the
//! typed config and its errors (dotted key paths) are placed on lines through the same tree.
//!
//! Layout: this file the loading passes; `tree` the spanned TOML tree (paths, spans, pruning,
//! lines); `hints` the wording of the errors and their hints.

mod hints;
mod tree;

use std::fmt;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use self::hints::{first_line, hint_for, join, missing_field, tidy};
use self::tree::{LineIndex, path_at, remove_path, span_of_path, table_missing};
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

#[cfg(test)]
mod tests;
