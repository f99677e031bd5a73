//! Who a protocol call is for: the gateway id and, when the gateway has one, its upload key.
//!
//! Owns: [`GatewayIdentity`] (what every protocol call takes in place of a bare gateway id),
//! [`GatewayKey`] (an id with its key, never shown in `Debug`) and the proof each transaction
//! starts with. Does not own: where the key comes from (the daemon's `[sync] key_*` settings) or
//! the server's check (`markoff.prove_gateway`, `migrations/central/0009_pooled_ingest.sql`).
//!
//! A gateway logged in as its own role is known to PostgreSQL by its login. A gateway logged in
//! as the shared ingest role (one pool of server connections behind a transaction-pooling
//! PgBouncer for the whole fleet) is nobody until it proves, inside each transaction, which
//! gateway it is: the first statement of every transaction of the protocol is
//! `SELECT markoff.prove_gateway(id, key)` whenever the identity carries a key. The proof lasts
//! for that transaction on that server connection only, so the pooler may hand the connection to
//! another gateway for the next one.

use std::fmt;

use sqlx::{Connection as _, PgConnection, Postgres, Transaction};

use crate::error::SyncError;
use crate::upload::db_err;

/// A gateway id, with the gateway's upload key when it has one. `&str` and `String` are
/// identities without a key (the gateway logged in as its own role).
pub trait GatewayIdentity {
    /// The gateway id (`[gateway] id`).
    fn gateway_id(&self) -> &str;
    /// The gateway's upload key, sent to `markoff.prove_gateway` at the start of every
    /// transaction; `None`: nothing to prove (the login role is the gateway's own).
    fn key(&self) -> Option<&str> {
        None
    }
}

impl GatewayIdentity for str {
    fn gateway_id(&self) -> &str {
        self
    }
}

impl GatewayIdentity for String {
    fn gateway_id(&self) -> &str {
        self
    }
}

impl<T: GatewayIdentity + ?Sized> GatewayIdentity for &T {
    fn gateway_id(&self) -> &str {
        (**self).gateway_id()
    }
    fn key(&self) -> Option<&str> {
        (**self).key()
    }
}

/// A gateway id and its upload key. `Debug` and `Display` show the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayKey {
    id: String,
    key: Option<String>,
}

impl GatewayKey {
    /// `id` with `key` (`None`: an identity without a key, like a bare id).
    pub fn new(id: impl Into<String>, key: Option<String>) -> Self {
        Self { id: id.into(), key }
    }

    /// The gateway id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a key is set.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }
}

impl GatewayIdentity for GatewayKey {
    fn gateway_id(&self) -> &str {
        &self.id
    }
    fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayKey")
            .field("id", &self.id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Proves `gw`'s identity for the rest of the current transaction when it has a key (see the
/// module docs); does nothing otherwise.
///
/// # Errors
/// [`SyncError::Database`] with SQLSTATE 42501 when the key is wrong, the gateway unknown or
/// removed, or the login role is neither an ingest role nor the gateway's own.
pub(crate) async fn prove<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gw: &G,
) -> Result<(), SyncError> {
    if let Some(key) = gw.key() {
        crate::query("SELECT markoff.prove_gateway($1, $2)")
            .bind(gw.gateway_id())
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(db_err("proving the gateway's key", gw.gateway_id()))?;
    }
    Ok(())
}

/// Begins a transaction (`BEGIN` or `begin_sql`) and proves `gw` in it.
pub(crate) async fn begin<'c, G: GatewayIdentity + ?Sized>(
    conn: &'c mut PgConnection,
    gw: &G,
    begin_sql: Option<&'static str>,
    op: &'static str,
) -> Result<Transaction<'c, Postgres>, SyncError> {
    let mut tx = match begin_sql {
        Some(sql) => conn.begin_with(sql).await,
        None => conn.begin().await,
    }
    .map_err(db_err(op, gw.gateway_id()))?;
    prove(&mut tx, gw).await?;
    Ok(tx)
}
