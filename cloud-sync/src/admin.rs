//! Running the central database: migrations, partition maintenance, and provisioning gateways
//! (their roles, grants and registration).
//!
//! Owns: the embedded migrations of `migrations/central/`, what a gateway role is granted, and
//! the gateway list. Does not own: the policies themselves (in the migrations) or the command
//! line (`src/main.rs`).

use std::fmt;

use markoff_proto::is_unreachable;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Acquire, Connection, PgConnection, Postgres, Row, SqlSafeStr};

use crate::scram;

/// The schema every central object lives in.
pub const SCHEMA: &str = "markoff";

/// The table that records applied migrations (in [`SCHEMA`]).
pub const MIGRATIONS_TABLE: &str = "markoff._sqlx_migrations";

/// Monthly partitions of `markoff.readings` kept ready ahead of the current month.
pub const DEFAULT_MONTHS_AHEAD: i32 = 3;

/// The migrations in `migrations/central/`, embedded: (version, description, SQL).
/// A unit test checks this list against the directory.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../migrations/central/0001_schema.sql"),
    ),
    (
        2,
        "security",
        include_str!("../../migrations/central/0002_security.sql"),
    ),
    (
        3,
        "views",
        include_str!("../../migrations/central/0003_views.sql"),
    ),
    (
        4,
        "web",
        include_str!("../../migrations/central/0004_web.sql"),
    ),
    (
        5,
        "web_access",
        include_str!("../../migrations/central/0005_web_access.sql"),
    ),
    (
        6,
        "distribution",
        include_str!("../../migrations/central/0006_distribution.sql"),
    ),
    (
        7,
        "office_requests",
        include_str!("../../migrations/central/0007_office_requests.sql"),
    ),
    (
        8,
        "clock",
        include_str!("../../migrations/central/0008_clock.sql"),
    ),
];

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

/// What `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions applied by this call (empty when the database was up to date).
    pub applied: Vec<i64>,
    /// Every version now applied.
    pub current: Vec<i64>,
    /// Readings partitions created by this call.
    pub partitions_created: i32,
}

/// The migrator for the central schema (migrations embedded from `migrations/central/`).
pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut m = Migrator::with_migrations(migrations);
    m.create_schema(SCHEMA);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// Applies every pending migration (idempotent; concurrent runs wait on each other), then makes
/// sure the readings partitions exist ([`DEFAULT_MONTHS_AHEAD`] months ahead).
///
/// # Errors
/// [`AdminError::Migrate`] or [`AdminError::Database`].
pub async fn migrate<'a, A>(db: A) -> Result<MigrateReport, AdminError>
where
    A: Acquire<'a, Database = Postgres>,
{
    let mut conn = db.acquire().await.map_err(self::db("connecting"))?;
    let before = applied_versions(&mut conn).await?;
    migrator().run(&mut *conn).await?;
    let current = applied_versions(&mut conn).await?;
    let applied = current
        .iter()
        .copied()
        .filter(|v| !before.contains(v))
        .collect();
    let partitions_created = ensure_partitions(&mut conn, DEFAULT_MONTHS_AHEAD).await?;
    Ok(MigrateReport {
        applied,
        current,
        partitions_created,
    })
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, AdminError> {
    let exists: bool = sqlx::query("SELECT to_regclass($1) IS NOT NULL")
        .bind(MIGRATIONS_TABLE)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db("reading the applied migrations"))?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar::<_, i64>(
        "SELECT version FROM markoff._sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading the applied migrations"))
}

/// Creates the missing monthly partitions of `markoff.readings` from last month to
/// `months_ahead` months ahead; returns how many were created.
///
/// # Errors
/// [`AdminError::Database`].
pub async fn ensure_partitions(
    conn: &mut PgConnection,
    months_ahead: i32,
) -> Result<i32, AdminError> {
    sqlx::query_scalar::<_, i32>("SELECT markoff.ensure_partitions($1)")
        .bind(months_ahead)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("creating readings partitions"))
}

/// A gateway to provision.
#[derive(Clone, Debug)]
pub struct NewGateway {
    /// The gateway's id (`[gateway] id` of its config): ASCII letters, digits, `-`, `_`, `.`.
    pub gateway_id: String,
    /// The building it serves (created when new).
    pub building_id: String,
    /// The role it logs in as; default `markoff_gw_<gateway_id>`.
    pub role: Option<String>,
    /// Its password; default a generated one.
    pub password: Option<Password>,
}

/// What a provisioned gateway needs to connect.
#[derive(Clone, Debug)]
pub struct GatewayCredentials {
    /// The gateway's id.
    pub gateway_id: String,
    /// Its building.
    pub building_id: String,
    /// The role it logs in as.
    pub role: String,
    /// Its password (shown once; the database keeps only a SCRAM verifier).
    pub password: Password,
}

/// The SCRAM-SHA-256 verifier of `password` with `salt`, as `add_gateway` stores it (with a
/// random 16-byte salt) and as PostgreSQL keeps it in `pg_authid.rolpassword`.
pub fn password_verifier(password: &Password, salt: &[u8]) -> String {
    scram::verifier(password.expose(), salt, scram::ITERATIONS)
}

/// The default role of a gateway.
pub fn default_role(gateway_id: &str) -> String {
    format!("markoff_gw_{gateway_id}")
}

/// Creates the gateway's login role (password stored as a SCRAM-SHA-256 verifier), grants it
/// exactly what uploading needs and registers it in `markoff.gateways`, in one transaction. A
/// removed gateway can be added again (its data stays attached to it).
///
/// # Errors
/// [`AdminError::Invalid`], [`AdminError::GatewayExists`], [`AdminError::RoleExists`] or
/// [`AdminError::Database`] (e.g. the connected role may not create roles).
pub async fn add_gateway(
    conn: &mut PgConnection,
    new: &NewGateway,
) -> Result<GatewayCredentials, AdminError> {
    check_gateway_id(&new.gateway_id)?;
    check_text("building id", &new.building_id)?;
    let role = new
        .role
        .clone()
        .unwrap_or_else(|| default_role(&new.gateway_id));
    check_role(&role)?;
    let password = new.password.clone().unwrap_or_else(Password::generate);
    check_password(&password)?;
    let salt: [u8; 16] = rand::rng().random();
    let verifier = password_verifier(&password, &salt);

    let mut tx = Connection::begin(&mut *conn)
        .await
        .map_err(db("starting a transaction"))?;
    let existing: Option<Option<String>> = sqlx::query_scalar(
        "SELECT role_name::text FROM markoff.gateways WHERE gateway_id = $1 FOR UPDATE",
    )
    .bind(&new.gateway_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db("looking up the gateway"))?;
    if let Some(Some(role)) = existing {
        return Err(AdminError::GatewayExists {
            gateway_id: new.gateway_id.clone(),
            role,
        });
    }
    let role_taken: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&role)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("looking up the role"))?;
    if role_taken {
        return Err(AdminError::RoleExists { role });
    }
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("finding the database name"))?;

    let r = quote_ident(&role);
    let statements = [
        format!(
            "CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION \
             NOBYPASSRLS CONNECTION LIMIT 8 PASSWORD {}",
            quote_literal(&verifier)
        ),
        format!(
            "GRANT CONNECT, TEMPORARY ON DATABASE {} TO {r}",
            quote_ident(&database)
        ),
        format!("GRANT USAGE ON SCHEMA markoff TO {r}"),
        format!("GRANT SELECT, INSERT ON markoff.readings, markoff.alarm_events TO {r}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE ON markoff.sensors, markoff.sensor_latest, \
             markoff.readings_10m, markoff.sync_cursors TO {r}"
        ),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON markoff.floors, markoff.rooms, \
             markoff.tenants TO {r}"
        ),
        format!("GRANT SELECT, UPDATE (name, address, updated_at) ON markoff.buildings TO {r}"),
    ];
    for s in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&mut *tx)
            .await
            .map_err(db("creating the gateway role"))?;
    }
    sqlx::query("INSERT INTO markoff.buildings (building_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&new.building_id)
        .execute(&mut *tx)
        .await
        .map_err(db("registering the building"))?;
    sqlx::query(
        "INSERT INTO markoff.gateways (gateway_id, building_id, role_name) VALUES ($1, $2, $3) \
         ON CONFLICT (gateway_id) DO UPDATE \
         SET building_id = excluded.building_id, role_name = excluded.role_name, removed_at = NULL",
    )
    .bind(&new.gateway_id)
    .bind(&new.building_id)
    .bind(&role)
    .execute(&mut *tx)
    .await
    .map_err(db("registering the gateway"))?;
    tx.commit().await.map_err(db("committing"))?;
    tracing::info!(gateway = %new.gateway_id, building = %new.building_id, role = %role, "Gateway added.");
    Ok(GatewayCredentials {
        gateway_id: new.gateway_id.clone(),
        building_id: new.building_id.clone(),
        role,
        password,
    })
}

/// What `remove_gateway` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// The role dropped, if the gateway still had one.
    pub role: Option<String>,
    /// Rows deleted per table when purging (empty otherwise).
    pub purged: Vec<(&'static str, u64)>,
}

/// Drops the gateway's role (ending its sessions first) so it can no longer connect. Its data
/// stays, attributed to it, unless `purge`, which deletes its readings, alarm events, sensors,
/// latest values, cursors and registration.
///
/// # Errors
/// [`AdminError::UnknownGateway`] or [`AdminError::Database`].
pub async fn remove_gateway(
    conn: &mut PgConnection,
    gateway_id: &str,
    purge: bool,
) -> Result<Removed, AdminError> {
    let role: Option<Option<String>> =
        sqlx::query_scalar("SELECT role_name::text FROM markoff.gateways WHERE gateway_id = $1")
            .bind(gateway_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("looking up the gateway"))?;
    let Some(role) = role else {
        return Err(AdminError::UnknownGateway {
            gateway_id: gateway_id.to_owned(),
        });
    };
    if let Some(role) = &role {
        // Its sessions hold session temp tables it owns; end them so the role can be dropped.
        // Needs superuser or pg_signal_backend; without it, DROP ROLE reports what is left.
        if let Err(e) = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = $1 AND pid <> pg_backend_pid()",
        )
        .bind(role)
        .execute(&mut *conn)
        .await
        {
            tracing::warn!(role = %role, error = %e, "Cannot end the gateway's sessions.");
        }
    }
    let mut tx = Connection::begin(&mut *conn)
        .await
        .map_err(db("starting a transaction"))?;
    let mut dropped = None;
    if let Some(role) = role {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&mut *tx)
                .await
                .map_err(db("looking up the role"))?;
        if exists {
            let r = quote_ident(&role);
            for s in [format!("DROP OWNED BY {r}"), format!("DROP ROLE {r}")] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(s))
                    .execute(&mut *tx)
                    .await
                    .map_err(db("dropping the gateway role"))?;
            }
        }
        sqlx::query(
            "UPDATE markoff.gateways SET role_name = NULL, removed_at = now() WHERE gateway_id = $1",
        )
        .bind(gateway_id)
        .execute(&mut *tx)
        .await
        .map_err(db("unregistering the gateway"))?;
        dropped = Some(role);
    }
    let mut purged = Vec::new();
    if purge {
        const PURGE: [(&str, &str); 7] = [
            (
                "readings",
                "DELETE FROM markoff.readings WHERE gateway_id = $1",
            ),
            (
                "alarm_events",
                "DELETE FROM markoff.alarm_events WHERE gateway_id = $1",
            ),
            (
                "sensors",
                "DELETE FROM markoff.sensors WHERE gateway_id = $1",
            ),
            (
                "sensor_latest",
                "DELETE FROM markoff.sensor_latest WHERE gateway_id = $1",
            ),
            (
                "readings_10m",
                "DELETE FROM markoff.readings_10m WHERE gateway_id = $1",
            ),
            (
                "sync_cursors",
                "DELETE FROM markoff.sync_cursors WHERE gateway_id = $1",
            ),
            (
                "gateways",
                "DELETE FROM markoff.gateways WHERE gateway_id = $1",
            ),
        ];
        for (table, sql) in PURGE {
            let n = sqlx::query(sql)
                .bind(gateway_id)
                .execute(&mut *tx)
                .await
                .map_err(db("purging the gateway's data"))?
                .rows_affected();
            purged.push((table, n));
        }
    }
    tx.commit().await.map_err(db("committing"))?;
    tracing::info!(gateway = %gateway_id, purge, "Gateway removed.");
    Ok(Removed {
        role: dropped,
        purged,
    })
}

/// One gateway as `markoff-central gateways` shows it (from `markoff.gateway_health`).
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayStatus {
    /// The gateway's id.
    pub gateway_id: String,
    /// Its building.
    pub building_id: String,
    /// Its role; `None` once removed.
    pub role: Option<String>,
    /// Last contact, ISO 8601 UTC, if any.
    pub last_contact: Option<String>,
    /// Highest reading seq that arrived.
    pub readings_seq: Option<i64>,
    /// Readings the gateway reported having but not yet uploaded.
    pub lag_rows: Option<i64>,
    /// Age of the newest reading that arrived, seconds.
    pub lag_seconds: Option<f64>,
}

/// Every registered gateway, by id.
///
/// # Errors
/// [`AdminError::Database`].
pub async fn list_gateways(conn: &mut PgConnection) -> Result<Vec<GatewayStatus>, AdminError> {
    let rows = sqlx::query(
        "SELECT gateway_id, building_id, role_name::text, \
                to_char(last_contact AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                readings_seq, lag_rows, lag_seconds \
         FROM markoff.gateway_health ORDER BY gateway_id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db("listing gateways"))?;
    rows.into_iter()
        .map(|r| {
            Ok(GatewayStatus {
                gateway_id: r.try_get(0)?,
                building_id: r.try_get(1)?,
                role: r.try_get(2)?,
                last_contact: r.try_get(3)?,
                readings_seq: r.try_get(4)?,
                lag_rows: r.try_get(5)?,
                lag_seconds: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db("listing gateways"))
}

/// `database_url` with its user name replaced by `role`, and without its password and its
/// parameters: the URL a gateway's `[sync] url` takes (its password comes from a credentials
/// file, TLS from its own settings). `None` when the URL is not a `postgres://` or
/// `postgresql://` URL.
pub fn gateway_url(database_url: &str, role: &str) -> Option<String> {
    let (scheme, rest) = database_url.split_once("://")?;
    if scheme != "postgres" && scheme != "postgresql" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!("{scheme}://{}@{host}{path}", percent_encode(role)))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_match_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/central");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(v, d, _)| format!("{v:04}_{d}.sql"))
            .collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn ids_roles_and_passwords_are_checked() {
        assert!(check_gateway_id("lenina-17").is_ok());
        assert!(check_gateway_id("").is_err());
        assert!(check_gateway_id("a b").is_err());
        assert!(check_role(&default_role("lenina-17")).is_ok());
        assert!(check_role(&"x".repeat(64)).is_err());
        assert!(check_role("pg_monitor").is_err());
        assert!(check_password(&Password::generate()).is_ok());
        assert!(check_password(&Password::new("short")).is_err());
        assert!(check_password(&Password::new("with space and long")).is_err());
        assert_eq!(
            format!("{:?}", Password::new("secret")),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn gateway_urls_drop_the_admin_credentials() {
        let u = |s| gateway_url(s, "markoff_gw_a-1");
        assert_eq!(
            u("postgres://admin:s3cr%40t@db.example:5432/markoff?sslmode=verify-full").unwrap(),
            "postgres://markoff_gw_a-1@db.example:5432/markoff"
        );
        assert_eq!(
            u("postgresql://db/markoff").unwrap(),
            "postgresql://markoff_gw_a-1@db/markoff"
        );
        assert_eq!(
            u("postgres://h?connect_timeout=3").unwrap(),
            "postgres://markoff_gw_a-1@h"
        );
        assert_eq!(
            gateway_url("postgres://h/d", "a b").unwrap(),
            "postgres://a%20b@h/d"
        );
        assert_eq!(u("mysql://h/d"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
