//! `[lan]`: the LAN page (opt-in), where it listens, how long a login lasts, and the people who
//! may log in, each with a token of their own (`[[lan.token]]`).
//!
//! Owns: the shape, defaults and validation of `[lan]`. Does not own: reading the tokens (see
//! [`crate::config::secret::SecretRef`]) or the page (see [`super`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::error::ConfigError;
use crate::config::secret::SecretRef;
use crate::config::users::UserConfig;

const SECTION: &str = "lan";

/// `[lan]`: the page on-site staff open in a browser on the building LAN when the internet is
/// down. Off unless enabled; it serves only the page, never the local API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanConfig {
    /// Serve the page at all.
    #[serde(default)]
    pub enabled: bool,
    /// Address to listen on; every interface by default, since the page is for the LAN.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// A login lasts this long; then the person enters the token again.
    #[serde(default = "defaults::session_ttl", with = "humantime_serde")]
    pub session_ttl: Duration,
    /// `[[lan.token]]`: who may log in; at least one when enabled.
    #[serde(default)]
    pub token: Vec<LanTokenConfig>,
}

impl Default for LanConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: defaults::listen(),
            session_ttl: defaults::session_ttl(),
            token: Vec::new(),
        }
    }
}

/// `[[lan.token]]`: one person's access token. Whoever logs in with it acts as `user`: asks
/// questions, and acknowledges alarms only if `user` is an operator in `[[users]]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanTokenConfig {
    /// The `[[users]]` login this token stands for.
    pub user: String,
    /// The token, from an environment variable.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The token, from a file readable only by the service.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The token, from a systemd credential (`LoadCredential=`).
    #[serde(default)]
    pub token_credential: Option<String>,
}

impl LanTokenConfig {
    /// Where the token comes from.
    pub fn secret(&self) -> SecretRef {
        SecretRef::from_keys(
            self.token_env.as_deref(),
            self.token_file.as_deref(),
            self.token_credential.as_deref(),
        )
    }
}

impl LanConfig {
    /// Semantic checks against the `[[users]]` the tokens name; every problem, with its dotted
    /// path under `lan`.
    pub(crate) fn validate(&self, users: &[UserConfig]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let push =
            |errors: &mut Vec<ConfigError>, path: String, message: String, hint: Option<&str>| {
                errors.push(ConfigError {
                    path,
                    position: None,
                    message,
                    hint: hint.map(str::to_owned),
                });
            };
        if self.session_ttl < Duration::from_secs(60)
            || self.session_ttl > Duration::from_secs(30 * 86_400)
        {
            push(
                &mut errors,
                format!("{SECTION}.session_ttl"),
                "must be between 1m and 30d".into(),
                None,
            );
        }
        if self.enabled && self.token.is_empty() {
            push(
                &mut errors,
                format!("{SECTION}.enabled"),
                "the LAN page needs at least one [[lan.token]] to log in with".into(),
                Some("add [[lan.token]] with user = \"<login from [[users]]>\" and token_env"),
            );
        }
        for (i, t) in self.token.iter().enumerate() {
            let base = format!("{SECTION}.token.{i}");
            if t.user.trim().is_empty() {
                push(
                    &mut errors,
                    format!("{base}.user"),
                    "must not be empty".into(),
                    None,
                );
            } else if !users.iter().any(|u| u.login == t.user) {
                push(
                    &mut errors,
                    format!("{base}.user"),
                    format!("{:?} is not a login in [[users]]", t.user),
                    Some("the page acts as this person: add them to [[users]] with a role"),
                );
            }
            if let Some(mut e) = t.secret().check(&base, "token", true) {
                e.hint = Some(
                    "set one of token_env, token_file or token_credential; the token never lives \
                     in the config file"
                        .to_owned(),
                );
                errors.push(e);
            }
        }
        errors
    }
}

mod defaults {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Duration;

    pub(super) fn listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080))
    }
    pub(super) fn session_ttl() -> Duration {
        Duration::from_secs(12 * 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn users() -> Vec<UserConfig> {
        vec![UserConfig {
            login: "ivan".into(),
            unix_user: None,
            name: None,
            role: Role::Operator,
            telegram_id: None,
            office_login: None,
            lang: crate::model::Lang::En,
            notify: false,
            min_severity: crate::model::Severity::Low,
        }]
    }

    #[test]
    fn off_by_default_and_valid() {
        let c = LanConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert!(c.validate(&[]).is_empty());
    }

    #[test]
    fn enabled_needs_tokens_of_known_users_from_one_secret() {
        let c: LanConfig = toml::from_str(
            "enabled = true\n\
             [[token]]\nuser = \"ivan\"\ntoken_env = \"T1\"\n\
             [[token]]\nuser = \"nobody\"\n\
             [[token]]\nuser = \"ivan\"\ntoken_env = \"A\"\ntoken_file = \"/x\"\n",
        )
        .unwrap();
        let paths: Vec<String> = c.validate(&users()).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "lan.token.1.user",
                "lan.token.1.token_env",
                "lan.token.2.token_env"
            ]
        );
        let none = LanConfig {
            enabled: true,
            ..LanConfig::default()
        };
        assert_eq!(none.validate(&users())[0].path, "lan.enabled");
    }

    #[test]
    fn an_inline_token_is_not_a_key() {
        assert!(
            toml::from_str::<LanTokenConfig>("user = \"ivan\"\ntoken = \"hunter2\"\n").is_err()
        );
    }
}
