//! One question through the LLM: the bounded tool loop.
//!
//! - At most `max_tool_rounds` tool rounds and `turn_timeout` for the whole question.
//! - One tool call per step (small models do best so); a call printed as text is recognised.
//! - A malformed call (arguments not JSON, unknown tool) gets one corrective message; the next
//!   malformed one ends tool use. A call identical to an earlier one is not run again and ends
//!   tool use. Whenever tool use ends (those, or the last round), the model is told to answer
//!   now from the results it has.
//! - Text that looks like a tool call is never shown: it is run while tools are allowed, asked
//!   again once in plain words after, and otherwise the router answers.
//! - An empty answer is asked again at most twice.
//! - The LLM unreachable, busy, too slow or its circuit open: the keyword router answers from
//!   local data and says why.
//! - The system prompt and the tool list are byte-stable across questions (the time goes with
//!   the question), so the server reuses its prompt cache. Tokens are counted by the server
//!   where it can (see `super::llm`); history is cut to a token budget, tool results are cut by
//!   tokens, and a prompt the server refuses as too long is trimmed (history first, then the
//!   longest tool result) and sent again. The system prompt is never cut.
//! - An answer built on stale readings that does not say so gets a stale note.

use std::collections::HashSet;

use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::llm::{ChatMessage, ChatRequest, LlmError, Role, ToolCall, ToolSpec};
use super::session::{self, Stored};
use super::tools::{self, Tool, ToolContext, ToolOutput};
use super::{Agent, Question, Reply, Source, ToolTrace, commands, text, toolcall};
use crate::context::Core;
use crate::model::{Lang, Timestamp};

/// Most tokens of one tool result sent to the model.
const MAX_RESULT_TOKENS: u32 = 1500;
/// Fewest tokens a tool result is given, however full the context.
const MIN_RESULT_TOKENS: u32 = 200;
/// Times a prompt the server refused as too long is trimmed and sent again.
const MAX_TRIMS: u32 = 4;
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
    let building = cfg
        .site
        .name
        .clone()
        .or_else(|| cfg.gateway.name.clone())
        .unwrap_or_else(|| cfg.gateway.id.clone());
    let system = text::system_prompt(lang, &building, cfg.agent.instructions.as_deref());
    // The site's floors, rooms, tenants, kinds and sensors become the tools' enumerations.
    let site = match tools::Site::load(core).await {
        Ok(site) => site,
        Err(e) => {
            warn!(error = %e, "Cannot read the sensors; the tools list no site values.");
            tools::Site::default()
        }
    };
    let specs = tools::specs(&site);
    let question = text::question_with_time(lang, &q.text, &Timestamp::now().to_rfc3339());

    // Token budget: the context minus the answer, the system prompt and the tools (as the
    // server's chat template lays them out: a little more than their JSON).
    let context = llm.context_tokens();
    let system_tokens = llm.count_tokens(&system).await;
    let tools_json = serde_json::to_string(&specs).unwrap_or_default();
    let tools_tokens = llm.count_tokens(&tools_json).await;
    let tools_tokens = tools_tokens + tools_tokens / 10 + 40;
    let question_tokens = llm.count_tokens(&q.text).await;
    // The time after the question is a few tokens: estimated (an upper bound).
    let time_tokens = super::llm::estimate_tokens(question.get(q.text.len()..).unwrap_or(""));
    let fixed = system_tokens
        + tools_tokens
        + question_tokens
        + time_tokens
        + cfg.agent.llm.max_answer_tokens;
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

    let mut messages = vec![ChatMessage::system(&system)];
    messages.extend(session::to_messages(&history));
    messages.push(ChatMessage::user(&question));
    let mut question_at = messages.len() - 1;

    let mut run = Run {
        agent,
        core,
        q,
        lang,
        site: &site,
        traces: Vec::new(),
        out: ToolOutput::default(),
        result_tokens_left: room.saturating_sub(history_tokens),
    };
    let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
    let mut rounds = 0u32;
    let mut corrected = false;
    let mut tools_off = false;
    let mut told_to_answer = false;
    let mut asked_in_words = false;
    let mut trims = 0u32;
    let mut called: HashSet<(String, String)> = HashSet::new();
    let mut empty = 0u32;
    loop {
        let with_tools = !tools_off && rounds < cfg.agent.max_tool_rounds;
        if !with_tools && !told_to_answer {
            messages.push(ChatMessage::user(text::answer_now(lang)));
            told_to_answer = true;
        }
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
            Err(LlmError::Http { status, body })
                if matches!(status, 400 | 413) && is_context_overflow(&body) =>
            {
                // The server counted more tokens than we did: make room and ask again.
                debug!(status, body = %body, "The prompt does not fit the LLM's context; trimming.");
                if trims < MAX_TRIMS && trim(&mut messages, &mut question_at) {
                    trims += 1;
                    continue;
                }
                return run.fallback("context").await;
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
        let mut calls = resp.tool_calls.clone();
        let content = resp.content.clone().unwrap_or_default();
        if calls.is_empty() {
            calls = toolcall::extract_text_tool_calls(&content, &names);
        }
        if !with_tools && (!calls.is_empty() || toolcall::looks_like_tool_call(&content)) {
            // Tools are withdrawn and the model still calls one: never shown to staff.
            agent.metrics().malformed.inc();
            if asked_in_words {
                return run.fallback("tool_text").await;
            }
            asked_in_words = true;
            messages.push(ChatMessage::user(text::answer_now(lang)));
            continue;
        }
        if with_tools && !calls.is_empty() {
            calls.truncate(MAX_CALLS_PER_STEP);
            rounds += 1;
            messages.push(ChatMessage::assistant_tool_calls(None, calls.clone()));
            let mut malformed = false;
            for call in &calls {
                let key = (call.name.clone(), canonical(&call.arguments));
                let result = if called.insert(key) {
                    match run.call(call).await {
                        Ok(v) => v,
                        Err(Problem::Malformed(msg)) => {
                            malformed = true;
                            msg
                        }
                        Err(Problem::Failed(msg)) => msg,
                    }
                } else {
                    // The same call again: its result is already there; time to answer.
                    tools_off = true;
                    text::already_called(&call.name)
                };
                messages.push(ChatMessage::tool_result(&call.id, &result));
            }
            if malformed {
                agent.metrics().malformed.inc();
                if corrected {
                    // Second malformed call: no more tools, answer with what there is.
                    tools_off = true;
                }
                corrected = true;
            }
            continue;
        }
        if toolcall::looks_like_tool_call(&content) {
            // A call that could not be read (unknown tool, broken JSON): a malformed step.
            agent.metrics().malformed.inc();
            if corrected {
                tools_off = true;
            } else {
                messages.push(ChatMessage::user(format!(
                    "error: that tool call could not be read. Make a proper tool call to one of: {}; or answer in plain words.",
                    names.join(", ")
                )));
            }
            corrected = true;
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

/// Arguments in one canonical form, to tell identical calls apart from different ones.
fn canonical(arguments: &str) -> String {
    toolcall::parse_arguments(arguments).map_or_else(
        |_| arguments.split_whitespace().collect::<String>(),
        |map| Value::Object(map).to_string(),
    )
}

/// Whether an error body says the prompt is longer than the context (llama.cpp:
/// "the request exceeds the available context size"; OpenAI and vLLM: "maximum context
/// length is ... tokens").
fn is_context_overflow(body: &str) -> bool {
    let b = body.to_lowercase();
    (b.contains("context") || b.contains("n_ctx"))
        && [
            "exceed",
            "maximum",
            "too long",
            "larger than",
            "overflow",
            "n_ctx",
        ]
        .iter()
        .any(|w| b.contains(w))
}

/// Makes a prompt smaller: drops the oldest question and answer before the current question,
/// else halves the longest tool result. `false` when nothing is left to cut.
fn trim(messages: &mut Vec<ChatMessage>, question_at: &mut usize) -> bool {
    if *question_at > 1 {
        // History starts at 1 (after the system prompt) with a question; drop it and what
        // answered it, up to the next question.
        let end = (2..*question_at)
            .find(|&i| messages[i].role == Role::User)
            .unwrap_or(*question_at);
        messages.drain(1..end);
        *question_at -= end - 1;
        return true;
    }
    let longest = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Tool)
        .max_by_key(|(_, m)| m.text().len())
        .map(|(i, m)| (i, m.text().chars().count()));
    match longest {
        Some((i, chars)) if chars > 2 * MIN_RESULT_TOKENS as usize => {
            let kept: String = messages[i].text().chars().take(chars / 2).collect();
            messages[i].content = Some(kept + "…(truncated)");
            true
        }
        _ => false,
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
    site: &'a tools::Site,
    traces: Vec<ToolTrace>,
    out: ToolOutput,
    result_tokens_left: u32,
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
                    tools::example(tool, self.site)
                )));
            }
        };
        let args = match tools::validate(tool, args, self.site) {
            Ok(a) => a,
            Err(e) => {
                metrics.count_tool(tool.name(), "invalid");
                self.traces.push(ToolTrace {
                    name: tool.name().to_owned(),
                    args: Value::Null,
                    ok: false,
                });
                return Err(Problem::Failed(format!(
                    "error: {e}. Call {} again with the right arguments.",
                    tool.name(),
                )));
            }
        };
        let ctx = ToolContext {
            core: self.core,
            agent: self.agent,
            actor: &self.q.actor,
            lang: self.lang,
            // Ages are computed when the tool runs, not when the question came.
            now: Timestamp::now(),
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
                let cap = MAX_RESULT_TOKENS.min(self.result_tokens_left.max(MIN_RESULT_TOKENS));
                // The estimate is at least the true count, so its characters bound the tokens.
                if super::llm::estimate_tokens(&text) > cap {
                    let chars = usize::try_from(cap.saturating_mul(2)).unwrap_or(usize::MAX);
                    text = text.chars().take(chars).collect::<String>() + "…(truncated)";
                }
                self.result_tokens_left = self
                    .result_tokens_left
                    .saturating_sub(super::llm::estimate_tokens(&text));
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
    fn identical_calls_are_told_apart_from_different_ones() {
        assert_eq!(
            canonical(r#"{"room": "301", "kind": "t"}"#),
            canonical(r#"{"kind":"t","room":"301"}"#)
        );
        assert_ne!(
            canonical(r#"{"room": "301"}"#),
            canonical(r#"{"room": "302"}"#)
        );
        assert_eq!(canonical(""), canonical("{}"));
    }

    #[test]
    fn context_overflow_bodies_are_recognised() {
        assert!(is_context_overflow(
            "the request exceeds the available context size, try increasing it (exceed_context_size_error)"
        ));
        assert!(is_context_overflow(
            "This model's maximum context length is 8192 tokens. However, you requested 8733 tokens."
        ));
        assert!(!is_context_overflow("Error parsing input. (bad_input)"));
    }

    #[test]
    fn trimming_drops_history_first_then_halves_results() {
        let mut m = vec![
            ChatMessage::system("sys"),
            ChatMessage::user("old q"),
            ChatMessage::assistant("old a"),
            ChatMessage::user("q"),
            ChatMessage::tool_result("c1", "x".repeat(1000)),
        ];
        let mut at = 3;
        assert!(trim(&mut m, &mut at));
        assert_eq!(at, 1);
        assert_eq!(m[1].text(), "q");
        assert_eq!(m[0].text(), "sys", "the system prompt is never cut");
        assert!(trim(&mut m, &mut at));
        assert!(m[2].text().chars().count() < 600);
        while trim(&mut m, &mut at) {}
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].text(), "q");
    }
}
