//! One question through the LLM: the bounded tool loop.
//!
//! - At most `max_tool_rounds` tool rounds and `turn_timeout` for the whole question.
//! - One tool call per step (small models do best so); a call printed as text is recognised.
//! - A malformed call (arguments not JSON, unknown tool) gets one corrective message; the next
//!   malformed one ends tool use and the model must answer with what it has.
//! - An empty answer is asked again at most twice.
//! - The LLM unreachable, busy, too slow or its circuit open: the keyword router answers from
//!   local data and says the assistant is offline.
//! - History is cut to a token budget; the system prompt is never cut.
//! - An answer built on stale readings that does not say so gets a stale note.

use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::llm::{ChatMessage, ChatRequest, LlmError, Role, ToolCall, ToolSpec};
use super::session::{self, Stored};
use super::tools::{self, Tool, ToolContext, ToolOutput};
use super::{Agent, Question, Reply, Source, ToolTrace, commands, text, toolcall};
use crate::context::Core;
use crate::model::{Lang, Timestamp};

/// Most characters of one tool result sent to the model.
const MAX_RESULT_CHARS: usize = 6000;
/// Empty answers asked again.
const MAX_EMPTY_RETRIES: u32 = 2;
/// Tool calls run from one model step.
const MAX_CALLS_PER_STEP: usize = 3;

/// Answers free text through the LLM, or through the router when it is not available.
pub(super) async fn answer(agent: &Agent, core: &Core, q: &Question, lang: Lang) -> Reply {
    let cfg = core.config();
    let Some(llm) = agent.llm() else {
        agent.metrics().count_fallback("not_configured");
        return commands::route(agent, core, q, lang, "not_configured").await;
    };
    if llm.breaker_open() {
        agent.metrics().count_fallback("circuit_open");
        return commands::route(agent, core, q, lang, "down").await;
    }
    let deadline = Instant::now() + cfg.agent.turn_timeout;
    let now = Timestamp::now();
    let building = cfg
        .site
        .name
        .clone()
        .or_else(|| cfg.gateway.name.clone())
        .unwrap_or_else(|| cfg.gateway.id.clone());
    let system = text::system_prompt(
        lang,
        &building,
        &now.to_rfc3339(),
        cfg.agent.instructions.as_deref(),
    );
    let specs = tools::specs();

    // Token budget: the context minus the answer, the system prompt and the tools.
    let context = llm.context_tokens();
    let system_tokens = llm.count_tokens(&system).await;
    let tools_tokens =
        super::llm::estimate_tokens(&serde_json::to_string(&specs).unwrap_or_default()) + 40;
    let question_tokens = llm.count_tokens(&q.text).await;
    let fixed = system_tokens + tools_tokens + question_tokens + cfg.agent.llm.max_answer_tokens;
    let room = context.saturating_sub(fixed);
    // Tool results need space too: history gets at most half of what is left.
    let history_budget = cfg.agent.history_tokens.min(room / 2);
    let history =
        match session::load(core, &q.session, history_budget, cfg.agent.session_idle).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "Cannot read the conversation; answering without it.");
                Vec::new()
            }
        };
    let history_tokens: u32 = history.iter().map(|m| m.tokens).sum();
    let result_budget_chars =
        usize::try_from(room.saturating_sub(history_tokens).saturating_mul(3))
            .unwrap_or(usize::MAX);

    let mut messages = vec![ChatMessage::system(&system)];
    messages.extend(session::to_messages(&history));
    messages.push(ChatMessage::user(&q.text));

    let mut run = Run {
        agent,
        core,
        q,
        lang,
        now,
        traces: Vec::new(),
        out: ToolOutput::default(),
        result_chars_left: result_budget_chars,
    };
    let mut rounds = 0u32;
    let mut corrected = false;
    let mut tools_off = false;
    let mut empty = 0u32;
    loop {
        let with_tools = !tools_off && rounds < cfg.agent.max_tool_rounds;
        let no_tools: [ToolSpec; 0] = [];
        let req = ChatRequest {
            messages: &messages,
            tools: if with_tools { &specs } else { &no_tools },
            max_tokens: Some(cfg.agent.llm.max_answer_tokens),
        };
        // `chat` keeps to the deadline itself (LlmError::Cancelled past it).
        let resp = match llm.chat(&req, deadline).await {
            Err(e) if e.is_unreachable() => {
                let reason = match e {
                    LlmError::Timeout | LlmError::Cancelled => "timeout",
                    LlmError::Busy => "busy",
                    LlmError::NotConfigured => "not_configured",
                    _ => "down",
                };
                debug!(error = %e, "LLM unavailable; answering from local data.");
                return run.fallback(reason).await;
            }
            Err(e) => {
                agent.metrics().malformed.inc();
                warn!(error = %e, "Unusable answer from the LLM.");
                if corrected {
                    return run.fallback("bad_response").await;
                }
                corrected = true;
                continue;
            }
            Ok(r) => r,
        };
        let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        let mut calls = resp.tool_calls.clone();
        let content = resp.content.clone().unwrap_or_default();
        if calls.is_empty() && with_tools {
            calls = toolcall::extract_text_tool_calls(&content, &names);
        }
        if with_tools && !calls.is_empty() {
            calls.truncate(MAX_CALLS_PER_STEP);
            rounds += 1;
            messages.push(ChatMessage {
                role: Role::Assistant,
                content: None,
                tool_calls: calls.clone(),
                tool_call_id: None,
            });
            let mut malformed = false;
            for call in &calls {
                let result = match run.call(call).await {
                    Ok(v) => v,
                    Err(Problem::Malformed(msg)) => {
                        malformed = true;
                        msg
                    }
                    Err(Problem::Failed(msg)) => msg,
                };
                messages.push(ChatMessage::tool_result(&call.id, &result));
            }
            if malformed {
                agent.metrics().malformed.inc();
                if corrected {
                    // Second malformed call: no more tools, answer with what there is.
                    tools_off = true;
                    messages.push(ChatMessage::user(match lang {
                        Lang::En => "Answer my question now with the data you already have, without tools.",
                        Lang::Ru => "Ответь на мой вопрос сейчас по уже полученным данным, без инструментов.",
                    }));
                }
                corrected = true;
            }
            continue;
        }
        let answer = clean(&content);
        if answer.is_empty() {
            agent.metrics().malformed.inc();
            empty += 1;
            if empty > MAX_EMPTY_RETRIES {
                return run.fallback("empty").await;
            }
            continue;
        }
        return run.finish(answer, question_tokens, &llm).await;
    }
}

/// Strips reasoning blocks and wrappers some models add around the answer.
fn clean(content: &str) -> String {
    let mut s = content.to_owned();
    while let (Some(a), Some(b)) = (s.find("<think>"), s.find("</think>")) {
        if b < a {
            break;
        }
        s.replace_range(a..b + "</think>".len(), "");
    }
    s.trim().to_owned()
}

enum Problem {
    /// The call itself was malformed (not JSON, unknown tool): counts towards the retry ladder.
    Malformed(String),
    /// The tool refused or failed: the text goes back to the model.
    Failed(String),
}

struct Run<'a> {
    agent: &'a Agent,
    core: &'a Core,
    q: &'a Question,
    lang: Lang,
    now: Timestamp,
    traces: Vec<ToolTrace>,
    out: ToolOutput,
    result_chars_left: usize,
}

impl Run<'_> {
    async fn call(&mut self, call: &ToolCall) -> Result<String, Problem> {
        let metrics = self.agent.metrics().clone();
        let Some(tool) = Tool::from_name(&call.name) else {
            let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
            metrics.count_tool(&call.name, "invalid");
            return Err(Problem::Malformed(format!(
                "error: there is no tool {:?}{}. Tools: {}.",
                call.name,
                tools::did_you_mean(&call.name, &names),
                names.join(", ")
            )));
        };
        let args = match toolcall::parse_arguments(&call.arguments) {
            Ok(a) => a,
            Err(e) => {
                metrics.count_tool(tool.name(), "invalid");
                return Err(Problem::Malformed(format!(
                    "error: the arguments of {} are not a JSON object ({e}). Call it again with arguments like {}.",
                    tool.name(),
                    example(tool)
                )));
            }
        };
        let args = match tools::validate(tool, args) {
            Ok(a) => a,
            Err(e) => {
                metrics.count_tool(tool.name(), "invalid");
                self.traces.push(ToolTrace {
                    name: tool.name().to_owned(),
                    args: Value::Null,
                    ok: false,
                });
                return Err(Problem::Failed(format!(
                    "error: {e}. Call {} again with arguments like {}.",
                    tool.name(),
                    example(tool)
                )));
            }
        };
        let ctx = ToolContext {
            core: self.core,
            agent: self.agent,
            actor: &self.q.actor,
            lang: self.lang,
            now: self.now,
        };
        let result =
            tokio::time::timeout(tools::TOOL_TIMEOUT, tools::call(tool, &args, &ctx)).await;
        let trace = |ok| ToolTrace {
            name: tool.name().to_owned(),
            args: Value::Object(args.clone()),
            ok,
        };
        match result {
            Ok(Ok(out)) => {
                metrics.count_tool(tool.name(), "ok");
                self.traces.push(trace(true));
                let mut text = serde_json::to_string(&out.data).unwrap_or_default();
                let cap = MAX_RESULT_CHARS.min(self.result_chars_left.max(400));
                if text.chars().count() > cap {
                    text = text.chars().take(cap).collect::<String>() + "…(truncated)";
                }
                self.result_chars_left = self.result_chars_left.saturating_sub(text.len());
                self.out.attachments.extend(out.attachments);
                self.out.confirmations.extend(out.confirmations);
                self.out.stale.extend(out.stale);
                Ok(text)
            }
            Ok(Err(e)) => {
                metrics.count_tool(tool.name(), "error");
                self.traces.push(trace(false));
                Err(Problem::Failed(format!("error: {e}")))
            }
            Err(_) => {
                metrics.count_tool(tool.name(), "error");
                self.traces.push(trace(false));
                Err(Problem::Failed(
                    "error: the tool took too long; try a narrower question".into(),
                ))
            }
        }
    }

    /// The router's answer, keeping pictures and confirmations already produced.
    async fn fallback(self, reason: &str) -> Reply {
        self.agent.metrics().count_fallback(reason);
        let mut r = commands::route(self.agent, self.core, self.q, self.lang, reason).await;
        for a in self.out.attachments {
            if !r.attachments.contains(&a) {
                r.attachments.push(a);
            }
        }
        r.confirmations.extend(self.out.confirmations);
        let mut traces = self.traces;
        traces.extend(r.tools);
        r.tools = traces;
        r
    }

    async fn finish(
        mut self,
        mut answer: String,
        question_tokens: u32,
        llm: &super::llm::Llm,
    ) -> Reply {
        self.out.stale.sort();
        self.out.stale.dedup();
        if !self.out.stale.is_empty() && !mentions_staleness(&answer) {
            answer.push_str("\n\n");
            answer.push_str(&text::stale_note(self.lang, &self.out.stale));
        }
        for c in &self.out.confirmations {
            answer.push_str("\n\n");
            answer.push_str(&c.prompt);
        }
        let answer_tokens = llm.count_tokens(&answer).await;
        let saved = session::append(
            self.core,
            &self.q.session,
            &self.q.actor.user,
            &self.q.actor.channel,
            self.lang,
            Stored {
                role: "user".into(),
                content: self.q.text.clone(),
                tokens: question_tokens,
            },
            Stored {
                role: "assistant".into(),
                content: answer.clone(),
                tokens: answer_tokens,
            },
        )
        .await;
        if let Err(e) = saved {
            warn!(error = %e, "Cannot record the conversation.");
        }
        Reply {
            text: answer,
            lang: self.lang,
            source: Source::Llm,
            attachments: self.out.attachments,
            confirmations: self.out.confirmations,
            tools: self.traces,
            elapsed_ms: 0,
        }
    }
}

/// Whether an answer already says some data is old.
fn mentions_staleness(answer: &str) -> bool {
    let a = answer.to_lowercase();
    [
        "stale",
        "outdated",
        "no fresh",
        "not updated",
        "устар",
        "нет свежих",
        "не обновл",
    ]
    .iter()
    .any(|w| a.contains(w))
}

/// An example argument object for a corrective message.
fn example(tool: Tool) -> String {
    let schema = tool.parameters();
    let mut ex = serde_json::Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let v = match (
                p.get("type").and_then(Value::as_str),
                p.get("enum")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first()),
            ) {
                (_, Some(first)) => first.clone(),
                (Some("integer"), _) => Value::from(1),
                (Some("number"), _) => Value::from(1.0),
                (Some("boolean"), _) => Value::Bool(false),
                _ => Value::String("...".into()),
            };
            ex.insert(k.clone(), v);
        }
    }
    Value::Object(ex).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_is_stripped_and_staleness_detected() {
        assert_eq!(clean("<think>hmm</think>\n It is 21 °C."), "It is 21 °C.");
        assert_eq!(clean("  "), "");
        assert!(mentions_staleness("The reading is stale (last at 10:00)."));
        assert!(mentions_staleness("Показание устарело."));
        assert!(!mentions_staleness(
            "It is 21.5 °C in room 301 at 10:00 UTC."
        ));
    }

    #[test]
    fn examples_follow_the_schema() {
        let ex: Value = serde_json::from_str(&example(Tool::History)).expect("json");
        assert_eq!(ex["range"], "1h");
        assert_eq!(ex["chart"], false);
        let ex: Value = serde_json::from_str(&example(Tool::AcknowledgeAlarm)).expect("json");
        assert_eq!(ex["alarm_id"], 1);
    }
}
