//! Accounts of the office web application: Argon2id password hashes in `markoff.web_users`,
//! which buildings each may see (`markoff.web_grants`, or all for an administrator), and the
//! administration `markoff-central add-user`, `remove-user`, `grant`, `revoke` and `users` run.
//!
//! Owns: login name rules, password rules, hashing and verification. Does not own: sessions
//! (`session`) or the login form (`login`).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use sqlx::{Connection as _, PgConnection, Row as _};

/// Shortest password `add-user` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A login name or password is not acceptable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The login exists already (use `--update` to change its password).
    #[error("user {0} already exists (use --update to set a new password)")]
    Exists(String),
    /// No such login.
    #[error("no user {0}")]
    Unknown(String),
    /// Hashing failed (out of memory, or a broken parameter set).
    #[error("hashing the password failed: {0}")]
    Hash(String),
    /// A statement failed.
    #[error("{op} failed: {source}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> UserError {
    move |source| UserError::Database { op, source }
}

/// The login in its stored form (lower case, trimmed), if acceptable: 1 to 100 letters, digits,
/// `.`, `_`, `-` or `@`.
///
/// # Errors
/// [`UserError::Invalid`].
pub fn normalize_login(login: &str) -> Result<String, UserError> {
    let l = login.trim().to_lowercase();
    if l.is_empty() || l.chars().count() > 100 {
        return Err(UserError::Invalid {
            what: "login",
            reason: "must have 1 to 100 characters",
        });
    }
    if !l
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(UserError::Invalid {
            what: "login",
            reason: "may only contain letters, digits, '.', '_', '-' and '@'",
        });
    }
    Ok(l)
}

/// The Argon2id PHC string of `password` (default parameters: 19 MiB, 2 passes, a random
/// 16-byte salt).
///
/// # Errors
/// [`UserError::Invalid`] for a password shorter than [`MIN_PASSWORD_CHARS`]; [`UserError::Hash`].
pub fn hash_password(password: &str) -> Result<String, UserError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::Invalid {
            what: "password",
            reason: "must have at least 12 characters",
        });
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash). Takes tens of
/// milliseconds on purpose: call it off the async threads.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// One account, as `markoff-central users` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUser {
    /// The login name.
    pub login: String,
    /// The name shown on pages and comments, if set.
    pub display_name: Option<String>,
    /// When the account was created (ISO 8601, UTC).
    pub created_at: String,
    /// Last successful login, if any.
    pub last_login_at: Option<String>,
    /// Sessions that have not expired.
    pub sessions: i64,
    /// An administrator: sees every building.
    pub admin: bool,
    /// The buildings granted, by id.
    pub buildings: Vec<String>,
}

/// What `grant` and `revoke` change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// Every building: the administrator flag.
    All,
    /// These buildings.
    Buildings(&'a [String]),
}

async fn user_id(conn: &mut PgConnection, login: &str) -> Result<i64, UserError> {
    let login = normalize_login(login)?;
    sqlx::query_scalar("SELECT user_id FROM markoff.web_users WHERE login = $1")
        .bind(&login)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("looking up the user"))?
        .ok_or(UserError::Unknown(login))
}

/// Lets a user see `access` (and comment on its alarms); granting what is granted already is
/// not an error.
///
/// # Errors
/// [`UserError::Invalid`] (an empty building id), [`UserError::Unknown`] or
/// [`UserError::Database`].
pub async fn grant(
    conn: &mut PgConnection,
    login: &str,
    access: Access<'_>,
) -> Result<(), UserError> {
    let id = user_id(conn, login).await?;
    match access {
        Access::All => {
            sqlx::query("UPDATE markoff.web_users SET is_admin = true WHERE user_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db("granting every building"))?;
        }
        Access::Buildings(list) => {
            if list.iter().any(|b| b.trim().is_empty() || b.contains('\0')) {
                return Err(UserError::Invalid {
                    what: "building",
                    reason: "must not be empty or hold a NUL character",
                });
            }
            sqlx::query(
                "INSERT INTO markoff.web_grants (user_id, building_id) \
                 SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(list)
            .execute(&mut *conn)
            .await
            .map_err(db("granting buildings"))?;
        }
    }
    tracing::info!(login, ?access, "Web access granted.");
    Ok(())
}

/// Takes `access` away from a user: `All` ends their administrator flag (their buildings stay
/// granted); returns how many grants or flags were removed.
///
/// # Errors
/// [`UserError::Unknown`] or [`UserError::Database`].
pub async fn revoke(
    conn: &mut PgConnection,
    login: &str,
    access: Access<'_>,
) -> Result<u64, UserError> {
    let id = user_id(conn, login).await?;
    let n = match access {
        Access::All => sqlx::query(
            "UPDATE markoff.web_users SET is_admin = false WHERE user_id = $1 AND is_admin",
        )
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db("revoking every building"))?,
        Access::Buildings(list) => sqlx::query(
            "DELETE FROM markoff.web_grants WHERE user_id = $1 AND building_id = ANY ($2)",
        )
        .bind(id)
        .bind(list)
        .execute(&mut *conn)
        .await
        .map_err(db("revoking buildings"))?,
    }
    .rows_affected();
    tracing::info!(login, ?access, removed = n, "Web access revoked.");
    Ok(n)
}

/// What [`add_user`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAdded {
    /// The stored login name.
    pub login: String,
    /// Whether the account is new (else its password was replaced).
    pub created: bool,
    /// Sessions ended because the password was replaced.
    pub sessions_ended: u64,
}

/// Creates an account, or with `update` replaces an existing account's password (and display
/// name when given) and ends its sessions. The password is hashed before it reaches the database.
///
/// # Errors
/// [`UserError::Invalid`], [`UserError::Exists`], [`UserError::Unknown`] (update of a missing
/// account), [`UserError::Hash`] or [`UserError::Database`].
pub async fn add_user(
    conn: &mut PgConnection,
    login: &str,
    display_name: Option<&str>,
    password: &str,
    update: bool,
) -> Result<UserAdded, UserError> {
    let login = normalize_login(login)?;
    let owned = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&owned))
        .await
        .map_err(|e| UserError::Hash(e.to_string()))??;
    let mut tx = conn.begin().await.map_err(db("starting a transaction"))?;
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM markoff.web_users WHERE login = $1 FOR UPDATE")
            .bind(&login)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("looking up the user"))?;
    let added = match (existing, update) {
        (Some(_), false) => return Err(UserError::Exists(login)),
        (None, true) => return Err(UserError::Unknown(login)),
        (None, false) => {
            sqlx::query(
                "INSERT INTO markoff.web_users (login, display_name, password_hash) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&login)
            .bind(display_name)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(db("adding the user"))?;
            UserAdded {
                login,
                created: true,
                sessions_ended: 0,
            }
        }
        (Some(id), true) => {
            sqlx::query(
                "UPDATE markoff.web_users SET password_hash = $2, password_set_at = now(), \
                 display_name = coalesce($3, display_name) WHERE user_id = $1",
            )
            .bind(id)
            .bind(&hash)
            .bind(display_name)
            .execute(&mut *tx)
            .await
            .map_err(db("updating the user"))?;
            let ended = sqlx::query("DELETE FROM markoff.web_sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("ending the user's sessions"))?
                .rows_affected();
            UserAdded {
                login,
                created: false,
                sessions_ended: ended,
            }
        }
    };
    tx.commit().await.map_err(db("committing"))?;
    tracing::info!(login = %added.login, created = added.created, "Web user saved.");
    Ok(added)
}

/// Deletes an account and its sessions (its comments stay, with its name).
///
/// # Errors
/// [`UserError::Unknown`] or [`UserError::Database`].
pub async fn remove_user(conn: &mut PgConnection, login: &str) -> Result<(), UserError> {
    let login = normalize_login(login)?;
    let n = sqlx::query("DELETE FROM markoff.web_users WHERE login = $1")
        .bind(&login)
        .execute(&mut *conn)
        .await
        .map_err(db("removing the user"))?
        .rows_affected();
    if n == 0 {
        return Err(UserError::Unknown(login));
    }
    tracing::info!(login = %login, "Web user removed.");
    Ok(())
}

/// Every account, by login.
///
/// # Errors
/// [`UserError::Database`].
pub async fn list_users(conn: &mut PgConnection) -> Result<Vec<WebUser>, UserError> {
    const ISO: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";
    let sql = format!(
        "SELECT u.login, u.display_name, to_char(u.created_at AT TIME ZONE 'UTC', {ISO}), \
                to_char(u.last_login_at AT TIME ZONE 'UTC', {ISO}), \
                (SELECT count(*) FROM markoff.web_sessions s \
                 WHERE s.user_id = u.user_id AND s.expires_at > now()), \
                u.is_admin, \
                array(SELECT g.building_id FROM markoff.web_grants g \
                      WHERE g.user_id = u.user_id ORDER BY g.building_id) \
         FROM markoff.web_users u ORDER BY u.login"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(db("listing users"))?;
    rows.into_iter()
        .map(|r| {
            Ok(WebUser {
                login: r.try_get(0)?,
                display_name: r.try_get(1)?,
                created_at: r.try_get(2)?,
                last_login_at: r.try_get(3)?,
                sessions: r.try_get(4)?,
                admin: r.try_get(5)?,
                buildings: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db("listing users"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_normalised_and_checked() {
        assert_eq!(normalize_login(" Ivan.Petrov ").unwrap(), "ivan.petrov");
        assert_eq!(normalize_login("Ольга").unwrap(), "ольга");
        assert!(normalize_login("").is_err());
        assert!(normalize_login("a b").is_err());
        assert!(normalize_login("a'b").is_err());
    }

    #[test]
    fn passwords_hash_and_verify() {
        assert!(hash_password("short").is_err());
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        let again = hash_password("correct horse battery").unwrap();
        assert_ne!(h, again, "salted");
    }
}
