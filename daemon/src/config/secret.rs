//! Secrets: values that never live in the TOML file and never reach a log.
//!
//! A config section names where a secret comes from with exactly one of three keys:
//! `<name>_env` (an environment variable), `<name>_file` (a file readable only by the service,
//! e.g. `/etc/markoff/db-password`), or `<name>_credential` (a systemd
//! `LoadCredential=` name, read from `$CREDENTIALS_DIRECTORY`; the packaged unit loads every
//! file of `/etc/markoff/credentials/`, see [`markoff_proto::credentials`]). The section keeps the three
//! optional keys and builds a [`SecretRef`] with [`SecretRef::from_keys`]; validation calls
//! [`SecretRef::check`]. A plain `<name> = "..."` key does not exist, so `deny_unknown_fields`
//! rejects a secret written inline, and the loader's hint says which keys to use.

use std::fmt;
use std::path::{Path, PathBuf};

use markoff_proto::credentials::{CredentialError, locate_credential};
use serde::Deserialize;

/// Where the packaged `markoff.service` loads its credentials from.
const PACKAGED_DIR: &str = "/etc/markoff/credentials";

/// A secret value. `Debug` and `Display` print `[redacted]`; the value is only reachable
/// through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it (an HTTP header, a connection string).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from; exactly one of the fields is set (checked by validation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of an environment variable holding the value.
    #[serde(default)]
    pub env: Option<String>,
    /// Path of a file holding the value (trailing newline stripped).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Name of a systemd credential (`LoadCredential=NAME:...`), read from `$CREDENTIALS_DIRECTORY`.
    #[serde(default)]
    pub credential: Option<String>,
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// None or several of env/file/credential were given.
    #[error("exactly one of env, file or credential must name where the secret comes from")]
    Ambiguous,
    /// The environment variable is not set.
    #[error("environment variable {name} is not set")]
    MissingEnv {
        /// The variable.
        name: String,
    },
    /// The credential cannot be found: `$CREDENTIALS_DIRECTORY` is not set (not started by
    /// systemd with `LoadCredential=`), or it does not hold the credential.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The file could not be read.
    #[error("cannot read secret file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The value is empty.
    #[error("secret from {origin} is empty")]
    Empty {
        /// Where it came from (never the value).
        origin: String,
    },
}

impl SecretRef {
    /// Builds a reference from a section's `<name>_env`, `<name>_file` and `<name>_credential` keys.
    pub fn from_keys(env: Option<&str>, file: Option<&Path>, credential: Option<&str>) -> Self {
        Self {
            env: env.map(str::to_owned),
            file: file.map(Path::to_path_buf),
            credential: credential.map(str::to_owned),
        }
    }

    /// Validation of a secret reference at config key `name` of section `section`: `None` when
    /// well formed (or absent and optional), else the problem to report.
    pub fn check(
        &self,
        section: &str,
        name: &str,
        required: bool,
    ) -> Option<super::error::ConfigError> {
        let given = [
            self.env.is_some(),
            self.file.is_some(),
            self.credential.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        let message = match (given, required) {
            (1, _) | (0, false) => return None,
            (0, true) => format!(
                "a secret is required: set one of {name}_env, {name}_file or {name}_credential"
            ),
            _ => format!("set only one of {name}_env, {name}_file or {name}_credential"),
        };
        Some(super::error::ConfigError {
            path: format!("{section}.{name}_env"),
            position: None,
            message,
            hint: Some("secrets never live in the config file: use an environment variable, a file, or systemd LoadCredential=".to_owned()),
        })
    }

    /// Is exactly one origin named?
    pub fn is_well_formed(&self) -> bool {
        [
            self.env.is_some(),
            self.file.is_some(),
            self.credential.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count()
            == 1
    }

    /// Reads the secret from the process environment.
    ///
    /// # Errors
    /// See [`SecretError`].
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Reads the secret, looking environment variables up with `env` (tests pass a map).
    ///
    /// # Errors
    /// See [`SecretError`].
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, SecretError> {
        if !self.is_well_formed() {
            return Err(SecretError::Ambiguous);
        }
        let (value, origin) = if let Some(name) = &self.env {
            let v = env(name).ok_or_else(|| SecretError::MissingEnv { name: name.clone() })?;
            (v, format!("${name}"))
        } else if let Some(path) = &self.file {
            (read_file(path)?, path.display().to_string())
        } else if let Some(name) = &self.credential {
            let dir = env("CREDENTIALS_DIRECTORY");
            let path = locate_credential(dir.as_deref().map(Path::new), name, PACKAGED_DIR)?;
            (read_file(&path)?, format!("credential {name}"))
        } else {
            return Err(SecretError::Ambiguous);
        };
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(SecretError::Empty { origin });
        }
        Ok(Secret(value))
    }
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn resolves_from_env_file_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db-password"), "from-cred\n").unwrap();
        std::fs::write(dir.path().join("token"), "from-file\n").unwrap();
        let dir_s = dir.path().to_str().unwrap().to_owned();
        let env = |k: &str| match k {
            "MARKOFF_TOKEN" => Some("from-env".to_owned()),
            "CREDENTIALS_DIRECTORY" => Some(dir_s.clone()),
            _ => None,
        };
        let by_env = SecretRef {
            env: Some("MARKOFF_TOKEN".into()),
            ..Default::default()
        };
        assert_eq!(by_env.resolve_with(env).unwrap().expose(), "from-env");
        let by_file = SecretRef {
            file: Some(dir.path().join("token")),
            ..Default::default()
        };
        assert_eq!(by_file.resolve_with(env).unwrap().expose(), "from-file");
        let by_cred = SecretRef {
            credential: Some("db-password".into()),
            ..Default::default()
        };
        assert_eq!(by_cred.resolve_with(env).unwrap().expose(), "from-cred");
        // The packaged unit passes a directory: systemd names its files markoff_<file name>.
        std::fs::write(dir.path().join("markoff_lan-ivan"), "from-dir\n").unwrap();
        let by_dir_cred = SecretRef {
            credential: Some("lan-ivan".into()),
            ..Default::default()
        };
        assert_eq!(by_dir_cred.resolve_with(env).unwrap().expose(), "from-dir");
        let missing = SecretRef {
            credential: Some("telegram-token".into()),
            ..Default::default()
        };
        let e = missing.resolve_with(env).unwrap_err().to_string();
        assert!(e.contains("/etc/markoff/credentials/telegram-token"), "{e}");
    }

    #[test]
    fn checks_the_keys_of_a_section() {
        let none = SecretRef::from_keys(None, None, None);
        assert!(none.check("sync", "password", false).is_none());
        let e = none.check("sync", "password", true).unwrap();
        assert_eq!(e.path, "sync.password_env");
        let two = SecretRef::from_keys(Some("A"), Some(Path::new("/x")), None);
        assert!(
            two.check("sync", "password", true)
                .unwrap()
                .message
                .contains("only one")
        );
        assert!(
            SecretRef::from_keys(None, None, Some("db"))
                .check("sync", "password", true)
                .is_none()
        );
    }

    #[test]
    fn reports_missing_and_ambiguous_sources() {
        let none = |_: &str| None;
        let missing = SecretRef {
            env: Some("NOPE".into()),
            ..Default::default()
        };
        assert!(matches!(
            missing.resolve_with(none),
            Err(SecretError::MissingEnv { .. })
        ));
        let both = SecretRef {
            env: Some("A".into()),
            file: Some("/x".into()),
            credential: None,
        };
        assert!(matches!(
            both.resolve_with(none),
            Err(SecretError::Ambiguous)
        ));
        let cred = SecretRef {
            credential: Some("x".into()),
            ..Default::default()
        };
        assert!(matches!(
            cred.resolve_with(none),
            Err(SecretError::Credential(CredentialError::NoDirectory { .. }))
        ));
    }
}
