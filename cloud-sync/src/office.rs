//! The office's database roles: the web application's (`markoff-central serve`) and read-only
//! readers' such as Grafana.
//!
//! Owns: creating such a login role with a SCRAM-SHA-256 verifier and granting it what its kind
//! needs. Does not own: the list of privileges itself, which lives in the schema
//! (`markoff.grant_web`, `markoff.grant_reader` in `migrations/central/0004_web.sql`) so that a
//! later migration can extend it.

use std::fmt;
use std::str::FromStr;

use rand::Rng as _;
use sqlx::{Connection as _, PgConnection};

use crate::admin::{
    AdminError, Password, check_password, check_role, db, password_verifier, quote_ident,
    quote_literal,
};

/// What an office role is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfficeRoleKind {
    /// The web application: reads the synced data, manages sessions, adds alarm comments.
    Web,
    /// A read-only reader (Grafana): reads the synced data and comments, never users or sessions.
    Reader,
    /// The login role gateways share through a transaction-pooling PgBouncer: nobody until a
    /// transaction proves a gateway's key (`markoff.prove_gateway`), then that gateway.
    Ingest,
}

impl OfficeRoleKind {
    /// The name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Reader => "reader",
            Self::Ingest => "ingest",
        }
    }

    fn grant_function(self) -> &'static str {
        match self {
            Self::Web => "markoff.grant_web",
            Self::Reader => "markoff.grant_reader",
            Self::Ingest => "markoff.grant_ingest",
        }
    }

    /// The role's `CONNECTION LIMIT`: an ingest role carries PgBouncer's whole pool.
    fn connection_limit(self) -> u32 {
        match self {
            Self::Web | Self::Reader => 32,
            Self::Ingest => 80,
        }
    }
}

impl fmt::Display for OfficeRoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OfficeRoleKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "web" => Ok(Self::Web),
            "reader" | "grafana" => Ok(Self::Reader),
            "ingest" => Ok(Self::Ingest),
            other => Err(format!(
                "unknown role kind {other:?}: expected \"web\", \"reader\" or \"ingest\""
            )),
        }
    }
}

/// What [`add_office_role`] did.
#[derive(Clone, Debug)]
pub struct OfficeRole {
    /// The role.
    pub role: String,
    /// Its password when the role was created by this call (shown once); `None` when an existing
    /// role only had its grants refreshed.
    pub password: Option<Password>,
}

/// Creates login role `role` (password stored as a SCRAM-SHA-256 verifier; `password` or a
/// generated one) and grants it what `kind` needs, in one transaction. With `existing`, the role
/// must exist already and only its grants are (re)applied, e.g. after a migration.
///
/// # Errors
/// [`AdminError::Invalid`], [`AdminError::RoleExists`] (or the role is missing with
/// `existing`, reported the same way), or [`AdminError::Database`].
pub async fn add_office_role(
    conn: &mut PgConnection,
    role: &str,
    kind: OfficeRoleKind,
    password: Option<Password>,
    existing: bool,
) -> Result<OfficeRole, AdminError> {
    check_role(role)?;
    let mut tx = conn.begin().await.map_err(db("starting a transaction"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("looking up the role"))?;
    let mut created = None;
    if existing {
        if !exists {
            return Err(AdminError::Invalid {
                what: "role",
                value: role.to_owned(),
                reason: "does not exist (leave out --existing to create it)",
            });
        }
    } else {
        if exists {
            return Err(AdminError::RoleExists {
                role: role.to_owned(),
            });
        }
        let password = password.unwrap_or_else(Password::generate);
        check_password(&password)?;
        let salt: [u8; 16] = rand::rng().random();
        let verifier = password_verifier(&password, &salt);
        let sql = format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION \
             NOBYPASSRLS CONNECTION LIMIT {} PASSWORD {}",
            quote_ident(role),
            kind.connection_limit(),
            quote_literal(&verifier)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(db("creating the role"))?;
        created = Some(password);
    }
    let grant = format!("SELECT {}($1)", kind.grant_function());
    sqlx::query(sqlx::AssertSqlSafe(grant))
        .bind(role)
        .execute(&mut *tx)
        .await
        .map_err(db("granting the role its privileges"))?;
    tx.commit().await.map_err(db("committing"))?;
    tracing::info!(role, kind = %kind, "Office role ready.");
    Ok(OfficeRole {
        role: role.to_owned(),
        password: created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse() {
        assert_eq!("web".parse(), Ok(OfficeRoleKind::Web));
        assert_eq!("grafana".parse(), Ok(OfficeRoleKind::Reader));
        assert!("admin".parse::<OfficeRoleKind>().is_err());
    }
}
