//! Running the central database: migrations, partition maintenance, and provisioning gateways
//! (their roles, grants and registration).
//!
//! Owns: the embedded migrations of `migrations/central/`, what a gateway role is granted, and
//! the gateway list. Does not own: the policies themselves (in the migrations) or the command
//! line (`src/main.rs`).
//!
//! Layout: this file the errors, the password type and the checks and quoting every statement
//! relies on; `migrate` the migrations and partitions; `gateways` the provisioning.

mod gateways;
mod migrate;
mod rollup;

use std::fmt;

use markoff_proto::is_unreachable;
use rand::Rng as _;
use rand::distr::Alphanumeric;

pub use self::gateways::{
    GatewayCredentials, GatewayStatus, NewGateway, Removed, add_gateway, default_role, gateway_url,
    key_hash, list_gateways, password_verifier, remove_gateway, set_gateway_key,
};
pub use self::migrate::{MigrateReport, drop_partitions, ensure_partitions, migrate, migrator};
pub use self::rollup::{ROLLUP_WAIT, RollupReport, rollup_daily, trim_10m};

/// The schema every central object lives in.
pub const SCHEMA: &str = "markoff";

/// The table that records applied migrations (in [`SCHEMA`]).
pub const MIGRATIONS_TABLE: &str = "markoff._sqlx_migrations";

/// Monthly partitions of `markoff.readings` kept ready ahead of the current month.
pub const DEFAULT_MONTHS_AHEAD: i32 = 3;

/// Why an administrative operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A statement failed or the database could not be reached.
    #[error("{op} failed: {source}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("applying the central migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A gateway id, building id, role name or password is not acceptable.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Its value (never a password).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The gateway is already registered with a role.
    #[error("gateway {gateway_id} already exists (role {role}); remove it first")]
    GatewayExists {
        /// The gateway.
        gateway_id: String,
        /// Its role.
        role: String,
    },
    /// A role of that name exists already and is not this gateway's.
    #[error("role {role} already exists; choose another with --role")]
    RoleExists {
        /// The role.
        role: String,
    },
    /// No gateway of that id is registered.
    #[error("no gateway {gateway_id} is registered")]
    UnknownGateway {
        /// The gateway.
        gateway_id: String,
    },
}

impl AdminError {
    /// Whether the database could not be reached (exit code 69 in `markoff-central`).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Database { source, .. } => is_unreachable(source),
            Self::Migrate(sqlx::migrate::MigrateError::Execute(source)) => is_unreachable(source),
            _ => false,
        }
    }
}

pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> AdminError {
    move |source| AdminError::Database { op, source }
}

/// A password that does not show itself in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// 32 random letters and digits (about 190 bits).
    pub fn generate() -> Self {
        let p: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        Self(p)
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

// === checks and quoting ===

fn invalid(what: &'static str, value: &str, reason: &'static str) -> AdminError {
    AdminError::Invalid {
        what,
        value: value.to_owned(),
        reason,
    }
}

/// The same rule as the gateway's `[gateway] id`.
fn check_gateway_id(id: &str) -> Result<(), AdminError> {
    if id.is_empty() {
        return Err(invalid("gateway id", id, "must not be empty"));
    }
    if id.len() > 200 {
        return Err(invalid("gateway id", id, "is longer than 200 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "gateway id",
            id,
            "may only contain ASCII letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

pub(crate) fn check_text(what: &'static str, v: &str) -> Result<(), AdminError> {
    if v.trim().is_empty() {
        return Err(invalid(what, v, "must not be empty"));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(what, v, "must not contain control characters"));
    }
    Ok(())
}

pub(crate) fn check_role(role: &str) -> Result<(), AdminError> {
    check_text("role name", role)?;
    if role.len() > 63 {
        return Err(invalid(
            "role name",
            role,
            "is longer than PostgreSQL's 63 bytes; choose a shorter one with --role",
        ));
    }
    if role.starts_with("pg_") {
        return Err(invalid("role name", role, "the pg_ prefix is reserved"));
    }
    Ok(())
}

pub(crate) fn check_password(p: &Password) -> Result<(), AdminError> {
    let v = p.expose();
    if v.len() < 12 {
        return Err(invalid(
            "password",
            "<redacted>",
            "must have at least 12 characters",
        ));
    }
    if !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "password",
            "<redacted>",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// A double-quoted SQL identifier.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A single-quoted SQL literal (standard_conforming_strings, on since PostgreSQL 9.1).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests;
