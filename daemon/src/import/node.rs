//! Reading another tool's config as a tree of JSON values, keeping track of every key so that
//! whatever the importer does not use is reported, never dropped silently.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Note, Notes};

/// One table (object) of the input, with its place for the report.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    /// Where it is, e.g. `inputs.modbus[0]` or `master.slaves[2]`.
    pub(crate) place: String,
    map: &'a Map<String, Value>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Node<'a> {
    /// A node over `value`, or `None` when it is not a table.
    pub(crate) fn new(place: impl Into<String>, value: &'a Value) -> Option<Self> {
        value.as_object().map(|map| Self {
            place: place.into(),
            map,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    /// The value of `key`, marked as used.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        let v = self.map.get(key)?;
        self.used.borrow_mut().insert(key.to_owned());
        Some(v)
    }

    /// Marks `key` as dealt with (reported or deliberately ignored) without reading it.
    pub(crate) fn consume(&self, key: &str) {
        self.used.borrow_mut().insert(key.to_owned());
    }

    /// Whether the input has `key` at all.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A string; a value of another type is reported and taken as absent.
    pub(crate) fn str(&self, key: &str, notes: &mut Notes) -> Option<&'a str> {
        match self.get(key)? {
            Value::String(s) => Some(s),
            other => {
                notes.dropped(self.at(key), key, other, "expected a string");
                None
            }
        }
    }

    /// A number (an integer or a float).
    pub(crate) fn f64(&self, key: &str, notes: &mut Notes) -> Option<f64> {
        let v = self.get(key)?;
        let n = v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
        if n.is_none() {
            notes.dropped(self.at(key), key, v, "expected a number");
        }
        n
    }

    /// A non-negative integer that fits `T`.
    pub(crate) fn uint<T: TryFrom<u64>>(&self, key: &str, notes: &mut Notes) -> Option<T> {
        let v = self.get(key)?;
        let n = v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|n| T::try_from(n).ok());
        if n.is_none() {
            notes.dropped(self.at(key), key, v, "expected a whole number in range");
        }
        n
    }

    /// A boolean.
    pub(crate) fn bool(&self, key: &str, notes: &mut Notes) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                notes.dropped(self.at(key), key, other, "expected true or false");
                None
            }
        }
    }

    /// A duration written the Go way (`"10s"`, `"1m30s"`, `"250ms"`) or as a number of seconds.
    pub(crate) fn go_duration(&self, key: &str, notes: &mut Notes) -> Option<Duration> {
        let v = self.get(key)?;
        let d = match v {
            Value::String(s) => parse_go_duration(s),
            Value::Number(n) => n.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()),
            _ => None,
        };
        if d.is_none() {
            notes.dropped(self.at(key), key, v, "not a duration");
        }
        d
    }

    /// The child tables of the array `key` (`[[...]]` or a list of inline tables).
    pub(crate) fn tables(&self, key: &str, notes: &mut Notes) -> Vec<Node<'a>> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![v],
            other => {
                notes.dropped(self.at(key), key, other, "expected a list of tables");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let place = format!("{}[{i}]", self.at(key));
            match Node::new(place.clone(), item) {
                Some(n) => out.push(n),
                None => notes.dropped(place, key, item, "expected a table"),
            }
        }
        out
    }

    /// The child table `key`.
    pub(crate) fn table(&self, key: &str) -> Option<Node<'a>> {
        Node::new(self.at(key), self.get(key)?)
    }

    /// `place.key`, for notes about one key.
    pub(crate) fn at(&self, key: &str) -> String {
        if self.place.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.place)
        }
    }

    /// The keys of the table, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.map.keys()
    }

    /// Reports every key that was neither used nor consumed, with `why`.
    pub(crate) fn finish(&self, notes: &mut Notes, why: &str) {
        let used = self.used.borrow();
        for (k, v) in self.map {
            if !used.contains(k) {
                notes.dropped(self.at(k), k, v, why);
            }
        }
    }
}

/// Parses a Go duration: a sequence of numbers with units (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), fractions allowed (`"1.5s"`), or `"0"`.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// A short rendering of a value for the report.
pub(crate) fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Notes {
    /// A setting that could not be carried over.
    pub(crate) fn dropped(&mut self, place: String, setting: &str, value: &Value, why: &str) {
        self.items.push(Note {
            carried: false,
            place,
            setting: setting.to_owned(),
            value: show(value),
            why: why.to_owned(),
        });
    }

    /// A setting carried over with a different shape, name or meaning that the user should know.
    pub(crate) fn changed(&mut self, place: String, setting: &str, value: &Value, how: &str) {
        self.items.push(Note {
            carried: true,
            place,
            setting: setting.to_owned(),
            value: show(value),
            why: how.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration("10"), None, "Go wants a unit");
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn unused_keys_are_reported() {
        let v: Value = serde_json::json!({"a": 1, "b": "x", "c": true});
        let n = Node::new("t", &v).unwrap();
        let mut notes = Notes::default();
        assert_eq!(n.uint::<u8>("a", &mut notes), Some(1));
        n.consume("c");
        n.finish(&mut notes, "unknown");
        assert_eq!(notes.items.len(), 1);
        assert_eq!(notes.items[0].place, "t.b");
        assert_eq!(notes.items[0].value, "\"x\"");
    }
}
