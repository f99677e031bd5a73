//! A gateway's clock as the centre sees it: whether it is synchronised, and the spans of readings
//! it stamped from its monotonic clock (`markoff.gateway_clock`, `markoff.clock_epochs`; the
//! view `markoff.readings_clock` marks each reading `measured`, `corrected` or `uncorrected`).
//!
//! Owns: the rows and [`report_clock`]. Does not own: the clock (the daemon's `clock` module) or
//! the correction of uploaded readings (the daemon's uploader applies it before upload).

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::SyncError;
use crate::identity::{self, GatewayIdentity};
use crate::upload::db_err;

/// The gateway's clock status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStatusRow {
    /// The kernel reports the clock synchronised (`None`: it cannot tell).
    pub synchronized: Option<bool>,
    /// Readings are stamped with the wall clock (false: from the monotonic clock).
    pub trusted: bool,
    /// Steps of the wall clock seen since the gateway started.
    pub steps: i64,
    /// The last correction learnt, milliseconds.
    pub last_offset_ms: Option<i64>,
}

/// A span of readings stamped from the monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEpochRow {
    /// The gateway's id of the span.
    pub epoch_id: i64,
    /// Why it began: `boot`, `step`, `lost_sync`.
    pub reason: String,
    /// Its first reading seq.
    pub first_seq: i64,
    /// Its last reading seq, once closed.
    pub last_seq: Option<i64>,
    /// Its first stamp, as stamped.
    pub from_ms: i64,
    /// Its last stamp, as stamped, once closed.
    pub to_ms: Option<i64>,
    /// Add this to its stamps for real time, once learnt.
    pub offset_ms: Option<i64>,
    /// `pending`, `corrected` (uploaded corrected) or `uncorrected` (uploaded as stamped).
    pub state: String,
}

/// Records `status` and upserts `epochs` for `gateway_id` (a gateway may report only itself).
///
/// # Errors
/// [`SyncError::Database`] when a statement fails or the gateway is not the connected role's.
pub async fn report_clock<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    status: &ClockStatusRow,
    epochs: &[ClockEpochRow],
) -> Result<(), SyncError> {
    let op = "reporting the clock";
    // One transaction, unnamed statements: see "Behind a transaction-pooling PgBouncer" in the
    // crate docs.
    let gateway_id = gateway.gateway_id();
    let mut tx = identity::begin(conn, gateway, None, op).await?;
    crate::query("SELECT markoff.report_clock($1, $2, $3, $4, $5)")
        .bind(gateway_id)
        .bind(status.synchronized)
        .bind(status.trusted)
        .bind(status.steps)
        .bind(status.last_offset_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_err(op, gateway_id))?;
    for e in epochs {
        crate::query("SELECT markoff.report_clock_epoch($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(gateway_id)
            .bind(e.epoch_id)
            .bind(&e.reason)
            .bind(e.first_seq)
            .bind(e.last_seq)
            .bind(e.from_ms)
            .bind(e.to_ms)
            .bind(e.offset_ms)
            .bind(&e.state)
            .execute(&mut *tx)
            .await
            .map_err(db_err(op, gateway_id))?;
    }
    tx.commit().await.map_err(db_err(op, gateway_id))
}
