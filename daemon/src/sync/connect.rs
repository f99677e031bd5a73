//! Connections to the central PostgreSQL, and the errors of the uploader.
//!
//! Owns: turning `[sync]` into connection options (TLS, password from its secret, server-side
//! timeouts, no statement logging), connecting under a deadline, the cheap probe of a centre that
//! is down, and classifying failures for the retry policy. Does not own: the SQL of the protocol
//! (`markoff_proto`).

use std::time::Duration;

use markoff_proto::{Stream, SyncError};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::config::{SslMode, SyncConfig, parse_url};
use crate::config::secret::SecretError;
use crate::store::StoreError;

/// Longest wait for the answer to a [`Target::probe`] (or `connect_timeout` if shorter).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL's SSLRequest: length 8, code 80877103. A server (or a pooler in front of it)
/// answers it with one byte, `S` or `N`, before any login.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Why a sync attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// `url` is not a usable PostgreSQL URL (validation normally catches this first).
    #[error("[sync] url {0}")]
    Url(String),
    /// The password could not be read.
    #[error("cannot read the password for the centre")]
    Secret(#[source] SecretError),
    /// The connection could not be opened or logging in failed.
    #[error("cannot connect to {target}")]
    Connect {
        /// The centre, without secrets.
        target: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// No connection within `connect_timeout`.
    #[error("no connection to {target} within {after:?}")]
    ConnectTimeout {
        /// The centre, without secrets.
        target: String,
        /// The deadline.
        after: Duration,
    },
    /// A protocol call failed (the central transaction was rolled back).
    #[error(transparent)]
    Central(#[from] SyncError),
    /// A protocol call got no answer in time; the connection is abandoned.
    #[error("{what} got no answer within {after:?}; the connection is dropped")]
    Timeout {
        /// The call.
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The local buffer could not be read or written.
    #[error("the local buffer failed")]
    Local(#[from] StoreError),
    /// Syncing the buffer's files to disk failed.
    #[error("cannot make the buffer durable before an upload")]
    Durability(#[source] std::io::Error),
    /// The centre has more of a stream than this buffer ever held: a different buffer (a
    /// replaced disk, a restored backup) runs under a gateway id that has synced before.
    #[error(
        "the centre holds {stream} up to seq {central} for this gateway, but this buffer has only \
         reached seq {local}: was the buffer replaced or restored? Uploading would put new rows \
         under seqs the centre already holds. Give this gateway a new [gateway] id, or see \
         docs/sync.md (\"A replaced buffer\")"
    )]
    BehindCentre {
        /// The stream.
        stream: Stream,
        /// The centre's cursor.
        central: i64,
        /// The highest seq of the stream this buffer has used.
        local: i64,
    },
}

impl SyncFailure {
    /// Whether a quick retry may succeed. Anything else needs an operator (wrong password, a
    /// role without the right privileges, a certificate that does not verify, a replaced
    /// buffer); the uploader still retries, at its longest backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Url(_) | Self::Secret(_) | Self::BehindCentre { .. } => false,
            Self::Connect { source, .. } => match source {
                sqlx::Error::Io(_) => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    // connection exceptions, too many connections, server starting or stopping
                    c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
                }),
                _ => false,
            },
            Self::Central(e) => e.is_transient(),
            Self::ConnectTimeout { .. }
            | Self::Timeout { .. }
            | Self::Local(_)
            | Self::Durability(_) => true,
        }
    }

    /// Whether the centre could not be reached at all (no connection, or none in time), as
    /// opposed to a centre that answered and failed.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::ConnectTimeout { .. }
                | Self::Connect {
                    source: sqlx::Error::Io(_),
                    ..
                }
        )
    }

    /// The message with its causes, for the status and the log (never a secret: the options
    /// that hold the password are never formatted).
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(c) = cur {
            let next = c.to_string();
            if !s.contains(&next) {
                s.push_str(": ");
                s.push_str(&next);
            }
            cur = c.source();
        }
        s
    }
}

/// Where and how to connect; the password is read again at each connection (so a rotated
/// password file is picked up without a restart).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    cfg: SyncConfig,
    gateway_id: String,
    display: String,
}

impl Target {
    pub(crate) fn new(cfg: &SyncConfig, gateway_id: &str) -> Self {
        Self {
            cfg: cfg.clone(),
            gateway_id: gateway_id.to_owned(),
            display: cfg.display_url(),
        }
    }

    /// The centre, without secrets.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// Deadline for one protocol call seen from the gateway: the server's statement timeout
    /// plus the time to get the answer back.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.cfg.statement_timeout + self.cfg.connect_timeout
    }

    fn options(&self) -> Result<PgConnectOptions, SyncFailure> {
        let url = parse_url(&self.cfg.url).map_err(SyncFailure::Url)?;
        let statement_ms = self.cfg.statement_timeout.as_millis().to_string();
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&url.host)
            .port(url.port)
            .username(&url.user)
            .database(&url.database)
            .ssl_mode(ssl_mode(self.cfg.sslmode))
            .application_name(&format!("markoff {}", self.gateway_id))
            .options([
                // A statement that hangs on the server ends there too.
                ("statement_timeout", statement_ms.as_str()),
                // A gateway that vanishes mid-transaction releases its cursor row.
                ("idle_in_transaction_session_timeout", statement_ms.as_str()),
                ("lock_timeout", statement_ms.as_str()),
                // The server notices a dead gateway within about two minutes.
                ("tcp_keepalives_idle", "60"),
                ("tcp_keepalives_interval", "10"),
                ("tcp_keepalives_count", "6"),
                // Notices would go to the journal at INFO; warnings and errors are enough.
                ("client_min_messages", "warning"),
            ])
            // Statements carry gateway data; never log them (nor slow ones).
            .disable_statement_logging();
        if let Some(root) = &self.cfg.root_cert {
            options = options.ssl_root_cert(root);
        }
        let password = self.cfg.password();
        if password.is_well_formed() {
            let secret = password.resolve().map_err(SyncFailure::Secret)?;
            options = options.password(secret.expose());
        }
        Ok(options)
    }

    /// Opens a connection within `connect_timeout`.
    pub(crate) async fn connect(&self) -> Result<PgConnection, SyncFailure> {
        let options = self.options()?;
        let after = self.cfg.connect_timeout;
        match tokio::time::timeout(after, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(SyncFailure::Connect {
                target: self.display.clone(),
                source,
            }),
            Err(_) => Err(SyncFailure::ConnectTimeout {
                target: self.display.clone(),
                after,
            }),
        }
    }

    /// Whether PostgreSQL answers at the centre's address: a TCP connection, the 8-byte
    /// SSLRequest, its one-byte answer, and the connection closed again. No login, no password
    /// read, nothing logged by the server (it stays silent on a client that leaves after the SSL
    /// answer); within `connect_timeout`, at most [`PROBE_TIMEOUT`].
    pub(crate) async fn probe(&self) -> bool {
        let Ok(url) = parse_url(&self.cfg.url) else {
            return false;
        };
        let answer = async {
            let mut stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await?;
            stream.write_all(&SSL_REQUEST).await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            Ok::<u8, std::io::Error>(byte[0])
        };
        let after = self.cfg.connect_timeout.min(PROBE_TIMEOUT);
        matches!(
            tokio::time::timeout(after, answer).await,
            Ok(Ok(b'S' | b'N'))
        )
    }

    /// Runs one protocol call under [`Self::call_timeout`].
    pub(crate) async fn call<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, SyncError>>,
    ) -> Result<T, SyncFailure> {
        let after = self.call_timeout();
        match tokio::time::timeout(after, fut).await {
            Ok(r) => r.map_err(SyncFailure::from),
            Err(_) => Err(SyncFailure::Timeout { what, after }),
        }
    }
}

fn ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// Opens a connection to the centre as `[sync]` describes (TLS, password secret, timeouts),
/// for tools that drive the uploader directly (the benchmark).
///
/// # Errors
/// See [`SyncFailure`].
pub async fn connect(cfg: &SyncConfig, gateway_id: &str) -> Result<PgConnection, SyncFailure> {
    Target::new(cfg, gateway_id).connect().await
}
