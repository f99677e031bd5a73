//! `[agent.llm]`: where the LLM server is, how to authenticate, and how patient to be.
//!
//! Owns: the shape, defaults and validation of `[agent.llm]`, and the base URL rule (a
//! trailing `/` or `/v1` is dropped). Does not own: the client (see [`super::Llm`]) or reading
//! the key (see [`crate::config::secret::SecretRef`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::secret::SecretRef;

use crate::config::error::ConfigError;

const SECTION: &str = "agent.llm";

/// `[agent.llm]`: the OpenAI-compatible server (Koboldcpp on the site's GPU box, or llama.cpp
/// server, vLLM). Without `url` the assistant answers from local data only.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL, e.g. `http://gpu-box:5001` (a trailing `/v1` is accepted and dropped).
    /// `None`: no LLM; every answer comes from the commands and the keyword router.
    #[serde(default)]
    pub url: Option<String>,
    /// Model name sent as `"model"` (Koboldcpp ignores it; vLLM needs the served name).
    #[serde(default = "defaults::model")]
    pub model: String,
    /// Bearer key (Koboldcpp `--password`) from an environment variable.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Bearer key from a file readable only by the service.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Bearer key from a systemd credential (`LoadCredential=`).
    #[serde(default)]
    pub api_key_credential: Option<String>,
    /// Time to open a TCP connection; short, so a powered-off GPU box is noticed quickly.
    #[serde(default = "defaults::connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time for one HTTP request, generation included (Koboldcpp's tool mode makes 2–3
    /// generations per request).
    #[serde(default = "defaults::request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Retries after HTTP 503 "busy" (Koboldcpp generates one answer at a time), waiting
    /// 250 ms doubling (jittered, capped at 4 s), always within the caller's deadline.
    #[serde(default = "defaults::busy_retries")]
    pub busy_retries: u32,
    /// Context size in tokens; default: what the server reports
    /// (`/api/extra/true_max_context_length`), else 8192.
    #[serde(default)]
    pub context_tokens: Option<u32>,
    /// Longest answer in tokens (`max_tokens`), reserved out of the context.
    #[serde(default = "defaults::max_answer_tokens")]
    pub max_answer_tokens: u32,
    /// Sampling temperature; low keeps tool arguments and numbers stable.
    #[serde(default = "defaults::temperature")]
    pub temperature: f32,
    /// Consecutive failures (no connection, timeout, busy, key refused) that open the circuit
    /// breaker, after which requests fail at once and answers come from local data.
    #[serde(default = "defaults::breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one trial request is let through.
    #[serde(default = "defaults::breaker_cooldown", with = "humantime_serde")]
    pub breaker_cooldown: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            url: None,
            model: defaults::model(),
            api_key_env: None,
            api_key_file: None,
            api_key_credential: None,
            connect_timeout: defaults::connect_timeout(),
            request_timeout: defaults::request_timeout(),
            busy_retries: defaults::busy_retries(),
            context_tokens: None,
            max_answer_tokens: defaults::max_answer_tokens(),
            temperature: defaults::temperature(),
            breaker_failures: defaults::breaker_failures(),
            breaker_cooldown: defaults::breaker_cooldown(),
        }
    }
}

impl LlmConfig {
    /// Where the Bearer key comes from (none set: requests carry no `Authorization`).
    pub fn api_key(&self) -> SecretRef {
        SecretRef::from_keys(
            self.api_key_env.as_deref(),
            self.api_key_file.as_deref(),
            self.api_key_credential.as_deref(),
        )
    }

    /// Semantic checks; every problem, with its dotted path under `agent.llm`.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut push = |key: &str, message: String, hint: Option<&str>| {
            errors.push(ConfigError {
                path: format!("{SECTION}.{key}"),
                position: None,
                message,
                hint: hint.map(str::to_owned),
            });
        };
        if let Some(url) = &self.url
            && let Err(message) = base_url(url)
        {
            push(
                "url",
                message,
                Some("the server's base URL, e.g. \"http://gpu-box:5001\""),
            );
        }
        if self.model.trim().is_empty() {
            push(
                "model",
                "must not be empty".into(),
                Some("\"koboldcpp\" for Koboldcpp"),
            );
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > Duration::from_secs(60) {
            push(
                "connect_timeout",
                "must be between 1ms and 60s".into(),
                None,
            );
        }
        if self.request_timeout < Duration::from_secs(1)
            || self.request_timeout > Duration::from_secs(3600)
        {
            push("request_timeout", "must be between 1s and 1h".into(), None);
        }
        if self.busy_retries > 20 {
            push("busy_retries", "must be at most 20".into(), None);
        }
        if let Some(ctx) = self.context_tokens
            && !(256..=262_144).contains(&ctx)
        {
            push(
                "context_tokens",
                "must be between 256 and 262144 (Koboldcpp's --contextsize range)".into(),
                None,
            );
        }
        let context = self.context_tokens.unwrap_or(8192);
        if self.max_answer_tokens < 16 || self.max_answer_tokens >= context / 2 {
            push(
                "max_answer_tokens",
                format!("must be at least 16 and less than half the context ({context} tokens)"),
                None,
            );
        }
        if !self.temperature.is_finite() || !(0.0..=2.0).contains(&self.temperature) {
            push("temperature", "must be between 0 and 2".into(), None);
        }
        if !(1..=100).contains(&self.breaker_failures) {
            push("breaker_failures", "must be between 1 and 100".into(), None);
        }
        if self.breaker_cooldown < Duration::from_secs(1)
            || self.breaker_cooldown > Duration::from_secs(3600)
        {
            push("breaker_cooldown", "must be between 1s and 1h".into(), None);
        }
        errors.extend(self.api_key().check(SECTION, "api_key", false));
        errors
    }
}

/// The base URL requests are made from: `url` without a trailing `/` or `/v1`, checked to be
/// `http(s)://host[:port][/path]` with no credentials, query or fragment.
///
/// # Errors
/// What is wrong with `url`, for the config error.
pub(crate) fn base_url(url: &str) -> Result<String, String> {
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{url:?} must not contain credentials: use api_key_env, api_key_file or api_key_credential"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    let mut base = parsed.as_str().trim_end_matches('/').to_owned();
    if let Some(stripped) = base.strip_suffix("/v1") {
        base = stripped.to_owned();
    }
    Ok(base)
}

mod defaults {
    use std::time::Duration;

    pub(super) fn model() -> String {
        "koboldcpp".to_owned()
    }
    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub(super) fn request_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub(super) fn busy_retries() -> u32 {
        3
    }
    pub(super) fn max_answer_tokens() -> u32 {
        512
    }
    pub(super) fn temperature() -> f32 {
        0.2
    }
    pub(super) fn breaker_failures() -> u32 {
        3
    }
    pub(super) fn breaker_cooldown() -> Duration {
        Duration::from_secs(30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = LlmConfig::default();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.model, "koboldcpp");
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.busy_retries, 3);
        assert_eq!(c.max_answer_tokens, 512);
    }

    #[test]
    fn parses_from_toml_and_rejects_unknown_keys() {
        let c: LlmConfig = toml::from_str(
            "url = \"http://gpu-box:5001/v1/\"\napi_key_env = \"KOBOLD_KEY\"\nrequest_timeout = \"90s\"\n",
        )
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(90));
        assert!(c.validate().is_empty());
        assert!(toml::from_str::<LlmConfig>("api_key = \"secret\"\n").is_err());
    }

    #[test]
    fn base_url_drops_slash_and_v1() {
        assert_eq!(
            base_url("http://gpu-box:5001").unwrap(),
            "http://gpu-box:5001"
        );
        assert_eq!(
            base_url("http://gpu-box:5001/").unwrap(),
            "http://gpu-box:5001"
        );
        assert_eq!(
            base_url("http://h:8000/llm/v1/").unwrap(),
            "http://h:8000/llm"
        );
        assert!(base_url("gpu-box:5001").is_err());
        assert!(base_url("http://user:pw@gpu-box:5001").is_err());
        assert!(base_url("http://gpu-box:5001/?key=1").is_err());
    }

    #[test]
    fn collects_every_problem() {
        let c = LlmConfig {
            url: Some("ftp://x".into()),
            model: " ".into(),
            api_key_env: Some("A".into()),
            api_key_file: Some("/k".into()),
            connect_timeout: Duration::ZERO,
            temperature: f32::NAN,
            breaker_failures: 0,
            context_tokens: Some(100),
            ..LlmConfig::default()
        };
        let paths: Vec<String> = c.validate().into_iter().map(|e| e.path).collect();
        for key in [
            "url",
            "model",
            "connect_timeout",
            "temperature",
            "breaker_failures",
            "context_tokens",
            "max_answer_tokens",
            "api_key_env",
        ] {
            assert!(
                paths.contains(&format!("agent.llm.{key}")),
                "{key} not in {paths:?}"
            );
        }
    }
}
