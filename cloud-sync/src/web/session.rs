//! Sessions of the office web application: a random 256-bit id in an `HttpOnly`,
//! `SameSite=Strict` cookie, stored only as its SHA-256 in `markoff.web_sessions`, with a
//! per-session CSRF token and an absolute expiry.
//!
//! Owns: tokens, the session rows, cookie parsing and formatting. Does not own: checking
//! passwords (`users`) or deciding who may see what (`mod.rs` refuses every route without a
//! session).

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use markoff_proto::web_security;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use sqlx::{PgPool, Row as _};

/// A signed-in session, as every protected handler receives it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// SHA-256 of the cookie's id.
    pub(crate) id_hash: Vec<u8>,
    /// The account.
    pub(crate) user_id: i64,
    /// Its login name.
    pub(crate) login: String,
    /// Its display name, else the login.
    pub(crate) name: String,
    /// The token every form and JSON write of this session must carry.
    pub(crate) csrf: String,
    /// When the session ends, ms since the Unix epoch.
    pub(crate) expires_at: i64,
}

/// 32 random bytes (256 bits) from the thread's CSPRNG, base64url without padding.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token, as stored.
pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Equality that takes the same time wherever the strings differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    web_security::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The value of cookie `name` in the request, if present and not empty.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    web_security::cookie(values, name)
}

pub(crate) use markoff_proto::web_security::set_cookie;

/// Creates a session for `user_id` lasting `lifetime`; returns the cookie's id (never stored)
/// and the session.
pub(crate) async fn create(
    pool: &PgPool,
    user_id: i64,
    lifetime: Duration,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> Result<(String, Session), sqlx::Error> {
    let token = random_token();
    let id_hash = hash_token(&token);
    let csrf = random_token();
    let row = sqlx::query(
        "WITH s AS ( \
             INSERT INTO markoff.web_sessions (id_hash, user_id, csrf_token, expires_at, client_ip, user_agent) \
             VALUES ($1, $2, $3, now() + $4 * interval '1 second', $5::inet, left($6, 300)) \
             RETURNING user_id, expires_at) \
         SELECT u.login, coalesce(u.display_name, u.login), \
                (extract(epoch FROM s.expires_at) * 1000)::int8 \
         FROM s JOIN markoff.web_users u USING (user_id)",
    )
    .bind(&id_hash)
    .bind(user_id)
    .bind(&csrf)
    .bind(lifetime.as_secs_f64())
    .bind(ip.to_string())
    .bind(user_agent)
    .fetch_one(pool)
    .await?;
    sqlx::query("UPDATE markoff.web_users SET last_login_at = now() WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    let session = Session {
        id_hash,
        user_id,
        login: row.try_get(0)?,
        name: row.try_get(1)?,
        csrf,
        expires_at: row.try_get(2)?,
    };
    Ok((token, session))
}

/// The live session of the cookie id `token`, if any (expired ones are not found).
pub(crate) async fn find(pool: &PgPool, token: &str) -> Result<Option<Session>, sqlx::Error> {
    if token.len() != 43 {
        return Ok(None);
    }
    let id_hash = hash_token(token);
    let row = sqlx::query(
        "SELECT s.user_id, u.login, coalesce(u.display_name, u.login), s.csrf_token, \
                (extract(epoch FROM s.expires_at) * 1000)::int8 \
         FROM markoff.web_sessions s JOIN markoff.web_users u USING (user_id) \
         WHERE s.id_hash = $1 AND s.expires_at > now()",
    )
    .bind(&id_hash)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(Session {
            id_hash,
            user_id: r.try_get(0)?,
            login: r.try_get(1)?,
            name: r.try_get(2)?,
            csrf: r.try_get(3)?,
            expires_at: r.try_get(4)?,
        })
    })
    .transpose()
}

/// Ends a session (logout).
pub(crate) async fn delete(pool: &PgPool, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM markoff.web_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes expired sessions; returns how many.
pub(crate) async fn sweep(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM markoff.web_sessions WHERE expires_at <= now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn tokens_are_256_bits_and_hashed() {
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
        assert_eq!(hash_token(&t).len(), 32);
        assert!(same(&t, &t.clone()));
        assert!(!same(&t, &random_token()));
        assert!(!same("a", "ab"));
    }

    #[test]
    fn cookies_parse_and_format() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; markoff_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "markoff_session"), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie("n", "v", Some(Duration::from_secs(60)), true);
        assert_eq!(
            c,
            "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(set_cookie("n", "", None, false).contains("Max-Age=0"));
    }
}
