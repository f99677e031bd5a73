//! The settings of `markoff-central serve`: a small TOML file, with the listen address and the
//! database URL also settable by flags or the environment.
//!
//! Owns: the file's shape, its defaults, validation, and reading the database password from its
//! one source (an environment variable, a file, or a systemd credential). Does not own: the
//! command line (`src/main.rs`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where the packaged `markoff-central.service` loads its credentials from.
const PACKAGED_CREDENTIALS_DIR: &str = "/etc/markoff/central-credentials";

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("{key}: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The database password cannot be read from where the settings say.
    #[error("database password: {0}")]
    Password(String),
}

/// TLS towards PostgreSQL, as libpq's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it (the default: the web application usually runs beside
    /// the database).
    #[default]
    Prefer,
    /// TLS without checking the certificate.
    Require,
    /// TLS with a certificate from a trusted CA, any host name.
    VerifyCa,
    /// TLS with a certificate from a trusted CA for the host name in the URL.
    VerifyFull,
}

/// `[login]`: how failed logins are limited (the rules shared with the LAN page).
pub use markoff_proto::web_security::LoginLimits;

/// Everything `serve` needs. Every key has a default except `database_url`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// `postgres://ROLE@HOST[:PORT]/DATABASE`, without a password (the web role, see
    /// `markoff-central add-role --kind web`).
    pub database_url: String,
    /// Environment variable holding the database password.
    pub password_env: Option<String>,
    /// File whose first line is the database password.
    pub password_file: Option<PathBuf>,
    /// systemd credential (`LoadCredential=NAME:...`) holding the database password.
    pub password_credential: Option<String>,
    /// TLS towards PostgreSQL.
    pub sslmode: SslMode,
    /// PEM file of the CA that signs the database server's certificate.
    pub root_cert: Option<PathBuf>,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Mark cookies `Secure` (sent over HTTPS only). Leave on in production, behind a
    /// TLS-terminating proxy; off only for plain-HTTP tests on loopback.
    pub cookie_secure: bool,
    /// How long a login lasts (absolute, not extended by activity).
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// A value older than this shows as stale on pages and plans.
    #[serde(with = "humantime_serde")]
    pub stale_after: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed for the client address (used by
    /// login rate limiting). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed-login limits.
    pub login: LoginLimits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: String::new(),
            password_env: None,
            password_file: None,
            password_credential: None,
            sslmode: SslMode::default(),
            root_cert: None,
            pool_size: 8,
            cookie_secure: true,
            session_lifetime: Duration::from_secs(12 * 3600),
            stale_after: Duration::from_secs(15 * 60),
            trusted_proxies: Vec::new(),
            login: LoginLimits::default(),
        }
    }
}

impl ServeConfig {
    /// Reads `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the file's text.
    ///
    /// # Errors
    /// The TOML parser's message (with line and column).
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Checks every setting; returns every problem.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut bad = |key, message: &str| {
            errors.push(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            });
        };
        if self.database_url.is_empty() {
            bad(
                "database_url",
                "is required (postgres://ROLE@HOST/DATABASE, or --database-url)",
            );
        } else if let Some(problem) = url_problem(&self.database_url) {
            bad("database_url", problem);
        }
        let sources = [
            self.password_env.is_some(),
            self.password_file.is_some(),
            self.password_credential.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            bad(
                "password_env",
                "give at most one of password_env, password_file, password_credential",
            );
        }
        if self.pool_size == 0 || self.pool_size > 200 {
            bad("pool_size", "must be between 1 and 200");
        }
        if self.session_lifetime < Duration::from_secs(60) {
            bad("session_lifetime", "must be at least one minute");
        }
        if self.login.window.is_zero() {
            bad("login.window", "must not be zero");
        }
        if self.login.max_delay < self.login.base_delay {
            bad(
                "login.max_delay",
                "must not be shorter than login.base_delay",
            );
        }
        errors
    }

    /// The database password from its source, `None` when no source is set.
    ///
    /// # Errors
    /// [`ConfigError::Password`] when the source is set but cannot be read or is empty.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        let from_file = |path: &Path| -> Result<String, ConfigError> {
            std::fs::read_to_string(path)
                .map(|t| t.lines().next().unwrap_or_default().to_owned())
                .map_err(|e| ConfigError::Password(format!("cannot read {}: {e}", path.display())))
        };
        let password = if let Some(var) = &self.password_env {
            std::env::var(var).map_err(|_| {
                ConfigError::Password(format!("environment variable {var} is not set"))
            })?
        } else if let Some(path) = &self.password_file {
            from_file(path)?
        } else if let Some(name) = &self.password_credential {
            crate::credentials::read_own_credential(name, PACKAGED_CREDENTIALS_DIR)
                .map_err(|e| ConfigError::Password(e.to_string()))?
        } else {
            return Ok(None);
        };
        if password.is_empty() {
            return Err(ConfigError::Password("it is empty".to_owned()));
        }
        Ok(Some(password))
    }
}

/// What is wrong with a database URL for `serve`, if anything.
fn url_problem(url: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("is not a postgres:// URL");
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Some("is not a postgres:// URL");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if let Some((user, _)) = authority.rsplit_once('@')
        && user.contains(':')
    {
        return Some(
            "must not contain a password: use password_env, password_file or password_credential",
        );
    }
    if rest.contains('?') {
        return Some("must not have parameters: use sslmode and root_cert");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_full_file() {
        let c = ServeConfig::parse("database_url = \"postgres://markoff_web@db/markoff\"").unwrap();
        assert!(c.cookie_secure);
        assert_eq!(c.session_lifetime, Duration::from_secs(43_200));
        assert!(c.validate().is_empty());
        let c = ServeConfig::parse(
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"postgres://w@db/m\"\n\
             password_env = \"PW\"\ncookie_secure = false\nsession_lifetime = \"2h\"\n\
             sslmode = \"verify-full\"\ntrusted_proxies = [\"127.0.0.1\"]\n\
             [login]\nfree_failures_per_account = 3\nwindow = \"5m\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.login.free_failures_per_account, 3);
        assert_eq!(c.login.free_failures_per_ip, 20);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn the_reference_file_holds_the_defaults() {
        let text = include_str!("../../../config/central.toml");
        let c = ServeConfig::parse(text).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let defaults = ServeConfig {
            database_url: c.database_url.clone(),
            password_credential: c.password_credential.clone(),
            ..ServeConfig::default()
        };
        assert_eq!(c, defaults, "config/central.toml and the code disagree");
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(ServeConfig::parse("lisen = \"x\"").is_err());
        let c = ServeConfig {
            database_url: "postgres://w:secret@db/m".into(),
            password_env: Some("A".into()),
            password_file: Some("/f".into()),
            pool_size: 0,
            ..ServeConfig::default()
        };
        let keys: Vec<String> = c.validate().iter().map(ToString::to_string).collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert!(keys[0].contains("password"), "{keys:?}");
        assert!(url_problem("postgres://w@db/m?sslmode=disable").is_some());
        assert!(url_problem("mysql://w@db/m").is_some());
        assert!(url_problem("postgres://w@db/m").is_none());
    }
}
