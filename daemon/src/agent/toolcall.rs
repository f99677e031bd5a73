//! Tool calls that a small model printed as text instead of making a structured call, and the
//! strict parse of tool arguments.
//!
//! Owns: recognising `<tool_call>{..}</tool_call>` blocks, fenced ```` ```json ```` blocks,
//! bare `{"name": .., "arguments"|"parameters": {..}}` objects, `{"function": {..}}` objects,
//! arrays of those, `{"tool_calls": [..]}`, `{"<known tool>": {args}}` shapes and
//! `functions.<tool>: {args}` (as some chat templates print calls), anywhere in prose;
//! [`looks_like_tool_call`] for text that must never reach staff; and [`parse_arguments`]. Does not own: deciding what to do with the calls (the agent
//! loop) or structured calls (see [`crate::agent::llm`]).
//!
//! JSON is never repaired: a truncated or invalid object is not a call (executing a guess is
//! worse than asking again). Only names in the caller's list of known tools count.

use serde_json::{Map, Value};

use super::llm::ToolCall;

/// Text scanned for calls (a model answer is far shorter; this bounds the work on garbage).
const MAX_SCAN_BYTES: usize = 64 * 1024;
/// Parse attempts per text, for the same reason.
const MAX_PARSE_ATTEMPTS: usize = 256;
/// Calls taken from one text.
const MAX_CALLS: usize = 8;

/// Keys that may name the tool in a printed call.
const NAME_KEYS: [&str; 4] = ["name", "tool", "tool_name", "function"];
/// Keys that may hold the arguments in a printed call.
const ARG_KEYS: [&str; 5] = ["arguments", "parameters", "args", "input", "params"];

/// Finds the tool calls printed in `content`, in order, keeping only tools named in `known`.
/// Ids are `call_text_1`, `call_text_2`, ...; `arguments` is JSON text (an object written back
/// to text, or the string the model gave). Identical calls are kept once. Never panics.
pub fn extract_text_tool_calls(content: &str, known: &[&str]) -> Vec<ToolCall> {
    let mut found: Vec<(String, String)> = functions_calls(content, known);
    for value in json_values(content) {
        collect(&value, known, &mut found, 0);
    }
    let mut calls: Vec<ToolCall> = Vec::new();
    for (name, arguments) in found {
        if calls.len() >= MAX_CALLS {
            break;
        }
        if calls
            .iter()
            .any(|c| c.name == name && c.arguments == arguments)
        {
            continue;
        }
        calls.push(ToolCall {
            id: format!("call_text_{}", calls.len() + 1),
            name,
            arguments,
        });
    }
    calls
}

/// Whether `content` looks like a tool call rather than an answer for a person: a
/// `<tool_call>` tag (or another template's call marker), `functions.<name>`, a fenced block of
/// JSON, or nothing but a JSON object or array. Such text is never shown to staff.
pub fn looks_like_tool_call(content: &str) -> bool {
    let t = content.trim();
    let lower = t.to_lowercase();
    if [
        "<tool_call",
        "</tool_call",
        "<|tool",
        "[tool_calls]",
        "<function",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return true;
    }
    if functions_names(t).next().is_some() {
        return true;
    }
    let fenced_json = t.split("```").skip(1).step_by(2).any(|block| {
        let body = block
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .trim();
        body.starts_with('{') || body.starts_with('[')
    });
    let bare_json =
        (t.starts_with('{') && t.ends_with('}')) || (t.starts_with("[{") && t.ends_with(']'));
    fenced_json || bare_json
}

/// The byte offsets and names after each `functions.` followed by a name.
fn functions_names(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.match_indices("functions.").filter_map(move |(at, m)| {
        let start = at + m.len();
        let rest = &text[start..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (len > 0).then(|| (start + len, &rest[..len]))
    })
}

/// `functions.<tool>: {args}`, `functions.<tool>({args})` and `functions.<tool>` (no
/// arguments), for tools in `known`.
fn functions_calls(text: &str, known: &[&str]) -> Vec<(String, String)> {
    let mut text = text;
    let mut end = text.len().min(MAX_SCAN_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text = &text[..end];
    let mut out = Vec::new();
    for (after, name) in functions_names(text).take(MAX_CALLS) {
        if !known.contains(&name) {
            continue;
        }
        let rest =
            text[after..].trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '(');
        let args = if rest.starts_with('{') {
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            match stream.next() {
                Some(Ok(v @ Value::Object(_))) => v.to_string(),
                // Broken JSON is not a call (never guessed).
                _ => continue,
            }
        } else {
            "{}".to_owned()
        };
        out.push((name.to_owned(), args));
    }
    out
}

/// Every JSON object or array that starts at a `{` or `[` in `text` and parses completely,
/// left to right, not looking inside a value already found. Tags (`<tool_call>`), code fences
/// and prose around them are simply not JSON, so they need no special handling.
fn json_values(text: &str) -> Vec<Value> {
    let mut end = text.len().min(MAX_SCAN_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let bytes = text.as_bytes();
    let mut values = Vec::new();
    let mut attempts = 0;
    let mut i = 0;
    while i < bytes.len() && attempts < MAX_PARSE_ATTEMPTS {
        if bytes[i] != b'{' && bytes[i] != b'[' {
            i += 1;
            continue;
        }
        attempts += 1;
        // `i` is at an ASCII byte, so a char boundary.
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v @ (Value::Object(_) | Value::Array(_)))) => {
                values.push(v);
                i += stream.byte_offset().max(1);
            }
            _ => i += 1,
        }
    }
    values
}

/// Adds the calls `v` describes to `out`.
fn collect(v: &Value, known: &[&str], out: &mut Vec<(String, String)>, depth: u8) {
    if depth > 3 {
        return;
    }
    match v {
        Value::Array(items) => {
            for item in items {
                collect(item, known, out, depth + 1);
            }
        }
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("tool_calls") {
                for item in items {
                    collect(item, known, out, depth + 1);
                }
                return;
            }
            if let Some(call) = call_from_object(map, known) {
                out.push(call);
            }
        }
        _ => {}
    }
}

/// One call from one object, if it is a call to a known tool.
fn call_from_object(map: &Map<String, Value>, known: &[&str]) -> Option<(String, String)> {
    // {"function": {"name": .., "arguments": ..}} (OpenAI shape, possibly with "type", "id").
    if let Some(Value::Object(function)) = map.get("function") {
        return call_from_object(function, known);
    }
    // {"name": "x", "arguments": {..}} and its synonyms.
    if let Some(name) = NAME_KEYS
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
    {
        let name = name.trim();
        if !known.contains(&name) {
            return None;
        }
        let args = ARG_KEYS.iter().find_map(|k| map.get(*k));
        return Some((name.to_owned(), arguments_text(args)));
    }
    // {"list_alarms": {"state": "active"}}: one key, a known tool, object (or null) arguments.
    if map.len() == 1
        && let Some((name, args)) = map.iter().next()
        && known.contains(&name.as_str())
        && (args.is_object() || args.is_null())
    {
        return Some((name.clone(), arguments_text(Some(args))));
    }
    None
}

fn arguments_text(args: Option<&Value>) -> String {
    match args {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Parses tool arguments strictly as one JSON object. Empty text and `null` are an empty
/// object; a JSON string that itself holds an object (arguments encoded twice, as some servers
/// and models do) is read once more.
///
/// # Errors
/// A short message for the model: what is wrong and what to send instead.
pub fn parse_arguments(raw: &str) -> Result<Map<String, Value>, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "null" {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        format!("the arguments are not valid JSON ({e}); send one JSON object, e.g. {{\"room\": \"301\"}}")
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        Value::String(inner) => match serde_json::from_str::<Value>(&inner) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(not_an_object("a string")),
        },
        Value::Array(_) => Err(not_an_object("an array")),
        Value::Bool(_) => Err(not_an_object("a boolean")),
        Value::Number(_) => Err(not_an_object("a number")),
    }
}

fn not_an_object(got: &str) -> String {
    format!("the arguments must be one JSON object with named fields, not {got}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KNOWN: [&str; 3] = ["list_alarms", "get_readings", "get_site_overview"];

    fn calls(text: &str) -> Vec<(String, String)> {
        extract_text_tool_calls(text, &KNOWN)
            .into_iter()
            .map(|c| (c.name, c.arguments))
            .collect()
    }

    fn one(name: &str, args: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), args.to_owned())]
    }

    #[test]
    fn tool_call_tags() {
        assert_eq!(
            calls(
                "<tool_call>\n{\"name\": \"list_alarms\", \"arguments\": {\"state\": \"active\"}}\n</tool_call>"
            ),
            one("list_alarms", r#"{"state":"active"}"#)
        );
        // Unclosed tag, as a model cut short writes it.
        assert_eq!(
            calls("<tool_call>{\"name\": \"get_site_overview\", \"arguments\": {}}"),
            one("get_site_overview", "{}")
        );
    }

    #[test]
    fn fenced_json_blocks() {
        let text = "Let me check.\n```json\n{\"name\": \"get_readings\", \"parameters\": {\"room\": \"301\"}}\n```\n";
        assert_eq!(calls(text), one("get_readings", r#"{"room":"301"}"#));
        let plain_fence = "```\n{\"tool\": \"list_alarms\", \"args\": {\"state\": \"all\"}}\n```";
        assert_eq!(calls(plain_fence), one("list_alarms", r#"{"state":"all"}"#));
    }

    #[test]
    fn bare_objects_with_trailing_prose() {
        assert_eq!(
            calls(
                "{\"name\": \"list_alarms\", \"arguments\": {\"state\": \"active\"}} I will now list the alarms."
            ),
            one("list_alarms", r#"{"state":"active"}"#)
        );
        assert_eq!(
            calls("Sure! {\"name\": \"get_site_overview\"} Then I'll summarise."),
            one("get_site_overview", "{}")
        );
    }

    #[test]
    fn openai_function_shape_and_string_arguments() {
        let text = r#"{"type": "function", "function": {"name": "get_readings", "arguments": "{\"room\": \"301\"}"}}"#;
        assert_eq!(calls(text), one("get_readings", r#"{"room": "301"}"#));
        let message = r#"{"role": "assistant", "tool_calls": [{"id": "call_1", "function": {"name": "list_alarms", "arguments": {}}}]}"#;
        assert_eq!(calls(message), one("list_alarms", "{}"));
    }

    #[test]
    fn arrays_of_calls() {
        let text = r#"[{"name": "list_alarms", "arguments": {"state": "active"}}, {"name": "get_site_overview", "arguments": {}}]"#;
        let got = extract_text_tool_calls(text, &KNOWN);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, "call_text_1");
        assert_eq!(got[1].id, "call_text_2");
        assert_eq!(got[1].name, "get_site_overview");
    }

    #[test]
    fn tool_name_as_key() {
        // nanobot #603: {"web_search": {"query": ..}}
        assert_eq!(
            calls(r#"{"get_readings": {"room": "301"}}"#),
            one("get_readings", r#"{"room":"301"}"#)
        );
        // Not a known tool: not a call.
        assert!(calls(r#"{"web_search": {"query": "boiler"}}"#).is_empty());
        // A known name whose value is not an object is data, not a call.
        assert!(calls(r#"{"get_readings": 5}"#).is_empty());
    }

    #[test]
    fn unknown_tools_truncated_json_and_prose_give_nothing() {
        assert!(calls(r#"{"name": "rm_rf", "arguments": {}}"#).is_empty());
        assert!(
            calls(r#"<tool_call>{"name": "list_alarms", "arguments": {"state": "act"#).is_empty()
        );
        assert!(calls("The boiler is at 71.5 °C; no alarms are active.").is_empty());
        assert!(calls("Temperatures: [21.5, 22.0] {not json}").is_empty());
        assert!(calls("").is_empty());
    }

    #[test]
    fn duplicates_are_kept_once() {
        let text = "<tool_call>{\"name\": \"list_alarms\", \"arguments\": {}}</tool_call>\n```json\n{\"name\": \"list_alarms\", \"arguments\": {}}\n```";
        assert_eq!(calls(text).len(), 1);
    }

    #[test]
    fn cyrillic_prose_around_a_call() {
        let text = "Сейчас проверю котёл: {\"name\": \"get_readings\", \"arguments\": {\"query\": \"котёл\"}} — готово.";
        assert_eq!(calls(text), one("get_readings", r#"{"query":"котёл"}"#));
    }

    #[test]
    fn functions_dot_calls_as_chat_templates_print_them() {
        assert_eq!(
            calls(r#"functions.get_readings: {"room": "301"}"#),
            one("get_readings", r#"{"room":"301"}"#)
        );
        assert_eq!(
            calls("Let me look. functions.list_alarms({\"state\": \"all\"})"),
            one("list_alarms", r#"{"state":"all"}"#)
        );
        assert_eq!(
            calls("functions.get_site_overview"),
            one("get_site_overview", "{}")
        );
        assert!(calls(r#"functions.rm_rf: {}"#).is_empty());
        assert!(calls(r#"functions.get_readings: {"room": "30"#).is_empty());
    }

    #[test]
    fn tool_call_looking_text_is_recognised_and_answers_are_not() {
        for text in [
            r#"functions.current_readings: {"room": "301"}"#,
            "<tool_call>{\"name\": \"x\"}</tool_call>",
            "```json\n{\"name\": \"alarms\"}\n```",
            r#"{"name": "unknown_tool", "arguments": {}}"#,
            r#"[{"room": "301"}]"#,
        ] {
            assert!(looks_like_tool_call(text), "{text}");
        }
        for text in [
            "Room 301 is at 21.5 °C (read 10:02 UTC).",
            "В 301 сейчас 21,5 °C {по данным датчика}.",
            "No alarms are open.",
            "",
        ] {
            assert!(!looks_like_tool_call(text), "{text}");
        }
    }

    #[test]
    fn parse_arguments_is_strict() {
        assert!(parse_arguments("").unwrap().is_empty());
        assert!(parse_arguments(" null ").unwrap().is_empty());
        assert_eq!(
            parse_arguments(r#"{"room": "301"}"#).unwrap()["room"],
            "301"
        );
        assert_eq!(
            parse_arguments(r#""{\"room\": \"301\"}""#).unwrap()["room"],
            "301",
            "arguments encoded twice"
        );
        let truncated = parse_arguments(r#"{"room": "30"#).unwrap_err();
        assert!(truncated.contains("not valid JSON"), "{truncated}");
        assert!(parse_arguments("[1]").unwrap_err().contains("array"));
        assert!(parse_arguments("5").unwrap_err().contains("number"));
        assert!(
            parse_arguments(r#""room 301""#)
                .unwrap_err()
                .contains("string")
        );
        assert!(parse_arguments("{'room': '301'}").is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,300}") {
            let calls = extract_text_tool_calls(&text, &KNOWN);
            prop_assert!(calls.len() <= MAX_CALLS);
            if let Ok(map) = parse_arguments(&text) {
                prop_assert!(map.len() <= text.len());
            }
        }

        #[test]
        fn never_panics_on_json_like_text(text in "[{}\\[\\]\":,a-z_ 0-9<>/`\\\\.]{0,300}") {
            let _ = looks_like_tool_call(&text);
            let got = extract_text_tool_calls(&text, &KNOWN);
            prop_assert!(got.len() <= MAX_CALLS);
            for c in got {
                prop_assert!(KNOWN.contains(&c.name.as_str()));
            }
            if let Ok(map) = parse_arguments(&text) {
                prop_assert!(map.len() <= text.len());
            }
        }
    }
}
