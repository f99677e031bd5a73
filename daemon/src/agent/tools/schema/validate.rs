//! Validation of what a model sends: checks and coerces arguments against a tool's shaped
//! schema for the site, and answers a mistake in plain words with examples from the site.

use serde_json::{Map, Value};

use super::site::{Site, Vocab};
use super::{Tool, derived, one_of_required, parameters};

/// Checks and coerces arguments against a tool's schema for `site`: numbers given as text
/// become numbers, enumerated values match case-insensitively, unknown keys are dropped, empty
/// strings count as absent. The error is plain words for the model, with real examples.
///
/// # Errors
/// A missing required argument, a value of the wrong type, a value that is not one of the
/// site's, a value with no letter or digit, none of the arguments a search needs.
pub fn validate(
    tool: Tool,
    args: Map<String, Value>,
    site: &Site,
) -> Result<Map<String, Value>, String> {
    let schema = parameters(tool, Some(site));
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let generic = parameters(tool, None);
    let mut out = Map::new();
    for (key, value) in args {
        let Some(prop) = props.get(&key) else {
            continue;
        };
        if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let vocab = derived(tool)
            .pointer(&format!("/properties/{key}/x-site"))
            .and_then(Value::as_str)
            .and_then(Vocab::from_mark);
        let noun = vocab.map_or_else(|| key.clone(), |v| v.noun().to_owned());
        let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
        let Some(coerced) = coerce(ty, value.clone()) else {
            return Err(format!(
                "{key} must be {}, not {value}; for example {}",
                type_words(ty),
                example_with(tool, site, &key)
            ));
        };
        if let Some(text) = coerced.as_str() {
            let described = generic
                .pointer(&format!("/properties/{key}/description"))
                .and_then(Value::as_str)
                .is_some_and(|d| d.eq_ignore_ascii_case(text));
            if !text.chars().any(char::is_alphanumeric) || described {
                return Err(format!(
                    "{text:?} is not a {noun}; {}",
                    what_exists(tool, site, &key, vocab)
                ));
            }
        }
        let coerced = match prop.get("enum").and_then(Value::as_array) {
            Some(allowed) => {
                let text = coerced.as_str().unwrap_or_default().trim().to_lowercase();
                let found = allowed
                    .iter()
                    .find(|a| a.as_str().is_some_and(|a| a.to_lowercase() == text));
                // A server that does not hold the model to the grammar may send part of a
                // value ("supply" for "boiler.supply_temp"): taken when one value has it.
                let containing: Vec<&str> = allowed
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|a| text.chars().count() >= 2 && a.to_lowercase().contains(&text))
                    .collect();
                match found {
                    Some(a) => a.clone(),
                    None if containing.len() == 1 => Value::String(containing[0].to_owned()),
                    None if containing.len() > 1 => {
                        let mut ex = Map::new();
                        ex.insert(key.clone(), Value::String(containing[0].to_owned()));
                        return Err(format!(
                            "{noun} {text:?} could be any of {}; give one, for example {}",
                            containing
                                .iter()
                                .take(8)
                                .copied()
                                .collect::<Vec<_>>()
                                .join(", "),
                            Value::Object(ex)
                        ));
                    }
                    None => {
                        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                        return Err(format!(
                            "there is no {noun} {text:?}{}; {}",
                            did_you_mean(&text, &names),
                            what_exists(tool, site, &key, vocab)
                        ));
                    }
                }
            }
            None => coerced,
        };
        out.insert(key, coerced);
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for r in required {
        if !out.contains_key(r) {
            return Err(format!(
                "{r} is required; for example {}",
                example_with(tool, site, r)
            ));
        }
    }
    let any = one_of_required(tool);
    if !any.is_empty() && !any.iter().any(|k| out.contains_key(*k)) {
        return Err(format!(
            "say which: give {}; for example {}",
            any.join(" or "),
            example_with(tool, site, any[1.min(any.len() - 1)])
        ));
    }
    Ok(out)
}

fn type_words(ty: &str) -> &'static str {
    match ty {
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        _ => "text",
    }
}

/// "rooms here are 101, 102 (and 3 more); for example {"room":"101"}".
fn what_exists(tool: Tool, site: &Site, key: &str, vocab: Option<Vocab>) -> String {
    let example = example_with(tool, site, key);
    match vocab {
        Some(v) if !site.values(v).is_empty() => {
            let search = if site.listed(v) {
                ""
            } else {
                "; find_sensors searches by words"
            };
            format!(
                "{}s here: {}; for example {example}{search}",
                v.noun(),
                site.examples(v)
            )
        }
        _ => format!("for example {example}"),
    }
}

/// An argument object for `tool` with `key` set to a real value of the site.
pub fn example_with(tool: Tool, site: &Site, key: &str) -> String {
    let schema = parameters(tool, Some(site));
    let prop = schema.pointer(&format!("/properties/{key}"));
    let vocab = derived(tool)
        .pointer(&format!("/properties/{key}/x-site"))
        .and_then(Value::as_str)
        .and_then(Vocab::from_mark);
    let value = example_value(prop, vocab.and_then(|v| site.values(v).first()));
    let mut ex = Map::new();
    ex.insert(key.to_owned(), value);
    Value::Object(ex).to_string()
}

/// An example argument object for `tool` on `site`: every property with a real value.
pub fn example(tool: Tool, site: &Site) -> String {
    let schema = parameters(tool, Some(site));
    let mut ex = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let vocab = derived(tool)
                .pointer(&format!("/properties/{k}/x-site"))
                .and_then(Value::as_str)
                .and_then(Vocab::from_mark);
            ex.insert(
                k.clone(),
                example_value(Some(p), vocab.and_then(|v| site.values(v).first())),
            );
        }
    }
    Value::Object(ex).to_string()
}

fn example_value(prop: Option<&Value>, real: Option<&String>) -> Value {
    let ty = prop.and_then(|p| p.get("type")).and_then(Value::as_str);
    let first = prop
        .and_then(|p| p.get("enum"))
        .and_then(Value::as_array)
        .and_then(|e| e.first());
    match (ty, first, real) {
        (_, Some(first), _) => first.clone(),
        (_, None, Some(real)) => Value::String(real.clone()),
        (Some("integer"), _, _) => Value::from(1),
        (Some("number"), _, _) => Value::from(1.0),
        (Some("boolean"), _, _) => Value::Bool(false),
        _ => Value::String("boiler".into()),
    }
}

fn coerce(ty: &str, value: Value) -> Option<Value> {
    match (ty, value) {
        ("string", Value::String(s)) => Some(Value::String(s.trim().to_owned())),
        ("string", Value::Number(n)) => Some(Value::String(n.to_string())),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Value::from),
        ("integer", Value::String(s)) => s
            .trim()
            .trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .map(Value::from),
        ("number", Value::Number(n)) => Some(Value::Number(n)),
        ("number", Value::String(s)) => s.trim().parse::<f64>().ok().map(Value::from),
        ("boolean", Value::Bool(b)) => Some(Value::Bool(b)),
        ("boolean", Value::String(s)) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" | "да" => Some(Value::Bool(true)),
            "false" | "no" | "0" | "нет" => Some(Value::Bool(false)),
            _ => None,
        },
        ("boolean", Value::Number(n)) => Some(Value::Bool(n.as_f64() != Some(0.0))),
        _ => None,
    }
}

/// " (did you mean X?)" when one of `names` is close to `given`.
pub fn did_you_mean(given: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| (strsim::jaro_winkler(given, &n.to_lowercase()), *n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!(" (did you mean {n}?)"))
        .unwrap_or_default()
}
