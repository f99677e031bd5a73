//! The CLI side of `markoff status` and `markoff readings`: finds a running daemon's local HTTP
//! API ([`ApiArgs`]), queries it and prints text for people or JSON for scripts.
//!
//! The CLI talks to the daemon's Unix socket (`[http] socket`) when it exists, so that actions
//! are done as the account running the CLI (the daemon reads its uid from the kernel); reads
//! fall back to the TCP listener when the socket cannot be used (an account outside group
//! `markoff-operators`). With `--api URL` it uses TCP, with the bearer token of
//! `--token-file` for actions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::http::{LatestRow, SensorDetail, format_ts, format_value};
use crate::config::DEFAULT_CONFIG;
use crate::context::StatusReport;
use crate::model::Timestamp;

/// Errors of the CLI client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot reach the markoff daemon at {url} (is it running? is [http] enabled?)")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The daemon's socket could not be used for an action.
    #[error(
        "cannot use the daemon's socket {path}: actions need it (members of group \
         markoff-operators, mapped to a login by unix_user in [[users]]) or --api with --token-file"
    )]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The bearer token file could not be read.
    #[error("cannot read the token file {path}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with an error.
    #[error("the daemon answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// The answer was not what this CLI expects.
    #[error("unexpected answer from the daemon")]
    Decode(#[source] reqwest::Error),
}

/// The daemon's Unix socket, and a client that talks through it.
#[derive(Debug, Clone)]
struct Local {
    path: PathBuf,
    http: reqwest::Client,
}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    local: Option<Local>,
    token: Option<String>,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .no_proxy()
}

impl Client {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:9780`), over TCP only.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: builder().build().unwrap_or_default(),
            local: None,
            token: None,
        }
    }

    /// Talks through the Unix socket at `path` first (every action, and reads while it answers).
    #[must_use]
    pub fn with_socket(mut self, path: &Path) -> Self {
        self.local = builder().unix_socket(path).build().ok().map(|http| Local {
            path: path.to_owned(),
            http,
        });
        self
    }

    /// Sends `token` as a bearer token on TCP.
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// `POST` of a JSON body; the JSON answer.
    pub(crate) async fn post_json<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<serde_json::Value, ClientError> {
        self.post_json_within(path, body, Duration::from_secs(10))
            .await
    }

    /// `POST` of a JSON body, waiting up to `timeout` for the answer: through the socket when
    /// there is one (an action is never retried elsewhere), else over TCP with the token.
    pub(crate) async fn post_json_within<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let resp = if let Some(local) = &self.local {
            local
                .http
                .post(format!("http://localhost{path}"))
                .timeout(timeout)
                .json(body)
                .send()
                .await
                .map_err(|source| ClientError::Socket {
                    path: local.path.clone(),
                    source,
                })?
        } else {
            let url = format!("{}{path}", self.base);
            let mut req = self.http.post(&url).timeout(timeout).json(body);
            if let Some(token) = &self.token {
                req = req.bearer_auth(token);
            }
            req.send()
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: url.clone(),
                    source,
                })?
        };
        let resp = checked(resp).await?;
        resp.json().await.map_err(ClientError::Decode)
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        if let Some(local) = &self.local {
            match local
                .http
                .get(format!("http://localhost{path}"))
                .send()
                .await
            {
                Ok(resp) => return checked(resp).await,
                // The socket is not there or not ours: reads are open on TCP.
                Err(e) if e.is_connect() => {}
                Err(source) => {
                    return Err(ClientError::Socket {
                        path: local.path.clone(),
                        source,
                    });
                }
            }
        }
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        checked(resp).await
    }

    /// `GET /api/v1/status`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn status(&self) -> Result<StatusReport, ClientError> {
        self.get("/api/v1/status")
            .await?
            .json()
            .await
            .map_err(ClientError::Decode)
    }

    /// `GET /api/v1/status` as raw JSON.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn raw(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.get(path)
            .await?
            .json()
            .await
            .map_err(ClientError::Decode)
    }

    /// `GET /api/v1/readings`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn readings(&self) -> Result<Vec<LatestRow>, ClientError> {
        self.get("/api/v1/readings")
            .await?
            .json()
            .await
            .map_err(ClientError::Decode)
    }

    /// `GET /api/v1/readings/{sensor}`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn sensor(&self, sensor: &str, limit: u32) -> Result<SensorDetail, ClientError> {
        let path = format!("/api/v1/readings/{}?limit={limit}", encode_segment(sensor));
        self.get(&path)
            .await?
            .json()
            .await
            .map_err(ClientError::Decode)
    }
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `markoff status` for people.
pub fn render_status(s: &StatusReport) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "gateway   {} (markoff {}), up {}",
        s.gateway_id,
        s.version,
        humantime::format_duration(Duration::from_secs(s.uptime_s))
    )
    .ok();
    writeln!(out, "ready     {}", if s.ready { "yes" } else { "no" }).ok();
    writeln!(out, "points    {}", s.points).ok();
    writeln!(out, "ingest    {:.0} readings/s", s.readings_per_s).ok();
    writeln!(
        out,
        "buffer    {} rows, {} of {}, last seq {}",
        s.buffer_rows,
        crate::config::ByteSize(s.buffer_bytes),
        crate::config::ByteSize(s.buffer_max_bytes),
        s.last_seq
    )
    .ok();
    match s.sync_lag_rows {
        Some(lag) => {
            writeln!(
                out,
                "sync      synced up to seq {}, {lag} rows waiting",
                s.synced_seq
            )
            .ok();
        }
        None => {
            writeln!(out, "sync      not configured").ok();
        }
    }
    if let Some(c) = &s.clock {
        writeln!(out, "clock     {}", crate::clock::describe(c)).ok();
    }
    if !s.dropped.is_empty() {
        let parts: Vec<String> = s.dropped.iter().map(|(r, n)| format!("{r}={n}")).collect();
        writeln!(out, "dropped   {}", parts.join(", ")).ok();
    }
    if !s.sources.is_empty() {
        writeln!(out, "sources").ok();
        for (name, h) in &s.sources {
            let devices: Vec<String> = h
                .devices
                .iter()
                .map(|(d, up)| {
                    let state = if *up { "online" } else { "OFFLINE" };
                    match h.holes.get(d) {
                        Some(1) => format!("{d} {state} (1 address hole)"),
                        Some(n) => format!("{d} {state} ({n} address holes)"),
                        None => format!("{d} {state}"),
                    }
                })
                .collect();
            write!(
                out,
                "  {:<24} {:<12}",
                name,
                if h.connected {
                    "connected"
                } else {
                    "disconnected"
                }
            )
            .ok();
            if !devices.is_empty() {
                write!(out, " {}", devices.join(", ")).ok();
            }
            if let (Some(e), false) = (&h.last_error, h.connected && h.devices.values().all(|u| *u))
            {
                write!(out, "  last error: {e}").ok();
            }
            out.push('\n');
        }
    }
    writeln!(out, "tasks").ok();
    for t in &s.tasks {
        let state = serde_json::to_value(t.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        write!(out, "  {:<24} {:<9} restarts {}", t.name, state, t.restarts).ok();
        if let Some(e) = &t.last_error {
            write!(out, "  last error: {e}").ok();
        }
        out.push('\n');
    }
    out
}

/// `markoff readings` for people: one line per sensor.
pub fn render_readings(rows: &[LatestRow]) -> String {
    let now = Timestamp::now();
    let width = rows.iter().map(|r| r.sensor.len()).max().unwrap_or(6);
    let mut out = String::new();
    for r in rows {
        writeln!(
            out,
            "{:<width$}  {:>16}  {}",
            r.sensor,
            format_value(r.value, &r.unit, r.quality),
            format_ts(Timestamp(r.ts), now),
        )
        .ok();
    }
    if rows.is_empty() {
        out.push_str("no readings yet\n");
    }
    out
}

/// `markoff readings SENSOR` for people.
pub fn render_sensor(sensor: &str, d: &SensorDetail) -> String {
    let now = Timestamp::now();
    let mut out = String::new();
    match &d.latest {
        Some(l) => {
            let place = match (&l.floor, &l.room) {
                (Some(f), Some(r)) => format!(", floor {f}, room {r}"),
                (Some(f), None) => format!(", floor {f}"),
                _ => String::new(),
            };
            writeln!(out, "{sensor}: {}{place}", l.name).ok();
            writeln!(
                out,
                "latest  {}  at {}",
                format_value(l.value, &l.unit, l.quality),
                format_ts(Timestamp(l.ts), now)
            )
            .ok();
        }
        None => {
            writeln!(out, "{sensor}: no readings yet").ok();
        }
    }
    let unit = d
        .latest
        .as_ref()
        .map(|l| l.unit.clone())
        .unwrap_or_default();
    for h in &d.history {
        writeln!(
            out,
            "  {}  {:>16}  seq {}",
            h.ts.to_rfc3339(),
            format_value(h.value, &unit, h.quality),
            h.seq
        )
        .ok();
    }
    out
}

/// A non-success answer as [`ClientError::Status`].
async fn checked(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default().trim().to_owned();
    Err(ClientError::Status { status, body })
}

/// How the CLI finds the running daemon.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Base URL of the daemon's local API (TCP). Default: from [http] listen in the config
    /// file, else http://127.0.0.1:9780. With it, actions need --token-file.
    #[arg(long, env = "MARKOFF_API")]
    pub api: Option<String>,
    /// The daemon's Unix socket; actions through it are done as the account running this
    /// command. Default (without --api): [http] socket of the config, /run/markoff/api.sock.
    #[arg(long, env = "MARKOFF_SOCKET")]
    pub socket: Option<PathBuf>,
    /// File holding a bearer token of [[http.token]], for actions over TCP (--api).
    #[arg(long, env = "MARKOFF_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Config file to read [http] listen and socket from.
    #[arg(long, short, env = "MARKOFF_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

impl ApiArgs {
    /// The client these arguments describe: the socket (given, or the config's when no
    /// `--api` is), the TCP base URL and the token.
    ///
    /// # Errors
    /// The token file cannot be read.
    pub fn client(&self) -> Result<Client, ClientError> {
        let token = match &self.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| ClientError::Token {
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let socket = self.socket.clone().or_else(|| {
            if self.api.is_some() || self.token_file.is_some() {
                return None;
            }
            let path = crate::config::load_file(&self.config).map_or_else(
                |_| crate::config::defaults::http_socket(),
                |c| c.http.socket,
            );
            (!path.as_os_str().is_empty() && path.exists()).then_some(path)
        });
        let client = Client::new(&self.base_url()).with_token(token);
        Ok(match socket {
            Some(path) => client.with_socket(&path),
            None => client,
        })
    }

    /// The API base URL: `--api`, else `[http] listen` of the config (or, when that is port 0,
    /// the address the daemon recorded in `markoff.api` beside its buffer), else the default.
    pub fn base_url(&self) -> String {
        if let Some(api) = &self.api {
            return api.clone();
        }
        let config = crate::config::load_file(&self.config).ok();
        if let Some(c) = config.as_ref().filter(|c| c.http.listen.port() == 0) {
            let recorded =
                std::fs::read_to_string(crate::config::api_file(&c.store.resolved_path()));
            if let Ok(url) = recorded {
                return url.trim().to_owned();
            }
        }
        let mut addr = config.map_or_else(crate::config::defaults::http_listen, |c| c.http.listen);
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }
}
