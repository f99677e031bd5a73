//! `[sync]`: the connection to the central PostgreSQL and the pace of the uploader.
//!
//! Owns: the shape, defaults and validation of `[sync]`. Does not own: connecting (see
//! `super::connect`) or the site metadata (`[site]`, see `crate::config::SiteConfig`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::secret::SecretRef;

use crate::config::error::ConfigError;

/// `[sync]`: upload readings, alarm events and site metadata to the central PostgreSQL.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Upload at all. With false the section is kept but nothing is uploaded (and retention
    /// still waits for rows to be synced).
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// `postgres://ROLE@HOST:PORT/DATABASE`, without a password (that comes from a secret).
    pub url: String,
    /// Password from an environment variable.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Password from a file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Password from a systemd credential (`LoadCredential=`).
    #[serde(default)]
    pub password_credential: Option<String>,
    /// The gateway's upload key (printed by `markoff-central add-gateway`) from an environment
    /// variable: needed when `url` names the shared ingest role (through PgBouncer), which
    /// proves the gateway's identity with it in every transaction.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The upload key from a file.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The upload key from a systemd credential (`LoadCredential=`).
    #[serde(default)]
    pub key_credential: Option<String>,
    /// TLS: `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    #[serde(default = "defaults::sslmode")]
    pub sslmode: SslMode,
    /// PEM file of the CA that signs the server's certificate (default: the public web roots).
    #[serde(default)]
    pub root_cert: Option<PathBuf>,
    /// Rows per upload transaction: the size of one batch while a backlog drains.
    #[serde(default = "defaults::batch_rows")]
    pub batch_rows: usize,
    /// How often an uploader with nothing to send looks for new rows.
    #[serde(default = "defaults::interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest wait between two attempts after failures (they start at 1 s and double).
    #[serde(default = "defaults::max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Time allowed to open a connection (TCP, TLS and login).
    #[serde(default = "defaults::connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for one statement on the server, and (with `connect_timeout` on top) for one
    /// whole upload seen from the gateway, so a half-dead connection never hangs the uploader.
    #[serde(default = "defaults::statement_timeout", with = "humantime_serde")]
    pub statement_timeout: Duration,
}

/// How the connection to the centre uses TLS (PostgreSQL's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, else plain.
    Prefer,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, with a trusted certificate for the host name in `url`.
    VerifyFull,
}

impl SslMode {
    /// The `sslmode` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl SyncConfig {
    /// Where the password comes from (none: the server authenticates otherwise).
    pub fn password(&self) -> SecretRef {
        SecretRef::from_keys(
            self.password_env.as_deref(),
            self.password_file.as_deref(),
            self.password_credential.as_deref(),
        )
    }

    /// Where the upload key comes from (none: the gateway logs in as its own role).
    pub fn key(&self) -> SecretRef {
        SecretRef::from_keys(
            self.key_env.as_deref(),
            self.key_file.as_deref(),
            self.key_credential.as_deref(),
        )
    }

    /// `url` without anything secret, for logs and status: `postgres://role@host:port/db`.
    pub fn display_url(&self) -> String {
        match parse_url(&self.url) {
            Ok(u) => u.display(),
            Err(_) => "(invalid url)".to_owned(),
        }
    }
}

/// The parts of a `postgres://` URL the gateway uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PgUrl {
    pub(crate) user: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
}

impl PgUrl {
    pub(crate) fn display(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user,
            host_for_url(&self.host),
            self.port,
            self.database
        )
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Parses `postgres://ROLE@HOST[:PORT]/DATABASE`. Everything else (a password, query
/// parameters, several hosts, a socket path) is refused with the reason, because each has a key
/// of its own or no place on a gateway.
pub(crate) fn parse_url(url: &str) -> Result<PgUrl, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("must start with postgres:// (postgres://ROLE@HOST:PORT/DATABASE)")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path.contains('?') || authority.contains('?') {
        return Err(
            "must not have query parameters: use the sslmode and root_cert keys, and \
                    password_env, password_file or password_credential for the password"
                .to_owned(),
        );
    }
    let (userinfo, hostport) = authority
        .rsplit_once('@')
        .ok_or("must name the gateway's role: postgres://ROLE@HOST:PORT/DATABASE")?;
    if userinfo.contains(':') {
        return Err(
            "must not contain a password: use password_env, password_file or \
                    password_credential"
                .to_owned(),
        );
    }
    let user = decode(userinfo)?;
    if user.is_empty() {
        return Err("must name the gateway's role: postgres://ROLE@HOST:PORT/DATABASE".to_owned());
    }
    if hostport.contains(',') {
        return Err("must name one host".to_owned());
    }
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() {
        return Err("must name the server's host: postgres://ROLE@HOST:PORT/DATABASE".to_owned());
    }
    let database = decode(path)?;
    if database.is_empty() {
        return Err("must name the database: postgres://ROLE@HOST:PORT/DATABASE".to_owned());
    }
    Ok(PgUrl {
        user,
        host,
        port,
        database,
    })
}

fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port {p:?} is not a port number"))
    };
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => 5432,
            None => return Err(format!("unexpected {after:?} after the host")),
        };
        return Ok((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, p)) => Ok((decode(host)?, parse_port(p)?)),
        None => Ok((decode(hostport)?, 5432)),
    }
}

/// Percent-decoding of one URL component.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// Semantic checks of `[sync]` (pure: no file or network access).
pub(crate) fn validate(cfg: &SyncConfig) -> Vec<ConfigError> {
    fn err(path: &str, message: String, hint: Option<&str>) -> ConfigError {
        ConfigError {
            path: format!("sync.{path}"),
            position: None,
            message,
            hint: hint.map(str::to_owned),
        }
    }
    let mut errors = Vec::new();
    if let Err(e) = parse_url(&cfg.url) {
        errors.push(err(
            "url",
            e,
            Some("e.g. \"postgres://markoff_gw_lenina_17@central.example.org:5432/markoff\""),
        ));
    }
    if let Some(e) = cfg.password().check("sync", "password", false) {
        errors.push(e);
    }
    if let Some(e) = cfg.key().check("sync", "key", false) {
        errors.push(e);
    }
    if cfg.batch_rows == 0 || cfg.batch_rows > 1_000_000 {
        errors.push(err(
            "batch_rows",
            "must be between 1 and 1000000".to_owned(),
            None,
        ));
    }
    for (path, d, min) in [
        ("interval", cfg.interval, Duration::from_millis(10)),
        ("max_backoff", cfg.max_backoff, Duration::from_secs(1)),
        (
            "connect_timeout",
            cfg.connect_timeout,
            Duration::from_millis(100),
        ),
        (
            "statement_timeout",
            cfg.statement_timeout,
            Duration::from_secs(1),
        ),
    ] {
        if d < min {
            errors.push(err(
                path,
                format!("must be at least {}", humantime::format_duration(min)),
                Some("durations are strings with a unit: \"250ms\", \"5s\", \"1m\""),
            ));
        }
    }
    if cfg.root_cert.is_some() && matches!(cfg.sslmode, SslMode::Disable) {
        errors.push(err(
            "root_cert",
            "is set but sslmode is \"disable\"".to_owned(),
            Some("use sslmode = \"verify-full\" with a root certificate"),
        ));
    }
    errors
}

/// Named defaults, shared by serde and the reference config.
pub(crate) mod defaults {
    use std::time::Duration;

    pub(crate) fn enabled() -> bool {
        true
    }
    pub(crate) fn sslmode() -> super::SslMode {
        super::SslMode::VerifyFull
    }
    pub(crate) fn batch_rows() -> usize {
        100_000
    }
    pub(crate) fn interval() -> Duration {
        Duration::from_secs(1)
    }
    pub(crate) fn max_backoff() -> Duration {
        Duration::from_secs(60)
    }
    pub(crate) fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(crate) fn statement_timeout() -> Duration {
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_url("postgres://markoff_gw_a@central.example.org:6432/markoff").unwrap();
        assert_eq!(u.user, "markoff_gw_a");
        assert_eq!(u.host, "central.example.org");
        assert_eq!(u.port, 6432);
        assert_eq!(u.database, "markoff");
        let u = parse_url("postgresql://gw@[::1]/db").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 5432));
        assert_eq!(u.display(), "postgres://gw@[::1]:5432/db");
        let u = parse_url("postgres://gw%2Da@127.0.0.1/my%20db").unwrap();
        assert_eq!((u.user.as_str(), u.database.as_str()), ("gw-a", "my db"));
    }

    #[test]
    fn a_sync_section_loads_with_defaults_and_its_mistakes_have_lines() {
        let ok = "[gateway]\nid = \"gw\"\n[sync]\nurl = \"postgres://gw@central/markoff\"\n\
                  password_credential = \"central-password\"\n";
        let cfg = crate::config::parse_str(ok, std::path::Path::new("t.toml")).unwrap();
        let sync = cfg.sync.unwrap();
        assert_eq!(sync.sslmode, SslMode::VerifyFull);
        assert_eq!(sync.batch_rows, 100_000);
        assert_eq!(sync.display_url(), "postgres://gw@central:5432/markoff");

        let bad = "[gateway]\nid = \"gw\"\n[sync]\nurl = \"postgres://gw:hunter2@central/markoff\"\n\
                   sslmode = \"verify-fully\"\npassword = \"hunter2\"\n";
        let e = crate::config::parse_str(bad, std::path::Path::new("t.toml")).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("t.toml:5:"), "sslmode on its line: {shown}");
        assert!(shown.contains("password_env"), "{shown}");
        let url_only =
            "[gateway]\nid = \"gw\"\n[sync]\nurl = \"postgres://gw:hunter2@central/markoff\"\n";
        let e = crate::config::parse_str(url_only, std::path::Path::new("t.toml")).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("t.toml:4:1: sync.url"), "{shown}");
        assert!(shown.contains("password_file"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn refuses_passwords_and_parameters_in_the_url() {
        let e = parse_url("postgres://gw:hunter2@host/db").unwrap_err();
        assert!(e.contains("password_file"), "{e}");
        assert!(!e.contains("hunter2"));
        let e = parse_url("postgres://gw@host/db?sslmode=disable").unwrap_err();
        assert!(e.contains("sslmode"), "{e}");
        assert!(parse_url("mysql://gw@host/db").is_err());
        assert!(parse_url("postgres://host/db").is_err());
        assert!(parse_url("postgres://gw@host").is_err());
        assert!(parse_url("postgres://gw@host:0/db").is_err());
        assert!(parse_url("postgres://gw@a,b/db").is_err());
    }
}
