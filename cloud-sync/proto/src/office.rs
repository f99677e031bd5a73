//! Requests from the office to acknowledge or shelve an alarm, as a gateway pulls and answers
//! them (central schema version 7, `markoff.office_requests`). The gateway accepts no inbound
//! connection: it asks for its pending requests on its own connection, applies each locally and
//! answers it; an answer moves only a pending request, so answering twice changes nothing. Each
//! call is one transaction with unnamed statements, as every call here (PgBouncer, `lib.rs`).
//!
//! Owns: the two calls and the row a gateway reads. Does not own: applying a request (the
//! daemon's alarm engine) or recording one (the office web application).

use sqlx::PgConnection;

use crate::SyncError;
use crate::identity::{self, GatewayIdentity};
use crate::upload::db_err;

/// A pending request, as the gateway reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficeRequestRow {
    /// The centre's id of the request.
    pub request_id: i64,
    /// The alarm's id on this gateway.
    pub alarm_id: i64,
    /// `ack` or `shelve`.
    pub action: String,
    /// How long to shelve, seconds (`shelve` only).
    pub shelve_seconds: Option<i32>,
    /// The office user's login.
    pub login: String,
    /// Their name.
    pub display_name: String,
    /// When they asked, ms since the epoch.
    pub requested_ms: i64,
}

/// The calling gateway's pending requests, oldest first (at most 100).
///
/// # Errors
/// [`SyncError::Database`] (a schema older than version 7 fails here too).
pub async fn office_requests_pending<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
) -> Result<Vec<OfficeRequestRow>, SyncError> {
    type Row = (i64, i64, String, Option<i32>, String, String, i64);
    let op = "reading the office's requests";
    let gateway_id = gateway.gateway_id();
    let mut tx = identity::begin(conn, gateway, None, op).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT request_id, alarm_id, action, shelve_seconds, login, display_name, requested_ms \
         FROM markoff.office_requests_pending($1)",
    )
    .persistent(false)
    .bind(gateway_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err(op, gateway_id))?;
    tx.commit().await.map_err(db_err(op, gateway_id))?;
    Ok(rows
        .into_iter()
        .map(
            |(request_id, alarm_id, action, shelve_seconds, login, display_name, requested_ms)| {
                OfficeRequestRow {
                    request_id,
                    alarm_id,
                    action,
                    shelve_seconds,
                    login,
                    display_name,
                    requested_ms,
                }
            },
        )
        .collect())
}

/// Answers request `request_id`: `done` or refused (with the reason), applied as `actor`.
/// Returns whether this answer moved it (false: it was answered already).
///
/// # Errors
/// [`SyncError::Database`].
pub async fn answer_office_request<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    request_id: i64,
    done: bool,
    actor: &str,
    detail: Option<&str>,
) -> Result<bool, SyncError> {
    let op = "answering an office request";
    let gateway_id = gateway.gateway_id();
    let mut tx = identity::begin(conn, gateway, None, op).await?;
    let moved = crate::query_scalar("SELECT markoff.office_request_answer($1, $2, $3, $4, $5)")
        .bind(gateway_id)
        .bind(request_id)
        .bind(if done { "done" } else { "refused" })
        .bind(actor)
        .bind(detail)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err(op, gateway_id))?;
    tx.commit().await.map_err(db_err(op, gateway_id))?;
    Ok(moved)
}
