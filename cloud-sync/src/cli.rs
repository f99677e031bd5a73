//! The command line of `markoff-central`: its subcommands and options (the binary runs them; the
//! Debian package's manual pages are generated from this definition).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::OfficeRoleKind;
use crate::admin;

/// Central side of Markoff: the schema gateways upload into, and their provisioning.
#[derive(Debug, Parser)]
#[command(name = "markoff-central", version)]
pub struct Cli {
    /// PostgreSQL URL of the central database, as an administrator (owner of schema `markoff`,
    /// allowed to create roles).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Take the database password from this systemd credential (a file of
    /// `$CREDENTIALS_DIRECTORY`, passed with `LoadCredential=`; its first line), in place of one
    /// in the URL. The packaged maintenance unit passes `owner-password`. With `serve`, it
    /// replaces `password_credential` of the settings.
    #[arg(long, value_name = "NAME", global = true)]
    pub password_credential: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `markoff-central`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the central schema (idempotent), then make sure the readings partitions
    /// exist.
    Migrate,
    /// Create the readings partitions for the coming months, roll the 10-minute rollup up into
    /// the daily one (the days that ended and the days that received late readings since the
    /// last run; run it daily, e.g. from the packaged timer) and, with --keep-months and
    /// --keep-10m-months, drop what is older than that.
    Maintain {
        /// How many months ahead of the current one to prepare.
        #[arg(long, default_value_t = admin::DEFAULT_MONTHS_AHEAD)]
        months_ahead: i32,
        /// Keep the readings of this many months before the current one and drop older monthly
        /// partitions (their readings are deleted; the 10-minute rollup stays). Default: keep all.
        #[arg(long, value_name = "MONTHS")]
        keep_months: Option<i32>,
        /// Keep the 10-minute rollup of this many months before the current one and delete
        /// older 10-minute rows once the daily rollup holds their days (charts of those months
        /// then show days). Default: keep all.
        #[arg(long = "keep-10m-months", value_name = "MONTHS")]
        keep_10m_months: Option<i32>,
    },
    /// Provision a gateway: a login role that can write only its own rows and read only its
    /// building; prints its `[gateway]` and `[sync]` settings and, once, its password.
    AddGateway {
        /// The gateway's id (`[gateway] id` in its markoff.toml).
        id: String,
        /// The building it serves.
        #[arg(long)]
        building: String,
        /// The role name (default `markoff_gw_<ID>`).
        #[arg(long)]
        role: Option<String>,
        /// Read the role's password from this file (first line) instead of generating one.
        #[arg(long, value_name = "FILE")]
        role_password_file: Option<PathBuf>,
        /// The URL gateways reach the database by (default: the database URL without its
        /// credentials and parameters).
        #[arg(long, value_name = "URL")]
        gateway_url: Option<String>,
    },
    /// Drop a gateway's role so it can no longer connect; its data stays unless --purge.
    RemoveGateway {
        /// The gateway's id.
        id: String,
        /// Also delete its readings, alarm events, sensors, cursors and registration.
        #[arg(long)]
        purge: bool,
    },
    /// Give a gateway a new upload key (the old one stops working at once) and print it once.
    /// The key proves the gateway's identity when it logs in as the shared ingest role.
    GatewayKey {
        /// The gateway's id.
        id: String,
        /// Read the key from this file (first line) instead of generating one.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// List the gateways: building, last contact and how far behind the centre is.
    Gateways,
    /// Create a login role for the office: `web` (for `serve`) or `reader` (Grafana, read-only),
    /// or the `ingest` role gateways share through PgBouncer, with only the privileges it needs;
    /// prints its password once.
    AddRole {
        /// The role's name.
        role: String,
        /// What it is for: `web`, `reader` or `ingest`.
        #[arg(long)]
        kind: OfficeRoleKind,
        /// Read the role's password from this file (first line) instead of generating one.
        #[arg(long, value_name = "FILE")]
        role_password_file: Option<PathBuf>,
        /// The role exists already: only (re)grant its privileges (e.g. after a migration).
        #[arg(long)]
        existing: bool,
    },
    /// Run the office web application (pages and JSON API) until SIGTERM or Ctrl-C.
    Serve {
        /// Settings file (TOML; docs/central-web.md). `--database-url` / `DATABASE_URL` and
        /// the flags below override it.
        #[arg(long, env = "MARKOFF_CENTRAL_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Environment variable holding the database password.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// Send cookies without `Secure`, for plain HTTP on loopback only (tests).
        #[arg(long)]
        insecure_cookies: bool,
    },
    /// Create a user of the web application. The password is read from standard input (first
    /// line) or from the environment variable given with --password-env, never from an argument.
    AddUser {
        /// The login name (stored in lower case).
        login: String,
        /// The name shown on pages and comments.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from this environment variable instead of standard input.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// The user exists: set a new password (and name) and end their sessions.
        #[arg(long)]
        update: bool,
    },
    /// Delete a user of the web application and their sessions.
    RemoveUser {
        /// The login name.
        login: String,
    },
    /// Let a user of the web application see buildings (and comment on their alarms), or every
    /// building with --all (an administrator). Users see no building until granted one.
    Grant {
        /// The login name.
        login: String,
        /// Building ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        buildings: Vec<String>,
        /// Every building, present and future.
        #[arg(long)]
        all: bool,
    },
    /// Take buildings away from a user of the web application, or with --all their
    /// administrator flag (the buildings granted one by one stay).
    Revoke {
        /// The login name.
        login: String,
        /// Building ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        buildings: Vec<String>,
        /// The administrator flag.
        #[arg(long)]
        all: bool,
    },
    /// List the users of the web application and the buildings they see.
    Users,
    /// List the streams a gateway uploads, one per line.
    Streams,
}
