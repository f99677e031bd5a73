//! The assistant's evaluation: realistic staff questions, the tool calls each should produce,
//! and a runner that asks them through a real gateway wired to any OpenAI-compatible server
//! (Koboldcpp, llama.cpp server, vLLM, or the fake in [`crate::kobold`]).
//!
//! Owns: the case file format (`tests/data/agent-eval.toml`), the matching rule, running the
//! questions through `POST /api/v1/ask` of a [`TempGateway`] and the report (tool-selection
//! accuracy, offline fallbacks, latency). Does not own: the agent (see `markoff::agent`) or the
//! server under test. `docs/agent-eval.md` explains the numbers; `bench agent-eval` is the
//! command line.
//!
//! **Matching rule.** A question passes when the answer came from the model (`source = llm`;
//! with [`Options::llm_url`] unset, from the keyword router) and the *first* tool call recorded
//! in `Reply.tools` matches one of the case's expected calls: the same tool, and for each
//! expected argument the call has that argument with
//! - the same value, for enumerations (a `enum` in the tool's JSON Schema), integers and
//!   booleans (written `key=value`);
//! - a value containing the expected text, case-insensitively, for free text (written
//!   `key~"text"`): `room~"301"` accepts `"301"` and `"f3.r301"`, but not a value longer than
//!   [`MAX_FREE_TEXT_CHARS`], nor the question itself (the whole question pasted into `sensor`
//!   names nothing).
//!
//! Arguments the case does not name may have any value. The daemon records a call after
//! validating it (a call with invalid arguments is recorded without them, so it only matches an
//! expectation without arguments); a call of an unknown tool, or with arguments that are not
//! JSON, is not recorded and shows in the `malformed` count instead.

mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use markoff::agent::tools::Tool;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::runner::{
    Options, Outcome, Report, format_outcome, gateway_toml, nearest_rank, run, score,
};

/// The login the evaluation asks as (an operator, so acknowledgements are proposed).
pub const EVAL_USER: &str = "eval";
/// The bearer token (`[[http.token]]`) the evaluation asks with, standing for [`EVAL_USER`].
pub const EVAL_TOKEN: &str = "markoff-agent-eval-token";

/// Longest free-text argument that can match: ids and names are short; a sentence is not one.
pub const MAX_FREE_TEXT_CHARS: usize = 40;

/// The case file in this repository.
pub fn default_cases_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("agent-eval.toml")
}

/// The held-out case file in this repository: questions written before the offline
/// understanding was tuned, and read only to score it.
pub fn heldout_cases_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("agent-eval-heldout.toml")
}

/// `docs/agent-eval.md` in this repository.
pub fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("agent-eval.md")
}

/// One expected tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// Tool name.
    pub tool: String,
    /// Arguments that must match (see the module's matching rule); others may be anything.
    #[serde(default)]
    pub args: BTreeMap<String, Value>,
}

/// One question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Short stable id (`en-temp-301`).
    pub id: String,
    /// `en` or `ru`: the language the question is written in.
    pub lang: String,
    /// What a person on site would type.
    pub question: String,
    /// Acceptable first tool calls, best first.
    pub expect: Vec<Call>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

/// Reads a case file.
///
/// # Errors
/// Unreadable or not in the format.
pub fn load_cases(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: CaseFile =
        toml::from_str(&text).with_context(|| format!("{} is not a case file", path.display()))?;
    Ok(file.case)
}

/// How an argument is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Same value.
    Exact,
    /// Case-insensitive substring.
    Contains,
}

/// The JSON Schema of `key` in `tool`'s parameters.
fn property(tool: Tool, key: &str) -> Option<Value> {
    tool.parameters().get("properties")?.get(key).cloned()
}

/// How `key` of `tool` is compared: exactly for enumerations and non-strings, by substring for
/// free text. `None` when the tool has no such argument.
pub fn compare_of(tool: Tool, key: &str) -> Option<Compare> {
    let p = property(tool, key)?;
    let free_text =
        p.get("type").and_then(Value::as_str) == Some("string") && p.get("enum").is_none();
    Some(if free_text {
        Compare::Contains
    } else {
        Compare::Exact
    })
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Call {
    /// Whether a recorded call (`name`, validated `args`) matches this expectation.
    pub fn matches(&self, name: &str, args: &Value) -> bool {
        let Some(tool) = Tool::from_name(&self.tool) else {
            return false;
        };
        if name != self.tool {
            return false;
        }
        self.args.iter().all(|(key, want)| {
            let Some(got) = args.get(key) else {
                return false;
            };
            match compare_of(tool, key) {
                Some(Compare::Contains) => {
                    let got = text_of(got).to_lowercase();
                    got.chars().count() <= MAX_FREE_TEXT_CHARS
                        && got.contains(&text_of(want).to_lowercase())
                }
                Some(Compare::Exact) => got == want || text_of(got) == text_of(want),
                None => false,
            }
        })
    }

    /// `tool{key~"text", key=value}` as in `docs/agent-eval.md`.
    pub fn describe(&self) -> String {
        let tool = Tool::from_name(&self.tool);
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(k, v)| {
                let op = match tool.and_then(|t| compare_of(t, k)) {
                    Some(Compare::Contains) => "~",
                    _ => "=",
                };
                format!("{k}{op}{v}")
            })
            .collect();
        format!("{}{{{}}}", self.tool, args.join(", "))
    }
}

/// The expectations of a case as one line: calls joined with ` or `.
pub fn describe_expect(calls: &[Call]) -> String {
    calls
        .iter()
        .map(Call::describe)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A recorded call as `tool{key=value, ...}` (`(invalid arguments)` when they failed validation).
pub fn describe_call(name: &str, args: &Value) -> String {
    match args.as_object() {
        Some(map) => {
            let args: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{name}{{{}}}", args.join(", "))
        }
        None => format!("{name}{{(invalid arguments)}}"),
    }
}

/// Problems of a case list: ids unique and not empty, languages `en`/`ru`, questions distinct,
/// every expected tool and argument known, enumerated values allowed, integers for integers.
pub fn check_cases(cases: &[Case]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut questions = std::collections::BTreeSet::new();
    for c in cases {
        if c.id.trim().is_empty() || !ids.insert(c.id.clone()) {
            problems.push(format!("case id {:?} is empty or repeated", c.id));
        }
        if !questions.insert(c.question.trim().to_lowercase()) {
            problems.push(format!("{}: the question is repeated", c.id));
        }
        if !matches!(c.lang.as_str(), "en" | "ru") {
            problems.push(format!("{}: lang must be en or ru", c.id));
        }
        if c.expect.is_empty() {
            problems.push(format!("{}: no expected call", c.id));
        }
        for call in &c.expect {
            let Some(tool) = Tool::from_name(&call.tool) else {
                problems.push(format!("{}: unknown tool {:?}", c.id, call.tool));
                continue;
            };
            for (key, want) in &call.args {
                let Some(p) = property(tool, key) else {
                    problems.push(format!("{}: {} has no argument {key:?}", c.id, call.tool));
                    continue;
                };
                let ty = p.get("type").and_then(Value::as_str).unwrap_or("string");
                let type_ok = match ty {
                    "string" => want.is_string(),
                    "integer" => want.is_i64(),
                    "boolean" => want.is_boolean(),
                    "number" => want.is_number(),
                    _ => false,
                };
                if !type_ok {
                    problems.push(format!("{}: {}.{key} must be a {ty}", c.id, call.tool));
                }
                if let Some(allowed) = p.get("enum").and_then(Value::as_array)
                    && !allowed.contains(want)
                {
                    problems.push(format!(
                        "{}: {}.{key} = {want} is not one of {}",
                        c.id,
                        call.tool,
                        Value::Array(allowed.clone())
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(tool: &str, args: Value) -> Call {
        Call {
            tool: tool.to_owned(),
            args: serde_json::from_value(args).unwrap(),
        }
    }

    #[test]
    fn free_text_matches_by_substring_and_enums_exactly() {
        let c = call(
            "current_readings",
            json!({"room": "301", "kind": "temperature"}),
        );
        assert!(c.matches(
            "current_readings",
            &json!({"room": "F3.R301", "kind": "temperature", "floor": "3"})
        ));
        assert!(!c.matches(
            "current_readings",
            &json!({"room": "301", "kind": "Temperature"})
        ));
        assert!(!c.matches("current_readings", &json!({"room": "301"})));
        assert!(!c.matches(
            "find_sensors",
            &json!({"room": "301", "kind": "temperature"})
        ));
        assert!(!c.matches("current_readings", &Value::Null));
        let pasted = json!({"room": "what is the temperature in room 301 right now?", "kind": "temperature"});
        assert!(
            !c.matches("current_readings", &pasted),
            "a sentence is not a room"
        );
        let ru = call("find_sensors", json!({"query": "котл"}));
        assert!(ru.matches("find_sensors", &json!({"query": "Котла"})));
        let ack = call("acknowledge_alarm", json!({"alarm_id": 2}));
        assert!(ack.matches("acknowledge_alarm", &json!({"alarm_id": 2})));
        assert!(!ack.matches("acknowledge_alarm", &json!({"alarm_id": 12})));
        assert!(call("site_overview", json!({})).matches("site_overview", &json!({})));
    }

    #[test]
    fn calls_are_described_as_in_the_docs() {
        let c = call("history", json!({"sensor": "301", "range": "24h"}));
        assert_eq!(c.describe(), "history{range=\"24h\", sensor~\"301\"}");
        assert_eq!(
            describe_expect(&[c, call("sync_status", json!({}))]),
            "history{range=\"24h\", sensor~\"301\"} or sync_status{}"
        );
        assert_eq!(
            describe_call("alarms", &json!({"state": "open"})),
            "alarms{state=\"open\"}"
        );
        assert_eq!(
            describe_call("alarms", &Value::Null),
            "alarms{(invalid arguments)}"
        );
    }

    #[test]
    fn bad_cases_are_reported() {
        let bad = Case {
            id: "x".into(),
            lang: "de".into(),
            question: "?".into(),
            expect: vec![
                call("no_such_tool", json!({})),
                call("alarms", json!({"state": "closed", "colour": "red"})),
                call("acknowledge_alarm", json!({"alarm_id": "2"})),
            ],
        };
        let problems = check_cases(&[bad.clone(), bad]);
        let all = problems.join("\n");
        for needle in [
            "repeated",
            "lang",
            "unknown tool",
            "not one of",
            "no argument",
            "must be a integer",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
    }
}
