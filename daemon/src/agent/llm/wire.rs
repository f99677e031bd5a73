//! The JSON on the wire: chat request bodies, and lenient parsing of what Koboldcpp and other
//! OpenAI-compatible servers answer. Pure functions, no I/O.
//!
//! Owns: the encoding of [`ChatRequest`] and the decoding of chat, version, models, tokencount
//! and transcribe answers, and of error bodies. Does not own: sending (see [`super::Llm`]).

use serde_json::{Map, Value, json};

use super::types::{ChatMessage, ChatRequest, ChatResponse, Role, ToolCall};

/// Longest error text kept from a body.
const MAX_ERROR_CHARS: usize = 300;

/// Sampling settings that go into every chat request.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sampling<'a> {
    pub(super) model: &'a str,
    pub(super) temperature: f32,
    pub(super) max_tokens: u32,
}

/// The body of `POST /v1/chat/completions`: `model`, `messages`, `max_tokens`, `temperature`,
/// `stream: false`, and with tools `tools` + `tool_choice: "auto"` (never `"required"`, which
/// crashes Koboldcpp with several tools).
pub(super) fn chat_body(sampling: Sampling<'_>, req: &ChatRequest<'_>) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(sampling.model));
    body.insert(
        "messages".into(),
        Value::Array(req.messages.iter().map(message).collect()),
    );
    body.insert(
        "max_tokens".into(),
        json!(req.max_tokens.unwrap_or(sampling.max_tokens)),
    );
    body.insert("temperature".into(), json!(sampling.temperature));
    body.insert("stream".into(), json!(false));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        body.insert("tool_choice".into(), json!("auto"));
    }
    Value::Object(body)
}

fn message(m: &ChatMessage) -> Value {
    match m.role {
        Role::System | Role::User => json!({"role": m.role, "content": m.text()}),
        // `""`, never `null`, beside tool calls: llama.cpp's server refuses a null content.
        Role::Assistant => {
            let mut out = json!({"role": "assistant", "content": m.text()});
            if !m.tool_calls.is_empty() {
                out["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
            }
            out
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.as_deref().unwrap_or(""),
            "content": m.text(),
        }),
    }
}

/// Parses a chat completion answer. Lenient where servers differ: `content` may be null, a
/// string or a list of text parts; `tool_calls` may be absent, null, `[]`, or calls whose
/// `arguments` are a string (Koboldcpp) or an object (some servers; written back to text);
/// a legacy `function_call` is read as one call. A call without an id gets `call_<n>`; a call
/// without a name is kept with an empty name so the agent sees the malformed call.
///
/// # Errors
/// Not JSON, no `choices`, or no message in the first choice.
pub(super) fn parse_chat(body: &[u8]) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not JSON ({e}): {}", snippet(body)))?;
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| format!("the answer has no choices: {}", snippet(body)))?;
    let (content, calls) = match choice.get("message") {
        Some(Value::Object(m)) => {
            let mut calls = match m.get("tool_calls") {
                Some(Value::Array(list)) => list.iter().enumerate().map(tool_call).collect(),
                Some(one @ Value::Object(_)) => vec![tool_call((0, one))],
                _ => Vec::new(),
            };
            if calls.is_empty()
                && let Some(f @ Value::Object(_)) = m.get("function_call")
            {
                calls.push(tool_call((0, &json!({ "function": f }))));
            }
            (content(m.get("content")), calls)
        }
        // A text-completion shaped choice.
        _ => match choice.get("text") {
            Some(Value::String(t)) => (Some(t.clone()), Vec::new()),
            _ => {
                return Err(format!(
                    "the first choice has no message: {}",
                    snippet(body)
                ));
            }
        },
    };
    let usage = v.get("usage");
    let tokens = |key: &str| {
        usage
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Ok(ChatResponse {
        content,
        tool_calls: calls,
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
    })
}

fn content(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        // [{"type":"text","text":"..."}, ...]
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        other => Some(other.to_string()),
    }
}

fn tool_call((index, v): (usize, &Value)) -> ToolCall {
    let function = v.get("function").filter(|f| f.is_object()).unwrap_or(v);
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("call_{index}"), str::to_owned);
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    let arguments = match function
        .get("arguments")
        .or_else(|| function.get("parameters"))
    {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".to_owned(),
        Some(other) => other.to_string(),
    };
    ToolCall {
        id,
        name,
        arguments,
    }
}

/// Koboldcpp's `/api/extra/version`: `(result, version, protected, transcribe, tts)`, or
/// `None` when the body is not that shape.
pub(super) fn parse_version(body: &[u8]) -> Option<VersionInfo> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let server = v.get("result")?.as_str()?.to_owned();
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    Some(VersionInfo {
        server,
        version: v.get("version").and_then(Value::as_str).map(str::to_owned),
        protected: flag("protected"),
        transcribe: flag("transcribe"),
        tts: flag("tts"),
    })
}

/// What `/api/extra/version` tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VersionInfo {
    pub(super) server: String,
    pub(super) version: Option<String>,
    pub(super) protected: bool,
    pub(super) transcribe: bool,
    pub(super) tts: bool,
}

/// `{"value": N}` (tokencount, true_max_context_length).
pub(super) fn parse_value(body: &[u8]) -> Option<u32> {
    let v: Value = serde_json::from_slice(body).ok()?;
    u32::try_from(v.get("value")?.as_u64()?).ok()
}

/// llama.cpp server's `/tokenize`: `{"tokens": [..]}`, counted.
pub(super) fn parse_tokens(body: &[u8]) -> Option<u32> {
    let v: Value = serde_json::from_slice(body).ok()?;
    u32::try_from(v.get("tokens")?.as_array()?.len()).ok()
}

/// `/v1/models`: is it a model list, and the served context size when the server tells
/// (vLLM's `max_model_len`; llama.cpp's `meta.n_ctx_train` is the training size, not `-c`).
pub(super) fn parse_models(body: &[u8]) -> Option<Option<u32>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let first = v.get("data")?.as_array()?.first();
    let ctx = first
        .and_then(|m| m.get("max_model_len"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    Some(ctx)
}

/// llama.cpp server's `/props`: the context of one slot,
/// `default_generation_settings.n_ctx` (or a top-level `n_ctx`).
pub(super) fn parse_props(body: &[u8]) -> Option<u32> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("default_generation_settings")
        .and_then(|d| d.get("n_ctx"))
        .or_else(|| v.get("n_ctx"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

/// `{"text": "..."}` from the transcribe endpoint.
pub(super) fn parse_transcript(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("text")?.as_str().map(str::to_owned)
}

/// The message of an error body: Koboldcpp's `{"detail":{"msg","type"}}`, OpenAI's and
/// llama.cpp's `{"error":{"message","type"}}`, or the start of the body as text.
pub(super) fn error_text(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let detail = v.get("detail").or_else(|| v.get("error"));
        let msg = detail
            .and_then(|d| d.get("msg").or_else(|| d.get("message")))
            .and_then(Value::as_str)
            .or_else(|| detail.and_then(Value::as_str));
        if let Some(msg) = msg {
            let kind = detail.and_then(|d| d.get("type")).and_then(Value::as_str);
            return shorten(&match kind {
                Some(kind) => format!("{msg} ({kind})"),
                None => msg.to_owned(),
            });
        }
    }
    snippet(body)
}

/// The start of a body, as text, for error messages.
pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        shorten(text)
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::ToolSpec;
    use super::*;

    const SAMPLING: Sampling<'static> = Sampling {
        model: "koboldcpp",
        temperature: 0.2,
        max_tokens: 512,
    };

    #[test]
    fn request_encodes_history_and_tools_as_koboldcpp_reads_them() {
        let call = ToolCall {
            id: "call_48213".into(),
            name: "list_alarms".into(),
            arguments: "{\"state\": \"active\"}".into(),
        };
        let messages = [
            ChatMessage::system("You are the building assistant."),
            ChatMessage::user("Any active alarms?"),
            ChatMessage::assistant_tool_calls(None, vec![call]),
            ChatMessage::tool_result("call_48213", "[]"),
        ];
        let tools = [ToolSpec {
            name: "list_alarms".into(),
            description: "List building alarms".into(),
            parameters: json!({"type": "object", "properties": {"state": {"type": "string"}}}),
        }];
        let body = chat_body(
            SAMPLING,
            &ChatRequest {
                messages: &messages,
                tools: &tools,
                max_tokens: Some(100),
            },
        );
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["tools"][0]["type"], "function");
        assert_eq!(
            body["tools"][0]["function"]["description"],
            "List building alarms"
        );
        let m = &body["messages"];
        assert_eq!(
            m[0],
            json!({"role": "system", "content": "You are the building assistant."})
        );
        // llama.cpp's server refuses `content: null` on an assistant message.
        assert_eq!(m[2]["content"], "");
        assert_eq!(
            m[2]["tool_calls"][0],
            json!({"id": "call_48213", "type": "function", "function": {
                "name": "list_alarms", "arguments": "{\"state\": \"active\"}"}})
        );
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "call_48213", "content": "[]"})
        );
    }

    #[test]
    fn no_tools_sends_no_tools_key() {
        let messages = [ChatMessage::user("hi")];
        let body = chat_body(
            SAMPLING,
            &ChatRequest {
                messages: &messages,
                tools: &[],
                max_tokens: None,
            },
        );
        assert!(body.get("tools").is_none());
        assert!(body.get("tool_choice").is_none());
        assert_eq!(body["max_tokens"], 512);
        assert!(body["messages"][0].get("tool_calls").is_none());
    }

    #[test]
    fn parses_koboldcpp_tool_call_answer() {
        let body = br#"{"id":"chatcmpl-A1","object":"chat.completion","created":1763900000,
            "model":"koboldcpp/m","usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150},
            "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
              {"type":"function","function":{"name":"list_alarms","arguments":"{\"state\": \"active\"}"},
               "id":"call_48213"}]},"finish_reason":"tool_calls","logprobs":null}]}"#;
        let r = parse_chat(body).unwrap();
        assert_eq!(r.content, None);
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(r.prompt_tokens, Some(120));
        assert_eq!(
            r.tool_calls,
            vec![ToolCall {
                id: "call_48213".into(),
                name: "list_alarms".into(),
                arguments: "{\"state\": \"active\"}".into()
            }]
        );
    }

    #[test]
    fn parses_plain_answers_and_other_servers_shapes() {
        let plain = br#"{"choices":[{"message":{"role":"assistant","content":"No active alarms.","tool_calls":[]},"finish_reason":"stop"}]}"#;
        let r = parse_chat(plain).unwrap();
        assert_eq!(r.content.as_deref(), Some("No active alarms."));
        assert!(r.tool_calls.is_empty());
        assert_eq!(r.prompt_tokens, None);

        let object_args = br#"{"choices":[{"message":{"content":"","tool_calls":[
            {"function":{"name":"get_readings","arguments":{"room":"301"}}},
            {"id":"","function":{"arguments":null}}]}}]}"#;
        let r = parse_chat(object_args).unwrap();
        assert_eq!(r.tool_calls[0].arguments, r#"{"room":"301"}"#);
        assert_eq!(r.tool_calls[0].id, "call_0");
        assert_eq!(
            r.tool_calls[1].name, "",
            "a nameless call is kept for the agent to see"
        );
        assert_eq!(r.tool_calls[1].arguments, "{}");
        assert_eq!(r.tool_calls[1].id, "call_1");

        let legacy = br#"{"choices":[{"message":{"content":null,"function_call":{"name":"x","arguments":"{}"}}}]}"#;
        assert_eq!(parse_chat(legacy).unwrap().tool_calls[0].name, "x");

        let parts = br#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#;
        assert_eq!(parse_chat(parts).unwrap().content.as_deref(), Some("ab"));
    }

    #[test]
    fn unusable_bodies_say_why() {
        assert!(parse_chat(b"<html>").unwrap_err().contains("not JSON"));
        assert!(
            parse_chat(br#"{"choices":[]}"#)
                .unwrap_err()
                .contains("no choices")
        );
        assert!(
            parse_chat(br#"{"choices":[{}]}"#)
                .unwrap_err()
                .contains("no message")
        );
    }

    #[test]
    fn error_bodies_of_each_server() {
        assert_eq!(
            error_text(br#"{"detail":{"msg":"Error parsing input.","type":"bad_input"}}"#),
            "Error parsing input. (bad_input)"
        );
        assert_eq!(
            error_text(br#"{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}"#),
            "bad (invalid_request_error)"
        );
        assert_eq!(error_text(b""), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(
            error_text(long.as_bytes()).chars().count(),
            MAX_ERROR_CHARS + 1
        );
    }

    #[test]
    fn capability_bodies() {
        let v = parse_version(br#"{"result":"KoboldCpp","version":"1.102","protected":true,"transcribe":true,"tts":false}"#).unwrap();
        assert_eq!(v.server, "KoboldCpp");
        assert!(v.protected && v.transcribe && !v.tts);
        assert!(parse_version(br#"{"object":"list"}"#).is_none());
        assert_eq!(parse_value(br#"{"value":8192}"#), Some(8192));
        assert_eq!(parse_tokens(br#"{"tokens":[1,2,3]}"#), Some(3));
        assert_eq!(parse_tokens(br#"{"value":3}"#), None);
        assert_eq!(
            parse_models(
                br#"{"data":[{"id":"m","max_model_len":4096,"meta":{"n_ctx_train":32768}}]}"#
            ),
            Some(Some(4096))
        );
        assert_eq!(
            parse_models(br#"{"data":[{"id":"m","meta":{"n_ctx_train":32768}}]}"#),
            Some(None)
        );
        assert_eq!(
            parse_props(br#"{"default_generation_settings":{"n_ctx":6144},"total_slots":2}"#),
            Some(6144)
        );
        assert_eq!(parse_props(br#"{"n_ctx":8192}"#), Some(8192));
        assert_eq!(parse_props(br#"{"default_generation_settings":{}}"#), None);
        assert_eq!(parse_models(br#"{"object":"list","data":[]}"#), Some(None));
        assert_eq!(
            parse_transcript(br#"{"text":" hi "}"#).as_deref(),
            Some(" hi ")
        );
    }
}
