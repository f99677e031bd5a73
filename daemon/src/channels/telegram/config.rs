//! `[telegram]`: the Telegram bot: whether it runs, where its token comes from, the Bot API
//! address (tests point it at a fake), an optional proxy, the group chats it serves, voice, and
//! its timings. The people it serves and their roles are `[[users]]` (`telegram_id`, `role`).
//!
//! Owns: the shape, defaults and validation of `[telegram]`. Does not own: reading the token
//! (see [`crate::config::secret::SecretRef`]) or the bot (see [`super`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::secret::SecretRef;

use crate::config::error::ConfigError;

const SECTION: &str = "telegram";

/// `[telegram]`: the bot on-site staff talk to. Off unless enabled.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Run the bot at all.
    #[serde(default)]
    pub enabled: bool,
    /// The bot token (from BotFather), from an environment variable.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The bot token, from a file readable only by the service.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The bot token, from a systemd credential (`LoadCredential=`).
    #[serde(default)]
    pub token_credential: Option<String>,
    /// The Bot API server: Telegram's, a local `telegram-bot-api` server, or a test fake.
    #[serde(default = "defaults::api_url")]
    pub api_url: String,
    /// Proxy for every request to the Bot API: `http://`, `https://`, `socks5://` or
    /// `socks5h://` (names resolved by the proxy). Not set: direct.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Group chats (negative ids) the bot answers in, and whose buttons it accepts. Private
    /// chats are allowed by `[[users]] telegram_id` alone.
    #[serde(default)]
    pub allowed_chats: Vec<i64>,
    /// Understand voice notes and answer them with a voice note too (needs the speech models of
    /// Koboldcpp and the `opusdec`/`opusenc` programs of `opus-tools`).
    #[serde(default = "defaults::voice")]
    pub voice: bool,
    /// The Koboldcpp voice of spoken answers: `kobo`, `cheery`, `sleepy`, `shouty`, `chatty`
    /// (or an OpenAI name).
    #[serde(default = "defaults::tts_voice")]
    pub tts_voice: String,
    /// Longest voice note transcribed; longer ones get a polite refusal.
    #[serde(default = "defaults::max_voice_duration", with = "humantime_serde")]
    pub max_voice_duration: Duration,
    /// How long one `getUpdates` long poll waits for news (Telegram allows at most 50 s).
    #[serde(default = "defaults::poll_timeout", with = "humantime_serde")]
    pub poll_timeout: Duration,
    /// Time for one request to the Bot API (a file upload included).
    #[serde(default = "defaults::request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest wait between two attempts to reach Telegram while it is unreachable (the wait
    /// starts at 1 s and doubles).
    #[serde(default = "defaults::retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_env: None,
            token_file: None,
            token_credential: None,
            api_url: defaults::api_url(),
            proxy: None,
            allowed_chats: Vec::new(),
            voice: defaults::voice(),
            tts_voice: defaults::tts_voice(),
            max_voice_duration: defaults::max_voice_duration(),
            poll_timeout: defaults::poll_timeout(),
            request_timeout: defaults::request_timeout(),
            retry_max: defaults::retry_max(),
        }
    }
}

impl TelegramConfig {
    /// Where the token comes from.
    pub fn token(&self) -> SecretRef {
        SecretRef::from_keys(
            self.token_env.as_deref(),
            self.token_file.as_deref(),
            self.token_credential.as_deref(),
        )
    }

    /// Semantic checks; every problem, with its dotted path under `telegram`.
    pub(crate) fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut push = |key: &str, message: String, hint: Option<&str>| {
            errors.push(ConfigError {
                path: format!("{SECTION}.{key}"),
                position: None,
                message,
                hint: hint.map(str::to_owned),
            });
        };
        if let Err(e) = api_url(&self.api_url) {
            push(
                "api_url",
                e,
                Some("\"https://api.telegram.org\", or a local Bot API server"),
            );
        }
        if let Some(proxy) = &self.proxy
            && let Err(e) = proxy_url(proxy)
        {
            push(
                "proxy",
                e,
                Some("e.g. \"socks5h://127.0.0.1:1080\" or \"http://proxy.lan:3128\""),
            );
        }
        for (i, id) in self.allowed_chats.iter().enumerate() {
            if *id >= 0 {
                push(
                    &format!("allowed_chats.{i}"),
                    format!("{id} is not a group chat id (those are negative)"),
                    Some(
                        "people go in [[users]] with their telegram_id; only groups are listed here",
                    ),
                );
            }
        }
        if self.tts_voice.trim().is_empty() {
            push(
                "tts_voice",
                "must not be empty".into(),
                Some("e.g. \"kobo\""),
            );
        }
        if self.max_voice_duration < Duration::from_secs(1)
            || self.max_voice_duration > Duration::from_secs(600)
        {
            push(
                "max_voice_duration",
                "must be between 1s and 10m".into(),
                None,
            );
        }
        if self.poll_timeout > Duration::from_secs(50) {
            push(
                "poll_timeout",
                "must be at most 50s (Telegram's limit)".into(),
                None,
            );
        }
        if self.request_timeout < Duration::from_secs(1)
            || self.request_timeout > Duration::from_secs(600)
        {
            push("request_timeout", "must be between 1s and 10m".into(), None);
        }
        if self.retry_max < Duration::from_secs(1) || self.retry_max > Duration::from_secs(3600) {
            push("retry_max", "must be between 1s and 1h".into(), None);
        }
        if let Some(mut e) = self.token().check(SECTION, "token", self.enabled) {
            e.hint = Some(
                "set one of token_env, token_file or token_credential (the token from \
                 BotFather); the token never lives in the config file"
                    .to_owned(),
            );
            errors.push(e);
        }
        errors
    }
}

/// The Bot API base URL: `http(s)://host[:port][/path]`, no credentials, query or fragment.
///
/// # Errors
/// What is wrong, for the config error.
pub(crate) fn api_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url:?} must not contain credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    Ok(parsed)
}

/// A proxy URL: `http`, `https`, `socks5` or `socks5h`, with a host (credentials allowed).
///
/// # Errors
/// What is wrong, for the config error.
pub(crate) fn proxy_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("the proxy is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(format!(
            "proxy scheme {:?} is not one of http, https, socks5, socks5h",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the proxy URL has no host".into());
    }
    Ok(parsed)
}

mod defaults {
    use std::time::Duration;

    pub(super) fn api_url() -> String {
        "https://api.telegram.org".to_owned()
    }
    pub(super) fn voice() -> bool {
        true
    }
    pub(super) fn tts_voice() -> String {
        "kobo".to_owned()
    }
    pub(super) fn max_voice_duration() -> Duration {
        Duration::from_secs(120)
    }
    pub(super) fn poll_timeout() -> Duration {
        Duration::from_secs(25)
    }
    pub(super) fn request_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub(super) fn retry_max() -> Duration {
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_valid() {
        let c = TelegramConfig::default();
        assert!(!c.enabled);
        assert!(c.voice);
        assert_eq!(c.api_url, "https://api.telegram.org");
        assert!(c.validate().is_empty());
    }

    #[test]
    fn enabled_needs_one_token_source() {
        let c: TelegramConfig = toml::from_str("enabled = true\n").unwrap();
        let errors = c.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "telegram.token_env");
        let c: TelegramConfig =
            toml::from_str("enabled = true\ntoken_env = \"T\"\ntoken_file = \"/t\"\n").unwrap();
        assert_eq!(c.validate()[0].path, "telegram.token_env");
        let c: TelegramConfig = toml::from_str("enabled = true\ntoken_env = \"T\"\n").unwrap();
        assert!(c.validate().is_empty());
    }

    #[test]
    fn an_inline_token_is_not_a_key() {
        assert!(toml::from_str::<TelegramConfig>("token = \"123:abc\"\n").is_err());
    }

    #[test]
    fn checks_urls_chats_and_ranges() {
        let c: TelegramConfig = toml::from_str(
            "api_url = \"ftp://x\"\nproxy = \"gopher://p\"\nallowed_chats = [-100, 42]\n\
             poll_timeout = \"60s\"\nretry_max = \"0s\"\ntts_voice = \" \"\n",
        )
        .unwrap();
        let paths: Vec<String> = c.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "telegram.api_url",
                "telegram.proxy",
                "telegram.allowed_chats.1",
                "telegram.tts_voice",
                "telegram.poll_timeout",
                "telegram.retry_max",
            ]
        );
        assert!(proxy_url("socks5h://user:pw@127.0.0.1:1080").is_ok());
        assert!(api_url("http://127.0.0.1:8081").is_ok());
        assert!(api_url("https://u:p@api.telegram.org").is_err());
    }
}
