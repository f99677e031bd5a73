//! Provisioning gateways: their roles, grants and registration, their removal, and the gateway
//! list.

use rand::Rng as _;
use sqlx::{Connection, PgConnection, Row};

use super::{
    AdminError, Password, check_gateway_id, check_password, check_role, check_text, db,
    quote_ident, quote_literal,
};
use crate::scram;

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
    /// Its upload key (shown once; the database keeps only its SHA-256), which proves the
    /// gateway's identity in every transaction when it logs in as the shared ingest role.
    pub key: Password,
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
    let key = Password::generate();
    store_key(&mut tx, &new.gateway_id, &key).await?;
    tx.commit().await.map_err(db("committing"))?;
    tracing::info!(gateway = %new.gateway_id, building = %new.building_id, role = %role, "Gateway added.");
    Ok(GatewayCredentials {
        gateway_id: new.gateway_id.clone(),
        building_id: new.building_id.clone(),
        role,
        password,
        key,
    })
}

/// SHA-256 of an upload key, as `markoff.gateway_keys` stores it (the key is random, so a fast
/// hash is enough: there is nothing to guess).
pub fn key_hash(key: &Password) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(key.expose().as_bytes()).to_vec()
}

async fn store_key(
    conn: &mut PgConnection,
    gateway_id: &str,
    key: &Password,
) -> Result<(), AdminError> {
    sqlx::query(
        "INSERT INTO markoff.gateway_keys (gateway_id, key_hash) VALUES ($1, $2) \
         ON CONFLICT (gateway_id) DO UPDATE SET key_hash = excluded.key_hash, created_at = now()",
    )
    .bind(gateway_id)
    .bind(key_hash(key))
    .execute(&mut *conn)
    .await
    .map_err(db("storing the gateway's key"))?;
    Ok(())
}

/// Gives a registered gateway a new upload key (`key`, or 32 random letters and digits) and
/// answers it; the old key stops working at once.
///
/// # Errors
/// [`AdminError::UnknownGateway`] when no gateway of that id is registered (or it was
/// removed), [`AdminError::Invalid`] for a key the password rules refuse, or
/// [`AdminError::Database`].
pub async fn set_gateway_key(
    conn: &mut PgConnection,
    gateway_id: &str,
    key: Option<Password>,
) -> Result<Password, AdminError> {
    let key = key.unwrap_or_else(Password::generate);
    check_password(&key)?;
    let mut tx = Connection::begin(&mut *conn)
        .await
        .map_err(db("starting a transaction"))?;
    let active: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM markoff.gateways \
         WHERE gateway_id = $1 AND removed_at IS NULL)",
    )
    .bind(gateway_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db("looking up the gateway"))?;
    if !active {
        return Err(AdminError::UnknownGateway {
            gateway_id: gateway_id.to_owned(),
        });
    }
    store_key(&mut tx, gateway_id, &key).await?;
    tx.commit().await.map_err(db("committing"))?;
    tracing::info!(gateway = %gateway_id, "Gateway key set.");
    Ok(key)
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
        sqlx::query("DELETE FROM markoff.gateway_keys WHERE gateway_id = $1")
            .bind(gateway_id)
            .execute(&mut *tx)
            .await
            .map_err(db("removing the gateway's key"))?;
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
