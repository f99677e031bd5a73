//! The vocabulary of the LLM client: messages, tool calls, tool specs, requests, responses,
//! server capabilities and errors.
//!
//! Owns: these types, their constructors, and the check of a tool spec against Koboldcpp's
//! constraints. Does not own: their wire encoding (see `super::wire`) or sending them (see
//! [`super::Llm`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person asking.
    User,
    /// The model (text, tool calls or both).
    Assistant,
    /// The result of one tool call, answering the call with the same id.
    Tool,
}

/// One message of a conversation, in the shape the agent keeps (and may store); the wire
/// encoding is made from it when a request is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// The text; `None` for an assistant message that only calls tools (sent as `null`).
    #[serde(default)]
    pub content: Option<String>,
    /// Tool calls made by the assistant (empty for every other role).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    fn new(role: Role, content: Option<String>) -> Self {
        Self {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, Some(text.into()))
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, Some(text.into()))
    }

    /// An assistant message with text only.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, Some(text.into()))
    }

    /// An assistant message that calls tools (with text beside the calls, if the model wrote
    /// any).
    pub fn assistant_tool_calls(content: Option<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// The result of the tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::new(Role::Tool, Some(content.into()))
        }
    }

    /// The text, or `""` when there is none.
    pub fn text(&self) -> &str {
        self.content.as_deref().unwrap_or("")
    }
}

/// One tool call made by the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The server's id (`call_48213` from Koboldcpp), echoed in the tool result.
    pub id: String,
    /// The tool's name, as the model wrote it (may be empty or unknown: the agent checks).
    pub name: String,
    /// The arguments as raw JSON text, as received (an object some servers send is written
    /// back to text); parse with [`crate::agent::toolcall::parse_arguments`].
    pub arguments: String,
}

/// A tool offered to the model: sent as `{"type":"function","function":{..}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name (`[A-Za-z0-9_-]{1,64}`).
    pub name: String,
    /// One line saying what it does; Koboldcpp requires it.
    pub description: String,
    /// JSON Schema of the arguments: `{"type":"object","properties":{..},"required":[..]}`.
    pub parameters: Value,
}

/// One chat completion request.
#[derive(Clone, Copy, Debug)]
pub struct ChatRequest<'a> {
    /// The conversation, system prompt first.
    pub messages: &'a [ChatMessage],
    /// Tools the model may call; empty sends no `tools` key at all (a plain completion).
    pub tools: &'a [ToolSpec],
    /// Answer length cap; `None` uses `[agent.llm] max_answer_tokens`.
    pub max_tokens: Option<u32>,
}

/// What the server answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text (`None` when the server sent `null`, as Koboldcpp does on tool calls).
    pub content: Option<String>,
    /// Structured tool calls (empty when none; tool calls printed as text are found by
    /// [`crate::agent::toolcall::extract_text_tool_calls`], not here).
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `tool_calls`, `length` (cut by `max_tokens`), ...
    pub finish_reason: Option<String>,
    /// Prompt tokens, when the server reports usage.
    pub prompt_tokens: Option<u32>,
    /// Generated tokens, when the server reports usage.
    pub completion_tokens: Option<u32>,
}

impl ChatResponse {
    /// The assistant message to append to the conversation.
    pub fn to_message(&self) -> ChatMessage {
        ChatMessage::assistant_tool_calls(self.content.clone(), self.tool_calls.clone())
    }

    /// No text (after trimming) and no tool calls: small models do this; worth a retry.
    pub fn is_empty(&self) -> bool {
        self.tool_calls.is_empty() && self.content.as_deref().is_none_or(|c| c.trim().is_empty())
    }

    /// The answer was cut by the token limit (`finish_reason: "length"`), so JSON in it may
    /// be truncated.
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

/// What the server can do, from the last [`super::Llm::probe`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `"KoboldCpp"` (the `result` of `/api/extra/version`), or `"openai-compatible"` for a
    /// server that only has `/v1/models` (llama.cpp server, vLLM).
    pub server: String,
    /// The server's version, when it tells (Koboldcpp: `"1.102"`).
    pub version: Option<String>,
    /// Speech-to-text (`/api/extra/transcribe`) has a model.
    pub transcribe: bool,
    /// Text-to-speech (`/api/extra/tts`) has a model.
    pub tts: bool,
    /// The server was started with `--password` (requests need the Bearer key).
    pub protected: bool,
    /// Context size in tokens: `[agent.llm] context_tokens`, else the server's
    /// (`/api/extra/true_max_context_length`), else 8192.
    pub context_tokens: u32,
    /// Exact token counts are available (`/api/extra/tokencount`); otherwise estimates.
    pub tokencount: bool,
}

/// Why a request to the LLM server failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// No `[agent.llm] url`.
    #[error("no LLM server is configured ([agent.llm] url)")]
    NotConfigured,
    /// The circuit breaker is open after repeated failures: no request was sent.
    #[error("the LLM server failed repeatedly; the next attempt is in {retry_in:?}")]
    CircuitOpen {
        /// Time until a trial request is allowed (zero while a trial is in flight).
        retry_in: Duration,
    },
    /// No connection (refused, DNS, unreachable network, connect timeout).
    #[error("cannot connect to the LLM server: {0}")]
    Connect(String),
    /// No answer within `[agent.llm] request_timeout`.
    #[error("the LLM server did not answer within the request timeout")]
    Timeout,
    /// HTTP 503 (or 429) through every busy retry: Koboldcpp generates one answer at a time.
    #[error("the LLM server is busy (HTTP 503) and stayed busy through the retries")]
    Busy,
    /// HTTP 401/403: the key is missing or wrong.
    #[error(
        "the LLM server refused the key (HTTP 401): check [agent.llm] api_key_env/_file/_credential"
    )]
    Unauthorized,
    /// Another HTTP error status; `body` is the server's message, shortened.
    #[error("the LLM server answered HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The error message of the body (Koboldcpp's `detail.msg`, OpenAI's
        /// `error.message`) or the start of the body.
        body: String,
    },
    /// The server answered, but not with something usable (not JSON, no choices, an empty
    /// transcript or audio, a closed connection instead of an answer).
    #[error("unusable answer from the LLM server: {0}")]
    BadResponse(String),
    /// The caller's deadline passed before an answer came.
    #[error("the deadline passed before the LLM server answered")]
    Cancelled,
}

impl LlmError {
    /// Should the agent answer from local data (degraded mode) instead of retrying the model?
    ///
    /// True when the server cannot serve us now: not configured, circuit open, no connection,
    /// timeout, still busy, the key refused (a configuration fault that no retry fixes), the
    /// deadline passed ("too slow"), and HTTP 502/504 (a proxy whose upstream is down).
    /// False when the server answered and the request or the answer was at fault
    /// ([`LlmError::BadResponse`], other HTTP errors): the agent's retry ladder handles those.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::NotConfigured
            | Self::CircuitOpen { .. }
            | Self::Connect(_)
            | Self::Timeout
            | Self::Busy
            | Self::Unauthorized
            | Self::Cancelled => true,
            Self::Http { status, .. } => matches!(status, 502 | 504),
            Self::BadResponse(_) => false,
        }
    }

    /// Does this failure count towards opening the circuit breaker? The server did not serve
    /// us: no connection, timeout, busy, key refused, 502/504. [`LlmError::Cancelled`] is
    /// decided by the caller (it counts only when a request was cut short by the deadline).
    pub(crate) fn counts_against_server(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Timeout | Self::Busy | Self::Unauthorized => true,
            Self::Http { status, .. } => matches!(status, 502 | 504),
            Self::NotConfigured
            | Self::CircuitOpen { .. }
            | Self::BadResponse(_)
            | Self::Cancelled => false,
        }
    }

    /// A short label for metrics and logs: `not_configured`, `circuit_open`, `connect`,
    /// `timeout`, `busy`, `unauthorized`, `http`, `bad_response`, `cancelled`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Connect(_) => "connect",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::Unauthorized => "unauthorized",
            Self::Http { .. } => "http",
            Self::BadResponse(_) => "bad_response",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Checks a tool spec against what Koboldcpp needs (a spec that misses any of these makes it
/// abort the request with a `KeyError` and no JSON error body): a name of `[A-Za-z0-9_-]`
/// (1–64), a non-empty description, `parameters.type == "object"`, `parameters.properties`
/// an object (`{}` for a tool without arguments), every property an object with a `"type"`,
/// and `required` (when present) naming only listed properties. Returns the problems, each
/// starting with the tool's name; empty when the spec is fine.
pub fn check_tool_spec(spec: &ToolSpec) -> Vec<String> {
    let name = &spec.name;
    let mut problems = Vec::new();
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_name {
        problems.push(format!(
            "{name:?}: the name must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
        ));
    }
    if spec.description.trim().is_empty() {
        problems.push(format!("{name}: the description is empty"));
    }
    let Some(params) = spec.parameters.as_object() else {
        problems.push(format!("{name}: parameters must be a JSON object"));
        return problems;
    };
    if params.get("type").and_then(Value::as_str) != Some("object") {
        problems.push(format!("{name}: parameters.type must be \"object\""));
    }
    let Some(properties) = params.get("properties").and_then(Value::as_object) else {
        problems.push(format!(
            "{name}: parameters.properties must be an object ({{}} for no arguments)"
        ));
        return problems;
    };
    for (prop, schema) in properties {
        let typed = schema
            .as_object()
            .and_then(|s| s.get("type"))
            .is_some_and(|t| {
                t.is_string()
                    || t.as_array()
                        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
            });
        if !typed {
            problems.push(format!("{name}: property {prop:?} has no \"type\""));
        }
    }
    match params.get("required") {
        None => {}
        Some(Value::Array(required)) => {
            for r in required {
                match r.as_str() {
                    Some(r) if properties.contains_key(r) => {}
                    Some(r) => problems.push(format!(
                        "{name}: required property {r:?} is not in properties"
                    )),
                    None => problems.push(format!("{name}: required must list property names")),
                }
            }
        }
        Some(_) => problems.push(format!("{name}: required must be an array of names")),
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(description: &str, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: "list_alarms".to_owned(),
            description: description.to_owned(),
            parameters,
        }
    }

    #[test]
    fn a_good_spec_has_no_problems() {
        let good = spec(
            "List building alarms",
            json!({"type": "object", "properties": {
                "state": {"type": "string", "enum": ["active", "all"]},
                "limit": {"type": ["integer", "null"]}
            }, "required": ["state"]}),
        );
        assert_eq!(check_tool_spec(&good), Vec::<String>::new());
        let no_args = spec("Overview", json!({"type": "object", "properties": {}}));
        assert!(check_tool_spec(&no_args).is_empty());
    }

    #[test]
    fn every_koboldcpp_constraint_is_checked() {
        let cases = [
            (
                spec(" ", json!({"type": "object", "properties": {}})),
                "description",
            ),
            (spec("d", json!("x")), "JSON object"),
            (spec("d", json!({"properties": {}})), "parameters.type"),
            (
                spec("d", json!({"type": "object"})),
                "properties must be an object",
            ),
            (
                spec(
                    "d",
                    json!({"type": "object", "properties": {"a": {"enum": [1]}}}),
                ),
                "\"a\" has no \"type\"",
            ),
            (
                spec(
                    "d",
                    json!({"type": "object", "properties": {"a": "string"}}),
                ),
                "has no \"type\"",
            ),
            (
                spec(
                    "d",
                    json!({"type": "object", "properties": {}, "required": ["b"]}),
                ),
                "\"b\" is not in properties",
            ),
            (
                spec(
                    "d",
                    json!({"type": "object", "properties": {}, "required": "b"}),
                ),
                "array of names",
            ),
        ];
        for (s, expected) in cases {
            let problems = check_tool_spec(&s);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected:?} not in {problems:?}"
            );
        }
        let bad_name = ToolSpec {
            name: "list alarms!".to_owned(),
            ..spec("d", json!({"type": "object", "properties": {}}))
        };
        assert_eq!(check_tool_spec(&bad_name).len(), 1);
    }

    #[test]
    fn unreachable_errors_are_the_degraded_mode_ones() {
        assert!(LlmError::Connect("refused".into()).is_unreachable());
        assert!(
            LlmError::CircuitOpen {
                retry_in: Duration::ZERO
            }
            .is_unreachable()
        );
        assert!(LlmError::Unauthorized.is_unreachable());
        assert!(
            LlmError::Http {
                status: 502,
                body: String::new()
            }
            .is_unreachable()
        );
        assert!(
            !LlmError::Http {
                status: 500,
                body: String::new()
            }
            .is_unreachable()
        );
        assert!(!LlmError::BadResponse("x".into()).is_unreachable());
        assert!(!LlmError::BadResponse("x".into()).counts_against_server());
        assert!(!LlmError::Cancelled.counts_against_server());
    }

    #[test]
    fn messages_round_trip_through_serde() {
        let m = ChatMessage::assistant_tool_calls(
            None,
            vec![ToolCall {
                id: "call_1".into(),
                name: "x".into(),
                arguments: "{}".into(),
            }],
        );
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ChatMessage>(&text).unwrap(), m);
        let r = ChatMessage::tool_result("call_1", "42");
        assert_eq!(r.role, Role::Tool);
        assert_eq!(r.tool_call_id.as_deref(), Some("call_1"));
        let empty = ChatResponse {
            content: Some("  ".into()),
            ..ChatResponse::default()
        };
        assert!(empty.is_empty());
    }
}
