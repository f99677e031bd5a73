//! The on-site assistant: answers staff questions from the gateway's own data.
//!
//! One [`Agent`] serves every channel (the CLI's `markoff ask`, the LAN page, Telegram). A
//! question goes one of three ways:
//! - a slash command (`/status`, `/alarms`, `/sensor`, ...) is answered by [`commands`] from the
//!   tools with templated text, never through the LLM;
//! - free text goes to the LLM loop (`turn`): the model picks tools ([`tools`]), gets their
//!   results and answers; at most `max_tool_rounds` rounds and `turn_timeout` per question;
//! - when the LLM is not configured, unreachable, too slow or its circuit is open, the keyword
//!   router ([`commands::route`]) answers free text from the same tools and says the assistant
//!   is offline.
//!
//! Layout:
//! - [`config`]: the `[agent]` section.
//! - [`llm`]: the OpenAI-compatible client for Koboldcpp (probe, retries, breaker, speech).
//! - [`toolcall`]: tool calls printed as text by small models.
//! - [`tools`]: the tools, their JSON Schemas, argument validation and coercion.
//! - [`commands`]: slash commands and the keyword router (the LLM-free path).
//! - [`text`]: templated wording in English and Russian.
//! - [`session`]: conversations in SQLite, cut to a token budget.

pub mod commands;
pub mod config;
pub mod lexicon;
pub mod llm;
pub mod session;
pub mod text;
pub mod toolcall;
pub mod tools;
mod turn;
pub mod understand;

#[cfg(test)]
mod russian_tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use tokio::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use config::AgentConfig;

use crate::context::Core;
use crate::model::{Actor, Lang};
use crate::service::metrics::{Labels, MetricSet};

/// How long an acknowledgement proposed by the assistant waits for the person's confirmation.
const CONFIRMATION_TTL: Duration = Duration::from_secs(300);

/// A picture that goes with an answer. Channels render it (`crate::render`) when they can show
/// pictures; the image never enters the model's context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Attachment {
    /// A floor plan coloured by a measure.
    FloorPlan {
        /// Floor id.
        floor: String,
        /// `temperature`, `humidity`, `co2` or `alarms`.
        measure: String,
    },
    /// A history chart.
    Chart {
        /// Sensor id.
        sensor: String,
        /// How far back, in seconds.
        since_secs: u64,
    },
}

/// An action the assistant proposed that the person must confirm outside the LLM (a button, a
/// second command). Confirming runs it with the person's own role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// One-time token for [`Agent::confirm`].
    pub token: String,
    /// The alarm to acknowledge.
    pub alarm_id: i64,
    /// What will happen, in the person's language.
    pub prompt: String,
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The LLM, grounded by tools.
    Llm,
    /// A slash command (templated).
    Command,
    /// The keyword router, because the LLM was unavailable.
    Offline,
}

/// One tool call made while answering, for the channels' details view and the evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolTrace {
    /// Tool name.
    pub name: String,
    /// Arguments after validation.
    pub args: serde_json::Value,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The answer to a question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// Its language.
    pub lang: Lang,
    /// Where it came from.
    pub source: Source,
    /// Pictures to show with it.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Actions waiting for confirmation.
    #[serde(default)]
    pub confirmations: Vec<Confirmation>,
    /// Tools used.
    #[serde(default)]
    pub tools: Vec<ToolTrace>,
    /// Time taken, ms.
    pub elapsed_ms: u64,
}

/// A question from a channel.
#[derive(Clone, Debug)]
pub struct Question {
    /// The text as typed (or transcribed).
    pub text: String,
    /// Conversation key, e.g. `telegram:12345`, `cli:ivan`, `lan:<browser id>`.
    pub session: String,
    /// Who asks (identity established by the channel).
    pub actor: Actor,
    /// Language the channel knows the person uses; `None`: from `[[users]]`, the text, `[agent]`.
    pub lang: Option<Lang>,
}

/// Counters of the assistant.
#[derive(Debug)]
pub struct AgentMetrics {
    /// Questions answered, by `source` (llm, command, offline).
    pub answers: Family<Labels, Counter>,
    /// Tool calls, by `tool` and `outcome` (ok, error, invalid).
    pub tool_calls: Family<Labels, Counter>,
    /// Malformed output from the model (bad tool arguments, unknown tools, empty answers).
    pub malformed: Counter,
    /// Turns that fell back to local data, by `reason`.
    pub fallbacks: Family<Labels, Counter>,
    /// Time to answer a question.
    pub answer_seconds: Histogram,
}

impl MetricSet for AgentMetrics {
    /// Registers the metrics under `markoff_agent_*`.
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            answers: Family::default(),
            tool_calls: Family::default(),
            malformed: Counter::default(),
            fallbacks: Family::default(),
            answer_seconds: Histogram::new(exponential_buckets(0.01, 2.5, 12)),
        };
        registry.register(
            "agent_answers",
            "Questions answered, by source",
            m.answers.clone(),
        );
        registry.register(
            "agent_tool_calls",
            "Tool calls, by tool and outcome",
            m.tool_calls.clone(),
        );
        registry.register(
            "agent_malformed",
            "Malformed model outputs (bad tool arguments, unknown tools, empty answers)",
            m.malformed.clone(),
        );
        registry.register(
            "agent_fallbacks",
            "Questions answered from local data because the LLM was unavailable, by reason",
            m.fallbacks.clone(),
        );
        registry.register(
            "agent_answer_seconds",
            "Time to answer a question",
            m.answer_seconds.clone(),
        );
        m
    }
}

impl AgentMetrics {
    fn count_tool(&self, tool: &str, outcome: &str) {
        self.tool_calls
            .get_or_create(&vec![
                ("tool".to_owned(), tool.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    fn count_fallback(&self, reason: &str) {
        self.fallbacks
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }
}

#[derive(Debug)]
struct Pending {
    alarm_id: i64,
    user: String,
    expires: Instant,
}

#[derive(Debug)]
struct Inner {
    llm: RwLock<Option<llm::Llm>>,
    pending: Mutex<HashMap<String, Pending>>,
    metrics: Arc<AgentMetrics>,
    llm_metrics: Arc<llm::LlmMetrics>,
}

/// The assistant. Cheap to clone; one per process, shared by every channel.
#[derive(Clone, Debug)]
pub struct Agent {
    inner: Arc<Inner>,
}

/// Why a confirmation was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// Unknown, used or expired token.
    #[error("this confirmation is unknown or has expired")]
    Expired,
    /// Someone else's confirmation.
    #[error("this confirmation belongs to another user")]
    NotYours,
    /// The alarm action failed (role, state).
    #[error(transparent)]
    Alarm(#[from] crate::alarms::AlarmError),
}

impl Agent {
    /// An assistant with no LLM yet ([`Agent::configure`] adds it).
    pub fn new(metrics: Arc<AgentMetrics>, llm_metrics: Arc<llm::LlmMetrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                llm: RwLock::new(None),
                pending: Mutex::new(HashMap::new()),
                metrics,
                llm_metrics,
            }),
        }
    }

    /// Builds the LLM client from `[agent.llm]` (at start and on reload). Without a URL, or when
    /// the key cannot be read, the assistant answers from local data only, and says so.
    pub fn configure(&self, cfg: &AgentConfig) {
        let llm = match cfg.llm.url.as_deref() {
            None => {
                info!("No [agent.llm] url: the assistant answers from local data only.");
                None
            }
            Some(url) => {
                let key_ref = cfg.llm.api_key();
                let key = if key_ref.is_well_formed() {
                    match key_ref.resolve() {
                        Ok(k) => Some(k),
                        Err(e) => {
                            warn!(error = %e, "Cannot read the LLM key; the assistant answers from local data only.");
                            self.set_llm(None);
                            return;
                        }
                    }
                } else {
                    None
                };
                match llm::Llm::new(&cfg.llm, key, self.inner.llm_metrics.clone()) {
                    Ok(l) => {
                        info!(url, "Assistant LLM configured.");
                        // Learn the context size and speech support now rather than during the
                        // first question; a server that is off is only worth a warning.
                        let probe = l.clone();
                        tokio::spawn(async move {
                            match probe.probe().await {
                                Ok(c) => info!(
                                    server = %c.server,
                                    version = c.version.as_deref().unwrap_or("?"),
                                    context_tokens = c.context_tokens,
                                    transcribe = c.transcribe,
                                    tts = c.tts,
                                    "LLM server answered."
                                ),
                                Err(e) => warn!(
                                    error = %e,
                                    "LLM server not reachable; answers come from local data until it is."
                                ),
                            }
                        });
                        Some(l)
                    }
                    Err(e) => {
                        warn!(error = %e, "Cannot build the LLM client; the assistant answers from local data only.");
                        None
                    }
                }
            }
        };
        self.set_llm(llm);
    }

    fn set_llm(&self, llm: Option<llm::Llm>) {
        *self.inner.llm.write() = llm;
    }

    /// The LLM client, if configured.
    pub fn llm(&self) -> Option<llm::Llm> {
        self.inner.llm.read().clone()
    }

    /// Metrics.
    pub fn metrics(&self) -> &Arc<AgentMetrics> {
        &self.inner.metrics
    }

    /// Answers one question. Never fails: every failure becomes an answer from local data or
    /// an explanation.
    pub async fn ask(&self, core: &Core, q: Question) -> Reply {
        let started = Instant::now();
        let cfg = core.config();
        let lang = text::pick_lang(&q, &cfg);
        let mut reply = if !cfg.agent.enabled {
            Reply::plain(text::disabled(lang), lang, Source::Command)
        } else if let Some(cmd) = commands::parse(&q.text) {
            commands::run(self, core, &q, cmd, lang).await
        } else {
            turn::answer(self, core, &q, lang).await
        };
        reply.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let source = match reply.source {
            Source::Llm => "llm",
            Source::Command => "command",
            Source::Offline => "offline",
        };
        self.inner
            .metrics
            .answers
            .get_or_create(&vec![("source".to_owned(), source.to_owned())])
            .inc();
        self.inner
            .metrics
            .answer_seconds
            .observe(started.elapsed().as_secs_f64());
        reply
    }

    /// Answers `q` from local data only (the keyword router, or the command), headed by why
    /// (`reason`, e.g. `"patience"`: the LLM is still working and its answer follows). Never
    /// fails.
    pub async fn answer_locally(&self, core: &Core, q: &Question, reason: &str) -> Reply {
        let started = Instant::now();
        let cfg = core.config();
        let lang = text::pick_lang(q, &cfg);
        let mut reply = match commands::parse(&q.text) {
            Some(cmd) => commands::run(self, core, q, cmd, lang).await,
            None => {
                self.inner.metrics.count_fallback(reason);
                commands::route(self, core, q, lang, reason).await
            }
        };
        reply.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        reply
    }

    /// Registers an acknowledgement the person must confirm; returns what the channel shows.
    fn propose_ack(&self, alarm_id: i64, actor: &Actor, lang: Lang) -> Confirmation {
        let token = format!("{:016x}", rand::random::<u64>());
        let now = Instant::now();
        let mut pending = self.inner.pending.lock();
        pending.retain(|_, p| p.expires > now);
        pending.insert(
            token.clone(),
            Pending {
                alarm_id,
                user: actor.user.clone(),
                expires: now + CONFIRMATION_TTL,
            },
        );
        Confirmation {
            token,
            alarm_id,
            prompt: text::confirm_prompt(alarm_id, lang),
        }
    }

    /// Carries out a confirmed acknowledgement as `actor` (who must be the person it was
    /// proposed to, with the operator role; the alarm service checks the role and audits).
    ///
    /// # Errors
    /// See [`ConfirmError`].
    pub async fn confirm(
        &self,
        core: &Core,
        token: &str,
        actor: Actor,
    ) -> Result<crate::alarms::CommandOutcome, ConfirmError> {
        let pending = {
            let mut map = self.inner.pending.lock();
            let now = Instant::now();
            map.retain(|_, p| p.expires > now);
            match map.get(token) {
                None => return Err(ConfirmError::Expired),
                Some(p) if p.user != actor.user => return Err(ConfirmError::NotYours),
                Some(_) => map.remove(token),
            }
        };
        let Some(p) = pending else {
            return Err(ConfirmError::Expired);
        };
        Ok(core.alarms.ack(p.alarm_id, actor).await?)
    }
}

impl Reply {
    fn plain(text: String, lang: Lang, source: Source) -> Self {
        Self {
            text,
            lang,
            source,
            attachments: Vec::new(),
            confirmations: Vec::new(),
            tools: Vec::new(),
            elapsed_ms: 0,
        }
    }
}
