//! `[agent]`: the on-site assistant: turn limits, history budget, default language, and the LLM
//! server (`[agent.llm]`, owned by `super::llm`).
//!
//! Owns: the shape, defaults and validation of `[agent]`. Does not own: the LLM client.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::llm::config::LlmConfig;
use crate::config::error::ConfigError;
use crate::model::Lang;

/// `[agent]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Answer questions at all (commands and the offline router included).
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Language of answers when neither the user's `[[users]] lang` nor the question tells.
    #[serde(default)]
    pub language: Lang,
    /// Tool rounds per question before the model must answer with what it has.
    #[serde(default = "defaults::max_tool_rounds")]
    pub max_tool_rounds: u32,
    /// Time for one question, all LLM calls and tools included; past it the answer comes from
    /// local data without the LLM.
    #[serde(default = "defaults::turn_timeout", with = "humantime_serde")]
    pub turn_timeout: Duration,
    /// How long a chat (Telegram) waits for the LLM before it sends the answer from local data,
    /// marked as such; the LLM's answer follows when it comes. `"0s"`: wait for the LLM.
    #[serde(default = "defaults::patience", with = "humantime_serde")]
    pub patience: Duration,
    /// Tokens of earlier questions and answers sent with a new question (oldest cut first).
    #[serde(default = "defaults::history_tokens")]
    pub history_tokens: u32,
    /// A conversation idle this long starts afresh.
    #[serde(default = "defaults::session_idle", with = "humantime_serde")]
    pub session_idle: Duration,
    /// A reading older than this is called stale in answers.
    #[serde(default = "defaults::stale_after", with = "humantime_serde")]
    pub stale_after: Duration,
    /// Extra lines for the system prompt (site particulars: who to call, where the boiler is).
    #[serde(default)]
    pub instructions: Option<String>,
    /// Site words for understanding questions without the LLM: a word staff use (any case
    /// form) and the words of the site it stands for, e.g. `"бухгалтерия" = "204"` or
    /// `"щитовая" = "switchboard"`.
    #[serde(default)]
    pub synonyms: BTreeMap<String, String>,
    /// The LLM server.
    #[serde(default)]
    pub llm: LlmConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            enabled: defaults::enabled(),
            language: Lang::default(),
            max_tool_rounds: defaults::max_tool_rounds(),
            turn_timeout: defaults::turn_timeout(),
            patience: defaults::patience(),
            history_tokens: defaults::history_tokens(),
            session_idle: defaults::session_idle(),
            stale_after: defaults::stale_after(),
            instructions: None,
            synonyms: BTreeMap::new(),
            llm: LlmConfig::default(),
        }
    }
}

impl AgentConfig {
    /// Semantic checks (ranges), with the LLM section's own.
    pub(crate) fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut push = |path: &str, message: String| {
            errors.push(ConfigError {
                path: format!("agent.{path}"),
                position: None,
                message,
                hint: None,
            });
        };
        if !(1..=10).contains(&self.max_tool_rounds) {
            push("max_tool_rounds", "must be between 1 and 10".into());
        }
        if self.turn_timeout < Duration::from_secs(1)
            || self.turn_timeout > Duration::from_secs(600)
        {
            push("turn_timeout", "must be between 1s and 10m".into());
        }
        if !self.patience.is_zero()
            && (self.patience < Duration::from_secs(1) || self.patience >= self.turn_timeout)
        {
            push(
                "patience",
                "must be 0s (off), or at least 1s and shorter than turn_timeout".into(),
            );
        }
        if self.history_tokens > 100_000 {
            push("history_tokens", "must be at most 100000".into());
        }
        if self.session_idle < Duration::from_secs(60) {
            push("session_idle", "must be at least 1m".into());
        }
        if self.stale_after < Duration::from_secs(1) {
            push("stale_after", "must be at least 1s".into());
        }
        for (word, means) in &self.synonyms {
            if word.split_whitespace().count() != 1 {
                push(
                    &format!("synonyms.{word:?}"),
                    "the key must be one word".into(),
                );
            }
            if means.trim().is_empty() {
                push(&format!("synonyms.{word:?}"), "must name something".into());
            }
        }
        errors.extend(self.llm.validate());
        errors
    }
}

mod defaults {
    use std::time::Duration;

    pub(super) fn enabled() -> bool {
        true
    }
    pub(super) fn max_tool_rounds() -> u32 {
        4
    }
    pub(super) fn turn_timeout() -> Duration {
        Duration::from_secs(90)
    }
    pub(super) fn patience() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn history_tokens() -> u32 {
        1500
    }
    pub(super) fn session_idle() -> Duration {
        Duration::from_secs(12 * 3600)
    }
    pub(super) fn stale_after() -> Duration {
        Duration::from_secs(15 * 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_is_off_or_between_a_second_and_the_turn_timeout() {
        let ok = |patience: u64| {
            AgentConfig {
                patience: Duration::from_secs(patience),
                ..AgentConfig::default()
            }
            .validate()
            .iter()
            .all(|e| e.path != "agent.patience")
        };
        assert_eq!(AgentConfig::default().patience, Duration::from_secs(5));
        assert!(ok(0), "0s waits for the LLM");
        assert!(ok(1));
        assert!(ok(89));
        assert!(!ok(90), "not shorter than the 90 s turn");
        let sub_second = AgentConfig {
            patience: Duration::from_millis(200),
            ..AgentConfig::default()
        };
        assert!(
            sub_second
                .validate()
                .iter()
                .any(|e| e.path == "agent.patience")
        );
        let parsed: AgentConfig = toml::from_str("patience = \"3s\"\n").expect("parses");
        assert_eq!(parsed.patience, Duration::from_secs(3));
    }
}
